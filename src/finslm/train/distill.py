"""Knowledge distillation: train a student classifier on a teacher's softened logits plus labels.

    loss = alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T)) + (1 - alpha) * CE

(Hinton et al. 2015, "Distilling the knowledge in a neural network"). The teacher's logits are
computed once, before training, with the teacher in eval mode, and travel with each training
sentence, so the teacher is never in memory during training. Early stopping on validation
macro-F1 restores the best epoch, as in :func:`finslm.train.transformer.train_transformer`.
"""

from __future__ import annotations

import tempfile
import time
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from finslm.config import DistillConfig
from finslm.labels import LABELS
from finslm.train.arguments import training_arguments
from finslm.train.callbacks import live_callback
from finslm.train.dataset import EncodedSplit
from finslm.train.determinism import set_determinism
from finslm.train.metrics import restored_summary, trainer_metrics

UNLABELLED = -100  # a row learnt from the teacher's logits alone (augmented transfer text)


class _WithTeacher(EncodedSplit):
    """Labelled sentences, then ``unlabelled`` texts (no label: only the teacher's logits)."""

    def __init__(
        self, tokenizer, texts, labels, max_length, teacher_logits: np.ndarray, unlabelled=()
    ):
        unlabelled = list(unlabelled)
        super().__init__(
            tokenizer, texts + unlabelled, labels + [LABELS[0]] * len(unlabelled), max_length
        )
        self.labels[len(labels) :] = [UNLABELLED] * len(unlabelled)
        if len(teacher_logits) != len(self.labels):
            raise ValueError(f"{len(teacher_logits)} teacher rows for {len(self.labels)} texts")
        self.teacher = np.asarray(teacher_logits, dtype=np.float32)

    def __getitem__(self, i: int) -> dict[str, Any]:
        item = super().__getitem__(i)
        item["teacher_logits"] = self.teacher[i]
        return item


def _collator(tokenizer):
    from transformers import DataCollatorWithPadding

    pad = DataCollatorWithPadding(tokenizer)

    def collate(items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        teacher = [item.pop("teacher_logits") for item in items if "teacher_logits" in item]
        batch = pad(items)
        if teacher:
            batch["teacher_logits"] = torch.tensor(np.stack(teacher))
        return batch

    return collate


@torch.no_grad()
def teacher_logits(model, tokenizer, texts: list[str], max_length: int, batch_size: int = 64):
    """(n, classes) logits of ``model`` in eval mode, in ``texts`` order."""
    model.eval()
    out = []
    for start in range(0, len(texts), batch_size):
        enc = tokenizer(
            texts[start : start + batch_size],
            truncation=True,
            max_length=max_length,
            padding=True,
            return_tensors="pt",
        )
        out.append(model(**enc).logits.float().numpy())
    return np.concatenate(out) if out else np.zeros((0, len(LABELS)), dtype=np.float32)


def distill_loss(student_logits, teacher, labels, alpha: float, temperature: float):
    """``alpha * T^2 * KL + (1 - alpha) * CE``; CE over the labelled rows only (rows labelled
    ``UNLABELLED`` learn from the teacher alone; a batch of them has no CE term)."""
    labelled = labels != UNLABELLED
    if labelled.any():
        ce = nn.functional.cross_entropy(student_logits[labelled], labels[labelled])
    else:
        ce = student_logits.sum() * 0.0
    if teacher is None or alpha == 0:
        return ce
    t = temperature
    kd = nn.functional.kl_div(
        nn.functional.log_softmax(student_logits / t, dim=-1),
        nn.functional.softmax(teacher.float() / t, dim=-1),
        reduction="batchmean",
    ) * (t * t)  # T^2 keeps the soft-target gradients on the scale of the hard ones
    return alpha * kd + (1 - alpha) * ce


def distill(
    student,
    tokenizer,
    train_df: pd.DataFrame,
    val_df: pd.DataFrame,
    teacher_train_logits: np.ndarray,
    max_length: int,
    settings: DistillConfig,
    live=None,
    extra_texts: list[str] = (),
    extra_logits: np.ndarray | None = None,
) -> dict[str, Any]:
    """Train ``student`` in place (best epoch restored); return validation metrics and timings.

    ``extra_texts`` / ``extra_logits``: unlabelled training text and the teacher's logits on
    it (augmented transfer text), learnt through the KL term alone.
    """
    from transformers import EarlyStoppingCallback, Trainer

    s = settings
    set_determinism(s.seed, s.threads)
    extra_texts = list(extra_texts)
    if extra_texts and (extra_logits is None or len(extra_logits) != len(extra_texts)):
        raise ValueError("extra_texts need one row of extra_logits each")
    targets = teacher_train_logits
    if extra_texts:
        targets = np.concatenate([teacher_train_logits, extra_logits])
    train_ds = _WithTeacher(
        tokenizer, train_df.text.tolist(), train_df.label.tolist(), max_length, targets,
        unlabelled=extra_texts,
    )  # fmt: skip
    val_ds = EncodedSplit(tokenizer, val_df.text.tolist(), val_df.label.tolist(), max_length)

    class DistillTrainer(Trainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            inputs = dict(inputs)
            teacher = inputs.pop("teacher_logits", None)
            labels = inputs.pop("labels")
            outputs = model(**inputs)
            loss = distill_loss(outputs.logits.float(), teacher, labels, s.alpha, s.temperature)
            return (loss, outputs) if return_outputs else loss

    with tempfile.TemporaryDirectory(prefix="finslm-distill-") as ckpt_dir:
        args = training_arguments(
            ckpt_dir,
            s,
            n_train=len(train_ds),
            seed=s.seed,
            remove_unused_columns=False,  # teacher_logits is not a forward() argument
        )
        callbacks = [EarlyStoppingCallback(early_stopping_patience=s.early_stopping_patience)]
        if live is not None:
            callbacks.append(live_callback(live))
        trainer = DistillTrainer(
            model=student,
            args=args,
            train_dataset=train_ds,
            eval_dataset=val_ds,
            data_collator=_collator(tokenizer),
            compute_metrics=trainer_metrics,
            callbacks=callbacks,
        )
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
    return restored_summary(trainer, val_ds, seconds)
