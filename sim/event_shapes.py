"""Builders of EventBridge events in the exact JSON shapes of AWS's samples (../shared/events).

Every builder takes plain values (strings, numbers, datetimes), never simulator objects, and
returns a fresh JSON-ready dict with the EventBridge envelope: `version`, `id` (a UUID drawn from
the `rng` passed in, so the same seed gives the same ids), `detail-type`, `source`, `account`,
`time` (`%Y-%m-%dT%H:%M:%SZ`), `region`, `resources` and `detail`. Timestamps inside an ECS
`detail` use ECS's own format, milliseconds and a `Z` (`2016-12-06T16:41:06.991Z`). Optional
fields (timestamps not yet reached, a stop reason, notification metadata) are absent, not null,
when not set, as in real events.

Container-instance events also carry the fields current events have and the 2023 sample predates:
`registeredAt`, `runningTasksCount`, `pendingTasksCount`, `agentUpdateStatus`.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any, Literal

Event = dict[str, Any]

DEFAULT_ACCOUNT = "111122223333"
DEFAULT_REGION = "us-east-1"

ECS_SOURCE = "aws.ecs"
AUTOSCALING_SOURCE = "aws.autoscaling"
EC2_SOURCE = "aws.ec2"

CONTAINER_INSTANCE_STATE_CHANGE = "ECS Container Instance State Change"
TASK_STATE_CHANGE = "ECS Task State Change"
SERVICE_ACTION = "ECS Service Action"
LAUNCH_LIFECYCLE_ACTION = "EC2 Instance-launch Lifecycle Action"
TERMINATE_LIFECYCLE_ACTION = "EC2 Instance-terminate Lifecycle Action"
SPOT_INTERRUPTION_WARNING = "EC2 Spot Instance Interruption Warning"
REBALANCE_RECOMMENDATION = "EC2 Instance Rebalance Recommendation"

LifecycleTransition = Literal["launch", "terminate"]

_TRANSITIONS: dict[str, tuple[str, str, str, str]] = {
    # transition: (detail-type, LifecycleTransition, default Origin, default Destination)
    "launch": (LAUNCH_LIFECYCLE_ACTION, "autoscaling:EC2_INSTANCE_LAUNCHING", "EC2", "AutoScalingGroup"),
    "terminate": (
        TERMINATE_LIFECYCLE_ACTION,
        "autoscaling:EC2_INSTANCE_TERMINATING",
        "AutoScalingGroup",
        "EC2",
    ),
}


# --------------------------------------------------------------------------------------------------
# Formats and small value types
# --------------------------------------------------------------------------------------------------


def event_time(when: datetime) -> str:
    """The envelope's `time`: `YYYY-MM-DDTHH:MM:SSZ` in UTC."""
    return _utc(when).strftime("%Y-%m-%dT%H:%M:%SZ")


def ecs_timestamp(when: datetime) -> str:
    """An ECS detail timestamp: `YYYY-MM-DDTHH:MM:SS.mmmZ` in UTC."""
    utc = _utc(when)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _utc(when: datetime) -> datetime:
    if when.tzinfo is None:
        return when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


def new_id(rng: random.Random) -> str:
    """A version-4 UUID string drawn from `rng` (deterministic under a seed)."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def instance_arn(instance_id: str, *, account: str = DEFAULT_ACCOUNT, region: str = DEFAULT_REGION) -> str:
    """The EC2 instance ARN as aws.ec2 events list it in `resources`."""
    return f"arn:aws:ec2:{region}:{account}:instance/{instance_id}"


@dataclass(frozen=True)
class Resources:
    """A container instance's CPU units, MiB of memory and reserved TCP/UDP ports."""

    cpu: int
    memory: int
    ports: tuple[str, ...] = ("22", "2375", "2376", "51678", "51679")
    ports_udp: tuple[str, ...] = ()

    def to_json(self) -> list[dict[str, Any]]:
        """The `registeredResources`/`remainingResources` list shape."""
        return [
            {"name": "CPU", "type": "INTEGER", "integerValue": self.cpu},
            {"name": "MEMORY", "type": "INTEGER", "integerValue": self.memory},
            {"name": "PORTS", "type": "STRINGSET", "stringSetValue": list(self.ports)},
            {"name": "PORTS_UDP", "type": "STRINGSET", "stringSetValue": list(self.ports_udp)},
        ]


@dataclass(frozen=True)
class TaskContainer:
    """One container of a task as a task state change reports it."""

    name: str
    container_arn: str
    last_status: str
    exit_code: int | None = None
    reason: str | None = None


def _envelope(
    *,
    rng: random.Random,
    detail_type: str,
    source: str,
    account: str,
    region: str,
    time: datetime,
    resources: Sequence[str],
    detail: dict[str, Any],
) -> Event:
    return {
        "version": "0",
        "id": new_id(rng),
        "detail-type": detail_type,
        "source": source,
        "account": account,
        "time": event_time(time),
        "region": region,
        "resources": list(resources),
        "detail": detail,
    }


def _set(detail: dict[str, Any], key: str, value: Any) -> None:
    """Add an optional field only when it has a value."""
    if value is not None:
        detail[key] = ecs_timestamp(value) if isinstance(value, datetime) else value


# --------------------------------------------------------------------------------------------------
# aws.ecs
# --------------------------------------------------------------------------------------------------


def container_instance_state_change(
    *,
    rng: random.Random,
    time: datetime,
    cluster_arn: str,
    container_instance_arn: str,
    ec2_instance_id: str,
    registered: Resources,
    remaining: Resources,
    status: str = "ACTIVE",
    agent_connected: bool = True,
    attributes: Mapping[str, str | None] | None = None,
    version: int = 1,
    registered_at: datetime | None = None,
    updated_at: datetime | None = None,
    running_tasks_count: int = 0,
    pending_tasks_count: int = 0,
    agent_update_status: str = "UPDATED",
    agent_version: str = "1.82.0",
    agent_hash: str = "b4a6b1e2",
    docker_version: str = "DockerVersion: 25.0.3",
    account: str = DEFAULT_ACCOUNT,
    region: str = DEFAULT_REGION,
) -> Event:
    """An `ECS Container Instance State Change` event.

    `attributes` maps names to values (None for a name-only capability attribute); `version` is
    the container instance's version, which ECS bumps on every change. `registered_at` and
    `updated_at` default to `time`.
    """
    detail: dict[str, Any] = {
        "agentConnected": agent_connected,
        "attributes": [
            {"name": name} if value is None else {"name": name, "value": value}
            for name, value in (attributes or {}).items()
        ],
        "clusterArn": cluster_arn,
        "containerInstanceArn": container_instance_arn,
        "ec2InstanceId": ec2_instance_id,
        "registeredResources": registered.to_json(),
        "remainingResources": remaining.to_json(),
        "status": status,
        "version": version,
        "versionInfo": {
            "agentHash": agent_hash,
            "agentVersion": agent_version,
            "dockerVersion": docker_version,
        },
        "updatedAt": ecs_timestamp(updated_at or time),
        "registeredAt": ecs_timestamp(registered_at or time),
        "runningTasksCount": running_tasks_count,
        "pendingTasksCount": pending_tasks_count,
        "agentUpdateStatus": agent_update_status,
    }
    return _envelope(
        rng=rng,
        detail_type=CONTAINER_INSTANCE_STATE_CHANGE,
        source=ECS_SOURCE,
        account=account,
        region=region,
        time=time,
        resources=[container_instance_arn],
        detail=detail,
    )


def task_state_change(
    *,
    rng: random.Random,
    time: datetime,
    cluster_arn: str,
    task_arn: str,
    task_definition_arn: str,
    container_instance_arn: str,
    containers: Sequence[TaskContainer],
    last_status: str,
    desired_status: str,
    group: str,
    started_by: str,
    version: int,
    created_at: datetime,
    updated_at: datetime | None = None,
    pull_started_at: datetime | None = None,
    pull_stopped_at: datetime | None = None,
    started_at: datetime | None = None,
    stopping_at: datetime | None = None,
    execution_stopped_at: datetime | None = None,
    stopped_at: datetime | None = None,
    stopped_reason: str | None = None,
    stop_code: str | None = None,
    launch_type: str | None = None,
    account: str = DEFAULT_ACCOUNT,
    region: str = DEFAULT_REGION,
) -> Event:
    """An `ECS Task State Change` event for a task on an EC2 container instance.

    `group` is `service:<name>` or `family:<name>`; `started_by` is `ecs-svc/<id>` for service
    tasks. Timestamps, `stoppedReason`, `stopCode` (e.g. `ServiceSchedulerInitiated`,
    `TaskFailedToStart`, `EssentialContainerExited`) and `launchType` appear only when given.
    `updated_at` defaults to `time`.
    """
    rendered_containers: list[dict[str, Any]] = []
    for c in containers:
        container: dict[str, Any] = {"containerArn": c.container_arn}
        _set(container, "exitCode", c.exit_code)
        container["lastStatus"] = c.last_status
        container["name"] = c.name
        _set(container, "reason", c.reason)
        container["taskArn"] = task_arn
        rendered_containers.append(container)
    detail: dict[str, Any] = {
        "clusterArn": cluster_arn,
        "containerInstanceArn": container_instance_arn,
        "containers": rendered_containers,
        "createdAt": ecs_timestamp(created_at),
        "desiredStatus": desired_status,
        "group": group,
    }
    _set(detail, "launchType", launch_type)
    detail["lastStatus"] = last_status
    detail["overrides"] = {"containerOverrides": [{"name": c.name} for c in containers]}
    _set(detail, "pullStartedAt", pull_started_at)
    _set(detail, "pullStoppedAt", pull_stopped_at)
    _set(detail, "startedAt", started_at)
    detail["startedBy"] = started_by
    _set(detail, "stoppingAt", stopping_at)
    _set(detail, "executionStoppedAt", execution_stopped_at)
    _set(detail, "stoppedAt", stopped_at)
    _set(detail, "stoppedReason", stopped_reason)
    _set(detail, "stopCode", stop_code)
    detail["updatedAt"] = ecs_timestamp(updated_at or time)
    detail["taskArn"] = task_arn
    detail["taskDefinitionArn"] = task_definition_arn
    detail["version"] = version
    return _envelope(
        rng=rng,
        detail_type=TASK_STATE_CHANGE,
        source=ECS_SOURCE,
        account=account,
        region=region,
        time=time,
        resources=[task_arn],
        detail=detail,
    )


def service_action(
    *,
    rng: random.Random,
    time: datetime,
    cluster_arn: str,
    service_arn: str,
    event_name: str,
    event_type: str = "INFO",
    created_at: datetime | None = None,
    reason: str | None = None,
    capacity_provider_arns: Sequence[str] | None = None,
    container_instance_arns: Sequence[str] | None = None,
    account: str = DEFAULT_ACCOUNT,
    region: str = DEFAULT_REGION,
) -> Event:
    """An `ECS Service Action` event.

    `event_type` is INFO, WARN or ERROR; `event_name` e.g. SERVICE_STEADY_STATE,
    SERVICE_TASK_START_IMPAIRED, CAPACITY_PROVIDER_STEADY_STATE or SERVICE_TASK_PLACEMENT_FAILURE
    (with `reason` such as `RESOURCE:CPU`, `RESOURCE:MEMORY`, `RESOURCE:PORTS`). The ARN lists and
    `reason` appear only when given. `created_at` defaults to `time`.
    """
    detail: dict[str, Any] = {
        "eventType": event_type,
        "eventName": event_name,
        "clusterArn": cluster_arn,
    }
    if capacity_provider_arns is not None:
        detail["capacityProviderArns"] = list(capacity_provider_arns)
    if container_instance_arns is not None:
        detail["containerInstanceArns"] = list(container_instance_arns)
    _set(detail, "reason", reason)
    detail["createdAt"] = ecs_timestamp(created_at or time)
    return _envelope(
        rng=rng,
        detail_type=SERVICE_ACTION,
        source=ECS_SOURCE,
        account=account,
        region=region,
        time=time,
        resources=[service_arn],
        detail=detail,
    )


# --------------------------------------------------------------------------------------------------
# aws.autoscaling
# --------------------------------------------------------------------------------------------------


def lifecycle_action(
    transition: LifecycleTransition,
    *,
    rng: random.Random,
    time: datetime,
    asg_name: str,
    asg_arn: str,
    hook_name: str,
    instance_id: str,
    token: str | None = None,
    notification_metadata: str | None = None,
    origin: str | None = None,
    destination: str | None = None,
    account: str = DEFAULT_ACCOUNT,
    region: str = DEFAULT_REGION,
) -> Event:
    """An `EC2 Instance-launch Lifecycle Action` or `EC2 Instance-terminate Lifecycle Action`.

    `token` (LifecycleActionToken) is drawn from `rng` when not given. `origin`/`destination`
    default to EC2 → AutoScalingGroup for a launch and AutoScalingGroup → EC2 for a terminate;
    pass `WarmPool` for warm-pool transitions. `NotificationMetadata` appears only when given.
    """
    detail_type, lifecycle_transition, default_origin, default_destination = _TRANSITIONS[transition]
    detail: dict[str, Any] = {
        "LifecycleActionToken": token if token is not None else new_id(rng),
        "AutoScalingGroupName": asg_name,
        "LifecycleHookName": hook_name,
        "EC2InstanceId": instance_id,
        "LifecycleTransition": lifecycle_transition,
    }
    _set(detail, "NotificationMetadata", notification_metadata)
    detail["Origin"] = origin or default_origin
    detail["Destination"] = destination or default_destination
    return _envelope(
        rng=rng,
        detail_type=detail_type,
        source=AUTOSCALING_SOURCE,
        account=account,
        region=region,
        time=time,
        resources=[asg_arn],
        detail=detail,
    )


# --------------------------------------------------------------------------------------------------
# aws.ec2
# --------------------------------------------------------------------------------------------------


def spot_interruption_warning(
    *,
    rng: random.Random,
    time: datetime,
    instance_id: str,
    instance_action: str = "terminate",
    account: str = DEFAULT_ACCOUNT,
    region: str = DEFAULT_REGION,
) -> Event:
    """An `EC2 Spot Instance Interruption Warning` (two minutes' notice); action terminate/stop/hibernate."""
    return _envelope(
        rng=rng,
        detail_type=SPOT_INTERRUPTION_WARNING,
        source=EC2_SOURCE,
        account=account,
        region=region,
        time=time,
        resources=[instance_arn(instance_id, account=account, region=region)],
        detail={"instance-id": instance_id, "instance-action": instance_action},
    )


def rebalance_recommendation(
    *,
    rng: random.Random,
    time: datetime,
    instance_id: str,
    account: str = DEFAULT_ACCOUNT,
    region: str = DEFAULT_REGION,
) -> Event:
    """An `EC2 Instance Rebalance Recommendation` for a Spot instance at elevated risk."""
    return _envelope(
        rng=rng,
        detail_type=REBALANCE_RECOMMENDATION,
        source=EC2_SOURCE,
        account=account,
        region=region,
        time=time,
        resources=[instance_arn(instance_id, account=account, region=region)],
        detail={"instance-id": instance_id},
    )


HEALTH_SOURCE = "aws.health"
AWS_HEALTH_EVENT = "AWS Health Event"
INSTANCE_STATE_CHANGE = "EC2 Instance State-change Notification"


def health_time(when: datetime) -> str:
    """AWS Health's time format: RFC 1123 in GMT (``Sat, 05 Jun 2016 15:10:09 GMT``)."""
    return format_datetime(_utc(when).replace(microsecond=0), usegmt=True)


def health_scheduled_change(
    *,
    rng: random.Random,
    time: datetime,
    instance_tags: Mapping[str, Mapping[str, str]],
    start_time: datetime,
    end_time: datetime | None = None,
    event_type_code: str = "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED",
    status_code: str = "upcoming",
    description: str = "A description of the event will be provided here",
    account: str = DEFAULT_ACCOUNT,
    region: str = DEFAULT_REGION,
) -> Event:
    """An `AWS Health Event` for EC2, category scheduledChange, affecting the instances of `instance_tags`.

    `instance_tags` maps each affected instance id to its tags (as Health reports them). Beyond
    the documented sample the event carries what current events add: ``statusCode``,
    ``eventRegion``, ``eventScopeCode``, ``lastUpdatedTime`` and, when given, ``endTime``.
    """
    detail: dict[str, Any] = {
        "eventArn": f"arn:aws:health:{region}::event/EC2/{event_type_code}/{event_type_code}_{new_id(rng)[:8]}",
        "service": "EC2",
        "eventTypeCode": event_type_code,
        "eventTypeCategory": "scheduledChange",
        "startTime": health_time(start_time),
        "eventDescription": [{"language": "en_US", "latestDescription": description}],
        "affectedEntities": [{"entityValue": iid, "tags": dict(tags)} for iid, tags in instance_tags.items()],
        "statusCode": status_code,
        "eventRegion": region,
        "eventScopeCode": "ACCOUNT_SPECIFIC",
        "lastUpdatedTime": health_time(time),
    }
    if end_time is not None:
        detail["endTime"] = health_time(end_time)
    return _envelope(rng=rng, detail_type=AWS_HEALTH_EVENT, source=HEALTH_SOURCE, account=account, region=region,
                     time=time, resources=list(instance_tags), detail=detail)


def instance_state_change(
    *,
    rng: random.Random,
    time: datetime,
    instance_id: str,
    state: str,
    account: str = DEFAULT_ACCOUNT,
    region: str = DEFAULT_REGION,
) -> Event:
    """An `EC2 Instance State-change Notification`: pending, running, stopping, stopped, shutting-down, terminated."""
    return _envelope(
        rng=rng,
        detail_type=INSTANCE_STATE_CHANGE,
        source=EC2_SOURCE,
        account=account,
        region=region,
        time=time,
        resources=[instance_arn(instance_id, account=account, region=region)],
        detail={"instance-id": instance_id, "state": state},
    )
