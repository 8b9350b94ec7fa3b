"""What a drain observed (`DrainView`) and what it has done so far (`DrainProgress`, the checkpoint
between steps), with the phase it is in (`Phase`) and what one step returns (`DrainStep`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
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
class DrainProgress:
    """What the drain has done so far; checkpointed between steps (JSON via `as_dict`)."""

    started_at: float
    instance_arn: str | None = None
    instance_status: str | None = None
    live_tasks: tuple[tuple[str, str, int], ...] = ()  # (task ARN, group, stopTimeout) at the last look
    ticks: int = 0
    failures: int = 0
    phase: Phase = "replicas"
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
    looked_at: float = 0.0  # the last full look at ECS (0: none yet; the slow look counts from started_at)
    heard_at: float = 0.0  # the last event that woke the drain (0: none yet)
    # Writes read back (ECS's API is eventually consistent): the gate shut, DRAINING, the tiers fenced, as a
    # DescribeContainerInstances has shown them; the drain counts on none of them before.
    gate_seen: bool = False
    draining_seen: bool = False
    tiers_seen: tuple[str, ...] = ()
    hook_since: float | None = None  # when the lifecycle action began, if the drain waited for the drain budget first

    @property
    def hook_started_at(self) -> float:
        """When the lifecycle hook's global timeout started counting: the drain's start, or its arrival when
        it waited for the drain budget."""
        return self.hook_since if self.hook_since is not None else self.started_at

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
        for key in ("violations", "stop_requested", "tiers_fenced", "tiers_seen"):
            values[key] = tuple(values.get(key, ()))
        values["phase_tasks"] = tuple(tuple(x) for x in values.get("phase_tasks", ()))
        values["stop_by"] = tuple(tuple(x) for x in values.get("stop_by", ()))
        values["phase_times"] = tuple(tuple(x) for x in values.get("phase_times", ()))
        values["breaks"] = tuple(tuple(x) for x in values.get("breaks", ()))
        if values.get("phase", "replicas") not in PHASE_NAMES:
            raise ValueError(f"drain checkpoint 'phase': expected one of {', '.join(PHASE_NAMES)}, "
                             f"got {values.get('phase')!r}")
        return cls(**values)

    @property
    def awaiting_read_back(self) -> bool:
        """True while a write the drain made (the gate shut, DRAINING, a tier fenced) has not been seen in a
        look at the instance: the next look describes it."""
        return (self.gate_closed and not self.gate_seen) or (self.draining_requested and not self.draining_seen) \
            or not set(self.tiers_fenced) <= set(self.tiers_seen)

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


def phase_label(progress: DrainProgress, policy: DrainPolicy) -> str:
    """`replicas`, `standalone`, or the tier's name."""
    if progress.phase == "tier":
        return policy.tier_names[progress.tier] if progress.tier < len(policy.tier_names) else f"tier-{progress.tier}"
    return progress.phase
