"""Export one trained transformer to ONNX (fp32, optimised, INT8) and gate on parity with PyTorch.

    python stages/export.py minilm          # `dvc repro export@minilm`

Reads ``models/<name>/`` (a trained transformer), ``data/prepared/val.parquet`` and ``export.*``
in params.yaml. Writes ``exports/<name>/`` (model.onnx, model.opt.onnx, model.int8.onnx, tokenizer,
finslm.json; with ``export.engines``, also ``openvino/`` and/or ``ct2/``, the OpenVINO INT8 IR
calibrated on the first ``export.engine_calibration`` sentences of
``data/prepared/train.parquet``; with ``export.qat_epochs``, the INT8 graph from a
quantisation-aware fine-tuned copy, trained on that file) and ``metrics/export/<name>.json``. Exits non-zero, after writing the metrics, when a
graph breaks the parity tolerance. The export folder sits beside ``models/<name>`` rather than in
it because DVC outputs may not nest inside another stage's output.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

from finslm.config import ConfigError, load_export_config
from finslm.data.errors import DataError
from finslm.export import ParityError, export_model
from finslm.stage import run_stage, stage_parser


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser(__doc__)
    parser.add_argument("name", help="a transformer model listed in export.models")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--models", type=Path, default=Path("models"))
    parser.add_argument("--exports", type=Path, default=Path("exports"))
    parser.add_argument("--val", type=Path, default=Path("data/prepared/val.parquet"))
    parser.add_argument("--train", type=Path, default=Path("data/prepared/train.parquet"))
    parser.add_argument("--metrics", type=Path, default=Path("metrics/export"))
    args = parser.parse_args(argv)
    return run_stage(f"export@{args.name}", lambda: _export(args))


def _export(args) -> None:
    cfg = load_export_config(args.params)
    if args.name not in cfg.models:
        raise ConfigError(
            f"export.models: {args.name!r} is not listed ({', '.join(cfg.models)}); add it there"
        )
    cfg = cfg.for_model(args.name)
    if not args.val.is_file():
        raise DataError(f"{args.val}: not found. Fix: run `dvc repro prepare` first.")
    texts = pd.read_parquet(args.val, columns=["text"])["text"].astype(str).tolist()
    metrics_path = args.metrics / f"{args.name}.json"
    metrics_path.parent.mkdir(parents=True, exist_ok=True)
    train = _train_texts(args) if cfg.qat_epochs else None
    try:
        metrics = export_model(
            args.models / args.name, args.exports / args.name, texts, cfg, train_texts=train
        )
        if cfg.engines:
            metrics["engines"] = _engines(args, texts, cfg, metrics)
    except ParityError as exc:
        # The numbers that broke the gate stay readable beside the failed graphs.
        metrics_path.write_text(json.dumps(exc.metrics, indent=2) + "\n", encoding="utf-8")
        raise
    metrics_path.write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.exports / args.name} and {metrics_path}")


def _train_texts(args) -> list[str]:
    if not args.train.is_file():
        raise DataError(f"{args.train}: not found. Fix: run `dvc repro prepare` first.")
    return pd.read_parquet(args.train, columns=["text"])["text"].astype(str).tolist()


def _engines(args, val_texts: list[str], cfg, metrics: dict) -> dict:
    """Build and gate ``export.engines`` in the export folder; a broken gate keeps the ONNX
    numbers beside the engines' in the metrics file."""
    from finslm.engines_build import build_engines

    train = _train_texts(args)
    try:
        return build_engines(
            args.models / args.name,
            args.exports / args.name,
            train[: cfg.engine_calibration],
            val_texts,
            cfg,
            engines=cfg.engines,
        )
    except ParityError as exc:
        raise ParityError(str(exc), {**metrics, "engines": exc.metrics}) from exc


if __name__ == "__main__":
    sys.exit(main())
