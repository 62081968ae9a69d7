"""What ``GET /v1/model`` says about the served model: identity, checksum, test metrics.

The checksum is a SHA-256 over the files the predictor reads (graph, tokenizer, finslm.json),
so two servers answer differently only if their checksums differ, and an operator can compare
it with the export the pipeline wrote (``sha256sum`` of the same files).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from finslm.models import META_FILE

# Read in 1 MiB blocks: a graph can be hundreds of MB.
_BLOCK = 1 << 20


def model_files(predictor) -> list[Path]:
    """The predictor's files; without the ``onnx`` package (the slim install) the graph itself.

    ``OnnxPredictor.files()`` asks ``onnx`` for external-data files; the export writes
    self-contained graphs, so the graph file plus the tokenizer files is the same list there.
    """
    try:
        return list(predictor.files())
    except ModuleNotFoundError:
        from finslm.predict import TOKENIZER_FILES

        folder = predictor.model_dir
        files = [folder / META_FILE] + [folder / f for f in TOKENIZER_FILES]
        return [f for f in files if f.is_file()] + [Path(predictor.graph_path)]


def checksum(files: list[Path]) -> str:
    """``sha256:<hex>`` over the files' names and bytes, in sorted-name order."""
    digest = hashlib.sha256()
    for path in sorted({Path(f) for f in files}, key=lambda p: p.name):
        digest.update(path.name.encode("utf-8") + b"\0")
        with path.open("rb") as f:
            while block := f.read(_BLOCK):
                digest.update(block)
    return f"sha256:{digest.hexdigest()}"


def parameters(predictor) -> int | None:
    """The parameter count, or None where counting needs a library this install lacks."""
    try:
        return int(predictor.num_parameters())
    except ModuleNotFoundError:
        return None


def model_key(predictor) -> str:
    """``<model>`` of ``<model>/<backend>``: the name metrics files are keyed by."""
    return predictor.name.rsplit("/", 1)[0]


def find_eval_metrics(predictor, explicit: Path | None = None) -> Path | None:
    """``metrics/eval/<model>.json``: ``explicit`` when given, else where the pipeline writes it.

    Looked up in the working directory, then beside the model folder's parent (a repo checkout:
    ``exports/minilm`` -> ``metrics/eval/minilm.json``).
    """
    if explicit is not None:
        return explicit if explicit.is_file() else None
    name = f"{model_key(predictor)}.json"
    for root in (Path("."), Path(predictor.model_dir).resolve().parent.parent):
        path = root / "metrics" / "eval" / name
        if path.is_file():
            return path
    return None


def describe(predictor, eval_metrics: Path | None = None) -> dict[str, Any]:
    """The ``GET /v1/model`` body (computed once at start-up: hashing reads every file)."""
    files = model_files(predictor)
    test = None
    path = find_eval_metrics(predictor, eval_metrics)
    if path is not None:
        try:
            test = json.loads(path.read_text("utf-8")).get("test")
        except (OSError, ValueError):
            test = None
    return {
        "name": predictor.name,
        "task": getattr(predictor, "task", None) or "text-classification",
        "backend": predictor.backend,
        "labels": list(predictor.labels),
        "parameters": parameters(predictor),
        "checksum": checksum(files),
        "files": sorted(f.name for f in files),
        "max_length": predictor.meta.get("max_length"),
        "test_metrics": test,
        "test_metrics_file": str(path) if path else None,
    }
