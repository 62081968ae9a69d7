"""LoRA (finslm/train/lora.py): only adapters and head train; the saved model is a stock one."""

from __future__ import annotations

import pytest
import torch
from safetensors import safe_open

from finslm.ablation import parse_overrides, recipe, with_overrides
from finslm.config import ConfigError, LoraConfig, model_config
from finslm.models import ModelError, load_for_finetuning
from finslm.train.lora import add_adapters, head_modules, merge_adapters, trainable_parameters
from tests.conftest import HELD_OUT, TINY_BERT, train_tiny

HIDDEN, LAYERS, LABELS = TINY_BERT["hidden_size"], TINY_BERT["num_hidden_layers"], 3


def _adapted(checkpoint, pooling="mean", **lora):
    _, model = load_for_finetuning(str(checkpoint), pooling=pooling)
    return add_adapters(model, LoraConfig(**{"r": 4, **lora}))


def _logits(model, tokenizer):
    batch = tokenizer([t for t, _ in HELD_OUT[:8]], padding=True, return_tensors="pt")
    model.eval()
    with torch.no_grad():
        return model(**batch).logits


@pytest.mark.parametrize(
    "lora, message",
    [
        ({"r": -1}, "models.m.lora.r: got -1; must be >= 0"),
        ({"alpha": 0}, "models.m.lora.alpha: got 0.0; must be > 0"),
        ({"dropout": 1.0}, "models.m.lora.dropout: got 1.0; must be in [0, 1)"),
        ({"target_modules": []}, "models.m.lora.target_modules: got []; must be a non-empty"),
        ({"rank": 8}, "models.m.lora: unknown key(s) rank; known keys: alpha, dropout, r,"),
        (8, "models.m.lora: expected a mapping of settings, got 8"),
    ],
)
def test_bad_lora_settings_name_the_key(lora, message):
    with pytest.raises(ConfigError, match=None) as err:
        model_config("m", {"kind": "transformer", "lora": lora})
    assert str(err.value).startswith(message)


def test_lora_is_off_by_default_and_refuses_fgm():
    assert model_config("m", {"kind": "transformer"}).lora == LoraConfig(r=0)
    with pytest.raises(ConfigError, match="models.m.fgm_epsilon: .* with lora.r > 0"):
        model_config("m", {"kind": "transformer", "fgm_epsilon": 1.0, "lora": {"r": 8}})


def test_ablation_sets_one_setting_of_the_block():
    raw = {"m": {"kind": "transformer", "lora": {"alpha": 32.0}}}
    cfg = recipe(raw, "m", parse_overrides(["lora.r=8", "lr=5e-4"]))
    assert (cfg.lora.r, cfg.lora.alpha, cfg.lr) == (8, 32.0, 5e-4)
    assert with_overrides({}, {"lora.r": 4}) == {"lora": {"r": 4}}
    with pytest.raises(ConfigError, match="models.m.lora.r: expected an integer"):
        recipe(raw, "m", parse_overrides(["lora.r=eight"]))


@pytest.mark.parametrize(
    "pooling, head", [("mean", ["classifier"]), ("cls", ["classifier", "pooler"])]
)
def test_only_adapters_and_head_train(tiny_checkpoint, pooling, head):
    model = _adapted(tiny_checkpoint, pooling, target_modules=["query", "value"])
    assert head_modules(model.base_model.model) == head
    counts = trainable_parameters(model)
    adapters = LAYERS * 2 * 4 * (HIDDEN + HIDDEN)  # 2 layers x {query, value} x r(in + out)
    classifier = HIDDEN * LABELS + LABELS
    pooler = HIDDEN * HIDDEN + HIDDEN if pooling == "cls" else 0
    assert counts["trainable"] == adapters + classifier + pooler
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert all("lora_" in n or "modules_to_save" in n for n in trainable)
    assert counts["share"] < 0.01  # the word embeddings dominate the tiny BERT


def test_unknown_target_module_is_a_model_error(tiny_checkpoint):
    with pytest.raises(ModelError, match=r"models.<name>.lora.target_modules: \['qkv'\]"):
        _adapted(tiny_checkpoint, target_modules=["qkv"])


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_merged_model_saves_as_a_stock_model_with_the_same_logits(
    tmp_path, tiny_checkpoint, pooling
):
    from transformers import AutoModelForSequenceClassification

    from finslm.train.heads import register

    tokenizer, _ = load_for_finetuning(str(tiny_checkpoint), pooling=pooling)
    model = _adapted(tiny_checkpoint, pooling, target_modules=["query", "value", "dense"])
    with torch.no_grad():  # as if trained: B starts at zero, which would make merging trivial
        for name, p in model.named_parameters():
            if "lora_B" in name or "modules_to_save" in name:
                p.add_(torch.randn_like(p) * 0.1)
    adapted = _logits(model, tokenizer)
    merged = merge_adapters(model)
    assert type(merged).__module__.startswith(("transformers", "finslm"))
    torch.testing.assert_close(_logits(merged, tokenizer), adapted, atol=1e-5, rtol=0)

    merged.save_pretrained(tmp_path, safe_serialization=True)
    with safe_open(tmp_path / "model.safetensors", "pt") as f:
        keys = list(f.keys())
    _, plain = load_for_finetuning(str(tiny_checkpoint), pooling=pooling)
    assert sorted(keys) == sorted(plain.state_dict())  # the keys of a fully tuned model
    assert not [k for k in keys if "lora" in k or "base_layer" in k or "modules_to_save" in k]
    register()
    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path)
    torch.testing.assert_close(_logits(reloaded, tokenizer), adapted, atol=1e-5, rtol=0)


@pytest.mark.slow
def test_lora_training_saves_a_plain_model_that_learned(tmp_path, tiny_checkpoint):
    from finslm.config import ExportConfig
    from finslm.export import export_model
    from finslm.predict import load_predictor

    full = train_tiny(tiny_checkpoint, tmp_path / "full")
    lora = train_tiny(tiny_checkpoint, tmp_path / "lora", lora=LoraConfig(r=4))
    assert lora["params"] == full["params"]  # merged: the same architecture
    assert lora["trainable_params"] < full["trainable_params"] / 100
    assert lora["peak_rss_mb"] > 0 and lora["seconds_per_epoch"] > 0
    assert lora["val"]["accuracy"] >= 0.6  # learned (chance is 1/3) from adapters + head alone
    predictor = load_predictor(tmp_path / "lora")
    texts = [t for t, _ in HELD_OUT]
    assert len(predictor.predict(texts)) == len(texts)
    with safe_open(tmp_path / "lora" / "model.safetensors", "pt") as f:
        assert not [k for k in f.keys() if "lora" in k]  # noqa: SIM118 (safe_open)
    # The merged model goes through export unchanged: fp32, optimised and INT8 graphs pass
    # the parity gate (export_model raises ParityError otherwise).
    metrics = export_model(tmp_path / "lora", tmp_path / "export", texts, ExportConfig(), log=str)
    assert {"onnx-fp32", "onnx-int8"} <= set(metrics)
