"""Named scenarios: realistic clusters and the stories run on them.

The default cluster carries three daemons in three drain tiers (an X-Ray-like app agent, a
CloudWatch-agent-like metrics daemon, a Fluent Bit-like log router) and a dozen or more replica
services of mixed sizes whose desired counts exceed capacity (the replica backlog under which
daemons lose races in ECS).
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
    instance_type: InstanceType = InstanceType()
    min_healthy_percent: int = 50
    spot: bool = False
    daemon_tags: dict[str, str] = field(default_factory=dict)


def build_cluster(world: World, spec: ClusterSpec) -> None:
    """Create the cluster, its daemons, its replica services and its (empty) Auto Scaling group."""
    ecs = world.ecs
    ecs.create_cluster(spec.name)
    for name, cpu, memory, ports, tier in DAEMONS:
        td = ecs.register_task_definition(name, [{"name": name, "cpu": cpu, "memory": memory,
                                                  "portMappings": ports}], network_mode="bridge",
                                          stop_timeout_s=10)
        ecs.create_service(spec.name, name, td, daemon=True, tags={"daemon-guard:drain-tier": tier})
    rng = world.ecs.rng
    gate = [f"attribute:{spec.gate_attribute} == open"] if spec.gate_attribute else []
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
