"""End-to-end: the real `dvc repro` in a temporary copy of the repo, tiny random BERT, tiny data.

Checks what a user relies on: every stage runs and writes metrics within bounds, a second repro
is a no-op, and changing one model's knob reruns only that model's stages.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import invented_sentences, make_tiny_checkpoint

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    # `python` in dvc.yaml must be this interpreter (the project venv).
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", DVC_NO_ANALYTICS="1")
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (
        f"{' '.join(args)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    )
    return proc


def _dvc(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return _run([sys.executable, "-m", "dvc", *args], cwd)


def _tiny_params(params: dict, checkpoint: Path) -> dict:
    params["data"]["source"] = "data/tiny.csv"
    minilm = params["models"]["minilm"]
    minilm.update(checkpoint=str(checkpoint), epochs=2, batch_size=16, max_length=32, lr=1e-3)
    params["train"]["threads"] = 1
    # Later stages keep their own small-run knobs here so the test stays under a minute.
    for section, knobs in {
        "benchmark": {"latency_sentences": 20, "warmup": 2, "repeats": 1, "rss": False},
        "explain": {"sample_size": 6, "shap_max_evals": 30, "lime_samples": 30, "ig_steps": 4},
    }.items():
        if section in params:
            params[section].update({k: v for k, v in knobs.items() if k in params[section]})
    return params


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("pipeline")
    for name in ("dvc.yaml", "params.yaml", "pyproject.toml"):
        shutil.copy(ROOT / name, work / name)
    for name in ("stages", "src"):
        shutil.copytree(ROOT / name, work / name, ignore=shutil.ignore_patterns("__pycache__"))
    (work / "data").mkdir()
    with open(work / "data/tiny.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label"])
        writer.writerows(invented_sentences(12))
    checkpoint = make_tiny_checkpoint(work / "tiny-bert")
    params = yaml.safe_load((work / "params.yaml").read_text())
    (work / "params.yaml").write_text(yaml.safe_dump(_tiny_params(params, checkpoint)))
    _run(["git", "init", "-q"], work)
    _dvc("init", "-q", cwd=work)
    _dvc("config", "core.analytics", "false", cwd=work)
    # DVCLive (and `dvc exp`) need a repo with at least one commit.
    _run(["git", "add", "-A"], work)
    _run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "init"],
        work,
    )
    _dvc("repro", cwd=work)
    return work


def test_repro_writes_metrics_within_bounds(repo: Path):
    data = json.loads((repo / "metrics/data.json").read_text())
    assert data["rows_in"] == 72 and data["rows_out"] == 72
    assert sum(data["splits"].values()) == 72
    for model in ("minilm", "tfidf"):
        train = json.loads((repo / f"metrics/train/{model}.json").read_text())
        assert 0.0 <= train["val"]["accuracy"] <= 1.0
        assert train["epochs"] >= 1 and train["params"] > 0
        evaluation = json.loads((repo / f"metrics/eval/{model}.json").read_text())
        assert evaluation["test"]["n"] == data["splits"]["test"]
    # The templates are trivially separable: the baseline must learn them.
    tfidf = json.loads((repo / "metrics/eval/tfidf.json").read_text())
    assert tfidf["test"]["accuracy"] >= 0.9
    assert (repo / "models/minilm/model.safetensors").is_file()
    export = json.loads((repo / "metrics/export/minilm.json").read_text())
    assert export["onnx-fp32"]["max_abs_logit_diff"] < 1e-3
    assert export["onnx-fp32"]["agreement"] == 1.0
    bench = json.loads((repo / "metrics/benchmark.json").read_text())
    for variant in ("minilm/torch-fp32", "minilm/onnx-int8", "tfidf/sklearn"):
        row = bench[variant]
        assert 0 < row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"]
        assert row["throughput_bs32"] > 0 and row["size_mb"] > 0
    assert bench["minilm/onnx-int8"]["size_mb"] < bench["minilm/onnx-fp32"]["size_mb"]
    explain = json.loads((repo / "metrics/explain.json").read_text())
    for method in ("shap", "lime", "ig", "attention"):
        assert -1.0 <= explain[method]["comprehensiveness"] <= 1.0
        assert explain[method]["seconds_per_sentence"] > 0
    curve = repo / "plots/train/minilm/plots/metrics/val/macro_f1.tsv"
    assert len(curve.read_text().strip().splitlines()) == 1 + 2  # header + one row per epoch


def test_second_repro_is_noop(repo: Path):
    out = _dvc("repro", cwd=repo).stdout
    assert "Running stage" not in out, out
    status = _dvc("status", cwd=repo).stdout
    assert "up to date" in status


def test_model_knob_reruns_only_that_model(repo: Path):
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["models"]["tfidf"]["C"] = 3.0
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    status = _dvc("status", cwd=repo).stdout
    assert "train@tfidf" in status
    assert "train@minilm" not in status and "prepare" not in status


def test_data_knob_reruns_everything_downstream(repo: Path):
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["data"]["seed"] = params["data"]["seed"] + 1
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    assert "prepare" in _dvc("status", cwd=repo).stdout
    # A new seed gives a new split, so every stage that reads a split is now stale.
    _dvc("repro", "prepare", cwd=repo)
    status = _dvc("status", cwd=repo).stdout
    for stage in ("train@minilm", "train@tfidf", "evaluate@minilm", "evaluate@tfidf"):
        assert f"{stage}:" in status, status
