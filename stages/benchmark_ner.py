"""Benchmark the NER variants in ner.bench_backends on the NER test split.

    python stages/benchmark_ner.py   # metrics/benchmark-ner.json, reports/benchmark-ner.md

torch-fp32 reads models/<ner.bench_model>; onnx-* read exports/<ner.bench_model>. Entity
micro-F1, batch-1 latency per sentence (p50/p95/p99), throughput, size, peak RSS, and the
speed-up and F1 difference against PyTorch fp32.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from finslm.config import load_ner_config
from finslm.ner.bench import markdown_table, run_ner_benchmark
from finslm.ner.prepare import read_split
from finslm.stage import run_stage, stage_parser


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser(__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--prepared", type=Path, default=Path("data/prepared-ner"))
    parser.add_argument("--models", type=Path, default=Path("models"))
    parser.add_argument("--exports", type=Path, default=Path("exports"))
    parser.add_argument("--out", type=Path, default=Path("metrics/benchmark-ner.json"))
    parser.add_argument("--table", type=Path, default=Path("reports/benchmark-ner.md"))
    parser.add_argument("--no-rss", action="store_true")
    args = parser.parse_args(argv)
    cfg = load_ner_config(args.params)
    test = read_split(args.prepared, "test")
    m = cfg.bench_model
    variants = {
        f"{m}/{b}": ((args.models if b == "torch-fp32" else args.exports) / m, b)
        for b in cfg.bench_backends
    }
    reference = f"{m}/torch-fp32" if "torch-fp32" in cfg.bench_backends else next(iter(variants))
    result = run_ner_benchmark(
        variants,
        test,
        reference=reference,
        threads=cfg.bench_threads,
        latency_sentences=cfg.bench_sentences,
        repeats=cfg.bench_repeats,
        rss=not args.no_rss,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    args.table.parent.mkdir(parents=True, exist_ok=True)
    args.table.write_text(markdown_table(result), encoding="utf-8")
    print(markdown_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(run_stage("benchmark_ner", main))
