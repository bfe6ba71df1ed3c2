"""Building envelopes: success for handlers, errors for the exception handlers."""

from __future__ import annotations

from contextvars import ContextVar
from typing import TypeVar

from fastapi.responses import JSONResponse

from opscaffold.manager.errors import DomainError, RateLimited
from opscaffold.manager.kit.envelope import Envelope

T = TypeVar("T")

# Set by the request middleware; read wherever an envelope or a log line is made.
request_id_var: ContextVar[str] = ContextVar("request_id", default="")


def ok(data: T) -> Envelope[T]:
    return Envelope(data=data, request_id=request_id_var.get())


def error_body(code: int, message: str, data: object = None) -> dict[str, object]:
    return {"code": code, "message": message, "data": data, "request_id": request_id_var.get()}


def error_response(error: DomainError) -> JSONResponse:
    headers = {"Retry-After": str(error.retry_after)} if isinstance(error, RateLimited) else None
    return JSONResponse(
        error_body(error.code, error.message, error.data),
        status_code=error.http_status,
        headers=headers,
    )
