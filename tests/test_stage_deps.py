"""dvc.yaml declares every project file each stage's script imports (tools/stage_deps.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from tools import stage_deps

ROOT = Path(__file__).resolve().parents[1]


def test_every_stage_declares_its_import_closure():
    assert stage_deps.problems(ROOT) == []


def test_every_stage_script_is_checked():
    spec = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    assert set(stage_deps.stage_scripts(spec)) == set(spec["stages"])


@pytest.fixture
def repo_copy(tmp_path):
    for name in ("dvc.yaml", "stages", "src"):
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, tmp_path / name)
    return tmp_path


def _drop_line(path: Path, line: str) -> None:
    text = path.read_text()
    assert line in text
    path.write_text(text.replace(line, "", 1))


def test_a_deleted_dep_line_is_named(repo_copy):
    _drop_line(repo_copy / "dvc.yaml", "        - src/finslm/evaluation.py\n")  # train's
    assert stage_deps.problems(repo_copy) == [
        "train: imports src/finslm/evaluation.py but dvc.yaml does not declare it"
    ]


def test_a_new_lazy_import_is_found(repo_copy):
    """A module imported inside a function (as the library does to keep start-up fast)."""
    (repo_copy / "src/finslm/newmod.py").write_text("X = 1\n")
    prune = repo_copy / "src/finslm/prune/run.py"
    prune.write_text(prune.read_text() + "\n\ndef _late():\n    from finslm import newmod\n")
    assert stage_deps.problems(repo_copy) == [
        "prune: imports src/finslm/newmod.py but dvc.yaml does not declare it"
    ]
    stage_deps.write(repo_copy)
    assert stage_deps.problems(repo_copy) == []
    prune_deps = yaml.safe_load((repo_copy / "dvc.yaml").read_text())["stages"]["prune"]["deps"]
    assert "src/finslm/newmod.py" in prune_deps


def test_data_files_a_module_names_are_deps():
    needed = stage_deps.closure("stages/explain.py", ROOT)
    assert Path("src/finslm/explain/recommendations.schema.json") in needed


def test_a_stale_dep_is_reported(repo_copy):
    dvc = repo_copy / "dvc.yaml"
    dvc.write_text(
        dvc.read_text().replace(
            "      - stages/report.py\n", "      - stages/report.py\n      - src/finslm/cli.py\n", 1
        )
    )
    assert stage_deps.problems(repo_copy) == [
        "report: declares src/finslm/cli.py but never imports it"
    ]
