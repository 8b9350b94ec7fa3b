"""The launch gate workflow: hold an instance in Pending:Wait until it registers and its daemons run.

A durable function started by the intake on a launch lifecycle action of a group with
``launchHook``. Each checkpointed step looks for the container instance (by EC2 instance id) and
asks the placement reflex for its state; the pure planner (`core.launch_gate.plan_gate_step`) decides:
when every eligible daemon is RUNNING it completes the action with CONTINUE. Heartbeats keep the hook
alive, and stop before the hook's global timeout; past ``launchGateTimeoutSeconds`` (or at that stop)
the group's ``launchTimeoutResult`` (CONTINUE or ABANDON) is applied. When a critical daemon is still
missing past ``gateTimeoutSeconds`` the reflex replaces the instance (ABANDON on this hook, within the
replacement budget) and the gate ends with it. The intake wakes it when a daemon on the instance
starts RUNNING; without one it looks again at the slow look's interval (core.slow_look).
"""

from __future__ import annotations

import contextlib
import math
from functools import partial
from typing import Any

from aws_durable_execution_sdk_python import DurableContext, StepContext
from aws_durable_execution_sdk_python.config import CallbackConfig, Duration
from aws_durable_execution_sdk_python.exceptions import CallbackTimeoutError

from daemon_guard.adapters.errors import AwsError
from daemon_guard.bootstrap import Runtime
from daemon_guard.core import metrics as m
from daemon_guard.core.actions import CompleteLifecycle, RecordHeartbeat
from daemon_guard.core.gate_request import GateRequest
from daemon_guard.core.identifiers import InstanceId
from daemon_guard.core.launch_gate import GateHook, GateLook, GatePolicy, GateProgress, LifecycleResult, plan_gate_step
from daemon_guard.observability import logger
from daemon_guard.services.reflex import check_instance

KIND = "gate"


def gate_tick(rt: Runtime, payload: dict[str, Any], state: dict[str, Any], woke: bool = False,
              _ctx: StepContext | None = None) -> dict[str, Any]:
    """Look once and carry out the planned step (`core.launch_gate.plan_gate_step`): complete on all
    daemons RUNNING, apply the timeout result, or heartbeat and wait. `woke`: an event woke this step.

    An AWS error ends the step unchanged with a short wait; the next step looks again.
    """
    try:
        return _tick(rt, payload, dict(state), woke)
    except AwsError as exc:
        logger.warning("launch gate step failed; retrying", extra={"instance": payload["instanceId"],
                                                                   "error": str(exc)})
        return {**state, "done": False, "wait_s": 3.0}


def _look(rt: Runtime, cluster: str, instance_id: InstanceId, now: float) -> GateLook:
    """The container instance by EC2 id and, once registered, the placement reflex's decision (it acts too)."""
    instance = rt.cluster(cluster).instance_by_ec2_id(instance_id)
    if instance is None:
        return GateLook(now, None)
    plan = check_instance(rt, cluster, instance).plan
    return GateLook(now, instance.arn, plan.decision, plan.missing, plan.reason)


def _tick(rt: Runtime, payload: dict[str, Any], state: dict[str, Any], woke: bool) -> dict[str, Any]:
    cluster, instance_id = payload["cluster"], payload["instanceId"]
    group = rt.config.group(payload["asg"])
    now = rt.now().timestamp()
    look = _look(rt, cluster, instance_id, now)
    if look.instance_arn is not None:
        state["instance_arn"] = look.instance_arn
    hook = GateHook(payload["asg"], payload["hook"], instance_id, payload.get("token"))
    result: LifecycleResult = "ABANDON" if group and group.launch_timeout_result == "ABANDON" else "CONTINUE"
    policy = GatePolicy(rt.config.launch_gate_timeout_s, result, group.heartbeat_timeout_s if group else 0)
    progress = GateProgress(started_at=state["started"], last_heartbeat_at=state.get("last_heartbeat"),
                            heartbeats=state.get("heartbeats", 0), heard_at=now if woke else state.get("heard_at"))
    step = plan_gate_step(hook, policy, look, progress)
    for action in step.actions:
        ran = rt.executor.run(cluster, action)
        if isinstance(action, RecordHeartbeat) and ran == "done":
            rt.metrics.emit(m.HEARTBEATS_SENT, 1, cluster)
        elif isinstance(action, CompleteLifecycle):
            rt.metrics.emit(m.LIFECYCLE_RESULTS, 1, cluster, Result=action.result if ran == "done" else "GONE")
    if step.end == "replaced" and look.decision == "replace-instance":
        rt.metrics.emit(m.LIFECYCLE_RESULTS, 1, cluster, Result="ABANDON")
    if step.done:
        logger.info("launch gate ended", extra={"instance": instance_id, "end": step.end, "result": step.result,
                                                "reason": step.reason})
        return {**state, "done": True, "result": step.result, "wait_s": 0}
    return {**state, "done": False, "wait_s": step.wait_s, "last_heartbeat": step.progress.last_heartbeat_at,
            "heartbeats": step.progress.heartbeats, "heard_at": step.progress.heard_at}


def listen(rt: Runtime, state: dict[str, Any], callback_id: str, _ctx: StepContext | None = None) -> bool:
    """Let the intake wake this gate when a daemon on the instance starts RUNNING."""
    if not state.get("instance_arn"):
        return False
    rt.claims.register_wake(KIND, state["instance_arn"], callback_id, rt.now().timestamp())  # no stops matter here
    return True


def release(rt: Runtime, instance_id: str, _ctx: StepContext | None = None) -> bool:
    """Forget the claim on the instance."""
    rt.claims.release_workflow(KIND, instance_id)
    return True


def launch_gate_workflow(rt: Runtime, event: dict[str, Any], ctx: DurableContext) -> dict[str, Any]:
    """The durable launch gate."""
    GateRequest.from_payload(event)  # a bad payload fails here, before the first step reads anything
    state: dict[str, Any] = {"started": ctx.step(lambda _c: rt.now().timestamp(), name="start")}
    n = 0
    woke = False
    while True:
        state = ctx.step(partial(gate_tick, rt, event, state, woke), name=f"tick-{n}")
        if state["done"]:
            break
        callback = ctx.create_callback(
            name=f"wake-{n}", config=CallbackConfig(timeout=Duration.from_seconds(max(1, math.ceil(state["wait_s"])))))
        ctx.step(partial(listen, rt, state, callback.callback_id), name=f"listen-{n}")
        woke = False
        with contextlib.suppress(CallbackTimeoutError):  # the timeout is the slow look
            callback.result()
            woke = True
        n += 1
    ctx.step(partial(release, rt, event["instanceId"]), name="release")
    return {"instance": event["instanceId"], "result": state["result"]}

