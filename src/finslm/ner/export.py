"""ONNX fp32 / optimised / INT8 graphs of a token classifier, gated on parity with PyTorch.

The graph machinery is :mod:`finslm.export`'s (onnxruntime's transformer optimizer, dynamic
INT8 with per-channel weights, fp32 islands by layer or node name); what differs is the output,
``logits`` of shape (batch, sequence, n_labels), and the gate. On the validation split each
graph is compared with PyTorch on every word (its first sub-token):

- ``token_agreement``: share of words with the same argmax tag (``ner.min_token_agreement``,
  ``ner.int8_min_token_agreement``);
- ``f1_drop_pt``: PyTorch's entity micro-F1 minus the graph's, in points
  (``ner.max_f1_drop_pt``, ``ner.int8_max_f1_drop_pt``).

    python stages/export_ner.py ner-minilm     # exports/ner-minilm, metrics/export/ner-minilm.json
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from finslm.config import ExportConfig, NerConfig
from finslm.export import (
    INPUT_NAMES,
    ParityError,
    _quiet,
    _size_mb,
    finish_metrics,
    fresh_export_folder,
    optimise_and_quantise,
)
from finslm.models import ModelError, read_meta, write_meta
from finslm.ner.context import document_context
from finslm.ner.decode import decode
from finslm.ner.evaluate import entity_metrics
from finslm.ner.predict import ONNX_KIND, TORCH_KIND, Tagger, WordEncoder
from finslm.predict import ONNX_FILES, onnx_graph_files


def export_token_onnx(model_dir: Path, path: Path, opset: int = 17) -> list[str]:
    """One self-contained fp32 graph; inputs int64 (batch, sequence), output ``logits`` float32
    (batch, sequence, n_labels), batch and sequence dynamic."""
    import inspect

    import torch
    from transformers import AutoModelForTokenClassification

    from finslm.train.heads import no_hf_progress

    with no_hf_progress():
        model = AutoModelForTokenClassification.from_pretrained(
            model_dir, attn_implementation="eager"
        ).eval()
    names = [n for n in INPUT_NAMES if n in set(inspect.signature(model.forward).parameters)]
    feeds, _ = WordEncoder(model_dir, 32)([["A", "short", "one"], ["A", "longer", "one", "here"]])
    args = tuple(torch.from_numpy(feeds[n]) for n in names)

    class LogitsOnly(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, *inputs):
            return self.inner(**dict(zip(names, inputs, strict=True))).logits

    path.parent.mkdir(parents=True, exist_ok=True)
    with _quiet(), torch.inference_mode():
        torch.onnx.export(
            LogitsOnly(model).eval(),
            args,
            str(path),
            input_names=names,
            output_names=["logits"],
            dynamic_axes={
                **{n: {0: "batch", 1: "sequence"} for n in names},
                "logits": {0: "batch", 1: "sequence"},
            },
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )
    return names


def token_parity(
    reference: Tagger, candidate: Tagger, frame: pd.DataFrame, batch_size: int = 32
) -> dict[str, Any]:
    """Word-level logit and tag agreement of ``candidate`` with ``reference`` on ``frame``, and
    the entity micro-F1 of each against the gold tags (with document context where the model
    was trained with it, as ``evaluate_ner`` scores)."""
    words = [list(t) for t in frame.tokens]
    gold = [list(t) for t in frame.tags]
    ctx = document_context(frame, reference.context_words)
    a = np.concatenate(reference.word_logits(words, batch_size, contexts=ctx)).astype(np.float64)
    b = np.concatenate(candidate.word_logits(words, batch_size, contexts=ctx)).astype(np.float64)
    labels = reference.labels
    lengths = np.cumsum([0, *(len(w) for w in words)])

    def tags(x: np.ndarray) -> list[list[str]]:  # decoded as the model decodes (viterbi)
        return [
            [labels[i] for i in decode(x[lengths[k] : lengths[k + 1]], labels, reference.decode)]
            for k in range(len(words))
        ]

    f1_ref = entity_metrics(gold, tags(a))["entity_micro_f1"]
    f1_cand = entity_metrics(gold, tags(b))["entity_micro_f1"]
    diff = np.abs(a - b)
    return {
        "max_abs_logit_diff": float(diff.max()),
        "mean_abs_logit_diff": float(diff.mean()),
        "token_agreement": float((a.argmax(-1) == b.argmax(-1)).mean()),
        "entity_micro_f1": f1_cand,
        "entity_micro_f1_torch": f1_ref,
        "f1_drop_pt": 100 * (f1_ref - f1_cand),
        "words": len(a),
        "sentences": len(words),
    }


def parity_failures(metrics: dict[str, Any], cfg: NerConfig) -> list[str]:
    failures = []
    for backend in ONNX_FILES:
        m = metrics.get(backend)
        if m is None:
            continue
        int8 = backend == "onnx-int8"
        agree_key = "int8_min_token_agreement" if int8 else "min_token_agreement"
        drop_key = "int8_max_f1_drop_pt" if int8 else "max_f1_drop_pt"
        if m["token_agreement"] < getattr(cfg, agree_key):
            failures.append(
                f"{backend}: token agreement with PyTorch {m['token_agreement']:.4f} < "
                f"ner.{agree_key} = {getattr(cfg, agree_key):g} ({m['words']} validation words)"
            )
        if m["f1_drop_pt"] > getattr(cfg, drop_key):
            failures.append(
                f"{backend}: entity micro-F1 {m['f1_drop_pt']:.2f} pt below PyTorch > "
                f"ner.{drop_key} = {getattr(cfg, drop_key):g}"
            )
    return failures


def exportable_ner_meta(model_dir: Path) -> dict[str, Any]:
    """``model_dir``'s finslm.json when it is a trained token classifier (what :func:`export_ner`
    exports), else a ModelError saying what the folder is and what to pass instead. Cheap: the
    CLI calls it before reading any data or params."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        what = "is a file, not a model folder" if model_dir.is_file() else "no such folder"
        raise ModelError(
            f"{model_dir}: {what}; pass a trained token classifier folder (models/<name>, "
            "written by `dvc repro train_ner@<name>`)"
        )
    meta = read_meta(model_dir, ner=True)
    kind = meta.get("kind")
    if kind == TORCH_KIND:
        return meta
    if kind == ONNX_KIND:
        source = meta.get("source") or f"models/{meta.get('name') or '<name>'}"
        raise ModelError(
            f"{model_dir}: an ONNX export already (kind {kind!r}); pass the PyTorch folder it "
            f"came from ({source})"
        )
    if kind == "transformer":
        hint = "; `finslm export` exports a sentence classifier"
    else:
        hint = "; pass a models/<name> folder written by `dvc repro train_ner@<name>`"
    raise ModelError(f"{model_dir}: kind {kind!r}; a token classifier is {TORCH_KIND!r}{hint}")


def export_ner(
    model_dir: Path,
    out_dir: Path,
    val: pd.DataFrame,
    graph_cfg: ExportConfig,
    cfg: NerConfig,
    log=print,
) -> dict[str, Any]:
    """Export, optimise and quantise ``model_dir`` into ``out_dir`` (replaced); measure parity
    on ``val``; raise :class:`finslm.export.ParityError` (with the metrics) beyond the gate."""
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    meta = exportable_ner_meta(model_dir)
    if val.empty:
        raise ModelError("export_ner: no validation sentences to measure parity on")
    start = time.perf_counter()
    fresh_export_folder(model_dir, out_dir)
    write_meta(
        out_dir,
        {
            **{k: v for k, v in meta.items() if k != "kind"},
            "kind": ONNX_KIND,
            "source": str(model_dir),
            "opset": graph_cfg.opset,
        },
    )
    fp32 = out_dir / ONNX_FILES["onnx-fp32"]
    log(f"export {model_dir} -> {fp32} (opset {graph_cfg.opset})")
    export_token_onnx(model_dir, fp32, graph_cfg.opset)
    built = optimise_and_quantise(
        model_dir, out_dir, graph_cfg, cfg.int8_keep_fp32, "ner.int8_keep_fp32", log
    )
    reference = Tagger(model_dir, "torch-fp32")
    metrics: dict[str, Any] = {}
    for backend, filename in ONNX_FILES.items():
        graph = out_dir / filename
        if not graph.is_file():
            continue
        candidate = Tagger(out_dir, backend, graph=graph)
        numbers = token_parity(reference, candidate, val, graph_cfg.batch_size)
        numbers["size_mb"] = _size_mb(onnx_graph_files(graph))
        metrics[backend] = numbers
        log(
            f"{backend}: token agreement {numbers['token_agreement']:.4f}, entity micro-F1 "
            f"{numbers['entity_micro_f1']:.4f} (torch {numbers['entity_micro_f1_torch']:.4f}), "
            f"{numbers['size_mb']:.1f} MB"
        )
    finish_metrics(metrics, built, reference, start)
    failures = parity_failures(metrics, cfg)
    if failures:
        raise ParityError(
            f"NER export of {model_dir} broke the parity gate on {len(val)} validation "
            "sentences:\n  " + "\n  ".join(failures) + f"\nThe graphs are in {out_dir}. Fix: "
            "keep the worst layers fp32 (ner.int8_keep_fp32: [0]), try export.reduce_range: "
            "true, or relax the ner.* thresholds if the numbers are acceptable.",
            metrics,
        )
    return metrics
