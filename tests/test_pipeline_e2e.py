"""End-to-end: the real `dvc repro` in a temporary copy of the repo, tiny random BERT, tiny data.

Checks what a user relies on: every stage runs and writes metrics within bounds, a second repro
is a no-op, and changing one model's knob reruns only that model's stages.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.conftest import make_tiny_checkpoint, needs_chromium
from tests.dvc_repo import dvc as _dvc
from tests.dvc_repo import make_pipeline_repo
from tests.dvc_repo import run as _run
from tools.browser import check_page

pytestmark = pytest.mark.slow


def _tiny_params(params: dict, checkpoint: Path) -> dict:
    minilm = params["models"]["minilm"]
    minilm.update(checkpoint=str(checkpoint), epochs=2, batch_size=16, max_length=32, lr=1e-3)
    params["train"]["threads"] = 1
    # Later stages keep their own small-run knobs here so the test stays under a minute.
    for section, knobs in {
        "benchmark": {"latency_sentences": 20, "warmup": 2, "repeats": 1, "rss": False},
        "explain": {"sample_size": 6, "shap_max_evals": 30, "lime_samples": 30, "ig_steps": 4},
        "prune": {"layers_keep": 1, "epochs": 1, "batch_size": 16, "importance_sentences": 32},
        "finetune": {"folds": 2, "mine_epochs": 1, "seeds": [42], "lr": 1e-3, "threads": 1},
    }.items():
        if section in params:
            params[section].update({k: v for k, v in knobs.items() if k in params[section]})
    return params


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("pipeline")
    checkpoint = make_tiny_checkpoint(work / "tiny-bert")
    make_pipeline_repo(work, lambda params: _tiny_params(params, checkpoint))
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
    # The default recipe is a soup (params.yaml soup_size): one model averaged from that many
    # seeds, each trained and early-stopped on its own.
    soup = json.loads((repo / "metrics/train/minilm.json").read_text())["soup"]
    params = yaml.safe_load((repo / "params.yaml").read_text())
    size, seed = params["models"]["minilm"]["soup_size"], params["train"]["seed"]
    assert soup["size"] == size > 1
    assert [i["seed"] for i in soup["ingredients"]] == [seed + k for k in range(size)]
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
    # The pruned model: one of the tiny BERT's two layers, exported and benchmarked like minilm.
    prune = json.loads((repo / "metrics/prune.json").read_text())
    assert prune["layers"] == {"before": 2, "after": 1} and prune["encoder_params_removed"] > 0.5
    assert (
        json.loads((repo / "metrics/export/minilm-pruned.json").read_text())["onnx-fp32"][
            "agreement"
        ]
        == 1.0
    )
    pruned, full = bench["minilm-pruned/onnx-int8"], bench["minilm/onnx-int8"]
    assert pruned["params"] < full["params"] and pruned["size_mb"] < full["size_mb"]
    # The targeted fine-tune: mined, ablated, exported and benchmarked like every variant.
    mined = json.loads((repo / "metrics/finetune-mining.json").read_text())
    assert mined["n_train"] == data["splits"]["train"] and mined["folds"] == 2
    finetune = json.loads((repo / "metrics/finetune.json").read_text())
    assert finetune["seeds"] == [42] and set(finetune["per_seed"]) == {"42"}
    for arm in ("base", "control", "targeted"):
        assert 0.0 <= finetune["summary"]["test"][arm]["macro_f1"]["mean"] <= 1.0
    targeted = json.loads((repo / "metrics/eval/minilm-targeted.json").read_text())
    assert targeted["test"]["n"] == data["splits"]["test"]
    exported = json.loads((repo / "metrics/export/minilm-targeted.json").read_text())
    assert exported["onnx-fp32"]["agreement"] == 1.0
    assert bench["minilm-targeted/onnx-int8"]["params"] == full["params"]


def test_report_page_has_every_section(repo: Path):
    html = (repo / "reports/index.html").read_text(encoding="utf-8")
    for section in ("data", "benchmark", "models", "explanations"):
        assert f'<section id="{section}">' in html
    assert "Missing:" not in html and "every input present" in html
    assert "minilm/onnx-int8" in html and "tfidf/sklearn" in html  # the benchmark table
    assert html.count("Confusion matrix (test)") >= 2  # minilm, tfidf
    assert html.count("data:image/svg+xml;base64,") >= 2  # frontier + minilm curves
    assert 'href="explain/index.html"' in html and "Most faithful for" in html
    _run(["git", "check-ignore", "-q", "reports/index.html"], repo)  # cached, never committed


@needs_chromium
def test_report_page_renders_in_chromium(repo: Path, tmp_path: Path):
    result = check_page(repo / "reports/index.html", tmp_path / "report.png")
    assert result.problems == [] and "Explanations" in result.text
    assert (tmp_path / "report.png").stat().st_size > 10_000


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
