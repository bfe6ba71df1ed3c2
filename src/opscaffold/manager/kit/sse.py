"""Server-Sent Events: a streamed response of `text/event-stream`, and the framing of events.

A client that stops reading is not buffered for: each write waits for the connection to take
it, and RequestLimits ends the response once a write has waited `write_timeout`. The events'
generator is closed however the response ends, so what it holds (a subscription, a wait) is
let go at once, not when the garbage collector gets to it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

MEDIA_TYPE = "text/event-stream"
KEEP_ALIVE = b": ping\n\n"


class EventStreamResponse(StreamingResponse):
    media_type = MEDIA_TYPE

    def __init__(self, events: AsyncGenerator[bytes]) -> None:
        self._events = events
        super().__init__(
            events,
            media_type=MEDIA_TYPE,
            headers={
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",  # a proxy (nginx) passes each event on at once
            },
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._events.aclose()


def event(name: str, data: object, event_id: int | str | None = None) -> bytes:
    """One event: its name, id (when given) and data as one line of JSON."""
    lines = [f"event: {name}"]
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines.append(f"data: {json.dumps(data, ensure_ascii=False, separators=(',', ':'))}")
    return ("\n".join(lines) + "\n\n").encode()
