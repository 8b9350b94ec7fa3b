"""Small builders for integration tests: a simulated world, daemon-guard deployed into it, and readers.

Every test here runs the real intake, reconciler and durable workflows (unmodified) against the
simulator through boto3 and botocore; assertions read the simulator's own records, never what the
guard believed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from bench.suites import guard_config
from sim.deployment import GuardDeployment
from sim.ecs import SimTask
from sim.world import World

ECS_WRITES = ("StopTask", "PutAttributes", "DeleteAttributes", "UpdateContainerInstancesState", "RunTask",
              "StartTask")
ASG_WRITES = ("CompleteLifecycleAction", "RecordLifecycleActionHeartbeat")
LAMBDA_WRITES = ("Invoke", "SendDurableExecutionCallbackSuccess")

EVICTION_REASON = "daemon-guard: make room"

# A cluster and group of the same account that daemon-guard does not manage (see build_unmanaged).
UNMANAGED_CLUSTER = "shared"
UNMANAGED_GROUP = "shared-asg"

Deploy = Callable[..., GuardDeployment]


@pytest.fixture
def deploy() -> Iterator[Deploy]:
    """`deploy(world, config_doc, **kw)` wires daemon-guard into a world; every deployment is closed after."""
    made: list[GuardDeployment] = []

    def make(world: World, config_doc: dict[str, Any], **kwargs: Any) -> GuardDeployment:
        deployment = GuardDeployment(world, config_doc, **kwargs)
        made.append(deployment)
        return deployment

    yield make
    for deployment in made:
        deployment.close()  # a deployment a test closed itself is not handed out here


def config_for(groups: list[str], mode: str = "preempt", *, terminate_hook: bool = True,
               launch_hook: bool = False, **extra: Any) -> dict[str, Any]:
    """The daemon-guard document for cluster `prod` and `groups` (300 s heartbeat timeout)."""
    doc = guard_config(groups, mode, **extra)
    doc["clusters"] = [{"name": "prod", "autoScalingGroups": [
        {"name": g, "heartbeatTimeoutSeconds": 300, "terminateHook": terminate_hook, "launchHook": launch_hook}
        for g in groups]}]
    return doc


def build_unmanaged(world: World, instances: int = 2) -> None:
    """A cluster and group daemon-guard does not manage, beside the managed ones in the same account:
    a daemon and a replica service, and `instances` launched 1 s apart (their ECS and Auto Scaling events
    reach the bus as the managed cluster's do)."""
    ecs = world.ecs
    ecs.create_cluster(UNMANAGED_CLUSTER)
    agent = ecs.register_task_definition("shared-agent", [{"name": "agent", "cpu": 64, "memory": 128}])
    ecs.create_service(UNMANAGED_CLUSTER, "shared-agent", agent, daemon=True)
    app = ecs.register_task_definition("shared-app", [{"name": "app", "cpu": 256, "memory": 512}])
    ecs.create_service(UNMANAGED_CLUSTER, "shared-app", app, desired_count=2 * instances)
    world.asg.create_group(UNMANAGED_GROUP, UNMANAGED_CLUSTER)
    world.asg.scale_out(UNMANAGED_GROUP, instances, 1.0)


class WriteCounter:
    """Counts every AWS write call the simulated ECS, Auto Scaling and Lambda APIs received."""

    def __init__(self, world: World, deployment: GuardDeployment | None = None) -> None:
        self.world = world
        self.deployment = deployment

    def snapshot(self) -> Counter[str]:
        """Write calls received so far, by operation."""
        out: Counter[str] = Counter()
        for op in ECS_WRITES:
            out[op] = self.world.ecs_api.calls.get(op, 0)
        for op in ASG_WRITES:
            out[op] = self.world.asg.calls.get(op, 0)
        if self.deployment is not None:
            for op in LAMBDA_WRITES:
                out[op] = self.deployment.durable.calls.get(op, 0)
        return out


def evicted(world: World) -> list[SimTask]:
    """Tasks daemon-guard stopped to make room (its stop reasons start with `daemon-guard:`)."""
    return [t for t in world.ecs.tasks.values() if t.stopped_reason.startswith(EVICTION_REASON)]


def emitted(deployment: GuardDeployment, metric: str) -> float:
    """Sum of every value of one EMF metric the deployment printed."""
    return sum(deployment.records.metric_values(metric))


def tier_stop_windows(world: World, instance_arn: str, tiers: dict[str, int]) -> dict[int, tuple[float, float]]:
    """Per daemon tier on one instance: (first StopTask request, last STOPPED)."""
    requested: dict[int, float] = {}
    stopped: dict[int, float] = {}
    for tr in world.ecs.transitions:
        if tr.instance_arn != instance_arn or not tr.group.startswith("service:"):
            continue
        tier = tiers.get(tr.group.removeprefix("service:"))
        if tier is None:
            continue
        if tr.desired_status == "STOPPED":
            requested[tier] = min(requested.get(tier, tr.at), tr.at)
        if tr.last_status == "STOPPED":
            stopped[tier] = max(stopped.get(tier, tr.at), tr.at)
    return {t: (requested[t], stopped[t]) for t in requested if t in stopped}
