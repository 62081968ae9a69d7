"""Run the app with uvicorn: one process, one model, graceful shutdown.

uvicorn's SIGTERM/SIGINT handling gives the drain: it stops accepting connections, waits up to
``shutdown_timeout_s`` for in-flight requests, then runs the app's lifespan shutdown (which
closes the batcher). One worker process: the model already uses every core through
onnxruntime's intra-op threads, so more workers would only multiply memory and contend for the
same cores; scale out with replicas instead (``--engine ray``, or more containers).
"""

from __future__ import annotations

import gc
import logging
from pathlib import Path

from finslm.errors import FinslmError
from finslm.serve.settings import ServeSettings


class AddressError(FinslmError, ValueError):
    """``--host``/``--port`` cannot be bound; the message names the option to change."""


def check_address(host: str, port: int) -> None:
    """ValueError naming the option to change when ``host:port`` cannot be bound, so a busy port
    is said before the model loads (uvicorn would say it after, with no fix)."""
    import errno
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise AddressError(f"--host {host}: not a known address ({exc.strerror})") from None
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            sock.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                why = "is in use (another server?); stop it or choose another --port"
            elif exc.errno == errno.EACCES:
                why = "needs privileges (ports below 1024); choose --port 1024 or above"
            elif exc.errno == errno.EADDRNOTAVAIL:
                why = "is not an address of this machine; use 127.0.0.1, 0.0.0.0 or its own"
            else:
                why = f"cannot be bound ({exc.strerror})"
            raise AddressError(f"--host {host} --port {port}: {host}:{port} {why}") from None


def load(model: Path, backend: str = "auto", threads: int = 0, device: str = "cpu"):
    """The Predictor for ``model``/``backend`` (ModelError with the fix when it cannot load);
    a token classifier's folder gives a :class:`~finslm.ner.predict.Tagger`, which the app
    serves on ``/v1/entities``."""
    from finslm.tasks import load_model

    return load_model(model, backend, threads=threads, device=device)


def run_uvicorn(predictor, settings: ServeSettings, log_level: str = "info") -> None:
    """Serve ``predictor`` on ``settings.host:port`` until SIGTERM/SIGINT."""
    import uvicorn

    from finslm.serve.app import create_app

    level = 5 if log_level.lower() == "trace" else log_level.upper()  # uvicorn's TRACE is 5
    logging.basicConfig(level=level, format="%(levelname)s:     %(message)s")
    if warning := settings.exposure_warning():
        logging.getLogger("finslm.serve").warning(warning)
    app = create_app(predictor, settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        access_log=False,  # per-request lines cost ~10% throughput; /metrics counts requests
        timeout_graceful_shutdown=int(settings.shutdown_timeout_s),
        server_header=False,
    )
    # Everything loaded so far (libraries, the model, the app) lives as long as the process:
    # out of the cyclic GC's generations, so collections stay short while serving.
    gc.collect()
    gc.freeze()
    uvicorn.Server(config).run()
