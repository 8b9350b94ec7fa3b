"""The events the guard reacts to, as value types: one frozen dataclass per kind.

`handlers.parsing.parse_event` turns a raw EventBridge event into exactly one `GuardEvent`; nothing
past the edge ever reads raw JSON. Each kind holds only what the guard needs, and every identifier it
holds is a validated value type from `core.identifiers` (an `InstanceId` cannot be ``*`` or a query
fragment; an ECS ARN knows its partition, account and Region). Where the event came from
(`account`, `region`) lives once, in `Envelope`, which every well-formed kind extends.
Every kind except `Malformed` is keyword-only, so a call site reads like the event.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, TypeAlias

from daemon_guard.core.identifiers import (
    AsgName,
    ClusterArn,
    ContainerInstanceArn,
    EcsArn,
    HookName,
    InstanceId,
    LifecycleToken,
    ServiceArn,
    TaskArn,
)

LifecycleTransition = Literal["launch", "terminate"]
LifecycleLocation = Literal["EC2", "AutoScalingGroup", "WarmPool"]
SpotAction = Literal["terminate", "stop", "hibernate"]
Ec2State = Literal["pending", "running", "stopping", "stopped", "shutting-down", "terminated"]


@dataclass(frozen=True, kw_only=True)
class Envelope:
    """The account and region EventBridge stamped on the event; shared by every well-formed kind."""

    account: str
    region: str


@dataclass(frozen=True, kw_only=True)
class ContainerInstanceChanged(Envelope):
    """ECS Container Instance State Change: an instance registered, changed status or attributes.

    `version` increases with every change of the instance, so it orders and dedupes events.
    `attributes` maps attribute name to value (None for a bare capability such as
    ``com.amazonaws.ecs.capability.ecr-auth``). `registered_at` is None for events that predate
    the ``registeredAt`` field.
    """

    cluster_arn: ClusterArn
    container_instance_arn: ContainerInstanceArn
    ec2_instance_id: InstanceId
    status: str
    agent_connected: bool
    version: int
    registered_at: datetime | None
    # Excluded from the hash so the event stays hashable; equality still compares it.
    attributes: Mapping[str, str | None] = field(hash=False)
    event_id: str
    time: datetime


@dataclass(frozen=True, kw_only=True)
class TaskChanged(Envelope):
    """ECS Task State Change: a task moved towards or reached a status.

    `container_instance_arn` is None for Fargate tasks; `launch_type` is None when the event
    omits it (older events, capacity-provider tasks); `started_by` is None for tasks run without
    it; `version` increases with every change of the task.
    """

    cluster_arn: ClusterArn
    task_arn: TaskArn
    container_instance_arn: ContainerInstanceArn | None
    group: str
    last_status: str
    desired_status: str
    started_by: str | None
    launch_type: str | None
    stopped_reason: str | None
    version: int
    event_id: str
    time: datetime


@dataclass(frozen=True, kw_only=True)
class ServiceAction(Envelope):
    """ECS Service Action, e.g. ``SERVICE_TASK_PLACEMENT_FAILURE`` with reason ``RESOURCE:CPU``.

    `container_instance_arns` is de-duplicated (first occurrence kept) and every entry belongs to
    the event's cluster.
    """

    cluster_arn: ClusterArn
    service_arn: ServiceArn | None
    event_name: str
    reason: str | None
    event_id: str
    time: datetime
    container_instance_arns: tuple[ContainerInstanceArn, ...] = ()


@dataclass(frozen=True, kw_only=True)
class LifecycleAction(Envelope):
    """EC2 Instance-launch or Instance-terminate Lifecycle Action: a hook holds the instance.

    `origin` and `destination` say where the instance comes from and goes to; they differ from
    the plain EC2 <-> AutoScalingGroup pair only for warm pools. `token` is None only for an action
    the reconciler found waiting without its event (it is then completed by instance id).
    """

    transition: LifecycleTransition
    asg_name: AsgName
    ec2_instance_id: InstanceId
    hook_name: HookName
    token: LifecycleToken | None
    origin: LifecycleLocation
    destination: LifecycleLocation
    event_id: str
    time: datetime


@dataclass(frozen=True, kw_only=True)
class SpotInterruption(Envelope):
    """EC2 Spot Instance Interruption Warning: the instance goes away at `deadline`."""

    ec2_instance_id: InstanceId
    action: SpotAction
    deadline: datetime | None
    event_id: str
    time: datetime


@dataclass(frozen=True, kw_only=True)
class RebalanceRecommendation(Envelope):
    """EC2 Instance Rebalance Recommendation: the Spot instance is at elevated risk."""

    ec2_instance_id: InstanceId
    event_id: str
    time: datetime


@dataclass(frozen=True, kw_only=True)
class ScheduledChange(Envelope):
    """AWS Health Event for EC2, category scheduledChange: AWS will stop, reboot or retire instances.

    `start_time` is when the change begins (None when the event gives none); `status` is the
    Health ``statusCode`` (``upcoming``, ``open``, ``closed``; None in older events).
    """

    event_arn: str
    event_type_code: str
    ec2_instance_ids: tuple[InstanceId, ...]
    start_time: datetime | None
    status: str | None
    event_id: str
    time: datetime


@dataclass(frozen=True, kw_only=True)
class InstanceStateChanged(Envelope):
    """EC2 Instance State-change Notification: an instance entered `state`."""

    ec2_instance_id: InstanceId
    state: Ec2State
    event_id: str
    time: datetime


@dataclass(frozen=True, kw_only=True)
class TestNotification(Envelope):
    """``autoscaling:TEST_NOTIFICATION``, sent when a hook or notification is configured."""

    # Not a pytest test class, despite the name.
    __test__ = False

    asg_name: AsgName
    event_id: str


@dataclass(frozen=True, kw_only=True)
class Ignored(Envelope):
    """A well-formed event of a kind the guard does not act on, e.g. ECS Deployment State Change."""

    reason: str
    detail_type: str
    event_id: str


@dataclass(frozen=True)
class Malformed:
    """An event the guard cannot trust; `reason` is one line naming the field at fault."""

    reason: str


GuardEvent: TypeAlias = (
    ContainerInstanceChanged
    | TaskChanged
    | ServiceAction
    | LifecycleAction
    | SpotInterruption
    | RebalanceRecommendation
    | ScheduledChange
    | InstanceStateChanged
    | TestNotification
    | Ignored
    | Malformed
)


def arns_of(event: GuardEvent) -> tuple[EcsArn, ...]:
    """Every ECS ARN an event names (cluster, instances, task, service): what the foreign checks compare."""
    match event:
        case ContainerInstanceChanged():
            return (event.cluster_arn, event.container_instance_arn)
        case TaskChanged():
            instance = (event.container_instance_arn,) if event.container_instance_arn else ()
            return (event.cluster_arn, event.task_arn, *instance)
        case ServiceAction():
            service = (event.service_arn,) if event.service_arn else ()
            return (event.cluster_arn, *service, *event.container_instance_arns)
        case _:
            return ()
