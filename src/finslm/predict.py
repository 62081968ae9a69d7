"""One ``Predictor`` interface for every backend.

Evaluation, explanation, benchmarks and the CLI all take a Predictor, so a new backend is one
class registered in :data:`BACKENDS`, not edits everywhere.

    >>> p = load_predictor("models/minilm", backend="torch-fp32")
    >>> p.predict_proba(["Profit rose 12%."])   # shape (1, 3), rows sum to 1
    >>> p.predict(["Profit rose 12%."])         # ["positive"]
    >>> q = load_predictor("exports/minilm", backend="onnx-int8", threads=2)

Backends and the model kinds (``finslm.json`` ``kind``) they serve:

- ``torch-fp32``: a transformer folder (``save_pretrained`` format), PyTorch on CPU or CUDA;
- ``onnx-fp32`` / ``onnx-opt`` / ``onnx-int8``: the graphs the export stage writes
  (``model.onnx``, ``model.opt.onnx``, ``model.int8.onnx``) run by onnxruntime; the folder is an
  export folder (``kind: onnx``, e.g. ``exports/minilm``) or a transformer folder with an
  ``onnx/`` subfolder holding those files;
- ``sklearn``: the TF-IDF baseline;
- ``openvino-fp32`` / ``openvino-int8`` / ``ct2-int8``: other CPU engines on an export folder
  (:mod:`finslm.engines`; optional extras ``finslm[openvino]``, ``finslm[ct2]``).

Every transformer backend tokenises the same way (:class:`Encoder`: the fast ``tokenizers``
pipeline from ``tokenizer.json``, truncation to ``max_length`` from ``finslm.json``, padding to the
longest text in the batch), so backends differ only in the engine that runs the network.

Options every backend accepts: ``threads`` (intra-op CPU threads, 0 = library default) and
``device`` (``cpu``, ``cuda`` or ``auto`` = CUDA when present, else CPU; the TF-IDF baseline
ignores both).
"""

from __future__ import annotations

import abc
import ctypes
import inspect
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from finslm.models import META_FILE, TFIDF_FILE, ModelError, read_meta
from finslm.textnorm import normalise_text

# Files a transformer folder needs besides its weights (all optional but tokenizer.json or vocab).
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "added_tokens.json",
)
# Graph file per ONNX backend, as the export stage names them (finslm.export uses these too).
ONNX_FILES = {
    "onnx-fp32": "model.onnx",
    "onnx-opt": "model.opt.onnx",
    "onnx-int8": "model.int8.onnx",
}
ONNX_SUBDIR = "onnx"  # inside a transformer folder: an export kept next to the weights
DEVICES = ("cpu", "cuda", "auto")


class Predictor(abc.ABC):
    """Maps texts to class probabilities; column ``i`` is ``self.labels[i]``."""

    backend: str = ""
    # Each batch is padded to its longest text rounded up to a multiple of this (what the
    # benchmark counts as padding work); see Encoder's ``pad_to_multiple_of``.
    pad_multiple: int = 1

    def __init__(self, model_dir: Path, meta: dict[str, Any]):
        self.model_dir = Path(model_dir)
        self.meta = meta
        self.labels: tuple[str, ...] = tuple(meta["labels"])

    @property
    def name(self) -> str:
        """``<model>/<backend>``, the key used in metrics (e.g. ``minilm/onnx-int8``).

        ``<model>`` is ``finslm.json``'s ``name`` when set (an export folder names its source
        model), else the folder's name.
        """
        return f"{self.meta.get('name') or self.model_dir.name}/{self.backend}"

    def files(self) -> list[Path]:
        """Every file this predictor reads from disk (for the on-disk size of a variant)."""
        return [self.model_dir / META_FILE]

    def num_parameters(self) -> int:
        """Parameters of the model this backend runs (quantisation changes bytes, not count)."""
        return int(self.meta.get("params", 0))

    @abc.abstractmethod
    def _predict_batch(self, texts: list[str]) -> np.ndarray:
        """Probabilities, shape (len(texts), n_labels), float32/float64."""

    def lengths(self, texts: Sequence[str]) -> np.ndarray:
        """How long each text is to this model (tokens for a transformer, else characters);
        what length bucketing sorts by."""
        encoder = getattr(self, "encoder", None)  # every transformer backend has one
        if isinstance(encoder, Encoder):
            return encoder.lengths(list(texts))
        return np.array([len(t) for t in texts], dtype=np.int64)

    @property
    def max_tokens(self) -> int | None:
        """The tokens a text may have before the model stops reading (None: no limit)."""
        encoder = getattr(self, "encoder", None)
        return encoder.max_length if isinstance(encoder, Encoder) else None

    def truncated(self, texts: Sequence[str]) -> np.ndarray:
        """Whether each text is longer than :attr:`max_tokens` (scored on its first part only)."""
        encoder = getattr(self, "encoder", None)
        if isinstance(encoder, Encoder):
            return encoder.truncated(list(texts))
        return np.zeros(len(texts), dtype=bool)

    def predict_proba(
        self, texts: Sequence[str], batch_size: int = 32, bucket: bool = True
    ) -> np.ndarray:
        """Probabilities for ``texts`` in batches of ``batch_size``; shape (n, n_labels), rows in
        ``texts`` order.

        ``bucket``: when there is more than one batch, batch the texts in order of length
        (:meth:`lengths`) so each batch pads little, then put the rows back in input order.
        Several times less padding on mixed lengths; the same probabilities up to float
        rounding for fp32 engines (dynamic INT8 scales activations per batch, so its rows can
        move slightly with their batch-mates either way).

        Each text is first normalised as ``prepare`` normalises training text
        (:func:`finslm.textnorm.normalise_text`: NFKC, invisible characters, whitespace,
        mojibake), so that full-width letters or a zero-width space do not move a prediction.
        """
        texts = [normalise_text(str(t)) for t in texts]
        if not texts:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        plan = self.plan(texts, batch_size, bucket)
        out = [self._predict_batch([texts[i] for i in idx]) for idx in plan]
        proba = np.concatenate(out, axis=0)
        restored = np.empty_like(proba)
        restored[np.concatenate(plan)] = proba
        return restored

    def plan(self, texts: Sequence[str], batch_size: int, bucket: bool = True) -> list[np.ndarray]:
        """The batches :meth:`predict_proba` runs, as indices into ``texts``, in run order."""
        lengths = self.lengths(texts) if bucket and len(texts) > batch_size else None
        return batch_plan(len(texts), batch_size, lengths)

    def predict(self, texts: Sequence[str], batch_size: int = 32) -> list[str]:
        proba = self.predict_proba(texts, batch_size)
        return [self.labels[i] for i in proba.argmax(axis=1)]

    def metadata(self) -> dict[str, Any]:
        return {"name": self.name, "backend": self.backend, **self.meta}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.model_dir)!r}, backend={self.backend!r})"


def batch_plan(n: int, batch_size: int, lengths: Sequence[int] | None = None) -> list[np.ndarray]:
    """Indices of each batch, in the order they run: consecutive runs of ``batch_size`` in input
    order, or, given ``lengths``, in order of length (stable, so ties keep input order)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    order = np.arange(n) if lengths is None else np.argsort(np.asarray(lengths), kind="stable")
    return [order[i : i + batch_size] for i in range(0, n, batch_size)]


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


# Where a tokenizer without tokenizer.json (a slow-only one) reads its vocabulary from.
_VOCAB_FILES = ("vocab.txt", "vocab.json", "spiece.model", "sentencepiece.bpe.model")


class Encoder:
    """Texts -> ``{input_ids, attention_mask, token_type_ids}`` int64 arrays, shape (batch, seq).

    The ``tokenizers`` pipeline from ``tokenizer.json`` with truncation to ``max_length`` and
    padding to the longest text in the batch: what ``AutoTokenizer(texts, padding=True,
    truncation=True, max_length=...)`` does, without importing transformers (and with it torch)
    and with a fraction of its per-call overhead, which matters at batch 1 (tests check the ids
    are identical). Folders without ``tokenizer.json`` (slow-only tokenizers) fall back to
    ``AutoTokenizer``. ``pad_to_multiple_of`` > 1 rounds the padded length up to a multiple of
    it (``openvino-int8``: an engine that compiles a kernel per input shape sees fewer
    shapes); the attention mask marks the extra positions as padding.
    """

    def __init__(self, model_dir: Path, max_length: int, pad_to_multiple_of: int = 0):
        self.max_length = int(max_length)
        self.pad_to_multiple_of = int(pad_to_multiple_of) if pad_to_multiple_of > 1 else None
        path = Path(model_dir) / "tokenizer.json"
        self._hf = None
        if not path.is_file():
            if not any((Path(model_dir) / name).is_file() for name in _VOCAB_FILES):
                # AutoTokenizer would build a tokenizer of special tokens alone, and every word
                # would be read as [UNK]: plausible-looking, wrong predictions.
                raise ModelError(
                    f"{model_dir}: no tokenizer.json (nor {', '.join(_VOCAB_FILES)}): the folder "
                    "lacks its tokenizer; copy the tokenizer files from the model it was made "
                    "from, or export it again"
                )
            from transformers import AutoTokenizer

            self._hf = AutoTokenizer.from_pretrained(model_dir)
            return
        from tokenizers import Tokenizer

        config_path = Path(model_dir) / "tokenizer_config.json"
        config = json.loads(config_path.read_text("utf-8")) if config_path.is_file() else {}
        tok = Tokenizer.from_file(str(path))
        pad_token = config.get("pad_token") or "[PAD]"
        if isinstance(pad_token, dict):  # older configs store an AddedToken dict
            pad_token = pad_token.get("content", "[PAD]")
        pad_id = tok.token_to_id(pad_token)
        if pad_id is None:
            raise ModelError(f"{model_dir}: pad token {pad_token!r} is not in tokenizer.json")
        tok.enable_truncation(
            max_length=self.max_length, direction=config.get("truncation_side", "right")
        )
        tok.enable_padding(
            pad_id=pad_id,
            pad_token=pad_token,
            direction=config.get("padding_side", "right"),
            pad_to_multiple_of=self.pad_to_multiple_of,
        )
        self._tok = tok

    def lengths(self, texts: list[str]) -> np.ndarray:
        """Tokens per text after truncation (special tokens included), no padding."""
        if not texts:
            return np.zeros(0, dtype=np.int64)
        mask = self(list(texts))["attention_mask"]
        return mask.sum(axis=1).astype(np.int64)

    def truncated(self, texts: list[str]) -> np.ndarray:
        """Whether each text is longer than ``max_length`` tokens (special tokens included): the
        model reads only its first ``max_length``.

        Only texts of at least ``max_length - 2`` UTF-8 bytes are tokenised: every token but the
        two special ones covers a byte or more (WordPiece a character, byte-level BPE a byte),
        so a shorter text cannot overflow, and most short texts cost nothing."""
        flags = np.zeros(len(texts), dtype=bool)
        maybe = [i for i, text in enumerate(texts) if len(text.encode()) >= self.max_length - 2]
        if not maybe:
            return flags
        candidates = [texts[i] for i in maybe]
        if self._hf is not None:
            ids = self._hf(candidates, truncation=False)["input_ids"]
            flags[maybe] = [len(i) > self.max_length for i in ids]
        else:
            flags[maybe] = [bool(e.overflowing) for e in self._tok.encode_batch(candidates)]
        return flags

    def __call__(self, texts: list[str]) -> dict[str, np.ndarray]:
        if self._hf is not None:
            enc = self._hf(
                texts,
                padding=True,
                truncation=True,
                max_length=self.max_length,
                pad_to_multiple_of=self.pad_to_multiple_of,
                return_tensors="np",
            )
            return {k: np.asarray(v, dtype=np.int64) for k, v in enc.items()}
        # encode() for one text skips encode_batch's thread-pool dispatch (batch-1 latency).
        encs = [self._tok.encode(texts[0])] if len(texts) == 1 else self._tok.encode_batch(texts)
        return {
            "input_ids": np.array([e.ids for e in encs], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encs], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encs], dtype=np.int64),
        }


def _transformer_files(model_dir: Path) -> list[Path]:
    return [model_dir / META_FILE] + [
        model_dir / f for f in TOKENIZER_FILES if (model_dir / f).is_file()
    ]


def _cuda_driver_present() -> bool:
    """True when an NVIDIA driver library loads: cheap, and imports neither torch nor CUDA."""
    names = ["nvcuda.dll"] if sys.platform == "win32" else ["libcuda.so.1", "libcuda.so"]
    for name in names:
        try:
            ctypes.CDLL(name)
            return True
        except OSError:
            continue
    return False


def _check_device(device: str) -> None:
    if device not in DEVICES:
        raise ModelError(f"device {device!r}: unknown; choose one of {', '.join(DEVICES)}")


class TorchPredictor(Predictor):
    """A transformer folder (save_pretrained format) run by PyTorch on CPU or CUDA."""

    backend = "torch-fp32"

    def __init__(
        self, model_dir: Path, meta: dict[str, Any], threads: int = 0, device: str = "cpu"
    ):
        super().__init__(model_dir, meta)
        _check_device(device)
        import torch

        if threads > 0:
            torch.set_num_threads(threads)
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        elif device == "cuda" and not torch.cuda.is_available():
            raise ModelError(
                f"{model_dir}: device 'cuda' asked for, but this torch build sees no CUDA GPU "
                "(a CPU-only wheel, or no driver); use --device cpu (or auto)"
            )
        from finslm.train.heads import load_classifier

        self._torch = torch
        self.device = torch.device(device)
        self.max_length = int(meta.get("max_length", 128))
        self.encoder = Encoder(model_dir, self.max_length)
        self._tokenizer = None
        self.model = load_classifier(model_dir).to(self.device)
        self.model.eval()
        # Inputs the model's forward() takes (DistilBERT-style models take no token_type_ids).
        self._input_names = set(inspect.signature(self.model.forward).parameters)

    @property
    def tokenizer(self):
        """The Hugging Face tokenizer (loaded on first use; prediction uses :attr:`encoder`)."""
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(self.model_dir)
        return self._tokenizer

    def _feeds(self, texts: list[str]) -> dict[str, Any]:
        """The encoded batch as the model's input tensors, on its device."""
        return {
            k: self._torch.from_numpy(v).to(self.device)
            for k, v in self.encoder(list(texts)).items()
            if k in self._input_names
        }

    def logits(self, texts: list[str]) -> np.ndarray:
        """Raw logits, shape (len(texts), n_labels), float32."""
        enc = self._feeds(texts)
        with self._torch.inference_mode():
            return self.model(**enc).logits.float().cpu().numpy()

    def logits_and_hidden(
        self, texts: list[str], layers: list[int]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Raw logits (n, n_labels) and the mean-pooled hidden state after each of ``layers``
        (0 = embeddings), shape (n, len(layers), hidden), float32; one forward pass."""
        from finslm.train.heads import mean_pool

        torch = self._torch
        enc = self._feeds(texts)
        with torch.inference_mode():
            out = self.model(**enc, output_hidden_states=True)
            states = out.hidden_states
            bad = [layer for layer in layers if layer >= len(states)]
            if bad:
                raise ModelError(
                    f"{self.model_dir}: hidden layer(s) {bad} asked for; the encoder has "
                    f"{len(states) - 1} layers (0 = embeddings … {len(states) - 1})"
                )
            mask = enc["attention_mask"]
            pooled = torch.stack([mean_pool(states[layer], mask) for layer in layers], dim=1)
        return out.logits.float().cpu().numpy(), pooled.float().cpu().numpy()

    def _predict_batch(self, texts: list[str]) -> np.ndarray:
        return _softmax(self.logits(texts))

    def files(self) -> list[Path]:
        weights = [
            p for p in sorted(self.model_dir.glob("*")) if p.suffix in {".safetensors", ".bin"}
        ]
        config = [self.model_dir / "config.json"]
        return _transformer_files(self.model_dir) + config + weights

    def num_parameters(self) -> int:
        return int(sum(p.numel() for p in self.model.parameters()))


def find_export_file(
    model_dir: Path, meta: dict[str, Any], filename: str, backend: str, fix: str = ""
) -> Path:
    """``filename`` (a file or folder of an export folder, e.g. ``model.int8.onnx``) for
    ``backend``: in ``model_dir``, its ``onnx/`` subfolder, or, for ``models/<m>``, the
    pipeline's ``exports/<m>``. Missing: a ModelError naming the places looked in and the stage
    that writes it, then ``fix`` (what builds a file the export stage does not write)."""
    folders = [model_dir, model_dir / ONNX_SUBDIR]
    if model_dir.parent.name == "models":
        # The pipeline's layout: models/<name> (train) beside exports/<name> (export), so
        # `--model models/minilm --backend onnx-int8` finds the export without being told.
        folders.append(model_dir.parent.parent / "exports" / model_dir.name)
    for folder in folders:
        if (folder / filename).exists():
            return folder / filename
    name = meta.get("name") or model_dir.name
    missing = (
        f"{model_dir}: no {filename} for backend {backend!r} (looked in "
        f"{' and '.join(str(f) for f in folders)})"
    )
    fix = fix.replace("<m>", name)
    if fix and any((f / ONNX_FILES["onnx-fp32"]).is_file() for f in folders):
        # The export is there; what is missing is the engine's own build of it.
        raise ModelError(f"{missing}; the export stage does not make it: {fix}")
    raise ModelError(
        f"{missing}. The export stage writes the ONNX graphs to their own folder: run `dvc "
        f"repro export@{name}` and pass that folder (exports/{name})"
        + (f"; then {fix}" if fix else "")
    )


class OnnxPredictor(Predictor):
    """An exported graph run by onnxruntime (``onnx-fp32``; subclasses pick the other graphs).

    ``threads`` sets onnxruntime's intra-op pool (0: one thread per physical core); inter-op
    parallelism is off (a BERT graph is a chain); ``spin=False`` stops idle pool threads
    spinning. The execution provider is chosen explicitly:
    CUDA only when asked for (``device="cuda"``, or ``"auto"`` with a GPU present) and the
    installed onnxruntime has it; otherwise CPU, and the CUDA provider is never even tried, so
    a CPU-only machine prints no provider errors.
    """

    backend = "onnx-fp32"

    def __init__(
        self,
        model_dir: Path,
        meta: dict[str, Any],
        threads: int = 0,
        device: str = "cpu",
        graph: str | Path | None = None,
        spin: bool = True,
    ):
        super().__init__(model_dir, meta)
        _check_device(device)
        import onnxruntime as ort

        self.graph_path = Path(graph) if graph else self._find_graph()
        self.max_length = int(meta.get("max_length", 128))
        self.encoder = Encoder(self.model_dir, self.max_length)  # tokenizer beside finslm.json
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(0, int(threads))
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only
        # Worker threads spin between ops (onnxruntime's default); False yields the cores at
        # once, for a host busy with other work (docs/speed.md has the measurement).
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
        self.providers = self._providers(ort, device)
        self.session = ort.InferenceSession(
            str(self.graph_path), sess_options=options, providers=self.providers
        )
        if device == "cuda" and self.session.get_providers()[0] != "CUDAExecutionProvider":
            raise ModelError(
                f"{self.graph_path}: onnxruntime could not start CUDA (CUDA/cuDNN libraries "
                "missing?); install them with pip install 'finslm[gpu]', or use --device cpu"
            )
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_name = self.session.get_outputs()[0].name

    def _find_graph(self) -> Path:
        return find_export_file(self.model_dir, self.meta, ONNX_FILES[self.backend], self.backend)

    @staticmethod
    def _providers(ort, device: str) -> list[str]:
        if device == "cpu":
            return ["CPUExecutionProvider"]
        has_cuda = "CUDAExecutionProvider" in ort.get_available_providers()
        if has_cuda and _cuda_driver_present():
            return ["CUDAExecutionProvider", "CPUExecutionProvider"]
        if device == "auto":
            return ["CPUExecutionProvider"]
        if has_cuda:
            why = "no NVIDIA driver was found on this machine"
        else:
            # Linux/Windows x86_64 installs get onnxruntime-gpu; the CPU build here means another
            # package pulled plain onnxruntime over it, or the platform has no GPU build.
            why = (
                "the installed onnxruntime is the CPU-only build (on Linux/Windows x86_64: "
                "pip uninstall -y onnxruntime onnxruntime-gpu && pip install onnxruntime-gpu)"
            )
        raise ModelError(f"device 'cuda' asked for, but {why}; or use --device cpu (or auto)")

    def logits(self, texts: list[str]) -> np.ndarray:
        """Raw logits, shape (len(texts), n_labels), float32."""
        enc = self.encoder(list(texts))
        feeds = {name: enc[name] for name in self.input_names}
        return self.session.run([self.output_name], feeds)[0]

    def _predict_batch(self, texts: list[str]) -> np.ndarray:
        return _softmax(self.logits(texts))

    def files(self) -> list[Path]:
        return _transformer_files(self.model_dir) + onnx_graph_files(self.graph_path)

    def num_parameters(self) -> int:
        if self.meta.get("params"):
            return int(self.meta["params"])
        import onnx

        graph = onnx.load(str(self.graph_path), load_external_data=False).graph
        return int(sum(int(np.prod(t.dims)) for t in graph.initializer))


class OnnxOptPredictor(OnnxPredictor):
    """The graph with attention, LayerNorm and GELU fused by onnxruntime's transformer optimizer."""

    backend = "onnx-opt"


class OnnxInt8Predictor(OnnxPredictor):
    """Dynamic INT8: int8 per-channel weights, activations quantised per batch at run time.

    Activation scales are computed over the whole batch tensor, so a text's probabilities can
    shift slightly with what it is batched with (padding included); agreement is tested.
    """

    backend = "onnx-int8"


def onnx_graph_files(graph: Path) -> list[Path]:
    """The graph file plus any external-data files its initializers point at."""
    import onnx

    graph = Path(graph)
    files = [graph]
    model = onnx.load(str(graph), load_external_data=False)
    for tensor in model.graph.initializer:
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            location = next(e.value for e in tensor.external_data if e.key == "location")
            path = graph.parent / location
            if path not in files:
                files.append(path)
    return files


class SklearnPredictor(Predictor):
    """The TF-IDF + logistic-regression baseline (a joblib file written by this project)."""

    backend = "sklearn"

    def __init__(self, model_dir: Path, meta: dict[str, Any], **_: Any):
        super().__init__(model_dir, meta)
        import joblib

        # joblib unpickles: only load files this pipeline wrote (models/<name>/model.joblib).
        self.pipeline = joblib.load(Path(model_dir) / TFIDF_FILE)
        classes = list(self.pipeline.classes_)
        # Columns in self.labels order, whatever order sklearn sorted the classes in; a class
        # the training data lacked (data with two of the three labels) gets probability 0.
        self._columns = [(i, classes.index(label)) for i, label in enumerate(self.labels)
                         if label in classes]  # fmt: skip

    def _predict_batch(self, texts: list[str]) -> np.ndarray:
        proba = self.pipeline.predict_proba(texts)
        out = np.zeros((len(texts), len(self.labels)), dtype=proba.dtype)
        for mine, theirs in self._columns:
            out[:, mine] = proba[:, theirs]
        return out

    def files(self) -> list[Path]:
        return [self.model_dir / META_FILE, self.model_dir / TFIDF_FILE]

    def num_parameters(self) -> int:
        clf = self.pipeline[-1]
        return int(clf.coef_.size + clf.intercept_.size)


def _engine(class_name: str) -> Callable[..., Predictor]:
    """A factory for a :mod:`finslm.engines` backend, imported on first use (optional extras)."""

    def factory(model_dir: Path, meta: dict[str, Any], **options: Any) -> Predictor:
        from finslm import engines

        return getattr(engines, class_name)(model_dir, meta, **options)

    factory.__name__ = class_name
    return factory


# backend name -> (model kinds it serves, factory)
BACKENDS: dict[str, tuple[set[str], Callable[..., Predictor]]] = {
    "torch-fp32": ({"transformer"}, TorchPredictor),
    "onnx-fp32": ({"transformer", "onnx"}, OnnxPredictor),
    "onnx-opt": ({"transformer", "onnx"}, OnnxOptPredictor),
    "onnx-int8": ({"transformer", "onnx"}, OnnxInt8Predictor),
    "sklearn": ({"tfidf"}, SklearnPredictor),
    # Other CPU engines (finslm.engines), each an optional extra: finslm[openvino], finslm[ct2].
    "openvino-fp32": ({"transformer", "onnx"}, _engine("OpenVinoPredictor")),
    "openvino-int8": ({"transformer", "onnx"}, _engine("OpenVinoInt8Predictor")),
    "ct2-int8": ({"transformer", "onnx"}, _engine("Ct2Predictor")),
}
# Backends that read an export folder (exports/<m>), not the trained model's.
EXPORT_BACKENDS = (*ONNX_FILES, "openvino-fp32", "openvino-int8", "ct2-int8")
DEFAULT_BACKEND = {"transformer": "torch-fp32", "tfidf": "sklearn", "onnx": "onnx-int8"}


def load_predictor(model_dir: str | Path, backend: str = "auto", **options: Any) -> Predictor:
    """Open ``model_dir`` with ``backend`` (``auto``: the model kind's default; for an export
    folder, :func:`finslm.engines.auto_export_backend` chooses by the CPU)."""
    model_dir = Path(model_dir)
    meta = read_meta(model_dir)
    kind = meta.get("kind", "")
    if backend == "auto":
        backend = DEFAULT_BACKEND.get(kind, "")
        if backend == "onnx-int8":
            from finslm.engines import auto_export_backend

            backend = auto_export_backend(model_dir)
    if backend == "" and not any(kind in k for k, _ in BACKENDS.values()):
        raise ModelError(
            f"{model_dir}: a {kind!r} model is not a sentence classifier"
            + ("; `finslm ner …` commands take it" if "ner" in kind else "")
        )
    if backend not in BACKENDS:
        raise ModelError(f"backend {backend!r}: unknown; choose one of {', '.join(BACKENDS)}")
    kinds, factory = BACKENDS[backend]
    if kind not in kinds:
        usable = [b for b, (k, _) in BACKENDS.items() if kind in k]
        if not usable:
            raise ModelError(
                f"{model_dir}: a {kind!r} model is not a sentence classifier"
                + ("; `finslm ner …` commands take it" if "ner" in kind else "")
            )
        raise ModelError(
            f"{model_dir}: a {kind!r} model cannot run on backend {backend!r}; use {', '.join(usable)}"
        )
    check_config(model_dir, meta)
    try:
        return factory(model_dir, meta, **options)
    except ModelError:
        raise
    except Exception as exc:  # a truncated or corrupt file: every library raises its own type
        raise ModelError(_damaged(model_dir, meta, backend, exc)) from None


def check_config(model_dir: Path, meta: dict[str, Any]) -> None:
    """A ModelError where ``finslm.json`` disagrees with the network's ``config.json``: another
    label count (the model's outputs would be misnamed) or a ``max_length`` past its position
    embeddings (a long text would fail inside the engine). A hand-edited or mixed-up folder."""
    path = model_dir / "config.json"
    if not path.is_file():
        return  # TF-IDF; a transformer folder without it fails to load with its own message
    try:
        config = json.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ModelError(f"{path}: not readable JSON ({exc}); the folder is damaged") from None
    labels = meta.get("labels") or []
    outputs = len(config.get("id2label") or {})
    if outputs and labels and len(labels) != outputs:
        raise ModelError(
            f"{model_dir / META_FILE}: {len(labels)} labels ({', '.join(labels)}) for a model "
            f"with {outputs} outputs (config.json id2label); the two files come from different "
            "models: export the model again"
        )
    positions = config.get("max_position_embeddings")
    max_length = meta.get("max_length")
    if isinstance(positions, int) and isinstance(max_length, int) and max_length > positions:
        raise ModelError(
            f"{model_dir / META_FILE}: max_length {max_length} is past the model's {positions} "
            f"positions (config.json max_position_embeddings); set it to {positions} or less"
        )


def _damaged(model_dir: Path, meta: dict[str, Any], backend: str, exc: Exception) -> str:
    """One line for a model folder whose files cannot be loaded: the file, the error, the fix."""
    name = meta.get("name") or model_dir.name
    fix = ""
    if backend == "sklearn":
        what, stage = TFIDF_FILE, f"train@{name}"
    elif backend in ONNX_FILES:
        what, stage = ONNX_FILES[backend], f"export@{name}"
    elif backend in EXPORT_BACKENDS:
        from finslm.engines import BUILD_HINT, ENGINE_FILES

        what, stage = ENGINE_FILES[backend], f"export@{name}"
        fix = "" if backend == "openvino-fp32" else f"; then {BUILD_HINT}"
    else:
        what, stage = "config.json / model.safetensors / tokenizer.json", f"train@{name}"
    reason = " ".join(str(exc).split()) or type(exc).__name__
    if len(reason) > 200:
        reason = reason[:200] + "…"
    return (
        f"{model_dir}: cannot load {what} for backend {backend!r} ({type(exc).__name__}: "
        f"{reason}); the file is damaged or incomplete. Fix: rerun `dvc repro {stage}` "
        f"(or `dvc checkout {model_dir}`){fix}"
    )
