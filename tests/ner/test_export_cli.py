"""`finslm ner export`: any token classifier folder to ONNX with the pipeline's parity gate."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from finslm.cli import app

from ..conftest import invented_ner

runner = CliRunner()


def _prepared(tmp_path):
    prepared = tmp_path / "prepared-ner"
    prepared.mkdir()
    invented_ner(8, 3).to_parquet(prepared / "val.parquet")
    return prepared


def test_a_folder_ner_models_does_not_list_exports_with_the_gate(tiny_tagger_layout, tmp_path):
    params = tmp_path / "p.yaml"  # the untrained tiny tagger needs a lenient INT8 gate
    params.write_text("ner:\n  int8_min_token_agreement: 0.0\n  int8_max_f1_drop_pt: 100.0\n")
    out, numbers = tmp_path / "x", tmp_path / "m.json"
    args = ["ner", "export", str(tiny_tagger_layout[0]), "--out", str(out), "--params", str(params)]
    args += ["--prepared", str(_prepared(tmp_path)), "--metrics", str(numbers)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (out / "model.int8.onnx").is_file() and f"wrote {out}" in result.output
    metrics = json.loads(numbers.read_text())
    assert metrics["onnx-fp32"]["token_agreement"] == 1.0  # fp32 graph = PyTorch
    assert 0.0 <= metrics["onnx-int8"]["token_agreement"] <= 1.0
    meta = json.loads((out / "finslm.json").read_text())
    assert meta["kind"] == "ner-onnx" and meta["source"] == str(tiny_tagger_layout[0])


def test_a_broken_gate_refuses_and_keeps_the_numbers(tiny_tagger_layout, tmp_path):
    params = tmp_path / "p.yaml"  # F1 may not drop by -1 pt: no graph can pass, fp32 included
    params.write_text("ner:\n  max_f1_drop_pt: -1.0\n  int8_min_token_agreement: 0.0\n")
    numbers = tmp_path / "m.json"
    args = ["ner", "export", str(tiny_tagger_layout[0]), "--out", str(tmp_path / "x")]
    args += ["--params", str(params), "--prepared", str(_prepared(tmp_path))]
    result = runner.invoke(app, [*args, "--metrics", str(numbers)])
    assert result.exit_code == 2 and "broke the parity gate" in result.output
    assert "onnx-fp32: entity micro-F1 0.00 pt below PyTorch > ner.max_f1_drop_pt = -1" in (
        result.output
    )
    assert json.loads(numbers.read_text())["onnx-fp32"]["token_agreement"] == 1.0


def test_wrong_folders_and_missing_data_are_one_line(tiny_classifier, tiny_tagger_layout, tmp_path):
    args = ["ner", "export", str(tiny_tagger_layout[0]), "--params", "none.yaml"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "none.yaml" in result.output
    prepared = _prepared(tmp_path)
    args = ["ner", "export", str(tiny_classifier), "--prepared", str(prepared)]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "y")])
    assert result.exit_code == 2
    assert "`finslm export` exports a sentence classifier" in result.output
    args = ["ner", "export", str(tiny_tagger_layout[0]), "--prepared", str(tmp_path / "none")]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "run `dvc repro prepare_ner` first" in result.output


def test_the_model_folder_is_checked_before_params_and_data(tiny_tagger_layout, tmp_path):
    """Audit #9: `ner export /nonexistent` named the missing data, not the model; the NER
    commands' fixes name the NER stages (train_ner@, not train@)."""
    missing = tmp_path / "none"
    args = ["ner", "export", str(missing), "--prepared", str(tmp_path / "no-data")]
    result = runner.invoke(app, [*args, "--params", str(tmp_path / "no.yaml")])
    assert result.exit_code == 2
    assert f"error: {missing}: no such folder" in result.output
    assert "`dvc repro train_ner@<name>`" in result.output
    assert "prepare_ner" not in result.output and "no.yaml" not in result.output
    empty = tmp_path / "empty"
    empty.mkdir()
    result = runner.invoke(app, ["ner", "export", str(empty), "--prepared", str(tmp_path)])
    assert result.exit_code == 2 and "run `dvc repro train_ner@<name>`" in result.output
    model, export = tiny_tagger_layout
    result = runner.invoke(app, ["ner", "export", str(export), "--prepared", str(tmp_path)])
    assert result.exit_code == 2
    want = (
        f"an ONNX export already (kind 'ner-onnx'); pass the PyTorch folder it came from ({model})"
    )
    assert want in result.output
    result = runner.invoke(app, ["ner", "soup", str(tmp_path / "s"), str(model), str(missing)])
    assert result.exit_code == 2
    assert f"{missing}: no such folder" in result.output
    assert "`dvc repro train_ner@<name>`" in result.output
