"""`daemon-guard demo`: the scale-out then scale-in story, told as a timeline with a PNG beside it.

The real intake, reconciler and workflows run unmodified against the simulator
(`sim.deployment.GuardDeployment`) on the default cluster of `bench.scenarios`: three daemons in three
drain tiers (app agents, metrics, log router) and a dozen replica services, configured as the README
recommends: gate placement (the gate constraint on every replica service) and the `tiers` drain order
(the tier constraint on every daemon service).

The same story and seed also run twice without daemon-guard, as users would run ECS on its own:
- ECS alone: its daemon scheduler, and ECS managed instance draining on both groups;
- ECS with AWS's documented workaround for daemon-first: `memberOf(task:group == service:<daemon>)` on
  every replica service (one per daemon), and managed draining.
The summary sets the three side by side.

The story, in simulated time:

- 00:00 a warm cluster: 16 on-demand and 4 Spot instances join under a replica backlog;
- 04:00 a scale-out: 15 more instances, 2 s apart, while every service still has tasks waiting;
- 07:45 demand falls: service auto scaling lowers each service's desired count;
- 08:45 a scale-in of 10 instances through the terminate lifecycle hook (ordered drains);
- 10:45 one Spot instance gets its two-minute interruption warning;
- 14:00 the end.

Every line of the timeline comes from what the deployment decided (its invocation results and log
lines) or from the simulator's own records (registrations, task transitions, lifecycle actions).
"""

from __future__ import annotations

import math
import re
import sys
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from bench.baselines import ManagedDraining
from bench.drain_measure import DrainRecord, measure_drains
from bench.measure import LaunchRecord, PlacementSummary, instances_missing_daemons, launch_records, summarize
from bench.scenarios import DAEMONS, TIERS, ClusterSpec, build_cluster, keep_backlog
from bench.suites import DEFAULT_PROFILE, GATE_ATTRIBUTE, guard_config
from sim.clock import Clock
from sim.deployment import GuardDeployment
from sim.ecs import profile_params
from sim.world import World, WorldOptions

CLUSTER = "prod"
ON_DEMAND_GROUP = "prod-asg"
SPOT_GROUP = "prod-spot"
WARM_ON_DEMAND, WARM_SPOT = 16, 4
SCALE_OUT, SCALE_IN = 15, 10
REPLICA_SERVICES = 12
BACKLOG_PER_SERVICE = 6
SCALE_OUT_AT = 240.0
SCALE_OUT_SPACING_S = 2.0
DEMAND_DROP_AT = 465.0
DEMAND_KEPT = 0.6
SCALE_IN_AT = 525.0
SPOT_AT = 645.0
HORIZON = 840.0
SLICE_S = 10.0
SPOT_NOTICE_S = 120.0
TRIGGERS = {"lifecycle": "terminate lifecycle action", "spot": "Spot interruption warning",
            "rebalance": "rebalance recommendation", "draining": "instance set to DRAINING by someone else",
            "operator": "operator's request"}

DAEMON_NAMES = tuple(d[0] for d in DAEMONS)
TIER_OF_DAEMON = {t["services"][0]: n for n, t in enumerate(TIERS)}
TIER_NAMES = tuple(str(t["name"]) for t in TIERS)
# Green, blue, magenta: told apart at a glance (and by most colour-blind readers), none near the reds.
DAEMON_COLOURS = {"xray-daemon": "#2b9348", "cwagent": "#1f5fbf", "fluent-bit": "#d0368a"}
REPLICA_COLOUR = "#6c757d"
REPLICA_PHASE_COLOUR = "#f4a261"


def mmss(t: float) -> str:
    """Simulated seconds as mm:ss."""
    whole = max(0, round(t))
    return f"{whole // 60:02d}:{whole % 60:02d}"


class SimTimeLogs(list[dict[str, Any]]):
    """The deployment's log list, each line stamped with the simulated time it was written at."""

    def __init__(self, clock: Clock) -> None:
        super().__init__()
        self._clock = clock

    def append(self, line: dict[str, Any]) -> None:
        """Keep the line and when (in simulated seconds) it was logged."""
        super().append({**line, "_sim_at": self._clock.now})


class Progress:
    """A one-line text progress bar on a stream (stderr)."""

    def __init__(self, total: float, stream: TextIO, width: int = 30) -> None:
        self.total, self.stream, self.width = total, stream, width

    def show(self, now: float, label: str) -> None:
        """Redraw the bar at simulated time `now`."""
        done = min(1.0, now / self.total)
        filled = int(done * self.width)
        bar = "#" * filled + "." * (self.width - filled)
        self.stream.write(f"\r  simulating [{bar}] {done:4.0%}  {mmss(now)} / {mmss(self.total)}  {label:<28}")
        self.stream.flush()

    def end(self) -> None:
        """Finish the line."""
        self.stream.write("\n")
        self.stream.flush()


@dataclass
class Story:
    """What happened when, beyond what the simulator records by itself."""

    phases: list[tuple[float, str]] = field(default_factory=list)
    spot_warnings: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class DrainPhases:
    """When each phase of one instance's drain ended (from the simulator's task transitions)."""

    instance_id: str
    instance_arn: str
    started: float
    replicas_end: float | None
    replica_tasks: int
    tier_ends: tuple[tuple[str, float, tuple[str, ...]], ...]
    ended: float | None


# ---- the run ------------------------------------------------------------------------------------
def _run_story(world: World, progress: Progress | None) -> Story:
    """Schedule the story and run the clock in slices (drawing the progress bar)."""
    asg, clock, ecs = world.asg, world.clock, world.ecs
    story = Story()

    def phase(at: float, text: str, action: Callable[[], object]) -> None:
        def run() -> None:
            story.phases.append((clock.now, text))
            action()
        clock.at(at, run)

    def warm() -> None:
        asg.scale_out(ON_DEMAND_GROUP, WARM_ON_DEMAND, 1.0)
        asg.scale_out(SPOT_GROUP, WARM_SPOT, 1.0)

    def demand_drop() -> None:
        for svc in ecs.services.values():
            if svc.cluster == CLUSTER and svc.strategy == "REPLICA":
                svc.desired_count = max(1, math.ceil(ecs.running[(CLUSTER, f"service:{svc.name}")] * DEMAND_KEPT))

    def spot() -> None:
        group = asg.groups[SPOT_GROUP]
        victim = next(i for i in sorted(group.instances.values(), key=lambda i: i.launched_at)
                      if i.state == "InService")
        story.spot_warnings[victim.instance_id] = clock.now
        asg.spot_interruption(victim.instance_id)

    keep_backlog(world, CLUSTER, BACKLOG_PER_SERVICE, 5.0, SCALE_OUT_AT + SCALE_OUT * SCALE_OUT_SPACING_S + 60.0)
    phase(0.0, f"warm cluster: {WARM_ON_DEMAND} on-demand + {WARM_SPOT} Spot instances join under a replica "
               f"backlog ({BACKLOG_PER_SERVICE} waiting tasks per service)", warm)
    phase(SCALE_OUT_AT, f"scale-out: {SCALE_OUT} instances, {SCALE_OUT_SPACING_S:.0f} s apart, backlog still "
                        f"waiting",
          lambda: asg.scale_out(ON_DEMAND_GROUP, SCALE_OUT, SCALE_OUT_SPACING_S))
    phase(DEMAND_DROP_AT, f"demand falls: each service's desired count cut to {DEMAND_KEPT:.0%} of what runs",
          demand_drop)
    phase(SCALE_IN_AT, f"scale-in: {SCALE_IN} instances through the terminate lifecycle hook",
          lambda: asg.scale_in(ON_DEMAND_GROUP, SCALE_IN))
    phase(SPOT_AT, "Spot interruption: EC2 warns one Spot instance (terminated 120 s later, whatever happens)", spot)
    labels = ((SPOT_AT, "Spot interruption"), (SCALE_IN_AT, "scale-in"), (DEMAND_DROP_AT, "demand falls"),
              (SCALE_OUT_AT, "scale-out"), (0.0, "warm cluster"))
    t = 0.0
    while t < HORIZON:
        t = min(HORIZON, t + SLICE_S)
        clock.run_until(t)
        if progress is not None:
            progress.show(t, next(label for at, label in labels if t > at))
    if progress is not None:
        progress.end()
    return story


# ---- reading the records ------------------------------------------------------------------------
def _drain_phases(world: World, starts: dict[str, float]) -> list[DrainPhases]:
    ecs = world.ecs
    arn_of = {inst.ec2_instance_id: inst.arn for inst in ecs.instances.values()}
    ends: dict[str, float] = {}
    for action in world.asg.history:
        if action.hook.transition.endswith("TERMINATING") and action.completed_at is not None:
            ends[action.instance_id] = max(ends.get(action.instance_id, 0.0), action.completed_at)
    tasks_by_instance: dict[str, list[Any]] = defaultdict(list)
    for task in ecs.tasks.values():
        tasks_by_instance[task.container_instance].append(task)
    out: list[DrainPhases] = []
    for instance_id, started in sorted(starts.items(), key=lambda kv: (kv[1], kv[0])):
        arn = arn_of.get(instance_id)
        if arn is None:
            continue
        on_it = [t for t in tasks_by_instance[arn] if t.stopped_at is not None and t.stopped_at >= started]
        replicas = [t for t in on_it if t.service_name and t.service_name not in TIER_OF_DAEMON]
        tier_ends = []
        for n, tier in enumerate(TIER_NAMES):
            in_tier = [t for t in on_it if TIER_OF_DAEMON.get(t.service_name or "") == n]
            if in_tier:
                tier_ends.append((tier, max(float(t.stopped_at) for t in in_tier),
                                  tuple(sorted({t.service_name for t in in_tier}))))
        killed = [t for t in on_it if t.killed]
        ended = ends.get(instance_id)
        if ended is None and killed:
            ended = max(float(t.stopped_at) for t in killed)
        out.append(DrainPhases(instance_id, arn, started,
                               max((float(t.stopped_at) for t in replicas), default=None), len(replicas),
                               tuple(tier_ends), ended))
    return out


def _timeline(world: World, deployment: GuardDeployment, story: Story, launches: list[LaunchRecord],
              drains: list[DrainPhases], drain_records: dict[str, DrainRecord]) -> list[tuple[float, int, str]]:
    """(time, order, text) lines: the story's phases, then every notable decision and effect."""
    ecs, asg = world.ecs, world.asg
    lines: list[tuple[float, int, str]] = [(at, 0, f"== {text}") for at, text in story.phases]
    intake_started: set[str] = set()
    drain_times: dict[str, tuple[float, float]] = {}
    spot_ids = {i for i, _ in _spot_instances(world)}
    by_arn = {inst.arn: inst for inst in ecs.instances.values()}

    # The warm cluster in one line; each scale-out launch in two (registered, daemons).
    warm = [r for r in launches if r.registered_at < SCALE_OUT_AT]
    if warm:
        first = sum(r.daemon_first for r in warm)
        spot_n = sum(by_arn[r.instance_arn].ec2_instance_id in spot_ids for r in warm)
        lines.append((max(r.registered_at for r in warm), 1,
                      f"{len(warm)} instances registered ({spot_n} Spot); "
                      f"every daemon RUNNING before any replica on {first}/{len(warm)}"))
    for rec in launches:
        if rec.registered_at < SCALE_OUT_AT:
            continue
        iid = by_arn[rec.instance_arn].ec2_instance_id
        lines.append((rec.registered_at, 1, f"{iid}  registered (eligible: {len(rec.eligible)} daemons)"))
        if rec.daemons_running_at is None:
            lines.append((HORIZON, 2, f"{iid}  daemons still missing at the end"))
            continue
        replica = "no replica yet" if rec.first_replica_started_at is None else \
            f"first replica {rec.first_replica_started_at - rec.registered_at:+.1f} s"
        verdict = "daemon-first" if rec.daemon_first else "REPLICA FIRST"
        lines.append((rec.daemons_running_at, 2, f"{iid}  all {len(rec.eligible)} daemons RUNNING in "
                      f"{rec.daemons_running_at - rec.registered_at:.1f} s ({replica}): {verdict}"))

    # What the deployment decided: evictions, gates, blocked placements, drains started.
    for inv in deployment.records.invocations:
        result = inv.result or {}
        decision = result.get("decision")
        who = result.get("instance") or "?"
        if decision == "evict":
            for action in result.get("actions", []):
                if action.get("type") == "StopTasks":
                    lines.append((inv.at, 3, f"{who}  preempt: {_eviction_text(ecs, action, result)}"))
        elif decision in ("open-gate", "gate-failed-open", "blocked"):
            lines.append((inv.at, 3, f"{who}  {decision}: {result.get('reason', '')}"))
        elif decision == "started" and result.get("route") == "drain":
            intake_started.add(str(who))
    for execution in deployment.durable.executions.values():
        if execution.function != deployment.drain_arn:
            continue
        iid = execution.payload.get("instanceId", "?")
        trigger = TRIGGERS.get(str(execution.payload.get("trigger")), str(execution.payload.get("trigger")))
        by = "by the intake" if iid in intake_started else "by the reconciler (lifecycle action without a workflow)"
        lines.append((execution.started_at, 4, f"{iid}  drain workflow started {by}: {trigger}"))
        if isinstance(execution.result, dict) and execution.result.get("duration", -1) >= 0:
            drain_times[iid] = (float(execution.result["duration"]), float(execution.result["overhead"]))
    for log in deployment.records.logs:
        if log.get("message") == "drain note":
            lines.append((float(log["_sim_at"]), 5, f"{log.get('instance')}  drain note: {log.get('kind')}: "
                                                    f"{log.get('detail')}"))

    # What the simulator saw of each drain: replicas gone, each tier stopped, the lifecycle action.
    for d in drains:
        if d.replicas_end is not None:
            lines.append((d.replicas_end, 5, f"{d.instance_id}  replicas gone ({d.replica_tasks} task(s) stopped "
                                             f"or replaced elsewhere)"))
        for n, (tier, at, names) in enumerate(d.tier_ends, start=1):
            lines.append((at, 6, f"{d.instance_id}  tier {n} '{tier}' stopped ({', '.join(names)})"))
    for action in asg.history:
        if action.hook.transition.endswith("TERMINATING") and action.completed_at is not None:
            how = "TIMED OUT, default result" if action.timed_out else "completed"
            took = drain_times.get(action.instance_id)
            detail = f"; drain took {took[0]:.1f} s, {took[1]:.1f} s above the slowest stops" if took else ""
            lines.append((action.completed_at, 7, f"{action.instance_id}  lifecycle action {how}: {action.result}"
                                                  f"{detail}; instance terminates"))
    for iid, warned in story.spot_warnings.items():
        drain = drain_records.get(iid)
        if drain is None:
            continue
        spent = drain.ended - warned
        met = spent <= SPOT_NOTICE_S and drain.kills == 0
        verdict = "Spot deadline met" if met else "Spot deadline MISSED"
        lines.append((drain.ended, 8, f"{iid}  {verdict}: drained in {spent:.0f} s of {SPOT_NOTICE_S:.0f} s, "
                                      f"{drain.kills} task(s) killed"))
    return sorted(lines, key=lambda line: (line[0], line[1], line[2]))


def _eviction_text(ecs: Any, action: dict[str, Any], result: dict[str, Any]) -> str:
    names = Counter(ecs.tasks[a].service_name or "standalone" for a in action["task_arns"] if a in ecs.tasks)
    listed = ", ".join(f"{c} {n}" if c > 1 else n for n, c in sorted(names.items()))
    reason = str(result.get("reason", ""))
    match = re.search(r"make room for ([^:]+):.*for a shortfall of (.+)$", reason)
    why = f" to make room for {match.group(1)} (short of {match.group(2)})" if match else f": {reason}"
    return f"stopped {len(action['task_arns'])} replica task(s) ({listed}){why}"


def _spot_instances(world: World) -> list[tuple[str, float]]:
    return [(i.instance_id, i.launched_at) for i in world.asg.groups[SPOT_GROUP].instances.values()]


@dataclass(frozen=True)
class Setup:
    """One way to run the story: who keeps daemons first and who drains the instances."""

    label: str
    guard: bool = False
    affinity: bool = False


GUARD = Setup("daemon-guard (gate + tiers)", guard=True)
ECS_ALONE = Setup("ECS alone")
AFFINITY = Setup("ECS + affinity", affinity=True)


def demo_config() -> dict[str, Any]:
    """The daemon-guard configuration the demo deploys: gate placement and the `tiers` drain order."""
    return guard_config([ON_DEMAND_GROUP, SPOT_GROUP], "gate", drainOrder="tiers")


@dataclass(frozen=True)
class _Outcome:
    """One run of the story, reduced to what the summary compares."""

    launches: int
    warm: int
    all_launches: PlacementSummary
    scale_out: PlacementSummary
    kills: int
    lifecycle_timeouts: int
    drains: int
    spot_drains: int
    spot_met: int
    daemons_before_apps: int
    tier_breaks: int


def _drain_starts(world: World, story: Story) -> dict[str, float]:
    starts = {i.instance_id: i.drain_started_at for g in world.asg.groups.values()
              for i in g.instances.values() if i.drain_started_at is not None}
    starts.update(story.spot_warnings)
    return starts


def _outcome(world: World, story: Story, launches: list[LaunchRecord]) -> _Outcome:
    scaled = [r for r in launches if r.registered_at >= SCALE_OUT_AT]
    all_summary = summarize(launches, HORIZON)
    drains = measure_drains(world, TIER_OF_DAEMON, _drain_starts(world, story), set(story.spot_warnings))
    spot = [r for r in drains if r.instance_id in story.spot_warnings]
    return _Outcome(len(launches), len(launches) - len(scaled), all_summary,
                    summarize(scaled, HORIZON) if scaled else all_summary,
                    len(world.ecs.ungraceful_kills), sum(1 for a in world.asg.history if a.timed_out),
                    len(drains), len(spot),
                    sum(1 for r in spot if r.ended - story.spot_warnings[r.instance_id] <= SPOT_NOTICE_S
                        and r.kills == 0),
                    sum(r.daemon_before_app for r in drains), sum(r.violations for r in drains))


def _build_world(seed: int, setup: Setup = GUARD) -> World:
    """The demo's cluster wired for `setup`: the gate and tier constraints for daemon-guard (as the README's
    quick start wires them), the daemon affinity for the workaround, managed draining without daemon-guard."""
    world = World(WorldOptions(seed=seed, ecs=profile_params(DEFAULT_PROFILE)))
    spec = ClusterSpec(name=CLUSTER, asg=ON_DEMAND_GROUP, replica_services=REPLICA_SERVICES, desired_per_service=4,
                       gate_attribute=GATE_ATTRIBUTE if setup.guard else None, tier_constraints=setup.guard,
                       daemon_affinity=setup.affinity)
    build_cluster(world, spec)
    world.asg.create_group(SPOT_GROUP, CLUSTER, spec.instance_type, spot=True)
    if not setup.guard:
        ManagedDraining(world)
    return world


def without_guard(seed: int, setup: Setup) -> _Outcome:
    """The same story and seed with no daemon-guard: ECS's own daemon scheduler and managed draining."""
    world = _build_world(seed, setup)
    story = _run_story(world, None)
    return _outcome(world, story, sorted(launch_records(world.ecs, HORIZON), key=lambda r: r.registered_at))


def _summary(world: World, deployment: GuardDeployment, story: Story, launches: list[LaunchRecord],
             drain_records: list[DrainRecord], baselines: dict[Setup, _Outcome]) -> list[str]:
    guard = _outcome(world, story, launches)
    runs = {GUARD: guard, **baselines}
    missing_at_end = instances_missing_daemons(world)
    active_at_end = sum(1 for i in world.ecs.instances.values() if i.status == "ACTIVE")
    gates_failed_open = int(sum(deployment.records.metric_values("GatesFailedOpen")))

    def width(setup: Setup) -> int:
        return max(len(setup.label), 12) + 3

    def row(label: str, value: Callable[[Setup, _Outcome], str]) -> str:
        return f"{label:<34}" + "".join(f"{value(s, o):>{width(s)}}" for s, o in runs.items())

    def pct(x: float) -> str:
        return f"{x:.1%}"

    return [
        "the same story and seed run three times: daemon-guard (gate placement, tiers drain order, the constraints "
        "wired), ECS alone (its daemon scheduler, ECS managed instance draining), and ECS with AWS's documented "
        "daemon-first workaround (a task:group affinity per daemon on every replica service, managed draining)",
        f"launches: {guard.launches} ({guard.warm} warm, {guard.launches - guard.warm} scale-out)",
        "",
        f"{'':<34}" + "".join(f"{s.label:>{width(s)}}" for s in runs),
        row("daemon-first rate, all launches", lambda _s, o: pct(o.all_launches.daemon_first_rate)),
        row("daemon-first rate, scale-out", lambda _s, o: pct(o.scale_out.daemon_first_rate)),
        row("every daemon within 60 s", lambda _s, o: pct(o.all_launches.coverage_rate)),
        row("time to daemons p50 / p99 (s)",
            lambda _s, o: f"{o.scale_out.time_to_daemons_p50:.1f} / {o.scale_out.time_to_daemons_p99:.1f}"),
        row("daemons stopped before apps", lambda _s, o: str(o.daemons_before_apps)),
        # ECS has no notion of daemon tiers: no order to keep or break there (n/a, not 0).
        row("tier-order breaks", lambda s, o: str(o.tier_breaks) if s.guard else "n/a"),
        row("tasks killed without a stop", lambda _s, o: str(o.kills)),
        row("lifecycle timeouts", lambda _s, o: str(o.lifecycle_timeouts)),
        row("Spot drains within the notice", lambda _s, o: f"{o.spot_met}/{o.spot_drains}"),
        "",
        f"daemon-guard also: {gates_failed_open} gate(s) failed open; at the end, {missing_at_end} of "
        f"{active_at_end} ACTIVE instance(s) missing a daemon",
        f"drains: {len(drain_records)} ({guard.drains - guard.spot_drains} scale-in, {guard.spot_drains} Spot; "
        f"{guard.spot_met} within the 120 s notice), ordering violations {sum(r.violations for r in drain_records)}",
        f"Lambda invocations: {len(deployment.records.invocations)} "
        f"(ECS API calls {sum(world.ecs_api.calls.values())}, throttled {world.ecs_api.throttled})",
    ]


# ---- the picture --------------------------------------------------------------------------------
@dataclass
class _Row:
    """What one row of the chart shows: an instance's tasks, its drain phases and its markers."""

    label: str
    tasks: list[tuple[str, float, float]] = field(default_factory=list)  # (daemon name or "", start, end)
    evicted: list[float] = field(default_factory=list)
    killed: list[float] = field(default_factory=list)
    shading: list[tuple[float, float, str]] = field(default_factory=list)
    boot: tuple[float, float] | None = None
    terminated: float | None = None
    spot_warning: float | None = None
    replica_first: float | None = None  # when a replica started before every daemon ran


def _drain_shading(d: DrainPhases) -> list[tuple[float, float, str]]:
    """(start, end, colour) spans: replicas leaving, then each tier in its daemon's colour."""
    spans: list[tuple[float, float, str]] = []
    begin = d.started
    if d.replicas_end is not None and d.replicas_end > begin:
        spans.append((begin, d.replicas_end, REPLICA_PHASE_COLOUR))
        begin = d.replicas_end
    for _tier, at, names in d.tier_ends:
        spans.append((begin, max(begin, at), DAEMON_COLOURS.get(names[0], "#8d99ae")))
        begin = max(begin, at)
    return spans


def _rows(world: World, story: Story, drains: list[DrainPhases]) -> tuple[list[_Row], dict[str, int]]:
    """One row per instance, in launch order; and each EC2 instance id's row."""
    ecs = world.ecs
    spot_ids = {i for i, _ in _spot_instances(world)}
    instances = sorted((i for g in world.asg.groups.values() for i in g.instances.values()),
                       key=lambda i: (i.launched_at, i.instance_id))
    index = {inst.instance_id: n for n, inst in enumerate(instances)}
    rows = [_Row(f"{inst.instance_id}{' Spot' if inst.instance_id in spot_ids else ''}") for inst in instances]
    for inst in instances:
        row = rows[index[inst.instance_id]]
        if inst.registered_at is not None:
            row.boot = (inst.launched_at, inst.registered_at)
        row.terminated = inst.terminated_at
        row.spot_warning = story.spot_warnings.get(inst.instance_id)
    by_arn = {inst.arn: rows[index[inst.ec2_instance_id]] for inst in ecs.instances.values()
              if inst.ec2_instance_id in index}
    for task in ecs.tasks.values():
        row_of = by_arn.get(task.container_instance)
        if row_of is None:
            continue
        name = task.service_name or ""
        daemon = name if name in DAEMON_COLOURS else ""
        end = task.stopped_at if task.stopped_at is not None else HORIZON
        if task.stopped_reason.startswith("daemon-guard:") and not daemon and task.stopping_at is not None:
            row_of.evicted.append(task.stopping_at)
        if task.killed:
            row_of.killed.append(end)
        if task.started_at is not None:
            row_of.tasks.append((daemon, task.started_at, end))
    for d in drains:
        if d.instance_id in index:
            rows[index[d.instance_id]].shading = _drain_shading(d)
    ec2_of = {inst.arn: inst.ec2_instance_id for inst in ecs.instances.values()}
    for record in launch_records(ecs, HORIZON):
        ec2_id = ec2_of.get(record.instance_arn)
        if ec2_id in index and not record.daemon_first and record.first_replica_started_at is not None:
            row = rows[index[ec2_id]]
            row.replica_first = record.first_replica_started_at
    return rows, index


def _draw_rows(ax: Any, rows: list[_Row], origin: list[float], horizon: float) -> None:
    """Draw rows top to bottom; row k's times are shifted by -origin[k]."""
    lane = {name: 0.06 + 0.15 * n for n, name in enumerate(DAEMON_NAMES)}
    for y, (row, zero) in enumerate(zip(rows, origin, strict=True)):
        for start, end, colour in row.shading:
            ax.broken_barh([(start - zero, max(0.2, end - start))], (y - 0.5, 1.0), facecolors=colour, alpha=0.35,
                           zorder=0, edgecolor="none")
        if row.boot is not None:
            ax.plot([row.boot[0] - zero, row.boot[1] - zero], [y, y], color="#adb5bd", lw=1.2, ls=":", zorder=1)
        replicas = [(s - zero, max(0.2, e - s)) for d, s, e in row.tasks if not d]
        if replicas:
            ax.broken_barh(replicas, (y - 0.46, 0.4), facecolors=REPLICA_COLOUR, alpha=0.13, zorder=2,
                           edgecolor="none")
        for name in DAEMON_NAMES:
            spans = [(s - zero, max(0.2, e - s)) for d, s, e in row.tasks if d == name]
            if spans:
                ax.broken_barh(spans, (y + lane[name] - 0.02, 0.13), facecolors=DAEMON_COLOURS[name], zorder=3,
                               edgecolor="none")
        if row.evicted:
            ax.scatter([t - zero for t in row.evicted], [y - 0.16] * len(row.evicted), marker="x", color="#d62828",
                       s=36, zorder=8, linewidths=1.8)
        if row.killed:
            ax.scatter([t - zero for t in row.killed], [y] * len(row.killed), marker="X", color="black", s=50,
                       zorder=8)
        if row.terminated is not None and row.terminated - zero <= horizon:
            ax.plot([row.terminated - zero], [y], marker="|", color="black", ms=13, mew=2.2, zorder=6)
        if row.spot_warning is not None:
            ax.plot([row.spot_warning - zero], [y], marker="v", color="#d62828", ms=10, zorder=7)
        if row.replica_first is not None and row.replica_first - zero <= horizon:
            ax.plot([row.replica_first - zero], [y - 0.26], marker="D", color="#f77f00", mec="black", mew=0.8,
                    ms=7, zorder=8)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([r.label for r in rows], fontsize=8, family="monospace")
    for tick, row in zip(ax.get_yticklabels(), rows, strict=True):
        if row.replica_first is not None:
            tick.set_color("#c1121f")
            tick.set_fontweight("bold")
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.grid(axis="x", color="#e9ecef", lw=0.6, zorder=0)


def plot_timeline(world: World, story: Story, drains: list[DrainPhases], out: Path) -> None:
    """Top: instances (in launch order) x simulated time. Bottom: every drain, aligned at its start."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter, MultipleLocator

    rows, index = _rows(world, story, drains)
    drained = [d for d in drains if d.instance_id in index]
    height = 4.2 + 0.3 * (len(rows) + len(drained))
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(16, height), dpi=100,
                                      gridspec_kw={"height_ratios": [len(rows) + 2, max(1, len(drained)) + 2]})

    _draw_rows(top, rows, [0.0] * len(rows), HORIZON)
    top.set_xlim(0, HORIZON)
    top.xaxis.set_major_locator(MultipleLocator(60))
    top.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: mmss(x)))
    top.set_xlabel("simulated time (mm:ss)")
    top.set_ylabel("EC2 instance (launch order)")
    top.set_title("The story: warm cluster, scale-out under a replica backlog (gate), scale-in, Spot interruption",
                  fontsize=12, loc="left", pad=30)
    for n, (at, text) in enumerate(story.phases):
        top.axvline(at, color="#495057", lw=0.9, ls="--", zorder=1)
        top.annotate(text.split(":")[0], (at, -0.5), xytext=(3, 3 + 12 * (n % 2)), textcoords="offset points",
                     fontsize=9, fontweight="bold", color="#212529", annotation_clip=False)

    drain_rows = [rows[index[d.instance_id]] for d in drained]
    longest = max((d.ended - d.started for d in drained if d.ended is not None), default=30.0)
    _draw_rows(bottom, drain_rows, [d.started for d in drained], longest + 5)
    bottom.set_xlim(-2, longest * 1.12 + 3)
    bottom.set_xlabel("seconds since the drain started (terminate lifecycle action or Spot warning)")
    bottom.set_ylabel("drained instance")
    bottom.set_title("Every drain, aligned at its start: replicas leave first (orange), then the daemon tiers in "
                     "order, then the lifecycle action completes and the instance terminates (black bar)",
                     fontsize=11, loc="left")
    for k, d in enumerate(drained):
        if d.instance_id in story.spot_warnings and d.ended is not None:
            took = d.ended - d.started
            bottom.annotate(f"Spot: drained in {took:.0f} s of EC2's {SPOT_NOTICE_S:.0f} s", (took, k),
                            xytext=(10, -3), textcoords="offset points", fontsize=8.5, color="#d62828",
                            va="center")

    handles: list[Any] = [Patch(color=DAEMON_COLOURS[n], label=f"daemon task {n} (tier {TIER_OF_DAEMON[n] + 1}, "
                                                                 f"{TIER_NAMES[TIER_OF_DAEMON[n]]})")
                          for n in DAEMON_NAMES]
    handles += [
        Patch(color=REPLICA_COLOUR, alpha=0.35, label="replica tasks (darker: more at once)"),
        Patch(color=REPLICA_PHASE_COLOUR, alpha=0.35, label="drain phase: replicas leaving"),
        Patch(facecolor="white", edgecolor="#adb5bd", label="drain phase: tier stopping (its daemon's colour)"),
        Line2D([], [], color="#d62828", marker="x", ls="", mew=1.8, label="replica evicted to fit a daemon"),
        Line2D([], [], color="#d62828", marker="v", ls="", label="Spot interruption warning"),
        Line2D([], [], color="#f77f00", marker="D", mec="black", ls="", label="replica-first launch (label in red)"),
        Line2D([], [], color="black", marker="|", ls="", ms=10, mew=2,
               label="lifecycle action completed: terminated"),
        Line2D([], [], color="black", marker="X", ls="", label="task killed by termination (want none)"),
        Line2D([], [], color="#adb5bd", ls=":", lw=1.2, label="booting (launch to ECS registration)"),
    ]
    top.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=8.5, frameon=False)
    caption = (
        "How to read it. Top: one row per EC2 instance, in launch order, over the whole run. On each row the three "
        "coloured lanes are the daemon tasks (one lane per daemon) and the grey band above them the replica "
        "tasks; a new instance is covered when its three lanes start no later than the grey band, and marked "
        "replica-first (orange diamond, red label) when a replica started before every daemon ran. Red crosses are "
        "replica tasks daemon-guard stopped to make room for a missing daemon. Bottom: the drained instances again, "
        "each shifted so that its drain starts at 0 s; the shading must run orange (replicas), then green, blue and "
        "magenta (tier 1, 2, 3) and end at the black bar: the lifecycle action completed and the instance terminated.")
    fig.text(0.012, 0.004, caption, fontsize=9.5, wrap=True, va="bottom", ha="left", color="#343a40")
    top_in, bottom_in, gap_in = 1.0, 1.45, 1.25
    usable = height - top_in - bottom_in
    fig.subplots_adjust(left=0.15, right=0.79, top=1 - top_in / height, bottom=bottom_in / height,
                        hspace=gap_in / ((usable - gap_in) / 2))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)


# ---- the command --------------------------------------------------------------------------------
def run_demo(seed: int, out: Path, *, progress: bool = True) -> int:
    """Run the story with seed `seed`, print its timeline and summary, and write the PNG to `out`."""
    world = _build_world(seed, GUARD)
    deployment = GuardDeployment(world, demo_config())
    deployment.records.logs = SimTimeLogs(world.clock)
    try:
        # The bar redraws one line with \r: only on a terminal, never into a log or a pipe.
        story = _run_story(world, Progress(HORIZON, sys.stderr) if progress and sys.stderr.isatty() else None)
    finally:
        deployment.close()

    launches = sorted(launch_records(world.ecs, HORIZON), key=lambda r: r.registered_at)
    starts = _drain_starts(world, story)
    drain_records = measure_drains(world, TIER_OF_DAEMON, starts, set(story.spot_warnings))
    drains = _drain_phases(world, starts)
    lines = _timeline(world, deployment, story, launches, drains, {r.instance_id: r for r in drain_records})

    print(f"daemon-guard demo, seed {seed}: cluster '{CLUSTER}', {REPLICA_SERVICES} replica services, daemons "
          + ", ".join(f"{name} (tier {TIER_OF_DAEMON[name] + 1})" for name in DAEMON_NAMES)
          + "; the real handlers and workflows in the simulator, gate placement and the tiers drain order")
    for at, _order, text in lines:
        print(f"{mmss(at)}  {text}" if not text.startswith("==") else f"\n{mmss(at)}  {text}")
    print("\nsummary")
    baselines = {setup: without_guard(seed, setup) for setup in (ECS_ALONE, AFFINITY)}
    for line in _summary(world, deployment, story, launches, drain_records, baselines):
        print(f"  {line}")
    plot_timeline(world, story, drains, out)
    print(f"\ntimeline chart: {out}")
    return 0
