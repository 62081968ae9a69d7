"""The one ``TrainingArguments`` factory every Trainer loop uses (train@<m>, distillation).

Epoch-wise evaluation, the best epoch by validation macro-F1 restored at the end, batches of
similar length, linear (or cosine) warm-up then decay, seeded data order, CPU unless a GPU is
present, no hub reporting, tqdm only on a terminal.
"""

from __future__ import annotations

import math
import sys
from typing import Any

from finslm.train.metrics import BEST_METRIC


def training_arguments(
    output_dir: str,
    optim,
    *,
    n_train: int,
    seed: int,
    per_device_batch: int | None = None,
    schedule: str = "linear",
    **overrides: Any,
):
    """``TrainingArguments`` for ``optim`` (any config with the shared optimiser block:
    ``epochs``, ``batch_size``, ``lr``, ``weight_decay``, ``warmup_ratio``).

    ``n_train``: training examples (warm-up and logging are counted in optimiser steps of the
    global batch). ``per_device_batch``: each process's share under torchrun (default: the whole
    batch). ``overrides`` go to ``TrainingArguments`` as they are (DDP options, columns).
    """
    import torch
    from transformers import TrainingArguments

    steps_per_epoch = math.ceil(n_train / optim.batch_size)
    settings: dict[str, Any] = {
        "output_dir": output_dir,
        "num_train_epochs": optim.epochs,
        "per_device_train_batch_size": per_device_batch or optim.batch_size,
        "per_device_eval_batch_size": 64,
        "learning_rate": optim.lr,
        "weight_decay": optim.weight_decay,
        "warmup_steps": int(optim.warmup_ratio * steps_per_epoch * optim.epochs),
        "lr_scheduler_type": schedule,
        # Batches of similar length: less padding, ~30% faster on PhraseBank-like text.
        "train_sampling_strategy": "group_by_length",
        "eval_strategy": "epoch",
        "save_strategy": "epoch",
        "save_total_limit": 2,
        "save_only_model": True,
        "load_best_model_at_end": True,
        "metric_for_best_model": BEST_METRIC,
        "greater_is_better": True,
        "logging_steps": max(1, steps_per_epoch // 4),
        "seed": seed,
        "data_seed": seed,
        "use_cpu": not torch.cuda.is_available(),
        "report_to": "none",
        "disable_tqdm": not sys.stderr.isatty(),
        "dataloader_num_workers": 0,
    }
    settings.update(overrides)
    return TrainingArguments(**settings)
