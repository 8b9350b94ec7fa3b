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
from daemon_guard.core.drain import DrainRequest
from daemon_guard.core.events import GuardEvent, LifecycleAction, SpotInterruption
from daemon_guard.core.gate_request import GateRequest
from daemon_guard.core.guard_events import drain_started
from daemon_guard.core.identifiers import HookName, InstanceId, valid_epoch
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
    if r.cluster is None:
        return decision(r, "ignored", f"group {event.asg_name} feeds no managed cluster", event.ec2_instance_id)
    request = GateRequest(event.ec2_instance_id, r.cluster, event.asg_name, HookName(LAUNCH_HOOK_NAME), event.token,
                          event.time.timestamp())
    start = StartWorkflow(execution_name("gate", event.ec2_instance_id, event.token or ""), request)
    return claim_and_start(r, rt, start, wake_joined=wake_joined)


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
    lifecycle = event if isinstance(event, LifecycleAction) else None
    discriminator = (lifecycle.token if lifecycle else None) \
        or f"{r.trigger}:{event.time.isoformat() if hasattr(event, 'time') else ''}"
    request = DrainRequest(instance_id, cluster, r.trigger or "", deadline_epoch=deadline) if lifecycle is None \
        else DrainRequest(instance_id, cluster, r.trigger or "", asg=lifecycle.asg_name, hook=lifecycle.hook_name,
                          token=lifecycle.token, deadline_epoch=deadline, destination=lifecycle.destination)
    start = StartWorkflow(execution_name("drain", instance_id, discriminator), request)
    return claim_and_start(r, rt, start, wake_joined=wake_joined)


def claim_and_start(r: Route, rt: Runtime, start: StartWorkflow, *, wake_joined: bool = True) -> Outcome:
    """The one way a workflow starts (the intake, the exits, the reconciler and the operator's `drain`):
    claim the instance for it in the state table (at most one workflow of a kind per instance), then
    start it by execution name. A second trigger joins the running one: it hands over its lifecycle action
    and deadline, and wakes it, unless `wake_joined` is False (the reconciler may not wake workflows, which
    read what was attached to their claim at their next look)."""
    request = start.request
    kind, instance_id = request.CLAIM_KIND, request.instance_id
    if isinstance(request, DrainRequest) and rt.config.drain_mode is DrainMode.OBSERVE:
        return observe_drain(r, rt, request)
    if not rt.executor.can_run(start):
        logger.error("workflow not configured", extra={"workflow": start.workflow})
        return decision(r, "not-configured", f"no {start.workflow} workflow configured", instance_id)
    deadline = request.deadline_epoch if isinstance(request, DrainRequest) else None
    existing = rt.claims.claim_workflow(WorkflowClaim(
        instance_id=instance_id, kind=kind, execution_name=start.execution_name, token=request.token,
        asg=request.asg, hook=request.hook, deadline_epoch=deadline, callback_id=None,
        started_epoch=rt.now().timestamp()))
    if existing is not None and existing.execution_name != start.execution_name:
        # Another trigger already holds this instance: hand it this lifecycle action and deadline.
        if request.token is not None and request.asg and request.hook and existing.token is None:
            rt.claims.attach_lifecycle(kind, instance_id, request.asg, request.hook, request.token, None)
        if deadline is not None:
            rt.claims.tighten_deadline(kind, instance_id, deadline)
        if existing.callback_id and wake_joined:
            rt.executor.run(request.cluster, WakeWorkflow(existing.callback_id, r.reason))
        return decision(r, "joined", f"{r.reason}: {existing.execution_name} already owns {instance_id}",
                         instance_id)
    ran = rt.executor.run(request.cluster, start)
    if ran == "done" and existing is None and isinstance(request, DrainRequest):
        rt.metrics.emit(m.DRAINS_STARTED, 1, request.cluster or "unknown")
        announce(rt, [drain_started(request.cluster, instance_id, rt.now(), r.reason, request.trigger,
                                    start.execution_name, deadline)])
    return decision(r, START_DECISIONS[ran], r.reason, instance_id, [start])
