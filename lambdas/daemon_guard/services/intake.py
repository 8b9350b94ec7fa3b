"""The intake service: every EventBridge event is parsed, routed and handled here.

`handle(event, runtime)` is the whole of it (the replay command runs it with a dry-run runtime; the
entry point `daemon_guard.entrypoints.intake` adds Powertools context). It returns one `Outcome`
(`core.outcomes`), whose JSON form is ``{"route", "decision", "reason", "instance", "actions"}``.
A malformed or foreign event gets a clear log line and no AWS write, and never raises into a retry storm.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from daemon_guard.adapters.errors import Throttled
from daemon_guard.adapters.parsing import parse_event
from daemon_guard.bootstrap import Runtime
from daemon_guard.core import metrics as m
from daemon_guard.core.actions import AnyAction, WakeWorkflow
from daemon_guard.core.events import (
    Envelope,
    GuardEvent,
    Malformed,
    ServiceAction,
    TaskChanged,
    arns_of,
)
from daemon_guard.core.identifiers import partition_of_region
from daemon_guard.core.intake import EXIT_TRIGGERS, Route, route
from daemon_guard.core.outcomes import Outcome, decision
from daemon_guard.core.replica_wake import wake_order
from daemon_guard.observability import logger
from daemon_guard.services.exits import start_exit_drains
from daemon_guard.services.reconcile import reconcile_cluster
from daemon_guard.services.reflex import check_instance
from daemon_guard.services.starts import start_drain, start_launch_gate

CLOCK_SKEW = timedelta(hours=1)


def handle(raw: object, rt: Runtime) -> Outcome:
    """Parse, route and handle one event; never raises for bad input."""
    event = parse_event(raw)
    r = route(event, rt.config)
    malformed = event.reason if isinstance(event, Malformed) else _ahead_of_clock(event, rt)
    if malformed is not None:
        logger.warning("malformed event rejected", extra={"reason": malformed})
        rt.metrics.emit(m.EVENTS_MALFORMED, 1, "unknown")
        return decision(r, "malformed", malformed)
    foreign = _foreign(event, rt)
    if foreign is not None:
        r = Route("ignore", foreign)
    if r.kind == "ignore":
        logger.info("event ignored", extra={"reason": r.reason})
        rt.metrics.emit(m.EVENTS_IGNORED, 1, r.cluster or "unknown")
        return decision(r, "ignored", r.reason)
    if r.dedupe_key and not rt.ledger.first_sighting(r.dedupe_key, rt.now().timestamp()):
        rt.metrics.emit(m.DUPLICATE_EVENTS, 1, r.cluster or "unknown")
        return decision(r, "duplicate", f"already handled {r.dedupe_key}")
    if isinstance(event, ServiceAction) and r.cluster is not None:
        service = (event.service_arn or "").rsplit("/", 1)[-1]
        try:
            daemons = {s.name for s in rt.cluster(r.cluster).daemon_services()}
        except Throttled as exc:
            return _deferred(r, rt, exc)
        if service not in daemons:
            return decision(r, "ignored", f"{service} is not a daemon service: ECS retries replicas itself")
    if r.kind in ("placement", "wake"):
        try:
            return _placement(r, event, rt) if r.kind == "placement" else _wake(r, event, rt)
        except Throttled as exc:
            return _deferred(r, rt, exc)
    if r.kind == "launch-gate":
        return start_launch_gate(r, event, rt)
    if r.kind == "drain":
        return (start_exit_drains if r.trigger in EXIT_TRIGGERS else start_drain)(r, event, rt)
    assert r.cluster is not None
    summary = reconcile_cluster(rt, r.cluster)
    return decision(r, "reconciled", r.reason, actions=summary.actions)


def _deliver_wake(rt: Runtime, cluster: str, kind: str, instance_arn: str, wake: WakeWorkflow) -> None:
    """Wake the workflow; if its callback already completed (it is between two waits), leave the
    stopped task where its next wait picks it up, and wake the newer callback if one is there."""
    if rt.executor.run(cluster, wake) != "gone" or wake.stopped_task is None:
        return
    current = rt.claims.note_missed_wake(kind, instance_arn, wake.stopped_task)
    if current and current != wake.callback_id:
        rt.executor.run(cluster, replace(wake, callback_id=current))


def _ahead_of_clock(event: GuardEvent, rt: Runtime) -> str | None:
    """Why an event dated ahead of this deployment's clock by more than `CLOCK_SKEW` cannot be real, if so.

    The parser bounds times to the era of AWS events; this closes the gap above "now": EventBridge
    stamps events when they happen and delivers them afterwards, and Lambda's clock is synchronised.
    A deadline derived from such a time (a Spot warning's) would hold a drain open for nothing.
    """
    when = getattr(event, "time", None)
    if isinstance(when, datetime) and when - rt.now() > CLOCK_SKEW:
        return f"time: {when.isoformat()} is more than {CLOCK_SKEW} after this deployment's clock"
    return None


def _foreign(event: GuardEvent, rt: Runtime) -> str | None:
    """Why an event is out of scope: its envelope, or any ECS ARN it names, is of another partition,
    account or region than the deployment's own (or, where the home is not known, than the envelope's)."""
    if not isinstance(event, Envelope):
        return None
    why = rt.home.foreign(event.account, event.region)
    envelope = (partition_of_region(event.region) or "(none)", event.account, event.region)
    for arn in arns_of(event):
        owner = (arn.owner.partition, arn.owner.account, arn.owner.region)
        if why is None and owner != envelope:
            why = f"{arn} is not of the event's partition, account and region ({':'.join(envelope)})"
        why = why or rt.home.foreign(arn.owner.account, arn.owner.region, arn.owner.partition)
    return why


def _deferred(r: Route, rt: Runtime, exc: Throttled) -> Outcome:
    """A placement check (or a daemon failure's) left to the reconciler: ECS throttled a call the intake retried
    while the invocation had time (`adapters.retry`), and what is left would not cover another wait. The check
    is an optimisation the reconciler repeats within a period; failing the event so that EventBridge retries it
    would only feed the storm that throttles the drains."""
    logger.warning("placement check deferred to the reconciler", extra={"reason": str(exc)})
    rt.metrics.emit(m.CHECKS_DEFERRED, 1, r.cluster or "unknown")
    return decision(r, "deferred", f"ECS throttled the check; the reconciler repeats it: {r.reason}")


def _placement(r: Route, event: GuardEvent, rt: Runtime) -> Outcome:
    assert r.cluster is not None
    ecs = rt.cluster(r.cluster)
    trigger = event.group if isinstance(event, TaskChanged) else None
    daemons = ecs.daemon_services()
    is_daemon_event = trigger is not None and trigger in {s.group for s in daemons}
    if isinstance(event, TaskChanged) and not is_daemon_event and event.last_status == "RUNNING" \
            and event.group.startswith("service:"):
        _wake_replica_waiters(rt, r.cluster, event.group.removeprefix("service:"))
    if isinstance(event, TaskChanged) and not is_daemon_event and rt.complete.known(r.instance_arns[0]):
        return decision(r, "complete", "instance already runs every eligible daemon", r.instance_arns[0])
    if isinstance(event, TaskChanged) and is_daemon_event and event.last_status != "RUNNING":
        return decision(r, "wait", f"daemon {event.group} {event.last_status}: acting once it runs",
                         r.instance_arns[0])
    if is_daemon_event and isinstance(event, TaskChanged) and event.last_status == "RUNNING":
        callback_id = rt.claims.wake_target("gate", r.instance_arns[0])
        if callback_id and rt.executor.can_run(gate_wake := WakeWorkflow(callback_id, r.reason)):
            rt.executor.run(r.cluster, gate_wake)
    outcomes = []
    for instance in ecs.instances(r.instance_arns):
        outcomes.append(check_instance(rt, r.cluster, instance, trigger_group=trigger, daemons=daemons))
    if not outcomes:
        return decision(r, "skip", "container instance no longer registered", r.instance_arns[0])
    first = outcomes[0]
    actions = [a for o in outcomes for a in o.plan.actions]
    return decision(r, first.plan.decision, f"{r.reason}: {first.plan.reason}", first.instance, actions)


def _wake_replica_waiters(rt: Runtime, cluster: str, service: str) -> None:
    """A task of a replica service reached RUNNING (a replacement, perhaps): room for one more stop, so wake one
    drain whose replica phase waits on the service (`register_service_wake`), the first in
    `core.replica_wake.wake_order`; a callback no longer waiting is marked missed (its drain registers again on
    its next wait and, told it missed one, looks at once) and the next in turn is woken instead."""
    for waiter in wake_order(rt.claims.service_wakes(cluster, service)):
        wake = WakeWorkflow(waiter.callback_id, f"a task of {service} is RUNNING")
        if not rt.executor.can_run(wake):
            return
        if rt.executor.run(cluster, wake) != "gone":
            return
        rt.claims.note_missed_service_wake(cluster, service, waiter.instance_arn, waiter.callback_id)


def _wake(r: Route, event: GuardEvent, rt: Runtime) -> Outcome:
    assert r.cluster is not None
    instance_arn = r.instance_arns[0]
    actions: list[AnyAction] = []
    draining = False
    for kind in ("drain", "gate"):
        callback_id = rt.claims.wake_target(kind, instance_arn)
        if callback_id:
            draining = draining or kind == "drain"
            wake = WakeWorkflow(callback_id, r.reason, event.task_arn if isinstance(event, TaskChanged) else None)
            actions.append(wake)
            if rt.executor.can_run(wake):
                _deliver_wake(rt, r.cluster, kind, instance_arn, wake)
    ecs = rt.cluster(r.cluster)
    group = event.group if isinstance(event, TaskChanged) else ""
    # A drain stops daemons on purpose: while one waits, the daemon list (ECS reads once its cache is stale) is
    # not needed, and each of the drain's stops is one of these events.
    if not draining and group in {s.group for s in ecs.daemon_services()}:
        rt.complete.forget(instance_arn, certain=True)
        instance = ecs.instance(instance_arn)
        if instance is not None and instance.status == "ACTIVE":
            outcome = check_instance(rt, r.cluster, instance)
            return decision(r, outcome.plan.decision, f"daemon stopped: {outcome.plan.reason}", outcome.instance,
                            [*actions, *outcome.plan.actions])
    return decision(r, "woke" if actions else "nothing-waiting", r.reason, instance_arn, actions)
