"""Tokenised training sets and per-sentence targets for the Trainer loops."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from finslm.config import ConfigError
from finslm.labels import LABEL2ID, LABELS

log = logging.getLogger(__name__)


def class_weights(labels: pd.Series) -> list[float]:
    """Inverse-frequency weights (mean 1) in LABELS order; a missing class gets weight 0."""
    counts = labels.value_counts()
    raw = [1.0 / counts[name] if counts.get(name, 0) else 0.0 for name in LABELS]
    scale = sum(1 for w in raw if w) / sum(raw)
    return [w * scale for w in raw]


def agreement_targets(train_df: pd.DataFrame, mode: str, source: str = "train split") -> np.ndarray:
    """Per-sentence training targets from PhraseBank agreement tiers: ``(n, len(LABELS) + 1)``.

    Columns are a target distribution over LABELS and a loss weight. ``weight``: one-hot target,
    weight = tier / mean tier (mean 1, so the learning rate means the same); ``soft``: the tier
    on the gold label, the rest spread evenly over the other labels, weight 1.
    """
    if "agreement" not in train_df.columns or train_df["agreement"].isna().any():
        raise ConfigError(
            f"agreement_labels: {mode}: the {source} has no annotator agreement. Point "
            "data.source at the PhraseBank folder (…/FinancialPhraseBank-v1.0, not one "
            "Sentences_*.txt file) so prepare records each sentence's tier, or set "
            "agreement_labels: off"
        )
    tier = train_df["agreement"].to_numpy(dtype=np.float64)
    if ((tier <= 0) | (tier > 1)).any():
        raise ConfigError(f"agreement_labels: the {source} has agreement outside (0, 1]")
    gold = np.array([LABEL2ID[label] for label in train_df.label])
    n, k = len(gold), len(LABELS)
    targets = np.zeros((n, k + 1))
    if mode == "soft":
        targets[:, :k] = ((1.0 - tier) / (k - 1))[:, None]
        targets[np.arange(n), gold] = tier
        targets[:, k] = 1.0
    else:
        targets[np.arange(n), gold] = 1.0
        targets[:, k] = tier / tier.mean()
    return targets


class EncodedSplit:
    """A torch-style dataset of tokenised sentences (lists, padded later per batch).

    ``targets`` (from ``agreement_targets``) replaces the hard labels with soft rows.
    """

    def __init__(
        self,
        tokenizer,
        texts: list[str],
        labels: list[str],
        max_length: int,
        targets: np.ndarray | None = None,
    ):
        self.enc = tokenizer(texts, truncation=True, max_length=max_length)
        self.labels = [LABEL2ID[label] for label in labels] if targets is None else targets.tolist()
        # texts longer than max_length tokens, cut to their start (a fast tokenizer keeps the
        # rest as overflow; a slow one cannot say, and counts 0)
        encodings = getattr(self.enc, "encodings", None) or []
        self.truncated = sum(1 for e in encodings if e.overflowing)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, Any]:
        item = {k: v[i] for k, v in self.enc.items()}
        item["labels"] = self.labels[i]
        return item


def warn_truncated(splits: dict[str, EncodedSplit], max_length: int) -> None:
    """One warning for the texts a model trains or validates on only in part."""
    cut = {name: split.truncated for name, split in splits.items() if split.truncated}
    if cut:
        counts = ", ".join(f"{n} of {len(splits[name])} {name}" for name, n in cut.items())
        log.warning(
            "%s texts are longer than max_length %d tokens: the model sees only their start "
            "(raise the model's max_length, up to its max_position_embeddings, or shorten them)",
            counts,
            max_length,
        )
