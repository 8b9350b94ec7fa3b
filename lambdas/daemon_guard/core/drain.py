"""The ordered drain, one step at a time: replicas, then standalone tasks, then daemon tiers, then CONTINUE.

`plan_drain_step` is pure: it reads what the workflow observed (`DrainView`), what it has done so
far (`DrainProgress`, checkpointed between steps) and the policy, and returns the actions of this
step, the new progress, how long to wait before looking again and what to measure. Because it
re-derives everything from observed state, running a step twice (a replayed or crashed
invocation) repeats no effect that matters: StopTask on a stopping task and DRAINING on a draining
instance change nothing, and the lifecycle action is completed once (the adapter tolerates a
second try).

Time: a global deadline (configured, or the Spot notice minus a safety margin) and per-phase
deadlines force the order forward instead of hanging: what is left is stopped, in order, and the
miss is counted. Heartbeats keep the lifecycle hook alive while work progresses and stop once the
hook's global timeout is near.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from daemon_guard.core.actions import Action, CompleteLifecycle, RecordHeartbeat, SetDraining, StopTasks
from daemon_guard.core.config import StandalonePolicy
from daemon_guard.core.identifiers import (
    AsgName,
    HookName,
    IdentifierError,
    InstanceId,
    LifecycleToken,
    valid_epoch,
)
from daemon_guard.core.model import InstanceView, ServiceView, TaskView

SPOT_SAFETY_S = 10.0
POLL_S = 10.0
FORCED_TIER_WAIT_S = 3.0
BLOCKED_AFTER_S = 120.0
HOOK_MAX_GLOBAL_S = 48 * 3600
T = TypeVar("T")


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


@dataclass(frozen=True)
class DrainProgress:
    """What the drain has done so far; checkpointed between steps (JSON via `as_dict`)."""

    started_at: float
    instance_arn: str | None = None
    instance_status: str | None = None
    live_tasks: tuple[tuple[str, str], ...] = ()
    ticks: int = 0
    failures: int = 0
    phase: str = "replicas"
    tier: int = 0
    phase_started_at: float = 0.0
    draining_requested: bool = False
    last_heartbeat_at: float = 0.0
    heartbeats: int = 0
    deadlines_missed: int = 0
    blocked_reported: bool = False
    services_checked: bool = False
    forced: bool = False
    forced_at: float | None = None
    violations: tuple[str, ...] = ()
    stop_requested: tuple[str, ...] = ()
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
        values["live_tasks"] = tuple(tuple(x) for x in values.get("live_tasks", ()))
        for key in ("violations", "stop_requested"):
            values[key] = tuple(values.get(key, ()))
        values["phase_tasks"] = tuple(tuple(x) for x in values.get("phase_tasks", ()))
        values["phase_times"] = tuple(tuple(x) for x in values.get("phase_times", ()))
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


def global_deadline(request: DrainRequest, view: DrainView, progress: DrainProgress, policy: DrainPolicy) -> float:
    """The earliest of the configured drain deadline and a Spot notice (minus a safety margin)."""
    deadline = progress.started_at + policy.drain_deadline_s
    for notice in (request.deadline_epoch, view.deadline_epoch):
        if notice is not None:
            deadline = min(deadline, notice - SPOT_SAFETY_S)
    return deadline


def phase_deadline(phase: str, progress: DrainProgress, policy: DrainPolicy, deadline: float) -> float:
    """The deadline of the current phase; under a short budget (Spot) phases share it in proportion."""
    budget = deadline - progress.started_at
    if budget >= policy.drain_deadline_s:
        per_phase = policy.standalone_wait_s + policy.tier_deadline_s if phase == "standalone" \
            else policy.tier_deadline_s
        return min(deadline, progress.phase_started_at + per_phase) if phase != "replicas" else deadline
    # Compressed: replicas until 50% of the budget, standalone 10%, the tiers share the last 40%.
    tiers = max(1, len(policy.tier_names))
    if phase == "replicas":
        return progress.started_at + 0.5 * budget
    if phase == "standalone":
        return min(deadline, progress.phase_started_at + 0.1 * budget)
    return min(deadline, progress.phase_started_at + 0.4 * budget / tiers)


def _due(progress: DrainProgress, policy: DrainPolicy, deadline: float) -> float:
    """When the current phase must move on: its own deadline, or, once the global deadline forced the
    drain, `FORCED_TIER_WAIT_S` after the phase began or the drain was forced (whichever is later), so
    what is left still stops phase by phase, in order."""
    if progress.forced:
        return max(progress.phase_started_at, progress.forced_at or progress.phase_started_at) + FORCED_TIER_WAIT_S
    return phase_deadline(progress.phase, progress, policy, deadline)


def _live(tasks: Sequence[TaskView]) -> list[TaskView]:
    return [t for t in tasks if t.last_status != "STOPPED"]


def _non_daemon_service_tasks(view: DrainView) -> list[TaskView]:
    return [t for t in _live(view.tasks) if t.service_name is not None and t.service_name not in view.daemon_tier]


def _standalone_tasks(view: DrainView) -> list[TaskView]:
    return [t for t in _live(view.tasks) if t.service_name is None]


def _tier_tasks(view: DrainView, tier: int) -> list[TaskView]:
    return [t for t in _live(view.tasks) if t.service_name is not None and view.daemon_tier.get(t.service_name) == tier]


def _observe_violations(view: DrainView, progress: DrainProgress, policy: DrainPolicy) -> tuple[str, ...]:
    """Stopping daemons while earlier work remains: a daemon before the non-daemons, tier k+1 before k."""
    found: list[str] = []
    standalone_counts = policy.standalone is not StandalonePolicy.IGNORE
    non_daemon_left = bool(_non_daemon_service_tasks(view) or (standalone_counts and _standalone_tasks(view)))
    live = _live(view.tasks)
    for task in live:
        name = task.service_name
        if not task.stopping or name is None or name not in view.daemon_tier or task.arn in progress.violations:
            continue
        tier = view.daemon_tier[name]
        earlier_left = any(view.daemon_tier.get(t.service_name or "", -1) < tier and
                           t.service_name in view.daemon_tier for t in live)
        if non_daemon_left or earlier_left:
            found.append(task.arn)
    return tuple(found)


def _record_phase_tasks(progress: DrainProgress, phase: str, tasks: Sequence[TaskView]) -> DrainProgress:
    known = {arn for _, arn in progress.phase_tasks}
    new = tuple((phase, t.arn) for t in tasks if t.arn not in known)
    return replace(progress, phase_tasks=progress.phase_tasks + new) if new else progress


def _next_phase(progress: DrainProgress, view: DrainView, policy: DrainPolicy) -> DrainProgress:
    """Close the current phase (recording its time) and open the next."""
    label = phase_label(progress, policy)
    times = (*progress.phase_times, (label, progress.phase_started_at, view.now))
    if progress.phase == "replicas":
        nxt, tier = "standalone", 0
    elif progress.phase == "standalone":
        nxt, tier = ("tier", 0) if policy.tier_names else ("complete", 0)
    else:
        nxt, tier = ("tier", progress.tier + 1) if progress.tier + 1 < len(policy.tier_names) else ("complete", 0)
    return replace(progress, phase=nxt, tier=tier, phase_started_at=view.now, phase_times=times, last_count=-1,
                   last_progress_at=view.now)


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


def plan_drain_step(request: DrainRequest, view: DrainView, progress: DrainProgress,
                    policy: DrainPolicy) -> DrainStep:
    """Plan the next step of the ordered drain of one instance."""
    actions: list[Action] = []
    notes: list[DrainNote] = []
    if progress.done:
        return DrainStep((), progress, 0.0)
    deadline = global_deadline(request, view, progress, policy)
    violations = _observe_violations(view, progress, policy)
    if violations:
        progress = replace(progress, violations=progress.violations + violations)
        notes.extend(DrainNote("ordering-violation", arn) for arn in violations)
    gone = view.instance is None or view.instance.status in ("INACTIVE", "DEREGISTERING")
    if not gone and view.instance is not None and view.instance.status == "ACTIVE" and not progress.draining_requested:
        actions.append(SetDraining((view.instance.arn,)))
        progress = replace(progress, draining_requested=True)
    elif not progress.draining_requested:
        progress = replace(progress, draining_requested=True)
    if not progress.forced and view.now >= deadline and not gone:
        progress = replace(progress, forced=True, forced_at=view.now,
                           deadlines_missed=progress.deadlines_missed + 1)
        notes.append(DrainNote("deadline-missed", f"global deadline passed in {phase_label(progress, policy)}"))
    # Walk the phases as far as this observation allows.
    for _ in range(len(policy.tier_names) + 3):
        if progress.phase == "complete":
            break
        if gone:
            progress = _next_phase(progress, view, policy)
            continue
        phase = progress.phase
        if phase == "replicas":
            remaining = _non_daemon_service_tasks(view)
        elif phase == "standalone":
            remaining = [] if policy.standalone is StandalonePolicy.IGNORE else _standalone_tasks(view)
        else:
            remaining = _tier_tasks(view, progress.tier)
        progress = _record_phase_tasks(progress, phase_label(progress, policy), remaining)
        if not remaining:
            progress = _next_phase(progress, view, policy)
            continue
        due = _due(progress, policy, deadline)
        to_stop = [t for t in remaining if not t.stopping and t.arn not in progress.stop_requested]
        waited = view.now >= progress.phase_started_at + policy.standalone_wait_s
        stop_now = policy.standalone is StandalonePolicy.STOP or waited
        must_stop = phase == "tier" or (phase == "standalone" and stop_now)
        if (view.now >= due and phase != "tier") or progress.forced:
            must_stop = True
        if view.now >= due and (phase == "tier" or not to_stop):
            # The phase had its time: count the miss once and move on; what is left is already stopping.
            if not progress.forced:
                progress = replace(progress, deadlines_missed=progress.deadlines_missed + 1)
                notes.append(DrainNote("deadline-missed", f"{phase_label(progress, policy)} deadline passed",
                                       tier=phase_label(progress, policy)))
            if to_stop:
                actions.append(StopTasks(tuple(sorted(t.arn for t in to_stop)),
                                         f"daemon-guard drain: {phase_label(progress, policy)} deadline"))
                progress = replace(progress, stop_requested=progress.stop_requested + tuple(t.arn for t in to_stop))
            progress = _next_phase(progress, view, policy)
            continue
        if must_stop and to_stop:
            label = phase_label(progress, policy)
            actions.append(StopTasks(tuple(sorted(t.arn for t in to_stop)), f"daemon-guard drain: {label}"))
            progress = replace(progress, stop_requested=progress.stop_requested + tuple(t.arn for t in to_stop))
        if phase == "replicas":
            progress, blocked = _blocked(view, progress, remaining)
            notes.extend(blocked)
        break
    wait = POLL_S
    if progress.phase == "complete":
        lc = view.lifecycle
        if lc is not None:
            actions.append(CompleteLifecycle(lc.asg, lc.hook, request.instance_id, lc.token, "CONTINUE"))
        progress = replace(progress, result="CONTINUE" if lc else "no-lifecycle-action", completed_at=view.now)
        return DrainStep(tuple(actions), progress, 0.0, tuple(notes))
    beat, beat_wait = plan_heartbeat(request, view.lifecycle, view.now, progress, policy)
    if beat is not None:
        actions.append(beat)
        progress = replace(progress, heartbeats=progress.heartbeats + 1, last_heartbeat_at=view.now)
    due = _due(progress, policy, deadline)
    wait = max(1.0, min(wait, beat_wait, due - view.now if due > view.now else wait))
    return DrainStep(tuple(actions), progress, wait, tuple(notes))


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
