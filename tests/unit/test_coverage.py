"""Daemon coverage: one definition of a covered daemon, used by placement, the reconciler and `status`."""

from __future__ import annotations

import pytest
from daemon_guard.core.coverage import Coverage, coverage, coverage_percent, running_groups
from daemon_guard.core.model import TaskView

from tests.unit.conftest import a_daemon_service, a_task

ROUTER, METRICS = a_daemon_service("fluent-bit"), a_daemon_service("metrics-agent")
ELIGIBLE = (ROUTER, METRICS)


@pytest.mark.parametrize(("tasks", "expected"), [
    pytest.param((a_task("fb", "fluent-bit"), a_task("ma", "metrics-agent")),
                 Coverage(("fluent-bit", "metrics-agent"), ()), id="both RUNNING: complete"),
    pytest.param((a_task("fb", "fluent-bit"),), Coverage(("fluent-bit",), ("metrics-agent",)),
                 id="one without a task"),
    pytest.param((a_task("fb", "fluent-bit", last_status="PENDING"),), Coverage((), ("fluent-bit", "metrics-agent")),
                 id="a PENDING task covers nothing yet"),
    pytest.param((a_task("fb", "fluent-bit", stopping=True),), Coverage((), ("fluent-bit", "metrics-agent")),
                 id="a RUNNING task being stopped covers nothing"),
    pytest.param((a_task("fb", "fluent-bit", last_status="STOPPED"),), Coverage((), ("fluent-bit", "metrics-agent")),
                 id="a STOPPED task covers nothing"),
    pytest.param((a_task("api", "api"), a_task("batch", None)), Coverage((), ("fluent-bit", "metrics-agent")),
                 id="replica and standalone tasks cover no daemon"),
    pytest.param((), Coverage((), ("fluent-bit", "metrics-agent")), id="no task at all"),
])
def test_a_daemon_is_covered_by_a_running_task_not_being_stopped(tasks: tuple[TaskView, ...],
                                                                 expected: Coverage) -> None:
    # GIVEN two eligible daemons and the tasks on the instance
    # WHEN coverage is judged
    covered = coverage(ELIGIBLE, running_groups(tasks))
    # THEN the daemons split, in eligibility order, into RUNNING and not
    assert covered == expected
    assert covered.complete is (expected.not_running == ())


@pytest.mark.parametrize(("running", "eligible", "percent"), [
    (0, 0, 100.0), (3, 4, 75.0), (4, 4, 100.0), (0, 2, 0.0),
])
def test_coverage_percent_is_running_over_eligible_slots_and_full_when_nothing_is_eligible(
        running: int, eligible: int, percent: float) -> None:
    # GIVEN slot counts / WHEN the share is taken / THEN it is running over eligible, 100 with no slot
    assert coverage_percent(running, eligible) == percent
