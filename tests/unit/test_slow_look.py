"""The slow look: when a workflow waiting on events reads ECS anyway."""

from __future__ import annotations

import pytest
from daemon_guard.core.slow_look import LOOK_MAX_S, LOOK_MIN_S, seconds_to_slow_look, slow_look_due, slow_look_interval


@pytest.mark.parametrize(("looked_at", "heard_at", "interval"), [
    pytest.param(100.0, 100.0, LOOK_MIN_S, id="a look right after an event: the next after the floor"),
    pytest.param(100.0, 80.0, 20.0, id="a look after 20 s of silence: the next 20 s later"),
    pytest.param(100.0, 60.0, 40.0, id="silent looks space out geometrically"),
    pytest.param(1000.0, 0.0, LOOK_MAX_S, id="a long silence: never more than the reconciler's period"),
])
def test_the_interval_is_the_silence_already_seen_within_its_range(looked_at: float, heard_at: float,
                                                                  interval: float) -> None:
    # GIVEN a last look and the last event before it / WHEN the interval is asked / THEN it is that silence, bounded
    assert slow_look_interval(looked_at, heard_at) == interval


@pytest.mark.parametrize(("now", "due", "left"), [
    (105.0, False, 5.0),
    (110.0, True, 0.0),
    (130.0, True, 0.0),
])
def test_a_look_is_due_once_the_interval_has_passed_since_the_last(now: float, due: bool, left: float) -> None:
    # GIVEN a look at 100 s right after an event (interval 10 s) / WHEN asked at `now` / THEN due past 110 s
    assert slow_look_due(now, 100.0, 100.0) is due
    assert seconds_to_slow_look(now, 100.0, 100.0) == left
