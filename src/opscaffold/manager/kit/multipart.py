"""A streaming reader of multipart/form-data bodies (RFC 7578).

Text fields are kept (each bounded); the one file part is handed, chunk by chunk as it
arrives, to a sink the caller provides, so an upload of any size never sits whole in memory.
A body that ends before its closing boundary is truncated and refused.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

MAX_HEADER_BYTES = 8 * 1024
MAX_FIELD_BYTES = 64 * 1024
MAX_PARTS = 32
_BOUNDARY = re.compile(r'boundary="?([0-9A-Za-z\'()+_,./:=? -]{1,70})"?', re.IGNORECASE)
_PARAM = re.compile(r';\s*([A-Za-z*]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')


class FormError(ValueError):
    """The body is not a well-formed form; `field` names the part at fault when one is."""

    def __init__(self, message: str, field: str = "body") -> None:
        super().__init__(message)
        self.field = field


@dataclass
class Form:
    fields: dict[str, str] = field(default_factory=dict)
    file_field: str | None = None
    filename: str | None = None


FileSink = Callable[[bytes], Awaitable[None]]


def boundary_of(content_type: str) -> bytes:
    media = content_type.split(";", 1)[0].strip().lower()
    found = _BOUNDARY.search(content_type)
    if media != "multipart/form-data" or found is None:
        raise FormError("the body must be multipart/form-data with a boundary")
    return found.group(1).rstrip(" ").encode()


async def read_form(
    chunks: AsyncIterator[bytes], boundary: bytes, file_field: str, sink: FileSink
) -> Form:
    """Read the whole form: text fields into `Form.fields`, the part named `file_field` into
    `sink`. Refuses (FormError) a second file, an unknown file part, and a truncated body."""
    reader = _Reader(chunks)
    delimiter = b"--" + boundary
    await reader.skip_past(delimiter, limit=MAX_HEADER_BYTES)
    form = Form()
    for _ in range(MAX_PARTS):
        ending = await reader.take(2)
        if ending == b"--":
            return form
        if ending != b"\r\n":
            raise FormError("malformed multipart boundary")
        name, filename = _disposition(await reader.until(b"\r\n\r\n", MAX_HEADER_BYTES))
        if filename is not None:
            if name != file_field or form.file_field is not None:
                raise FormError(f"only one file is taken, as field '{file_field}'", name)
            form.file_field, form.filename = name, filename
            await reader.stream_until(b"\r\n" + delimiter, sink)
            continue
        if name in form.fields:
            raise FormError("is given twice", name)
        value = await reader.until(b"\r\n" + delimiter, MAX_FIELD_BYTES, field=name)
        try:
            form.fields[name] = value.decode("utf-8")
        except UnicodeDecodeError:
            raise FormError("is not UTF-8 text", name) from None
    raise FormError(f"more than {MAX_PARTS} parts")


def _disposition(head: bytes) -> tuple[str, str | None]:
    """The part's field name and file name (None for a text field)."""
    for line in head.decode("utf-8", "replace").split("\r\n"):
        key, _, value = line.partition(":")
        if key.strip().lower() != "content-disposition":
            continue
        kind, _, _ = value.partition(";")
        if kind.strip().lower() != "form-data":
            break
        params = {k.lower(): _unquote(v.strip()) for k, v in _PARAM.findall(value)}
        if "name" not in params:
            break
        return params["name"], params.get("filename", _extended(params.get("filename*")))
    raise FormError("a part has no Content-Disposition: form-data; name=...")


def _extended(value: str | None) -> str | None:
    """An RFC 5987 `filename*` (UTF-8''percent-encoded), sent by some clients instead."""
    if value is None:
        return None
    charset, _, rest = value.partition("'")
    _, _, encoded = rest.partition("'")
    try:
        return urllib.parse.unquote(encoded, encoding=charset or "utf-8", errors="strict")
    except (LookupError, UnicodeDecodeError):
        raise FormError("the file name is not valid text", "file") from None


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


class _Reader:
    """Bytes of the body with look-ahead, pulled from the request stream as needed."""

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = bytearray()
        self._ended = False

    async def _more(self) -> None:
        if self._ended:
            raise FormError("the body ended before the form did (truncated upload)")
        try:
            chunk = await anext(self._chunks)
        except StopAsyncIteration:
            self._ended = True
            chunk = b""
        self._buffer += chunk

    async def take(self, size: int) -> bytes:
        while len(self._buffer) < size:
            await self._more()
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    async def skip_past(self, marker: bytes, limit: int) -> None:
        await self.until(marker, limit)

    async def until(self, marker: bytes, limit: int, field: str = "body") -> bytes:
        """The bytes before `marker` (which is consumed); FormError past `limit` bytes."""
        while (at := self._buffer.find(marker)) < 0:
            if len(self._buffer) > limit + len(marker):
                raise FormError(f"is longer than {limit} bytes", field)
            await self._more()
        if at > limit:
            raise FormError(f"is longer than {limit} bytes", field)
        data = bytes(self._buffer[:at])
        del self._buffer[: at + len(marker)]
        return data

    async def stream_until(self, marker: bytes, sink: FileSink) -> None:
        """Pass the bytes before `marker` to `sink` as they arrive, keeping back only what
        could be the start of the marker."""
        while (at := self._buffer.find(marker)) < 0:
            keep = len(marker) - 1
            if len(self._buffer) > keep:
                ready = bytes(self._buffer[:-keep])
                del self._buffer[:-keep]
                await sink(ready)
            await self._more()
        if at:
            await sink(bytes(self._buffer[:at]))
        del self._buffer[: at + len(marker)]
