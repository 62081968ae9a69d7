"""The per-engine peak probes: correct GEMMs, positive rates, the right probe per backend."""

from __future__ import annotations

import numpy as np

from finslm.peak import engine_of, gemm_graph, ort_gemm, peak_probes, torch_fp32


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
    assert set(rates) == {"torch-fp32", "ort-fp32", "ort-int8"}
    assert all(r > 0 for r in rates.values())
    assert peak_probes(threads=1, engines={"ort-int8"}, n=64).keys() == {"ort-int8"}
    assert torch_fp32(1, n=64, repeats=1, fill_s=0.01) > 0
    assert ort_gemm(1, int8=False, n=64, repeats=1, fill_s=0.01) > 0


def test_each_backend_is_compared_with_its_own_engine():
    assert engine_of("torch-fp32") == "torch-fp32"
    assert engine_of("onnx-fp32") == engine_of("onnx-opt") == "ort-fp32"
    assert engine_of("onnx-int8") == "ort-int8"
    assert engine_of("sklearn") is None
