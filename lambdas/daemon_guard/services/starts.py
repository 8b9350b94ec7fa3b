"""Starting the durable workflows: one path for events (the intake) and repairs (the reconciler).

A drain or launch gate is claimed in the state table (at most one workflow per instance), then
started with Invoke and a DurableExecutionName (idempotent per trigger). A second trigger for an
instance already being drained hands the running workflow its lifecycle action and deadline.
"""

from __future__ import annotations

import hashlib

from daemon_guard.adapters.executor import RunResult
from daemon_guard.adapters.state import WorkflowClaim
from daemon_guard.bootstrap import Runtime
from daemon_guard.core import metrics as m
from daemon_guard.core.actions import CompleteLifecycle, StartWorkflow, WakeWorkflow
from daemon_guard.core.config import LAUNCH_HOOK_NAME, DrainMode, SpotPolicy
from daemon_guard.core.events import GuardEvent, LifecycleAction, SpotInterruption
from daemon_guard.core.guard_events import drain_started
from daemon_guard.core.identifiers import InstanceId, valid_epoch
from daemon_guard.core.intake import Route
from daemon_guard.core.outcomes import Decision, Outcome, decision
from daemon_guard.observability import logger
from daemon_guard.services.drain_preview import observe_drain
from daemon_guard.services.notify import announce

# What came of a start: started, a different execution already holds the name, or a dry run noted it.
START_DECISIONS: dict[RunResult, Decision] = {"done": "started", "gone": "already-started",
                                               "recorded": "start-workflow"}


def execution_name(kind: str, instance_id: str, discriminator: str) -> str:
    """A durable execution name: kind, instance and a short hash of what started it (≤ 64 chars)."""
    digest = hashlib.sha256(discriminator.encode()).hexdigest()[:12]
    return f"{kind}-{instance_id}-{digest}"[:64]


def start_launch_gate(r: Route, event: GuardEvent, rt: Runtime, *, wake_joined: bool = True) -> Outcome:
    """Start the launch gate for a launch lifecycle action (a warm-pool entry is completed at once)."""
    assert isinstance(event, LifecycleAction)
    if event.destination == "WarmPool":
        complete = CompleteLifecycle(event.asg_name, event.hook_name, event.ec2_instance_id, event.token, "CONTINUE")
        rt.executor.run(r.cluster or "", complete)
        return decision(r, "completed", r.reason, event.ec2_instance_id, [complete])
    start = StartWorkflow("launch-gate", execution_name("gate", event.ec2_instance_id, event.token or ""), (
        ("instanceId", event.ec2_instance_id), ("cluster", r.cluster), ("asg", event.asg_name),
        ("hook", LAUNCH_HOOK_NAME), ("token", event.token), ("startedAt", event.time.timestamp())))
    return claim_and_start(r, rt, start, event.ec2_instance_id, wake_joined=wake_joined)


def _find_cluster(rt: Runtime, ec2_instance_id: InstanceId) -> str | None:
    for cluster in rt.config.clusters:
        if rt.cluster(cluster.name).instance_by_ec2_id(ec2_instance_id) is not None:
            return cluster.name
    return None


def start_drain(r: Route, event: GuardEvent, rt: Runtime, *, wake_joined: bool = True) -> Outcome:
    """Start the drain a drain trigger calls for (or report it, as configured)."""
    if r.ec2_instance_id is None:
        return decision(r, "ignored", "no EC2 instance named")
    instance_id = r.ec2_instance_id
    cluster = r.cluster or _find_cluster(rt, instance_id)
    if cluster is None:
        return decision(r, "ignored", f"{instance_id} is not a container instance of a managed cluster",
                         instance_id)
    policy = {"spot": rt.config.spot_policy, "rebalance": rt.config.rebalance_policy}.get(r.trigger or "")
    if policy is SpotPolicy.REPORT:
        logger.info("drain trigger reported only", extra={"trigger": r.trigger, "instance": instance_id})
        return decision(r, "reported", f"{r.reason}: configured to report only", instance_id)
    deadline = event.deadline.timestamp() if isinstance(event, SpotInterruption) and event.deadline else None
    if deadline is not None and not valid_epoch(deadline):
        # Parsing bounds event times, so this holds for every parsed warning; checked where it is used.
        return decision(r, "malformed", f"deadline {deadline} (epoch seconds) is outside 2016-2099", instance_id)
    token = event.token if isinstance(event, LifecycleAction) else None
    asg = event.asg_name if isinstance(event, LifecycleAction) else None
    hook = event.hook_name if isinstance(event, LifecycleAction) else None
    discriminator = token or f"{r.trigger}:{event.time.isoformat() if hasattr(event, 'time') else ''}"
    start = StartWorkflow("drain", execution_name("drain", instance_id, discriminator), (
        ("instanceId", instance_id), ("cluster", cluster), ("trigger", r.trigger), ("asg", asg), ("hook", hook),
        ("token", token), ("deadline", deadline),
        ("destination", event.destination if isinstance(event, LifecycleAction) else None)))
    return claim_and_start(r, rt, start, instance_id, wake_joined=wake_joined)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def claim_and_start(r: Route, rt: Runtime, start: StartWorkflow, instance_id: str, *, wake_joined: bool = True
           ) -> Outcome:
    """Claim the instance for the workflow and start it; a second trigger joins the running one (and wakes
    it, unless `wake_joined` is False: the reconciler may not wake workflows, which read what was attached
    to their claim at their next look)."""
    payload = {k: v for k, v in start.payload if v is not None}
    kind = "drain" if start.workflow == "drain" else "gate"
    actions = [start]
    if kind == "drain" and rt.config.drain_mode is DrainMode.OBSERVE:
        return observe_drain(r, rt, payload)
    cluster = str(payload.get("cluster", ""))
    if not rt.executor.can_run(start):
        logger.error("workflow not configured", extra={"workflow": start.workflow})
        return decision(r, "not-configured", f"no {start.workflow} workflow configured", instance_id)
    now = rt.now().timestamp()
    existing = rt.claims.claim_workflow(WorkflowClaim(
        instance_id=instance_id, kind=kind, execution_name=start.execution_name,
        token=_text(payload.get("token")), asg=_text(payload.get("asg")), hook=_text(payload.get("hook")),
        deadline_epoch=float(payload["deadline"]) if "deadline" in payload else None,
        callback_id=None, started_epoch=now))
    if existing is not None and existing.execution_name != start.execution_name:
        # Another trigger already drains this instance: hand it this lifecycle action and deadline.
        if isinstance(payload.get("token"), str) and existing.token is None:
            rt.claims.attach_lifecycle(kind, instance_id, str(payload["asg"]), str(payload["hook"]),
                                      str(payload["token"]), None)
        if "deadline" in payload:
            rt.claims.tighten_deadline(kind, instance_id, float(payload["deadline"] or 0))
        if existing.callback_id and wake_joined:
            rt.executor.run(cluster, WakeWorkflow(existing.callback_id, r.reason))
        return decision(r, "joined", f"{r.reason}: {existing.execution_name} already owns {instance_id}",
                         instance_id)
    ran = rt.executor.run(cluster, start)
    if ran == "done" and existing is None and kind == "drain":
        rt.metrics.emit(m.DRAINS_STARTED, 1, str(payload.get("cluster", "unknown")))
        announce(rt, [drain_started(str(payload.get("cluster")), instance_id, rt.now(), r.reason,
                                    str(payload.get("trigger")), start.execution_name,
                                    float(payload["deadline"]) if "deadline" in payload else None)])
    return decision(r, START_DECISIONS[ran], r.reason, instance_id, actions)
