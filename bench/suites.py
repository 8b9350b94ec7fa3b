"""The side-by-side benchmark: same scenarios, same seeds, every strategy, one run.

Suites:
- ``placement``: a scale-out under a replica backlog, for ``ecs-native`` (no automation),
  ``daemon-guard-preempt`` and ``daemon-guard-gate``; plus the API cost of one new-instance event at
  several cluster sizes.
- ``drain``: a day of terminations (a scale-in of 100 at once, an instance refresh, another scale-in,
  Spot interruptions) for ``ecs-native``, ``ecs-managed-draining``, ``polling-drain`` and each
  daemon-guard drain order (``daemon-guard-<order>``: the configuration is the strategy), with
  EventBridge duplicating 20% of deliveries to daemon-guard.
- ``robustness``: every strategy of both suites over the behaviour profiles (sim.ecs.PROFILES), each
  metric as {min, max} and the profile each extreme came from.
Every suite runs under one behaviour profile (``--profile``), the ECS behaviours the guide leaves
open or users report otherwise.
Figures are read off the simulator's own records (bench.measure, bench.drain_measure).
"""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from bench.attribution import Violation, attribute, guard_records
from bench.baselines import ManagedDraining, PollingDrain
from bench.drain_measure import DrainRecord, measure_drains, summarize_drains
from bench.measure import LaunchRecord, critical_daemon_figures, eviction_cost, launch_records, percentile, summarize
from bench.scenarios import (
    TIERS,
    ClusterSpec,
    DrainStory,
    ScaleOut,
    build_cluster,
    build_drain_cluster,
    run_drain_story,
    run_scale_out,
)
from sim.deployment import GuardDeployment
from sim.ecs import SimTask, profile_params
from sim.eventbridge import FaultPlan
from sim.latency import api_latency
from sim.params import ParamValue
from sim.params import apply as apply_params
from sim.world import World, WorldOptions

PLACEMENT_STRATEGIES = ("ecs-native", "ecs-native-affinity", "daemon-guard-preempt", "daemon-guard-gate")
DRAIN_STRATEGIES = ("ecs-native", "ecs-managed-draining", "polling-drain", "daemon-guard-draining",
                    "daemon-guard-apps-first", "daemon-guard-tiers")
# The guarantees each strategy's configuration promises, and the orders it keeps at all (n/a otherwise).
CLAIMS: dict[str, tuple[str, ...]] = {
    "ecs-native": (), "ecs-managed-draining": ("daemons-after-apps",), "polling-drain": (),
    "daemon-guard-draining": (), "daemon-guard-apps-first": ("daemons-after-apps",),
    "daemon-guard-tiers": ("daemons-after-apps", "tier-order"),
}
ORDERS: dict[str, tuple[str, ...]] = {
    "ecs-native": (), "ecs-managed-draining": ("daemons-after-apps",), "polling-drain": ("daemons-after-apps",),
    "daemon-guard-draining": ("daemons-after-apps", "tier-order"),
    "daemon-guard-apps-first": ("daemons-after-apps", "tier-order"),
    "daemon-guard-tiers": ("daemons-after-apps", "tier-order"),
}
DEFAULT_PROFILE = "as-documented"
# Event delivery and Lambda invocation as measured quantities, the same for every strategy's Lambdas
# (and each AWS call a function makes costs API latency on simulated time: sim.latency, per profile):
# ~0.5 s EventBridge latency with 0.4 s jitter and a 2% slow tail (lognormal, median 3 s), 60 ms
# invocation, and a 5% cold start of 0.9 s (the handlers' measured cold import, ~0.5 s, plus the
# python3.13 runtime's init).
TIMING = FaultPlan(jitter_s=0.4, tail_rate=0.02, tail_median_s=3.0, invoke_s=0.06, cold_start_rate=0.05,
                   cold_start_s=0.9)
FAILING_SHARE = 0.1
CRITICAL_STRATEGY = "daemon-guard-gate-critical"  # gate mode with the failing daemon marked critical
CRITICAL_BUDGET = 5  # maxReplacementsPerHour's default
AFFINITY_RUNNING_ONLY = "ecs-native-affinity (task:group of RUNNING tasks only)"
GATE_ATTRIBUTE = "daemon-guard.gate"
STORY_FILLED_S = 300.0  # the drain story's cluster is filled by then (bench.scenarios.run_drain_story)
Progress = Callable[[str], None]


def guard_config(groups: list[str], mode: str = "preempt", **extra: Any) -> dict[str, Any]:
    """The daemon-guard configuration document the simulated deployments use."""
    return {"clusters": [{"name": "prod", "autoScalingGroups": [
        {"name": g, "heartbeatTimeoutSeconds": 300} for g in groups]}],
        "placementMode": mode, "gateAttribute": GATE_ATTRIBUTE, "drainTiers": list(TIERS), **extra}


@dataclass
class BreachCounter:
    """Counts evictions that took a service below its minimumHealthyPercent (from the model's truth)."""

    world: World
    breaches: int = 0
    evictions: int = 0

    def __call__(self, kind: str, payload: dict[str, Any]) -> None:
        if kind != "task":
            return
        task: SimTask = payload["task"]
        if task.desired_status != "STOPPED" or task.last_status == "STOPPED" or \
                not task.stopped_reason.startswith("daemon-guard:") or task.stopping_at != self.world.clock.now:
            return
        name = task.service_name
        if name is None:
            return
        ecs = self.world.ecs
        svc = ecs.service_named(task.cluster, name)
        self.evictions += 1
        if task.last_status != "RUNNING":
            return  # a task that never started is not in runningCount: no service is taken lower
        floor = math.ceil(svc.desired_count * svc.minimum_healthy_percent / 100)
        if ecs.running[(task.cluster, task.group)] < floor:
            self.breaches += 1


def run_placement(strategy: str, seed: int, plan: ScaleOut, profile: str = DEFAULT_PROFILE,
                  failing_share: float = 0.0, params: Mapping[str, ParamValue] | None = None, *,
                  launch_hook: bool = False, max_replacements_per_hour: int = CRITICAL_BUDGET,
                  **ecs: Any) -> dict[str, Any]:
    """One strategy, one seed, one behaviour profile: the scale-out under backlog, measured.

    `failing_share`: the share of instances on which one daemon's image (the metrics agent) cannot
    start, to see what each strategy does with an instance a daemon will never reach. With
    ``daemon-guard-gate-critical`` that daemon is critical (``criticalDaemons``): its instances are
    replaced, `max_replacements_per_hour` at most, through the launch hook when `launch_hook`. `params`:
    named parameters on top of the profile (sim.params); `ecs`: other scheduler parameters beyond the profile's.
    """
    scheduler = replace(profile_params(profile), failing_daemon="cwagent" if failing_share else None,
                        failing_share=failing_share, **ecs)
    world = World(apply_params(WorldOptions(seed=seed, ecs=scheduler, delivery=TIMING,
                                            api_latency=api_latency(profile)), params or {}))
    gate = strategy in ("daemon-guard-gate", CRITICAL_STRATEGY)
    spec = ClusterSpec(gate_attribute=GATE_ATTRIBUTE if gate else None,
                       daemon_affinity=strategy == "ecs-native-affinity")
    build_cluster(world, spec)
    counter = BreachCounter(world)
    world.ecs.listeners.append(counter)
    deployment = None
    if strategy.startswith("daemon-guard-"):
        mode = "gate" if gate else "preempt"
        critical = {"criticalDaemons": ["cwagent"], "maxReplacementsPerHour": max_replacements_per_hour} \
            if strategy == CRITICAL_STRATEGY else {}
        deployment = GuardDeployment(world, guard_config([spec.asg], mode, **critical) | {
            "clusters": [{"name": "prod", "autoScalingGroups": [
                {"name": spec.asg, "terminateHook": False, "launchHook": launch_hook}]}]})
    try:
        horizon = run_scale_out(world, spec, plan)
        launches = launch_records(world.ecs, horizon, since=plan.measured_from)
        summary = summarize(launches, horizon).as_dict()
        summary["served_before_daemons"] = served_before_daemons(launches)
        if deployment is not None:
            summary["attribution"] = attribute(first_violations(world, launches),
                                               *guard_records(deployment.own_events.events))
        summary["evictions"] = counter.evictions
        summary["min_healthy_breaches"] = counter.breaches
        if deployment is not None:
            summary["gates_failed_open"] = int(sum(deployment.records.metric_values("GatesFailedOpen")))
        if strategy == CRITICAL_STRATEGY and deployment is not None:
            records = launch_records(world.ecs, horizon)
            summary["critical"] = critical_daemon_figures(world, records, horizon) | {
                "replacements_held": int(sum(deployment.records.metric_values("CriticalReplacementsHeld")))}
            summary["lambda_invocations"] = len(deployment.records.invocations)
            summary |= handler_timing(deployment)
        summary["ecs_calls"] = sum(world.ecs_api.calls.values())
        summary["throttled"] = world.ecs_api.throttled
        return summary
    finally:
        if deployment is not None:
            deployment.close()


FUNCTIONS = ("intake", "reconciler", "drain", "launch-gate")


def handler_timing(deployment: GuardDeployment) -> dict[str, Any]:
    """How long the invocations took in simulated time (API latency and backoff), and how many timed out, in all
    and per function (every function named, zeros included)."""
    durations = [i.duration_s for i in deployment.records.invocations]
    timed_out = Counter(i.name for i in deployment.records.invocations
                        if i.error is not None and i.error.startswith("TimedOut"))
    return {"handler_duration_s": {q: round(percentile(durations, n), 3) for q, n in (("p50", 50), ("p99", 99))},
            "handler_timeouts": sum(timed_out.values()),
            "handler_timeouts_by_function": {name: timed_out[name] for name in FUNCTIONS}}


def timeouts_text(figures: dict[str, Any]) -> str:
    """Handler timeouts named by function ("0", or "3: reconciler 2, drain 1"); "n/a" without a deployment."""
    by_function = figures.get("handler_timeouts_by_function")
    if by_function is None:
        return "n/a"
    named = ", ".join(f"{name} {n}" for name, n in by_function.items() if n)
    return f"{figures['handler_timeouts']}: {named}" if named else "0"


def merge(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Pool per-seed results: rates weighted by launches, percentiles averaged, counts summed."""
    if len(results) == 1:
        return results[0]
    out: dict[str, Any] = {}
    launches = sum(r["launches"] for r in results)
    for key, value in results[0].items():
        if key.endswith("_by_function"):
            out[key] = {name: sum(r[key][name] for r in results) for name in value}
        elif key == "critical":
            out[key] = {k: ({q: round(statistics.fmean(r[key][k][q] for r in results), 2) for q in v}
                            if isinstance(v, dict) else sum(r[key][k] for r in results)) for k, v in value.items()}
        elif isinstance(value, dict):
            out[key] = {q: round(statistics.fmean(r[key][q] for r in results), 2) for q in value}
        elif key.endswith("_rate"):
            out[key] = round(sum(r[key] * r["launches"] for r in results) / launches, 4)
        elif key == "profile":
            out[key] = value
        else:
            out[key] = sum(r[key] for r in results)
    return out


def api_cost(sizes: tuple[int, ...], seed: int, new_instances: int = 20) -> dict[str, Any]:
    """ECS calls and handler CPU per new-instance event, on clusters of each size."""
    out: dict[str, Any] = {}
    for size in sizes:
        world = World(WorldOptions(seed=seed, ecs=profile_params(DEFAULT_PROFILE),
                                  api_latency=api_latency(DEFAULT_PROFILE)))
        spec = ClusterSpec(replica_services=10, desired_per_service=max(2, size // 2))
        build_cluster(world, spec)
        world.asg.scale_out(spec.asg, size, min(0.05, 100.0 / size))
        world.clock.run_until(max(150.0, size * min(0.05, 100.0 / size) + 300.0))
        deployment = GuardDeployment(world, guard_config([spec.asg]) | {
            "clusters": [{"name": "prod", "autoScalingGroups": [{"name": spec.asg, "terminateHook": False}]}]},
            reconcile=False)
        try:
            start = len(deployment.records.invocations)
            world.asg.scale_out(spec.asg, new_instances, 3.0)
            world.clock.run_until(world.clock.now + new_instances * 3.0 + 120.0)
            launch_events = [i for i in deployment.records.invocations[start:]
                             if i.result and i.result.get("reason", "").startswith("container instance ACTIVE")]
            out[str(size)] = {
                "launch_events": len(launch_events),
                "calls_per_launch_event": round(statistics.fmean(i.api_calls for i in launch_events), 2)
                if launch_events else None,
                "handler_cpu_ms_p50": round(percentile([i.cpu_ms for i in launch_events], 50), 2)
                if launch_events else None,
            }
        finally:
            deployment.close()
    return out


def placement_suite(launches: int, seeds: tuple[int, ...], sizes: tuple[int, ...],
                    progress: Progress, profile: str = DEFAULT_PROFILE,
                    params: Mapping[str, ParamValue] | None = None) -> dict[str, Any]:
    """Every placement strategy over the same launches and seeds, plus the API cost by cluster size
    (under one behaviour profile and the named `params`; the API cost at the profile alone)."""
    plan = ScaleOut(launches=launches)
    strategies: dict[str, Any] = {}
    for strategy in PLACEMENT_STRATEGIES:
        runs = []
        for seed in seeds:
            progress(f"placement: {strategy}, seed {seed}, {launches} launches, profile {profile}")
            runs.append(run_placement(strategy, seed, plan, profile, params=params))
        merged = merge(runs)
        strategies[strategy] = merged | eviction_cost(merged)
    failing = ScaleOut(launches=max(50, launches // 5), tail_s=300.0)
    stranded: dict[str, Any] = {}
    for strategy in PLACEMENT_STRATEGIES:
        progress(f"placement: {strategy}, failing daemon image on {FAILING_SHARE:.0%} of instances")
        stranded[strategy] = merge([run_placement(strategy, seed, failing, profile, FAILING_SHARE, params)
                                    for seed in seeds])
    # Whether a PENDING daemon task makes an instance a member of its group is not documented: the
    # affinity baseline with only RUNNING tasks counting, for the other reading.
    progress("placement: ecs-native-affinity, failing daemon image, task:group counting RUNNING tasks only")
    stranded[AFFINITY_RUNNING_ONLY] = merge([run_placement("ecs-native-affinity", seed, failing, profile, FAILING_SHARE,
                                                           params, task_group_states="running") for seed in seeds])
    progress("placement: daemon-guard-gate-critical, failing daemon image, that daemon critical (replaced)")
    stranded[CRITICAL_STRATEGY] = merge([run_placement(CRITICAL_STRATEGY, seed, failing, profile, FAILING_SHARE,
                                                       params) for seed in seeds])
    named = {"params": named_params(params)} if params else {}
    if not sizes:
        return {"profile": profile, **named, "strategies": strategies, "failing_daemon": stranded}
    progress(f"placement: API cost at cluster sizes {', '.join(map(str, sizes))}")
    cycle = params.get("daemon_cycle_s") if params else None
    return {"profile": profile, **named, "scenario": {"launches_per_seed": launches, "seeds": list(seeds),
                         "backlog_per_service": plan.backlog_per_service, "spacing_s": plan.spacing_s,
                         "daemon_cycle_s": cycle if cycle is not None else profile_params(profile).daemon_cycle_s},
            "strategies": strategies, "failing_daemon": {
                "scenario": {"launches_per_seed": failing.launches, "daemon": "cwagent", "share": FAILING_SHARE},
                "strategies": stranded},
            "api_cost": api_cost(sizes, seeds[0])}


def served_before_daemons(launches: list[LaunchRecord]) -> int:
    """Launches that started a replica before every eligible daemon was RUNNING: the gate's claim broken."""
    return sum(1 for r in launches if r.first_replica_started_at is not None and not r.daemon_first)


def first_violations(world: World, launches: list[LaunchRecord]) -> list[Violation]:
    """The daemons-first violations (`served_before_daemons`) as bench.attribution reads them: the instance
    and when its first replica started."""
    ec2 = {arn: inst.ec2_instance_id for arn, inst in world.ecs.instances.items()}
    return [Violation("daemons-first", ec2.get(r.instance_arn, r.instance_arn), r.first_replica_started_at)
            for r in launches if r.first_replica_started_at is not None and not r.daemon_first]


def drain_violations(records: list[Any]) -> list[Violation]:
    """Every ordering violation and kill of the drains (bench.drain_measure) as bench.attribution reads them,
    each earlier phase named as the guard names it (replicas, standalone, the tier's name)."""
    names = ["replicas", "standalone", *(t["name"] for t in TIERS)]
    out: list[Violation] = []
    for r in records:
        out += [Violation(claim, r.instance_id, at, tuple(names[p] for p in phases))
                for claim, _task, at, phases in r.order_breaks]
        out += [Violation("tasks-killed", r.instance_id, at) for _task, at in r.killed]
    return out


def named_params(params: Mapping[str, ParamValue]) -> dict[str, Any]:
    """Named parameters as JSON writes them (a range as [LO, HI])."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}


def _guard_drain_calls(deployment: GuardDeployment, records: list[Any]) -> int:
    """The ECS and Auto Scaling calls of the drains: the workflows, the intake's drain and wake routes,
    and the reconciler runs made while a drain was in progress (its share: it audits drains too)."""
    windows = [(r.started, r.ended) for r in records]

    def counts(inv: Any) -> bool:
        if inv.function == "reconciler":
            return any(a <= inv.at <= b for a, b in windows)
        return bool(inv.function == "workflow" or (inv.function == "intake" and inv.result is not None
                                                  and inv.result.get("route") in ("drain", "wake")))

    return sum(inv.api_calls for inv in deployment.records.invocations if counts(inv))


def story_drains(world: World, spot_starts: Mapping[str, float]) -> list[DrainRecord]:
    """The drains of a story, measured: every instance whose termination began (Auto Scaling's
    `drain_started_at`; a Spot instance from its notice, `spot_starts`), each daemon in its tier of TIERS."""
    starts = {i.instance_id: i.drain_started_at for g in world.asg.groups.values()
              for i in g.instances.values() if i.drain_started_at is not None}
    starts.update(spot_starts)
    tiers = {t["services"][0]: n for n, t in enumerate(TIERS)}
    return measure_drains(world, tiers, starts, set(spot_starts))


def run_drain(strategy: str, seed: int, story: DrainStory, profile: str = DEFAULT_PROFILE,
              params: Mapping[str, ParamValue] | None = None) -> dict[str, Any]:
    """One strategy, one seed, one behaviour profile (and named parameters on top, `sim.params`): the drain
    story, measured."""
    guard = strategy.startswith("daemon-guard-")
    delivery = replace(TIMING, duplicate_rate=0.2) if guard else TIMING
    world = World(apply_params(WorldOptions(seed=seed, delivery=delivery, ecs=profile_params(profile),
                                            api_latency=api_latency(profile)), params or {}))
    order = strategy.removeprefix("daemon-guard-") if guard else "draining"
    gated = order in ("apps-first", "tiers")
    groups = build_drain_cluster(world, story, gate_attribute=GATE_ATTRIBUTE if gated else None,
                                 tier_constraints=order == "tiers")
    deployment = None
    if strategy == "ecs-managed-draining":
        ManagedDraining(world)
    elif strategy == "polling-drain":
        PollingDrain(world, "prod")
    elif guard:
        deployment = GuardDeployment(world, guard_config(list(groups), "gate" if gated else "preempt",
                                                         drainOrder=order))
    spot_starts: dict[str, float] = {}

    def on_start(instance_id: str, how: str) -> None:
        if how == "spot":
            spot_starts[instance_id] = world.clock.now

    try:
        run_drain_story(world, story, groups, on_start)
        records = story_drains(world, spot_starts)
        extra: dict[str, Any] = {}
        violations = drain_violations(records)
        if gated:
            # The gate's claim on the story's own launches (the scale-out back and, with it, the refresh's).
            launches = launch_records(world.ecs, story.horizon_s, since=STORY_FILLED_S)
            extra["served_before_daemons"] = served_before_daemons(launches)
            violations += first_violations(world, launches)
        if deployment is not None:
            per_token: Counter[str] = Counter()
            per_instance: Counter[str] = Counter()
            for execution in deployment.durable.executions.values():
                if execution.function == deployment.drain_arn:
                    per_instance[execution.payload["instanceId"]] += 1
                    if execution.payload.get("token"):
                        per_token[execution.payload["token"]] += 1
            duplicates = sum(n - 1 for n in per_token.values() if n > 1)
            calls = _guard_drain_calls(deployment, records)
            extra["attribution"] = attribute(violations, *guard_records(deployment.own_events.events))
            extra |= handler_timing(deployment) | {"workflows": sum(per_instance.values()),
                     "workflow_failures": sum(1 for e in deployment.durable.executions.values()
                                              if e.status == "FAILED")}
        else:
            duplicates = 0
            calls = world.call_log.count()
        return summarize_drains(records, calls, duplicates, CLAIMS[strategy], ORDERS[strategy]) | extra
    finally:
        if deployment is not None:
            deployment.close()


def drain_suite(seeds: tuple[int, ...], story: DrainStory, progress: Progress, profile: str = DEFAULT_PROFILE,
                strategies_run: tuple[str, ...] = DRAIN_STRATEGIES,
                params: Mapping[str, ParamValue] | None = None) -> dict[str, Any]:
    """Every drain strategy over the same story and seeds, under one behaviour profile (and `params`)."""
    strategies: dict[str, Any] = {}
    for strategy in strategies_run:
        runs = []
        for seed in seeds:
            progress(f"drain: {strategy}, seed {seed}, profile {profile}")
            runs.append(run_drain(strategy, seed, story, profile, params))
        strategies[strategy] = runs[0] if len(runs) == 1 else _merge_drains(runs)
    named = {"params": named_params(params)} if params else {}
    return {"profile": profile, **named, "scenario": {"on_demand": story.on_demand, "spot": story.spot, "scale_ins": [
        story.first_scale_in, story.second_scale_in], "instance_refresh": story.refresh,
        "spot_interruptions": story.spot_interruptions, "seeds": list(seeds)}, "strategies": strategies}


def _merge_drains(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = defaultdict(int)
    for run in runs:
        for key, value in run.items():
            if key.endswith("_by_function"):
                out[key] = {name: sum(r[key][name] for r in runs) for name in value}
            elif isinstance(value, dict):
                out[key] = {q: round(statistics.fmean(r[key][q] for r in runs), 2) for q in value}
            elif key == "api_calls_per_drain":
                out[key] = round(statistics.fmean(r[key] for r in runs), 1)
            elif isinstance(value, (str, list)):
                out[key] = value
            else:
                out[key] += value
    return dict(out)


ROBUSTNESS_PROFILES = ("as-documented", "as-reported", "worst", "fast-cycle", "grace")


def _numbers(prefix: str, value: Any) -> dict[str, float]:
    """Flatten a strategy's figures to {metric: number} ("overhead_s.p99"); n/a and lists are left out."""
    if isinstance(value, dict):
        return {k: v for key, sub in value.items() for k, v in _numbers(f"{prefix}.{key}" if prefix else key,
                                                                         sub).items()}
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return {prefix: float(value)}
    return {}


def ranges(by_profile: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Per strategy and metric: {min, max} across the profiles and the profile each extreme came from."""
    out: dict[str, dict[str, Any]] = defaultdict(dict)
    for profile, strategies in by_profile.items():
        for strategy, figures in strategies.items():
            for metric, value in _numbers("", figures).items():
                cur = out[strategy].get(metric)
                if cur is None:
                    out[strategy][metric] = {"min": value, "min_profile": profile, "max": value,
                                             "max_profile": profile}
                    continue
                if value < cur["min"]:
                    cur["min"], cur["min_profile"] = value, profile
                if value > cur["max"]:
                    cur["max"], cur["max_profile"] = value, profile
    return dict(out)


def robustness_suite(seeds: tuple[int, ...], story: DrainStory, launches: int, progress: Progress,
                     profiles: tuple[str, ...] = ROBUSTNESS_PROFILES) -> dict[str, Any]:
    """Every strategy of both suites over the behaviour profiles: each metric's range and where it came from."""
    drains: dict[str, dict[str, Any]] = {}
    placements: dict[str, dict[str, Any]] = {}
    for profile in profiles:
        drains[profile] = drain_suite(seeds, story, progress, profile)["strategies"]
        placements[profile] = placement_suite(launches, seeds, (), progress, profile)["strategies"]
    return {"profiles": list(profiles), "seeds": list(seeds), "launches_per_seed": launches,
            "drain": ranges(drains), "placement": ranges(placements),
            "by_profile": {"drain": drains, "placement": placements}}
