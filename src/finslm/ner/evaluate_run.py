"""Score a tagger on prepared splits (what ``evaluate_ner`` and the export parity gate run)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from finslm.ner.context import document_context
from finslm.ner.evaluate import entity_metrics


def score(tagger, frame: pd.DataFrame, types: list[str], batch_size: int = 32) -> dict[str, Any]:
    """Entity metrics of ``tagger`` on ``frame`` (tokens, tags; with ``source``, ``document``
    and ``line``, a model trained with document context gets it, from ``frame`` only)."""
    contexts = document_context(frame, getattr(tagger, "context_words", 0))
    tagged = tagger.tag_words([list(t) for t in frame.tokens], batch_size, contexts=contexts)
    pred = [tags for tags, _ in tagged]
    return entity_metrics([list(t) for t in frame.tags], pred, types)
