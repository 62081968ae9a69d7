"""``create_app`` on a token classifier: POST /v1/entities, its 4xx answers, model info, metrics.

The tagger is rule-based (:mod:`tests.fake_tagger`), so every span is known by hand; the real
tiny tagger behind the same app is tested in tests/ner/test_model.py.
"""

from __future__ import annotations

import asyncio

import pytest
from fastapi.testclient import TestClient

from finslm.serve import ServeSettings, create_app
from finslm.serve.batching import Batcher, stack_rows

from ..fake_tagger import FakeTagger

SMALL = ServeSettings(max_batch=4, max_texts=3, max_chars=60, max_body_bytes=2000)


@pytest.fixture
def tagger(tmp_path) -> FakeTagger:
    return FakeTagger(tmp_path)


@pytest.fixture
def client(tagger):
    with TestClient(create_app(tagger, SMALL)) as c:
        yield c


def test_entities_are_spans_with_character_offsets_in_request_order(client):
    texts = ["Then Velmont Bank hired staff in Oslo.", "nothing to see", "Ask Corvik"]
    r = client.post("/v1/entities", json={"texts": texts})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == "fake-ner/rules" and body["types"] == ["ORG", "LOC"]
    first, second, third = (res["entities"] for res in body["results"])
    assert [(e["type"], e["text"], e["start"], e["end"]) for e in first] == [
        ("ORG", "Velmont Bank", 5, 17), ("LOC", "Oslo", 33, 37),
    ]  # fmt: skip
    assert all(texts[0][e["start"] : e["end"]] == e["text"] for e in first)
    assert second == [] and [e["text"] for e in third] == ["Corvik"]


@pytest.mark.parametrize(
    ("body", "status", "field", "words"),
    [
        ({"text": "Velmont"}, 422, "text", "unknown field"),
        ({}, 422, "texts", "required"),
        ({"texts": []}, 422, "texts", "at least one"),
        ({"texts": [3]}, 422, "texts", "string"),
        ({"texts": ["x" * 61]}, 422, "texts", "60"),
        ({"texts": ["a", "  "]}, 422, "texts", "blank text"),
        ({"texts": ["a", "b", "c", "d"]}, 422, "texts", "3"),
        ({"texts": ["a"], "mode": "fast"}, 422, "mode", ""),
    ],
)
def test_bad_requests_get_a_4xx_naming_the_field(client, body, status, field, words):
    r = client.post("/v1/entities", json=body)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["field"] == field and words in error["message"], error


def test_sentiment_routes_point_to_the_entities_route(client):
    for path in ("/v1/classify", "/v1/explain"):
        r = client.post(path, json={"texts": ["a"]})
        assert r.status_code == 404
        assert (
            "token classifier (fake-ner/rules): POST /v1/entities" in r.json()["error"]["message"]
        )


def test_model_info_metrics_and_openapi(client):
    info = client.get("/v1/model").json()
    assert info["task"] == "token-classification" and info["labels"][0] == "O"
    client.post("/v1/entities", json={"texts": ["Velmont"]})
    client.post("/v1/entities", json={"texts": []})
    metrics = client.get("/metrics").text
    assert 'finslm_requests_total{route="/v1/entities",status="200"} 1.0' in metrics
    assert 'finslm_requests_total{route="/v1/entities",status="422"} 1.0' in metrics
    schema = client.get("/openapi.json").json()
    assert "/v1/entities" in schema["paths"] and "/v1/classify" not in schema["paths"]
    assert "EntitiesResponse" in schema["components"]["schemas"]
    assert client.get("/readyz").status_code == 200


def test_api_key_guards_the_entities_route(tagger):
    settings = ServeSettings(api_key="s3cret")
    with TestClient(create_app(tagger, settings)) as c:
        assert c.post("/v1/entities", json={"texts": ["Velmont"]}).status_code == 401
        ok = c.post(
            "/v1/entities", json={"texts": ["Velmont"]}, headers={"Authorization": "Bearer s3cret"}
        )
        assert ok.status_code == 200


def test_concurrent_requests_share_calls_and_get_their_own_lists(tagger):
    batcher = Batcher(tagger.entities, max_batch=8, max_wait_s=0.05, lengths=tagger.lengths)

    async def run():
        await batcher.start()
        texts = [f"Ask Firm{i}" if i % 2 else "plain words" for i in range(6)]
        answers = await asyncio.gather(*(batcher.submit([t]) for t in texts))
        await batcher.close()
        return texts, answers

    texts, answers = asyncio.run(run())
    for text, (spans,) in zip(texts, answers, strict=True):
        assert [e["text"] for e in spans] == ([text.split()[1]] if "Firm" in text else [])
    assert len(tagger.calls) < len(texts)  # shared model calls


def test_stack_rows_keeps_arrays_as_arrays_and_lists_as_lists():
    import numpy as np

    assert stack_rows([np.ones(3), np.zeros(3)]).shape == (2, 3)
    assert stack_rows([[{"a": 1}], []]) == [[{"a": 1}], []]


def test_entity_types_of_io_and_iob2_labels():
    from finslm.serve.app import entity_types

    assert entity_types(["O", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]) == ["ORG", "LOC"]
    assert entity_types(["O", "I-PER", "I-ORG"]) == ["PER", "ORG"]  # IO scheme


def test_words_over_max_words_are_a_422_before_the_model_runs(tagger):
    # The tagger reads every word, so a request's cost is its words; max_words bounds it.
    settings = ServeSettings(max_texts=3, max_chars=60, max_words=10, warmup=False)
    with TestClient(create_app(tagger, settings)) as c:
        ok = c.post("/v1/entities", json={"texts": ["a b c d e", "f g h i j"]})
        assert ok.status_code == 200
        calls = len(tagger.calls)
        r = c.post("/v1/entities", json={"texts": ["a b c d e", "f g h i j", "k"]})
    assert r.status_code == 422 and len(tagger.calls) == calls
    error = r.json()["error"]
    assert (error["type"], error["field"]) == ("too_many_words", "texts")
    assert "11 words in all; the limit is 10" in error["message"]
