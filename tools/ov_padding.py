"""OpenVINO and input shapes: what a first-seen sequence length costs, and what padding to a
multiple of N tokens gives at batch 1 (docs/speed.md, "A Xeon with AMX").

    python tools/ov_padding.py --export exports/minilm --test data/prepared/test.parquet \\
        --val data/prepared/val.parquet --out ov-padding.json

1. ``first_call``: per backend, for every token length with two test sentences, the batch-1
   time of the first sentence of that length (a new input shape) and of the second.
2. ``padding``: ``openvino-int8`` with the encoder padding to a multiple of each of
   ``--multiples`` (1 = the longest text), warmed on ``--warmup`` validation sentences, then
   timed at batch 1 on ``--sentences`` test sentences in turns (alternating order), and label
   agreement / max |Δprobability| at batch 32 against the multiple-1 predictor on the test split.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from finslm.predict import Encoder, load_predictor


def _texts(path: Path) -> list[str]:
    return pd.read_parquet(path, columns=["text"])["text"].astype(str).tolist()


def _ms(predictor, text: str) -> float:
    t0 = time.perf_counter()
    predictor.predict_proba([text], 1)
    return 1000 * (time.perf_counter() - t0)


def first_call(export: Path, backend: str, texts: list[str], threads: int) -> dict:
    """Batch-1 ms of the first and the second sentence of each token length."""
    p = load_predictor(export, backend, threads=threads)
    p.encoder = Encoder(export, p.max_length)  # the longest text: every length a new shape
    by_length: dict[int, list[str]] = {}
    for text, n in zip(texts, p.lengths(texts), strict=True):
        by_length.setdefault(int(n), []).append(text)
    first, second = [], []
    for group in by_length.values():
        if len(group) >= 2:
            first.append(_ms(p, group[0]))
            second.append(_ms(p, group[1]))
    return {
        "lengths": len(first),
        "first_median_ms": float(np.median(first)),
        "first_max_ms": float(np.max(first)),
        "second_median_ms": float(np.median(second)),
        "second_max_ms": float(np.max(second)),
    }


def padding(args, test: list[str], val: list[str]) -> dict:
    predictors = {}
    for m in args.multiples:
        p = load_predictor(args.export, "openvino-int8", threads=args.threads)
        p.encoder, p.pad_multiple = Encoder(args.export, p.max_length, m), m
        for text in val[: args.warmup]:
            p.predict_proba([text], 1)
        predictors[m] = p
    times: dict[int, list[float]] = {m: [] for m in predictors}
    for i, text in enumerate(test[: args.sentences]):
        order = list(predictors) if i % 2 else list(predictors)[::-1]
        for m in order:
            times[m].append(_ms(predictors[m], text))
    ref = predictors[args.multiples[0]].predict_proba(test, 32)
    out = {}
    for m, p in predictors.items():
        proba = p.predict_proba(test, 32)
        p50, p95, p99, worst = np.percentile(times[m], [50, 95, 99, 100])
        out[str(m)] = {
            "p50_ms": float(p50),
            "p95_ms": float(p95),
            "p99_ms": float(p99),
            "max_ms": float(worst),
            "agreement_vs_first": float(np.mean(proba.argmax(1) == ref.argmax(1))),
            "max_abs_prob_diff_vs_first": float(np.abs(proba - ref).max()),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--export", type=Path, required=True)
    parser.add_argument("--test", type=Path, required=True)
    parser.add_argument("--val", type=Path, required=True)
    parser.add_argument("--multiples", type=int, nargs="+", default=[1, 8, 16])
    parser.add_argument("--warmup", type=int, default=120)
    parser.add_argument("--sentences", type=int, default=300)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    test, val = _texts(args.test), _texts(args.val)
    result = {
        "first_call": {
            b: first_call(args.export, b, test, args.threads)
            for b in ("openvino-int8", "openvino-fp32", "onnx-int8")
        },
        "padding": padding(args, test, val),
    }
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
