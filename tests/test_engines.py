"""The other CPU engines (finslm.engines): OpenVINO fp32 / NNCF INT8 and CTranslate2 INT8 give
onnxruntime's labels and probabilities within tolerance, pass the parity gate, and fail clearly
when their package or their files are missing."""

from __future__ import annotations

import shutil
import sys

import numpy as np
import pytest

from finslm.config import ExportConfig
from finslm.engines_build import build_engines, convert_ct2, engine_parity
from finslm.export import ParityError
from finslm.models import ModelError, load_for_finetuning, write_meta
from finslm.predict import load_predictor

from .conftest import HELD_OUT, TRAINED_TRAIN, TRAINED_VAL, invented_sentences

TEXTS = [t for t, _ in invented_sentences(2, start=30)] + [
    "Short.",
    "Revenue, margins and guidance for the next fiscal year were all discussed at length. " * 5,
]
# Largest |Δprobability| against onnx-fp32 (the tiny model's probabilities are near 1/3 each).
ATOL = {"openvino-fp32": 1e-5, "openvino-int8": 2e-2, "ct2-int8": 2e-2}
ENGINES = list(ATOL)


@pytest.fixture(scope="module")
def onnx_fp32(tiny_export):
    return load_predictor(tiny_export[0], "onnx-fp32", threads=1)


@pytest.mark.parametrize("backend", ENGINES)
def test_engine_matches_onnxruntime(tiny_engine_export, onnx_fp32, backend):
    """Probabilities within tolerance of onnxruntime's (the random tiny model's labels are
    near-ties, so labels are compared on the trained model, below)."""
    p = load_predictor(tiny_engine_export, backend, threads=1)
    np.testing.assert_allclose(
        p.predict_proba(TEXTS), onnx_fp32.predict_proba(TEXTS), atol=ATOL[backend]
    )
    assert p.name.endswith(f"/{backend}")


def test_server_warms_every_padded_length(tiny_engine_export, tiny_export):
    from finslm.serve.app import shape_warmup_texts

    p = load_predictor(tiny_engine_export, "openvino-int8", threads=1)
    widths = {p.encoder([t])["input_ids"].shape[1] for t in shape_warmup_texts(p)}
    assert widths == set(range(16, p.max_length + 1, 16))
    assert shape_warmup_texts(load_predictor(tiny_export[0], "onnx-int8", threads=1)) == []


def test_auto_picks_openvino_int8_only_on_amx_with_the_ir_built(
    tiny_engine_export, tiny_export, monkeypatch
):
    """``backend="auto"`` on an export folder: OpenVINO INT8 where it was measured to win (AMX
    INT8 units, the IR built, openvino installed), onnxruntime INT8 everywhere else."""
    import finslm.engines as engines

    monkeypatch.setattr(engines, "cpu_flags", lambda: {"avx512_vnni", "amx_int8"})
    assert load_predictor(tiny_engine_export, threads=1).backend == "openvino-int8"
    assert load_predictor(tiny_export[0], threads=1).backend == "onnx-int8"  # no IR built
    monkeypatch.setattr(engines, "cpu_flags", lambda: {"avx2", "avx512_vnni"})
    assert load_predictor(tiny_engine_export, threads=1).backend == "onnx-int8"
    monkeypatch.setattr(engines, "cpu_flags", lambda: {"amx_int8"})
    real = engines.importlib.util.find_spec
    monkeypatch.setattr(
        engines.importlib.util, "find_spec", lambda n: None if n == "openvino" else real(n)
    )
    assert load_predictor(tiny_engine_export, threads=1).backend == "onnx-int8"


def test_cpu_flags_reads_proc_cpuinfo():
    import platform

    from finslm.engines import cpu_flags

    flags = cpu_flags()
    if sys.platform.startswith("linux") and platform.machine() in {"x86_64", "AMD64"}:
        assert {"fpu", "sse2"} <= flags  # every x86-64 CPU reports both
    else:
        assert isinstance(flags, frozenset)


def test_openvino_int8_pads_to_a_multiple_of_16(tiny_engine_export, onnx_fp32):
    """Fewer input shapes for OpenVINO to compile; the extra positions are masked, so batch-1
    probabilities stay within tolerance of onnxruntime's (the benchmark counts the padding)."""
    p = load_predictor(tiny_engine_export, "openvino-int8", threads=1)
    assert p.pad_multiple == 16 and p.encoder(["Short."])["input_ids"].shape[1] == 16
    fp32 = load_predictor(tiny_engine_export, "openvino-fp32", threads=1)
    assert fp32.pad_multiple == 1 and fp32.encoder(["Short."])["input_ids"].shape[1] < 16
    for text in TEXTS[-2:]:
        np.testing.assert_allclose(
            p.predict_proba([text], 1), onnx_fp32.predict_proba([text], 1), atol=2e-2
        )


def test_engines_give_the_trained_models_labels(tmp_path, trained_tiny, trained_export):
    """On the trained tiny model (decisive logits) every engine gives onnx-fp32's label for
    every held-out sentence, built and gated as tools/engines.py builds them (calibration on
    training sentences, the parity gate on validation)."""
    shutil.copytree(trained_export[0], tmp_path / "trained")
    export = tmp_path / "trained"
    metrics = build_engines(
        trained_tiny[0],
        export,
        [t for t, _ in TRAINED_TRAIN],
        [t for t, _ in TRAINED_VAL],
        ExportConfig(),
        threads=1,
        log=lambda _: None,
    )
    assert {b: m["agreement"] for b, m in metrics.items()} == dict.fromkeys(ENGINES, 1.0)
    texts = [t for t, _ in HELD_OUT]
    reference = load_predictor(export, "onnx-fp32", threads=1)
    want, labels = reference.predict_proba(texts), reference.predict(texts)
    for backend in ENGINES:
        p = load_predictor(export, backend, threads=1)
        assert p.predict(texts) == labels, backend
        np.testing.assert_allclose(p.predict_proba(texts), want, atol=5 * ATOL[backend])


def test_engines_pass_the_parity_gate(tiny_classifier, tiny_engine_export):
    texts = [t for t, _ in invented_sentences(2, start=30)]
    metrics = engine_parity(tiny_classifier, tiny_engine_export, texts, ExportConfig(), threads=1)
    assert set(metrics) == set(ENGINES)
    assert metrics["openvino-fp32"]["max_abs_logit_diff"] < 1e-3
    assert all(m["agreement"] >= 0.9 and m["size_mb"] > 0 for m in metrics.values())
    strict = ExportConfig(int8_atol=1e-6)
    with pytest.raises(ParityError, match=r"openvino-int8: max \|Δlogit\|.*int8_atol") as err:
        engine_parity(tiny_classifier, tiny_engine_export, texts, strict, ["openvino-int8"])
    assert "openvino-int8" in err.value.metrics


@pytest.mark.parametrize(
    "backend, module, extra",
    [
        ("openvino-fp32", "openvino", "openvino"),
        ("openvino-int8", "openvino", "openvino"),
        ("ct2-int8", "ctranslate2", "ct2"),
    ],
)
def test_missing_package_names_the_extra(tiny_engine_export, monkeypatch, backend, module, extra):
    monkeypatch.setitem(sys.modules, module, None)  # `import module` raises ImportError
    with pytest.raises(ModelError, match=rf"{backend}.*pip install 'finslm\[{extra}\]'"):
        load_predictor(tiny_engine_export, backend)


def test_missing_files_say_how_to_build_them(tiny_export):
    for backend, filename in (("openvino-int8", "model.int8.xml"), ("ct2-int8", "ct2")):
        # The ONNX export is there: the message says the engine build is missing (not "run
        # the export stage", which wrote this very folder), with the folder names filled in.
        message = rf"no .*{filename}.*the export stage does not make it: .*engines.py build"
        with pytest.raises(ModelError, match=message) as info:
            load_predictor(tiny_export[0], backend)
        assert "<m>" not in str(info.value) and "dvc repro export@" not in str(info.value)
    with pytest.raises(ModelError, match="CPU only"):
        load_predictor(tiny_export[0], "openvino-fp32", device="cuda")


def test_ct2_mean_pooling_head(tmp_path, tiny_checkpoint):
    """finslm's mean-pooling head (the default for MiniLM): CT2's encoder + numpy pooling give
    PyTorch's probabilities; the model folder itself holds ct2/ (no export folder needed)."""
    import torch

    model = tmp_path / "meanpool"
    torch.manual_seed(2)
    tokenizer, net = load_for_finetuning(str(tiny_checkpoint), pooling="mean")
    net.save_pretrained(model)
    tokenizer.save_pretrained(model)
    write_meta(model, {"kind": "transformer", "max_length": 64})
    convert_ct2(model, model, log=lambda _: None)
    texts = [t for t, _ in HELD_OUT[:12]]
    want = load_predictor(model, "torch-fp32", threads=1).predict_proba(texts)
    got = load_predictor(model, "ct2-int8", threads=1).predict_proba(texts)
    np.testing.assert_allclose(got, want, atol=2e-2)


def test_bench_variant_spec_is_checked_before_anything_loads(tmp_path):
    """`tools/engines.py bench --variant` wants NAME=FOLDER:BACKEND; a malformed one stops the
    command with that form in the message (nothing is loaded or timed)."""
    import pandas as pd

    from tools import engines as tool

    test = tmp_path / "test.parquet"
    pd.DataFrame({"text": ["a sentence"], "label": ["neutral"]}).to_parquet(test)
    argv = ["bench", "--model", str(tmp_path / "m"), "--export", str(tmp_path / "e")]
    with pytest.raises(SystemExit, match="expected NAME=FOLDER:BACKEND"):
        tool.main([*argv, "--test", str(test), "--variant", "no-backend=folder"])


def test_ov_profile_bounds_the_fraction_of_peak(tiny_engine_export):
    """tools/ov_profile.py: per-node times by type over a bucketed pass, the attention work
    counted apart, and the Amdahl ceiling (GEMM nodes at peak, the rest unchanged)."""
    from tools import ov_profile

    texts = (TEXTS * 5)[:70]  # three batches of up to 32, bucketed by length
    raw = ov_profile.profile(tiny_engine_export, texts, threads=1, repeats=1)
    assert raw["sentences"] == len(texts) and raw["batches"] == 3
    assert 0 < raw["attention_ops"] < raw["padded_ops"] and raw["useful_ops"] <= raw["padded_ops"]
    assert set(raw["node_s"]) & ov_profile.GEMM_TYPES and sum(raw["node_s"].values()) > 0
    result = ov_profile.summarise(raw, peak_gops=100.0)
    assert sum(row["share"] for row in result["by_type"].values()) == pytest.approx(1, abs=1e-3)
    assert result["ceiling_pct"] >= result["pct_peak_now"] > 0
    # The bound itself: 1 s of GEMM nodes and 1 s of the rest; at a 1 GOP/s peak the GEMMs'
    # 0.5 GOP (padded, attention excluded) take 0.5 s: 0.4 GOP useful / 1.5 s = 26.7% of peak.
    toy = {
        "sentences": 1, "batches": 1, "useful_ops": 4e8, "padded_ops": 6e8, "attention_ops": 1e8,
        "wall_s": 2.0, "node_s": {"FullyConnected": 1.0, "MVN": 1.0},
    }  # fmt: skip
    bound = ov_profile.summarise(toy, peak_gops=1.0)
    assert bound["ceiling_pct"] == pytest.approx(26.7, abs=0.05)
    assert bound["pct_peak_now"] == pytest.approx(20.0) and bound["gemm_share"] == 0.5


def test_ov_profile_streams_compares_the_two_hints(tiny_engine_export):
    """--streams: the latency hint and the throughput hint (2 streams, 2 requests in flight)
    score the same bucketed pass; every row written back to its own index (same labels)."""
    from tools import ov_profile

    texts = (TEXTS * 5)[:70]
    result = ov_profile.streams(tiny_engine_export, texts, threads=1, n_streams=2, peak_gops=10.0)
    assert result["sentences"] == 70 and set(result) >= {"latency", "throughput-2"}
    for row in (result["latency"], result["throughput-2"]):
        assert row["sent_per_s"] == pytest.approx(70 / row["seconds"], rel=0.01)
        assert row["pct_peak"] == pytest.approx(10 * row["gops"], rel=0.01)
    assert result["throughput-2"]["agreement_with_latency"] == 1.0


def test_openvino_gets_exactly_the_threads_asked_for():
    """Asking for N OpenVINO threads (the backends and the peak probe) sets N, including one
    thread; 0 leaves OpenVINO its default."""
    from finslm.engines import openvino_cpu_config

    assert openvino_cpu_config(1)["INFERENCE_NUM_THREADS"] == 1
    assert openvino_cpu_config(3)["INFERENCE_NUM_THREADS"] == 3
    assert "INFERENCE_NUM_THREADS" not in openvino_cpu_config(0)
