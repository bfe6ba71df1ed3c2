"""What every sender shares: the failure it raises and a bounded HTTP POST."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

from opscaffold.manager.config import SmtpSettings

MAX_ANSWER = 64 * 1024  # bytes of a robot's answer read to find its error code


class DeliveryFailed(Exception):
    """The receiver did not take the notification. The reason is short and ours (an HTTP
    status, a robot's error code, an exception class): never the receiver's body."""


@dataclass(frozen=True, slots=True)
class SendContext:
    client: httpx.AsyncClient
    smtp: SmtpSettings


def compact(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


async def post(
    client: httpx.AsyncClient,
    url: str | httpx.URL,
    content: bytes,
    headers: dict[str, str],
) -> tuple[int, bytes]:
    """POST and read at most MAX_ANSWER bytes of the answer. A redirect is not followed."""
    request = client.build_request(
        "POST", url, content=content, headers={"Content-Type": "application/json", **headers}
    )
    response = await client.send(request, stream=True)
    try:
        answer = bytearray()
        async for chunk in response.aiter_bytes():
            answer += chunk
            if len(answer) >= MAX_ANSWER:
                break
        return response.status_code, bytes(answer[:MAX_ANSWER])
    finally:
        await response.aclose()


def robot_code(status: int, answer: bytes, *keys: str) -> None:
    """A robot's answer is success only as HTTP 200 with its error code 0."""
    if status != 200:
        raise DeliveryFailed(f"HTTP {status}")
    try:
        document = json.loads(answer)
    except ValueError:
        raise DeliveryFailed("HTTP 200 but the answer is not JSON") from None
    if not isinstance(document, dict):
        raise DeliveryFailed("HTTP 200 but the answer is not a JSON object")
    for key in keys:
        if key in document:
            code = document[key]
            if code == 0:
                return
            shown = code if isinstance(code, int) else str(code)[:16]
            raise DeliveryFailed(f"{key} {shown}")
    raise DeliveryFailed(f"HTTP 200 without {' or '.join(keys)}")
