"""The drain budget at the edge: take a place under the cluster's budget (or wait in line), give it back when
the drain ends and wake the waiters that may start then. Decisions are `core.drain_budget`'s; the queue lives
in the state table (`WorkflowClaims.drain_queue`), written on the condition that no other drain wrote it since."""

from __future__ import annotations

from typing import Any

from daemon_guard.bootstrap import Runtime
from daemon_guard.core import metrics as m
from daemon_guard.core.actions import WakeWorkflow
from daemon_guard.core.drain import DrainRequest
from daemon_guard.core.drain.deadlines import HOOK_MAX_GLOBAL_S
from daemon_guard.core.drain_budget import (
    Admission,
    DrainQueue,
    QueueEntry,
    Sizes,
    admit,
    must_bypass,
    next_to_start,
)
from daemon_guard.observability import logger

KIND = "drain"
# Concurrent writers retry on a fresh read; past this many lost races the drain waits for its next look.
WRITE_TRIES = 6


def budget_sizes(rt: Runtime, cluster: str) -> Sizes:
    """How many instances the cluster's managed groups hold, in all and per group (one DescribeAutoScalingGroups;
    none when no rule is a percentage). A cluster without groups counts as one instance."""
    managed = next((c for c in rt.config.clusters if c.name == cluster), None)
    groups = [g.name for g in managed.groups] if managed else []
    if not groups or not any(r.percent for r in rt.config.drain_budget):
        return Sizes(cluster=1, groups={})
    counts = dict.fromkeys(groups, 0)
    for member in rt.autoscaling.group_instances(groups):
        counts[member.group] = counts.get(member.group, 0) + 1
    return Sizes(cluster=max(1, sum(counts.values())), groups=counts)


def take_place(rt: Runtime, cluster: str, me: QueueEntry, bypass: str | None, stale_s: float) -> Admission:
    """Start the drain under the budget, or queue it (keeping its arrival), by a conditional write; on a lost
    race re-read and decide again. After `WRITE_TRIES` lost races: wait, at the place last seen."""
    sizes = budget_sizes(rt, cluster)
    admission: Admission | None = None
    for _ in range(WRITE_TRIES):
        before = rt.claims.drain_queue(cluster)
        now = rt.now().timestamp()
        admission = admit(rt.config.drain_budget, before, me, sizes, now, bypass, stale_s)
        if admission.queue == before or rt.claims.write_drain_queue(cluster, before, admission.queue):
            _emit(rt, cluster, admission.queue)
            return admission
    assert admission is not None
    logger.warning("drain queue contended; waiting for the next look", extra={"instance": me.instance_id})
    return Admission("wait", admission.queue, admission.queue.place(me.instance_id) or 1, "queue contended")


def give_back(rt: Runtime, cluster: str, instance_id: str) -> tuple[str, ...]:
    """Remove the drain from the queue (conditional write, retried on a fresh read) and wake the waiters that
    may start now; returns their instance ids."""
    for _ in range(WRITE_TRIES):
        before = rt.claims.drain_queue(cluster)
        after = before.without(instance_id)
        if after == before or rt.claims.write_drain_queue(cluster, before, after):
            break
    else:
        logger.warning("drain queue contended; the waiters find the free place on their next look",
                       extra={"instance": instance_id})
        return ()
    _emit(rt, cluster, after)
    return _wake_next(rt, cluster, after)


def _wake_next(rt: Runtime, cluster: str, queue: DrainQueue) -> tuple[str, ...]:
    nxt = next_to_start(rt.config.drain_budget, queue, budget_sizes(rt, cluster), rt.now().timestamp())
    for instance_id in nxt:
        claim = rt.claims.workflow(KIND, instance_id)
        wake = WakeWorkflow(claim.callback_id, "a place under the drain budget is free") \
            if claim is not None and claim.callback_id else None
        if wake is not None and rt.executor.can_run(wake):
            rt.executor.run(cluster, wake)
    return nxt


def _emit(rt: Runtime, cluster: str, queue: DrainQueue) -> None:
    rt.metrics.emit(m.DRAINS_UNDER_BUDGET, len(queue.draining), cluster)
    rt.metrics.emit(m.DRAINS_WAITING, len(queue.waiting), cluster)


def budget_place(rt: Runtime, request: DrainRequest, *, take: bool = False) -> dict[str, Any] | None:
    """A drain's place under the budget, for dry runs: ``start``, ``bypass`` or ``wait`` with its place in line
    and the counts, decided as the drain would (`admit`, a Spot notice's bypass included). `take` writes the
    decision (a replay's in-memory state, so later drains of the replay queue behind it); otherwise read-only.
    None when no drainBudget is configured."""
    rules = rt.config.drain_budget
    if not rules:
        return None
    now = rt.now().timestamp()
    me = QueueEntry(request.instance_id, request.asg or "", now, now)
    bypass = must_bypass(request.deadline_epoch, now, rt.config.drain_deadline_s)
    admission = take_place(rt, request.cluster, me, bypass, stale_s=HOOK_MAX_GLOBAL_S) if take else \
        admit(rules, rt.claims.drain_queue(request.cluster), me, budget_sizes(rt, request.cluster), now, bypass,
              HOOK_MAX_GLOBAL_S)
    return {"decision": admission.decision, "place": admission.place, "draining": len(admission.queue.draining),
            "waiting": len(admission.queue.waiting), "reason": admission.reason}
