"""The fault suite: the same small story under each fault, with what was injected and what was lost.

Story (per fault kind, seeded): a warm cluster, a scale-out under backlog, then a scale-in whose
drains run while new instances keep arriving. Effects lost = tasks killed by termination without a
deadline, lifecycle actions that timed out or are still waiting at the end, workflows that failed,
and instances still missing an eligible daemon at the end. It must be 0 for every kind.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from bench.measure import launch_records
from bench.scenarios import ClusterSpec, build_cluster, keep_backlog
from bench.suites import guard_config
from sim.deployment import GuardDeployment
from sim.ecs_api import ApiFaults
from sim.eventbridge import FaultPlan
from sim.world import World, WorldOptions

# What each kind injects (the `injected` count): duplicate deliveries, lost deliveries, delayed and
# reordered deliveries, ECS ThrottlingException (30% of calls, on top of the real rate limits), ECS
# 5xx (5%), workflow crashes (after every step's body, before its checkpoint), drains outlasting the
# hook's heartbeat timeout (long standalone jobs, 30 s heartbeat), EC2 terminations outside Auto
# Scaling mid-drain, daemons exiting on running instances, and load (500 launches in 60 s while 100
# instances drain: launches + drains held).
FAULT_KINDS = ("duplicates", "loss", "delay-reorder", "throttling", "server-errors", "workflow-crash",
               "heartbeat-timeout", "outside-termination", "daemon-crash", "load")


@dataclass(frozen=True)
class FaultStory:
    """Sizes of the story (the load kind uses its own, larger ones)."""

    warm: int = 16
    launches: int = 12
    scale_in: int = 8
    end_s: float = 1200.0


def _options(kind: str, seed: int) -> WorldOptions:
    delivery = {
        "duplicates": FaultPlan(duplicate_rate=0.6, max_copies=3),
        "loss": FaultPlan(loss_rate=0.1),
        "delay-reorder": FaultPlan(delay_s=2.0, jitter_s=3.0, reorder_window_s=10.0),
    }.get(kind, FaultPlan())
    api = {"throttling": ApiFaults(throttle_rate=0.3),
           "server-errors": ApiFaults(server_error_rate=0.05)}.get(kind, ApiFaults())
    return WorldOptions(seed=seed, delivery=delivery, api_faults=api)


def run_fault(kind: str, seed: int = 1, story: FaultStory | None = None) -> dict[str, Any]:
    """Run the story under one fault; return the figures of the `faults` section."""
    story = story or FaultStory()
    if kind == "load":
        story = FaultStory(warm=110, launches=500, scale_in=100, end_s=1500.0)
    world = World(_options(kind, seed))
    spec = ClusterSpec(replica_services=8, desired_per_service=6)
    build_cluster(world, spec)
    heartbeat = 30 if kind == "heartbeat-timeout" else 120
    extra: dict[str, Any] = {"standaloneWaitSeconds": 120} if kind == "heartbeat-timeout" else {}
    doc = guard_config([spec.asg], "preempt", **extra) | {"clusters": [{"name": spec.name, "autoScalingGroups": [
        {"name": spec.asg, "heartbeatTimeoutSeconds": heartbeat}]}]}
    deployment = GuardDeployment(world, doc)
    injected = 0
    try:
        keep_backlog(world, spec.name, 4, 5.0, 240.0)
        # Demand then holds still, so drained replicas have room elsewhere (a blocked drain is
        # another test's subject, not a fault's).
        world.clock.at(245.0, lambda: _hold_demand(world, spec.name))
        world.asg.scale_out(spec.asg, story.warm, 1.0)
        world.clock.run_until(200.0)
        if kind == "workflow-crash":
            deployment.durable.crash_every_step = True
        if kind == "heartbeat-timeout":
            injected += _long_standalone_jobs(world, spec.name)
        spacing = 60.0 / story.launches if kind == "load" else 3.0
        drained: list[str] = []

        def scale_out() -> None:
            world.asg.scale_out(spec.asg, story.launches, spacing)

        def scale_in() -> None:
            drained.extend(world.asg.scale_in(spec.asg, story.scale_in))

        world.clock.at(250.0, scale_out)
        world.clock.at(255.0, scale_in)
        crash_times: dict[str, float] = {}
        if kind == "outside-termination":
            injected += _terminate_outside(world, drained, at=262.0)
        if kind == "daemon-crash":
            injected += _crash_daemons(world, crash_times, at=300.0, count=5)
        world.clock.run_until(story.end_s)
        if kind == "workflow-crash":
            injected += deployment.durable.crashes
        if kind in ("throttling", "server-errors"):
            injected += world.ecs_api.faults_injected
        if kind in ("duplicates", "loss"):
            stats = [world.bus.stats(name) for name in world.bus.rule_names]
            injected += sum(s.duplicated if kind == "duplicates" else s.lost for s in stats)
        if kind == "delay-reorder":
            injected += world.bus.published
        if kind == "load":
            injected += story.launches + story.scale_in
        return _figures(kind, world, deployment, injected, crash_times, since=250.0)
    finally:
        deployment.close()


def _hold_demand(world: World, cluster: str) -> None:
    for svc in world.ecs.services.values():
        if svc.cluster == cluster and svc.strategy == "REPLICA":
            svc.desired_count = world.ecs.active[(cluster, f"service:{svc.name}")]


def _long_standalone_jobs(world: World, cluster: str) -> int:
    """Standalone jobs that outlive the heartbeat timeout, so drains must heartbeat to survive."""
    td = world.ecs.register_task_definition("long-job", [{"name": "job", "cpu": 64, "memory": 64}])
    placed = 0
    for inst in list(world.ecs.instances.values()):
        task = world.ecs.place_task(inst, td, "family:long-job", "batch")
        world.clock.after(180.0, partial(world.ecs.stop_task, task, "Essential container in task exited"))
        placed += 1
    return placed


def _terminate_outside(world: World, drained: list[str], at: float) -> int:
    """Someone calls EC2 TerminateInstances on two instances while they drain."""
    def act() -> None:
        for instance_id in drained[:2]:
            group = next(g for g in world.asg.groups.values() if instance_id in g.instances)
            world.asg.terminate_outside(group, group.instances[instance_id])
    world.clock.at(at, act)
    return 2


def _crash_daemons(world: World, crash_times: dict[str, float], at: float, count: int) -> int:
    """A daemon exits on `count` ACTIVE instances."""
    def act() -> None:
        crashed = 0
        for inst in world.ecs.instances.values():
            if crashed >= count or inst.status != "ACTIVE":
                continue
            daemon = next((t for t in world.ecs.live_tasks(inst) if world.ecs.is_daemon_task(t)
                           and t.last_status == "RUNNING"), None)
            if daemon is not None:
                world.ecs.stop_task(daemon, "Essential container in task exited", "EssentialContainerExited")
                crash_times[inst.arn] = world.clock.now
                crashed += 1
    world.clock.at(at, act)
    return count


def _figures(kind: str, world: World, deployment: GuardDeployment, injected: int, crash_times: dict[str, float],
             since: float) -> dict[str, Any]:
    records = launch_records(world.ecs, world.clock.now, since=since)
    uncovered = sum(1 for r in records if r.daemons_running_at is None)
    restore = [r.time_to_daemons for r in records if r.time_to_daemons is not None]
    restore += _restored_after_crash(world, crash_times)
    timeouts = sum(1 for a in world.asg.history if a.timed_out)
    waiting = len(world.asg.actions)
    outside = {t.arn for t in world.ecs.ungraceful_kills if t.stopped_reason.startswith("Host EC2") and
               world.ecs.instances[t.container_instance].status_reason == "terminated outside Auto Scaling"}
    kills = sum(1 for t in world.ecs.ungraceful_kills if t.arn not in outside)
    failed = sum(1 for e in deployment.durable.executions.values() if e.status == "FAILED")
    still_running = sum(1 for e in deployment.durable.executions.values() if e.status == "RUNNING")
    missing_now = _instances_missing_daemons(world)
    return {
        "injected": injected,
        "events": world.bus.published,
        "effects_lost": kills + timeouts + waiting + failed + still_running + uncovered + missing_now,
        "coverage_restored_s": round(max(restore), 1) if restore else None,
        "lifecycle_timeouts": timeouts,
        "detail": {"kills": kills, "killed_by_outside_termination": len(outside), "waiting_actions": waiting,
                   "failed_workflows": failed, "unfinished_workflows": still_running,
                   "launches": len(records), "uncovered_launches": uncovered,
                   "instances_missing_daemons_at_end": missing_now},
    }


def _restored_after_crash(world: World, crash_times: dict[str, float]) -> list[float]:
    out = []
    for arn, crashed_at in crash_times.items():
        back = [tr.at for tr in world.ecs.transitions if tr.instance_arn == arn and tr.daemon
                and tr.last_status == "RUNNING" and tr.at > crashed_at]
        out.append(min(back) - crashed_at if back else math.inf)
    return out


def _instances_missing_daemons(world: World) -> int:
    ecs = world.ecs
    daemons = [s for s in ecs.services.values() if s.strategy == "DAEMON"]
    missing = 0
    for inst in ecs.instances.values():
        if inst.status != "ACTIVE":
            continue
        running = {t.group for t in ecs.live_tasks(inst) if t.last_status == "RUNNING"}
        for svc in daemons:
            if ecs.constraints_met(inst, svc.constraints, ecs.task_defs[svc.task_definition]) and \
                    f"service:{svc.name}" not in running:
                missing += 1
                break
    return missing


def fault_suite(seeds: tuple[int, ...], progress: Callable[[str], None]) -> dict[str, Any]:
    """Every fault kind, first seed (the suite is about zero loss, not averages)."""
    out: dict[str, Any] = {}
    for kind in FAULT_KINDS:
        progress(f"faults: {kind}")
        out[kind] = run_fault(kind, seeds[0])
    return out
