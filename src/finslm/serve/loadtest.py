"""Bounded localhost load test: the served model against the same model measured offline.

    python -m finslm.serve.loadtest --model exports/minilm           # what `make loadtest` runs
    python -m finslm.serve.loadtest --policy 1:0 --policy 8:0 --policy 32:2   # compare batching

For each batching policy (``max_batch:max_wait_ms``) it starts ``finslm serve`` on 127.0.0.1 (a
free port), waits for ``/readyz``, checks that every test sentence gets the label
``finslm predict`` gives, then drives ``POST /v1/classify`` at each concurrency (1, 8, 32, 64)
(a token classifier's folder: ``POST /v1/entities``, the NER test split, the entity spans'
types and offsets checked against ``finslm predict``)
for a fixed time with real test sentences, one per request: requests/s, sentences/s,
p50/p95/p99 and errors. In the same run, with the server idle, the offline benchmark
(:func:`finslm.bench.run_benchmark`, the harness behind ``metrics/benchmark.json``) measures the
same variant's batch-1 p50 and batched throughput, so served and offline figures share the
machine's state.

Bounds: the target is always 127.0.0.1 (never configurable), each level stops after
``duration`` seconds or ``max_requests`` requests, whichever comes first, and the server is
stopped (SIGTERM) at the end. Writes ``metrics/serve.json`` and ``reports/serve.md``.

The client (``--client``) is ``wrk`` when it is installed (``auto``), else asyncio + aiohttp in
this process. Client and server share the machine, so the client's CPU is taken from the
server: aiohttp spends about 0.5 ms of Python per request, which at concurrency 32 on 2 cores is
a large share of what the server could use, and adds itself to every latency; wrk (C, one
thread, epoll, the request bytes pre-built by its Lua script) spends a few microseconds. The
figures then measure the server, as a client on another machine would see it (loopback instead
of a network). Each level reports the client's own CPU per request
(``client_cpu_ms_per_request``), so the share it took is on the record.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

TARGET_HOST = "127.0.0.1"  # the only host this tool ever sends to
LEVELS = (1, 8, 32, 64)
CLASSIFY, ENTITIES = "/v1/classify", "/v1/entities"
DEFAULT_TEST = Path("data/prepared/test.parquet")
DEFAULT_NER_TEST = Path("data/prepared-ner/test.parquet")


def free_port() -> int:
    with socket.socket() as s:
        s.bind((TARGET_HOST, 0))
        return s.getsockname()[1]


def load_texts(test: Path, sample: Path) -> tuple[list[str], list[str], str]:
    """(texts, labels, source): the prepared test split when present, else the sample CSV."""
    import pandas as pd

    if test.is_file():
        frame = pd.read_parquet(test, columns=["text", "label"])
        source = str(test)
    else:
        frame = pd.read_csv(sample)
        source = str(sample)
    return frame["text"].astype(str).tolist(), frame["label"].astype(str).tolist(), source


def load_ner_texts(test: Path) -> tuple[list[str], list[str], str]:
    """(texts, [], source): ``prepare_ner``'s test split, each sentence's words joined by
    spaces (what a client would send)."""
    import pandas as pd

    if not test.is_file():
        raise SystemExit(f"error: {test}: missing; run `dvc repro prepare_ner` (or pass --test)")
    frame = pd.read_parquet(test, columns=["tokens"])
    return [" ".join(map(str, t)) for t in frame["tokens"]], [], str(test)


def answer_keys(route: str, body: dict[str, Any]) -> list[str]:
    """What the agreement check compares per text: the label, or the entities' types and
    character offsets (their scores move with batch-mates under dynamic INT8)."""
    if route == CLASSIFY:
        return [res["label"] for res in body["results"]]
    return [
        json.dumps([[e["type"], e["start"], e["end"]] for e in res["entities"]])
        for res in body["results"]
    ]


class ServerProcess:
    """``finslm serve`` in a child process on 127.0.0.1; stopped with SIGTERM (graceful)."""

    def __init__(self, args: list[str], port: int, log: Path):
        self.port = port
        self.url = f"http://{TARGET_HOST}:{port}"
        self.log = log
        cmd = [sys.executable, "-m", "finslm.cli", "serve", *args]
        cmd += ["--host", TARGET_HOST, "--port", str(port), "--log-level", "warning"]
        env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
        env.pop("FINSLM_API_KEY", None)
        log.parent.mkdir(parents=True, exist_ok=True)
        self._log = log.open("w")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env)

    def wait_ready(self, timeout_s: float = 120) -> None:
        import urllib.request

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited ({self.proc.returncode}); see {self.log}")
            try:
                with urllib.request.urlopen(f"{self.url}/readyz", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"server not ready after {timeout_s:g} s; see {self.log}")

    def stop(self, timeout_s: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


async def _classify(
    session, url: str, texts: list[str], route: str = CLASSIFY
) -> tuple[int, list[str]]:
    async with session.post(f"{url}{route}", json={"texts": texts}) as r:
        body = await r.json(content_type=None)
        return r.status, answer_keys(route, body) if r.status == 200 else []


async def served_labels(
    url: str, texts: list[str], per_request: int = 1, route: str = CLASSIFY
) -> list[str]:
    """Every text's served label (:func:`answer_keys`), ``per_request`` texts per request,
    8 requests at a time."""
    import aiohttp

    chunks = [texts[i : i + per_request] for i in range(0, len(texts), per_request)]
    out: list[list[str]] = [[] for _ in chunks]
    sem = asyncio.Semaphore(8)
    async with aiohttp.ClientSession() as session:

        async def one(i: int) -> None:
            async with sem:
                status, labels = await _classify(session, url, chunks[i], route)
                if status != 200:
                    raise RuntimeError(f"parity request {i} answered {status}")
                out[i] = labels

        await asyncio.gather(*(one(i) for i in range(len(chunks))))
    return [label for labels in out for label in labels]


async def drive(
    url: str,
    texts: list[str],
    concurrency: int,
    duration_s: float,
    max_requests: int,
    route: str = CLASSIFY,
) -> dict[str, Any]:
    """``concurrency`` clients in a closed loop for ``duration_s`` (or ``max_requests``)."""
    import aiohttp

    latencies: list[float] = []
    errors: dict[str, int] = {}
    sent = 0
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        # Warm the connections (and the server) up, untimed.
        await asyncio.gather(
            *(_classify(session, url, [texts[i % len(texts)]], route) for i in range(concurrency))
        )
        loop = asyncio.get_running_loop()
        cpu0 = time.process_time()  # this process is the client while it drives
        start = loop.time()
        stop_at = start + duration_s

        async def client(k: int) -> None:
            nonlocal sent
            i = k
            while loop.time() < stop_at and sent < max_requests:
                sent += 1
                t0 = time.perf_counter()
                try:
                    status, _ = await _classify(session, url, [texts[i % len(texts)]], route)
                except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                    status = type(exc).__name__
                if status == 200:
                    latencies.append(time.perf_counter() - t0)
                else:
                    errors[str(status)] = errors.get(str(status), 0) + 1
                i += concurrency

        await asyncio.gather(*(client(k) for k in range(concurrency)))
        elapsed = loop.time() - start
        cpu = time.process_time() - cpu0
    ms = np.asarray(latencies) * 1e3 if latencies else np.asarray([np.nan])
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    return {
        "concurrency": concurrency,
        "client": "aiohttp",
        "seconds": round(elapsed, 2),
        "requests": sent,
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "sentences_per_s": round(len(latencies) / elapsed, 1),  # one sentence per request
        "p50_ms": round(float(p50), 3),
        "p95_ms": round(float(p95), 3),
        "p99_ms": round(float(p99), 3),
        "errors": sum(errors.values()),
        "error_kinds": errors,
        "client_cpu_ms_per_request": round(1e3 * cpu / max(sent, 1), 4),
    }


# wrk's Lua side: every request posts the next real sentence (one per request, the bodies
# pre-built in init), the thread stops after ``limit`` requests, and done() prints the counts and
# latency percentiles (microseconds, from wrk's HdrHistogram) as one JSON line.
WRK_SCRIPT = r"""
local reqs, n, sent, limit = {}, 0, 0, 0
function init(args)
  limit = tonumber(args[2]) or 0
  for line in io.lines(args[1]) do
    reqs[#reqs + 1] = wrk.format("POST", args[4] or "/v1/classify",
                                 {["Content-Type"] = "application/json"}, line)
  end
  n = (tonumber(args[3]) or 0) % #reqs
end
function request()
  sent = sent + 1
  if limit > 0 and sent > limit then wrk.thread:stop() end
  n = n % #reqs + 1
  return reqs[n]
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\nFINSLM_WRK {"requests": %d, "duration_us": %d, "connect": %d, "read": %d, ' ..
    '"write": %d, "status": %d, "timeout": %d, "p50_us": %d, "p95_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99)))
end
"""


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def wrk_drive(
    url: str,
    texts: list[str],
    concurrency: int,
    duration_s: float,
    max_requests: int = 0,
    nice: int = 0,
    route: str = CLASSIFY,
) -> dict[str, Any]:
    """What :func:`drive` measures, with ``wrk`` (C, one thread, epoll) as the client.

    ``concurrency`` keep-alive connections in a closed loop for ``duration_s`` (whole seconds,
    at least 1; wrk's unit) or about ``max_requests`` requests. Latency is wrk's, from sending a
    request to its last response byte. ``client_cpu_ms_per_request``: wrk's own CPU time.
    """
    import resource
    import tempfile

    if not url.startswith(f"http://{TARGET_HOST}:"):
        raise ValueError(f"{url}: the load test only targets {TARGET_HOST}")
    with tempfile.TemporaryDirectory(prefix="finslm-wrk-") as tmp:
        script, bodies = Path(tmp) / "classify.lua", Path(tmp) / "bodies.jsonl"
        script.write_text(WRK_SCRIPT, encoding="utf-8")
        # json.dumps escapes non-ASCII and newlines: one request body per line.
        bodies.write_text("".join(json.dumps({"texts": [t]}) + "\n" for t in texts), "utf-8")
        seconds = max(1, round(duration_s))
        cmd = ["wrk", "-t1", f"-c{concurrency}", f"-d{seconds}s", "--timeout", "30s"]
        cmd += ["-s", str(script), f"{url}{route}", "--", str(bodies), str(max_requests), "0"]
        cmd.append(route)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        proc = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            preexec_fn=(lambda: os.nice(nice)) if nice else None,
        )
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("FINSLM_WRK ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout}")
    w = json.loads(line.split(" ", 1)[1])
    elapsed = w["duration_us"] / 1e6
    kinds = {k: w[k] for k in ("connect", "read", "write", "status", "timeout") if w[k]}
    errors = sum(kinds.values())
    ok = max(0, w["requests"] - w["status"])
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return {
        "concurrency": concurrency,
        "client": "wrk",
        "seconds": round(elapsed, 2),
        "requests": w["requests"],
        "requests_per_s": round(ok / elapsed, 1),
        "sentences_per_s": round(ok / elapsed, 1),  # one sentence per request
        "p50_ms": round(w["p50_us"] / 1e3, 3),
        "p95_ms": round(w["p95_us"] / 1e3, 3),
        "p99_ms": round(w["p99_us"] / 1e3, 3),
        "errors": errors,
        "error_kinds": kinds,
        "client_cpu_ms_per_request": round(1e3 * cpu / max(w["requests"], 1), 4),
    }


def batch_stats(url: str) -> tuple[float, float]:
    """(texts, model calls) so far, from the server's Prometheus batch-size histogram."""
    import urllib.request

    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as r:
        text = r.read().decode("utf-8")
    values = {}
    for line in text.splitlines():
        if line.startswith(("finslm_batch_size_sum ", "finslm_batch_size_count ")):
            name, value = line.split()
            values[name] = float(value)
    return values.get("finslm_batch_size_sum", 0.0), values.get("finslm_batch_size_count", 0.0)


def offline_ner(model: Path, backend: str, texts, threads: int, repeats: int = 5) -> dict:
    """A token classifier's offline figures, measured as :func:`offline` measures a sentence
    classifier's: ``Tagger.entities`` on one text at a time (20 untimed calls, then up to 300
    texts; p50/p95/p99) and on all texts at batch 32 (length-bucketed; median of ``repeats``).
    Not :func:`finslm.ner.bench.run_ner_benchmark`: that times ``tag_words`` on words split
    beforehand, several variants in turn; the server's route is ``entities`` on raw text."""
    import gc

    from finslm.tasks import load_model

    tagger = load_model(model, backend, threads=threads)
    for text in texts[:20]:
        tagger.entities([text], batch_size=1)
    times = []
    gc.disable()
    try:
        for text in texts[: min(300, len(texts))]:
            t0 = time.perf_counter()
            tagger.entities([text], batch_size=1)
            times.append(time.perf_counter() - t0)
        rates = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            tagger.entities(texts, batch_size=32)
            rates.append(len(texts) / (time.perf_counter() - t0))
    finally:
        gc.enable()
    ms = np.asarray(times) * 1e3
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    batch1 = 1000.0 / float(ms.mean())
    bs32 = float(np.median(rates))
    return {
        "variant": tagger.name,
        "p50_ms": round(float(p50), 3),
        "p95_ms": round(float(p95), 3),
        "p99_ms": round(float(p99), 3),
        "sentences_per_s_bs1": round(batch1, 1),
        "sentences_per_s_bs32": round(bs32, 1),
        "best_sentences_per_s": round(max(batch1, bs32), 1),
        "threads": threads,
    }


def offline(model: Path, backend: str, texts, labels, threads: int) -> dict[str, Any]:
    """The offline benchmark of the same variant (finslm.bench), RSS probe off."""
    from finslm.bench import Variant, run_benchmark
    from finslm.predict import load_predictor
    from finslm.tasks import is_token_classifier

    if is_token_classifier(model):
        return offline_ner(model, backend, texts, threads)

    name = load_predictor(model, backend, threads=threads).name
    result = run_benchmark(
        [Variant(name, model, backend)],
        texts,
        labels,
        reference=name,
        threads=threads,
        warmup=20,
        latency_sentences=min(300, len(texts)),
        repeats=5,  # 120 sample sentences: 2 repeats left the batch-32 figure noisy (±25%)
        batch_size=32,
        rss=False,
        progress=False,
        log=lambda _: None,
    )
    row = result["variants"][name]
    batch1 = 1000.0 / row["mean_ms"]  # sentences/s at batch 1, back to back
    return {
        "variant": name,
        "p50_ms": row["p50_ms"],
        "p95_ms": row["p95_ms"],
        "p99_ms": row["p99_ms"],
        "sentences_per_s_bs1": round(batch1, 1),
        "sentences_per_s_bs32": row["throughput_bs32"],
        "best_sentences_per_s": round(max(batch1, row["throughput_bs32"]), 1),
        "threads": result["env"]["threads"],
    }


def resolve_client(name: str) -> str:
    """``auto``: wrk when it is installed (a few µs of CPU per request), else aiohttp."""
    if name == "auto":
        return "wrk" if wrk_available() else "aiohttp"
    if name == "wrk" and not wrk_available():
        raise SystemExit("error: --client wrk: wrk is not installed (apt-get install wrk)")
    return name


def paired_c1(
    url: str,
    predictor,
    texts: list[str],
    client: str,
    rounds: int = 5,
    seconds: float = 1.0,
    route: str = CLASSIFY,
) -> dict[str, Any]:
    """Concurrency-1 p50 against offline batch-1 p50, measured in alternation.

    The offline benchmark and the concurrency-1 level run tens of seconds apart, and on a
    shared host the model's own speed drifts by more than the server adds (p50 2.9-4.3 ms within
    an hour here). Here each of ``rounds`` rounds times ``predict_proba([text], 1)`` in this
    process for ``seconds`` (the server idle; GC paused and 3 untimed calls first, as the
    benchmark does), then drives the server at concurrency 1 for ``seconds``: the median of the
    rounds' differences is the server's share, with the drift cancelled. A token classifier
    (``route`` ``/v1/entities``) is timed with ``entities([text], 1)``.
    """
    import gc

    if route == ENTITIES:
        one = lambda text: predictor.entities([text], batch_size=1)  # noqa: E731
    else:
        one = lambda text: predictor.predict_proba([text], batch_size=1)  # noqa: E731

    diffs, served, off = [], [], []
    k = 0
    for _ in range(rounds):
        for text in texts[k : k + 3] or texts[:3]:
            one(text)
        samples = []
        gc.disable()
        try:
            stop = time.perf_counter() + seconds
            while time.perf_counter() < stop:
                text = texts[k % len(texts)]
                k += 1
                t0 = time.perf_counter()
                one(text)
                samples.append(time.perf_counter() - t0)
        finally:
            gc.enable()
        off.append(float(np.median(samples)) * 1e3)
        if client == "wrk":
            served.append(wrk_drive(url, texts, 1, seconds, route=route)["p50_ms"])
        else:
            served.append(asyncio.run(drive(url, texts, 1, seconds, 10_000, route))["p50_ms"])
        diffs.append(served[-1] - off[-1])
    return {
        "rounds": rounds,
        "seconds": seconds,
        "offline_p50_ms": [round(v, 3) for v in off],
        "served_p50_ms": [round(v, 3) for v in served],
        "p50_minus_offline_ms": round(float(np.median(diffs)), 3),
    }


def parse_policy(text: str) -> tuple[int, float, float | None]:
    """``max_batch[:max_wait_ms[:call_cost_tokens]]``; no call cost: the server's default."""
    batch, _, rest = text.partition(":")
    wait, _, cost = rest.partition(":")
    return int(batch), float(wait or 0), float(cost) if cost else None


def run_policy(args, policy, default, client, texts, labels, expected, backend) -> dict[str, Any]:
    """One policy: its own server, the label check, the offline figures, every level."""
    max_batch, max_wait_ms, call_cost = policy
    call_cost = default.call_cost_tokens if call_cost is None else call_cost
    port = free_port()
    serve_args = ["--model", str(args.model), "--backend", backend]
    serve_args += ["--threads", str(args.threads), "--max-batch", str(max_batch)]
    serve_args += ["--max-wait-ms", str(max_wait_ms), "--max-queue", "4096"]
    serve_args += ["--call-cost-tokens", str(call_cost)]
    server = ServerProcess(serve_args, port, args.log)
    try:
        server.wait_ready()
        got = asyncio.run(served_labels(server.url, texts, route=args.route))
        agree = float(np.mean(np.array(got) == np.array(expected)))
        mismatches = [i for i, (a, b) in enumerate(zip(got, expected, strict=True)) if a != b]
        off = offline(args.model, backend, texts, labels, args.threads)  # server idle
        paired = None
        if 1 in args.levels and args.paired_rounds:
            from finslm.tasks import load_model

            model = load_model(args.model, backend, threads=args.threads)
            paired = paired_c1(
                server.url, model, texts, client, args.paired_rounds, route=args.route
            )
            del model
        levels = {}
        for c in args.levels:
            before = batch_stats(server.url)
            if client == "wrk":
                levels[str(c)] = wrk_drive(
                    server.url, texts, c, args.duration, args.max_requests, args.client_nice,
                    route=args.route,
                )  # fmt: skip
            else:
                levels[str(c)] = asyncio.run(
                    drive(server.url, texts, c, args.duration, args.max_requests, args.route)
                )
            after = batch_stats(server.url)
            calls = after[1] - before[1]
            levels[str(c)]["mean_batch"] = round((after[0] - before[0]) / max(calls, 1), 2)
            tag = f"{max_batch}:{max_wait_ms:g}:{call_cost:g}"
            print(f"policy {tag} c={c}: {levels[str(c)]}", flush=True)
    finally:
        code = server.stop()
    c32 = levels.get("32")
    c1 = levels.get("1")
    return {
        "max_batch": max_batch,
        "max_wait_ms": max_wait_ms,
        "call_cost_tokens": call_cost,
        "label_agreement_with_predict": agree,
        "label_mismatches": mismatches,
        "offline": off,
        "levels": levels,
        "bars": {
            "zero_errors": all(v["errors"] == 0 for v in levels.values()),
            "c32_over_offline_best": round(c32["sentences_per_s"] / off["best_sentences_per_s"], 3)
            if c32
            else None,
            # max_batch 1 can at best match offline batch 1: its own ceiling, for the record.
            "c32_over_offline_bs1": round(c32["sentences_per_s"] / off["sentences_per_s_bs1"], 3)
            if c32
            else None,
            "c1_p50_minus_offline_p50_ms": round(c1["p50_ms"] - off["p50_ms"], 3) if c1 else None,
            "c1_p50_minus_offline_paired_ms": paired["p50_minus_offline_ms"] if paired else None,
        },
        "c1_paired": paired,
        "server_exit_code": code,
    }


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One policy's runs as one entry: the median of every figure, each run's bars kept."""
    if len(runs) == 1:
        return runs[0]

    def median(values):
        values = [v for v in values if v is not None]
        return round(float(np.median(values)), 3) if values else None

    first = runs[0]
    levels = {
        c: {
            **first["levels"][c],
            **{
                k: median([r["levels"][c][k] for r in runs])
                for k, v in first["levels"][c].items()
                if isinstance(v, int | float) and k != "concurrency"
            },
            "errors": sum(r["levels"][c]["errors"] for r in runs),
            "error_kinds": {
                kind: sum(r["levels"][c]["error_kinds"].get(kind, 0) for r in runs)
                for kind in sorted({k for r in runs for k in r["levels"][c]["error_kinds"]})
            },
        }
        for c in first["levels"]
    }
    offline_ = {
        k: median([r["offline"][k] for r in runs]) if isinstance(v, float) else v
        for k, v in first["offline"].items()
    }
    bars = {
        "zero_errors": all(r["bars"]["zero_errors"] for r in runs),
        **{k: median([r["bars"][k] for r in runs]) for k in first["bars"] if k != "zero_errors"},
    }
    return {
        **{k: first[k] for k in ("max_batch", "max_wait_ms", "call_cost_tokens")},
        "label_agreement_with_predict": min(r["label_agreement_with_predict"] for r in runs),
        "label_mismatches": sorted({i for r in runs for i in r["label_mismatches"]}),
        "offline": offline_,
        "levels": levels,
        "bars": bars,
        "runs": len(runs),
        "bars_per_run": [r["bars"] for r in runs],
        "c1_paired_per_run": [r.get("c1_paired") for r in runs],
        "server_exit_code": max(r["server_exit_code"] for r in runs),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    from finslm.bench import machine_info
    from finslm.predict import load_predictor
    from finslm.serve.settings import ServeSettings
    from finslm.tasks import is_token_classifier, load_model

    if is_token_classifier(args.model):
        args.route = ENTITIES
        test = args.test if args.test != DEFAULT_TEST else DEFAULT_NER_TEST
        texts, labels, source = load_ner_texts(test)
        predictor = load_model(args.model, args.backend, threads=args.threads)
        # What `finslm predict --task ner` prints: entities at batch 32, types and offsets.
        found = predictor.entities(texts, batch_size=32)
        expected = answer_keys(ENTITIES, {"results": [{"entities": f} for f in found]})
    else:
        args.route = CLASSIFY
        texts, labels, source = load_texts(args.test, args.sample)
        predictor = load_predictor(args.model, args.backend, threads=args.threads)
        # What `finslm predict` prints: predict_proba at its default batch size (32), argmax.
        expected = predictor.predict(texts, batch_size=32)
    backend = predictor.backend
    del predictor
    default = ServeSettings()  # no --policy: the server's own default
    client = resolve_client(args.client)
    policies = [parse_policy(p) for p in args.policy] or [
        (default.max_batch, default.max_wait_ms, None)
    ]
    result: dict[str, Any] = {
        "texts": {"source": source, "n": len(texts)},
        "route": args.route,
        "duration_s": args.duration,
        "levels": list(args.levels),
        "policies": [],
        "client": client,
        "env": {**machine_info(), "threads": args.threads, "loadavg_before": os.getloadavg()},
    }
    runs: dict[tuple, list[dict[str, Any]]] = {}
    for _ in range(args.repeats):  # policies in rotation, so drift lands on each of them
        for policy in policies:
            one = run_policy(args, policy, default, client, texts, labels, expected, backend)
            runs.setdefault(policy, []).append(one)
    result["policies"] = [summarise(r) for r in runs.values()]
    result["repeats"] = args.repeats
    result["variant"] = result["policies"][0]["offline"]["variant"]
    # Other work on the machine shares the cores with client and server: say how much.
    result["env"]["loadavg_after"] = os.getloadavg()
    return result


def markdown(result: dict[str, Any]) -> str:
    """reports/serve.md: one table per policy, with the offline figures and the bars."""
    env = result["env"]
    lines = [
        f"# Serving load test: `{result['variant']}`",
        "",
        f"`POST {result.get('route', CLASSIFY)}`: "
        f"{result['texts']['n']} sentences from `{result['texts']['source']}`, one per request, "
        f"{result['duration_s']:g} s per concurrency level, closed loop, client "
        f"`{result.get('client', 'aiohttp')}`; client and server on "
        f"127.0.0.1 sharing the machine ({env['cpu']}, {env['cpu_count']} CPUs, "
        f"threads={env['threads']}). Load average (1, 5, 15 min) before the run "
        f"{_load(env.get('loadavg_before'))}, after {_load(env.get('loadavg_after'))} (the run "
        f"itself adds about 1.5; well above {env['cpu_count']}, other work was competing for "
        f"the cores).",
        "",
    ]
    for p in result["policies"]:
        off, bars = p["offline"], p["bars"]
        lines += [
            f"## Batching: max_batch {p['max_batch']}, max_wait {p['max_wait_ms']:g} ms, "
            f"call cost {p.get('call_cost_tokens', 0):g} tokens",
            "",
            f"Offline ({'Tagger.entities' if result.get('route') == ENTITIES else 'finslm.bench'}"
            f", same run): p50 {off['p50_ms']:.2f} ms at batch 1; "
            f"{off['sentences_per_s_bs1']:.0f} sentences/s at batch 1, "
            f"{off['sentences_per_s_bs32']:.0f} at batch 32 (best "
            f"{off['best_sentences_per_s']:.0f}). "
            f"{'Entity spans' if result.get('route') == ENTITIES else 'Labels'} equal to "
            "`finslm predict`: "
            f"{p['label_agreement_with_predict']:.2%}.",
            "",
            "| concurrency | requests/s | sentences/s | p50 ms | p95 ms | p99 ms | errors "
            "| texts per model call | client CPU µs/request |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for c, v in p["levels"].items():
            cpu = v.get("client_cpu_ms_per_request")
            lines.append(
                f"| {c} | {v['requests_per_s']:.0f} | {v['sentences_per_s']:.0f} | "
                f"{v['p50_ms']:.2f} | {v['p95_ms']:.2f} | {v['p99_ms']:.2f} | {v['errors']} | "
                f"{v['mean_batch']:.1f} | {'?' if cpu is None else f'{cpu * 1e3:.0f}'} |"
            )
        lines += [
            "",
            f"Served sentences/s at concurrency 32 / offline best: "
            f"{bars['c32_over_offline_best']} (/ offline batch 1: "
            f"{bars.get('c32_over_offline_bs1')}); p50 at concurrency 1 minus offline batch-1 "
            f"p50: {bars['c1_p50_minus_offline_p50_ms']} ms (timed in alternation: "
            f"{bars.get('c1_p50_minus_offline_paired_ms')} ms); zero errors: "
            f"{bars['zero_errors']}.",
            "",
        ]
        if p.get("runs", 1) > 1:
            per_run = "; ".join(
                " / ".join(
                    f"{b.get(k)}"
                    for k in (
                        "c32_over_offline_best",
                        "c1_p50_minus_offline_p50_ms",
                        "c1_p50_minus_offline_paired_ms",
                    )
                )
                for b in p["bars_per_run"]
            )
            lines += [
                f"Figures above: medians of {p['runs']} runs (errors: their sum). Each run's "
                f"c=32 ratio / c=1 overhead (ms) / c=1 overhead in alternation (ms): {per_run}.",
                "",
            ]
    return "\n".join(lines)


def _load(values) -> str:
    return "/".join(f"{v:.1f}" for v in values) if values else "?"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("exports/minilm"))
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument(
        "--test",
        type=Path,
        default=DEFAULT_TEST,
        help=f"test split (default {DEFAULT_TEST}; a token classifier: {DEFAULT_NER_TEST})",
    )
    parser.add_argument("--sample", type=Path, default=Path("data/sample/sentences.csv"))
    parser.add_argument(
        "--policy",
        action="append",
        default=[],
        help="max_batch[:max_wait_ms[:call_cost_tokens]] (repeatable)",
    )
    parser.add_argument("--levels", type=int, nargs="+", default=list(LEVELS))
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per level")
    parser.add_argument(
        "--repeats", type=int, default=1, help="runs of every policy, in rotation; medians"
    )
    parser.add_argument(
        "--paired-rounds",
        type=int,
        default=5,
        help="rounds of offline / served concurrency-1 timing in alternation (0: none)",
    )
    parser.add_argument(
        "--client",
        choices=("auto", "wrk", "aiohttp"),
        default="auto",
        help="load generator: wrk (C; auto when installed) or aiohttp (Python, in this process)",
    )
    parser.add_argument(
        "--client-nice", type=int, default=0, help="niceness added to the wrk client"
    )
    parser.add_argument("--max-requests", type=int, default=50_000, help="per level")
    parser.add_argument("--metrics", type=Path, default=Path("metrics/serve.json"))
    parser.add_argument("--report", type=Path, default=Path("reports/serve.md"))
    parser.add_argument("--log", type=Path, default=Path(".tmp/loadtest-server.log"))
    args = parser.parse_args(argv)
    if not (args.model / "finslm.json").is_file():
        print(
            f"error: --model {args.model}: not a finslm model folder; run `dvc repro export@minilm`"
            " (or pass --model)",
            file=sys.stderr,
        )
        return 2
    if args.duration <= 0 or args.duration > 120 or not 1 <= max(args.levels) <= 256:
        print("error: --duration must be in (0, 120] s and levels in [1, 256]", file=sys.stderr)
        return 2
    if not 1 <= args.repeats <= 10:
        print("error: --repeats must be in [1, 10]", file=sys.stderr)
        return 2
    # SIGTERM (a CI timeout, `kill`) unwinds like Ctrl-C, so the server child is stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    result = run(args)
    for path in (args.metrics, args.report):
        path.parent.mkdir(parents=True, exist_ok=True)
    args.metrics.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    args.report.write_text(markdown(result), encoding="utf-8")
    print(f"wrote {args.metrics} and {args.report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
