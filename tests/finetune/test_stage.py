"""The mine and finetune stages end to end on a tiny BERT trained on templates (stages/finetune.py)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from finslm.config import TransformerConfig
from finslm.predict import load_predictor
from stages.finetune import main
from tests.conftest import invented_sentences

pytestmark = pytest.mark.slow  # every test here trains transformers

# patience 0: no early stopping, so both arms spend exactly the planned budget.
TINY = {"seeds": [3, 4], "folds": 2, "mine_epochs": 1, "batch_size": 8, "lr": 5e-4, "threads": 1,
        "patience": 0}  # fmt: skip


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, tiny_checkpoint) -> Path:
    """A pipeline layout after prepare, train@minilm and explain: splits, model, analysis."""
    from finslm.explain.analysis import prediction_frame, recommendations
    from finslm.train.transformer import train_transformer

    root = tmp_path_factory.mktemp("finetune")
    df = pd.DataFrame(invented_sentences(10), columns=["text", "label"])
    df["line"] = np.arange(2, len(df) + 2)
    order = np.random.default_rng(0).permutation(len(df))
    parts = {"test": order[:12], "val": order[12:21], "train": order[21:]}
    (root / "data/prepared").mkdir(parents=True)
    for name, idx in parts.items():
        df.iloc[idx].reset_index(drop=True).to_parquet(root / f"data/prepared/{name}.parquet")
    # The trained tiny model's recipe (tests/conftest.py): the base model learns the templates.
    model = dict(checkpoint=str(tiny_checkpoint), epochs=3, batch_size=8, max_length=32, lr=1e-2,
                 pooling="mean", warmup_ratio=0.0)  # fmt: skip
    cfg = dataclasses.replace(TransformerConfig(), **model)
    train, val = (df.iloc[parts[n]] for n in ("train", "val"))
    train_transformer(cfg, train, val, root / "models/minilm", seed=1, threads=1)
    proba = load_predictor(root / "models/minilm").predict_proba(val.text.tolist())
    frame = prediction_frame(val.text, val.label, proba, ["negative", "neutral", "positive"])
    doc = recommendations(frame, [], ["negative", "neutral", "positive"], model="minilm",
                          backend="torch-fp32", token_method="lime")  # fmt: skip
    (root / "analysis").mkdir()
    (root / "analysis/minilm.json").write_text(json.dumps(doc))
    params = {"models": {"minilm": {"kind": "transformer", **model}}, "finetune": TINY}
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    assert main(["mine", "--params", str(root / "params.yaml"), "--root", str(root)]) == 0
    assert main(["run", "--params", str(root / "params.yaml"), "--root", str(root)]) == 0
    return root


def test_mining_file_and_counts(workdir: Path):
    mining = pd.read_csv(workdir / "analysis/minilm-mining.csv")
    train = pd.read_parquet(workdir / "data/prepared/train.parquet")
    assert mining["line"].tolist() == train["line"].tolist()
    counts = json.loads((workdir / "metrics/finetune-mining.json").read_text())
    assert counts["n_train"] == len(train) and counts["folds"] == 2
    assert counts["flags"]["misclassified"] == int((mining["oof_pred"] != mining["label"]).sum())
    focus = pd.read_csv(workdir / "analysis/minilm-focus.csv")
    assert focus["line"].tolist() == train["line"].tolist() and "weight" in focus


def test_targeted_model_loads_like_every_model(workdir: Path):
    out = workdir / "models/minilm-targeted"
    predictor = load_predictor(out)
    assert predictor.backend == "torch-fp32" and predictor.name == "minilm-targeted/torch-fp32"
    assert predictor.meta["recipe"] == "targeted" and predictor.meta["seed"] == 3
    assert predictor.meta["base_model"] == "minilm" and predictor.meta["params"] > 0
    assert len(predictor.predict(["Net profit rose 9 percent on strong demand."])) == 1
    # The evaluate stage's format, from the saved folder.
    ev = json.loads((workdir / "metrics/eval/minilm-targeted.json").read_text())
    test = pd.read_parquet(workdir / "data/prepared/test.parquet")
    assert ev["test"]["n"] == len(test)
    first = json.loads((workdir / "metrics/finetune.json").read_text())["per_seed"]["3"]
    # The saved model is seed 3's targeted arm: the evaluate stage scores what the ablation did.
    for split in ("val", "test"):
        assert ev[split]["accuracy"] == pytest.approx(first["targeted"][split]["accuracy"])
    assert ev["test"]["accuracy"] >= 0.9  # continued from a base that learned the templates


def test_ablation_metrics(workdir: Path):
    m = json.loads((workdir / "metrics/finetune.json").read_text())
    assert m["seeds"] == [3, 4] and set(m["per_seed"]) == {"3", "4"}
    assert "seed" in m["varies_with_seed"] and m["targeted_model"] == "minilm-targeted"
    for split in ("val", "test"):
        block = m["summary"][split]
        for arm in ("base", "control", "targeted"):
            assert block[arm]["macro_f1"]["n"] == 2
            assert block[arm]["accuracy"]["mean"] >= 0.9, (split, arm)
        assert block["base"]["accuracy"]["std"] == 0.0  # one base model for every seed
        delta = [
            m["per_seed"][s]["targeted"][split]["macro_f1"]
            - m["per_seed"][s]["control"][split]["macro_f1"]
            for s in ("3", "4")
        ]
        assert block["targeted_minus_control"]["macro_f1"]["mean"] == pytest.approx(
            np.mean(delta), abs=1e-4
        )
    for seed in ("3", "4"):
        row = m["per_seed"][seed]
        t, c = row["targeted"]["training"], row["control"]["training"]
        # The same budget for both arms, spent in full (no early stopping with patience 0).
        assert not t["stopped_early"] and not c["stopped_early"]
        assert t["optimizer_steps"] == c["optimizer_steps"] == row["plan"]["optimizer_steps"]
        assert t["examples_seen"] == c["examples_seen"] == row["plan"]["examples"]
    base = m["summary"]["test"]["base"]["accuracy"]["mean"]
    assert m["base"]["test"]["accuracy"] == pytest.approx(base)


def test_stage_stops_on_a_leak(workdir: Path, capsys):
    """A training sentence that is also in test (after normalisation) fails the stage."""
    test_path = workdir / "data/prepared/test.parquet"
    original = pd.read_parquet(test_path)
    train = pd.read_parquet(workdir / "data/prepared/train.parquet")
    leaked = original.copy()
    leaked.loc[0, "text"] = train["text"].iloc[0].upper()
    leaked.to_parquet(test_path)
    try:
        assert main(["run", "--params", str(workdir / "params.yaml"), "--root", str(workdir)]) == 1
    finally:
        original.to_parquet(test_path)
    err = capsys.readouterr().err
    # Every arm is guarded before anything trains or the previous output is removed.
    assert (workdir / "models/minilm-targeted/finslm.json").is_file()
    assert "leak: the training data of minilm-targeted (seed 3)" in err and "1 test sentence" in err
