"""Metric values on hand-checkable cases."""

from __future__ import annotations

import numpy as np
import pytest

from finslm.evaluation import classification_metrics, confusion_rows, evaluate_predictor
from finslm.labels import LABELS


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
    with pytest.raises(ValueError, match="argument 2 is longer than argument 1"):
        confusion_rows(["a"], ["a", "b"])


def test_metrics_by_agreement_splits_errors_by_tier():
    from finslm.evaluation import metrics_by_agreement

    true = ["positive", "neutral", "negative", "neutral", "positive", "neutral"]
    pred = ["positive", "neutral", "negative", "positive", "neutral", "neutral"]
    tiers = [1.0, 1.0, 1.0, 0.5, 0.5, 0.66]
    out = metrics_by_agreement(true, pred, tiers)
    assert list(out) == ["agree_50", "agree_66", "agree_100"]
    assert out["agree_100"] == {"accuracy": 1.0, "macro_f1": 1.0, "n": 3}
    assert out["agree_50"]["accuracy"] == 0.0 and out["agree_50"]["n"] == 2
    assert out["agree_66"]["accuracy"] == 1.0
    assert sum(v["n"] for v in out.values()) == len(true)


def test_evaluate_stage_reports_agreement_tiers_when_the_split_has_them(
    tmp_path, monkeypatch, tiny_tfidf
):
    import json
    import shutil

    import pandas as pd

    from tests.conftest import invented_sentences, load_stage

    rows = pd.DataFrame(invented_sentences(4), columns=["text", "label"])
    rows["line"] = range(1, len(rows) + 1)
    prepared = tmp_path / "data" / "prepared"
    prepared.mkdir(parents=True)
    rows.to_parquet(prepared / "val.parquet")  # no tiers: a CSV or single-file source
    rows.assign(agreement=[1.0, 0.5] * (len(rows) // 2)).to_parquet(prepared / "test.parquet")
    shutil.copytree(tiny_tfidf, tmp_path / "models" / "tfidf")
    monkeypatch.chdir(tmp_path)
    assert load_stage("evaluate").main(["tfidf", "--prepared", str(prepared)]) == 0
    result = json.loads((tmp_path / "metrics" / "eval" / "tfidf.json").read_text())
    assert "by_agreement" not in result["val"]
    tiers = result["test"]["by_agreement"]
    assert set(tiers) == {"agree_50", "agree_100"}
    assert tiers["agree_50"]["n"] + tiers["agree_100"]["n"] == result["test"]["n"]


def test_evaluate_stage_failure_leaves_no_stale_metrics(tmp_path, monkeypatch, tiny_tfidf):
    # Issue #26 item 8, for evaluate: last run's metrics must not survive a failed run.
    import shutil

    from tests.conftest import load_stage

    shutil.copytree(tiny_tfidf, tmp_path / "models" / "tfidf")
    stale = tmp_path / "metrics" / "eval" / "tfidf.json"
    stale.parent.mkdir(parents=True)
    stale.write_text("{}")
    monkeypatch.chdir(tmp_path)
    stage = load_stage("evaluate")
    # No prepared splits: one error line, status 1, and no stale metrics left behind.
    assert stage.main(["tfidf", "--prepared", str(tmp_path / "data" / "prepared")]) == 1
    assert not stale.exists()


def test_evaluation_counts_texts_the_model_read_only_in_part(tiny_export, tiny_tfidf):
    from finslm.evaluation import evaluate_predictor
    from finslm.predict import load_predictor

    texts = ["Sales fell.", "Orders rose. " * 100, "Profit rose."]
    labels = ["negative", "positive", "positive"]
    onnx = load_predictor(tiny_export[0], "onnx-fp32", threads=1)
    assert evaluate_predictor(onnx, texts, labels)[0]["truncated"] == 1
    assert evaluate_predictor(load_predictor(tiny_tfidf), texts, labels)[0]["truncated"] == 0


class _FixedPredictor:
    """Predicts negative, positive, positive for any three texts."""

    labels = list(LABELS)

    def predict_proba(self, texts, batch_size=32):
        return np.eye(3)[[0, 2, 2]]

    def truncated(self, texts):
        return np.zeros(len(texts), bool)


def test_evaluate_predictor_keeps_truth_and_prediction_apart():
    """Gold [neg, neg, pos] against predicted [neg, pos, pos]: negative has precision 1, recall
    0.5 and support 2 (the gold count). Swapping the two would leave accuracy and F1 unchanged
    but trade precision with recall and count support from the predictions."""
    metrics = evaluate_predictor(
        _FixedPredictor(), ["a", "b", "c"], ["negative", "negative", "positive"]
    )[0]
    negative, positive = metrics["per_class"]["negative"], metrics["per_class"]["positive"]
    assert (negative["precision"], negative["recall"], negative["support"]) == (1.0, 0.5, 2)
    assert (positive["precision"], positive["recall"], positive["support"]) == (0.5, 1.0, 1)


def test_macro_f1_averages_the_labels_present_in_gold():
    """A two-class dataset scored perfectly has macro-F1 1, not 2/3: the absent third label has
    no F1 to average; it is listed, and its per-class row keeps support 0."""
    m = classification_metrics(["positive", "negative"] * 3, ["positive", "negative"] * 3)
    assert m["macro_f1"] == 1.0 and m["absent_labels"] == ["neutral"]
    assert m["per_class"]["neutral"]["support"] == 0
    # A prediction of the absent label is still an error of the present ones.
    m = classification_metrics(["positive", "negative"], ["positive", "neutral"])
    assert m["macro_f1"] == pytest.approx((1.0 + 0.0) / 2) and m["accuracy"] == 0.5
    # Every label present: no absent_labels key, the usual three-class average.
    m = classification_metrics(LABELS, LABELS)
    assert "absent_labels" not in m and m["macro_f1"] == 1.0
