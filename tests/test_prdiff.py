"""The diff report's formatting, without dvc: headline rows, sections, image plots, CLI errors.

The report from a real `dvc` run is tested in test_dvc_workflows.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from finslm.cli import app
from finslm.prdiff import DiffInputs, ImageDiff, headline_rows, image_diffs, render_report


def _entry(old, new):
    return {"old": old, "new": new, "diff": None if old is None else new - old}


METRICS = {
    "metrics/data.json": {"rows_out": _entry(72, 72)},
    "metrics/eval/tfidf.json": {
        "test.accuracy": _entry(0.675, 0.7),
        "test.macro_f1": _entry(0.5593, 0.5593),
        "test.n": _entry(120, 120),
        "val.accuracy": _entry(0.6, 0.65),
    },
    "metrics/benchmark.json": {
        "minilm/onnx-int8.p50_ms": _entry(2.17, 1.9),
        "minilm/onnx-int8.size_mb": _entry(30.7, 30.7),
        "minilm/onnx-int8.rss_mb": _entry(189, 190),
        "minilm-pruned/onnx-int8.p50_ms": _entry(None, 1.2),
        "env.cpu": {"old": "AMD", "new": "AMD", "diff": None},
    },
}


def test_headline_rows_are_test_scores_latency_and_size():
    rows = {label: (old, new, diff) for label, old, new, diff in headline_rows(METRICS)}
    assert list(rows) == [  # sorted by file, then by variant
        "minilm-pruned/onnx-int8: p50 latency, batch 1 (ms)",
        "minilm/onnx-int8: p50 latency, batch 1 (ms)",
        "minilm/onnx-int8: size (MB)",
        "tfidf: test accuracy",
        "tfidf: test macro-F1",
    ]
    assert rows["tfidf: test accuracy"][2] == 0.7 - 0.675
    assert rows["minilm-pruned/onnx-int8: p50 latency, batch 1 (ms)"] == (None, 1.2, None)
    # Without DVC's own diff the change is computed, new minus old.
    bare = {"metrics/eval/m.json": {"test.accuracy": {"old": 0.8, "new": 0.9}}}
    ((_, old, new, diff),) = headline_rows(bare)
    assert (old, new) == (0.8, 0.9) and diff == pytest.approx(0.1)


def test_report_sections_and_changed_rows_in_bold():
    inputs = DiffInputs(
        "main",
        "workspace",
        params_md="| Path | Param | main | workspace |\n|---|---|---|---|\n| params.yaml | models.tfidf.C | 10 | 3 |\n",
        metrics_md="| Path | Metric | main | workspace | Change |\n|---|---|---|---|---|\n| x | y | 1 | 2 | 1 |\n",
        metrics=METRICS,
        plots_page="diff-plots/index.html",
        images=[ImageDiff("plots/benchmark/a.png", None, "diff-plots/static/workspace_a.png")],
    )
    md = render_report(inputs)
    assert md.startswith("## Pipeline diff: `main` → `workspace`")
    assert "| tfidf: test accuracy | **0.675** | **0.7** | **+0.025** |" in md
    assert "| tfidf: test macro-F1 | 0.5593 | 0.5593 | – |" in md
    assert (
        "| minilm-pruned/onnx-int8: p50 latency, batch 1 (ms) | **–** | **1.2** | **new** |" in md
    )
    assert "models.tfidf.C" in md.split("### Params")[1].split("###")[0]
    # 5 metrics differ: accuracy (test, val), p50, rss, and the pruned variant's new p50.
    assert "<details><summary>5 changed metrics" in md and "| x | y | 1 | 2 | 1 |" in md
    assert "[Every plot, `main` and `workspace` overlaid (HTML)](diff-plots/index.html)" in md
    assert "| `plots/benchmark/a.png` | – | ![workspace](diff-plots/static/workspace_a.png) |" in md


def test_report_says_when_nothing_changed():
    md = render_report(DiffInputs("HEAD~1", "HEAD"))
    assert "No param changed." in md and "No metric changed." in md
    assert "No evaluation or benchmark metrics" in md and "### Plots" not in md


def test_image_diffs_skip_identical_files(tmp_path: Path):
    static = tmp_path / "reports/diff-plots/static"
    static.mkdir(parents=True)
    for name, content in [("main_a.png", b"1"), ("HEAD_a.png", b"1"), ("main_b.png", b"1")]:
        (static / name).write_bytes(content)
    (static / "HEAD_b.png").write_bytes(b"2")
    rel = "reports/diff-plots/static"
    plots = {
        "data": {
            "a.png": [
                {"type": "image", "revisions": ["main"], "url": f"{rel}/main_a.png"},
                {"type": "image", "revisions": ["HEAD"], "url": f"{rel}/HEAD_a.png"},
            ],
            "b.png": [
                {"type": "image", "revisions": ["main"], "url": f"{rel}/main_b.png"},
                {"type": "image", "revisions": ["HEAD"], "url": f"{rel}/HEAD_b.png"},
            ],
            "Confusion matrix": [{"type": "vega", "revisions": ["main", "HEAD"]}],
        }
    }
    diffs = image_diffs(plots, "main", "HEAD", tmp_path, tmp_path / "reports")
    assert diffs == [
        ImageDiff("b.png", "diff-plots/static/main_b.png", "diff-plots/static/HEAD_b.png")
    ]


def test_cli_outside_a_dvc_repo_fails_with_dvc_error(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["diff-report", "main"])
    assert result.exit_code == 2
    assert "error: dvc params diff main --md failed" in result.output


def test_cli_out_that_is_a_folder_or_unwritable_is_one_error(tmp_path: Path, monkeypatch):
    # Checked before any revision is read (so outside a dvc repo too).
    monkeypatch.chdir(tmp_path)
    (tmp_path / "adir.md").mkdir()
    result = CliRunner().invoke(app, ["diff-report", "main", "--out", "adir.md"])
    assert result.exit_code == 2 and "--out adir.md: a folder" in result.output
    (tmp_path / "afile").write_text("x")
    result = CliRunner().invoke(app, ["diff-report", "main", "--out", "afile/d.md"])
    assert result.exit_code == 2 and "--out afile/d.md: cannot create its folder" in result.output
