"""The load-test client is bounded (requests and time) and counts errors; the report renders."""

from __future__ import annotations

import asyncio
import os

import pytest

from finslm.serve import ServeSettings, create_app
from finslm.serve.loadtest import (
    TARGET_HOST,
    batch_stats,
    drive,
    markdown,
    parse_policy,
    resolve_client,
    wrk_available,
    wrk_drive,
)

from .conftest import running_server


def test_drive_stops_at_max_requests_and_counts_errors(gated):
    app = create_app(gated, ServeSettings(warmup=False, max_chars=5, max_batch=1))
    with running_server(app) as server:
        ok = asyncio.run(drive(server.url, ["ab", "abc"], 4, 30.0, max_requests=25))
        texts, calls = batch_stats(server.url)
        # Every text is over max_chars: each request is a 422, counted as an error.
        bad = asyncio.run(drive(server.url, ["too long"], 2, 0.3, max_requests=1000))
    assert ok["requests"] == 25 and ok["errors"] == 0 and ok["seconds"] < 30
    assert ok["p50_ms"] > 0 and ok["requests_per_s"] > 0
    assert calls >= 25 and texts == calls  # max_batch=1: one text per model call
    assert bad["errors"] == bad["requests"] > 0 and bad["error_kinds"] == {"422": bad["requests"]}
    assert TARGET_HOST == "127.0.0.1"


# CI (CI=true; .ci/run installs wrk) runs it, so a missing wrk fails there instead of skipping.
@pytest.mark.skipif(
    not os.environ.get("CI") and not wrk_available(),
    reason="wrk is not installed (apt-get install wrk); CI runs this",
)
def test_wrk_client_posts_real_texts_and_counts_errors(gated):
    app = create_app(gated, ServeSettings(warmup=False, max_chars=5, max_batch=1))
    texts = ["ab", "abc", "café", 'a"b']  # JSON escapes and non-ASCII survive the Lua side
    with running_server(app) as server:
        ok = wrk_drive(server.url, texts, 2, 1.0, max_requests=40)
        seen = {t for call in gated.calls for t in call}
        bad = wrk_drive(server.url, ["too long"], 1, 1.0, max_requests=10)
    assert 0 < ok["requests"] <= 80 and ok["errors"] == 0 and ok["client"] == "wrk"
    assert ok["p50_ms"] > 0 and ok["sentences_per_s"] > 0 and ok["seconds"] >= 0.9
    assert seen == set(texts)  # every sentence was sent, byte for byte
    assert bad["errors"] == bad["requests"] > 0
    assert bad["error_kinds"] == {"status": bad["requests"]}
    with pytest.raises(ValueError, match="only targets 127.0.0.1"):
        wrk_drive("http://example.com:80", texts, 1, 1.0)
    assert resolve_client("auto") == "wrk" and resolve_client("aiohttp") == "aiohttp"


def test_paired_c1_alternates_offline_and_served_timing(gated):
    from finslm.serve.loadtest import paired_c1

    app = create_app(gated, ServeSettings(warmup=False, max_batch=1))
    with running_server(app) as server:
        r = paired_c1(server.url, gated, ["ab", "abc"], "aiohttp", rounds=2, seconds=0.2)
    assert len(r["offline_p50_ms"]) == len(r["served_p50_ms"]) == r["rounds"] == 2
    assert all(s > o > 0 for s, o in zip(r["served_p50_ms"], r["offline_p50_ms"], strict=True))
    assert r["p50_minus_offline_ms"] > 0  # HTTP costs something over a direct call


def test_policy_parsing_and_report():
    assert parse_policy("32:2.5") == (32, 2.5, None) and parse_policy("8") == (8, 0.0, None)
    assert parse_policy("32:0:0") == (32, 0.0, 0.0)
    level = {
        "requests_per_s": 10.0, "sentences_per_s": 10.0, "p50_ms": 1.0, "p95_ms": 2.0,
        "p99_ms": 3.0, "errors": 0, "mean_batch": 1.0,
    }  # fmt: skip
    result = {
        "variant": "m/onnx-int8",
        "texts": {"source": "data/sample/sentences.csv", "n": 3},
        "duration_s": 1.0,
        "env": {"cpu": "cpu", "cpu_count": 2, "threads": 0},
        "policies": [
            {
                "max_batch": 1,
                "max_wait_ms": 0.0,
                "label_agreement_with_predict": 1.0,
                "offline": {
                    "p50_ms": 1.0,
                    "sentences_per_s_bs1": 900.0,
                    "sentences_per_s_bs32": 1000.0,
                    "best_sentences_per_s": 1000.0,
                },  # fmt: skip
                "levels": {"1": level},
                "bars": {
                    "zero_errors": True,
                    "c32_over_offline_best": None,
                    "c1_p50_minus_offline_p50_ms": 0.0,
                },
            }
        ],
    }
    md = markdown(result)
    assert "# Serving load test: `m/onnx-int8`" in md
    assert "| 1 | 10 | 10 | 1.00 | 2.00 | 3.00 | 0 | 1.0 | ? |" in md


def test_repeated_runs_are_summarised_as_medians():
    from finslm.serve.loadtest import summarise

    def one(sps: float, p50: float, errors: int = 0) -> dict:
        level = {
            "concurrency": 32, "client": "wrk", "sentences_per_s": sps, "requests_per_s": sps,
            "p50_ms": p50, "p95_ms": p50, "p99_ms": p50, "errors": errors, "mean_batch": 8.0,
            "error_kinds": {"status": errors} if errors else {}, "client_cpu_ms_per_request": 0.04,
        }  # fmt: skip
        return {
            "max_batch": 32, "max_wait_ms": 0.0, "call_cost_tokens": 32.0,
            "label_agreement_with_predict": 1.0 - errors / 100, "label_mismatches": [errors],
            "offline": {"variant": "m/onnx-int8", "p50_ms": 3.0, "best_sentences_per_s": 100.0},
            "levels": {"32": level},
            "bars": {"zero_errors": errors == 0, "c32_over_offline_best": sps / 100,
                     "c1_p50_minus_offline_p50_ms": None},
            "server_exit_code": 0,
        }  # fmt: skip

    s = summarise([one(80, 5), one(90, 4, errors=1), one(85, 6)])
    assert s["levels"]["32"]["sentences_per_s"] == 85 and s["levels"]["32"]["p50_ms"] == 5
    assert s["levels"]["32"]["errors"] == 1 and s["levels"]["32"]["client"] == "wrk"
    assert s["levels"]["32"]["error_kinds"] == {"status": 1}
    assert s["bars"]["c32_over_offline_best"] == 0.85 and s["bars"]["zero_errors"] is False
    assert s["bars"]["c1_p50_minus_offline_p50_ms"] is None and s["runs"] == 3
    assert s["label_agreement_with_predict"] == 0.99 and s["label_mismatches"] == [0, 1]
    assert summarise([one(80, 5)])["levels"]["32"]["p50_ms"] == 5  # one run: as it is
