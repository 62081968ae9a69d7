"""Trainer callbacks: DVCLive curves and stochastic weight averaging."""

from __future__ import annotations

import numpy as np


def live_callback(live, keys=("loss", "accuracy", "macro_f1")):
    """A Trainer callback logging per-epoch validation metrics (``keys``) and train loss to DVCLive."""
    from transformers import TrainerCallback

    class LiveCallback(TrainerCallback):
        def __init__(self):
            self.losses: list[float] = []

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                self.losses.append(float(logs["loss"]))

        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            if self.losses:
                live.log_metric("train/loss", float(np.mean(self.losses)))
                self.losses = []
            for key in keys:
                if metrics and f"eval_{key}" in metrics:
                    live.log_metric(f"val/{key}", float(metrics[f"eval_{key}"]))
            live.next_step()

    return LiveCallback()


def weight_averager(start_epoch: int):
    """A Trainer callback keeping the running mean of the weights at each epoch end >= start.

    ``apply(model)`` loads the mean into ``model`` (after training; the best-epoch restore is
    overridden) and returns ``{"from_epoch", "epochs_averaged"}``; with nothing averaged yet
    (training stopped early, before ``start_epoch``) it leaves the model as it is.
    """
    import torch
    from transformers import TrainerCallback

    class WeightAverager(TrainerCallback):
        def __init__(self):
            self.total: dict[str, torch.Tensor] | None = None
            self.count = 0

        def on_epoch_end(self, args, state, control, model=None, **kwargs):
            if round(state.epoch) < start_epoch:
                return
            weights = {
                k: v.detach().to("cpu", torch.float64)
                for k, v in model.state_dict().items()
                if v.dtype.is_floating_point
            }
            if self.total is None:
                self.total = {k: v.clone() for k, v in weights.items()}
            else:
                for k, v in weights.items():
                    self.total[k] += v
            self.count += 1

        def apply(self, model) -> dict[str, int]:
            if self.count:
                state = model.state_dict()
                mean = {k: (v / self.count).to(state[k].dtype) for k, v in self.total.items()}
                model.load_state_dict(mean, strict=False)
            return {"from_epoch": start_epoch, "epochs_averaged": self.count}

    return WeightAverager()
