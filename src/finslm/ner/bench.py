"""Benchmark token-classifier variants with the sentiment benchmark's harness and fairness rules.

Variants are ``<model>/<backend>`` (``ner-minilm/torch-fp32``, ``ner-minilm/onnx-int8``, …),
opened as :class:`finslm.ner.predict.Tagger`. As in :mod:`finslm.bench`: one process, one
thread count, latency at batch 1 per sentence (word splitting, tokenisation and decoding
included) interleaved in short chunks with the order rotated per turn, throughput at
``batch_size`` over the split in length-bucketed batches (as bulk tagging and the server batch;
entity F1 is scored in input order, as evaluation scores it), peak RSS per variant in a fresh process, on-disk size; plus
entity micro-F1 on the split and the speed-up against the reference (PyTorch fp32).

    python stages/benchmark_ner.py      # metrics/benchmark-ner.json, reports/benchmark-ner.md
"""

from __future__ import annotations

import gc
import json
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

from finslm.bench import (
    _TURN_WARMUP,
    _chunks,
    _peak_rss_mb,
    _percentiles,
    _rotations,
    _rounded,
    _size_mb,
    first_pass,
    host_speed_probe,
    machine_info,
    rss_probe,
    side_by_side,
)
from finslm.ner.context import document_context
from finslm.ner.evaluate_run import score


def measure_rss(model_dir: Path, backend: str, words: list[list[str]], threads: int) -> float:
    """Peak RSS (MB) of a fresh process that opens the tagger and tags ``words`` once."""
    job = {"model_dir": str(model_dir), "backend": backend, "words": words, "threads": threads}
    return rss_probe("finslm.ner.bench", job, f"{model_dir} {backend}")


# Over 80 lines on purpose: the backends take turns inside one loop, so their timings are comparable.
def run_ner_benchmark(
    variants: dict[str, tuple[Path, str]],
    test: pd.DataFrame,
    *,
    reference: str,
    threads: int = 1,
    latency_sentences: int = 200,
    repeats: int = 3,
    batch_size: int = 32,
    warmup: int = 10,
    rss: bool = True,
    log=print,
) -> dict[str, Any]:
    """``{"variants": {name: row}, "env": …}`` for ``variants`` (name -> (folder, backend)) on
    ``test`` (tokens, tags; ``source``/``document``/``line`` give a model trained with document
    context its context, in scoring and throughput as in evaluation; latency is on raw text,
    which is tagged as the server tags it: without)."""
    from finslm.ner.predict import Tagger

    names = list(variants)
    if reference not in names:
        raise ValueError(f"benchmark: reference {reference!r} is not among {names}")
    rows: dict[str, dict[str, Any]] = {n: {} for n in names}
    words = [list(t) for t in test.tokens]
    env = {**machine_info(), "threads": threads, "n_test": len(words)}
    env["probe_before"] = host_speed_probe()
    if rss:
        longest = sorted(words, key=len, reverse=True)[:batch_size]
        probes = [
            lambda f=folder, b=backend: measure_rss(f, b, longest, threads)
            for folder, backend in variants.values()
        ]
        for n, mb in zip(variants, side_by_side(probes, "peak RSS", False), strict=True):
            rows[n]["rss_mb"] = mb
    taggers = {
        n: Tagger(folder, backend, threads=threads) for n, (folder, backend) in variants.items()
    }
    for n, t in taggers.items():
        rows[n]["size_mb"] = _size_mb(t.files())
        rows[n]["params"] = t.num_parameters()
        m = score(t, test, list(t.meta.get("entity_types", ())), batch_size)
        rows[n]["entity_micro_f1"] = m["entity_micro_f1"]
        rows[n]["token_accuracy"] = m["token_accuracy"]
        rows[n].update({f"f1_{k}": v["f1"] for k, v in m["per_type"].items()})
    texts = [" ".join(w) for w in words[:latency_sentences]]  # a caller's raw text
    order = list(taggers.values())
    for n, t in taggers.items():
        call = lambda text, t=t: t.entities([text], batch_size=1)  # noqa: E731
        rows[n].update(first_pass(call, texts, warmup))
    samples: dict[str, list[float]] = {n: [] for n in names}
    chunks = _chunks(texts, 50)
    for k, turn in enumerate(_rotations(len(order), repeats * len(chunks))):
        chunk = chunks[k % len(chunks)]
        for i in turn:
            t, out = order[i], samples[names[i]]
            time.sleep(0.02)
            for text in chunk[:_TURN_WARMUP]:
                t.entities([text], batch_size=1)
            gc.disable()
            try:
                for text in chunk:
                    t0 = time.perf_counter()
                    t.entities([text], batch_size=1)
                    out.append(time.perf_counter() - t0)
            finally:
                gc.enable()
    for n in names:
        rows[n].update(_percentiles(samples[n]))
    key = f"throughput_bs{batch_size}"
    elapsed = dict.fromkeys(names, 0.0)
    contexts = [document_context(test, t.context_words) for t in order]
    for t, ctx in zip(order, contexts, strict=True):  # untimed: every batch shape, built once
        t.tag_words(words, batch_size, bucket=True, contexts=ctx)
    for _ in range(repeats):
        for i in range(len(order)):
            t0 = time.perf_counter()
            order[i].tag_words(words, batch_size, bucket=True, contexts=contexts[i])
            elapsed[names[i]] += time.perf_counter() - t0
    for n in names:
        rows[n][key] = repeats * len(words) / elapsed[n]
    ref = rows[reference]
    for n in names:
        rows[n]["speedup_p50"] = ref["p50_ms"] / rows[n]["p50_ms"]
        rows[n]["throughput_ratio"] = rows[n][key] / ref[key]
        rows[n]["f1_delta_pt"] = 100 * (rows[n]["entity_micro_f1"] - ref["entity_micro_f1"])
    env.update(
        probe_after=host_speed_probe(),
        reference=reference,
        latency_sentences=len(texts),
        repeats=repeats,
        batch_size=batch_size,
        bucketed=True,
    )
    log(f"benchmarked {len(names)} NER variants on {len(words)} sentences, {threads} thread(s)")
    return {"variants": {n: _rounded(r) for n, r in rows.items()}, "env": env}


def markdown_table(result: dict[str, Any]) -> str:
    env = result.get("env", {})
    bs = env.get("batch_size", 32)
    head = (
        "| variant | entity micro-F1 | Δ F1 (pt) | p50 ms | p95 ms | speed-up "
        f"| sent/s (batch {bs}) | MB | RSS MB |"
    )
    lines = [head, "|" + "---|" * 9]
    for name, r in result["variants"].items():
        tp = next((v for k, v in r.items() if k.startswith("throughput_bs")), 0)
        lines.append(
            f"| {name} | {r['entity_micro_f1']:.4f} | {r['f1_delta_pt']:+.2f} | {r['p50_ms']:.2f} "
            f"| {r['p95_ms']:.2f} | {r['speedup_p50']:.2f}x | {tp:.1f} | {r['size_mb']:.1f} "
            f"| {r.get('rss_mb', float('nan')):.0f} |"
        )
    order = "length-bucketed" if env.get("bucketed") else "in input order"
    lines += [
        "",
        f"Throughput: all {env.get('n_test', '?')} test sentences in batches of {bs}, {order}.",
    ]
    return "\n".join(lines) + "\n"


def _probe_main(job_path: str) -> None:
    from finslm.ner.predict import Tagger

    job = json.loads(Path(job_path).read_text(encoding="utf-8"))
    tagger = Tagger(job["model_dir"], job["backend"], threads=job["threads"])
    tagger.tag_words(job["words"])
    tagger.entities([" ".join(job["words"][0])], batch_size=1)
    print(json.dumps({"rss_mb": _peak_rss_mb()}))


if __name__ == "__main__":
    _probe_main(sys.argv[1])
