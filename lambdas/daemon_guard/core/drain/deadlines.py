"""A drain's time: the global deadline (configured, or a Spot notice minus a safety margin), each phase's
own deadline (which reserves the stop time of every later phase), the hard ends the drain cannot wait past,
and the lifecycle hook's heartbeats."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from daemon_guard.core.actions import RecordHeartbeat
from daemon_guard.core.config import DeadlinePolicy, StandalonePolicy
from daemon_guard.core.drain.progress import REPLICAS_KEY, STANDALONE_KEY, DrainProgress, DrainView
from daemon_guard.core.drain.request import DrainPolicy, DrainRequest, Lifecycle

SPOT_SAFETY_S = 10.0
# What ECS takes beyond a task's stopTimeout to report it STOPPED (SIGKILL, the agent's report), and the
# guard to read it: when a stopped task is expected STOPPED (past it the drain still waits, only noting it),
# and what each phase's reservation adds.
STOP_MARGIN_S = 5.0
# How long before a Spot notice ends the guard completes the lifecycle action even with tasks left.
HARD_END_MARGIN_S = 2.0
HOOK_MAX_GLOBAL_S = 48 * 3600
# How often a waiting drain looks at ECS when no event wakes it (a task past its expected stop time included).
POLL_S = 10.0


HardEndKind = Literal["notice", "heartbeats", "deadline"]


def hook_global_timeout_s(heartbeat_timeout_s: float) -> float:
    """A lifecycle hook's global timeout: 48 hours or 100 times its heartbeat timeout, whichever is smaller
    (Auto Scaling API reference, LifecycleHook.GlobalTimeout)."""
    return min(HOOK_MAX_GLOBAL_S, 100 * heartbeat_timeout_s)


def notice_end(request: DrainRequest, progress: DrainProgress, view: DrainView | None = None) -> float | None:
    """When the Spot notice this drain races ends (epoch seconds): its own, one handed over through its
    claim (`view`), or one seen at an earlier step; None without a notice."""
    notices = [n for n in (request.deadline_epoch, view.deadline_epoch if view else None, progress.hook.notice_at)
               if n is not None]
    return min(notices) if notices else None


def global_deadline(request: DrainRequest, view: DrainView, progress: DrainProgress, policy: DrainPolicy) -> float:
    """The earliest of the configured drain deadline and a Spot notice (minus a safety margin)."""
    deadline = progress.started_at + policy.drain_deadline_s
    notice = notice_end(request, progress, view)
    return deadline if notice is None else min(deadline, notice - SPOT_SAFETY_S)


def phase_stop_times(view: DrainView, policy: DrainPolicy) -> tuple[float, ...]:
    """Per phase (replicas, standalone, then each tier): the longest stopTimeout among its live tasks plus
    `STOP_MARGIN_S`, the most its tasks take to STOP once told; 0 for a phase with nothing here."""
    longest = view.longest_stop_by_phase
    keys: list[int | str] = [REPLICAS_KEY, STANDALONE_KEY, *range(len(policy.tier_names))]
    times = [longest[k] + STOP_MARGIN_S if k in longest else 0.0 for k in keys]
    if policy.standalone is StandalonePolicy.IGNORE:
        times[1] = 0.0
    return tuple(times)


def phase_index(progress: DrainProgress) -> int:
    if progress.phase == "replicas":
        return 0
    return 1 if progress.phase == "standalone" else 2 + progress.tier


def standalone_wait_end(progress: DrainProgress, policy: DrainPolicy) -> float:
    """When standalone tasks (policy ``wait``) have had their `standalone_wait_s` to finish by themselves: counted
    from the drain's start, since they run on untouched while the replicas go; a replica phase longer than the
    wait leaves them none, and the standalone phase then stops them at once."""
    return progress.started_at + policy.standalone_wait_s


def phase_deadline(view: DrainView, progress: DrainProgress, policy: DrainPolicy, deadline: float) -> float:
    """When the current phase must have told its last task to stop: early enough that its tasks and every
    later phase's can still STOP before the global deadline (`phase_stop_times`), and within its own
    limit (standalone: the end of its wait, or its own start if later, plus a tier deadline; a tier: the
    tier deadline). Under a short budget (a
    Spot notice) the replicas get what remains after that reservation."""
    latest = deadline - sum(phase_stop_times(view, policy)[phase_index(progress):])
    if progress.phase == "standalone":
        waited = max(progress.phase_started_at, standalone_wait_end(progress, policy))
        return min(latest, waited + policy.tier_deadline_s)
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
        hook_global = hook_global_timeout_s(policy.heartbeat_timeout_s)
        beats_end = progress.hook_started_at + hook_global - policy.heartbeat_timeout_s
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


def plan_heartbeat(request: DrainRequest, lifecycle: Lifecycle | None, now: float, progress: DrainProgress,
                   policy: DrainPolicy) -> tuple[RecordHeartbeat | None, float]:
    """A heartbeat when half the heartbeat timeout has passed, unless the hook's global timeout is near.

    Returns the heartbeat (or None) and the seconds until the next one is due.
    """
    if lifecycle is None or policy.heartbeat_timeout_s <= 0:
        return None, POLL_S
    hook_global = hook_global_timeout_s(policy.heartbeat_timeout_s)
    if now >= progress.hook_started_at + hook_global - policy.heartbeat_timeout_s:
        return None, POLL_S
    last = progress.hook.last_heartbeat_at or progress.started_at
    every = policy.heartbeat_timeout_s / 2
    if now - last >= every:
        return RecordHeartbeat(lifecycle.asg, lifecycle.hook, request.instance_id, lifecycle.token), every
    return None, max(1.0, last + every - now)
