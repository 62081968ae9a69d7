"""Classification metrics with stable names (they are the keys `dvc metrics diff` shows).

>>> m = classification_metrics(["positive", "neutral"], ["positive", "negative"])
>>> m["accuracy"], m["macro_f1"], m["per_class"]["neutral"]["recall"]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

from finslm.labels import LABELS


def classification_metrics(
    y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str] = LABELS
) -> dict[str, Any]:
    """accuracy, macro/weighted F1 and per-class precision/recall/F1/support, rounded to 4 places.

    The macro-F1 averages the labels present in ``y_true``: a label with no gold row (a
    two-class dataset, or a rare class that no validation row drew) has no F1 to average, and
    counting it as 0 would cap a perfect model at 2/3. Such labels are listed under
    ``absent_labels`` (only when there are any); their per-class rows stay, with support 0.
    """
    labels = list(labels)
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    present = [label for label, n in zip(labels, support, strict=True) if n > 0]
    r = lambda x: round(float(x), 4)  # noqa: E731 - JSON-friendly, diff-friendly
    macro = f1_score(y_true, y_pred, labels=present or labels, average="macro", zero_division=0)
    absent = {"absent_labels": [label for label in labels if label not in present]}
    return {
        "accuracy": r(accuracy_score(y_true, y_pred)),
        "macro_f1": r(macro),
        "weighted_f1": r(
            f1_score(y_true, y_pred, labels=labels, average="weighted", zero_division=0)
        ),
        "n": len(y_true),
        "per_class": {
            label: {
                "precision": r(precision[i]),
                "recall": r(recall[i]),
                "f1": r(f1[i]),
                "support": int(support[i]),
            }
            for i, label in enumerate(labels)
        },
        **(absent if present and absent["absent_labels"] else {}),
    }


def flat_metrics(m: dict[str, Any]) -> dict[str, float]:
    """accuracy, macro-F1 and per-class F1 (``f1_<label>``) of a :func:`classification_metrics`
    dict, in one flat row (tables, the benchmark)."""
    row = {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"]}
    row.update({f"f1_{label}": values["f1"] for label, values in m["per_class"].items()})
    return row


def confusion_rows(y_true: Sequence[str], y_pred: Sequence[str]) -> list[dict[str, str]]:
    """One row per example, the input DVC's ``confusion`` plot template expects."""
    return [{"actual": t, "predicted": p} for t, p in zip(y_true, y_pred, strict=True)]


def evaluate_predictor(
    predictor, texts: Sequence[str], labels: Sequence[str], batch_size: int = 32
):
    """(metrics, predicted labels, probabilities) of ``predictor`` on one split. ``truncated``
    counts the texts longer than the model's max tokens (scored on their first part)."""
    proba = predictor.predict_proba(list(texts), batch_size=batch_size)
    pred = [predictor.labels[i] for i in np.asarray(proba).argmax(axis=1)]
    metrics = classification_metrics(list(labels), pred, predictor.labels)
    metrics["truncated"] = int(np.sum(predictor.truncated(list(texts))))
    return metrics, pred, proba


def metrics_by_agreement(
    y_true: Sequence[str], y_pred: Sequence[str], agreement: Sequence[float]
) -> dict[str, dict[str, Any]]:
    """Accuracy and macro-F1 per annotator-agreement tier (PhraseBank folder sources).

    Keys name the tiers in percent (``agree_50``, ``agree_66``, ``agree_75``, ``agree_100``:
    no dots, which ``dvc metrics diff`` would read as nesting), each with ``accuracy``,
    ``macro_f1`` and ``n``. Where the annotators disagreed, the gold label is a majority vote
    and a model's "errors" are partly the annotators': this shows how much of the error sits
    in the low tiers.
    """
    true, pred, tier = np.asarray(y_true), np.asarray(y_pred), np.asarray(agreement, dtype=float)
    out = {}
    for level in sorted(set(tier.tolist())):
        keep = tier == level
        m = classification_metrics(true[keep].tolist(), pred[keep].tolist())
        out[f"agree_{round(level * 100)}"] = {
            "accuracy": m["accuracy"],
            "macro_f1": m["macro_f1"],
            "n": m["n"],
        }
    return out
