"""Recipe ablation runner: overrides validated, seeds trained and resumed, paired differences."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from safetensors.numpy import load_file

from finslm.ablation import paired, parse_overrides, run_ablation, table
from finslm.config import ConfigError
from tests.conftest import invented_sentences


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, tiny_checkpoint):
    root = tmp_path_factory.mktemp("ablation")
    df = pd.DataFrame(invented_sentences(6), columns=["text", "label"])
    df["line"] = range(1, len(df) + 1)  # prepare records each row's source line
    prepared = root / "prepared"
    prepared.mkdir()
    df.iloc[1::4].to_parquet(prepared / "val.parquet")
    df.iloc[3::4].to_parquet(prepared / "test.parquet")
    df.iloc[[i for i in range(len(df)) if i % 2 == 0]].to_parquet(prepared / "train.parquet")
    params = {
        "models": {
            "minilm": {
                "kind": "transformer",
                "checkpoint": str(tiny_checkpoint),
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
    return root


def _run(workspace, name, overrides, seeds, **kw):
    return run_ablation(
        name,
        overrides,
        seeds,
        params_path=workspace / "params.yaml",
        prepared=workspace / "prepared",
        out=workspace / "out",
        **kw,
    )


def test_parse_overrides_reads_yaml_values():
    assert parse_overrides(["rdrop_alpha=1.0", "pooling=mean", "class_weights=true"]) == {
        "rdrop_alpha": 1.0,
        "pooling": "mean",
        "class_weights": True,
    }
    with pytest.raises(ConfigError, match="expected key=value"):
        parse_overrides(["rdrop_alpha"])


def test_bad_override_fails_before_training_naming_the_key(workspace):
    with pytest.raises(ConfigError, match=r"models\.minilm\.pooling: got 'max'"):
        _run(workspace, "bad", {"pooling": "max"}, [1])
    with pytest.raises(ConfigError, match="unknown key"):
        _run(workspace, "bad", {"rdrop": 1.0}, [1])
    with pytest.raises(ConfigError, match="needs a transformer"):
        _run(workspace, "bad", {}, [1], model="tfidf")
    with pytest.raises(ConfigError, match="--baseline nothing: .*not found"):
        _run(workspace, "bad", {}, [1], baseline="nothing")
    assert not (workspace / "out" / "bad.json").exists()


@pytest.mark.slow  # trains a transformer
def test_seeds_train_evaluate_resume_and_compare(workspace):
    base = _run(workspace, "base", {}, [1, 2])
    assert set(base["per_seed"]) == {"1", "2"}
    run = base["per_seed"]["1"]
    assert run["val"]["n"] == run["test"]["n"] == 9
    assert 1 <= run["best_epoch"] <= run["epochs"] <= 2
    accs = [base["per_seed"][s]["val"]["accuracy"] for s in ("1", "2")]
    assert base["summary"]["val"]["accuracy"]["mean"] == pytest.approx(np.mean(accs), abs=1e-4)
    probs = np.load(workspace / "out" / "base" / "seed1.npz")
    assert probs["test"].shape == (9, 3)
    assert np.allclose(probs["test"].sum(axis=1), 1.0, atol=1e-5)
    # The stored probabilities are the evaluated model's: their argmax gives its accuracy.
    test = pd.read_parquet(workspace / "prepared" / "test.parquet")
    labels = np.array(["negative", "neutral", "positive"])[probs["test"].argmax(axis=1)]
    assert np.mean(labels == test.label.to_numpy()) == pytest.approx(
        run["test"]["accuracy"], abs=1e-4
    )

    # A lever on top, compared seed by seed with the baseline.
    lever = _run(workspace, "ls", {"label_smoothing": 0.1}, [1], baseline="base")
    diff = lever["vs_baseline"]
    assert diff["seeds"] == [1]
    expected = lever["per_seed"]["1"]["val"]["macro_f1"] - run["val"]["macro_f1"]
    assert diff["val"]["macro_f1"]["per_seed"] == [round(expected, 4)]
    saved = json.loads((workspace / "out" / "ls.json").read_text())
    assert saved["recipe"]["label_smoothing"] == 0.1 and saved["overrides"] == {
        "label_smoothing": 0.1
    }

    # Same name and recipe: measured seeds are kept (a resumed run trains only what is missing).
    again = _run(workspace, "base", {}, [1, 2])
    assert again["per_seed"] == base["per_seed"]
    # A file written before a knob existed: the missing key reads as its default (same recipe).
    path = workspace / "out" / "base.json"
    saved = json.loads(path.read_text())
    del saved["recipe"]["supcon_weight"]
    path.write_text(json.dumps(saved))
    assert _run(workspace, "base", {}, [1, 2])["per_seed"] == base["per_seed"]
    # Same name, another recipe: refused, nothing overwritten.
    with pytest.raises(ConfigError, match="another recipe"):
        _run(workspace, "base", {"lr": 1e-3}, [1])
    # Or another thread count (timings, and on some CPUs the numbers, depend on it).
    with pytest.raises(ConfigError, match="another recipe, thread count"):
        _run(workspace, "base", {}, [1, 2], threads=2)

    # The README table: one row per ablation, the lever and its paired difference named.
    rows = table(workspace / "out", ["base", "ls"]).splitlines()
    assert len(rows) == 4
    assert rows[2].startswith("| base: params.yaml | 1, 2 |")
    assert "`label_smoothing: 0.1`" in rows[3] and "vs base (" in rows[3]
    assert f"{lever['summary']['test']['accuracy']['mean']:.3f}" in rows[3]
    # Two seeds show their spread; one seed has none to show (no "± 0.000").
    assert rows[2].count(" ± ") == 4 and " ± " not in rows[3]


def test_cli_reports_bad_input_as_a_clear_error(workspace):
    from typer.testing import CliRunner

    from finslm.cli import app

    runner = CliRunner()
    args = ["--params", str(workspace / "params.yaml"), "--prepared", str(workspace / "prepared")]
    args += ["--out", str(workspace / "out")]
    result = runner.invoke(app, ["ablate", "x", "--set", "pooling=max", *args])
    assert result.exit_code == 2 and "models.minilm.pooling: got 'max'" in result.output
    # A check that needs the checkpoint (2 layers here) names the entry, not a line: the value
    # came from --set, not from the file.
    result = runner.invoke(app, ["ablate", "x", "--set", "freeze_layers=5", "--seeds", "1", *args])
    assert result.exit_code == 2, result.output
    assert "models.minilm.freeze_layers: " in result.output and "params.yaml:" not in result.output
    result = runner.invoke(app, ["ablate", "x", "--seeds", "-1", *args])
    assert result.exit_code == 2 and "--seeds '-1': -1 is not between 0 and 2**32" in result.output
    result = runner.invoke(app, ["ablate", "x", "--seeds", "42,42", *args])
    assert result.exit_code == 2 and "a seed given twice" in result.output
    result = runner.invoke(app, ["cv", "minilm", "--cv-seed", "-1", *args])
    assert result.exit_code == 2 and "--cv-seed" in result.output
    result = runner.invoke(app, ["ablate", "x", "--seeds", "4x", *args])
    assert result.exit_code == 2 and "--seeds '4x'" in result.output
    result = runner.invoke(app, ["ablate-table", "nope", "--out", str(workspace / "out")])
    assert result.exit_code == 2 and "no ablation result" in result.output


def test_table_writes_levers_as_params_yaml_does(tmp_path):
    stat = {"mean": 0.8, "std": 0.01, "n": 2}
    split = {"accuracy": stat, "macro_f1": stat}
    result = {
        "name": "freeze",
        "overrides": {"freeze_embeddings": True, "lr": 5e-05},
        "summary": {"val": split, "test": split},
        "per_seed": {"1": {"seconds_per_epoch": 10.0}, "2": {"seconds_per_epoch": 14.0}},
    }
    (tmp_path / "freeze.json").write_text(json.dumps(result))
    row = table(tmp_path, ["freeze"]).splitlines()[2]
    # A reader copies the lever into params.yaml: YAML's spelling, not Python's "True".
    assert row.startswith("| freeze: `freeze_embeddings: true`, `lr: 5e-05` | 1, 2 |")
    assert row.endswith("| — | 12 |")


def test_paired_needs_shared_seeds():
    row = {"val": {"accuracy": 0.8, "macro_f1": 0.7}, "test": {"accuracy": 0.8, "macro_f1": 0.7}}
    with pytest.raises(ConfigError, match="no seed in common"):
        paired({"1": row}, {"2": row})
    diff = paired({"1": row, "2": row}, {"1": row, "2": row})
    assert diff["test"]["accuracy"]["mean"] == 0.0 and diff["test"]["accuracy"]["higher_in"] == 0


def test_paired_soup_is_compared_with_the_mean_of_its_ingredient_seeds():
    def row(f1):
        return {"val": {"accuracy": f1, "macro_f1": f1}, "test": {"accuracy": f1, "macro_f1": f1}}

    base = {"1": row(0.70), "2": row(0.80), "3": row(0.90), "4": row(0.60)}
    # Soup at seed 1 averages seeds 1-3 (mean 0.80): +0.02, though seed 1 alone is 0.70; at seed
    # 2, seeds 2-4 (mean 0.767): −0.027, though seed 2 alone is 0.80. Seed 3
    # needs seed 5, which the baseline lacks, so it is left out rather than half-compared.
    diff = paired({"1": row(0.82), "2": row(0.74), "3": row(0.99)}, base, soup_size=3)
    assert diff["seeds"] == [1, 2]
    assert diff["val"]["macro_f1"]["per_seed"] == [0.02, round(0.74 - (0.8 + 0.9 + 0.6) / 3, 4)]
    assert diff["val"]["macro_f1"]["higher_in"] == 1
    with pytest.raises(ConfigError, match="a soup of 3 needs seeds s … s\\+2"):
        paired({"3": row(0.9)}, base, soup_size=3)


@pytest.mark.slow  # trains a transformer
def test_soup_ablation_averages_kept_models_instead_of_retraining(workspace):
    from finslm.train.soup import average

    models = workspace / "models"
    _run(workspace, "kept", {}, [1, 2], keep_models=models)
    soup = _run(
        workspace, "soup2", {"soup_size": 2}, [1], keep_models=models, ingredients_from="kept"
    )
    row = soup["per_seed"]["1"]
    assert row["epochs"] == sum(
        json.loads((workspace / "out" / "kept.json").read_text())["per_seed"][s]["epochs"]
        for s in ("1", "2")
    )
    weights = load_file(models / "soup2" / "seed1" / "model.safetensors")
    expected = average([models / "kept" / "seed1", models / "kept" / "seed2"])
    assert all(np.allclose(weights[k], expected[k], atol=1e-6) for k in weights)
    # Seed 2's soup would need seed 3, which was never trained: say which and how to get it.
    with pytest.raises(ConfigError, match="seed 3 is missing.*--seeds 3"):
        _run(workspace, "soup2", {"soup_size": 2}, [2], keep_models=models, ingredients_from="kept")
    # Ingredients of another recipe are not this soup's.
    with pytest.raises(ConfigError, match="not this one with soup_size 1"):
        _run(
            workspace,
            "soup2ls",
            {"soup_size": 2, "label_smoothing": 0.1},
            [1],
            keep_models=models,
            ingredients_from="kept",
        )


def test_ablate_on_the_sample_says_the_quick_profile_applies(tmp_path, caplog):
    # ablate reads params as dvc repro does: on the embedded sample the quick overlay applies.
    with caplog.at_level("WARNING", logger="finslm"), pytest.raises(ConfigError):
        run_ablation("x", {}, [42], params_path="params.yaml", prepared=tmp_path / "none")
    assert "the quick profile is in force" in caplog.text and "data.profile: full" in caplog.text


def test_table_of_nothing_or_of_other_json_is_an_error_naming_the_file(tmp_path):
    with pytest.raises(ConfigError, match="no ablation results"):
        table(tmp_path)
    (tmp_path / "data.json").write_text('{"rows_in": 3}')
    with pytest.raises(ConfigError, match=r"data.json: not a finslm ablate result \(no name"):
        table(tmp_path)
    (tmp_path / "data.json").write_text("{oops")
    with pytest.raises(ConfigError, match=r"data.json: not a readable JSON file"):
        table(tmp_path)


def test_with_overrides_does_not_mutate_the_entry():
    """A dotted override (lora.r=8) changes a copy: the caller's entry (the baseline, the next
    run) keeps its value."""
    from finslm.ablation import with_overrides

    entry = {"kind": "transformer", "lora": {"r": 4, "alpha": 8.0}}
    out = with_overrides(entry, {"lora.r": 8})
    assert out["lora"] == {"r": 8, "alpha": 8.0}
    assert entry["lora"] == {"r": 4, "alpha": 8.0}


def test_mean_std_is_the_sample_standard_deviation():
    """Seeds' spread is the sample standard deviation (n - 1)."""
    from finslm.ablation import mean_std

    assert mean_std([1.0, 2.0, 3.0]) == {"mean": 2.0, "std": 1.0, "n": 3}
