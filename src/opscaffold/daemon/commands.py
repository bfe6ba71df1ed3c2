"""Commands from the Manager: delivered at least once, so remembered by id; and the one
payload every node understands itself (`config` intervals)."""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from dataclasses import dataclass

MIN_INTERVAL = 1.0
MAX_INTERVAL = 86_400.0


class CommandError(ValueError):
    """A command that cannot be carried out as sent: the Manager records it as failed, with
    this message as the reason (redelivering it would fail the same way)."""


class Deduplicator:
    """The ids of the last `capacity` commands seen, and how each ended (None: done, else the
    reason it failed), oldest forgotten first."""

    def __init__(self, capacity: int = 4096) -> None:
        self.capacity = capacity
        self._seen: OrderedDict[str, str | None] = OrderedDict()

    def first_time(self, command_id: str) -> bool:
        """True the first time an id is seen (and remembers it), False on a redelivery."""
        if command_id in self._seen:
            self._seen.move_to_end(command_id)
            return False
        self._seen[command_id] = None
        if len(self._seen) > self.capacity:
            self._seen.popitem(last=False)
        return True

    def record(self, command_id: str, error: str | None) -> None:
        if command_id in self._seen:
            self._seen[command_id] = error

    def outcome(self, command_id: str) -> str | None:
        """How a command seen before ended, to answer its redelivery the same way."""
        return self._seen.get(command_id)


@dataclass(frozen=True, slots=True)
class Intervals:
    heartbeat: float
    metrics: float


@dataclass(frozen=True, slots=True)
class ConfigChange:
    heartbeat_interval: float | None
    metric_interval: float | None
    other: dict[str, str]  # keys this daemon does not act on yet

    def apply(self, current: Intervals) -> Intervals:
        return Intervals(
            self.heartbeat_interval or current.heartbeat,
            self.metric_interval or current.metrics,
        )


def parse_config(payload: bytes) -> ConfigChange:
    """`{"config": {"heartbeat_interval": "30", "metric_interval": "60", ...}}`.

    Values are seconds, as strings or numbers; a trailing `s` is accepted because the
    Manager's own settings write durations that way.
    """
    try:
        document = json.loads(payload or b"{}")
    except ValueError as exc:
        raise CommandError(f"config payload is not JSON: {exc}") from exc
    config = document.get("config") if isinstance(document, dict) else None
    if not isinstance(config, dict):
        raise CommandError('config payload has no "config" object')
    values = {str(k): str(v) for k, v in config.items()}
    return ConfigChange(
        _seconds(values, "heartbeat_interval"),
        _seconds(values, "metric_interval"),
        {k: v for k, v in values.items() if k not in ("heartbeat_interval", "metric_interval")},
    )


def _seconds(values: dict[str, str], key: str) -> float | None:
    raw = values.get(key)
    if raw is None:
        return None
    try:
        seconds = float(raw.strip().removesuffix("s"))
    except ValueError as exc:
        raise CommandError(f"{key}={raw!r} is not a number of seconds") from exc
    if (problem := interval_problem(key, seconds, repr(raw))) is not None:
        raise CommandError(problem)
    return seconds


def interval_problem(key: str, seconds: float, shown: str) -> str | None:
    """Why an interval the Manager sent cannot be used, or None. Zero or less would report
    without pause; longer than a day would look dead."""
    if not math.isfinite(seconds) or not MIN_INTERVAL <= seconds <= MAX_INTERVAL:
        return f"{key}={shown} is outside {MIN_INTERVAL:g}..{MAX_INTERVAL:g} s"
    return None
