"""`finslm predict` through typer's CliRunner: one text, stdin lines, a file, and clear errors."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from finslm.cli import app
from finslm.labels import LABELS

runner = CliRunner()


def test_single_text_prints_label_and_probabilities(tiny_export):
    folder, _ = tiny_export
    result = runner.invoke(app, ["predict", "Net profit rose 12 percent.", "--model", str(folder)])
    assert result.exit_code == 0, result.output
    assert "Net profit" in result.output  # the table may wrap the text
    assert "onnx-int8" in result.output  # the export folder's default backend
    for label in LABELS:
        assert f"p({label})" in result.output


def test_stdin_lines_as_json(tiny_classifier):
    result = runner.invoke(
        app,
        ["predict", "-", "--model", str(tiny_classifier), "--json"],
        input="Sales fell.\n\nThe meeting is on 5 May.\n",
    )
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["text"] for r in records] == ["Sales fell.", "The meeting is on 5 May."]
    for r in records:
        assert r["label"] in LABELS and set(r["probabilities"]) == set(LABELS)
        assert abs(sum(r["probabilities"].values()) - 1) < 1e-4


def test_file_input_and_explicit_backend(tiny_export, tmp_path):
    folder, _ = tiny_export
    path = tmp_path / "texts.txt"
    path.write_text("Orders rose.\nOrders fell.\n", encoding="utf-8")
    args = ["predict", "--file", str(path), "--model", str(folder), "--backend", "onnx-fp32"]
    result = runner.invoke(app, [*args, "--json", "--threads", "1"])
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 2


def test_bad_backend_names_the_choices(tiny_export):
    result = runner.invoke(
        app, ["predict", "x", "--model", str(tiny_export[0]), "--backend", "gpu"]
    )
    assert result.exit_code == 2
    assert "--backend 'gpu': unknown; choose auto, torch-fp32" in result.output


def test_backend_the_folder_cannot_run(tiny_classifier):
    result = runner.invoke(
        app, ["predict", "x", "--model", str(tiny_classifier), "--backend", "onnx-int8"]
    )
    assert result.exit_code == 2
    assert str(tiny_classifier) in result.output and "dvc repro export@" in result.output


def test_missing_model_folder_and_no_text(tmp_path):
    result = runner.invoke(app, ["predict", "x", "--model", str(tmp_path / "minilm")])
    assert result.exit_code == 2
    assert "no such folder" in result.output and "dvc repro train@minilm" in result.output
    result = runner.invoke(app, ["predict", "x", "--model", str(tmp_path)])
    assert result.exit_code == 2 and "not a finslm model folder" in result.output
    result = runner.invoke(app, ["predict", "--model", str(tmp_path)])
    assert result.exit_code == 2 and "no text given" in result.output
