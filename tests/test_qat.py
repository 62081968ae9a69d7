"""Quantisation-aware fine-tuning (finslm.qat): the simulated rounding is the INT8 graph's, and
the fine-tune keeps the epoch validation prefers."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from finslm.config import ExportConfig
from finslm.models import ModelError, read_meta
from finslm.predict import OnnxPredictor, TorchPredictor, load_predictor
from finslm.qat import (
    FakeQuantLinear,
    QatSettings,
    attach,
    detach,
    fake_quant_activation,
    fake_quant_weight,
    int8_graph,
    qat_finetune,
)
from tests.conftest import invented_sentences


def test_weight_rounding_is_per_channel_symmetric_7_bit():
    w = torch.randn(5, 40) * torch.arange(1, 6).unsqueeze(1)
    q = fake_quant_weight(w, reduce_range=True)
    scale = w.abs().amax(dim=1, keepdim=True) / 64
    levels = q / scale
    assert torch.allclose(levels, levels.round(), atol=1e-4)  # on the grid
    assert levels.abs().max() <= 64 + 1e-4
    assert torch.allclose(q.abs().amax(dim=1), w.abs().amax(dim=1))  # the extreme is exact
    assert (q - w).abs().max() <= scale.max() / 2 + 1e-6
    eight = fake_quant_weight(w, reduce_range=False)
    assert (eight - w).abs().mean() < (q - w).abs().mean()  # 8-bit rounds finer


def test_rounding_passes_gradients_straight_through():
    w = torch.randn(4, 8, requires_grad=True)
    (fake_quant_weight(w, True) * 3).sum().backward()
    assert torch.allclose(w.grad, torch.full_like(w, 3.0))
    x = torch.randn(2, 5, requires_grad=True)
    fake_quant_activation(x).sum().backward()
    assert torch.allclose(x.grad, torch.ones_like(x))


def test_activation_rounding_is_onnxruntime_dynamic_quantize_linear():
    import onnxruntime as ort
    from onnx import TensorProto, helper

    x = np.random.default_rng(0).normal(size=(3, 7, 16)).astype(np.float32) * 4 + 1
    node_q = helper.make_node("DynamicQuantizeLinear", ["x"], ["y", "s", "z"])
    node_d = helper.make_node("DequantizeLinear", ["y", "s", "z"], ["out"])
    graph = helper.make_graph(
        [node_q, node_d],
        "dql",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    expected = sess.run(None, {"x": x})[0]
    ours = fake_quant_activation(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ours, expected, atol=1e-6)


def test_attach_wraps_every_int8_matmul_and_detach_restores(tiny_classifier):
    model = TorchPredictor(tiny_classifier, read_meta(tiny_classifier)).model
    before = {k: v.clone() for k, v in model.state_dict().items()}
    layers = model.config.num_hidden_layers
    assert attach(model, True) == 6 * layers + 1  # Q, K, V, attention out, FFN up/down; head
    assert isinstance(model.classifier, FakeQuantLinear)
    detach(model)
    assert not any(isinstance(m, FakeQuantLinear) for m in model.modules())
    after = model.state_dict()
    assert set(after) == set(before)
    assert all(torch.equal(after[k], before[k]) for k in before)


def test_the_simulation_is_the_int8_graph(trained_tiny, tmp_path):
    """The fake-quantised model is much closer to the every-layer INT8 graph than fp32 is: the
    weights, activations, embedding tables and head are rounded where the graph rounds them.
    (A trained model: an untrained head's logits are too close to 0 to compare.)"""
    model_dir = trained_tiny[0]
    meta = read_meta(model_dir)
    reference = TorchPredictor(model_dir, meta)
    graph = tmp_path / "int8.onnx"
    int8_graph(model_dir, tmp_path / "work", graph, ExportConfig(), reduce_range=True)
    onnx = OnnxPredictor(model_dir, meta, graph=graph)
    simulated = copy.deepcopy(reference.model)
    attach(simulated, True)
    texts = [t for t, _ in invented_sentences(2)]
    fp32, fq, int8 = [], [], []
    for text in texts:  # batch 1: the ranges the server sees
        enc = {k: torch.from_numpy(v) for k, v in reference.encoder([text]).items()}
        with torch.no_grad():
            fq.append(simulated(**enc).logits.numpy())
        fp32.append(reference.logits([text]))
        int8.append(onnx.logits([text]))
    fp32, fq, int8 = map(np.concatenate, (fp32, fq, int8))
    graph_error = np.abs(fp32 - int8).mean()
    assert graph_error > 0  # the graph does round
    assert np.abs(fq - int8).mean() < 0.3 * graph_error


@pytest.mark.slow
def test_finetune_keeps_the_epoch_validation_prefers(tiny_classifier, tmp_path):
    train = [t for t, _ in invented_sentences(3)]
    val = [t for t, _ in invented_sentences(2, start=10)]
    out = tmp_path / "qat"
    history = qat_finetune(
        tiny_classifier, out, train, val, QatSettings(epochs=1, lr=1e-3, batch_size=8), log=print
    )
    assert [row["epoch"] for row in history] == [0, 1]
    assert history[0]["train_mse"] is None and history[1]["train_mse"] > 0
    meta = read_meta(out)
    chosen = meta["qat"]["chosen_epoch"]
    best = max(history, key=lambda r: (r["val_agreement"], -r["val_mean_abs_logit_diff"]))
    assert chosen == best["epoch"]
    assert meta["qat"]["source"] == str(tiny_classifier)
    assert load_predictor(out).predict_proba(val[:2]).shape == (2, 3)  # an ordinary model folder


def test_finetune_refuses_what_it_cannot_use(tiny_classifier, tiny_tfidf, tmp_path):
    with pytest.raises(ModelError, match="needs a transformer"):
        qat_finetune(tiny_tfidf, tmp_path / "a", ["a"], ["b"], QatSettings(epochs=1))
    with pytest.raises(ModelError, match="validation texts"):
        qat_finetune(tiny_classifier, tmp_path / "b", ["a"], [], QatSettings(epochs=1))


@pytest.mark.slow
def test_export_takes_its_int8_graph_from_the_qat_copy(tiny_classifier, tmp_path):
    import dataclasses

    from finslm.export import export_model

    cfg = dataclasses.replace(ExportConfig(), qat_epochs=1, qat_lr=1e-3, reduce_range=True)
    train = [t for t, _ in invented_sentences(3)]
    val = [t for t, _ in invented_sentences(2, start=10)]
    out = tmp_path / "export"
    metrics = export_model(tiny_classifier, out, val, cfg, log=lambda _: None, train_texts=train)
    qat = metrics["onnx-int8"]["qat"]
    assert [row["epoch"] for row in qat["history"]] == [0, 1]
    assert read_meta(out)["int8_qat"] == {"epochs": 1, "chosen_epoch": qat["chosen_epoch"]}
    # The gate compared the graph with the source model: the chosen epoch's validation numbers.
    chosen = qat["history"][qat["chosen_epoch"]]
    assert metrics["onnx-int8"]["agreement"] == pytest.approx(chosen["val_agreement"])
    with pytest.raises(ModelError, match="no training texts"):
        export_model(tiny_classifier, tmp_path / "again", val, cfg, log=lambda _: None)
