"""The fault suite: the guarantees under each fault, with what was injected and what was lost.

Story (per fault kind, seeded): a warm cluster, a scale-out under backlog, then a scale-in whose drains
run while new instances keep arriving (the load kind: 500 launches in 60 s while 100 instances drain and
an instance refresh replaces a second group's 40 instances, so instances launch while others drain).
Each kind runs every configuration that claims the ordering guarantees, gate placement with the drain
orders ``tiers`` and ``apps-first`` (`FAULT_STRATEGIES`), under the `worst` ECS behaviour profile with its
API latency and the bench's event timing (bench.suites.TIMING) below the fault.

Claims, read off the simulator's records by the measurements the drain and range suites use
(bench.suites.served_before_daemons, bench.drain_measure): daemons-first violations, daemons stopped
before an app task STOPPED, tier-order violations, tasks killed, lifecycle timeouts. Effects lost = tasks
killed + lifecycle actions that timed out or are still waiting at the end + workflows failed or unfinished
+ launches never covered + instances missing an eligible daemon at the end. Every figure must be 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from bench.drain_measure import summarize_drains
from bench.measure import instances_missing_daemons, launch_records
from bench.scenarios import ClusterSpec, build_cluster, keep_backlog
from bench.suites import CLAIMS, GATE_ATTRIBUTE, ORDERS, TIMING, guard_config, served_before_daemons, story_drains
from sim.deployment import GuardDeployment
from sim.ecs import SimInstance, profile_params
from sim.ecs_api import ApiFaults
from sim.latency import api_latency
from sim.world import World, WorldOptions

# What each kind injects (the `injected` count): duplicate deliveries, lost deliveries, delayed and
# reordered deliveries, ECS ThrottlingException (30% of calls, on top of the real rate limits), ECS
# 5xx (5%), workflow crashes (after every step's body, before its checkpoint), drains outlasting the
# hook's heartbeat timeout (long standalone jobs, 30 s heartbeat), EC2 terminations outside Auto
# Scaling mid-drain, daemons exiting on running instances, and load (500 launches in 60 s while 100
# instances drain and an instance refresh replaces the 40 instances of a second group: launches + drains +
# instances refreshed).
FAULT_KINDS = ("duplicates", "loss", "delay-reorder", "throttling", "server-errors", "workflow-crash",
               "heartbeat-timeout", "outside-termination", "daemon-crash", "load")
# The configurations that claim the ordering guarantees (gate placement with each ordered drain).
FAULT_STRATEGIES = ("daemon-guard-tiers", "daemon-guard-apps-first")
FAULT_PROFILE = "worst"
SCALE_OUT_AT, SCALE_IN_AT = 250.0, 255.0
CLAIM_COLUMNS = ("daemons_first_violations", "daemon_stopped_before_app_stopped", "tier_order_violations",
                 "tasks_killed", "lifecycle_timeouts")


@dataclass(frozen=True)
class FaultStory:
    """Sizes of the story: `warm` instances, `launches` in the scale-out, `scale_in` drained, the run's end;
    `refresh`: instances of a second group of the cluster, launched with the warm ones, that an instance
    refresh (90% healthy) replaces from `refresh_at` on, while the load's launches and drains run."""

    warm: int = 16
    launches: int = 12
    scale_in: int = 8
    end_s: float = 1200.0
    refresh: int = 0
    refresh_at: float = SCALE_OUT_AT


STORY = FaultStory()
LOAD = FaultStory(warm=110, launches=500, scale_in=100, end_s=1500.0, refresh=40)
# The test suite's sizes (tests/integration/test_fault_suite.py): the same story, smaller.
SMALL_STORY = FaultStory(warm=8, launches=6, scale_in=4, end_s=700.0)
SMALL_LOAD = FaultStory(warm=12, launches=30, scale_in=6, end_s=900.0, refresh=6)


def story_for(kind: str, small: bool = False) -> FaultStory:
    """The story a kind runs: the load kind its own, larger one; `small`: the test suite's sizes."""
    if kind == "load":
        return SMALL_LOAD if small else LOAD
    return SMALL_STORY if small else STORY


def _options(kind: str, seed: int) -> WorldOptions:
    delivery = {
        "duplicates": replace(TIMING, duplicate_rate=0.6, max_copies=3),
        "loss": replace(TIMING, loss_rate=0.1),
        "delay-reorder": replace(TIMING, delay_s=2.0, jitter_s=3.0, reorder_window_s=10.0),
    }.get(kind, TIMING)
    api = {"throttling": ApiFaults(throttle_rate=0.3),
           "server-errors": ApiFaults(server_error_rate=0.05)}.get(kind, ApiFaults())
    return WorldOptions(seed=seed, ecs=profile_params(FAULT_PROFILE), delivery=delivery, api_faults=api,
                        api_latency=api_latency(FAULT_PROFILE))


def run_fault(kind: str, strategy: str = "daemon-guard-tiers", seed: int = 1,
              story: FaultStory | None = None) -> dict[str, Any]:
    """Run the story under one fault with one claiming configuration; return the figures of the `faults`
    section (`story`: the kind's own by default, `story_for`)."""
    if strategy not in FAULT_STRATEGIES:
        raise ValueError(f"unknown fault suite strategy {strategy!r}; known: {', '.join(FAULT_STRATEGIES)}")
    story = story or story_for(kind)
    order = strategy.removeprefix("daemon-guard-")
    world = World(_options(kind, seed))
    spec = ClusterSpec(replica_services=8, desired_per_service=6, gate_attribute=GATE_ATTRIBUTE,
                       tier_constraints=order == "tiers")
    build_cluster(world, spec)
    groups = [spec.asg]
    if story.refresh:
        groups.append(f"{spec.name}-refresh")
        world.asg.create_group(groups[1], spec.name, spec.instance_type)
    heartbeat = 30 if kind == "heartbeat-timeout" else 120
    extra: dict[str, Any] = {"standaloneWaitSeconds": 120} if kind == "heartbeat-timeout" else {}
    doc = guard_config(groups, "gate", drainOrder=order, **extra) | {"clusters": [{
        "name": spec.name, "autoScalingGroups": [{"name": g, "heartbeatTimeoutSeconds": heartbeat} for g in groups]}]}
    deployment = GuardDeployment(world, doc)
    injected = 0
    try:
        keep_backlog(world, spec.name, 4, 5.0, 240.0)
        # Demand then holds still, so drained replicas have room elsewhere (a blocked drain is
        # another test's subject, not a fault's).
        world.clock.at(245.0, lambda: _hold_demand(world, spec.name))
        world.asg.scale_out(spec.asg, story.warm, 1.0)
        if story.refresh:
            world.asg.scale_out(groups[1], story.refresh, 1.0)
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

        world.clock.at(SCALE_OUT_AT, scale_out)
        world.clock.at(SCALE_IN_AT, scale_in)
        if story.refresh:
            world.clock.at(story.refresh_at, lambda: world.asg.instance_refresh(groups[1], min_healthy_percentage=90))
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
            injected += story.launches + story.scale_in + story.refresh
        return {"strategy": strategy, "profile": FAULT_PROFILE} | _figures(
            strategy, world, deployment, injected, crash_times, since=SCALE_OUT_AT)
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
    """A daemon exits on `count` running instances: ACTIVE and not on their way out (a gated drain stops the
    replicas before DRAINING, so an instance in Terminating:Wait may still be ACTIVE; a crash there would
    be counted as the drain stopping a daemon before the apps)."""
    def leaving(inst: SimInstance) -> bool:
        group = world.asg.group_of(inst.ec2_instance_id)
        return group is None or group.instances[inst.ec2_instance_id].drain_started_at is not None

    def act() -> None:
        crashed = 0
        for inst in world.ecs.instances.values():
            if crashed >= count or inst.status != "ACTIVE" or leaving(inst):
                continue
            daemon = next((t for t in world.ecs.live_tasks(inst) if world.ecs.is_daemon_task(t)
                           and t.last_status == "RUNNING"), None)
            if daemon is not None:
                world.ecs.stop_task(daemon, "Essential container in task exited", "EssentialContainerExited")
                crash_times[inst.arn] = world.clock.now
                crashed += 1
    world.clock.at(at, act)
    return count


def _figures(strategy: str, world: World, deployment: GuardDeployment, injected: int,
             crash_times: dict[str, float], since: float) -> dict[str, Any]:
    records = launch_records(world.ecs, world.clock.now)
    uncovered = sum(1 for r in records if r.daemons_running_at is None)
    restore = [r.time_to_daemons for r in records if r.time_to_daemons is not None and r.registered_at >= since]
    restore += _restored_after_crash(world, crash_times)
    claims, killed_outside = _claims(strategy, world)
    claims["daemons_first_violations"] = served_before_daemons(records)
    waiting = len(world.asg.actions)
    failed = sum(1 for e in deployment.durable.executions.values() if e.status == "FAILED")
    still_running = sum(1 for e in deployment.durable.executions.values() if e.status == "RUNNING")
    missing_now = instances_missing_daemons(world)
    lost = claims["tasks_killed"] + claims["lifecycle_timeouts"] + waiting + failed + still_running + uncovered \
        + missing_now
    return {
        "injected": injected,
        "events": world.bus.published,
        "effects_lost": lost,
        "claims": list(CLAIMS[strategy]),
        **{column: claims[column] for column in CLAIM_COLUMNS},
        "coverage_restored_s": round(max(restore), 1) if restore else None,
        "detail": {"killed_by_outside_termination": killed_outside, "waiting_actions": waiting,
                   "failed_workflows": failed, "unfinished_workflows": still_running,
                   "launches": len(records), "uncovered_launches": uncovered,
                   "instances_missing_daemons_at_end": missing_now},
    }


def _claims(strategy: str, world: World) -> tuple[dict[str, int], int]:
    """The drain claims over every drain of the run (bench.drain_measure), and the tasks killed on instances
    terminated outside Auto Scaling: those kills are the fault injected, reported apart, not the drain's."""
    outside = {inst.ec2_instance_id for inst in world.ecs.instances.values()
               if inst.status_reason == "terminated outside Auto Scaling"}
    records = story_drains(world, {})
    killed_outside = sum(r.kills for r in records if r.instance_id in outside)
    ours = [replace(r, kills=0) if r.instance_id in outside else r for r in records]
    drains: Mapping[str, Any] = summarize_drains(ours, 0, 0, CLAIMS[strategy], ORDERS[strategy])
    return {"daemon_stopped_before_app_stopped": int(drains["daemon_stopped_before_app_stopped"]),
            "tier_order_violations": int(drains["tier_order_violations"]),
            "tasks_killed": int(drains["ungraceful_task_kills"]),
            "lifecycle_timeouts": int(drains["lifecycle_timeouts"])}, killed_outside


def _restored_after_crash(world: World, crash_times: dict[str, float]) -> list[float]:
    out = []
    for arn, crashed_at in crash_times.items():
        back = [tr.at for tr in world.ecs.transitions if tr.instance_arn == arn and tr.daemon
                and tr.last_status == "RUNNING" and tr.at > crashed_at]
        out.append(min(back) - crashed_at if back else math.inf)
    return out


def fault_suite(seeds: tuple[int, ...], progress: Callable[[str], None]) -> dict[str, Any]:
    """Every fault kind with every claiming configuration, first seed (the suite is about zero loss and zero
    violations, not averages): ``faults.<kind>.<strategy>``."""
    out: dict[str, Any] = {}
    for kind in FAULT_KINDS:
        out[kind] = {}
        for strategy in FAULT_STRATEGIES:
            progress(f"faults: {kind}, {strategy}, profile {FAULT_PROFILE}")
            out[kind][strategy] = run_fault(kind, strategy, seeds[0])
    return out


def faults_markdown(faults: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> list[str]:
    """The fault table: one row per fault kind and claiming configuration; an order a configuration does not
    claim shows as n/a."""
    lines = [f"**Faults** (each kind on the same story, gate placement with each ordered drain, ECS behaviour "
             f"profile `{FAULT_PROFILE}`; the load kind: 500 launches in 60 s while 100 instances drain and an "
             "instance refresh replaces a second group's 40)", "",
             "| fault | strategy | injected | effects lost | daemons-first violations | daemon stopped before an app "
             "STOPPED | tier-order violations | tasks killed | lifecycle timeouts | coverage restored (s) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for kind, by_strategy in faults.items():
        for strategy, f in by_strategy.items():
            claimed = set(f["claims"])
            tier = f["tier_order_violations"] if "tier-order" in claimed else "n/a"
            lines.append(f"| {kind} | {strategy} | {f['injected']} | {f['effects_lost']} | "
                         f"{f['daemons_first_violations']} | {f['daemon_stopped_before_app_stopped']} | {tier} | "
                         f"{f['tasks_killed']} | {f['lifecycle_timeouts']} | {f['coverage_restored_s']} |")
    return [*lines, ""]
