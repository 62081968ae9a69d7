"""``stages/explain.py`` on the tiny model: outputs, metric keys, schema, and clean failures."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from finslm.explain.analysis import validate_recommendations
from finslm.explain.attributions import METHOD_TITLES, METHODS
from tests.conftest import invented_sentences, load_stage
from tests.explain.test_page import Page

REPO = Path(__file__).resolve().parents[2]
STAGE = REPO / "stages" / "explain.py"
METRIC_KEYS = {"comprehensiveness", "sufficiency", "loo_spearman", "seconds_per_sentence"}
FAST = {"sample_size": 8, "shap_max_evals": 40, "lime_samples": 40, "ig_steps": 4, "threads": 1}


@pytest.fixture(scope="module")
def stage():
    return load_stage("explain")


def _workdir(tmp_path: Path, tiny_classifier: Path, export: Path | None, **explain) -> Path:
    shutil.copytree(tiny_classifier, tmp_path / "models" / "tiny")
    if export is not None:
        shutil.copytree(export, tmp_path / "exports" / "tiny")
    prepared = tmp_path / "data" / "prepared"
    prepared.mkdir(parents=True)
    rows = invented_sentences(2)
    pd.DataFrame(
        {"text": [t for t, _ in rows], "label": [y for _, y in rows], "line": range(len(rows))}
    ).to_parquet(prepared / "val.parquet")
    # Not parquet: the stage would fail if it ever opened the test split.
    (prepared / "test.parquet").write_text("the test split is off limits", encoding="utf-8")
    params = {
        "models": {"tiny": {"kind": "transformer"}, "tfidf": {"kind": "tfidf"}},
        "explain": {"model": "tiny", **FAST, **explain},
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    return tmp_path


def _args(work: Path) -> list[str]:
    return [
        "--params", str(work / "params.yaml"), "--models", str(work / "models"),
        "--exports", str(work / "exports"), "--val", str(work / "data/prepared/val.parquet"),
        "--reports", str(work / "reports/explain"), "--metrics", str(work / "metrics/explain.json"),
        "--analysis", str(work / "analysis"), "--plots", str(work / "plots/explain"),
    ]  # fmt: skip


def test_stage_on_the_tiny_onnx_export(stage, tmp_path, tiny_classifier, tiny_export, monkeypatch):
    opened = []
    real = pd.read_parquet
    monkeypatch.setattr(
        pd, "read_parquet", lambda p, *a, **k: opened.append(Path(p).name) or real(p, *a, **k)
    )
    work = _workdir(tmp_path, tiny_classifier, tiny_export[0])
    assert stage.main(_args(work)) == 0
    assert opened == ["val.parquet"]

    metrics = json.loads((work / "metrics/explain.json").read_text())
    for method in (*METHODS, "random"):
        assert set(metrics[method]) == METRIC_KEYS, method
        assert metrics[method]["seconds_per_sentence"] >= 0
    assert metrics["n_sentences"] == 8

    analysis = json.loads((work / "analysis/tiny.json").read_text())
    validate_recommendations(analysis)
    assert analysis["backend"] == "onnx-int8" and analysis["split"] == "val"
    assert analysis["n"] == 12

    attributions = json.loads((work / "reports/explain/attributions.json").read_text())
    assert attributions["backend"] == "onnx-int8"
    assert len(attributions["sentences"]) == 8
    for s in attributions["sentences"]:
        assert set(s["attributions"]) == set(METHODS)
        for values in s["attributions"].values():
            assert len(values) == len(s["words"]) == len(s["spans"])

    html = (work / "reports/explain/index.html").read_text()
    page = Page(html)
    assert page.errors == [] and page.stack == []  # every tag closed, in order
    for method in METHODS:
        assert METHOD_TITLES[method] in html
        page = (work / "reports/explain" / f"{method}.html").read_text()
        assert f'href="{method}.html"' in html and METHOD_TITLES[method] in page
    for name in ("faithfulness.png", "reliability.png"):
        assert (work / "plots/explain" / name).read_bytes()[:4] == b"\x89PNG"


def test_stage_falls_back_without_an_export(stage, tmp_path, tiny_classifier, caplog):
    work = _workdir(tmp_path, tiny_classifier, None, methods=["shap", "attention"], sample_size=3)
    assert stage.main(_args(work)) == 0
    assert "backend onnx-int8 unavailable" in caplog.text
    analysis = json.loads((work / "analysis/tiny.json").read_text())
    assert analysis["backend"] == "torch-fp32"
    metrics = json.loads((work / "metrics/explain.json").read_text())
    assert set(metrics) == {"shap", "attention", "random", "n_sentences", "seconds_total"}
    assert "unavailable" in (work / "reports/explain/index.html").read_text()


def test_stage_without_fallback_fails_cleanly(stage, tmp_path, tiny_classifier, capsys):
    work = _workdir(tmp_path, tiny_classifier, None, fallback_backend="")
    assert stage.main(_args(work)) == 1
    err = capsys.readouterr().err
    assert "explain: error:" in err and "model.int8.onnx" in err


@pytest.mark.parametrize(
    ("explain", "message"),
    [
        ({"model": "tfidf"}, "explain.model: 'tfidf' has kind 'tfidf'"),
        ({"model": "nope"}, "explain.model: 'nope' is not under models"),
        ({"methods": ["shap", "gradcam"]}, "explain.methods: got 'gradcam'"),
        ({"sample_size": 0}, "explain.sample_size: got 0; must be >= 1"),
        ({"colour": "red"}, "explain: unknown key(s) colour"),
    ],
)
def test_bad_params_exit_1(stage, tmp_path, tiny_classifier, capsys, explain, message):
    work = _workdir(tmp_path, tiny_classifier, None, **explain)
    assert stage.main(_args(work)) == 1
    assert message in capsys.readouterr().err


@pytest.mark.slow  # starts Python processes
def test_stage_as_a_process_prints_no_traceback(tmp_path, tiny_classifier):
    work = _workdir(tmp_path, tiny_classifier, None)
    (work / "data/prepared/val.parquet").unlink()
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    result = subprocess.run(
        [sys.executable, str(STAGE), *_args(work)],
        capture_output=True, text=True, env=env, timeout=1800, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert "val.parquet: not found" in result.stderr and "Traceback" not in result.stderr
