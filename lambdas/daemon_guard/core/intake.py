"""Intake routing: which path an event takes, decided from the event and the configuration alone.

Routes:
- ``placement``: check one instance's daemons (new ACTIVE instance, a task landing or running on it,
  a daemon placement failure naming instances);
- ``wake``: a task reached STOPPED: wake the instance's waiting workflow, and re-check placement if
  the stopped task was a daemon on an ACTIVE instance;
- ``launch-gate``: a launch lifecycle action on a managed group (warm-pool entries complete at once);
- ``drain``: a terminate lifecycle action, a Spot interruption warning, a rebalance recommendation,
  an instance someone else set to DRAINING, an AWS Health EC2 scheduled change (each affected
  instance) or an EC2 instance entering ``stopping`` / ``shutting-down``;
- ``reconcile``: a daemon placement failure that names no instance: audit the cluster;
- ``ignore``: everything else, with a one-line reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from daemon_guard.core.config import LAUNCH_HOOK_NAME, TERMINATE_HOOK_NAME, Config, cluster_name_from_arn
from daemon_guard.core.events import (
    ContainerInstanceChanged,
    GuardEvent,
    Ignored,
    InstanceStateChanged,
    LifecycleAction,
    Malformed,
    RebalanceRecommendation,
    ScheduledChange,
    ServiceAction,
    SpotInterruption,
    TaskChanged,
    TestNotification,
)
from daemon_guard.core.identifiers import InstanceId

RouteKind = Literal["placement", "launch-gate", "drain", "wake", "reconcile", "ignore"]
DrainTrigger = Literal["lifecycle", "spot", "rebalance", "draining", "operator", "scheduled-change", "ec2-state"]
EXIT_TRIGGERS: tuple[DrainTrigger, ...] = ("scheduled-change", "ec2-state")
LEAVING_STATES = ("stopping", "shutting-down")
PLACEMENT_FAILURE = "SERVICE_TASK_PLACEMENT_FAILURE"
FARGATE_FAILURE = "RESOURCE:FARGATE"


@dataclass(frozen=True)
class Route:
    """Where an event goes, and the facts the path needs."""

    kind: RouteKind
    reason: str
    cluster: str | None = None
    instance_arns: tuple[str, ...] = ()
    ec2_instance_id: InstanceId | None = None
    trigger: DrainTrigger | None = None
    dedupe_key: str | None = None
    ec2_instance_ids: tuple[InstanceId, ...] = ()


def _ignore(reason: str) -> Route:
    return Route("ignore", reason)


def route(event: GuardEvent, config: Config) -> Route:
    """Route one parsed event."""
    if isinstance(event, Malformed):
        return _ignore(f"malformed: {event.reason}")
    if isinstance(event, TestNotification):
        return _ignore(f"autoscaling:TEST_NOTIFICATION for {event.asg_name}")
    if isinstance(event, Ignored):
        return _ignore(event.reason)
    if isinstance(event, ContainerInstanceChanged):
        return _route_instance(event, config)
    if isinstance(event, TaskChanged):
        return _route_task(event, config)
    if isinstance(event, ServiceAction):
        return _route_service_action(event, config)
    if isinstance(event, LifecycleAction):
        return _route_lifecycle(event, config)
    if isinstance(event, SpotInterruption):
        return Route("drain", f"Spot interruption warning ({event.action})", ec2_instance_id=event.ec2_instance_id,
                     trigger="spot")
    if isinstance(event, RebalanceRecommendation):
        return Route("drain", "rebalance recommendation", ec2_instance_id=event.ec2_instance_id,
                     trigger="rebalance")
    if isinstance(event, (ScheduledChange, InstanceStateChanged)):
        return _route_exit(event)
    return _ignore(f"unhandled event type {type(event).__name__}")


def _route_exit(event: ScheduledChange | InstanceStateChanged) -> Route:
    """Exits outside Auto Scaling: the handler keeps the instances of managed clusters."""
    if isinstance(event, InstanceStateChanged):
        if event.state not in LEAVING_STATES:
            return _ignore(f"EC2 instance {event.state}: only stopping and shutting-down take it away")
        return Route("drain", f"EC2 instance {event.state}", ec2_instance_id=event.ec2_instance_id,
                     trigger="ec2-state")
    if event.status == "closed":
        return _ignore(f"AWS Health {event.event_type_code} is closed (done or cancelled)")
    if not event.ec2_instance_ids:
        return _ignore(f"AWS Health {event.event_type_code} names no EC2 instance")
    return Route("drain", f"AWS Health {event.event_type_code}", ec2_instance_id=event.ec2_instance_ids[0],
                 trigger="scheduled-change", ec2_instance_ids=event.ec2_instance_ids)


def _route_instance(event: ContainerInstanceChanged, config: Config) -> Route:
    cluster = cluster_name_from_arn(event.cluster_arn)
    if not config.manages_cluster_arn(event.cluster_arn):
        return _ignore(f"cluster {cluster} is not managed")
    key = f"{event.container_instance_arn}#v{event.version}"
    if event.status == "ACTIVE" and event.agent_connected:
        return Route("placement", "container instance ACTIVE", cluster, (event.container_instance_arn,),
                     event.ec2_instance_id, dedupe_key=key)
    if event.status == "DRAINING":
        return Route("drain", "container instance set to DRAINING", cluster, (event.container_instance_arn,),
                     event.ec2_instance_id, trigger="draining", dedupe_key=key)
    state = event.status if event.agent_connected else f"{event.status} with its agent disconnected"
    return _ignore(f"container instance {state}")


def _route_task(event: TaskChanged, config: Config) -> Route:
    cluster = cluster_name_from_arn(event.cluster_arn)
    if not config.manages_cluster_arn(event.cluster_arn):
        return _ignore(f"cluster {cluster} is not managed")
    if not event.container_instance_arn:
        return _ignore("task is not on an EC2 container instance")
    where = (event.container_instance_arn,)
    if event.last_status == "STOPPED":
        return Route("wake", f"task {event.group} STOPPED", cluster, where)
    if event.desired_status == "STOPPED":
        return _ignore(f"task {event.group} stopping; acting once it has STOPPED")
    return Route("placement", f"task {event.group} {event.last_status}", cluster, where)


def _route_service_action(event: ServiceAction, config: Config) -> Route:
    cluster = cluster_name_from_arn(event.cluster_arn)
    if not config.manages_cluster_arn(event.cluster_arn):
        return _ignore(f"cluster {cluster} is not managed")
    if event.event_name != PLACEMENT_FAILURE:
        return _ignore(f"service action {event.event_name} needs nothing")
    service = (event.service_arn or "").rsplit("/", 1)[-1] or "unknown service"
    if (event.reason or "").startswith(FARGATE_FAILURE):
        # Daemon services run on EC2 only: a Fargate shortfall never concerns a daemon (no cluster audit).
        return _ignore(f"{service} could not get Fargate capacity ({event.reason}); no daemon runs on Fargate")
    reason = f"{service} could not be placed ({event.reason or 'no reason given'})"
    if event.container_instance_arns:
        return Route("placement", reason, cluster, event.container_instance_arns)
    return Route("reconcile", reason, cluster)


def _route_lifecycle(event: LifecycleAction, config: Config) -> Route:
    group = config.group(event.asg_name)
    if group is None:
        return _ignore(f"Auto Scaling group {event.asg_name} is not managed")
    cluster = config.cluster_of_group(event.asg_name)
    cluster_name = cluster.name if cluster else None
    if event.transition == "launch":
        if event.hook_name != LAUNCH_HOOK_NAME:
            return _ignore(f"launch hook {event.hook_name} is not daemon-guard's")
        reason = ("instance entering the warm pool: complete at once" if event.destination == "WarmPool"
                  else "launch lifecycle action")
        return Route("launch-gate", reason, cluster_name, ec2_instance_id=event.ec2_instance_id)
    if event.hook_name != TERMINATE_HOOK_NAME:
        return _ignore(f"terminate hook {event.hook_name} is not daemon-guard's")
    reason = ("instance returning to the warm pool" if event.destination == "WarmPool"
              else "terminate lifecycle action")
    return Route("drain", reason, cluster_name, ec2_instance_id=event.ec2_instance_id, trigger="lifecycle")
