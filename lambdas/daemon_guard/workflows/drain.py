"""The drain workflow: a Lambda durable function, one execution per instance drain.

Loop: a checkpointed step observes the instance, plans the next step of the ordered drain
(`core.drain.plan_drain_step`) and acts; then the workflow waits on a callback that the intake
completes when a task on the instance STOPS (so it moves on within about a second), with the plan's
wait as the callback timeout (the polling fallback, heartbeats and deadlines). Completed steps are
never re-run on replay; a step interrupted by a crash re-observes and re-plans, which repeats no
effect that matters.

Invoke payload (`core.drain.DrainRequest.as_payload`, read back with its `from_payload`; also the operator's
documented request): ``{"instanceId": "i-...", "cluster": "prod", "trigger":
"lifecycle|spot|rebalance|draining|operator|...", "asg": ..., "hook": ..., "token": ..., "deadline": <epoch
seconds>, "destination": ..., "replace": "unhealthy"}``.
"""

from __future__ import annotations

import contextlib
import math
import zlib
from dataclasses import replace
from functools import partial
from typing import Any

from aws_durable_execution_sdk_python import DurableContext, StepContext
from aws_durable_execution_sdk_python.config import CallbackConfig, Duration
from aws_durable_execution_sdk_python.exceptions import CallbackTimeoutError

from daemon_guard.adapters.errors import AwsError, Throttled
from daemon_guard.adapters.strict_json import loads_strict
from daemon_guard.bootstrap import Runtime
from daemon_guard.core import guard_events as ge
from daemon_guard.core import metrics as m
from daemon_guard.core.actions import Action, CompleteLifecycle, RecordHeartbeat, SetAttribute, SetDraining, StopTasks
from daemon_guard.core.config import DrainOrder
from daemon_guard.core.drain import (
    DrainNote,
    DrainPolicy,
    DrainProgress,
    DrainRequest,
    DrainStep,
    DrainView,
    HookKeeping,
    Lifecycle,
    left_unseen,
    notice_end,
    plan_drain_step,
    plan_heartbeat,
)
from daemon_guard.core.drain.deadlines import HOOK_MAX_GLOBAL_S
from daemon_guard.core.drain.phases import read_back
from daemon_guard.core.drain_budget import WAIT_POLL_S, QueueEntry, hook_wait_end, must_bypass
from daemon_guard.core.slow_look import slow_look_due
from daemon_guard.observability import logger
from daemon_guard.services.drain_budget import give_back, take_place
from daemon_guard.services.drain_look import KIND, drain_policy, model_view, observe
from daemon_guard.services.notify import announce, drain_step_events
from daemon_guard.workflows.replace import replace_after_drain

FIRST_LOOK = {"firstLook": True}


def first_look(rt: Runtime, request: DrainRequest, raw_progress: dict[str, Any], _ctx: StepContext | None = None
               ) -> dict[str, Any]:
    """Find the instance and its tasks (no effect); on an AWS error the first tick looks again."""
    try:
        _, progress = observe(rt, request, DrainProgress.from_dict(raw_progress))
    except AwsError as exc:
        logger.warning("first look failed; the first step looks again", extra={"error": str(exc)})
        return raw_progress
    return progress.as_dict()


RETRY_AFTER_ERROR_S = 2.0
RETRY_CAP_S = 30.0


def retry_after(instance_id: str, failures: int, time_left_s: float | None = None) -> float:
    """Exponential backoff from 2 s (capped at 30 s), spread by instance so throttled drains do not align.

    A drain racing a Spot notice (`time_left_s` until it ends) waits at most a tenth of what is left (at
    least a second): a few Spot drains retrying sooner cost the shared read rate little, and a drain
    that sleeps through its notice leaves its tasks to be killed."""
    spread = 0.5 + (zlib.crc32(f"{instance_id}:{failures}".encode()) % 1000) / 1000
    cap = RETRY_CAP_S if time_left_s is None else min(RETRY_CAP_S, max(1.0, time_left_s / 10))
    return float(min(cap, RETRY_AFTER_ERROR_S * 2 ** min(failures, 5)) * spread)

def drain_tick(rt: Runtime, request: DrainRequest, raw_progress: dict[str, Any], woke: Any = None,
               _ctx: StepContext | None = None) -> dict[str, Any]:
    """One checkpointed step: observe, plan, act, measure. Returns the new progress and the wait.

    Woken by a task that STOPPED while others of the current phase still run, it only notes it (no
    ECS read). An AWS error (throttling past the SDK's retries, a 5xx) ends the step with the
    progress as it was and a short wait: the next step re-observes, so nothing is lost or repeated.
    """
    if isinstance(woke, (str, bytes)):
        # Without a serdes the SDK hands the callback's payload over as sent: JSON text.
        with contextlib.suppress(ValueError):  # a duplicate key too: the next look reads ECS instead
            woke = loads_strict(woke)
    stopped: list[str] = []
    if isinstance(woke, dict):
        one, many = woke.get("stoppedTask"), woke.get("stoppedTasks")
        stopped = [one] if isinstance(one, str) else [s for s in many if isinstance(s, str)] \
            if isinstance(many, list) else []
    try:
        return _tick(rt, request, raw_progress, stopped, from_look=woke == FIRST_LOOK)
    except AwsError as exc:
        logger.warning("drain step failed; retrying", extra={"instance": request.instance_id, "error": str(exc)})
        progress = _keep_hook_alive(rt, request, DrainProgress.from_dict(raw_progress))
        progress = replace(progress, record=replace(progress.record, failures=progress.record.failures + 1))
        notice = notice_end(request, progress)
        left = notice - rt.now().timestamp() if notice is not None else None
        wait_s = retry_after(request.instance_id, progress.record.failures, left)
        return {"progress": progress.as_dict(), "wait_s": wait_s,
                "error": type(exc).__name__}


def _keep_hook_alive(rt: Runtime, request: DrainRequest, progress: DrainProgress) -> DrainProgress:
    """While ECS reads fail (throttled under load), still heartbeat: Auto Scaling has its own limits."""
    if not (request.asg and request.hook):
        return progress
    now = rt.now().timestamp()
    beat, _ = plan_heartbeat(request, Lifecycle(request.asg, request.hook, request.token), now, progress,
                             drain_policy(rt, request))
    try:
        if beat is not None and rt.executor.run(request.cluster, beat) == "done":
            rt.metrics.emit(m.HEARTBEATS_SENT, 1, request.cluster)
            return replace(progress, hook=replace(progress.hook, heartbeats=progress.hook.heartbeats + 1,
                                                  last_heartbeat_at=now))
    except AwsError as exc:
        logger.warning("heartbeat failed", extra={"instance": request.instance_id, "error": str(exc)})
    return progress


def _confirmed_empty(rt: Runtime, request: DrainRequest, progress: DrainProgress) -> bool:
    """ECS agrees the instance is still there and runs no task. An instance gone is no clean end: its tasks'
    STOPPED events may be EC2's kills, so a full look follows and counts them (`plan._gone_early`). Under
    throttling the event stream's word is taken: after the first look, no task reaches a DRAINING instance
    that an event would not have reported."""
    if progress.look.instance_arn is None:
        return False
    try:
        ecs = rt.cluster(request.cluster)
        instance = ecs.instance(progress.look.instance_arn)
        if instance is None or instance.status == "INACTIVE":
            return False
        return not ecs.task_arns_on(progress.look.instance_arn, desired="RUNNING")
    except Throttled:
        logger.warning("ECS throttled the final check; the events say the instance is empty",
                       extra={"instance": request.instance_id})
        return True


def _stopped_by_other(progress: DrainProgress, stopped: list[str]) -> bool:
    """A service task that STOPPED without the guard asking (with ``apps-first`` or ``tiers`` only someone
    else, such as ECS on an instance it set DRAINING, stops one)."""
    asked = set(progress.stops.requested)
    return any(arn in stopped and arn not in asked and group.startswith("service:")
               for arn, group, _ in progress.look.live_tasks)


def _act(rt: Runtime, request: DrainRequest, actions: tuple[Action, ...]) -> bool:
    """Carry out a step's actions, in order; True when the lifecycle action to complete was already over."""
    over = False
    for action in actions:
        ran = rt.executor.run(request.cluster, action)
        if isinstance(action, RecordHeartbeat) and ran == "done":
            rt.metrics.emit(m.HEARTBEATS_SENT, 1, request.cluster)
        elif isinstance(action, CompleteLifecycle):
            over = over or ran == "gone"
            rt.metrics.emit(m.LIFECYCLE_RESULTS, 1, request.cluster, Result=action.result if ran == "done" else "GONE")
    return over


def _count_gone_once(rt: Runtime, request: DrainRequest, step: DrainStep, lifecycle_over: bool) -> DrainStep:
    """An instance's end is said once, by the drain that saw it: a drain that saw the instance notes in the
    event ledger that it ended (cleanly, or with its own gone break); a later drain of the same instance that
    never saw it (a late lifecycle event's) counts a break only if none did (`left_unseen`)."""
    now = rt.now().timestamp()
    key = f"drain-ended#{request.instance_id}"
    if step.progress.done and step.progress.look.instance_arn is not None:
        rt.ledger.first_sighting(key, now)
        return step
    unseen = left_unseen(step.progress, lifecycle_over, now)
    if unseen is None or not rt.ledger.first_sighting(key, now):
        return step
    note = DrainNote("guarantee-broken", "the instance left under the lifecycle hook before a drain saw it",
                     tier=unseen[0])
    record = replace(step.progress.record, breaks=(*step.progress.record.breaks, unseen))
    return replace(step, progress=replace(step.progress, record=record), notes=(*step.notes, note))


def _tick(rt: Runtime, request: DrainRequest, raw_progress: dict[str, Any], stopped: list[str],
          from_look: bool = False) -> dict[str, Any]:
    progress = DrainProgress.from_dict(raw_progress)
    policy = drain_policy(rt, request)
    step: DrainStep | None = None
    fallback: DrainStep | None = None
    now = rt.now().timestamp()
    if stopped:
        progress = replace(progress, look=replace(progress.look, heard_at=now))
    known = any(live[0] in stopped for live in progress.look.live_tasks)
    if policy.order is not DrainOrder.DRAINING and _stopped_by_other(progress, stopped):
        known = False  # a service task the guard did not stop (a daemon ECS stopped?): look, so it is seen and counted
    # A replica phase held by minimumHealthyPercent plans from the events between looks; when none has come
    # for a while it looks (the slow look): a lost STOPPED would otherwise hold it until its deadline.
    held = progress.phase == "replicas" and progress.watch.replicas_held and not stopped and not slow_look_due(
        now, progress.look.looked_at or progress.started_at, progress.look.heard_at or progress.started_at)
    if (known or held or (from_look and progress.look.instance_arn)) and not progress.record.forced:
        # Plan from the event stream (or the first look, or a replica phase waiting only on replacements
        # elsewhere, where the services are re-read and the gate keeps new replicas off the instance);
        # read ECS only if that plan would stop daemons or complete the lifecycle action.
        heard = progress
        live = tuple(t for t in progress.look.live_tasks if t[0] not in stopped)
        progress = replace(progress, look=replace(progress.look, live_tasks=live))
        step = plan_drain_step(request, model_view(rt, request, progress), progress, policy)
        if step.progress.phase == "tier" and any(isinstance(a, (StopTasks, SetAttribute, SetDraining))
                                                 for a in step.actions):
            # Daemons go only on a full look (a task may have arrived unannounced), following the tasks as they
            # were before these events (on an instance gone they went with it).
            fallback, step, progress = step, None, heard
        elif step.progress.phase == "complete" and not _confirmed_empty(rt, request, progress):
            # The events say empty, ECS does not (yet), or the instance is gone: look properly, following the
            # tasks as they were before these events (on an instance gone they went with it).
            step, progress = None, heard
    looked: DrainView | None = None
    if step is None:
        try:
            looked, progress = observe(rt, request, progress)
            step = plan_drain_step(request, looked, progress, policy)
        except Throttled:
            if fallback is None or notice_end(request, progress) is None:
                raise
            # A Spot notice does not wait for ECS's read rate: what is still here when it ends dies with the
            # instance. The gate keeps new work off, so the event stream's view is the best there is.
            logger.warning("ECS throttled the look before a tier; the events' view is used",
                           extra={"instance": request.instance_id})
            step = fallback
    over = _act(rt, request, step.actions)
    if looked is not None:
        step, over_again = _read_back_at_once(rt, request, looked, step)
        over = over or over_again
    step = _count_gone_once(rt, request, step, over)
    _report(rt, request, progress, step, policy)
    done = replace(step.progress, record=replace(step.progress.record, failures=0))
    return {"progress": done.as_dict(), "wait_s": step.wait_s}


def _report(rt: Runtime, request: DrainRequest, before: DrainProgress, step: DrainStep, policy: DrainPolicy) -> None:
    """A step's notes, phase durations and guard events, once its actions are done."""
    for note in step.notes:
        if note.kind == "blocked":  # alarmed while it lasts; the totals are emitted when the drain ends
            rt.metrics.emit(m.DRAINS_BLOCKED, 1, request.cluster)
        logger.warning("drain note", extra={"instance": request.instance_id, "kind": note.kind, "detail": note.detail})
    for label, begun, ended in step.progress.record.phase_times[len(before.record.phase_times):]:
        rt.metrics.emit(m.TIER_DURATION, ended - begun, request.cluster, Tier=label)
    announce(rt, drain_step_events(request, before, step, policy))
    if step.actions:
        logger.info("drain step", extra={"instance": request.instance_id, "phase": step.progress.phase,
                                         "actions": [type(a).__name__ for a in step.actions]})


def _read_back_at_once(rt: Runtime, request: DrainRequest, view: DrainView,
                       step: DrainStep) -> tuple[DrainStep, bool]:
    """After a full look whose step wrote a fence (a tier's attribute, the gate, DRAINING), read the instance back
    at once (one DescribeContainerInstances) and, if ECS already shows the write, plan again from the same look and
    act: the tier's daemons stop now instead of after `READ_BACK_S` and another full look. A write not yet seen
    costs that one read; the step's own wait then stands. An AWS error on the read keeps the step as it was.
    Returns the step and whether a lifecycle action it completed was already over (`_act`)."""
    progress = step.progress
    if progress.done or progress.look.instance_arn is None or not progress.fences.awaiting_read_back or not any(
            isinstance(a, (SetAttribute, SetDraining)) for a in step.actions):
        return step, False
    try:
        instance = rt.cluster(request.cluster).instance(progress.look.instance_arn)
    except AwsError as exc:
        logger.warning("read-back failed; looking again later", extra={"instance": request.instance_id,
                                                                        "error": str(exc)})
        return step, False
    if instance is None:
        return step, False
    policy = drain_policy(rt, request)
    seen = read_back(replace(view, instance=instance), progress, policy)
    if seen == progress:
        return step, False
    again = plan_drain_step(request, replace(view, instance=instance, now=rt.now().timestamp()),
                            replace(seen, look=replace(seen.look, instance_status=instance.status)), policy)
    over = _act(rt, request, again.actions)
    return replace(again, actions=step.actions + again.actions, notes=step.notes + again.notes), over


def listen(rt: Runtime, request: DrainRequest, instance_arn: str | None, callback_id: str,
           _ctx: StepContext | None = None) -> list[str]:
    """Record the callback the intake completes when a task on the instance stops; return the stops
    that arrived while no callback was waiting (the workflow then goes on without waiting)."""
    try:
        rt.claims.set_callback(KIND, request.instance_id, callback_id)
        if instance_arn:
            return rt.claims.register_wake(KIND, instance_arn, callback_id, rt.now().timestamp())
    except AwsError as exc:
        logger.warning("could not register the wake-up; polling", extra={"error": str(exc)})
    return []


def budget_look(rt: Runtime, request: DrainRequest, waiting: dict[str, Any], _ctx: StepContext | None = None
                ) -> dict[str, Any]:
    """One look at the drain budget before the drain's first action: start, bypass, or wait in line with the
    lifecycle hook kept alive (heartbeats stop before its global timeout, counted from `arrived`).

    A drain that cannot wait bypasses the budget (counted and announced): a hard end (a Spot notice, an EC2
    stop, a Health change, also one handed over through its claim since) sooner than it could finish after
    waiting, the hook's global timeout too near to wait longer, or an instance someone else already set to
    DRAINING (waiting would only leave its daemons to ECS). An AWS error: look again shortly."""
    policy = drain_policy(rt, request)
    now = rt.now().timestamp()
    arrived = float(waiting["arrived"])
    try:
        claim = rt.claims.workflow(KIND, request.instance_id)
        notices = [d for d in (request.deadline_epoch, claim.deadline_epoch if claim else None) if d is not None]
        asg, hook = request.asg or (claim.asg if claim else None), request.hook or (claim.hook if claim else None)
        lifecycle = Lifecycle(asg, hook, request.token or (claim.token if claim else None)) if asg and hook else None
        bypass = must_bypass(min(notices) if notices else None, now, policy.drain_deadline_s)
        if bypass is None and request.trigger == "draining":
            bypass = "the instance is already DRAINING (set by someone else): ECS is replacing its tasks"
        if bypass is None and lifecycle is not None and policy.heartbeat_timeout_s > 0 and \
                now >= hook_wait_end(arrived, policy.heartbeat_timeout_s, policy.drain_deadline_s):
            bypass = "the lifecycle hook's global timeout is too near to wait longer"
        hook_global = min(HOOK_MAX_GLOBAL_S, 100 * policy.heartbeat_timeout_s) if policy.heartbeat_timeout_s else \
            HOOK_MAX_GLOBAL_S
        admission = take_place(rt, request.cluster, QueueEntry(request.instance_id, asg or "", arrived, now), bypass,
                               stale_s=hook_global)
    except AwsError as exc:
        logger.warning("drain budget look failed; looking again", extra={"instance": request.instance_id,
                                                                          "error": str(exc)})
        return {**waiting, "decision": "wait", "wait_s": retry_after(request.instance_id, 1)}
    if admission.decision == "bypass":
        rt.metrics.emit(m.BUDGET_BYPASSES, 1, request.cluster)
        announce(rt, [ge.budget_bypassed(request.cluster, request.instance_id, now, admission.reason,
                                         len(admission.queue.draining), len(admission.queue.waiting))])
    logger.info("drain budget", extra={"instance": request.instance_id, "decision": admission.decision,
                                       "place": admission.place, "reason": admission.reason})
    wait_s = WAIT_POLL_S
    if admission.decision == "wait" and lifecycle is not None:
        progress = DrainProgress(started_at=arrived,
                                 hook=HookKeeping(last_heartbeat_at=float(waiting.get("last_heartbeat_at", 0.0))))
        beat, wait_s = plan_heartbeat(request, lifecycle, now, progress, policy)
        if beat is not None and rt.executor.run(request.cluster, beat) == "done":
            rt.metrics.emit(m.HEARTBEATS_SENT, 1, request.cluster)
            waiting = {**waiting, "last_heartbeat_at": now, "heartbeats": int(waiting.get("heartbeats", 0)) + 1}
        wait_s = min(WAIT_POLL_S, wait_s)
    return {**waiting, "decision": admission.decision, "place": admission.place, "wait_s": wait_s}


def wait_for_budget(rt: Runtime, request: DrainRequest, arrived: float, ctx: DurableContext) -> dict[str, Any]:
    """Look at the drain budget until the drain may start; between looks wait on a callback that a finishing
    drain completes when this one is next (`services.drain_budget.give_back`), the poll as its timeout."""
    waiting: dict[str, Any] = {"arrived": arrived, "last_heartbeat_at": 0.0, "heartbeats": 0}
    n = 0
    while True:
        waiting = ctx.step(partial(budget_look, rt, request, waiting), name=f"budget-{n}")
        if waiting["decision"] != "wait":
            return waiting
        callback = ctx.create_callback(
            name=f"budget-wake-{n}", config=CallbackConfig(timeout=Duration.from_seconds(
                max(1, math.ceil(waiting["wait_s"])))))
        ctx.step(partial(listen, rt, request, None, callback.callback_id), name=f"budget-listen-{n}")
        with contextlib.suppress(CallbackTimeoutError):  # the timeout is the next look
            callback.result()
        n += 1


def held_services(rt: Runtime, request: DrainRequest, progress: DrainProgress) -> list[str]:
    """The replica services a held replica phase waits on (minimumHealthyPercent keeps their tasks here until a
    replacement runs elsewhere): those with a live task on the instance not yet told to stop. Daemons are
    left out (their list is cached: no ECS read after the first)."""
    if not (progress.phase == "replicas" and progress.watch.replicas_held):
        return []
    asked = set(progress.stops.requested)
    names = {group.removeprefix("service:") for arn, group, _ in progress.look.live_tasks
             if group.startswith("service:") and arn not in asked}
    daemons = {s.name for s in rt.cluster(request.cluster).daemon_services()} if names else set()
    return sorted(names - daemons)


def listen_for(rt: Runtime, request: DrainRequest, raw_progress: dict[str, Any], callback_id: str,
               registered: list[str], _ctx: StepContext | None = None) -> dict[str, list[str]]:
    """`listen`, and, while the replica phase is held, register the callback in each held service's wake
    registry (the intake completes it when a task of the service reaches RUNNING: the replacement); forget
    the services no longer waited on. Returns the stops no callback heard, the services registered, and
    ``replaced`` when a replacement's wake-up reached no callback meanwhile (the workflow then looks at once)."""
    progress = DrainProgress.from_dict(raw_progress)
    missed = listen(rt, request, progress.look.instance_arn, callback_id)
    services: list[str] = []
    if progress.look.instance_arn is None:
        return {"missed": missed, "services": services}
    try:
        services = held_services(rt, request, progress)
        if services and rt.claims.register_service_wake(request.cluster, services, progress.look.instance_arn,
                                                        callback_id, rt.now().timestamp(), progress.started_at):
            return {"missed": missed, "services": services, "replaced": services}
        unlisten(rt, request, progress.look.instance_arn, sorted(set(registered) - set(services)))
    except AwsError as exc:  # the slow look is the fallback
        logger.warning("could not register the replacement wake-up; looking slowly", extra={"error": str(exc)})
    return {"missed": missed, "services": services}


def unlisten(rt: Runtime, request: DrainRequest, instance_arn: str, services: list[str],
             _ctx: StepContext | None = None) -> None:
    """Forget that the instance's drain waits on these services (no wake-up for it any more). On an AWS error
    the registration is left behind: it costs the intake one wake-up that finds no callback."""
    try:
        for service in services:
            rt.claims.drop_service_wake(request.cluster, service, instance_arn)
    except AwsError as exc:
        logger.warning("could not forget a replacement wake-up", extra={"error": str(exc)})


def finish(rt: Runtime, request: DrainRequest, raw_progress: dict[str, Any], _ctx: StepContext | None = None
           ) -> dict[str, float]:
    """Measure the drain (duration, overhead above the slowest stop per phase) and release the instance."""
    try:
        return _finish(rt, request, raw_progress)
    except AwsError as exc:
        # The lifecycle action is already complete; a lost metric is not worth failing the execution.
        logger.warning("drain bookkeeping failed", extra={"instance": request.instance_id, "error": str(exc)})
        return {"duration": -1.0, "overhead": -1.0}


def _finish(rt: Runtime, request: DrainRequest, raw_progress: dict[str, Any]) -> dict[str, float]:
    progress = DrainProgress.from_dict(raw_progress)
    ended = progress.record.completed_at or rt.now().timestamp()
    duration = ended - progress.started_at
    durations = rt.cluster(request.cluster).stop_durations([arn for _, arn in progress.stops.by_phase])
    slowest: dict[str, float] = {}
    for label, arn in progress.stops.by_phase:
        slowest[label] = max(slowest.get(label, 0.0), durations.get(arn, 0.0))
    overhead = max(0.0, duration - sum(slowest.values()))
    rt.metrics.emit(m.DRAIN_DURATION, duration, request.cluster)
    rt.metrics.emit(m.DRAIN_OVERHEAD, overhead, request.cluster)
    # Emitted for every drain, zero included, so their alarms always have data.
    rt.metrics.emit(m.DEADLINES_MISSED, progress.record.deadlines_missed, request.cluster)
    rt.metrics.emit(m.ORDERING_VIOLATIONS, len(progress.record.violations), request.cluster)
    rt.metrics.emit(m.GUARANTEE_BREAKS, len(progress.record.breaks), request.cluster)
    rt.claims.release_workflow(KIND, request.instance_id, progress.look.instance_arn)
    if rt.config.drain_budget:
        give_back(rt, request.cluster, request.instance_id)
    logger.info("drain finished", extra={"instance": request.instance_id, "seconds": round(duration, 1),
                                         "overhead": round(overhead, 1), "result": progress.record.result,
                                         "deadlines_missed": progress.record.deadlines_missed})
    return {"duration": duration, "overhead": overhead}


def drain_workflow(rt: Runtime, event: dict[str, Any], ctx: DurableContext) -> dict[str, Any]:
    """The durable drain: tick, wait for a wake-up or the plan's timeout, repeat, then finish."""
    request = DrainRequest.from_payload(event)
    started = ctx.step(lambda _c: rt.now().timestamp(), name="start")
    hook_since: float | None = None
    heartbeat_at = 0.0
    if rt.config.drain_budget:
        waited = wait_for_budget(rt, request, started, ctx)
        hook_since = started
        started = ctx.step(lambda _c: rt.now().timestamp(), name="admitted")
        heartbeat_at = float(waited.get("last_heartbeat_at", 0.0))
    raw: dict[str, Any] = replace(DrainProgress.begin(started),
                                  hook=HookKeeping(since=hook_since, last_heartbeat_at=heartbeat_at)).as_dict()
    # The first look is a step of its own with no effect, so the step that acts on it plans from
    # that checkpoint: re-run after a crash, it still knows the tasks it had already told to stop.
    raw = ctx.step(partial(first_look, rt, request, raw), name="look")
    n = 0
    woke: Any = FIRST_LOOK
    registered: list[str] = []
    while True:
        result = ctx.step(partial(drain_tick, rt, request, raw, woke), name=f"tick-{n}")
        raw = result["progress"]
        if DrainProgress.from_dict(raw).done:
            break
        callback = ctx.create_callback(
            name=f"wake-{n}", config=CallbackConfig(timeout=Duration.from_seconds(max(1, math.ceil(result["wait_s"])))))
        heard = ctx.step(partial(listen_for, rt, request, raw, callback.callback_id, registered), name=f"listen-{n}")
        missed, registered = heard["missed"], heard["services"]
        woke = {"stoppedTasks": missed} if missed or heard.get("replaced") else None
        if woke is None:
            with contextlib.suppress(CallbackTimeoutError):  # the timeout is the polling fallback
                woke = callback.result()
        n += 1
    last = DrainProgress.from_dict(raw)
    if registered and last.look.instance_arn:
        ctx.step(partial(unlisten, rt, request, last.look.instance_arn, registered), name="unlisten")
    summary = ctx.step(partial(finish, rt, request, raw), name="finish")
    if request.replace:
        ctx.step(lambda _c: replace_after_drain(rt, event), name="replace")
    return {"instance": request.instance_id, "result": last.record.result, **summary}

