"""Benchmark every variant in ``benchmark.variants`` side by side on the test split.

    python stages/benchmark.py              # `dvc repro benchmark`

A variant ``<model>/<backend>`` is read from ``exports/<model>/`` for the onnx-*, openvino-* and
ct2-* backends and from ``models/<model>/`` otherwise. Writes ``metrics/benchmark.json`` (one entry per variant, plus
``env``: machine, threads, library versions), ``reports/benchmark.csv``, ``reports/benchmark.md``
(the table the README includes) and ``plots/benchmark/*.png``. Takes a few minutes on 2 CPU
cores with the real PhraseBank test split (about 1,000 sentences).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

from finslm.bench import Variant, markdown_table, plot_frontier, run_benchmark, write_csv
from finslm.config import load_benchmark_config
from finslm.data.errors import DataError
from finslm.models import ModelError
from finslm.predict import EXPORT_BACKENDS
from finslm.stage import run_stage, stage_parser


def resolve_variants(names: list[str], models: Path, exports: Path) -> list[Variant]:
    """``<model>/<backend>`` -> folders; a missing folder fails naming the stage that makes it."""
    variants = []
    for name in names:
        model, backend = name.rsplit("/", 1)
        onnx = backend in EXPORT_BACKENDS  # onnx-*, openvino-*, ct2-*
        folder = (exports if onnx else models) / model
        if not folder.is_dir():
            stage = (
                f"export@{model}` (list {model} in export.models)" if onnx else f"train@{model}`"
            )
            raise ModelError(
                f"benchmark.variants: {name!r} needs {folder}, which does not exist; run "
                f"`dvc repro {stage}, or remove the variant from benchmark.variants"
            )
        variants.append(Variant(name, folder, backend))
    return variants


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser(__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--models", type=Path, default=Path("models"))
    parser.add_argument("--exports", type=Path, default=Path("exports"))
    parser.add_argument("--test", type=Path, default=Path("data/prepared/test.parquet"))
    parser.add_argument("--metrics", type=Path, default=Path("metrics/benchmark.json"))
    parser.add_argument("--csv", type=Path, default=Path("reports/benchmark.csv"))
    parser.add_argument("--markdown", type=Path, default=Path("reports/benchmark.md"))
    parser.add_argument("--plots", type=Path, default=Path("plots/benchmark"))
    args = parser.parse_args(argv)
    return run_stage("benchmark", lambda: _benchmark(args))


def _benchmark(args) -> None:
    cfg = load_benchmark_config(args.params)
    variants = resolve_variants(cfg.variants, args.models, args.exports)
    if not args.test.is_file():
        raise DataError(f"{args.test}: not found. Fix: run `dvc repro prepare` first.")
    test = pd.read_parquet(args.test, columns=["text", "label"])
    result = run_benchmark(
        variants,
        test["text"].astype(str).tolist(),
        test["label"].astype(str).tolist(),
        reference=cfg.reference,
        threads=cfg.threads,
        warmup=cfg.warmup,
        latency_sentences=cfg.latency_sentences,
        repeats=cfg.repeats,
        batch_size=cfg.batch_size,
        rss=cfg.rss,
    )
    for path in (args.metrics, args.csv, args.markdown):
        path.parent.mkdir(parents=True, exist_ok=True)
    metrics = {**result["variants"], "env": result["env"]}
    args.metrics.write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    write_csv(result, args.csv)
    table = markdown_table(result)
    args.markdown.write_text("# Benchmark\n\n" + table, encoding="utf-8")
    plot_frontier(result, args.plots)
    print(table)


if __name__ == "__main__":
    sys.exit(main())
