"""What every entry point needs, built once per Lambda container: config, clients, ports, clock, metrics.

`get_runtime()` builds it from the environment (DAEMON_GUARD_CONFIG, STATE_TABLE, DRAIN_FUNCTION,
LAUNCH_GATE_FUNCTION) with boto3; the simulator and tests install their own with `set_runtime()`,
pointing the same code at simulated clients and a simulated clock.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from daemon_guard.adapters.ecs import EcsCluster
from daemon_guard.adapters.state import StateStore
from daemon_guard.adapters.workflows import WorkflowStarter
from daemon_guard.core.config import Config, parse_config
from daemon_guard.core.identifiers import partition_of_region
from daemon_guard.core.metrics import CLUSTER_DIMENSION, NAMESPACE, MetricSpec

logger = Logger(service="daemon-guard")


class MetricsSink(Protocol):
    """Where metrics go: EMF on stdout in Lambda, a list in tests."""

    def emit(self, spec: MetricSpec, value: float, cluster: str, **dimensions: str) -> None:
        """Record one value of `spec` for `cluster` (plus the spec's extra dimensions)."""


class EmfSink:
    """Powertools single-metric EMF: each value with exactly its own dimensions."""

    def emit(self, spec: MetricSpec, value: float, cluster: str, **dimensions: str) -> None:
        """Print one EMF document for this value."""
        with single_metric(name=spec.name, unit=MetricUnit(spec.unit), value=value, namespace=NAMESPACE) as m:
            m.add_dimension(name=CLUSTER_DIMENSION, value=cluster)
            for name in spec.extra_dimensions:
                m.add_dimension(name=name, value=dimensions.get(name, "none"))


@dataclass
class Runtime:
    """Ports and settings shared by the handlers and workflows of one Lambda container."""

    config: Config
    ecs_client: Any
    autoscaling_client: Any
    lambda_client: Any | None = None
    events_client: Any | None = None  # EventBridge, for the guard's own events (none: publish nothing)
    state: StateStore | None = None
    metrics: MetricsSink = field(default_factory=EmfSink)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    drain_function: str | None = None
    launch_gate_function: str | None = None
    dry_run: bool = False
    account: str | None = None
    region: str | None = None
    partition: str | None = None
    clusters: dict[str, EcsCluster] = field(default_factory=dict)
    complete_instances: set[str] = field(default_factory=set)

    def cluster(self, name: str) -> EcsCluster:
        """The ECS port for a managed cluster (kept for the container's life: it caches)."""
        port = self.clusters.get(name)
        if port is None:
            port = self.clusters[name] = EcsCluster(self.ecs_client, name, lambda: self.clock().timestamp())
        return port

    def learn_home(self, invoked_function_arn: str) -> None:
        """Take the partition, account and region events must come from from the function's own ARN, once."""
        parts = invoked_function_arn.split(":")
        if self.account is None and len(parts) > 4 and parts[2] == "lambda" and parts[4]:
            self.partition, self.region, self.account = parts[1], parts[3], parts[4]

    @property
    def home_partition(self) -> str | None:
        """The deployment's partition: learnt, or else the one its region belongs to."""
        return self.partition or (partition_of_region(self.region) if self.region else None)

    def foreign(self, account: str, region: str, partition: str | None = None) -> str | None:
        """Why a resource of `partition`/`account`/`region` is not ours, or None when it is (or home is unknown).

        `partition` defaults to the one `region` belongs to; each part is compared only once known here.
        """
        home_partition = self.home_partition
        partition = partition or partition_of_region(region) or "(none)"
        if home_partition is not None and partition != home_partition:
            return f"partition {partition} is not this deployment's partition"
        if self.account is not None and account != self.account:
            return f"account {account} is not this deployment's account"
        if self.region is not None and region != self.region:
            return f"region {region} is not this deployment's region"
        return None

    def known_complete(self, instance_arn: str) -> bool:
        """Seen running every eligible daemon, here or (through the state table) by another container."""
        if instance_arn in self.complete_instances:
            return True
        if self.state is not None and self.state.is_complete(instance_arn):
            self.complete_instances.add(instance_arn)
            return True
        return False

    def remember_complete(self, instance_arn: str) -> None:
        """Note that the instance runs every eligible daemon."""
        if instance_arn not in self.complete_instances:
            self.complete_instances.add(instance_arn)
            if self.state is not None and not self.dry_run:
                self.state.mark_complete([instance_arn], self.now().timestamp())

    def forget_complete(self, instance_arn: str, *, certain: bool = False) -> None:
        """The instance may be missing a daemon (certain: a daemon stopped on it)."""
        known = instance_arn in self.complete_instances
        self.complete_instances.discard(instance_arn)
        if (known or certain) and self.state is not None and not self.dry_run:
            self.state.clear_complete(instance_arn)

    def now(self) -> datetime:
        """The current time (simulated in the proving ground)."""
        return self.clock()

    @property
    def workflows(self) -> WorkflowStarter | None:
        """The durable-execution port, when a Lambda client is configured."""
        return WorkflowStarter(self.lambda_client) if self.lambda_client is not None else None


_RUNTIME: Runtime | None = None


def set_runtime(runtime: Runtime | None) -> None:
    """Install the runtime the entry points use (the simulator and tests call this)."""
    global _RUNTIME  # noqa: PLW0603 - one runtime per Lambda container, by design
    _RUNTIME = runtime


def get_runtime() -> Runtime:
    """The installed runtime, or one built from the Lambda environment."""
    global _RUNTIME  # noqa: PLW0603
    if _RUNTIME is None:
        _RUNTIME = runtime_from_environment()
    return _RUNTIME


def runtime_from_environment() -> Runtime:
    """Build clients and ports from the Lambda environment (adaptive retries for ECS)."""
    import boto3
    from botocore.config import Config as BotoConfig

    started = time.monotonic()
    config = parse_config(json.loads(os.environ["DAEMON_GUARD_CONFIG"]))
    ecs = boto3.client("ecs", config=BotoConfig(retries={"mode": "adaptive", "max_attempts": 10}))
    autoscaling = boto3.client("autoscaling", config=BotoConfig(retries={"mode": "standard", "max_attempts": 5}))
    lambda_client = boto3.client("lambda", config=BotoConfig(retries={"mode": "standard", "max_attempts": 5}))
    events = boto3.client("events", config=BotoConfig(retries={"mode": "standard", "max_attempts": 3}))
    table = os.environ.get("STATE_TABLE")
    state = StateStore(boto3.client("dynamodb"), table) if table else None
    logger.debug("runtime built", extra={"ms": round((time.monotonic() - started) * 1000, 1)})
    return Runtime(config=config, ecs_client=ecs, autoscaling_client=autoscaling, lambda_client=lambda_client,
                   events_client=events, state=state, drain_function=os.environ.get("DRAIN_FUNCTION"),
                   launch_gate_function=os.environ.get("LAUNCH_GATE_FUNCTION"),
                   region=os.environ.get("AWS_REGION"))  # the partition follows from it; learn_home confirms
