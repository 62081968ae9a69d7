"""Serve a finslm model over HTTP: FastAPI app, micro-batching, limits, metrics, Ray Serve.

    finslm serve --model exports/minilm                  # ONNX INT8 on 127.0.0.1:8000
    curl -s localhost:8000/v1/classify -H 'Content-Type: application/json' \\
         -d '{"texts": ["Operating profit rose 12%."]}'

Modules, one per responsibility:

- ``settings``: :class:`ServeSettings`, every limit and batching knob;
- ``batching``: the micro-batcher that groups concurrent requests into model calls;
- ``schemas``, ``errors``, ``guard``: request validation and one JSON error shape;
- ``metrics``: Prometheus collectors; ``modelinfo``: what ``GET /v1/model`` reports;
- ``explain``: ``POST /v1/explain`` on :mod:`finslm.explain`;
- ``app``: :func:`create_app`; ``server``: uvicorn; ``ray_serve``: the same app on Ray Serve;
- ``loadtest``: the bounded localhost load test behind ``make loadtest``.

Importing this package imports nothing heavy; FastAPI is imported by the modules that need it.
"""

from finslm.serve.settings import ServeSettings

__all__ = ["ServeSettings", "create_app"]


def create_app(predictor, settings=None, runner=None):
    """See :func:`finslm.serve.app.create_app` (imported on first use: FastAPI is optional)."""
    from finslm.serve.app import create_app as _create_app

    return _create_app(predictor, settings, runner)
