"""ONNX export, graph optimisation, INT8 quantisation, and parity with PyTorch.

A trained transformer folder (``models/<m>``) becomes an export folder (``exports/<m>``) that runs
without torch: three graphs with dynamic ``batch`` and ``sequence`` axes, plus the tokenizer and a
``finslm.json`` (``kind: onnx``) so :func:`finslm.predict.load_predictor` opens it directly.

- ``model.onnx``: fp32, exported with eager attention so the optimizer can recognise it;
- ``model.opt.onnx``: attention, LayerNorm, GELU and embeddings fused by onnxruntime's
  transformer optimizer (portable: only level-1 onnxruntime rewrites are baked in);
- ``model.int8.onnx``: dynamic INT8 quantisation (int8 per-channel weights, uint8 activations
  quantised per batch at run time) of the optimised graph, optionally leaving some layers or
  nodes in fp32 (``export.int8_keep_fp32``: mixed precision where INT8 hurts most).

Each graph is compared with PyTorch on the validation texts (max |Δlogit|, label agreement);
:class:`ParityError` is raised, after the numbers are computed, when one breaks its tolerance.

    python stages/export.py minilm            # what `dvc repro export@minilm` runs

    >>> metrics = export_model(Path("models/minilm"), Path("exports/minilm"), texts, ExportConfig())
    >>> metrics["onnx-int8"]["agreement"]
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import shutil
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from finslm.config import ExportConfig
from finslm.errors import FinslmError
from finslm.models import ModelError, read_meta, write_meta
from finslm.predict import (
    ONNX_FILES,
    TOKENIZER_FILES,
    OnnxPredictor,
    Predictor,
    TorchPredictor,
    onnx_graph_files,
)

INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
# HF config.model_type -> onnxruntime transformer optimizer model type.
OPTIMIZER_TYPES = {
    "bert": "bert",
    "distilbert": "bert",
    "roberta": "bert",
    "xlm-roberta": "bert",
    "electra": "bert",
    "mobilebert": "bert",
    "mpnet": "bert",
    "finslm-meanpool-mpnet": "bert",
}
# MPNet adds a relative-position bias to QK^T before the softmax: onnxruntime's BERT attention
# fusion does not match that pattern, so only LayerNorm and GELU fuse (parity is unaffected).
UNFUSED_ATTENTION = {"mpnet", "finslm-meanpool-mpnet"}


class ParityError(FinslmError, RuntimeError):
    """An exported graph disagrees with PyTorch beyond the configured tolerance.

    ``metrics`` holds the full parity numbers (the stage still writes them, for diagnosis).
    """

    def __init__(self, message: str, metrics: dict[str, Any]):
        super().__init__(message)
        self.metrics = metrics


@contextlib.contextmanager
def _quiet():
    """Silence exporter/quantiser chatter (tracer warnings, 'consider pre-processing' notes)."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        root.setLevel(level)


def _logits_only(model):
    """Wrap a HF classifier so the exported graph has one output, ``logits``."""
    import torch

    class LogitsOnly(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids=None):
            kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
            if token_type_ids is not None:
                kwargs["token_type_ids"] = token_type_ids
            return self.inner(**kwargs).logits

    return LogitsOnly(model).eval()


def export_onnx(
    model_dir: Path, path: Path, opset: int = 17, exporter: str = "torchscript"
) -> list[str]:
    """Export ``model_dir`` to one self-contained fp32 graph at ``path``; return its input names.

    Inputs are int64 (batch, sequence), output ``logits`` is float32 (batch, n_labels), both axes
    dynamic. The sample input is two texts of different lengths, so no size is baked in.
    """
    from finslm.train.heads import load_classifier

    model = load_classifier(model_dir).eval()
    return export_module(model, model_dir, path, opset, exporter)


def export_module(
    model, tokenizer_dir: Path, path: Path, opset: int = 17, exporter: str = "torchscript"
) -> list[str]:
    """:func:`export_onnx` of an in-memory classifier (one that no Auto class can reload, such
    as a network with PerforatedAI dendrites); ``tokenizer_dir`` holds its tokenizer."""
    import inspect

    import torch

    from finslm.predict import Encoder

    model = model.eval()
    accepted = set(inspect.signature(model.forward).parameters)
    names = [n for n in INPUT_NAMES if n in accepted]
    sample = Encoder(tokenizer_dir, 32)(["A short one.", "A somewhat longer sample sentence here."])
    args = tuple(torch.from_numpy(sample[n]) for n in names)
    wrapper = _logits_only(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _quiet(), torch.inference_mode():
        if exporter == "torchscript":
            torch.onnx.export(
                wrapper,
                args,
                str(path),
                input_names=names,
                output_names=["logits"],
                dynamic_axes={
                    **{n: {0: "batch", 1: "sequence"} for n in names},
                    "logits": {0: "batch"},
                },
                opset_version=opset,
                do_constant_folding=True,
                dynamo=False,
            )
        elif exporter == "dynamo":
            batch, seq = torch.export.Dim("batch"), torch.export.Dim("sequence", max=4096)
            program = torch.onnx.export(
                wrapper,
                args,
                input_names=names,
                output_names=["logits"],
                dynamic_shapes={n: {0: batch, 1: seq} for n in names},
                opset_version=opset,
                dynamo=True,
            )
            # One file: a < 2 GB model needs no separate .onnx.data to account for.
            program.save(str(path), external_data=False)
        else:
            raise ValueError(f"exporter {exporter!r}: choose torchscript or dynamo")
    return names


def optimize_graph(src: Path, dst: Path, model_dir: Path) -> dict[str, int]:
    """Fuse attention/LayerNorm/GELU/embeddings into onnxruntime contrib ops; return fused-op counts.

    ``opt_level=1`` bakes only portable rewrites into the file (not CPU-specific layouts), so the
    same graph serves CPU and CUDA.
    """
    from onnxruntime.transformers.optimizer import optimize_model

    config = json.loads((model_dir / "config.json").read_text("utf-8"))
    model_type = OPTIMIZER_TYPES.get(config.get("model_type", ""), "bert")
    heads = config.get("num_attention_heads") or config.get("n_heads") or 0
    hidden = config.get("hidden_size") or config.get("dim") or 0
    with _quiet():
        optimized = optimize_model(
            str(src),
            model_type=model_type,
            num_heads=int(heads),
            hidden_size=int(hidden),
            opt_level=1,
            use_gpu=False,
        )
        optimized.save_model_to_file(str(dst), use_external_data_format=False)
    stats = optimized.get_fused_operator_statistics()
    return {k: int(v) for k, v in stats.items() if v}


def select_nodes(graph: Path, keep: list[int | str]) -> list[str]:
    """Names of the nodes of ``graph`` that ``keep`` selects (see ``export.int8_keep_fp32``).

    An integer ``i`` selects encoder layer ``i``: the exporter keeps Hugging Face module paths
    (``/bert/encoder/layer.3/...``) in node and tensor names, and the optimizer's fused nodes
    (``Attention_3``) write tensors named after their layer, so a node belongs to layer ``i``
    when its name or an output's name says so. A string selects the nodes whose name or an
    output's name contains it.
    """
    import re

    import onnx

    pattern = re.compile(r"[/.]layer\.(\d+)[/.]")
    layers = {k for k in keep if isinstance(k, int)}
    pieces = [k for k in keep if isinstance(k, str)]
    names = []
    for node in onnx.load(str(graph), load_external_data=False).graph.node:
        texts = (node.name, *node.output)
        in_layer = {int(i) for text in texts for i in pattern.findall(text)} & layers
        if in_layer or any(piece in text for piece in pieces for text in texts):
            names.append(node.name)
    return names


def _beyond_depth(entry: int | str, n_layers: int | None) -> bool:
    """True when ``entry`` names an encoder layer the model does not have."""
    import re

    if n_layers is None:
        return False
    index = entry if isinstance(entry, int) else None
    if isinstance(entry, str) and (found := re.search(r"layer\.(\d+)", entry)):
        index = int(found.group(1))
    return index is not None and index >= n_layers


def quantize_graph(
    src: Path,
    dst: Path,
    per_channel: bool = True,
    reduce_range: bool = False,
    exclude: list[str] | None = None,
) -> None:
    """Dynamic INT8: int8 weights (per output channel), uint8 activations scaled per batch.

    Nodes named in ``exclude`` stay fp32 (mixed precision).
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with _quiet():
        quantize_dynamic(
            model_input=str(src),
            model_output=str(dst),
            per_channel=per_channel,
            reduce_range=reduce_range,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=list(exclude or []),
            # The optimiser's contrib ops carry no type info for some outputs; without a default
            # the quantiser cannot infer them.
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )


def parity(
    reference: Predictor, candidate: Predictor, texts: list[str], batch_size: int = 32
) -> dict[str, float]:
    """Logit and label agreement of ``candidate`` with ``reference`` over ``texts``.

    Both see identical batches (same padding), so differences come from the engine alone.
    Returns ``max_abs_logit_diff``, ``mean_abs_logit_diff``, ``max_abs_prob_diff``,
    ``agreement`` (share of identical argmax labels) and ``n``.
    """
    ref, cand = [], []
    for i in range(0, len(texts), batch_size):
        chunk = texts[i : i + batch_size]
        ref.append(reference.logits(chunk))
        cand.append(candidate.logits(chunk))
    a, b = np.concatenate(ref).astype(np.float64), np.concatenate(cand).astype(np.float64)
    diff = np.abs(a - b)
    pa, pb = _softmax(a), _softmax(b)
    return {
        "max_abs_logit_diff": float(diff.max()),
        "mean_abs_logit_diff": float(diff.mean()),
        "max_abs_prob_diff": float(np.abs(pa - pb).max()),
        "agreement": float((a.argmax(1) == b.argmax(1)).mean()),
        "n": len(texts),
    }


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def parity_failures(metrics: dict[str, Any], cfg: ExportConfig) -> list[str]:
    """One line per graph (or engine, :mod:`finslm.engines`) that breaks its tolerance (empty:
    all pass); ``*-int8`` backends get the INT8 tolerances."""
    failures = []
    for backend, m in metrics.items():
        if not isinstance(m, dict) or "agreement" not in m:
            continue
        int8 = backend.endswith("-int8")
        atol, atol_key = (cfg.int8_atol, "int8_atol") if int8 else (cfg.atol, "atol")
        agree, agree_key = (
            (cfg.int8_min_agreement, "int8_min_agreement")
            if int8
            else (cfg.min_agreement, "min_agreement")
        )
        if m["max_abs_logit_diff"] > atol:
            failures.append(
                f"{backend}: max |Δlogit| vs PyTorch {m['max_abs_logit_diff']:.3g} > "
                f"export.{atol_key} = {atol:g}"
            )
        if m["agreement"] < agree:
            failures.append(
                f"{backend}: label agreement with PyTorch {m['agreement']:.4f} < "
                f"export.{agree_key} = {agree:g} ({m['n']} validation texts)"
            )
    return failures


def _size_mb(paths: list[Path]) -> float:
    return round(sum(p.stat().st_size for p in paths) / 1e6, 3)


def exportable_meta(model_dir: Path) -> dict[str, Any]:
    """``model_dir``'s finslm.json if this module exports it, else a ModelError naming what does."""
    meta = read_meta(model_dir)
    kind = meta.get("kind")
    # finslm.tasks.TOKEN_TASK, not imported: the sentiment stages must not depend on the NER code.
    if meta.get("task") == "token-classification":
        raise ModelError(
            f"{model_dir}: a token classifier (kind {kind!r}); `finslm ner export {model_dir}` "
            f"exports it (or `dvc repro export_ner@{Path(model_dir).name}` for ner.models entries)"
        )
    if kind != "transformer":
        raise ModelError(
            f"{model_dir}: kind {kind!r}; only a trained transformer's folder (models/<name>) "
            "exports to ONNX"
            + (" (this folder is already an export)" if kind == "onnx" else "")
            + "; in the pipeline, list only transformers under export.models"
        )
    return meta


def export_model(
    model_dir: Path,
    out_dir: Path,
    texts: list[str],
    cfg: ExportConfig,
    log=print,
    train_texts: list[str] | None = None,
) -> dict[str, Any]:
    """Export, optimise and quantise ``model_dir`` into ``out_dir``; measure parity on ``texts``.

    ``out_dir`` is replaced. Returns the metrics (per backend: parity numbers, ``size_mb``, and
    for ``onnx-opt`` the fused-op counts); raises :class:`ParityError` (carrying them) when a
    graph breaks ``cfg``'s tolerances, and ModelError when ``model_dir`` is not a transformer.
    With ``cfg.qat_epochs``, the INT8 graph comes from a quantisation-aware fine-tuned copy
    (:mod:`finslm.qat`, on ``train_texts``, the epoch chosen on ``texts``), still compared with
    ``model_dir``'s own PyTorch logits.
    """
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    meta = exportable_meta(model_dir)
    if not texts:
        raise ModelError("export: no validation texts to measure parity on")
    start = time.perf_counter()
    reference = TorchPredictor(model_dir, meta)
    _start_export_folder(model_dir, out_dir, meta, reference, cfg)

    fp32 = out_dir / ONNX_FILES["onnx-fp32"]
    log(f"export {model_dir} -> {fp32} (opset {cfg.opset}, {cfg.exporter})")
    export_onnx(model_dir, fp32, cfg.opset, cfg.exporter)
    built = optimise_and_quantise(
        model_dir, out_dir, cfg, cfg.int8_keep_fp32, "export.int8_keep_fp32", log
    )
    qat = _qat_int8(model_dir, out_dir, texts, train_texts, cfg, built, log)
    metrics = _measure_graphs(out_dir, reference, texts, cfg, log)
    finish_metrics(metrics, built, reference, start)
    if qat is not None and "onnx-int8" in metrics:
        metrics["onnx-int8"]["qat"] = qat

    failures = parity_failures(metrics, cfg)
    if failures:
        raise ParityError(
            f"export of {model_dir} broke the parity tolerance on {len(texts)} validation texts:\n  "
            + "\n  ".join(failures)
            + "\nThe graphs are in "
            + str(out_dir)
            + " for inspection. Fix: check the export (eager attention, opset); for INT8 keep "
            "the worst layers in fp32 (export.int8_keep_fp32) or try export.reduce_range: true; "
            "or relax the tolerance in params.yaml if the numbers are acceptable.",
            metrics,
        )
    return metrics


@dataclasses.dataclass(frozen=True)
class BuiltGraphs:
    """What :func:`optimise_and_quantise` did: the fused-op counts, the graph INT8 came from,
    and the node names kept fp32."""

    fused: dict[str, int]
    source: Path
    kept_fp32: list[str]


def optimise_and_quantise(
    model_dir: Path,
    out_dir: Path,
    cfg: ExportConfig,
    keep_entries: list[int | str],
    keep_key: str,
    log=print,
) -> BuiltGraphs:
    """The steps every export shares after ``onnx-fp32`` is written into ``out_dir``: the
    onnxruntime optimizer (``onnx-opt``, when ``cfg.optimize``), then dynamic INT8 quantisation
    of ``cfg.quantize_from`` with ``keep_entries`` (named ``keep_key`` in errors) left fp32."""
    fp32, opt, int8 = (out_dir / ONNX_FILES[b] for b in ("onnx-fp32", "onnx-opt", "onnx-int8"))
    fused: dict[str, int] = {}
    if cfg.optimize:
        log(f"optimise -> {opt}")
        fused = optimize_graph(fp32, opt, model_dir)
        model_type = json.loads((model_dir / "config.json").read_text()).get("model_type")
        if model_type in UNFUSED_ATTENTION:
            log(
                f"{model_type}: attention is not fused (relative position bias); LayerNorm/GELU are"
            )
        elif not fused.get("Attention") and not fused.get("MultiHeadAttention"):
            log("warning: the optimizer fused no attention (exported without eager attention?)")
    source = opt if cfg.optimize and cfg.quantize_from == "opt" else fp32
    n_layers = json.loads((model_dir / "config.json").read_text()).get("num_hidden_layers")
    keep = _kept_fp32_nodes(source, keep_entries, keep_key, n_layers, log)
    log(
        f"quantise {source.name} -> {int8} (per_channel={cfg.per_channel}, "
        f"fp32: {keep_entries or 'nothing'})"
    )
    quantize_graph(source, int8, cfg.per_channel, cfg.reduce_range, exclude=keep)
    return BuiltGraphs(fused, source, keep)


def _qat_int8(model_dir, out_dir, val_texts, train_texts, cfg, built: BuiltGraphs, log):
    """With ``cfg.qat_epochs``: replace ``model.int8.onnx`` by the INT8 graph of a
    quantisation-aware fine-tuned copy of ``model_dir`` (the same nodes kept fp32). Returns
    what the fine-tune did (``chosen_epoch``, per-epoch ``history``), or None when off."""
    if not cfg.qat_epochs:
        return None
    if not train_texts:
        raise ModelError(
            "export.qat_epochs is set but no training texts were given to fine-tune on "
            "(the export stage reads data/prepared/train.parquet)"
        )
    import tempfile

    from finslm.qat import QatSettings, int8_graph, qat_finetune

    settings = QatSettings(epochs=cfg.qat_epochs, lr=cfg.qat_lr, reduce_range=cfg.reduce_range)
    with tempfile.TemporaryDirectory(prefix="finslm-export-qat-") as tmp:
        copy_dir = Path(tmp) / "model"
        history = qat_finetune(
            model_dir, copy_dir, train_texts, val_texts, settings, cfg, log, built.kept_fp32
        )
        chosen = read_meta(copy_dir)["qat"]["chosen_epoch"]
        log(f"quantise the QAT copy (epoch {chosen}) -> {out_dir / ONNX_FILES['onnx-int8']}")
        int8_graph(
            copy_dir,
            Path(tmp) / "graphs",
            out_dir / ONNX_FILES["onnx-int8"],
            cfg,
            cfg.reduce_range,
            exclude=built.kept_fp32,
        )
    meta = read_meta(out_dir)
    write_meta(out_dir, {**meta, "int8_qat": {"epochs": cfg.qat_epochs, "chosen_epoch": chosen}})
    return {"chosen_epoch": chosen, "lr": cfg.qat_lr, "history": history}


def finish_metrics(metrics: dict[str, Any], built: BuiltGraphs, reference, start: float) -> None:
    """Add what every export reports beside parity: fused ops, fp32 nodes kept, the PyTorch
    model's size, the graph INT8 came from, and the seconds since ``start``."""
    if "onnx-opt" in metrics:
        metrics["onnx-opt"]["fused"] = built.fused
    if "onnx-int8" in metrics:
        metrics["onnx-int8"]["fp32_nodes"] = len(built.kept_fp32)
    metrics["torch-fp32"] = {"size_mb": _size_mb([p for p in reference.files() if p.is_file()])}
    metrics["quantized_from"] = built.source.name
    metrics["seconds"] = round(time.perf_counter() - start, 1)


def fresh_export_folder(model_dir: Path, out_dir: Path) -> None:
    """Replace ``out_dir`` with an empty folder holding ``model_dir``'s tokenizer and config."""
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    for name in [*TOKENIZER_FILES, "config.json"]:
        if (model_dir / name).is_file():
            shutil.copy2(model_dir / name, out_dir / name)


def _start_export_folder(model_dir: Path, out_dir: Path, meta, reference, cfg) -> None:
    """A fresh, self-contained ``out_dir``: tokenizer, config, and a finslm.json naming its
    source model."""
    fresh_export_folder(model_dir, out_dir)
    export_meta = {
        **{k: v for k, v in meta.items() if k not in {"kind", "labels"}},
        "kind": "onnx",
        "name": meta.get("name") or model_dir.name,
        "source": str(model_dir),
        "max_length": int(meta.get("max_length", 128)),
        "params": reference.num_parameters(),
        "opset": cfg.opset,
        "exporter": cfg.exporter,
    }
    write_meta(out_dir, {**export_meta, "labels": list(meta["labels"])})


def _kept_fp32_nodes(source: Path, entries: list[int | str], key: str, n_layers, log) -> list[str]:
    """The nodes ``entries`` (the ``key`` param) keep in fp32; an entry selecting nothing fails
    loudly (a typo), except a layer index past a shallower (pruned) model's depth."""
    keep: list[str] = []
    for entry in entries:
        selected = select_nodes(source, [entry])
        if not selected and _beyond_depth(entry, n_layers):
            # One list serves every exported model; a shallower one (a pruned model) has no
            # such layer, which is not a typo.
            log(f"int8_keep_fp32: {entry!r} is past this model's {n_layers} layers; skipped")
            continue
        if not selected:
            raise ModelError(
                f"{key}: {entry!r} selects no node of {source} (layers are "
                "0-based; strings must occur in a node or tensor name); fix or remove it"
            )
        keep += [n for n in selected if n not in keep]
    return keep


def _measure_graphs(out_dir: Path, reference, texts, cfg: ExportConfig, log) -> dict[str, Any]:
    """Parity with PyTorch and on-disk size of every graph in ``out_dir``."""
    final_meta = read_meta(out_dir)
    metrics: dict[str, Any] = {}
    for backend, path in ONNX_FILES.items():
        graph = out_dir / path
        if not graph.is_file():
            continue
        candidate = OnnxPredictor(out_dir, final_meta, graph=graph)
        numbers = parity(reference, candidate, list(texts), cfg.batch_size)
        numbers["size_mb"] = _size_mb(onnx_graph_files(graph))
        metrics[backend] = numbers
        log(
            f"{backend}: max |Δlogit| {numbers['max_abs_logit_diff']:.2e}, "
            f"agreement {numbers['agreement']:.4f}, {numbers['size_mb']:.1f} MB"
        )
    return metrics
