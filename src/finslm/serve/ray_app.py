"""The Ray Serve application as an import path, for ``serve run`` and KubeRay's ``RayService``.

    FINSLM_MODEL=/model FINSLM_REPLICAS=4 serve run finslm.serve.ray_app:app

Ray imports an application by name, with no command line of ours in between, so the options
come from the environment: ``FINSLM_MODEL`` (default ``exports/minilm``), ``FINSLM_BACKEND``
(``auto``), ``FINSLM_REPLICAS`` (1), ``FINSLM_THREADS`` (0), ``FINSLM_MAX_BATCH`` (32),
``FINSLM_MAX_WAIT_MS`` (0), and ``FINSLM_API_KEY`` as for ``finslm serve``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from finslm.serve.ray_serve import build_app
from finslm.serve.settings import API_KEY_ENV, ServeSettings


def app_from_env(env: Mapping[str, str] = os.environ):
    settings = ServeSettings(
        api_key=env.get(API_KEY_ENV) or None,
        max_batch=int(env.get("FINSLM_MAX_BATCH", "32")),
        max_wait_ms=float(env.get("FINSLM_MAX_WAIT_MS", "0")),
    )
    return build_app(
        Path(env.get("FINSLM_MODEL", "exports/minilm")),
        env.get("FINSLM_BACKEND", "auto"),
        settings,
        replicas=int(env.get("FINSLM_REPLICAS", "1")),
        threads=int(env.get("FINSLM_THREADS", "0")),
    )


app = app_from_env()
