"""The ``stages/prepare.py`` entry point: params in, files out, clean errors without tracebacks."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import rows_with

REPO = Path(__file__).resolve().parents[2]
STAGE = REPO / "stages" / "prepare.py"


@pytest.fixture(scope="module")
def stage():
    spec = importlib.util.spec_from_file_location("prepare_stage", STAGE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _params(tmp_path, source: str) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(
        f"data:\n  source: {source}\n  seed: 3\nmodels:\n  tfidf:\n    kind: tfidf\n",
        encoding="utf-8",
    )
    return path


def test_stage_writes_outputs_with_source_relative_to_params(stage, tmp_path):
    good = rows_with({"negative": 10, "neutral": 20, "positive": 10})
    good[["text", "label"]].to_csv(tmp_path / "s.csv", index=False)
    out = tmp_path / "out"
    code = stage.main(
        ["--params", str(_params(tmp_path, "s.csv")), "--out", str(out), "--metrics",
         str(out / "data.json"), "--rejects", str(out / "rejects.csv")]
    )  # fmt: skip
    assert code == 0
    assert json.loads((out / "data.json").read_text())["rows_out"] == 40
    assert sorted(p.name for p in out.iterdir()) == [
        "data.json", "rejects.csv", "test.parquet", "train.parquet", "val.parquet"
    ]  # fmt: skip


def test_stage_bad_source_exits_1_with_message(stage, tmp_path, capsys):
    code = stage.main(
        ["--params", str(_params(tmp_path, "missing.csv")), "--out", str(tmp_path / "o")]
    )
    assert code == 1
    err = capsys.readouterr().err
    assert "prepare: error: data.source='missing.csv': file not found" in err
    assert "Traceback" not in err


def test_stage_bad_params_exits_1(stage, tmp_path, capsys):
    params = tmp_path / "params.yaml"
    params.write_text("data:\n  test_size: 2\nmodels:\n  t:\n    kind: tfidf\n")
    assert stage.main(["--params", str(params)]) == 1
    assert "data.test_size: got 2" in capsys.readouterr().err


def test_stage_as_a_process_prints_no_traceback(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    params = _params(tmp_path, "missing.csv")
    result = subprocess.run(
        [sys.executable, str(STAGE), "--params", str(params), "--out", str(tmp_path / "o")],
        capture_output=True, text=True, env=env, timeout=1800, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert "file not found" in result.stderr and "Traceback" not in result.stderr
