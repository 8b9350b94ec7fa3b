"""The ordered drain, one step at a time: replicas, standalone tasks, daemon tiers in order, then CONTINUE."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import pytest
from daemon_guard.core import guard_events as ge
from daemon_guard.core.actions import (
    Action,
    CompleteLifecycle,
    RecordHeartbeat,
    SetDraining,
    StopTasks,
)
from daemon_guard.core.config import DrainOrder, StandalonePolicy
from daemon_guard.core.drain import (
    BLOCKED_AFTER_S,
    HOOK_MAX_GLOBAL_S,
    STOP_MARGIN_S,
    DrainLook,
    DrainPolicy,
    DrainProgress,
    DrainRecord,
    DrainRequest,
    DrainStep,
    DrainView,
    Fences,
    HookKeeping,
    Lifecycle,
    PhaseWatch,
    StopLedger,
    left_unseen,
    phases_from,
    plan_drain_step,
)
from daemon_guard.core.model import ServiceView, TaskView
from daemon_guard.services.notify import drain_step_events

from tests.unit.conftest import INSTANCE_ARN, INSTANCE_ID, a_replica_service, a_task, an_instance

START = 1_700_000_000.0
ASG, HOOK, TOKEN = "prod-asg", "daemon-guard-terminate", "tok-1"
LIFECYCLE = Lifecycle(ASG, HOOK, TOKEN)
TIERS = {"xray": 0, "prometheus": 1, "fluent-bit": 2}
CONTINUE = CompleteLifecycle(ASG, HOOK, INSTANCE_ID, TOKEN, "CONTINUE")
DRAINING = SetDraining((INSTANCE_ARN,))


def policy(standalone: StandalonePolicy = StandalonePolicy.WAIT, *, standalone_wait_s: float = 300,
           drain_deadline_s: float = 900, tier_deadline_s: float = 300, heartbeat_s: float = 300) -> DrainPolicy:
    """Three daemon tiers: app agents, then metrics, then the log router last."""
    return DrainPolicy(tier_names=("agents", "metrics", "logs"), standalone=standalone,
                       standalone_wait_s=standalone_wait_s, drain_deadline_s=drain_deadline_s,
                       tier_deadline_s=tier_deadline_s, heartbeat_timeout_s=heartbeat_s)


def request(deadline_epoch: float | None = None) -> DrainRequest:
    """A terminate lifecycle drain (or a Spot one, with its notice as `deadline_epoch`)."""
    return DrainRequest(instance_id=INSTANCE_ID, cluster="prod", trigger="spot" if deadline_epoch else "lifecycle",
                        asg=ASG, hook=HOOK, token=TOKEN, deadline_epoch=deadline_epoch)


def fresh() -> DrainProgress:
    """Progress of a drain that starts at START."""
    return DrainProgress.begin(START)


DRAINING_REQUESTED = Fences(draining_requested=True)


def at(phase: str, tier: int = 0, *, since: float = START, fences: Fences = DRAINING_REQUESTED,
       **parts: object) -> DrainProgress:
    """Progress already in `phase` (DRAINING requested unless `fences` says otherwise), the phase begun at
    `since`, with any other part (`stops`, `record`, `hook`, ...) given."""
    return replace(fresh(), phase=phase, tier=tier, phase_started_at=since, fences=fences,
                   **parts)  # type: ignore[arg-type]


def view(tasks: Sequence[TaskView], *, now: float = START, status: str | None = "ACTIVE",
         services: dict[str, ServiceView] | None = None, lifecycle: Lifecycle | None = LIFECYCLE) -> DrainView:
    """What one step observes; `status` None means the instance is gone."""
    return DrainView(now=now, instance=an_instance(status) if status else None, tasks=tasks, daemon_tier=TIERS,
                     services=services or {}, lifecycle=lifecycle)


REPLICAS = (a_task("api-1", "api"), a_task("api-2", "api"))
STANDALONE = (a_task("batch-1", None),)
AGENTS = (a_task("xray-1", "xray"),)
METRICS = (a_task("prometheus-1", "prometheus"),)
LOGS = (a_task("fluent-bit-1", "fluent-bit"),)
EVERYTHING = REPLICAS + STANDALONE + AGENTS + METRICS + LOGS


def stops(step: DrainStep) -> list[tuple[str, ...]]:
    """The task ARNs of each StopTasks of a step, in order."""
    return [a.task_arns for a in step.actions if isinstance(a, StopTasks)]


# ---- order, one step at a time ------------------------------------------------------------------

@pytest.mark.parametrize(("tasks", "progress", "standalone", "now", "expected"), [
    pytest.param(EVERYTHING, fresh(), StandalonePolicy.WAIT, START, [DRAINING],
                 id="first step sets DRAINING and waits for the replicas ECS replaces"),
    pytest.param(EVERYTHING, at("replicas"), StandalonePolicy.STOP, START + 60, [],
                 id="replicas still running: nothing is stopped, daemons least of all"),
    pytest.param(STANDALONE + AGENTS + METRICS + LOGS, at("replicas"), StandalonePolicy.STOP, START + 60,
                 [StopTasks(("batch-1",), "daemon-guard drain: standalone", "standalone")],
                 id="replicas gone, policy stop: standalone tasks stop before any daemon"),
    pytest.param(STANDALONE + AGENTS + METRICS + LOGS, at("replicas"), StandalonePolicy.WAIT, START + 60, [],
                 id="replicas gone, policy wait: standalone tasks are given their time"),
    pytest.param(STANDALONE + AGENTS + METRICS + LOGS, at("standalone", since=START), StandalonePolicy.WAIT,
                 START + 300, [StopTasks(("batch-1",), "daemon-guard drain: standalone", "standalone")],
                 id="policy wait: standalone tasks still running after the wait are stopped"),
    pytest.param(STANDALONE + AGENTS + METRICS + LOGS, at("replicas"), StandalonePolicy.IGNORE, START + 60,
                 [StopTasks(("xray-1",), "daemon-guard drain: agents", "agents")],
                 id="policy ignore: standalone tasks are left alone and tier 0 stops"),
    pytest.param(AGENTS + METRICS + LOGS, at("standalone"), StandalonePolicy.WAIT, START + 60,
                 [StopTasks(("xray-1",), "daemon-guard drain: agents", "agents")],
                 id="only daemons left: tier 0 stops first"),
    pytest.param(METRICS + LOGS, at("tier", 0), StandalonePolicy.WAIT, START + 60,
                 [StopTasks(("prometheus-1",), "daemon-guard drain: metrics", "metrics")],
                 id="tier 0 STOPPED: tier 1 stops"),
    pytest.param(LOGS, at("tier", 1), StandalonePolicy.WAIT, START + 60,
                 [StopTasks(("fluent-bit-1",), "daemon-guard drain: logs", "logs")],
                 id="tier 1 STOPPED: the log router stops last"),
    pytest.param((), at("tier", 2), StandalonePolicy.WAIT, START + 60, [CONTINUE],
                 id="instance empty: the lifecycle action completes with CONTINUE"),
])
def test_each_step_takes_the_next_phase_in_order(tasks: tuple[TaskView, ...], progress: DrainProgress,
                                                  standalone: StandalonePolicy, now: float,
                                                  expected: list[Action]) -> None:
    # GIVEN the tasks left on the instance and how far the drain got (heartbeats aside)
    # WHEN the next step is planned
    step = plan_drain_step(request(), view(tasks, now=now), progress, policy(standalone, heartbeat_s=0))
    # THEN it does exactly the next thing in the order
    assert list(step.actions) == expected


@pytest.mark.parametrize(("status", "expected"), [
    pytest.param("ACTIVE", [DRAINING], id="ACTIVE instance: DRAINING is set"),
    pytest.param("DRAINING", [], id="instance someone else set DRAINING: not set again"),
])
def test_draining_is_set_only_on_an_active_instance(status: str, expected: list[Action]) -> None:
    # GIVEN a fresh drain of an instance with replicas / WHEN the first step is planned
    step = plan_drain_step(request(), view(EVERYTHING, status=status), fresh(), policy())
    # THEN DRAINING is requested only if the instance is not already draining
    assert list(step.actions) == expected
    assert step.progress.fences.draining_requested


def test_draining_is_set_exactly_once() -> None:
    # GIVEN a first step that set DRAINING, while ECS has not yet shown the instance as DRAINING
    first = plan_drain_step(request(), view(EVERYTHING), fresh(), policy())
    # WHEN the next step observes the instance still ACTIVE
    second = plan_drain_step(request(), view(EVERYTHING, now=START + 10), first.progress, policy())
    # THEN DRAINING is not requested again
    assert first.actions.count(DRAINING) == 1
    assert DRAINING not in second.actions


def test_no_lifecycle_action_while_a_task_is_still_stopping() -> None:
    # GIVEN the last tier was told to stop and its task has not STOPPED yet
    stopping = (a_task("fluent-bit-1", "fluent-bit", stopping=True),)
    # WHEN a step is planned before any deadline
    step = plan_drain_step(request(), view(stopping, now=START + 60), at("tier", 2, since=START + 50), policy())
    # THEN it waits: no CompleteLifecycle, no second StopTask
    assert not [a for a in step.actions if isinstance(a, CompleteLifecycle | StopTasks)]
    assert not step.progress.done
    assert step.wait_s >= 1


def test_a_drain_without_a_lifecycle_action_completes_without_calling_auto_scaling() -> None:
    # GIVEN an operator's drain (no lifecycle action) of an empty instance
    step = plan_drain_step(request(), view((), lifecycle=None), at("tier", 2), policy())
    # THEN it is done and completes nothing
    assert step.actions == ()
    assert step.progress.done
    assert step.progress.record.result == "no-lifecycle-action"


@pytest.mark.parametrize("status", [None, "INACTIVE", "DEREGISTERING"])
def test_an_instance_that_is_gone_completes_the_lifecycle_action(status: str | None) -> None:
    # GIVEN the instance disappeared (terminated, deregistered) mid-drain, tasks and all
    # WHEN the next step observes it
    step = plan_drain_step(request(), view(EVERYTHING, status=status, now=START + 30), at("replicas"), policy())
    # THEN there is nothing left to order: CONTINUE at once, no stop, no deadline counted
    assert list(step.actions) == [CONTINUE]
    assert step.progress.record.deadlines_missed == 0


# ---- deadlines ----------------------------------------------------------------------------------

def test_a_tier_deadline_stops_the_tier_and_the_next_tier_waits_for_it_to_stop() -> None:
    # GIVEN tier 0 told to stop at START+100, its task still stopping 300 s later (past its stop time)
    xray_stuck = (a_task("xray-1", "xray", stopping=True),)
    progress = at("tier", 0, since=START + 100,
                  stops=StopLedger(requested=("xray-1",), due_by=(("xray-1", START + 100 + 30 + STOP_MARGIN_S),)))
    # WHEN a step is planned at the tier deadline
    step = plan_drain_step(request(), view(xray_stuck + METRICS + LOGS, now=START + 400), progress, policy())
    # THEN the miss is counted once and noted for that tier, the task noted overdue, and tier 1 waits
    assert stops(step) == []
    assert step.progress.record.deadlines_missed == 1
    assert [(n.kind, n.tier) for n in step.notes] == [("deadline-missed", "agents"), ("stop-overdue", "agents")]
    # AND a re-plan on the next observation counts and notes nothing again
    again = plan_drain_step(request(), view(xray_stuck + METRICS + LOGS, now=START + 410), step.progress, policy())
    assert again.progress.record.deadlines_missed == 1 and again.notes == () and stops(again) == []
    # AND once the task is STOPPED, tier 1 stops
    moved = plan_drain_step(request(), view(METRICS + LOGS, now=START + 420), again.progress, policy())
    assert stops(moved) == [("prometheus-1",)]


def test_replicas_that_never_leave_stop_at_a_deadline_that_leaves_the_later_phases_their_stop_time() -> None:
    # GIVEN replicas that ECS never replaces, a 900 s drain deadline, every task with a 30 s stopTimeout
    world = World(EVERYTHING, replicas_leave=False, stop_s=2)
    # WHEN the drain runs to the end
    world.run(request(), policy())
    # THEN the replicas are stopped at once when only the later phases' stop times are left (standalone and
    # three tiers, 30 s + the margin each, and their own), the rest follows in order, all before 900 s
    reserve = 5 * (30 + STOP_MARGIN_S)
    assert world.stop_log() == [("api-1", "api-2"), ("batch-1",), ("xray-1",), ("prometheus-1",),
                                ("fluent-bit-1",)]
    assert world.stopped_at[0][0] == START + 900 - reserve
    assert world.completed_at is not None and world.completed_at <= START + 900
    assert world.completions() == 1
    # AND one miss is counted, the replicas': the standalone wait (counted from the drain's start) was long over
    assert world.final.record.deadlines_missed == 1
    assert not world.final.record.forced
    assert world.final.record.violations == ()


def test_under_the_global_deadline_the_next_phase_waits_for_the_last_to_stop_past_its_stop_time_too() -> None:
    # GIVEN a drain forced by its deadline while tier 0's daemon (stopTimeout 30 s) is stopping since START+880
    xray_stopping = (a_task("xray-1", "xray", stopping=True),)
    progress = at("tier", 0, since=START + 850,
                  stops=StopLedger(requested=("xray-1",), due_by=(("xray-1", START + 880 + 30 + STOP_MARGIN_S),)))
    forced = plan_drain_step(request(), view(xray_stopping + METRICS + LOGS, now=START + 900), progress, policy())
    # WHEN it is replanned while the daemon is within its stop time, and once that has passed
    within = plan_drain_step(request(), view(xray_stopping + METRICS + LOGS, now=START + 910), forced.progress,
                             policy())
    after = plan_drain_step(request(), view(xray_stopping + METRICS + LOGS, now=START + 880 + 30 + STOP_MARGIN_S),
                            within.progress, policy())
    # THEN tier 1 is stopped at neither: past its stop time the daemon is noted overdue and still waited for
    assert forced.progress.record.forced and forced.progress.record.deadlines_missed == 1
    assert stops(forced) == [] and stops(within) == [] and stops(after) == []
    assert forced.wait_s <= 880 + 30 + STOP_MARGIN_S - 900
    assert after.progress.stops.overdue == 1
    assert [n.kind for n in after.notes] == ["stop-overdue"]
    assert after.progress.record.breaks == () and not after.progress.done


def test_under_the_global_deadline_the_next_phase_begins_as_soon_as_the_last_is_stopped() -> None:
    # GIVEN a forced drain whose tier 0 daemon has just STOPPED, well within its stop time
    progress = at("tier", 0, since=START + 850,
                  stops=StopLedger(requested=("xray-1",), due_by=(("xray-1", START + 935),)),
                  record=DrainRecord(forced=True, forced_at=START + 900))
    # WHEN the next step observes it gone
    step = plan_drain_step(request(), view(METRICS + LOGS, now=START + 903), progress, policy())
    # THEN tier 1 stops at once: no fixed wait, nothing counted overdue
    assert stops(step) == [("prometheus-1",)]
    assert step.progress.stops.overdue == 0


def test_a_spot_drain_finishes_its_phases_inside_the_two_minute_notice() -> None:
    # GIVEN a Spot notice 120 s away, replicas ECS never replaces, tasks that stop 2 s after StopTask
    world = World(EVERYTHING, replicas_leave=False, stop_s=2)
    # WHEN the drain runs
    world.run(request(deadline_epoch=START + 120), policy())
    # THEN every phase ran in order and CONTINUE came before START+110 (the notice minus the safety margin)
    assert world.stop_log() == [("api-1", "api-2"), ("batch-1",), ("xray-1",), ("prometheus-1",),
                                ("fluent-bit-1",)]
    assert world.completed_at is not None
    assert world.completed_at <= START + 110
    assert world.final.record.violations == ()


# ---- a whole drain against a small world --------------------------------------------------------

@pytest.mark.parametrize("standalone", list(StandalonePolicy))
def test_a_whole_drain_stops_tiers_in_order_and_continues_once(standalone: StandalonePolicy) -> None:
    # GIVEN replicas that ECS replaces within 30 s, a standalone task and three daemon tiers
    world = World(EVERYTHING, replicas_leave=True, replace_s=30, stop_s=5)
    # WHEN the drain runs to the end
    world.run(request(), policy(standalone, standalone_wait_s=60))
    # THEN DRAINING once, daemons tier by tier after the non-daemons, CONTINUE once and last
    expected = [("batch-1",)] if standalone is not StandalonePolicy.IGNORE else []
    assert world.stop_log() == [*expected, ("xray-1",), ("prometheus-1",), ("fluent-bit-1",)]
    assert world.count(SetDraining) == 1
    assert world.completions() == 1 and isinstance(world.actions[-1][1], CompleteLifecycle)
    assert world.final.record.deadlines_missed == 0
    assert world.final.record.violations == ()
    assert [label for label, _, _ in world.final.record.phase_times] == ["replicas", "standalone", "agents", "metrics",
                                                                   "logs"]


def test_no_daemon_is_stopped_while_a_replica_remains() -> None:
    # GIVEN replicas that take 250 s to be replaced
    world = World(EVERYTHING, replicas_leave=True, replace_s=250, stop_s=5)
    # WHEN the drain runs
    world.run(request(), policy(StandalonePolicy.STOP))
    # THEN the first daemon StopTask comes after the last replica STOPPED
    first_daemon_stop = min(t for t, arns in world.stopped_at if arns[0] in {"xray-1"})
    assert first_daemon_stop >= START + 250


# ---- heartbeats ---------------------------------------------------------------------------------

def test_heartbeats_are_sent_every_half_heartbeat_timeout_while_the_drain_waits() -> None:
    # GIVEN replicas that never leave, a 300 s heartbeat timeout and a 900 s deadline
    world = World(REPLICAS, replicas_leave=False, stop_s=2)
    # WHEN the drain runs
    world.run(request(), policy(heartbeat_s=300))
    # THEN a heartbeat goes out every 150 s until the replicas are stopped at their deadline (900 s minus
    # their own stop time) and the drain completes
    beats = [t for t, a in world.actions if isinstance(a, RecordHeartbeat)]
    assert beats == [START + 150 * k for k in range(1, 6)]
    assert world.final.hook.heartbeats == 5
    assert world.completed_at is not None and world.completed_at < START + 900


def test_no_heartbeat_once_the_hooks_global_timeout_is_near() -> None:
    # GIVEN a 30 s heartbeat timeout: the hook's global timeout is 100 x 30 s = 3000 s
    hb = 30.0
    hook_global = min(HOOK_MAX_GLOBAL_S, 100 * hb)
    progress = at("replicas", hook=HookKeeping(last_heartbeat_at=START + hook_global - 2 * hb))
    # WHEN steps are planned before and inside the last heartbeat timeout of the global timeout
    before = plan_drain_step(request(), view(REPLICAS, now=START + hook_global - 2 * hb + hb / 2), progress,
                             policy(heartbeat_s=hb, drain_deadline_s=48 * 3600))
    near = plan_drain_step(request(), view(REPLICAS, now=START + hook_global - hb / 2), progress,
                           policy(heartbeat_s=hb, drain_deadline_s=48 * 3600))
    # THEN the heartbeat is sent before, and not once the global timeout is near
    assert RecordHeartbeat(ASG, HOOK, INSTANCE_ID, TOKEN) in before.actions
    assert not [a for a in near.actions if isinstance(a, RecordHeartbeat)]


# ---- blocked drains -----------------------------------------------------------------------------

def test_a_service_at_100_100_is_reported_blocked_once() -> None:
    # GIVEN a replica service at minimumHealthyPercent 100 and maximumPercent 100
    services = {"api": a_replica_service("api", min_healthy=100, max_percent=100)}
    # WHEN two steps observe it
    first = plan_drain_step(request(), view(REPLICAS, services=services), fresh(), policy())
    second = plan_drain_step(request(), view(REPLICAS, now=START + 10, services=services), first.progress, policy())
    # THEN it is reported blocked on the first, naming the service, and not again
    assert [n.kind for n in first.notes] == ["blocked"]
    assert "api" in first.notes[0].detail
    assert second.notes == ()


@pytest.mark.parametrize(("elapsed", "blocked"), [
    pytest.param(BLOCKED_AFTER_S - 1, False, id="not yet: replacements may still come"),
    pytest.param(BLOCKED_AFTER_S, True, id="no progress for 120 s: blocked"),
])
def test_replicas_not_replaced_for_two_minutes_are_reported_blocked(elapsed: float, blocked: bool) -> None:
    # GIVEN replicas first seen at START, the same count ever since
    seen = plan_drain_step(request(), view(REPLICAS), fresh(), policy())
    # WHEN a step observes them `elapsed` seconds later
    step = plan_drain_step(request(), view(REPLICAS, now=START + elapsed), seen.progress, policy())
    # THEN the drain is reported blocked only past the limit
    assert [n.kind for n in step.notes] == (["blocked"] if blocked else [])


# ---- ordering self-check ------------------------------------------------------------------------

@pytest.mark.parametrize(("tasks", "violating"), [
    pytest.param((*REPLICAS, a_task("xray-1", "xray", stopping=True)), ("xray-1",),
                 id="a daemon stopping while a replica remains"),
    pytest.param((*AGENTS, a_task("fluent-bit-1", "fluent-bit", stopping=True)), ("fluent-bit-1",),
                 id="a tier-2 daemon stopping while tier 1 ... tier 0 still live"),
    pytest.param((*METRICS, a_task("fluent-bit-1", "fluent-bit", stopping=True)), ("fluent-bit-1",),
                 id="a tier-2 daemon stopping while tier 1 still live"),
    pytest.param((a_task("xray-1", "xray", stopping=True), *METRICS), (),
                 id="tier 0 stopping before tier 1: in order"),
])
def test_ordering_violations_are_observed_and_counted_once(tasks: tuple[TaskView, ...],
                                                            violating: tuple[str, ...]) -> None:
    # GIVEN an instance where someone (ECS, an operator) stopped tasks / WHEN two steps observe it
    first = plan_drain_step(request(), view(tasks), at("replicas"), policy())
    second = plan_drain_step(request(), view(tasks, now=START + 10), first.progress, policy())
    # THEN each out-of-order stop is noted once
    assert first.progress.record.violations == violating
    assert [n.detail for n in first.notes if n.kind == "ordering-violation"] == list(violating)
    assert not [n for n in second.notes if n.kind == "ordering-violation"]


@pytest.mark.parametrize(("status", "draining_requested", "cause"), [
    pytest.param("DRAINING", False, "ecs-draining", id="ECS set DRAINING itself (a Spot notice, agent option)"),
    pytest.param("ACTIVE", False, "stopped-elsewhere", id="someone else's StopTask"),
])
def test_a_daemon_someone_else_stops_while_apps_run_is_a_counted_break_with_its_cause(
        status: str, draining_requested: bool, cause: str) -> None:
    # GIVEN a tiers drain in its replica phase, a replica still running, and a daemon the guard never asked to
    # stop already STOPPED (seen only after the fact)
    tiers = replace(policy(), order=DrainOrder.TIERS)
    tasks = (*REPLICAS, a_task("xray-1", "xray", last_status="STOPPED", stopping=True))
    progress = replace(at("replicas"),
                       fences=replace(at("replicas").fences, draining_requested=draining_requested, gate_closed=True))
    # WHEN two steps observe it
    first = plan_drain_step(request(), view(tasks, status=status), progress, tiers)
    second = plan_drain_step(request(), view(tasks, now=START + 10, status=status), first.progress, tiers)
    # THEN it is one guarantee break of the replica phase, with its cause and the replicas left, noted once
    assert first.progress.record.breaks == (("replicas", cause, START, 2),)
    assert [n.kind for n in first.notes if n.kind == "guarantee-broken"] == ["guarantee-broken"]
    assert second.progress.record.breaks == first.progress.record.breaks
    # AND the event names the cause (no hard end)
    event = ge.guarantee_broken("prod", INSTANCE_ID, *first.progress.record.breaks[0][:2], 2, START, START)
    assert (event.detail["cause"], event.detail["hardEnd"]) == (cause, None)


def test_a_spot_drain_that_finds_its_instance_gone_after_the_notice_counts_one_missed_notice() -> None:
    # GIVEN a Spot drain whose events came late: its first look is after the notice ended, the instance gone
    notice = START + 120
    first = plan_drain_step(request(notice), view((), now=notice + 30, status=None), fresh(), policy())
    # THEN it completes with one break (notice-missed, tasks unknown), and a drain gone before its notice has none
    assert first.progress.done and first.progress.record.breaks == (("replicas", "notice-missed", notice + 30, 0),)
    early = plan_drain_step(request(notice), view((), now=START + 60, status=None), fresh(), policy())
    assert early.progress.record.breaks == ()
    event = ge.guarantee_broken("prod", INSTANCE_ID, "replicas", "notice-missed", 0, START, notice + 30)
    assert (event.detail["cause"], event.detail["hardEnd"], event.detail["tasksNotStopped"]) == \
        ("notice-missed", None, 0)


FOLLOWED = (("api-1", "service:api", 30.0), ("xray-1", "service:xray", 30.0))


@pytest.mark.parametrize(("notice", "progress", "now", "expected"), [
    pytest.param(None, at("replicas", look=DrainLook(live_tasks=FOLLOWED, seen_at=START + 150)), START + 200,
                 (("replicas", "instance-gone", START + 200, 2),),
                 id="no notice heard (a lifecycle drain): gone with the tasks it followed, counted"),
    pytest.param(START + 300, at("tier", 1, look=DrainLook(live_tasks=FOLLOWED[1:], seen_at=START + 150)), START + 200,
                 (("metrics", "instance-gone", START + 200, 1),),
                 id="gone before its notice ends, tasks followed: counted as gone, not as a missed notice"),
    pytest.param(START + 120, at("replicas", look=DrainLook(live_tasks=FOLLOWED, seen_at=START + 150)), START + 200,
                 (("replicas", "notice-missed", START + 200, 2),),
                 id="gone after its notice: the missed notice, with the tasks it followed"),
    pytest.param(None, at("replicas"), START + 200, (),
                 id="never saw a task (an instance that never registered?): nothing to say"),
    pytest.param(None, at("replicas", look=DrainLook(live_tasks=FOLLOWED),
                          record=DrainRecord(breaks=(("replicas", "instance-gone", START, 2),))),
                 START + 200, (("replicas", "instance-gone", START, 2),),
                 id="already counted: once per drain"),
])
def test_a_drain_that_finds_its_instance_gone_with_tasks_it_followed_counts_one_break_after_the_fact(
        notice: float | None, progress: DrainProgress, now: float,
        expected: tuple[tuple[str, str, float, int], ...]) -> None:
    # GIVEN a drain whose last look followed `progress.live_tasks` (or none), with or without a Spot notice
    # WHEN its next look finds the instance gone (EC2 reclaimed it before the guard completed its drain)
    step = plan_drain_step(request(notice), view((), now=now, status=None), progress, policy())
    # THEN the drain ends, with the one break that says so (or none where it cannot know)
    assert step.progress.done
    assert step.progress.record.breaks == expected
    # AND a new break is published with its cause, the tasks it left, the phases it left undone and the last
    # look that saw the instance (after it, the order of what stopped there is unseen: this event counts it)
    events = [e for e in drain_step_events(request(notice), progress, step, policy())
              if e.detail_type == ge.GUARANTEE_BROKEN]
    assert len(events) == len(expected) - len(progress.record.breaks)
    for event, (phase, kind, _at, left) in zip(events, expected[len(progress.record.breaks):], strict=True):
        assert (event.detail["cause"], event.detail["hardEnd"], event.detail["tasksNotStopped"]) == (kind, None, left)
        assert event.detail["phasesLeft"] == list(phases_from(phase, policy()))
        assert event.detail["unseenSince"] == ge.iso(progress.look.seen_at)


@pytest.mark.parametrize(("progress", "lifecycle_over", "expected"), [
    pytest.param(fresh(), True, ("replicas", "instance-gone", START + 9, 0),
                 id="never saw it, its lifecycle action already over: it left before any drain looked"),
    pytest.param(fresh(), False, None,
                 id="never saw it, the action still waiting (an instance that never registered): completed, no break"),
    pytest.param(replace(fresh(), look=DrainLook(instance_arn=INSTANCE_ARN)), True, None,
                 id="saw it: the planner's own gone rule speaks for it"),
    pytest.param(replace(fresh(), record=DrainRecord(breaks=(("replicas", "notice-missed", START, 0),))), True, None,
                 id="a missed notice already said it"),
])
def test_a_drain_that_never_saw_its_instance_counts_it_gone_only_when_its_lifecycle_action_was_over(
        progress: DrainProgress, lifecycle_over: bool, expected: tuple[str, str, float, int] | None) -> None:
    # GIVEN a drain's progress at its end / WHEN completing the lifecycle action found it over (or not)
    # THEN a break of its own only where the instance left under the hook unseen
    assert left_unseen(progress, lifecycle_over, START + 9) == expected


def test_a_daemon_the_guard_stopped_itself_is_no_new_break_and_ecs_stops_under_draining_order_are_not_claimed(
        ) -> None:
    # GIVEN a daemon stopping while a replica runs: told to stop by the guard (tiers), or by ECS (draining order)
    tasks = (*REPLICAS, a_task("xray-1", "xray", stopping=True))
    own = plan_drain_step(request(), view(tasks), at("replicas", stops=StopLedger(requested=("xray-1",))),
                          replace(policy(), order=DrainOrder.TIERS))
    ecs = plan_drain_step(request(), view(tasks, status="DRAINING"), at("replicas"), policy())
    # THEN both are ordering violations (the self-check) and neither is a break
    assert own.progress.record.violations == ecs.progress.record.violations == ("xray-1",)
    assert own.progress.record.breaks == ecs.progress.record.breaks == ()
    # AND with apps-first, ECS stopping the log router before the metrics tier (the DRAINING the guard set once
    # every app STOPPED) breaks no claim
    daemons = (*METRICS, a_task("fluent-bit-1", "fluent-bit", stopping=True))
    apps_first = plan_drain_step(request(), view(daemons, status="DRAINING"), at("tier"),
                                 replace(policy(), order=DrainOrder.APPS_FIRST))
    assert apps_first.progress.record.breaks == ()


# ---- idempotence --------------------------------------------------------------------------------

@pytest.mark.parametrize(("tasks", "progress"), [
    pytest.param(EVERYTHING, fresh(), id="DRAINING just requested"),
    pytest.param(STANDALONE + AGENTS, at("standalone", since=START - 400, started_at=START - 400),
                     id="standalone just stopped"),
    pytest.param(AGENTS + METRICS, at("tier", 0), id="tier 0 just stopped"),
])
def test_replanning_the_same_observation_repeats_no_effect(tasks: tuple[TaskView, ...],
                                                           progress: DrainProgress) -> None:
    # GIVEN a step that acted
    first = plan_drain_step(request(), view(tasks, now=START + 1), progress, policy())
    assert first.actions
    # WHEN the step is re-planned on the same observation with the checkpointed progress
    again = plan_drain_step(request(), view(tasks, now=START + 1), first.progress, policy())
    # THEN it does nothing again
    assert again.actions == ()


def test_a_crashed_step_rerun_does_not_restop_tasks_already_stopping() -> None:
    # GIVEN tier 0 was stopped by a step whose checkpoint was lost (progress from before the step)
    before = at("tier", 0)
    # WHEN the rerun observes the task as stopping
    rerun = plan_drain_step(request(), view((a_task("xray-1", "xray", stopping=True), *METRICS), now=START + 5),
                            before, policy())
    # THEN no StopTask is issued for it
    assert stops(rerun) == []


def test_a_completed_drain_plans_nothing() -> None:
    # GIVEN a drain that completed / WHEN replanned / THEN no action (no second CompleteLifecycle)
    done = plan_drain_step(request(), view(()), at("tier", 2), policy()).progress
    assert plan_drain_step(request(), view(()), done, policy()).actions == ()


# ---- checkpoint form ----------------------------------------------------------------------------

def test_progress_round_trips_through_its_json_checkpoint() -> None:
    # GIVEN progress with every kind of field filled in
    progress = replace(fresh(), phase="tier", tier=1, watch=PhaseWatch(overdue_noted=True),
                       stops=StopLedger(requested=("a", "b"), by_phase=(("replicas", "a"), ("agents", "b"))),
                       record=DrainRecord(violations=("t1",), phase_times=(("replicas", 1.0, 2.0),), forced=True,
                                          forced_at=5.0, result="CONTINUE", completed_at=9.0,
                                          breaks=(("agents", "notice", 7.0, 1),)))
    # WHEN it goes through JSON and back
    restored = DrainProgress.from_dict(json.loads(json.dumps(progress.as_dict())))
    # THEN it is the same progress; a checkpoint from before guarantee breaks were kept reads as none
    assert restored == progress
    record = {k: v for k, v in progress.as_dict()["record"].items() if k != "breaks"}
    assert DrainProgress.from_dict({**progress.as_dict(), "record": record}).record.breaks == ()


def test_a_checkpoint_written_before_the_progress_had_parts_reads_into_its_parts() -> None:
    # GIVEN a flat checkpoint as a drain in flight wrote it before the progress was split into parts
    flat = {"started_at": START, "phase": "tier", "tier": 1, "phase_started_at": START + 5,
            "instance_arn": INSTANCE_ARN, "live_tasks": [["xray-1", "service:xray"]], "gate_closed": True,
            "phase_late": True, "stop_requested": ["a"], "stop_by": [["a", START + 40]], "hook_since": START - 3,
            "breaks": [["agents", "notice", START + 9, 1]], "result": None}
    # WHEN it is read
    progress = DrainProgress.from_dict(flat)
    # THEN each value is in its part, under its new name (a live task without a stopTimeout gets ECS's 30 s)
    assert progress.look.live_tasks == (("xray-1", "service:xray", 30),)
    assert progress.fences.gate_closed and progress.watch.late and progress.stops.requested == ("a",)
    assert progress.stops.due_by == (("a", START + 40),) and progress.hook_started_at == START - 3
    assert progress.record.breaks == (("agents", "notice", START + 9, 1),) and progress.tier == 1


@pytest.mark.parametrize(("raw", "named"), [({"started_at": START, "phase": "draining"}, "'phase'"),
                                            ({"started_at": START, "stopped": []}, "'stopped'"),
                                            ({"started_at": START, "look": {"instances": 1}}, "instances")])
def test_a_checkpoint_that_is_not_a_drain_progress_is_refused_naming_what_is_wrong(raw: dict[str, object],
                                                                                   named: str) -> None:
    # GIVEN a checkpoint with an unknown phase, an unknown key, an unknown key in a part / WHEN read
    # THEN a ValueError names it
    with pytest.raises(ValueError, match=re.escape(named)):
        DrainProgress.from_dict(raw)


def test_the_drain_payload_names_what_is_missing() -> None:
    # GIVEN a payload without an instance id / WHEN read / THEN the error names the key
    with pytest.raises(ValueError, match="instanceId"):
        DrainRequest.from_payload({"cluster": "prod", "trigger": "operator"})
    assert DrainRequest.from_payload({"instanceId": "i-0abc1234", "cluster": "prod", "trigger": "spot",
                                      "deadline": 1767600120}).deadline_epoch == 1767600120.0


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("instanceId", "*", "drain payload: expected an EC2 instance id"),
        ("instanceId", "i-x or agentConnected == true", "drain payload: expected an EC2 instance id"),
        ("instanceId", "i-*", "drain payload: expected an EC2 instance id"),
        ("token", " ", "drain payload: expected a lifecycle action token"),
        ("hook", "a hook", "drain payload: expected a lifecycle hook name"),
        ("asg", "a:b", "drain payload: expected an Auto Scaling group name"),
        ("deadline", 0, "drain payload 'deadline'"),
        ("deadline", float("nan"), "drain payload 'deadline'"),
        ("deadline", 1e300, "drain payload 'deadline'"),
        ("deadline", True, "drain payload 'deadline'"),
        ("deadline", "soon", "drain payload 'deadline'"),
    ],
)
def test_a_drain_payload_with_a_hostile_identifier_or_an_impossible_deadline_is_refused(
        field: str, value: object, error: str) -> None:
    # GIVEN an operator's (or a forged) drain payload with one bad field
    payload = {"instanceId": "i-0abc1234", "cluster": "prod", "trigger": "operator", field: value}
    # WHEN read / THEN refused before any ECS read, naming the field
    with pytest.raises(ValueError, match=re.escape(error)):
        DrainRequest.from_payload(payload)


# ---- the small world the whole-drain specifications run against ---------------------------------

@dataclass
class World:
    """An instance whose tasks stop `stop_s` after StopTask; DRAINING replaces replicas after `replace_s`."""

    tasks: tuple[TaskView, ...]
    replicas_leave: bool = True
    replace_s: float = 30.0
    stop_s: float = 5.0
    status: str = "ACTIVE"
    stop_at: dict[str, float] = field(default_factory=dict)
    stopped_at: list[tuple[float, tuple[str, ...]]] = field(default_factory=list)
    actions: list[tuple[float, Action]] = field(default_factory=list)
    final: DrainProgress = field(default_factory=fresh)
    completed_at: float | None = None

    def observe(self, now: float) -> DrainView:
        live = []
        for t in self.tasks:
            gone_at = self.stop_at.get(t.arn)
            if gone_at is not None and now >= gone_at:
                continue
            live.append(replace(t, desired_status="STOPPED") if gone_at is not None else t)
        return DrainView(now=now, instance=an_instance(self.status), tasks=tuple(live), daemon_tier=TIERS,
                         lifecycle=LIFECYCLE)

    def act(self, now: float, actions: Sequence[Action]) -> None:
        for action in actions:
            self.actions.append((now, action))
            if isinstance(action, SetDraining):
                self.status = "DRAINING"
                if self.replicas_leave:
                    for t in self.tasks:
                        if t.service_name and t.service_name not in TIERS:
                            self.stop_at.setdefault(t.arn, now + self.replace_s)
            elif isinstance(action, StopTasks):
                self.stopped_at.append((now, action.task_arns))
                for arn in action.task_arns:
                    self.stop_at.setdefault(arn, now + self.stop_s)

    def run(self, req: DrainRequest, pol: DrainPolicy) -> None:
        now, progress = START, fresh()
        for _ in range(1000):
            step = plan_drain_step(req, self.observe(now), progress, pol)
            self.act(now, step.actions)
            progress = step.progress
            if progress.done:
                self.completed_at = now
                break
            now += step.wait_s
        self.final = progress
        assert progress.done, "the drain never completed"

    def stop_log(self) -> list[tuple[str, ...]]:
        return [arns for _, arns in self.stopped_at]

    def count(self, kind: type) -> int:
        return sum(isinstance(a, kind) for _, a in self.actions)

    def completions(self) -> int:
        return self.count(CompleteLifecycle)
