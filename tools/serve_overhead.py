"""Where a served request's time goes at concurrency 1: model, hand-off, app, HTTP, client.

    python tools/serve_overhead.py --model exports/minilm --texts data/prepared/test.parquet \
        --out .tmp/overhead.json

Each layer adds one thing to the one below it; all send one real sentence per call, cycling
through the texts, one call at a time, and report the p50 (median over ``--rounds`` rounds,
the rounds interleaved so drift lands on every layer):

- ``model``: ``predict_proba([text], batch_size=1)`` on this thread (what the offline
  benchmark's batch-1 p50 measures);
- ``batcher``: the same through :class:`finslm.serve.batching.Batcher` from an asyncio loop
  (uvloop): the hand-off to the model thread and back;
- ``asgi``: the whole app (``create_app``: middlewares, FastAPI, validation, JSON) called as an
  ASGI callable in this process, no socket;
- ``http-raw``: ``finslm serve``'s code (uvicorn + httptools + uvloop) in a child process, driven
  by a blocking keep-alive socket client (pre-built request bytes, ~20 µs of client);
- ``http-aiohttp``: the same server driven the way ``finslm.serve.loadtest`` drives it (aiohttp);
- ``http-wrk``: the same server driven by ``wrk -t1 -c1`` (C), when ``wrk`` is installed.

The same layers with a stub model that answers at once (``stub-*``) give the pure overhead in
microseconds, and a cProfile of the stub app names what the app's share is made of.

Timings on a shared host move with the neighbours: note ``uptime``; read the differences.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import os
import pstats
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from finslm.labels import LABELS
from finslm.predict import Predictor, load_predictor
from finslm.serve.batching import Batcher
from finslm.serve.loadtest import (
    TARGET_HOST,
    ServerProcess,
    drive,
    free_port,
    load_texts,
    wrk_drive,
)


class StubPredictor(Predictor):
    """Answers at once (fixed probabilities): what is left is the serving overhead."""

    backend = "stub"

    def __init__(self, tmp: Path):
        super().__init__(tmp, {"labels": list(LABELS), "name": "stub"})
        self._row = np.array([[0.1, 0.7, 0.2]], dtype=np.float32)

    def _predict_batch(self, texts: list[str]) -> np.ndarray:
        return np.repeat(self._row, len(texts), axis=0)

    def files(self) -> list[Path]:
        return []

    def num_parameters(self) -> int:
        return 1


def p50_ms(samples: list[float]) -> float:
    return float(np.percentile(np.asarray(samples) * 1e3, 50))


# --- in-process layers ---


def time_model(predictor, texts: list[str], n: int) -> list[float]:
    out = []
    for k in range(n):
        t0 = time.perf_counter()
        predictor.predict_proba([texts[k % len(texts)]], batch_size=1)
        out.append(time.perf_counter() - t0)
    return out


def _asgi_request(body: bytes):
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/classify",
        "raw_path": b"/v1/classify",
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    sent = False

    async def receive():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    return scope, receive


async def _time_batcher(predictor, texts: list[str], n: int) -> list[float]:
    from finslm.serve.app import predict_fn

    batcher = Batcher(predict_fn(predictor), max_batch=32)
    await batcher.start()
    out = []
    try:
        for k in range(n):
            t0 = time.perf_counter()
            await batcher.submit([texts[k % len(texts)]])
            out.append(time.perf_counter() - t0)
    finally:
        await batcher.close(1)
    return out


async def _time_asgi(app, texts: list[str], n: int, profile: cProfile.Profile | None = None):
    bodies = [json.dumps({"texts": [t]}).encode() for t in texts]
    out = []
    statuses = set()

    async def send(message):
        if message["type"] == "http.response.start":
            statuses.add(message["status"])

    async with app.router.lifespan_context(app):
        for k in range(n):
            scope, receive = _asgi_request(bodies[k % len(bodies)])
            if profile is not None:
                profile.enable()
            t0 = time.perf_counter()
            await app(scope, receive, send)
            out.append(time.perf_counter() - t0)
            if profile is not None:
                profile.disable()
    assert statuses == {200}, statuses
    return out


def run_loop(coro):
    import uvloop

    return uvloop.run(coro)


# --- HTTP layers ---


def raw_client(port: int, texts: list[str], n: int) -> list[float]:
    """A blocking keep-alive HTTP/1.1 client: pre-built requests, minimal parsing."""
    requests = []
    for t in texts:
        body = json.dumps({"texts": [t]}).encode()
        head = (
            f"POST /v1/classify HTTP/1.1\r\nHost: {TARGET_HOST}:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        requests.append(head + body)
    out = []
    with socket.create_connection((TARGET_HOST, port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = b""
        for k in range(n):
            t0 = time.perf_counter()
            sock.sendall(requests[k % len(requests)])
            while b"\r\n\r\n" not in buf:
                buf += sock.recv(65536)
            head, _, buf = buf.partition(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(head.decode("latin-1"))
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            while len(buf) < length:
                buf += sock.recv(65536)
            buf = buf[length:]
            out.append(time.perf_counter() - t0)
    return out


def stub_server_main(port: int) -> None:
    """``--serve-stub PORT``: the serving app around the stub model, as ``finslm serve`` runs it."""
    from finslm.serve.server import run_uvicorn
    from finslm.serve.settings import ServeSettings

    with tempfile.TemporaryDirectory() as tmp:
        run_uvicorn(StubPredictor(Path(tmp)), ServeSettings(port=port), log_level="warning")


class StubServer(ServerProcess):
    def __init__(self, port: int, log: Path):
        self.port = port
        self.url = f"http://{TARGET_HOST}:{port}"
        self.log = log
        log.parent.mkdir(parents=True, exist_ok=True)
        self._log = log.open("w")
        cmd = [sys.executable, __file__, "--serve-stub", str(port)]
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT)


def http_layers(url: str, port: int, texts: list[str], n: int, seconds: float) -> dict:
    out = {"http-raw": p50_ms(raw_client(port, texts, n))}
    r = asyncio.run(drive(url, texts, 1, seconds, n))
    out["http-aiohttp"] = r["p50_ms"]
    if shutil.which("wrk"):
        out["http-wrk"] = wrk_drive(url, texts, 1, seconds)["p50_ms"]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("exports/minilm"))
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--texts", type=Path, default=Path("data/prepared/test.parquet"))
    parser.add_argument("--sample", type=Path, default=Path("data/sample/sentences.csv"))
    parser.add_argument("--n", type=int, default=300, help="calls per layer per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0, help="per HTTP client run")
    parser.add_argument("--profile", type=int, default=15, help="top functions of the stub app")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--serve-stub", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_stub:
        stub_server_main(args.serve_stub)
        return 0

    from finslm.serve import ServeSettings, create_app

    texts, _, source = load_texts(args.texts, args.sample)
    predictor = load_predictor(args.model, args.backend, threads=args.threads)
    tmp = Path(tempfile.mkdtemp())
    stub = StubPredictor(tmp)
    settings = ServeSettings(warmup=True)
    log_dir = Path(".tmp")
    rounds: list[dict[str, float]] = []
    port, stub_port = free_port(), free_port()
    serve = ["--model", str(args.model), "--backend", predictor.backend]
    serve += ["--threads", str(args.threads)]
    server = ServerProcess(serve, port, log_dir / "overhead-server.log")
    stub_server = StubServer(stub_port, log_dir / "overhead-stub-server.log")
    try:
        server.wait_ready()
        stub_server.wait_ready()
        time_model(predictor, texts, 20)  # warm-up
        for r in range(args.rounds):
            row: dict[str, float] = {}
            row["model"] = p50_ms(time_model(predictor, texts, args.n))
            row["batcher"] = p50_ms(run_loop(_time_batcher(predictor, texts, args.n)))
            app = create_app(predictor, settings)
            row["asgi"] = p50_ms(run_loop(_time_asgi(app, texts, args.n)))
            row.update(http_layers(server.url, port, texts, args.n, args.seconds))
            row["stub-model"] = p50_ms(time_model(stub, texts, args.n))
            row["stub-batcher"] = p50_ms(run_loop(_time_batcher(stub, texts, args.n)))
            stub_app = create_app(stub, ServeSettings(warmup=False))
            row["stub-asgi"] = p50_ms(run_loop(_time_asgi(stub_app, texts, args.n)))
            stub_http = http_layers(stub_server.url, stub_port, texts, args.n, args.seconds)
            row.update({f"stub-{k}": v for k, v in stub_http.items()})
            rounds.append(row)
            print(f"round {r + 1}: " + json.dumps({k: round(v, 3) for k, v in row.items()}))
    finally:
        server.stop()
        stub_server.stop()
    medians = {k: round(statistics.median(r[k] for r in rounds), 3) for k in rounds[0]}
    profile = cProfile.Profile()
    run_loop(_time_asgi(create_app(stub, ServeSettings(warmup=False)), texts, 2000, profile))
    stats = pstats.Stats(profile)
    total = stats.total_tt
    top = []
    for (file, line, fn), (_, ncalls, tt, ct, _) in sorted(
        stats.stats.items(), key=lambda kv: kv[1][3], reverse=True
    )[: args.profile]:
        top.append(
            {
                "function": f"{Path(file).name}:{line}:{fn}",
                "calls_per_request": round(ncalls / 2000, 2),
                "cumulative_us_per_request": round(ct / 2000 * 1e6, 1),
                "own_us_per_request": round(tt / 2000 * 1e6, 1),
            }
        )
    result = {
        "texts": {"source": source, "n": len(texts)},
        "rounds": rounds,
        "p50_ms": medians,
        "stub_profile": {"total_us_per_request": round(total / 2000 * 1e6, 1), "top": top},
        "loadavg": os.getloadavg(),
    }
    print(json.dumps(result["p50_ms"], indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    with contextlib.suppress(OSError):
        shutil.rmtree(tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
