"""The per-engine peak probes: correct GEMMs, positive rates, the right probe per backend."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from finslm.peak import (
    engine_of,
    gemm_graph,
    ort_gemm,
    ov_gemm,
    peak_probes,
    qdq_gemm_graph,
    torch_fp32,
)


def test_int8_probe_graph_computes_the_integer_product():
    import onnxruntime as ort
    from onnx import numpy_helper

    model = gemm_graph(16, int8=True)
    w = numpy_helper.to_array(next(t for t in model.graph.initializer if t.name == "w"))
    a = np.random.default_rng(0).integers(0, 256, size=(16, 16), dtype=np.uint8)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {"a": a})
    np.testing.assert_array_equal(y, (a.astype(np.int32) - 128) @ w.astype(np.int32))


def test_probes_return_positive_rates():
    rates = peak_probes(threads=1, n=128)
    assert set(rates) == {"torch-fp32", "ort-fp32", "ort-int8", "ov-fp32", "ov-int8"}
    assert all(r > 0 for r in rates.values())
    assert peak_probes(threads=1, engines={"ort-int8"}, n=64).keys() == {"ort-int8"}
    assert torch_fp32(1, n=64, repeats=1, fill_s=0.01) > 0
    assert ort_gemm(1, int8=False, n=64, repeats=1, fill_s=0.01) > 0


def test_every_probe_counts_a_gemm_as_2_n_cubed_operations(monkeypatch):
    # A multiply-add is two operations, in the probes as in the model's own count
    # (finslm.opcount): a probe that counted one would double every "% of peak".
    import finslm.peak as peak

    counted = []
    monkeypatch.setattr(peak, "_gops", lambda work, ops, *a, **k: counted.append(ops) or 1.0)
    peak.peak_probes(threads=1, n=32)
    assert len(counted) == 5 and set(counted) == {2.0 * 32**3}


def test_each_backend_is_compared_with_its_own_engine():
    assert engine_of("torch-fp32") == "torch-fp32"
    assert engine_of("onnx-fp32") == engine_of("onnx-opt") == "ort-fp32"
    assert engine_of("onnx-int8") == "ort-int8"
    assert engine_of("openvino-fp32") == "ov-fp32"
    assert engine_of("openvino-int8") == "ov-int8"
    assert engine_of("ct2-int8") == "ort-int8"  # CTranslate2 has no GEMM to probe from Python
    assert engine_of("sklearn") is None


def test_openvino_int8_probe_is_an_integer_gemm_of_the_quantised_operands():
    """OpenVINO runs the QDQ probe as an integer FullyConnected (not a float one on
    dequantised weights), and its result is the product of the quantised operands."""
    import tempfile
    from pathlib import Path

    import openvino as ov
    from onnx import numpy_helper

    from finslm.engines import openvino_cpu_config

    model = qdq_gemm_graph(32)
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "probe.onnx"
        path.write_bytes(model.SerializeToString())
        compiled = ov.Core().compile_model(str(path), "CPU", openvino_cpu_config(threads=1))
    kinds = {
        str(op.get_rt_info()["layerType"].astype(str)): op.get_rt_info()["runtimePrecision"].astype(
            str
        )
        for op in compiled.get_runtime_model().get_ordered_ops()
    }
    assert kinds.get("FullyConnected") == "u8", kinds
    a = np.random.default_rng(0).standard_normal((32, 32), dtype=np.float32)
    a_q = np.clip(np.round(a / inits["a_scale"]) + 128, 0, 255) - 128
    want = (a_q * inits["a_scale"]) @ (inits["w"].astype(np.float32) * inits["w_scale"])
    got = compiled.create_infer_request().infer({0: a})[compiled.outputs[0]]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    assert ov_gemm(1, int8=True, n=64, repeats=1, fill_s=0.01) > 0


def test_gops_counts_every_call():
    """The rate is every call's operations over the time of all calls: within 2x of the same
    work timed here (a rate of one call's ops per round would be ~10x too low)."""
    import time

    from finslm.peak import _gops

    def work():
        time.sleep(0.005)

    rate = _gops(work, 5e6, repeats=3, fill_s=0.05)
    t0 = time.perf_counter()
    for _ in range(10):
        work()
    expected = 5e6 / ((time.perf_counter() - t0) / 10) / 1e9
    assert expected / 2 < rate < expected * 2


def test_peak_probe_reports_the_median_round_not_the_best(monkeypatch):
    """A peak GEMM probe reports the median of its timed rounds, so one lucky fast round does not
    inflate the host's peak (and deflate every "% of peak")."""
    from finslm import peak

    durations = iter([1.0, 1.0, 1.0, 1.0, 1.0, 4.0, 0.5])  # warm-up, sizing, 5 rounds
    clock = [0.0]

    def work():
        clock[0] += next(durations)

    monkeypatch.setattr(peak, "time", SimpleNamespace(perf_counter=lambda: clock[0]))
    # rates per round: 1, 1, 1, 0.25, 2 GOP/s -> median 1
    assert peak._gops(work, 1e9, repeats=5, fill_s=1.0) == pytest.approx(1.0)


def test_torch_peak_probe_leaves_the_thread_count_as_it_found_it():
    """Measuring the PyTorch peak at some thread count does not change the thread count the rest
    of the benchmark (or the caller's process) runs with."""
    import torch

    from finslm.peak import torch_fp32

    original = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        torch_fp32(threads=1, n=16, repeats=1, fill_s=0.0)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(original)
