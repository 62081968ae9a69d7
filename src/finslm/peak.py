"""This host's measured peak per engine and precision: one large GEMM, timed.

    >>> peak_probes(threads=2)    # {"torch-fp32": 151.2, "ort-fp32": 160.4, "ort-int8": 301.0}  (GOP/s)

A "% of peak" figure divides a model's effective operations per second by the probe of the
engine and precision that runs it (:func:`engine_of`): a large square GEMM is the best case
the engine's kernels reach on this CPU with these threads, so the fraction says how much of
the machine the model's shapes, memory traffic and overheads leave unused. Each probe takes
about a second (the median of a few repeats of enough calls to fill ~0.15 s); nothing is
downloaded, the ONNX graphs are built in memory with ``onnx.helper``.

- ``torch-fp32``: ``torch.mm`` on ``n×n`` float32;
- ``ort-fp32``: an ONNX ``MatMul`` of ``n×n`` float32 (input × initializer) in onnxruntime;
- ``ort-int8``: an ONNX ``MatMulInteger`` of uint8 activations × int8 weights (what dynamic
  INT8 quantisation runs) in onnxruntime, 2 ops per multiply-add as for float;
- ``ov-fp32`` / ``ov-int8``: the same GEMM compiled by OpenVINO for the CPU, as the
  ``openvino-*`` backends compile (latency hint, fp32 inference precision); the INT8 one is a
  QDQ ``MatMul`` (int8 weights, uint8 activations), which OpenVINO runs as an integer GEMM, as
  it runs NNCF's quantised model. Only when the ``openvino`` extra is installed.

CTranslate2 exposes no GEMM to Python, so ``ct2-int8`` is compared with ``ort-int8``, this
host's INT8 GEMM through onnxruntime (the oneDNN/MLAS kernels both build on).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

PROBE_SIZE = 1024
_FILL_S = 0.15
_REPEATS = 5


def engine_of(backend: str) -> str | None:
    """The probe a backend's arithmetic is compared with (None: no GEMM to speak of)."""
    if backend.startswith("torch-"):
        return "torch-fp32"
    if backend in ("onnx-int8", "ct2-int8"):
        return "ort-int8"
    if backend.startswith("openvino-"):
        return "ov-" + backend.removeprefix("openvino-")
    if backend.startswith("onnx-"):
        return "ort-fp32"
    return None


def _gops(work: Callable[[], object], ops: float, repeats: int, fill_s: float) -> float:
    """Median GOP/s of ``work`` (``ops`` operations a call) over ``repeats`` timed rounds."""
    work()  # warm-up: thread pools, packing buffers
    t0 = time.perf_counter()
    work()
    once = max(time.perf_counter() - t0, 1e-6)
    calls = max(1, int(fill_s / once))
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(calls):
            work()
        rates.append(calls * ops / (time.perf_counter() - t0))
    return float(np.median(rates)) / 1e9


def torch_fp32(
    threads: int, n: int = PROBE_SIZE, repeats: int = _REPEATS, fill_s: float = _FILL_S
) -> float:
    import torch

    before = torch.get_num_threads()
    if threads > 0:
        torch.set_num_threads(threads)
    try:
        gen = torch.Generator().manual_seed(0)
        a = torch.randn(n, n, generator=gen)
        b = torch.randn(n, n, generator=gen)
        out = torch.empty(n, n)
        with torch.inference_mode():
            return _gops(lambda: torch.mm(a, b, out=out), 2.0 * n**3, repeats, fill_s)
    finally:
        torch.set_num_threads(before)


def _session(model, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(0, int(threads))
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(
        model.SerializeToString(), sess_options=options, providers=["CPUExecutionProvider"]
    )


def _probe_model(nodes, name: str, n: int, a_type: int, y_type: int, inits):
    """One ONNX model: input ``a`` and output ``y``, both n×n, opset 17."""
    from onnx import helper

    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info("a", a_type, [n, n])],
        [helper.make_tensor_value_info("y", y_type, [n, n])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # what onnxruntime releases of the last years all read
    return model


def gemm_graph(n: int, int8: bool):
    """``y = a · w`` with ``a`` an input (n×n) and ``w`` an initializer: float32 ``MatMul``, or
    ``MatMulInteger`` (uint8 × int8 -> int32, zero points 128 and 0)."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    if int8:
        # 7-bit weights: on AVX2 without VNNI, u8×s8 pairs are summed in int16 and saturate
        # for larger ones (why export.reduce_range exists); the speed is the same.
        w = rng.integers(-64, 64, size=(n, n), dtype=np.int8)
        inits = [
            numpy_helper.from_array(w, "w"),
            numpy_helper.from_array(np.array(128, dtype=np.uint8), "a_zero"),
            numpy_helper.from_array(np.array(0, dtype=np.int8), "w_zero"),
        ]
        node = helper.make_node("MatMulInteger", ["a", "w", "a_zero", "w_zero"], ["y"])
        a_type, y_type = TensorProto.UINT8, TensorProto.INT32
    else:
        inits = [numpy_helper.from_array(rng.standard_normal((n, n), dtype=np.float32), "w")]
        node = helper.make_node("MatMul", ["a", "w"], ["y"])
        a_type = y_type = TensorProto.FLOAT
    return _probe_model([node], "gemm_probe", n, a_type, y_type, inits)


def ort_gemm(
    threads: int, int8: bool, n: int = PROBE_SIZE, repeats: int = _REPEATS, fill_s: float = _FILL_S
) -> float:
    session = _session(gemm_graph(n, int8), threads)
    rng = np.random.default_rng(1)
    if int8:
        a = rng.integers(0, 256, size=(n, n), dtype=np.uint8)
    else:
        a = rng.standard_normal((n, n), dtype=np.float32)
    return _gops(lambda: session.run(None, {"a": a}), 2.0 * n**3, repeats, fill_s)


def qdq_gemm_graph(n: int):
    """``y = dq(q(a)) · dq(w)``: a float32 input quantised to uint8 (zero point 128) and int8
    weights, both dequantised before a float ``MatMul`` (the QDQ form OpenVINO fuses into an
    integer GEMM)."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = rng.integers(-64, 64, size=(n, n), dtype=np.int8)  # 7-bit, as gemm_graph
    inits = [
        numpy_helper.from_array(w, "w"),
        numpy_helper.from_array(np.array(0.05, dtype=np.float32), "a_scale"),
        numpy_helper.from_array(np.array(128, dtype=np.uint8), "a_zero"),
        numpy_helper.from_array(np.array(0.01, dtype=np.float32), "w_scale"),
        numpy_helper.from_array(np.array(0, dtype=np.int8), "w_zero"),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["a", "a_scale", "a_zero"], ["a_q"]),
        helper.make_node("DequantizeLinear", ["a_q", "a_scale", "a_zero"], ["a_dq"]),
        helper.make_node("DequantizeLinear", ["w", "w_scale", "w_zero"], ["w_dq"]),
        helper.make_node("MatMul", ["a_dq", "w_dq"], ["y"]),
    ]
    return _probe_model(nodes, "qdq_gemm_probe", n, TensorProto.FLOAT, TensorProto.FLOAT, inits)


def ov_gemm(
    threads: int, int8: bool, n: int = PROBE_SIZE, repeats: int = _REPEATS, fill_s: float = _FILL_S
) -> float:
    """The GEMM probe compiled by OpenVINO (CPU, latency hint, fp32 inference precision)."""
    import tempfile
    from pathlib import Path

    import openvino as ov

    from finslm.engines import openvino_cpu_config

    graph = qdq_gemm_graph(n) if int8 else gemm_graph(n, int8=False)
    core = ov.Core()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "probe.onnx"
        path.write_bytes(graph.SerializeToString())
        model = core.read_model(str(path))
    request = core.compile_model(model, "CPU", openvino_cpu_config(threads)).create_infer_request()
    a = np.random.default_rng(1).standard_normal((n, n), dtype=np.float32)
    return _gops(lambda: request.infer({0: a}), 2.0 * n**3, repeats, fill_s)


def peak_probes(
    threads: int, engines: set[str] | None = None, n: int = PROBE_SIZE, fill_s: float = _FILL_S
) -> dict[str, float]:
    """GOP/s per engine (``torch-fp32``, ``ort-fp32``, ``ort-int8``, ``ov-fp32``, ``ov-int8``;
    only those in ``engines`` when given; without ``engines``, the OpenVINO ones only when it is
    installed), each the median of a few ``fill_s``-long rounds of an ``n×n×n`` GEMM."""
    import importlib.util

    if engines is None:
        engines = {"torch-fp32", "ort-fp32", "ort-int8"}
        if importlib.util.find_spec("openvino") is not None:
            engines |= {"ov-fp32", "ov-int8"}
    probes: dict[str, Callable[[], float]] = {
        "torch-fp32": lambda: torch_fp32(threads, n, fill_s=fill_s),
        "ort-fp32": lambda: ort_gemm(threads, False, n, fill_s=fill_s),
        "ort-int8": lambda: ort_gemm(threads, True, n, fill_s=fill_s),
        "ov-fp32": lambda: ov_gemm(threads, False, n, fill_s=fill_s),
        "ov-int8": lambda: ov_gemm(threads, True, n, fill_s=fill_s),
    }
    return {name: round(probe(), 2) for name, probe in probes.items() if name in engines}
