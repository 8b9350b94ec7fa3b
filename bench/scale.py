"""The ``scale`` suite: the reconciler's ECS reads over many instances and clusters of one account, and an instance
refresh of many instances with and without a drain budget.

The reconciler story: `clusters` clusters of `instances / clusters` instances each (three daemons, two small
replica services), filled and settled, then daemon-guard deployed with ``auditCycleMinutes`` and watched for one
cycle and two minutes. EventBridge delivers nothing to the guard (``emit_events`` off), so every ECS read is the
reconciler's and a missing daemon is the reconciler's to notice: two minutes in, one instance of the first cluster
loses its log router while a replica service pinned to it waits for the room (the daemon starved as
containers-roadmap#428 reports: the story runs on the ``as-reported`` behaviour profile, where ECS reserves no
room for daemons; on ``as-documented`` ECS would put the daemon back itself); the guard must make room.

Figures: ECS reads per minute (mean over the watch; ECS calls by operation beside), the peak reads per second
over any 10 s window, the mean after every cluster's first full audit (a new deployment joins the audit rotation
at the current slot, so the whole watch is the rotation's steady state), ECS throttles, when the missing daemon
was noticed (the first reconciler run that acted on its cluster's missing daemon) and repaired (RUNNING again),
when every cluster had had its full audit and the longest any cluster went without one, the reconciler's
duration p99 over its Timeout, and the state table's requests (the reconciler's reads and writes per minute, by
operation).

The refresh story (`bench.drain_budget.refresh`): an instance refresh replacing `instances` at once (minimum
healthy 0%) under daemon-guard (``drainOrder`` tiers, gate mode), with and without ``drainBudget``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from itertools import pairwise
from typing import Any

from bench.drain_budget import refresh
from bench.measure import percentile
from bench.reads import ReadSampler, ecs_throttles
from bench.scenarios import TIERS, ClusterSpec, build_cluster
from bench.suites import DEFAULT_PROFILE, GATE_ATTRIBUTE
from sim.deployment import GuardDeployment, Invocation
from sim.ecs import profile_params
from sim.latency import TYPICAL
from sim.world import World, WorldOptions

SETTLE_S = 240.0
MISSING_AT_S = 130.0  # after the deployment (between two reconciler runs)
RECONCILER_PROFILE = "as-reported"  # no room reserved for daemons: a lost daemon's room can be taken
STATE_READS = ("GetItem", "BatchGetItem", "Query", "Scan")
STATE_WRITES = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems")
REFRESH_BUDGETS = (None, "10%")


@dataclass(frozen=True)
class ScaleStory:
    """How many instances in how many clusters, and the audit cycle the guard is given."""

    instances: int
    clusters: int
    cycle_min: int = 20
    profile: str = RECONCILER_PROFILE

    @property
    def label(self) -> str:
        """The JSON key: ``<instances>x<clusters>``."""
        return f"{self.instances}x{self.clusters}"


def _starve_a_daemon(world: World, cluster: str) -> tuple[str, str]:
    """Stop the log router on the cluster's first instance; the moment it has STOPPED, a replica service pinned
    there takes the room it left (two tasks that leave less than the daemon needs), ahead of the daemon
    scheduler's next cycle (the race containers-roadmap#428 reports). Returns (instance ARN, daemon group)."""
    ecs = world.ecs
    instance = next(i for i in ecs.in_cluster[cluster].values() if i.status == "ACTIVE")
    group = "service:fluent-bit"
    daemon = next(ecs.tasks[a] for a in instance.tasks if ecs.tasks[a].group == group and ecs.tasks[a].live)
    need = ecs.task_defs[daemon.task_definition].memory

    def take_the_room() -> None:
        room = instance.remaining.memory
        td = ecs.register_task_definition("filler", [{"name": "filler", "cpu": 0, "memory": (room - need // 2) // 2}],
                                          stop_timeout_s=5)
        ecs.create_service(cluster, "filler", td, desired_count=2, minimum_healthy_percent=50,
                           constraints=[f"ec2InstanceId == {instance.ec2_instance_id}"])
        ecs.replica_pass(cluster)

    def on_stopped(kind: str, payload: dict[str, Any]) -> None:
        if kind == "task" and payload["task"] is daemon and daemon.last_status == "STOPPED":
            ecs.listeners.remove(on_stopped)
            world.clock.at(world.clock.now, take_the_room)

    ecs.listeners.append(on_stopped)
    ecs.stop_task(daemon, "scale story: a daemon lost")
    return instance.arn, group


def run_reconciler_story(story: ScaleStory, seed: int) -> dict[str, Any]:
    """One run of the story, measured."""
    world = World(WorldOptions(seed=seed, ecs=profile_params(story.profile), api_latency=TYPICAL, emit_events=False))
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
    reads = ReadSampler(world)
    calls_before = dict(world.call_log.calls)
    try:
        reads.start(horizon)
        world.clock.run_until(start + MISSING_AT_S)
        missing_at = world.clock.now
        instance_arn, group = _starve_a_daemon(world, names[0])
        restored = _watch_repair(world, instance_arn, group, horizon)
        runs = [i for i in deployment.records.invocations if i.function == "reconciler" and i.at >= start]
        noticed = next((i.at for i in runs if i.at >= missing_at and _acted_on(i, names[0])), None)
        figures = _figures(story, reads, world, runs, deployment, start, names)
        by_op = {op: n - calls_before.get(("ecs", op), 0) for (svc, op), n in sorted(world.call_log.calls.items())
                 if svc == "ecs" and n > calls_before.get(("ecs", op), 0)}
        return {**figures, "ecs_calls_by_operation": by_op,
                "describe_instance_calls": by_op.get("DescribeContainerInstances", 0),
                "noticed_s": None if noticed is None else round(noticed - missing_at, 1),
                "repair_s": None if restored is None or noticed is None else round(max(0.0, restored - noticed), 1),
                "restored_s": None if restored is None else round(restored - missing_at, 1),
                "restored_by": None if restored is None else "guard" if noticed is not None and noticed <= restored
                else "ecs"}
    finally:
        deployment.close()


def _acted_on(run: Invocation, cluster: str) -> bool:
    """The reconciler run repaired (or put off repairing) an instance of `cluster`."""
    return any(c.get("cluster") == cluster and (c.get("repaired") or c.get("repairsDeferred"))
               for c in (run.result or {}).get("clusters", []))


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


def _first_full_round(runs: Sequence[Invocation], clusters: int, start: float) -> float | None:
    """Seconds from the deployment to the end of the run by which every cluster had had a full audit (None: never
    within the watch)."""
    audited: set[str] = set()
    for run in runs:
        audited |= {c["cluster"] for c in (run.result or {}).get("clusters", [])
                    if c.get("audit") and not c.get("throttled")}
        if len(audited) >= clusters:
            return round(run.at + run.duration_s - start, 1)
    return None


def _longest_audit_gap(runs: Sequence[Invocation], clusters: Sequence[str], start: float, end: float) -> float:
    """The longest time any cluster went without a full audit: from the deployment to its first, between two,
    and from its last to the end of the watch (the run's start stands for the audit's time)."""
    audits: dict[str, list[float]] = {c: [start] for c in clusters}
    for run in runs:
        for c in (run.result or {}).get("clusters", []):
            if c.get("audit") and not c.get("throttled") and c.get("cluster") in audits:
                audits[c["cluster"]].append(run.at)
    return round(max(b - a for times in audits.values() for a, b in pairwise([*times, end])), 1)


def _state_table(deployment: GuardDeployment, minutes: float) -> dict[str, Any]:
    """The reconciler's state-table requests per minute (reads, writes) and by operation, as IAM was asked them
    (every call, retries aside)."""
    role = deployment.functions["reconciler"].facts.role_arn
    by_op = {action.split(":", 1)[1]: n for (asker, action), n in sorted(deployment.authorizer.asked.items())
             if asker == role and action.startswith("dynamodb:")}
    reads = sum(n for op, n in by_op.items() if op in STATE_READS)
    writes = sum(n for op, n in by_op.items() if op in STATE_WRITES)
    return {"reads_per_min": round(reads / minutes, 2), "writes_per_min": round(writes / minutes, 2),
            "by_operation": by_op}


def _figures(story: ScaleStory, reads: ReadSampler, world: World, runs: list[Invocation],
             deployment: GuardDeployment, start: float, names: Sequence[str]) -> dict[str, Any]:
    rates = reads.rates()
    first_round = _first_full_round(runs, story.clusters, start)
    steady = reads.rates(begin=start + first_round) if first_round is not None else None
    durations = [r.duration_s for r in runs]
    timeout = deployment.functions["reconciler"].facts.timeout_s
    return {
        "scenario": asdict(story),
        "reads_per_min": round(rates.per_min, 1),
        "reads_per_s_share_of_refill": round(rates.share_of_refill, 3),
        "peak_reads_per_s": round(rates.peak_per_s, 2),
        "steady_reads_per_min": round(steady.per_min, 1) if steady else None,
        "steady_share_of_refill": round(steady.share_of_refill, 3) if steady else None,
        "throttles": ecs_throttles(world),
        "duration_p99_over_timeout": round(percentile(durations, 99) / timeout, 3) if durations else None,
        "reconciler_runs": len(runs),
        "clusters_audited": len({c["cluster"] for r in runs for c in (r.result or {}).get("clusters", [])
                                 if c.get("audit") and not c.get("throttled")}),
        "first_full_round_s": first_round,
        "longest_audit_gap_s": _longest_audit_gap(runs, names, start, start + rates.seconds),
        "state_table": _state_table(deployment, max(1.0, rates.seconds / 60)),
    }


def refresh_figures(instances: int, seed: int, profile: str, progress: Callable[[str], None]) -> dict[str, Any]:
    """The refresh of `instances` without a budget and with 10%, on `profile`, by budget."""
    out: dict[str, Any] = {}
    for budget in REFRESH_BUDGETS:
        progress(f"scale: instance refresh of {instances} instances, budget {budget or 'none'}, {profile}")
        out[budget or "none"] = refresh(seed, instances, budget, horizon_s=_refresh_horizon(instances),
                                        profile=profile)
    return out


def _refresh_horizon(instances: int) -> float:
    """Long enough for 10% of `instances` at a time to drain through (the story's 2,400 s at 20 instances)."""
    return max(2400.0, 400.0 + 100.0 * instances)


def scale_suite(seeds: tuple[int, ...], quick: bool, progress: Callable[[str], None],
                profile: str = DEFAULT_PROFILE) -> dict[str, Any]:
    """The reconciler story at each size (`--quick`: 200 instances in 1 and 400 in 2 clusters, a 5-minute cycle),
    then the instance refresh of 100 (`--quick`: 20) with and without a 10% budget on `profile`."""
    stories = [ScaleStory(200, 1, 5), ScaleStory(400, 2, 5)] if quick else [
        ScaleStory(2000, 1), ScaleStory(20000, 10)]
    out: dict[str, Any] = {"reconciler": {}}
    for story in stories:
        progress(f"scale: reconciler over {story.instances} instances in {story.clusters} cluster(s)")
        out["reconciler"][story.label] = run_reconciler_story(story, seeds[0])
    out["refresh"] = refresh_figures(20 if quick else 100, seeds[0], profile, progress)
    return out


def scale_markdown(report: dict[str, Any]) -> str:
    """The README tables of the scale suite, or nothing when it did not run."""
    scale = report.get("scale")
    if not scale:
        return ""
    lines: list[str] = [] if not scale.get("reconciler") else [
             "**The reconciler at scale** (one account; EventBridge delivering nothing, so every read and repair "
             "is the reconciler's)", "",
             "| instances x clusters | audit cycle (min) | ECS reads / min (share of the 20/s refill) | "
             "after the first round | peak reads/s (10 s) | throttles | every cluster audited after (s) | "
             "longest without an audit (s) | noticed (s) | repaired after (s) | duration p99 / Timeout | "
             "state-table reads / writes per min |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for label, f in (scale.get("reconciler") or {}).items():
        table = f["state_table"]
        lines.append(f"| {label} | {f['scenario']['cycle_min']} | {f['reads_per_min']} "
                     f"({f['reads_per_s_share_of_refill']:.1%}) | {_steady(f)} | {f['peak_reads_per_s']} | "
                     f"{f['throttles']} | {f['first_full_round_s']} | {f['longest_audit_gap_s']} | {f['noticed_s']} | "
                     f"{f['repair_s']} | {f['duration_p99_over_timeout']} | "
                     f"{table['reads_per_min']} / {table['writes_per_min']} |")
    return "\n".join([*lines, *([""] if lines else []), *_refresh_markdown(scale.get("refresh") or {})])


def _steady(figures: dict[str, Any]) -> str:
    if figures.get("steady_reads_per_min") is None:
        return "-"
    return f"{figures['steady_reads_per_min']} ({figures['steady_share_of_refill']:.1%})"


def _refresh_markdown(refreshes: dict[str, Any]) -> list[str]:
    if not refreshes:
        return []
    first = next(iter(refreshes.values()))
    lines = [f"**Instance refresh of {first['instances']}** (every instance at once, minimum healthy 0%; tiers, "
             f"gate mode; ECS behaviour profile `{first['profile']}`)", "",
             "| drainBudget | lowest RUNNING share | services below minimumHealthyPercent | drain p50 / p99 (s) | "
             "kills | lifecycle timeouts | ECS reads/s mean / peak (10 s) | throttles | most draining / waiting |",
             "|---|---|---|---|---|---|---|---|---|"]
    for budget, f in refreshes.items():
        lines.append(f"| {budget} | {f['min_running_share']} | {', '.join(f['services_below_minimum_healthy']) or '-'}"
                     f" | {f['drain_s']['p50']} / {f['drain_s']['p99']} | {f['kills']} | {f['lifecycle_timeouts']} | "
                     f"{f['reads_per_s']['mean']} / {f['reads_per_s']['peak']} | {f['throttles']} | "
                     f"{f['most_under_budget']} / {f['most_waiting']} |")
    return [*lines, ""]
