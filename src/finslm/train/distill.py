"""Knowledge distillation: train a student classifier on a teacher's softened logits plus labels.

    loss = alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T)) + (1 - alpha) * CE

(Hinton et al. 2015, "Distilling the knowledge in a neural network"). The teacher's logits are
computed once, before training, with the teacher in eval mode, and travel with each training
sentence, so the teacher is never in memory during training.

Intermediate-layer matching (``hidden_weight`` > 0) adds ``hidden_weight`` x the mean over layer
pairs of ``1 - cos(W_i h_s, h_t)``, where ``h_s`` is the student's mean-pooled state after its
layer ``hidden_layers[i]``, ``h_t`` the teacher's cached pooled state for the i-th cached layer,
and ``W_i`` a linear map (student width -> teacher width) trained with the student and dropped
after (a pooled, sentence-level form of the layer matching in TinyBERT, Jiao et al. 2020, which
matches every token; caching token states would cost sequence length times the memory).

Early stopping on validation macro-F1 restores the best epoch, as in
:func:`finslm.train.transformer.train_transformer`.
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
        self,
        tokenizer,
        texts,
        labels,
        max_length,
        teacher_logits: np.ndarray,
        unlabelled=(),
        teacher_hidden: np.ndarray | None = None,
    ):
        unlabelled = list(unlabelled)
        super().__init__(
            tokenizer, texts + unlabelled, labels + [LABELS[0]] * len(unlabelled), max_length
        )
        self.labels[len(labels) :] = [UNLABELLED] * len(unlabelled)
        if len(teacher_logits) != len(self.labels):
            raise ValueError(f"{len(teacher_logits)} teacher rows for {len(self.labels)} texts")
        self.teacher = np.asarray(teacher_logits, dtype=np.float32)
        if teacher_hidden is not None and len(teacher_hidden) != len(self.labels):
            raise ValueError(
                f"{len(teacher_hidden)} teacher hidden rows for {len(self.labels)} texts"
            )
        self.hidden = teacher_hidden

    def __getitem__(self, i: int) -> dict[str, Any]:
        item = super().__getitem__(i)
        item["teacher_logits"] = self.teacher[i]
        if self.hidden is not None:
            item["teacher_hidden"] = self.hidden[i]
        return item


def _collator(tokenizer):
    from transformers import DataCollatorWithPadding

    pad = DataCollatorWithPadding(tokenizer)

    def collate(items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        extra = {}
        for key in ("teacher_logits", "teacher_hidden"):
            rows = [item.pop(key) for item in items if key in item]
            if rows:
                extra[key] = torch.tensor(np.stack(rows))
        return {**pad(items), **extra}

    return collate


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


def hidden_loss(states, attention_mask, layers, projections, teacher_hidden) -> torch.Tensor:
    """Mean over layer pairs of ``1 - cos(W_i pooled(states[layers[i]]), teacher_hidden[:, i])``.

    ``states``: the student's hidden states (embeddings first); ``teacher_hidden``: (batch,
    len(layers), teacher width). Cosine, not MSE: the two encoders' state norms differ.
    """
    from finslm.train.heads import mean_pool

    terms = []
    for i, layer in enumerate(layers):
        mapped = projections[i](mean_pool(states[layer], attention_mask).float())
        cos = nn.functional.cosine_similarity(mapped, teacher_hidden[:, i].float(), dim=-1)
        terms.append((1 - cos).mean())
    return torch.stack(terms).mean()


def _attach_projections(student, layers: list[int], teacher_width: int) -> None:
    """``student.hidden_projections``: one linear map per matched layer, trained with it."""
    n_states = student.config.num_hidden_layers + 1
    bad = [layer for layer in layers if layer >= n_states]
    if bad:
        raise ValueError(
            f"student hidden_layers {bad}: the student has {n_states - 1} layers "
            f"(0 = embeddings … {n_states - 1})"
        )
    width = student.config.hidden_size
    student.hidden_projections = nn.ModuleList(nn.Linear(width, teacher_width) for _ in layers)


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
    teacher_hidden: np.ndarray | None = None,
) -> dict[str, Any]:
    """Train ``student`` in place (best epoch restored); return validation metrics and timings.

    ``extra_texts`` / ``extra_logits``: unlabelled training text and the teacher's logits on
    it (augmented transfer text), learnt through the KL term alone. ``teacher_hidden``: (rows,
    layers, width) pooled teacher states for the train rows then the extra rows, matched when
    ``settings.hidden_weight`` > 0 (:func:`hidden_loss`).
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
    weight = getattr(s, "hidden_weight", 0.0)
    layers = list(getattr(s, "hidden_layers", []))
    if weight > 0:
        if teacher_hidden is None or teacher_hidden.shape[1] != len(layers):
            got = "none" if teacher_hidden is None else teacher_hidden.shape[1]
            raise ValueError(f"hidden_layers {layers}: need that many teacher layers, got {got}")
        _attach_projections(student, layers, teacher_hidden.shape[-1])
    train_ds = _WithTeacher(
        tokenizer, train_df.text.tolist(), train_df.label.tolist(), max_length, targets,
        unlabelled=extra_texts, teacher_hidden=teacher_hidden if weight > 0 else None,
    )  # fmt: skip
    val_ds = EncodedSplit(tokenizer, val_df.text.tolist(), val_df.label.tolist(), max_length)

    class DistillTrainer(Trainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            inputs = dict(inputs)
            teacher = inputs.pop("teacher_logits", None)
            hidden = inputs.pop("teacher_hidden", None)
            labels = inputs.pop("labels")
            outputs = model(**inputs, output_hidden_states=hidden is not None)
            loss = distill_loss(outputs.logits.float(), teacher, labels, s.alpha, s.temperature)
            if hidden is not None:
                states, mask = outputs.hidden_states, inputs["attention_mask"]
                matched = hidden_loss(states, mask, layers, model.hidden_projections, hidden)
                loss = loss + weight * matched
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
        summary = restored_summary(trainer, val_ds, seconds)
    if hasattr(student, "hidden_projections"):
        del student.hidden_projections  # a training aid: not part of the saved classifier
    return summary
