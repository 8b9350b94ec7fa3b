"""Exits outside Auto Scaling: AWS Health EC2 scheduled changes and EC2 instances stopping.

- **Scheduled change** (retirement, scheduled stop or reboot, maintenance): each affected instance
  of a managed cluster is drained ahead of the change's start (``scheduledChangeLeadSeconds``
  before it, or at once when unset), with the start as the drain's deadline. With
  ``scheduledChange: replace`` (the default) the drain then marks the instance Unhealthy
  (SetInstanceHealth) so its group replaces it; ``drain`` leaves it for AWS's change; ``report``
  only logs. A drain due later than the next reconciler run is kept in the state table and the
  reconciler starts it when due: no workflow holds an instance (or its claim) while it waits.
- **EC2 state change** ``stopping`` / ``shutting-down`` of an ACTIVE container instance of a managed
  cluster (someone stopped or terminated it outside Auto Scaling): a drain under the deadline that
  remains, ``stateChangeDeadlineSeconds`` after the state change. An instance already DRAINING
  joins the drain that owns it (which takes the tighter deadline) or, with none, is left alone:
  a drain already finished there (an Auto Scaling termination after our terminate hook, say).
"""

from __future__ import annotations

from daemon_guard.adapters.errors import AwsError
from daemon_guard.adapters.scheduled import ScheduledDrain
from daemon_guard.bootstrap import Runtime
from daemon_guard.core.actions import StartWorkflow
from daemon_guard.core.config import ScheduledChangePolicy, SpotPolicy
from daemon_guard.core.drain import DrainRequest
from daemon_guard.core.events import GuardEvent, InstanceStateChanged, ScheduledChange
from daemon_guard.core.identifiers import InstanceId
from daemon_guard.core.intake import Route
from daemon_guard.core.model import InstanceView
from daemon_guard.core.outcomes import Outcome, decision
from daemon_guard.observability import logger
from daemon_guard.services.starts import claim_and_start, execution_name

KIND = "drain"


def _managed_instance(rt: Runtime, ec2_instance_id: InstanceId) -> tuple[str, InstanceView] | None:
    for cluster in rt.config.clusters:
        found = rt.cluster(cluster.name).instance_by_ec2_id(ec2_instance_id)
        if found is not None:
            return cluster.name, found
    return None


def start_exit_drains(r: Route, event: GuardEvent, rt: Runtime) -> Outcome:
    """Start (or schedule) the drains an exit outside Auto Scaling calls for; one decision for the event."""
    if isinstance(event, InstanceStateChanged):
        return _state_change(r, event, rt)
    assert isinstance(event, ScheduledChange)
    outcomes = [_scheduled_change(r, event, rt, instance_id) for instance_id in r.ec2_instance_ids]
    first = outcomes[0]
    return Outcome(r.kind, first.decision, "; ".join(f"{o.instance}: {o.reason}" for o in outcomes), first.instance,
                   tuple(a for o in outcomes for a in o.actions), instances=tuple(outcomes))


def _start(cluster: str, r: Route, instance_id: InstanceId, deadline: float | None, replace: bool,
           discriminator: str) -> StartWorkflow:
    request = DrainRequest(instance_id, cluster, r.trigger or "", deadline_epoch=deadline, replace=replace)
    return StartWorkflow(execution_name("drain", instance_id, discriminator), request)


def _scheduled_change(r: Route, event: ScheduledChange, rt: Runtime, instance_id: InstanceId) -> Outcome:
    one = Route(r.kind, r.reason, trigger=r.trigger, ec2_instance_id=instance_id)
    found = _managed_instance(rt, instance_id)
    if found is None:
        return decision(one, "ignored", "not a container instance of a managed cluster", instance_id)
    cluster, _ = found
    policy = rt.config.scheduled_change_policy
    if policy is ScheduledChangePolicy.REPORT:
        logger.info("scheduled change reported only", extra={"instance": instance_id, "event": event.event_arn})
        return decision(one, "reported", f"{r.reason}: configured to report only", instance_id)
    now = rt.now().timestamp()
    start = event.start_time.timestamp() if event.start_time else None
    # A change already under way gives no deadline to honour: the configured drain deadline applies.
    deadline = start if start is not None and start > now else None
    start_workflow = _start(cluster, one, instance_id, deadline, policy is ScheduledChangePolicy.REPLACE,
                            f"{r.trigger}:{event.event_arn}:{start or ''}")
    lead = rt.config.scheduled_change_lead_s
    due = start - lead if start is not None and lead is not None else now
    if due > now + rt.config.reconcile_period_min * 60:
        payload: dict[str, str | float] = {**start_workflow.request.as_payload(),
                                           "executionName": start_workflow.execution_name}
        rt.schedule.put(ScheduledDrain(instance_id, due, payload))
        return decision(one, "scheduled", f"{r.reason}: drain due {due - now:.0f}s from now "
                        f"({lead}s before the change)", instance_id)
    return claim_and_start(one, rt, start_workflow)


def _state_change(r: Route, event: InstanceStateChanged, rt: Runtime) -> Outcome:
    instance_id = event.ec2_instance_id
    found = _managed_instance(rt, instance_id)
    if found is None:
        return decision(r, "ignored", f"{instance_id} is not a container instance of a managed cluster", instance_id)
    cluster, instance = found
    if rt.config.state_change_policy is SpotPolicy.REPORT:
        logger.info("EC2 state change reported only", extra={"instance": instance_id, "state": event.state})
        return decision(r, "reported", f"{r.reason}: configured to report only", instance_id)
    if instance.status != "ACTIVE" and rt.claims.workflow(KIND, instance_id) is None:
        return decision(r, "ignored", f"container instance {instance.status} and no drain owns it: "
                        "a drain already ran there", instance_id)
    deadline = event.time.timestamp() + rt.config.state_change_deadline_s
    return claim_and_start(r, rt, _start(cluster, r, instance_id, deadline, False, f"{r.trigger}:{event.event_id}"))


def start_due_drains(rt: Runtime) -> int:
    """Start the scheduled drains now due (the reconciler calls this once per run); returns how many."""
    store = rt.schedule
    try:
        due = store.due(rt.now().timestamp())
    except AwsError as exc:
        # The audit below must still run; the next run looks again (the drains wait in the table).
        logger.warning("could not read the scheduled drains", extra={"error": str(exc)})
        return 0
    started = 0
    for drain in due:
        payload = dict(drain.payload)
        name = str(payload.pop("executionName", execution_name("drain", drain.instance_id, "scheduled")))
        try:
            request = DrainRequest.from_payload(payload)
            if request.instance_id != drain.instance_id:
                raise ValueError(f"drain payload names {request.instance_id}, its item {drain.instance_id}")
        except ValueError as bad:
            # Only the intake writes this table, with validated requests: anything else is not ours to act on.
            logger.warning("scheduled drain skipped", extra={"instance": drain.instance_id, "reason": str(bad)})
            continue
        route = Route("drain", "scheduled change due", request.cluster, trigger="scheduled-change",
                      ec2_instance_id=request.instance_id)
        result = claim_and_start(route, rt, StartWorkflow(name, request))
        logger.info("scheduled drain due", extra={"instance": drain.instance_id, "decision": result.decision})
        started += result.decision == "started"
        store.remove(drain.instance_id)
    return started
