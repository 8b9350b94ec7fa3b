"""Measurements read off a finished simulation: per-launch daemon placement figures.

Everything here is computed from the ECS model's recorded task transitions, independently of
what any automation believed, so that a benchmark cannot grade its own homework.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sim.ecs import EcsSim
from sim.world import World


@dataclass(frozen=True)
class LaunchRecord:
    """What happened on one new instance."""

    instance_arn: str
    registered_at: float
    eligible: tuple[str, ...]
    daemons_running_at: float | None
    first_replica_started_at: float | None
    daemon_missing_s: float
    daemon_failed_to_start: bool = False

    @property
    def daemon_first(self) -> bool:
        """Every eligible daemon RUNNING before any replica task started."""
        if self.daemons_running_at is None:
            return False
        return self.first_replica_started_at is None or self.daemons_running_at <= self.first_replica_started_at

    def covered_within(self, seconds: float) -> bool:
        """Every eligible daemon RUNNING within `seconds` of registration."""
        return self.daemons_running_at is not None and self.daemons_running_at - self.registered_at <= seconds

    @property
    def time_to_daemons(self) -> float | None:
        """Registration to all eligible daemons RUNNING."""
        return None if self.daemons_running_at is None else self.daemons_running_at - self.registered_at


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by nearest rank; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def launch_records(ecs: EcsSim, horizon: float, since: float = 0.0) -> list[LaunchRecord]:
    """One record per instance registered at or after `since`, observed until `horizon`."""
    daemon_groups = {f"service:{s.name}": s for s in ecs.services.values() if s.strategy == "DAEMON"}
    by_instance: dict[str, list[tuple[float, str, str, str]]] = defaultdict(list)
    for tr in ecs.transitions:
        by_instance[tr.instance_arn].append((tr.at, tr.task_arn, tr.group, tr.last_status))
    records: list[LaunchRecord] = []
    for inst in ecs.instances.values():
        if inst.registered_at < since:
            continue
        td = ecs.task_defs
        eligible = tuple(sorted(g for g, s in daemon_groups.items()
                                if ecs.constraints_met(inst, s.constraints, td[s.task_definition])))
        running_daemons: dict[str, set[str]] = defaultdict(set)
        running_replicas: set[str] = set()
        all_daemons_at: float | None = None
        first_replica: float | None = None
        missing = 0.0
        last_t = inst.registered_at
        for at, task_arn, group, status in sorted(by_instance.get(inst.arn, [])):
            if at > horizon:
                break
            complete = all(running_daemons[g] for g in eligible)
            if running_replicas and not complete:
                missing += at - last_t
            last_t = at
            if group in daemon_groups:
                if status == "RUNNING":
                    running_daemons[group].add(task_arn)
                else:
                    running_daemons[group].discard(task_arn)
            elif group.startswith("service:"):
                if status == "RUNNING":
                    running_replicas.add(task_arn)
                    if first_replica is None:
                        first_replica = at
                else:
                    running_replicas.discard(task_arn)
            if all_daemons_at is None and all(running_daemons[g] for g in eligible):
                all_daemons_at = at
        if running_replicas and not all(running_daemons[g] for g in eligible):
            missing += max(0.0, horizon - last_t)
        if not eligible:
            all_daemons_at = inst.registered_at
        failed = any(ecs.tasks[a].stop_code == "TaskFailedToStart" and ecs.tasks[a].group in daemon_groups
                     for a in inst.tasks)
        records.append(LaunchRecord(inst.arn, inst.registered_at, eligible, all_daemons_at, first_replica, missing,
                                    failed))
    return records


@dataclass(frozen=True)
class PlacementSummary:
    """The placement figures of one strategy.

    Times are measured values only: a launch whose daemons never all ran by the end of the run (or that
    never got a replica) is not a time but a count (`not_covered_by_end`, `no_replica_by_end`).
    """

    launches: int
    daemon_first_rate: float
    coverage_rate: float
    time_to_daemons_p50: float
    time_to_daemons_p99: float
    daemon_missing_p50: float
    daemon_missing_p99: float
    not_covered_by_end: int = 0
    replica_start_p50: float = math.nan
    replica_start_p99: float = math.nan
    no_replica_by_end: int = 0
    failed_daemon_instances: int = 0
    stranded_by_failed_daemon: int = 0
    served_without_failed_daemon: int = 0

    def as_dict(self) -> dict[str, object]:
        """The JSON form used by `daemon-guard bench`."""
        return {
            "launches": self.launches,
            "daemon_first_rate": round(self.daemon_first_rate, 4),
            "coverage_rate": round(self.coverage_rate, 4),
            "time_to_daemons_s": {"p50": round(self.time_to_daemons_p50, 2),
                                  "p99": round(self.time_to_daemons_p99, 2)},
            "not_covered_by_end": self.not_covered_by_end,
            "daemon_missing_s": {"p50": round(self.daemon_missing_p50, 2), "p99": round(self.daemon_missing_p99, 2)},
            "replica_first_start_s": {"p50": round(self.replica_start_p50, 2), "p99": round(self.replica_start_p99, 2)},
            "no_replica_by_end": self.no_replica_by_end,
            "failed_daemon_instances": self.failed_daemon_instances,
            "stranded_by_failed_daemon": self.stranded_by_failed_daemon,
            "served_without_failed_daemon": self.served_without_failed_daemon,
        }


STRANDED_AFTER_S = 240.0


def summarize(records: Sequence[LaunchRecord], horizon: float) -> PlacementSummary:
    """Rates and percentiles over launch records; launches never covered (or never given a replica) by
    `horizon` are counted, not timed (a censored value is not a measurement). Of the instances on which a
    daemon failed to start and that had `STRANDED_AFTER_S` (twice the default gate timeout) to get a
    replica, those that got none are stranded and those that got one serve apps without that daemon."""
    n = len(records)
    if n == 0:
        return PlacementSummary(0, math.nan, math.nan, math.nan, math.nan, math.nan, math.nan)
    times = [r.time_to_daemons for r in records if r.time_to_daemons is not None]
    replica = [r.first_replica_started_at - r.registered_at for r in records if r.first_replica_started_at is not None]
    missing = [r.daemon_missing_s for r in records]
    failed = [r for r in records if r.daemon_failed_to_start and horizon - r.registered_at >= STRANDED_AFTER_S]
    return PlacementSummary(
        launches=n,
        daemon_first_rate=sum(r.daemon_first for r in records) / n,
        coverage_rate=sum(r.covered_within(60.0) for r in records) / n,
        time_to_daemons_p50=percentile(times, 50), time_to_daemons_p99=percentile(times, 99),
        daemon_missing_p50=percentile(missing, 50), daemon_missing_p99=percentile(missing, 99),
        not_covered_by_end=n - len(times),
        replica_start_p50=percentile(replica, 50), replica_start_p99=percentile(replica, 99),
        no_replica_by_end=n - len(replica),
        failed_daemon_instances=len(failed),
        stranded_by_failed_daemon=sum(1 for r in failed if r.first_replica_started_at is None),
        served_without_failed_daemon=sum(1 for r in failed if r.first_replica_started_at is not None),
    )


def eviction_cost(figures: Mapping[str, Any]) -> dict[str, Any]:
    """What the evictions bought: the launches covered by the end (every eligible daemon RUNNING) and the
    replica tasks stopped per launch covered (0.0 without evictions, None when evictions covered none).

    Read off a strategy's (merged) figures, so it is right for one seed or many.
    """
    covered = int(figures["launches"]) - int(figures["not_covered_by_end"])
    evictions = int(figures.get("evictions", 0))
    per = 0.0 if evictions == 0 else (round(evictions / covered, 2) if covered else None)
    return {"instances_covered": covered, "evictions_per_instance_covered": per}


def critical_daemon_figures(world: World, records: Sequence[LaunchRecord], horizon: float) -> dict[str, Any]:
    """What replacing instances that lack a critical daemon cost and bought (from the simulator's truth).

    - ``instances_replaced``: replacements the groups made (SetInstanceHealth Unhealthy or a launch ABANDON);
    - ``time_to_covered_replacement_s``: from a replaced instance's registration to the moment the first
      instance of its replacement chain (a replacement may be replaced in turn) runs every eligible daemon;
      chains not covered by the end are counted (``replacements_not_covered_by_end``), not timed;
    - ``capacity_lost_instance_s``: the seconds instances on which a daemon failed to start stood
      registered without serving a replica (until terminated, or the end of the run);
    - ``served_without_failed_daemon``: instances on which a daemon failed to start that served replicas
      anyway (the guarantee wants 0).
    """
    by_ec2 = {i.ec2_instance_id: i.arn for i in world.ecs.instances.values()}
    record_of = {r.instance_arn: r for r in records}
    replaced_by = {old: new for old, new, _ in world.asg.replacements}
    ended = {inst.instance_id: inst.terminated_at for g in world.asg.groups.values() for inst in g.instances.values()}
    times: list[float] = []
    uncovered = 0
    for old, new, _ in world.asg.replacements:
        start = record_of.get(by_ec2.get(old, ""))
        covered_at = _chain_covered_at(new, replaced_by, by_ec2, record_of)
        if start is None or covered_at is None:
            uncovered += 1
        else:
            times.append(covered_at - start.registered_at)
    failed = [r for r in records if r.daemon_failed_to_start]
    ec2_of = {arn: ec2 for ec2, arn in by_ec2.items()}
    lost = sum(min(horizon, ended.get(ec2_of.get(r.instance_arn, "")) or horizon) - r.registered_at
               for r in failed if r.first_replica_started_at is None)
    return {"instances_replaced": len(world.asg.replacements),
            "time_to_covered_replacement_s": {"p50": round(percentile(times, 50), 2),
                                              "p99": round(percentile(times, 99), 2)},
            "replacements_not_covered_by_end": uncovered,
            "capacity_lost_instance_s": round(lost, 1),
            "served_without_failed_daemon": sum(1 for r in failed if r.first_replica_started_at is not None)}


def _chain_covered_at(instance_id: str, replaced_by: Mapping[str, str], by_ec2: Mapping[str, str],
                      record_of: Mapping[str, LaunchRecord]) -> float | None:
    """When the first instance of a replacement chain ran every eligible daemon (None: none did)."""
    seen: set[str] = set()
    while instance_id not in seen:
        seen.add(instance_id)
        record = record_of.get(by_ec2.get(instance_id, ""))
        if record is not None and record.daemons_running_at is not None and not record.daemon_failed_to_start:
            return record.daemons_running_at
        if instance_id not in replaced_by:
            return None
        instance_id = replaced_by[instance_id]
    return None


def instances_missing_daemons(world: World) -> int:
    """ACTIVE instances where some daemon service whose constraints the instance meets has no RUNNING task
    now (the simulator's own records)."""
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
