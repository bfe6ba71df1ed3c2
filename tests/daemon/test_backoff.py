from __future__ import annotations

import pytest

from opscaffold.daemon.backoff import Backoff


def test_full_jitter_stays_within_the_doubling_bound_and_the_cap() -> None:
    backoff = Backoff(initial=1.0, cap=30.0)
    for attempt in range(200):
        bound = min(30.0, 2.0**attempt)
        assert backoff.bound() == bound
        assert 0.0 <= backoff.next() <= bound


def test_the_random_draw_spans_the_whole_window() -> None:
    top = Backoff(initial=1.0, cap=8.0, rng=lambda: 1.0)
    assert [top.next() for _ in range(5)] == [1.0, 2.0, 4.0, 8.0, 8.0]
    bottom = Backoff(initial=1.0, cap=8.0, rng=lambda: 0.0)
    assert bottom.next() == 0.0


def test_without_jitter_delays_double_up_to_the_cap() -> None:
    backoff = Backoff(initial=0.5, cap=3.0, full_jitter=False)
    assert [backoff.next() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_reset_starts_over() -> None:
    backoff = Backoff(initial=1.0, cap=30.0, full_jitter=False)
    for _ in range(10):
        backoff.next()
    backoff.reset()
    assert backoff.next() == 1.0


def test_long_outages_do_not_overflow() -> None:
    backoff = Backoff(initial=1.0, cap=30.0, full_jitter=False)
    for _ in range(10_000):
        assert backoff.next() <= 30.0


def test_rejects_nonsense_bounds() -> None:
    with pytest.raises(ValueError, match="initial"):
        Backoff(initial=5.0, cap=1.0)
