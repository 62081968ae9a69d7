"""Training: determinism, best-epoch restore, class weights, the baseline, the saved folder."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from safetensors.numpy import load_file

from finslm.config import TfidfConfig, TransformerConfig
from finslm.predict import load_predictor
from finslm.training import class_weights, train_tfidf, train_transformer
from tests.conftest import invented_sentences


@pytest.fixture(scope="module")
def splits():
    df = pd.DataFrame(invented_sentences(8), columns=["text", "label"])
    val = df.iloc[::4]
    return df.drop(val.index), val


def test_class_weights_are_inverse_frequency_with_mean_one():
    labels = pd.Series(["neutral"] * 6 + ["positive"] * 3 + ["negative"] * 1)
    w = class_weights(labels)
    assert w[0] / w[1] == pytest.approx(6.0)  # negative is 6x rarer than neutral
    assert np.mean(w) == pytest.approx(1.0)


def test_tfidf_learns_templates_and_saves_a_predictor(tmp_path, splits):
    train, val = splits
    summary = train_tfidf(TfidfConfig(), train, val, tmp_path / "tfidf")
    assert summary["val"]["accuracy"] == 1.0
    predictor = load_predictor(tmp_path / "tfidf")
    assert predictor.predict(["Net profit rose 99 percent on strong demand."]) == ["positive"]
    assert summary["params"] == predictor.meta["params"] > 0


def _tiny_cfg(checkpoint) -> TransformerConfig:
    return dataclasses.replace(
        TransformerConfig(),
        checkpoint=str(checkpoint),
        epochs=2,
        batch_size=8,
        lr=5e-4,
        max_length=32,
        early_stopping_patience=1,
    )


def test_transformer_training_is_deterministic_and_loadable(tmp_path, splits, tiny_checkpoint):
    train, val = splits
    cfg = _tiny_cfg(tiny_checkpoint)
    a = train_transformer(cfg, train, val, tmp_path / "a", seed=7, threads=1)
    b = train_transformer(cfg, train, val, tmp_path / "b", seed=7, threads=1)
    wa = load_file(tmp_path / "a/model.safetensors")
    wb = load_file(tmp_path / "b/model.safetensors")
    assert wa.keys() == wb.keys()
    assert all(np.array_equal(wa[k], wb[k]) for k in wa)
    assert a["val"] == b["val"]
    assert 1 <= a["best_epoch"] <= a["epochs"] <= 2
    predictor = load_predictor(tmp_path / "a")
    proba = predictor.predict_proba(val.text.tolist())
    assert proba.shape == (len(val), 3)
    assert np.allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    # The saved model is the restored best epoch: its val accuracy is what the summary reports.
    acc = np.mean([predictor.labels[i] for i in proba.argmax(axis=1)] == val.label.to_numpy())
    assert acc == pytest.approx(a["val"]["accuracy"], abs=1e-4)


def test_class_weighted_loss_trains(tmp_path, splits, tiny_checkpoint):
    train, val = splits
    cfg = dataclasses.replace(
        _tiny_cfg(tiny_checkpoint), class_weights=True, label_smoothing=0.1, epochs=1
    )
    summary = train_transformer(cfg, train, val, tmp_path / "w", seed=1, threads=1)
    assert summary["epochs"] == 1 and 0.0 <= summary["val"]["macro_f1"] <= 1.0
