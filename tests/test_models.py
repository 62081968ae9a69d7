"""The checkpoint resolver: packaged, local folder, hub id — and clear errors otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest

from finslm.models import ModelError, load_for_finetuning, read_meta, resolve_checkpoint


def test_packaged_minilm_resolves_to_a_folder_with_weights():
    path = Path(resolve_checkpoint("packaged:all-MiniLM-L6-v2"))
    assert (path / "config.json").is_file()
    assert (path / "model.safetensors").is_file()


def test_unknown_packaged_name_lists_known():
    with pytest.raises(ModelError, match="known: packaged:all-MiniLM-L6-v2"):
        resolve_checkpoint("packaged:gpt-5")


def test_local_folder_must_hold_config(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="has no config.json"):
        resolve_checkpoint(str(tmp_path / "empty"))


def test_local_folder_resolves(tiny_checkpoint):
    assert resolve_checkpoint(str(tiny_checkpoint)) == str(tiny_checkpoint)


def test_relative_folder_is_read_from_root(tiny_checkpoint):
    assert resolve_checkpoint(tiny_checkpoint.name, root=tiny_checkpoint.parent) == str(
        tiny_checkpoint
    )


@pytest.mark.parametrize(
    "spec", ["huawei-noah/TinyBERT_General_4L_312D", "distilbert-base-uncased"]
)
def test_hub_ids_pass_through(spec):
    assert resolve_checkpoint(spec) == spec


@pytest.mark.parametrize("spec", ["./missing", "/no/such/dir", "a b c"])
def test_neither_folder_nor_hub_id(spec):
    with pytest.raises(ModelError, match="no such folder"):
        resolve_checkpoint(spec)


def test_offline_hub_id_gives_actionable_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match="Offline\\? Use packaged:all-MiniLM-L6-v2"):
        load_for_finetuning("finslm-test/not-a-real-model-xyz")


def test_finetuning_model_has_three_labelled_outputs(tiny_checkpoint):
    _, model = load_for_finetuning(str(tiny_checkpoint))
    assert model.config.num_labels == 3
    assert model.config.id2label == {0: "negative", 1: "neutral", 2: "positive"}


def test_read_meta_on_plain_folder_says_how_to_build(tmp_path):
    with pytest.raises(ModelError, match="dvc repro train@"):
        read_meta(tmp_path)


def test_mean_pooling_head_keeps_encoder_weights_and_round_trips(tmp_path, tiny_checkpoint):
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForSequenceClassification

    from finslm.train.heads import MeanPoolBertForSequenceClassification, register

    register()
    tokenizer, model = load_for_finetuning(str(tiny_checkpoint), pooling="mean")
    assert isinstance(model, MeanPoolBertForSequenceClassification)
    source = load_file(tiny_checkpoint / "model.safetensors")
    key = next(k for k in source if k.endswith("encoder.layer.1.output.dense.weight"))
    assert torch.equal(model.bert.encoder.layer[1].output.dense.weight, source[key])
    model.save_pretrained(tmp_path)
    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path)
    assert type(reloaded) is type(model)
    enc = tokenizer(
        ["Profit rose.", "Sales fell sharply in the quarter."], padding=True, return_tensors="pt"
    )
    model.eval(), reloaded.eval()
    with torch.no_grad():
        assert torch.allclose(model(**enc).logits, reloaded(**enc).logits)


def test_mean_pooling_ignores_padding(tiny_checkpoint):
    import torch

    tokenizer, model = load_for_finetuning(str(tiny_checkpoint), pooling="mean")
    model.eval()
    alone = tokenizer(["Profit rose."], return_tensors="pt")
    padded = tokenizer(
        ["Profit rose.", "A much longer sentence about quarterly sales figures."],
        padding=True,
        return_tensors="pt",
    )
    with torch.no_grad():
        a = model(**alone).logits[0]
        b = model(**padded).logits[0]
    assert torch.allclose(a, b, atol=1e-5)


def test_mean_pooling_passes_encoder_options_through(tiny_checkpoint):
    """Attention explanations ask for attentions; gradient methods feed inputs_embeds."""
    import torch

    tokenizer, model = load_for_finetuning(str(tiny_checkpoint), pooling="mean")
    model.set_attn_implementation("eager")
    model.eval()
    enc = tokenizer(
        ["Profit rose.", "Sales fell sharply this year."], padding=True, return_tensors="pt"
    )
    with torch.no_grad():
        out = model(**enc, output_attentions=True, output_hidden_states=True)
        embeds = model.get_input_embeddings()(enc["input_ids"])
        via_embeds = model(inputs_embeds=embeds, attention_mask=enc["attention_mask"]).logits
    layers = model.config.num_hidden_layers
    assert len(out.attentions) == layers and len(out.hidden_states) == layers + 1
    assert out.attentions[0].shape[-1] == enc["input_ids"].shape[1]
    assert torch.allclose(via_embeds, out.logits, atol=1e-5)


def test_mean_pooling_rejects_non_bert(tmp_path):
    from transformers import DistilBertConfig

    DistilBertConfig(vocab_size=100, dim=16, n_layers=1, n_heads=2, hidden_dim=32).save_pretrained(
        tmp_path
    )
    with pytest.raises(ModelError, match=r"models.<name>.pooling: 'mean' supports BERT-family"):
        load_for_finetuning(str(tmp_path), pooling="mean")


def test_a_saved_tokenizer_is_the_same_bytes_online_and_offline(tiny_checkpoint, tmp_path):
    """transformers stores from_pretrained(local_files_only=...) (set by HF_HUB_OFFLINE) in
    tokenizer_config.json; the saved folder, and so its DVC hash, must not depend on it."""
    from transformers import AutoTokenizer

    from finslm.models import save_tokenizer

    saved = []
    for offline in (False, True):
        tok = AutoTokenizer.from_pretrained(str(tiny_checkpoint), local_files_only=offline)
        out = tmp_path / f"offline-{offline}"
        save_tokenizer(tok, out)
        saved.append((out / "tokenizer_config.json").read_bytes())
    assert saved[0] == saved[1]
    assert b"local_files_only" not in saved[0]
