"""The intake Lambda: every EventBridge event enters here, is parsed, routed and handled.

`handle(event, runtime)` is the whole edge (the replay command runs it with a dry-run runtime);
`handler` adds Powertools context. It returns (and logs) one decision object:
``{"route", "decision", "reason", "instance", "actions"}``. A malformed or foreign event gets a clear
log line and no AWS write, and never raises into a retry storm.
"""

from __future__ import annotations

import hashlib
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from daemon_guard.core import metrics as m
from daemon_guard.core.actions import CompleteLifecycle, StartWorkflow, WakeWorkflow
from daemon_guard.core.config import LAUNCH_HOOK_NAME, SpotPolicy
from daemon_guard.core.events import (
    Envelope,
    GuardEvent,
    LifecycleAction,
    Malformed,
    ServiceAction,
    SpotInterruption,
    TaskChanged,
)
from daemon_guard.core.intake import Route, route
from daemon_guard.handlers.parsing import parse_event
from daemon_guard.handlers.reflex import action_dict, check_instance
from daemon_guard.handlers.runtime import Runtime, get_runtime, logger


def _decision(r: Route, decision: str, reason: str, instance: str | None = None,
              actions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"route": r.kind, "decision": decision, "reason": reason, "instance": instance,
            "actions": actions or []}


def execution_name(kind: str, instance_id: str, discriminator: str) -> str:
    """A durable execution name: kind, instance and a short hash of what started it (≤ 64 chars)."""
    digest = hashlib.sha256(discriminator.encode()).hexdigest()[:12]
    return f"{kind}-{instance_id}-{digest}"[:64]


def handle(raw: object, rt: Runtime) -> dict[str, Any]:
    """Parse, route and handle one event; never raises for bad input."""
    event = parse_event(raw)
    r = route(event, rt.config)
    if isinstance(event, Malformed):
        logger.warning("malformed event rejected", extra={"reason": event.reason})
        rt.metrics.emit(m.EVENTS_MALFORMED, 1, "unknown")
        return _decision(r, "malformed", event.reason)
    foreign = _foreign(event, rt)
    if foreign is not None:
        r = Route("ignore", foreign)
    if r.kind == "ignore":
        logger.info("event ignored", extra={"reason": r.reason})
        rt.metrics.emit(m.EVENTS_IGNORED, 1, r.cluster or "unknown")
        return _decision(r, "ignored", r.reason)
    if r.dedupe_key and rt.state is not None and not rt.dry_run and \
            not rt.state.first_sighting(r.dedupe_key, rt.now().timestamp()):
        rt.metrics.emit(m.DUPLICATE_EVENTS, 1, r.cluster or "unknown")
        return _decision(r, "duplicate", f"already handled {r.dedupe_key}")
    if isinstance(event, ServiceAction) and r.cluster is not None:
        service = (event.service_arn or "").rsplit("/", 1)[-1]
        if service not in {s.name for s in rt.cluster(r.cluster).daemon_services()}:
            return _decision(r, "ignored", f"{service} is not a daemon service: ECS retries replicas itself")
    if r.kind == "placement":
        return _placement(r, event, rt)
    if r.kind == "wake":
        return _wake(r, event, rt)
    if r.kind == "launch-gate":
        return _launch_gate(r, event, rt)
    if r.kind == "drain":
        return _drain(r, event, rt)
    from daemon_guard.handlers.reconciler import reconcile_cluster

    assert r.cluster is not None
    summary = reconcile_cluster(rt, r.cluster)
    return _decision(r, "reconciled", r.reason, actions=summary.actions)


def _foreign(event: GuardEvent, rt: Runtime) -> str | None:
    """Why an event from another account or region (envelope or cluster ARN) is out of scope, if it is."""
    if not isinstance(event, Envelope):
        return None
    why = rt.foreign(event.account, event.region)
    cluster_arn = getattr(event, "cluster_arn", "")
    parts = cluster_arn.split(":") if isinstance(cluster_arn, str) and cluster_arn.startswith("arn:") else []
    if why is None and len(parts) > 4:
        why = rt.foreign(parts[4], parts[3])
    return why


def _placement(r: Route, event: GuardEvent, rt: Runtime) -> dict[str, Any]:
    assert r.cluster is not None
    ecs = rt.cluster(r.cluster)
    trigger = event.group if isinstance(event, TaskChanged) else None
    daemons = ecs.daemon_services()
    is_daemon_event = trigger is not None and trigger in {s.group for s in daemons}
    if isinstance(event, TaskChanged) and not is_daemon_event and r.instance_arns[0] in rt.complete_instances:
        return _decision(r, "complete", "instance already runs every eligible daemon", r.instance_arns[0])
    if isinstance(event, TaskChanged) and is_daemon_event and event.last_status != "RUNNING":
        return _decision(r, "wait", f"daemon {event.group} {event.last_status}: acting once it runs",
                         r.instance_arns[0])
    if is_daemon_event and isinstance(event, TaskChanged) and event.last_status == "RUNNING" \
            and rt.state is not None and not rt.dry_run and rt.workflows is not None:
        callback_id = rt.state.wake_target("gate", r.instance_arns[0])
        if callback_id:
            rt.workflows.wake(callback_id, r.reason)
    outcomes = []
    for instance in ecs.instances(r.instance_arns):
        outcomes.append(check_instance(rt, r.cluster, instance, trigger_group=trigger, daemons=daemons))
    if not outcomes:
        return _decision(r, "skip", "container instance no longer registered", r.instance_arns[0])
    first = outcomes[0].as_dict()
    actions = [a for o in outcomes for a in o.as_dict()["actions"]]
    return _decision(r, first["decision"], f"{r.reason}: {first['reason']}", first["instance"], actions)


def _wake(r: Route, event: GuardEvent, rt: Runtime) -> dict[str, Any]:
    assert r.cluster is not None
    instance_arn = r.instance_arns[0]
    actions: list[dict[str, Any]] = []
    if rt.state is not None:
        for kind in ("drain", "gate"):
            callback_id = rt.state.wake_target(kind, instance_arn)
            if callback_id:
                wake = WakeWorkflow(callback_id, r.reason)
                actions.append(action_dict(wake))
                if not rt.dry_run and rt.workflows is not None:
                    rt.workflows.wake(wake.callback_id, wake.reason)
    ecs = rt.cluster(r.cluster)
    group = event.group if isinstance(event, TaskChanged) else ""
    if group in {s.group for s in ecs.daemon_services()}:
        rt.complete_instances.discard(instance_arn)
        instance = ecs.instance(instance_arn)
        if instance is not None and instance.status == "ACTIVE":
            outcome = check_instance(rt, r.cluster, instance).as_dict()
            return _decision(r, outcome["decision"], f"daemon stopped: {outcome['reason']}", outcome["instance"],
                             actions + outcome["actions"])
    decision = "woke" if actions else "nothing-waiting"
    return _decision(r, decision, r.reason, instance_arn, actions)


def _launch_gate(r: Route, event: GuardEvent, rt: Runtime) -> dict[str, Any]:
    assert isinstance(event, LifecycleAction)
    if event.destination == "WarmPool":
        complete = CompleteLifecycle(event.asg_name, event.hook_name, event.ec2_instance_id, event.token, "CONTINUE")
        if not rt.dry_run:
            from daemon_guard.adapters.autoscaling import AutoScaling

            AutoScaling(rt.autoscaling_client).complete(complete)
        return _decision(r, "completed", r.reason, event.ec2_instance_id, [action_dict(complete)])
    start = StartWorkflow("launch-gate", execution_name("gate", event.ec2_instance_id, event.token), (
        ("instanceId", event.ec2_instance_id), ("cluster", r.cluster), ("asg", event.asg_name),
        ("hook", LAUNCH_HOOK_NAME), ("token", event.token), ("startedAt", event.time.timestamp())))
    return _start(r, rt, start, event.ec2_instance_id)


def _find_cluster(rt: Runtime, ec2_instance_id: str) -> str | None:
    for cluster in rt.config.clusters:
        if rt.cluster(cluster.name).instance_by_ec2_id(ec2_instance_id) is not None:
            return cluster.name
    return None


def _drain(r: Route, event: GuardEvent, rt: Runtime) -> dict[str, Any]:
    instance_id = r.ec2_instance_id or ""
    cluster = r.cluster or _find_cluster(rt, instance_id)
    if cluster is None:
        return _decision(r, "ignored", f"{instance_id} is not a container instance of a managed cluster",
                         instance_id)
    policy = {"spot": rt.config.spot_policy, "rebalance": rt.config.rebalance_policy}.get(r.trigger or "")
    if policy is SpotPolicy.REPORT:
        logger.info("drain trigger reported only", extra={"trigger": r.trigger, "instance": instance_id})
        return _decision(r, "reported", f"{r.reason}: configured to report only", instance_id)
    deadline = event.deadline.timestamp() if isinstance(event, SpotInterruption) and event.deadline else None
    token = event.token if isinstance(event, LifecycleAction) else None
    asg = event.asg_name if isinstance(event, LifecycleAction) else None
    hook = event.hook_name if isinstance(event, LifecycleAction) else None
    discriminator = token or f"{r.trigger}:{event.time.isoformat() if hasattr(event, 'time') else ''}"
    start = StartWorkflow("drain", execution_name("drain", instance_id, discriminator), (
        ("instanceId", instance_id), ("cluster", cluster), ("trigger", r.trigger), ("asg", asg), ("hook", hook),
        ("token", token), ("deadline", deadline),
        ("destination", event.destination if isinstance(event, LifecycleAction) else None)))
    return _start(r, rt, start, instance_id)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _start(r: Route, rt: Runtime, start: StartWorkflow, instance_id: str) -> dict[str, Any]:
    """Claim the instance for the workflow and start it; a second trigger joins the running one."""
    from daemon_guard.adapters.state import WorkflowClaim

    payload = {k: v for k, v in start.payload if v is not None}
    kind = "drain" if start.workflow == "drain" else "gate"
    actions = [action_dict(start)]
    if rt.dry_run:
        return _decision(r, "start-workflow", r.reason, instance_id, actions)
    function = rt.drain_function if start.workflow == "drain" else rt.launch_gate_function
    if rt.state is None or function is None or rt.workflows is None:
        logger.error("workflow not configured", extra={"workflow": start.workflow})
        return _decision(r, "not-configured", f"no {start.workflow} workflow configured", instance_id)
    now = rt.now().timestamp()
    existing = rt.state.claim_workflow(WorkflowClaim(
        instance_id=instance_id, kind=kind, execution_name=start.execution_name,
        token=_text(payload.get("token")), asg=_text(payload.get("asg")), hook=_text(payload.get("hook")),
        deadline_epoch=float(payload["deadline"]) if "deadline" in payload else None,
        callback_id=None, started_epoch=now))
    if existing is not None and existing.execution_name != start.execution_name:
        # Another trigger already drains this instance: hand it this lifecycle action and deadline.
        if isinstance(payload.get("token"), str) and existing.token is None:
            rt.state.attach_lifecycle(kind, instance_id, str(payload["asg"]), str(payload["hook"]),
                                      str(payload["token"]), None)
        if "deadline" in payload:
            rt.state.tighten_deadline(kind, instance_id, float(payload["deadline"] or 0))
        if existing.callback_id:
            rt.workflows.wake(existing.callback_id, r.reason)
        return _decision(r, "joined", f"{r.reason}: {existing.execution_name} already owns {instance_id}",
                         instance_id)
    started = rt.workflows.start(function, start.execution_name, payload)
    if started and existing is None and kind == "drain":
        rt.metrics.emit(m.DRAINS_STARTED, 1, str(payload.get("cluster", "unknown")))
    return _decision(r, "started" if started else "already-started", r.reason, instance_id, actions)


@logger.inject_lambda_context(correlation_id_path="id", log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point for every EventBridge rule."""
    rt = get_runtime()
    rt.learn_home(getattr(context, "invoked_function_arn", "") or "")
    try:
        return handle(event, rt)
    except Exception:
        # An AWS error mid-way: log it and let EventBridge retry (the paths are idempotent).
        logger.exception("event handling failed")
        raise
