"""serve/locustfile.py against real servers (uvicorn in a thread): the route it picks, the
failures it counts and the exit status a CI job would gate on. Slow: each run starts Locust."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from finslm.serve import ServeSettings, create_app

from ..fake_tagger import FakeTagger
from .conftest import running_server

pytestmark = pytest.mark.slow

LOCUSTFILE = Path(__file__).resolve().parents[2] / "serve" / "locustfile.py"


def _locust(url: str, tmp_path: Path, *extra: str, env: dict | None = None):
    """Run Locust headless for 3 s with 2 users; (exit status, output, per-name stats rows)."""
    prefix = tmp_path / "load"
    args = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--host", url, "--headless"]
    args += ["-u", "2", "-r", "2", "-t", "3s", "--csv", str(prefix), "--only-summary", *extra]
    run_env = {k: v for k, v in os.environ.items() if k != "FINSLM_API_KEY"} | (env or {})
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120, env=run_env)
    stats = {}
    if Path(f"{prefix}_stats.csv").is_file():
        with open(f"{prefix}_stats.csv", newline="") as fh:
            stats = {row["Name"]: row for row in csv.DictReader(fh)}
    return proc.returncode, proc.stdout + proc.stderr, stats


def test_a_classifier_is_loaded_on_classify_without_failures(served_predictor, tmp_path):
    texts = tmp_path / "texts.jsonl"
    texts.write_text('{"text": "Sales rose 4%."}\n\n{"text": "Orders fell."}\n', encoding="utf-8")
    with running_server(create_app(served_predictor, ServeSettings(max_batch=4))) as server:
        code, out, stats = _locust(
            server.url, tmp_path, "--texts", str(texts), "--texts-per-request", "2"
        )
    assert code == 0, out
    assert int(stats["/v1/classify"]["Request Count"]) > 10
    assert stats["Aggregated"]["Failure Count"] == "0"
    assert stats["/v1/model"]["Request Count"] == "2"  # once per user


def test_a_tagger_is_loaded_on_entities(tmp_path):
    with running_server(create_app(FakeTagger(tmp_path), ServeSettings())) as server:
        code, out, stats = _locust(server.url, tmp_path)  # the embedded sample's sentences
    assert code == 0, out
    assert int(stats["/v1/entities"]["Request Count"]) > 10 and "/v1/classify" not in stats


def test_refused_requests_fail_the_run_with_the_servers_reason(served_predictor, tmp_path):
    settings = ServeSettings(api_key="s3cret", max_texts=4)
    with running_server(create_app(served_predictor, settings)) as server:
        code, out, stats = _locust(server.url, tmp_path)  # no key
        assert code == 1 and "401: Authorization: missing or wrong API key" in out
        assert stats["Aggregated"]["Failure Count"] == stats["Aggregated"]["Request Count"]
        key = {"FINSLM_API_KEY": "s3cret"}
        code, out, _ = _locust(server.url, tmp_path, "--texts-per-request", "5", env=key)
        assert code == 1 and "422: texts: 5 items; the limit is 4 per request" in out
        code, out, _ = _locust(server.url, tmp_path, env=key)
        assert code == 0, out


def test_a_bad_texts_file_stops_locust_with_its_name(tmp_path):
    wrong = tmp_path / "news.csv"
    wrong.write_text("headline\nSales rose.\n", encoding="utf-8")
    code, out, _ = _locust("http://127.0.0.1:9", tmp_path, "--texts", str(wrong))
    assert code != 0 and f"--texts {wrong}: no column 'text'" in out
