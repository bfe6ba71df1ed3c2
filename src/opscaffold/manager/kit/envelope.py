"""The response envelope of every API route: {code, message, data, request_id}."""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel, Field

T = TypeVar("T")


class Envelope(BaseModel, Generic[T]):
    code: int = 0
    message: str = "ok"
    data: T
    request_id: str = ""


class FieldError(BaseModel):
    field: str = Field(description="dotted path of the offending input, e.g. body.username")
    message: str
    type: str


class ErrorData(BaseModel):
    errors: list[FieldError] | None = None
    retry_after: int | None = None


class ErrorEnvelope(BaseModel):
    code: int = Field(description="error code of spec appendix A (or our continuation of it)")
    message: str
    data: ErrorData | None = None
    request_id: str = ""


class EmptyData(BaseModel):
    pass


class Page(BaseModel, Generic[T]):
    total: int
    items: list[T]
    page: int
    page_size: int
