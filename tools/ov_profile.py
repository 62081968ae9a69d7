"""Where OpenVINO INT8 spends a bulk pass: per-node time by kind, and how far the batch-32 "% of
peak" could go if every GEMM ran at the host's INT8 GEMM peak (docs/speed.md, "A Xeon with AMX").

    python tools/ov_profile.py --export exports/minilm --test data/prepared/test.parquet \\
        --peak-gops 3523 --out ov-profile.json

The test split is scored as ``predict_proba`` scores it (length-bucketed batches of 32, padded
to the backend's multiple), on the IR the ``openvino-int8`` backend loads, compiled with the
same settings plus ``PERF_COUNT``. OpenVINO's per-node counters are summed by layer type over
``--repeats`` passes (the first pass, which compiles each new shape, is left out). Reported:

- ``by_type``: milliseconds and share of the summed node time per OpenVINO layer type;
- ``gemm_share``: the share in the INT8 GEMM nodes (FullyConnected: the Q/K/V, output and FFN
  projections and the head, which is all of :mod:`finslm.opcount`'s count except attention);
  OpenVINO fuses attention (Q·Kᵀ, softmax, ·V) into a "Subgraph" node, whose share is reported
  beside it;
- ``ceiling_pct``: the fraction of ``--peak-gops`` the pass would reach if the GEMM nodes took
  (their padded work / peak) and every other node kept its time: the Amdahl bound on the
  batch-32 bar while the rest of the graph stays as it is.

With ``--val``: ``precision`` compares OpenVINO's inference precision for the parts NNCF left
in floating point, f32 (finslm's setting) against bf16 (OpenVINO's default on CPUs with bf16
units), on the validation split: bulk seconds (best of 3 bucketed batch-32 passes), batch-1
p50 over 100 sentences (second call of each shape) and label agreement with f32.

With ``--streams N``: ``streams`` compares finslm's setting (the latency hint: one stream, every
thread on one request, called in turn) with OpenVINO's throughput hint (``N`` streams sharing
the threads, ``N`` requests in flight through an ``AsyncInferQueue``) on the same bucketed
batch-32 pass of the test split: median seconds of 3 passes, sentences a second, effective
GOP/s and % of ``--peak-gops``, and label agreement with the latency setting.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd

from finslm.engines import openvino_cpu_config
from finslm.opcount import EncoderShape, padded_ops, sentence_ops
from finslm.predict import load_predictor

GEMM_TYPES = {"FullyConnected", "FullyConnectedQuantizedLegacy", "MatMul"}


def attention_ops(shape: EncoderShape, lengths, plan, multiple: int) -> int:
    """The padded Q·Kᵀ and ·V work (2·L²·H multiply-adds a layer), which OpenVINO runs inside
    its fused attention node, not as a GEMM."""
    total = 0
    for idx in plan:
        longest = -(-max(lengths[i] for i in idx) // multiple) * multiple
        total += 2 * len(idx) * shape.layers * 2 * longest * longest * shape.hidden
    return int(total)


def _feed(predictor, texts: list[str]) -> dict:
    """The IR's inputs for ``texts``, encoded (and padded) as the backend encodes them."""
    enc = predictor.encoder(texts)
    return {name: enc[name] for name in predictor.input_names}


def profile(export: Path, texts: list[str], threads: int, repeats: int) -> dict:
    import openvino as ov

    predictor = load_predictor(export, "openvino-int8", threads=threads)
    compiled = ov.Core().compile_model(
        predictor.model, "CPU", {**openvino_cpu_config(threads), "PERF_COUNT": True}
    )
    request = compiled.create_infer_request()
    plan = predictor.plan(texts, 32)
    feeds = [_feed(predictor, [texts[i] for i in idx]) for idx in plan]
    by_type: dict[str, float] = defaultdict(float)
    wall = 0.0
    for rep in range(repeats + 1):
        for feed in feeds:
            start = time.perf_counter()
            request.infer(feed)
            elapsed = time.perf_counter() - start
            if rep == 0:
                continue  # the first pass compiles each new shape
            wall += elapsed
            for info in request.get_profiling_info():
                if info.status == info.Status.EXECUTED:
                    by_type[info.node_type] += info.real_time.total_seconds()
    lengths = predictor.lengths(texts)
    shape = EncoderShape.from_folder(export)
    return {
        "sentences": len(texts),
        "batches": len(plan),
        "useful_ops": sentence_ops(shape, lengths),
        "padded_ops": padded_ops(shape, lengths, plan, predictor.pad_multiple),
        "attention_ops": attention_ops(shape, lengths, plan, predictor.pad_multiple),
        "wall_s": wall / repeats,
        "node_s": {k: v / repeats for k, v in by_type.items()},
    }


def precision(export: Path, texts: list[str], threads: int) -> dict:
    """f32 vs bf16 inference precision: bulk and batch-1 speed, label agreement with f32."""
    import openvino as ov

    predictor = load_predictor(export, "openvino-int8", threads=threads)
    plan = predictor.plan(texts, 32)
    batches = [(idx, _feed(predictor, [texts[i] for i in idx])) for idx in plan]
    singles = [_feed(predictor, [text]) for text in texts[:100]]
    out, labels = {}, {}
    for hint in ("f32", "bf16"):
        config = {**openvino_cpu_config(threads), "INFERENCE_PRECISION_HINT": hint}
        request = ov.Core().compile_model(predictor.model, "CPU", config).create_infer_request()
        logits = np.zeros((len(texts), len(predictor.labels)), np.float32)
        for idx, feed in batches:  # also compiles every batch shape
            request.infer(feed)
            logits[idx] = request.get_output_tensor(0).data
        bulk = []
        for _ in range(3):
            start = time.perf_counter()
            for _, feed in batches:
                request.infer(feed)
            bulk.append(time.perf_counter() - start)
        single = []
        for feed in singles:
            request.infer(feed)
            start = time.perf_counter()
            request.infer(feed)
            single.append(time.perf_counter() - start)
        labels[hint] = logits.argmax(1)
        out[hint] = {
            "bulk_sent_per_s": round(len(texts) / min(bulk), 1),
            "bs1_p50_ms": round(1000 * float(np.median(single)), 3),
            "agreement_with_f32": round(float(np.mean(labels[hint] == labels["f32"])), 4),
        }
    return {"sentences": len(texts), **out}


def _bulk_seconds(run, repeats: int = 3) -> float:
    """The median seconds of ``repeats`` calls of ``run`` after one untimed call."""
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def streams(export: Path, texts: list[str], threads: int, n_streams: int, peak_gops: float) -> dict:
    """The latency hint (finslm's setting, requests in turn) against the throughput hint with
    ``n_streams`` streams and as many requests in flight, on bucketed batch-32 passes."""
    import openvino as ov

    predictor = load_predictor(export, "openvino-int8", threads=threads)
    batches = [
        (idx, _feed(predictor, [texts[i] for i in idx])) for idx in predictor.plan(texts, 32)
    ]
    useful = sentence_ops(EncoderShape.from_folder(export), predictor.lengths(texts))
    core = ov.Core()
    out, labels = {}, {}
    settings = {
        "latency": openvino_cpu_config(threads),
        f"throughput-{n_streams}": {
            **openvino_cpu_config(threads),
            "PERFORMANCE_HINT": "THROUGHPUT",
            "NUM_STREAMS": n_streams,
        },
    }
    for name, config in settings.items():
        compiled = core.compile_model(predictor.model, "CPU", config)
        logits = np.zeros((len(texts), len(predictor.labels)), np.float32)
        if name == "latency":
            request = compiled.create_infer_request()

            def run(request=request, logits=logits):
                for idx, feed in batches:
                    request.infer(feed)
                    logits[idx] = request.get_output_tensor(0).data
        else:
            queue = ov.AsyncInferQueue(compiled, n_streams)
            queue.set_callback(
                lambda request, idx, logits=logits: logits.__setitem__(
                    idx, request.get_output_tensor(0).data
                )
            )

            def run(queue=queue):
                for idx, feed in batches:
                    queue.start_async(feed, idx)
                queue.wait_all()

        seconds = _bulk_seconds(run)
        labels[name] = logits.argmax(1)
        out[name] = {
            "seconds": round(seconds, 6),
            "sent_per_s": round(len(texts) / seconds, 1),
            "gops": round(useful / seconds / 1e9, 1),
            "pct_peak": round(100 * useful / seconds / (peak_gops * 1e9), 1),
            "agreement_with_latency": round(float(np.mean(labels[name] == labels["latency"])), 4),
        }
    return {"sentences": len(texts), "threads": threads, **out}


def summarise(raw: dict, peak_gops: float) -> dict:
    node_total = sum(raw["node_s"].values())
    gemm = sum(v for k, v in raw["node_s"].items() if k in GEMM_TYPES)
    other = node_total - gemm
    wall = raw["wall_s"]
    outside = max(wall - node_total, 0.0)  # request overhead, input copies
    gemm_ops = raw["padded_ops"] - raw["attention_ops"]
    at_peak = gemm_ops / (peak_gops * 1e9)
    by_type = sorted(raw["node_s"].items(), key=lambda kv: -kv[1])
    return {
        **{k: raw[k] for k in ("sentences", "batches", "useful_ops", "padded_ops")},
        "attention_ops": raw["attention_ops"],
        "wall_ms": round(1000 * wall, 1),
        "node_ms": round(1000 * node_total, 1),
        "by_type": {
            k: {"ms": round(1000 * v, 2), "share": round(v / node_total, 4)} for k, v in by_type
        },
        "gemm_share": round(gemm / node_total, 4),
        "attention_share": round(raw["node_s"].get("Subgraph", 0.0) / node_total, 4),
        "gemm_gops_padded": round(gemm_ops / gemm / 1e9, 1),
        "pct_peak_now": round(100 * raw["useful_ops"] / wall / (peak_gops * 1e9), 1),
        "ceiling_pct": round(
            100 * raw["useful_ops"] / (at_peak + other + outside) / (peak_gops * 1e9), 1
        ),
        "peak_gops": peak_gops,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--export", type=Path, required=True)
    parser.add_argument("--test", type=Path, required=True)
    parser.add_argument("--peak-gops", type=float, required=True, help="the host's INT8 GEMM peak")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--val", type=Path, help="validation split: also compare f32 and bf16")
    parser.add_argument(
        "--streams", type=int, default=0, help="also compare the throughput hint with N streams"
    )
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if args.streams < 0:
        parser.error(f"--streams must be 0 (off) or a number of streams, got {args.streams}")
    texts = pd.read_parquet(args.test, columns=["text"])["text"].astype(str).tolist()
    result = summarise(profile(args.export, texts, args.threads, args.repeats), args.peak_gops)
    if args.val:
        val = pd.read_parquet(args.val, columns=["text"])["text"].astype(str).tolist()
        result["precision"] = precision(args.export, val, args.threads)
    if args.streams:
        result["streams"] = streams(args.export, texts, args.threads, args.streams, args.peak_gops)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in result.items() if k != "by_type"}, indent=2))
    for kind, row in list(result["by_type"].items())[:10]:
        print(f"{kind:24s} {row['ms']:9.1f} ms  {100 * row['share']:5.1f}%")


if __name__ == "__main__":
    main()
