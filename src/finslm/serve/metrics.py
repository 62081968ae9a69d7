"""Prometheus metrics of one app: requests, latency, batch sizes, errors, queue, model info.

Each app gets its own ``CollectorRegistry`` (not the process-global default), so several apps in
one process (tests, Ray replicas sharing a worker) never collide on metric names. Requests are
counted by a pure ASGI middleware under the route's template (``/v1/classify``), never the raw
path, so a scanner probing random URLs cannot blow up label cardinality.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    generate_latest,
)

# Seconds: classification is a few ms, explanations about a second.
LATENCY_BUCKETS = (
    0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
)  # fmt: skip
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


class ServeMetrics:
    """The collectors of one app, and :meth:`render` for ``GET /metrics``."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "finslm_requests", "HTTP requests by route and status.", ["route", "status"], registry=r
        )
        self.latency = Histogram(
            "finslm_request_seconds",
            "Time from request start to the last response byte, by route.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.errors = Counter(
            "finslm_errors", "Error responses (4xx/5xx) by route and status.", ["route", "status"],
            registry=r,
        )  # fmt: skip
        self.batch_size = Histogram(
            "finslm_batch_size", "Texts per model call.", buckets=BATCH_BUCKETS, registry=r
        )
        self.batch_seconds = Histogram(
            "finslm_batch_seconds", "Seconds per model call.", buckets=LATENCY_BUCKETS, registry=r
        )
        self.texts = Counter("finslm_texts", "Texts classified.", registry=r)
        self.truncated = Counter(
            "finslm_truncated_texts",
            "Texts longer than the model's max tokens (scored on their first part).",
            registry=r,
        )
        self.queue = Gauge("finslm_queue_texts", "Texts waiting for the model.", registry=r)
        self.ready = Gauge("finslm_ready", "1 when the model is loaded and warm.", registry=r)
        self.model = Info("finslm_model", "The served model.", registry=r)

    def set_model(self, info: dict[str, Any]) -> None:
        self.model.info({k: str(v) for k, v in info.items()})

    def observe_batch(self, n_texts: int, seconds: float) -> None:
        self.batch_size.observe(n_texts)
        self.batch_seconds.observe(seconds)
        self.texts.inc(n_texts)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """ASGI middleware: count and time every HTTP request in ``metrics``.

    The route label is the matched route's template; requests answered before routing (the
    :class:`~finslm.serve.guard.RequestGuard`'s 401/413/415) are labelled by their path when it
    is one of ``known_paths``, anything else as ``other``.
    """

    def __init__(self, app, metrics: ServeMetrics, known_paths: frozenset[str] = frozenset()):
        self.app = app
        self.metrics = metrics
        self.known_paths = known_paths
        self._cache: dict[tuple[str, int], tuple] = {}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # an exception before the response started is a 500 to the client

        async def send_wrapper(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = getattr(scope.get("route"), "path", None)
            if route is None:
                route = scope["path"] if scope["path"] in self.known_paths else "other"
            requests, latency, errors = self._children(route, status)
            requests.inc()
            latency.observe(time.perf_counter() - start)
            if errors is not None:
                errors.inc()

    def _children(self, route: str, status: int):
        """The labelled collectors of (route, status), looked up once (``labels()`` is ~10 µs).

        Bounded: routes are templates or ``other``, statuses are HTTP's few hundred."""
        key = (route, status)
        found = self._cache.get(key)
        if found is None:
            m = self.metrics
            found = (
                m.requests.labels(route, str(status)),
                m.latency.labels(route),
                m.errors.labels(route, str(status)) if status >= 400 else None,
            )
            self._cache[key] = found
        return found
