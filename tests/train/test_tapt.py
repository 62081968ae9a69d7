"""Task-adaptive pre-training: masked-LM on the training texts, once per recipe, then fine-tuning."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
from safetensors.numpy import load_file

from finslm.config import ConfigError, model_config
from finslm.models import ModelError, load_for_finetuning
from finslm.train.recipe import fit_transformer
from finslm.train.tapt import TaptError, adapt_checkpoint, tapt_stage
from tests.conftest import invented_sentences
from tests.train.test_transformer import _tiny_cfg


@pytest.fixture(scope="module")
def splits():
    df = pd.DataFrame(invented_sentences(8), columns=["text", "label"])
    val = df.iloc[::4]
    return df.drop(val.index), val


def _weights(folder):
    return load_file(next(folder.glob("*.safetensors")))


def _layer0_query(weights):
    return weights[next(k for k in weights if "layer.0.attention.self.query.weight" in k)]


@pytest.mark.slow  # trains a transformer
def test_mlm_stage_learns_the_training_texts_and_leaves_the_head_alone(splits, tiny_checkpoint):
    from finslm.train.determinism import set_determinism

    train, _ = splits
    cfg = dataclasses.replace(_tiny_cfg(tiny_checkpoint), tapt_epochs=8, tapt_lr=1e-2)
    set_determinism(1, 1)  # the head's init and the masks come from torch's global RNG
    tokenizer, model = load_for_finetuning(str(tiny_checkpoint), pooling="mean")
    head_before = model.classifier.weight.detach().clone()
    query_before = model.bert.encoder.layer[0].attention.self.query.weight.detach().clone()
    summary = tapt_stage(model, tokenizer, train.text.tolist(), cfg, seed=1)
    losses, accuracy = summary["loss_per_epoch"], summary["masked_accuracy_per_epoch"]
    # Six templates: a 2-layer model learns to fill in their masked words (from ~ln(30k) = 10.3;
    # seeds 0-3 all end below 0.45 of the first epoch's loss). Few tokens are masked per epoch,
    # so the accuracy is noisy: its best late epoch beats the first.
    assert len(losses) == 8 and losses[-1] < 0.6 * losses[0]
    assert max(accuracy[-3:]) > accuracy[0]
    assert summary["sentences"] == len(train)
    assert np.array_equal(model.classifier.weight.detach(), head_before)
    assert not np.array_equal(
        model.bert.encoder.layer[0].attention.self.query.weight.detach(), query_before
    )


@pytest.mark.slow  # trains a transformer
def test_adapted_encoder_is_a_plain_bert_checkpoint_for_either_head(
    tmp_path, splits, tiny_checkpoint
):
    train, _ = splits
    cfg = dataclasses.replace(_tiny_cfg(tiny_checkpoint), tapt_epochs=1, pooling="mean")
    summary = adapt_checkpoint(cfg, train, tmp_path / "adapted", seed=3, threads=1)
    assert summary["seconds"] >= 0 and len(summary["loss_per_epoch"]) == 1
    config = json.loads((tmp_path / "adapted" / "config.json").read_text())
    assert config["model_type"] == "bert"
    adapted = _weights(tmp_path / "adapted")
    assert not np.array_equal(_layer0_query(adapted), _layer0_query(_weights(tiny_checkpoint)))
    # The mean head and the stock [CLS] head both load it with their own fresh classifier.
    for pooling, cls_name in (
        ("mean", "MeanPoolBertForSequenceClassification"),
        ("cls", "BertForSequenceClassification"),
    ):
        _, model = load_for_finetuning(str(tmp_path / "adapted"), pooling=pooling)
        assert type(model).__name__ == cls_name
        query = model.base_model.encoder.layer[0].attention.self.query.weight.detach().numpy()
        assert np.array_equal(query, _layer0_query(adapted))


@pytest.mark.slow  # trains a transformer
def test_fit_adapts_once_and_every_soup_ingredient_starts_from_it(
    tmp_path, splits, tiny_checkpoint, monkeypatch
):
    import finslm.train.tapt
    import finslm.train.transformer

    train, val = splits
    cfg = dataclasses.replace(_tiny_cfg(tiny_checkpoint), epochs=1, tapt_epochs=1, soup_size=2)
    adapted, starts = [], []
    real_adapt, real_train = (
        finslm.train.tapt.adapt_checkpoint,
        finslm.train.transformer.train_transformer,
    )

    def spy_adapt(cfg, train_df, out_dir, seed, threads=0):
        adapted.append((seed, list(train_df.text)))
        return real_adapt(cfg, train_df, out_dir, seed, threads)

    def spy_train(*args, init_from=None, **kwargs):
        starts.append(init_from)
        return real_train(*args, init_from=init_from, **kwargs)

    monkeypatch.setattr(finslm.train.tapt, "adapt_checkpoint", spy_adapt)
    monkeypatch.setattr(finslm.train.transformer, "train_transformer", spy_train)
    summary = fit_transformer(cfg, train, val, tmp_path / "soup", seed=7, threads=1)
    # Once, on the training texts only (validation text is never seen by the MLM).
    assert adapted == [(7, list(train.text))]
    assert len(starts) == 2 and starts[0] is not None and starts[0] == starts[1]
    assert summary["soup"]["size"] == 2 and len(summary["tapt"]["loss_per_epoch"]) == 1
    assert summary["seconds"] >= summary["tapt"]["seconds"]
    meta = json.loads((tmp_path / "soup" / "finslm.json").read_text())
    assert meta["checkpoint"] == str(tiny_checkpoint)  # the origin, not the temporary folder


@pytest.mark.slow  # trains a transformer
def test_fit_without_tapt_is_the_plain_recipe(tmp_path, splits, tiny_checkpoint):
    train, val = splits
    cfg = dataclasses.replace(_tiny_cfg(tiny_checkpoint), epochs=1)
    summary = fit_transformer(cfg, train, val, tmp_path / "m", seed=5, threads=1)
    assert "tapt" not in summary
    from finslm.train.transformer import train_transformer

    train_transformer(cfg, train, val, tmp_path / "direct", seed=5, threads=1)
    assert all(
        np.array_equal(a, b)
        for a, b in zip(
            _weights(tmp_path / "m").values(), _weights(tmp_path / "direct").values(), strict=True
        )
    )


def test_tapt_refuses_a_non_bert_encoder(splits, tiny_checkpoint):
    train, _ = splits
    tokenizer, model = load_for_finetuning(str(tiny_checkpoint))
    model.config.model_type = "distilbert"
    cfg = dataclasses.replace(_tiny_cfg(tiny_checkpoint), tapt_epochs=1)
    with pytest.raises(
        TaptError, match=r"models.<name>.tapt_epochs: needs a BERT.*'distilbert': set it to 0"
    ) as caught:
        tapt_stage(model, tokenizer, train.text.tolist(), cfg, seed=0)
    # The train stage and `finslm ablate` turn a ModelError into one line, not a traceback.
    assert isinstance(caught.value, ModelError)


@pytest.mark.parametrize(
    "key,value,message",
    [
        ("tapt_epochs", -1, ">= 0"),
        ("tapt_lr", 0.0, "> 0"),
        ("tapt_mask_prob", 1.0, "between 0 and 1"),
    ],
)
def test_tapt_settings_are_checked(key, value, message):
    with pytest.raises(ConfigError, match=f"models.m.{key}: got .*; must be {message}"):
        model_config("m", {"kind": "transformer", key: value})
