"""The one ASGI middleware every request passes: id, security headers, metrics, access log."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from opscaffold.manager.kit.responses import request_id_var
from opscaffold.manager.logging import get_logger
from opscaffold.manager.observability.metrics import ManagerMetrics

REQUEST_ID_HEADER = "x-request-id"
# A caller's id is echoed back and logged, so it must be short and inert.
VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
}
API_CSP = "default-src 'none'; frame-ancestors 'none'"
HSTS = "max-age=31536000; includeSubDomains"

log = get_logger("opscaffold.http")


ErrorRenderer = Callable[[Request, Exception], Awaitable[Response]]


class RequestContextMiddleware:
    """Also the last line of defence: an exception nothing else handled becomes the 500
    envelope here, logged once, instead of propagating to the server."""

    def __init__(
        self, app: ASGIApp, metrics: ManagerMetrics, *, hsts: bool, on_error: ErrorRenderer
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.hsts = hsts
        self.on_error = on_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        token = request_id_var.set(request_id)
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status, response_started = message["status"], True
                self._decorate(MutableHeaders(scope=message), scope, request_id)
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception as exc:
            if response_started:
                raise
            response = await self.on_error(Request(scope, receive), exc)
            await response(scope, receive, send_with_headers)
        finally:
            self._observe(scope, status, time.perf_counter() - started)
            request_id_var.reset(token)

    def _decorate(self, headers: MutableHeaders, scope: Scope, request_id: str) -> None:
        headers[REQUEST_ID_HEADER] = request_id
        for name, value in SECURITY_HEADERS.items():
            headers.setdefault(name, value)
        if headers.get("content-type", "").startswith("application/json"):
            headers.setdefault("content-security-policy", API_CSP)
        if scope["path"].startswith("/api/"):
            headers.setdefault("cache-control", "no-store")
        if self.hsts:
            headers.setdefault("strict-transport-security", HSTS)

    def _observe(self, scope: Scope, status: int, seconds: float) -> None:
        route = scope.get("route")
        # The route template, never the raw path: ids in paths would explode the label set.
        path = getattr(route, "path", None) or "unmatched"
        method = scope["method"]
        self.metrics.http_requests.labels(method=method, path=path, status=str(status)).inc()
        self.metrics.http_duration.labels(method=method, path=path).observe(seconds)
        client: Any = scope.get("client")
        log.info(
            "request",
            method=method,
            path=scope["path"],
            route=path,
            status=status,
            ip=scope.get("state", {}).get("client_ip") or (client[0] if client else None),
            duration_ms=round(seconds * 1000, 2),
        )


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            candidate: str = value.decode("latin-1")
            if VALID_REQUEST_ID.match(candidate):
                return candidate
            break
    return uuid.uuid4().hex
