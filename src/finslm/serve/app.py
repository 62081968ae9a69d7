"""The FastAPI app: ``create_app(predictor, settings)``.

    POST /v1/classify  {"texts": [...]}              -> label and per-class scores per text
    POST /v1/explain   {"text", "method", "target"?} -> word attributions (LIME or SHAP)
    POST /v1/entities  {"texts": [...]}              -> entity spans per text (a token classifier)
    GET  /v1/model     name, backend, labels, parameters, checksum, test metrics, settings
    GET  /healthz      the process answers             GET /readyz  loaded, warm, not draining
    GET  /metrics      Prometheus text format          GET /docs    OpenAPI (Swagger UI)

The predictor (any :class:`finslm.predict.Predictor`, or a :class:`finslm.ner.predict.Tagger`,
whose server answers ``/v1/entities`` instead of ``/v1/classify`` and ``/v1/explain``) is loaded
by the caller once; the app's
lifespan warms it on the model thread (first calls allocate onnxruntime's buffers), starts the
batcher, and on shutdown drains it: uvicorn stops accepting connections, in-flight requests
finish, then the batcher closes. ``/readyz`` is 200 only between warm-up and drain.

``runner`` replaces the in-process :class:`~finslm.serve.batching.Batcher` (Ray Serve passes one
built on ``@serve.batch``): anything with ``start()``, ``submit(texts)``, ``close(timeout_s)``,
``pending`` and ``run_in_model_thread(fn)``.
"""

# No `from __future__ import annotations`: FastAPI reads the route signatures, whose body
# models are built per app inside create_app (a string annotation could not be resolved).
import asyncio
import contextlib
import json
import logging
import time
from typing import Any

from fastapi import FastAPI, Request, Response, Security
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPBearer
from pydantic import ValidationError

from finslm.serve.batching import Batcher, Closed, QueueFull
from finslm.serve.errors import ApiError, error_response, install_handlers
from finslm.serve.explain import ExplainService
from finslm.serve.guard import BODY_SCOPE_KEY, RequestGuard
from finslm.serve.metrics import MetricsMiddleware, ServeMetrics
from finslm.serve.modelinfo import describe
from finslm.serve.schemas import (
    ERROR_RESPONSES,
    ClassifyResponse,
    EntitiesResponse,
    ExplainResponse,
    classify_request,
    explain_request,
)
from finslm.serve.settings import ServeSettings
from finslm.tasks import tags_entities

log = logging.getLogger("finslm.serve")

WARMUP_TEXTS = [
    "The company reported results for the quarter.",
    "Operating profit rose to EUR 13 million from EUR 9 million a year earlier, the group said.",
]


def shape_warmup_texts(predictor) -> list[str]:
    """One text per padded length the engine will see at batch 1, for a predictor that pads to
    a multiple of N tokens (``openvino-int8``: OpenVINO compiles per input shape, ~20 ms the
    first time); none for the others."""
    step = int(getattr(predictor, "pad_multiple", 1))
    max_length = int(getattr(predictor, "max_length", 0))
    if step <= 1 or max_length <= 0:
        return []
    lengths = predictor.encoder.lengths
    one, two = (int(n) for n in lengths(["profit", "profit profit"]))
    per_word = max(1, two - one)  # word pieces per "profit"
    special = one - per_word  # [CLS], [SEP]
    return [
        " ".join(["profit"] * max(1, (n - special) // per_word))
        for n in range(step, max_length + 1, step)
    ]


# Documents the bearer scheme in OpenAPI; RequestGuard enforces it before the body is read.
_bearer = HTTPBearer(auto_error=False, description="Only when the server has an API key.")


def predict_fn(predictor):
    """``texts -> probabilities`` in one engine call (the batcher already sized the batch);
    for a token classifier ``texts -> entity spans per text``."""
    if tags_entities(predictor):

        def tag(texts: list[str]):
            return predictor.entities(texts, batch_size=max(1, len(texts)))

        return tag

    def predict(texts: list[str]):
        return predictor.predict_proba(texts, batch_size=max(1, len(texts)))

    return predict


# Over 80 lines on purpose: FastAPI's factory pattern: the routes are closures over the app's state.
def create_app(predictor, settings: ServeSettings | None = None, runner=None) -> FastAPI:
    """The serving app for ``predictor`` (see the module docstring)."""
    settings = settings or ServeSettings()
    metrics = ServeMetrics()
    info = describe(predictor, settings.eval_metrics)
    metrics.set_model({k: info[k] for k in ("name", "backend", "checksum")})
    if runner is None:
        runner = Batcher(
            predict_fn(predictor),
            max_batch=settings.max_batch,
            max_wait_s=settings.max_wait_ms / 1000,
            max_queue=settings.max_queue,
            on_batch=metrics.observe_batch,
            lengths=predictor.lengths,
            call_cost=settings.call_cost_tokens,
        )
    ner = tags_entities(predictor)
    explainer = None if ner else ExplainService(predictor, settings)
    labels = tuple(predictor.labels)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        await runner.start()
        if settings.warmup:
            t0 = time.perf_counter()
            predict = predict_fn(predictor)
            for texts in (
                [WARMUP_TEXTS[0]],
                WARMUP_TEXTS,
                WARMUP_TEXTS * (settings.max_batch // 2),
            ):
                if texts:
                    await runner.run_in_model_thread(predict, texts)
            for text in shape_warmup_texts(predictor):
                await runner.run_in_model_thread(predict, [text])
            log.info("warmed %s in %.2f s", predictor.name, time.perf_counter() - t0)
        app.state.ready = True
        metrics.ready.set(1)
        try:
            yield
        finally:
            app.state.ready = False
            metrics.ready.set(0)
            await runner.close(settings.shutdown_timeout_s)
            if explainer is not None:
                explainer.close()

    summary = (
        f"Financial named-entity recognition ({', '.join(entity_types(labels))})."
        if ner
        else "Financial-sentiment classification (negative / neutral / positive)."
    )
    # No 307 from /v1/classify/ to /v1/classify: its Location would echo the caller's Host
    # header; a 404 that names the route instead (errors.install_handlers).
    app = FastAPI(
        title="finslm",
        summary=summary,
        version=_version(),
        lifespan=lifespan,
        redirect_slashes=False,
    )
    app.state.ready = False
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.runner = runner
    app.state.model_info = info
    install_handlers(app)
    secured = [Security(_bearer)]

    async def run_model(texts: list[str], route: str):
        """The model's answers for ``texts``, or the 503/504 response saying why there are none."""
        metrics.queue.set(runner.pending)
        try:
            # asyncio.timeout, not wait_for: no extra task (and loop turn) per request.
            async with asyncio.timeout(settings.request_timeout_s):
                return await runner.submit(texts)
        except QueueFull as exc:
            return error_response(
                503, "overloaded", f"{exc}; retry later",
                headers={"Retry-After": str(settings.retry_after_s)},
            )  # fmt: skip
        except Closed as exc:
            return error_response(
                503, "shutting_down", f"{exc}; retry on another replica",
                headers={"Retry-After": str(settings.retry_after_s)},
            )  # fmt: skip
        except TimeoutError:
            return error_response(
                504,
                "timeout",
                f"{route}: no answer within {settings.request_timeout_s:g} s "
                "(request_timeout_s); the server is overloaded, retry later",
            )

    if ner:
        EntitiesRequest = classify_request(
            settings, "EntitiesRequest", "Acme Holdings hired Jane Smith in Boston."
        )
        app.state.validation_hints = {"/v1/entities": {"fields": ["texts"], "chars": "max_chars"}}
        types = entity_types(labels)
        app.state.not_found_hints = dict.fromkeys(
            ("/v1/classify", "/v1/explain"),
            f"this server runs a token classifier ({predictor.name}): POST /v1/entities",
        )

        async def tag_texts(texts: list[str]) -> Response:
            """The answer to a valid entities request: 200, 422 past ``max_words``, or 503/504
            when the model cannot."""
            words = sum(len(text.split()) for text in texts)
            if words > settings.max_words:
                return error_response(
                    422,
                    "too_many_words",
                    f"texts: {words} words in all; the limit is {settings.max_words} per request "
                    "(max_words: the tagger reads every word); send several requests",
                    "texts",
                )
            found = await run_model(texts, "entities")
            if isinstance(found, Response):
                return found
            results = [{"entities": spans} for spans in found]
            return JSONResponse({"model": predictor.name, "types": types, "results": results})

        @app.post(
            "/v1/entities",
            response_model=EntitiesResponse,
            responses=ERROR_RESPONSES,
            dependencies=secured,
        )
        async def entities(body: EntitiesRequest) -> Response:  # type: ignore[valid-type]
            """Entity spans per text, in request order: type, character offsets (end
            exclusive), text and score; sub-words merged."""
            return await tag_texts(body.texts)

        fast_path, fast_model, fast_answer = "/v1/entities", EntitiesRequest, tag_texts
    else:
        ClassifyRequest = classify_request(settings)
        ExplainRequest = explain_request(settings, labels)
        app.state.validation_hints = {
            "/v1/classify": {"fields": ["texts"], "chars": "max_chars"},
            "/v1/explain": {"fields": ["text", "method", "target"], "chars": "explain_max_chars"},
        }
        app.state.not_found_hints = {
            "/v1/entities": f"this server runs a sentiment classifier ({predictor.name}): "
            "POST /v1/classify; serve an exports/<ner model> folder for entities"
        }

        async def classify_texts(texts: list[str]) -> Response:
            """The answer to a valid classify request: 200, or 503/504 when the model cannot."""
            proba = await run_model(texts, "classify")
            if isinstance(proba, Response):
                return proba
            results = [
                {
                    "label": labels[int(row.argmax())],
                    "scores": {
                        label: round(float(p), 6) for label, p in zip(labels, row, strict=True)
                    },
                }
                for row in proba
            ]
            for i in truncated_texts(predictor, texts):
                results[i]["truncated"] = True
                metrics.truncated.inc()
            # A Response skips FastAPI's re-validation of the response model (docs keep it): at
            # batch 1 that validation was a measurable share of the per-request overhead.
            return JSONResponse(
                {"model": predictor.name, "labels": list(labels), "results": results}
            )

        @app.post(
            "/v1/classify",
            response_model=ClassifyResponse,
            responses=ERROR_RESPONSES,
            dependencies=secured,
        )
        async def classify(body: ClassifyRequest) -> Response:  # type: ignore[valid-type]
            """Label and class probabilities for each text, in request order."""
            return await classify_texts(body.texts)

        fast_path, fast_model, fast_answer = "/v1/classify", ClassifyRequest, classify_texts

        @app.post(
            "/v1/explain",
            response_model=ExplainResponse,
            responses=ERROR_RESPONSES,
            dependencies=secured,
        )
        async def explain(body: ExplainRequest) -> dict[str, Any]:  # type: ignore[valid-type]
            """Word attributions for one text (LIME or SHAP); about a second, one at a time."""
            return await explainer.explain(body.text, body.method, body.target)

    @app.get("/v1/model", dependencies=secured)
    async def model() -> dict[str, Any]:
        """What is served: name, backend, labels, parameters, checksum, test metrics, limits."""
        return {**info, "settings": settings.public()}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """200 while the process answers (liveness)."""
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz(request: Request) -> Response:
        """200 once the model is loaded and warm, 503 before that and while draining."""
        if request.app.state.ready:
            return Response('{"status":"ready"}', media_type="application/json")
        raise ApiError(503, "not_ready", "the model is loading, warming up or draining")

    @app.get("/metrics")
    async def prometheus() -> Response:
        """Prometheus text format."""
        metrics.queue.set(runner.pending)
        return Response(metrics.render(), media_type=metrics.content_type)

    _answer_head(app)

    # Innermost first: the fast path sees only requests the guard has checked.
    app.add_middleware(ClassifyFastPath, model=fast_model, classify=fast_answer, path=fast_path)
    app.add_middleware(
        RequestGuard,
        api_key=settings.api_key,
        max_body_bytes=settings.body_limit,
        body_timeout_s=settings.body_timeout_s,
        body_routes=frozenset(
            r.path for r in app.routes if "POST" in (getattr(r, "methods", None) or ())
        ),
    )
    known = frozenset(r.path for r in app.routes)
    app.add_middleware(MetricsMiddleware, metrics=metrics, known_paths=known)
    return app


def truncated_texts(predictor, texts: list[str]) -> list[int]:
    """Indices of ``texts`` longer than the model's max tokens (it read only their start); the
    encoder tokenises only texts long enough to overflow (:meth:`finslm.predict.Encoder.truncated`)."""
    return [i for i, cut in enumerate(predictor.truncated(texts)) if cut]


def _answer_head(app: FastAPI) -> None:
    """Every GET route answers HEAD too (uptime monitors and some load balancers probe with it);
    left out of the OpenAPI schema, which would otherwise list each operation twice."""
    for route in [r for r in app.routes if isinstance(r, APIRoute) and "GET" in r.methods]:
        app.add_api_route(
            route.path,
            route.endpoint,
            methods=["HEAD"],
            dependencies=route.dependencies,
            include_in_schema=False,
        )


class ClassifyFastPath:
    """ASGI middleware: a valid ``POST /v1/classify`` answered without FastAPI's routing.

    At batch 1 the model takes a few milliseconds and Starlette + FastAPI's per-request machinery
    (routing, the exception and exit-stack middlewares, dependency solving, a second body read
    and content-type parse) about 0.2-0.3 ms of it on this machine's cores (docs/serving.md,
    "Where the time goes"). Behind :class:`~finslm.serve.guard.RequestGuard` (key, size,
    content type, UTF-8 already checked; the body is in the scope) this parses the body with
    ``json.loads`` and validates it with the route's own pydantic model, as FastAPI would, and
    answers through the route's own ``classify`` function. Anything that does not parse or
    validate goes on to FastAPI unchanged, so every 4xx (and its message) is FastAPI's; the
    route stays the one OpenAPI documents.
    """

    def __init__(self, app, model, classify, path: str = "/v1/classify"):
        self.app = app
        self.model = model
        self.classify = classify
        self.path = path

    async def __call__(self, scope, receive, send) -> None:
        body = scope.get(BODY_SCOPE_KEY) if scope["type"] == "http" else None
        if body is None or scope["path"] != self.path or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        try:
            texts = self.model.model_validate(json.loads(body)).texts
        except (ValueError, ValidationError, RecursionError):  # JSONDecodeError: a ValueError
            await self.app(scope, receive, send)  # FastAPI answers with the 4xx naming why
            return
        try:
            response = await self.classify(texts)
        except Exception as exc:  # what install_handlers' catch-all answers, logged
            log.exception("classify failed")
            response = error_response(500, "internal", f"{type(exc).__name__}: {exc}")
        await response(scope, receive, send)


def entity_types(labels) -> list[str]:
    """``["PER", "ORG", ...]`` from a token classifier's IOB2/IO labels, in label order."""
    return list(dict.fromkeys(label[2:] for label in labels if label[:2] in ("B-", "I-")))


def _version() -> str:
    from finslm import __version__

    return __version__
