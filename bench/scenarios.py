"""Named scenarios: realistic clusters and the stories run on them.

The default cluster carries three daemons in three drain tiers (an X-Ray-like app agent, a
CloudWatch-agent-like metrics daemon, a Fluent Bit-like log router) and a dozen or more replica
services of mixed sizes whose desired counts exceed capacity (the replica backlog under which
daemons lose races in ECS).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from daemon_guard.core.placement import tier_constraint

from sim.autoscaling import InstanceType
from sim.world import World

DAEMONS: tuple[tuple[str, int, int, list[dict[str, object]], str], ...] = (
    # name, cpu, memory, port mappings, drain tier
    ("xray-daemon", 32, 256, [{"containerPort": 2000, "hostPort": 2000, "protocol": "udp"}], "app-agents"),
    ("cwagent", 128, 256, [{"containerPort": 25888, "hostPort": 25888, "protocol": "udp"}], "metrics"),
    ("fluent-bit", 128, 512, [{"containerPort": 24224, "hostPort": 24224, "protocol": "tcp"}], "log-router"),
)
TIERS = ({"name": "app-agents", "services": ["xray-daemon"]}, {"name": "metrics", "services": ["cwagent"]},
         {"name": "log-router", "services": ["fluent-bit"]})


@dataclass(frozen=True)
class ClusterSpec:
    """The shape of a simulated cluster."""

    name: str = "prod"
    asg: str = "prod-asg"
    replica_services: int = 20
    desired_per_service: int = 8
    gate_attribute: str | None = None
    instance_type: InstanceType = field(default_factory=InstanceType)
    min_healthy_percent: int = 50
    spot: bool = False
    daemon_tags: dict[str, str] = field(default_factory=dict)
    tier_constraints: bool = False
    daemon_affinity: bool = False


def build_cluster(world: World, spec: ClusterSpec) -> None:
    """Create the cluster, its daemons, its replica services and its (empty) Auto Scaling group."""
    ecs = world.ecs
    ecs.create_cluster(spec.name)
    for name, cpu, memory, ports, tier in DAEMONS:
        td = ecs.register_task_definition(name, [{"name": name, "cpu": cpu, "memory": memory,
                                                  "portMappings": ports}], network_mode="bridge",
                                          stop_timeout_s=10)
        fence = [tier_constraint(tier, spec.gate_attribute)["expression"]] \
            if spec.tier_constraints and spec.gate_attribute else []
        ecs.create_service(spec.name, name, td, daemon=True, tags={"daemon-guard:drain-tier": tier},
                           constraints=fence)
    rng = world.ecs.rng
    gate = [f"attribute:{spec.gate_attribute} == open"] if spec.gate_attribute else []
    if spec.daemon_affinity:
        # The native alternative AWS documents: one memberOf(task:group == service:<daemon>) per daemon.
        gate += [f"task:group == service:{name}" for name, *_ in DAEMONS]
    for i in range(spec.replica_services):
        cpu = rng.choice((256, 512, 512, 1024))
        memory = rng.choice((512, 1024, 1024, 2048))
        name = f"app-{i:02d}"
        td = ecs.register_task_definition(name, [{"name": "app", "cpu": cpu, "memory": memory,
                                                  "portMappings": [{"containerPort": 8080, "hostPort": 0}]}],
                                          network_mode="bridge", stop_timeout_s=30)
        ecs.create_service(spec.name, name, td, desired_count=spec.desired_per_service,
                           minimum_healthy_percent=spec.min_healthy_percent, maximum_percent=200,
                           constraints=gate)
    world.asg.create_group(spec.asg, spec.name, spec.instance_type, spot=spec.spot)


@dataclass(frozen=True)
class ScaleOut:
    """Launch `launches` instances `spacing_s` apart under a replica backlog, then watch for `tail_s`.

    The backlog is what service auto scaling keeps while capacity catches up: every
    `demand_period_s` each replica service's desired count is set `backlog_per_service` above the
    tasks it runs, so pending replicas always wait for room and services stay above their
    minimumHealthyPercent.
    """

    launches: int = 1000
    spacing_s: float = 2.0
    tail_s: float = 120.0
    backlog_per_service: int = 8
    demand_period_s: float = 5.0
    warm_instances: int = 60
    warmup_s: float = 240.0

    @property
    def measured_from(self) -> float:
        """Launches are measured from here on (the warm cluster is in place and busy)."""
        return self.warmup_s

    @property
    def horizon(self) -> float:
        """When the run ends."""
        return self.warmup_s + self.launches * self.spacing_s + 60.0 + self.tail_s


def keep_backlog(world: World, cluster: str, backlog: int, period_s: float, until: float) -> None:
    """Hold each replica service's desired count `backlog` above its live tasks (service auto scaling)."""
    ecs = world.ecs

    def tick() -> None:
        for svc in ecs.services.values():
            if svc.cluster == cluster and svc.strategy == "REPLICA":
                svc.desired_count = ecs.active[(cluster, f"service:{svc.name}")] + backlog
        if world.clock.now + period_s <= until:
            world.clock.after(period_s, tick)

    tick()


def run_scale_out(world: World, spec: ClusterSpec, plan: ScaleOut) -> float:
    """Run a scale-out under a replica backlog; returns the horizon (simulated seconds)."""
    keep_backlog(world, spec.name, plan.backlog_per_service, plan.demand_period_s,
                 plan.warmup_s + plan.launches * plan.spacing_s + 60.0)
    world.asg.scale_out(spec.asg, plan.warm_instances, 1.0)
    world.clock.run_until(plan.warmup_s)
    world.asg.scale_out(spec.asg, plan.launches, plan.spacing_s)
    world.clock.run_until(plan.horizon)
    return plan.horizon


@dataclass(frozen=True)
class DrainStory:
    """A day of terminations on a busy cluster: a scale-in of 100 at once, an instance refresh,
    another scale-in, Spot interruptions, with standalone batch jobs running throughout."""

    on_demand: int = 270
    spot: int = 40
    first_scale_in: int = 100
    second_scale_in: int = 100
    spot_interruptions: int = 30
    refresh: bool = True
    standalone_jobs: int = 40
    replica_services: int = 12
    utilization: float = 0.45
    horizon_s: float = 4000.0


def build_drain_cluster(world: World, story: DrainStory, name: str = "prod", gate_attribute: str | None = None,
                        tier_constraints: bool = False) -> tuple[str, str]:
    """A cluster sized so the survivors can hold the replicas; returns the two group names.

    With `gate_attribute` the replica services carry the gate constraint, and with `tier_constraints`
    each daemon service carries its tier's constraint (the drain orders ``apps-first`` and ``tiers``).
    """
    spec = ClusterSpec(name=name, asg=f"{name}-asg", replica_services=story.replica_services, desired_per_service=0,
                       gate_attribute=gate_attribute, tier_constraints=tier_constraints)
    build_cluster(world, spec)
    world.asg.create_group(f"{name}-spot", name, spec.instance_type, spot=True)
    replicas = [s for s in world.ecs.services.values() if s.cluster == name and s.strategy == "REPLICA"]
    # Instances' worth of room each service may use, then tasks by its scarcer resource.
    share = (story.on_demand + story.spot) * story.utilization / len(replicas)
    for i, svc in enumerate(replicas):
        td = world.ecs.task_defs[svc.task_definition]
        per_task = max(td.cpu / spec.instance_type.cpu, td.memory / spec.instance_type.memory)
        svc.desired_count = max(2, int(share / per_task))
        svc.minimum_healthy_percent = 100 if i % 3 == 0 else 50
    return spec.asg, f"{name}-spot"


def run_drain_story(world: World, story: DrainStory, groups: tuple[str, str],
                    on_start: Callable[[str, str], None]) -> None:
    """Fill the cluster, then terminate instances every way Auto Scaling and EC2 do.

    `on_start(instance_id, how)` is called when each termination begins (for the measurements).
    """
    asg_name, spot_name = groups
    asg, clock, ecs = world.asg, world.clock, world.ecs
    asg.scale_out(asg_name, story.on_demand, 0.5)
    asg.scale_out(spot_name, story.spot, 0.5)
    cluster = asg.groups[asg_name].cluster
    job_td = ecs.register_task_definition("batch-job", [{"name": "job", "cpu": 256, "memory": 512}],
                                          stop_timeout_s=30)
    rng = world.ecs.rng
    # Where replica services carry the gate constraint, so do the batch jobs (RunTask placementConstraints).
    gated = next((c["expression"] for s in ecs.services.values() if s.cluster == cluster
                  for c in s.constraints if c["expression"].endswith(" == open")), None)
    job_fence = [{"type": "memberOf", "expression": gated}] if gated else []

    submit_batch_jobs(world, cluster, job_td, story.horizon_s, story.standalone_jobs, job_fence)
    clock.run_until(300.0)

    def scale_in(count: int) -> None:
        for iid in asg.scale_in(asg_name, count):
            on_start(iid, "scale-in")

    def scale_out(count: int) -> None:
        asg.scale_out(asg_name, count, 0.5)

    clock.at(400.0, lambda: scale_in(story.first_scale_in))
    clock.at(700.0, lambda: scale_out(story.first_scale_in))
    if story.refresh:
        clock.at(1000.0, lambda: _refresh(world, asg_name, on_start))
    clock.at(2600.0, lambda: scale_in(story.second_scale_in))
    victims = rng.sample(sorted(asg.groups[spot_name].instances), story.spot_interruptions)
    for i, iid in enumerate(victims):
        def interrupt(iid: str = iid) -> None:
            on_start(iid, "spot")
            asg.spot_interruption(iid)
        clock.at(1500.0 + i * 20.0, interrupt)
    clock.run_until(story.horizon_s)


def submit_batch_jobs(world: World, cluster: str, job_td: str, horizon_s: float, jobs: int,
                      constraints: list[dict[str, str]] | None = None) -> None:
    """A batch scheduler from 200 s on: a standalone job every horizon / jobs / 2 seconds until 600 s before
    the horizon, each exiting by itself 60 to 400 s after it was started."""
    ecs, clock, rng = world.ecs, world.clock, world.ecs.rng

    def submit_job() -> None:
        tasks, _ = ecs.run_task(cluster, job_td, 1, "batch-scheduler", "family:batch-job",
                                constraints=constraints or [])
        for task in tasks:
            clock.after(rng.uniform(60, 400), partial(ecs.stop_task, task, "Essential container in task exited",
                                                      "EssentialContainerExited"))
        if clock.now < horizon_s - 600:
            clock.after(horizon_s / jobs / 2, submit_job)

    clock.after(200.0, submit_job)


def _refresh(world: World, asg_name: str, on_start: Callable[[str, str], None]) -> None:
    group = world.asg.groups[asg_name]
    before = {i.instance_id for i in group.instances.values() if i.state == "InService"}
    world.asg.instance_refresh(asg_name, min_healthy_percentage=90)

    def watch() -> None:
        for inst in group.instances.values():
            if inst.instance_id in before and inst.drain_started_at is not None:
                before.discard(inst.instance_id)
                on_start(inst.instance_id, "refresh")
        if before:
            world.clock.after(1.0, watch)

    watch()
