"""A daemon rollout on a full cluster: a daemon service moved to a larger revision, coverage measured throughout.

The story: a warm cluster whose replica services keep a backlog (service auto scaling ahead of
capacity), so every instance is full. At `rollout_at` the log router's service is updated to a
revision that needs more CPU and memory. ECS rolls a daemon service out by stopping the old task
first (one task per instance; minimumHealthyPercent 0 for daemons by default), then placing the
new revision where it fits; on a full instance it no longer fits, and the backlog takes the room
the old task left. Measured every `sample_s` from the simulator's tasks: the share of ACTIVE
instances running the daemon (any revision), the share running the new revision, the seconds until
every instance runs the new revision for good, evictions, and evictions that took a service below
its minimumHealthyPercent.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from bench.scenarios import ClusterSpec, build_cluster, keep_backlog
from bench.suites import DEFAULT_PROFILE, GATE_ATTRIBUTE, BreachCounter, guard_config
from sim.deployment import GuardDeployment
from sim.ecs import profile_params
from sim.world import World, WorldOptions

ROLLOUT_STRATEGIES = ("ecs-native", "daemon-guard-observe", "daemon-guard-preempt", "daemon-guard-gate")


@dataclass(frozen=True)
class RolloutStory:
    """Sizes and times of the rollout story."""

    instances: int = 30
    replica_services: int = 12
    backlog_per_service: int = 6
    daemon: str = "fluent-bit"
    new_cpu: int = 512
    new_memory: int = 1024
    rollout_at: float = 420.0
    horizon_s: float = 1200.0
    sample_s: float = 5.0


@dataclass
class Sample:
    """Coverage at one instant."""

    at: float
    any_revision: float
    new_revision: float


def _coverage(world: World, cluster: str, group: str, new_td: str | None) -> tuple[float, float]:
    active = [i for i in world.ecs.instances.values() if i.cluster == cluster and i.status == "ACTIVE"]
    if not active:
        return 100.0, 100.0
    running = [t for t in world.ecs.tasks.values() if t.group == group and t.last_status == "RUNNING"
               and t.desired_status == "RUNNING"]
    any_rev = {t.container_instance for t in running}
    new_rev = {t.container_instance for t in running if new_td is None or t.task_definition == new_td}
    return (100.0 * sum(i.arn in any_rev for i in active) / len(active),
            100.0 * sum(i.arn in new_rev for i in active) / len(active))


def run_rollout(strategy: str, seed: int, story: RolloutStory) -> dict[str, Any]:
    """One strategy, one seed: the rollout story, measured."""
    world = World(WorldOptions(seed=seed, ecs=profile_params(DEFAULT_PROFILE)))
    mode = strategy.removeprefix("daemon-guard-") if strategy != "ecs-native" else None
    spec = ClusterSpec(replica_services=story.replica_services,
                       gate_attribute=GATE_ATTRIBUTE if mode == "gate" else None)
    build_cluster(world, spec)
    breaches = BreachCounter(world)
    world.ecs.listeners.append(breaches)
    deployment = GuardDeployment(world, guard_config([spec.asg], mode)) if mode else None
    group = f"service:{story.daemon}"
    svc = world.ecs.service_named(spec.name, story.daemon)
    samples: list[Sample] = []
    new_td: list[str] = []

    def sample() -> None:
        both = _coverage(world, spec.name, group, new_td[0] if new_td else None)
        samples.append(Sample(world.clock.now, *both))
        if world.clock.now + story.sample_s <= story.horizon_s:
            world.clock.after(story.sample_s, sample)

    def roll_out() -> None:
        old = world.ecs.task_defs[svc.task_definition]
        ports = [dict(m) for c in old.containers for m in c.get("portMappings", [])]
        new_td.append(world.ecs.register_task_definition(
            story.daemon, [{"name": story.daemon, "cpu": story.new_cpu, "memory": story.new_memory,
                            "portMappings": ports}], network_mode="bridge", stop_timeout_s=10))
        world.ecs.update_daemon_service(svc, new_td[0])

    try:
        keep_backlog(world, spec.name, story.backlog_per_service, 5.0, story.horizon_s)
        world.asg.scale_out(spec.asg, story.instances, 1.0)
        world.clock.at(story.rollout_at - 60.0, sample)
        world.clock.at(story.rollout_at, roll_out)
        evictions_before = [0]
        world.clock.at(story.rollout_at, lambda: evictions_before.__setitem__(0, breaches.evictions))
        world.clock.run_until(story.horizon_s)
    finally:
        if deployment is not None:
            deployment.close()
    during = [s for s in samples if s.at >= story.rollout_at]
    before = [s for s in samples if s.at < story.rollout_at]
    restored = next((s.at - story.rollout_at for i, s in enumerate(during)
                     if all(x.new_revision >= 100.0 for x in during[i:])), None)
    return {
        "coverage_before_pct": round(min(s.any_revision for s in before), 1) if before else None,
        "coverage_min_pct": round(min(s.any_revision for s in during), 1),
        "coverage_mean_pct": round(statistics.fmean(s.any_revision for s in during), 1),
        "new_revision_end_pct": round(during[-1].new_revision, 1),
        "restored_s": None if restored is None else round(restored, 1),
        "evictions": breaches.evictions - evictions_before[0],
        "min_healthy_breaches": breaches.breaches,
    }


def rollout_suite(seeds: tuple[int, ...], story: RolloutStory | None = None) -> dict[str, Any]:
    """Every strategy over the same story and seeds (the worst figure over seeds)."""
    story = story or RolloutStory()
    strategies: dict[str, Any] = {}
    for strategy in ROLLOUT_STRATEGIES:
        runs = [run_rollout(strategy, seed, story) for seed in seeds]
        strategies[strategy] = runs[0] if len(runs) == 1 else _worst(runs)
    return {"scenario": {"instances": story.instances, "daemon": story.daemon, "new_cpu": story.new_cpu,
                         "new_memory": story.new_memory, "seeds": list(seeds), "horizon_after_rollout_s":
                         story.horizon_s - story.rollout_at}, "strategies": strategies}


def _worst(runs: list[dict[str, Any]]) -> dict[str, Any]:
    worst: dict[str, Any] = {}
    for key in runs[0]:
        values = [r[key] for r in runs]
        if key == "restored_s":
            worst[key] = None if any(v is None for v in values) else max(values)
        elif key in ("evictions", "min_healthy_breaches"):
            worst[key] = sum(values)
        else:
            worst[key] = min(v for v in values if v is not None) if any(v is not None for v in values) else None
    return worst
