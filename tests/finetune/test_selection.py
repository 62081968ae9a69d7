"""Selection, weights, the focus pool, augmentation and reading the explain analysis."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from finslm.config import FinetuneConfig
from finslm.data import DataError
from finslm.finetune.augment import dropout_copy, synonym_copy
from finslm.finetune.selection import Targets, focus_pool, load_targets, sample_weights, select


def _frame(n=100, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    labels = np.array(["neutral"] * 60 + ["positive"] * 25 + ["negative"] * 15)[:n]
    p = rng.uniform(0.2, 1.0, size=n)
    pred = np.where(p < 0.4, "positive", labels)
    return pd.DataFrame(
        {
            "text": [f"s{i}" for i in range(n)],
            "label": labels,
            "oof_pred": pred,
            "oof_p_gold": p,
            "carto_variability": rng.uniform(0, 0.3, size=n),
            "misclassified": pred != labels,
            "low_confidence": p < 0.6,
            "ambiguous": rng.uniform(size=n) < 0.1,
            "hard_to_learn": False,
        }
    )


def test_hard_set_is_capped_and_ranked_by_score():
    frame = _frame()
    cfg = dataclasses.replace(FinetuneConfig(), max_hard_share=0.2)
    out = select(frame, Targets(), cfg)
    assert out["hard"].sum() == 20 <= out["candidate"].sum()
    assert (
        out.loc[out["hard"], "score"].min()
        >= out.loc[out["candidate"] & ~out["hard"], "score"].max()
    )


def test_target_confusions_and_classes_come_from_the_analysis():
    frame = _frame()
    targets = Targets(
        class_weights={"negative": 2.5}, confusions=frozenset({("neutral", "positive")})
    )
    out = select(frame, targets, FinetuneConfig())
    expected = (frame["label"] == "neutral") & (frame["oof_pred"] == "positive")
    assert (out["target_confusion"] == expected).all() and expected.any()
    assert (out["target_class"] == (frame["label"] == "negative")).all()
    # A target confusion adds 1 to the score (on top of the class weight's scaling).
    plain = select(frame, dataclasses.replace(targets, confusions=frozenset()), FinetuneConfig())
    assert np.allclose(out["score"] - plain["score"], expected.astype(float), atol=1e-5)


def test_weights_are_capped_with_mean_one():
    frame = _frame()
    hard = np.zeros(len(frame), dtype=bool)
    hard[:30] = True
    cfg = dataclasses.replace(FinetuneConfig(), hard_weight=2.0, weight_cap=3.0)
    targets = Targets(class_weights={"negative": 3.0})
    w = sample_weights(frame["label"], hard, targets, cfg)
    assert w.mean() == pytest.approx(1.0)
    raw = w / w.min()
    assert raw.max() == pytest.approx(3.0)  # 3 (class) x 2 (hard) capped at 3
    off = sample_weights(frame["label"], hard, targets, dataclasses.replace(cfg, class_focus=False))
    assert set(np.round(off / off.min(), 6)) == {1.0, 2.0}


def test_focus_pool_mixes_easy_samples_in_train_proportions():
    frame = _frame()
    frame["hard"] = False
    frame.loc[:19, "hard"] = True
    hard, easy = focus_pool(frame, 1.5, np.random.default_rng(0))
    assert len(hard) == 20 and len(easy) == 30
    assert not set(easy) & set(hard)
    shares = frame.loc[easy, "label"].value_counts(normalize=True)
    assert shares["neutral"] == pytest.approx(40 / 80, abs=0.1)
    assert len(focus_pool(frame, 0.0, np.random.default_rng(0))[1]) == 0


def test_synonym_and_dropout_copies_keep_numbers_and_direction():
    rng = np.random.default_rng(0)
    text = "Net sales rose 12% and the company said profit was strong."
    copies = {synonym_copy(text, 0.5, rng) for _ in range(20)}
    assert text not in copies and all("12%" in c for c in copies)
    assert synonym_copy("The meeting is on Monday.", 1.0, rng) is None
    for _ in range(20):
        c = dropout_copy(text, 0.3, rng)
        assert c != text and "12%" in c and "rose" in c


def test_load_targets_reads_and_checks_the_analysis(tmp_path):
    from finslm.explain.analysis import prediction_frame, recommendations

    labels = ["negative", "neutral", "positive"]
    y = ["negative", "neutral", "positive", "neutral", "positive", "negative"]
    proba = np.eye(3)[[0, 1, 1, 1, 2, 2]] * 0.8 + 0.2 / 3
    doc = recommendations(
        prediction_frame([f"t{i}" for i in range(6)], y, proba, labels),
        [],
        labels,
        model="minilm",
        backend="onnx-int8",
        token_method="lime",
    )
    path = tmp_path / "minilm.json"
    path.write_text(json.dumps(doc))
    targets = load_targets(path, "minilm")
    assert ("positive", "neutral") in targets.confusions
    assert set(targets.class_weights) == {c["label"] for c in doc["target_classes"]}
    with pytest.raises(DataError, match="not finetune.model 'other'"):
        load_targets(path, "other")
    path.write_text(json.dumps({**doc, "split": "test"}))
    with pytest.raises(DataError, match="not a valid analysis file"):
        load_targets(path, "minilm")
    with pytest.raises(DataError, match="run `dvc repro explain`"):
        load_targets(tmp_path / "missing.json", "minilm")


def test_hard_cap_rounds_down_and_easy_pool_is_exact():
    out = select(_frame(n=99), Targets(), dataclasses.replace(FinetuneConfig(), max_hard_share=0.2))
    assert out["hard"].sum() == 19  # floor(0.2 * 99)
    frame = _frame(n=100)
    frame["label"] = ["neutral", "positive", "negative"] * 33 + ["neutral"]
    frame["hard"] = False
    frame.loc[:1, "hard"] = True  # 2 hard, easy_ratio 1 -> 2 easy; per-label rounding gives 3
    hard, easy = focus_pool(frame, 1.0, np.random.default_rng(0))
    assert len(easy) == 2


def test_sample_weight_is_capped_relative_to_an_easy_sample():
    """A hard sample of a target class would weigh 2 (class) x 2 (hard) = 4; `weight_cap: 3`
    holds it at 3 times an easy, untargeted one."""
    cfg = dataclasses.replace(FinetuneConfig(), hard_weight=2.0, weight_cap=3.0, class_focus=True)
    weights = sample_weights(
        pd.Series(["negative", "neutral"]),
        np.array([True, False]),
        Targets(class_weights={"negative": 2.0}),
        cfg,
    )
    assert weights[0] / weights[1] == pytest.approx(3.0)
