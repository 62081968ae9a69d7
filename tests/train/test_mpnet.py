"""MPNet (all-mpnet-base-v2's architecture) through the same code paths as MiniLM: the mean-pooling
head, training, reload through the Auto classes, ONNX export with parity. A tiny random MPNet
from MPNetConfig with MiniLM's tokenizer stands in for the 110M teacher (offline, seconds)."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest

from finslm.config import ExportConfig
from finslm.models import load_for_finetuning, resolve_checkpoint
from tests.conftest import HELD_OUT, TINY_BERT, train_tiny


def make_tiny_mpnet(path: Path, seed: int = 0) -> Path:
    import torch
    from transformers import AutoTokenizer, MPNetConfig, MPNetModel

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(resolve_checkpoint("packaged:all-MiniLM-L6-v2"))
    # MPNet positions start after padding_idx (= pad_token_id): room for max_length + 2.
    settings = {**TINY_BERT, "max_position_embeddings": 130}
    config = MPNetConfig(
        vocab_size=tokenizer.vocab_size, pad_token_id=tokenizer.pad_token_id, **settings
    )
    MPNetModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def tiny_mpnet(tmp_path_factory) -> Path:
    return make_tiny_mpnet(tmp_path_factory.mktemp("tiny-mpnet"))


@pytest.fixture(scope="module")
def trained_mpnet(tmp_path_factory, tiny_mpnet) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("models") / "mpnet"
    return out, train_tiny(tiny_mpnet, out)


def test_mean_pooling_builds_the_mpnet_head(tiny_mpnet):
    from finslm.train.heads import MeanPoolMPNetForSequenceClassification

    _, model = load_for_finetuning(str(tiny_mpnet), pooling="mean")
    assert isinstance(model, MeanPoolMPNetForSequenceClassification)
    assert model.config.model_type == "finslm-meanpool-mpnet"
    # MPNet has no segment embeddings: neither forward() nor the ONNX graph takes them.
    assert "token_type_ids" not in inspect.signature(model.forward).parameters


def test_cls_pooling_uses_the_stock_mpnet_head(tiny_mpnet):
    _, model = load_for_finetuning(str(tiny_mpnet), pooling="cls")
    assert type(model).__name__ == "MPNetForSequenceClassification"


@pytest.mark.slow
def test_trained_mpnet_reloads_and_exports_with_parity(trained_mpnet, tmp_path):
    from finslm.export import export_model, parity_failures
    from finslm.predict import load_predictor

    model_dir, summary = trained_mpnet
    assert json.loads((model_dir / "config.json").read_text())["model_type"] == (
        "finslm-meanpool-mpnet"
    )
    texts = [t for t, _ in HELD_OUT]
    predictor = load_predictor(model_dir)
    gold = [label for _, label in HELD_OUT]
    assert sum(p == g for p, g in zip(predictor.predict(texts), gold, strict=True)) >= 20
    cfg = ExportConfig(int8_keep_fp32=[0, "layer.1/output/dense"])
    metrics = export_model(model_dir, tmp_path / "e", texts, cfg, log=lambda _: None)
    assert parity_failures(metrics, cfg) == []
    assert metrics["onnx-fp32"]["max_abs_logit_diff"] < 1e-4
    assert metrics["onnx-opt"]["fused"].get("SkipLayerNormalization", 0) > 0
    assert metrics["onnx-int8"]["agreement"] >= 0.95
    assert metrics["onnx-int8"]["fp32_nodes"] > 0  # layer 0 and layer.1/output/dense exist
    onnx = load_predictor(tmp_path / "e")
    assert onnx.predict(texts) == predictor.predict(texts)


def test_commented_mpnet_entry_is_a_valid_model_when_uncommented(tmp_path):
    """params.yaml ships the teacher commented out (off); uncommented it must load as is."""
    import re

    from finslm.config import TransformerConfig, load_params

    root = Path(__file__).resolve().parents[2]
    text = (root / "params.yaml").read_text(encoding="utf-8")
    block = re.search(r"^  # mpnet:\n(?:^  #   .*\n)+", text, flags=re.M)
    assert block, "params.yaml: the commented models.mpnet block is missing"
    enabled = re.sub(r"^  # ", "  ", block.group(0), flags=re.M)
    (tmp_path / "params.yaml").write_text(text.replace(block.group(0), enabled), encoding="utf-8")
    mpnet = load_params(tmp_path / "params.yaml").models["mpnet"]
    assert isinstance(mpnet, TransformerConfig)
    assert (mpnet.checkpoint, mpnet.pooling) == ("packaged:all-mpnet-base-v2", "mean")


def test_freeze_layers_freezes_embeddings_and_the_lower_layers(tiny_mpnet, tiny_checkpoint):
    from finslm.train.optim import freeze_lower

    for checkpoint in (tiny_mpnet, tiny_checkpoint):  # MPNet and BERT alike
        _, model = load_for_finetuning(str(checkpoint), pooling="mean")
        base = getattr(model, model.base_model_prefix)
        trainable = freeze_lower(model, 1)
        assert not any(p.requires_grad for p in base.embeddings.parameters())
        assert not any(p.requires_grad for p in base.encoder.layer[0].parameters())
        assert all(p.requires_grad for p in base.encoder.layer[1].parameters())
        assert all(p.requires_grad for p in model.classifier.parameters())
        assert trainable == sum(p.numel() for p in model.parameters() if p.requires_grad)
        with pytest.raises(ValueError, match="only 2 layers"):
            freeze_lower(model, 2)


def test_freeze_layers_is_checked():
    from finslm.config import ConfigError, model_config

    with pytest.raises(ConfigError, match="freeze_layers"):
        model_config("m", {"kind": "transformer", "freeze_layers": -1})
    with pytest.raises(ConfigError, match="fgm_epsilon"):
        model_config("m", {"kind": "transformer", "freeze_layers": 2, "fgm_epsilon": 0.1})
