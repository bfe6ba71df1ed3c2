"""Limits on what one HTTP request may cost: body size, time to send the body, time to take the
response.

Without them, a few unauthenticated clients can fill the Manager's memory with huge login
bodies or hold connections open by trickling a body a byte at a time. The ASGI middleware here
refuses a body by its declared length before reading any of it, counts the bytes of a streamed
(chunked) one so no more than the limit is ever buffered, and bounds the time the whole body
may take. A refused request is answered with the error envelope and `Connection: close`, so
the server drops the connection instead of reading the rest.

The server's HTTP protocol is extended too: uvicorn bounds only idle keep-alive connections,
so a client sending a request's head slowly (or nothing at all) would hold its connection
forever; `head_timeout_protocol` closes it once `read_timeout` has passed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from opscaffold.manager.errors import DomainError, PayloadTooLarge, RequestTimeout
from opscaffold.manager.kit.responses import error_response

F = TypeVar("F", bound=Callable[..., Any])
_TAKES_UPLOADS = "_ops_takes_uploads"


def takes_uploads(endpoint: F) -> F:
    """Declare that a route's body is an upload: it may be as large as
    `server.http.max_upload_size` instead of `server.http.max_body_size`.

    Put it under the route decorator (`@router.post(...)` then `@takes_uploads`)."""
    setattr(endpoint, _TAKES_UPLOADS, True)
    return endpoint


_BODY_LIMIT = "_ops_body_limit"


def body_limit(size: int) -> Callable[[F], F]:
    """Declare that a route's body may be up to `size` bytes, when its own rules allow more
    than `server.http.max_body_size` (a task's 1 MiB script, JSON-escaped). Put it under the
    route decorator."""

    def declare(endpoint: F) -> F:
        setattr(endpoint, _BODY_LIMIT, size)
        return endpoint

    return declare


def is_upload(endpoint: object) -> bool:
    """Whether a route's endpoint was declared with `takes_uploads`."""
    return bool(getattr(endpoint, _TAKES_UPLOADS, False))


class RequestLimits:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body: int,
        max_upload: int,
        read_timeout: float,
        write_timeout: float,
    ) -> None:
        self.app = app
        self.max_body = max_body
        self.max_upload = max_upload
        self.read_timeout = read_timeout
        self.write_timeout = write_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await _Exchange(self, scope, receive, send).run()

    def limit_for(self, scope: Scope) -> int:
        """The body limit of the route the request was routed to (routing fills in the
        scope before the app reads the body)."""
        endpoint = getattr(scope.get("route"), "endpoint", None) or scope.get("endpoint")
        if is_upload(endpoint):
            return self.max_upload
        return max(self.max_body, int(getattr(endpoint, _BODY_LIMIT, 0)))


class _Exchange:
    """One request passing the limits: the app reads through `receive`, answers through
    `send`; a refusal replaces whatever the app then answers (FastAPI turns any error while
    reading the body into a 400 of its own)."""

    def __init__(self, limits: RequestLimits, scope: Scope, receive: Receive, send: Send) -> None:
        self.limits = limits
        self.scope = scope
        self._receive = receive
        self._send = send
        self.limit: int | None = None  # known once the app, routed, first reads the body
        self.deadline = asyncio.get_running_loop().time() + limits.read_timeout
        self.received = 0
        self.body_done = False
        self.refusal: DomainError | None = None
        self.answered = False

    async def run(self) -> None:
        try:
            await self.limits.app(self.scope, self.receive, self.send)
        except Exception:
            if self.refusal is None or self.answered:
                raise
        if self.refusal is not None and not self.answered:
            self.answered = True
            await _refuse(self.refusal, self.scope, self._receive, self._send)

    async def receive(self) -> Message:
        if self.refusal is not None:
            raise _Refused(self.refusal)
        if self.body_done:  # afterwards the app only listens for a disconnect
            return await self._receive()
        if self.limit is None:
            self.limit = self.limits.limit_for(self.scope)
            declared = _content_length(self.scope)
            if declared is not None and declared > self.limit:  # refused before reading it
                self.refusal = _too_large(self.limit)
                raise _Refused(self.refusal)
        remaining = self.deadline - asyncio.get_running_loop().time()
        try:
            async with asyncio.timeout(max(remaining, 0.0)):
                message = await self._receive()
        except TimeoutError:
            self.refusal = RequestTimeout(
                f"the request body did not arrive within {self.limits.read_timeout:g} s"
            )
            raise _Refused(self.refusal) from None
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.limit:
                self.refusal = _too_large(self.limit)
                raise _Refused(self.refusal)
            self.body_done = not message.get("more_body", False)
        return message

    async def send(self, message: Message) -> None:
        if self.refusal is not None:
            if not self.answered and message["type"] == "http.response.start":
                self.answered = True
                await _refuse(self.refusal, self.scope, self._receive, self._send)
            return  # the app's own answer to a body it could not read is dropped
        try:
            async with asyncio.timeout(self.limits.write_timeout):
                await self._send(message)
        except TimeoutError:
            # A client that does not take its response holds the connection no longer.
            raise ResponseTimeout(self.limits.write_timeout) from None


class _Refused(Exception):
    def __init__(self, error: DomainError) -> None:
        super().__init__(error.message)
        self.error = error


class ResponseTimeout(Exception):
    """The client did not take the response in time; the server closes the connection."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"the client did not take the response within {seconds:g} s")


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"request body is larger than {limit} bytes")


async def _refuse(error: DomainError, scope: Scope, receive: Receive, send: Send) -> None:
    response = error_response(error)
    response.headers["connection"] = "close"  # the rest of the body is never read
    await response(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses a malformed length itself
    return None


class _HeadTimeoutProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, closing a connection whose request head (request line
    and headers) has not arrived `head_timeout` seconds after the connection was made or the
    request began."""

    head_timeout = 30.0
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm_head_timer()

    def on_headers_complete(self) -> None:
        self._cancel_head_timer()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self.transport.close()


def head_timeout_protocol(seconds: float) -> type[HttpToolsProtocol]:
    """The HTTP protocol class for uvicorn (`http=`), bounding request heads to `seconds`."""
    return type("HeadTimeoutProtocol", (_HeadTimeoutProtocol,), {"head_timeout": seconds})
