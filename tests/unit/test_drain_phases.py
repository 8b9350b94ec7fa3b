"""Each phase of the drain is one pure function; and what each drain order may promise.

Orders (core.config.DrainOrder): ``draining`` hands the daemons' timing to ECS; ``apps-first`` shuts
the gate, stops every app task itself and follows it to STOPPED before DRAINING; ``tiers`` also stops
each daemon tier itself behind the tier attribute its daemons' constraint reads.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from daemon_guard.core.actions import Action, SetAttribute, SetDraining, StopTasks
from daemon_guard.core.config import DrainOrder, StandalonePolicy
from daemon_guard.core.drain import (
    BUDGET_POLL_S,
    DrainPolicy,
    PhaseInput,
    PhaseOutcome,
    plan_drain_step,
    plan_fence,
    plan_replicas,
    plan_standalone,
    plan_tier,
    replica_stops,
)
from daemon_guard.core.model import ServiceView, TaskView
from daemon_guard.core.placement import GATE_DRAINING, TIER_STOPPED, tier_attribute, tier_constraint

from tests.unit.conftest import INSTANCE_ARN, a_replica_service, a_task
from tests.unit.test_drain_planner import (
    AGENTS,
    EVERYTHING,
    LOGS,
    METRICS,
    REPLICAS,
    STANDALONE,
    START,
    at,
    fresh,
    policy,
    request,
    view,
)

GATE = "daemon-guard.gate"
SHUT_GATE = SetAttribute(INSTANCE_ARN, GATE, GATE_DRAINING)
DRAINING = SetDraining((INSTANCE_ARN,))


def ordered(order: DrainOrder, standalone: StandalonePolicy = StandalonePolicy.WAIT) -> DrainPolicy:
    """The three-tier policy of the planner tests, with a drain order."""
    return replace(policy(standalone, heartbeat_s=0), order=order, gate_attribute=GATE)


def phase(tasks: tuple[TaskView, ...], progress_phase: str = "replicas", tier: int = 0, *,
          order: DrainOrder = DrainOrder.TIERS, now: float = START + 10,
          services: dict[str, ServiceView] | None = None,
          standalone: StandalonePolicy = StandalonePolicy.WAIT, **progress: object) -> PhaseInput:
    """The input of one phase function."""
    begun = at(progress_phase, tier, gate_closed=True, **progress)
    # The gated orders request DRAINING only once the apps are gone (at the first tier).
    begun = replace(begun, draining_requested=order is DrainOrder.DRAINING or (progress_phase == "tier" and tier > 0))
    return PhaseInput(view(tasks, now=now, services=services), begun, ordered(order, standalone), START + 900)


def stopped(outcome: PhaseOutcome) -> list[tuple[str, ...]]:
    """The task ARNs of each StopTasks of a phase's actions."""
    return [a.task_arns for a in outcome.actions if isinstance(a, StopTasks)]


# ---- the fence ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("order", "status", "expected"), [
    pytest.param(DrainOrder.DRAINING, "ACTIVE", [DRAINING], id="draining: DRAINING first (ECS times the daemons)"),
    pytest.param(DrainOrder.APPS_FIRST, "ACTIVE", [SHUT_GATE], id="apps-first: the gate shuts, no DRAINING yet"),
    pytest.param(DrainOrder.TIERS, "ACTIVE", [SHUT_GATE], id="tiers: the gate shuts, no DRAINING yet"),
    pytest.param(DrainOrder.TIERS, "DRAINING", [], id="already DRAINING (someone else): nothing to shut"),
])
def test_the_fence_keeps_new_work_off_the_instance(order: DrainOrder, status: str, expected: list[Action]) -> None:
    # GIVEN a fresh drain / WHEN the fence is planned
    actions, progress = plan_fence(view(EVERYTHING, status=status), fresh(), ordered(order))
    # THEN the order's fence is requested exactly once
    assert list(actions) == expected
    assert plan_fence(view(EVERYTHING, status=status), progress, ordered(order))[0] == ()


# ---- replicas -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("tasks", "services", "expected"), [
    pytest.param(REPLICAS, {"api": a_replica_service("api", desired=4, running=4, min_healthy=50)},
                 [("api-1", "api-2")], id="room above minimumHealthyPercent: both stop"),
    pytest.param(REPLICAS, {"api": a_replica_service("api", desired=4, running=3, min_healthy=50)},
                 [("api-1",)], id="one task of room: one stops"),
    pytest.param(REPLICAS, {"api": a_replica_service("api", desired=2, running=2, min_healthy=100)},
                 [("api-1",)], id="minimumHealthyPercent 100 at full count: one at a time"),
    pytest.param(REPLICAS, {"api": a_replica_service("api", desired=2, running=1, min_healthy=100)},
                 [], id="minimumHealthyPercent 100, a replacement not yet RUNNING: none"),
    pytest.param(REPLICAS, {}, [], id="service not described: left for the next look"),
    pytest.param((a_task("api-1", "api", last_status="PENDING"),), {}, [("api-1",)],
                 id="a task not yet RUNNING always goes"),
])
def test_the_guard_stops_replicas_within_minimum_healthy(tasks: tuple[TaskView, ...], services: dict[str, ServiceView],
                                                         expected: list[tuple[str, ...]]) -> None:
    # GIVEN replicas on the instance and their services' counts (order tiers)
    # WHEN the replica phase is planned
    outcome = plan_replicas(phase(tasks + AGENTS, services=services))
    # THEN the guard stops exactly the replicas the budget allows, and no daemon
    assert stopped(outcome) == expected
    assert not outcome.finished


def test_replicas_held_back_by_the_budget_are_looked_at_again_soon() -> None:
    # GIVEN a service at minimumHealthyPercent 100 / WHEN one of two replicas may go
    outcome = plan_replicas(phase(REPLICAS, services={"api": a_replica_service("api", desired=2, running=2,
                                                                               min_healthy=100)}))
    # THEN the drain looks again within seconds (a replacement starting elsewhere sends no event here)
    assert outcome.look_again_s == BUDGET_POLL_S


def test_a_replica_already_stopping_here_uses_up_the_room() -> None:
    # GIVEN one replica of a 100% service already told to stop / WHEN the budget is worked out
    tasks = (a_task("api-1", "api", stopping=True), a_task("api-2", "api"))
    svc = {"api": a_replica_service("api", desired=2, running=2, min_healthy=100)}
    # THEN the other waits for it
    assert replica_stops(tasks, svc, ("api-1",)) == []


def test_order_draining_leaves_the_replicas_to_ecs() -> None:
    # GIVEN order draining / WHEN the replica phase is planned
    outcome = plan_replicas(phase(REPLICAS, order=DrainOrder.DRAINING,
                                  services={"api": a_replica_service("api")}))
    # THEN the guard stops nothing (ECS replaces them) and waits
    assert stopped(outcome) == []
    assert not outcome.finished


@pytest.mark.parametrize(("tasks", "finished"), [
    pytest.param((a_task("api-1", "api", stopping=True), *AGENTS), False, id="a replica still stopping: wait"),
    pytest.param(AGENTS + STANDALONE, True, id="every replica STOPPED: the phase is over"),
])
def test_the_replica_phase_ends_only_when_every_replica_is_stopped(tasks: tuple[TaskView, ...],
                                                                   finished: bool) -> None:
    # GIVEN what is left / WHEN the replica phase is planned
    outcome = plan_replicas(phase(tasks, services={"api": a_replica_service("api")}, stop_requested=("api-1",)))
    # THEN it is finished only once no replica is live
    assert outcome.finished is finished


# ---- standalone tasks ---------------------------------------------------------------------------

@pytest.mark.parametrize(("standalone", "now", "expected", "finished"), [
    pytest.param(StandalonePolicy.STOP, START + 10, [("batch-1",)], False, id="stop: at once"),
    pytest.param(StandalonePolicy.WAIT, START + 10, [], False, id="wait: given their time"),
    pytest.param(StandalonePolicy.WAIT, START + 300, [("batch-1",)], False, id="wait: stopped after the wait"),
    pytest.param(StandalonePolicy.IGNORE, START + 10, [], True, id="ignore: the phase is over"),
])
def test_standalone_tasks_follow_the_policy(standalone: StandalonePolicy, now: float,
                                            expected: list[tuple[str, ...]], finished: bool) -> None:
    # GIVEN a standalone task and the daemons / WHEN the standalone phase is planned
    outcome = plan_standalone(phase(STANDALONE + AGENTS, "standalone", now=now, standalone=standalone,
                                    since=START))
    # THEN the policy decides
    assert stopped(outcome) == expected
    assert outcome.finished is finished


# ---- daemon tiers -------------------------------------------------------------------------------

@pytest.mark.parametrize(("order", "tier", "tasks", "expected"), [
    pytest.param(DrainOrder.TIERS, 0, AGENTS + METRICS + LOGS,
                 [SetAttribute(INSTANCE_ARN, tier_attribute("agents", GATE), TIER_STOPPED),
                  StopTasks(("xray-1",), "daemon-guard drain: agents")],
                 id="tiers: the tier's attribute first (ECS restarts none), then its daemons"),
    pytest.param(DrainOrder.TIERS, 1, METRICS + LOGS,
                 [SetAttribute(INSTANCE_ARN, tier_attribute("metrics", GATE), TIER_STOPPED),
                  StopTasks(("prometheus-1",), "daemon-guard drain: metrics")], id="tiers: the next tier"),
    pytest.param(DrainOrder.APPS_FIRST, 0, AGENTS + METRICS + LOGS,
                 [DRAINING, StopTasks(("xray-1",), "daemon-guard drain: agents")],
                 id="apps-first: DRAINING only now that every app task STOPPED"),
    pytest.param(DrainOrder.TIERS, 0, STANDALONE + AGENTS,
                 [StopTasks(("batch-1",), "daemon-guard drain: late app task")],
                 id="an app task that arrived late stops first; no daemon yet"),
])
def test_each_tier_is_fenced_then_stopped_by_the_guard(order: DrainOrder, tier: int, tasks: tuple[TaskView, ...],
                                                       expected: list[Action]) -> None:
    # GIVEN the drain in a tier phase / WHEN the tier is planned
    outcome = plan_tier(phase(tasks, "tier", tier, order=order))
    # THEN the order's fence comes before the stops
    assert list(outcome.actions) == expected


def test_a_fenced_tier_is_not_fenced_twice() -> None:
    # GIVEN tier 0 already fenced and told to stop / WHEN planned again while its daemon stops
    outcome = plan_tier(phase((a_task("xray-1", "xray", stopping=True), *METRICS), "tier", 0,
                              tiers_fenced=("agents",), stop_requested=("xray-1",)))
    # THEN nothing is repeated
    assert outcome.actions == ()
    assert not outcome.finished


def test_the_tier_constraint_reads_the_tier_attribute() -> None:
    # GIVEN a tier name / THEN the daemon services' constraint fails once the drain sets the attribute
    assert tier_constraint("metrics", GATE) == {
        "type": "memberOf", "expression": f"attribute:{tier_attribute('metrics', GATE)} !exists"}


# ---- the whole order ----------------------------------------------------------------------------

def test_order_tiers_never_asks_ecs_to_drain_before_the_daemons_are_gone() -> None:
    # GIVEN order tiers and everything on the instance, replicas with room to go
    services = {"api": a_replica_service("api", desired=4, running=4)}
    pol = ordered(DrainOrder.TIERS, StandalonePolicy.STOP)
    progress = fresh()
    left = list(EVERYTHING)
    seen: list[Action] = []
    # WHEN every step stops what it asks for at once
    for n in range(12):
        step = plan_drain_step(request(), view(tuple(left), now=START + n, services=services), progress, pol)
        seen.extend(step.actions)
        asked = {arn for a in step.actions if isinstance(a, StopTasks) for arn in a.task_arns}
        left = [t for t in left if t.arn not in asked]
        progress = step.progress
        if progress.done:
            break
    # THEN no DRAINING at all, every app before any daemon, the tiers in order, then CONTINUE
    order = [arn for a in seen if isinstance(a, StopTasks) for arn in a.task_arns]
    assert not [a for a in seen if isinstance(a, SetDraining)]
    assert order == ["api-1", "api-2", "batch-1", "xray-1", "prometheus-1", "fluent-bit-1"]
    assert progress.done
