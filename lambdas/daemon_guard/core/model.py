"""Core views of ECS state: what the planners read. Frozen, built by adapters (or the simulator)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Literal

Protocol_ = Literal["tcp", "udp"]
NetworkMode = Literal["bridge", "host", "awsvpc", "none"]
SchedulingStrategy = Literal["REPLICA", "DAEMON"]


@dataclass(frozen=True)
class HostPort:
    """One host port a task needs (or holds) on its instance."""

    port: int
    protocol: Protocol_ = "tcp"


@dataclass(frozen=True)
class Resources:
    """CPU units, memory MiB and host ports: what an instance offers or a task needs."""

    cpu: int = 0
    memory: int = 0
    ports: frozenset[HostPort] = frozenset()

    def __add__(self, other: Resources) -> Resources:
        return Resources(self.cpu + other.cpu, self.memory + other.memory, self.ports | other.ports)


@dataclass(frozen=True)
class PlacementConstraint:
    """An ECS placement constraint: `memberOf` with an expression, or `distinctInstance`."""

    type: Literal["memberOf", "distinctInstance"]
    expression: str = ""


@dataclass(frozen=True)
class TaskDefinitionView:
    """The parts of a task definition placement cares about."""

    arn: str
    family: str
    network_mode: NetworkMode
    requirements: Resources
    constraints: tuple[PlacementConstraint, ...] = ()
    stop_timeout_s: int = 30


@dataclass(frozen=True)
class ServiceView:
    """A service: its scheduling strategy, deployment limits, constraints and tags."""

    arn: str
    name: str
    strategy: SchedulingStrategy
    task_definition_arn: str
    desired_count: int = 0
    running_count: int = 0
    pending_count: int = 0
    minimum_healthy_percent: int = 100
    maximum_percent: int = 200
    constraints: tuple[PlacementConstraint, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)
    status: str = "ACTIVE"
    launch_type: str | None = None  # EC2, FARGATE, EXTERNAL; None when a capacity provider strategy decides
    capacity_providers: tuple[str, ...] = ()
    tasks_desired_running: int | None = None  # ListTasks by service, desired status RUNNING, where read (None: not)

    @property
    def group(self) -> str:
        """The task group ECS gives this service's tasks."""
        return f"service:{self.name}"


@dataclass(frozen=True)
class TaskView:
    """A task on an instance, as placement and drain see it."""

    arn: str
    group: str
    task_definition_arn: str
    last_status: str
    desired_status: str
    container_instance_arn: str
    requirements: Resources = Resources()
    started_by: str = ""
    protected: bool = False
    started_at: datetime | None = None
    stop_timeout_s: int = 30  # its task definition's longest container stopTimeout (ECS: SIGTERM, SIGKILL after)
    created_at: datetime | None = None  # when ECS placed it (DescribeTasks createdAt: it entered PENDING)

    @cached_property  # read for every task at every look of a drain: once per task, not once per look
    def service_name(self) -> str | None:
        """The owning service's name, or None for a standalone task."""
        return self.group.removeprefix("service:") if self.group.startswith("service:") else None

    @property
    def stopping(self) -> bool:
        """True once ECS has been told to stop the task."""
        return self.desired_status == "STOPPED"


@dataclass(frozen=True)
class InstanceView:
    """A container instance with what placement needs to judge it."""

    arn: str
    ec2_instance_id: str
    status: str
    agent_connected: bool
    registered: Resources
    remaining: Resources
    attributes: Mapping[str, str | None] = field(default_factory=dict)
    registered_at: datetime | None = None
    agent_version: str = ""
    running_tasks_count: int = 0
    pending_tasks_count: int = 0
    version: int = 0
