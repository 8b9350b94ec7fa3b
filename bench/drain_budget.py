"""Drain budgets and replica phases woken by the replacement, measured: ``python -m bench.drain_budget``.

- ``refresh``: an instance refresh of a small cluster that replaces every instance at once (minimum healthy
  0%), under daemon-guard (``drainOrder`` tiers) with and without a ``drainBudget``: the lowest share of each
  replica service's desired count RUNNING during it (sampled every second from the simulator's tasks), drain
  durations (lifecycle action start to completion, waiting included), kills, lifecycle timeouts, and the account's
  ECS reads per second from the refresh's start to the last drain's end (mean, and the busiest 10 s); for each
  service that went below its minimumHealthyPercent, who stopped its RUNNING tasks (`stops_by_reason`), and the
  drains' deadlines missed (a replica phase out of time stops every replica it holds at once).
- ``reads``: the quick drain story (the bench's ``--quick`` story) under ``tiers``: API calls per drain and the
  ECS service reads (DescribeServices) per drain, from the simulator's call log.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from bench import suites as bench_suites
from bench.drain_measure import measure_drains
from bench.measure import percentile
from bench.reads import READ_PREFIXES, ReadSampler, ecs_throttles
from bench.scenarios import TIERS, DrainStory, build_drain_cluster
from bench.suites import DEFAULT_PROFILE, GATE_ATTRIBUTE, guard_config, run_drain
from sim.deployment import GuardDeployment
from sim.ecs import profile_params
from sim.world import World, WorldOptions

QUICK = DrainStory(on_demand=60, spot=10, first_scale_in=20, second_scale_in=20, spot_interruptions=5, refresh=False)
# The integration tests' drain story: 22 instances, 11 drains (a size this machine measures in minutes).
SMALL = DrainStory(on_demand=16, spot=6, first_scale_in=5, second_scale_in=3, spot_interruptions=3, refresh=False,
                   standalone_jobs=6, replica_services=4, horizon_s=3000.0)


def refresh(seed: int, instances: int = 20, budget: str | None = None, horizon_s: float = 2400.0,
            profile: str = DEFAULT_PROFILE) -> dict[str, Any]:
    """Replace `instances` at once (instance refresh, minimum healthy 0%) with the budget given (None: none), on
    the named ECS behaviour profile; the world runs until the old instances are gone (at most to `horizon_s`)."""
    world = World(WorldOptions(seed=seed, ecs=profile_params(profile)))
    story = DrainStory(on_demand=instances, spot=1, replica_services=6, utilization=0.45)
    groups = build_drain_cluster(world, story, gate_attribute=GATE_ATTRIBUTE, tier_constraints=True)
    extra: dict[str, Any] = {"drainOrder": "tiers"} | ({"drainBudget": budget} if budget else {})
    deployment = GuardDeployment(world, guard_config([groups[0]], "gate", **extra))
    lowest: dict[str, float] = {}
    replicas = [s for s in world.ecs.services.values() if s.strategy == "REPLICA"]
    reads = ReadSampler(world)

    def sample() -> None:
        running: dict[str, int] = {}
        for task in world.ecs.tasks.values():
            if task.last_status == "RUNNING":
                running[task.group] = running.get(task.group, 0) + 1
        for svc in replicas:
            share = running.get(f"service:{svc.name}", 0) / svc.desired_count if svc.desired_count else 1.0
            lowest[svc.name] = min(lowest.get(svc.name, 1.0), share)
        if world.clock.now < horizon_s:
            world.clock.after(1.0, sample)

    try:
        world.asg.scale_out(groups[0], instances, 0.5)
        world.clock.run_until(400.0)
        before = {i.instance_id for i in world.asg.groups[groups[0]].instances.values() if i.state == "InService"}
        world.clock.at(401.0, sample)
        reads.start(horizon_s)
        world.asg.instance_refresh(groups[0], min_healthy_percentage=0)
        _run_until_replaced(world, groups[0], before, horizon_s)
        starts = {i.instance_id: i.drain_started_at for g in world.asg.groups.values() for i in g.instances.values()
                  if i.drain_started_at is not None and i.instance_id in before}
        records = measure_drains(world, {t["services"][0]: n for n, t in enumerate(TIERS)}, starts, set())
        durations = [r.ended - r.started for r in records]
        rates = reads.rates(400.0, max((r.ended for r in records), default=horizon_s))
        unfinished = sum(1 for i in world.asg.groups[groups[0]].instances.values()
                         if i.instance_id in before and i.terminated_at is None)
        below = sorted(s.name for s in replicas if lowest.get(s.name, 1.0) * 100 < s.minimum_healthy_percent)
        stops = stops_by_reason(world, below, 400.0)
        return {"budget": budget or "none", "profile": profile, "instances": instances, "drains": len(records),
                "unfinished": unfinished,
                "min_running_share": round(min(lowest.values(), default=1.0), 3),
                "services_below_minimum_healthy": below,
                "min_running_share_by_service": {k: round(v, 3) for k, v in sorted(lowest.items())},
                "stops_below_minimum_healthy": stops,
                "drain_s": {"p50": round(percentile(durations, 50), 1), "p99": round(percentile(durations, 99), 1)},
                "kills": sum(r.kills for r in records), "lifecycle_timeouts": sum(r.timed_out for r in records),
                "deadlines_missed": int(sum(deployment.records.metric_values("DeadlinesMissed"))),
                "reads_per_s": {"mean": round(rates.per_s, 2), "peak": round(rates.peak_per_s, 2)},
                "throttles": ecs_throttles(world), "refresh_s": rates.seconds,
                "bypasses": len(deployment.records.metric_values("DrainBudgetBypasses")),
                "most_under_budget": max(deployment.records.metric_values("DrainsUnderBudget"), default=0),
                "most_waiting": max(deployment.records.metric_values("DrainsWaiting"), default=0),
                "access_denied": len(deployment.records.access_denied)}
    finally:
        deployment.close()


def stops_by_reason(world: World, services: list[str], since: float) -> dict[str, dict[str, int]]:
    """Who took the named services' RUNNING tasks away from `since` on: per service, its tasks that had been
    RUNNING and were told to stop, by their stoppedReason (the guard's names its phase: ``daemon-guard drain:
    replicas``, ``... replicas deadline``), or ``killed at termination`` for one EC2 terminated under it."""
    groups = {f"service:{name}": name for name in services}
    out: dict[str, dict[str, int]] = {name: {} for name in services}
    for task in world.ecs.tasks.values():
        name = groups.get(task.group)
        left = task.stopping_at if task.stopping_at is not None else task.stopped_at  # a kill sets no stoppingAt
        if name is None or task.started_at is None or left is None or left < since:
            continue
        reason = "killed at termination" if task.killed else task.stopped_reason
        out[name][reason] = out[name].get(reason, 0) + 1
    return {name: dict(sorted(reasons.items())) for name, reasons in out.items()}


def _run_until_replaced(world: World, group: str, old: set[str], horizon_s: float, step_s: float = 60.0) -> None:
    """Run the world until every instance in `old` has terminated and a minute more (or until `horizon_s`): the
    world after the refresh has nothing left to measure."""
    instances = world.asg.groups[group].instances
    while world.clock.now < horizon_s:
        world.clock.run_until(min(horizon_s, world.clock.now + step_s))
        if all(instances[i].terminated_at is not None for i in old if i in instances):
            world.clock.run_until(min(horizon_s, world.clock.now + step_s))
            return


def reads(seed: int, story: DrainStory = QUICK) -> dict[str, Any]:
    """A drain story (the bench's quick one by default) under ``tiers``: API calls per drain (the drains' own:
    workflows, the intake's drain and wake routes, the reconciler while drains run)."""
    worlds: list[World] = []

    class Recorded(World):
        """The story's world, kept to read its call log (ECS calls of every caller, by operation)."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            worlds.append(self)

    setattr(bench_suites, "World", Recorded)  # noqa: B010 (run_drain builds its world by this name)
    try:
        result = run_drain("daemon-guard-tiers", seed, story)
    finally:
        setattr(bench_suites, "World", World)  # noqa: B010
    ecs_reads = {op: n for (svc, op), n in sorted(worlds[0].call_log.calls.items())
                 if svc == "ecs" and op.startswith(READ_PREFIXES)}
    return {"ecs_reads_per_drain": round(sum(ecs_reads.values()) / max(1, result["drains"]), 1),
            "ecs_reads": ecs_reads, "api_calls_per_drain": result["api_calls_per_drain"], "drains": result["drains"],
            "kills": result["ungraceful_task_kills"], "lifecycle_timeouts": result["lifecycle_timeouts"],
            "overhead_s": result["overhead_s"]}


def main(argv: list[str] | None = None) -> int:
    """Run the measurements named on the command line and print their JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("refresh", "reads"))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--instances", type=int, default=20)
    parser.add_argument("--budget", default=None, help="a drainBudget nodes value, e.g. 10%% (default: none)")
    parser.add_argument("--profile", default=DEFAULT_PROFILE,
                        help=f"ECS behaviour profile (default: {DEFAULT_PROFILE})")
    parser.add_argument("--small", action="store_true", help="reads: the integration tests' story, not --quick's")
    args = parser.parse_args(argv)
    out = refresh(args.seed, args.instances, args.budget, profile=args.profile) if args.what == "refresh" else \
        reads(args.seed, SMALL if args.small else QUICK)
    json.dump(out, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
