"""Metric values on hand-checkable cases."""

from __future__ import annotations

import pytest

from finslm.evaluation import classification_metrics, confusion_rows


def test_known_values():
    true = ["negative", "neutral", "neutral", "positive"]
    pred = ["negative", "neutral", "positive", "positive"]
    m = classification_metrics(true, pred)
    assert m["accuracy"] == 0.75
    # F1: negative 1, neutral 2/3, positive 2/3
    assert m["macro_f1"] == pytest.approx((1 + 2 / 3 + 2 / 3) / 3, abs=1e-4)
    assert m["per_class"]["neutral"] == {
        "precision": 1.0,
        "recall": 0.5,
        "f1": 0.6667,
        "support": 2,
    }
    assert m["per_class"]["positive"]["precision"] == 0.5
    assert m["n"] == 4


def test_absent_class_scores_zero_without_warning_noise():
    m = classification_metrics(["neutral", "neutral"], ["neutral", "neutral"])
    assert m["accuracy"] == 1.0
    assert m["per_class"]["negative"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}


def test_confusion_rows_pair_actual_and_predicted():
    assert confusion_rows(["a", "b"], ["b", "b"]) == [
        {"actual": "a", "predicted": "b"},
        {"actual": "b", "predicted": "b"},
    ]
    with pytest.raises(ValueError):
        confusion_rows(["a"], ["a", "b"])
