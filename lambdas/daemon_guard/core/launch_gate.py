"""The launch gate, one step at a time (`plan_gate_step`): hold a new instance in Pending:Wait until its
daemons run, keep the launch hook alive meanwhile, and end it before Auto Scaling's own timeouts do.

The workflow (workflows/launch_gate.py) looks (the container instance by EC2 id, then the placement
reflex's decision for it) and hands the look to this planner, which returns the lifecycle calls to make
and when to look again. It completes with CONTINUE once every eligible daemon is RUNNING (the reflex opened
the gate, or found it open); ends without a call when the reflex replaced the instance (it completed the
hook with ABANDON itself); and past `launchGateTimeoutSeconds` applies the group's `launchTimeoutResult`.

Auto Scaling ends a lifecycle action on its own at the hook's global timeout, "172800 seconds (48 hours) or
100 times HeartbeatTimeout, whichever is smaller" (Auto Scaling API reference, LifecycleHook), whatever the
heartbeats: a heartbeat past it fails, and the hook's DefaultResult applies, not the one configured. So
heartbeats stop one heartbeat timeout before it, and the gate then applies its timeout result itself.

Between looks it waits for the intake's wake-up (a daemon on the instance turned RUNNING) or, when none
comes, the slow look (core.slow_look), at most until the next heartbeat or the gate's end.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from daemon_guard.core.actions import Action, CompleteLifecycle, RecordHeartbeat
from daemon_guard.core.drain.deadlines import hook_global_timeout_s
from daemon_guard.core.placement import PlacementDecision
from daemon_guard.core.slow_look import seconds_to_slow_look

LifecycleResult = Literal["CONTINUE", "ABANDON"]
GateEnd = Literal["daemons-running", "replaced", "timeout", "hook-global-timeout"]


@dataclass(frozen=True)
class GateHook:
    """The launch lifecycle action the gate holds and completes."""

    asg: str
    hook: str
    instance_id: str
    token: str | None


@dataclass(frozen=True)
class GatePolicy:
    """The configured limits: the gate's timeout and its result, and the hook's heartbeat timeout (0: the
    group's hook is not known, no heartbeats)."""

    timeout_s: float
    timeout_result: LifecycleResult
    heartbeat_timeout_s: float


@dataclass(frozen=True)
class GateLook:
    """What one look found: whether the instance is registered and, if so, the reflex's decision for it."""

    now: float
    instance_arn: str | None
    decision: PlacementDecision | None = None
    missing: tuple[str, ...] = ()
    reason: str = "instance not registered yet"


@dataclass(frozen=True)
class GateProgress:
    """What the gate has done so far; checkpointed between steps."""

    started_at: float
    last_heartbeat_at: float | None = None
    heartbeats: int = 0
    heard_at: float | None = None  # the last wake-up by an event (None: none yet)


@dataclass(frozen=True)
class GateStep:
    """One step's lifecycle calls, the new progress, and either how the gate ended or how long to wait."""

    actions: tuple[Action, ...]
    progress: GateProgress
    end: GateEnd | None
    result: LifecycleResult | None
    reason: str
    wait_s: float = 0.0

    @property
    def done(self) -> bool:
        """True once the gate has ended (its lifecycle action completed, or the instance replaced)."""
        return self.end is not None


def gate_ends_at(progress: GateProgress, policy: GatePolicy) -> tuple[float, GateEnd]:
    """When the gate applies its timeout result: `launchGateTimeoutSeconds` after it began, or one heartbeat
    timeout before the hook's global timeout if that comes first (heartbeats stop there)."""
    own = progress.started_at + policy.timeout_s
    if policy.heartbeat_timeout_s <= 0:
        return own, "timeout"
    beats_end = progress.started_at + hook_global_timeout_s(policy.heartbeat_timeout_s) - policy.heartbeat_timeout_s
    return (own, "timeout") if own <= beats_end else (beats_end, "hook-global-timeout")


def _complete(hook: GateHook, result: LifecycleResult) -> CompleteLifecycle:
    return CompleteLifecycle(hook.asg, hook.hook, hook.instance_id, hook.token, result)


def plan_gate_step(hook: GateHook, policy: GatePolicy, look: GateLook, progress: GateProgress) -> GateStep:
    """Plan one step of the launch gate from one look."""
    decision = look.decision
    if look.instance_arn is not None and (decision in ("complete", "open-gate")
                                          or (decision == "gate-shut" and not look.missing)):
        return GateStep((_complete(hook, "CONTINUE"),), progress, "daemons-running", "CONTINUE", look.reason)
    if decision in ("replace-instance", "replacing"):
        # The reflex has completed this hook with ABANDON (now or on an earlier check): nothing is left to do.
        return GateStep((), progress, "replaced", "ABANDON", look.reason)
    ends_at, kind = gate_ends_at(progress, policy)
    if look.now >= ends_at:
        why = f"launch gate timed out after {policy.timeout_s:g}s" if kind == "timeout" else \
            "heartbeats must stop before the lifecycle hook's global timeout"
        return GateStep((_complete(hook, policy.timeout_result),), progress, kind, policy.timeout_result,
                        f"{why}: {look.reason}")
    actions: tuple[Action, ...] = ()
    every = policy.heartbeat_timeout_s / 2
    last = progress.last_heartbeat_at if progress.last_heartbeat_at is not None else progress.started_at
    if every > 0 and look.now - last >= every:
        actions = (RecordHeartbeat(hook.asg, hook.hook, hook.instance_id, hook.token),)
        progress = replace(progress, last_heartbeat_at=look.now, heartbeats=progress.heartbeats + 1)
        last = look.now
    heard = progress.heard_at if progress.heard_at is not None else progress.started_at
    waits = [seconds_to_slow_look(look.now, look.now, heard), ends_at - look.now]
    if every > 0:
        waits.append(last + every - look.now)
    return GateStep(actions, progress, None, None, look.reason, max(1.0, min(waits)))
