"""Daemons that cannot fit: an instance whose registered resources cannot hold its eligible daemons even empty."""

from __future__ import annotations

from datetime import timedelta

import pytest
from daemon_guard.core.actions import StopTasks
from daemon_guard.core.config import PlacementMode
from daemon_guard.core.eligibility import Eligibility
from daemon_guard.core.model import Resources, ServiceView, TaskDefinitionView
from daemon_guard.core.placement import (
    PlacementPolicy,
    PlacementState,
    daemons_cannot_fit,
    needs_eviction_inputs,
    plan_placement,
)

from tests.unit.conftest import T0, a_daemon_service, a_replica_service, a_task, an_instance

# The conftest instance registers 2048 CPU units and 8192 MiB.
SMALL_LOG_ROUTER = a_daemon_service("fluent-bit")
BIG_AGENT = a_daemon_service("security-agent")
HUGE = a_daemon_service("huge")
TASK_DEFS = {
    "arn:td/fluent-bit:1": TaskDefinitionView("arn:td/fluent-bit:1", "fluent-bit", "bridge", Resources(256, 512)),
    "arn:td/security-agent:1": TaskDefinitionView("arn:td/security-agent:1", "security-agent", "bridge",
                                                  Resources(1024, 7936)),
    "arn:td/huge:1": TaskDefinitionView("arn:td/huge:1", "huge", "bridge", Resources(256, 64_000)),
}
API = tuple(a_task(f"api-{i}", "api", cpu=512, memory=2048) for i in range(1, 5))
FULL = an_instance(cpu_left=0, memory_left=0)
PREEMPT = PlacementPolicy(PlacementMode.PREEMPT, "daemon-guard.gate", 120)


def state(*daemons: ServiceView) -> PlacementState:
    """A full instance running four api replicas; `daemons` eligible, none running."""
    return PlacementState(instance=FULL, tasks=API, eligibility=Eligibility(daemons), task_defs=TASK_DEFS,
                          services={"api": a_replica_service("api", desired=4, running=4, min_healthy=0)},
                          budget_left={"api": 4}, now=T0 + timedelta(seconds=10))


@pytest.mark.parametrize(("daemons", "cannot"), [
    ((SMALL_LOG_ROUTER,), ()),
    ((SMALL_LOG_ROUTER, BIG_AGENT), ("fluent-bit", "security-agent")),  # each fits alone, not together
    ((SMALL_LOG_ROUTER, HUGE), ("fluent-bit", "huge")),
])
def test_an_instance_is_judged_by_what_it_registered_not_by_what_is_left(daemons: tuple[ServiceView, ...],
                                                                          cannot: tuple[str, ...]) -> None:
    assert daemons_cannot_fit(FULL, daemons, TASK_DEFS) == cannot


def test_daemons_that_fit_only_one_at_a_time_are_never_made_room_for() -> None:
    # GIVEN two daemons that together exceed the instance even empty, neither running
    placement = state(SMALL_LOG_ROUTER, BIG_AGENT)
    # WHEN the reflex plans in preempt mode
    plan = plan_placement(placement, PREEMPT)
    # THEN it evicts nothing (it could never end) and says why
    assert plan.decision == "cannot-fit" and plan.actions == ()
    assert "no eviction can make room" in plan.reason
    assert not needs_eviction_inputs(placement, PREEMPT)


def test_a_daemon_too_big_alone_is_set_aside_and_room_is_still_made_for_the_others() -> None:
    # GIVEN the log router (fits) and a daemon bigger than the instance
    plan = plan_placement(state(SMALL_LOG_ROUTER, HUGE), PREEMPT)
    # THEN room is made for the log router only
    assert plan.decision == "evict"
    (stop,) = plan.actions
    assert isinstance(stop, StopTasks) and "fluent-bit" in stop.reason and "huge" not in stop.reason
