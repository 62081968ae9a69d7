"""End-to-end: the real `dvc repro` in a temporary copy of the repo, tiny random BERT, tiny data.

Checks what a user relies on: every stage runs, the tiny model learns the invented templates, a
second repro is a no-op, and a model knob, a data knob and a code edit each invalidate exactly the
stages that depend on them. Each rerun-set test restores the copy (params, lock, outputs) after.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
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
    # lr 1e-2, batches of 8: the tiny BERT learns the templates in two epochs (>= 0.9).
    minilm.update(checkpoint=str(checkpoint), epochs=2, batch_size=8, max_length=32, lr=1e-2)
    minilm.update(warmup_ratio=0.0)
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
    if "ner" in params:  # the NER stages: the same tiny BERT, a short run, a short benchmark
        for model in params["ner"]["models"].values():
            model.update(checkpoint=str(checkpoint), epochs=2, batch_size=8, max_length=32)
            model.update(lr=1e-2, warmup_ratio=0.0)
        # 39 validation sentences: one entity flipped by INT8 is ~2 pt of micro-F1 on this tiny
        # model, so the gate here only catches a broken graph (tests/ner checks the real gate).
        params["ner"].update(bench_sentences=20, bench_repeats=1, int8_max_f1_drop_pt=15.0)
        params["ner"].update(int8_min_token_agreement=0.9)
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
        assert train["val"]["accuracy"] >= 0.9, model  # the templates are learnable
        assert train["epochs"] >= 1 and train["params"] > 0
        evaluation = json.loads((repo / f"metrics/eval/{model}.json").read_text())
        assert evaluation["test"]["n"] == data["splits"]["test"]
        assert evaluation["test"]["accuracy"] >= 0.9, model
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
        assert explain[method]["seconds_per_sentence"] > 0
    # On a model that learned, deleting the words SHAP and LIME rank highest moves p(predicted)
    # more than deleting as many random words.
    for method in ("shap", "lime"):
        assert explain[method]["comprehensiveness"] > explain["random"]["comprehensiveness"]
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
    assert finetune["base"]["test"]["accuracy"] >= 0.9  # the trained minilm, continued from
    for arm in ("control", "targeted"):  # one seed: the summary is that seed's score
        assert finetune["summary"]["test"][arm]["macro_f1"]["mean"] == pytest.approx(
            finetune["per_seed"]["42"][arm]["test"]["macro_f1"], abs=1e-4
        )
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
    assert _stale(repo) == set()


def _stale(repo: Path) -> set[str]:
    """Stages `dvc status` reports as changed (their own deps, params or outs)."""
    return set(json.loads(_dvc("status", "--json", cwd=repo).stdout or "{}"))


@contextmanager
def _restored(repo: Path) -> Iterator[None]:
    """Put params.yaml, dvc.lock, src/, metrics/ and the outputs back as they were (tests are
    independent)."""
    saved = Path(tempfile.mkdtemp(prefix="e2e-saved-"))
    shutil.copy2(repo / "params.yaml", saved / "params.yaml")
    shutil.copy2(repo / "dvc.lock", saved / "dvc.lock")
    shutil.copytree(repo / "src", saved / "src")
    # Uncached outputs (metrics, the recipe in force) are not in the DVC cache: a failed stage
    # deletes them, and `dvc checkout` cannot bring them back.
    shutil.copytree(repo / "metrics", saved / "metrics")
    try:
        yield
    finally:
        shutil.copy2(saved / "params.yaml", repo / "params.yaml")
        shutil.copy2(saved / "dvc.lock", repo / "dvc.lock")
        shutil.rmtree(repo / "src")
        shutil.copytree(saved / "src", repo / "src")
        shutil.rmtree(repo / "metrics")
        shutil.copytree(saved / "metrics", repo / "metrics")
        shutil.rmtree(saved)
        _dvc("checkout", "--force", cwd=repo)
        assert _stale(repo) == set()


def _set(repo: Path, dotted: str, change) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    *parents, leaf = dotted.split(".")
    node = params
    for key in parents:
        node = node[key]
    node[leaf] = change(node[leaf])
    (repo / "params.yaml").write_text(yaml.safe_dump(params))


def test_model_knob_invalidates_exactly_its_stages(repo: Path):
    # models.tfidf is a param of train@tfidf (models.${key}) and of report (all of `models`);
    # mine and finetune read models.minilm only.
    with _restored(repo):
        _set(repo, "models.tfidf.C", lambda c: c * 3)
        # check_params tracks every key; its output (the recipe in force) does not change, so
        # it reruns alone (a second) and the others wait on their own params.
        assert _stale(repo) == {"check_params", "train@tfidf", "report"}


def test_minilm_knob_invalidates_its_training_mining_and_finetune(repo: Path):
    # models.minilm is also finetune.model's: mine and finetune retrain it.
    with _restored(repo):
        _set(repo, "models.minilm.lr", lambda lr: lr / 2)
        assert _stale(repo) == {"check_params", "train@minilm", "mine", "finetune", "report"}


def test_data_knob_invalidates_prepare_then_every_stage_that_reads_a_split(repo: Path):
    with _restored(repo):
        _set(repo, "data.seed", lambda seed: seed + 1)
        assert _stale(repo) == {"check_params", "prepare"}
        # A new seed gives a new split, so every stage that reads a split is now stale; the
        # stages that read only models, metrics or exports wait for those to change (report).
        # evaluate runs over `models` only: prune and finetune score their own models.
        _dvc("repro", "prepare", cwd=repo)
        assert _stale(repo) == {
            "train@minilm",
            "train@tfidf",
            "evaluate@minilm",
            "evaluate@tfidf",
            "export@minilm",
            "export@minilm-pruned",
            "export@minilm-targeted",
            "benchmark",
            "explain",
            "mine",
            "finetune",
            "prune",
        }


def test_code_edit_invalidates_exactly_the_stages_that_import_it(repo: Path):
    # src/finslm/train/tfidf.py is a code dep of the train foreach (one deps list for both models).
    with _restored(repo):
        path = repo / "src/finslm/train/tfidf.py"
        path.write_text(path.read_text() + "\n# an edit\n")
        assert _stale(repo) == {"train@minilm", "train@tfidf"}


def _failed_repro(repo: Path) -> str:
    import subprocess
    import sys

    from tests.dvc_repo import env

    proc = subprocess.run(
        [sys.executable, "-m", "dvc", "repro"], cwd=repo, env=env(), capture_output=True,
        text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode != 0
    return proc.stdout + proc.stderr


def test_a_missing_data_source_fails_first_with_its_key_not_errno(repo: Path):
    # DVC checks prepare's ${data.source} dependency before prepare runs: without the first
    # stage the user would see only "[Errno 2] No such file or directory".
    with _restored(repo):
        _set(repo, "data.source", lambda _: "data/nope.csv")
        out = _failed_repro(repo)
        assert "check_params: error: data.source: 'data/nope.csv' does not exist" in out
        assert "Errno 2" not in out


def test_a_misspelled_section_fails_instead_of_changing_nothing(repo: Path):
    with _restored(repo):
        params = yaml.safe_load((repo / "params.yaml").read_text())
        params["trian"] = {"seed": 7}  # what `dvc exp run -S '++trian.seed=7'` writes
        (repo / "params.yaml").write_text(yaml.safe_dump(params))
        assert "check_params" in _stale(repo)
        out = _failed_repro(repo)
        assert "unknown section 'trian'; did you mean 'train'?" in out
