"""The ``stages/prepare.py`` entry point: params in, files out, clean errors without tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import load_stage

from .conftest import rows_with

REPO = Path(__file__).resolve().parents[2]
STAGE = REPO / "stages" / "prepare.py"


@pytest.fixture(scope="module")
def stage():
    return load_stage("prepare")


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
    out = tmp_path / "o"  # every output in tmp_path: a failing run removes the stage's outputs
    code = stage.main(
        ["--params", str(_params(tmp_path, "missing.csv")), "--out", str(out), "--metrics",
         str(out / "data.json"), "--rejects", str(out / "rejects.csv")]
    )  # fmt: skip
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
        [sys.executable, str(STAGE), "--params", str(params), "--out", str(tmp_path / "o"),
         "--metrics", str(tmp_path / "m.json"), "--rejects", str(tmp_path / "r.csv")],
        capture_output=True, text=True, env=env, timeout=1800, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 1
    assert "file not found" in result.stderr and "Traceback" not in result.stderr


def test_failed_run_leaves_no_stale_splits_or_metrics(stage, tmp_path):
    # Issue #26 item 8: a good run, then a failing one (one class too small to stratify): the
    # first run's splits and metrics must not survive beside the second run's rejects.
    out = tmp_path / "out"
    args = ["--out", str(out), "--metrics", str(out / "data.json"), "--rejects", str(out / "r.csv")]
    good = rows_with({"negative": 10, "neutral": 20, "positive": 10})
    good[["text", "label"]].to_csv(tmp_path / "s.csv", index=False)
    assert stage.main(["--params", str(_params(tmp_path, "s.csv")), *args]) == 0
    assert (out / "train.parquet").is_file()
    bad = rows_with({"negative": 1, "neutral": 20, "positive": 10})
    bad[["text", "label"]].to_csv(tmp_path / "s.csv", index=False)
    assert stage.main(["--params", str(_params(tmp_path, "s.csv")), *args]) == 1
    assert sorted(p.name for p in out.iterdir()) == ["r.csv"]  # the new evidence only
    # A source that cannot even be read leaves nothing at all.
    assert stage.main(["--params", str(_params(tmp_path, "missing.csv")), *args]) == 1
    assert list(out.iterdir()) == []
