"""The placement reflex: given one instance's state, decide how its eligible daemons get room.

Modes:
- ``preempt``: when a missing daemon cannot fit, stop the cheapest replica tasks that free enough
  room (see `core.eviction`); ECS's daemon scheduler then places the daemon.
- ``gate``: replica services carry `gate_constraint(...)`; the gate stays shut until every eligible
  daemon is RUNNING, then opens. A gate shut past its timeout opens anyway (fail open), unless a
  *critical* daemon (``criticalDaemons`` or the service tag ``daemon-guard:critical=true``) is among
  the missing: then the gate never opens and the instance is replaced, within the cluster's
  replacement budget (``maxReplacementsPerHour``); past it the replacement is held and the gate
  stays shut, as ECS Managed Daemons' auto-repair does. Once open, a daemon that goes missing (it
  exited, or ECS stopped it) shuts the gate again (`<gate>=repair@<epoch>`, PutAttributes: gated
  replicas cannot land, so room made for the daemon stays its own); only once a look shows the gate
  shut does the reflex evict the replicas needed to make room, and it reopens the gate when the daemons
  run again. The gate's timeout counts from the re-shut: past it a non-critical daemon fails open (and
  the gate is not shut again for it within `core.futility.EPISODE_S`), a critical one has the instance
  replaced.
- Either way, eviction is bounded per instance (`core.futility`): once replicas took the freed room
  again `preemptMaxTries` times before the daemons landed (or preempt gave up on `preemptMaxGiveUps`
  instances of the cluster within ten minutes), the plan is ``futile`` and stops nothing.
- ``observe``: decide and report, change nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from daemon_guard.core.actions import Action, OpenGate, ReplaceInstance, SetAttribute, StopTasks
from daemon_guard.core.config import PlacementMode, is_critical
from daemon_guard.core.coverage import coverage, running_groups
from daemon_guard.core.eligibility import Eligibility, missing_daemons
from daemon_guard.core.eviction import choose_evictions
from daemon_guard.core.fit import fits, room_after_stopping
from daemon_guard.core.futility import (
    EPISODE_S,
    FutilityBounds,
    PreemptTries,
    gave_up,
    gave_up_reason,
    judge_try,
    same_episode,
)
from daemon_guard.core.model import InstanceView, Resources, ServiceView, TaskDefinitionView, TaskView

GATE_OPEN = "open"
GATE_DRAINING = "draining"
GATE_REPAIR = "repair"  # `<gate>=repair@<epoch seconds>`: shut again, at that time, for a missing daemon
TIER_STOPPED = "stopped"


def gate_constraint(attribute: str = "daemon-guard.gate") -> dict[str, str]:
    """The placement constraint replica services add in gate mode (ECS API / CloudFormation shape).

    With drainOrder ``apps-first`` or ``tiers`` the drain shuts the gate (`<attribute>=draining`), so
    no replica lands on the instance while its tasks are stopped in order.
    """
    return {"type": "memberOf", "expression": f"attribute:{attribute} == {GATE_OPEN}"}


def tier_attribute(tier: str, gate_attribute: str = "daemon-guard.gate") -> str:
    """The instance attribute the drain sets when it stops a daemon tier (drainOrder ``tiers``)."""
    return f"{gate_attribute}.stop.{tier}"


def tier_constraint(tier: str, gate_attribute: str = "daemon-guard.gate") -> dict[str, str]:
    """The placement constraint each daemon service of `tier` carries with drainOrder ``tiers``.

    ECS evaluates the constraints of running daemon tasks and stops those that no longer match, and
    places no new one where it fails: once the drain sets the tier's attribute, that tier's daemons
    stop when the guard says and are not restarted.
    """
    return {"type": "memberOf", "expression": f"attribute:{tier_attribute(tier, gate_attribute)} !exists"}


@dataclass(frozen=True)
class PlacementState:
    """Everything the reflex knows about one instance at one moment."""

    instance: InstanceView
    tasks: Sequence[TaskView]
    eligibility: Eligibility
    task_defs: Mapping[str, TaskDefinitionView]
    services: Mapping[str, ServiceView]
    budget_left: Mapping[str, int]
    now: datetime
    preempt_tries: PreemptTries | None = None
    cluster_give_ups: int = 0
    replacements_left: int = 0  # the cluster's replacement budget left this hour (read only when it matters)
    replaced: bool = False  # the instance was already replaced (its group is terminating it)


@dataclass(frozen=True)
class PlacementPolicy:
    """The configured behaviour of the reflex."""

    mode: PlacementMode
    gate_attribute: str
    gate_timeout_s: int
    futility: FutilityBounds = field(default_factory=FutilityBounds)
    critical_daemons: frozenset[str] = frozenset()


PlacementDecision = Literal["skip", "draining", "complete", "open-gate", "gate-shut", "gate-failed-open", "shut-gate",
                            "wait",
                            "cannot-fit", "wait-for-ecs", "blocked", "would-evict", "evict", "futile",
                            "replace-instance", "replace-held", "replacing"]


@dataclass(frozen=True)
class PlacementPlan:
    """The decision for one instance: a name, why, the actions, and the daemons still missing.

    `tries`: preempt's record on the instance to write (conditionally) before acting, when an
    ``evict`` or ``futile`` plan changed it.
    """

    decision: PlacementDecision
    reason: str
    actions: tuple[Action, ...] = ()
    missing: tuple[str, ...] = ()
    would_evict: tuple[str, ...] = field(default=())
    tries: PreemptTries | None = None


def gate_is_open(instance: InstanceView, attribute: str) -> bool:
    """True when the instance carries `<attribute>=open`."""
    return instance.attributes.get(attribute) == GATE_OPEN


def repair_gate_value(now: datetime) -> str:
    """The gate attribute's value while it is shut again for a missing daemon: `repair@<epoch seconds>`, the
    time it was shut (ECS attribute values allow `@` and digits), so every reader knows when its timeout ends."""
    return f"{GATE_REPAIR}@{int(now.timestamp())}"


def gate_reshut_at(instance: InstanceView, attribute: str) -> float | None:
    """When the gate was shut again for a missing daemon (epoch seconds), or None: the gate is open, draining,
    never opened, or holds a value the guard did not write."""
    value = instance.attributes.get(attribute) or ""
    kind, _, epoch = value.partition("@")
    return float(epoch) if kind == GATE_REPAIR and epoch.isdigit() else None


def gate_shut_age(instance: InstanceView, attribute: str, now: datetime) -> float:
    """How long the gate has been shut, the age its timeout is judged by: since it was shut again for a
    missing daemon, else since the instance registered."""
    reshut_at = gate_reshut_at(instance, attribute)
    if reshut_at is None:
        return seconds_since_registration(instance, now)
    return max(0.0, now.timestamp() - reshut_at)


def seconds_since_registration(instance: InstanceView, now: datetime) -> float:
    """Age of the container instance (0 when ECS did not say when it registered)."""
    if instance.registered_at is None:
        return 0.0
    return max(0.0, (now - instance.registered_at).total_seconds())


def _requirements(daemons: Sequence[ServiceView], task_defs: Mapping[str, TaskDefinitionView]) -> Resources:
    need = Resources()
    for svc in daemons:
        td = task_defs.get(svc.task_definition_arn)
        if td is not None:
            need = need + td.requirements
    return need


def daemons_cannot_fit(instance: InstanceView, eligible: Sequence[ServiceView],
                       task_defs: Mapping[str, TaskDefinitionView]) -> tuple[str, ...]:
    """The eligible daemons' names when, together, they need more than the instance registered (even
    empty, it could not hold them all); () when they fit. An instance that never registered resources
    (a view without them) is not judged."""
    if instance.registered.cpu <= 0 and instance.registered.memory <= 0:
        return ()
    need = _requirements(eligible, task_defs)
    return () if fits(need, instance.registered) else tuple(s.name for s in eligible)


def _worth_room(instance: InstanceView, eligible: Sequence[ServiceView], missing: Sequence[ServiceView],
                task_defs: Mapping[str, TaskDefinitionView]) -> list[ServiceView]:
    """On an instance that cannot hold all its daemons: the missing ones still worth making room for.

    When the daemons that alone exceed the instance are set aside and the others fit together, room is
    made for those others; otherwise (no single culprit) for none: evicting could never end.
    """
    alone_too_big = {s.name for s in eligible if not fits(_requirements([s], task_defs), instance.registered)}
    rest = [s for s in eligible if s.name not in alone_too_big]
    if not alone_too_big or not fits(_requirements(rest, task_defs), instance.registered):
        return []
    return [s for s in missing if s.name not in alone_too_big]


def needs_eviction_inputs(state: PlacementState, policy: PlacementPolicy) -> bool:
    """True when the plan may evict, so the edge must load services, protection and budgets first."""
    instance = state.instance
    if instance.status != "ACTIVE" or not instance.agent_connected:
        return False
    if policy.mode is PlacementMode.GATE and gate_reshut_at(instance, policy.gate_attribute) is None:
        return False  # gate mode evicts only behind a gate shut again (an open one is shut first)
    missing = missing_daemons(instance, state.eligibility.eligible, state.tasks)
    if daemons_cannot_fit(instance, state.eligibility.eligible, state.task_defs):
        missing = tuple(_worth_room(instance, state.eligibility.eligible, missing, state.task_defs))
    room = room_after_stopping(instance, state.tasks)
    return bool(missing) and not fits(_requirements(missing, state.task_defs), room)


def needs_repair_record(state: PlacementState, policy: PlacementPolicy) -> bool:
    """True when, in gate mode, a daemon is not RUNNING on an instance whose gate is open or shut again for
    it: the plan may shut the gate, or fail it open, by the instance's record of tries (`core.futility`),
    so the edge reads it first."""
    instance = state.instance
    if policy.mode is not PlacementMode.GATE or instance.status != "ACTIVE" or not instance.agent_connected \
            or not (gate_is_open(instance, policy.gate_attribute)
                    or gate_reshut_at(instance, policy.gate_attribute) is not None):
        return False
    return bool(coverage(state.eligibility.eligible, running_groups(state.tasks)).not_running)


def critical_missing(state: PlacementState, policy: PlacementPolicy) -> tuple[str, ...]:
    """The critical daemons not RUNNING on an instance whose gate is shut past its timeout (gate mode; the
    timeout counts from a re-shut, `gate_shut_age`); () otherwise. When not empty the plan replaces or holds,
    so the edge reads the replacement budget."""
    instance = state.instance
    if policy.mode is not PlacementMode.GATE or instance.status != "ACTIVE" or not instance.agent_connected \
            or instance.attributes.get(policy.gate_attribute) in (GATE_OPEN, GATE_DRAINING) \
            or gate_shut_age(instance, policy.gate_attribute, state.now) < policy.gate_timeout_s:
        return ()
    not_running = set(coverage(state.eligibility.eligible, running_groups(state.tasks)).not_running)
    return tuple(s.name for s in state.eligibility.eligible
                 if s.name in not_running and is_critical(s.name, s.tags, policy.critical_daemons))


def _shut_gate_plan(state: PlacementState, policy: PlacementPolicy, not_running: tuple[str, ...]) -> PlacementPlan:
    """A shut gate with daemons not RUNNING: keep waiting; once the gate timeout has passed (counted from a
    re-shut, `gate_shut_age`), fail open, or, with a critical daemon among them, replace the instance (within
    the budget) and never open."""
    age = gate_shut_age(state.instance, policy.gate_attribute, state.now)
    if age < policy.gate_timeout_s:
        return PlacementPlan("gate-shut", f"waiting for {', '.join(not_running)} to run", (), not_running)
    critical = critical_missing(state, policy)
    if not critical:
        return PlacementPlan("gate-failed-open",
                             f"gate shut {age:.0f}s >= {policy.gate_timeout_s}s with "
                             f"{', '.join(not_running)} not RUNNING; opening so capacity is not starved",
                             (OpenGate(state.instance.arn, policy.gate_attribute),), not_running,
                             tries=_repair_given_up(state, policy, not_running))
    shut = f"gate shut {age:.0f}s >= {policy.gate_timeout_s}s with critical {', '.join(critical)} not RUNNING"
    if state.replaced:
        return PlacementPlan("replacing", f"{shut}; the instance is being replaced", (), not_running)
    if state.replacements_left <= 0:
        return PlacementPlan("replace-held", f"{shut}; the cluster's replacement budget for the hour is spent: "
                             "holding (the gate stays shut)", (), not_running)
    reason = f"{shut}; replacing the instance (the gate never opens without a critical daemon)"
    replace_it = ReplaceInstance(state.instance.ec2_instance_id, critical, reason)
    return PlacementPlan("replace-instance", reason, (replace_it,), not_running)


def plan_placement(state: PlacementState, policy: PlacementPolicy) -> PlacementPlan:
    """Decide what one instance needs so that every eligible daemon runs on it."""
    instance = state.instance
    if instance.status != "ACTIVE" or not instance.agent_connected:
        return PlacementPlan("skip", f"instance is {instance.status}"
                             + ("" if instance.agent_connected else " with its agent disconnected"))
    gate_mode = policy.mode is PlacementMode.GATE
    gate_open = gate_is_open(instance, policy.gate_attribute)
    if gate_mode and instance.attributes.get(policy.gate_attribute) == GATE_DRAINING:
        return PlacementPlan("draining", "the drain shut the gate: nothing more lands here")
    missing = missing_daemons(instance, state.eligibility.eligible, state.tasks)
    not_running = coverage(state.eligibility.eligible, running_groups(state.tasks)).not_running
    if not not_running:
        if gate_mode and not gate_open:
            return PlacementPlan("open-gate", "every eligible daemon is RUNNING",
                                 (OpenGate(instance.arn, policy.gate_attribute),))
        return PlacementPlan("complete", "every eligible daemon is RUNNING")
    missing_names = tuple(s.name for s in missing)
    reshut = gate_reshut_at(instance, policy.gate_attribute) is not None
    if gate_mode and not gate_open and not (reshut and gate_shut_age(instance, policy.gate_attribute, state.now)
                                            < policy.gate_timeout_s):
        return _shut_gate_plan(state, policy, not_running)
    if not missing:
        return PlacementPlan("wait", f"{', '.join(not_running)} starting", (), not_running)
    too_big = daemons_cannot_fit(instance, state.eligibility.eligible, state.task_defs)
    if too_big:
        missing = tuple(_worth_room(instance, state.eligibility.eligible, missing, state.task_defs))
        if not missing:
            return PlacementPlan("cannot-fit", f"{', '.join(too_big)} together need more than the instance "
                                 f"registered ({instance.registered.cpu} CPU units, {instance.registered.memory} "
                                 "MiB): no eviction can make room", (), not_running)
        missing_names = tuple(s.name for s in missing)
    if gate_mode and gate_open:
        return _reshut_plan(state, policy, missing_names, not_running)
    need = _requirements(missing, state.task_defs)
    free = room_after_stopping(instance, state.tasks)
    if fits(need, free):
        return PlacementPlan("wait-for-ecs", f"{', '.join(missing_names)} fit; ECS places daemons", (),
                             not_running)
    return _eviction_plan(state, policy, need, missing_names, not_running)


def _reshut_plan(state: PlacementState, policy: PlacementPolicy, missing_names: tuple[str, ...],
                 not_running: tuple[str, ...]) -> PlacementPlan:
    """Gate mode, a daemon missing on an instance whose gate is open: shut the gate again first, so that no
    replica can take the room the daemon needs (now free, or to be freed by evictions once the shut gate is
    seen); unless making room for it was given up in this episode (the gate failed open after its timeout):
    then the instance serves on without it until the episode ends."""
    if gave_up(state.preempt_tries, missing_names, state.now):
        return PlacementPlan("futile", f"{', '.join(missing_names)} missing on an open gate; the guard gave up "
                             f"making room for it here within the last {EPISODE_S // 60} minutes (its re-shut gate "
                             "failed open, or replicas took the room back): serving without it", (), not_running)
    reshut = SetAttribute(state.instance.arn, policy.gate_attribute, repair_gate_value(state.now))
    return PlacementPlan("shut-gate", f"{', '.join(missing_names)} missing on an open gate: shutting it again "
                         "before making room, so that no replica takes the room first", (reshut,), not_running)


def _repair_given_up(state: PlacementState, policy: PlacementPolicy,
                     not_running: tuple[str, ...]) -> PreemptTries | None:
    """The record that ends a repair whose re-shut gate fails open (None for a new instance's gate): the guard
    gives up making room for these daemons on the instance for this episode, so the gate does not shut again
    at once for the same daemons."""
    if gate_reshut_at(state.instance, policy.gate_attribute) is None:
        return None
    daemons, previous = tuple(sorted(not_running)), state.preempt_tries
    if previous is None or not same_episode(previous, daemons, state.now):
        return PreemptTries(0, 0, state.now, daemons, gave_up=True)
    return PreemptTries(previous.tries, previous.futile, state.now, daemons, gave_up=True)


def _eviction_plan(state: PlacementState, policy: PlacementPolicy, need: Resources, missing_names: tuple[str, ...],
                   not_running: tuple[str, ...]) -> PlacementPlan:
    """Missing daemons that do not fit: the replica tasks to stop, unless none may or preempt's tries are spent."""
    if policy.mode is not PlacementMode.OBSERVE and state.preempt_tries is not None \
            and gave_up(state.preempt_tries, missing_names, state.now):
        return PlacementPlan("futile", gave_up_reason(state.preempt_tries), (), not_running)
    plan = choose_evictions(need, state.instance, state.tasks, state.services, state.budget_left)
    if not plan.feasible:
        return PlacementPlan("blocked", f"{', '.join(missing_names)} cannot get room: {plan.reason}", (),
                             not_running)
    victims = tuple(t.arn for t in plan.victims)
    if not victims:
        return PlacementPlan("wait-for-ecs", f"{', '.join(missing_names)} fit once stopping tasks end", (),
                             not_running)
    reason = f"make room for {', '.join(missing_names)}: {plan.reason}"
    if policy.mode is PlacementMode.OBSERVE:
        return PlacementPlan("would-evict", reason, (), not_running, victims)
    judged = judge_try(state.preempt_tries, missing_names, state.tasks, state.services, state.now,
                       policy.futility, state.cluster_give_ups)
    if judged.verdict != "try":
        return PlacementPlan("futile", judged.reason, (), not_running, (), judged.record if judged.write else None)
    stop = StopTasks(victims, f"daemon-guard: {reason}"[:255])
    return PlacementPlan("evict", f"{reason} ({judged.reason})", (stop,), not_running, victims, judged.record)
