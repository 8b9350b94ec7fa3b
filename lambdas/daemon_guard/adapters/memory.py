"""In-memory state ports: the same behaviour as the DynamoDB table (`adapters.state`), kept in dicts.

Used by the unit tests and by dry runs (`daemon-guard replay`, `drain --dry-run`), which have no
table: what they record lives as long as the run.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import replace

from daemon_guard.adapters.scheduled import ScheduledDrain
from daemon_guard.adapters.state import DAY_S, WorkflowClaim
from daemon_guard.core.drain_budget import DrainQueue
from daemon_guard.core.futility import PreemptTries
from daemon_guard.core.replica_wake import MISSED, ServiceWaiter


class MemoryState:
    """Every state port (`EventLedger`, `EvictionBudget`, `WorkflowClaims`, `CompletionCache`,
    `DrainSchedule`, `AuditCursor`) in memory. TTLs are not enforced: a run is shorter than a day."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.spent: dict[tuple[str, str, int], int] = defaultdict(int)
        self.tries: dict[tuple[str, str], PreemptTries] = {}
        self.replaced: dict[tuple[str, int], set[str]] = defaultdict(set)
        self.held: dict[tuple[str, int], set[str]] = defaultdict(set)
        self.claims: dict[tuple[str, str], WorkflowClaim] = {}
        self.wakes: dict[tuple[str, str], tuple[str, set[str]]] = {}
        self.complete: set[str] = set()
        self.scheduled: dict[str, ScheduledDrain] = {}
        self.audit_cursor = 0
        self.queues: dict[str, DrainQueue] = {}
        self.service_waiters: dict[tuple[str, str], dict[str, ServiceWaiter]] = defaultdict(dict)

    # ---- EventLedger --------------------------------------------------------------------------------
    def first_sighting(self, key: str, now_epoch: float, ttl_s: int = DAY_S) -> bool:
        """Record `key`; False when it was already recorded."""
        if key in self.seen:
            return False
        self.seen.add(key)
        return True

    # ---- EvictionBudget -------------------------------------------------------------------------------
    def budget_spent(self, cluster: str, services: Sequence[str], window: int) -> dict[str, int]:
        """Evictions spent per service in `window` (services never spent on are left out)."""
        return {name: self.spent[(cluster, name, window)] for name in sorted(set(services))
                if (cluster, name, window) in self.spent}

    def spend_budget(self, cluster: str, evicted: Mapping[str, int], window: int, window_s: int) -> None:
        """Add evictions to each service's window counter."""
        for service, count in evicted.items():
            self.spent[(cluster, service, window)] += count

    def preempt_tries(self, cluster: str, instance_arn: str) -> PreemptTries | None:
        """Preempt's record of tries on the instance, if any."""
        return self.tries.get((cluster, instance_arn))

    def record_tries(self, cluster: str, instance_arn: str, before: PreemptTries | None,
                     after: PreemptTries) -> bool:
        """Replace the record `before` by `after`; False when it is no longer `before`."""
        if self.tries.get((cluster, instance_arn)) != before:
            return False
        self.tries[(cluster, instance_arn)] = after
        return True

    def replaced_in(self, cluster: str, windows: Sequence[int]) -> dict[int, frozenset[str]]:
        """The instances replaced for a missing critical daemon in each window."""
        return {w: frozenset(self.replaced.get((cluster, w), set())) for w in windows}

    def spend_replacement(self, cluster: str, instance_arn: str, window: int, limit: int, window_s: int) -> bool:
        """Count the instance's replacement; False when the window is full or already holds it."""
        held = self.replaced[(cluster, window)]
        if len(held) >= limit or instance_arn in held:
            return False
        held.add(instance_arn)
        return True

    def note_held(self, cluster: str, instance_arn: str, window: int, window_s: int) -> bool:
        """Record the held replacement; False when it already was, this window."""
        if instance_arn in self.held[(cluster, window)]:
            return False
        self.held[(cluster, window)].add(instance_arn)
        return True

    # ---- WorkflowClaims -------------------------------------------------------------------------------
    def claim_workflow(self, claim: WorkflowClaim) -> WorkflowClaim | None:
        """Claim the instance; the existing claim if another owns it."""
        existing = self.claims.get((claim.kind, claim.instance_id))
        if existing is not None:
            return existing
        self.claims[(claim.kind, claim.instance_id)] = replace(claim, callback_id=None)
        return None

    def workflow(self, kind: str, instance_id: str) -> WorkflowClaim | None:
        """The claim on an instance, if any."""
        return self.claims.get((kind, instance_id))

    def attach_lifecycle(self, kind: str, instance_id: str, asg: str, hook: str, token: str,
                         deadline_epoch: float | None) -> None:
        """Give the claim its lifecycle action (and a deadline, if it had none)."""
        claim = self.claims.get((kind, instance_id))
        if claim is not None:
            deadline = claim.deadline_epoch if claim.deadline_epoch is not None else deadline_epoch
            self.claims[(kind, instance_id)] = replace(claim, token=token, asg=asg, hook=hook, deadline_epoch=deadline)

    def tighten_deadline(self, kind: str, instance_id: str, deadline_epoch: float) -> None:
        """Lower the claim's deadline; never raise it."""
        claim = self.claims.get((kind, instance_id))
        if claim is not None and (claim.deadline_epoch is None or claim.deadline_epoch > deadline_epoch):
            self.claims[(kind, instance_id)] = replace(claim, deadline_epoch=deadline_epoch)

    def set_callback(self, kind: str, instance_id: str, callback_id: str) -> None:
        """Record the callback the claimed workflow listens on (no claim: nothing to record it on)."""
        claim = self.claims.get((kind, instance_id))
        if claim is not None:
            self.claims[(kind, instance_id)] = replace(claim, callback_id=callback_id)

    def register_wake(self, kind: str, container_instance_arn: str, callback_id: str, now_epoch: float) -> list[str]:
        """Register the callback; return (and clear) the stops the previous one missed."""
        _, missed = self.wakes.get((kind, container_instance_arn), ("", set()))
        self.wakes[(kind, container_instance_arn)] = (callback_id, set())
        return sorted(missed)

    def note_missed_wake(self, kind: str, container_instance_arn: str, stopped_task: str) -> str | None:
        """Keep a stop no callback heard; the callback now registered (None: nothing listens)."""
        found = self.wakes.get((kind, container_instance_arn))
        if found is None:
            return None
        found[1].add(stopped_task)
        return found[0]

    def wake_target(self, kind: str, container_instance_arn: str) -> str | None:
        """The callback a `kind` workflow on the instance waits on, if any."""
        found = self.wakes.get((kind, container_instance_arn))
        return found[0] if found else None

    def release_workflow(self, kind: str, instance_id: str, container_instance_arn: str | None = None) -> None:
        """Forget the claim and the wake-up registration."""
        self.claims.pop((kind, instance_id), None)
        if container_instance_arn:
            self.wakes.pop((kind, container_instance_arn), None)

    # ---- CompletionCache ------------------------------------------------------------------------------
    def drain_queue(self, cluster: str) -> DrainQueue:
        """The cluster's drains under its budget."""
        return self.queues.get(cluster, DrainQueue())

    def write_drain_queue(self, cluster: str, before: DrainQueue, after: DrainQueue) -> bool:
        """Replace the queue if it is still at `before.version`; False otherwise."""
        if self.drain_queue(cluster).version != before.version:
            return False
        self.queues[cluster] = replace(after, version=before.version + 1)
        return True

    def register_service_wake(self, cluster: str, services: Sequence[str], container_instance_arn: str,
                              callback_id: str, now_epoch: float, since_epoch: float) -> bool:
        """Set the instance's callback among each service's waiters; True when one held a missed wake-up."""
        missed = False
        for service in set(services):
            waiters = self.service_waiters[(cluster, service)]
            was = waiters.get(container_instance_arn)
            missed = missed or (was is not None and was.missed)
            waiters[container_instance_arn] = ServiceWaiter(container_instance_arn, callback_id, since_epoch)
        return missed

    def note_missed_service_wake(self, cluster: str, service: str, container_instance_arn: str,
                                 callback_id: str) -> None:
        """Mark the entry missed (its place kept) if it still holds `callback_id`."""
        waiters = self.service_waiters.get((cluster, service), {})
        was = waiters.get(container_instance_arn)
        if was is not None and was.callback_id == callback_id:
            waiters[container_instance_arn] = replace(was, callback_id=MISSED)

    def service_wakes(self, cluster: str, service: str) -> list[ServiceWaiter]:
        """The service's waiters."""
        return list(self.service_waiters.get((cluster, service), {}).values())

    def drop_service_wake(self, cluster: str, service: str, container_instance_arn: str,
                          callback_id: str | None = None) -> None:
        """Forget the instance among the service's waiters (if it still waits on `callback_id`, when given)."""
        waiters = self.service_waiters.get((cluster, service), {})
        was = waiters.get(container_instance_arn)
        if was is not None and (callback_id is None or was.callback_id == callback_id):
            waiters.pop(container_instance_arn, None)

    def mark_complete(self, container_instance_arns: Sequence[str], now_epoch: float, ttl_s: int = DAY_S) -> None:
        """Remember instances that run every eligible daemon."""
        self.complete.update(container_instance_arns)

    def is_complete(self, container_instance_arn: str) -> bool:
        """True when the instance was marked complete (and not cleared since)."""
        return container_instance_arn in self.complete

    def clear_complete(self, container_instance_arn: str) -> None:
        """Forget it."""
        self.complete.discard(container_instance_arn)

    # ---- AuditCursor ----------------------------------------------------------------------------------
    def audit_position(self) -> int:
        """Cluster audits done so far."""
        return self.audit_cursor

    def advance_audit(self, seen: int, to: int) -> bool:
        """Move the position from `seen` to `to`; False when it is no longer `seen`."""
        if self.audit_cursor != seen:
            return False
        self.audit_cursor = to
        return True

    # ---- DrainSchedule --------------------------------------------------------------------------------
    def put(self, drain: ScheduledDrain) -> None:
        """Record (or move) the instance's scheduled drain."""
        self.scheduled[drain.instance_id] = drain

    def due(self, now_epoch: float) -> list[ScheduledDrain]:
        """Every scheduled drain due at `now_epoch`."""
        return [d for d in self.scheduled.values() if d.due_epoch <= now_epoch]

    def remove(self, instance_id: str) -> None:
        """Forget the instance's scheduled drain."""
        self.scheduled.pop(instance_id, None)
