"""The guard's own events: what it did, published on the default EventBridge bus with source ``daemon-guard``.

Every event's ``detail`` carries ``cluster``, ``instanceId`` (the EC2 instance), ``at`` (when it
happened, ISO 8601 UTC) and ``reason`` (one line), plus the timings and facts of its kind; a
cluster's event (``Constraints Missing``) has no ``instanceId``.
`SCHEMAS` holds the JSON Schema (draft 2020-12) of each detail-type's ``detail``; the README lists
them and a test holds every event the guard publishes to its schema. Builders are pure: values
in, `OwnEvent` out; the edge publishes them (and a failure to publish never fails the work).

Route them like any AWS event, e.g. drain completions to an SNS topic:
``{"source": ["daemon-guard"], "detail-type": ["Instance Drain Completed"]}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

SOURCE = "daemon-guard"
PLACEMENT_REPAIRED = "Daemon Placement Repaired"
GATE_OPENED = "Gate Opened"
GATE_FAILED_OPEN = "Gate Failed Open"
DRAIN_STARTED = "Instance Drain Started"
TIER_COMPLETED = "Drain Tier Completed"
DRAIN_COMPLETED = "Instance Drain Completed"
DRAIN_FORCED = "Drain Forced By Deadline"
GUARANTEE_BROKEN = "Drain Guarantee Broken"
DAEMONS_CANNOT_FIT = "Daemons Cannot Fit"
PREEMPT_GAVE_UP = "Preempt Gave Up"
CONSTRAINTS_MISSING = "Constraints Missing"
REPLACED_FOR_CRITICAL = "Instance Replaced For Critical Daemon"
BUDGET_BYPASSED = "Drain Budget Bypassed"


@dataclass(frozen=True)
class OwnEvent:
    """One event to publish: its detail-type, its ``detail`` and the resources it concerns."""

    detail_type: str
    detail: Mapping[str, Any] = field(hash=False)
    resources: tuple[str, ...] = ()


def iso(epoch: float | datetime) -> str:
    """ISO 8601 UTC with milliseconds and ``Z``."""
    when = epoch if isinstance(epoch, datetime) else datetime.fromtimestamp(epoch, UTC)
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _event(detail_type: str, cluster: str, instance_id: str, at: float | datetime, reason: str,
           resources: Sequence[str] = (), **fields: Any) -> OwnEvent:
    detail = {"cluster": cluster, "instanceId": instance_id, "at": iso(at), "reason": reason, **fields}
    return OwnEvent(detail_type, detail, tuple(r for r in resources if r))


def placement_repaired(cluster: str, instance_id: str, instance_arn: str, at: datetime, reason: str,
                       stopped_tasks: Sequence[str], missing_daemons: Sequence[str], since_registration_s: float
                       ) -> OwnEvent:
    """Replica tasks were stopped so that missing daemons can be placed (preempt mode)."""
    return _event(PLACEMENT_REPAIRED, cluster, instance_id, at, reason, (instance_arn,),
                  containerInstanceArn=instance_arn, stoppedTasks=list(stopped_tasks),
                  missingDaemons=list(missing_daemons), secondsSinceRegistration=round(since_registration_s, 3))


def gate_opened(cluster: str, instance_id: str, instance_arn: str, at: datetime, reason: str, attribute: str,
                since_registration_s: float, *, failed_open: bool = False,
                not_running: Sequence[str] = ()) -> OwnEvent:
    """The gate attribute was opened: every daemon runs (Gate Opened), or its timeout passed (Gate Failed Open)."""
    extra: dict[str, Any] = {"notRunning": list(not_running)} if failed_open else {}
    return _event(GATE_FAILED_OPEN if failed_open else GATE_OPENED, cluster, instance_id, at, reason,
                  (instance_arn,), containerInstanceArn=instance_arn, gateAttribute=attribute,
                  secondsSinceRegistration=round(since_registration_s, 3), **extra)


def drain_started(cluster: str, instance_id: str, at: datetime, reason: str, trigger: str, execution_name: str,
                  deadline_epoch: float | None) -> OwnEvent:
    """A drain workflow started (its trigger, and the notice deadline it honours, if any)."""
    return _event(DRAIN_STARTED, cluster, instance_id, at, reason, trigger=trigger, executionName=execution_name,
                  deadline=iso(deadline_epoch) if deadline_epoch is not None else None)


def tier_completed(cluster: str, instance_id: str, tier: str, started_epoch: float, ended_epoch: float) -> OwnEvent:
    """One phase of a drain ended: ``replicas``, ``standalone`` or a daemon tier by name."""
    return _event(TIER_COMPLETED, cluster, instance_id, ended_epoch, f"{tier} finished", tier=tier,
                  startedAt=iso(started_epoch), seconds=round(ended_epoch - started_epoch, 3))


def drain_forced(cluster: str, instance_id: str, phase: str, started_epoch: float, at_epoch: float,
                 reason: str) -> OwnEvent:
    """The global deadline passed: what is left now stops, phase by phase, in order."""
    return _event(DRAIN_FORCED, cluster, instance_id, at_epoch, reason, phase=phase, startedAt=iso(started_epoch),
                  seconds=round(at_epoch - started_epoch, 3))


# Why a drain's order broke (`cause`), from the kind of break the drain recorded: a hard end (`hardEnd`) or a
# daemon stopped by another than the guard while earlier work was left.
BREAK_CAUSES = {"notice": "notice-too-short", "heartbeats": "heartbeats", "deadline": "deadline",
                "ecs-draining": "ecs-draining", "stopped-elsewhere": "stopped-elsewhere",
                "notice-missed": "notice-missed", "instance-gone": "instance-gone"}
HARD_ENDS = ("notice", "heartbeats", "deadline")


def guarantee_broken(cluster: str, instance_id: str, phase: str, kind: str, tasks_not_stopped: int,
                     started_epoch: float, at_epoch: float, *, unseen_since_epoch: float | None = None,
                     phases_not_done: Sequence[str] = ()) -> OwnEvent:
    """The drain's order was not kept while `tasks_not_stopped` tasks of `phase` had not STOPPED: a hard end
    moved it on (``hardEnd``; for ``settle``, no clean end), or another than the guard stopped a daemon
    (``ecs-draining``: the instance was set DRAINING by someone else, as ECS does at a Spot notice with
    ECS_ENABLE_SPOT_INSTANCE_DRAINING; ``stopped-elsewhere``), or the drain found the instance gone after its
    notice ended (``notice-missed``: what ran there was killed; `tasks_not_stopped` 0 when the drain never saw
    it: unknown) or, with no notice over, gone with the tasks it was following (``instance-gone``: EC2 reclaimed
    it before its notice reached the guard, or it was terminated outside Auto Scaling). ``cause`` names which.

    ``phasesLeft``: the phase and every later one, the order the break leaves unkept. A break found with the
    instance gone also says what the drain could not see: ``unseenSince``, its last look that found the instance
    registered (null for other breaks, and when it never saw the instance: then all of it was unseen).
    Whatever stopped there after that look stopped in an order the guard did not see and cannot vouch for (ECS
    draining a Spot instance itself may stop a later tier's daemon first); this event is its count."""
    cause = BREAK_CAUSES.get(kind, kind)
    hard_end = kind if kind in HARD_ENDS else None
    reason = f"{tasks_not_stopped} task(s) of {phase} not STOPPED: " + (
        f"the hard end ({hard_end})" if hard_end else "the instance was gone when the drain looked, its notice "
        "over" if kind == "notice-missed" else "the instance was gone when the drain looked, before its drain "
        "ended" if kind == "instance-gone" else f"a daemon stopped by another than the guard ({cause})")
    unseen = iso(unseen_since_epoch) if unseen_since_epoch and kind in ("notice-missed", "instance-gone") else None
    return _event(GUARANTEE_BROKEN, cluster, instance_id, at_epoch, reason, phase=phase, hardEnd=hard_end,
                  cause=cause, tasksNotStopped=tasks_not_stopped, startedAt=iso(started_epoch),
                  seconds=round(at_epoch - started_epoch, 3), unseenSince=unseen, phasesLeft=list(phases_not_done))


def drain_completed(cluster: str, instance_id: str, result: str, started_epoch: float, ended_epoch: float,
                    deadlines_missed: int, trigger: str) -> OwnEvent:
    """A drain ended: ``result`` is CONTINUE (the lifecycle action completed) or ``no-lifecycle-action``."""
    return _event(DRAIN_COMPLETED, cluster, instance_id, ended_epoch, f"{trigger} drain ended with {result}",
                  result=result, trigger=trigger, startedAt=iso(started_epoch),
                  seconds=round(ended_epoch - started_epoch, 3), deadlinesMissed=deadlines_missed)


def daemons_cannot_fit(cluster: str, instance_id: str, instance_arn: str, at: datetime, reason: str,
                       daemons: Sequence[str], instance_type: str | None) -> OwnEvent:
    """An instance's registered resources cannot hold its eligible daemons even when empty."""
    return _event(DAEMONS_CANNOT_FIT, cluster, instance_id, at, reason, (instance_arn,),
                  containerInstanceArn=instance_arn, daemons=list(daemons), instanceType=instance_type)


def preempt_gave_up(cluster: str, instance_id: str, instance_arn: str, at: datetime, reason: str,
                    daemons: Sequence[str], tries: int, futile_tries: int) -> OwnEvent:
    """Preempt stopped evicting on an instance: replicas took back the room it freed; gate mode would hold it."""
    return _event(PREEMPT_GAVE_UP, cluster, instance_id, at, reason, (instance_arn,),
                  containerInstanceArn=instance_arn, daemons=list(daemons), tries=tries, futileTries=futile_tries,
                  recommendedPlacementMode="gate")


def replaced_for_critical(cluster: str, instance_id: str, instance_arn: str, at: datetime, reason: str,
                          critical: Sequence[str], not_running: Sequence[str], since_registration_s: float
                          ) -> OwnEvent:
    """Gate mode asked the instance's group to replace it: its gate timeout passed with critical daemons not
    RUNNING, so the gate never opened (ABANDON on the launch hook, or SetInstanceHealth Unhealthy)."""
    return _event(REPLACED_FOR_CRITICAL, cluster, instance_id, at, reason, (instance_arn,),
                  containerInstanceArn=instance_arn, criticalDaemons=list(critical), notRunning=list(not_running),
                  secondsSinceRegistration=round(since_registration_s, 3))


def budget_bypassed(cluster: str, instance_id: str, at: float, reason: str, draining: int, waiting: int
                    ) -> OwnEvent:
    """A drain started over the drain budget: a hard end due sooner than it could finish after waiting."""
    return _event(BUDGET_BYPASSED, cluster, instance_id, at, reason, draining=draining, waiting=waiting)


def constraints_missing(cluster: str, at: datetime, services_without_gate: Sequence[str],
                        daemon_services_without_tier: Sequence[str]) -> OwnEvent:
    """Services of the cluster lack the constraint a claimed guarantee needs (a cluster event: no instance)."""
    reason = (f"{len(services_without_gate)} replica service(s) without the gate constraint, "
              f"{len(daemon_services_without_tier)} daemon service(s) without their tier constraint")
    return OwnEvent(CONSTRAINTS_MISSING, {"cluster": cluster, "at": iso(at), "reason": reason,
                                          "servicesWithoutGate": list(services_without_gate),
                                          "daemonServicesWithoutTier": list(daemon_services_without_tier)})


_TIME = {"type": "string", "format": "date-time", "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"}
_NAMES = {"type": "array", "items": {"type": "string", "minLength": 1}}
_SECONDS = {"type": "number", "minimum": 0}
_COMMON = {
    "cluster": {"type": "string", "minLength": 1, "description": "ECS cluster name"},
    "instanceId": {"type": "string", "pattern": "^i-[0-9a-z]+$", "description": "EC2 instance id"},
    "at": {**_TIME, "description": "when it happened (UTC)"},
    "reason": {"type": "string", "minLength": 1, "description": "one line: why"},
}


def _schema(title: str, description: str, properties: Mapping[str, Any]) -> dict[str, Any]:
    props = {**_COMMON, **properties}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": title, "description": description,
            "type": "object", "properties": props, "required": sorted(props), "additionalProperties": False}


def _cluster_schema(title: str, description: str, properties: Mapping[str, Any]) -> dict[str, Any]:
    common = {k: v for k, v in _COMMON.items() if k != "instanceId"}
    return {**_schema(title, description, properties), "properties": {**common, **properties},
            "required": sorted({**common, **properties})}


SCHEMAS: dict[str, dict[str, Any]] = {
    PLACEMENT_REPAIRED: _schema(PLACEMENT_REPAIRED, "replica tasks stopped so that missing daemons can be placed", {
        "containerInstanceArn": {"type": "string", "pattern": "^arn:"}, "stoppedTasks": _NAMES,
        "missingDaemons": _NAMES, "secondsSinceRegistration": _SECONDS}),
    GATE_OPENED: _schema(GATE_OPENED, "every eligible daemon runs: replica placement opened", {
        "containerInstanceArn": {"type": "string", "pattern": "^arn:"}, "gateAttribute": {"type": "string"},
        "secondsSinceRegistration": _SECONDS}),
    GATE_FAILED_OPEN: _schema(GATE_FAILED_OPEN, "the gate's timeout passed with daemons missing: opened anyway", {
        "containerInstanceArn": {"type": "string", "pattern": "^arn:"}, "gateAttribute": {"type": "string"},
        "secondsSinceRegistration": _SECONDS, "notRunning": _NAMES}),
    DRAIN_STARTED: _schema(DRAIN_STARTED, "a drain workflow started", {
        "trigger": {"enum": ["lifecycle", "spot", "rebalance", "draining", "operator", "scheduled-change",
                             "ec2-state"]},
        "executionName": {"type": "string", "minLength": 1}, "deadline": {"anyOf": [_TIME, {"type": "null"}]}}),
    TIER_COMPLETED: _schema(TIER_COMPLETED, "one phase of a drain ended", {
        "tier": {"type": "string", "minLength": 1}, "startedAt": _TIME, "seconds": _SECONDS}),
    DRAIN_FORCED: _schema(DRAIN_FORCED, "the global deadline passed: what is left stops in order", {
        "phase": {"type": "string", "minLength": 1}, "startedAt": _TIME, "seconds": _SECONDS}),
    GUARANTEE_BROKEN: _schema(GUARANTEE_BROKEN, "a drain's order was not kept: a hard end moved it on with tasks "
                              "not STOPPED, or another than the guard stopped a daemon", {
        "phase": {"type": "string", "minLength": 1},
        "hardEnd": {"enum": [*HARD_ENDS, None]}, "cause": {"enum": sorted(set(BREAK_CAUSES.values()))},
        "tasksNotStopped": {"type": "integer", "minimum": 0}, "startedAt": _TIME, "seconds": _SECONDS,
        "unseenSince": {"anyOf": [_TIME, {"type": "null"}]}, "phasesLeft": _NAMES}),
    DRAIN_COMPLETED: _schema(DRAIN_COMPLETED, "a drain ended", {
        "result": {"enum": ["CONTINUE", "no-lifecycle-action"]}, "trigger": {"type": "string"},
        "startedAt": _TIME, "seconds": _SECONDS, "deadlinesMissed": {"type": "integer", "minimum": 0}}),
    DAEMONS_CANNOT_FIT: _schema(DAEMONS_CANNOT_FIT, "the instance cannot hold its eligible daemons even when empty", {
        "containerInstanceArn": {"type": "string", "pattern": "^arn:"}, "daemons": _NAMES,
        "instanceType": {"anyOf": [{"type": "string"}, {"type": "null"}]}}),
    PREEMPT_GAVE_UP: _schema(PREEMPT_GAVE_UP, "preempt stopped evicting on an instance: replicas kept taking the "
                             "room it freed before ECS placed the daemons", {
        "containerInstanceArn": {"type": "string", "pattern": "^arn:"}, "daemons": _NAMES,
        "tries": {"type": "integer", "minimum": 0}, "futileTries": {"type": "integer", "minimum": 0},
        "recommendedPlacementMode": {"const": "gate"}}),
    REPLACED_FOR_CRITICAL: _schema(REPLACED_FOR_CRITICAL, "the gate timeout passed with critical daemons not "
                                   "RUNNING: the gate stayed shut and the instance's group was asked to replace it", {
        "containerInstanceArn": {"type": "string", "pattern": "^arn:"}, "criticalDaemons": _NAMES,
        "notRunning": _NAMES, "secondsSinceRegistration": _SECONDS}),
    BUDGET_BYPASSED: _schema(BUDGET_BYPASSED, "a drain started over the drain budget (drainBudget): a Spot notice, "
                             "an EC2 stop or a Health change due sooner than it could finish after waiting", {
        "draining": {"type": "integer", "minimum": 0, "description": "drains counted by the budget, this one too"},
        "waiting": {"type": "integer", "minimum": 0, "description": "drains still waiting"}}),
    CONSTRAINTS_MISSING: _cluster_schema(CONSTRAINTS_MISSING, "services lack the constraint a claimed guarantee "
                                         "needs (`daemon-guard constraints --apply` adds them)", {
        "servicesWithoutGate": _NAMES, "daemonServicesWithoutTier": _NAMES}),
}
