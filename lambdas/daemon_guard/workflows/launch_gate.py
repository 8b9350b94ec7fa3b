"""The launch gate workflow: hold an instance in Pending:Wait until it registers and its daemons run.

A durable function started by the intake on a launch lifecycle action of a group with
``launchHook``. Each checkpointed step looks for the container instance (by EC2 instance id) and
asks the placement reflex for its state; when every eligible daemon is RUNNING it completes the
action with CONTINUE. Heartbeats keep the hook alive; past ``launchGateTimeoutSeconds`` the
group's ``launchTimeoutResult`` (CONTINUE or ABANDON) is applied. When a critical daemon is still
missing past ``gateTimeoutSeconds`` the reflex replaces the instance (ABANDON on this hook, within the
replacement budget) and the gate ends with it. The intake wakes it when a daemon on the instance
starts RUNNING.
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
from daemon_guard.observability import logger
from daemon_guard.services.reflex import check_instance

KIND = "gate"
POLL_S = 10.0


def gate_tick(rt: Runtime, payload: dict[str, Any], state: dict[str, Any], _ctx: StepContext | None = None
              ) -> dict[str, Any]:
    """Look once: complete on all daemons RUNNING, apply the timeout result, or heartbeat and wait.

    An AWS error ends the step unchanged with a short wait; the next step looks again.
    """
    try:
        return _tick(rt, payload, dict(state))
    except AwsError as exc:
        logger.warning("launch gate step failed; retrying", extra={"instance": payload["instanceId"],
                                                                   "error": str(exc)})
        return {**state, "done": False, "wait_s": 3.0}


def _tick(rt: Runtime, payload: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
    cluster, instance_id = payload["cluster"], payload["instanceId"]
    group = rt.config.group(payload["asg"])
    now = rt.now().timestamp()
    ecs = rt.cluster(cluster)
    instance = ecs.instance_by_ec2_id(instance_id)
    result: str | None = None
    reason = "instance not registered yet"
    if instance is not None:
        state["instance_arn"] = instance.arn
        outcome = check_instance(rt, cluster, instance)
        reason = outcome.plan.reason
        if outcome.plan.decision in ("complete", "open-gate") or (
                outcome.plan.decision == "gate-shut" and not outcome.plan.missing):
            result = "CONTINUE"
        elif outcome.plan.decision in ("replace-instance", "replacing"):
            # The reflex has completed this hook with ABANDON (now or on an earlier check): nothing is left to do.
            if outcome.plan.decision == "replace-instance":
                rt.metrics.emit(m.LIFECYCLE_RESULTS, 1, cluster, Result="ABANDON")
            logger.info("launch gate ended: the instance is replaced", extra={"instance": instance_id,
                                                                             "reason": reason})
            return {**state, "done": True, "result": "ABANDON", "wait_s": 0}
    if result is None and now - state["started"] >= rt.config.launch_gate_timeout_s:
        result = group.launch_timeout_result if group else "CONTINUE"
        reason = f"launch gate timed out after {rt.config.launch_gate_timeout_s}s: {reason}"
    if result is not None:
        complete = CompleteLifecycle(payload["asg"], payload["hook"], instance_id, payload.get("token"),
                                     "CONTINUE" if result == "CONTINUE" else "ABANDON")
        done = rt.executor.run(cluster, complete) == "done"
        rt.metrics.emit(m.LIFECYCLE_RESULTS, 1, cluster, Result=result if done else "GONE")
        logger.info("launch gate completed", extra={"instance": instance_id, "result": result, "reason": reason})
        return {**state, "done": True, "result": result, "wait_s": 0}
    heartbeat = group.heartbeat_timeout_s if group else 0
    if heartbeat and now - state.get("last_heartbeat", state["started"]) >= heartbeat / 2:
        beat = RecordHeartbeat(payload["asg"], payload["hook"], instance_id, payload.get("token"))
        if rt.executor.run(cluster, beat) == "done":
            rt.metrics.emit(m.HEARTBEATS_SENT, 1, cluster)
        state["last_heartbeat"] = now
    return {**state, "done": False, "wait_s": POLL_S}


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
    while True:
        state = ctx.step(partial(gate_tick, rt, event, state), name=f"tick-{n}")
        if state["done"]:
            break
        callback = ctx.create_callback(
            name=f"wake-{n}", config=CallbackConfig(timeout=Duration.from_seconds(max(1, math.ceil(state["wait_s"])))))
        ctx.step(partial(listen, rt, state, callback.callback_id), name=f"listen-{n}")
        with contextlib.suppress(CallbackTimeoutError):  # the timeout is the polling fallback
            callback.result()
        n += 1
    ctx.step(partial(release, rt, event["instanceId"]), name="release")
    return {"instance": event["instanceId"], "result": state["result"]}

