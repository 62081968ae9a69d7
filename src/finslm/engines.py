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
:func:`build_engines`, which then gates every engine on parity with PyTorch like the export
stage gates its graphs (:func:`finslm.export.parity`, the same ``export.*`` tolerances; the
INT8 ones for ``*-int8``)::

    python tools/engines.py build --model models/minilm --export exports/minilm \\
        --train data/prepared/train.parquet --val data/prepared/val.parquet
"""

from __future__ import annotations

import importlib
import json
import shutil
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from finslm.models import ModelError, read_meta
from finslm.predict import (
    TOKENIZER_FILES,
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


def _cpu_only(backend: str, device: str) -> None:
    _check_device(device)
    if device == "cuda":
        raise ModelError(f"backend {backend!r} runs on the CPU only; use --device cpu (or auto)")


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
        self.encoder = Encoder(self.model_dir, self.max_length)
        core = ov.Core()
        self.model = core.read_model(str(self.graph_path))
        config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}
        if threads > 0:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        self.compiled = core.compile_model(self.model, "CPU", config)
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
    """The NNCF-quantised OpenVINO IR (static INT8; :func:`build_openvino_int8`)."""

    backend = "openvino-int8"


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


# --- building the engines' files into an export folder ------------


def build_openvino_int8(
    export_dir: Path,
    calibration_texts: Sequence[str],
    keep_fp32: Sequence[int | str] = (),
    smooth_quant_alpha: float | None = None,
    preset: str = "mixed",
    log=print,
) -> Path:
    """Quantise ``export_dir/model.onnx`` with NNCF into ``export_dir/openvino/model.int8.xml``.

    Static INT8 (activation ranges fixed from ``calibration_texts``, which must be training
    sentences: the test split is never seen, validation measures parity), the transformer
    model type (mixed preset: symmetric weights, asymmetric activations; SmoothQuant).
    ``keep_fp32``: encoder layers (ints) or regular expressions over node names left in fp32,
    like ``export.int8_keep_fp32``. ``preset``: ``mixed`` (asymmetric activations, NNCF's
    default for transformers) or ``performance`` (symmetric). Returns the IR's path.
    """
    ov = require("openvino", "openvino")
    nncf = require("nncf", "openvino")
    export_dir = Path(export_dir)
    if not calibration_texts:
        raise ModelError("openvino-int8: no calibration (training) texts")
    meta = read_meta(export_dir)
    encoder = Encoder(export_dir, int(meta.get("max_length", 128)))
    model = ov.Core().read_model(str(export_dir / ENGINE_FILES["openvino-fp32"]))
    names = [port.get_any_name() for port in model.inputs]
    # One sentence per item: no padding in the ranges the calibration sees.
    items = [{n: v for n, v in encoder([t]).items() if n in names} for t in calibration_texts]
    patterns = [rf".*[/.]layer\.{k}[/.].*" if isinstance(k, int) else str(k) for k in keep_fp32]
    advanced = None
    if smooth_quant_alpha is not None:
        advanced = nncf.AdvancedQuantizationParameters(
            smooth_quant_alphas=nncf.AdvancedSmoothQuantParameters(matmul=smooth_quant_alpha)
        )
    log(
        f"nncf: quantise {export_dir / 'model.onnx'} on {len(items)} training sentences "
        f"(fp32: {list(keep_fp32) or 'nothing'})"
    )
    quantized = nncf.quantize(
        model,
        nncf.Dataset(items),
        model_type=nncf.ModelType.TRANSFORMER,
        preset=nncf.QuantizationPreset(preset),
        subset_size=len(items),
        ignored_scope=nncf.IgnoredScope(patterns=patterns, validate=False) if patterns else None,
        advanced_parameters=advanced,
    )
    out = export_dir / ENGINE_FILES["openvino-int8"]
    out.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(quantized, str(out), compress_to_fp16=False)
    return out


def convert_ct2(model_dir: Path, export_dir: Path, log=print) -> Path:
    """Convert ``model_dir``'s BERT encoder to CTranslate2 (int8 weights) in ``export_dir/ct2``,
    with the pooling and head in ``head.npz`` / ``head.json``; return the folder.

    CTranslate2's converter takes a plain ``BertModel`` with its pooler: the encoder is copied
    into one (the pooler's weights zero when the model pools by mean and has none), saved to a
    temporary folder with the tokenizer, and converted. A ModelError for non-BERT encoders.
    """
    ct2 = require("ctranslate2", "ct2")
    import torch
    from transformers import AutoModelForSequenceClassification, BertConfig, BertModel

    from finslm.predict import no_hf_progress
    from finslm.train.heads import MeanPoolBertForSequenceClassification, register

    model_dir, export_dir = Path(model_dir), Path(export_dir)
    register()
    with no_hf_progress():
        model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    bert = getattr(model, "bert", None)
    kind = type(model).__name__
    if bert is None or getattr(bert.config, "position_embedding_type", "absolute") != "absolute":
        raise ModelError(
            f"{model_dir}: ct2-int8 serves BERT encoders (BertForSequenceClassification or "
            f"finslm's mean-pooling BERT head), not {kind}"
        )
    pooling = "mean" if isinstance(model, MeanPoolBertForSequenceClassification) else "cls"
    config = BertConfig.from_dict(
        {k: v for k, v in bert.config.to_dict().items() if k not in {"model_type", "architectures"}}
    )
    # CTranslate2's BERT loader asserts this attribute, which transformers 5 no longer defines
    # (absolute positions are the only kind it has for BERT).
    config.position_embedding_type = "absolute"
    plain = BertModel(config, add_pooling_layer=True)
    state = bert.state_dict()
    if bert.pooler is None:
        with torch.no_grad():
            plain.pooler.dense.weight.zero_()
            plain.pooler.dense.bias.zero_()
        state.update({f"pooler.dense.{k}": v for k, v in plain.pooler.dense.state_dict().items()})
    plain.load_state_dict(state, strict=True)
    head = {
        "classifier_weight": model.classifier.weight.detach().float().numpy(),
        "classifier_bias": model.classifier.bias.detach().float().numpy(),
    }
    if pooling == "cls":
        head["pooler_weight"] = bert.pooler.dense.weight.detach().float().numpy()
        head["pooler_bias"] = bert.pooler.dense.bias.detach().float().numpy()
    out = export_dir / ENGINE_FILES["ct2-int8"]
    with tempfile.TemporaryDirectory() as tmp:
        plain.save_pretrained(tmp)
        for name in TOKENIZER_FILES:
            if (model_dir / name).is_file():
                shutil.copy2(model_dir / name, Path(tmp) / name)
        log(f"ct2: convert the {pooling}-pooled BERT encoder of {model_dir} -> {out} (int8)")
        ct2.converters.TransformersConverter(tmp).convert(str(out), quantization="int8", force=True)
    np.savez(out / HEAD_FILE, **head)
    (out / "head.json").write_text(json.dumps({"pooling": pooling}) + "\n", encoding="utf-8")
    return out


def engine_parity(
    model_dir: Path,
    export_dir: Path,
    texts: Sequence[str],
    cfg,
    backends: Sequence[str] = tuple(ENGINE_FILES),
    threads: int = 0,
    log=print,
) -> dict[str, Any]:
    """Parity of each engine backend in ``export_dir`` with PyTorch (``model_dir``) on ``texts``
    (validation sentences), gated like the export stage's graphs: ``cfg`` is an ExportConfig,
    ``*-int8`` backends get its INT8 tolerances. Raises :class:`finslm.export.ParityError`
    (carrying the numbers) when one breaks them; returns the numbers (and sizes) otherwise."""
    from finslm.export import ParityError, parity, parity_failures
    from finslm.predict import TorchPredictor, load_predictor

    reference = TorchPredictor(Path(model_dir), read_meta(Path(model_dir)), threads=threads)
    metrics: dict[str, Any] = {}
    for backend in backends:
        candidate = load_predictor(export_dir, backend, threads=threads)
        numbers = parity(reference, candidate, list(texts), cfg.batch_size)
        files = [f for f in candidate.files() if f.suffix not in {".json", ".txt"}]
        numbers["size_mb"] = round(sum(f.stat().st_size for f in files) / 1e6, 3)
        metrics[backend] = numbers
        log(
            f"{backend}: max |Δlogit| {numbers['max_abs_logit_diff']:.2e}, "
            f"agreement {numbers['agreement']:.4f}, {numbers['size_mb']:.1f} MB"
        )
    failures = parity_failures(metrics, cfg)
    if failures:
        raise ParityError(
            f"engines in {export_dir} broke the parity tolerance on {len(texts)} validation "
            "texts:\n  " + "\n  ".join(failures),
            metrics,
        )
    return metrics


def build_engines(
    model_dir: Path,
    export_dir: Path,
    train_texts: Sequence[str],
    val_texts: Sequence[str],
    cfg,
    engines: Sequence[str] = ("openvino", "ct2"),
    keep_fp32: Sequence[int | str] = (),
    preset: str = "mixed",
    threads: int = 0,
    log=print,
) -> dict[str, Any]:
    """Build the engines' files into ``export_dir`` (``openvino``: the NNCF INT8 IR calibrated
    on ``train_texts``; ``ct2``: the CTranslate2 folder) and gate every engine backend on
    ``val_texts`` (:func:`engine_parity`). Returns the parity numbers."""
    unknown = set(engines) - {"openvino", "ct2"}
    if unknown:
        raise ModelError(f"engines {sorted(unknown)}: unknown; choose openvino, ct2")
    backends: list[str] = []
    if "openvino" in engines:
        build_openvino_int8(export_dir, train_texts, keep_fp32, preset=preset, log=log)
        backends += ["openvino-fp32", "openvino-int8"]
    if "ct2" in engines:
        convert_ct2(model_dir, export_dir, log=log)
        backends.append("ct2-int8")
    return engine_parity(model_dir, export_dir, val_texts, cfg, backends, threads, log)
