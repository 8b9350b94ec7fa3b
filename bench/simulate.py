"""`daemon-guard sim`: run a named scenario and print a timeline and a summary.

``baseline-scale-out`` is the calibration run: ECS alone (no automation) under a replica backlog,
whose daemon-first rate reproduces AWS's published ~96% (see sim/README.md).
"""

from __future__ import annotations

import json
from typing import Any

from bench.measure import launch_records, summarize
from bench.scenarios import ClusterSpec, DrainStory, ScaleOut, build_cluster, run_scale_out
from bench.suites import DEFAULT_PROFILE, GATE_ATTRIBUTE, guard_config, run_drain
from sim.deployment import GuardDeployment
from sim.ecs import profile_params
from sim.world import World, WorldOptions

TIMELINE_LINES = 12


def _timeline(world: World, since: float, limit: int) -> list[str]:
    """The first instances measured: when each registered, got its daemons, started a replica."""
    lines: list[str] = []
    records = sorted(launch_records(world.ecs, world.clock.now, since=since), key=lambda r: r.registered_at)
    for rec in records[:limit]:
        inst = world.ecs.instances[rec.instance_arn]
        daemons = "never" if rec.daemons_running_at is None else f"+{rec.daemons_running_at - rec.registered_at:5.1f}s"
        replica = "none" if rec.first_replica_started_at is None else \
            f"+{rec.first_replica_started_at - rec.registered_at:5.1f}s"
        verdict = "daemon-first" if rec.daemon_first else "REPLICA FIRST"
        lines.append(f"{_clock(rec.registered_at)}  {inst.ec2_instance_id} registered; daemons RUNNING {daemons}; "
                     f"first replica {replica}  {verdict}")
    return lines


def _clock(t: float) -> str:
    return f"{int(t // 60):02d}:{t % 60:04.1f}"


def run_scenario(name: str, seed: int, launches: int) -> int:
    """Run one scenario; print the timeline head and the summary (JSON on the last line)."""
    if name == "drain-story":
        result = run_drain("daemon-guard", seed, DrainStory())
        print(f"drain-story, seed {seed}: daemon-guard drains a day of terminations")
        print(json.dumps(result))
        return 0
    world = World(WorldOptions(seed=seed, ecs=profile_params(DEFAULT_PROFILE)))
    mode = {"preempt-scale-out": "preempt", "gate-scale-out": "gate"}.get(name)
    spec = ClusterSpec(gate_attribute=GATE_ATTRIBUTE if mode == "gate" else None)
    build_cluster(world, spec)
    deployment = None
    if mode is not None:
        doc = guard_config([spec.asg], mode) | {
            "clusters": [{"name": spec.name, "autoScalingGroups": [{"name": spec.asg, "terminateHook": False}]}]}
        deployment = GuardDeployment(world, doc)
    plan = ScaleOut(launches=launches)
    try:
        horizon = run_scale_out(world, spec, plan)
        summary: dict[str, Any] = summarize(launch_records(world.ecs, horizon, since=plan.measured_from),
                                            horizon).as_dict()
    finally:
        if deployment is not None:
            deployment.close()
    params = world.ecs.params
    print(f"{name}, seed {seed}: {launches} launches {plan.spacing_s:.0f}s apart under a backlog of "
          f"{plan.backlog_per_service} pending tasks per service ({spec.replica_services} services, "
          f"3 daemons); daemon cycle {params.daemon_cycle_s}s")
    for line in _timeline(world, plan.measured_from, TIMELINE_LINES):
        print("  " + line)
    print(f"  ... {summary['launches'] - TIMELINE_LINES} more launches")
    print(f"daemon-first rate {summary['daemon_first_rate']:.1%}, coverage within 60 s "
          f"{summary['coverage_rate']:.1%}, time to daemons p50 {summary['time_to_daemons_s']['p50']}s "
          f"p99 {summary['time_to_daemons_s']['p99']}s")
    print(json.dumps(summary))
    return 0
