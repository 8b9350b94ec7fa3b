"""Publishing the guard's own events (`daemon_guard.core.guard_events`) on the default EventBridge bus.

PutEvents in batches of 10. A failure to publish (an error, a throttle, entries EventBridge
rejected) is logged and counted (``GuardEventsUnpublished``) and never raised: a notification must
not fail the drain or the placement it reports. Nothing is published in a dry run or without an
event publisher (the CLI, unit tests).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from daemon_guard.adapters.events import MAX_ENTRIES
from daemon_guard.bootstrap import Runtime
from daemon_guard.core import guard_events as ge
from daemon_guard.core import metrics as m
from daemon_guard.core.actions import ReplaceInstance, StopTasks
from daemon_guard.core.drain import DrainPolicy, DrainProgress, DrainRequest, DrainStep, phases_from
from daemon_guard.core.guard_events import OwnEvent
from daemon_guard.core.model import InstanceView
from daemon_guard.core.placement import PlacementPlan, seconds_since_registration
from daemon_guard.observability import logger


def announce(rt: Runtime, events: Sequence[OwnEvent]) -> int:
    """Publish `events`; returns how many EventBridge accepted. Never raises."""
    if not events or rt.events is None:
        return 0
    accepted = 0
    for start in range(0, len(events), MAX_ENTRIES):
        batch = events[start:start + MAX_ENTRIES]
        try:
            failed, reasons = rt.events.publish(batch)
        except Exception as exc:  # any failure to notify: log and count, never fail the work reported
            failed, reasons = len(batch), [type(exc).__name__]
        accepted += len(batch) - failed
        if failed:
            cluster = str(batch[0].detail.get("cluster", "unknown"))
            logger.warning("own events not published", extra={"count": failed, "errors": reasons,
                                                               "detail_types": [e.detail_type for e in batch]})
            rt.metrics.emit(m.EVENTS_UNPUBLISHED, failed, cluster)
    return accepted


def placement_events(cluster: str, instance: InstanceView, now: datetime, plan: PlacementPlan,
                     gate_attribute: str) -> list[OwnEvent]:
    """What a placement decision that acted tells the world: a repair, a gate opened, a gate failed open, an
    instance replaced for a critical daemon."""
    age = seconds_since_registration(instance, now)
    stopped = [arn for a in plan.actions if isinstance(a, StopTasks) for arn in a.task_arns]
    if plan.decision == "evict" and stopped:
        return [ge.placement_repaired(cluster, instance.ec2_instance_id, instance.arn, now, plan.reason, stopped,
                                      plan.missing, age)]
    if plan.decision == "futile" and plan.tries is not None:
        return [ge.preempt_gave_up(cluster, instance.ec2_instance_id, instance.arn, now, plan.reason,
                                   plan.tries.daemons, plan.tries.tries, plan.tries.futile)]
    if plan.decision in ("open-gate", "gate-failed-open"):
        return [ge.gate_opened(cluster, instance.ec2_instance_id, instance.arn, now, plan.reason, gate_attribute, age,
                               failed_open=plan.decision == "gate-failed-open", not_running=plan.missing)]
    return [ge.replaced_for_critical(cluster, instance.ec2_instance_id, instance.arn, now, a.reason, a.daemons,
                                     plan.missing, age) for a in plan.actions if isinstance(a, ReplaceInstance)]


def announce_placement(rt: Runtime, cluster: str, instance: InstanceView, now: datetime, plan: PlacementPlan
                       ) -> None:
    """Publish what a placement decision did."""
    announce(rt, placement_events(cluster, instance, now, plan, rt.config.gate_attribute))


def announce_cannot_fit(rt: Runtime, cluster: str, instance: InstanceView, now: datetime, daemons: Sequence[str]
                        ) -> None:
    """Publish Daemons Cannot Fit for an instance, once a day (the reconciler sees it every run)."""
    if not rt.ledger.first_sighting(f"cannot-fit#{instance.arn}", now.timestamp()):
        return
    reason = (f"{', '.join(daemons)} together need more than the instance registered ({instance.registered.cpu} "
              f"CPU units, {instance.registered.memory} MiB)")
    logger.warning("daemons cannot fit on this instance even when empty",
                   extra={"cluster": cluster, "instance": instance.ec2_instance_id, "daemons": list(daemons)})
    announce(rt, [ge.daemons_cannot_fit(cluster, instance.ec2_instance_id, instance.arn, now, reason, daemons,
                                        instance.attributes.get("ecs.instance-type"))])


def drain_step_events(request: DrainRequest, before: DrainProgress, step: DrainStep,
                      policy: DrainPolicy) -> list[OwnEvent]:
    """What one drain step tells the world: phases ended, the deadline forcing the order, a hard end breaking
    it, the drain's end."""
    after = step.progress
    events = [ge.tier_completed(request.cluster, request.instance_id, label, begun, ended)
              for label, begun, ended in after.record.phase_times[len(before.record.phase_times):]]
    events += [ge.guarantee_broken(request.cluster, request.instance_id, phase, kind, left, after.started_at, at,
                                   unseen_since_epoch=after.look.seen_at or None,
                                   phases_not_done=phases_from(phase, policy))
               for phase, kind, at, left in after.record.breaks[len(before.record.breaks):]]
    if after.record.forced and not before.record.forced:
        events.append(ge.drain_forced(request.cluster, request.instance_id, after.phase, after.started_at,
                                      after.record.forced_at or after.started_at, "global drain deadline passed"))
    if after.done and not before.done:
        events.append(ge.drain_completed(request.cluster, request.instance_id, after.record.result or "CONTINUE",
                                         after.started_at, after.record.completed_at or after.started_at,
                                         after.record.deadlines_missed, request.trigger))
    return events
