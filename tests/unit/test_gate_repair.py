"""Gate mode's repair of a daemon missing on an instance whose gate is open: shut the gate again
(`<gate>=repair@<epoch>`), make room only once the shut gate is seen, reopen with every daemon back; the gate's
timeout counts from the re-shut, non-critical daemons fail open (and the gate is not shut again for them within
the episode), critical ones have the instance replaced."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import pytest
from daemon_guard.core.actions import OpenGate, ReplaceInstance, SetAttribute, StopTasks
from daemon_guard.core.config import PlacementMode
from daemon_guard.core.eligibility import Eligibility
from daemon_guard.core.futility import EPISODE_S, PreemptTries
from daemon_guard.core.model import InstanceView, Resources, TaskDefinitionView, TaskView
from daemon_guard.core.placement import (
    PlacementPolicy,
    PlacementState,
    gate_constraint,
    gate_reshut_at,
    gate_shut_age,
    needs_repair_record,
    plan_placement,
    repair_gate_value,
)
from daemon_guard.core.query import evaluate

from tests.unit.conftest import INSTANCE_ARN, T0, a_daemon_service, a_replica_service, a_task, an_instance

GATE = "daemon-guard.gate"
TIMEOUT_S = 120
LONG_AGO_S = 3600.0  # the instance registered an hour before the daemon went missing
NOW = T0 + timedelta(seconds=LONG_AGO_S)
FLUENT_BIT = a_daemon_service("fluent-bit")
TASK_DEFS = {"arn:td/fluent-bit:1": TaskDefinitionView("arn:td/fluent-bit:1", "fluent-bit", "bridge",
                                                       Resources(256, 512))}
API = tuple(a_task(f"api-{i}", "api", cpu=512, memory=2048) for i in range(1, 5))
DAEMON_RUNNING = (a_task("fb-1", "fluent-bit", cpu=256, memory=512),)
DAEMON_PENDING = (a_task("fb-1", "fluent-bit", last_status="PENDING", cpu=256, memory=512),)
OPEN = {GATE: "open"}
REPAIR_VALUE = f"repair@{int(NOW.timestamp())}"


def shut_again(seconds_ago: float) -> dict[str, str]:
    """The gate attribute as the reflex writes it when it shuts the gate again, `seconds_ago`."""
    return {GATE: f"repair@{int(NOW.timestamp() - seconds_ago)}"}


def state(attributes: dict[str, str], tasks: Sequence[TaskView] = API, *, full: bool = True,
          tries: PreemptTries | None = None, huge: bool = False) -> PlacementState:
    """An instance registered an hour ago with fluent-bit eligible; `full`: no room left for it."""
    left = 0 if full else 1024
    instance: InstanceView = an_instance(cpu_left=left, memory_left=left * 4, attributes=attributes)
    task_defs = {"arn:td/fluent-bit:1": TaskDefinitionView("arn:td/fluent-bit:1", "fluent-bit", "bridge",
                                                           Resources(256, 64_000))} if huge else TASK_DEFS
    return PlacementState(instance=instance, tasks=tuple(tasks), eligibility=Eligibility((FLUENT_BIT,)),
                          task_defs=task_defs, services={"api": a_replica_service("api", desired=4, running=4,
                                                                                  min_healthy=50)},
                          budget_left={"api": 2}, now=NOW, preempt_tries=tries, replacements_left=5)


def gated(critical: frozenset[str] = frozenset()) -> PlacementPolicy:
    """Gate mode with a 120 s gate timeout."""
    return PlacementPolicy(PlacementMode.GATE, GATE, TIMEOUT_S, critical_daemons=critical)


RESHUT = (SetAttribute(INSTANCE_ARN, GATE, REPAIR_VALUE),)
OPENS = (OpenGate(INSTANCE_ARN, GATE),)
GAVE_UP = PreemptTries(0, 0, NOW - timedelta(seconds=60), ("fluent-bit",), gave_up=True)
GAVE_UP_LAST_EPISODE = PreemptTries(0, 0, NOW - timedelta(seconds=EPISODE_S + 1), ("fluent-bit",), gave_up=True)


@pytest.mark.parametrize(("placement", "decision", "actions"), [
    pytest.param(state(OPEN), "shut-gate", RESHUT, id="open gate, daemon missing, no room: shut it again first"),
    pytest.param(state(OPEN, full=False), "shut-gate", RESHUT,
                 id="open gate, daemon missing, room free: shut it again, or a replica takes the room first"),
    pytest.param(state(OPEN, DAEMON_PENDING + API), "wait", (), id="open gate, daemon placed and starting: wait"),
    pytest.param(state(OPEN, huge=True), "cannot-fit", (), id="daemon bigger than the instance: nothing to shut for"),
    pytest.param(state(OPEN, tries=GAVE_UP), "futile", (),
                 id="open gate after a repair failed open in this episode: serve on, do not shut again"),
    pytest.param(state(OPEN, tries=GAVE_UP_LAST_EPISODE), "shut-gate", RESHUT,
                 id="a give-up of an earlier episode: shut again"),
    pytest.param(state(shut_again(5)), "evict", "evict", id="gate seen shut again, no room: evict"),
    pytest.param(state(shut_again(5), full=False), "wait-for-ecs", (), id="shut again, room free: ECS places"),
    pytest.param(state(shut_again(5), DAEMON_RUNNING + API), "open-gate", OPENS,
                 id="gate shut again, every daemon back: reopen"),
    pytest.param(state(shut_again(TIMEOUT_S - 1), full=False), "wait-for-ecs", (),
                 id="the timeout counts from the re-shut, not from the registration an hour ago"),
    pytest.param(state(shut_again(TIMEOUT_S), full=False), "gate-failed-open", OPENS,
                 id="re-shut past its timeout, non-critical daemon: fail open"),
    pytest.param(state({GATE: "draining"}), "draining", (), id="the drain shut the gate: no repair"),
])
def test_a_daemon_missing_on_an_open_gate_is_repaired_behind_the_gate(
        placement: PlacementState, decision: str, actions: object) -> None:
    # GIVEN an instance that ran its daemons behind an open gate, its gate as ECS shows it, its tasks and room
    # WHEN the reflex plans in gate mode
    plan = plan_placement(placement, gated())
    # THEN the gate is shut again before any eviction, replicas are evicted only behind a gate seen shut, and the
    # gate reopens (or fails open past the timeout counted from the re-shut)
    assert plan.decision == decision
    if actions == "evict":
        assert [type(a) for a in plan.actions] == [StopTasks]
    else:
        assert plan.actions == actions


def test_a_reshut_gate_that_fails_open_records_that_the_guard_gave_up_for_the_episode() -> None:
    # GIVEN a gate shut again for fluent-bit two minutes ago, fluent-bit still not placed
    plan = plan_placement(state(shut_again(TIMEOUT_S), full=False), gated())
    # WHEN it fails open / THEN the record the edge writes first says the guard gave up on fluent-bit here now,
    # so the next check serves on without shutting the gate again
    assert plan.tries == PreemptTries(0, 0, NOW, ("fluent-bit",), gave_up=True)
    assert plan_placement(state(OPEN, tries=plan.tries), gated()).decision == "futile"


def test_a_new_instances_gate_failing_open_records_nothing() -> None:
    # GIVEN a new instance's gate (never opened) shut past its timeout / WHEN it fails open
    placement = state({}, full=False)
    plan = plan_placement(placement, gated())
    # THEN as before: no record of tries (there was no repair)
    assert (plan.decision, plan.tries) == ("gate-failed-open", None)


def test_a_critical_daemon_missing_past_the_reshut_timeout_replaces_the_instance() -> None:
    # GIVEN fluent-bit critical, its gate shut again two minutes ago and fluent-bit still missing
    plan = plan_placement(state(shut_again(TIMEOUT_S), full=False), gated(frozenset({"fluent-bit"})))
    # WHEN planned / THEN the gate never reopens without it: the instance is replaced
    assert plan.decision == "replace-instance"
    assert [type(a) for a in plan.actions] == [ReplaceInstance]


@pytest.mark.parametrize(("value", "reshut_at"), [
    pytest.param(REPAIR_VALUE, NOW.timestamp(), id="written by the reflex"),
    pytest.param("open", None, id="open"),
    pytest.param("draining", None, id="shut by a drain"),
    pytest.param("repair@", None, id="no time"),
    pytest.param("repair@soon", None, id="not epoch seconds"),
    pytest.param("fixed@1714564800", None, id="not the guard's value"),
])
def test_the_reshut_time_is_read_off_the_gate_value(value: str, reshut_at: float | None) -> None:
    # GIVEN a gate attribute value / WHEN read / THEN only the reflex's own value gives a re-shut time
    assert gate_reshut_at(an_instance(attributes={GATE: value}), GATE) == reshut_at


def test_the_reshut_value_round_trips_and_keeps_replicas_out() -> None:
    # GIVEN the value written when the gate is shut again
    instance = an_instance(attributes={GATE: repair_gate_value(NOW)})
    # THEN it says when, the gate's age counts from then, and the gate constraint does not admit the instance
    assert gate_reshut_at(instance, GATE) == NOW.timestamp()
    assert gate_shut_age(instance, GATE, NOW + timedelta(seconds=30)) == 30.0
    assert gate_shut_age(an_instance(), GATE, NOW) == LONG_AGO_S
    assert not evaluate(gate_constraint(GATE)["expression"], instance)


@pytest.mark.parametrize(("mode", "placement", "needed"), [
    pytest.param(PlacementMode.GATE, state(OPEN), True, id="open gate, daemon missing"),
    pytest.param(PlacementMode.GATE, state(shut_again(5)), True, id="gate shut again, daemon missing"),
    pytest.param(PlacementMode.GATE, state(OPEN, DAEMON_RUNNING + API), False, id="every daemon running"),
    pytest.param(PlacementMode.GATE, state({}), False, id="a new instance's shut gate: no repair"),
    pytest.param(PlacementMode.PREEMPT, state(OPEN), False, id="preempt mode: its own inputs"),
])
def test_the_record_of_tries_is_read_only_where_a_repair_may_shut_or_fail_open(
        mode: PlacementMode, placement: PlacementState, needed: bool) -> None:
    # GIVEN an instance / WHEN asked whether the edge must read the instance's record of tries first
    # THEN yes only in gate mode, with a daemon not running behind an open or re-shut gate
    assert needs_repair_record(placement, PlacementPolicy(mode, GATE, TIMEOUT_S)) is needed
