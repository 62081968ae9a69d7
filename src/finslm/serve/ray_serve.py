"""The same app on Ray Serve: N replicas behind Ray's HTTP proxy, on one machine or a cluster.

    finslm serve --engine ray --replicas 2 --model exports/minilm      # local Ray instance
    ray start --head; RAY_ADDRESS=auto finslm serve --engine ray ...    # an existing cluster

Each replica loads the model once (in its constructor) and builds the app with
:func:`finslm.serve.app.create_app`, so routes, limits, errors and metrics are the plain
server's. What changes is the batcher: requests are grouped by Ray Serve's ``@serve.batch``
(same ``max_batch`` and ``max_wait_ms``), and Ray's proxy spreads requests over replicas and
answers 503 past ``max_queued_requests``. Every node must see the model folder at the same path
(a shared volume, or the container image of docs/serving.md).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import signal
import sys
from pathlib import Path

import numpy as np

from finslm.serve.batching import stack_rows
from finslm.serve.settings import ServeSettings

APP_NAME = "finslm"


class RayBatchRunner:
    """The runner interface of :class:`~finslm.serve.batching.Batcher`, on ``@serve.batch``."""

    def __init__(self, batched, executor: concurrent.futures.Executor):
        self._batched = batched  # async (one text) -> probabilities row, batched by Ray
        self._executor = executor
        self.pending = 0

    async def start(self) -> None:
        return None

    async def run_in_model_thread(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def submit(self, texts: list[str]) -> np.ndarray:
        self.pending += len(texts)
        try:
            rows = await asyncio.gather(*(self._batched(t) for t in texts))
        finally:
            self.pending -= len(texts)
        return stack_rows(rows)

    async def close(self, timeout_s: float = 10.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while self.pending > 0 and loop.time() < deadline:
            await asyncio.sleep(0.01)


def build_app(
    model: Path,
    backend: str,
    settings: ServeSettings,
    replicas: int = 1,
    threads: int = 0,
    num_cpus: float = 1.0,
    device: str = "cpu",
):
    """A bound Ray Serve application (pass it to ``serve.run``)."""
    from ray import serve

    model = Path(model).resolve()

    @serve.deployment(
        name="FinslmClassifier",
        num_replicas=replicas,
        max_ongoing_requests=max(8, settings.max_batch * 4),
        max_queued_requests=settings.max_queue,
        ray_actor_options={"num_cpus": num_cpus},
        health_check_period_s=5,
    )
    @serve.ingress()
    class FinslmClassifier:
        def __init__(self) -> None:
            from finslm.serve.app import predict_fn
            from finslm.serve.server import load

            self.predictor = load(model, backend, threads=threads, device=device)
            self._predict = predict_fn(self.predictor)
            self._executor = concurrent.futures.ThreadPoolExecutor(1)

        @serve.batch(
            max_batch_size=settings.max_batch,
            batch_wait_timeout_s=settings.max_wait_ms / 1000,
        )
        async def classify_one(self, texts: list[str]) -> list:
            loop = asyncio.get_running_loop()
            answers = await loop.run_in_executor(self._executor, self._predict, texts)
            return list(answers)

        def __serve_build_asgi_app__(self):
            from finslm.serve.app import create_app

            runner = RayBatchRunner(self.classify_one, self._executor)
            return create_app(self.predictor, settings, runner=runner)

    return FinslmClassifier.bind()


def run_ray(
    model: Path,
    backend: str,
    settings: ServeSettings,
    replicas: int = 1,
    threads: int = 0,
    device: str = "cpu",
) -> None:
    """Start (or join, with ``RAY_ADDRESS``) Ray, deploy, and block until Ctrl-C."""
    try:
        import ray
        from ray import serve
    except ImportError:
        raise ImportError(
            "--engine ray needs Ray Serve, which is not installed; pip install 'finslm[ray]'"
        ) from None
    if warning := settings.exposure_warning():
        print(f"warning: {warning}", file=sys.stderr)
    ray.init(address=os.environ.get("RAY_ADDRESS"), include_dashboard=False)
    # Ray's blocking loop ignores SIGINT/SIGTERM here; turn both into SystemExit so the
    # application is torn down (replicas drain) and a local Ray instance stops with us. The
    # status is a signal's (128 + its number: 143 for SIGTERM), as the plain server's.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, _frame: sys.exit(128 + signum))
    try:
        serve.start(http_options={"host": settings.host, "port": settings.port})
        serve.run(
            build_app(model, backend, settings, replicas, threads, device=device),
            name=APP_NAME,
            route_prefix="/",
            blocking=True,
        )
    finally:
        serve.shutdown()
        ray.shutdown()
