"""The studio's guards, on every request (pure ASGI middleware, :class:`Guard`): the Host header
must name this server (no DNS rebinding); a state-changing request from a page of another origin is
refused; with a token (required for any non-loopback host) every route needs it (``?token=``,
``Authorization: Bearer``, or the cookie the page gets); request bodies are capped while they stream,
and must arrive within ``read_timeout`` seconds plus one second per :data:`MIN_BODY_RATE` bytes (a
client that trickles its upload is answered 408 and let go). Headers must arrive within
``read_timeout`` too: the server's protocol (:func:`timed_protocol`) closes a connection whose
request line and headers take longer. For a public server put a reverse proxy in front as well
(it buffers slow clients for the server).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fastapi.responses import JSONResponse, Response
from starlette.requests import cookie_parser

LOOPBACK = ("127.0.0.1", "localhost", "::1")
COOKIE = "artstyle_token"
#: On every response: no content sniffing, never inside another site's frame, no Referer (the
#: URL may carry the token) to other sites.
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
    (b"referrer-policy", b"no-referrer"),
]


def error_response(status: int, message: str) -> JSONResponse:
    """Every error of the API: one line of JSON, ``{"error": "..."}``."""
    return JSONResponse({"error": message}, status_code=status)


class _TooLarge(Exception):
    pass


class _TooSlow(Exception):
    pass


#: How long a request's line and headers may take, and the grace before its body's rate counts (s).
READ_TIMEOUT = 30.0
#: The slowest a body may arrive on average after that grace (bytes/s): a 25 MB upload may take
#: about 25 minutes.
MIN_BODY_RATE = 16_000


class Guard:
    """Pure ASGI middleware: Host and Origin checks, the access token, and the body cap."""

    def __init__(
        self,
        app: Any,
        token: str | None,
        max_bytes: int,
        hosts: tuple[str, ...] | None,
        read_timeout: float = READ_TIMEOUT,
    ) -> None:
        self.app, self.token, self.max_bytes, self.hosts = app, token, max_bytes, hosts
        self.read_timeout = read_timeout

    async def __call__(self, scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        plain_send = send

        async def secured(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                have = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in SECURITY_HEADERS if k not in have]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await plain_send(message)

        send = secured
        problem = self._check(scope, headers)
        if problem:
            await problem(scope, receive, send)
            return
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > self.max_bytes:
            await self._too_large()(scope, receive, send)
            return
        seen = 0
        started = False
        body_done = False
        t0 = time.monotonic()

        async def counted() -> dict[str, Any]:
            nonlocal seen, body_done
            if body_done:  # (later calls wait for a disconnect: an event stream's, say)
                return await receive()
            left = t0 + self.read_timeout + seen / MIN_BODY_RATE - time.monotonic()
            try:
                message = await asyncio.wait_for(receive(), timeout=max(left, 0.001))
            except TimeoutError:
                raise _TooSlow from None
            seen += len(message.get("body", b""))
            body_done = message["type"] != "http.request" or not message.get("more_body", False)
            if seen > self.max_bytes:
                raise _TooLarge
            return message

        async def tracked(message: dict[str, Any]) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except _TooLarge:
            if not started:
                await self._too_large()(scope, receive, send)
        except _TooSlow:
            if not started:
                why = f"the request's body came too slowly (under {MIN_BODY_RATE // 1000} KB/s)"
                await error_response(408, why)(scope, receive, send)

    def _too_large(self) -> JSONResponse:
        return error_response(
            413, f"upload too large: the limit is {self.max_bytes / 1e6:g} MB (--max-upload-mb)"
        )

    def _check(self, scope: dict[str, Any], headers: dict[str, str]) -> Response | None:
        host = headers.get("host", "")
        name = urlsplit(f"//{host}").hostname or ""
        if self.hosts is not None and name not in self.hosts:
            return error_response(400, f"unexpected Host header {host[:60]!r}")
        if scope["method"] not in ("GET", "HEAD", "OPTIONS"):
            origin = headers.get("origin")
            if origin and urlsplit(origin).netloc != host:
                return error_response(403, "requests from other sites are refused")
        if self.token:
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            given = query.get("token", [""])[0]
            auth = headers.get("authorization", "")
            if auth.lower().startswith("bearer "):
                given = given or auth[7:].strip()
            given = given or cookie_parser(headers.get("cookie", "")).get(COOKIE, "")
            if not secrets.compare_digest(given.encode(), self.token.encode()):
                return error_response(401, "an access token is needed: open the URL the server printed")
        return None


def timed_protocol(read_timeout: float = READ_TIMEOUT) -> type:
    """uvicorn's HTTP/1.1 protocol with a deadline for a request's line and headers: a connection
    that has not sent them within ``read_timeout`` seconds of its first byte (or of opening) is
    answered 408 and closed. uvicorn has no such setting of its own."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class TimedH11Protocol(H11Protocol):
        _headers_due: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._headers_due = self.loop.call_later(read_timeout, self._too_slow)

        def data_received(self, data: bytes) -> None:
            if self._headers_due is None and self.conn.their_state == h11.IDLE:
                self._headers_due = self.loop.call_later(read_timeout, self._too_slow)  # (the next request)
            super().data_received(data)
            if self.conn.their_state != h11.IDLE and self._headers_due is not None:
                self._headers_due.cancel()  # (its headers are in)
                self._headers_due = None

        def connection_lost(self, exc: Exception | None) -> None:
            if self._headers_due is not None:
                self._headers_due.cancel()
            super().connection_lost(exc)

        def _too_slow(self) -> None:
            self._headers_due = None
            if self.conn.their_state == h11.IDLE and not self.transport.is_closing():
                body = b'{"error": "the request\'s headers came too late"}'
                head = b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
                self.transport.write(
                    head + b"connection: close\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)
                )
                self.transport.close()

    return TimedH11Protocol
