"""Small builders shared by the unit specifications: core views with sensible defaults.

Every builder makes one value and names only what a test cares about; the rest is defaulted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from daemon_guard.core.config import Config, ManagedCluster, ManagedGroup
from daemon_guard.core.model import HostPort, InstanceView, Resources, ServiceView, TaskView

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "events"

REGION = "us-west-2"
ACCOUNT = "123456789012"
CLUSTER = "prod"
CLUSTER_ARN = f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{CLUSTER}"
INSTANCE_ID = "i-0123456789abcdef0"
INSTANCE_ARN = f"arn:aws:ecs:{REGION}:{ACCOUNT}:container-instance/{CLUSTER}/ci-1"
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def load_event(name: str) -> dict[str, Any]:
    """A real EventBridge sample from tests/fixtures/events."""
    loaded: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return loaded


def an_instance(
    status: str = "ACTIVE",
    *,
    agent_connected: bool = True,
    cpu_left: int = 2048,
    memory_left: int = 8192,
    ports_taken: frozenset[HostPort] = frozenset(),
    attributes: Mapping[str, str | None] | None = None,
    registered_at: datetime | None = T0,
    arn: str = INSTANCE_ARN,
    ec2_instance_id: str = INSTANCE_ID,
) -> InstanceView:
    """A container instance of 2048 CPU units and 8192 MiB with `cpu_left`/`memory_left` free."""
    return InstanceView(
        arn=arn,
        ec2_instance_id=ec2_instance_id,
        status=status,
        agent_connected=agent_connected,
        registered=Resources(2048, 8192),
        remaining=Resources(cpu_left, memory_left, ports_taken),
        attributes=attributes or {},
        registered_at=registered_at,
    )


def a_task(
    arn: str,
    service: str | None,
    *,
    last_status: str = "RUNNING",
    stopping: bool = False,
    cpu: int = 0,
    memory: int = 0,
    ports: frozenset[HostPort] = frozenset(),
    instance_arn: str = INSTANCE_ARN,
) -> TaskView:
    """A task on the instance; `service` None makes it standalone, `stopping` sets desired STOPPED."""
    return TaskView(
        arn=arn,
        group=f"service:{service}" if service else "family:batch",
        task_definition_arn=f"arn:td/{service or 'batch'}:1",
        last_status=last_status,
        desired_status="STOPPED" if stopping or last_status == "STOPPED" else "RUNNING",
        container_instance_arn=instance_arn,
        requirements=Resources(cpu, memory, ports),
    )


def a_replica_service(name: str, *, desired: int = 4, running: int = 4, min_healthy: int = 50,
                      max_percent: int = 200) -> ServiceView:
    """A REPLICA service with deployment limits."""
    return ServiceView(arn=f"arn:svc/{name}", name=name, strategy="REPLICA", task_definition_arn=f"arn:td/{name}:1",
                       desired_count=desired, running_count=running, minimum_healthy_percent=min_healthy,
                       maximum_percent=max_percent)


def a_daemon_service(name: str, tags: dict[str, str] | None = None) -> ServiceView:
    """A DAEMON service whose task definition is `arn:td/<name>:1`."""
    return ServiceView(arn=f"arn:svc/{name}", name=name, strategy="DAEMON", task_definition_arn=f"arn:td/{name}:1",
                       minimum_healthy_percent=0, maximum_percent=100, tags=tags or {})


def a_config(*, groups: tuple[ManagedGroup, ...] = (ManagedGroup("prod-asg"),), cluster: str = CLUSTER) -> Config:
    """One managed cluster fed by `groups`, every other setting at its default."""
    return Config(clusters=(ManagedCluster(cluster, groups),))
