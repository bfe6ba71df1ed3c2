"""Version strings: what is accepted, and that they compare as versions, not as text."""

from __future__ import annotations

import pytest

from opscaffold.protocol.versions import InvalidVersion, Version


def test_versions_compare_as_versions() -> None:
    ordered = [
        "0.9.0",
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "1.2.0",
        "1.10.0",
        "10.0.0",
    ]
    parsed = [Version(text) for text in ordered]
    assert sorted(reversed(parsed)) == parsed
    assert max(parsed).text == "10.0.0"
    assert Version("1.0.0") == Version("1.0.0")
    assert len({Version("1.0.0"), Version("1.0.0")}) == 1


@pytest.mark.parametrize(
    "text",
    [
        "",
        "1",
        "1.0",
        "v1.0.0",
        "01.0.0",
        "1.0.0; rm -rf /",
        "1.0.0-",
        "1.0.0-01",
        "1.0.0+build",
        "1.0.0\x00",
        "../1.0.0",
        "1.0.0-" + "a" * 30,
    ],
)
def test_anything_else_is_refused(text: str) -> None:
    with pytest.raises(InvalidVersion):
        Version(text)
