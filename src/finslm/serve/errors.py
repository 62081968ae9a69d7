"""One JSON shape for every error the server returns, and the handlers that produce it.

    {"error": {"type": "string_too_long", "field": "texts", "index": 3,
               "message": "texts[3]: 2400 characters; the limit is 2000 (max_chars) ..."}}

A client (or a person reading a log) learns from one line what was wrong and where: ``field``
is the request field, ``index`` the position in a list (``null`` when it does not apply).
FastAPI's own validation errors (pydantic's list of ``loc``/``msg``) are translated into this
shape; the first error is reported, as a compiler reports the first.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException


def error_body(
    type_: str, message: str, field: str | None = None, index: int | None = None
) -> dict[str, Any]:
    return {"error": {"type": type_, "message": message, "field": field, "index": index}}


def error_response(
    status: int,
    type_: str,
    message: str,
    field: str | None = None,
    index: int | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(error_body(type_, message, field, index), status, headers=headers)


class ApiError(Exception):
    """Raised by a route to answer ``status`` with :func:`error_body`."""

    def __init__(
        self,
        status: int,
        type_: str,
        message: str,
        field: str | None = None,
        index: int | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status, self.type, self.message = status, type_, message
        self.field, self.index, self.headers = field, index, headers


def json_type(value: object) -> str:
    """What a client sent, in JSON's words (``null``, ``a number``), not Python's."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _describe(
    err: dict[str, Any], limits: dict[str, int]
) -> tuple[str, str, str | None, int | None]:
    """(type, message, field, index) for one pydantic/FastAPI validation error."""
    loc = [p for p in err.get("loc", ()) if p != "body"]
    kind = err.get("type", "invalid")
    ctx = err.get("ctx") or {}
    if kind == "json_invalid":
        pos = loc[0] if loc and isinstance(loc[0], int) else None
        where = f" at character {pos}" if pos is not None else ""
        return (
            kind,
            f"body: malformed JSON{where} ({ctx.get('error', 'decode error')}); send a JSON object "
            'such as {"texts": ["..."]}',
            "body",
            None,
        )
    field = str(loc[0]) if loc else "body"
    index = loc[1] if len(loc) > 1 and isinstance(loc[1], int) else None
    where = f"{field}[{index}]" if index is not None else field
    value = err.get("input")
    if kind == "missing" and not loc:
        message = 'body: empty; send a JSON object such as {"texts": ["..."]}'
    elif kind == "missing":
        message = f"{where}: required field is missing"
    elif kind == "extra_forbidden":
        message = f"{where}: unknown field; allowed fields: {', '.join(limits.get('fields', []))}"
    elif kind == "string_unicode":  # a lone UTF-16 surrogate ("\\ud800") in a JSON string
        kind = "invalid_unicode"
        message = (
            f"{where}: contains an unpaired UTF-16 surrogate escape (\\ud800-\\udfff), which is "
            "not a character; send valid Unicode"
        )
    elif kind == "string_type":
        message = f"{where}: must be a string, got {json_type(value)}"
    elif kind == "list_type":
        message = f"{where}: must be a list of strings, got {json_type(value)}"
    elif kind in ("model_attributes_type", "dict_type", "model_type"):
        message = f"body: must be a JSON object, got {json_type(value)}"
    elif kind == "string_too_long":
        limit = ctx.get("max_length")
        message = (
            f"{where}: {len(value) if isinstance(value, str) else '?'} characters; the limit is "
            f"{limit} ({limits.get('chars', 'max_chars')}); split or shorten the text"
        )
    elif kind == "string_too_short":
        message = f"{where}: empty text; send at least one character"
    elif kind == "string_pattern_mismatch":  # schemas.NOT_BLANK, the only pattern
        kind = "blank_text"
        message = (
            f"{where}: blank text (no letter, digit, punctuation or symbol: only spaces, "
            "zero-width or control characters); send at least one visible character"
        )
    elif kind == "too_long":
        message = (
            f"{where}: {ctx.get('actual_length', '?')} items; the limit is "
            f"{ctx.get('max_length')} per request (max_texts); send several requests"
        )
    elif kind == "too_short":
        message = f"{where}: empty list; send at least one text"
    elif kind == "literal_error":
        shown = json.dumps(value) if isinstance(value, (str, int, float, bool, type(None))) else "?"
        message = (
            f"{where}: {shown} is not allowed; expected {ctx.get('expected')}"  # JSON spelling
        )
    else:
        message = f"{where}: {err.get('msg', 'invalid value')}"
    return kind, message, field, index


def _first(errors: list[dict[str, Any]]) -> dict[str, Any]:
    """The error to report: the first, except that an unknown field comes before a missing one
    (``{"text": ...}`` for ``{"texts": ...}``: the misspelled field is the mistake to name)."""
    extra = [e for e in errors if e.get("type") == "extra_forbidden"]
    if extra and errors[0].get("type") == "missing":
        return extra[0]
    return errors[0] if errors else {}


def install_handlers(app: FastAPI) -> None:
    """Route every error (validation, HTTP, our own, unexpected) through :func:`error_body`."""

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        limits = getattr(request.app.state, "validation_hints", {})
        errors = exc.errors()
        route = request.scope.get("route")
        hints = limits.get(getattr(route, "path", ""), {})
        kind, message, field, index = _describe(_first(errors), hints)
        return error_response(422, kind, message, field, index)

    @app.exception_handler(ApiError)
    async def _api(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.type, exc.message, exc.field, exc.index, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        status = exc.status_code
        kind = {404: "not_found", 405: "method_not_allowed"}.get(status, "http_error")
        message = str(exc.detail)
        if exc.status_code == 404:
            path = request.url.path
            hint = getattr(request.app.state, "not_found_hints", {}).get(path)
            routes = {getattr(r, "path", None) for r in request.app.routes}
            if hint is None and path.endswith("/") and path.rstrip("/") in routes:
                hint = f"no such endpoint; did you mean {path.rstrip('/')} (no trailing slash)?"
            message = f"{path}: {hint or 'no such endpoint'}; see /docs"
        elif exc.status_code == 400 and isinstance(exc.__cause__, RecursionError):
            kind = "json_too_deep"  # FastAPI's body parse hit Python's recursion limit
            message = (
                "body: JSON nested too deeply to parse; send a flat JSON object such as "
                '{"texts": ["..."]}'
            )
            return error_response(status, kind, message, "body", headers=exc.headers)
        elif exc.status_code == 400 and isinstance(exc.__cause__, ValueError):
            # e.g. an integer over Python's 4,300-digit parse limit: malformed JSON, as FastAPI's
            # own json_invalid (422) says for a syntax error
            status, kind = 422, "json_invalid"
            # (Python's advice to raise its own limit is for the server, not the client.)
            reason = str(exc.__cause__).split("; use sys.set_int_max_str_digits()")[0]
            message = f"body: JSON that cannot be parsed ({reason}); send JSON strings"
            return error_response(status, kind, message, "body", headers=exc.headers)
        elif exc.status_code == 405:
            message = f"{request.method} {request.url.path}: method not allowed; see /docs"
        return error_response(status, kind, message, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return error_response(500, "internal", f"{type(exc).__name__}: {exc}")
