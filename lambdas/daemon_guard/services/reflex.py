"""The placement reflex at the edge: load one instance's state, plan (core.placement), act, measure.

Used by the intake (on events) and the reconciler (on its audit). Reads: DescribeContainerInstances,
ListTasks(RUNNING), DescribeTasks, the cached daemon list; and only when an eviction may be needed,
ListTasks(STOPPED) for tasks already stopping, DescribeServices, GetTaskProtection, the eviction
budgets and preempt's tries on the instance; only when a critical daemon is missing past the gate
timeout, the cluster's replacements of this hour and the last. Writes: StopTask or PutAttributes;
preempt's tries (`core.futility`) conditionally before it stops anything, so two concurrent checks make
one try; a replacement (CompleteLifecycleAction ABANDON or SetInstanceHealth Unhealthy) only after its
conditional spend of the replacement budget, so concurrent checks replace an instance once. In gate mode a
daemon missing behind an open gate first shuts the gate again (PutAttributes `<gate>=repair@<epoch>`, after
reading the instance's record of tries); the gate is read back at once (DescribeContainerInstances) and, when
seen shut, the check plans again and evicts; otherwise the next look does (an event on the instance, or the
reconciler's suspects within a minute).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from daemon_guard.adapters.errors import AttributeLimitExceeded
from daemon_guard.adapters.executor import RunResult
from daemon_guard.bootstrap import Runtime
from daemon_guard.core import metrics as m
from daemon_guard.core.actions import OpenGate, ReplaceInstance, SetAttribute, StopTasks
from daemon_guard.core.eligibility import eligible_daemons, missing_daemons
from daemon_guard.core.futility import EPISODE_S, GIVE_UPS_COUNTER, FutilityBounds, gave_up
from daemon_guard.core.model import InstanceView, ServiceView, TaskView
from daemon_guard.core.outcomes import action_dict
from daemon_guard.core.placement import (
    PlacementPlan,
    PlacementPolicy,
    PlacementState,
    critical_missing,
    gate_reshut_at,
    needs_eviction_inputs,
    needs_repair_record,
    plan_placement,
    seconds_since_registration,
)
from daemon_guard.observability import logger
from daemon_guard.services.notify import announce_placement

REPLACEMENT_WINDOW_S = 3600  # maxReplacementsPerHour counts per clock hour


@dataclass(frozen=True)
class ReflexOutcome:
    """What the reflex decided for one instance."""

    instance_arn: str
    ec2_instance_id: str
    plan: PlacementPlan

    @property
    def instance(self) -> str:
        """How the instance is named in outcomes: its EC2 instance id (else its container instance ARN)."""
        return self.ec2_instance_id or self.instance_arn

    def as_dict(self) -> dict[str, Any]:
        """JSON form (logs)."""
        return {"instance": self.instance, "decision": self.plan.decision,
                "reason": self.plan.reason, "actions": [action_dict(a) for a in self.plan.actions],
                "missing": list(self.plan.missing)}


def policy_of(rt: Runtime) -> PlacementPolicy:
    """The configured placement policy."""
    return PlacementPolicy(rt.config.placement_mode, rt.config.gate_attribute, rt.config.gate_timeout_s,
                           FutilityBounds(rt.config.preempt_max_tries, rt.config.preempt_max_give_ups),
                           rt.config.critical_daemons)


def load_state(rt: Runtime, cluster: str, instance: InstanceView, tasks: Sequence[TaskView] | None = None,
               daemons: Sequence[ServiceView] | None = None) -> PlacementState:
    """The instance's placement state, without the eviction inputs."""
    ecs = rt.cluster(cluster)
    daemons = daemons if daemons is not None else ecs.daemon_services()
    tasks = tasks if tasks is not None else ecs.tasks(ecs.task_arns_on(instance.arn, desired="RUNNING"))
    groups = {t.group for t in tasks if not t.stopping}
    eligibility = eligible_daemons(instance, daemons, ecs.known_task_definitions, groups)
    for problem in eligibility.invalid:
        logger.warning("daemon constraint cannot be evaluated", extra={"service": problem.service,
                                                                       "problem": problem.message})
    return PlacementState(instance=instance, tasks=tuple(tasks), eligibility=eligibility,
                          task_defs=ecs.known_task_definitions, services={}, budget_left={}, now=rt.now())


def _with_eviction_inputs(rt: Runtime, cluster: str, state: PlacementState) -> PlacementState:
    tries = rt.budget.preempt_tries(cluster, state.instance.arn)
    missing = [s.name for s in missing_daemons(state.instance, state.eligibility.eligible, state.tasks)]
    if gave_up(tries, missing, state.now):
        return replace(state, preempt_tries=tries)  # preempt stopped here: the other reads would serve nothing
    ecs = rt.cluster(cluster)
    # Tasks already stopping count as room about to come back: read them only now that it matters.
    known = {t.arn for t in state.tasks}
    stopping = [t for t in ecs.tasks(ecs.task_arns_on(state.instance.arn, desired="STOPPED")) if t.arn not in known]
    state = replace(state, tasks=(*state.tasks, *stopping))
    replica_names = sorted({t.service_name for t in state.tasks if t.service_name} -
                           {s.name for s in state.eligibility.eligible})
    services = {s.name: s for s in ecs.services(replica_names)} if replica_names else {}
    candidates = [t.arn for t in state.tasks if t.service_name in services and not t.stopping]
    protected = ecs.protected(candidates) if candidates else set()
    tasks = tuple(replace(t, protected=True) if t.arn in protected else t for t in state.tasks)
    window = int(rt.now().timestamp()) // rt.config.eviction_window_s
    spent = rt.budget.budget_spent(cluster, list(services), window)
    budget = {name: max(0, rt.config.eviction_budget_per_service - spent.get(name, 0)) for name in services}
    give_ups = rt.budget.budget_spent(cluster, [GIVE_UPS_COUNTER], _episode(rt)).get(GIVE_UPS_COUNTER, 0)
    return replace(state, tasks=tasks, services=services, budget_left=budget, preempt_tries=tries,
                   cluster_give_ups=give_ups)


def _replacement_window(state: PlacementState) -> int:
    return int(state.now.timestamp()) // REPLACEMENT_WINDOW_S


def _with_replacement_inputs(rt: Runtime, cluster: str, state: PlacementState) -> PlacementState:
    """The cluster's replacements this hour and whether this instance is among them (or the last hour's:
    an instance replaced just before the hour turned is still leaving)."""
    window = _replacement_window(state)
    replaced = rt.budget.replaced_in(cluster, [window - 1, window])
    return replace(state, replaced=any(state.instance.arn in held for held in replaced.values()),
                   replacements_left=max(0, rt.config.max_replacements_per_hour - len(replaced[window])))


def _replacement_spent(rt: Runtime, cluster: str, state: PlacementState, policy: PlacementPolicy,
                       plan: PlacementPlan) -> PlacementPlan:
    """Spend the replacement budget before replacing; when another check spent it first (on this instance or
    the last of the hour's budget), plan again from what the table now says, and never replace twice."""
    if plan.decision != "replace-instance" or rt.budget.spend_replacement(
            cluster, state.instance.arn, _replacement_window(state), rt.config.max_replacements_per_hour,
            REPLACEMENT_WINDOW_S):
        return plan
    again = plan_placement(_with_replacement_inputs(rt, cluster, state), policy)
    if again.decision == "replace-instance":
        return PlacementPlan("replace-held", "the replacement budget was spent by a concurrent check", (),
                             plan.missing)
    return again


def _episode(rt: Runtime) -> int:
    return int(rt.now().timestamp()) // EPISODE_S


def check_instance(rt: Runtime, cluster: str, instance: InstanceView, *, trigger_group: str | None = None,
                   tasks: Sequence[TaskView] | None = None,
                   daemons: Sequence[ServiceView] | None = None) -> ReflexOutcome:
    """Plan and act for one instance (through the executor: a dry run records); emit the placement metrics."""
    policy = policy_of(rt)
    state = load_state(rt, cluster, instance, tasks, daemons)
    if needs_eviction_inputs(state, policy):
        state = _with_eviction_inputs(rt, cluster, state)
    elif needs_repair_record(state, policy):
        state = replace(state, preempt_tries=rt.budget.preempt_tries(cluster, instance.arn))
    if critical_missing(state, policy):
        state = _with_replacement_inputs(rt, cluster, state)
    plan = _recorded(rt, cluster, state, plan_placement(state, policy))
    plan = _replacement_spent(rt, cluster, state, policy, plan)
    outcome = ReflexOutcome(instance.arn, instance.ec2_instance_id, plan)
    if plan.decision in ("complete", "open-gate"):
        rt.complete.remember([instance.arn])
    else:
        rt.complete.forget(instance.arn)
    if plan.decision not in ("skip", "complete"):
        rt.metrics.emit(m.PLACEMENT_DECISIONS, 1, cluster, Mode=policy.mode.value)
        logger.info("placement decision", extra=outcome.as_dict())
    plan = _act(rt, cluster, state, plan)
    _measure(rt, cluster, state, plan, trigger_group)
    announce_placement(rt, cluster, state.instance, state.now, plan)
    if plan.decision == "shut-gate" and plan.actions:
        return _read_back_reshut(rt, cluster, instance, state, outcome, trigger_group)
    return outcome


def _read_back_reshut(rt: Runtime, cluster: str, instance: InstanceView, state: PlacementState,
                      outcome: ReflexOutcome, trigger_group: str | None) -> ReflexOutcome:
    """Read the gate back once right after shutting it again: when DescribeContainerInstances already shows
    it shut, plan again at once (the evictions it needs); otherwise the next look does (the reconciler's
    suspects include shut gates, and any event on the instance checks it), never evicting before the shut gate
    is seen (ECS's API is eventually consistent: until then a replica may still be placed on the room freed)."""
    seen = rt.cluster(cluster).instance(instance.arn)
    if seen is None or gate_reshut_at(seen, rt.config.gate_attribute) is None:
        logger.info("gate shut again, not yet seen shut: evictions wait for the next look",
                    extra={"instance": outcome.instance})
        return outcome
    again = check_instance(rt, cluster, seen, trigger_group=trigger_group, tasks=state.tasks)
    return replace(again, plan=replace(again.plan, actions=(*outcome.plan.actions, *again.plan.actions)))


def _recorded(rt: Runtime, cluster: str, state: PlacementState, plan: PlacementPlan) -> PlacementPlan:
    """Write preempt's new tries before acting; when another check of the instance wrote first, that check
    acts and this one stands back (no eviction, no second give-up)."""
    if plan.tries is None:
        return plan
    if rt.budget.record_tries(cluster, state.instance.arn, state.preempt_tries, plan.tries):
        if plan.decision == "futile":
            rt.budget.spend_budget(cluster, {GIVE_UPS_COUNTER: 1}, _episode(rt), EPISODE_S)
        return plan
    if plan.decision == "futile":
        return replace(plan, tries=None)
    return PlacementPlan("wait-for-ecs", "another check of this instance is making room", (), plan.missing)


def _act(rt: Runtime, cluster: str, state: PlacementState, plan: PlacementPlan) -> PlacementPlan:
    """Carry out the plan's actions; returns the plan as carried out (a replacement the group could not make
    left out, so that it is not announced)."""
    gone: list[ReplaceInstance] = []
    for action in plan.actions:
        if isinstance(action, StopTasks):
            rt.executor.run(cluster, action)
            victims = set(action.task_arns)
            # Only tasks that had started spend budget: a task that never ran served nothing.
            by_service = Counter(t.service_name or "" for t in state.tasks
                                 if t.arn in victims and t.last_status == "RUNNING")
            if by_service:
                window = int(rt.now().timestamp()) // rt.config.eviction_window_s
                rt.budget.spend_budget(cluster, by_service, window, rt.config.eviction_window_s)
            rt.metrics.emit(m.EVICTIONS, len(action.task_arns), cluster)
        elif isinstance(action, (OpenGate, SetAttribute)):
            _write_gate(rt, cluster, action)
        elif isinstance(action, ReplaceInstance) and _replace(rt, cluster, state, action) == "gone":
            gone.append(action)
    return replace(plan, actions=tuple(a for a in plan.actions if a not in gone)) if gone else plan


def _replace(rt: Runtime, cluster: str, state: PlacementState, action: ReplaceInstance) -> RunResult:
    """Have the group replace the instance; one not in a managed group, or already leaving, is reported and
    stays counted in the hour's budget (its gate stays shut: it serves no replicas either way)."""
    result = rt.executor.run(cluster, action)
    if result == "done":
        rt.metrics.emit(m.CRITICAL_REPLACEMENTS, 1, cluster)
        logger.warning("instance replaced: critical daemon missing past the gate timeout",
                       extra={"instance": action.ec2_instance_id, "daemons": list(action.daemons)})
    elif result == "gone":
        logger.error("instance not replaced: in no managed Auto Scaling group, or already leaving",
                     extra={"instance": action.ec2_instance_id, "container_instance": state.instance.arn})
    return result


def _write_gate(rt: Runtime, cluster: str, action: OpenGate | SetAttribute) -> None:
    """PutAttributes the gate (open, or shut again for a repair); an instance already at ECS's 10 custom
    attributes is reported, not retried.

    Retrying cannot help (only removing another attribute can), and raising would have EventBridge and the
    launch gate retry it in a loop: one error line and a metric per attempt, and the reconciler's next
    pass (once a period) tries again.
    """
    try:
        rt.executor.run(cluster, action)
    except AttributeLimitExceeded:
        attribute = action.attribute if isinstance(action, OpenGate) else action.name
        logger.error("gate not written: the container instance already has 10 custom attributes (ECS's limit); "
                     "remove one to let gated replicas land", extra={"instance": action.instance_arn,
                                                                     "attribute": attribute})
        rt.metrics.emit(m.GATE_ATTRIBUTE_REJECTED, 1, cluster)


def _measure(rt: Runtime, cluster: str, state: PlacementState, plan: PlacementPlan, trigger: str | None) -> None:
    age = seconds_since_registration(state.instance, state.now)
    if plan.decision == "gate-failed-open":
        rt.metrics.emit(m.GATES_FAILED_OPEN, 1, cluster)
    if plan.decision == "futile" and plan.tries is not None:
        rt.metrics.emit(m.PREEMPT_GAVE_UP, 1, cluster)
    if plan.decision == "replace-held" and rt.budget.note_held(cluster, state.instance.arn,
                                                               _replacement_window(state), REPLACEMENT_WINDOW_S):
        rt.metrics.emit(m.REPLACEMENTS_HELD, 1, cluster)  # once per instance and hour: the reconciler sees it often
    if plan.decision == "open-gate" and gate_reshut_at(state.instance, rt.config.gate_attribute) is None:
        rt.metrics.emit(m.GATE_OPEN_LATENCY, age, cluster)  # a first opening: a reopen after a repair is not one
    daemon_groups = {s.group for s in state.eligibility.eligible}
    completed_by_trigger = trigger in daemon_groups and plan.decision in ("complete", "open-gate")
    if completed_by_trigger and rt.ledger.first_sighting(f"ttd#{state.instance.arn}", state.now.timestamp()):
        rt.metrics.emit(m.TIME_TO_DAEMONS, age, cluster)
