"""PerforatedAI dendrites (finslm/train/dendrites.py): the documented loop, offline, no prompt."""

from __future__ import annotations

import os

import pandas as pd
import pytest
import torch

from finslm.models import load_for_finetuning
from finslm.train.dendrites import DendriteSettings, train_with_dendrites
from tests.conftest import HELD_OUT, TRAINED_TRAIN, TRAINED_VAL

# make setup installs it (--no-deps); CI must run these tests, elsewhere a bare venv skips them.
if os.environ.get("CI"):
    import perforatedai  # noqa: F401
else:
    pytest.importorskip(
        "perforatedai", reason="not installed: pip install --no-deps perforatedai==3.2.9"
    )


@pytest.mark.slow
def test_tracker_adds_dendrites_writes_its_graph_and_stops(tmp_path, tiny_checkpoint):
    tokenizer, model = load_for_finetuning(str(tiny_checkpoint), pooling="mean")
    frame = lambda rows: pd.DataFrame(rows, columns=["text", "label"])  # noqa: E731
    settings = DendriteSettings(switch_epochs=2, max_dendrites=1, max_epochs=8, lr=1e-3)
    cleaned, summary = train_with_dendrites(
        model, tokenizer, frame(TRAINED_TRAIN), frame(TRAINED_VAL), tmp_path, settings, seed=0
    )
    assert summary["restructures"] >= 1  # the tracker restructured the network
    assert max(h["params"] for h in summary["history"]) > summary["params_before"]
    assert summary["epochs"] <= settings.max_epochs
    for name in ("PAI.png", "PAIScores.csv", "PAIparam_counts.csv"):
        assert (tmp_path / "PAI" / name).is_file()
    assert (tmp_path / "PAI" / "best_model.pt").is_file()  # the tracker's own snapshot
    batch = tokenizer([t for t, _ in HELD_OUT[:4]], padding=True, return_tensors="pt")
    cleaned.eval()
    with torch.no_grad():
        assert cleaned(**batch).logits.shape == (4, 3)


@pytest.mark.slow
def test_control_runs_the_same_loop_for_every_epoch_without_dendrites(tmp_path, tiny_checkpoint):
    tokenizer, model = load_for_finetuning(str(tiny_checkpoint), pooling="mean")
    frame = lambda rows: pd.DataFrame(rows, columns=["text", "label"])  # noqa: E731
    settings = DendriteSettings(switch_epochs=1, max_epochs=3, lr=1e-3, add_dendrites=False)
    _, summary = train_with_dendrites(
        model, tokenizer, frame(TRAINED_TRAIN), frame(TRAINED_VAL), tmp_path, settings, seed=0
    )
    assert summary["epochs"] == 3  # the same budget as a run with dendrites
    assert summary["params_added"] == 0 and summary["restructures"] == 0
