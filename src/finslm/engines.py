"""Other CPU engines behind the :class:`~finslm.predict.Predictor` interface: OpenVINO and
CTranslate2, beside onnxruntime (issue #28, item 3).

Backends (registered in :data:`finslm.predict.BACKENDS`; each an optional extra):

- ``openvino-fp32``: the export's ``model.onnx`` read and compiled by OpenVINO on the CPU
  (``pip install 'finslm[openvino]'``); nothing to build;
- ``openvino-int8``: ``openvino/model.int8.xml`` (+ ``.bin``), an OpenVINO IR quantised by NNCF
  post-training quantisation (static INT8: activation ranges calibrated on *training*
  sentences, SmoothQuant, the transformer presets) from ``model.onnx``;
- ``ct2-int8``: ``ct2/``, the BERT encoder converted to CTranslate2 with int8 weights and run
  with ``compute_type="int8"``; the pooling (mean or [CLS] pooler) and the classification head,
  stored beside it in ``ct2/head.npz``, run in numpy (``pip install 'finslm[ct2]'``).

The INT8 IR and the CT2 folder are built into an export folder (``exports/<m>``) by
:func:`finslm.engines_build.build_engines` (apart, so that every stage loading a Predictor
does not depend on the export and training code the build uses), which then gates every engine on parity with PyTorch like the export
stage gates its graphs (:func:`finslm.export.parity`, the same ``export.*`` tolerances; the
INT8 ones for ``*-int8``)::

    python tools/engines.py build --model models/minilm --export exports/minilm \\
        --train data/prepared/train.parquet --val data/prepared/val.parquet
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import json
import threading
from pathlib import Path
from typing import Any

import numpy as np

from finslm.models import ModelError
from finslm.predict import (
    Encoder,
    Predictor,
    _check_device,
    _softmax,
    _transformer_files,
    find_export_file,
    onnx_graph_files,
)

# backend -> what it reads, relative to the export folder
ENGINE_FILES = {
    "openvino-fp32": "model.onnx",
    "openvino-int8": "openvino/model.int8.xml",
    "ct2-int8": "ct2",
}
# backend -> (module, pip extra)
ENGINE_EXTRAS = {
    "openvino-fp32": ("openvino", "openvino"),
    "openvino-int8": ("openvino", "openvino"),
    "ct2-int8": ("ctranslate2", "ct2"),
}
BUILD_HINT = "build it with `python tools/engines.py build --model models/<m> --export exports/<m>`"
HEAD_FILE = "head.npz"


def require(module: str, extra: str, backend: str = ""):
    """Import ``module`` or raise a ModelError naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        who = f"backend {backend!r} needs" if backend else "needs"
        raise ModelError(
            f"{who} the Python package {module!r}, which is not installed ({exc}); "
            f"install it with: pip install 'finslm[{extra}]'"
        ) from None


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags as Linux reports them (``/proc/cpuinfo``); empty elsewhere."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


def auto_export_backend(export_dir: Path) -> str:
    """What ``backend="auto"`` runs for an export folder: ``openvino-int8`` on a CPU with AMX
    INT8 units (``amx_int8``) when the folder holds the NNCF IR (``export.engines:
    [openvino]``) and OpenVINO is installed, else ``onnx-int8``.

    Measured on PhraseBank MiniLM (docs/speed.md): on a Xeon with AMX the OpenVINO INT8 IR (every
    layer INT8) tied onnxruntime's mixed graph at batch 1, ran 1.9x its bulk throughput and agreed
    better with PyTorch on test (99.3% vs 98.8%); on an AVX2-only AMD EPYC it was 0.5x
    onnxruntime at batch 1 and slower than OpenVINO fp32 (no VNNI), hence the flag. CPUs with
    VNNI but no AMX are not measured and keep onnxruntime.
    """
    if (
        "amx_int8" not in cpu_flags()
        or not (Path(export_dir) / ENGINE_FILES["openvino-int8"]).is_file()
    ):
        return "onnx-int8"
    return "openvino-int8" if importlib.util.find_spec("openvino") is not None else "onnx-int8"


def _cpu_only(backend: str, device: str) -> None:
    _check_device(device)
    if device == "cuda":
        raise ModelError(f"backend {backend!r} runs on the CPU only; use --device cpu (or auto)")


def openvino_cpu_config(threads: int = 0) -> dict[str, Any]:
    """How finslm compiles an OpenVINO model for the CPU (the backends and the peak probe alike):
    the latency hint (one stream, every thread on one request), fp32 inference precision (on
    CPUs with bf16 units OpenVINO would otherwise run bf16), ``threads`` > 0 inference threads."""
    config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}
    if threads > 0:
        config["INFERENCE_NUM_THREADS"] = int(threads)
    return config


class OpenVinoPredictor(Predictor):
    """An exported graph compiled by OpenVINO for the CPU (``openvino-fp32``: ``model.onnx``).

    ``threads``: OpenVINO's inference threads (0: its default, one per physical core). The
    latency hint (one stream, every thread on one request) and fp32 inference precision are set
    explicitly: on CPUs with bf16 units OpenVINO would otherwise run bf16. ``graph`` overrides
    the file (any ONNX graph or OpenVINO IR). One infer request per calling thread.
    """

    backend = "openvino-fp32"

    def __init__(
        self,
        model_dir: Path,
        meta: dict[str, Any],
        threads: int = 0,
        device: str = "cpu",
        graph: str | Path | None = None,
    ):
        super().__init__(model_dir, meta)
        _cpu_only(self.backend, device)
        module, extra = ENGINE_EXTRAS[self.backend]
        ov = require(module, extra, self.backend)
        fix = "" if self.backend == "openvino-fp32" else BUILD_HINT
        self.graph_path = Path(graph) if graph else self._find(fix)
        self.max_length = int(meta.get("max_length", 128))
        self.encoder = Encoder(self.model_dir, self.max_length, self.pad_multiple)
        core = ov.Core()
        self.model = core.read_model(str(self.graph_path))
        self.compiled = core.compile_model(self.model, "CPU", openvino_cpu_config(threads))
        self.input_names = [port.get_any_name() for port in self.compiled.inputs]
        self._local = threading.local()

    def _find(self, fix: str) -> Path:
        return find_export_file(
            self.model_dir, self.meta, ENGINE_FILES[self.backend], self.backend, fix
        )

    def _request(self):
        request = getattr(self._local, "request", None)
        if request is None:  # an infer request is not thread-safe: one per thread
            request = self._local.request = self.compiled.create_infer_request()
        return request

    def logits(self, texts: list[str]) -> np.ndarray:
        """Raw logits, shape (len(texts), n_labels), float32."""
        enc = self.encoder(list(texts))
        request = self._request()
        request.infer({name: enc[name] for name in self.input_names})
        return np.array(request.get_output_tensor(0).data, dtype=np.float32)

    def _predict_batch(self, texts: list[str]) -> np.ndarray:
        return _softmax(self.logits(texts))

    def files(self) -> list[Path]:
        graph = self.graph_path
        own = (
            onnx_graph_files(graph)
            if graph.suffix == ".onnx"
            else [graph, graph.with_suffix(".bin")]
        )
        return _transformer_files(self.model_dir) + own

    def num_parameters(self) -> int:
        if self.meta.get("params"):
            return int(self.meta["params"])
        return int(
            sum(
                int(np.prod(op.get_output_shape(0)))
                for op in self.model.get_ops()
                if op.get_type_name() == "Constant"
            )
        )


class OpenVinoInt8Predictor(OpenVinoPredictor):
    """The NNCF-quantised OpenVINO IR (static INT8; :func:`build_openvino_int8`).

    Texts are padded to a multiple of 16 tokens. OpenVINO compiles kernels for each new input
    shape: on a Xeon with AMX the first call at a new length took ~20 ms against ~3 ms warm, a
    batch-1 p99 of 21 ms; 16-token steps leave 8 shapes up to 128 tokens and ran faster at both
    batch sizes (p99 3.7 ms, bulk +7% despite 29% padding; docs/speed.md). The fp32 IR, whose
    first calls cost less and whose bulk throughput fell 14% with the padding, pads as usual.
    """

    backend = "openvino-int8"
    pad_multiple = 16


class Ct2Predictor(Predictor):
    """The BERT encoder in CTranslate2 (int8 weights, ``compute_type`` int8), pooling and the
    classification head in numpy (:func:`convert_ct2` writes both into ``ct2/``).

    ``threads``: CTranslate2's intra-op threads (0: its default). CTranslate2 masks the padding
    itself (the batch goes in as ids plus lengths), so only the pooling needs the mask.
    """

    backend = "ct2-int8"

    def __init__(
        self,
        model_dir: Path,
        meta: dict[str, Any],
        threads: int = 0,
        device: str = "cpu",
        compute_type: str = "int8",
    ):
        super().__init__(model_dir, meta)
        _cpu_only(self.backend, device)
        ct2 = require("ctranslate2", "ct2", self.backend)
        self._ct2 = ct2
        self.folder = find_export_file(
            self.model_dir, meta, ENGINE_FILES[self.backend], self.backend, BUILD_HINT
        )
        self.max_length = int(meta.get("max_length", 128))
        self.encoder = Encoder(self.model_dir, self.max_length)
        self.engine = ct2.Encoder(
            str(self.folder),
            device="cpu",
            compute_type=compute_type,
            inter_threads=1,
            intra_threads=max(0, int(threads)),
        )
        with np.load(self.folder / HEAD_FILE) as head:
            self.head = {k: head[k].astype(np.float32) for k in head.files}
        self.pooling = json.loads((self.folder / "head.json").read_text("utf-8"))["pooling"]

    def logits(self, texts: list[str]) -> np.ndarray:
        """Raw logits, shape (len(texts), n_labels), float32."""
        ct2 = self._ct2
        enc = self.encoder(list(texts))
        mask = enc["attention_mask"]
        ids = ct2.StorageView.from_array(np.ascontiguousarray(enc["input_ids"], dtype=np.int32))
        lengths = ct2.StorageView.from_array(mask.sum(axis=1).astype(np.int32))
        out = self.engine.forward_batch(ids, lengths, token_type_ids=enc["token_type_ids"].tolist())
        hidden = np.array(out.last_hidden_state, dtype=np.float32)  # (batch, seq, hidden)
        pooled = pool(hidden, mask, self.pooling, self.head)
        return pooled @ self.head["classifier_weight"].T + self.head["classifier_bias"]

    def _predict_batch(self, texts: list[str]) -> np.ndarray:
        return _softmax(self.logits(texts))

    def files(self) -> list[Path]:
        return _transformer_files(self.model_dir) + sorted(
            p for p in self.folder.iterdir() if p.is_file()
        )


def pool(
    hidden: np.ndarray, mask: np.ndarray, pooling: str, head: dict[str, np.ndarray]
) -> np.ndarray:
    """The sentence vector the classifier takes: the masked mean of the token states
    (finslm's mean-pooling head) or BERT's pooler on the [CLS] state (tanh of a dense layer)."""
    if pooling == "mean":
        m = mask[..., None].astype(np.float32)
        return (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
    return np.tanh(hidden[:, 0] @ head["pooler_weight"].T + head["pooler_bias"])
