"""Hard-example mining on the training split: out-of-fold predictions and dataset cartography.

The trained model has seen every training sentence, so its own predictions on them say little.
Instead the train split is cut into ``k`` stratified folds; for each fold a fresh model is
fine-tuned briefly (``mine_epochs``) from the *pretrained* checkpoint on the other folds and
predicts the held-out one. That gives every training sentence an out-of-fold (OOF) prediction
from a model that never saw it. While those fold models train, the probability each gives the
gold label of each sentence it trains on is recorded in every epoch: the training dynamics of
dataset cartography (Swayamdipta et al. 2020, "Dataset Cartography"), from which

- ``carto_confidence``: the mean probability of the gold label over those observations;
- ``carto_variability``: their standard deviation.

Flags per sentence (columns of the mining file):

- ``misclassified``: the OOF prediction is wrong;
- ``low_confidence``: the OOF probability of the gold label is below ``low_confidence``;
- ``ambiguous``: variability in the top ``ambiguous_share`` (cartography's ambiguous region);
- ``hard_to_learn``: confidence in the bottom ``hard_to_learn_share`` (cartography's
  hard-to-learn region, where mislabelled sentences concentrate).

    >>> frame = mine(texts, labels, fit_fold, folds=4, seed=42, ...)   # one row per sentence
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from finslm.evaluation import classification_metrics
from finslm.labels import LABELS

log = logging.getLogger("finslm.finetune")

FLAGS = ("misclassified", "low_confidence", "ambiguous", "hard_to_learn")


@dataclass(frozen=True)
class FoldResult:
    heldout_proba: np.ndarray  # (n_heldout, n_labels), OOF probabilities
    dynamics: np.ndarray  # (n_fold_train, epochs), p(gold) of each training example per epoch


# fit_fold(train_texts, train_labels, heldout_texts, seed) -> FoldResult
FoldFitter = Callable[[list[str], list[str], list[str], int], FoldResult]


def fold_ids(labels: Sequence[str], k: int, seed: int) -> np.ndarray:
    """Fold number (0..k-1) of each example: stratified by label, or plain k-fold when a class
    has fewer than ``k`` examples."""
    from sklearn.model_selection import KFold, StratifiedKFold

    labels = np.asarray([str(y) for y in labels])
    if len(labels) < k:
        raise ValueError(f"{len(labels)} training examples cannot be cut into {k} folds")
    smallest = pd.Series(labels).value_counts().min()
    if smallest >= k:
        splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    else:
        log.warning("a class has %d < %d examples: folds are not stratified", smallest, k)
        splitter = KFold(n_splits=k, shuffle=True, random_state=seed)
    ids = np.zeros(len(labels), dtype=np.int64)
    for fold, (_, held) in enumerate(splitter.split(np.zeros(len(labels)), labels)):
        ids[held] = fold
    return ids


def mine(
    texts: Sequence[str],
    labels: Sequence[str],
    fit_fold: FoldFitter,
    *,
    folds: int,
    seed: int,
    low_confidence: float,
    ambiguous_share: float,
    hard_to_learn_share: float,
) -> pd.DataFrame:
    """One row per training example: fold, OOF prediction and probabilities, cartography
    confidence/variability, the four flags and the cartography ``region``."""
    texts = [str(t) for t in texts]
    labels = [str(y) for y in labels]
    gold = np.array([LABELS.index(y) for y in labels])
    n = len(texts)
    fold = fold_ids(labels, folds, seed)
    oof = np.zeros((n, len(LABELS)), dtype=np.float64)
    observations: list[list[np.ndarray]] = [[] for _ in range(n)]
    for f in range(folds):
        train_idx = np.flatnonzero(fold != f)
        held_idx = np.flatnonzero(fold == f)
        start = time.perf_counter()
        result = fit_fold(
            [texts[i] for i in train_idx],
            [labels[i] for i in train_idx],
            [texts[i] for i in held_idx],
            seed + f,
        )
        oof[held_idx] = result.heldout_proba
        for row, i in enumerate(train_idx):
            observations[i].append(np.asarray(result.dynamics[row], dtype=np.float64))
        log.info(
            "fold %d/%d: trained on %d, predicted %d (%.1f s)",
            f + 1,
            folds,
            len(train_idx),
            len(held_idx),
            time.perf_counter() - start,
        )
    obs = [np.concatenate(o) if o else np.zeros(0) for o in observations]
    confidence = np.array([o.mean() if o.size else np.nan for o in obs])
    variability = np.array([o.std() if o.size else 0.0 for o in obs])
    frame = pd.DataFrame({"text": texts, "label": labels, "fold": fold})
    pred = oof.argmax(axis=1)
    frame["oof_pred"] = [LABELS[i] for i in pred]
    frame["oof_p_gold"] = oof[np.arange(n), gold]
    for j, name in enumerate(LABELS):
        frame[f"oof_p_{name}"] = oof[:, j]
    frame["carto_confidence"] = confidence
    frame["carto_variability"] = variability
    frame["carto_observations"] = [o.size for o in obs]
    return add_flags(frame, low_confidence, ambiguous_share, hard_to_learn_share)


def _top_share(values: np.ndarray, share: float) -> np.ndarray:
    """Mask of the ``share`` of rows with the largest values (ties broken by position)."""
    k = int(round(share * len(values)))
    mask = np.zeros(len(values), dtype=bool)
    if k > 0:
        mask[np.argsort(-values, kind="stable")[:k]] = True
    return mask


def add_flags(
    frame: pd.DataFrame, low_confidence: float, ambiguous_share: float, hard_to_learn_share: float
) -> pd.DataFrame:
    """The four flags and the cartography region (see the module docstring)."""
    frame = frame.copy()
    variability = frame["carto_variability"].to_numpy()
    confidence = frame["carto_confidence"].fillna(1.0).to_numpy()
    frame["misclassified"] = frame["oof_pred"] != frame["label"]
    frame["low_confidence"] = frame["oof_p_gold"] < low_confidence
    # With one observation per example every variability is 0: nothing is ambiguous then.
    frame["ambiguous"] = _top_share(variability, ambiguous_share) & (variability > 0)
    frame["hard_to_learn"] = _top_share(-confidence, hard_to_learn_share) & ~frame["ambiguous"]
    frame["region"] = np.where(
        frame["ambiguous"], "ambiguous", np.where(frame["hard_to_learn"], "hard_to_learn", "easy")
    )
    return frame


def mining_counts(frame: pd.DataFrame) -> dict[str, Any]:
    """Counts per flag and region, and how well the OOF predictions did (the fold models'
    accuracy on sentences they never saw)."""
    oof = classification_metrics(frame["label"].tolist(), frame["oof_pred"].tolist())
    return {
        "n_train": int(len(frame)),
        "flags": {name: int(frame[name].sum()) for name in FLAGS},
        "any_flag": int(frame[list(FLAGS)].any(axis=1).sum()),
        "regions": {
            r: int((frame["region"] == r).sum()) for r in ("easy", "ambiguous", "hard_to_learn")
        },
        "oof_accuracy": oof["accuracy"],
        "oof_macro_f1": oof["macro_f1"],
        "mean_carto_confidence": round(float(frame["carto_confidence"].mean()), 4),
        "mean_carto_variability": round(float(frame["carto_variability"].mean()), 4),
    }


def transformer_fold_fitter(model_cfg, *, epochs: int, root=".") -> FoldFitter:
    """Fold models fine-tuned from ``model_cfg.checkpoint`` (the pretrained weights, not the
    trained model) for ``epochs`` passes, with the model's own lr, batch size, warm-up, weight
    decay and label smoothing, a linear schedule, no validation (nothing is selected here)."""
    from pathlib import Path

    from finslm.finetune.loop import (
        LoopOptions,
        Phase,
        TokenCache,
        label_ids,
        predict_proba,
        run_training,
    )
    from finslm.finetune.phases import PhasePlan, length_batches, lr_schedule, passes
    from finslm.models import load_for_finetuning
    from finslm.train.determinism import set_determinism

    def fit(train_texts, train_labels, heldout_texts, seed):
        set_determinism(seed)
        tokenizer, model = load_for_finetuning(
            model_cfg.checkpoint,
            model_cfg.trust_remote_code,
            root=Path(root),
            pooling=model_cfg.pooling,
        )
        cache = TokenCache(tokenizer, model_cfg.max_length)
        n = len(train_texts)
        rng = np.random.default_rng(seed)
        stream = passes(np.arange(n), n * epochs, rng)
        lengths = cache.lengths(train_texts)
        # Batches never straddle two epochs, so each example is seen exactly once per epoch.
        batches = []
        for e in range(epochs):
            part = stream[e * n : (e + 1) * n]
            batches.extend(length_batches(part, lengths, model_cfg.batch_size, rng))
        steps = len(batches)
        plan = [PhasePlan("mine", n * epochs, steps, model_cfg.lr)]
        dynamics = np.full((n, epochs), np.nan)
        seen = np.zeros(n, dtype=np.int64)

        def record(batch, p_gold):
            dynamics[batch, seen[batch]] = p_gold
            seen[batch] += 1

        options = LoopOptions(
            weight_decay=model_cfg.weight_decay, label_smoothing=model_cfg.label_smoothing
        )
        run_training(
            model,
            cache,
            train_texts,
            label_ids(train_labels),
            [Phase("mine", batches)],
            lr_schedule(plan, model_cfg.warmup_ratio),
            options,
            record=record,
        )
        return FoldResult(predict_proba(model, cache, heldout_texts), dynamics)

    return fit
