"""The ``scale`` suite: the reconciler's ECS reads over many instances and clusters of one account.

The story: `clusters` clusters of `instances / clusters` instances each (three daemons, two small replica
services), filled and settled, then daemon-guard deployed with ``auditCycleMinutes`` and watched for one
cycle and two minutes. EventBridge delivers nothing to the guard (``emit_events`` off), so every ECS read
is the reconciler's and a missing daemon is the reconciler's to notice: two minutes in, one instance of
the first cluster loses its log router while a replica service pinned to it waits for the room (the
daemon starved as containers-roadmap#428 reports); the guard must make room.

Figures (`reconciler_figures`): ECS reads per minute (mean over the watch), the peak reads per second over
any 10 s window, ECS throttles, when the missing daemon was noticed (the first run after it went missing)
and repaired (RUNNING again), the share of instances the rotating audit described, the reconciler's
duration p99 over its Timeout, and the state table's capacity (the cursor's writes per cycle).

Not built yet: the instance refresh of 100 instances with and without ``drainBudget`` (issue 20.4's
``scale.refresh.<budget>``): it waits for the budget (issue 20.1).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from itertools import pairwise
from typing import Any

from bench.measure import percentile
from bench.scenarios import TIERS, ClusterSpec, build_cluster
from bench.suites import DEFAULT_PROFILE, GATE_ATTRIBUTE
from sim.deployment import GuardDeployment
from sim.ecs import profile_params
from sim.latency import TYPICAL
from sim.world import World, WorldOptions

READ_PREFIXES = ("Describe", "List", "Get")
SETTLE_S = 240.0
MISSING_AT_S = 130.0  # after the deployment (between two reconciler runs)
READ_REFILL_PER_S = 20.0  # ECS's cluster-read bucket: 100 burst, 20/s


@dataclass(frozen=True)
class ScaleStory:
    """How many instances in how many clusters, and the audit cycle the guard is given."""

    instances: int
    clusters: int
    cycle_min: int = 20

    @property
    def label(self) -> str:
        """The JSON key: ``<instances>x<clusters>``."""
        return f"{self.instances}x{self.clusters}"


def _reads(world: World) -> int:
    return sum(n for (service, op), n in world.call_log.calls.items()
               if service == "ecs" and op.startswith(READ_PREFIXES))


def _throttles(world: World) -> int:
    return sum(n for (service, _op, code), n in world.call_log.errors.items()
               if service == "ecs" and "Throttl" in code)


def _sample_every_second(world: World, until: float, into: list[int]) -> None:
    def sample() -> None:
        into.append(_reads(world))
        if world.clock.now + 1.0 <= until:
            world.clock.at(world.clock.now + 1.0, sample)
    world.clock.at(world.clock.now, sample)


def _starve_a_daemon(world: World, cluster: str) -> tuple[str, str]:
    """Stop the log router on the cluster's first instance while a replica service pinned there waits for
    its room; returns (instance ARN, daemon group)."""
    ecs = world.ecs
    instance = next(i for i in ecs.instances.values() if i.cluster == cluster and i.status == "ACTIVE")
    group = "service:fluent-bit"
    daemon = next(ecs.tasks[a] for a in instance.tasks if ecs.tasks[a].group == group and ecs.tasks[a].live)
    room = instance.remaining
    td = ecs.register_task_definition("filler", [{"name": "filler", "cpu": 0, "memory": (room.memory + 512) // 2}],
                                      stop_timeout_s=5)
    ecs.create_service(cluster, "filler", td, desired_count=2, minimum_healthy_percent=50,
                       constraints=[f"ec2InstanceId == {instance.ec2_instance_id}"])
    ecs.stop_task(daemon, "scale story: a daemon lost")
    return instance.arn, group


def run_reconciler_story(story: ScaleStory, seed: int) -> dict[str, Any]:
    """One run of the story, measured."""
    world = World(WorldOptions(seed=seed, ecs=profile_params(DEFAULT_PROFILE), api_latency=TYPICAL, emit_events=False))
    per = story.instances // story.clusters
    names = [f"c{k:02d}" for k in range(story.clusters)]
    for name in names:
        spec = ClusterSpec(name=name, asg=f"{name}-asg", replica_services=2, desired_per_service=4)
        build_cluster(world, spec)
        world.asg.scale_out(spec.asg, per, 0.0)
    world.clock.run_until(SETTLE_S)
    doc = {"clusters": [{"name": n, "autoScalingGroups": [{"name": f"{n}-asg", "terminateHook": False}]}
                        for n in names],
           "placementMode": "preempt", "gateAttribute": GATE_ATTRIBUTE, "drainTiers": list(TIERS),
           "auditCycleMinutes": story.cycle_min}
    deployment = GuardDeployment(world, doc)
    start = world.clock.now
    horizon = start + story.cycle_min * 60 + 120.0
    samples: list[int] = []
    try:
        _sample_every_second(world, horizon, samples)
        world.clock.run_until(start + MISSING_AT_S)
        missing_at = world.clock.now
        instance_arn, group = _starve_a_daemon(world, names[0])
        repaired = _watch_repair(world, instance_arn, group, horizon)
        runs = [i for i in deployment.records.invocations if i.function == "reconciler" and i.at >= start]
        noticed = next((i.at for i in runs if i.at >= missing_at), None)
        described = world.call_log.count("ecs", "DescribeContainerInstances")
        return _figures(story, samples, world, runs, deployment, missing_at, noticed, repaired, described)
    finally:
        deployment.close()


def _watch_repair(world: World, instance_arn: str, group: str, horizon: float) -> float | None:
    """Run to the horizon; when the daemon first ran again on the instance (None: never)."""
    ecs = world.ecs
    seen: list[float] = []

    def check() -> None:
        instance = ecs.instances[instance_arn]
        if not seen and any(ecs.tasks[a].group == group and ecs.tasks[a].last_status == "RUNNING"
                            and ecs.tasks[a].desired_status == "RUNNING" for a in instance.tasks):
            seen.append(world.clock.now)
        if not seen and world.clock.now + 1.0 <= horizon:
            world.clock.at(world.clock.now + 1.0, check)
    world.clock.at(world.clock.now + 1.0, check)
    world.clock.run_until(horizon)
    return seen[0] if seen else None


def _figures(story: ScaleStory, samples: list[int], world: World, runs: list[Any], deployment: GuardDeployment,
             missing_at: float, noticed: float | None, repaired: float | None, described: int) -> dict[str, Any]:
    per_s = [b - a for a, b in pairwise(samples)]
    windows = [sum(per_s[i:i + 10]) for i in range(max(1, len(per_s) - 9))]
    minutes = max(1.0, len(per_s) / 60)
    durations = [r.duration_s for r in runs]
    timeout = deployment.functions["reconciler"].facts.timeout_s
    return {
        "scenario": asdict(story),
        "reads_per_min": round((samples[-1] - samples[0]) / minutes, 1) if samples else 0.0,
        "reads_per_s_share_of_refill": round((samples[-1] - samples[0]) / max(1, len(per_s)) / READ_REFILL_PER_S, 3)
        if samples else 0.0,
        "peak_reads_per_s": round(max(windows, default=0) / 10, 2),
        "throttles": _throttles(world),
        "noticed_s": None if noticed is None else round(noticed - missing_at, 1),
        "repair_s": None if repaired is None or noticed is None else round(max(0.0, repaired - noticed), 1),
        "describe_instance_calls": described,
        "duration_p99_over_timeout": round(percentile(durations, 99) / timeout, 3) if durations else None,
        "reconciler_runs": len(runs),
        "clusters_audited": len({c["cluster"] for r in runs for c in (r.result or {}).get("clusters", [])
                                 if c.get("audit") and not c.get("throttled")}),
    }


def scale_suite(seeds: tuple[int, ...], quick: bool, progress: Callable[[str], None]) -> dict[str, Any]:
    """The reconciler story at each size (`--quick`: 200 instances in 1 and 2 clusters, a 5-minute cycle)."""
    stories = [ScaleStory(200, 1, 5), ScaleStory(400, 2, 5)] if quick else [
        ScaleStory(2000, 1), ScaleStory(20000, 10)]
    out: dict[str, Any] = {"reconciler": {}}
    for story in stories:
        progress(f"scale: reconciler over {story.instances} instances in {story.clusters} cluster(s)")
        out["reconciler"][story.label] = run_reconciler_story(story, seeds[0])
    return out


def scale_markdown(report: dict[str, Any]) -> str:
    """The README table of the scale suite, or nothing when it did not run."""
    scale = report.get("scale")
    if not scale:
        return ""
    lines = ["**The reconciler at scale** (one account; EventBridge delivering nothing, so every read and repair "
             "is the reconciler's)", "",
             "| instances x clusters | audit cycle (min) | ECS reads / min | share of the 20/s refill | "
             "peak reads/s (10 s) | throttles | noticed (s) | repaired after (s) | duration p99 / Timeout |",
             "|---|---|---|---|---|---|---|---|---|"]
    for label, f in scale["reconciler"].items():
        lines.append(f"| {label} | {f['scenario']['cycle_min']} | {f['reads_per_min']} | "
                     f"{f['reads_per_s_share_of_refill']:.1%} | {f['peak_reads_per_s']} | {f['throttles']} | "
                     f"{f['noticed_s']} | {f['repair_s']} | {f['duration_p99_over_timeout']} |")
    return "\n".join([*lines, ""])
