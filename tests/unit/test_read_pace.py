"""The reconciler's read pace: a token bucket that waits rather than lets a read through over its share."""

from __future__ import annotations

import pytest
from daemon_guard.adapters.pacing import ReadPace


class FakeClock:
    """Simulated seconds; sleeping moves them on."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_reads_within_the_burst_go_at_once_and_the_rest_at_the_rate() -> None:
    # GIVEN a pace of 8 reads a second with a burst of 40
    clock = FakeClock()
    pace = ReadPace(8.0, 40.0, lambda: clock.now, clock.sleep)
    # WHEN 120 reads are asked for at once
    for _ in range(120):
        pace.take()
    # THEN the first 40 waited for nothing, and the 80 others took 10 s at 8 a second
    assert pace.reads == 120
    assert clock.now == pytest.approx(10.0)
    assert len(clock.slept) == 80


def test_an_idle_pace_refills_to_its_burst_and_no_further() -> None:
    # GIVEN a pace emptied by its burst
    clock = FakeClock()
    pace = ReadPace(8.0, 40.0, lambda: clock.now, clock.sleep)
    for _ in range(40):
        pace.take()
    # WHEN a minute passes with no read, then 41 reads are asked for
    clock.now += 60.0
    for _ in range(41):
        pace.take()
    # THEN 40 go at once (the burst, not 480) and the 41st waits an eighth of a second
    assert clock.slept == [pytest.approx(0.125)]


def test_a_pace_without_rate_or_burst_is_refused() -> None:
    # GIVEN / WHEN a pace of no rate / THEN it is refused with a clear message
    with pytest.raises(ValueError, match="rate above 0"):
        ReadPace(0.0, 40.0, lambda: 0.0, lambda _s: None)
