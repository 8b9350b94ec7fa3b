"""The drain's phases, each one pure function of a `PhaseInput`: the fence that keeps new work off the
instance (`plan_fence`), the replicas (`plan_replicas`), standalone tasks (`plan_standalone`), each daemon
tier (`plan_tier`) and the last look before the lifecycle action (`plan_settle`); and how a phase follows
the tasks it stopped to STOPPED, waiting past their expected stop time until a hard end forces a counted
guarantee break."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from operator import itemgetter

from daemon_guard.core.actions import Action, SetAttribute, SetDraining, StopTasks
from daemon_guard.core.config import DrainOrder, StandalonePolicy
from daemon_guard.core.drain.deadlines import (
    POLL_S,
    STOP_MARGIN_S,
    HardEnd,
    phase_deadline,
    phase_index,
    phase_stop_times,
    standalone_wait_end,
)
from daemon_guard.core.drain.progress import (
    REPLICAS_KEY,
    STANDALONE_KEY,
    DrainNote,
    DrainProgress,
    DrainView,
    Phase,
    phase_label,
)
from daemon_guard.core.drain.request import DrainPolicy
from daemon_guard.core.model import ServiceView, TaskView
from daemon_guard.core.placement import GATE_DRAINING, GATE_OPEN, TIER_STOPPED, gate_reshut_at, tier_attribute
from daemon_guard.core.slow_look import LOOK_MAX_S

# How soon a replica phase held back by minimumHealthyPercent looks again when nothing wakes it: the drain
# registers in the held services' wake registry and the intake wakes it when a task of one reaches RUNNING (the
# replacement), so this slow look is only the fallback (a lost event, a registration that failed).
BUDGET_POLL_S = 60.0
BLOCKED_AFTER_S = 120.0
# How soon a phase waiting to see its own write (the gate shut, DRAINING, a tier fenced) looks again: ECS's
# API is eventually consistent, a write is seen "at once … seconds" later (ECS-BEHAVIOUR.md), and each such
# look is one DescribeContainerInstances besides the step's ListTasks and DescribeTasks.
READ_BACK_S = 2.0


@dataclass(frozen=True)
class PhaseInput:
    """What a phase function decides from: the observation, the progress, the policy, the global deadline,
    and the hard end (`hard_ends`; None: none known, the phase waits for its tasks however long)."""

    view: DrainView
    progress: DrainProgress
    policy: DrainPolicy
    deadline: float
    end: HardEnd | None = None


@dataclass(frozen=True)
class PhaseOutcome:
    """A phase's decision: the new progress, its actions and notes, whether it is finished, and (when it
    waits on something no event announces, such as a replacement starting elsewhere) how soon to look."""

    progress: DrainProgress
    actions: tuple[Action, ...] = ()
    notes: tuple[DrainNote, ...] = ()
    finished: bool = False
    look_again_s: float | None = None


def live_tasks(tasks: Sequence[TaskView]) -> list[TaskView]:
    return [t for t in tasks if t.last_status != "STOPPED"]


def _non_daemon_service_tasks(view: DrainView) -> list[TaskView]:
    return list(view.live_by_phase.get(REPLICAS_KEY, ()))


def _standalone_tasks(view: DrainView) -> list[TaskView]:
    return list(view.live_by_phase.get(STANDALONE_KEY, ()))


def _tier_tasks(view: DrainView, tier: int) -> list[TaskView]:
    return list(view.live_by_phase.get(tier, ()))


def app_tasks(view: DrainView, policy: DrainPolicy) -> list[TaskView]:
    """Every non-daemon task the drain must see STOPPED before daemons (standalone unless ignored)."""
    standalone = [] if policy.standalone is StandalonePolicy.IGNORE else _standalone_tasks(view)
    return _non_daemon_service_tasks(view) + standalone


def _record_phase_tasks(progress: DrainProgress, phase: str, tasks: Sequence[TaskView]) -> DrainProgress:
    if not tasks:
        return progress
    known = set(map(itemgetter(1), progress.stops.by_phase))
    new = tuple((phase, t.arn) for t in tasks if t.arn not in known)
    return replace(progress, stops=replace(progress.stops, by_phase=progress.stops.by_phase + new)) if new else progress


def _stop(progress: DrainProgress, tasks: Sequence[TaskView], reason: str, now: float,
          phase: str) -> tuple[tuple[Action, ...], DrainProgress]:
    """StopTask the tasks not yet told to stop (none twice), for `phase` (its label), remembering them and when
    each must be STOPPED."""
    asked = set(progress.stops.requested)
    fresh = sorted((t for t in tasks if not t.stopping and t.arn not in asked), key=lambda t: t.arn)
    if not fresh:
        return (), progress
    arns = tuple(t.arn for t in fresh)
    stops = replace(progress.stops, requested=progress.stops.requested + arns,
                    due_by=_with_bounds(progress.stops.due_by, fresh, now))
    return (StopTasks(arns, reason, phase),), replace(progress, stops=stops)


def _with_bounds(known: tuple[tuple[str, float], ...], tasks: Sequence[TaskView],
                 now: float) -> tuple[tuple[str, float], ...]:
    """`known` plus, for each task not in it, the time it must be STOPPED by (its stopTimeout from now)."""
    seen = set(map(itemgetter(0), known))
    new = tuple((t.arn, now + t.stop_timeout_s + STOP_MARGIN_S) for t in tasks if t.arn not in seen)
    return known + new if new else known


def follow_stops(view: DrainView, progress: DrainProgress, tasks: Sequence[TaskView]) -> tuple[DrainProgress,
                                                                                                float | None]:
    """Follow tasks told to stop (by the guard or anyone) to STOPPED, each expected by its own stop time.

    Returns the progress (with the expected stop times of tasks first seen stopping) and the seconds until
    the last of them, or None once every one has passed (the tasks still live are then overdue: waited
    for all the same, `_await_stopped`).
    """
    due_by = _with_bounds(progress.stops.due_by, [t for t in tasks if t.stopping], view.now)
    progress = replace(progress, stops=replace(progress.stops, due_by=due_by))
    bound = dict(progress.stops.due_by)
    last = max((bound.get(t.arn, view.now) for t in tasks), default=view.now)
    return progress, (last - view.now if last > view.now else None)


def _on_deadline(inp: PhaseInput, remaining: Sequence[TaskView]) -> PhaseOutcome | None:
    """A phase out of time (its deadline or the global one passed) stops everything it still holds at once
    (the miss counted once, unless the global deadline already was) and follows it to STOPPED
    (`_await_stopped`). None: time is left."""
    progress, policy, now = inp.progress, inp.policy, inp.view.now
    label = phase_label(progress, policy)
    if now < phase_deadline(inp.view, progress, policy, inp.deadline):
        return None
    notes: tuple[DrainNote, ...] = ()
    if not progress.watch.late:
        missed = 0 if progress.record.forced else 1
        progress = replace(progress, watch=replace(progress.watch, late=True),
                           record=replace(progress.record, deadlines_missed=progress.record.deadlines_missed + missed))
        notes = (DrainNote("deadline-missed", f"{label} deadline passed", tier=label),) if missed else ()
    actions, progress = _stop(progress, remaining, f"daemon-guard drain: {label} deadline", now, label)
    return _await_stopped(replace(inp, progress=progress), remaining, actions, notes, label,
                          phase_index(progress) + 1)


def _await_stopped(inp: PhaseInput, tasks: Sequence[TaskView], actions: tuple[Action, ...],
                   notes: tuple[DrainNote, ...], label: str, later: int) -> PhaseOutcome:
    """Wait for `tasks` (all told to stop, none STOPPED yet) before the phases from index `later` on begin.

    Past their expected stop time the wait goes on (noted once per phase), looking again at the polling
    rate: time alone never moves the drain on. Only the hard end does, once the later phases need what
    is left of it to stop their own tasks (`phase_stop_times`); that move is a guarantee break (`_break`).
    """
    progress, left_s = follow_stops(inp.view, inp.progress, tasks)
    now = inp.view.now
    break_at = math.inf if inp.end is None else inp.end.at - sum(phase_stop_times(inp.view, inp.policy)[later:])
    if now >= break_at:
        return _break(replace(inp, progress=progress), tasks, actions, notes, label)
    if left_s is None and not progress.watch.overdue_noted:
        progress = replace(progress, watch=replace(progress.watch, overdue_noted=True),
                           stops=replace(progress.stops, overdue=progress.stops.overdue + len(tasks)))
        notes = (*notes, DrainNote("stop-overdue", f"{len(tasks)} task(s) of {label} not STOPPED within their stop "
                                                   "time: still waiting", value=len(tasks), tier=label))
    return PhaseOutcome(progress, actions, notes, look_again_s=min(left_s or POLL_S, break_at - now))


def _break(inp: PhaseInput, tasks: Sequence[TaskView], actions: tuple[Action, ...], notes: tuple[DrainNote, ...],
           label: str) -> PhaseOutcome:
    """The hard end: the phase is finished with `tasks` not STOPPED, a guarantee break recorded and noted."""
    progress, now = inp.progress, inp.view.now
    kind = inp.end.kind if inp.end is not None else "deadline"
    if any(b[0] == label and b[1] == kind for b in progress.record.breaks):
        # Counted once: late app tasks still stopping are met again at every later step of the same hard end.
        return PhaseOutcome(progress, actions, notes, finished=True)
    progress = replace(progress, record=replace(progress.record, breaks=(*progress.record.breaks,
                                                                     (label, kind, now, len(tasks)))))
    arns = ", ".join(sorted(t.arn for t in tasks))
    note = DrainNote("guarantee-broken", f"{len(tasks)} task(s) of {label} not STOPPED at the hard end ({kind}): "
                                         f"{arns}", value=len(tasks), tier=label)
    return PhaseOutcome(progress, actions, (*notes, note), finished=True)


def _begin(inp: PhaseInput, remaining: Sequence[TaskView]) -> tuple[PhaseInput, PhaseOutcome | None]:
    """What every phase does first: record its tasks; finished when none is left; the deadline rules."""
    progress = _record_phase_tasks(inp.progress, phase_label(inp.progress, inp.policy), remaining)
    inp = replace(inp, progress=progress)
    if not remaining:
        return inp, PhaseOutcome(progress, finished=True)
    return inp, _on_deadline(inp, remaining)


def replica_stops(remaining: Sequence[TaskView], services: Mapping[str, ServiceView],
                  requested: Sequence[str]) -> list[TaskView]:
    """The replicas the guard may stop now without taking a service below its minimumHealthyPercent.

    Tasks not yet RUNNING count for nothing and always go. Of a service's RUNNING tasks, at most
    healthy - ceil(desired x minimumHealthyPercent) minus those of it already stopping here, where healthy
    (`_healthy`) is what runningCount and pendingCount both vouch for; a service with no such room
    (minimumHealthyPercent 100) loses one task at a time, and only while it runs its full desired count with
    no replacement pending (the last one's replacement is RUNNING before the next one goes, whichever drain
    stopped it). A service the view does not describe is left for the next look.
    """
    asked = set(requested)
    out = [t for t in remaining if t.last_status != "RUNNING" and not t.stopping and t.arn not in asked]
    by_service: dict[str, list[TaskView]] = {}
    stopping: dict[str, int] = {}
    for task in remaining:
        name = task.service_name or ""
        if task.stopping or task.arn in asked:
            stopping[name] = stopping.get(name, 0) + 1
        elif task.last_status == "RUNNING":
            by_service.setdefault(name, []).append(task)
    for name, tasks in sorted(by_service.items()):
        svc = services.get(name)
        if svc is None:
            continue
        floor = math.ceil(svc.desired_count * svc.minimum_healthy_percent / 100)
        healthy = _healthy(svc)
        room = healthy - floor - stopping.get(name, 0)
        if room <= 0 and stopping.get(name, 0) == 0 and healthy >= svc.desired_count:
            room = 1
        out.extend(sorted(tasks, key=lambda t: t.arn)[:max(0, room)])
    return out


def _healthy(svc: ServiceView) -> int:
    """The service's tasks the guard counts as RUNNING and staying: runningCount, but at most desired - pending,
    and at most its tasks of desired status RUNNING (where listed) - pending.

    ECS documents runningCount only as the tasks "in the RUNNING state", and a task told to stop (by another drain
    of the same service, say) keeps lastStatus RUNNING until its containers exit, so the count may still hold it;
    the replacement ECS starts for it shows as pending only from its next scheduler pass (and never while it
    cannot place it). ListTasks with desiredStatus RUNNING leaves the stopping task out at once.
    """
    kept = svc.desired_count if svc.tasks_desired_running is None else min(svc.desired_count,
                                                                           svc.tasks_desired_running)
    return max(0, min(svc.running_count, kept - svc.pending_count))


def plan_fence(view: DrainView, progress: DrainProgress, policy: DrainPolicy) -> tuple[tuple[Action, ...],
                                                                                        DrainProgress]:
    """The drain's first effect, keeping new work off the instance: DRAINING (order ``draining``: ECS
    then replaces the replicas and decides when the daemons stop) or the gate shut (`<gate>=draining`:
    gated replicas land elsewhere, and ECS's DRAINING timing is kept out of the order)."""
    instance = view.instance
    active = instance is not None and instance.status == "ACTIVE"
    if policy.order is DrainOrder.DRAINING:
        if progress.fences.draining_requested:
            return (), progress
        actions: tuple[Action, ...] = (SetDraining((instance.arn,)),) if active and instance else ()
        return actions, replace(progress, fences=replace(progress.fences, draining_requested=True))
    progress = read_back(view, progress, policy)
    if progress.fences.gate_closed and not (active and gate_reopened(view, policy)):
        return (), progress
    # First close, or shut again: a gate opener that read the instance before the drain shut it may have
    # written `open` after (ECS's PutAttributes has no condition), letting gated replicas back in.
    actions = (SetAttribute(instance.arn, policy.gate_attribute, GATE_DRAINING),) if active and instance else ()
    fences = progress.fences
    return actions, replace(progress, fences=replace(fences, gate_closed=True,
                                                     gate_seen=fences.gate_seen and not fences.gate_closed))


def read_back(view: DrainView, progress: DrainProgress, policy: DrainPolicy) -> DrainProgress:
    """Record the drain's writes that this look shows in effect: the gate shut (`<gate>=draining`), the
    instance DRAINING, each fenced tier's attribute. ECS's API is eventually consistent (the scheduler may
    not yet see a write either), so a phase counts on none of them before it is seen here."""
    instance = view.instance
    if instance is None:
        return progress
    gate = progress.fences.gate_seen or (progress.fences.gate_closed
                                  and instance.attributes.get(policy.gate_attribute) == GATE_DRAINING)
    draining = progress.fences.draining_seen or (progress.fences.draining_requested and instance.status == "DRAINING")
    tiers = progress.fences.tiers_seen + tuple(
        name for name in progress.fences.tiers_fenced if name not in progress.fences.tiers_seen
        and instance.attributes.get(tier_attribute(name, policy.gate_attribute)) == TIER_STOPPED)
    fences = progress.fences
    if (gate, draining, tiers) == (fences.gate_seen, fences.draining_seen, fences.tiers_seen):
        return progress
    return replace(progress, fences=replace(fences, gate_seen=gate, draining_seen=draining, tiers_seen=tiers))


def _no_time_to_read_back(inp: PhaseInput) -> bool:
    """Time, not the fences, rules once a Spot notice (or EC2 stop) is the hard end (what is still here when
    it ends dies with the instance), the drain is out of time (forced, or this phase late) or has already
    moved on at a hard end: the drain does not wait to read its writes back, and a task that lands or
    restarts meanwhile is seen at a later look and stopped in order."""
    progress = inp.progress
    return (inp.end is not None and inp.end.kind == "notice") or progress.record.forced or progress.watch.late \
        or bool(progress.record.breaks)


def _gate_unseen(inp: PhaseInput) -> bool:
    """Orders other than ``draining`` keep new replicas off with the gate: until a look shows it shut, a
    replica stopped here may be replaced here, and one may land after the last look before a tier."""
    return inp.policy.order is not DrainOrder.DRAINING and not inp.progress.fences.gate_seen \
        and not _no_time_to_read_back(inp)


def _fence_unseen(inp: PhaseInput) -> bool:
    """The current tier's fence not yet seen: its attribute (``tiers``), DRAINING (``apps-first``). Until
    then ECS may start again a daemon the tier stops."""
    progress, policy = inp.progress, inp.policy
    if _no_time_to_read_back(inp):
        return False
    if policy.order is DrainOrder.TIERS:
        return phase_label(progress, policy) not in progress.fences.tiers_seen
    return policy.order is DrainOrder.APPS_FIRST and not progress.fences.draining_seen


def gate_reopened(view: DrainView, policy: DrainPolicy) -> bool:
    """True when the instance shows the gate `open`, or shut again for a repair (`repair@<epoch>`, which the
    reflex reopens once the daemon runs), although this drain shut it (orders other than ``draining``): gated
    replicas may land until the drain shuts it again."""
    instance = view.instance
    return policy.order is not DrainOrder.DRAINING and instance is not None \
        and (instance.attributes.get(policy.gate_attribute) == GATE_OPEN
             or gate_reshut_at(instance, policy.gate_attribute) is not None)


def _blocked(view: DrainView, progress: DrainProgress,
             remaining: Sequence[TaskView]) -> tuple[DrainProgress, list[DrainNote]]:
    """Report once a replica phase that cannot progress: no replacement possible, or no progress for long."""
    count = len(remaining)
    if count != progress.watch.last_count:
        progress = replace(progress, watch=replace(progress.watch, last_count=count, last_progress_at=view.now))
    if progress.watch.blocked_reported:
        return progress, []
    if view.services:
        progress = replace(progress, look=replace(progress.look, services_checked=True))
    names = {t.service_name for t in remaining if t.service_name is not None}
    stuck = sorted(n for n in names if n in view.services and view.services[n].minimum_healthy_percent >= 100
                   and view.services[n].maximum_percent <= 100)
    if stuck:
        detail = f"{', '.join(stuck)} at minimumHealthyPercent 100 and maximumPercent 100: ECS cannot replace them"
    elif (quiet := view.now - progress.watch.last_progress_at) >= BLOCKED_AFTER_S:
        detail = f"{count} replica task(s) not replaced for {quiet:.0f}s (no room?)"
    else:
        return progress, []
    return replace(progress, watch=replace(progress.watch, blocked_reported=True)), [DrainNote("blocked", detail)]


def plan_replicas(inp: PhaseInput) -> PhaseOutcome:
    """Service replicas. Order ``draining``: ECS replaces them (the guard waits, then reports a blocked
    drain). Otherwise the guard stops them itself within minimumHealthyPercent (`replica_stops`) and
    follows each to STOPPED."""
    inp, done = _begin(inp, _non_daemon_service_tasks(inp.view))
    remaining = _non_daemon_service_tasks(inp.view)
    if done is not None:
        return done
    progress, notes = _blocked(inp.view if inp.policy.order is DrainOrder.DRAINING
                               else replace(inp.view, services={}), inp.progress, remaining)
    if inp.policy.order is DrainOrder.DRAINING:
        return PhaseOutcome(progress, notes=tuple(notes))
    if _gate_unseen(inp):
        return PhaseOutcome(progress, notes=tuple(notes), look_again_s=READ_BACK_S)
    allowed = replica_stops(remaining, inp.view.services, progress.stops.requested)
    actions, progress = _stop(progress, allowed, "daemon-guard drain: replicas", inp.view.now, "replicas")
    asked = set(inp.progress.stops.requested)
    held = len(allowed) < sum(1 for t in remaining if not t.stopping and t.arn not in asked)
    progress = replace(progress, watch=replace(progress.watch, replicas_held=held))
    return PhaseOutcome(progress, actions, tuple(notes), look_again_s=BUDGET_POLL_S if held else None)


def plan_standalone(inp: PhaseInput) -> PhaseOutcome:
    """Standalone tasks by policy: ignore them, stop them, or wait until `standalone_wait_s` after the drain's
    start (`standalone_wait_end`) and then stop them. While waiting, each one that exits is announced by its Task
    State Change, so the phase looks again only when the wait ends or, at the latest, after `LOOK_MAX_S` (a lost
    event), not at the polling rate."""
    policy = inp.policy
    remaining = [] if policy.standalone is StandalonePolicy.IGNORE else _standalone_tasks(inp.view)
    inp, done = _begin(inp, remaining)
    if done is not None:
        return done
    wait_end = standalone_wait_end(inp.progress, policy)
    if policy.standalone is not StandalonePolicy.STOP and inp.view.now < wait_end:
        return PhaseOutcome(inp.progress, look_again_s=min(wait_end - inp.view.now, LOOK_MAX_S))
    actions, progress = _stop(inp.progress, remaining, "daemon-guard drain: standalone", inp.view.now, "standalone")
    return PhaseOutcome(progress, actions)


def _fence_tier(inp: PhaseInput) -> tuple[tuple[Action, ...], DrainProgress]:
    """Before a tier's daemons stop: order ``tiers`` sets the tier's attribute (its daemons' constraint
    stops matching: ECS restarts none); ``apps-first`` sets DRAINING once every app task has STOPPED."""
    view, progress, policy = inp.view, inp.progress, inp.policy
    instance = view.instance
    if instance is None or instance.status not in ("ACTIVE", "DRAINING"):
        return (), progress
    if policy.order is DrainOrder.TIERS:
        name = phase_label(progress, policy)
        if name in progress.fences.tiers_fenced:
            return (), progress
        return (SetAttribute(instance.arn, tier_attribute(name, policy.gate_attribute), TIER_STOPPED),), \
            replace(progress, fences=replace(progress.fences, tiers_fenced=(*progress.fences.tiers_fenced, name)))
    if policy.order is DrainOrder.APPS_FIRST and not progress.fences.draining_requested:
        actions: tuple[Action, ...] = (SetDraining((instance.arn,)),) if instance.status == "ACTIVE" else ()
        return actions, replace(progress, fences=replace(progress.fences, draining_requested=True))
    return (), progress


def plan_tier(inp: PhaseInput) -> PhaseOutcome:
    """One daemon tier, stopped by the guard and followed to STOPPED. App tasks that arrived after their
    phase (a standalone task run onto the instance meanwhile) are stopped and followed to STOPPED first,
    however late it is (bounded by their stop time)."""
    late = app_tasks(inp.view, inp.policy)
    before: tuple[Action, ...] = ()
    notes: tuple[DrainNote, ...] = ()
    if late:
        actions, progress = _stop(inp.progress, late, "daemon-guard drain: late app task", inp.view.now,
                                  phase_label(inp.progress, inp.policy))
        waited = _await_stopped(replace(inp, progress=progress), late, actions, (), "late app tasks",
                                phase_index(progress))
        if not waited.finished:
            return waited
        inp, before, notes = replace(inp, progress=waited.progress), waited.actions, waited.notes
    if inp.progress.fences.gate_closed and gate_reopened(inp.view, inp.policy):
        # Shut again this step (`plan_fence`); the next look shows any replica that landed meanwhile.
        return PhaseOutcome(inp.progress, before, notes, look_again_s=1.0)
    if _gate_unseen(inp):
        return PhaseOutcome(inp.progress, before, notes, look_again_s=READ_BACK_S)
    fence, progress = _fence_tier(inp)
    inp, done = _begin(replace(inp, progress=progress), _tier_tasks(inp.view, progress.tier))
    if done is not None:
        return replace(done, actions=before + fence + done.actions, notes=notes + done.notes)
    if _fence_unseen(inp):
        return PhaseOutcome(inp.progress, before + fence, notes, look_again_s=READ_BACK_S)
    label = phase_label(inp.progress, inp.policy)
    tasks = _tier_tasks(inp.view, progress.tier)
    actions, progress = _stop(inp.progress, tasks, f"daemon-guard drain: {label}", inp.view.now, label)
    progress, _ = follow_stops(inp.view, progress, tasks)
    return PhaseOutcome(progress, before + fence + actions, notes)


def plan_settle(inp: PhaseInput) -> PhaseOutcome:
    """After the last tier: the lifecycle action waits until no task the drain orders is left (one that
    arrived is stopped), or until the hard end (`hard_end`: its deadline here), where it completes anyway,
    counted and recorded as a guarantee break."""
    left = app_tasks(inp.view, inp.policy) + [t for t in live_tasks(inp.view.tasks)
                                               if t.service_name is not None and t.service_name in inp.view.daemon_tier]
    if not left:
        return PhaseOutcome(inp.progress, finished=True)
    actions, progress = _stop(inp.progress, left, "daemon-guard drain: left at the end", inp.view.now, "settle")
    progress, _ = follow_stops(inp.view, progress, left)
    end = inp.deadline
    if inp.view.now < end:
        return PhaseOutcome(progress, actions, look_again_s=end - inp.view.now)
    progress = replace(progress, record=replace(progress.record,
                                                completed_with_tasks=progress.record.completed_with_tasks + len(left)))
    note = DrainNote("completed-with-tasks", f"{len(left)} task(s) still not STOPPED at the hard end", value=len(left))
    return _break(replace(inp, progress=progress), left, actions, (note,), "settle")
PHASES: Mapping[Phase, Callable[[PhaseInput], PhaseOutcome]] = {
    "replicas": plan_replicas, "standalone": plan_standalone, "tier": plan_tier, "settle": plan_settle}
