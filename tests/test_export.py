"""ONNX export: files, dynamic axes, parity with PyTorch, INT8 vs fp32, and the parity gate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from finslm.config import ConfigError, ExportConfig, load_export_config
from finslm.export import export_model, parity_failures, quantize_graph, select_nodes
from finslm.models import ModelError, read_meta
from finslm.predict import ONNX_FILES, OnnxPredictor, load_predictor, onnx_graph_files

from .conftest import HELD_OUT, TINY_BERT, TRAINED_VAL, invented_sentences, load_stage

ROOT = Path(__file__).resolve().parents[1]
TEXTS = [t for t, _ in invented_sentences(4)]


def test_writes_three_self_contained_graphs_and_a_loadable_folder(tiny_export, tiny_classifier):
    folder, _ = tiny_export
    for filename in ONNX_FILES.values():
        # One file per graph: no .onnx.data to forget when measuring or shipping.
        assert onnx_graph_files(folder / filename) == [folder / filename]
    assert not list(folder.glob("*.data"))
    meta = read_meta(folder)
    assert meta["kind"] == "onnx" and meta["name"] == tiny_classifier.name
    assert meta["max_length"] == 64 and meta["params"] > 0
    # INT8 weights are a quarter of fp32 (the tiny model is mostly its embedding matrix).
    sizes = {f: (folder / f).stat().st_size for f in ONNX_FILES.values()}
    assert sizes["model.int8.onnx"] < 0.4 * sizes["model.onnx"]


def test_optimizer_fused_attention(tiny_export):
    _, metrics = tiny_export
    fused = metrics["onnx-opt"]["fused"]
    assert fused.get("Attention") == TINY_BERT["num_hidden_layers"], fused
    assert fused.get("SkipLayerNormalization", 0) > 0


def test_dynamic_batch_and_sequence_axes(tiny_export, tiny_classifier):
    """Every graph runs any (batch, sequence) shape and matches PyTorch on random token ids."""
    import onnx
    import onnxruntime as ort
    import torch
    from transformers import AutoModelForSequenceClassification

    folder, _ = tiny_export
    model = AutoModelForSequenceClassification.from_pretrained(tiny_classifier).eval()
    rng = np.random.default_rng(0)
    for filename in ONNX_FILES.values():
        graph = onnx.load(str(folder / filename), load_external_data=False).graph
        for tensor in graph.input:
            dims = [d.dim_param or d.dim_value for d in tensor.type.tensor_type.shape.dim]
            assert all(isinstance(d, str) for d in dims), (filename, tensor.name, dims)
        session = ort.InferenceSession(str(folder / filename), providers=["CPUExecutionProvider"])
        for batch, seq in ((1, 5), (3, 17), (7, 64)):
            ids = rng.integers(1000, 2000, size=(batch, seq), dtype=np.int64)
            mask = np.ones_like(ids)
            mask[0, seq // 2 :] = 0  # one padded row
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            (logits,) = session.run(["logits"], feeds)
            assert logits.shape == (batch, 3)
            with torch.inference_mode():
                want = model(**{k: torch.from_numpy(v) for k, v in feeds.items()}).logits.numpy()
            atol = 2e-2 if "int8" in filename else 1e-4
            np.testing.assert_allclose(logits, want, atol=atol)


def test_parity_metrics_within_tolerance(tiny_export, trained_export):
    cfg = ExportConfig()
    for _, metrics in (tiny_export, trained_export):
        for backend in ("onnx-fp32", "onnx-opt"):
            assert metrics[backend]["max_abs_logit_diff"] <= cfg.atol
            assert metrics[backend]["agreement"] == 1.0
        assert parity_failures(metrics, cfg) == []
    assert tiny_export[1]["onnx-int8"]["n"] == len(TEXTS)
    # The trained model's INT8 graph: measured on the validation texts the export was given.
    int8 = trained_export[1]["onnx-int8"]
    assert int8["n"] == len(TRAINED_VAL)
    assert int8["agreement"] >= 0.95
    assert int8["max_abs_prob_diff"] < 0.1


def test_int8_agrees_with_fp32(trained_export):
    """A trained model (confident, not ~1/3 everywhere): INT8 labels match fp32 on >= 95% of
    held-out sentences, and its probabilities stay close."""
    folder, _ = trained_export
    texts = [t for t, _ in HELD_OUT]
    fp32 = load_predictor(folder, "onnx-fp32", threads=1).predict_proba(texts)
    int8 = load_predictor(folder, "onnx-int8", threads=1).predict_proba(texts)
    assert (fp32.max(axis=1) > 0.5).all()  # no near-ties: every label is a clear choice
    assert np.mean(fp32.argmax(axis=1) == int8.argmax(axis=1)) >= 0.95
    assert np.abs(fp32 - int8).mean() < 0.02


def test_mixed_precision_keeps_chosen_layers_fp32(tiny_export, tmp_path):
    """export.int8_keep_fp32: layer 0 stays fp32 (MatMul, Attention), layer 1 is INT8."""
    import onnx

    folder, _ = tiny_export
    keep = select_nodes(folder / "model.opt.onnx", [0])
    assert "Attention_0" in keep and all("layer.1/" not in n for n in keep)
    # A piece of a name selects single nodes: layer 1's FFN down-projection, not its attention.
    assert select_nodes(folder / "model.opt.onnx", ["layer.1/output/dense"]) == [
        "/inner/bert/encoder/layer.1/output/dense/MatMul"
    ]
    mixed = tmp_path / "model.int8.onnx"
    quantize_graph(folder / "model.opt.onnx", mixed, exclude=keep)
    ops = {n.name: n.op_type for n in onnx.load(str(mixed)).graph.node}
    assert ops["Attention_0"] == "Attention" and ops["Attention_1_quant"] == "QAttention"
    assert ops["/inner/bert/encoder/layer.0/output/dense/MatMul"] == "MatMul"
    assert ops["/inner/bert/encoder/layer.1/output/dense/MatMul_quant"] == "MatMulInteger"
    p = OnnxPredictor(folder, read_meta(folder), graph=mixed)
    fp32 = load_predictor(folder, "onnx-fp32").predict_proba(TEXTS)
    assert np.abs(p.predict_proba(TEXTS) - fp32).max() < 5e-3


def test_mean_pooling_head_exports_with_fused_attention(tmp_path, tiny_checkpoint):
    """finslm's mean-pooling head (models.<m>.pooling: mean) exports and fuses like the CLS one."""
    from finslm.models import load_for_finetuning, write_meta

    model_dir = tmp_path / "meanpool"
    tokenizer, model = load_for_finetuning(str(tiny_checkpoint), pooling="mean")
    model.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    write_meta(model_dir, {"kind": "transformer", "max_length": 64})
    cfg = ExportConfig(int8_keep_fp32=[0, "layer.1/output/dense"], reduce_range=True)
    import finslm.export

    calls = []
    real = finslm.export.quantize_graph

    def recording(*args, **kwargs):
        calls.append((args, kwargs))
        return real(*args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(finslm.export, "quantize_graph", recording)
        metrics = export_model(model_dir, tmp_path / "out", TEXTS, cfg, log=lambda _: None)
    assert metrics["onnx-opt"]["fused"].get("Attention") == TINY_BERT["num_hidden_layers"]
    assert metrics["onnx-fp32"]["max_abs_logit_diff"] < 1e-4
    assert metrics["onnx-int8"]["fp32_nodes"] > 0
    # The settings reach the quantiser, and the written graph keeps the chosen nodes fp32.
    ((args, kwargs),) = calls
    assert args[3] is True  # reduce_range
    import onnx

    ops = {n.name: n.op_type for n in onnx.load(str(tmp_path / "out/model.int8.onnx")).graph.node}
    assert ops["Attention_0"] == "Attention" and ops["Attention_1_quant"] == "QAttention"


def test_parity_failures_name_the_graph_and_the_key():
    metrics = {
        "onnx-fp32": {"max_abs_logit_diff": 0.5, "agreement": 1.0, "n": 10},
        "onnx-int8": {"max_abs_logit_diff": 0.1, "agreement": 0.8, "n": 10},
    }
    failures = parity_failures(metrics, ExportConfig())
    assert len(failures) == 2
    assert "onnx-fp32" in failures[0] and "export.atol" in failures[0]
    assert "onnx-int8" in failures[1] and "export.int8_min_agreement" in failures[1]


def test_parity_tolerance_is_inclusive():
    cfg = ExportConfig()
    at = {"onnx-fp32": {"max_abs_logit_diff": cfg.atol, "agreement": 1.0, "n": 10}}
    assert parity_failures(at, cfg) == []
    over = {"onnx-fp32": {"max_abs_logit_diff": 2 * cfg.atol, "agreement": 1.0, "n": 10}}
    assert len(parity_failures(over, cfg)) == 1
    # Agreement: at the bound passes, below it fails; INT8 graphs against the INT8 bounds.
    cfg = ExportConfig(min_agreement=0.9, int8_min_agreement=0.8)
    for backend, bound, key in (("onnx-opt", 0.9, "min_agreement"), ("onnx-int8", 0.8, "int8_")):
        atol = cfg.int8_atol if backend.endswith("int8") else cfg.atol
        row = {"max_abs_logit_diff": atol, "n": 10}
        assert parity_failures({backend: {**row, "agreement": bound}}, cfg) == []
        (failure,) = parity_failures({backend: {**row, "agreement": bound - 0.01}}, cfg)
        assert failure.startswith(f"{backend}: label agreement") and f"export.{key}" in failure


def _stage(tmp_path: Path, model: Path, export_params: dict) -> tuple[int, str, Path]:
    """Run stages/export.py in a scratch layout (models/<m>, data/prepared/val.parquet)."""
    import contextlib
    import io

    import pandas as pd

    (tmp_path / "models").mkdir()
    (tmp_path / "models" / model.name).symlink_to(model)
    (tmp_path / "data/prepared").mkdir(parents=True)
    for split in ("train", "val"):
        pd.DataFrame({"text": TEXTS[:12], "label": "neutral"}).to_parquet(
            tmp_path / f"data/prepared/{split}.parquet"
        )
    params = {
        "models": {model.name: {"kind": "transformer"}},
        "export": {"models": [model.name], **export_params},
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    stage = load_stage("export")
    err = io.StringIO()
    args = [model.name, "--params", str(tmp_path / "params.yaml")]
    args += ["--models", str(tmp_path / "models"), "--exports", str(tmp_path / "exports")]
    args += ["--val", str(tmp_path / "data/prepared/val.parquet")]
    args += ["--train", str(tmp_path / "data/prepared/train.parquet")]
    args += ["--metrics", str(tmp_path / "metrics/export")]
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = stage.main(args)
    return code, err.getvalue(), tmp_path / "metrics/export" / f"{model.name}.json"


def test_stage_fails_clearly_when_parity_breaks(tmp_path, tiny_classifier):
    # An impossible INT8 tolerance: the stage must stop, say which graph and key, keep metrics.
    code, err, metrics_path = _stage(
        tmp_path, tiny_classifier, {"int8_atol": 1e-9, "optimize": False}
    )
    assert code == 1
    assert "onnx-int8: max |Δlogit| vs PyTorch" in err and "export.int8_atol = 1e-09" in err
    assert "relax the tolerance" in err
    metrics = json.loads(metrics_path.read_text())
    assert metrics["onnx-fp32"]["agreement"] == 1.0 and "onnx-opt" not in metrics


@pytest.mark.slow  # the trained tiny model (near-tie labels of an untrained head would flip)
def test_stage_builds_and_gates_the_engines_it_is_asked_for(tmp_path, trained_tiny):
    """``export.engines: [ct2]``: the export folder also gets ct2/, which loads as the
    ct2-int8 backend and gives the PyTorch labels; its gate numbers are in the metrics."""
    pytest.importorskip("ctranslate2")

    code, err, metrics_path = _stage(tmp_path, trained_tiny[0], {"engines": ["ct2"]})
    assert code == 0, err
    metrics = json.loads(metrics_path.read_text())
    assert set(metrics["engines"]) == {"ct2-int8"}
    assert metrics["engines"]["ct2-int8"]["agreement"] >= 0.9
    folder = tmp_path / "exports" / trained_tiny[0].name
    assert (folder / "ct2").is_dir() and not (folder / "openvino").exists()
    texts = TEXTS[:12]
    want = load_predictor(trained_tiny[0], "torch-fp32", threads=1).predict(texts)
    got = load_predictor(folder, "ct2-int8", threads=1).predict(texts)
    assert np.mean(np.array(got) == np.array(want)) >= 0.9


def test_unknown_engine_is_a_config_error(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(
        yaml.safe_dump(
            {
                "models": {"m": {"kind": "transformer"}},
                "export": {"models": ["m"], "engines": ["tvm"]},
            }
        )
    )
    with pytest.raises(ConfigError, match=r"export.engines.*openvino.*ct2"):
        load_export_config(params)


def test_keep_fp32_entry_that_selects_nothing_fails(tiny_classifier, tmp_path):
    cfg = ExportConfig(int8_keep_fp32=["attention/slef"], optimize=False)
    with pytest.raises(ModelError, match=r"export.int8_keep_fp32: 'attention/slef' selects no"):
        export_model(tiny_classifier, tmp_path / "out", TEXTS[:2], cfg, log=lambda _: None)
    # A layer the (2-layer) model does not have is skipped: one list serves deep and pruned models.
    cfg = ExportConfig(int8_keep_fp32=[7, 1], optimize=False)
    metrics = export_model(tiny_classifier, tmp_path / "out", TEXTS[:2], cfg, log=lambda _: None)
    layer_1 = select_nodes(tmp_path / "out/model.onnx", [1])
    assert metrics["onnx-int8"]["fp32_nodes"] == len(layer_1) > 0


def test_tfidf_has_nothing_to_export(tiny_tfidf, tmp_path):
    with pytest.raises(
        ModelError, match=r"only a trained transformer.s folder \(models/<name>\) exports"
    ):
        export_model(tiny_tfidf, tmp_path / "out", TEXTS, ExportConfig())


def test_export_config_checks_models_and_ranges(tmp_path):
    path = tmp_path / "params.yaml"
    models = {"minilm": {"kind": "transformer"}, "tfidf": {"kind": "tfidf"}}
    path.write_text(yaml.safe_dump({"models": models, "export": {"models": ["tfidf"]}}))
    with pytest.raises(ConfigError, match=r"export.models: 'tfidf' has kind 'tfidf'.*minilm"):
        load_export_config(path)
    path.write_text(yaml.safe_dump({"models": models, "export": {"min_agreement": 1.5}}))
    with pytest.raises(ConfigError, match=r"export.min_agreement: got 1.5"):
        load_export_config(path)
    path.write_text(yaml.safe_dump({"models": models, "export": {"int8_keep_fp32": [-1]}}))
    with pytest.raises(ConfigError, match=r"export.int8_keep_fp32: got \[-1\]"):
        load_export_config(path)
    path.write_text(yaml.safe_dump({"models": models, "export": {"exporter": "tf2onnx"}}))
    with pytest.raises(ConfigError, match="export.exporter: got 'tf2onnx'; allowed values"):
        load_export_config(path)
    path.write_text(yaml.safe_dump({"models": models}))
    assert load_export_config(path).models == ["minilm"]


def test_keep_list_entries_past_a_shallow_models_depth_are_skipped():
    from finslm.export import _beyond_depth

    assert _beyond_depth(4, 4) and _beyond_depth("layer.5/output/dense", 4)
    assert not _beyond_depth(3, 4) and not _beyond_depth("layer.1/output/dense", 4)
    assert not _beyond_depth("output/dense", 4)  # not a layer reference: a typo still fails
    assert not _beyond_depth(7, None)


def test_parity_gate_covers_the_engine_backends():
    """The engine backends (CTranslate2, OpenVINO) are held to the parity gate too, the INT8
    ones to the INT8 agreement bound."""
    from finslm.config.export import ExportConfig
    from finslm.export import parity_failures

    cfg = ExportConfig(min_agreement=0.9, int8_min_agreement=0.8)
    for backend, key in (("ct2-int8", "int8_min_agreement"), ("openvino-int8", "int8_min_agreement"),
                         ("openvino-fp32", "min_agreement")):  # fmt: skip
        row = {"max_abs_logit_diff": 0.0, "agreement": 0.5, "n": 10}
        (failure,) = parity_failures({backend: row}, cfg)
        assert failure.startswith(f"{backend}: label agreement") and f"export.{key}" in failure


def test_parity_reports_the_largest_logit_difference():
    """max_abs_logit_diff is the worst logit, not the mean: one sentence 0.9 off among four."""
    from finslm.export import parity

    class Fake:
        def __init__(self, bump):
            self.bump = bump

        def logits(self, chunk):
            out = np.zeros((len(chunk), 3))
            for i, text in enumerate(chunk):
                if text == "odd":
                    out[i, 2] = self.bump  # argmax 2 instead of 0
            return out

    numbers = parity(Fake(0.0), Fake(0.9), ["a", "b", "odd", "c"], batch_size=2)
    assert numbers["max_abs_logit_diff"] == pytest.approx(0.9)
    assert numbers["mean_abs_logit_diff"] == pytest.approx(0.9 / 12)
    assert numbers["agreement"] == pytest.approx(0.75) and numbers["n"] == 4
