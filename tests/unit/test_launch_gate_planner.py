"""The launch gate's planner: when the gate completes its lifecycle action, heartbeats, or waits."""

from __future__ import annotations

import pytest
from daemon_guard.core.actions import Action, CompleteLifecycle, RecordHeartbeat
from daemon_guard.core.drain import hook_global_timeout_s
from daemon_guard.core.launch_gate import (
    GateHook,
    GateLook,
    GatePolicy,
    GateProgress,
    gate_ends_at,
    plan_gate_step,
)
from daemon_guard.core.placement import PlacementDecision
from daemon_guard.core.slow_look import LOOK_MAX_S, LOOK_MIN_S

START = 1_700_000_000.0
ARN = "arn:aws:ecs:us-west-2:123456789012:container-instance/prod/ci-1"
HOOK = GateHook("prod-asg", "daemon-guard-launch", "i-0123456789abcdef0", "11111111-2222-3333-4444-555555555555")
POLICY = GatePolicy(timeout_s=600, timeout_result="CONTINUE", heartbeat_timeout_s=300)
CONTINUE = CompleteLifecycle(HOOK.asg, HOOK.hook, HOOK.instance_id, HOOK.token, "CONTINUE")
ABANDON = CompleteLifecycle(HOOK.asg, HOOK.hook, HOOK.instance_id, HOOK.token, "ABANDON")
BEAT = RecordHeartbeat(HOOK.asg, HOOK.hook, HOOK.instance_id, HOOK.token)


def look(at: float, decision: PlacementDecision | None = "gate-shut", missing: tuple[str, ...] = ("fluent-bit",),
         registered: bool = True) -> GateLook:
    """One look `at` seconds into the gate; unregistered instances have no decision."""
    if not registered:
        return GateLook(START + at, None)
    return GateLook(START + at, ARN, decision, missing, "the reflex's reason")


@pytest.mark.parametrize(("the_look", "actions", "end", "result"), [
    pytest.param(look(20, "open-gate", ()), [CONTINUE], "daemons-running", "CONTINUE",
                 id="every daemon RUNNING, the reflex opens the gate: CONTINUE"),
    pytest.param(look(20, "complete", ()), [CONTINUE], "daemons-running", "CONTINUE",
                 id="every daemon RUNNING, the gate already open: CONTINUE"),
    pytest.param(look(20, "gate-shut", ()), [CONTINUE], "daemons-running", "CONTINUE",
                 id="a shut gate with nothing missing: CONTINUE"),
    pytest.param(look(20), [], None, None, id="a daemon still missing: wait"),
    pytest.param(look(20, registered=False), [], None, None, id="not registered yet: wait"),
    pytest.param(look(700, "replace-instance"), [], "replaced", "ABANDON",
                 id="the reflex replaced the instance (it completed ABANDON): end, no call"),
    pytest.param(look(700, "replacing"), [], "replaced", "ABANDON", id="being replaced: end, no call"),
    pytest.param(look(600), [CONTINUE], "timeout", "CONTINUE", id="past launchGateTimeoutSeconds: its result"),
    pytest.param(look(600, registered=False), [CONTINUE], "timeout", "CONTINUE",
                 id="never registered, past the timeout: its result"),
])
def test_the_gate_completes_on_daemons_running_or_at_its_timeout(the_look: GateLook, actions: list[Action],
                                                                  end: str | None, result: str | None) -> None:
    # GIVEN a gate begun at START, a 600 s timeout with CONTINUE, a 300 s heartbeat, heartbeats just sent
    progress = GateProgress(started_at=START, last_heartbeat_at=the_look.now)
    # WHEN a look is planned
    step = plan_gate_step(HOOK, POLICY, the_look, progress)
    # THEN the lifecycle calls and the end are as the table says
    assert list(step.actions) == actions
    assert (step.end, step.result) == (end, result)


def test_the_timeout_result_abandon_is_applied_as_configured() -> None:
    # GIVEN launchTimeoutResult ABANDON / WHEN the gate's timeout passes with a daemon missing / THEN ABANDON
    step = plan_gate_step(HOOK, GatePolicy(600, "ABANDON", 300), look(601), GateProgress(START, START + 600))
    assert step.actions == (ABANDON,) and step.end == "timeout"


@pytest.mark.parametrize(("heartbeat_s", "global_s"), [
    (300, 30_000), (30, 3_000), (1_728, 172_800), (7_200, 172_800),
])
def test_the_hooks_global_timeout_is_48_hours_or_100_heartbeat_timeouts_whichever_is_smaller(
        heartbeat_s: float, global_s: float) -> None:
    # GIVEN a heartbeat timeout / THEN the global timeout Auto Scaling applies (API reference, LifecycleHook)
    assert hook_global_timeout_s(heartbeat_s) == global_s


@pytest.mark.parametrize(("timeout_s", "heartbeat_s", "ends_at", "kind"), [
    pytest.param(600, 300, 600, "timeout", id="the gate's own timeout comes first"),
    pytest.param(7200, 30, 3000 - 30, "hook-global-timeout",
                 id="heartbeats of 30 s: they stop one heartbeat timeout before 3000 s, and the gate ends there"),
    pytest.param(7200, 0, 7200, "timeout", id="no heartbeat timeout known: the gate's own timeout"),
])
def test_the_gate_ends_before_the_hooks_global_timeout(timeout_s: float, heartbeat_s: float, ends_at: float,
                                                       kind: str) -> None:
    # GIVEN the gate's timeout and the hook's heartbeat timeout / THEN when and why the gate ends
    assert gate_ends_at(GateProgress(START), GatePolicy(timeout_s, "CONTINUE", heartbeat_s)) == (START + ends_at, kind)


def test_at_the_hooks_global_timeout_the_gate_applies_its_result_instead_of_heartbeating() -> None:
    # GIVEN a 7200 s gate timeout and a 30 s heartbeat timeout (global timeout 3000 s), a daemon still missing
    policy = GatePolicy(7200, "ABANDON", 30)
    progress = GateProgress(START, last_heartbeat_at=START + 2950)
    # WHEN it is planned just before heartbeats must stop, and at that moment
    before = plan_gate_step(HOOK, policy, look(2969), progress)
    at_stop = plan_gate_step(HOOK, policy, look(2970), before.progress)
    # THEN it heartbeats (and waits no longer than until the stop), then completes with its result, no heartbeat
    assert before.actions == (BEAT,) and before.wait_s <= 1.0
    assert at_stop.actions == (ABANDON,) and at_stop.end == "hook-global-timeout"


@pytest.mark.parametrize(("now", "last_beat", "beats"), [
    (149, 0, False), (150, 0, True), (290, 150, False), (300, 150, True),
])
def test_heartbeats_go_every_half_heartbeat_timeout(now: float, last_beat: float, beats: bool) -> None:
    # GIVEN a 300 s heartbeat timeout and the last heartbeat (or the start) at `last_beat`
    progress = GateProgress(START, last_heartbeat_at=START + last_beat if last_beat else None)
    # WHEN planned at `now` with a daemon missing / THEN a heartbeat only once half the timeout has passed
    step = plan_gate_step(HOOK, POLICY, look(now), progress)
    assert (BEAT in step.actions) is beats


@pytest.mark.parametrize(("now", "heard_at", "wait_s"), [
    pytest.param(20, 18, LOOK_MIN_S, id="just woken by an event: look again after the floor"),
    pytest.param(40, 10, 30.0, id="30 s without an event: the next look 30 s later"),
    pytest.param(140, None, LOOK_MAX_S, id="long silence: at most the ceiling"),
])
def test_without_events_the_gate_looks_at_the_slow_looks_interval(now: float, heard_at: float | None,
                                                                 wait_s: float) -> None:
    # GIVEN a gate waiting for a daemon, its heartbeat far off (heartbeat timeout 3600 s)
    policy = GatePolicy(7200, "CONTINUE", 3600)
    heard = None if heard_at is None else START + heard_at
    progress = GateProgress(START, last_heartbeat_at=START + now, heard_at=heard)
    # WHEN planned / THEN it waits the slow look's interval for a wake-up
    assert plan_gate_step(HOOK, policy, look(now), progress).wait_s == wait_s
