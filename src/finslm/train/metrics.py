"""The one metrics function every training loop reports.

Trainer loops (train@<m>, distillation) pass :func:`trainer_metrics` as ``compute_metrics``
and score the restored model with :func:`logit_metrics`; the hand-written loops (targeted
fine-tune, mining) call :func:`logit_metrics` on their own predictions. All of them end in
:func:`finslm.evaluation.classification_metrics`, so "macro-F1" means one thing everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from finslm.evaluation import classification_metrics
from finslm.labels import LABELS

# What a Trainer logs per evaluation (eval_accuracy, eval_macro_f1) and selects the best on.
BEST_METRIC = "macro_f1"


def logit_metrics(scores: np.ndarray, label_ids: Sequence[int] | np.ndarray) -> dict[str, Any]:
    """``classification_metrics`` of argmax(``scores``) (logits or probabilities) vs label ids."""
    pred = [LABELS[i] for i in np.asarray(scores).argmax(axis=1)]
    true = [LABELS[int(i)] for i in label_ids]
    return classification_metrics(true, pred)


def trainer_metrics(eval_pred) -> dict[str, float]:
    """Trainer's ``compute_metrics``: accuracy and macro-F1 of one evaluation pass."""
    logits, label_ids = eval_pred
    m = logit_metrics(logits, label_ids)
    return {"accuracy": m["accuracy"], BEST_METRIC: m[BEST_METRIC]}


def restored_summary(trainer, val_ds, seconds: float) -> dict[str, Any]:
    """Validation metrics of the restored (best) model and the run's epoch counts and timing.

    Trainer's eval sampler groups by length, so predictions are compared with its own
    ``label_ids``, not the split's order. Under DDP every rank predicts its shard and gets all
    of them back (a collective call): every rank must call this.
    """
    history = [h for h in trainer.state.log_history if f"eval_{BEST_METRIC}" in h]
    best = max(history, key=lambda h: h[f"eval_{BEST_METRIC}"])
    val_pred = trainer.predict(val_ds)
    epochs_run = len(history)
    return {
        "val": logit_metrics(val_pred.predictions, val_pred.label_ids),
        "epochs": epochs_run,
        "best_epoch": int(round(best["epoch"])),
        "seconds": round(seconds, 1),
        "seconds_per_epoch": round(seconds / max(epochs_run, 1), 1),
    }
