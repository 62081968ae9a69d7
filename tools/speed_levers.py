"""Measure the batch-shape levers of docs/speed.md in one run, on one export, as ratios.

    python tools/speed_levers.py --export exports/minilm --texts data/prepared/test.parquet

Prints JSON (and writes it with ``--out``):

- ``bucketing``: bulk scoring of every text at ``--batch-size`` through ``predict_proba`` with
  and without length bucketing, interleaved ``--repeats`` times (median seconds, the ratio, the
  padding's share of the operations each way, and the largest |Δprobability| between them);
- ``threads``: batch-1 p50 and batch-32 throughput with 1 thread and with one per core;
- ``spinning``: batch-1 p50 with onnxruntime's pool threads spinning and not, alone and beside
  one busy process per core (``--no-load`` skips the loaded half);
- ``tokenisation``: the tokeniser's share of the batch-1 latency (median over the texts).

Timings on a shared host move with the neighbours: read the ratios, and note ``uptime``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import time
from pathlib import Path

import numpy as np

from finslm.opcount import EncoderShape, padded_ops, sentence_ops
from finslm.predict import load_predictor


def read_texts(path: Path) -> list[str]:
    """Texts of a prepared split (parquet ``text``), or one per line of a PhraseBank file."""
    if path.suffix == ".parquet":
        import pandas as pd

        return pd.read_parquet(path, columns=["text"])["text"].astype(str).tolist()
    lines = path.read_text(encoding="latin-1").splitlines()
    return [line.rsplit("@", 1)[0].strip() for line in lines if line.strip()]


def _timed(work) -> float:
    t0 = time.perf_counter()
    work()
    return time.perf_counter() - t0


def bucketing(p, texts: list[str], batch_size: int, repeats: int) -> dict:
    shape = EncoderShape.from_folder(p.model_dir)
    lengths = p.lengths(texts).tolist()
    useful = sentence_ops(shape, lengths)
    waste = {
        name: 1 - useful / padded_ops(shape, lengths, p.plan(texts, batch_size, bucket))
        for name, bucket in (("plain", False), ("bucketed", True))
    }
    times: dict[str, list[float]] = {"plain": [], "bucketed": []}
    p.predict_proba(texts[:batch_size], batch_size)  # warm-up
    for r in range(repeats):
        for name in ["plain", "bucketed"] if r % 2 == 0 else ["bucketed", "plain"]:
            bucket = name == "bucketed"
            times[name].append(_timed(lambda b=bucket: p.predict_proba(texts, batch_size, b)))
    diff = np.abs(
        p.predict_proba(texts, batch_size, True) - p.predict_proba(texts, batch_size, False)
    )
    plain, fast = statistics.median(times["plain"]), statistics.median(times["bucketed"])
    return {
        "n": len(texts),
        "plain_s": round(plain, 3),
        "bucketed_s": round(fast, 3),
        "ratio": round(plain / fast, 3),
        "padding_waste_plain": round(waste["plain"], 4),
        "padding_waste_bucketed": round(waste["bucketed"], 4),
        "max_abs_prob_diff": float(diff.max()),
        "times": {k: [round(t, 3) for t in v] for k, v in times.items()},
    }


def _p50_ms(p, texts: list[str]) -> float:
    for text in texts[:5]:
        p.predict_proba([text], 1)
    return 1000 * statistics.median(_timed(lambda t=t: p.predict_proba([t], 1)) for t in texts)


def threads(folder: Path, backend: str, texts: list[str], batch_size: int) -> dict:
    out = {}
    cores = os.cpu_count() or 1
    for n in sorted({1, cores}):
        p = load_predictor(folder, backend, threads=n)
        p.predict_proba(texts[:batch_size], batch_size)
        seconds = _timed(lambda p=p: p.predict_proba(texts, batch_size))
        out[f"threads_{n}"] = {
            "p50_ms_bs1": round(_p50_ms(p, texts[:100]), 2),
            f"sent_per_s_bs{batch_size}": round(len(texts) / seconds, 1),
        }
    return out


def _burn(stop) -> None:
    while not stop.is_set():
        sum(range(10_000))


def spinning(folder: Path, backend: str, texts: list[str], load: bool) -> dict:
    sessions = {s: load_predictor(folder, backend, spin=s) for s in (True, False)}
    out = {}
    for loaded in (False, True) if load else (False,):
        stop = mp.Event()
        workers = [mp.Process(target=_burn, args=(stop,)) for _ in range(os.cpu_count() or 1)]
        if loaded:
            for w in workers:
                w.start()
        try:
            for spin, p in sessions.items():
                key = f"{'loaded' if loaded else 'alone'}_spin_{'on' if spin else 'off'}"
                out[key] = round(_p50_ms(p, texts[:100]), 2)
        finally:
            stop.set()
            for w in workers if loaded else ():
                w.join()
    return out


def tokenisation(p, texts: list[str]) -> dict:
    total = [_timed(lambda t=t: p.predict_proba([t], 1)) for t in texts]
    tok = [_timed(lambda t=t: p.encoder([t])) for t in texts]
    return {
        "tokenise_ms_p50": round(1000 * statistics.median(tok), 3),
        "predict_ms_p50": round(1000 * statistics.median(total), 3),
        "share_p50": round(statistics.median(tok) / statistics.median(total), 4),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--export", type=Path, required=True, help="an export folder")
    parser.add_argument("--model", type=Path, help="its transformer folder (adds torch-fp32)")
    parser.add_argument("--texts", type=Path, required=True)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-load", action="store_true", help="skip the loaded spinning runs")
    parser.add_argument(
        "--only", nargs="*", default=["bucketing", "threads", "spinning", "tokenisation"]
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    texts = read_texts(args.texts)
    result: dict = {"uptime_before": os.getloadavg(), "cpu_count": os.cpu_count()}
    backends = [(args.export, "onnx-int8")] + ([(args.model, "torch-fp32")] if args.model else [])
    for folder, backend in backends:
        row = result.setdefault(backend, {})
        p = load_predictor(folder, backend)
        if "bucketing" in args.only:
            row["bucketing"] = bucketing(p, texts, args.batch_size, args.repeats)
        if "tokenisation" in args.only:
            row["tokenisation"] = tokenisation(p, texts[:200])
        if "threads" in args.only:
            row["threads"] = threads(folder, backend, texts, args.batch_size)
        if "spinning" in args.only and backend.startswith("onnx"):
            row["spinning"] = spinning(folder, backend, texts, not args.no_load)
        print(json.dumps({backend: row}, indent=1), flush=True)
    result["uptime_after"] = os.getloadavg()
    text = json.dumps(result, indent=1)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
