"""Entity-level metrics (seqeval, strict IOB2), token accuracy and a confusion of types.

Predicted tags are first made valid IOB2 (:func:`finslm.ner.tags.to_iob2`: a stray ``I-T``
starts an entity), so the entities scored are exactly the spans ``finslm ner`` returns. Gold
tags go through the same conversion, so an IO-labelled model's validation labels (a run of
``I-T`` per entity) score as the IOB2 tags they came from.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from finslm.ner.decode import decode
from finslm.ner.tags import split_tag, to_iob2

# What the Trainer logs per evaluation (eval_entity_micro_f1) and selects the best epoch on.
BEST_METRIC = "entity_micro_f1"


def entity_metrics(
    true: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], types: Sequence[str] = ()
) -> dict[str, Any]:
    """Micro and macro entity P/R/F1, per-type P/R/F1/support, token accuracy, type confusion.

    ``types``: the entity types to report per type (default: those in ``true`` or ``pred``).
    """
    from seqeval.metrics import classification_report
    from seqeval.scheme import IOB2

    if len(true) != len(pred) or any(len(a) != len(b) for a, b in zip(true, pred, strict=True)):
        raise ValueError("entity_metrics: true and pred differ in sentences or tokens")
    true = [to_iob2(t) for t in true]
    pred = [to_iob2(p) for p in pred]
    found = sorted({split_tag(t)[1] for s in [*true, *pred] for t in s} - {None})
    types = list(types) or found
    report = classification_report(
        true, pred, mode="strict", scheme=IOB2, output_dict=True, zero_division=0
    )
    per_type = {
        t: {
            "precision": float(report.get(t, {}).get("precision", 0.0)),
            "recall": float(report.get(t, {}).get("recall", 0.0)),
            "f1": float(report.get(t, {}).get("f1-score", 0.0)),
            "support": int(report.get(t, {}).get("support", 0)),
        }
        for t in types
    }
    micro = report.get("micro avg", {})
    scored = [t for t in types if per_type[t]["support"] > 0]
    flat_true = [t for s in true for t in s]
    flat_pred = [t for s in pred for t in s]
    return {
        BEST_METRIC: float(micro.get("f1-score", 0.0)),
        "entity_micro_precision": float(micro.get("precision", 0.0)),
        "entity_micro_recall": float(micro.get("recall", 0.0)),
        # Macro over the types with gold entities in this split.
        "entity_macro_f1": float(np.mean([per_type[t]["f1"] for t in scored])) if scored else 0.0,
        "token_accuracy": float(
            np.mean([a == b for a, b in zip(flat_true, flat_pred, strict=True)])
        )
        if flat_true
        else 0.0,
        "entities": int(micro.get("support", 0)),
        "sentences": len(true),
        "tokens": len(flat_true),
        "per_type": per_type,
        "type_confusion": type_confusion(flat_true, flat_pred, types),
    }


def type_confusion(
    true: Sequence[str], pred: Sequence[str], types: Sequence[str]
) -> dict[str, Any]:
    """Token-level confusion of types (``O`` and each type; B-/I- merged): rows gold, cols predicted."""
    names = ["O", *types]
    index = {n: i for i, n in enumerate(names)}
    matrix = np.zeros((len(names), len(names)), dtype=np.int64)
    for a, b in zip(true, pred, strict=True):
        ta, tb = split_tag(a)[1] or "O", split_tag(b)[1] or "O"
        if ta in index and tb in index:
            matrix[index[ta], index[tb]] += 1
    return {"labels": names, "matrix": matrix.tolist()}


def tags_from_logits(
    logits: np.ndarray, label_ids: np.ndarray, labels: Sequence[str], method: str = "viterbi"
) -> tuple[list[list[str]], list[list[str]]]:
    """(gold, predicted) tag lists from a Trainer's padded (n, seq, k) logits and (n, seq) labels
    (-100 on ignored sub-tokens and padding); words decoded as the Tagger decodes them."""
    gold, pred = [], []
    for p_row, l_row in zip(np.asarray(logits), np.asarray(label_ids), strict=True):
        keep = l_row != -100
        gold.append([labels[i] for i in l_row[keep]])
        pred.append([labels[i] for i in decode(p_row[keep], labels, method)])
    return gold, pred
