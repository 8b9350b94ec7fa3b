"""What a drain observed (`DrainView`) and what it has done so far (`DrainProgress`, the checkpoint
between steps), with the phase it is in (`Phase`) and what one step returns (`DrainStep`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any, Literal, get_args

from daemon_guard.core.actions import Action
from daemon_guard.core.drain.request import DrainPolicy, Lifecycle
from daemon_guard.core.model import InstanceView, ServiceView, TaskView

Phase = Literal["replicas", "standalone", "tier", "settle", "complete"]
PHASE_NAMES: tuple[Phase, ...] = get_args(Phase)

REPLICAS_KEY = "replicas"
STANDALONE_KEY = "standalone"


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
class DrainLook:
    """What the drain's last look at ECS found, and when it last looked or was woken by an event."""

    instance_arn: str | None = None
    instance_status: str | None = None
    live_tasks: tuple[tuple[str, str, int], ...] = ()  # (task ARN, group, stopTimeout) at the last look
    ticks: int = 0
    looked_at: float = 0.0  # the last full look at ECS (0: none yet; the slow look counts from started_at)
    heard_at: float = 0.0  # the last event that woke the drain (0: none yet)
    services_checked: bool = False
    seen_at: float = 0.0  # the last look that found the instance registered (0: none): after it, the drain saw nothing


@dataclass(frozen=True)
class Fences:
    """The drain's writes that keep work off the instance (DRAINING, the gate shut, each tier's attribute) and
    which of them a look has shown in effect: ECS's API is eventually consistent, so the drain counts on none
    of them before it is seen."""

    draining_requested: bool = False
    gate_closed: bool = False
    tiers_fenced: tuple[str, ...] = ()
    gate_seen: bool = False
    draining_seen: bool = False
    tiers_seen: tuple[str, ...] = ()

    @property
    def awaiting_read_back(self) -> bool:
        """True while a write the drain made has not been seen in a look at the instance: the next look
        describes it."""
        return (self.gate_closed and not self.gate_seen) or (self.draining_requested and not self.draining_seen) \
            or not set(self.tiers_fenced) <= set(self.tiers_seen)


@dataclass(frozen=True)
class PhaseWatch:
    """How the current phase is going; a new phase begins with a fresh watch (`PhaseWatch.begin`)."""

    late: bool = False  # past the phase's deadline: what it holds was told to stop at once
    overdue_noted: bool = False  # the phase has tasks past their expected stop time (noted once)
    last_count: int = -1
    last_progress_at: float = 0.0
    replicas_held: bool = False  # the replica phase waits only on replacements elsewhere (minimumHealthyPercent)
    blocked_reported: bool = False

    @classmethod
    def begin(cls, now: float) -> PhaseWatch:
        """The watch of a phase beginning at `now`."""
        return cls(last_progress_at=now)


@dataclass(frozen=True)
class StopLedger:
    """Every task the drain told to stop (none twice), when each is expected STOPPED, the phase each was
    stopped for, and how many went past their expected stop time."""

    requested: tuple[str, ...] = ()
    due_by: tuple[tuple[str, float], ...] = ()  # (task ARN, expected STOPPED by)
    by_phase: tuple[tuple[str, str], ...] = ()  # (phase label, task ARN)
    overdue: int = 0


@dataclass(frozen=True)
class HookKeeping:
    """The lifecycle action kept alive (heartbeats) and the Spot notice the drain races."""

    last_heartbeat_at: float = 0.0
    heartbeats: int = 0
    since: float | None = None  # when the lifecycle action began, if the drain waited for the drain budget first
    notice_at: float | None = None  # when a Spot notice ends (epoch seconds), once the drain has seen one


@dataclass(frozen=True)
class DrainRecord:
    """What the drain counted and how it ended: failed steps, deadlines missed, forcing, ordering violations,
    guarantee breaks, each phase's times and the result."""

    failures: int = 0
    deadlines_missed: int = 0
    forced: bool = False
    forced_at: float | None = None
    violations: tuple[str, ...] = ()
    breaks: tuple[tuple[str, str, float, int], ...] = ()  # guarantee breaks: (phase, hard end kind, at, tasks left)
    completed_with_tasks: int = 0
    phase_times: tuple[tuple[str, float, float], ...] = ()  # (phase label, began, ended)
    result: str | None = None
    completed_at: float | None = None


_PARTS: Mapping[str, type[Any]] = {"look": DrainLook, "fences": Fences, "watch": PhaseWatch, "stops": StopLedger,
                                   "hook": HookKeeping, "record": DrainRecord}
# A checkpoint written before the progress was split into parts: each flat key and where it lives now.
_FLAT_KEYS: Mapping[str, tuple[str, str]] = {
    **{name: ("look", name) for name in ("instance_arn", "instance_status", "live_tasks", "ticks", "looked_at",
                                         "heard_at", "services_checked")},
    **{name: ("fences", name) for name in ("draining_requested", "gate_closed", "tiers_fenced", "gate_seen",
                                           "draining_seen", "tiers_seen")},
    "phase_late": ("watch", "late"), "overdue_noted": ("watch", "overdue_noted"),
    "last_count": ("watch", "last_count"), "last_progress_at": ("watch", "last_progress_at"),
    "replicas_held": ("watch", "replicas_held"), "blocked_reported": ("watch", "blocked_reported"),
    "stop_requested": ("stops", "requested"), "stop_by": ("stops", "due_by"), "phase_tasks": ("stops", "by_phase"),
    "stops_overdue": ("stops", "overdue"),
    "last_heartbeat_at": ("hook", "last_heartbeat_at"), "heartbeats": ("hook", "heartbeats"),
    "hook_since": ("hook", "since"), "notice_at": ("hook", "notice_at"),
    **{name: ("record", name) for name in ("failures", "deadlines_missed", "forced", "forced_at", "violations",
                                           "breaks", "completed_with_tasks", "phase_times", "result",
                                           "completed_at")},
}


@dataclass(frozen=True)
class DrainProgress:
    """What the drain has done so far, checkpointed between steps (JSON via `as_dict`): where it is (the
    phase, the daemon tier, when the phase began) and its parts: the last look, the fences, the current
    phase's watch, the stops, the lifecycle action kept alive, and what it counted."""

    started_at: float
    phase: Phase = "replicas"
    tier: int = 0
    phase_started_at: float = 0.0
    look: DrainLook = field(default_factory=DrainLook)
    fences: Fences = field(default_factory=Fences)
    watch: PhaseWatch = field(default_factory=PhaseWatch)
    stops: StopLedger = field(default_factory=StopLedger)
    hook: HookKeeping = field(default_factory=HookKeeping)
    record: DrainRecord = field(default_factory=DrainRecord)

    @classmethod
    def begin(cls, now: float) -> DrainProgress:
        """A drain beginning at `now`."""
        return cls(started_at=now, phase_started_at=now, watch=PhaseWatch.begin(now))

    @property
    def hook_started_at(self) -> float:
        """When the lifecycle hook's global timeout started counting: the drain's start, or its arrival when
        it waited for the drain budget."""
        return self.hook.since if self.hook.since is not None else self.started_at

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form: each part a mapping, tuples lists."""
        raw: dict[str, Any] = _jsonable(asdict(self))
        return raw

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> DrainProgress:
        """Inverse of `as_dict`; also reads a checkpoint written before the progress had parts (flat keys).
        ValueError names an unknown key or phase."""
        top: dict[str, Any] = {}
        parts: dict[str, dict[str, Any]] = {name: {} for name in _PARTS}
        for key, value in raw.items():
            if key in _PARTS:
                parts[key].update(value)
            elif key in _FLAT_KEYS:
                part, name = _FLAT_KEYS[key]
                parts[part][name] = value
            elif key in ("started_at", "phase", "tier", "phase_started_at"):
                top[key] = value
            else:
                raise ValueError(f"drain checkpoint: unknown key {key!r}")
        if top.get("phase", "replicas") not in PHASE_NAMES:
            raise ValueError(f"drain checkpoint 'phase': expected one of {', '.join(PHASE_NAMES)}, "
                             f"got {top.get('phase')!r}")
        # A checkpoint from before stopTimeouts were kept reads as ECS's default (30 s).
        live = parts["look"].get("live_tasks", ())
        parts["look"]["live_tasks"] = [(*x[:2], x[2] if len(x) > 2 else 30) for x in live]
        try:
            built = {name: kind(**{k: _tuples(v) for k, v in parts[name].items()}) for name, kind in _PARTS.items()}
        except TypeError as exc:
            raise ValueError(f"drain checkpoint: {exc}") from None
        return cls(**top, **built)

    @property
    def done(self) -> bool:
        """True once the lifecycle action is completed (or there was none to complete)."""
        return self.phase == "complete"


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    return value


def _tuples(value: Any) -> Any:
    """Lists (a checkpoint's JSON) back to the tuples the parts hold."""
    return tuple(_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value


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


def phase_label(progress: DrainProgress, policy: DrainPolicy) -> str:
    """`replicas`, `standalone`, or the tier's name."""
    if progress.phase == "tier":
        return policy.tier_names[progress.tier] if progress.tier < len(policy.tier_names) else f"tier-{progress.tier}"
    return progress.phase


def phases_from(label: str, policy: DrainPolicy) -> tuple[str, ...]:
    """The phase labelled `label` (as `phase_label` names it) and every phase after it, in drain order: the
    work a drain that ended in that phase left undone (`settle` or an unknown label: none)."""
    order = ("replicas", "standalone", *policy.tier_names)
    return order[order.index(label):] if label in order else ()
