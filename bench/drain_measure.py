"""Drain measurements read off the simulator's own records (task transitions, lifecycle actions).

Per drained instance: the drain starts when its terminate lifecycle action (or Spot warning, or
termination without a hook) starts, and ends when the action completes (or the instance dies).
Phases: replicas, standalone tasks, then each daemon tier. A phase ends when its last task has
STOPPED; its overhead is its length (from the end of the previous phase) minus the slowest stop in
it (StopTask to STOPPED). The drain's overhead is its length minus the sum of the slowest stops.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

from bench.measure import percentile
from sim.ecs import SimTask
from sim.world import World


@dataclass
class DrainRecord:
    """What happened to one instance on its way out."""

    instance_id: str
    started: float
    ended: float
    violations: int
    kills: int
    daemon_before_app: int = 0
    tier_overheads: list[float] = field(default_factory=list)
    overhead: float = 0.0
    timed_out: bool = False
    spot: bool = False
    # Each violation as (claim, daemon task, when it was told to stop, the phases of the earlier tasks still
    # live then), and each task killed as (task, when): what bench.attribution holds against the guard's events.
    order_breaks: list[tuple[str, str, float, tuple[int, ...]]] = field(default_factory=list)
    killed: list[tuple[str, float]] = field(default_factory=list)


def measure_drains(world: World, tier_of_service: Mapping[str, int], drain_starts: Mapping[str, float],
                   spot_instances: set[str]) -> list[DrainRecord]:
    """One record per instance whose drain started (from `drain_starts`: EC2 id -> start time)."""
    ecs = world.ecs
    by_instance: dict[str, list[tuple[float, str, str, str, str]]] = defaultdict(list)
    for tr in ecs.transitions:
        by_instance[tr.instance_arn].append((tr.at, tr.task_arn, tr.group, tr.last_status, tr.desired_status))
    ends: dict[str, float] = {}
    timed_out: set[str] = set()
    for action in world.asg.history:
        if action.hook.transition.endswith("TERMINATING") and action.completed_at is not None:
            ends[action.instance_id] = max(ends.get(action.instance_id, 0.0), action.completed_at)
            if action.timed_out:
                timed_out.add(action.instance_id)
    kills_by: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for killed in ecs.ungraceful_kills:
        kills_by[killed.container_instance].append((killed.arn, killed.stopped_at or 0.0))
    records: list[DrainRecord] = []
    arn_of = {inst.ec2_instance_id: inst.arn for inst in ecs.instances.values()}
    for instance_id, started in drain_starts.items():
        arn = arn_of.get(instance_id)
        if arn is None:
            continue
        ended = ends.get(instance_id)
        phase_of: dict[str, int] = {}
        stop_req: dict[str, float] = {}
        stopped: dict[str, float] = {}
        for at, task_arn, group, last, desired in by_instance.get(arn, []):
            service = group[len("service:"):] if group.startswith("service:") else None
            if service is not None and service in tier_of_service:
                phase_of[task_arn] = 2 + tier_of_service[service]
            elif service is not None:
                phase_of[task_arn] = 0
            else:
                phase_of[task_arn] = 1
            if desired == "STOPPED" and task_arn not in stop_req:
                stop_req[task_arn] = at
            if last == "STOPPED" and task_arn not in stopped:
                stopped[task_arn] = at
        live_at_start = [t for t in phase_of if stopped.get(t, float("inf")) > started
                         and ecs.tasks[t].created_at <= started]
        order_breaks = _order_violations(ecs.tasks, phase_of, stop_req, stopped, started)
        violations = sum(1 for claim, *_ in order_breaks if claim == "tier-order")
        daemon_before_app = sum(1 for claim, *_ in order_breaks if claim == "daemons-after-apps")
        end = ended if ended is not None else max([started, *(stopped.get(t, started) for t in live_at_start)])
        # Phase overheads (daemon tiers) and total overhead.
        by_phase: dict[int, list[str]] = defaultdict(list)
        for t in live_at_start:
            by_phase[phase_of[t]].append(t)
        previous_end = started
        tier_overheads: list[float] = []
        lower_bound = 0.0
        for phase in sorted(by_phase):
            tasks = by_phase[phase]
            if not all(t in stopped for t in tasks):
                break
            phase_end = max(stopped[t] for t in tasks)
            slowest = max(stopped[t] - stop_req.get(t, stopped[t]) for t in tasks)
            lower_bound += slowest
            if phase >= 2:
                tier_overheads.append(max(0.0, (phase_end - previous_end) - slowest))
            previous_end = max(previous_end, phase_end)
        records.append(DrainRecord(
            instance_id=instance_id, started=started, ended=end, violations=violations,
            daemon_before_app=daemon_before_app,
            kills=len(kills_by.get(arn, ())), tier_overheads=tier_overheads, order_breaks=order_breaks,
            killed=list(kills_by.get(arn, ())),
            overhead=max(0.0, (end - started) - lower_bound), timed_out=instance_id in timed_out,
            spot=instance_id in spot_instances))
    return records


def _order_violations(tasks: Mapping[str, SimTask], phase_of: Mapping[str, int], stop_req: Mapping[str, float],
                      stopped: Mapping[str, float], started: float) -> list[tuple[str, str, float, tuple[int, ...]]]:
    """The ordering violations on one instance during its drain: (claim, daemon task, when it was told to
    stop, the phases of the earlier tasks live then; 0 replicas, 1 standalone, 2 + k daemon tier k).

    A daemon's stop counts against daemons-after-apps when, at the moment it was told to stop, a
    non-daemon task on the instance (there since before, not yet STOPPED) was live; against tier order
    when a daemon of an earlier tier was. Tasks that arrived during the drain count too.
    """
    out: list[tuple[str, str, float, tuple[int, ...]]] = []
    for task_arn, req in sorted(stop_req.items(), key=lambda kv: (kv[1], kv[0])):
        if phase_of[task_arn] < 2 or req < started:
            continue
        live = [o for o in phase_of if o != task_arn and tasks[o].created_at <= req + 1e-9
                and stopped.get(o, float("inf")) > req + 1e-9]
        apps = tuple(sorted({phase_of[o] for o in live if phase_of[o] < 2}))
        tiers = tuple(sorted({phase_of[o] for o in live if 2 <= phase_of[o] < phase_of[task_arn]}))
        if apps:
            out.append(("daemons-after-apps", task_arn, req, apps))
        if tiers:
            out.append(("tier-order", task_arn, req, tiers))
    return out


def summarize_drains(records: list[DrainRecord], api_calls: int, duplicate_workflows: int,
                     claims: tuple[str, ...] = (), ordered: tuple[str, ...] = ("daemons-after-apps", "tier-order"),
                     ) -> dict[str, object]:
    """The per-strategy JSON of `daemon-guard bench --suite drain`.

    `claims`: the guarantees the strategy's configuration promises; `ordered`: the orders it keeps at
    all (an order it has no notion of is reported as "n/a", not 0). Deadlines are counted the same way
    for every strategy: a drain longer than 900 s (110 s for a Spot notice).
    """
    overheads = [r.overhead for r in records]
    tiers = [o for r in records for o in r.tier_overheads]
    spot = [r for r in records if r.spot]
    na = "n/a"
    return {
        "claims": list(claims),
        "drains": len(records),
        "daemon_stopped_before_app_stopped": sum(r.daemon_before_app for r in records)
        if "daemons-after-apps" in ordered else na,
        "tier_order_violations": sum(r.violations for r in records) if "tier-order" in ordered else na,
        "ungraceful_task_kills": sum(r.kills for r in records),
        "overhead_s": {"p50": round(percentile(overheads, 50), 2), "p99": round(percentile(overheads, 99), 2)},
        "overhead_per_tier_s": {"p50": round(percentile(tiers, 50), 2), "p99": round(percentile(tiers, 99), 2)},
        "deadline_exceeded": sum(1 for r in records if r.ended - r.started > (110.0 if r.spot else 900.0)),
        "lifecycle_timeouts": sum(r.timed_out for r in records),
        "duplicate_workflows": duplicate_workflows,
        "api_calls_per_drain": round(api_calls / len(records), 1) if records else 0.0,
        "spot_drains": len(spot),
        "spot_within_120s": sum(1 for r in spot if r.ended - r.started <= 120.0 and r.kills == 0),
    }
