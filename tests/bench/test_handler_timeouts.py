"""Handler timeouts are named by function wherever the benchmark counts them."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from bench.suites import handler_timing, merge, timeouts_text
from sim.deployment import Invocation


@dataclass
class _Records:
    invocations: list[Invocation] = field(default_factory=list)


@dataclass
class _Deployment:
    records: _Records


def _call(name: str, error: str | None = None) -> Invocation:
    function = name if name in ("intake", "reconciler") else "workflow"
    return Invocation(at=0.0, function=function, result=None, api_calls=1, cpu_ms=1.0, error=error, name=name)


def test_timeouts_are_counted_per_deployed_function_with_every_function_named() -> None:
    # GIVEN a reconciler run and a drain that hit their Timeout, and calls that did not
    timed_out = "TimedOut: Task timed out after 60.00 seconds"
    deployment = _Deployment(_Records([_call("reconciler", timed_out), _call("drain", timed_out),
                                       _call("drain", timed_out), _call("intake"), _call("launch-gate", "Boom: no")]))
    # WHEN the bench reads them
    figures = handler_timing(deployment)  # type: ignore[arg-type]
    # THEN the total and each function's share are reported, the workflows apart, a failure that is no timeout left out
    assert figures["handler_timeouts"] == 3
    assert figures["handler_timeouts_by_function"] == {"intake": 0, "reconciler": 1, "drain": 2, "launch-gate": 0}
    assert timeouts_text(figures) == "3: reconciler 1, drain 2"


@pytest.mark.parametrize(("figures", "text"), [
    ({"handler_timeouts": 0, "handler_timeouts_by_function": {"intake": 0, "drain": 0}}, "0"),
    ({"handler_timeouts": 1, "handler_timeouts_by_function": {"intake": 1, "drain": 0}}, "1: intake 1"),
    ({"drains": 3}, "n/a"),
])
def test_the_table_cell_names_the_functions_that_timed_out(figures: dict[str, object], text: str) -> None:
    # GIVEN one strategy's figures (a strategy without daemon-guard has no handler) / THEN the cell reads
    assert timeouts_text(figures) == text


def test_seeds_pool_by_summing_each_functions_timeouts() -> None:
    # GIVEN two seeds' placement figures
    one = {"launches": 1, "handler_timeouts": 1, "handler_timeouts_by_function": {"intake": 1, "drain": 0}}
    two = {"launches": 1, "handler_timeouts": 2, "handler_timeouts_by_function": {"intake": 0, "drain": 2}}
    # WHEN pooled / THEN counts add up per function, not averaged
    assert merge([one, two])["handler_timeouts_by_function"] == {"intake": 1, "drain": 2}
