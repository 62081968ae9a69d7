"""finslm cv and ablate --cv: stratified folds of train + val, the ablation format, never test."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from finslm.ablation import run_ablation, table
from finslm.cli import app
from finslm.config import ConfigError
from finslm.cv import fold_indices, folds, t_interval
from tests.conftest import invented_sentences

runner = CliRunner()


def make_workspace(root, checkpoint) -> None:
    """prepared/{train,val}.parquet of invented sentences, and no test split at all: a command
    that opened test.parquet would fail here."""
    df = pd.DataFrame(invented_sentences(6), columns=["text", "label"])
    df["line"] = range(1, len(df) + 1)
    prepared = root / "prepared"
    prepared.mkdir()
    df.iloc[1::3].to_parquet(prepared / "val.parquet")
    df.iloc[[i for i in range(len(df)) if i % 3 != 1]].to_parquet(prepared / "train.parquet")
    params = {
        "models": {
            "minilm": {
                "kind": "transformer",
                "checkpoint": str(checkpoint),
                "epochs": 2,
                "batch_size": 8,
                "lr": 5e-4,
                "max_length": 32,
                "early_stopping_patience": 1,
            },
            "tfidf": {"kind": "tfidf"},
        }
    }
    (root / "params.yaml").write_text(yaml.safe_dump(params))


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, tiny_checkpoint):
    root = tmp_path_factory.mktemp("cv")
    make_workspace(root, tiny_checkpoint)
    return root


def _cli(workspace, *args):
    common = ["--params", workspace / "params.yaml", "--prepared", workspace / "prepared"]
    return runner.invoke(app, [*map(str, args), *map(str, common)])


def test_folds_are_stratified_disjoint_and_cover_train_plus_val():
    labels = ["negative"] * 9 + ["neutral"] * 12 + ["positive"] * 6
    parts = fold_indices(labels, 3, seed=1)
    held = [i for _, ho in parts for i in ho]
    assert sorted(held) == list(range(len(labels)))  # every row held out exactly once
    for train, ho in parts:
        assert not set(train) & set(ho)
        assert sorted(labels[i] for i in ho).count("positive") == 2  # 6 / 3 per fold
    assert parts == fold_indices(labels, 3, seed=1)  # same seed, same folds
    assert parts != fold_indices(labels, 3, seed=2)
    with pytest.raises(ConfigError, match="class 'positive' has only 6 .*at most 6 folds"):
        fold_indices(labels, 7, seed=1)

    train = pd.DataFrame({"text": ["a", "b", "c", "d"], "label": ["x", "y", "x", "y"]})
    val = pd.DataFrame({"text": ["e", "f"], "label": ["x", "y"]})
    pieces = folds(train, val, 2, seed=0)
    assert sorted(t for _, ho in pieces for t in ho.text) == list("abcdef")
    for fit, held_out in pieces:  # a fold never trains on the rows it is scored on
        assert not set(fit.text) & set(held_out.text)
        assert sorted([*fit.text, *held_out.text]) == list("abcdef")


def test_t_interval():
    assert t_interval([0.8]) is None
    low, high = t_interval([0.8, 0.82, 0.84])
    # mean 0.82, s = 0.02, t(0.975, 2) = 4.303: half-width 0.0497
    assert low == pytest.approx(0.82 - 0.0497, abs=1e-3) and high == pytest.approx(0.8697, abs=1e-3)


def test_cv_tfidf_writes_folds_in_the_ablation_format_without_a_test_split(workspace):
    assert not (workspace / "prepared" / "test.parquet").exists()
    out = workspace / "cvout"
    result = _cli(workspace, "cv", "tfidf", "--folds", 3, "--out", out)
    assert result.exit_code == 0, result.output
    assert "fold 2: accuracy" in result.output and "95% CI" in result.output
    assert "held out)" in result.output and "epochs" not in result.output  # one fit, no epochs
    saved = json.loads((out / "tfidf-cv3.json").read_text())
    assert saved["cv"] == {"folds": 3, "seed": 42, "train_seed": 42}
    assert set(saved["per_seed"]) == {"0", "1", "2"}
    n_pool = sum(
        len(pd.read_parquet(workspace / "prepared" / f"{s}.parquet")) for s in ("train", "val")
    )
    assert sum(r["val"]["n"] for r in saved["per_seed"].values()) == n_pool
    assert all("test" not in r for r in saved["per_seed"].values())
    summary = saved["summary"]
    assert set(summary) == {"val"}
    f1 = [r["val"]["macro_f1"] for r in saved["per_seed"].values()]
    assert summary["val"]["macro_f1"]["mean"] == pytest.approx(np.mean(f1), abs=1e-4)
    assert summary["val"]["macro_f1"]["ci95"] == t_interval(f1)
    assert (out / "tfidf-cv3" / "fold0.npz").exists()

    # A lever paired fold by fold on the same folds; the table has no test columns.
    lever = _cli(workspace, "cv", "tfidf", "-k", 3, "--set", "C=0.05", "--name", "lowC",
                 "--baseline", "tfidf-cv3", "--out", out)  # fmt: skip
    assert lever.exit_code == 0, lever.output
    diff = json.loads((out / "lowC.json").read_text())["vs_baseline"]
    assert diff["seeds"] == [0, 1, 2] and diff["val"]["macro_f1"]["n"] == 3
    assert set(diff) == {"seeds", "soup_size", "val"}
    md = table(out, ["tfidf-cv3", "lowC"])
    assert "3 of 3 CV folds" in md and "| — |" in md
    assert all(row.endswith(" — |") for row in md.splitlines()[2:])  # TF-IDF: no s/epoch

    # Other folds (or seeds) are not paired with these.
    other = _cli(workspace, "cv", "tfidf", "-k", 3, "--cv-seed", 7, "--name", "x",
                 "--baseline", "tfidf-cv3", "--out", out)  # fmt: skip
    assert other.exit_code == 2 and "same seeds or the same folds" in other.output


def test_ablate_cv_refuses_several_seeds_and_resumes(workspace):
    out = workspace / "ablout"
    kw = dict(params_path=workspace / "params.yaml", prepared=workspace / "prepared", out=out)
    with pytest.raises(ConfigError, match="one training seed"):
        run_ablation("t", {}, [1, 2], model="tfidf", cv=3, **kw)
    first = run_ablation("t", {}, [1], model="tfidf", cv=3, **kw)
    assert len(first["per_seed"]) == 3
    # Same name, same folds: kept, nothing retrained. Another folding under it: refused.
    assert run_ablation("t", {}, [1], model="tfidf", cv=3, **kw)["per_seed"] == first["per_seed"]
    with pytest.raises(ConfigError, match="folding"):
        run_ablation("t", {}, [1], model="tfidf", cv=2, **kw)


@pytest.mark.slow
def test_cv_and_ablate_cv_train_the_transformer_recipe(workspace):
    out = workspace / "cvmini"
    result = _cli(workspace, "cv", "minilm", "--folds", 3, "--out", out)
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "minilm-cv3.json").read_text())
    assert set(saved["per_seed"]) == {"0", "1", "2"}
    for row in saved["per_seed"].values():
        assert 1 <= row["best_epoch"] <= row["epochs"] <= 2
    # finslm ablate --cv K: the same folds, so it pairs with finslm cv's result.
    lever = runner.invoke(
        app,
        ["ablate", "ls", "--set", "label_smoothing=0.1", "--cv", "3", "--baseline",
         "minilm-cv3", "--out", str(out), "--params", str(workspace / "params.yaml"),
         "--prepared", str(workspace / "prepared")],
    )  # fmt: skip
    assert lever.exit_code == 0, lever.output
    assert "higher in" in lever.output
    assert json.loads((out / "ls.json").read_text())["vs_baseline"]["seeds"] == [0, 1, 2]
