"""Structured pruning: the cut model has the size asked for, reloads with from_pretrained, matches
its ONNX export, and the choices follow the measured importance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from finslm.config import ConfigError, ExportConfig, PruneConfig, load_prune_config
from finslm.export import export_model
from finslm.labels import LABELS
from finslm.models import ModelError
from finslm.predict import load_predictor
from finslm.prune.importance import ffn_importance, layers_to_keep, mean_loss, top_neurons
from finslm.prune.run import _batches, load_transformer, prune_model
from finslm.prune.surgery import encoder, encoder_parameters, keep_layers, shrink_ffn
from finslm.train.distill import distill_loss
from tests.conftest import HELD_OUT, TRAINED_TRAIN, TRAINED_VAL, invented_sentences

TEXTS = ["Profit rose sharply.", "The plant was closed and 40 jobs cut.", "The meeting is today."]


@pytest.fixture()
def model(tiny_classifier):
    _, model, _ = load_transformer(tiny_classifier)
    return model


@pytest.fixture(scope="module")
def frames():
    rows = pd.DataFrame(invented_sentences(6), columns=["text", "label"])
    return rows.iloc[::2].reset_index(drop=True), rows.iloc[1::2].reset_index(drop=True)


def _layer_params(hidden: int, ffn: int) -> int:
    attention = 4 * (hidden * hidden + hidden) + 2 * hidden  # q, k, v, out + LayerNorm
    return attention + (hidden * ffn + ffn) + (ffn * hidden + hidden) + 2 * hidden


def test_cut_model_has_the_size_asked_for_and_reloads(model, tiny_classifier, tmp_path):
    tokenizer, _, _ = load_transformer(tiny_classifier)
    hidden = model.config.hidden_size
    assert encoder_parameters(model) == 2 * _layer_params(hidden, 64)
    keep_layers(model, [1])
    shrink_ffn(model, [torch.arange(0, 64, 4)])  # 16 of 64 neurons
    assert encoder_parameters(model) == _layer_params(hidden, 16)
    assert (model.config.num_hidden_layers, model.config.intermediate_size) == (1, 16)

    model.save_pretrained(tmp_path)
    from transformers import AutoModelForSequenceClassification

    again = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    enc = tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        assert torch.allclose(model.eval()(**enc).logits, again(**enc).logits, atol=1e-6)


def test_shrink_keeps_exactly_the_chosen_neurons(model, tiny_classifier):
    """Zeroing the dropped neurons in the full model gives the cut model's outputs."""
    tokenizer, _, _ = load_transformer(tiny_classifier)
    enc = tokenizer(TEXTS, padding=True, return_tensors="pt")
    keep = [torch.tensor([0, 5, 9, 33]), torch.tensor([1, 2, 40, 63])]
    with torch.no_grad():
        for layer, idx in zip(encoder(model).layer, keep, strict=True):
            drop = torch.ones(64, dtype=torch.bool)
            drop[idx] = False
            layer.output.dense.weight[:, drop] = 0  # a dropped neuron then adds nothing
        zeroed = model.eval()(**enc).logits
        shrink_ffn(model, keep)
        assert torch.allclose(model.eval()(**enc).logits, zeroed, atol=1e-5)


def test_ffn_importance_ranks_dead_neurons_last(model, tiny_classifier, frames):
    tokenizer, _, _ = load_transformer(tiny_classifier)
    dead = torch.tensor([3, 7, 11, 50])
    with torch.no_grad():
        for layer in encoder(model).layer:
            layer.output.dense.weight[:, dead] = 0  # no path to the loss: zero gradient
    scores = ffn_importance(model, _batches(tokenizer, frames[0], 32))
    for s in scores:
        assert torch.all(s[dead] == 0) and (s > 0).sum() == 64 - len(dead)
    kept = top_neurons(scores, 0.5)
    assert all(len(k) == 32 and not set(dead.tolist()) & set(k.tolist()) for k in kept)


def test_importance_layer_choice_is_the_greedy_minimum(model, tiny_classifier, frames):
    tokenizer, _, _ = load_transformer(tiny_classifier)
    val = _batches(tokenizer, frames[1], 32)
    kept, trace = layers_to_keep(model, val, 1, "importance")
    step = trace[1]
    assert step["val_loss"] == min(step["candidates"].values())
    assert kept == [1 - step["removed"]]
    assert len(encoder(model).layer) == 2  # the model itself is not cut by choosing
    assert layers_to_keep(model, val, 1, "top") == ([0], [])
    with pytest.raises(ValueError, match="only 2 layers"):
        layers_to_keep(model, val, 3, "top")
    keep_layers(model, kept)
    assert mean_loss(model, val) == pytest.approx(step["val_loss"], abs=1e-3)


def test_distill_loss_terms():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    labels = torch.tensor([0, 1])
    ce = torch.nn.functional.cross_entropy(logits, labels)
    assert torch.isclose(distill_loss(logits, logits * 3, labels, 0.0, 2.0), ce)
    # A student that equals its teacher pays only the label term.
    assert torch.isclose(distill_loss(logits, logits, labels, 0.7, 2.0), 0.3 * ce)
    assert distill_loss(logits, -logits, labels, 1.0, 2.0) > 0.1
    # The soft term is T^2 times KL(teacher_T || student_T), batch mean (Hinton et al. 2015).
    teacher, t = torch.tensor([[0.0, 1.0, 3.0], [1.0, 0.0, 0.0]]), 2.0
    p, q = torch.softmax(teacher / t, dim=1), torch.log_softmax(logits / t, dim=1)
    kl = (p * (p.log() - q)).sum(dim=1).mean()
    assert torch.isclose(distill_loss(logits, teacher, labels, 1.0, t), t * t * kl)


@pytest.mark.slow  # trains a transformer
def test_prune_model_end_to_end_then_onnx_parity(tiny_classifier, frames, tmp_path):
    train_df, val_df = frames
    cfg = PruneConfig(layers_keep=1, ffn_keep=0.25, epochs=1, batch_size=8, threads=1)
    summary = prune_model(cfg, tiny_classifier, train_df, val_df, tmp_path / "pruned")
    assert summary["layers"] == {"before": 2, "after": 1}
    assert summary["intermediate_size"] == 16
    assert summary["encoder_params_removed"] > 0.6  # one of two layers, 3/4 of its FFN

    predictor = load_predictor(tmp_path / "pruned", backend="torch-fp32")
    probs = predictor.predict_proba(TEXTS)
    assert probs.shape == (3, len(LABELS)) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    # The reported validation accuracy is the saved model's.
    predicted = np.array(predictor.predict(val_df.text.tolist()))
    assert summary["val"]["accuracy"] == pytest.approx(np.mean(predicted == val_df.label), abs=1e-4)

    metrics = export_model(
        tmp_path / "pruned", tmp_path / "export", TEXTS, ExportConfig(), log=lambda _: None
    )
    assert metrics["onnx-fp32"]["max_abs_logit_diff"] < 1e-4
    assert metrics["onnx-opt"]["agreement"] == 1.0


# A user's script: load the pruned folder with transformers alone (after registering finslm's
# mean-pooling head, as docs/methods/pruning.md says) and print its logits for argv[2:].
USER_LOAD = """
import json, sys
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer
from finslm.train import heads

heads.register()
model = AutoModelForSequenceClassification.from_pretrained(sys.argv[1]).eval()
tokenizer = AutoTokenizer.from_pretrained(sys.argv[1])
enc = tokenizer(sys.argv[2:], padding=True, return_tensors="pt")
with torch.no_grad():
    logits = model(**enc).logits
print(json.dumps({"class": type(model).__name__, "logits": logits.tolist()}))
"""


def test_prune_the_default_mean_pooling_model_and_reload_it_as_a_user_would(trained_tiny, tmp_path):
    """The default head (pooling: mean) survives pruning: the pruned folder is a
    finslm-meanpool-bert that reloads with from_pretrained, exports to ONNX with the same labels,
    and still classifies held-out sentences (>= 0.9) after distillation from the trained model."""
    import json
    import subprocess
    import sys

    from finslm.train.heads import MeanPoolBertForSequenceClassification, mean_pool

    frame = lambda rows: pd.DataFrame(rows, columns=["text", "label"])  # noqa: E731
    cfg = PruneConfig(layers_keep=1, ffn_keep=0.5, epochs=3, batch_size=8, lr=5e-3, threads=1)
    out = tmp_path / "pruned"
    summary = prune_model(cfg, trained_tiny[0], frame(TRAINED_TRAIN), frame(TRAINED_VAL), out)
    assert summary["layers"] == {"before": 2, "after": 1}

    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "finslm-meanpool-bert"
    assert config["architectures"] == ["MeanPoolBertForSequenceClassification"]
    assert (config["num_hidden_layers"], config["intermediate_size"]) == (1, 32)
    predictor = load_predictor(out, "torch-fp32", threads=1)
    assert predictor.meta["pooling"] == "mean"

    texts = [t for t, _ in HELD_OUT]
    gold = [y for _, y in HELD_OUT]
    labels = predictor.predict(texts)
    assert np.mean(np.array(labels) == np.array(gold)) >= 0.9

    # As a user would: a fresh process, transformers' Auto class, the folder's own tokenizer.
    user = subprocess.run(
        [sys.executable, "-c", USER_LOAD, str(out), *texts[:4]],
        capture_output=True,
        text=True,
        check=True,
    )
    loaded = json.loads(user.stdout.strip().splitlines()[-1])
    assert loaded["class"] == "MeanPoolBertForSequenceClassification"
    logits = torch.tensor(loaded["logits"])
    # Its logits are mean pooling's: the classifier applied to the masked mean of token states.
    model = MeanPoolBertForSequenceClassification.from_pretrained(out).eval()
    enc = predictor.tokenizer(texts[:4], padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model.bert(**enc).last_hidden_state
        by_hand = model.classifier(mean_pool(hidden, enc["attention_mask"]))
    assert torch.allclose(logits, by_hand, atol=1e-5)
    assert [LABELS[i] for i in logits.argmax(dim=1)] == labels[:4]

    metrics = export_model(out, tmp_path / "export", texts, ExportConfig(), log=lambda _: None)
    assert metrics["onnx-fp32"]["max_abs_logit_diff"] < 1e-4
    for backend in ("onnx-fp32", "onnx-opt"):
        assert load_predictor(tmp_path / "export", backend, threads=1).predict(texts) == labels


@pytest.mark.slow  # trains a transformer
def test_pruned_soup_is_the_mean_of_students_recovered_with_different_seeds(
    tiny_classifier, frames, tmp_path, monkeypatch
):
    from safetensors.torch import load_file

    import finslm.prune.run as run

    students, seeds = [], []

    def recording_distill(student, *args):
        summary = real_distill(student, *args)
        students.append({k: v.detach().clone() for k, v in student.state_dict().items()})
        seeds.append(args[-2].seed)
        return summary

    real_distill = run.distill
    monkeypatch.setattr(run, "distill", recording_distill)
    train_df, val_df = frames
    cfg = PruneConfig(layers_keep=1, ffn_keep=0.5, epochs=2, batch_size=4, threads=1, soup_size=2)
    summary = prune_model(cfg, tiny_classifier, train_df, val_df, tmp_path / "pruned")

    assert seeds == [42, 43]
    assert [i["seed"] for i in summary["soup"]["ingredients"]] == [42, 43]
    assert summary["epochs"] == sum(i["epochs"] for i in summary["soup"]["ingredients"])
    key = "bert.encoder.layer.0.intermediate.dense.weight"
    assert not torch.allclose(students[0][key], students[1][key])  # the seeds did differ
    saved = load_file(tmp_path / "pruned" / "model.safetensors")
    for name, tensor in saved.items():
        if tensor.is_floating_point():
            expected = (students[0][name] + students[1][name]) / 2
            assert torch.allclose(tensor, expected, atol=1e-6), name
    # The soup's own validation score is reported, and the folder is a loadable finslm model.
    predictor = load_predictor(tmp_path / "pruned", backend="torch-fp32")
    probs = predictor.predict_proba(val_df.text)
    # Students named by seed, not by their temporary folder: same seeds, same folder bytes.
    assert sorted(predictor.meta["soup"]["ingredients"]) == ["seed42", "seed43"]
    predicted = [LABELS[i] for i in probs.argmax(axis=1)]
    assert summary["val"]["accuracy"] == pytest.approx(np.mean(predicted == val_df.label), abs=1e-4)
    assert summary["params"] == summary["params_before"] - (
        summary["encoder_params_before"] - summary["encoder_params"]
    )


def test_config_errors_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match="prune.ffn_keep"):
        PruneConfig(ffn_keep=0)
    with pytest.raises(ConfigError, match="prune.soup_size"):
        PruneConfig(soup_size=0)
    params = tmp_path / "params.yaml"
    params.write_text("models: {tfidf: {kind: tfidf}}\nprune: {model: tfidf}\n")
    with pytest.raises(ConfigError, match="prune.model: 'tfidf' has kind 'tfidf'; pruning cuts a"):
        load_prune_config(params)
    params.write_text("models: {m: {kind: transformer}}\nprune: {model: m, layer_keep: 3}\n")
    with pytest.raises(ConfigError, match="unknown key"):
        load_prune_config(params)


# `dvc exp show --csv` as dvc 3.67 writes it: bare column names where only one file has the key,
# "file:key" where several do; "!" where an experiment has no value.
EXP_CSV = """Experiment,rev,typ,Created,parent,metrics/prune.json:val.accuracy,metrics/train/minilm.json:val.accuracy,encoder_params,encoder_params_removed,minilm-pruned/onnx-int8.accuracy,minilm-pruned/onnx-int8.p50_ms,minilm-pruned/onnx-int8.size_mb,prune.layers_keep,prune.ffn_keep
,workspace,baseline,,,0.80,0.81,4727808,0.556,0.83,1.20,27.0,4,0.5
,main,baseline,2026-11-23T18:08:09,,0.80,0.81,4727808,0.556,0.83,1.20,27.0,4,0.5
sunny-oak,a1b2c3d,branch_base,2026-11-23T18:20:14,,0.82,0.81,5910528,0.445,0.84,1.45,29.0,5,0.5
queued-one,,queued,2026-11-23T18:21:14,,!,!,!,!,!,!,!,3,0.5
"""


def test_frontier_reads_the_sweep_and_draws_it(tmp_path):
    from finslm.prune.frontier import main, sweep_points

    points = sweep_points(EXP_CSV)
    assert [p["layers"] for p in points] == [4, 5]  # main repeats the workspace; queued: no data
    five = points[1]
    assert five["val_accuracy"] == 0.82 and five["test_accuracy"] == 0.84
    assert five["p50_ms"] == 1.45 and five["encoder_params"] == 5910528
    (tmp_path / "exp.csv").write_text(EXP_CSV)
    png, table = tmp_path / "f.png", tmp_path / "t.md"
    main(["--csv", str(tmp_path / "exp.csv"), "--plot", str(png), "--table", str(table)])
    assert png.read_bytes()[:4] == b"\x89PNG"
    rows = table.read_text().splitlines()
    assert (
        len(rows) == 4 and "| sunny-oak | 5 | 0.5 | 5,910,528 | 44.5% | 0.820 | 0.840 |" in rows[2]
    )
    with pytest.raises(ValueError, match="no prune metrics"):
        sweep_points("Experiment,rev\n,workspace\n")


def test_recovery_distils_from_the_teacher_asked_for(
    tiny_classifier, trained_tiny, tmp_path, monkeypatch
):
    """prune.teacher: the cut is made on the source, the recovery's soft targets are the other
    model's logits on the train split (as teacher_logits@<t> scores it), and both are recorded."""
    import finslm.prune.run as run
    from finslm.models import read_meta

    seen = []

    def capturing_distill(student, tokenizer, train_df, val_df, logits, *args, **kwargs):
        seen.append(np.array(logits))
        return {"val": {"accuracy": 0.5, "macro_f1": 0.5}}

    monkeypatch.setattr(run, "distill", capturing_distill)
    frame = lambda rows: pd.DataFrame(rows, columns=["text", "label"])  # noqa: E731
    train_df, val_df = frame(TRAINED_TRAIN), frame(TRAINED_VAL)
    cfg = PruneConfig(layers_keep=1, ffn_keep=0.5, threads=1, importance_sentences=8)
    own = prune_model(cfg, tiny_classifier, train_df, val_df, tmp_path / "own")
    other = prune_model(
        cfg, tiny_classifier, train_df, val_df, tmp_path / "other", teacher_dir=trained_tiny[0]
    )

    expected = load_predictor(trained_tiny[0], "torch-fp32", threads=1).logits(
        train_df.text.tolist()
    )
    np.testing.assert_allclose(seen[1], expected, atol=1e-4)
    assert np.abs(seen[0] - seen[1]).max() > 0.1  # the source's logits were not used
    assert own["layers_kept"] == other["layers_kept"]  # the cut does not depend on the teacher
    assert own["teacher"] == str(tiny_classifier) and other["teacher"] == str(trained_tiny[0])
    assert read_meta(tmp_path / "other")["recovered_from"] == str(trained_tiny[0])

    with pytest.raises(ModelError, match=r"models/absent: not found; run `dvc repro train@absent`"):
        prune_model(
            cfg,
            tiny_classifier,
            train_df,
            val_df,
            tmp_path / "x",
            teacher_dir=Path("models/absent"),
        )


def test_prune_teacher_must_be_a_transformer(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(
        "models: {m: {kind: transformer}, tfidf: {kind: tfidf}}\nprune: {model: m, teacher: tfidf}\n"
    )
    with pytest.raises(ConfigError, match="prune.teacher: 'tfidf' has kind 'tfidf'"):
        load_prune_config(params)
    params.write_text("models: {m: {kind: transformer}}\nprune: {model: m}\n")
    assert load_prune_config(params).recovery_teacher == "m"  # empty: the unpruned source


def test_ffn_importance_is_additive_over_sentences(model, tiny_classifier, frames):
    from finslm.prune.run import _batches, load_transformer

    tokenizer, _, _ = load_transformer(tiny_classifier)
    whole = list(_batches(tokenizer, frames[0].iloc[:8], 64, 8))
    single = list(_batches(tokenizer, frames[0].iloc[:8], 64, 1))
    a, b = ffn_importance(model, whole), ffn_importance(model, single)
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x, y, rtol=1e-3, atol=1e-6)
