"""Small builders for simulator behaviour tests: a world, a cluster, daemons, replicas, instances."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import pytest

from sim.ecs import SimInstance, SimTask, profile_params
from sim.world import World, WorldOptions

SEED = 7
CLUSTER = "prod"
HORIZON_S = 600.0  # longer than any replica visibility delay the seeds below draw

_ec2_ids = itertools.count(1)

Port = tuple[int, str]  # (host port, protocol)


def new_world(seed: int = SEED, *, throttling: bool = True, profile: str = "as-reported") -> World:
    """A world with the calibrated timings under a behaviour profile (by default as users report ECS: no
    daemon reservation, daemons stopped once the last other task leaves RUNNING)."""
    return World(WorldOptions(seed=seed, ecs=profile_params(profile), throttling=throttling))


@pytest.fixture
def world() -> World:
    """A fresh world with one empty cluster named `CLUSTER`."""
    w = new_world()
    w.ecs.create_cluster(CLUSTER)
    return w


def containers(name: str, cpu: int, memory: int, ports: Iterable[Port] = ()) -> list[dict[str, Any]]:
    """One container holding fixed host ports (bridge mode)."""
    return [{"name": name, "cpu": cpu, "memory": memory,
             "portMappings": [{"containerPort": p, "hostPort": p, "protocol": proto} for p, proto in ports]}]


def add_daemon(world: World, name: str, *, cpu: int = 128, memory: int = 256, ports: Iterable[Port] = (),
               constraints: Iterable[str] = (), stop_timeout_s: int = 10, cluster: str = CLUSTER,
               tags: dict[str, str] | None = None) -> str:
    """A DAEMON service; returns its ARN."""
    td = world.ecs.register_task_definition(name, containers(name, cpu, memory, ports),
                                            stop_timeout_s=stop_timeout_s)
    return world.ecs.create_service(cluster, name, td, daemon=True, constraints=constraints, tags=tags)


def add_replicas(world: World, name: str, count: int, *, cpu: int = 256, memory: int = 512,
                 ports: Iterable[Port] = (), min_healthy: int = 100, max_percent: int = 200,
                 constraints: Iterable[str] = (), stop_timeout_s: int = 30, cluster: str = CLUSTER) -> str:
    """A REPLICA service; returns its ARN."""
    td = world.ecs.register_task_definition(name, containers(name, cpu, memory, ports),
                                            stop_timeout_s=stop_timeout_s)
    return world.ecs.create_service(cluster, name, td, desired_count=count, minimum_healthy_percent=min_healthy,
                                    maximum_percent=max_percent, constraints=constraints)


def add_task_definition(world: World, name: str, *, cpu: int = 128, memory: int = 128,
                        ports: Iterable[Port] = (), stop_timeout_s: int = 30) -> str:
    """A task definition for standalone tasks; returns its ARN."""
    return world.ecs.register_task_definition(name, containers(name, cpu, memory, ports),
                                              stop_timeout_s=stop_timeout_s)


def add_instance(world: World, *, cpu: int = 4096, memory: int = 8192, zone: str = "us-east-1a",
                 attributes: dict[str, str | None] | None = None, cluster: str = CLUSTER) -> SimInstance:
    """The ECS agent registers a new container instance now."""
    attrs: dict[str, str | None] = {"ecs.instance-type": "m5.xlarge", "ecs.availability-zone": zone,
                                    "ecs.os-type": "linux", **(attributes or {})}
    arn = world.ecs.register_instance(cluster, f"i-{next(_ec2_ids):017x}", cpu, memory, attrs)
    return world.ecs.instances[arn]


def tasks_of(world: World, group: str, instance: SimInstance | None = None, *,
             live: bool = True) -> list[SimTask]:
    """Tasks of a group (`service:NAME` or `family:NAME`), optionally on one instance."""
    return [t for t in world.ecs.tasks.values()
            if t.group == group and (instance is None or t.container_instance == instance.arn)
            and (t.live or not live)]


def running(world: World, group: str, instance: SimInstance | None = None) -> list[SimTask]:
    """Tasks of a group that are RUNNING with desired status RUNNING."""
    return [t for t in tasks_of(world, group, instance)
            if t.last_status == "RUNNING" and t.desired_status == "RUNNING"]


def advance_until(world: World, predicate: Callable[[], bool], *, step: float = 0.1,
                  limit: float = HORIZON_S) -> float:
    """Run simulated time in small steps until `predicate` holds; returns the simulated time."""
    end = world.clock.now + limit
    while not predicate():
        if world.clock.now >= end:
            raise AssertionError(f"condition not reached within {limit} simulated seconds")
        world.clock.advance(step)
    return world.clock.now


def capture(world: World, pattern: dict[str, Any], name: str = "capture") -> list[dict[str, Any]]:
    """Every event matching `pattern`, in delivery order (an EventBridge rule with a list target)."""
    got: list[dict[str, Any]] = []
    world.bus.add_rule(name, pattern, got.append)
    return got


def statuses(world: World, task_arn: str) -> list[tuple[float, str, str]]:
    """(time, lastStatus, desiredStatus) of every recorded transition of one task."""
    return [(tr.at, tr.last_status, tr.desired_status) for tr in world.ecs.transitions if tr.task_arn == task_arn]


def first_time(world: World, task_arn: str, last_status: str) -> float:
    """When the task first reached `last_status`."""
    return next(at for at, status, _ in statuses(world, task_arn) if status == last_status)


def arns(tasks: Sequence[SimTask]) -> set[str]:
    """The ARNs of some tasks."""
    return {t.arn for t in tasks}


class Busy:
    """A populated cluster: names of what `busy_world` built."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.instances: list[SimInstance] = []
        self.daemon_arn = ""
        self.api_arn = ""
        self.batch_td = ""


def busy_world(seed: int = SEED, *, throttling: bool = False) -> Busy:
    """Three instances (one gated open, one DRAINING), a daemon, replicas, standalone and stopped tasks.

    Returned right after the drain began, so tasks are PROVISIONING, PENDING, RUNNING, stopping
    and STOPPED at once; advance the clock to see the drain progress.
    """
    world = new_world(seed, throttling=throttling)
    busy = Busy(world)
    world.ecs.create_cluster(CLUSTER)
    world.ecs.create_cluster("other")
    busy.daemon_arn = add_daemon(world, "fluent-bit", ports=[(24224, "tcp")],
                                 tags={"daemon-guard:drain-tier": "log-router"})
    busy.api_arn = add_replicas(world, "api", 6, cpu=512, min_healthy=50)
    add_replicas(world, "worker", 2, constraints=["attribute:gate == open"])
    busy.instances = [add_instance(world, zone="us-east-1a", attributes={"gate": "open"}),
                      add_instance(world, zone="us-east-1b"), add_instance(world, zone="us-east-1c")]
    add_instance(world, cluster="other")
    world.clock.advance(HORIZON_S)
    busy.batch_td = add_task_definition(world, "batch")
    ecs = world.client("ecs")
    ecs.run_task(cluster=CLUSTER, taskDefinition=busy.batch_td, count=2, startedBy="nightly")
    world.clock.advance(30.0)
    (victim, *_) = running(world, "family:batch")
    ecs.stop_task(cluster=CLUSTER, task=victim.arn, reason="operator")
    world.clock.advance(30.0)
    ecs.update_container_instances_state(cluster=CLUSTER, containerInstances=[busy.instances[2].arn],
                                         status="DRAINING")
    world.clock.advance(1.0)
    return busy
