"""DVC workflows on a temporary git copy of the pipeline, TF-IDF stages only (seconds per run).

- Experiments: ``make exp-grid`` queues a sweep, ``make exp-wait`` runs the queue out, ``dvc exp
  show`` has both experiments with their params and metrics, ``make exp-show`` keeps the columns
  that matter.
- Diff report: a committed param change shows in ``make diff-report``'s params and metrics.
- Remotes: push to a local-directory remote, clone, pull: nothing left to run.

Each test gets its own copy of one pipeline repo built (and reproduced) once for this file: no
test sees another's experiments, commits or remotes, in any order or alone.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import sys
from pathlib import Path

import pytest

from tests.dvc_repo import ROOT, commit, dvc, git, make_pipeline_repo, run, set_param

pytestmark = pytest.mark.slow

TARGET = "evaluate@tfidf"  # with its upstream stages: prepare, train@tfidf


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    """The pipeline repo with TARGET reproduced and committed; never changed by a test."""
    work = make_pipeline_repo(tmp_path_factory.mktemp("workflows"))
    dvc("repro", TARGET, cwd=work)
    commit(work, "tfidf pipeline")
    return work


@pytest.fixture
def repo(pristine: Path, tmp_path: Path) -> Path:
    """A private copy of ``pristine`` (git history, DVC cache and outputs included)."""
    copy = tmp_path / "repo"
    shutil.copytree(pristine, copy, symlinks=True)
    assert git("status", "--porcelain", cwd=copy).stdout == ""
    return copy


def make(repo: Path, *args: str, log: Path | None = None) -> str:
    """This repo's Makefile, run in `repo` with the venv running the tests (no reinstall)."""
    venv = Path(sys.executable).parent.parent
    installed = venv / "bin/.installed"  # -o: never remake the venv here
    cmd = ["make", "-s", "-f", str(ROOT / "Makefile"), "-o", str(installed), f"VENV={venv}"]
    return run([*cmd, *args], repo, log=log).stdout


def _experiments(repo: Path) -> list[dict]:
    """The experiments of the current baseline in ``dvc exp show --json``: name, params, metrics."""
    rows = json.loads(dvc("exp", "show", "--json", cwd=repo).stdout)
    baseline = next(r for r in rows if r["rev"] != "workspace")
    out = []
    for exp in baseline.get("experiments") or []:
        data = exp["revs"][0]["data"]
        params = data["params"]["params.yaml"]["data"]
        metrics = {path: m.get("data") for path, m in data["metrics"].items()}
        out.append({"name": exp["name"], "params": params, "metrics": metrics})
    return out


def test_queued_grid_runs_and_shows_compact_table(repo: Path, tmp_path: Path):
    grid = "EXP_GRID=-S 'models.tfidf.ngram_max=choice(1,3)'"
    args = ("exp-grid", grid, "EXP_GRID_BASELINE=", f"EXP_TARGETS={TARGET}", "JOBS=1")
    out = make(repo, *args, log=tmp_path / "exp-grid.log")  # returns; the worker runs on
    assert out.count("Queued experiment") == 2, out
    make(repo, "exp-wait", "EXP_POLL=1")

    exps = _experiments(repo)
    assert len(exps) == 2, exps
    assert sorted(e["params"]["models"]["tfidf"]["ngram_max"] for e in exps) == [1, 3]
    for exp in exps:
        assert exp["metrics"]["metrics/eval/tfidf.json"]["test"]["accuracy"] >= 0.9  # separable
    # Unigrams only vs up to trigrams: different feature counts, so metrics differ too.
    assert len({e["metrics"]["metrics/train/tfidf.json"]["params"] for e in exps}) == 2
    assert git("status", "--porcelain", cwd=repo).stdout == ""  # queued runs leave it alone

    table = list(csv.DictReader(io.StringIO(make(repo, "exp-show", "EXP_SHOW_FLAGS=--csv"))))
    columns = set(table[0])
    # The metric columns are kept whether or not they vary; of the params only the one that does.
    assert {"Experiment", "rev", "models.tfidf.ngram_max"} <= columns, columns
    assert all(row["Experiment"] or row["rev"] for row in table)  # every row named
    assert {c.split(":")[-1] for c in columns} >= {"test.accuracy", "test.macro_f1"}, columns
    for hidden in ("data.source", "models.tfidf.C", "val.accuracy", "test.weighted_f1"):
        assert not any(c.split(":")[-1] == hidden for c in columns), columns
    assert {row["models.tfidf.ngram_max"] for row in table} == {"1", "2", "3"}


def test_diff_report_shows_changed_param_and_metric(repo: Path):
    base = git("rev-parse", "--short", "HEAD", cwd=repo).stdout.strip()
    set_param(repo, "models.tfidf.ngram_max", 1)
    dvc("repro", TARGET, cwd=repo)
    commit(repo, "unigrams")

    make(repo, "diff-report", f"A={base}", "B=HEAD")
    report = (repo / "reports/diff.md").read_text(encoding="utf-8")
    assert f"`{base}` → `HEAD`" in report
    assert "| tfidf: test accuracy |" in report  # headline row, present even when unchanged
    params = report.split("### Params")[1].split("###")[0]
    assert "models.tfidf.ngram_max" in params and "| 2 " in params and "| 1 " in params
    metrics = report.split("### Metrics")[1].split("###")[0]
    # The feature count of the baseline drops with unigrams only.
    row = next(line for line in metrics.splitlines() if "metrics/train/tfidf.json" in line)
    assert "| params " in row, metrics
    assert "[Every plot" in report and (repo / "reports/diff-plots/index.html").is_file()


def test_local_remote_round_trip(repo: Path, tmp_path: Path):
    storage = tmp_path / "storage"
    dvc("remote", "add", "-d", "local", str(storage), cwd=repo)
    commit(repo, "local remote")
    dvc("push", cwd=repo)
    assert any(storage.rglob("*")), "dvc push wrote nothing to the remote"

    clone = tmp_path / "clone"
    git("clone", "-q", str(repo), str(clone), cwd=tmp_path)
    assert not (clone / "data/prepared").exists()  # cached outputs travel by DVC, not git
    dvc("pull", "--with-deps", TARGET, cwd=clone)
    assert (clone / "models/tfidf").is_dir() and (clone / "data/prepared/test.parquet").is_file()

    status = dvc("status", "--with-deps", TARGET, cwd=clone).stdout
    assert "up to date" in status, status
    out = dvc("repro", TARGET, cwd=clone).stdout
    assert "Running stage" not in out, out
