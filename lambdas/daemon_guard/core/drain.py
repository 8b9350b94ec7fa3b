"""The ordered drain, one step at a time: replicas, then standalone tasks, then daemon tiers, then CONTINUE.

`plan_drain_step` is pure: it reads what the workflow observed (`DrainView`), what it has done so
far (`DrainProgress`, checkpointed between steps) and the policy, and returns the actions of this
step, the new progress, how long to wait before looking again and what to measure. Because it
re-derives everything from observed state, running a step twice (a replayed or crashed
invocation) repeats no effect that matters: StopTask on a stopping task and DRAINING on a draining
instance change nothing, and the lifecycle action is completed once (the adapter tolerates a
second try).

Each phase is one pure function (`plan_replicas`, `plan_standalone`, `plan_tier`, and `plan_settle`,
the last look before the lifecycle action), and so is the fence that keeps new work off the instance
(`plan_fence`). What the drain may promise depends on its
`DrainOrder` (core.config): with ``draining`` ECS decides when the daemons stop; with ``apps-first``
the guard stops every app task itself and follows it to STOPPED before DRAINING; with ``tiers`` it
also stops each daemon tier itself behind a tier attribute that keeps ECS from restarting it.

Time: a global deadline (configured, or the Spot notice minus a safety margin). Each phase's own
deadline reserves the time every later phase needs to stop its tasks (the longest stopTimeout among
them plus `STOP_MARGIN_S`: ECS sends SIGTERM, then SIGKILL after the stopTimeout), so a phase out of
time still leaves room for the rest. A phase out of time (its deadline, or the global one, passed)
stops everything it still holds at once, minimumHealthyPercent no longer counting, and the miss is
counted; it still follows those tasks to STOPPED before the next phase begins. Order is never traded for
time: a phase whose tasks outlive their expected stop time (stopTimeout plus `STOP_MARGIN_S`) keeps
waiting, looking again every `POLL_S`, and the lifecycle action waits with it, kept alive by heartbeats.
Only a hard end (`hard_ends`: a Spot notice or EC2 stop about to end, heartbeats that must stop before
the hook's global timeout, the drain deadline when `drainDeadlinePolicy` is ``force``) moves a phase on
with a task not STOPPED, and only when the later phases need the rest of the time to stop their own
tasks; each such move is a *guarantee break*, counted (`DrainProgress.breaks`) and published. The
lifecycle action completes once no task is left (or the instance is gone), or at the hard end, which
is a break too.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from operator import itemgetter
from typing import Any, Literal, TypeVar

from daemon_guard.core.actions import (
    Action,
    CompleteLifecycle,
    RecordHeartbeat,
    SetAttribute,
    SetDraining,
    StopTasks,
)
from daemon_guard.core.config import DeadlinePolicy, DrainOrder, StandalonePolicy
from daemon_guard.core.identifiers import (
    AsgName,
    HookName,
    IdentifierError,
    InstanceId,
    LifecycleToken,
    valid_epoch,
)
from daemon_guard.core.model import InstanceView, ServiceView, TaskView
from daemon_guard.core.placement import GATE_DRAINING, GATE_OPEN, TIER_STOPPED, tier_attribute

SPOT_SAFETY_S = 10.0
# How often a waiting drain looks at ECS when no event wakes it (a task past its expected stop time included).
POLL_S = 10.0
# What ECS takes beyond a task's stopTimeout to report it STOPPED (SIGKILL, the agent's report), and the
# guard to read it: when a stopped task is expected STOPPED (past it the drain still waits, only noting it),
# and what each phase's reservation adds.
STOP_MARGIN_S = 5.0
# How long before a Spot notice ends the guard completes the lifecycle action even with tasks left.
HARD_END_MARGIN_S = 2.0
# How soon a replica phase held back by minimumHealthyPercent looks again: a replacement takes ECS tens of
# seconds to place and start, and a hundred held drains polling faster would spend the cluster's read rate.
BUDGET_POLL_S = 10.0
BLOCKED_AFTER_S = 120.0
HOOK_MAX_GLOBAL_S = 48 * 3600
REPLICAS_KEY = "replicas"
STANDALONE_KEY = "standalone"
T = TypeVar("T")
HardEndKind = Literal["notice", "heartbeats", "deadline"]


@dataclass(frozen=True)
class DrainRequest:
    """What started the drain (the workflow's payload)."""

    instance_id: InstanceId
    cluster: str
    trigger: str
    asg: AsgName | None = None
    hook: HookName | None = None
    token: LifecycleToken | None = None
    deadline_epoch: float | None = None
    destination: str | None = None

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> DrainRequest:
        """Read the Invoke payload (an operator's too); ValueError names the field that is missing or wrong.

        Identifiers are validated as `core.identifiers` value types before anything reads ECS, so an
        ``instanceId`` of ``*`` or a query fragment is refused, and ``deadline`` must be epoch seconds
        within the event-time bounds (no NaN, no 1970, no year 9999).
        """
        for key in ("instanceId", "cluster", "trigger"):
            if not isinstance(payload.get(key), str) or not payload[key]:
                raise ValueError(f"drain payload needs a non-empty string '{key}'")
        deadline = payload.get("deadline")
        if deadline is not None and not valid_epoch(deadline):
            raise ValueError(f"drain payload 'deadline': expected epoch seconds in 2016-2099, got {deadline!r}")
        try:
            return cls(instance_id=InstanceId(payload["instanceId"]), cluster=payload["cluster"],
                       trigger=payload["trigger"], asg=_optional(AsgName, payload.get("asg")),
                       hook=_optional(HookName, payload.get("hook")),
                       token=_optional(LifecycleToken, payload.get("token")),
                       deadline_epoch=float(deadline) if deadline is not None else None,
                       destination=payload.get("destination"))
        except IdentifierError as refused:
            raise ValueError(f"drain payload: {refused.reason}") from None


def _optional(kind: Callable[[object], T], value: object) -> T | None:
    """None and "" (no lifecycle action) stay None; anything else must be a valid `kind`."""
    return None if value is None or value == "" else kind(value)


@dataclass(frozen=True)
class DrainPolicy:
    """Configured order and time limits."""

    tier_names: tuple[str, ...]
    standalone: StandalonePolicy
    standalone_wait_s: float
    drain_deadline_s: float
    tier_deadline_s: float
    heartbeat_timeout_s: float
    order: DrainOrder = DrainOrder.DRAINING
    gate_attribute: str = "daemon-guard.gate"
    deadline_policy: DeadlinePolicy = DeadlinePolicy.ORDER


@dataclass(frozen=True)
class Lifecycle:
    """The lifecycle action the drain must complete."""

    asg: str
    hook: str
    token: str | None


@dataclass(frozen=True)
class DrainView:
    """What a step observed: the instance (None once gone), its live tasks, daemon tiers, services."""

    now: float
    instance: InstanceView | None
    tasks: Sequence[TaskView]
    daemon_tier: Mapping[str, int]
    services: Mapping[str, ServiceView] = field(default_factory=dict)
    lifecycle: Lifecycle | None = None
    deadline_epoch: float | None = None

    @cached_property
    def live_by_phase(self) -> Mapping[int | str, list[TaskView]]:
        """The live (not STOPPED) tasks by the phase that stops them, each list in the view's order:
        `REPLICAS_KEY`, `STANDALONE_KEY`, or a daemon tier's number. Read once per view, so that every
        phase's look is a lookup, not another pass over the instance's tasks."""
        groups: dict[int | str, list[TaskView]] = {}
        for task in self.tasks:
            if task.last_status == "STOPPED":
                continue
            name = task.service_name
            key = STANDALONE_KEY if name is None else self.daemon_tier.get(name, REPLICAS_KEY)
            groups.setdefault(key, []).append(task)
        return groups

    @cached_property
    def longest_stop_by_phase(self) -> Mapping[int | str, int]:
        """The longest stopTimeout among each phase's live tasks (keys as `live_by_phase`), read once per view."""
        return {key: max(t.stop_timeout_s for t in tasks) for key, tasks in self.live_by_phase.items() if tasks}


@dataclass(frozen=True)
class DrainProgress:
    """What the drain has done so far; checkpointed between steps (JSON via `as_dict`)."""

    started_at: float
    instance_arn: str | None = None
    instance_status: str | None = None
    live_tasks: tuple[tuple[str, str, int], ...] = ()  # (task ARN, group, stopTimeout) at the last look
    ticks: int = 0
    failures: int = 0
    phase: str = "replicas"
    tier: int = 0
    phase_started_at: float = 0.0
    draining_requested: bool = False
    gate_closed: bool = False
    tiers_fenced: tuple[str, ...] = ()
    last_heartbeat_at: float = 0.0
    heartbeats: int = 0
    deadlines_missed: int = 0
    blocked_reported: bool = False
    notice_at: float | None = None  # when a Spot notice ends (epoch seconds), once the drain has seen one
    replicas_held: bool = False  # the replica phase waits only on replacements elsewhere (minimumHealthyPercent)
    services_checked: bool = False
    forced: bool = False
    forced_at: float | None = None
    violations: tuple[str, ...] = ()
    stop_requested: tuple[str, ...] = ()
    stop_by: tuple[tuple[str, float], ...] = ()
    phase_late: bool = False
    stops_overdue: int = 0
    overdue_noted: bool = False  # the current phase has tasks past their expected stop time (noted once)
    completed_with_tasks: int = 0
    breaks: tuple[tuple[str, str, float, int], ...] = ()  # guarantee breaks: (phase, hard end kind, at, tasks left)
    phase_tasks: tuple[tuple[str, str], ...] = ()
    phase_times: tuple[tuple[str, float, float], ...] = ()
    last_count: int = -1
    last_progress_at: float = 0.0
    result: str | None = None
    completed_at: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (tuples become lists)."""
        return {k: [list(x) if isinstance(x, tuple) else x for x in v] if isinstance(v, tuple) else v
                for k, v in vars(self).items()}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> DrainProgress:
        """Inverse of `as_dict`."""
        values = dict(raw)
        # A checkpoint from before stopTimeouts were kept reads as ECS's default (30 s).
        values["live_tasks"] = tuple((x[0], x[1], x[2] if len(x) > 2 else 30) for x in values.get("live_tasks", ()))
        for key in ("violations", "stop_requested", "tiers_fenced"):
            values[key] = tuple(values.get(key, ()))
        values["phase_tasks"] = tuple(tuple(x) for x in values.get("phase_tasks", ()))
        values["stop_by"] = tuple(tuple(x) for x in values.get("stop_by", ()))
        values["phase_times"] = tuple(tuple(x) for x in values.get("phase_times", ()))
        values["breaks"] = tuple(tuple(x) for x in values.get("breaks", ()))
        return cls(**values)

    @property
    def done(self) -> bool:
        """True once the lifecycle action is completed (or there was none to complete)."""
        return self.phase == "complete"


@dataclass(frozen=True)
class DrainNote:
    """Something to measure or log: deadline missed, blocked, a phase finished, a violation."""

    kind: str
    detail: str
    value: float = 0.0
    tier: str | None = None


@dataclass(frozen=True)
class DrainStep:
    """One step's actions, the new progress, when to look again and what to record."""

    actions: tuple[Action, ...]
    progress: DrainProgress
    wait_s: float
    notes: tuple[DrainNote, ...] = ()


def notice_end(request: DrainRequest, progress: DrainProgress, view: DrainView | None = None) -> float | None:
    """When the Spot notice this drain races ends (epoch seconds): its own, one handed over through its
    claim (`view`), or one seen at an earlier step; None without a notice."""
    notices = [n for n in (request.deadline_epoch, view.deadline_epoch if view else None, progress.notice_at)
               if n is not None]
    return min(notices) if notices else None


def global_deadline(request: DrainRequest, view: DrainView, progress: DrainProgress, policy: DrainPolicy) -> float:
    """The earliest of the configured drain deadline and a Spot notice (minus a safety margin)."""
    deadline = progress.started_at + policy.drain_deadline_s
    for notice in (request.deadline_epoch, view.deadline_epoch, progress.notice_at):
        if notice is not None:
            deadline = min(deadline, notice - SPOT_SAFETY_S)
    return deadline


def phase_stop_times(view: DrainView, policy: DrainPolicy) -> tuple[float, ...]:
    """Per phase (replicas, standalone, then each tier): the longest stopTimeout among its live tasks plus
    `STOP_MARGIN_S`, the most its tasks take to STOP once told; 0 for a phase with nothing here."""
    longest = view.longest_stop_by_phase
    keys: list[int | str] = [REPLICAS_KEY, STANDALONE_KEY, *range(len(policy.tier_names))]
    times = [longest[k] + STOP_MARGIN_S if k in longest else 0.0 for k in keys]
    if policy.standalone is StandalonePolicy.IGNORE:
        times[1] = 0.0
    return tuple(times)


def _phase_index(progress: DrainProgress) -> int:
    if progress.phase == "replicas":
        return 0
    return 1 if progress.phase == "standalone" else 2 + progress.tier


def phase_deadline(view: DrainView, progress: DrainProgress, policy: DrainPolicy, deadline: float) -> float:
    """When the current phase must have told its last task to stop: early enough that its tasks and every
    later phase's can still STOP before the global deadline (`phase_stop_times`), and within its own
    limit (standalone: the wait plus a tier deadline; a tier: the tier deadline). Under a short budget (a
    Spot notice) the replicas get what remains after that reservation."""
    latest = deadline - sum(phase_stop_times(view, policy)[_phase_index(progress):])
    if progress.phase == "standalone":
        return min(latest, progress.phase_started_at + policy.standalone_wait_s + policy.tier_deadline_s)
    if progress.phase == "tier":
        return min(latest, progress.phase_started_at + policy.tier_deadline_s)
    return latest


@dataclass(frozen=True)
class HardEnd:
    """A time the drain cannot wait past, and what it is: a notice about to end, heartbeats that must stop, or
    the drain deadline (forced by policy, or the only bound of a drain without a lifecycle hook to keep alive)."""

    at: float
    kind: HardEndKind


def hard_ends(request: DrainRequest, view: DrainView, progress: DrainProgress, policy: DrainPolicy) -> HardEnd:
    """The earliest hard end: shortly before a Spot notice (or EC2 stop) ends, EC2 reclaims the instance;
    heartbeats must stop before the hook's global timeout (never before the global deadline); with
    `drainDeadlinePolicy` ``force``, the drain deadline. Without a lifecycle action, or a heartbeat
    timeout to keep it alive, the drain deadline."""
    ends: list[HardEnd] = []
    deadline = progress.started_at + policy.drain_deadline_s
    if view.lifecycle is not None and policy.heartbeat_timeout_s > 0:
        hook_global = min(HOOK_MAX_GLOBAL_S, 100 * policy.heartbeat_timeout_s)
        beats_end = progress.started_at + hook_global - policy.heartbeat_timeout_s
        ends.append(HardEnd(max(global_deadline(request, view, progress, policy), beats_end), "heartbeats"))
    else:
        ends.append(HardEnd(deadline, "deadline"))
    if policy.deadline_policy is DeadlinePolicy.FORCE:
        ends.append(HardEnd(deadline, "deadline"))
    notice = notice_end(request, progress, view)
    if notice is not None:
        ends.append(HardEnd(notice - HARD_END_MARGIN_S, "notice"))
    return min(ends, key=lambda e: e.at)


def hard_end(request: DrainRequest, view: DrainView, progress: DrainProgress, policy: DrainPolicy) -> float:
    """The latest the lifecycle action may wait for tasks still stopping (`hard_ends`)."""
    return hard_ends(request, view, progress, policy).at


def _live(tasks: Sequence[TaskView]) -> list[TaskView]:
    return [t for t in tasks if t.last_status != "STOPPED"]


def _non_daemon_service_tasks(view: DrainView) -> list[TaskView]:
    return list(view.live_by_phase.get(REPLICAS_KEY, ()))


def _standalone_tasks(view: DrainView) -> list[TaskView]:
    return list(view.live_by_phase.get(STANDALONE_KEY, ()))


def _tier_tasks(view: DrainView, tier: int) -> list[TaskView]:
    return list(view.live_by_phase.get(tier, ()))


def _app_tasks(view: DrainView, policy: DrainPolicy) -> list[TaskView]:
    """Every non-daemon task the drain must see STOPPED before daemons (standalone unless ignored)."""
    standalone = [] if policy.standalone is StandalonePolicy.IGNORE else _standalone_tasks(view)
    return _non_daemon_service_tasks(view) + standalone


def _observe_violations(view: DrainView, progress: DrainProgress, policy: DrainPolicy) -> tuple[str, ...]:
    """Stopping daemons while earlier work remains: a daemon before the non-daemons, tier k+1 before k."""
    if not any(t.stopping for key, tasks in view.live_by_phase.items() if isinstance(key, int) for t in tasks):
        return ()  # no daemon is stopping: nothing to look at
    found: list[str] = []
    non_daemon_left = bool(_app_tasks(view, policy))
    seen = set(progress.violations)
    # The lowest tier with a live task, once: "an earlier tier is left" is then one comparison per task.
    lowest = min((k for k, tasks in view.live_by_phase.items() if isinstance(k, int) and tasks), default=None)
    for task in _live(view.tasks):
        if not task.stopping or task.arn in seen:
            continue
        name = task.service_name
        if name is None or name not in view.daemon_tier:
            continue
        earlier_left = lowest is not None and lowest < view.daemon_tier[name]
        if non_daemon_left or earlier_left:
            found.append(task.arn)
    return tuple(found)


def _record_phase_tasks(progress: DrainProgress, phase: str, tasks: Sequence[TaskView]) -> DrainProgress:
    if not tasks:
        return progress
    known = set(map(itemgetter(1), progress.phase_tasks))
    new = tuple((phase, t.arn) for t in tasks if t.arn not in known)
    return replace(progress, phase_tasks=progress.phase_tasks + new) if new else progress


def _next_phase(progress: DrainProgress, view: DrainView, policy: DrainPolicy) -> DrainProgress:
    """Close the current phase (recording its time) and open the next."""
    label = phase_label(progress, policy)
    times = progress.phase_times if progress.phase == "settle" else \
        (*progress.phase_times, (label, progress.phase_started_at, view.now))
    if progress.phase == "replicas":
        nxt, tier = "standalone", 0
    elif progress.phase == "standalone":
        nxt, tier = ("tier", 0) if policy.tier_names else ("settle", 0)
    elif progress.phase == "settle":
        nxt, tier = "complete", 0
    else:
        nxt, tier = ("tier", progress.tier + 1) if progress.tier + 1 < len(policy.tier_names) else ("settle", 0)
    return replace(progress, phase=nxt, tier=tier, phase_started_at=view.now, phase_times=times, last_count=-1,
                   last_progress_at=view.now, phase_late=False, overdue_noted=False)


def phase_label(progress: DrainProgress, policy: DrainPolicy) -> str:
    """`replicas`, `standalone`, or the tier's name."""
    if progress.phase == "tier":
        return policy.tier_names[progress.tier] if progress.tier < len(policy.tier_names) else f"tier-{progress.tier}"
    return progress.phase


def plan_heartbeat(request: DrainRequest, lifecycle: Lifecycle | None, now: float, progress: DrainProgress,
                   policy: DrainPolicy) -> tuple[RecordHeartbeat | None, float]:
    """A heartbeat when half the heartbeat timeout has passed, unless the hook's global timeout is near.

    Returns the heartbeat (or None) and the seconds until the next one is due.
    """
    if lifecycle is None or policy.heartbeat_timeout_s <= 0:
        return None, POLL_S
    hook_global = min(HOOK_MAX_GLOBAL_S, 100 * policy.heartbeat_timeout_s)
    if now >= progress.started_at + hook_global - policy.heartbeat_timeout_s:
        return None, POLL_S
    last = progress.last_heartbeat_at or progress.started_at
    every = policy.heartbeat_timeout_s / 2
    if now - last >= every:
        return RecordHeartbeat(lifecycle.asg, lifecycle.hook, request.instance_id, lifecycle.token), every
    return None, max(1.0, last + every - now)


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


def _stop(progress: DrainProgress, tasks: Sequence[TaskView], reason: str,
          now: float) -> tuple[tuple[Action, ...], DrainProgress]:
    """StopTask the tasks not yet told to stop (none twice), remembering them and when each must be STOPPED."""
    asked = set(progress.stop_requested)
    fresh = sorted((t for t in tasks if not t.stopping and t.arn not in asked), key=lambda t: t.arn)
    if not fresh:
        return (), progress
    arns = tuple(t.arn for t in fresh)
    return (StopTasks(arns, reason),), replace(progress, stop_requested=progress.stop_requested + arns,
                                                stop_by=_with_bounds(progress.stop_by, fresh, now))


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
    progress = replace(progress, stop_by=_with_bounds(progress.stop_by, [t for t in tasks if t.stopping],
                                                      view.now))
    bound = dict(progress.stop_by)
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
    if not progress.phase_late:
        missed = 0 if progress.forced else 1
        progress = replace(progress, phase_late=True, deadlines_missed=progress.deadlines_missed + missed)
        notes = (DrainNote("deadline-missed", f"{label} deadline passed", tier=label),) if missed else ()
    actions, progress = _stop(progress, remaining, f"daemon-guard drain: {label} deadline", now)
    return _await_stopped(replace(inp, progress=progress), remaining, actions, notes, label,
                          _phase_index(progress) + 1)


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
    if left_s is None and not progress.overdue_noted:
        progress = replace(progress, overdue_noted=True, stops_overdue=progress.stops_overdue + len(tasks))
        notes = (*notes, DrainNote("stop-overdue", f"{len(tasks)} task(s) of {label} not STOPPED within their stop "
                                                   "time: still waiting", value=len(tasks), tier=label))
    return PhaseOutcome(progress, actions, notes, look_again_s=min(left_s or POLL_S, break_at - now))


def _break(inp: PhaseInput, tasks: Sequence[TaskView], actions: tuple[Action, ...], notes: tuple[DrainNote, ...],
           label: str) -> PhaseOutcome:
    """The hard end: the phase is finished with `tasks` not STOPPED, a guarantee break recorded and noted."""
    progress, now = inp.progress, inp.view.now
    kind = inp.end.kind if inp.end is not None else "deadline"
    progress = replace(progress, breaks=(*progress.breaks, (label, kind, now, len(tasks))))
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
    runningCount - ceil(desired x minimumHealthyPercent) minus those of it already stopping here; a
    service with no such room (minimumHealthyPercent 100) loses one task at a time, and only while it
    runs its full desired count (its replacement is RUNNING elsewhere before the next one goes).
    A service the view does not describe is left for the next look.
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
        room = svc.running_count - floor - stopping.get(name, 0)
        if room <= 0 and stopping.get(name, 0) == 0 and svc.running_count >= svc.desired_count:
            room = 1
        out.extend(sorted(tasks, key=lambda t: t.arn)[:max(0, room)])
    return out


def plan_fence(view: DrainView, progress: DrainProgress, policy: DrainPolicy) -> tuple[tuple[Action, ...],
                                                                                        DrainProgress]:
    """The drain's first effect, keeping new work off the instance: DRAINING (order ``draining``: ECS
    then replaces the replicas and decides when the daemons stop) or the gate shut (`<gate>=draining`:
    gated replicas land elsewhere, and ECS's DRAINING timing is kept out of the order)."""
    instance = view.instance
    active = instance is not None and instance.status == "ACTIVE"
    if policy.order is DrainOrder.DRAINING:
        if progress.draining_requested:
            return (), progress
        actions: tuple[Action, ...] = (SetDraining((instance.arn,)),) if active and instance else ()
        return actions, replace(progress, draining_requested=True)
    if progress.gate_closed and not (active and gate_reopened(view, policy)):
        return (), progress
    # First close, or shut again: a gate opener that read the instance before the drain shut it may have
    # written `open` after (ECS's PutAttributes has no condition), letting gated replicas back in.
    actions = (SetAttribute(instance.arn, policy.gate_attribute, GATE_DRAINING),) if active and instance else ()
    return actions, replace(progress, gate_closed=True)


def gate_reopened(view: DrainView, policy: DrainPolicy) -> bool:
    """True when the instance shows the gate `open` although this drain shut it (orders other than
    ``draining``): gated replicas may land until it is shut again."""
    instance = view.instance
    return policy.order is not DrainOrder.DRAINING and instance is not None \
        and instance.attributes.get(policy.gate_attribute) == GATE_OPEN


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
    allowed = replica_stops(remaining, inp.view.services, progress.stop_requested)
    actions, progress = _stop(progress, allowed, "daemon-guard drain: replicas", inp.view.now)
    asked = set(inp.progress.stop_requested)
    held = len(allowed) < sum(1 for t in remaining if not t.stopping and t.arn not in asked)
    progress = replace(progress, replicas_held=held)
    return PhaseOutcome(progress, actions, tuple(notes), look_again_s=BUDGET_POLL_S if held else None)


def plan_standalone(inp: PhaseInput) -> PhaseOutcome:
    """Standalone tasks by policy: ignore them, stop them, or wait `standalone_wait_s` and then stop them."""
    policy = inp.policy
    remaining = [] if policy.standalone is StandalonePolicy.IGNORE else _standalone_tasks(inp.view)
    inp, done = _begin(inp, remaining)
    if done is not None:
        return done
    waited = inp.view.now >= inp.progress.phase_started_at + policy.standalone_wait_s
    if policy.standalone is not StandalonePolicy.STOP and not waited:
        return PhaseOutcome(inp.progress)
    actions, progress = _stop(inp.progress, remaining, "daemon-guard drain: standalone", inp.view.now)
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
        if name in progress.tiers_fenced:
            return (), progress
        return (SetAttribute(instance.arn, tier_attribute(name, policy.gate_attribute), TIER_STOPPED),), \
            replace(progress, tiers_fenced=(*progress.tiers_fenced, name))
    if policy.order is DrainOrder.APPS_FIRST and not progress.draining_requested:
        actions: tuple[Action, ...] = (SetDraining((instance.arn,)),) if instance.status == "ACTIVE" else ()
        return actions, replace(progress, draining_requested=True)
    return (), progress


def plan_tier(inp: PhaseInput) -> PhaseOutcome:
    """One daemon tier, stopped by the guard and followed to STOPPED. App tasks that arrived after their
    phase (a standalone task run onto the instance meanwhile) are stopped and followed to STOPPED first,
    however late it is (bounded by their stop time)."""
    late = _app_tasks(inp.view, inp.policy)
    before: tuple[Action, ...] = ()
    notes: tuple[DrainNote, ...] = ()
    if late:
        actions, progress = _stop(inp.progress, late, "daemon-guard drain: late app task", inp.view.now)
        waited = _await_stopped(replace(inp, progress=progress), late, actions, (), "late app tasks",
                                _phase_index(progress))
        if not waited.finished:
            return waited
        inp, before, notes = replace(inp, progress=waited.progress), waited.actions, waited.notes
    if inp.progress.gate_closed and gate_reopened(inp.view, inp.policy):
        # Shut again this step (`plan_fence`); the next look shows any replica that landed meanwhile.
        return PhaseOutcome(inp.progress, before, notes, look_again_s=1.0)
    fence, progress = _fence_tier(inp)
    inp, done = _begin(replace(inp, progress=progress), _tier_tasks(inp.view, progress.tier))
    if done is not None:
        return replace(done, actions=before + fence + done.actions, notes=notes + done.notes)
    label = phase_label(inp.progress, inp.policy)
    tasks = _tier_tasks(inp.view, progress.tier)
    actions, progress = _stop(inp.progress, tasks, f"daemon-guard drain: {label}", inp.view.now)
    progress, _ = follow_stops(inp.view, progress, tasks)
    return PhaseOutcome(progress, before + fence + actions, notes)


def plan_settle(inp: PhaseInput) -> PhaseOutcome:
    """After the last tier: the lifecycle action waits until no task the drain orders is left (one that
    arrived is stopped), or until the hard end (`hard_end`: its deadline here), where it completes anyway,
    counted and recorded as a guarantee break."""
    left = _app_tasks(inp.view, inp.policy) + [t for t in _live(inp.view.tasks)
                                               if t.service_name is not None and t.service_name in inp.view.daemon_tier]
    if not left:
        return PhaseOutcome(inp.progress, finished=True)
    actions, progress = _stop(inp.progress, left, "daemon-guard drain: left at the end", inp.view.now)
    progress, _ = follow_stops(inp.view, progress, left)
    end = inp.deadline
    if inp.view.now < end:
        return PhaseOutcome(progress, actions, look_again_s=end - inp.view.now)
    progress = replace(progress, completed_with_tasks=progress.completed_with_tasks + len(left))
    note = DrainNote("completed-with-tasks", f"{len(left)} task(s) still not STOPPED at the hard end", value=len(left))
    return _break(replace(inp, progress=progress), left, actions, (note,), "settle")


PHASES = {"replicas": plan_replicas, "standalone": plan_standalone, "tier": plan_tier, "settle": plan_settle}


def _force_if_late(view: DrainView, progress: DrainProgress, policy: DrainPolicy, deadline: float,
                   gone: bool) -> tuple[DrainProgress, tuple[DrainNote, ...]]:
    """Past the global deadline the drain is forced (counted once): every phase is then out of time, so what
    is left stops at once, phase by phase in order, each followed to STOPPED (`_on_deadline`)."""
    if progress.forced or view.now < deadline or gone:
        return progress, ()
    progress = replace(progress, forced=True, forced_at=view.now, deadlines_missed=progress.deadlines_missed + 1)
    return progress, (DrainNote("deadline-missed", f"global deadline passed in {phase_label(progress, policy)}"),)


def _walk(inp: PhaseInput, gone: bool, end: HardEnd) -> PhaseOutcome:
    """Run the phases as far as this observation allows (an instance gone finishes them all), each knowing
    the hard end `end`; the last, `plan_settle`, reads it as its deadline."""
    progress = inp.progress
    actions: tuple[Action, ...] = ()
    notes: tuple[DrainNote, ...] = ()
    for _ in range(len(inp.policy.tier_names) + 4):
        if progress.phase == "complete":
            break
        if gone:
            progress = _next_phase(progress, inp.view, inp.policy)
            continue
        deadline = end.at if progress.phase == "settle" else inp.deadline
        outcome = PHASES[progress.phase](replace(inp, progress=progress, deadline=deadline, end=end))
        actions, notes, progress = actions + outcome.actions, notes + outcome.notes, outcome.progress
        if not outcome.finished:
            return PhaseOutcome(progress, actions, notes, look_again_s=outcome.look_again_s)
        progress = _next_phase(progress, inp.view, inp.policy)
    return PhaseOutcome(progress, actions, notes, finished=progress.phase == "complete")


def plan_drain_step(request: DrainRequest, view: DrainView, progress: DrainProgress,
                    policy: DrainPolicy) -> DrainStep:
    """Plan the next step of the ordered drain of one instance."""
    if progress.done:
        return DrainStep((), progress, 0.0)
    deadline = global_deadline(request, view, progress, policy)
    notice = notice_end(request, progress, view)
    if notice != progress.notice_at:
        progress = replace(progress, notice_at=notice)
    violations = _observe_violations(view, progress, policy)
    notes = tuple(DrainNote("ordering-violation", arn) for arn in violations)
    progress = replace(progress, violations=progress.violations + violations) if violations else progress
    gone = view.instance is None or view.instance.status in ("INACTIVE", "DEREGISTERING")
    fence, progress = plan_fence(view, progress, policy)
    progress, forced = _force_if_late(view, progress, policy, deadline, gone)
    walked = _walk(PhaseInput(view, progress, policy, deadline), gone, hard_ends(request, view, progress, policy))
    actions, progress, notes = fence + walked.actions, walked.progress, notes + forced + walked.notes
    if walked.finished:
        lc = view.lifecycle
        if lc is not None:
            actions += (CompleteLifecycle(lc.asg, lc.hook, request.instance_id, lc.token, "CONTINUE"),)
        progress = replace(progress, result="CONTINUE" if lc else "no-lifecycle-action", completed_at=view.now)
        return DrainStep(actions, progress, 0.0, notes)
    beat, beat_wait = plan_heartbeat(request, view.lifecycle, view.now, progress, policy)
    if beat is not None:
        actions += (beat,)
        progress = replace(progress, heartbeats=progress.heartbeats + 1, last_heartbeat_at=view.now)
    due = phase_deadline(view, progress, policy, deadline) if progress.phase != "settle" else view.now
    wait = min(POLL_S, beat_wait, walked.look_again_s or POLL_S, due - view.now if due > view.now else POLL_S)
    return DrainStep(actions, progress, max(1.0, wait), notes)


def _blocked(view: DrainView, progress: DrainProgress,
             remaining: Sequence[TaskView]) -> tuple[DrainProgress, list[DrainNote]]:
    """Report once a replica phase that cannot progress: no replacement possible, or no progress for long."""
    count = len(remaining)
    if count != progress.last_count:
        progress = replace(progress, last_count=count, last_progress_at=view.now)
    if progress.blocked_reported:
        return progress, []
    if view.services:
        progress = replace(progress, services_checked=True)
    names = {t.service_name for t in remaining if t.service_name is not None}
    stuck = sorted(n for n in names if n in view.services and view.services[n].minimum_healthy_percent >= 100
                   and view.services[n].maximum_percent <= 100)
    if stuck:
        detail = f"{', '.join(stuck)} at minimumHealthyPercent 100 and maximumPercent 100: ECS cannot replace them"
    elif view.now - progress.last_progress_at >= BLOCKED_AFTER_S:
        detail = f"{count} replica task(s) not replaced for {view.now - progress.last_progress_at:.0f}s (no room?)"
    else:
        return progress, []
    return replace(progress, blocked_reported=True), [DrainNote("blocked", detail)]
