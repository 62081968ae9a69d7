"""Model soups: weight averaging, the greedy rule on validation, and the saved folder."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from safetensors.numpy import load_file

from finslm.config import TransformerConfig
from finslm.models import ModelError
from finslm.predict import load_predictor
from finslm.train.soup import average, make_soup
from finslm.train.transformer import train_transformer
from tests.conftest import TINY_BERT, invented_sentences

pytestmark = pytest.mark.slow  # every test here trains transformers


def _cfg(checkpoint, **changes) -> TransformerConfig:
    tiny = dict(checkpoint=str(checkpoint), pooling="mean", batch_size=8, lr=5e-4, max_length=32)
    return dataclasses.replace(TransformerConfig(), **{**tiny, **changes})


@pytest.fixture(scope="module")
def ingredients(tmp_path_factory, tiny_checkpoint):
    df = pd.DataFrame(invented_sentences(8), columns=["text", "label"])
    val = df.iloc[::4]
    train = df.drop(val.index)
    cfg = _cfg(tiny_checkpoint, epochs=2)
    root = tmp_path_factory.mktemp("soup")
    dirs = []
    for seed in (1, 2, 3):
        out = root / f"seed{seed}"
        train_transformer(cfg, train, val, out, seed=seed, threads=1)
        dirs.append(out)
    return dirs, val


def test_average_is_the_elementwise_mean(ingredients, tmp_path):
    dirs, _ = ingredients
    soup = average(dirs[:2])
    a, b = (load_file(d / "model.safetensors") for d in dirs[:2])
    key = next(k for k in a if k.endswith("query.weight"))
    assert not np.allclose(a[key], b[key])
    assert np.allclose(soup[key], (a[key] + b[key]) / 2, atol=1e-7)
    same = average([dirs[0], dirs[0]])
    assert all(np.allclose(same[k], a[k]) for k in a)


def test_greedy_soup_never_scores_below_its_best_ingredient(ingredients, tmp_path):
    dirs, val = ingredients
    texts, labels = val.text.tolist(), val.label.tolist()
    result = make_soup(dirs, tmp_path / "soup", texts, labels, method="greedy")
    best = max(m["macro_f1"] for m in result["ingredients"].values())
    assert result["val"]["macro_f1"] >= best
    assert 1 <= len(result["kept"]) <= 3
    # The soup is an ordinary model folder: the predictor loads it and predicts every class.
    predictor = load_predictor(tmp_path / "soup")
    proba = predictor.predict_proba(texts)
    assert proba.shape == (len(texts), 3) and np.allclose(proba.sum(axis=1), 1, atol=1e-5)
    assert predictor.meta["soup"]["ingredients"] == result["kept"]
    uniform = make_soup(dirs, tmp_path / "uniform", texts, labels, method="uniform")
    assert len(uniform["kept"]) == 3


def test_other_architectures_and_folders_are_refused(ingredients, tmp_path):
    from transformers import BertConfig, BertForSequenceClassification

    dirs, _ = ingredients
    other = tmp_path / "wider"
    config = BertConfig(vocab_size=30522, **{**TINY_BERT, "intermediate_size": 128}, num_labels=3)
    BertForSequenceClassification(config).save_pretrained(other)
    with pytest.raises(ModelError, match="wider: another architecture"):
        average([dirs[0], other])
    with pytest.raises(ModelError, match="needs config.json"):
        average([tmp_path])
    with pytest.raises(ModelError, match="uniform or greedy"):
        make_soup(dirs, tmp_path / "x", ["a"], ["neutral"], method="best")


def test_cli_writes_a_soup_and_names_bad_input(ingredients, tmp_path):
    from typer.testing import CliRunner

    from finslm.cli import app

    dirs, val = ingredients
    val_path = tmp_path / "val.parquet"
    val.assign(line=range(len(val))).to_parquet(val_path)
    runner = CliRunner()
    result = runner.invoke(
        app, ["soup", str(tmp_path / "s"), *map(str, dirs), "--val", str(val_path)]
    )
    assert result.exit_code == 0, result.output
    assert "ingredients, val accuracy" in result.output
    assert (tmp_path / "s" / "model.safetensors").is_file()
    result = runner.invoke(
        app, ["soup", str(tmp_path / "t"), str(tmp_path), "--val", str(val_path)]
    )
    assert result.exit_code == 2 and "not a finslm model folder" in result.output
    # A wrong ingredient is named before the (here missing) validation split is read.
    result = runner.invoke(
        app, ["soup", str(tmp_path / "t"), str(tmp_path), "--val", "none.parquet"]
    )
    assert result.exit_code == 2 and f"{tmp_path}: not a finslm model folder" in result.output


def test_train_soup_trains_consecutive_seeds_and_saves_their_average(tmp_path, tiny_checkpoint):
    from finslm.train.soup import train_soup

    df = pd.DataFrame(invented_sentences(6), columns=["text", "label"])
    val = df.iloc[::4]
    cfg = _cfg(tiny_checkpoint, epochs=1, soup_size=2)
    summary = train_soup(cfg, df.drop(val.index), val, tmp_path / "soup", seed=7, threads=1)
    ingredients = summary["soup"]["ingredients"]
    assert [i["seed"] for i in ingredients] == [7, 8] and all(i["kept"] for i in ingredients)
    assert summary["epochs"] == 2 and summary["soup"]["method"] == "uniform"
    # The seed-7 ingredient is what train_transformer makes with seed 7: the soup averages it.
    train_transformer(cfg, df.drop(val.index), val, tmp_path / "seven", seed=7, threads=1)
    train_transformer(cfg, df.drop(val.index), val, tmp_path / "eight", seed=8, threads=1)
    soup = load_file(tmp_path / "soup" / "model.safetensors")
    expected = average([tmp_path / "seven", tmp_path / "eight"])
    assert all(np.allclose(soup[k], expected[k], atol=1e-6) for k in soup)
    predictor = load_predictor(tmp_path / "soup")
    proba = predictor.predict_proba(val.text.tolist())
    acc = np.mean(np.array(predictor.labels)[proba.argmax(axis=1)] == val.label.to_numpy())
    assert acc == pytest.approx(summary["val"]["accuracy"], abs=1e-4)
    assert predictor.meta["soup"]["method"] == "uniform"
    # Named by seed, not by the temporary folder they trained in: same seeds, same folder bytes.
    assert sorted(predictor.meta["soup"]["ingredients"]) == ["seed7", "seed8"]
