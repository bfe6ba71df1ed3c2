"""Shaping FastAPI's OpenAPI document for generated clients."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

# pydantic names Envelope[UserRead] "Envelope_UserRead_"; "UserReadEnvelope" reads better.
_GENERIC = re.compile(r"^(Envelope|Page)_(\w+?)_$")
_UNUSED = ("HTTPValidationError", "ValidationError")
STREAMED = "text/event-stream"


_LIST = re.compile(r"^list_(\w+)_$")
_OPTIONAL = re.compile(r"^Union_(\w+)__NoneType_$")


def _readable(name: str) -> str:
    """Envelope_UserRead_ → UserReadEnvelope, list_X_ → XList, Union_X__NoneType_ → XOrNull."""
    if match := _GENERIC.match(name):
        return _readable(match.group(2)) + match.group(1)
    if match := _OPTIONAL.match(name):
        return _readable(match.group(1)) + "OrNull"
    if match := _LIST.match(name):
        return _readable(match.group(1)) + "List"
    return name


def tidy(document: dict[str, Any]) -> dict[str, Any]:
    """Rename generic schemas and drop FastAPI's 422 responses: our validation errors are 400s
    with the ErrorEnvelope shape, already declared on every route. A streamed answer (Server-
    Sent Events) declares only its own media type, not the JSON FastAPI assumes."""
    for path_item in document.get("paths", {}).values():
        for operation in path_item.values():
            operation.get("responses", {}).pop("422", None)
            content = operation.get("responses", {}).get("200", {}).get("content", {})
            if STREAMED in content:
                content.pop("application/json", None)
    schemas = document.get("components", {}).get("schemas", {})
    for name in _UNUSED:
        schemas.pop(name, None)
    renames = {name: _readable(name) for name in schemas if _readable(name) != name}
    text = json.dumps(document)
    for old, new in renames.items():
        text = text.replace(f'"#/components/schemas/{old}"', f'"#/components/schemas/{new}"')
    tidied: dict[str, Any] = json.loads(text)
    new_schemas = tidied.get("components", {}).get("schemas", {})
    for old, new in renames.items():
        new_schemas[new] = new_schemas.pop(old)
        new_schemas[new]["title"] = new
    tidied.setdefault("components", {})["schemas"] = dict(sorted(new_schemas.items()))
    return tidied


def declare_bearer_auth(
    document: dict[str, Any], needs_token: Callable[[str, str], bool]
) -> dict[str, Any]:
    """Mark the operations that need 'Authorization: Bearer <access token>'."""
    schemes = document.setdefault("components", {}).setdefault("securitySchemes", {})
    schemes["bearerAuth"] = {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    for path, path_item in document.get("paths", {}).items():
        for method, operation in path_item.items():
            if needs_token(method, path):
                operation["security"] = [{"bearerAuth": []}]
    return document
