"""Side-by-side benchmark of model variants: accuracy, latency, throughput, memory, size.

A variant is ``<model>/<backend>`` (``minilm/torch-fp32``, ``minilm/onnx-int8``, ``tfidf/sklearn``)
opened through :func:`finslm.predict.load_predictor`, so a new backend or model is benchmarked
by listing it in ``benchmark.variants``.

    python stages/benchmark.py               # what `dvc repro benchmark` runs

How the numbers are kept fair on a small, noisy machine:

- every variant runs in one process, with the same intra-op thread count, and the timed phases
  are interleaved: each repetition walks the sentences in short chunks and every variant takes
  a turn on each chunk, in an order rotated per turn, so drift and bursts of noise (thermal,
  neighbours) land on all of them and their ratios hold;
- latency is per call at batch 1 over real test sentences, tokenisation and softmax included
  (what a caller waits for), after warm-up; each turn re-warms the caches with a few untimed
  calls, GC is paused, and a short pause between turns lets the previous engine's spinning
  worker threads go idle;
- throughput is sentences/s at ``batch_size`` over the whole test split, every repetition;
- effective arithmetic: each transformer variant's operations on real tokens (2 per
  multiply-add, :mod:`finslm.opcount`) per second, at batch 1 and at ``batch_size``, divided by
  a peak probe of its engine and precision on this host (:mod:`finslm.peak`, a large GEMM, the
  better of a probe before and one after the timed phases) gives "% of peak"; the operations
  spent on padding at ``batch_size`` are reported apart (``padding_waste_bs<n>``), so the
  fraction says what callers get, not what the engine ran;
- peak RSS is measured per variant in a fresh Python process that imports only what the backend
  needs, loads it and predicts one batch of the longest test sentences: the same workload for
  all, cheap (seconds), and not inflated by the other variants loaded in this process.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from finslm.peak import _FILL_S, PROBE_SIZE, engine_of, peak_probes

# Pause between turns (s): torch's OpenMP and onnxruntime's pools spin briefly after a call.
_SETTLE_S = 0.02
# Sentences per latency turn, and batches per throughput turn (see run_benchmark). Each turn
# starts with a few untimed calls: the previous variant has evicted this one's weights from the
# CPU caches, and a served model stays warm.
_LATENCY_CHUNK = 50
_THROUGHPUT_BATCHES = 8
_TURN_WARMUP = 3
_LIBRARIES = (
    "torch",
    "transformers",
    "tokenizers",
    "onnxruntime",
    "onnxruntime-gpu",
    "onnx",
    "openvino",
    "nncf",
    "ctranslate2",
    "scikit-learn",
    "numpy",
)


@dataclasses.dataclass(frozen=True)
class Variant:
    """One row of the benchmark: ``name`` is ``<model>/<backend>``; ``model_dir`` holds it."""

    name: str
    model_dir: Path
    backend: str


def _progress(iterable, total: int, desc: str, enabled: bool | None):
    """A tqdm bar on a terminal; silent in CI and `dvc queue` logs (``enabled=None``)."""
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, disable=None if enabled is None else not enabled)


def machine_info() -> dict[str, Any]:
    """The machine and library versions, without importing the libraries themselves."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for lib in _LIBRARIES:
        try:
            versions[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            continue
    if "onnxruntime-gpu" in versions:  # the same module either way; say which build it is
        versions["onnxruntime"] = versions.pop("onnxruntime-gpu") + " (gpu build)"
    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
    }


def host_speed_probe(repeats: int = 5) -> dict[str, float]:
    """Median ms of a fixed pure-Python loop (10⁶ additions) and a fixed 512² float32 matmul ×10.

    The same work on every machine and day: a slow or contended host shows up here, in the
    benchmark's ``env``, and not only as slower rows whose cause one cannot tell from the table.
    """

    def python_loop() -> None:
        total = 0
        for i in range(1_000_000):
            total += i

    a = np.random.default_rng(0).standard_normal((512, 512), dtype=np.float32)

    def matmul() -> None:
        for _ in range(10):
            a @ a

    def median_ms(work: Callable[[], None]) -> float:
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            work()
            times.append(time.perf_counter() - t0)
        return round(1000 * float(np.median(times)), 2)

    return {"python_loop_ms": median_ms(python_loop), "matmul_ms": median_ms(matmul)}


def _percentiles(samples_s: list[float]) -> dict[str, float]:
    ms = np.asarray(samples_s) * 1e3
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    return {
        "p50_ms": float(p50),
        "p95_ms": float(p95),
        "p99_ms": float(p99),
        "mean_ms": float(ms.mean()),
    }


def first_pass(call: Callable[[str], Any], texts: Sequence[str], warmup: int) -> dict[str, float]:
    """``warmup`` untimed calls, then each of ``texts`` once at batch 1, timed apart.

    The first call at a new input length can cost more than the next ones (PyTorch: a max of
    17.6-23.5 ms against 6.5-6.8 ms on the second pass, onnxruntime INT8: no difference;
    sample MiniLM, 120 sentences, 2 threads, Xeon with AMX, 2026-12-04), which a served model
    pays once per length. The repetitions measure the steady state; this pass is reported
    apart as ``first_pass_p95_ms`` and ``first_pass_max_ms``.
    """
    for text in texts[:warmup] or texts[:1]:
        call(text)
    ms = []
    for text in texts:
        t0 = time.perf_counter()
        call(text)
        ms.append((time.perf_counter() - t0) * 1e3)
    return {"first_pass_p95_ms": float(np.percentile(ms, 95)), "first_pass_max_ms": max(ms)}


def _rotations(n: int, turns: int) -> list[list[int]]:
    """Variant order for each turn: 0..n-1 rotated by the turn index."""
    return [[(r + i) % n for i in range(n)] for r in range(turns)]


def _chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _size_mb(paths: list[Path]) -> float:
    unique = {p.resolve() for p in paths if p.is_file()}
    return sum(p.stat().st_size for p in unique) / 1e6


# --- peak RSS in a fresh process ------------


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[1])  # the folder holding the finslm package
    env["PYTHONPATH"] = os.pathsep.join([src, *filter(None, [env.get("PYTHONPATH")])])
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env.setdefault("HF_HUB_OFFLINE", "1")
    return env


def measure_rss(
    variant: Variant | None, texts: list[str], threads: int, batch_size: int, timeout: float = 300
) -> float:
    """Peak RSS (MB) of a fresh process that loads ``variant`` and predicts ``texts`` once.

    ``variant=None`` measures the floor: Python with numpy and finslm imported, no model.
    """
    job = {
        "model_dir": str(variant.model_dir) if variant else None,
        "backend": variant.backend if variant else None,
        "texts": texts,
        "threads": threads,
        "batch_size": batch_size,
    }
    return rss_probe("finslm.bench", job, variant.name if variant else "baseline", timeout)


def _measure_all_rss(
    variants: list[Variant | None],
    texts: Sequence[str],
    threads: int,
    batch_size: int,
    progress: bool | None,
) -> list[float]:
    """``measure_rss`` for each entry (None: the floor), side by side (:func:`side_by_side`)."""
    probes = [lambda v=v: measure_rss(v, list(texts), threads, batch_size) for v in variants]
    return side_by_side(probes, "peak RSS", progress)


def side_by_side(
    probes: list[Callable[[], float]], desc: str, progress: bool | None
) -> list[float]:
    """Run RSS probes (each starts one fresh process) as many at once as there are cores, and
    return their figures in order: a process's peak RSS is its own, so running them side by
    side changes no figure and divides the wall time (a probe is mostly imports and loading)."""
    from concurrent.futures import ThreadPoolExecutor

    jobs = max(1, min(len(probes), os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(probe) for probe in probes]
        return [f.result() for f in _progress(futures, len(futures), desc, progress)]


def rss_probe(module: str, job: dict, label: str, timeout: float = 300) -> float:
    """Run ``python -m <module> <job.json>`` in a fresh process; its last stdout line is
    ``{"rss_mb": ...}`` (the module's ``__main__`` loads, predicts once and reports)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "job.json"
        path.write_text(json.dumps(job), encoding="utf-8")
        proc = subprocess.run(
            [sys.executable, "-m", module, str(path)],
            capture_output=True,
            text=True,
            env=_child_env(),
            timeout=timeout,
        )
    if proc.returncode != 0:
        raise RuntimeError(f"RSS probe for {label} failed:\n{proc.stderr[-2000:]}")
    return float(json.loads(proc.stdout.strip().splitlines()[-1])["rss_mb"])


def _peak_rss_mb() -> float:
    """This process's peak resident set size in MB (10^6 bytes).

    On Linux this is ``VmHWM``, not ``getrusage``'s ``ru_maxrss``: the latter survives
    fork+exec, so a probe started from a big parent (pytest with torch loaded) would report
    the parent's peak instead of its own.
    """
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / 1e6  # kB
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 1e6 if sys.platform == "darwin" else peak * 1024 / 1e6  # bytes vs KiB
    except ImportError:  # Windows
        import psutil

        return psutil.Process().memory_info().peak_wset / 1e6


def _probe_main(job_path: str) -> None:
    job = json.loads(Path(job_path).read_text(encoding="utf-8"))
    if job["model_dir"] is not None:
        from finslm.predict import load_predictor

        predictor = load_predictor(job["model_dir"], job["backend"], threads=job["threads"])
        predictor.predict_proba(job["texts"], batch_size=job["batch_size"])
        predictor.predict_proba(job["texts"][:1], batch_size=1)
    else:
        import finslm.predict  # noqa: F401  (the floor every variant pays)
    print(json.dumps({"rss_mb": _peak_rss_mb()}))


# --- effective arithmetic ------------


@dataclasses.dataclass
class _Arithmetic:
    """Operation counts for one transformer variant over the test texts (see finslm.opcount)."""

    engine: str
    shape: Any
    lengths: np.ndarray

    @classmethod
    def of(cls, variant: Variant, predictor, texts: list[str]) -> _Arithmetic | None:
        from finslm.opcount import EncoderShape

        engine = engine_of(variant.backend)
        if engine is None or not (variant.model_dir / "config.json").is_file():
            return None
        return cls(engine, EncoderShape.from_folder(variant.model_dir), predictor.lengths(texts))

    def rates(
        self,
        predictor,
        chunks: list[list[str]],
        batch_size: int,
        latency_s: float,
        throughput_s: float,
        n_latency: int,
        peaks: dict[str, float],
    ) -> dict[str, Any]:
        """GOP/s and fractions of ``peaks[engine]`` at batch 1 (``latency_s``: one pass over
        the first ``n_latency`` texts) and at ``batch_size`` (``throughput_s``: one pass over
        ``chunks``, batched as ``predictor.plan`` batches them), and the padding's share."""
        from finslm.opcount import padded_ops, sentence_ops

        lengths = self.lengths.tolist()
        useful = sentence_ops(self.shape, lengths)
        executed, start = 0, 0
        for chunk in chunks:
            part = lengths[start : start + len(chunk)]
            plan = predictor.plan(chunk, batch_size)
            executed += padded_ops(self.shape, part, plan, predictor.pad_multiple)
            start += len(chunk)
        bs1 = sentence_ops(self.shape, lengths[:n_latency]) / latency_s / 1e9
        batched = useful / throughput_s / 1e9
        peak = peaks[self.engine]
        return {
            "peak_engine": self.engine,
            "tokens_per_sentence": float(np.mean(lengths)),
            "gop_per_sentence": useful / len(lengths) / 1e9,
            "gops_bs1": bs1,
            "peak_frac_bs1": bs1 / peak,
            f"gops_bs{batch_size}": batched,
            f"peak_frac_bs{batch_size}": batched / peak,
            f"padding_waste_bs{batch_size}": 1 - useful / executed,
        }


# --- the run ------------


# Over 80 lines on purpose: the variants take turns inside one loop, so their timings are comparable.
def run_benchmark(
    variants: list[Variant],
    texts: Sequence[str],
    labels: Sequence[str],
    *,
    reference: str,
    threads: int = 0,
    warmup: int = 20,
    latency_sentences: int = 300,
    repeats: int = 3,
    batch_size: int = 32,
    rss: bool = True,
    settle_s: float = _SETTLE_S,
    peak_fill_s: float = _FILL_S,
    progress: bool | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Measure every variant on (``texts``, ``labels``); return ``{"variants": …, "env": …}``.

    ``variants[name]`` holds accuracy, macro_f1, f1_<label>, agreement with the reference and
    with the model's own torch-fp32 (when benchmarked), p50/p95/p99/mean latency (ms, batch 1),
    ``throughput_bs<batch_size>`` (sentences/s), rss_mb, size_mb, params, and ratios against
    ``reference`` (``speedup_p50``, ``throughput_ratio``, ``accuracy_delta_pt``).
    """
    from finslm.evaluation import classification_metrics, flat_metrics
    from finslm.predict import load_predictor

    texts, labels = [str(t) for t in texts], [str(y) for y in labels]
    if not texts or len(texts) != len(labels):
        raise ValueError(
            f"benchmark: need texts and labels of equal, non-zero length ({len(texts)}, {len(labels)})"
        )
    names = [v.name for v in variants]
    if reference not in names:
        raise ValueError(f"benchmark: reference {reference!r} is not among the variants {names}")
    threads = threads or os.cpu_count() or 1
    latency_texts = texts[: min(latency_sentences, len(texts))]
    throughput_key = f"throughput_bs{batch_size}"
    rows: dict[str, dict[str, Any]] = {v.name: {} for v in variants}
    env = {**machine_info(), "threads": threads, "n_test": len(texts)}
    env["probe_before"] = host_speed_probe()

    # 1. Peak RSS, each variant alone in a fresh process (before anything is timed here).
    if rss:
        longest = sorted(texts, key=len, reverse=True)[:batch_size]
        rss_mb = _measure_all_rss([None, *variants], longest, threads, batch_size, progress)
        env["rss_floor_mb"] = round(rss_mb[0], 1)
        for v, mb in zip(variants, rss_mb[1:], strict=True):
            rows[v.name]["rss_mb"] = mb

    # 2. Load everything with the same thread count; size and parameters.
    predictors = []
    for v in variants:
        p = load_predictor(v.model_dir, v.backend, threads=threads)
        predictors.append(p)
        rows[v.name]["size_mb"] = _size_mb(p.files())
        rows[v.name]["params"] = p.num_parameters()
    order = predictors[0].labels
    arith = {v.name: _Arithmetic.of(v, p, texts) for v, p in zip(variants, predictors, strict=True)}
    engines = {a.engine for a in arith.values() if a is not None}
    peaks_before = peak_probes(threads, engines, fill_s=peak_fill_s) if engines else {}

    # 3. Accuracy on the whole test split at batch_size (untimed; warms the batched path up).
    preds: dict[str, np.ndarray] = {}
    for v, p in _progress(
        zip(variants, predictors, strict=True), len(variants), "accuracy", progress
    ):
        if p.labels != order:
            raise ValueError(f"{v.name}: label order {p.labels} differs from {order}")
        predicted = p.predict(texts, batch_size=batch_size)
        preds[v.name] = np.array(predicted)
        metrics = classification_metrics(labels, predicted, order)  # the one metrics function
        rows[v.name].update(flat_metrics(metrics))

    # 4. Batch-1 latency, interleaved: each repetition walks the sentences in short chunks, and
    #    every variant takes a turn on each chunk (order rotated per turn), so a burst of noise
    #    from the machine lands on all variants instead of on one variant's long block.
    for v, p in zip(variants, predictors, strict=True):
        call = lambda text, p=p: p.predict_proba([text], batch_size=1)  # noqa: E731
        rows[v.name].update(first_pass(call, latency_texts, warmup))
    samples: dict[str, list[float]] = {v.name: [] for v in variants}
    chunks = _chunks(latency_texts, _LATENCY_CHUNK)
    turns = _rotations(len(variants), repeats * len(chunks))
    bar = _progress(None, len(turns), "latency bs=1", progress)
    for k, turn in enumerate(turns):
        chunk = chunks[k % len(chunks)]
        for i in turn:
            p, out = predictors[i], samples[variants[i].name]
            time.sleep(settle_s)
            for text in chunk[:_TURN_WARMUP]:  # the previous engine evicted this one's weights
                p.predict_proba([text], batch_size=1)
            gc.disable()
            try:
                for text in chunk:
                    t0 = time.perf_counter()
                    p.predict_proba([text], batch_size=1)
                    out.append(time.perf_counter() - t0)
            finally:
                gc.enable()
        bar.update(1)
    bar.close()
    for name, s in samples.items():
        rows[name].update(_percentiles(s))

    # 5. Throughput at batch_size over the whole split, interleaved the same way in chunks of
    #    a few batches; sentences/s = sentences / time summed over the repetitions.
    elapsed = dict.fromkeys(names, 0.0)
    chunks = _chunks(texts, _THROUGHPUT_BATCHES * batch_size)
    for p in predictors:  # untimed: every batch shape the repetitions will see, built once
        for chunk in chunks:
            p.predict_proba(chunk, batch_size=batch_size)
    turns = _rotations(len(variants), repeats * len(chunks))
    for k, turn in enumerate(_progress(turns, len(turns), f"throughput bs={batch_size}", progress)):
        chunk = chunks[k % len(chunks)]
        for i in turn:
            time.sleep(settle_s)
            predictors[i].predict_proba(chunk[:batch_size], batch_size=batch_size)  # re-warm
            t0 = time.perf_counter()
            predictors[i].predict_proba(chunk, batch_size=batch_size)
            elapsed[variants[i].name] += time.perf_counter() - t0
    for name in names:
        rows[name][throughput_key] = repeats * len(texts) / elapsed[name]
    peaks_after = peak_probes(threads, engines, fill_s=peak_fill_s) if engines else {}
    peaks = {e: max(peaks_before[e], peaks_after[e]) for e in peaks_before}
    for v, p in zip(variants, predictors, strict=True):
        if arith[v.name] is not None:
            rows[v.name].update(
                arith[v.name].rates(
                    p, chunks, batch_size, sum(samples[v.name]) / repeats,
                    elapsed[v.name] / repeats, len(latency_texts), peaks,
                )
            )  # fmt: skip

    # 6. Ratios against the reference; agreement with each model's own fp32 PyTorch run.
    ref = rows[reference]
    for v in variants:
        row = rows[v.name]
        row["speedup_p50"] = ref["p50_ms"] / row["p50_ms"]
        row["throughput_ratio"] = row[throughput_key] / ref[throughput_key]
        row["accuracy_delta_pt"] = 100 * (row["accuracy"] - ref["accuracy"])
        row["agreement_ref"] = float(np.mean(preds[v.name] == preds[reference]))
        own_fp32 = f"{v.name.rsplit('/', 1)[0]}/torch-fp32"
        if own_fp32 in preds:
            row["agreement_fp32"] = float(np.mean(preds[v.name] == preds[own_fp32]))
    env.update(
        probe_after=host_speed_probe(),
        reference=reference,
        latency_sentences=len(latency_texts),
        repeats=repeats,
        warmup=warmup,
        first_pass=True,
        batch_size=batch_size,
        bucketed=True,
    )
    if engines:
        env["peak_gops"] = peaks
        env["peak_probe"] = {"n": PROBE_SIZE, "before": peaks_before, "after": peaks_after}
    log(f"benchmarked {len(variants)} variants on {len(texts)} test sentences, {threads} threads")
    return {"variants": {k: _rounded(v) for k, v in rows.items()}, "env": env}


def _rounded(row: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in row.items():
        if isinstance(v, float):  # 4 decimals, 4 significant digits below 0.1, 1 from 100 up
            v = float(f"{v:.4g}") if abs(v) < 0.1 else round(v, 4) if abs(v) < 100 else round(v, 1)
        out[k] = v
    return out


# --- outputs ------------


def _throughput_key(row: dict[str, Any]) -> str:
    return next(k for k in row if k.startswith("throughput_bs"))


def write_csv(result: dict[str, Any], path: Path) -> None:
    """One row per variant (``variant``, ``model``, ``backend`` + every metric); DVC plots read it."""
    import csv

    rows = result["variants"]
    keys: list[str] = []
    for row in rows.values():
        keys += [k for k in row if k not in keys]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["variant", "model", "backend", *keys])
        for name, row in rows.items():
            model, backend = name.rsplit("/", 1)
            writer.writerow([name, model, backend, *(row.get(k, "") for k in keys)])


def markdown_table(result: dict[str, Any]) -> str:
    """The results table the README includes, with the run's machine and settings under it."""
    rows, env = result["variants"], result["env"]
    tp = _throughput_key(next(iter(rows.values())))
    header = [
        "variant",
        "accuracy",
        "macro-F1",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        f"sent/s (bs {env['batch_size']})",
        "p50 speedup",
        "throughput ×",
        "% peak bs 1",
        f"% peak bs {env['batch_size']}",
        f"padding bs {env['batch_size']}",
        "agree fp32",
        "peak RSS MB",
        "size MB",
        "params",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]

    def f(value, spec):
        return "–" if value is None else format(value, spec)

    bs = env["batch_size"]

    def pct(value):
        return "–" if value is None else f"{100 * value:.0f}%"

    for name, r in rows.items():
        cells = [
            f"`{name}`",
            f(r["accuracy"], ".3f"),
            f(r["macro_f1"], ".3f"),
            f(r["p50_ms"], ".2f"),
            f(r["p95_ms"], ".2f"),
            f(r["p99_ms"], ".2f"),
            f(r[tp], ".0f"),
            f(r["speedup_p50"], ".2f") + "×",
            f(r["throughput_ratio"], ".2f") + "×",
            pct(r.get("peak_frac_bs1")),
            pct(r.get(f"peak_frac_bs{bs}")),
            pct(r.get(f"padding_waste_bs{bs}")),
            f(r.get("agreement_fp32"), ".3f"),
            f(r.get("rss_mb"), ".0f"),
            f(r["size_mb"], ".1f"),
            f"{r['params'] / 1e6:.1f}M" if r["params"] >= 1e5 else f"{r['params']:,}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items())
    lines += [
        "",
        f"{env['n_test']} test sentences; latency at batch 1 over {env['latency_sentences']} of them "
        f"× {env['repeats']} interleaved repetitions after {env['warmup']} warm-up calls"
        + (
            " and a first pass over them, timed apart (`first_pass_*`: new input lengths), "
            if env.get("first_pass")
            else ", "
        )
        + "tokenisation included; throughput over the whole split in every repetition. Variants "
        "take turns on short chunks (round-robin, rotated), so their ratios share the noise. "
        f"Ratios against `{env['reference']}`. Peak RSS: a fresh process per variant "
        f"(Python + finslm alone: {env.get('rss_floor_mb', '–')} MB).",
        "",
        f"Machine: {env['cpu']}, {env['cpu_count']} CPUs, {env['threads']} threads; "
        f"{env['platform']}; Python {env['python']}; {versions}.",
    ]
    peaks = env.get("peak_gops")
    if peaks:  # absent in a benchmark.json written before the peak probes existed
        probed = ", ".join(f"{k} {v:.0f}" for k, v in peaks.items())
        lines += [
            "",
            "% peak: effective operations on real tokens (2 per multiply-add; padding left out) "
            "per second, over a probe of the variant's engine and precision on this host: a "
            f"{env['peak_probe']['n']}² GEMM, best of before and after the run, GOP/s: {probed}. "
            f"Padding: the share of the operations run at batch {bs} that were padding "
            "(batches are length-bucketed).",
        ]
    before, after = env.get("probe_before"), env.get("probe_after")
    if before and after:  # absent in a benchmark.json written before the probe existed
        lines += [
            "",
            "Host speed probe (the same fixed work on every machine; more ms = a slower or busier "
            f"host): Python loop of 10⁶ additions {before['python_loop_ms']:.0f} ms before the "
            f"run, {after['python_loop_ms']:.0f} ms after; 10 float32 512² matmuls "
            f"{before['matmul_ms']:.1f} / {after['matmul_ms']:.1f} ms.",
        ]
    return "\n".join(lines) + "\n"


def plot_frontier(result: dict[str, Any], out_dir: Path) -> list[Path]:
    """PNG plots: accuracy vs p50 latency (with the Pareto frontier) and size vs accuracy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["variants"]
    names = list(rows)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for x_key, y_key, x_label, y_label, filename in (
        (
            "p50_ms",
            "accuracy",
            "p50 latency at batch 1 (ms, log)",
            "test accuracy",
            "accuracy_vs_latency.png",
        ),
        ("size_mb", "accuracy", "size on disk (MB, log)", "test accuracy", "size_vs_accuracy.png"),
    ):
        x = np.array([max(rows[n][x_key], 1e-3) for n in names])
        y = np.array([rows[n][y_key] for n in names])
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        ax.scatter(x, y)
        # Neighbours in x take turns above and below their point so labels do not overprint.
        offsets = [(4, 5), (4, -12), (4, 16), (4, -23)]
        for k, i in enumerate(np.argsort(x)):
            ax.annotate(
                names[i],
                (x[i], y[i]),
                textcoords="offset points",
                xytext=offsets[k % 4],
                fontsize=7,
            )
        # Pareto frontier: no other variant is both smaller/faster and more accurate.
        idx = np.argsort(x)
        front, best = [], -np.inf
        for i in idx:
            if y[i] > best:
                front.append(i)
                best = y[i]
        ax.step(x[front], y[front], where="post", linestyle="--", alpha=0.6)
        ax.set_xscale("log")
        ax.set_xlabel(x_label)
        ax.set_ylabel(y_label)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        path = out_dir / filename
        fig.savefig(path, dpi=120)
        plt.close(fig)
        paths.append(path)
    return paths


if __name__ == "__main__":
    _probe_main(sys.argv[1])
