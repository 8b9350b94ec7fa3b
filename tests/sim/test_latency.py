"""Invocations on simulated time: each call waits its latency while the world goes on, and the Timeout ends it."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from sim.clock import Clock
from sim.latency import ApiLatency, HandlerKilled, Outcome, Workers


def test_an_invocations_calls_land_at_its_start_plus_their_latency_while_other_events_interleave() -> None:
    # GIVEN an invocation at t=0 whose two calls take 1 s and 2 s, and another event due at t=0.5
    clock, seen = Clock(), []
    workers = Workers(clock)
    clock.at(0.5, lambda: seen.append(("other event", clock.now)))

    def handler() -> str:
        for latency in (1.0, 2.0):
            workers.sleep(latency)
            seen.append(("call served", clock.now))
        return "done"

    outcomes: list[Outcome] = []
    # WHEN it runs and the clock goes on
    workers.start(handler, outcomes.append)
    assert not outcomes  # it waits on its first call
    clock.run_until(10.0)
    # THEN each call was served at its own time, the other event in between, and it finished at t=3
    assert seen == [("other event", 0.5), ("call served", 1.0), ("call served", 3.0)]
    assert [o.result for o in outcomes] == ["done"]


def test_a_call_that_would_end_after_the_timeout_is_never_served_and_the_invocation_ends_killed() -> None:
    # GIVEN an invocation with a 2.5 s Timeout whose handler swallows every Exception
    clock, served = Clock(), []
    workers = Workers(clock)

    def handler() -> None:
        for latency in (1.0, 2.0):
            try:
                workers.sleep(latency)
                served.append(clock.now)
            except Exception:  # a handler that hides errors still cannot hide Lambda's timeout
                served.append("swallowed")

    outcomes: list[Outcome] = []
    # WHEN it runs
    workers.start(handler, outcomes.append, deadline=2.5)
    clock.run_until(10.0)
    # THEN the first call was served, the second never was, and the invocation ended at its Timeout
    assert served == [1.0]
    (outcome,) = outcomes
    assert isinstance(outcome.error, HandlerKilled)


def test_an_invocation_still_waiting_when_the_deployment_closes_ends_without_reporting() -> None:
    # GIVEN an invocation waiting on a call
    clock = Clock()
    workers = Workers(clock)
    outcomes: list[Outcome] = []
    workers.start(lambda: workers.sleep(5.0), outcomes.append)
    # WHEN the workers close before the call is served
    workers.close()
    clock.run_until(10.0)
    # THEN it ended without reporting an outcome (no late call lands after the deployment is gone)
    assert outcomes == []


def test_outside_an_invocation_sleeping_is_refused_so_the_caller_keeps_its_own_clock() -> None:
    # GIVEN no invocation / THEN sleep says so and the clock does not move
    clock = Clock()
    assert Workers(clock).sleep(3.0) is False
    assert clock.now == 0.0


@pytest.mark.parametrize(("operation", "median"), [("DescribeTasks", 0.04), ("ListTasks", 0.04),
                                                  ("StopTask", 0.08), ("PutAttributes", 0.08)])
def test_reads_and_writes_draw_around_their_own_medians(operation: str, median: float) -> None:
    # GIVEN a latency with no spread / THEN each call costs exactly its kind's median
    latency = ApiLatency(read_median_s=0.04, write_median_s=0.08, sigma=0.0)
    assert latency.draw(random.Random(1), operation) == pytest.approx(median)


def test_a_negative_latency_is_refused() -> None:
    with pytest.raises(ValueError, match=">= 0"):
        ApiLatency(read_median_s=-1.0)


def test_an_invocation_whose_slice_cannot_be_set_up_ends_with_that_error_and_control_comes_back() -> None:
    # GIVEN an invocation whose set-up fails (say, a log stream a caller closed)
    clock = Clock()
    workers = Workers(clock)
    outcomes: list[Outcome] = []

    def broken_enter() -> Callable[[], None]:
        raise ValueError("I/O operation on closed file")

    # WHEN it starts / THEN it ends with that error, and the caller gets control back (no thread left waiting)
    workers.start(lambda: "never", outcomes.append, enter=broken_enter)
    assert [type(o.error) for o in outcomes] == [ValueError]
    assert outcomes[0].result is None
