"""Checks that run before a request body reaches FastAPI: API key, size, content type, UTF-8.

A pure ASGI middleware (not Starlette's ``BaseHTTPMiddleware``, which costs a task per request)
so that:

- an unauthenticated caller gets 401 before the server reads or parses its body;
- a body over ``max_body_bytes`` gets 413 as soon as ``Content-Length`` (or, when streamed, the
  bytes read so far) passes the cap, without buffering the rest;
- a body that is not ``application/json`` (or is compressed: ``Content-Encoding``) gets 415, and
  bytes that are not UTF-8 get 400 naming the offset, instead of FastAPI's generic "error
  parsing the body";
- a body that does not arrive within ``body_timeout_s`` gets 408 and the connection is closed,
  so a client that stops sending mid-body does not hold it open (headers that never end are
  the HTTP server's or a proxy's to time out: docs/serving.md).

Everything else (malformed JSON, wrong types, unknown fields, limits on texts) is FastAPI's
validation, translated by :mod:`finslm.serve.errors`.
"""

from __future__ import annotations

import asyncio
import functools
import json
import math
import secrets
from collections.abc import Awaitable, Callable
from email.message import Message
from email.utils import collapse_rfc2231_value
from typing import Any

from finslm.serve.errors import error_body

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

PROTECTED_PREFIX = "/v1/"  # health, readiness, metrics and docs stay open (probes, scrapers)
# The checked body, for the app's fast path (finslm.serve.app.ClassifyFastPath): it exists in the
# scope only when every check here passed.
BODY_SCOPE_KEY = "finslm.body"


async def _reply(send: Send, status: int, body: dict, headers: dict[str, str] | None = None):
    payload = json.dumps(body).encode("utf-8")
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})


def _json_content_type(value: str | None) -> str | None:
    """None when ``value`` is JSON in UTF-8; else the reason it is not."""
    if not value:
        return "no Content-Type header"
    return _parse_content_type(value)


@functools.lru_cache(maxsize=256)  # clients send a handful of distinct values; parsing is ~20 µs
def _parse_content_type(value: str) -> str | None:
    msg = Message()
    msg["content-type"] = value
    if msg.get_content_maintype() != "application" or not (
        msg.get_content_subtype() == "json" or msg.get_content_subtype().endswith("+json")
    ):
        return (
            f"Content-Type {value.strip()[:100]!r}"  # as sent: the parser's fallback is text/plain
        )
    charset = msg.get_param("charset") or "utf-8"
    if isinstance(charset, tuple):  # RFC 2231 form, charset*=utf-8''utf-8: (charset, lang, value)
        charset = collapse_rfc2231_value(charset)
    charset = str(charset).strip().lower()
    if charset not in ("utf-8", "utf8"):
        return f"charset {charset!r}"
    return None


class RequestGuard:
    """ASGI middleware: see the module docstring. ``api_key=None`` turns authentication off."""

    def __init__(
        self,
        app,
        api_key: str | None,
        max_body_bytes: int,
        body_timeout_s: float = math.inf,
        body_routes: frozenset[str] | None = None,
    ):
        self.app = app
        self.api_key = api_key
        self.max_body_bytes = int(max_body_bytes)
        self.body_timeout_s = float(body_timeout_s)
        # The paths whose bodies are checked (None: every path); a POST elsewhere goes on to the
        # app's 404 or 405, which say what is wrong, instead of a 415 about its Content-Type.
        self.body_routes = body_routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PROTECTED_PREFIX):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if self.api_key is not None and not self._authorised(headers.get("authorization", "")):
            await _reply(
                send,
                401,
                error_body(
                    "unauthorized",
                    "Authorization: missing or wrong API key; send 'Authorization: Bearer <key>' "
                    "with the key the server was started with",
                    "Authorization",
                ),
                {"WWW-Authenticate": "Bearer"},
            )
            return
        if scope["method"] not in ("POST", "PUT", "PATCH") or (
            self.body_routes is not None and scope["path"] not in self.body_routes
        ):
            await self.app(scope, receive, send)
            return
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            await self._too_large(send, int(length))
            return
        why = _json_content_type(headers.get("content-type"))
        field, fix = (
            "Content-Type",
            "send a JSON body with 'Content-Type: application/json' (UTF-8)",
        )
        encoding = headers.get("content-encoding", "identity").strip().lower()
        if why is None and encoding not in ("", "identity"):  # gzip etc.: not decoded here
            why = f"Content-Encoding {encoding!r} is not supported"
            field, fix = "Content-Encoding", "send the JSON body uncompressed"
        if why is not None:
            await _reply(send, 415, error_body("unsupported_media_type", f"{why}: {fix}", field))
            return
        try:
            body = await asyncio.wait_for(self._read_body(receive), self._body_deadline())
        except TimeoutError:  # a client that stops sending holds a connection: answer and close
            await _reply(
                send,
                408,
                error_body(
                    "body_timeout",
                    f"body: not received within {self.body_timeout_s:g} s (body_timeout_s); "
                    "send the whole body at once",
                    "body",
                ),
                {"Connection": "close"},
            )
            return
        if body is None:
            return  # the client left; nobody to answer
        if isinstance(body, int):
            await self._too_large(send, body)
            return
        try:
            body.decode("utf-8")
            nul = body.find(b"\x00")  # never in UTF-8 JSON (escaped as \u0000); UTF-16/32 is full
            if nul >= 0:
                raise UnicodeDecodeError("utf-8", body, nul, nul + 1, "a NUL byte (UTF-16/32?)")
        except UnicodeDecodeError as exc:
            await _reply(
                send,
                400,
                error_body(
                    "invalid_utf8",
                    f"body: byte {exc.start} is not valid UTF-8 JSON "
                    f"({body[exc.start : exc.start + 1]!r}: {exc.reason}); encode the JSON as UTF-8",
                    "body",
                ),
            )
            return
        scope[BODY_SCOPE_KEY] = body
        await self.app(scope, _replay(body, receive), send)

    def _body_deadline(self) -> float | None:
        return None if math.isinf(self.body_timeout_s) else self.body_timeout_s

    async def _read_body(self, receive: Receive) -> bytes | int | None:
        """The whole body; its size so far once it passes the cap; None if the client left."""
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None  # the client left; nobody to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return size
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _authorised(self, header: str) -> bool:
        scheme, _, token = header.partition(" ")
        return scheme.lower() == "bearer" and secrets.compare_digest(
            token.strip().encode(), self.api_key.encode()
        )

    async def _too_large(self, send: Send, size: int) -> None:
        await _reply(
            send,
            413,
            error_body(
                "body_too_large",
                f"body: {size} bytes or more; the limit is {self.max_body_bytes} bytes "
                "(max_body_bytes); send fewer or shorter texts per request",
                "body",
            ),
        )


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the buffered body over once, then waits on the real one."""
    sent = False

    async def replay() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
