"""A task's output while it runs: masked even when a secret arrives in pieces, capped with
the marker visible, and published as whole UTF-8 characters that only grow."""

from __future__ import annotations

import asyncio

import pytest

from opscaffold.daemon.agent.output import Capture, LiveOutput, Masker
from opscaffold.protocol.task import MASK

pytestmark = pytest.mark.timeout(30)
SECRETS = ("hunter2", "s3cr3t-token", "ab")
TEXT = "user=alice hunter2 pass=s3cr3t-token; ab ba hunter2hunter2 s3cr3t-toke end ab"


def whole(text: str) -> str:
    for secret in sorted(SECRETS, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 11, 64])
def test_no_published_piece_ever_shows_a_secret_however_the_text_is_split(size: int) -> None:
    masker = Masker(SECRETS)
    published = ""
    for start in range(0, len(TEXT), size):
        published += masker.feed(TEXT[start : start + size])
        for secret in SECRETS:
            assert secret not in published, (size, published)
    published += masker.flush()
    assert published == whole(TEXT)


def test_without_secrets_nothing_is_held_back() -> None:
    masker = Masker(())
    assert masker.feed("line 1\n") == "line 1\n"
    assert masker.flush() == ""


def test_the_live_output_is_the_final_output_and_ends_with_the_truncation_marker() -> None:
    live = LiveOutput()
    capture = Capture(32, ["hunter2"], live)
    capture.add(b"first hunt")
    assert live.text() == "first "  # "hunt" may begin a secret: held back
    capture.add(b"er2 line\n")
    assert live.text() == f"first {MASK} line\n"
    capture.add(b"x" * 40)  # beyond the cap: counted, dropped
    final = capture.finish()
    assert final == live.text()
    assert final == f"first {MASK} line\n{'x' * 13}\n[output truncated: kept 32 of 59 bytes]\n"
    assert capture.finish() == final
    assert live.ended


def test_a_read_never_splits_a_character_and_says_whether_more_is_there() -> None:
    live = LiveOutput()
    live.append("é" * 10)  # two bytes each
    part = live.read(0, limit=5)
    assert (part.offset, part.data, part.next, part.more, part.running) == (0, "éé", 4, True, True)
    assert live.read(3, limit=4).offset == 4  # from inside a character: the next one
    rest = live.read(part.next)
    assert (rest.data, rest.next, rest.more) == ("é" * 8, 20, False)
    live.end()
    assert live.read(20).running is False


async def test_a_reader_waits_for_more_output_or_the_end() -> None:
    live = LiveOutput()
    waiting = asyncio.create_task(live.wait_beyond(0, 30))
    await asyncio.sleep(0)
    assert not waiting.done()
    live.append("line\n")
    await asyncio.wait_for(waiting, 5)
    ending = asyncio.create_task(live.wait_beyond(live.size, 30))
    await asyncio.sleep(0)
    live.end()
    await asyncio.wait_for(ending, 5)
