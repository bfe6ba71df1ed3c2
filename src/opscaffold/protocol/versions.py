"""Version strings of packages, compared as versions: `1.10.0` is newer than `1.9.3`.

The accepted form is semantic versioning without build metadata: MAJOR.MINOR.PATCH with an
optional pre-release (`2.0.0-rc.1`), at most 32 characters (the column that stores it). A
pre-release sorts before its release; its dot-separated parts compare numerically when both
are numbers, as text otherwise, and a numeric part sorts before a textual one.
"""

from __future__ import annotations

import re
from functools import total_ordering

MAX_LENGTH = 32
_PATTERN = re.compile(
    r"(0|[1-9]\d{0,8})\.(0|[1-9]\d{0,8})\.(0|[1-9]\d{0,8})"
    r"(?:-((?:0|[1-9]\d{0,8}|\d*[A-Za-z-][0-9A-Za-z-]*)"
    r"(?:\.(?:0|[1-9]\d{0,8}|\d*[A-Za-z-][0-9A-Za-z-]*))*))?"
)


class InvalidVersion(ValueError):
    pass


@total_ordering
class Version:
    __slots__ = ("_key", "text")

    def __init__(self, text: str) -> None:
        found = _PATTERN.fullmatch(text) if len(text) <= MAX_LENGTH else None
        if found is None:
            raise InvalidVersion(
                f"{text[:40]!r} is not a version like 1.4.2 or 2.0.0-rc.1 "
                f"(at most {MAX_LENGTH} characters)"
            )
        self.text = text
        major, minor, patch, pre = found.groups()
        release = (int(major), int(minor), int(patch))
        # A release sorts after all of its pre-releases.
        parts = tuple(_part(p) for p in pre.split(".")) if pre else ()
        self._key = (release, not parts, parts)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Version) and self._key == other._key

    def __lt__(self, other: Version) -> bool:
        return self._key < other._key

    def __hash__(self) -> int:
        return hash(self._key)

    def __repr__(self) -> str:
        return f"Version({self.text!r})"

    def __str__(self) -> str:
        return self.text


def _part(text: str) -> tuple[int, int, str]:
    return (0, int(text), "") if text.isdigit() else (1, 0, text)


def parse(text: str) -> Version:
    return Version(text)
