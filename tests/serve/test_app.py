"""The HTTP contract of ``create_app`` on the tiny INT8 export (FastAPI TestClient, no server).

Every answer is compared with the Predictor it serves; every bad input must get its 4xx with a
JSON error naming the field (and index), never a 500.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import threading

import numpy as np
import pytest
from fastapi.testclient import TestClient

from finslm.explain.words import split_words
from finslm.labels import LABELS
from finslm.serve import ServeSettings, create_app

from ..conftest import invented_sentences
from .conftest import running_server

TEXTS = [t for t, _ in invented_sentences(1)] + ["Short.", "Umsatz stieg um 5 % – café, 株式."]
# max_batch=1: INT8 answers equal the Predictor at batch 1 exactly.
SMALL = ServeSettings(
    max_batch=1, max_texts=4, max_chars=80, max_body_bytes=2000, explain_max_chars=60
)


@pytest.fixture(scope="module")
def client(served_predictor):
    with TestClient(create_app(served_predictor, SMALL)) as c:
        yield c


def post(client, path, body, **kwargs):
    return client.post(path, content=body, headers={"content-type": "application/json"}, **kwargs)


def test_classify_matches_the_predictor(client, served_predictor):
    texts = TEXTS[:4]
    r = client.post("/v1/classify", json={"texts": texts})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == served_predictor.name and body["labels"] == list(LABELS)
    expected = served_predictor.predict_proba(texts, batch_size=1)
    got = np.array([[res["scores"][label] for label in LABELS] for res in body["results"]])
    # Dynamic INT8 scales activations per batch: batch-1 and batched answers differ slightly.
    np.testing.assert_allclose(got, expected, atol=2e-2)
    assert [res["label"] for res in body["results"]] == served_predictor.predict(texts, 1)
    assert list(body["results"][0]["scores"]) == list(LABELS)  # classes in the model's order


def test_a_text_over_the_models_max_tokens_is_flagged_and_counted(served_predictor):
    limit = served_predictor.max_tokens
    long = "a b c d e f g h " * (limit // 8 + 1)  # one token per letter: over the limit
    settings = ServeSettings(max_chars=len(long) + 10)
    with TestClient(create_app(served_predictor, settings)) as c:
        r = c.post("/v1/classify", json={"texts": ["Sales fell.", long, "x" * (limit - 3)]})
        assert r.status_code == 200, r.text
        results = r.json()["results"]
        assert [res.get("truncated", False) for res in results] == [False, True, False]
        assert "finslm_truncated_texts_total 1.0" in c.get("/metrics").text
    assert served_predictor.truncated([long]).tolist() == [True]


def test_concurrent_requests_are_batched_and_answered_in_order(served_fp32):
    settings = ServeSettings(max_batch=8, max_wait_ms=50)
    app = create_app(served_fp32, settings)  # fp32: batching must not change any answer
    answers: dict[int, list[str]] = {}
    with TestClient(app) as c:
        before = c.get("/metrics").text

        def ask(i: int) -> None:
            r = c.post("/v1/classify", json={"texts": [TEXTS[i]]})
            answers[i] = [res["label"] for res in r.json()["results"]]

        threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(TEXTS))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        after = c.get("/metrics").text
    assert [answers[i][0] for i in range(len(TEXTS))] == served_fp32.predict(TEXTS, 1)
    # 8 concurrent single-text requests and a 50 ms window: some model call took more than one.
    assert _bucket(after, "finslm_batch_size_bucket", "1.0") < _count(after, "finslm_batch_size")
    assert "finslm_batch_size_count" in before


def _count(text: str, name: str) -> float:
    return float(next(ln.split()[-1] for ln in text.splitlines() if ln.startswith(f"{name}_count")))


def _bucket(text: str, name: str, le: str) -> float:
    line = next(ln for ln in text.splitlines() if ln.startswith(f'{name}{{le="{le}"}}'))
    return float(line.split()[-1])


def test_model_info(served_predictor, tiny_export, tmp_path):
    metrics = tmp_path / "tiny.json"
    metrics.write_text(json.dumps({"test": {"accuracy": 0.5, "n": 3}}), encoding="utf-8")
    settings = ServeSettings(eval_metrics=metrics)
    with TestClient(create_app(served_predictor, settings)) as c:
        body = c.get("/v1/model").json()
    assert body["name"] == served_predictor.name and body["backend"] == "onnx-int8"
    assert body["task"] == "text-classification"
    assert body["labels"] == list(LABELS)
    assert body["parameters"] == served_predictor.num_parameters() > 0
    assert body["checksum"].startswith("sha256:") and len(body["checksum"]) == 7 + 64
    assert "model.int8.onnx" in body["files"]
    assert body["test_metrics"] == {"accuracy": 0.5, "n": 3}
    assert body["settings"]["max_batch"] == 32 and "api_key" not in body["settings"]


def test_health_ready_metrics_docs(served_predictor):
    app = create_app(served_predictor, SMALL)
    bare = TestClient(app)  # no lifespan: loaded but not warmed, so not ready
    assert bare.get("/healthz").json() == {"status": "ok"}
    assert bare.get("/readyz").status_code == 503
    assert bare.head("/readyz").status_code == 503
    with TestClient(app) as c:
        assert c.get("/readyz").status_code == 200
        for path in ("/healthz", "/readyz", "/v1/model", "/metrics"):  # monitors probe with HEAD
            head = c.head(path)
            assert head.status_code == 200 and head.content == b"", path
        assert c.head("/v1/classify").status_code == 405
        c.post("/v1/classify", json={"texts": ["Sales fell."]})
        c.post("/v1/classify", json={"texts": []})
        c.post("/v1/classify", json={"texts": ["Costs rose.", "Orders held."]})
        text = c.get("/metrics").text
        assert c.get("/openapi.json").json()["paths"]["/v1/classify"]["post"]
        assert c.get("/docs").status_code == 200
    assert 'finslm_requests_total{route="/v1/classify",status="200"} 2.0' in text
    assert "finslm_texts_total 3.0" in text  # texts, not requests; the warm-up does not count
    assert 'finslm_errors_total{route="/v1/classify",status="422"} 1.0' in text
    assert 'finslm_request_seconds_bucket{le="0.005",route="/v1/classify"}' in text
    assert "finslm_batch_size_count" in text and "finslm_ready 1.0" in text
    assert 'finslm_model_info{backend="onnx-int8",checksum="sha256:' in text


LONG = "x" * 81
BAD_INPUTS = [
    # (id, body bytes, content type, status, error type, field, index)
    ("too-many-texts", json.dumps({"texts": ["a"] * 5}), None, 422, "too_long", "texts", None),
    ("text-too-long", json.dumps({"texts": ["ok", LONG]}), None, 422, "string_too_long", "texts", 1),
    ("empty-list", '{"texts": []}', None, 422, "too_short", "texts", None),
    ("empty-text", '{"texts": ["fine", ""]}', None, 422, "string_too_short", "texts", 1),
    ("blank-text", '{"texts": ["fine", " \\t\\n "]}', None, 422, "blank_text", "texts", 1),
    ("non-string", '{"texts": ["fine", 3]}', None, 422, "string_type", "texts", 1),
    ("null-text", '{"texts": [null]}', None, 422, "string_type", "texts", 0),
    ("texts-not-list", '{"texts": "one"}', None, 422, "list_type", "texts", None),
    ("unknown-field", '{"texts": ["a"], "text": "b"}', None, 422, "extra_forbidden", "text", None),
    # A misspelled field is named, not the required one it leaves missing.
    ("misspelled-field", '{"text": "a"}', None, 422, "extra_forbidden", "text", None),
    ("missing-field", "{}", None, 422, "missing", "texts", None),
    ("lone-surrogate", '{"texts": ["\\ud800"]}', None, 422, "invalid_unicode", "texts", 0),
    ("not-an-object", '["a"]', None, 422, "model_attributes_type", "body", None),
    ("malformed-json", '{"texts": ["a",', None, 422, "json_invalid", "body", None),
    ("empty-body", "", None, 422, "missing", "body", None),
    ("invalid-utf8", b'{"texts": ["caf\xe9"]}', None, 400, "invalid_utf8", "body", None),
    # UTF-16 without a byte-order mark is valid UTF-8 byte by byte (NULs), not UTF-8 JSON.
    ("utf16-no-bom", '{"texts": ["a"]}'.encode("utf-16-le"), None, 400, "invalid_utf8", "body", None),
    # Big-endian: the first byte is the NUL (byte 0, not 1).
    ("utf16-be", '{"texts": ["a"]}'.encode("utf-16-be"), None, 400, "invalid_utf8", "body", None),
    ("utf32-le", '{"texts": ["a"]}'.encode("utf-32-le"), None, 400, "invalid_utf8", "body", None),
    ("wrong-type", '{"texts": ["a"]}', "text/plain", 415, "unsupported_media_type", "Content-Type", None),
    ("form", "texts=a", "application/x-www-form-urlencoded", 415, "unsupported_media_type", "Content-Type", None),
    ("latin1", '{"texts": ["a"]}', "application/json; charset=latin-1", 415, "unsupported_media_type", "Content-Type", None),
    ("too-large", json.dumps({"texts": ["y" * 3000]}), None, 413, "body_too_large", "body", None),
    # Texts with nothing to classify: controls, zero-width and format characters, lone marks.
    ("nul-only", '{"texts": ["ok", "\\u0000"]}', None, 422, "blank_text", "texts", 1),
    ("zero-width", '{"texts": ["\\u200b\\u200b"]}', None, 422, "blank_text", "texts", 0),
    ("bom-only", '{"texts": ["\\ufeff"]}', None, 422, "blank_text", "texts", 0),
    ("marks-only", '{"texts": ["\\u0301\\u0301"]}', None, 422, "blank_text", "texts", 0),
]  # fmt: skip


@pytest.mark.parametrize(
    "body, content_type, status, kind, field, index",
    [case[1:] for case in BAD_INPUTS],
    ids=[case[0] for case in BAD_INPUTS],
)
def test_bad_input_gets_a_4xx_naming_the_field(
    client, body, content_type, status, kind, field, index
):
    r = client.post(
        "/v1/classify", content=body, headers={"content-type": content_type or "application/json"}
    )
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    error = r.json()["error"]
    assert (error["type"], error["field"], error["index"]) == (kind, field, index)
    assert field in error["message"] or field == "body"
    if index is not None:
        assert f"{field}[{index}]" in error["message"]


@pytest.mark.parametrize("path", ["/v1/classify", "/v1/explain"])
def test_deeply_nested_json_and_huge_numbers_are_4xx_not_500(served_predictor, path):
    # Python's JSON parser recurses per nesting level; 20,000 levels (40 kB) exhaust it.
    body = '{"texts": ' + "[" * 20_000 + "]" * 20_000 + "}"
    settings = ServeSettings(max_body_bytes=100_000)
    with TestClient(create_app(served_predictor, settings)) as c:
        r = post(c, path, body)
        assert r.status_code == 400, r.text
        error = r.json()["error"]
        assert error["type"] == "json_too_deep" and "nested too deeply" in error["message"]
        assert post(c, "/v1/classify", '{"texts": ["Sales rose."]}').status_code == 200
        # An integer past Python's 4,300-digit parse limit: malformed JSON, not a vague 400.
        r = post(c, path, '{"texts": [' + "9" * 5000 + "]}")
        assert r.status_code == 422 and r.json()["error"]["type"] == "json_invalid", r.text
        assert "4300 digits" in r.json()["error"]["message"]
        assert "sys.set_int_max_str_digits" not in r.json()["error"]["message"]


def test_blank_text_message_says_what_to_send(client):
    r = post(client, "/v1/explain", '{"text": "   "}')
    assert r.status_code == 422
    assert r.json()["error"]["message"] == (
        "text: blank text (no letter, digit, punctuation or symbol: only spaces, zero-width or "
        "control characters); send at least one visible character"
    )
    ok = post(client, "/v1/classify", '{"texts": ["  padded text  "]}')
    assert ok.status_code == 200  # surrounding spaces are fine; only a blank text is refused
    # One visible character is enough, in any script, and a symbol or digit counts.
    for text in ("€", "7", "é", "\u4e2d\u200b", "!"):
        r = client.post("/v1/classify", json={"texts": [text]})
        assert r.status_code == 200, (text, r.text)


def test_the_server_and_bulk_scoring_agree_on_what_is_blank():
    """schemas.NOT_BLANK (a Rust-regex pattern, checked inside pydantic) and
    finslm.visible.has_content (Python, for bulk and the CLI) are the same rule."""
    import sys
    import unicodedata

    from pydantic import BaseModel, Field, ValidationError

    from finslm.serve.schemas import NOT_BLANK
    from finslm.visible import has_content

    class One(BaseModel):
        text: str = Field(pattern=NOT_BLANK)

    step = 7  # every 7th code point below U+30000 (surrogates excluded): all categories occur
    for code in range(0, min(sys.maxunicode, 0x30000), step):
        if 0xD800 <= code <= 0xDFFF or unicodedata.category(chr(code)) == "Cn":
            continue  # surrogates; unassigned in Python's Unicode (the regex's may be newer)
        char = chr(code)
        try:
            One(text=char)
            accepted = True
        except ValidationError:
            accepted = False
        assert accepted == has_content(char), (hex(code), accepted)


def test_rfc2231_charset_parameter_is_read_not_a_500(client):
    """charset*=utf-8''utf-8 (RFC 2231) parses to a tuple in the email module; it is accepted
    when it says UTF-8 and is a 415 naming the charset otherwise."""
    body = b'{"texts": ["Sales rose."]}'
    ok = client.post(
        "/v1/classify",
        content=body,
        headers={"content-type": "application/json; charset*=utf-8''utf-8"},
    )
    assert ok.status_code == 200, ok.text
    bad = client.post(
        "/v1/classify",
        content=body,
        headers={"content-type": "application/json; charset*=utf-8''latin-1"},
    )
    assert bad.status_code == 415 and "charset 'latin-1'" in bad.json()["error"]["message"]
    odd = client.post(
        "/v1/classify", content=body, headers={"content-type": "application/json;charset*0*=x"}
    )
    assert odd.status_code == 415, odd.text


def test_trailing_slash_is_a_404_naming_the_route_not_a_redirect(client):
    r = client.post("/v1/classify/", json={"texts": ["a"]}, follow_redirects=False)
    assert r.status_code == 404 and "location" not in r.headers
    assert "did you mean /v1/classify (no trailing slash)?" in r.json()["error"]["message"]


def test_a_body_that_stops_arriving_is_408_and_the_connection_closes(served_predictor):
    """A client that sends part of its body and stalls gets 408 after body_timeout_s instead
    of holding the connection (and a worker's file descriptor) open."""
    import socket

    settings = ServeSettings(body_timeout_s=0.5)
    with running_server(create_app(served_predictor, settings)) as server:
        host, port = server.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(
                b"POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b'Content-Length: 100\r\n\r\n{"texts"'
            )
            reply = b""
            while chunk := sock.recv(4096):  # the server answers, then closes
                reply += chunk
        head, _, body = reply.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408"), reply[:200]
        assert b"connection: close" in head.lower()
        assert json.loads(body)["error"]["type"] == "body_timeout"


def test_a_value_not_allowed_is_shown_in_json_spelling(client):
    r = client.post("/v1/explain", json={"text": "Sales fell.", "method": None})
    assert r.status_code == 422
    assert r.json()["error"]["message"].startswith("method: null is not allowed; expected")
    r = client.post("/v1/explain", json={"text": "Sales fell.", "method": "magic"})
    assert r.json()["error"]["message"].startswith('method: "magic" is not allowed')


def test_limit_errors_name_the_setting(client):
    too_many = client.post("/v1/classify", json={"texts": ["a"] * 5}).json()["error"]["message"]
    assert "the limit is 4 per request (max_texts)" in too_many
    too_long = client.post("/v1/classify", json={"texts": [LONG]}).json()["error"]["message"]
    assert "texts[0]: 81 characters; the limit is 80 (max_chars)" in too_long


def test_compressed_body_is_415_naming_the_encoding(client):
    headers = {"content-type": "application/json", "content-encoding": "gzip"}
    r = client.post("/v1/classify", content=gzip.compress(b'{"texts": ["a"]}'), headers=headers)
    assert r.status_code == 415
    error = r.json()["error"]
    assert error["field"] == "Content-Encoding" and "'gzip' is not supported" in error["message"]


def test_missing_content_type_is_415(client):
    r = client.post("/v1/classify", content=b'{"texts": ["a"]}')
    assert r.status_code == 415 and r.json()["error"]["field"] == "Content-Type"


@pytest.mark.parametrize("streamed", [False, True])
def test_body_limit_is_inclusive(client, streamed):
    """max_body_bytes (2000 here) bytes pass; one more is 413, by Content-Length or streamed."""
    head = b'{"texts": ["Sales fell."]}'
    for size, status in ((2000, 200), (2001, 413)):
        body = head + b" " * (size - len(head))
        content = iter([body[:1000], body[1000:]]) if streamed else body
        r = client.post(
            "/v1/classify", content=content, headers={"content-type": "application/json"}
        )
        assert r.status_code == status, (size, streamed, r.text)


def test_streamed_body_over_the_cap_is_413(client):
    def chunks():
        yield b'{"texts": ["'
        for _ in range(10):
            yield b"z" * 500
        yield b'"]}'

    r = client.post("/v1/classify", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["type"] == "body_too_large"


def test_unknown_route_and_method_are_json(client):
    r = client.get("/v2/classify")
    assert r.status_code == 404 and r.json()["error"]["type"] == "not_found"
    r = client.get("/v1/classify")
    assert r.status_code == 405 and r.json()["error"]["type"] == "method_not_allowed"
    r = client.post("/v1/entities", json={"texts": ["a"]})  # a token classifier's route
    assert r.status_code == 404 and "runs a sentiment classifier" in r.json()["error"]["message"]


def test_api_key(served_predictor, monkeypatch):
    monkeypatch.setenv("FINSLM_TEST_KEY", "s3cret")
    settings = ServeSettings.with_env_key("FINSLM_TEST_KEY")
    with TestClient(create_app(served_predictor, settings)) as c:
        body = {"texts": ["Sales fell."]}
        r = c.post("/v1/classify", json=body)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert r.json()["error"]["field"] == "Authorization"
        bad = {"Authorization": "Bearer nope"}
        assert c.post("/v1/classify", json=body, headers=bad).status_code == 401
        # 401 comes before the body is looked at: an oversized body is still just unauthorised.
        assert post(c, "/v1/classify", b"x" * 5_000_000).status_code == 401
        good = {"Authorization": "Bearer s3cret"}
        assert c.post("/v1/classify", json=body, headers=good).status_code == 200
        assert c.get("/v1/model", headers=good).status_code == 200
        assert c.get("/v1/model").status_code == 401
        assert c.post("/v1/explain", json={"text": "Sales fell."}).status_code == 401
        assert c.get("/healthz").status_code == 200 and c.get("/readyz").status_code == 200
        assert c.get("/metrics").status_code == 200
        # Unknown paths (a scanner's) share one metrics label: a label per path would grow
        # the metrics without bound.
        assert c.get("/wp-admin/x1").status_code == 404
        metrics = c.get("/metrics").text
        assert 'route="other"' in metrics and "wp-admin" not in metrics


def test_no_key_in_the_environment_means_no_auth(served_predictor, monkeypatch):
    monkeypatch.delenv("FINSLM_TEST_KEY", raising=False)
    assert ServeSettings.with_env_key("FINSLM_TEST_KEY").api_key is None
    # An empty FINSLM_API_KEY (a template's blank) is no key, not the empty key.
    assert ServeSettings.from_env({"FINSLM_API_KEY": ""}).api_key is None


def test_the_texts_counter_counts_texts_not_batches():
    from finslm.serve.metrics import ServeMetrics

    metrics = ServeMetrics()
    metrics.observe_batch(5, 0.01)
    metrics.observe_batch(2, 0.01)
    assert "finslm_texts_total 7.0" in metrics.render().decode()


def test_explain_samples_has_a_floor():
    from finslm.serve.settings import SettingError

    with pytest.raises(SettingError, match="explain_samples.*at least 10"):
        ServeSettings(explain_samples=9)
    assert ServeSettings(explain_samples=10).explain_samples == 10


def test_full_queue_is_503_with_retry_after(gated):
    settings = ServeSettings(max_queue=2, max_texts=2, warmup=False)
    with TestClient(create_app(gated, settings)) as c:
        gated.gate.clear()
        first = threading.Thread(
            target=lambda: c.post("/v1/classify", json={"texts": ["ab", "cd"]})
        )
        first.start()
        assert gated.entered.wait(5)
        r = c.post("/v1/classify", json={"texts": ["ef"]})
        gated.gate.set()
        first.join(10)
    assert r.status_code == 503
    assert r.headers["retry-after"] == "1" and r.json()["error"]["type"] == "overloaded"
    assert "(max_queue)" in r.json()["error"]["message"]


def test_request_timeout_is_504(gated):
    settings = ServeSettings(request_timeout_s=0.2, warmup=False)
    with TestClient(create_app(gated, settings)) as c:
        gated.gate.clear()
        r = c.post("/v1/classify", json={"texts": ["slow"]})
        gated.gate.set()
        assert r.status_code == 504 and "(request_timeout_s)" in r.json()["error"]["message"]
        # The server is fine afterwards.
        ok = c.post("/v1/classify", json={"texts": ["abc", "abcd"]}).json()
    assert [res["label"] for res in ok["results"]] == [LABELS[0], LABELS[1]]


def test_explain_lime(client, served_predictor):
    text = "Net profit rose 12 percent."
    r = client.post("/v1/explain", json={"text": text, "method": "lime"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["words"] == [w.text for w in split_words(text)]
    assert len(body["attributions"]) == len(body["words"]) == len(body["spans"])
    assert body["predicted"] == served_predictor.predict([text])[0] == body["target"]
    assert body["method"] == "lime" and body["model"] == served_predictor.name
    assert body["truncated"] is False


def test_explain_says_when_the_model_read_only_the_start(served_predictor):
    long = "a b c d e f g h " * (served_predictor.max_tokens // 8 + 1)
    settings = ServeSettings(explain_max_chars=len(long), explain_samples=10)
    with TestClient(create_app(served_predictor, settings)) as c:
        body = c.post("/v1/explain", json={"text": long, "method": "lime"}).json()
    assert body["truncated"] is True
    # Words past the model's max tokens cannot move its answer: LIME gives them nothing.
    assert all(abs(a) < 1e-9 for a in body["attributions"][served_predictor.max_tokens :])


def test_explain_validation(client):
    r = client.post("/v1/explain", json={"text": "y" * 61})
    assert r.status_code == 422
    assert "(explain_max_chars)" in r.json()["error"]["message"]
    r = client.post("/v1/explain", json={"text": "Sales fell.", "method": "ig"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "method"
    r = client.post("/v1/explain", json={"text": "Sales fell.", "target": "bullish"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "target"
    r = client.post("/v1/explain", json={"texts": ["Sales fell."]})
    assert r.status_code == 422 and r.json()["error"]["type"] == "extra_forbidden"
    assert r.json()["error"]["field"] == "texts"
    r = client.post("/v1/explain", json={"text": "   "})
    assert r.status_code == 422 and r.json()["error"]["field"] == "text"


def test_shutdown_drains_in_flight_requests(gated):
    """uvicorn's SIGTERM path (should_exit) with a request held in the model: it is answered."""
    import time
    import urllib.request

    app = create_app(gated, ServeSettings(warmup=False, shutdown_timeout_s=5))
    answer: dict = {}
    with running_server(app) as server:

        def ask() -> None:
            req = urllib.request.Request(
                f"{server.url}/v1/classify",
                b'{"texts": ["abc"]}',
                {"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(req, timeout=10) as r:
                answer.update(status=r.status, body=json.loads(r.read()))

        gated.gate.clear()
        client = threading.Thread(target=ask)
        client.start()
        try:
            assert gated.entered.wait(5)  # the request is in the model
            server.should_exit = True  # what SIGTERM does
            time.sleep(0.3)
            assert server.thread.is_alive()  # still draining: the answer is not out yet
        finally:
            gated.gate.set()
        client.join(10)
        server.thread.join(10)
        assert not server.thread.is_alive()
    assert answer["status"] == 200 and answer["body"]["results"][0]["label"] == LABELS[0]


def test_valid_classify_takes_the_fast_path_and_answers_the_same_bytes(gated):
    """A valid body skips FastAPI's routing (no dependency runs) and gets the route's answer."""
    from fastapi.responses import JSONResponse

    from finslm.serve.app import _bearer

    app = create_app(gated, ServeSettings(warmup=False, max_texts=4, max_chars=10))
    solved: list[int] = []
    app.dependency_overrides[_bearer] = lambda: solved.append(1)
    texts = ["ab", "abc", "café"]
    with TestClient(app) as c:
        r = c.post("/v1/classify", json={"texts": texts})
        assert solved == []  # answered before FastAPI's routing
        expected = {
            "model": gated.name,
            "labels": list(LABELS),
            "results": [
                {
                    "label": LABELS[len(t) % 3],
                    "scores": {lab: float(i == len(t) % 3) for i, lab in enumerate(LABELS)},
                }
                for t in texts
            ],
        }
        assert r.status_code == 200 and r.content == JSONResponse(expected).body
        assert r.headers["content-type"] == "application/json"
        assert int(r.headers["content-length"]) == len(r.content)
        # What the fast path does not accept goes on to FastAPI, which names the problem.
        r = c.post("/v1/classify", json={"texts": ["abc", "x" * 11]})
        assert r.status_code == 422 and r.json()["error"]["index"] == 1 and solved == [1]
        lone_surrogate = b'{"texts": ["a\\ud800"]}'  # valid JSON, not a valid string to pydantic
        r = post(c, "/v1/classify", lone_surrogate)
        assert r.status_code == 422 and r.json()["error"]["field"] == "texts"
        text = c.get("/metrics").text
    assert 'finslm_requests_total{route="/v1/classify",status="200"} 1.0' in text
    assert 'finslm_requests_total{route="/v1/classify",status="422"} 2.0' in text


def test_a_model_failure_is_a_json_500(gated, monkeypatch):
    def broken(texts):
        raise RuntimeError("engine fell over")

    monkeypatch.setattr(gated, "_predict_batch", broken)
    with TestClient(create_app(gated, ServeSettings(warmup=False))) as c:
        r = c.post("/v1/classify", json={"texts": ["abc"]})
        assert c.get("/healthz").status_code == 200  # the server lives on
    assert r.status_code == 500 and r.headers["content-type"] == "application/json"
    assert r.json()["error"] == {
        "type": "internal",
        "message": "RuntimeError: engine fell over",
        "field": None,
        "index": None,
    }


def test_checksum_covers_names_and_bytes(tmp_path):
    import hashlib

    from finslm.serve.modelinfo import checksum

    a, b = tmp_path / "a.onnx", tmp_path / "b.onnx"
    a.write_bytes(b"x"), b.write_bytes(b"x")
    want = hashlib.sha256(b"a.onnx\0x").hexdigest()
    assert checksum([a]) == f"sha256:{want}" != checksum([b])


@pytest.mark.parametrize(("method", "path", "status"), [("POST", "/v1/nope", 404), ("POST", "/v1/classify/", 404), ("POST", "/v1/model", 405)])  # fmt: skip
def test_a_post_to_no_body_route_is_a_404_or_405_not_a_415(client, method, path, status):
    # No Content-Type: the body checks apply only to routes that take a body.
    r = client.request(method, path, content=b"x")
    assert r.status_code == status, r.text


@pytest.mark.parametrize("header", ["json", ";;;", "application/json, text/plain"])
def test_unsupported_media_type_quotes_the_header_as_sent(client, header):
    r = client.post("/v1/classify", content=b'{"texts": ["a"]}', headers={"content-type": header})
    assert r.status_code == 415 and f"Content-Type {header!r}" in r.json()["error"]["message"]


def test_openapi_documents_the_error_shape_the_server_sends(client):
    spec = client.get("/openapi.json").json()
    responses = spec["paths"]["/v1/classify"]["post"]["responses"]
    assert {"400", "413", "415", "422", "503", "504"} <= set(responses)
    ref = responses["422"]["content"]["application/json"]["schema"]["$ref"]
    assert ref.endswith("/ErrorResponse") and "HTTPValidationError" not in json.dumps(spec)
    r = client.post("/v1/classify", json={"texts": []})  # and a real 422 has that shape
    assert set(r.json()) == {"error"} and set(r.json()["error"]) == set(
        spec["components"]["schemas"]["ErrorDetail"]["properties"]
    )


def test_the_body_cap_grows_with_the_text_limits():
    # JSON may write a character as 12 bytes ("\ud83d\ude00"): a request within max_texts x
    # max_chars must not meet a smaller byte cap first.
    assert ServeSettings().body_limit >= 12 * 64 * 2000
    assert ServeSettings(max_texts=8, max_chars=30_000).body_limit >= 12 * 8 * 30_000
    assert ServeSettings(max_texts=1, max_chars=10).body_limit == 1_048_576  # at least 1 MiB
    assert ServeSettings(max_body_bytes=5000).body_limit == 5000


def test_settings_from_the_environment_name_the_variable():
    # Ray's `serve run finslm.serve.ray_app:app` has no command line: limits come from FINSLM_*.
    env = {"FINSLM_MAX_TEXTS": "8", "FINSLM_MAX_QUEUE": "16", "FINSLM_REQUEST_TIMEOUT_S": "2.5"}
    settings = ServeSettings.from_env({**env, "FINSLM_API_KEY": "k"})
    assert (settings.max_texts, settings.max_queue, settings.request_timeout_s) == (8, 16, 2.5)
    assert settings.api_key == "k" and settings.max_chars == ServeSettings().max_chars
    with pytest.raises(ValueError, match=r"FINSLM_MAX_TEXTS='eight': not an integer"):
        ServeSettings.from_env({"FINSLM_MAX_TEXTS": "eight"})
    with pytest.raises(ValueError, match=r"^FINSLM_MAX_QUEUE=4: must be at least max_texts"):
        ServeSettings.from_env({"FINSLM_MAX_QUEUE": "4", "FINSLM_MAX_TEXTS": "8"})


@pytest.mark.parametrize(
    ("body", "got"),
    [
        ('{"texts": [null]}', "texts[0]: must be a string, got null"),
        ('{"texts": ["fine", 3]}', "texts[1]: must be a string, got a number"),
        ('{"texts": [["a"]]}', "texts[0]: must be a string, got an array"),
        ('{"texts": "one"}', "texts: must be a list of strings, got a string"),
        ('{"texts": {"a": 1}}', "texts: must be a list of strings, got an object"),
        ("[true]", "body: must be a JSON object, got an array"),
    ],
)
def test_type_errors_name_what_was_sent_in_json_terms(client, body, got):
    # A JSON client sent null, a number, an array: not NoneType, int, list.
    r = post(client, "/v1/classify", body)
    assert r.status_code == 422 and r.json()["error"]["message"] == got


@pytest.mark.parametrize("queue", [0, 1])
def test_explain_admits_one_running_and_explain_queue_waiting(queue):
    # Past `explain_queue` waiting explanations, the next is refused at once (503 busy).
    import asyncio

    from finslm.serve.errors import ApiError
    from finslm.serve.explain import ExplainService

    release = threading.Event()
    service = ExplainService(None, ServeSettings(explain_queue=queue, warmup=False))
    service._run = lambda *args: release.wait(10)  # holds the slot until released

    async def scenario():
        running = asyncio.create_task(service.explain("a", "lime", None))
        await asyncio.sleep(0.05)  # it has the slot
        waiting = [asyncio.create_task(service.explain("b", "lime", None)) for _ in range(queue)]
        await asyncio.sleep(0.05)
        with pytest.raises(ApiError) as refused:
            await service.explain("c", "lime", None)
        release.set()
        for task in (running, *waiting):  # the admitted ones run (and fail on the fake result)
            with contextlib.suppress(Exception):
                await task
        return refused.value

    try:
        error = asyncio.run(scenario())
    finally:
        release.set()
        service.close()
    assert error.status == 503 and error.type == "busy"
