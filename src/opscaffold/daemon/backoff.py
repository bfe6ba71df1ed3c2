"""Exponential backoff, capped, with optional full jitter."""

from __future__ import annotations

import random
from collections.abc import Callable


class Backoff:
    """Delays `initial * 2**n`, capped at `cap`.

    With full jitter (the default) each delay is drawn uniformly from [0, that bound]: after a
    Manager restart thousands of daemons reconnect spread over the window instead of in waves.
    A local child process has no herd to spread, so the agent supervisor turns jitter off.
    """

    def __init__(
        self,
        initial: float = 1.0,
        cap: float = 30.0,
        *,
        full_jitter: bool = True,
        rng: Callable[[], float] = random.random,
    ) -> None:
        if not 0 < initial <= cap:
            raise ValueError("backoff needs 0 < initial <= cap")
        self.initial = initial
        self.cap = cap
        self._full_jitter = full_jitter
        self._rng = rng
        self._attempt = 0

    def bound(self) -> float:
        """The largest delay the next call may return."""
        # The exponent is capped so 2**attempt never grows without limit on a long outage.
        return min(self.cap, self.initial * 2.0 ** min(self._attempt, 62))

    def next(self) -> float:
        bound = self.bound()
        self._attempt += 1
        return bound * self._rng() if self._full_jitter else bound

    def reset(self) -> None:
        self._attempt = 0
