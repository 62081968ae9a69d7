"""Issue #26 item 1: the documented `dvc exp run -S models.<m>.lr=5e-5`, for real, through training.

DVC writes the value back as `lr: 5e-05` (YAML 1.2); PyYAML's YAML 1.1 resolver used to read
that as a string, and every stage failed with `expected a number, got '5e-05'`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from finslm.config import load_params
from tests.conftest import make_tiny_checkpoint
from tests.dvc_repo import dvc, make_pipeline_repo

pytestmark = pytest.mark.slow


def _tiny(params: dict, checkpoint: Path) -> None:
    params["models"]["minilm"].update(
        checkpoint=str(checkpoint), epochs=1, batch_size=16, max_length=32, soup_size=1
    )


def test_dvc_exp_run_with_exponent_lr_trains(tmp_path: Path):
    checkpoint = make_tiny_checkpoint(tmp_path / "tiny-bert")
    (tmp_path / "repo").mkdir()
    repo = make_pipeline_repo(tmp_path / "repo", lambda p: _tiny(p, checkpoint))
    dvc("exp", "run", "-S", "models.minilm.lr=5e-5", "train@minilm", cwd=repo)
    written = (repo / "params.yaml").read_text()
    assert "lr: 5e-05" in written  # DVC's own spelling, the one that used to break
    assert load_params(repo / "params.yaml").models["minilm"].lr == pytest.approx(5e-5)
    metrics = json.loads((repo / "metrics/train/minilm.json").read_text())
    assert metrics["epochs"] >= 1
