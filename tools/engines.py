"""Build the other CPU engines into an export folder, and benchmark them beside onnxruntime.

    # the NNCF INT8 IR (calibrated on training sentences) and the CTranslate2 folder, then the
    # parity gate against PyTorch on validation (export.* tolerances of params.yaml)
    python tools/engines.py build --model models/minilm --export exports/minilm \\
        --train data/prepared/train.parquet --val data/prepared/val.parquet

    # batch-1 latency and batch-32 throughput of every variant in one interleaved run
    # (finslm.bench.run_benchmark), ratios against torch-fp32, agreement with it on --test
    python tools/engines.py bench --model models/minilm --export exports/minilm \\
        --test data/prepared/test.parquet --out engines.json
    # … plus any other folder and backend in the same run (e.g. another INT8 graph)
    #   --variant all-int8=/tmp/exports-all-int8:onnx-int8

See :mod:`finslm.engines` and docs/speed.md ("Engines").
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from finslm.bench import Variant, markdown_table, run_benchmark
from finslm.config import ExportConfig, load_export_config
from finslm.engines_build import build_engines

BENCH_BACKENDS = ["torch-fp32", "onnx-int8", "openvino-fp32", "openvino-int8", "ct2-int8"]


def _split(path: Path) -> tuple[list[str], list[str]]:
    frame = pd.read_parquet(path, columns=["text", "label"])
    return frame["text"].astype(str).tolist(), frame["label"].astype(str).tolist()


def _export_config(params: Path) -> ExportConfig:
    """``export.*`` of params.yaml (the parity tolerances), or the defaults without the file."""
    return load_export_config(params) if params.is_file() else ExportConfig()


def build(args) -> dict:
    train, _ = _split(args.train)
    val, _ = _split(args.val)
    keep = [int(k) if k.isdigit() else k for k in args.keep_fp32]
    return build_engines(
        args.model,
        args.export,
        train[: args.calibration],
        val,
        _export_config(args.params),
        engines=args.engines,
        keep_fp32=keep,
        preset=args.preset,
        threads=args.threads,
    )


def bench(args) -> dict:
    texts, labels = _split(args.test)
    name = args.model.name
    variants = [
        Variant(f"{name}/{b}", args.model if b == "torch-fp32" else args.export, b)
        for b in args.backends
    ]
    for spec in args.variant:  # NAME=FOLDER:BACKEND, e.g. an export built another way
        label, _, rest = spec.partition("=")
        folder, _, backend = rest.rpartition(":")
        if not (label and folder and backend):
            raise SystemExit(f"--variant {spec!r}: expected NAME=FOLDER:BACKEND")
        variants.append(Variant(f"{label}/{backend}", Path(folder), backend))
    result = run_benchmark(
        variants,
        texts,
        labels,
        reference=f"{name}/torch-fp32",
        threads=args.threads,
        warmup=args.warmup,
        latency_sentences=args.latency_sentences,
        repeats=args.repeats,
        batch_size=args.batch_size,
        rss=args.rss,
    )
    print(markdown_table(result))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for cmd in ("build", "bench"):
        p = sub.add_parser(cmd)
        p.add_argument("--model", type=Path, required=True, help="the trained model folder")
        p.add_argument("--export", type=Path, required=True, help="its export folder")
        p.add_argument("--threads", type=int, default=0)
        p.add_argument("--out", type=Path, help="write the JSON here too")
    b = sub.choices["build"]
    b.add_argument("--train", type=Path, required=True, help="calibration: training split only")
    b.add_argument("--val", type=Path, required=True, help="the parity gate's texts")
    b.add_argument("--calibration", type=int, default=300, help="training sentences to use")
    b.add_argument("--engines", nargs="+", default=["openvino", "ct2"])
    b.add_argument("--keep-fp32", nargs="*", default=[], help="layers / node-name regexes")
    b.add_argument("--params", type=Path, default=Path("params.yaml"))
    b.add_argument("--preset", choices=["mixed", "performance"], default="mixed", help="NNCF")
    m = sub.choices["bench"]
    m.add_argument("--test", type=Path, required=True)
    m.add_argument("--backends", nargs="+", default=BENCH_BACKENDS)
    m.add_argument("--repeats", type=int, default=3)
    m.add_argument("--warmup", type=int, default=20)
    m.add_argument("--latency-sentences", type=int, default=300)
    m.add_argument("--batch-size", type=int, default=32)
    m.add_argument("--rss", action="store_true", help="also peak RSS per variant")
    m.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME=FOLDER:BACKEND",
        help="one more variant, e.g. all-int8=/tmp/exports-all:onnx-int8 (repeatable)",
    )
    args = parser.parse_args(argv)
    result = build(args) if args.command == "build" else bench(args)
    text = json.dumps(result, indent=2)
    if args.command == "build":
        print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
