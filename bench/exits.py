"""Exits outside Auto Scaling, measured: AWS Health EC2 scheduled changes and instances stopped by hand.

The story: a busy cluster on one group (standalone batch jobs running throughout); AWS Health
announces a scheduled stop of some instances `change_start_s` ahead (real notices come about two
weeks ahead; the story shortens that, which changes nothing for a drain that starts at once); at
the change's start EC2 stops each affected instance still there. Meanwhile someone stops other
instances with StopInstances, outside Auto Scaling: EC2 says `stopping` and the OS shutdown ends
what still runs `AsgParams.os_shutdown_s` later.

For ``ecs-native`` (nothing reacts) and ``daemon-guard`` (default options: replace scheduled
instances through their group, drain stopped ones under the deadline that remains), per trigger:
drains started, tasks killed, ordering violations, lifecycle timeouts, and for scheduled changes
the instances replaced before the change began. Figures come from the simulator's records.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import partial
from typing import Any

from bench.drain_measure import measure_drains
from bench.scenarios import TIERS, DrainStory, build_drain_cluster, submit_batch_jobs
from bench.suites import DEFAULT_PROFILE, guard_config
from sim.deployment import GuardDeployment
from sim.ecs import profile_params
from sim.world import World, WorldOptions

EXIT_STRATEGIES = ("ecs-native", "daemon-guard")
TRIGGERS = ("scheduled-change", "ec2-state")


@dataclass(frozen=True)
class ExitStory:
    """Sizes and times of the exits story."""

    on_demand: int = 40
    replica_services: int = 6
    standalone_jobs: int = 30
    scheduled_changes: int = 6
    change_start_s: float = 900.0
    stops: int = 6
    horizon_s: float = 2400.0


def run_exit_story(world: World, story: ExitStory, group: str) -> dict[str, dict[str, float]]:
    """Fill the cluster, announce a scheduled change, stop instances by hand; returns trigger -> {id: start}."""
    asg, clock, ecs = world.asg, world.clock, world.ecs
    asg.scale_out(group, story.on_demand, 0.5)
    cluster = asg.groups[group].cluster
    job_td = ecs.register_task_definition("batch-job", [{"name": "job", "cpu": 256, "memory": 512}],
                                          stop_timeout_s=30)
    rng = world.ecs.rng

    submit_batch_jobs(world, cluster, job_td, story.horizon_s, story.standalone_jobs)
    clock.run_until(300.0)
    victims = rng.sample(sorted(asg.groups[group].instances), story.scheduled_changes + story.stops)
    scheduled, stopped = victims[:story.scheduled_changes], victims[story.scheduled_changes:]
    starts: dict[str, dict[str, float]] = {"scheduled-change": {}, "ec2-state": {}}

    def announce() -> None:
        starts["scheduled-change"].update({iid: clock.now for iid in scheduled})
        asg.scheduled_change(scheduled, story.change_start_s)

    def stop(iid: str) -> None:
        starts["ec2-state"][iid] = clock.now
        asg.stop_outside(iid)

    clock.at(400.0, announce)
    for i, iid in enumerate(stopped):
        clock.at(500.0 + 30.0 * i, partial(stop, iid))
    clock.run_until(story.horizon_s)
    return starts


def run_exits(strategy: str, seed: int, story: ExitStory) -> dict[str, Any]:
    """One strategy, one seed: the exits story, measured per trigger."""
    world = World(WorldOptions(seed=seed, ecs=profile_params(DEFAULT_PROFILE)))
    asg_name, _ = build_drain_cluster(world, DrainStory(on_demand=story.on_demand, spot=0,
                                                        replica_services=story.replica_services))
    deployment = GuardDeployment(world, guard_config([asg_name])) if strategy == "daemon-guard" else None
    try:
        starts = run_exit_story(world, story, asg_name)
        return measure_exits(world, deployment, starts, story)
    finally:
        if deployment is not None:
            deployment.close()


def measure_exits(world: World, deployment: GuardDeployment | None, starts: dict[str, dict[str, float]],
                  story: ExitStory) -> dict[str, Any]:
    """Per trigger: drains started, tasks killed, ordering violations, lifecycle timeouts, replaced in time."""
    tiers = {t["services"][0]: n for n, t in enumerate(TIERS)}
    started: Counter[str] = Counter()
    if deployment is not None:
        for execution in deployment.durable.executions.values():
            if execution.function == deployment.drain_arn and execution.payload.get("trigger") in TRIGGERS:
                started[str(execution.payload["trigger"])] += 1
    out: dict[str, Any] = {}
    for trigger in TRIGGERS:
        records = measure_drains(world, tiers, starts[trigger], set())
        victims = set(starts[trigger])
        terminated = [a for a in world.asg.history if a.instance_id in victims
                      and a.hook.transition.endswith("TERMINATING")]
        change_at = {iid: t + story.change_start_s for iid, t in starts[trigger].items()}
        replaced = sum(1 for a in terminated if a.completed_at is not None and not a.timed_out
                       and a.completed_at < change_at[a.instance_id]) if trigger == "scheduled-change" else 0
        out[trigger] = {
            "instances": len(victims),
            "drains_started": started[trigger],
            "tasks_killed": sum(r.kills for r in records),
            "ordering_violations": sum(r.violations for r in records),
            "lifecycle_timeouts": sum(1 for a in terminated if a.timed_out),
            "replaced_before_change": replaced,
        }
    return out


def exits_suite(seeds: tuple[int, ...], story: ExitStory | None = None) -> dict[str, Any]:
    """Both strategies over the same story and seeds (figures summed over seeds)."""
    story = story or ExitStory()
    strategies: dict[str, Any] = {}
    for strategy in EXIT_STRATEGIES:
        total: dict[str, Counter[str]] = {t: Counter() for t in TRIGGERS}
        for seed in seeds:
            for trigger, figures in run_exits(strategy, seed, story).items():
                total[trigger].update(figures)
        strategies[strategy] = {t: dict(c) for t, c in total.items()}
    return {"scenario": {"on_demand": story.on_demand, "scheduled_changes": story.scheduled_changes,
                         "change_start_s": story.change_start_s, "stops": story.stops, "seeds": list(seeds)},
            "strategies": strategies}
