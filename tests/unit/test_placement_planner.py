"""The placement reflex: every eligible daemon runs on a new instance, by preemption, by a gate, or observed."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import pytest
from daemon_guard.core.actions import OpenGate, ReplaceInstance, SetAttribute, StopTasks
from daemon_guard.core.config import PlacementMode
from daemon_guard.core.eligibility import Eligibility
from daemon_guard.core.model import InstanceView, Resources, ServiceView, TaskDefinitionView, TaskView
from daemon_guard.core.placement import (
    PlacementPolicy,
    PlacementState,
    gate_constraint,
    needs_eviction_inputs,
    plan_placement,
)
from daemon_guard.core.query import evaluate

from tests.unit.conftest import INSTANCE_ARN, T0, a_daemon_service, a_replica_service, a_task, an_instance

GATE = "daemon-guard.gate"
GATE_TIMEOUT_S = 120
FLUENT_BIT = a_daemon_service("fluent-bit")
TASK_DEFS = {
    "arn:td/fluent-bit:1": TaskDefinitionView("arn:td/fluent-bit:1", "fluent-bit", "bridge", Resources(256, 512)),
}
SERVICES = {"api": a_replica_service("api", desired=4, running=4, min_healthy=50)}  # slack 2
API = tuple(a_task(f"api-{i}", "api", cpu=512, memory=2048) for i in range(1, 5))
DAEMON_RUNNING = (a_task("fb-1", "fluent-bit", cpu=256, memory=512),)
DAEMON_PENDING = (a_task("fb-1", "fluent-bit", last_status="PENDING", cpu=256, memory=512),)
FULL = an_instance(cpu_left=0, memory_left=0)
ROOMY = an_instance(cpu_left=1024, memory_left=4096)
OPEN = {GATE: "open"}
RESHUT = {GATE: f"repair@{int(T0.timestamp())}"}  # shut again for a missing daemon as the instance registered


def state(instance: InstanceView, tasks: Sequence[TaskView] = (), *, age_s: float = 10,
          budget: int = 2, services: dict[str, ServiceView] | None = None) -> PlacementState:
    """One instance, registered `age_s` ago, with fluent-bit eligible on it."""
    return PlacementState(instance=instance, tasks=tuple(tasks), eligibility=Eligibility((FLUENT_BIT,)),
                          task_defs=TASK_DEFS, services=SERVICES if services is None else services,
                          budget_left={"api": budget}, now=T0 + timedelta(seconds=age_s))


def policy(mode: PlacementMode) -> PlacementPolicy:
    """The reflex in `mode` with a 120 s gate timeout."""
    return PlacementPolicy(mode, GATE, GATE_TIMEOUT_S)


PREEMPT, GATED, OBSERVE = PlacementMode.PREEMPT, PlacementMode.GATE, PlacementMode.OBSERVE
EVICT_ONE = (StopTasks(("api-1",), ""),)


@pytest.mark.parametrize(("mode", "placement", "decision", "actions"), [
    pytest.param(PREEMPT, state(ROOMY, DAEMON_RUNNING + API), "complete", (), id="preempt: daemons running"),
    pytest.param(OBSERVE, state(ROOMY, DAEMON_RUNNING + API), "complete", (), id="observe: daemons running"),
    pytest.param(GATED, state(ROOMY, DAEMON_RUNNING), "open-gate", (OpenGate(INSTANCE_ARN, GATE),),
                 id="gate: daemons running behind a shut gate -> open it"),
    pytest.param(GATED, state(an_instance(attributes=OPEN), DAEMON_RUNNING), "complete", (),
                 id="gate: daemons running, gate already open"),
    pytest.param(GATED, state(ROOMY), "gate-shut", (), id="gate: daemon missing, within timeout -> keep shut"),
    pytest.param(GATED, state(ROOMY, age_s=GATE_TIMEOUT_S), "gate-failed-open", (OpenGate(INSTANCE_ARN, GATE),),
                 id="gate: shut past its timeout -> fail open"),
    pytest.param(PREEMPT, state(ROOMY, DAEMON_PENDING), "wait", (), id="daemon PENDING: wait"),
    pytest.param(PREEMPT, state(ROOMY, API[:1]), "wait-for-ecs", (), id="missing daemon fits: ECS places it"),
    pytest.param(PREEMPT, state(FULL, API), "evict", EVICT_ONE, id="preempt: no room -> evict"),
    pytest.param(GATED, state(an_instance(cpu_left=0, memory_left=0, attributes=OPEN), API), "shut-gate",
                 (SetAttribute(INSTANCE_ARN, GATE, f"repair@{int(T0.timestamp()) + 10}"),),
                 id="gate open: a missing daemon shuts the gate again before any eviction"),
    pytest.param(GATED, state(an_instance(cpu_left=0, memory_left=0, attributes=RESHUT), API), "evict", EVICT_ONE,
                 id="gate seen shut again: the repair evicts as in preempt"),
    pytest.param(OBSERVE, state(FULL, API), "would-evict", (), id="observe: decide, change nothing"),
    pytest.param(PREEMPT, state(FULL, API, budget=0), "blocked", (), id="no eviction budget left: blocked"),
    pytest.param(PREEMPT, state(an_instance("DRAINING"), API), "skip", (), id="DRAINING instance: skip"),
    pytest.param(PREEMPT, state(an_instance(agent_connected=False), API), "skip", (),
                 id="agent disconnected: skip"),
])
def test_the_reflex_decides_per_mode(mode: PlacementMode, placement: PlacementState, decision: str,
                                     actions: tuple[OpenGate | StopTasks, ...]) -> None:
    # GIVEN an instance's daemons, tasks and room / WHEN the reflex plans in `mode`
    plan = plan_placement(placement, policy(mode))
    # THEN it takes the expected decision with exactly the expected actions (eviction reasons aside)
    assert plan.decision == decision
    assert [_without_reason(a) for a in plan.actions] == list(actions)


def _without_reason(action: object) -> object:
    return StopTasks(action.task_arns, "") if isinstance(action, StopTasks) else action


def test_an_eviction_stops_the_fewest_replicas_and_says_why() -> None:
    # GIVEN a full instance and a missing daemon needing 256 CPU / 512 MiB
    plan = plan_placement(state(FULL, API), policy(PREEMPT))
    # THEN one replica is stopped, the missing daemon is named, and the reason is recorded on the task
    assert plan.would_evict == ("api-1",)
    assert plan.missing == ("fluent-bit",)
    (stop,) = plan.actions
    assert isinstance(stop, StopTasks)
    assert "fluent-bit" in stop.reason and len(stop.reason) <= 255


def test_observe_mode_reports_the_victims_it_would_choose() -> None:
    # GIVEN the same instance in observe mode / WHEN planned
    plan = plan_placement(state(FULL, API), policy(OBSERVE))
    # THEN no action, but the victims and the reason are reported
    assert plan.actions == ()
    assert plan.would_evict == ("api-1",)
    assert "fluent-bit" in plan.reason


@pytest.mark.parametrize(("placement", "words"), [
    pytest.param(state(FULL, API, budget=0), "fluent-bit cannot get room", id="budget spent"),
    pytest.param(state(FULL, API, services={"api": a_replica_service("api", min_healthy=100)}),
                 "fluent-bit cannot get room", id="service at its minimum healthy count"),
])
def test_a_blocked_plan_says_why(placement: PlacementState, words: str) -> None:
    # GIVEN no allowed eviction frees enough / WHEN planned
    plan = plan_placement(placement, policy(PREEMPT))
    # THEN it is blocked, changes nothing, and the reason names the daemon
    assert plan.decision == "blocked"
    assert plan.actions == ()
    assert words in plan.reason


def test_tasks_already_stopping_count_as_room_about_to_come_back() -> None:
    # GIVEN a full instance where an earlier eviction is still stopping
    tasks = (a_task("api-1", "api", cpu=512, memory=2048, stopping=True), *API[1:])
    # WHEN the reflex runs again
    plan = plan_placement(state(FULL, tasks), policy(PREEMPT))
    # THEN it evicts nothing more and waits for ECS
    assert plan.decision == "wait-for-ecs"
    assert plan.actions == ()


@pytest.mark.parametrize(("mode", "placement", "needed"), [
    pytest.param(PREEMPT, state(FULL, API), True, id="missing daemon does not fit: load services and budgets"),
    pytest.param(OBSERVE, state(FULL, API), True, id="observe still needs them to say what it would evict"),
    pytest.param(PREEMPT, state(ROOMY, API), False, id="missing daemon fits"),
    pytest.param(PREEMPT, state(FULL, DAEMON_RUNNING + API), False, id="nothing missing"),
    pytest.param(GATED, state(FULL, API), False, id="gate shut: the gate, not eviction, makes room"),
    pytest.param(GATED, state(an_instance(cpu_left=0, memory_left=0, attributes=OPEN), API), False,
                 id="gate open: shut again first, no eviction yet"),
    pytest.param(GATED, state(an_instance(cpu_left=0, memory_left=0, attributes=RESHUT), API), True,
                 id="gate shut again for a repair: repairs may evict"),
    pytest.param(PREEMPT, state(an_instance("DRAINING", cpu_left=0), API), False, id="DRAINING instance"),
])
def test_eviction_inputs_are_loaded_only_when_the_plan_may_evict(mode: PlacementMode, placement: PlacementState,
                                                                  needed: bool) -> None:
    # GIVEN an instance / WHEN asked whether the edge must load services, protection and budgets
    # THEN yes only when an eviction is possible
    assert needs_eviction_inputs(placement, policy(mode)) is needed


def test_the_gate_constraint_admits_only_instances_whose_gate_is_open() -> None:
    # GIVEN the helper replica services add in gate mode
    constraint = gate_constraint(GATE)
    # THEN it is a memberOf on the gate attribute that holds on an open gate only
    assert constraint == {"type": "memberOf", "expression": "attribute:daemon-guard.gate == open"}
    assert evaluate(constraint["expression"], an_instance(attributes=OPEN))
    assert not evaluate(constraint["expression"], an_instance())
    assert gate_constraint()["expression"] == "attribute:daemon-guard.gate == open"


CWAGENT = a_daemon_service("cwagent")
CWAGENT_TAGGED = a_daemon_service("cwagent", tags={"daemon-guard:critical": "true"})
FLUENT_BIT_UNTAGGED = a_daemon_service("fluent-bit", tags={"daemon-guard:critical": "false"})
CW_TD = TaskDefinitionView("arn:td/cwagent:1", "cwagent", "bridge", Resources(128, 256))
CW_RUNNING = (a_task("cw-1", "cwagent", cpu=128, memory=256),)
REPLACE_CW = "replace:cwagent"


def critical_state(daemons: tuple[ServiceView, ...], tasks: Sequence[TaskView] = (), *, age_s: float = GATE_TIMEOUT_S,
                   left: int = 5, replaced: bool = False, attributes: dict[str, str] | None = None) -> PlacementState:
    """A gated instance registered `age_s` ago with `daemons` eligible and `left` replacements in the hour."""
    return PlacementState(instance=an_instance(cpu_left=1024, memory_left=4096, attributes=attributes or {}),
                          tasks=tuple(tasks), eligibility=Eligibility(daemons),
                          task_defs={**TASK_DEFS, "arn:td/cwagent:1": CW_TD}, services=SERVICES,
                          budget_left={}, now=T0 + timedelta(seconds=age_s),
                          replacements_left=left, replaced=replaced)


CRITICAL_CW = PlacementPolicy(GATED, GATE, GATE_TIMEOUT_S, critical_daemons=frozenset({"cwagent"}))


@pytest.mark.parametrize(("placement", "critical", "decision", "actions"), [
    pytest.param(critical_state((FLUENT_BIT, CWAGENT), DAEMON_RUNNING), CRITICAL_CW, "replace-instance",
                 REPLACE_CW, id="critical daemon missing past the timeout: replace, never open"),
    pytest.param(critical_state((FLUENT_BIT, CWAGENT), DAEMON_RUNNING, age_s=GATE_TIMEOUT_S - 1), CRITICAL_CW,
                 "gate-shut", (), id="critical daemon missing within the timeout: keep waiting"),
    pytest.param(critical_state((FLUENT_BIT, CWAGENT), CW_RUNNING), CRITICAL_CW, "gate-failed-open",
                 (OpenGate(INSTANCE_ARN, GATE),), id="only a non-critical daemon missing: fail open as before"),
    pytest.param(critical_state((FLUENT_BIT, CWAGENT), DAEMON_RUNNING, left=0), CRITICAL_CW, "replace-held", (),
                 id="replacement budget spent: hold, the gate stays shut"),
    pytest.param(critical_state((FLUENT_BIT, CWAGENT), DAEMON_RUNNING, replaced=True), CRITICAL_CW, "replacing",
                 (), id="already replaced: nothing more, never twice"),
    pytest.param(critical_state((FLUENT_BIT, CWAGENT_TAGGED), DAEMON_RUNNING), policy(GATED), "replace-instance",
                 REPLACE_CW, id="the service tag daemon-guard:critical=true marks it"),
    pytest.param(critical_state((FLUENT_BIT_UNTAGGED, CWAGENT), CW_RUNNING),
                 PlacementPolicy(GATED, GATE, GATE_TIMEOUT_S, critical_daemons=frozenset({"fluent-bit"})),
                 "gate-failed-open", (OpenGate(INSTANCE_ARN, GATE),),
                 id="the tag daemon-guard:critical=false wins over the configured list"),
    pytest.param(critical_state((FLUENT_BIT, CWAGENT), DAEMON_RUNNING + CW_RUNNING), CRITICAL_CW, "open-gate",
                 (OpenGate(INSTANCE_ARN, GATE),), id="every daemon RUNNING: open"),
    pytest.param(critical_state((FLUENT_BIT, CWAGENT), DAEMON_RUNNING, attributes=OPEN), CRITICAL_CW,
                 "shut-gate", (SetAttribute(INSTANCE_ARN, GATE, f"repair@{int(T0.timestamp()) + GATE_TIMEOUT_S}"),),
                 id="gate already open: shut again for the repair, not replaced at once"),
    pytest.param(critical_state((FLUENT_BIT, CWAGENT), DAEMON_RUNNING),
                 PlacementPolicy(PREEMPT, GATE, GATE_TIMEOUT_S, critical_daemons=frozenset({"cwagent"})),
                 "wait-for-ecs", (), id="preempt mode: no gate, never replaced"),
])
def test_the_gate_never_opens_without_a_critical_daemon(placement: PlacementState, critical: PlacementPolicy,
                                                        decision: str, actions: object) -> None:
    # GIVEN a gated instance, its daemons, and which of them are critical
    # WHEN the reflex plans
    plan = plan_placement(placement, critical)
    # THEN a missing critical daemon past the timeout replaces the instance within the budget (or holds),
    # and the gate opens only with every critical daemon RUNNING
    assert plan.decision == decision
    if actions == REPLACE_CW:
        (replace,) = plan.actions
        assert isinstance(replace, ReplaceInstance)
        assert (replace.ec2_instance_id, replace.daemons) == (placement.instance.ec2_instance_id, ("cwagent",))
        assert "cwagent" in replace.reason
    else:
        assert plan.actions == actions
    assert not any(isinstance(a, OpenGate) for a in plan.actions) or "cwagent" not in plan.missing
