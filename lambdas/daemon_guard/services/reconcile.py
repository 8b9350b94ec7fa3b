"""The reconcile pass (the reconciler's service): audit every instance, repair what events missed, emit coverage.

Events are at-least-once and can be late or lost; this is what makes the guarantee hold anyway.
Per cluster and run, its reads are bounded by the number of instances and daemon tasks, not by the
number of app tasks: ListContainerInstances + DescribeContainerInstances (100 per call), and per
daemon service ListTasks(serviceName) + DescribeTasks (100 per call). On a 2,000-instance cluster
with three daemons that is about 160 calls, inside ECS's cluster-read budget (100 burst, 20/s).
Only instances that look wrong (a daemon missing, a gate shut past its timeout) get the full
per-instance reflex. It also finds lifecycle actions left waiting with no workflow (a lost event)
and starts the workflow that completes them; that comes first, because a lifecycle action left
waiting holds an instance, while a repair not made now is made by the next run.

Wiring: in placement mode ``gate`` or drain order ``tiers``, at most once per `WIRING_AUDIT_PERIOD_MIN`
per cluster (across containers, through the event ledger), it also reads the replica services
(ListServices + DescribeServices in batches of 10; the daemon services are read anyway) and publishes
the services missing their constraint (`core.doctor.service_findings`) as ``ServicesWithoutGate`` /
``DaemonServicesWithoutTier`` and a ``Constraints Missing`` event: a service deployed later without
its constraint is noticed within that period. 500 replica services cost 5 + 50 service reads per period.

Scale (20,000 instances in 10 clusters of one account): a whole-cluster audit every minute would cost
about 1,600 reads a minute there, above the account's whole cluster-read refill. So each run does two
things. (1) The incremental look, every run, every cluster: one ListContainerInstances whose cluster-query
filter asks ECS for the ACTIVE, connected instances where an eligible daemon has no task (``not(task:group
== service:<daemon>)`` within that daemon's own memberOf expressions) or, in gate mode, the gate is shut;
the intake's events repair most of these within seconds, and this catches what a lost event left. Only
those suspects are described and judged (at most `SUSPECTS_PER_RUN` a cluster, rotating). (2) The rotating
full audit (`reconcile_cluster`): one cluster every ``auditCycleMinutes / clusters``, so every instance is
audited within ``auditCycleMinutes``; its position lives in the state table (`AuditCursor`, a conditional
write), so concurrent runs never audit the same cluster twice and a run that failed leaves it due. Every
ECS read of a run goes through a `ReadPace` of `READ_RATE_PER_S` (burst `READ_BURST`): at most 40% of
each read bucket's refill and burst, whatever else the account runs. A throttled read costs what it was
reading (one suspect, one repair, or the rest of one cluster's audit, which stays due), never the pass.

Time: the function's Timeout is its schedule period, and under throttling (a hundred drains sharing
the cluster-read rate) a reflex can take seconds. The pass reads what time is left (`time_left`)
and leaves repairs to the next run once less than `REPAIR_RESERVE_S` remains, counted as deferred.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from daemon_guard.adapters.errors import Throttled
from daemon_guard.adapters.pacing import ReadPace
from daemon_guard.bootstrap import Runtime
from daemon_guard.core import guard_events as ge
from daemon_guard.core import metrics as m
from daemon_guard.core.actions import AnyAction
from daemon_guard.core.config import LAUNCH_HOOK_NAME, TERMINATE_HOOK_NAME, DrainOrder, PlacementMode
from daemon_guard.core.coverage import coverage, coverage_percent, covers
from daemon_guard.core.doctor import service_findings
from daemon_guard.core.eligibility import eligible_daemons
from daemon_guard.core.events import LifecycleAction, LifecycleLocation
from daemon_guard.core.identifiers import AsgName, HookName, InstanceId
from daemon_guard.core.intake import Route
from daemon_guard.core.model import InstanceView, ServiceView, TaskDefinitionView
from daemon_guard.core.placement import (
    GATE_DRAINING,
    GATE_OPEN,
    daemons_cannot_fit,
    gate_is_open,
    gate_shut_age,
    seconds_since_registration,
)
from daemon_guard.core.retry import unlimited
from daemon_guard.observability import logger
from daemon_guard.services.exits import start_due_drains
from daemon_guard.services.notify import announce, announce_cannot_fit
from daemon_guard.services.reflex import check_instance
from daemon_guard.services.starts import start_drain, start_launch_gate

# Instances younger than this that the audit finds covered are marked complete in the state table,
# so the intake skips their replica events without reading ECS (older ones were marked long ago).
FRESH_S = 900.0
# What a repair may take at worst under throttling (SDK backoff included) and the metrics after it.
REPAIR_RESERVE_S = 20.0
# How often the services' constraints are audited per cluster: services change by deployment, and their
# reads share ECS's service-read rate (100 burst, 20/s) with the drains and the operators' tooling.
WIRING_AUDIT_PERIOD_MIN = 10
# The reconciler's share of each ECS read bucket (100 burst, 20/s): 40% of the refill, 40% of the burst.
READ_RATE_PER_S = 8.0
READ_BURST = 40.0
# Suspects judged per cluster and run: a daemon that cannot fit anywhere must not cost two reads per
# instance every minute; the rest are judged in the next runs (the window rotates).
SUSPECTS_PER_RUN = 25
# A full audit of one cluster is started only with this much time left (a 5,000-instance cluster is
# about 400 reads, 45 s at the pace): otherwise it stays due for the next run.
AUDIT_RESERVE_S = 50.0


@dataclass
class ReconcileSummary:
    """What one audit of one cluster found and did."""

    cluster: str
    instances: int = 0
    eligible_slots: int = 0
    running_slots: int = 0
    draining: int = 0
    repaired: int = 0
    repairs_deferred: int = 0  # instances that looked wrong when too little time was left to repair them
    workflows_started: int = 0
    cannot_fit: int = 0  # instances whose eligible daemons cannot fit even when empty
    actions: list[AnyAction] = field(default_factory=list)
    audit: bool = True  # a full audit of the cluster; False: the incremental look at its suspects
    throttled: int = 0  # reads ECS throttled (what they were reading waits for the next run)
    judged: set[str] = field(default_factory=set)  # instances checked for repair (never twice in one run)

    @property
    def coverage(self) -> float:
        """Share of eligible daemon slots with a RUNNING task, in percent."""
        return coverage_percent(self.running_slots, self.eligible_slots)


def reconcile_cluster(rt: Runtime, cluster: str, time_left: Callable[[], float] = unlimited, *,
                      lifecycle: bool = True, judged: frozenset[str] = frozenset()) -> ReconcileSummary:
    """Audit one whole cluster: lifecycle actions left waiting (unless `lifecycle` is False: the caller looked),
    coverage, repairs (while time allows; not again for the instances in `judged`, checked earlier in the same
    run), stuck gates."""
    ecs = rt.cluster(cluster)
    summary = ReconcileSummary(cluster, judged=set(judged))
    if lifecycle:
        _restart_lost_lifecycle_actions(rt, cluster, summary)
    daemons = ecs.daemon_services(refresh=True)
    running_on: dict[str, set[str]] = defaultdict(set)
    for svc in daemons:
        for task in ecs.tasks(ecs.service_task_arns(svc.name)):
            if covers(task):
                running_on[task.container_instance_arn].add(task.group)
    active = ecs.instances(ecs.instance_arns(status="ACTIVE"))
    summary.draining = len(ecs.instance_arns(status="DRAINING"))
    _judge(rt, cluster, active, daemons, running_on, summary, time_left)
    rt.metrics.emit(m.DAEMON_COVERAGE, summary.coverage, cluster)
    rt.metrics.emit(m.MISSING_DAEMON_TASKS, summary.eligible_slots - summary.running_slots, cluster)
    rt.metrics.emit(m.DRAINS_IN_PROGRESS, summary.draining, cluster)
    rt.metrics.emit(m.DAEMONS_CANNOT_FIT, summary.cannot_fit, cluster)
    audit_wiring(rt, cluster, daemons, rt.now(), time_left)
    if summary.repairs_deferred:
        logger.warning("repairs left to the next run: too little time left", extra={
            "cluster": cluster, "instances": summary.repairs_deferred})
    return summary


def _judge(rt: Runtime, cluster: str, instances: list[InstanceView], daemons: tuple[ServiceView, ...],
           running_on: dict[str, set[str]], summary: ReconcileSummary, time_left: Callable[[], float]) -> None:
    """Count each connected instance's daemon slots into `summary`; repair those missing a daemon or stuck
    behind a shut gate (while time allows); remember the fresh ones found complete."""
    ecs = rt.cluster(cluster)
    gate_mode = rt.config.placement_mode is PlacementMode.GATE
    now = rt.now()
    fresh_complete: list[str] = []
    for instance in instances:
        if not instance.agent_connected:
            continue
        summary.instances += 1
        groups = running_on.get(instance.arn, set())
        eligible = eligible_daemons(instance, daemons, ecs.known_task_definitions, groups).eligible
        too_big = daemons_cannot_fit(instance, eligible, ecs.known_task_definitions)
        if too_big:
            summary.cannot_fit += 1
            announce_cannot_fit(rt, cluster, instance, now, too_big)
        running = len(coverage(eligible, groups).running)
        summary.eligible_slots += len(eligible)
        summary.running_slots += running
        if running == len(eligible) and (not gate_mode or gate_is_open(instance, rt.config.gate_attribute)) \
                and seconds_since_registration(instance, now) < FRESH_S:
            fresh_complete.append(instance.arn)
        gate = rt.config.gate_attribute
        gate_stuck = gate_mode and not gate_is_open(instance, gate) and instance.attributes.get(gate) != GATE_DRAINING \
            and (running == len(eligible) or gate_shut_age(instance, gate, now) >= rt.config.gate_timeout_s)
        if instance.arn in summary.judged:
            continue
        if (running < len(eligible) or gate_stuck) and time_left() < REPAIR_RESERVE_S:
            summary.repairs_deferred += 1
        elif running < len(eligible) or gate_stuck:
            summary.judged.add(instance.arn)
            try:
                outcome = check_instance(rt, cluster, instance, daemons=daemons)
            except Throttled:  # costs this repair only: the next run (or the intake's next event) makes it
                summary.throttled += 1
                summary.repairs_deferred += 1
                continue
            if outcome.plan.actions:
                summary.repaired += 1
                summary.actions.extend(outcome.plan.actions)
    if fresh_complete:
        # New instances seen covered: the intake can skip their replica events without reading ECS.
        rt.complete.remember(fresh_complete)


def audit_wiring(rt: Runtime, cluster: str, daemons: tuple[ServiceView, ...], now: datetime,
                 time_left: Callable[[], float] = unlimited) -> bool:
    """Publish the services missing their constraint, once per `WIRING_AUDIT_PERIOD_MIN` per cluster (whichever
    container runs first in the period does it, with time left). Returns True when it audited."""
    config = rt.config
    gate, tiers = config.placement_mode is PlacementMode.GATE, config.drain_order is DrainOrder.TIERS
    period_s = WIRING_AUDIT_PERIOD_MIN * 60
    if not (gate or tiers) or time_left() < REPAIR_RESERVE_S or not rt.ledger.first_sighting(
            f"wiring-audit#{cluster}#{int(now.timestamp() // period_s)}", now.timestamp(), ttl_s=2 * period_s):
        return False
    ecs = rt.cluster(cluster)
    replicas = ecs.services(ecs.service_arns("REPLICA")) if gate else []
    found = service_findings(config, [*replicas, *daemons])  # (a daemon needs nothing unless drainOrder is tiers)
    rt.metrics.emit(m.SERVICES_WITHOUT_GATE, len(found.without_gate), cluster)
    rt.metrics.emit(m.DAEMON_SERVICES_WITHOUT_TIER, len(found.without_tier), cluster)
    if found.without_gate or found.without_tier:
        logger.warning("services without their constraint", extra={
            "cluster": cluster, "without_gate": list(found.without_gate), "without_tier": list(found.without_tier)})
        announce(rt, [ge.constraints_missing(cluster, now, found.without_gate, found.without_tier)])
    return True


# Wait states in which one of daemon-guard's hooks may hold an instance: (transition, origin, destination).
# Warm-pool instances are listed by DescribeWarmPool only (DescribeAutoScalingGroups leaves them out).
WAIT_STATES: dict[str, tuple[Literal["launch", "terminate"], LifecycleLocation, LifecycleLocation]] = {
    "Pending:Wait": ("launch", "EC2", "AutoScalingGroup"),
    "Terminating:Wait": ("terminate", "AutoScalingGroup", "EC2"),
    "Warmed:Pending:Wait": ("launch", "EC2", "WarmPool"),
    "Warmed:Terminating:Wait": ("terminate", "WarmPool", "EC2"),
}


def _restart_lost_lifecycle_actions(rt: Runtime, cluster: str, summary: ReconcileSummary) -> None:
    """Start the workflow for any lifecycle action of OUR hooks waiting without one (its event was lost).

    An instance counts only when the group is managed here and daemon-guard's hook for that transition
    is on it: an instance held by another hook (a group whose launch hook is someone else's) is not ours
    to complete, and is neither alarmed on nor touched. Warm-pool entries are completed at once, as the
    intake does; an instance leaving the warm pool for termination gets a drain (it runs no task).
    """
    managed = next(c for c in rt.config.clusters if c.name == cluster)
    hooked = {g.name: g for g in managed.groups if g.terminate_hook or g.launch_hook}
    if not hooked:
        return
    waiting = rt.autoscaling.group_instances(sorted(hooked))
    for name in sorted(hooked):
        waiting += rt.autoscaling.warm_pool(name)
    stuck = 0
    for group_name, instance_id, state in ((w.group, w.instance_id, w.lifecycle_state) for w in waiting):
        config = hooked.get(group_name)
        if config is None or state not in WAIT_STATES:
            continue
        transition, origin, destination = WAIT_STATES[state]
        if not (config.launch_hook if transition == "launch" else config.terminate_hook):
            continue
        kind = "drain" if transition == "terminate" else "gate"
        if rt.claims.workflow(kind, instance_id) is not None:
            continue
        stuck += 1
        ec2_id = InstanceId(instance_id)  # Auto Scaling's own answer: a real instance id
        lifecycle = LifecycleAction(
            account="", region="", transition=transition, asg_name=AsgName(group_name), ec2_instance_id=ec2_id,
            hook_name=HookName(TERMINATE_HOOK_NAME if kind == "drain" else LAUNCH_HOOK_NAME), token=None,
            origin=origin, destination=destination,
            event_id=f"reconcile-{instance_id}", time=datetime.fromtimestamp(0, UTC))
        route = Route("drain" if kind == "drain" else "launch-gate", "lifecycle action waiting with no workflow",
                      cluster, ec2_instance_id=ec2_id, trigger="lifecycle")
        start = start_drain if kind == "drain" else start_launch_gate
        result = start(route, lifecycle, rt, wake_joined=False)  # the reconciler may not wake workflows
        summary.workflows_started += result.decision == "started"
    if stuck:
        logger.warning("lifecycle actions waiting without a workflow", extra={"cluster": cluster, "count": stuck})
    rt.metrics.emit(m.STUCK_LIFECYCLE_ACTIONS, stuck, cluster)


def suspects_filter(daemons: Sequence[ServiceView], task_defs: Mapping[str, TaskDefinitionView],
                    gate_attribute: str | None) -> str | None:
    """The cluster query for the connected instances where an eligible daemon has no live task (each daemon
    within its own memberOf expressions) or, given `gate_attribute`, the gate is shut; None: nothing to ask."""
    clauses = []
    for svc in daemons:
        task_def = task_defs.get(svc.task_definition_arn)
        expressions = [c.expression for c in (*svc.constraints, *(task_def.constraints if task_def else ()))
                       if c.type == "memberOf" and c.expression]
        clauses.append(" and ".join([f"not(task:group == {svc.group})", *(f"({e})" for e in expressions)]))
    if gate_attribute:
        clauses.append(f"attribute:{gate_attribute} !in [{GATE_OPEN}, {GATE_DRAINING}]")
    if not clauses:
        return None
    return "agentConnected == true and (" + " or ".join(f"({c})" for c in clauses) + ")"


def look_for_missing(rt: Runtime, cluster: str, time_left: Callable[[], float] = unlimited) -> ReconcileSummary:
    """The incremental look at one cluster: lifecycle actions left waiting, then the instances ECS names as
    missing a daemon (or behind a shut gate), judged and repaired as the full audit would."""
    ecs = rt.cluster(cluster)
    summary = ReconcileSummary(cluster, audit=False)
    _restart_lost_lifecycle_actions(rt, cluster, summary)
    try:
        daemons = ecs.daemon_services()
        gate = rt.config.gate_attribute if rt.config.placement_mode is PlacementMode.GATE else None
        query = suspects_filter(daemons, ecs.known_task_definitions, gate)
        arns = sorted(ecs.instance_arns(status="ACTIVE", query=query)) if query else []
        # Shut gates first: a daemon that fits nowhere makes every instance a suspect, and a new instance's gate
        # must still open at its timeout (or its critical daemon's replacement begin) within a run or two.
        shut_query = suspects_filter((), ecs.known_task_definitions, gate) if gate else None
        shut = sorted(ecs.instance_arns(status="ACTIVE", query=shut_query)) if shut_query and arns else []
    except Throttled:
        summary.throttled += 1
        return summary
    window = shut[:SUSPECTS_PER_RUN]
    first = set(window)
    rest = [a for a in arns if a not in first]
    room = min(SUSPECTS_PER_RUN - len(window), len(rest))
    start = (int(rt.now().timestamp() // 60) * SUSPECTS_PER_RUN) % len(rest) if len(rest) > room > 0 else 0
    window += (rest + rest)[start:start + room] if room > 0 else []
    for arn in window:
        try:
            instance = ecs.instance(arn)
            tasks = ecs.tasks(ecs.task_arns_on(arn, "RUNNING")) if instance is not None else []
        except Throttled:  # costs this suspect only
            summary.throttled += 1
            continue
        if instance is None:
            continue
        running_on = {arn: {t.group for t in tasks if t.last_status == "RUNNING" and not t.stopping}}
        _judge(rt, cluster, [instance], daemons, running_on, summary, time_left)
    if len(arns) <= SUSPECTS_PER_RUN and not summary.throttled:
        # Every instance missing a daemon was judged: the counts hold for the whole cluster (coverage needs the
        # audit, which counts every slot).
        rt.metrics.emit(m.MISSING_DAEMON_TASKS, summary.eligible_slots - summary.running_slots, cluster)
        rt.metrics.emit(m.DAEMONS_CANNOT_FIT, summary.cannot_fit, cluster)
    audit_wiring(rt, cluster, daemons, rt.now(), time_left)
    return summary


def audit_due(rt: Runtime, time_left: Callable[[], float] = unlimited,
              judged: frozenset[str] = frozenset()) -> list[ReconcileSummary]:
    """The rotating full audit: the clusters whose turn has come, one every ``auditCycleMinutes / clusters``,
    each audited whole, its turn taken in the state table (`AuditCursor`) once it is done. A new deployment
    (no position yet) joins the rotation a little behind: the current turn and as many before it as one
    reconciler period spans, so that, runs coming a period apart, the last cluster's first audit still falls
    within the cycle; catching up a whole round at once would spend a cycle's reads in minutes while the
    incremental look already watches every cluster. A run behind (failed runs, an outage) catches up, at most
    one round."""
    clusters = [c.name for c in rt.config.clusters]
    slot_s = rt.config.audit_cycle_min * 60 / len(clusters)
    target = int(rt.now().timestamp() // slot_s)
    stored = rt.audit.audit_position()
    joining_lag = min(len(clusters), 1 + math.ceil(rt.config.reconcile_period_min * 60 / slot_s))
    position = target - joining_lag if stored == 0 else max(stored, target - len(clusters))
    summaries = []
    while position < target and time_left() >= AUDIT_RESERVE_S:
        cluster = clusters[position % len(clusters)]
        try:
            summary = reconcile_cluster(rt, cluster, time_left, lifecycle=False, judged=judged)
        except Throttled:  # costs the rest of this cluster's audit, which stays due
            logger.warning("audit throttled: the cluster stays due", extra={"cluster": cluster})
            summaries.append(ReconcileSummary(cluster, throttled=1))
            break
        summaries.append(summary)
        if not rt.audit.advance_audit(stored, position + 1):
            break  # another run took the turn
        stored = position = position + 1
    return summaries


def reconcile(rt: Runtime, time_left: Callable[[], float] = unlimited) -> list[ReconcileSummary]:
    """Start the scheduled drains now due, look at every managed cluster's suspects, then audit the clusters
    whose turn has come; every ECS read goes at the reconciler's pace. `time_left()` is the seconds the
    invocation has left (Lambda's context), which bounds the repairs and the audits."""
    start_due_drains(rt)
    clusters = [c.name for c in rt.config.clusters]
    pace = ReadPace(READ_RATE_PER_S, READ_BURST, lambda: rt.now().timestamp(), rt.sleep)
    summaries = []
    with rt.ecs.paced(pace):
        for cluster in clusters:
            summaries.append(look_for_missing(rt, cluster, time_left))
        summaries.extend(audit_due(rt, time_left, frozenset().union(*(s.judged for s in summaries))))
    for summary in summaries:
        logger.info("reconciled", extra={"cluster": summary.cluster, "audit": summary.audit,
                                         "coverage": round(summary.coverage, 2), "instances": summary.instances,
                                         "repaired": summary.repaired, "repairs_deferred": summary.repairs_deferred,
                                         "throttled": summary.throttled,
                                         "workflows_started": summary.workflows_started})
    logger.info("reconciler reads", extra={"reads": pace.reads, "paced_s": round(pace.waited_s, 1)})
    return summaries
