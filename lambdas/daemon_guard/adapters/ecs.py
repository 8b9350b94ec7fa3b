"""The ECS port (`EcsPort`) and its boto3 adapter (`EcsCluster`): reads mapped to core views, writes batched to
ECS's limits. Translates, never decides.

Limits honoured: DescribeContainerInstances and DescribeTasks 100 per call, DescribeServices 10,
UpdateContainerInstancesState 10, GetTaskProtection 10, PutAttributes 10, list pages of 100.
Task definitions are immutable, so they are cached for the life of the Lambda container; the list
of daemon services is cached for `service_ttl_s` (a new daemon service is seen within that time, and
the reconciler covers the gap).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from daemon_guard.adapters.errors import Throttled
from daemon_guard.core.fit import host_ports_of
from daemon_guard.core.identifiers import InstanceId
from daemon_guard.core.model import (
    HostPort,
    InstanceView,
    NetworkMode,
    PlacementConstraint,
    Protocol_,
    Resources,
    ServiceView,
    TaskDefinitionView,
    TaskView,
)
from daemon_guard.core.ranges import CONSERVATIVE, OutOfRange, check
from daemon_guard.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_ecs import ECSClient
    from mypy_boto3_ecs.literals import DesiredStatusType, SchedulingStrategyType
    from mypy_boto3_ecs.type_defs import PaginatorConfigTypeDef
else:
    ECSClient = Any
    DesiredStatusType = str
    SchedulingStrategyType = str
    PaginatorConfigTypeDef = dict

T = TypeVar("T")
PAGE: PaginatorConfigTypeDef = {"PageSize": 100}


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """Consecutive slices of at most `size` items."""
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _whole(value: object) -> bool:
    """True for a whole number written in ASCII digits ("256"; not "1 vCPU", not "²", which isdigit() accepts)."""
    text = str(value)
    return text.isascii() and text.isdigit() and len(text) <= 18


def _resources(entries: Iterable[Mapping[str, Any]]) -> Resources:
    cpu = memory = 0
    ports: set[HostPort] = set()
    for entry in entries:
        name = entry.get("name")
        if name == "CPU":
            cpu = int(entry.get("integerValue", 0))
        elif name == "MEMORY":
            memory = int(entry.get("integerValue", 0))
        elif name in ("PORTS", "PORTS_UDP"):
            proto: Protocol_ = "udp" if name == "PORTS_UDP" else "tcp"
            ports |= {HostPort(int(p), proto) for p in entry.get("stringSetValue", []) if _whole(p)}
    return Resources(cpu, memory, frozenset(ports))


def _constraints(raw: Iterable[Mapping[str, Any]]) -> tuple[PlacementConstraint, ...]:
    out = []
    for c in raw:
        if c.get("type") == "memberOf":
            out.append(PlacementConstraint("memberOf", str(c.get("expression", ""))))
        elif c.get("type") == "distinctInstance":
            out.append(PlacementConstraint("distinctInstance"))
    return tuple(out)


def instance_view(raw: Mapping[str, Any]) -> InstanceView:
    """DescribeContainerInstances entry to InstanceView."""
    registered_at = raw.get("registeredAt")
    return InstanceView(
        arn=raw["containerInstanceArn"], ec2_instance_id=raw.get("ec2InstanceId", ""),
        status=raw.get("status", ""), agent_connected=bool(raw.get("agentConnected", False)),
        registered=_resources(raw.get("registeredResources", [])),
        remaining=_resources(raw.get("remainingResources", [])),
        attributes={a["name"]: a.get("value") for a in raw.get("attributes", [])},
        registered_at=registered_at if isinstance(registered_at, datetime) else None,
        agent_version=raw.get("versionInfo", {}).get("agentVersion", ""),
        running_tasks_count=int(raw.get("runningTasksCount", 0)),
        pending_tasks_count=int(raw.get("pendingTasksCount", 0)), version=int(raw.get("version", 0)),
    )


def ranged(field: str, value: object, where: str) -> int | None:
    """`value` within the range ECS documents for `field` (`core.ranges`), else its conservative stand-in
    (None: the resource is left undescribed), with a warning naming the resource and the field."""
    try:
        return check(field, value)
    except OutOfRange as refused:
        fallback = CONSERVATIVE[field]
        logger.warning("value outside the range ECS documents: planned conservatively",
                       extra={"resource": where, "problem": str(refused), "plannedAs": fallback})
        return fallback


def _amount(field: str, value: object, where: str) -> int:
    """cpu or memory, 0 when absent or out of range (`ranged`)."""
    return 0 if value is None else ranged(field, value, where) or 0


def service_view(raw: Mapping[str, Any]) -> ServiceView | None:
    """DescribeServices entry to ServiceView; None for a replica service whose counts are out of range (the
    drain then stops none of its tasks itself: `replica_stops` leaves a service it cannot see)."""
    deployment = raw.get("deploymentConfiguration", {})
    daemon = raw.get("schedulingStrategy") == "DAEMON"
    where = str(raw.get("serviceArn", ""))
    counts = {k: ranged(k, raw.get(k, 0), where) for k in ("desiredCount", "runningCount", "pendingCount")}
    if not daemon and None in counts.values():
        return None
    return ServiceView(
        arn=raw["serviceArn"], name=raw["serviceName"], strategy="DAEMON" if daemon else "REPLICA",
        task_definition_arn=raw.get("taskDefinition", ""), desired_count=counts["desiredCount"] or 0,
        running_count=counts["runningCount"] or 0, pending_count=counts["pendingCount"] or 0,
        minimum_healthy_percent=ranged("minimumHealthyPercent",
                                       deployment.get("minimumHealthyPercent", 0 if daemon else 100), where) or 0,
        maximum_percent=ranged("maximumPercent", deployment.get("maximumPercent", 100 if daemon else 200),
                               where) or 0,
        constraints=_constraints(raw.get("placementConstraints", [])),
        tags={t["key"]: t.get("value", "") for t in raw.get("tags", [])}, status=raw.get("status", "ACTIVE"),
        launch_type=raw.get("launchType"),
        capacity_providers=tuple(str(p.get("capacityProvider", "")) for p in raw.get("capacityProviderStrategy", [])),
    )


def task_definition_view(raw: Mapping[str, Any], agent_stop_timeout_s: int = 30) -> TaskDefinitionView:
    """DescribeTaskDefinition's taskDefinition to TaskDefinitionView (numbers within `core.ranges`); a container
    without stopTimeout gets `agent_stop_timeout_s`, what the agent's ECS_CONTAINER_STOP_TIMEOUT gives it (30 s
    unless raised)."""
    mode: NetworkMode = raw.get("networkMode", "bridge")
    containers = raw.get("containerDefinitions", [])
    where = str(raw.get("taskDefinitionArn", ""))
    cpu = _amount("cpu", raw["cpu"], where) if raw.get("cpu") is not None else sum(
        _amount("cpu", c.get("cpu"), where) for c in containers)
    memory = _amount("memory", raw["memory"], where) if raw.get("memory") is not None else sum(
        _amount("memory", c.get("memory") or c.get("memoryReservation"), where) for c in containers)
    ports: set[HostPort] = set()
    for c in containers:
        ports |= host_ports_of(mode, c.get("portMappings", []))
    stop = max((ranged("stopTimeout", c.get("stopTimeout", agent_stop_timeout_s), where)
                or agent_stop_timeout_s for c in containers), default=agent_stop_timeout_s)
    return TaskDefinitionView(arn=raw["taskDefinitionArn"], family=raw.get("family", ""), network_mode=mode,
                              requirements=Resources(cpu, memory, frozenset(ports)),
                              constraints=_constraints(raw.get("placementConstraints", [])), stop_timeout_s=stop)


def task_view(raw: Mapping[str, Any], td: TaskDefinitionView) -> TaskView:
    """DescribeTasks entry to TaskView; what the task does not say (cpu, memory, ports) comes from its definition."""
    where = str(raw["taskArn"])
    cpu = _amount("cpu", raw["cpu"], where) if raw.get("cpu") is not None else td.requirements.cpu
    memory = _amount("memory", raw["memory"], where) if raw.get("memory") is not None else td.requirements.memory
    started, created = raw.get("startedAt"), raw.get("createdAt")
    return TaskView(
        arn=raw["taskArn"], group=raw.get("group", ""), task_definition_arn=raw["taskDefinitionArn"],
        last_status=raw.get("lastStatus", ""), desired_status=raw.get("desiredStatus", ""),
        container_instance_arn=raw.get("containerInstanceArn", ""),
        requirements=Resources(cpu, memory, td.requirements.ports), started_by=raw.get("startedBy", ""),
        started_at=started if isinstance(started, datetime) else None, stop_timeout_s=td.stop_timeout_s,
        created_at=created if isinstance(created, datetime) else None)


class EcsPort(Protocol):
    """What the services, workflows and executor ask of one cluster's ECS: reads as core views, and the writes
    the executor makes. `EcsCluster` serves it from the ECS API; replay serves it from a snapshot."""

    @property
    def known_task_definitions(self) -> Mapping[str, TaskDefinitionView]:
        """Task definitions read so far."""
        ...

    def instance_arns(self, status: str | None = None, query: str | None = None) -> list[str]:
        """Container instance ARNs, by status and cluster-query filter (INACTIVE ones only when asked for)."""
        ...

    def instances(self, arns: Sequence[str]) -> list[InstanceView]:
        """The container instances of `arns` that the cluster knows."""
        ...

    def instance(self, arn: str) -> InstanceView | None:
        """One container instance, or None if the cluster no longer knows it."""
        ...

    def instance_by_ec2_id(self, ec2_instance_id: InstanceId) -> InstanceView | None:
        """The container instance on an EC2 instance, if registered."""
        ...

    def instance_arn_by_ec2_id(self, ec2_instance_id: InstanceId) -> str | None:
        """The container instance ARN on an EC2 instance, or None."""
        ...

    def task_arns_on(self, instance_arn: str, desired: DesiredStatusType | None = None) -> list[str]:
        """Tasks on an instance by desired status (default: RUNNING and STOPPED)."""
        ...

    def service_task_arns(self, service: str) -> list[str]:
        """Tasks of a service whose desired status is RUNNING."""
        ...

    def tasks(self, arns: Sequence[str]) -> list[TaskView]:
        """The tasks of `arns`, STOPPED ones left out."""
        ...

    def task_definition(self, arn: str) -> TaskDefinitionView:
        """One task definition revision."""
        ...

    def services(self, names_or_arns: Sequence[str]) -> list[ServiceView]:
        """The services named (by name or ARN), tags included."""
        ...

    def daemon_services(self, refresh: bool = False) -> tuple[ServiceView, ...]:
        """Every ACTIVE DAEMON service of the cluster."""
        ...

    def service_arns(self, strategy: SchedulingStrategyType | None = None) -> list[str]:
        """Service ARNs, of one scheduling strategy or all."""
        ...

    def protected(self, task_arns: Sequence[str]) -> set[str]:
        """Tasks with scale-in protection enabled."""
        ...

    def stop_durations(self, task_arns: Sequence[str]) -> dict[str, float]:
        """Seconds from stoppingAt to stoppedAt, for the tasks that have STOPPED."""
        ...

    def stop_tasks(self, task_arns: Sequence[str], reason: str) -> None:
        """StopTask each task."""
        ...

    def put_attribute(self, instance_arn: str, name: str, value: str) -> None:
        """Set one attribute on one container instance."""
        ...

    def set_draining(self, instance_arns: Sequence[str]) -> list[str]:
        """Set instances DRAINING; returns those ECS reported as failures."""
        ...

class InstanceLookups(ABC):
    """The lookups of one container instance, written once for every `EcsPort` in terms of its two listings."""

    @abstractmethod
    def instance_arns(self, status: str | None = None, query: str | None = None) -> list[str]:
        """Container instance ARNs, by status and cluster-query filter."""

    @abstractmethod
    def instances(self, arns: Sequence[str]) -> list[InstanceView]:
        """The container instances of `arns` that the cluster knows."""

    def instance(self, arn: str) -> InstanceView | None:
        """One container instance, or None if the cluster no longer knows it."""
        found = self.instances([arn])
        return found[0] if found else None

    def instance_by_ec2_id(self, ec2_instance_id: InstanceId) -> InstanceView | None:
        """The container instance on an EC2 instance (via a cluster-query filter), if registered."""
        arn = self.instance_arn_by_ec2_id(ec2_instance_id)
        return self.instance(arn) if arn else None

    def instance_arn_by_ec2_id(self, ec2_instance_id: InstanceId) -> str | None:
        """The container instance ARN on an EC2 instance, or None.

        One filtered ListContainerInstances, whatever the cluster's size (no status filter lists every
        status but INACTIVE). The id is re-checked as an `InstanceId` (IdentifierError otherwise), so
        the query can only ever be ``ec2InstanceId == i-<hex>``: no wildcard, quote, space or operator
        from an event can widen it to another instance.
        """
        arns = self.instance_arns(query=f"ec2InstanceId == {InstanceId(ec2_instance_id)}")
        return arns[0] if arns else None


class EcsCluster(InstanceLookups):
    """One cluster's ECS API, as core views (the `EcsPort` over boto3)."""

    def __init__(self, client: ECSClient, cluster: str, clock: Callable[[], float],
                 service_ttl_s: float = 60.0, agent_stop_timeout_s: int = 30) -> None:
        self.client = client
        self.cluster = cluster
        self._clock = clock
        self._agent_stop_timeout_s = agent_stop_timeout_s
        self._service_ttl_s = service_ttl_s
        self._daemons: tuple[float, tuple[ServiceView, ...]] | None = None
        self._task_defs: dict[str, TaskDefinitionView] = {}

    # ---- reads ----------------------------------------------------------------------------------
    def instance_arns(self, status: str | None = None, query: str | None = None) -> list[str]:
        """ListContainerInstances (paginated), optionally by status and cluster-query filter."""
        kwargs: dict[str, Any] = {"cluster": self.cluster, "PaginationConfig": PAGE}
        if status:
            kwargs["status"] = status
        if query:
            kwargs["filter"] = query
        arns: list[str] = []
        for page in self.client.get_paginator("list_container_instances").paginate(**kwargs):
            arns.extend(page.get("containerInstanceArns", []))
        return arns

    def instances(self, arns: Sequence[str]) -> list[InstanceView]:
        """DescribeContainerInstances in batches of 100."""
        out: list[InstanceView] = []
        for batch in chunks(list(arns), 100):
            resp = self.client.describe_container_instances(cluster=self.cluster, containerInstances=list(batch))
            out.extend(instance_view(raw) for raw in resp.get("containerInstances", []))
        return out

    def task_arns_on(self, instance_arn: str, desired: DesiredStatusType | None = None) -> list[str]:
        """ListTasks on an instance by desired status; by default both RUNNING and STOPPED (stopping)."""
        arns: list[str] = []
        statuses: tuple[DesiredStatusType, ...] = (desired,) if desired else ("RUNNING", "STOPPED")
        for desired_status in statuses:
            paginator = self.client.get_paginator("list_tasks")
            for page in paginator.paginate(cluster=self.cluster, containerInstance=instance_arn,
                                           desiredStatus=desired_status, PaginationConfig=PAGE):
                arns.extend(page.get("taskArns", []))
        return arns

    def service_task_arns(self, service: str) -> list[str]:
        """ListTasks by serviceName (desired RUNNING), paginated."""
        arns: list[str] = []
        for page in self.client.get_paginator("list_tasks").paginate(
                cluster=self.cluster, serviceName=service, desiredStatus="RUNNING", PaginationConfig=PAGE):
            arns.extend(page.get("taskArns", []))
        return arns

    def tasks(self, arns: Sequence[str]) -> list[TaskView]:
        """DescribeTasks in batches of 100, STOPPED tasks left out."""
        out: list[TaskView] = []
        for batch in chunks(list(arns), 100):
            resp = self.client.describe_tasks(cluster=self.cluster, tasks=list(batch))
            for raw in resp.get("tasks", []):
                if raw.get("lastStatus") == "STOPPED":
                    continue
                out.append(task_view(raw, self.task_definition(raw["taskDefinitionArn"])))
        return out

    def task_definition(self, arn: str) -> TaskDefinitionView:
        """DescribeTaskDefinition, cached: a revision never changes."""
        cached = self._task_defs.get(arn)
        if cached is None:
            raw = self.client.describe_task_definition(taskDefinition=arn)["taskDefinition"]
            cached = self._task_defs[arn] = task_definition_view(raw, self._agent_stop_timeout_s)
        return cached

    @property
    def known_task_definitions(self) -> Mapping[str, TaskDefinitionView]:
        """Task definitions read so far (every daemon's is read with the daemon list)."""
        return self._task_defs

    def services(self, names_or_arns: Sequence[str]) -> list[ServiceView]:
        """DescribeServices (tags included) in batches of 10."""
        out: list[ServiceView] = []
        for batch in chunks(sorted(set(names_or_arns)), 10):
            resp = self.client.describe_services(cluster=self.cluster, services=list(batch), include=["TAGS"])
            out.extend(view for raw in resp.get("services", []) if (view := service_view(raw)) is not None)
        return out

    def daemon_services(self, refresh: bool = False) -> tuple[ServiceView, ...]:
        """Every ACTIVE DAEMON service of the cluster, cached for the service TTL.

        When ECS throttles the refresh of an expired cache, the list read before is kept (daemon services
        change by deployment, not by the minute, and the reconciler's `refresh=True` reads them anew):
        a drain racing a Spot notice must not stall on ListServices."""
        now = self._clock()
        if not refresh and self._daemons is not None and now - self._daemons[0] < self._service_ttl_s:
            return self._daemons[1]
        try:
            return self._read_daemon_services(now)
        except Throttled:
            if refresh or self._daemons is None:
                raise
            return self._daemons[1]

    def service_arns(self, strategy: SchedulingStrategyType | None = None) -> list[str]:
        """ListServices (paginated, 100 a page), of one scheduling strategy or all."""
        kwargs: dict[str, Any] = {"cluster": self.cluster, "PaginationConfig": PAGE}
        if strategy:
            kwargs["schedulingStrategy"] = strategy
        arns: list[str] = []
        for page in self.client.get_paginator("list_services").paginate(**kwargs):
            arns.extend(page.get("serviceArns", []))
        return arns

    def _read_daemon_services(self, now: float) -> tuple[ServiceView, ...]:
        daemons = tuple(s for s in self.services(self.service_arns("DAEMON")) if s.status == "ACTIVE")
        for svc in daemons:
            self.task_definition(svc.task_definition_arn)
        self._daemons = (now, daemons)
        return daemons

    def protected(self, task_arns: Sequence[str]) -> set[str]:
        """Tasks with scale-in protection enabled (GetTaskProtection, 10 per call)."""
        out: set[str] = set()
        for batch in chunks(list(task_arns), 10):
            resp = self.client.get_task_protection(cluster=self.cluster, tasks=list(batch))
            out |= {p["taskArn"] for p in resp.get("protectedTasks", []) if p.get("protectionEnabled")}
        return out

    # ---- writes ---------------------------------------------------------------------------------
    def stop_tasks(self, task_arns: Sequence[str], reason: str) -> None:
        """StopTask each task."""
        for arn in task_arns:
            self.client.stop_task(cluster=self.cluster, task=arn, reason=reason[:255])

    def put_attribute(self, instance_arn: str, name: str, value: str) -> None:
        """PutAttributes on one container instance."""
        self.client.put_attributes(cluster=self.cluster, attributes=[
            {"name": name, "value": value, "targetType": "container-instance", "targetId": instance_arn}])

    def set_service_constraints(self, service: str, constraints: Sequence[Mapping[str, str]]) -> None:
        """UpdateService with the service's whole list of placement constraints (ECS replaces the list; no
        new deployment starts). Only the operator CLI calls it: the functions are not granted it."""
        self.client.update_service(cluster=self.cluster, service=service,
                                   placementConstraints=[dict(c) for c in constraints])  # type: ignore[misc]

    def set_draining(self, instance_arns: Sequence[str]) -> list[str]:
        """UpdateContainerInstancesState DRAINING, 10 per call; returns ARNs ECS reported as failures."""
        failed: list[str] = []
        for batch in chunks(list(instance_arns), 10):
            resp = self.client.update_container_instances_state(
                cluster=self.cluster, containerInstances=list(batch), status="DRAINING")
            failed.extend(f.get("arn", "") for f in resp.get("failures", []))
        return failed

    def stop_durations(self, task_arns: Sequence[str]) -> dict[str, float]:
        """Seconds from stoppingAt to stoppedAt for those of `task_arns` that have STOPPED (DescribeTasks,
        100 per call)."""
        out: dict[str, float] = {}
        for batch in chunks(list(task_arns), 100):
            for raw in self.client.describe_tasks(cluster=self.cluster, tasks=list(batch)).get("tasks", []):
                stopping, stopped = raw.get("stoppingAt"), raw.get("stoppedAt")
                if isinstance(stopping, datetime) and isinstance(stopped, datetime):
                    out[raw["taskArn"]] = max(0.0, (stopped - stopping).total_seconds())
        return out
