"""A temporary git + DVC copy of this repo's pipeline, for tests that run the real `dvc`.

Shared by the end-to-end test and the DVC workflow tests (experiments, diff report, remotes):
the copy has this repo's dvc.yaml, stages and params, a tiny invented data set and, when given
one, a tiny transformer checkpoint, and one commit (DVCLive and `dvc exp` need it).
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import yaml

from tests.conftest import invented_sentences

ROOT = Path(__file__).resolve().parents[1]


def env() -> dict[str, str]:
    """The environment for `dvc` and stage commands: offline, and `python` is this venv's."""
    out = dict(os.environ)
    out["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{out.get('PATH', '')}"
    out.update(
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        DVC_NO_ANALYTICS="1",
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@example.com",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@example.com",
    )
    return out


def run(
    args: list[str], cwd: Path, timeout: int = 3600, log: Path | None = None
) -> subprocess.CompletedProcess:
    """Run a command; fail the test with its output tail if it exits non-zero.

    ``timeout`` is only a guard against a hung process, not a speed check: a whole ``dvc repro``
    on a busy 2-core machine takes minutes.

    With `log`, output goes to that file instead of a pipe: for a command that leaves a daemon
    behind (`dvc queue start`), which would hold the pipe open, and this call, until it exits.
    """
    if log is None:
        proc = subprocess.run(
            args, cwd=cwd, env=env(), capture_output=True, text=True, timeout=timeout
        )
    else:
        with open(log, "w") as fh:
            proc = subprocess.run(
                args, cwd=cwd, env=env(), stdout=fh, stderr=subprocess.STDOUT, timeout=timeout
            )
        proc.stdout, proc.stderr = log.read_text(), ""
    assert proc.returncode == 0, (
        f"{' '.join(args)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    )
    return proc


def dvc(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "dvc", *args], cwd)


def git(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return run(["git", *args], cwd)


def commit(cwd: Path, message: str) -> str:
    """Commit everything; return the new commit's sha."""
    git("add", "-A", cwd=cwd)
    git("commit", "-qm", message, cwd=cwd)
    return git("rev-parse", "HEAD", cwd=cwd).stdout.strip()


def make_pipeline_repo(work: Path, edit_params: Callable[[dict], object] | None = None) -> Path:
    """Copy the pipeline into `work` with 72 invented sentences, git init, dvc init, commit.

    ``edit_params(params)`` adjusts the copy's params.yaml in place (a tiny checkpoint, small-run
    knobs); the data source and one training thread are set here.
    """
    for name in ("dvc.yaml", "params.yaml", "pyproject.toml"):
        shutil.copy(ROOT / name, work / name)
    for name in ("stages", "src"):
        shutil.copytree(ROOT / name, work / name, ignore=shutil.ignore_patterns("__pycache__"))
    (work / "data").mkdir(exist_ok=True)
    if (ROOT / "data/sample/ner").is_dir():  # the NER stages' embedded sample (invented, CC0)
        shutil.copytree(ROOT / "data/sample/ner", work / "data/sample/ner")
    with open(work / "data/tiny.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label"])
        writer.writerows(invented_sentences(12))
    params = yaml.safe_load((work / "params.yaml").read_text())
    params["data"]["source"] = "data/tiny.csv"
    params["train"]["threads"] = 1
    if edit_params is not None:
        edit_params(params)
    (work / "params.yaml").write_text(yaml.safe_dump(params))
    git("init", "-q", "-b", "main", cwd=work)
    dvc("init", "-q", cwd=work)
    dvc("config", "core.analytics", "false", cwd=work)
    commit(work, "init")  # DVCLive and `dvc exp` need a repo with at least one commit
    return work


def set_param(repo: Path, dotted: str, value) -> None:
    """Set one key of the copy's params.yaml, e.g. ``set_param(repo, "models.tfidf.C", 3.0)``."""
    params = yaml.safe_load((repo / "params.yaml").read_text())
    *parents, leaf = dotted.split(".")
    node = params
    for key in parents:
        node = node[key]
    node[leaf] = value
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
