"""PerforatedAI dendrites (finslm/train/dendrites.py): the documented loop, offline, no prompt."""

from __future__ import annotations

import os

import pandas as pd
import pytest
import torch

from finslm.models import ModelError, load_for_finetuning
from finslm.train.dendrites import (
    DendriteSettings,
    stock_state_dict,
    to_stock,
    train_with_dendrites,
)
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
        logits = cleaned(**batch).logits
    assert logits.shape == (4, 3)
    # The cleaned network is a stock one in PerforatedAI's wrappers: rebuilt as a plain model
    # (what export, INT8 and the benchmark load) it gives the same logits at the source's size.
    _, fresh = load_for_finetuning(str(tiny_checkpoint), pooling="mean")
    stock = to_stock(cleaned, fresh)
    with torch.no_grad():
        torch.testing.assert_close(stock(**batch).logits, logits, atol=1e-6, rtol=0)
    assert sum(p.numel() for p in stock.parameters()) == summary["params_before"]


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


class _Wrapped(torch.nn.Module):
    """PerforatedAI's cleaned wrapper, as far as its state dict goes."""

    def __init__(self):
        super().__init__()
        self.layer_array = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Linear(3, 2))
        self.register_buffer("node_index", torch.tensor(0))


def test_stock_weights_are_each_wrappers_last_module_without_its_bookkeeping():
    net = torch.nn.Module()
    net.query, net.other = _Wrapped(), torch.nn.Linear(2, 2)
    got = stock_state_dict(net, ["query.weight", "query.bias", "other.weight", "other.bias"])
    assert list(got) == ["query.weight", "query.bias", "other.weight", "other.bias"]
    assert torch.equal(got["query.weight"], net.query.layer_array[1].weight)
    assert not torch.equal(got["query.weight"], net.query.layer_array[0].weight)
    with pytest.raises(ModelError, match="no weights for 1 stock parameters .*first: key.weight"):
        stock_state_dict(net, ["query.weight", "key.weight"])


def test_the_dendrite_loop_refuses_levers_it_would_ignore():
    from finslm.config import ConfigError, DendritesConfig, TransformerConfig
    from finslm.train.dendrites import check_recipe

    on = DendritesConfig(enabled=True)
    check_recipe(TransformerConfig(dendrites=on))  # the plain recipe runs
    with pytest.raises(ConfigError, match=r"models.<name>.soup_size: got 3; must be 1 with"):
        check_recipe(TransformerConfig(dendrites=on, soup_size=3))
    with pytest.raises(ConfigError, match=r"models.<name>.label_smoothing: got 0.1"):
        check_recipe(TransformerConfig(dendrites=on, label_smoothing=0.1))


@pytest.mark.slow
def test_train_stage_recipe_with_dendrites_saves_a_stock_model_and_the_tracker_graph(
    tmp_path, tiny_checkpoint
):
    from finslm.config import DendritesConfig, TransformerConfig
    from finslm.predict import load_predictor
    from finslm.train.recipe import fit_transformer

    class _Live:  # what fit_transformer reads of DVCLive: its folder
        dir = str(tmp_path / "plots")

    frame = lambda rows: pd.DataFrame(rows, columns=["text", "label"])  # noqa: E731
    cfg = TransformerConfig(
        checkpoint=str(tiny_checkpoint),
        pooling="mean",
        epochs=3,
        lr=1e-3,
        dendrites=DendritesConfig(enabled=True, switch_epochs=1),
    )
    out = tmp_path / "model"
    summary = fit_transformer(cfg, frame(TRAINED_TRAIN), frame(TRAINED_VAL), out, _Live(), seed=0)
    assert summary["dendrites"]["params_in_training"] > summary["params"]  # dendrites were added
    assert 1 <= summary["epochs"] <= 3 and 0.0 <= summary["val"]["macro_f1"] <= 1.0
    assert "PAI.png" in summary["dendrites"]["graphs"]
    assert (tmp_path / "plots" / "pai" / "PAI.png").is_file()
    # A stock folder: the Predictor every consumer uses loads it, and scores val as trained.
    predictor = load_predictor(out, "torch-fp32")
    probs = predictor.predict_proba([t for t, _ in TRAINED_VAL])
    assert probs.shape == (len(TRAINED_VAL), 3)
    assert predictor.meta["params"] == summary["params"]
