"""HTTP edge cases the guard and the settings must keep: auth scheme case, +json media types,
the method check on the fast path, the port range, the exposure warning."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest


def _fake_predictor(tmp: Path):
    from finslm.labels import LABELS
    from finslm.predict import Predictor

    class Fixed(Predictor):
        backend = "fixed"

        def _predict_batch(self, texts):
            out = np.zeros((len(texts), len(LABELS)), dtype=np.float32)
            out[:, 1] = 1.0
            return out

        def files(self):
            return []

        def num_parameters(self):
            return 1

    return Fixed(tmp, {"labels": list(LABELS), "name": "fixed"})


def _client(tmp_path, **settings):
    from fastapi.testclient import TestClient

    from finslm.serve import ServeSettings, create_app

    return TestClient(create_app(_fake_predictor(tmp_path), ServeSettings(**settings)))


def test_bearer_scheme_is_case_insensitive(tmp_path, monkeypatch):
    """The auth scheme is case-insensitive (RFC 7235): "bearer <key>" is accepted, not a 401."""
    with _client(tmp_path, api_key="s3cret") as c:
        r = c.post(
            "/v1/classify", json={"texts": ["Sales fell."]},
            headers={"Authorization": "bearer s3cret"},
        )  # fmt: skip
        assert r.status_code == 200, r.text


def test_structured_json_media_type_is_accepted(tmp_path):
    """A structured-syntax JSON media type (application/<x>+json) is JSON, not a 415."""
    with _client(tmp_path) as c:
        r = c.post(
            "/v1/classify",
            content=json.dumps({"texts": ["Sales fell."]}),
            headers={"content-type": "application/vnd.api+json"},
        )
        assert r.status_code == 200, r.text


def test_put_to_classify_is_405_not_answered(tmp_path):
    """The fast path answers POST only: a PUT with a valid body is the route's 405, not a 200."""
    with _client(tmp_path) as c:
        r = c.put("/v1/classify", json={"texts": ["Sales fell."]})
        assert r.status_code == 405 and r.json()["error"]["type"] == "method_not_allowed"


def test_port_above_65535_is_refused():
    """Ports run 0 to 65535."""
    from finslm.serve.settings import ServeSettings, SettingError

    ServeSettings(port=65535)
    with pytest.raises(SettingError, match="port=65536: must be 0 to 65535"):
        ServeSettings(port=65536)


def test_public_address_without_key_warns():
    """Any address other than loopback without an API key warns (a LAN or public IP, "::", a
    host name), not only 0.0.0.0."""
    from finslm.serve.settings import ServeSettings

    for host in ("192.168.1.20", "::", "myhost.example"):
        warning = ServeSettings(host=host).exposure_warning()
        assert warning and warning.startswith(f"serving on {host}:8000 with no API key")
