"""The Ray Serve application as an import path, for ``serve run`` and KubeRay's ``RayService``.

    FINSLM_MODEL=/model FINSLM_REPLICAS=4 serve run finslm.serve.ray_app:app

Ray imports an application by name, with no command line of ours in between, so the options
come from the environment: ``FINSLM_MODEL`` (default ``exports/minilm``), ``FINSLM_BACKEND``
(``auto``), ``FINSLM_REPLICAS`` (1), ``FINSLM_THREADS`` (0), ``FINSLM_MAX_BATCH`` (32),
``FINSLM_MAX_WAIT_MS`` (0), ``FINSLM_DEVICE`` (``cpu``), and ``FINSLM_API_KEY`` as for
``finslm serve``; every limit of :class:`~finslm.serve.settings.ServeSettings` as
``FINSLM_<NAME>`` (``FINSLM_MAX_TEXTS``, ``FINSLM_MAX_CHARS``, ``FINSLM_MAX_WORDS``,
``FINSLM_MAX_QUEUE``, ``FINSLM_REQUEST_TIMEOUT_S``, …). A bad value fails at import, naming the
variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from finslm.serve.ray_serve import build_app
from finslm.serve.settings import ServeSettings, env_number


def app_from_env(env: Mapping[str, str] = os.environ):
    return build_app(
        Path(env.get("FINSLM_MODEL", "exports/minilm")),
        env.get("FINSLM_BACKEND", "auto"),
        ServeSettings.from_env(env),
        replicas=env_number(env, "FINSLM_REPLICAS", int, 1),
        threads=env_number(env, "FINSLM_THREADS", int, 0),
        device=env.get("FINSLM_DEVICE", "cpu"),
    )


app = app_from_env()
