"""The configuration keys the Manager and its daemons act on, each with its type and range.

Any other key is passed through to daemons as text. A known key's value is checked when it is
written; one stored before that check (or made invalid by a later change of settings) is
ignored when configurations are merged, with a warning, so the level above (in the end the
default) applies and a bad value never breaks Register or a push.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from opscaffold.manager.config import Settings
from opscaffold.manager.errors import InvalidArgument
from opscaffold.manager.logging import get_logger

log = get_logger(__name__)

_WHOLE_NUMBER = re.compile(r"[0-9]{1,9}")
MAX_INTERVAL_S = 86_400  # a day; the reference daemon refuses longer intervals too


@dataclass(frozen=True, slots=True)
class KnownKey:
    """A whole number of seconds from `minimum` to a day, or less where `below_timeout`."""

    name: str
    minimum: int
    # A node beating no faster than node.heartbeat_timeout would flap offline between beats.
    below_timeout: bool = False

    def maximum(self, settings: Settings) -> int:
        if not self.below_timeout:
            return MAX_INTERVAL_S
        timeout = int(settings.node.heartbeat_timeout.total_seconds())
        return min(MAX_INTERVAL_S, max(self.minimum, timeout - 1))

    def problem(self, value: str, settings: Settings) -> str | None:
        """Why `value` is not acceptable, or None."""
        maximum = self.maximum(settings)
        expected = f"a whole number of seconds from {self.minimum} to {maximum}"
        if self.below_timeout:
            expected += " (shorter than node.heartbeat_timeout)"
        if not _WHOLE_NUMBER.fullmatch(value) or not self.minimum <= int(value) <= maximum:
            return f"must be {expected}, got {value[:32]!r}"
        return None


KNOWN_KEYS: dict[str, KnownKey] = {
    key.name: key
    for key in (
        KnownKey("heartbeat_interval", 1, below_timeout=True),
        KnownKey("metric_interval", 1),
    )
}


def check(config: Mapping[str, str], settings: Settings) -> None:
    """Refuse a configuration map holding a known key with a value out of type or range."""
    errors = [
        {"field": f"config.{name}", "message": problem}
        for name, value in config.items()
        if name in KNOWN_KEYS and (problem := KNOWN_KEYS[name].problem(value, settings))
    ]
    if errors:
        message = "; ".join(f"{e['field']} {e['message']}" for e in errors)
        raise InvalidArgument(message, data={"errors": errors})


def usable(level: str, config: Mapping[str, object], settings: Settings) -> dict[str, str]:
    """A stored map as text, without known keys whose value is unusable (each logged)."""
    kept: dict[str, str] = {}
    for name, raw in config.items():
        value = raw if isinstance(raw, str) else str(raw)
        known = KNOWN_KEYS.get(name)
        problem = known.problem(value, settings) if known else None
        if problem is None:
            kept[name] = value
        else:
            log.warning("stored config value ignored", level=level, key=name, problem=problem)
    return kept


def seconds(config: Mapping[str, str], name: str, default: int) -> int:
    """A known key of an effective configuration as seconds (merged maps hold checked values;
    the default covers a key nobody set)."""
    value = config.get(name, "")
    return int(value) if _WHOLE_NUMBER.fullmatch(value) else default
