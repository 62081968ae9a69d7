"""Batched, memoised class probabilities for the perturbed texts of one sentence.

SHAP, LIME, leave-one-out and the faithfulness curves all ask the model about copies of the
same sentence with some words deleted, and often about the same copy (dropping the top word is
both a leave-one-out text and the first point of a comprehensiveness curve). :class:`Scorer`
sends each distinct text to the :class:`~finslm.predict.Predictor` once, in batches of texts of
similar length (less padding), and counts what it sent so the report can say what a method cost.

    >>> scorer = Scorer(load_predictor("exports/minilm", "onnx-int8"), batch_size=64)
    >>> scorer(["Profit rose.", "Profit."])    # shape (2, 3)
    >>> scorer.clear()                          # next sentence
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

_SPACES = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Runs of whitespace as one space, ends stripped: deleting words leaves double spaces,
    which no subword tokenizer distinguishes, and one spelling per text makes the cache hit."""
    return _SPACES.sub(" ", str(text)).strip()


class Scorer:
    """``scorer(texts) -> probabilities`` (shape (len(texts), n_labels)), each distinct text
    predicted once until :meth:`clear`."""

    def __init__(self, predictor, batch_size: int = 64):
        self.predictor = predictor
        self.labels = tuple(predictor.labels)
        self.batch_size = int(batch_size)
        self._cache: dict[str, np.ndarray] = {}
        self.requested = 0  # texts asked for
        self.evaluated = 0  # texts actually run through the model

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        keys = [normalise(t) for t in texts]
        self.requested += len(keys)
        # Ties in length are broken by the text itself, not by set order (string hashing
        # differs per process): a batch's make-up changes its padding and, for INT8, its
        # dynamic activation scales, so set order made explain's metrics vary run to run.
        missing = sorted({k for k in keys if k not in self._cache}, key=lambda k: (len(k), k))
        if missing:
            proba = np.asarray(
                self.predictor.predict_proba(missing, batch_size=self.batch_size), dtype=np.float64
            )
            self._cache.update(zip(missing, proba, strict=True))
            self.evaluated += len(missing)
        if not keys:
            return np.zeros((0, len(self.labels)), dtype=np.float64)
        return np.stack([self._cache[k] for k in keys])

    def clear(self) -> None:
        """Forget cached texts (call between sentences: the cache only helps within one)."""
        self._cache.clear()
