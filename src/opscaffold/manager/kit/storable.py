"""What the databases can store, checked where input arrives.

PostgreSQL refuses a NUL character in text, no database (nor UTF-8) holds a lone surrogate
such as JSON's "\\ud800", no integer column holds more than a signed 64-bit value, and MySQL's
DATETIME ends with the year 9999. Input carrying any of these is refused at the edge with the
field named, instead of failing in the database as a 500 (or failing a batch it joined).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Path
from pydantic import AfterValidator, Field

BIGINT_MIN, BIGINT_MAX = -(2**63), 2**63 - 1
# Stored times are naive UTC; this range fits DATETIME on MySQL, timestamp on PostgreSQL
# and SQLite's text, and every Unix time a 64-bit daemon sends that a person could mean.
EARLIEST = datetime(1970, 1, 1)
LATEST = datetime(9999, 12, 31, 23, 59, 59)

_SURROGATE = re.compile("[\ud800-\udfff]")
# In raw JSON: an escaped NUL or surrogate, or a number too long for 64 bits. Only a body
# where one of these appears is decoded a second time to find the field.
_SUSPECT = re.compile(rb"\\u0000|\\u[dD][89a-fA-F][0-9a-fA-F]{2}|\d{19}")


def text_problem(value: str) -> str | None:
    """Why `value` cannot be stored as text, or None when it can."""
    if "\x00" in value:
        return "must not contain NUL characters"
    if _SURROGATE.search(value):
        return "is not valid Unicode text (lone surrogate)"
    return None


def json_problem(body: bytes) -> tuple[str, str] | None:
    """(field, why) for the first value of a JSON body no database can store, or None.

    The field is spelled like request validation errors: "body.tags.1"."""
    if not _SUSPECT.search(body):
        return None
    try:
        document = json.loads(body)
    except ValueError:  # not JSON: request validation says so
        return None
    return _value_problem(document, "body")


def _value_problem(document: object, root: str) -> tuple[str, str] | None:
    # A loop, not recursion: a body nested as deep as the JSON decoder allows must not
    # overflow the stack here.
    pending: list[tuple[str, object]] = [(root, document)]
    while pending:
        path, value = pending.pop()
        if isinstance(value, str):
            if problem := text_problem(value):
                return path, problem
        elif isinstance(value, int) and not isinstance(value, bool):
            if not BIGINT_MIN <= value <= BIGINT_MAX:
                return path, "is out of range (a signed 64-bit integer)"
        elif isinstance(value, list):
            pending.extend((f"{path}.{i}", item) for i, item in reversed(list(enumerate(value))))
        elif isinstance(value, dict):
            for key, item in reversed(list(value.items())):
                field = f"{path}.{_printable(key)}"
                if problem := text_problem(key):
                    return field, problem
                pending.append((field, item))
    return None


def _printable(key: str) -> str:
    return _SURROGATE.sub("?", key.replace("\x00", ""))[:64]


def storable_time(value: datetime) -> datetime:
    """Aware times become UTC; a naive one is taken as UTC. Either must fit the columns."""
    try:
        utc = value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)
    except OverflowError:
        raise ValueError(_TIME_RANGE) from None
    if not EARLIEST <= utc.replace(tzinfo=None) <= LATEST:
        raise ValueError(_TIME_RANGE)
    return utc


_TIME_RANGE = "must be between 1970-01-01T00:00:00Z and 9999-12-31T23:59:59Z"

# An id of a row: every primary key is a BIGINT counted from 1.
Id = Annotated[int, Field(ge=1, le=BIGINT_MAX)]
# A time a column can hold, as an aware UTC datetime.
StorableTime = Annotated[datetime, AfterValidator(storable_time)]
# The same for a path parameter such as /nodes/{id}.
IdPath = Annotated[int, Path(ge=1, le=BIGINT_MAX)]
