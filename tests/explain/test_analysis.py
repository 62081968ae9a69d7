"""Error analysis and the recommendations file: sampling, calibration, threshold, schema."""

from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest

from finslm.explain.analysis import (
    SchemaError,
    calibration,
    confidence_threshold,
    confusion_pairs,
    load_schema,
    prediction_frame,
    recommendations,
    stratified_sample,
    target_classes,
    token_patterns,
    validate_recommendations,
)
from finslm.labels import LABELS


def _frame(rows):
    """rows: (text, true, predicted, confidence)."""
    proba = []
    for _, _, pred, conf in rows:
        p = np.full(3, (1 - conf) / 2)
        p[LABELS.index(pred)] = conf
        proba.append(p)
    return prediction_frame([r[0] for r in rows], [r[1] for r in rows], np.array(proba), LABELS)


@pytest.fixture
def frame():
    rows = []
    for i in range(30):
        rows.append((f"Net sales rose {i} percent.", "positive", "positive", 0.9))
        rows.append((f"The meeting is on {i} May.", "neutral", "neutral", 0.95))
    for i in range(10):
        rows.append((f"Operating loss widened by {i} percent.", "negative", "negative", 0.8))
    for i in range(4):  # neutral sentences that "rose" tips to positive
        rows.append((f"Headcount rose to {i} people.", "neutral", "positive", 0.6))
    rows.append(("The firm cut 5 jobs.", "negative", "neutral", 0.5))
    return _frame(rows)


def test_prediction_frame_columns(frame):
    assert list(frame.columns[:5]) == ["text", "label", "predicted", "confidence", "correct"]
    assert frame["correct"].sum() == 70 and len(frame) == 75


def test_stratified_sample_takes_every_error_and_fills_the_rest(frame):
    sample = stratified_sample(frame, 20, seed=1)
    assert len(sample) == 20
    counts = sample["stratum"].value_counts().to_dict()
    # 5 strata; errors (4 + 1) are all taken; the 15 left are shared by the three correct strata.
    assert counts["neutral/error"] == 4 and counts["negative/error"] == 1
    assert (
        counts["positive/correct"] == counts["neutral/correct"] == counts["negative/correct"] == 5
    )
    assert sample.index.is_unique
    pd.testing.assert_frame_equal(sample, stratified_sample(frame, 20, seed=1))
    assert len(stratified_sample(frame, 500, seed=1)) == len(frame)


def test_confusion_pairs(frame):
    assert confusion_pairs(frame) == [
        {"true": "neutral", "predicted": "positive", "count": 4, "rate": round(4 / 34, 4)},
        {"true": "negative", "predicted": "neutral", "count": 1, "rate": round(1 / 11, 4)},
    ]


def test_calibration_by_hand():
    conf = np.array([0.95, 0.95, 0.95, 0.95, 0.55, 0.55])
    correct = np.array([True, True, True, False, True, False])
    cal = calibration(conf, correct, n_bins=10)
    # bin (0.9, 1]: acc 0.75 vs conf 0.95 -> gap 0.2, weight 4/6; bin (0.5, 0.6]: 0.5 vs 0.55.
    assert cal["ece"] == pytest.approx(4 / 6 * 0.2 + 2 / 6 * 0.05, abs=1e-4)
    assert cal["mce"] == pytest.approx(0.2)
    filled = [b for b in cal["bins"] if b["count"]]
    assert [(b["lower"], b["count"], b["accuracy"]) for b in filled] == [
        (0.5, 2, 0.5),
        (0.9, 4, 0.75),
    ]
    perfect = calibration(np.array([1.0, 1.0]), np.array([True, True]), 5)
    assert perfect["ece"] == 0 and perfect["bins"][-1]["count"] == 2


def test_confidence_threshold_maximises_coverage_at_the_target():
    conf = np.array([0.99, 0.9, 0.8, 0.7, 0.6, 0.5])
    correct = np.array([True, True, True, False, True, False])
    t = confidence_threshold(conf, correct, 0.75)
    # Top 5 have accuracy 0.8 >= 0.75; all 6 have 0.667.
    assert t["value"] == 0.6 and t["coverage"] == pytest.approx(5 / 6, abs=1e-4)
    assert t["accuracy_above"] == 0.8 and t["accuracy_below"] == 0.0 and t["n_below"] == 1
    strict = confidence_threshold(conf, correct, 1.0)
    assert strict["value"] == 0.8 and strict["n_below"] == 3
    none = confidence_threshold(np.array([0.9]), np.array([False]), 0.5)
    assert none["value"] == 1.0 and none["coverage"] == 0.0


def _records(frame):
    """Explanation records in which "rose" pushes the neutral->positive errors."""
    out = []
    for _, row in frame[~frame["correct"]].iterrows():
        words = row["text"].rstrip(".").split() + ["."]
        values = [0.9 if w == "rose" else 0.05 for w in words]
        out.append(
            {"words": words, "label": row["label"], "predicted": row["predicted"],
             "attributions": {"shap": values}}
        )  # fmt: skip
    row = frame.iloc[0]  # a correct sentence with "rose"
    words = row["text"].rstrip(".").split() + ["."]
    out.append({"words": words, "label": row["label"], "predicted": row["predicted"],
                "attributions": {"shap": [0.2] * len(words)}})  # fmt: skip
    return out


def test_token_patterns_name_the_word_behind_the_errors(frame):
    records = _records(frame)
    # "percent" pushes two explained errors hard, but validation sentences with it are all
    # right: attribution without association, so it is not a pattern.
    for _ in range(2):
        records.append({"words": ["Sales", "up", "percent"], "label": "neutral",
                        "predicted": "positive", "attributions": {"shap": [0.0, 0.0, 1.0]}})  # fmt: skip
    patterns = token_patterns(records, "shap", frame, top_n=5, min_errors=2)
    assert "percent" not in {p["token"] for p in patterns}
    top = patterns[0]
    assert top["token"] == "rose"
    assert top["errors"] == 4 and top["correct"] == 1
    assert top["pairs"] == [{"true": "neutral", "predicted": "positive", "count": 4}]
    assert top["val_sentences"] == 34 and top["val_error_rate"] == pytest.approx(4 / 34, abs=1e-4)
    assert "." not in {p["token"] for p in patterns}  # punctuation is never a pattern


def test_recommendations_validate_against_the_schema(frame):
    rec = recommendations(
        frame, _records(frame), LABELS, model="minilm", backend="onnx-int8", token_method="shap",
        target_accuracy=0.95, max_examples=3,
    )  # fmt: skip
    validate_recommendations(rec)
    json.dumps(rec)  # plain JSON types only
    # F1: neutral 0.923, positive 0.9375 < macro 0.9377 < negative 0.952; worst first.
    assert [t["label"] for t in rec["target_classes"]] == ["neutral", "positive"]
    assert rec["confidence_threshold"]["value"] == 0.8  # the 0.6 and 0.5 errors fall below
    assert rec["confusions"][0]["true"] == "neutral"
    assert rec["misclassified"][0]["confidence"] == 0.6
    assert rec["low_confidence"][0]["confidence"] == 0.5
    assert rec["split"] == "val"
    assert set(load_schema()["required"]) == set(rec)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("confidence_threshold", "value"), 1.5, "> maximum"),
        (("split",), "test", "is not one of"),
        (("n",), "75", "expected integer"),
        (("token_method",), "grad-cam", "is not one of"),
        (("confusions", 0, "true"), "bullish", "not in $.labels"),
        (("metrics", "extra"), 1, "unexpected key"),
    ],
)
def test_schema_rejects_bad_documents(frame, path, value, message):
    rec = recommendations(
        frame, _records(frame), LABELS, model="m", backend="torch-fp32", token_method="shap"
    )
    bad = copy.deepcopy(rec)
    target = bad
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(SchemaError, match=message.replace("$", r"\$")):
        validate_recommendations(bad)
    del bad["calibration"]
    with pytest.raises(SchemaError, match="missing required key 'calibration'"):
        validate_recommendations(bad)


def _per_class(f1: float) -> dict:
    return {"f1": f1, "precision": f1, "recall": f1, "support": 10}


def test_no_target_class_when_every_class_equals_the_macro_f1():
    """A class is a target only when its F1 is below the macro-F1, not equal to it."""
    metrics = {"macro_f1": 1.0, "per_class": {label: _per_class(1.0) for label in LABELS}}
    assert target_classes(metrics) == []


def test_target_class_weight_is_capped_at_3():
    """A class far below the macro-F1 gets the documented maximum weight, 3, not more."""
    metrics = {
        "macro_f1": 0.6,
        "per_class": {
            "negative": _per_class(0.1),
            "neutral": _per_class(0.85),
            "positive": _per_class(0.85),
        },
    }
    targets = target_classes(metrics)
    assert [t["label"] for t in targets] == ["negative"] and targets[0]["weight"] == 3.0


def test_calibration_puts_a_confidence_on_a_bin_edge_in_the_bin_it_closes():
    """Bins are (lower, upper]: 0.5 belongs to 0.4-0.5 and 0.8 to 0.7-0.8."""
    cal = calibration(np.array([0.5, 0.8]), np.array([True, False]), 10)
    assert [b["lower"] for b in cal["bins"] if b["count"]] == [0.4, 0.7]


def _error_frame(texts: list[str], correct: list[bool]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "text": texts,
            "label": "neutral",
            "predicted": ["neutral" if ok else "positive" for ok in correct],
            "correct": correct,
        }
    )


def test_token_patterns_skip_stop_words():
    """ "the" carries half of every error's attribution but is a stop word: only "loss" (in 4
    of 4 errors, against a 40% error rate) is reported."""
    frame = _error_frame(["the loss widened"] * 4 + ["sales grew"] * 6, [False] * 4 + [True] * 6)
    records = [
        {
            "words": ["the", "loss", "widened"],
            "label": "neutral",
            "predicted": "positive",
            "attributions": {"shap": [0.5, 0.3, 0.2]},
        }
    ] * 4
    tokens = {p["token"] for p in token_patterns(records, "shap", frame, min_errors=2)}
    assert "loss" in tokens and "the" not in tokens


def test_token_patterns_need_an_error_rate_one_standard_error_above_the_base():
    """ "margin": 5 errors in 20 sentences (25%) against a 20% base rate is within one standard
    error (0.089) of it, so it is not a pattern however strongly it is attributed."""
    texts = ["margin up"] * 5 + ["margin flat"] * 15 + ["x"] * 15 + ["y"] * 65
    correct = [False] * 5 + [True] * 15 + [False] * 15 + [True] * 65
    records = [
        {
            "words": ["margin", "up"],
            "label": "neutral",
            "predicted": "positive",
            "attributions": {"shap": [1.0, 0.0]},
        }
    ] * 5
    assert token_patterns(records, "shap", _error_frame(texts, correct), min_errors=2) == []


def test_misclassified_examples_are_the_most_confident_errors_first():
    proba = np.array([[0.1, 0.6, 0.3], [0.05, 0.05, 0.9], [0.8, 0.1, 0.1], [0.1, 0.1, 0.8]])
    frame = prediction_frame(
        ["a", "b", "c", "d"], ["negative", "neutral", "negative", "positive"], proba, LABELS
    )
    rec = recommendations(frame, [], LABELS, model="m", backend="b", token_method="shap")
    assert [e["confidence"] for e in rec["misclassified"]] == [0.9, 0.6]


def test_a_class_without_validation_rows_is_never_a_target():
    """A class no validation row drew has F1 0 with support 0: nothing to target."""
    metrics = {
        "macro_f1": 0.7,
        "per_class": {
            "negative": _per_class(0.9),
            "neutral": {**_per_class(0.0), "support": 0},
            "positive": _per_class(0.5),
        },
    }
    assert [t["label"] for t in target_classes(metrics)] == ["positive"]
