"""Fixtures for the serving tests: the tiny INT8 export behind the app, and a blockable model."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

import numpy as np
import pytest

from finslm.labels import LABELS
from finslm.predict import Predictor, load_predictor


@pytest.fixture(scope="session")
def served_predictor(tiny_export):
    folder, _ = tiny_export
    return load_predictor(folder, "onnx-int8", threads=1)


@pytest.fixture(scope="session")
def served_fp32(tiny_export):
    """The fp32 optimised graph: batch-invariant answers (INT8's depend on batch-mates)."""
    folder, _ = tiny_export
    return load_predictor(folder, "onnx-opt", threads=1)


class GatedPredictor(Predictor):
    """A Predictor whose calls wait for ``gate`` (to hold requests in flight) and are recorded.

    Answers are fixed per text length, so tests can check which row went to which text.
    """

    backend = "gated"

    def __init__(self, tmp: Path):
        super().__init__(tmp, {"labels": list(LABELS), "name": "gated"})
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.calls: list[list[str]] = []

    def _predict_batch(self, texts: list[str]) -> np.ndarray:
        self.entered.set()
        self.calls.append(list(texts))
        assert self.gate.wait(10), "test never opened the gate"
        out = np.zeros((len(texts), len(LABELS)), dtype=np.float32)
        for i, text in enumerate(texts):
            out[i, len(text) % len(LABELS)] = 1.0
        return out

    def files(self) -> list[Path]:
        return []

    def num_parameters(self) -> int:
        return 1


@pytest.fixture
def gated(tmp_path) -> GatedPredictor:
    return GatedPredictor(tmp_path)


@contextlib.contextmanager
def running_server(app):
    """``app`` on a real uvicorn server in a thread, on a free 127.0.0.1 port; yields it."""
    import time

    import uvicorn

    from finslm.serve.loadtest import free_port

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    server.url = f"http://127.0.0.1:{port}"
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(200):
            if server.started:
                break
            time.sleep(0.05)
        assert server.started, "uvicorn did not start"
        server.thread = thread
        yield server
    finally:
        server.should_exit = True
        thread.join(15)
