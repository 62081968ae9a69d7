"""Stratified k-fold cross-validation over train + validation (the test split is never read).

    finslm cv minilm --folds 5                  # the recipe in params.yaml, 5 folds
    finslm cv tfidf --folds 5 --set C=3.0       # a TF-IDF setting
    finslm ablate rdrop --set rdrop_alpha=1.0 --cv 5 --baseline mean-cv5   # paired on 5 folds

The train and validation splits ``prepare`` wrote are pooled and cut into K stratified folds
(scikit-learn's ``StratifiedKFold``, shuffled with ``--cv-seed``); fold k trains the model's
recipe on the other K − 1 folds — for a transformer with the epoch selected on fold k, exactly
as ``train@<model>`` selects it on validation — and is scored on fold k. Results are written by
:func:`finslm.ablation.run_ablation` in the ablation format, one row per fold under
``per_seed`` ("0" … "K−1"), with ``cv: {folds, seed, train_seed}`` and a t-interval per metric.

Every sentence is scored once, by a model that did not train on it, so K folds of n/K
sentences measure a recipe on n sentences instead of one 387-sentence validation split. The
folds' models share most of their training data, so their spread understates the variance
of a fresh training set (Bengio & Grandvalet 2004): read the interval as a guide, and compare
two recipes *paired*, on the same folds (``finslm ablate --cv K --baseline …``).
"""

from __future__ import annotations

import math
import statistics
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from finslm.config import ConfigError, TfidfConfig


def pool(train_df: pd.DataFrame, val_df: pd.DataFrame) -> pd.DataFrame:
    """Train and validation in one frame (in that order), index 0 … n − 1."""
    return pd.concat([train_df, val_df], ignore_index=True)


def fold_indices(labels: Sequence[str], k: int, seed: int) -> list[tuple[list[int], list[int]]]:
    """K stratified (train rows, held-out rows) index pairs; every row held out exactly once."""
    from sklearn.model_selection import StratifiedKFold

    if k < 2:
        raise ConfigError(f"--folds {k}: need at least 2 folds")
    counts = pd.Series(list(labels)).value_counts()
    if counts.min() < k:
        raise ConfigError(
            f"--folds {k}: class {counts.idxmin()!r} has only {counts.min()} sentences in train + "
            f"validation; every fold needs one of each class, so use at most {counts.min()} folds"
        )
    splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    return [
        (train.tolist(), held.tolist())
        for train, held in splitter.split(list(range(len(labels))), list(labels))
    ]


def folds(
    train_df: pd.DataFrame, val_df: pd.DataFrame, k: int, seed: int
) -> list[tuple[pd.DataFrame, pd.DataFrame]]:
    """K (training, held-out) frame pairs over train + validation."""
    data = pool(train_df, val_df)
    return [
        (data.iloc[tr].reset_index(drop=True), data.iloc[ho].reset_index(drop=True))
        for tr, ho in fold_indices(data.label.tolist(), k, seed)
    ]


def t_interval(values: Sequence[float], level: float = 0.95) -> list[float] | None:
    """Student-t interval of the mean of ``values`` (None for fewer than two)."""
    if len(values) < 2:
        return None
    from scipy import stats

    mean = statistics.fmean(values)
    half = stats.t.ppf(0.5 + level / 2, len(values) - 1) * statistics.stdev(values)
    half /= math.sqrt(len(values))
    return [round(mean - half, 4), round(mean + half, 4)]


def fit(cfg, train_df, val_df, out_dir: Path, seed: int, threads: int, live=None) -> dict:
    """Train any model kind's recipe into ``out_dir``; its training summary (``val`` included).

    A transformer runs :func:`finslm.train.recipe.fit_transformer` (train@<m>'s recipe, epoch
    selected on ``val_df``; ``live`` gets its per-epoch validation metrics); TF-IDF fits once.
    """
    if isinstance(cfg, TfidfConfig):
        from threadpoolctl import threadpool_limits

        from finslm.train.tfidf import train_tfidf

        # BLAS/OpenMP threads as torch's: on a shared CPU, oversubscription slows lbfgs 2-5x.
        with threadpool_limits(limits=threads or None):
            return train_tfidf(cfg, train_df, val_df, out_dir)
    from finslm.train.recipe import fit_transformer

    return fit_transformer(cfg, train_df, val_df, out_dir, live=live, seed=seed, threads=threads)


def run_fold(
    cfg, train_df: pd.DataFrame, held_df: pd.DataFrame, seed: int, threads: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Train on one fold's training rows, score its held-out rows: (ablation row, probabilities)."""
    from finslm.ablation import evaluate_model

    keys = ("epochs", "best_epoch", "seconds", "seconds_per_epoch", "params")
    with tempfile.TemporaryDirectory(prefix="finslm-cv-") as tmp:
        out_dir = Path(tmp) / "model"
        summary = fit(cfg, train_df, held_df, out_dir, seed, threads)
        metrics, probs = evaluate_model(out_dir, {"val": held_df})
    return {"val": metrics["val"], **{k: summary[k] for k in keys}}, probs
