"""Arithmetic a BERT-family classifier does per sentence: multiply-adds from its config.

    >>> shape = EncoderShape.from_config(json.loads(Path("models/minilm/config.json").read_text()))
    >>> shape.macs(20)                      # one 20-token sentence
    >>> sentence_ops(shape, [12, 20, 31])   # 2 ops per multiply-add, summed

Per encoder layer, for a sequence of ``L`` tokens, hidden size ``H`` and FFN size ``I``:

- query, key, value and output projections: ``4·L·H²``;
- attention scores ``Q·Kᵀ`` and the weighted sum of values: ``2·L²·H`` (over all heads; the
  only term that grows faster than the length);
- the FFN's up and down projections: ``2·L·H·I``.

The head adds ``H·C`` (mean pooling, then the classifier over ``C`` labels) or ``H² + H·C``
(the [CLS] pooler, then the classifier). Embedding look-ups, LayerNorm, softmax, GELU and
biases are left out: they are a few percent of the work and not multiply-adds a GEMM does. The
count is the model's work on real tokens; padding is counted separately (see
:func:`padded_ops`), so "effective" throughput is what a caller gets, not what the engine ran.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from finslm.models import ModelError

# Heads with the [CLS] pooler (a dense H×H before the classifier); finslm's own head pools the
# mean of the token states and has none.
_MEAN_POOL_TYPES = {"finslm-meanpool-bert"}


@dataclasses.dataclass(frozen=True)
class EncoderShape:
    """The sizes the multiply-add count depends on."""

    layers: int
    hidden: int
    intermediate: int
    labels: int
    pooler: bool

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> EncoderShape:
        """From a Hugging Face ``config.json`` (BERT keys, or DistilBERT's ``dim``/``n_layers``)."""
        hidden = config.get("hidden_size") or config.get("dim")
        layers = config.get("num_hidden_layers") or config.get("n_layers")
        intermediate = config.get("intermediate_size") or config.get("hidden_dim")
        if not (hidden and layers and intermediate):
            raise ModelError(
                "config.json: need hidden_size, num_hidden_layers and intermediate_size (or "
                f"DistilBERT's dim, n_layers, hidden_dim) to count operations; got keys {sorted(config)}"
            )
        labels = len(config.get("id2label") or {}) or int(config.get("num_labels", 2))
        model_type = config.get("model_type", "")
        pooler = model_type not in _MEAN_POOL_TYPES and model_type != "distilbert"
        return cls(int(layers), int(hidden), int(intermediate), labels, pooler)

    @classmethod
    def from_folder(cls, folder: str | Path) -> EncoderShape:
        path = Path(folder) / "config.json"
        if not path.is_file():
            raise ModelError(f"{path}: not found; a transformer or export folder holds one")
        return cls.from_config(json.loads(path.read_text("utf-8")))

    def macs(self, length: int) -> int:
        """Multiply-adds for one sequence of ``length`` tokens (see the module docstring)."""
        h, i, n = self.hidden, self.intermediate, int(length)
        per_layer = 4 * n * h * h + 2 * n * n * h + 2 * n * h * i
        head = h * self.labels + (h * h if self.pooler else 0)
        return self.layers * per_layer + head


def sentence_ops(shape: EncoderShape, lengths: Iterable[int]) -> int:
    """Operations (2 per multiply-add) for sentences of ``lengths`` tokens, no padding."""
    return 2 * sum(shape.macs(n) for n in lengths)


def padded_ops(
    shape: EncoderShape,
    lengths: Sequence[int],
    batches: Iterable[np.ndarray],
    multiple: int = 1,
) -> int:
    """Operations the engine runs when each batch (indices into ``lengths``) is padded to its
    longest sentence, rounded up to a multiple of ``multiple`` tokens."""
    total = 0
    for idx in batches:
        if len(idx):
            longest = max(lengths[i] for i in idx)
            total += 2 * len(idx) * shape.macs(-(-longest // multiple) * multiple)
    return total
