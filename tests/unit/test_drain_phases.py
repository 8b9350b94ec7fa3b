"""Each phase of the drain is one pure function; and what each drain order may promise.

Orders (core.config.DrainOrder): ``draining`` hands the daemons' timing to ECS; ``apps-first`` shuts
the gate, stops every app task itself and follows it to STOPPED before DRAINING; ``tiers`` also stops
each daemon tier itself behind the tier attribute its daemons' constraint reads.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from daemon_guard.adapters.ecs import task_definition_view
from daemon_guard.core import guard_events as ge
from daemon_guard.core.actions import Action, CompleteLifecycle, RecordHeartbeat, SetAttribute, SetDraining, StopTasks
from daemon_guard.core.config import DeadlinePolicy, DrainOrder, StandalonePolicy
from daemon_guard.core.drain import (
    BUDGET_POLL_S,
    HARD_END_MARGIN_S,
    POLL_S,
    STOP_MARGIN_S,
    DrainPolicy,
    DrainProgress,
    DrainRecord,
    DrainRequest,
    DrainStep,
    DrainView,
    Fences,
    Lifecycle,
    PhaseInput,
    PhaseOutcome,
    StopLedger,
    follow_stops,
    hard_end,
    phase_deadline,
    phase_stop_times,
    plan_drain_step,
    plan_fence,
    plan_replicas,
    plan_settle,
    plan_standalone,
    plan_tier,
    read_back,
    replica_stops,
)
from daemon_guard.core.model import ServiceView, TaskView
from daemon_guard.core.placement import GATE_DRAINING, GATE_OPEN, TIER_STOPPED, tier_attribute, tier_constraint
from daemon_guard.services.notify import drain_step_events
from jsonschema import Draft202012Validator, FormatChecker

from tests.unit.conftest import INSTANCE_ARN, a_replica_service, a_task
from tests.unit.test_drain_planner import (
    AGENTS,
    EVERYTHING,
    LIFECYCLE,
    LOGS,
    METRICS,
    REPLICAS,
    STANDALONE,
    START,
    TIERS,
    at,
    fresh,
    policy,
    request,
    stops,
    view,
)

GATE = "daemon-guard.gate"
SHUT_GATE = SetAttribute(INSTANCE_ARN, GATE, GATE_DRAINING)
DRAINING = SetDraining((INSTANCE_ARN,))


def ordered(order: DrainOrder, standalone: StandalonePolicy = StandalonePolicy.WAIT) -> DrainPolicy:
    """The three-tier policy of the planner tests, with a drain order."""
    return replace(policy(standalone, heartbeat_s=0), order=order, gate_attribute=GATE)


GATE_SHUT_AND_SEEN = Fences(gate_closed=True, gate_seen=True)


def phase(tasks: tuple[TaskView, ...], progress_phase: str = "replicas", tier: int = 0, *,
          order: DrainOrder = DrainOrder.TIERS, now: float = START + 10,
          services: dict[str, ServiceView] | None = None,
          standalone: StandalonePolicy = StandalonePolicy.WAIT,
          fences: Fences = GATE_SHUT_AND_SEEN, **parts: object) -> PhaseInput:
    """The input of one phase function (the gate shut and seen unless `fences` says otherwise)."""
    # The gated orders request DRAINING only once the apps are gone (at the first tier).
    drained = order is DrainOrder.DRAINING or (progress_phase == "tier" and tier > 0)
    begun = at(progress_phase, tier, fences=replace(fences, draining_requested=drained), **parts)
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


def with_gate(v: DrainView, value: str) -> DrainView:
    """The same observation with the instance's gate attribute at `value`."""
    assert v.instance is not None
    return replace(v, instance=replace(v.instance, attributes={**v.instance.attributes, GATE: value}))


@pytest.mark.parametrize("order", [DrainOrder.APPS_FIRST, DrainOrder.TIERS])
@pytest.mark.parametrize("written", [GATE_OPEN, "repair@1714564800"], ids=["opened", "shut again for a repair"])
def test_a_gate_reopened_after_the_drain_shut_it_is_shut_again(order: DrainOrder, written: str) -> None:
    # GIVEN a drain that shut the gate, and a gate opener (or the reflex shutting it for a missing daemon, which
    # reopens it once the daemon runs) whose earlier read made it write since
    _, shut = plan_fence(view(EVERYTHING), fresh(), ordered(order))
    reopened = with_gate(view(EVERYTHING), written)
    # WHEN the fence is planned on that observation
    actions, _ = plan_fence(reopened, shut, ordered(order))
    # THEN the gate is shut again; once the instance shows it shut, nothing more is asked
    assert list(actions) == [SHUT_GATE]
    assert plan_fence(with_gate(view(EVERYTHING), GATE_DRAINING), shut, ordered(order))[0] == ()


def test_no_daemon_stops_while_the_gate_shows_open() -> None:
    # GIVEN the first tier due, but the instance shows the gate reopened (a replica may be landing)
    inp = phase(AGENTS + METRICS, "tier", 0)
    inp = replace(inp, view=with_gate(inp.view, GATE_OPEN))
    # WHEN the tier is planned
    outcome = plan_tier(inp)
    # THEN no daemon is told to stop; the drain looks again once the gate is shut again
    assert stopped(outcome) == []
    assert not outcome.finished and outcome.look_again_s is not None


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
    pytest.param(REPLICAS, {"api": replace(a_replica_service("api", desired=2, running=2, min_healthy=100),
                                           pending_count=1)},
                 [], id="minimumHealthyPercent 100, runningCount full but a replacement pending: none"),
    pytest.param(REPLICAS, {"api": replace(a_replica_service("api", desired=4, running=4, min_healthy=50),
                                           pending_count=1)},
                 [("api-1",)], id="a replacement pending takes its task's place out of the room: one stops"),
    pytest.param(REPLICAS, {"api": replace(a_replica_service("api", desired=4, running=4, min_healthy=50),
                                           pending_count=4)},
                 [], id="a deployment starting a whole new set: none until they run"),
    pytest.param(REPLICAS, {"api": a_replica_service("api", desired=2, running=4, min_healthy=50)},
                 [("api-1",)], id="tasks over the desired count are ECS's to stop: counted as one task of room"),
    pytest.param(REPLICAS, {"api": replace(a_replica_service("api", desired=4, running=4, min_healthy=50),
                                           tasks_desired_running=3)},
                 [("api-1",)], id="another drain told one to stop, still RUNNING in runningCount: one stops"),
    pytest.param(REPLICAS, {"api": replace(a_replica_service("api", desired=2, running=2, min_healthy=100),
                                           tasks_desired_running=1)},
                 [], id="minimumHealthyPercent 100, one already told to stop elsewhere: none"),
    pytest.param(REPLICAS, {"api": replace(a_replica_service("api", desired=4, running=4, min_healthy=50),
                                           tasks_desired_running=5)},
                 [("api-1", "api-2")], id="more listed than desired (a deployment's surge) counts as desired"),
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
    # THEN the drain looks again within seconds (a replacement starting elsewhere sends no event here), and
    # knows it waits only on replacements (the workflow then re-reads the services, not the instance)
    assert outcome.look_again_s == BUDGET_POLL_S
    assert outcome.progress.watch.replicas_held


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
    outcome = plan_replicas(phase(tasks, services={"api": a_replica_service("api")},
                                  stops=StopLedger(requested=("api-1",))))
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


@pytest.mark.parametrize(("since", "now", "expected", "look_again_s"), [
    pytest.param(START + 200, START + 200, [], 60.0,
                 id="begun 200 s into the drain: waits the rest of the 300 s, looking again within a minute"),
    pytest.param(START + 270, START + 270, [], 30.0, id="30 s of the wait left: looks again when it ends"),
    pytest.param(START + 400, START + 400, [("batch-1",)], None,
                 id="a replica phase longer than the wait: stopped at once"),
])
def test_standalone_tasks_are_waited_for_from_the_drains_start_on_their_own_exits(
        since: float, now: float, expected: list[tuple[str, ...]], look_again_s: float | None) -> None:
    # GIVEN a standalone task, policy wait (300 s), the drain started at START and the standalone phase at `since`
    # WHEN the standalone phase is planned at `now`
    outcome = plan_standalone(phase(STANDALONE + AGENTS, "standalone", now=now, since=since))
    # THEN the wait counts from the drain's start (the task ran on while the replicas went), and until it ends the
    # phase waits for the task's exit (announced by its event), looking again at the wait's end or after a minute
    assert stopped(outcome) == expected
    assert outcome.look_again_s == look_again_s


# ---- daemon tiers -------------------------------------------------------------------------------

@pytest.mark.parametrize(("order", "tier", "tasks", "fence", "then"), [
    pytest.param(DrainOrder.TIERS, 0, AGENTS + METRICS + LOGS,
                 [SetAttribute(INSTANCE_ARN, tier_attribute("agents", GATE), TIER_STOPPED)],
                 [StopTasks(("xray-1",), "daemon-guard drain: agents", "agents")],
                 id="tiers: the tier's attribute first (ECS restarts none), then its daemons"),
    pytest.param(DrainOrder.TIERS, 1, METRICS + LOGS,
                 [SetAttribute(INSTANCE_ARN, tier_attribute("metrics", GATE), TIER_STOPPED)],
                 [StopTasks(("prometheus-1",), "daemon-guard drain: metrics", "metrics")], id="tiers: the next tier"),
    pytest.param(DrainOrder.APPS_FIRST, 0, AGENTS + METRICS + LOGS,
                 [DRAINING], [StopTasks(("xray-1",), "daemon-guard drain: agents", "agents")],
                 id="apps-first: DRAINING only now that every app task STOPPED"),
    pytest.param(DrainOrder.TIERS, 0, STANDALONE + AGENTS,
                 [StopTasks(("batch-1",), "daemon-guard drain: late app task", "agents")], [],
                 id="an app task that arrived late stops first; no daemon yet"),
])
def test_each_tier_is_fenced_then_stopped_by_the_guard_once_ecs_shows_the_fence(
        order: DrainOrder, tier: int, tasks: tuple[TaskView, ...], fence: list[Action], then: list[Action]) -> None:
    # GIVEN the drain in a tier phase / WHEN the tier is planned
    inp = phase(tasks, "tier", tier, order=order)
    first = plan_tier(inp)
    # THEN the order's fence comes first, alone: ECS's API is eventually consistent, so no daemon stops on it yet
    assert list(first.actions) == fence
    # WHEN a later look shows the fence in effect / THEN the tier's daemons stop
    seen = ecs_shows(inp.view, first.actions)
    second = plan_tier(replace(inp, view=seen, progress=read_back(seen, first.progress, inp.policy)))
    assert list(second.actions) == then


def test_a_tier_waits_while_its_fence_is_not_yet_seen() -> None:
    # GIVEN tier 0 fenced by the drain, its attribute not yet in what ECS shows (the write is still spreading)
    inp = phase(AGENTS + METRICS + LOGS, "tier", 0,
                fences=Fences(gate_closed=True, gate_seen=True, tiers_fenced=("agents",)))
    # WHEN the tier is planned / THEN no daemon stops and the drain looks again within seconds
    outcome = plan_tier(inp)
    assert outcome.actions == () and not outcome.finished
    assert outcome.look_again_s is not None and outcome.look_again_s <= POLL_S


@pytest.mark.parametrize(("progress_phase", "tasks"), [
    pytest.param("replicas", REPLICAS, id="replicas: none stops (ECS could place its replacement right here)"),
    pytest.param("tier", AGENTS + METRICS + LOGS, id="a tier: no daemon stops (a replica may still land)"),
])
def test_nothing_is_stopped_on_the_gate_before_a_look_shows_it_shut(progress_phase: str,
                                                                   tasks: tuple[TaskView, ...]) -> None:
    # GIVEN a drain (order tiers) that shut the gate, which ECS does not show yet
    services = {"api": a_replica_service("api", desired=4, running=4)}
    inp = phase(tasks, progress_phase, services=services, fences=Fences(gate_closed=True, gate_seen=False))
    # WHEN the phase is planned / THEN it stops nothing and looks again soon
    outcome = plan_replicas(inp) if progress_phase == "replicas" else plan_tier(inp)
    assert stopped(outcome) == [] and not outcome.finished
    # AND once a look shows the gate shut, it goes on (the replicas stop; the tier is fenced)
    seen = with_gate(inp.view, GATE_DRAINING)
    after = replace(inp, view=seen, progress=read_back(seen, inp.progress, inp.policy))
    assert (plan_replicas(after) if progress_phase == "replicas" else plan_tier(after)).actions != ()


def ecs_shows(v: DrainView, actions: tuple[Action, ...]) -> DrainView:
    """The same observation once ECS shows the drain's writes in `actions` (attributes set, DRAINING)."""
    assert v.instance is not None
    attributes = dict(v.instance.attributes)
    status = v.instance.status
    for action in actions:
        if isinstance(action, SetAttribute):
            attributes[action.name] = action.value
        elif isinstance(action, SetDraining):
            status = "DRAINING"
    return replace(v, instance=replace(v.instance, attributes=attributes, status=status))


def test_a_fenced_tier_is_not_fenced_twice() -> None:
    # GIVEN tier 0 already fenced and told to stop / WHEN planned again while its daemon stops
    outcome = plan_tier(phase((a_task("xray-1", "xray", stopping=True), *METRICS), "tier", 0,
                              fences=Fences(gate_closed=True, gate_seen=True,
                                            tiers_fenced=("agents",)), stops=StopLedger(requested=("xray-1",))))
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
    for n in range(24):
        # (ECS shows each write at the next look)
        step = plan_drain_step(request(), ecs_shows(view(tuple(left), now=START + n, services=services),
                                                    tuple(seen)), progress, pol)
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


# ---- time: each phase's deadline reserves the later phases' stop times --------------------------

def timed(arn: str, service: str | None, stop_timeout_s: int, *, stopping: bool = False) -> TaskView:
    """A task whose task definition's stopTimeout is `stop_timeout_s`."""
    return replace(a_task(arn, service, stopping=stopping), stop_timeout_s=stop_timeout_s)


ON_INSTANCE = (timed("api-1", "api", 60), timed("batch-1", None, 120), timed("xray-1", "xray", 10),
               timed("prometheus-1", "prometheus", 20), timed("fluent-bit-1", "fluent-bit", 30))
M = STOP_MARGIN_S


@pytest.mark.parametrize(("tasks", "standalone", "expected"), [
    pytest.param(ON_INSTANCE, StandalonePolicy.WAIT, (60 + M, 120 + M, 10 + M, 20 + M, 30 + M),
                 id="each phase: its longest stopTimeout plus the margin"),
    pytest.param(ON_INSTANCE, StandalonePolicy.IGNORE, (60 + M, 0.0, 10 + M, 20 + M, 30 + M),
                 id="standalone tasks ignored: nothing reserved for them"),
    pytest.param(ON_INSTANCE[2:], StandalonePolicy.WAIT, (0.0, 0.0, 10 + M, 20 + M, 30 + M),
                 id="a phase with nothing on the instance needs no time"),
    pytest.param((timed("api-1", "api", 5), timed("api-2", "api", 90)), StandalonePolicy.WAIT,
                 (90 + M, 0.0, 0.0, 0.0, 0.0), id="the longest of a phase's tasks counts"),
])
def test_each_phase_needs_the_longest_stop_time_among_its_tasks(tasks: tuple[TaskView, ...],
                                                                standalone: StandalonePolicy,
                                                                expected: tuple[float, ...]) -> None:
    # GIVEN tasks with their stopTimeouts / WHEN the phases' stop times are worked out
    # THEN ECS's SIGTERM-then-SIGKILL bound (stopTimeout) plus the margin, per phase
    assert phase_stop_times(view(tasks), ordered(DrainOrder.TIERS, standalone)) == expected


@pytest.mark.parametrize(("phase_name", "tier", "since", "budget", "expected"), [
    pytest.param("replicas", 0, START, 900, 900 - (60 + 120 + 10 + 20 + 30 + 5 * M),
                 id="replicas: the global deadline minus every phase's stop time, their own included"),
    pytest.param("replicas", 0, START, 300, 300 - (60 + 120 + 10 + 20 + 30 + 5 * M),
                 id="a short budget: replicas get what remains after the reservation, not a fixed share"),
    pytest.param("standalone", 0, START + 100, 900, 300 + 300,
                 id="standalone: its wait (from the drain's start) plus a tier deadline, when that comes first"),
    pytest.param("standalone", 0, START + 400, 1200, 400 + 300,
                 id="standalone begun after its wait: its own start plus a tier deadline"),
    pytest.param("standalone", 0, START + 700, 900, 900 - (120 + 10 + 20 + 30 + 4 * M),
                 id="standalone: no later than what the tiers and its own tasks need"),
    pytest.param("tier", 0, START + 100, 900, 400, id="a tier: its tier deadline, when that comes first"),
    pytest.param("tier", 1, START + 860, 900, 900 - (20 + 30 + 2 * M),
                 id="a tier: no later than what it and the later tiers need"),
    pytest.param("tier", 2, START + 890, 900, 900 - (30 + M), id="the last tier: its own stop time"),
])
def test_a_phase_deadline_leaves_the_later_phases_their_stop_time(phase_name: str, tier: int, since: float,
                                                                  budget: float, expected: float) -> None:
    # GIVEN the drain in a phase, with every phase's tasks still on the instance
    progress = at(phase_name, tier, since=since)
    # WHEN its deadline is worked out against a global deadline `budget` seconds after the start
    deadline = phase_deadline(view(ON_INSTANCE), progress, ordered(DrainOrder.TIERS), START + budget)
    # THEN it is the earlier of its own limit and the global deadline minus the stop times from it on
    assert deadline - START == pytest.approx(expected)


def test_replicas_out_of_time_stop_at_once_whatever_their_minimum_healthy_but_are_followed_to_stopped() -> None:
    # GIVEN a 100% service with no room and the replica deadline passed (900 s minus the reservation)
    tasks = (timed("api-1", "api", 30), timed("api-2", "api", 30), *AGENTS)
    services = {"api": a_replica_service("api", desired=2, running=2, min_healthy=100)}
    late = START + 900 - (30 + M) - (30 + M)
    outcome = plan_replicas(phase(tasks, now=late, services=services))
    # THEN both replicas stop at once, the miss is counted once, and the phase waits for them to STOP
    assert stopped(outcome) == [("api-1", "api-2")]
    assert outcome.progress.record.deadlines_missed == 1 and outcome.progress.watch.late
    assert not outcome.finished
    assert outcome.look_again_s == pytest.approx(30 + M)
    # AND a replan while they stop repeats nothing and counts nothing again
    again = plan_replicas(replace(phase(tuple(replace(t, desired_status="STOPPED") if t.service_name == "api" else t
                                              for t in tasks), now=late + 10, services=services),
                                  progress=outcome.progress))
    assert again.actions == () and not again.finished and again.progress.record.deadlines_missed == 1


@pytest.mark.parametrize(("bounds", "now", "expected"), [
    pytest.param((("api-1", START + 40),), START + 10, 30.0, id="within its stop time: wait for the rest of it"),
    pytest.param((("api-1", START + 40), ("api-2", START + 70)), START + 10, 60.0,
                 id="several: wait until the last one's bound"),
    pytest.param((("api-1", START + 40),), START + 40, None, id="its bound passed: overdue"),
    pytest.param((), START + 10, 30 + M, id="seen stopping for the first time: its stopTimeout from now"),
])
def test_a_stopped_task_is_followed_to_stopped_for_at_most_its_stop_time(bounds: tuple[tuple[str, float], ...],
                                                                         now: float, expected: float | None) -> None:
    # GIVEN tasks told to stop (stopTimeout 30 s) and the bounds already known
    tasks = [timed("api-1", "api", 30, stopping=True)] + ([timed("api-2", "api", 30, stopping=True)]
                                                          if len(bounds) > 1 else [])
    # WHEN they are followed
    progress, left = follow_stops(view(tuple(tasks), now=now), at("replicas", stops=StopLedger(due_by=bounds)), tasks)
    # THEN the wait is until the last bound (None once it passed), and a bound is kept for every task
    assert left == (pytest.approx(expected) if expected is not None else None)
    assert {arn for arn, _ in progress.stops.due_by} == {t.arn for t in tasks}


def test_a_late_app_task_is_stopped_and_awaited_before_the_tier_however_long_it_takes() -> None:
    # GIVEN a forced drain in tier 0 and a standalone task that arrived meanwhile
    tasks = (timed("batch-9", None, 30), *AGENTS)
    inp = phase(tasks, "tier", 0, now=START + 950, record=DrainRecord(forced=True, forced_at=START + 900))
    # WHEN the tier is planned
    outcome = plan_tier(inp)
    # THEN the app task stops first and no daemon goes until it is STOPPED, past its stop time too
    assert stopped(outcome) == [("batch-9",)]
    assert not outcome.finished
    still = (timed("batch-9", None, 30, stopping=True), *AGENTS)
    overdue = plan_tier(replace(inp, view=replace(inp.view, now=START + 950 + 30 + M + 600, tasks=still),
                                progress=outcome.progress))
    assert stopped(overdue) == [] and not overdue.finished
    assert overdue.progress.stops.overdue == 1
    gone = plan_tier(replace(inp, view=replace(inp.view, now=START + 950 + 30 + M + 610, tasks=AGENTS),
                             progress=overdue.progress))
    assert stopped(gone) == [("xray-1",)]


# ---- the lifecycle action waits for every task, up to the hard end ------------------------------

@pytest.mark.parametrize(("tasks", "now", "end", "finished", "left_counted"), [
    pytest.param((), START + 100, START + 200, True, 0, id="nothing left: complete"),
    pytest.param((a_task("fluent-bit-1", "fluent-bit", stopping=True),), START + 100, START + 200, False, 0,
                 id="a daemon still stopping: wait, do not complete"),
    pytest.param((a_task("fluent-bit-1", "fluent-bit", stopping=True),), START + 200, START + 200, True, 1,
                 id="the hard end: complete anyway, the task counted"),
    pytest.param((a_task("batch-1", None, stopping=True),), START + 100, START + 200, False, 0,
                 id="an app task still stopping: wait too"),
])
def test_the_lifecycle_action_waits_until_no_task_is_left_or_the_hard_end(tasks: tuple[TaskView, ...], now: float,
                                                                          end: float, finished: bool,
                                                                          left_counted: int) -> None:
    # GIVEN every tier done / WHEN the last look before the lifecycle action is planned
    outcome = plan_settle(PhaseInput(view(tasks, now=now), at("settle"), ordered(DrainOrder.TIERS), end))
    # THEN it completes only once nothing is left, or at the hard end (counted, a guarantee break)
    assert outcome.finished is finished
    assert outcome.progress.record.completed_with_tasks == left_counted
    assert len(outcome.progress.record.breaks) == (1 if left_counted else 0)


@pytest.mark.parametrize(("notice", "lifecycle", "heartbeat_s", "expected"), [
    pytest.param(None, LIFECYCLE, 300, 100 * 300 - 300, id="a lifecycle hook: until heartbeats must stop"),
    pytest.param(START + 120, LIFECYCLE, 300, 120 - HARD_END_MARGIN_S, id="a Spot notice: just before it ends"),
    pytest.param(None, None, 300, 900, id="no lifecycle action: the global deadline"),
    pytest.param(None, LIFECYCLE, 0, 900, id="no heartbeat timeout known: the global deadline"),
])
def test_the_hard_end_is_the_notice_or_the_hooks_global_timeout(notice: float | None, lifecycle: Lifecycle | None,
                                                                heartbeat_s: float, expected: float) -> None:
    # GIVEN a drain and what bounds it / WHEN its hard end is worked out
    seen = DrainView(now=START, instance=view(()).instance, tasks=(), daemon_tier=TIERS, lifecycle=lifecycle,
                     deadline_epoch=notice)
    pol = replace(ordered(DrainOrder.TIERS), heartbeat_timeout_s=heartbeat_s)
    # THEN it is the latest the lifecycle action may wait for a task still stopping
    assert hard_end(request(notice), seen, fresh(), pol) - START == pytest.approx(expected)


def test_a_spot_drain_stops_nothing_early_and_completes_inside_the_notice() -> None:
    # GIVEN a Spot notice 120 s away and everything on the instance, replicas with room to go
    services = {"api": a_replica_service("api", desired=4, running=4)}
    pol = ordered(DrainOrder.TIERS, StandalonePolicy.WAIT)
    progress, left, now = fresh(), list(EVERYTHING), START
    stops_at: list[tuple[float, str]] = []
    # WHEN each stop takes 3 s and the drain runs step by step
    pending: dict[str, float] = {}
    for _ in range(200):
        seen = tuple(replace(t, desired_status="STOPPED") if t.arn in pending else t for t in left)
        step = plan_drain_step(request(START + 120), view(seen, now=now, services=services), progress, pol)
        for a in step.actions:
            if isinstance(a, StopTasks):
                for arn in a.task_arns:
                    pending[arn] = now + 3
                    stops_at.append((now, arn))
        progress = step.progress
        if progress.done:
            break
        now += step.wait_s
        left = [t for t in left if pending.get(t.arn, float("inf")) > now]
    # THEN the order held (apps, then standalone, then each tier) and CONTINUE came before the notice's end
    assert [arn for _, arn in stops_at] == ["api-1", "api-2", "batch-1", "xray-1", "prometheus-1", "fluent-bit-1"]
    assert progress.done and progress.record.completed_at is not None and progress.record.completed_at < START + 110
    assert progress.record.violations == () and progress.record.completed_with_tasks == 0


# ---- time never buys order: past its stop time a task is still waited for; only a hard end moves on -----

STUCK_REPLICA = timed("api-1", "api", 30, stopping=True)
STUCK_DAEMON = timed("xray-1", "xray", 30, stopping=True)
LATE_JOB = timed("batch-9", None, 30, stopping=True)


def run_steps(tasks: tuple[TaskView, ...], progress: DrainProgress, pol: DrainPolicy, until: float,
              req: DrainRequest | None = None) -> list[tuple[float, DrainStep]]:
    """Plan steps on an instance where nothing ever changes (`tasks` stay as they are) from START+10 to `until`."""
    now, steps = START + 10, []
    while now < until and not progress.done:
        step = plan_drain_step(req or request(), view(tasks, now=now), progress, pol)
        steps.append((now, step))
        progress, now = step.progress, now + step.wait_s
    return steps


@pytest.mark.parametrize(("tasks", "progress", "later"), [
    pytest.param((STUCK_REPLICA, *STANDALONE, *AGENTS, *METRICS, *LOGS),
                 at("replicas", fences=Fences(draining_requested=True, gate_closed=True, gate_seen=True),
                    stops=StopLedger(requested=("api-1",))), {"batch-1", "xray-1"},
                 id="a replica: no standalone task or daemon stops, through the replica and the global deadline"),
    pytest.param((STUCK_DAEMON, *METRICS, *LOGS),
                 at("tier", 0,
                    fences=Fences(draining_requested=True, gate_closed=True, gate_seen=True, tiers_fenced=("agents",),
                                  tiers_seen=("agents",)), stops=StopLedger(requested=("xray-1",))),
                 {"prometheus-1", "fluent-bit-1"}, id="a daemon of tier 0: tier 1 does not stop"),
    pytest.param((LATE_JOB, *AGENTS, *METRICS, *LOGS),
                 at("tier", 0, fences=Fences(draining_requested=True, gate_closed=True, gate_seen=True),
                    stops=StopLedger(requested=("batch-9",))), {"xray-1"},
                 id="a late standalone task: the first tier does not stop"),
])
def test_a_task_past_its_stop_time_and_not_stopped_keeps_the_phase_waiting_with_heartbeats(
        tasks: tuple[TaskView, ...], progress: DrainProgress, later: set[str]) -> None:
    # GIVEN a task told to stop that ECS never reports STOPPED (stopTimeout 30 s), a 300 s heartbeat timeout,
    # the 900 s drain deadline (policy `order`): the hook's heartbeats may go on until 100 x 300 s - 300 s
    pol = replace(ordered(DrainOrder.TIERS), heartbeat_timeout_s=300)
    # WHEN the drain is planned, step by step, for an hour
    steps = run_steps(tasks, progress, pol, START + 3600)
    actions = [(at_, a) for at_, step in steps for a in step.actions]
    # THEN nothing of a later phase is stopped and the lifecycle action is not completed
    assert [a for _, a in actions if isinstance(a, StopTasks) and later & set(a.task_arns)] == []
    assert [a for _, a in actions if isinstance(a, CompleteLifecycle)] == []
    # AND the drain keeps looking at the polling rate, and the hook alive every half heartbeat timeout
    assert max(step.wait_s for _, step in steps) <= POLL_S
    beats = [at_ for at_, a in actions if isinstance(a, RecordHeartbeat)]
    assert beats == pytest.approx([START + 150 * k for k in range(1, 24)])
    # AND the overdue task is noted once, not as a break
    final = steps[-1][1].progress
    assert final.stops.overdue == 1 and final.record.breaks == ()
    assert sum(n.kind == "stop-overdue" for _, step in steps for n in step.notes) == 1


STUCK_TIER_0 = at("tier", 0,
                  fences=Fences(draining_requested=True, gate_closed=True, gate_seen=True, tiers_fenced=("agents",),
                                tiers_seen=("agents",)), stops=StopLedger(requested=("xray-1",)))
LATER_TIERS = 2 * (30 + M)  # what tiers 1 and 2 need to stop their daemons before the hard end


@pytest.mark.parametrize(("notice", "heartbeat_s", "deadline_policy", "kind", "hard_end_at"), [
    pytest.param(START + 120, 300, DeadlinePolicy.ORDER, "notice", START + 120 - HARD_END_MARGIN_S,
                 id="a Spot notice about to end"),
    pytest.param(None, 30, DeadlinePolicy.ORDER, "heartbeats", START + 100 * 30 - 30,
                 id="heartbeats that must stop before the hook's global timeout"),
    pytest.param(None, 300, DeadlinePolicy.FORCE, "deadline", START + 900,
                 id="the drain deadline, its policy `force`"),
])
def test_a_hard_end_moves_the_drain_on_as_a_counted_guarantee_break_with_its_event(
        notice: float | None, heartbeat_s: float, deadline_policy: DeadlinePolicy, kind: str,
        hard_end_at: float) -> None:
    # GIVEN tier 0's daemon never reported STOPPED, and a hard end
    pol = replace(ordered(DrainOrder.TIERS), heartbeat_timeout_s=heartbeat_s, deadline_policy=deadline_policy)
    tasks = (timed("xray-1", "xray", 30, stopping=True), timed("prometheus-1", "prometheus", 30),
             timed("fluent-bit-1", "fluent-bit", 30))
    break_at = hard_end_at - LATER_TIERS
    # WHEN the drain is planned just before the later tiers' stop times must begin, and then at that moment
    before = plan_drain_step(request(notice), view(tasks, now=break_at - 1), STUCK_TIER_0, pol)
    step = plan_drain_step(request(notice), view(tasks, now=break_at), before.progress, pol)
    # THEN it waits until then; at it tier 1 stops, the break recorded with its hard end and noted
    assert stops(before) == [] and before.progress.record.breaks == ()
    assert stops(step) == [("prometheus-1",)]
    assert step.progress.record.breaks == (("agents", kind, break_at, 1),)
    assert [n.kind for n in step.notes if n.kind == "guarantee-broken"] == ["guarantee-broken"]
    # AND the step announces a Drain Guarantee Broken event that holds to its schema
    (event,) = [e for e in drain_step_events(request(notice), before.progress, step, pol)
                if e.detail_type == ge.GUARANTEE_BROKEN]
    Draft202012Validator(ge.SCHEMAS[ge.GUARANTEE_BROKEN], format_checker=FormatChecker()).validate(event.detail)
    assert (event.detail["phase"], event.detail["hardEnd"], event.detail["tasksNotStopped"]) == ("agents", kind, 1)
    # AND it names the order left unkept (tier 0 and every later tier); a hard end is no unseen end
    assert (event.detail["phasesLeft"], event.detail["unseenSince"]) == (["agents", "metrics", "logs"], None)


def container(name: str, stop_timeout: int | None) -> dict[str, object]:
    """A container definition as DescribeTaskDefinition returns it (no stopTimeout key when none is set)."""
    return {"name": name, "image": f"public.ecr.aws/example/{name}:1", "cpu": 0, "essential": True,
            **({"stopTimeout": stop_timeout} if stop_timeout is not None else {})}


@pytest.mark.parametrize(("containers", "agent_s", "expected"), [
    pytest.param([container("app", None)], 30, 30, id="none set: the agent's default, 30 s"),
    pytest.param([container("app", None)], 120, 120, id="none set, agents raised to 2 minutes: 120 s"),
    pytest.param([container("app", 10)], 120, 10, id="set: the container's own stopTimeout"),
    pytest.param([container("app", 10), container("sidecar", None)], 120, 120,
                 id="a sidecar without one: the agent's value, the longest of the task's containers"),
])
def test_a_container_without_stop_timeout_gets_the_agents_in_the_drains_arithmetic(
        containers: list[dict[str, object]], agent_s: int, expected: int) -> None:
    # GIVEN a task definition as ECS describes it, and agentStopTimeoutSeconds
    raw = {"taskDefinitionArn": "arn:aws:ecs:us-east-1:111122223333:task-definition/api:1", "family": "api",
           "networkMode": "bridge", "containerDefinitions": containers}
    # WHEN the adapter maps it and the drain reserves the replica phase's stop time
    stop_timeout = task_definition_view(raw, agent_s).stop_timeout_s
    task = replace(a_task("api-1", "api"), stop_timeout_s=stop_timeout)
    # THEN a container without stopTimeout counts as the agent's ECS_CONTAINER_STOP_TIMEOUT
    assert stop_timeout == expected
    assert phase_stop_times(view((task,)), ordered(DrainOrder.TIERS))[0] == expected + M


def test_a_break_at_the_same_hard_end_is_counted_once_however_many_steps_meet_it() -> None:
    # GIVEN a phase past its hard end whose tasks are still not STOPPED
    from daemon_guard.core.drain.deadlines import HardEnd
    from daemon_guard.core.drain.phases import _break

    inp = replace(phase(AGENTS, "tier", 0), end=HardEnd(0.0, "notice"))
    # WHEN two steps in a row meet the same hard end with the same tasks left
    first = _break(inp, AGENTS, (), (), "late app tasks")
    second = _break(replace(inp, progress=first.progress), AGENTS, (), (), "late app tasks")
    # THEN one break is recorded and noted, and both steps finish the phase
    assert len(second.progress.record.breaks) == 1 and first.finished and second.finished
    assert [n.kind for n in first.notes] == ["guarantee-broken"] and second.notes == ()


def test_two_drains_of_one_service_at_minimum_healthy_100_stop_one_task_between_them() -> None:
    # GIVEN a service at minimumHealthyPercent 100 whose tasks sit on two draining instances, and a first drain
    # that has just stopped one of them: ECS has started its replacement (pendingCount 1), while runningCount may
    # still count the stopped task until its containers exit (the API reference says only "in the RUNNING state")
    svc = a_replica_service("api", desired=4, running=4, min_healthy=100)
    first = replica_stops((a_task("api-1", "api"),), {"api": svc}, ())
    after = {"api": replace(svc, pending_count=1)}
    # WHEN the second drain plans its replicas on what DescribeServices then reports
    second = replica_stops((a_task("api-2", "api"),), after, ())
    # THEN only the first drain's task goes; the second waits for the replacement to be RUNNING
    assert [t.arn for t in first] == ["api-1"]
    assert second == []
    assert [t.arn for t in replica_stops((a_task("api-2", "api"),), {"api": svc}, ())] == ["api-2"]
