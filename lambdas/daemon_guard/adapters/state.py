"""The state ports, one `Protocol` per concern, and the DynamoDB table that serves them all.

Concerns: the event ledger (`EventLedger`: what was already handled), the eviction budgets
(`EvictionBudget`), the workflows' claims and wake-ups (`WorkflowClaims`) and the instances seen
running every daemon (`CompletionCache`). `StateStore` implements each on one DynamoDB table
(pk, sk, TTL `expiresAt`); `adapters.memory` has in-memory ones (tests, dry runs).

Items:
- ``seen#<key>``: an event already handled (container-instance and task events by version);
  conditional put, so duplicates are recognised across concurrent invocations.
- ``budget#<cluster>#<service>`` / ``<window>``: evictions spent in the current window.
- ``replace#<cluster>`` / ``<hour>``: the instances replaced for a missing critical daemon in that hour
  (``instances``, a string set) and their count (``spent``); one conditional update adds an instance only
  while the count is under ``maxReplacementsPerHour`` and the instance is not in the set, so concurrent
  checks replace an instance once and never past the budget; ``held`` the instances whose replacement
  the budget held (each counted once an hour).
- ``tries#<cluster>#<container-instance-arn>`` / ``tries``: preempt's tries on an instance
  (`core.futility.PreemptTries`); replaced with a conditional put, so concurrent checks make one try.
- ``drain#<ec2-instance-id>`` / ``drain`` (and ``gate#...`` for the launch gate): the one workflow
  that owns an instance, the lifecycle token and deadline it must honour, and the callback id
  that wakes it. Claimed with a conditional put, so at most one workflow per instance runs.
- ``drainqueue#<cluster>`` / ``queue``: the drains under the cluster's drain budget (`core.drain_budget`):
  ``draining`` and ``waiting`` (lists in order of arrival) and a ``version`` each write raises on the
  condition that it is still the version read, so two Lambdas never both take the last place.
- ``service-waiters#<cluster>#<service>`` / ``wake``: the drains whose replica phase waits on a replacement
  of the service (``waiters``, a map of container instance ARN to ``{callback, since}``: the callback id and
  the drain's start); the intake wakes one of them when a task of the service reaches RUNNING
  (`core.replica_wake`). Items under ``wake-svc#`` (bare callback ids, an earlier layout) are not read: a
  drain that registered there keeps its slow look, and their TTL removes them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from daemon_guard.adapters.errors import ConditionFailed
from daemon_guard.core.drain_budget import DrainQueue, QueueEntry
from daemon_guard.core.futility import PreemptTries
from daemon_guard.core.replica_wake import MISSED, ServiceWaiter

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
else:
    DynamoDBClient = Any

DAY_S = 86400


@dataclass(frozen=True)
class WorkflowClaim:
    """Who owns an instance's workflow and what it must honour."""

    instance_id: str
    kind: str
    execution_name: str
    token: str | None
    asg: str | None
    hook: str | None
    deadline_epoch: float | None
    callback_id: str | None
    started_epoch: float


class EventLedger(Protocol):
    """Events (and other one-off facts) already handled, across concurrent invocations."""

    def first_sighting(self, key: str, now_epoch: float, ttl_s: int = DAY_S) -> bool:
        """Record `key`; False when it was already recorded (a duplicate delivery)."""
        ...


class EvictionBudget(Protocol):
    """Evictions spent per service and window."""

    def budget_spent(self, cluster: str, services: Sequence[str], window: int) -> dict[str, int]:
        """Evictions already spent per service in `window`."""
        ...

    def spend_budget(self, cluster: str, evicted: Mapping[str, int], window: int, window_s: int) -> None:
        """Add evictions to each service's window counter."""
        ...

    def preempt_tries(self, cluster: str, instance_arn: str) -> PreemptTries | None:
        """Preempt's record of tries on the instance, if any (strongly consistent)."""
        ...

    def record_tries(self, cluster: str, instance_arn: str, before: PreemptTries | None,
                     after: PreemptTries) -> bool:
        """Replace the record `before` (None: no record) by `after`; False when it is no longer `before`
        (another check of the instance wrote first)."""
        ...

    def replaced_in(self, cluster: str, windows: Sequence[int]) -> dict[int, frozenset[str]]:
        """The instances replaced for a missing critical daemon in each window (hour), strongly consistent."""
        ...

    def spend_replacement(self, cluster: str, instance_arn: str, window: int, limit: int, window_s: int) -> bool:
        """Count the instance's replacement in `window`; False (nothing written) when the window already holds
        `limit` replacements or this instance."""
        ...

    def note_held(self, cluster: str, instance_arn: str, window: int, window_s: int) -> bool:
        """Record that the instance's replacement was held in `window`; False when it already was."""
        ...


class WorkflowClaims(Protocol):
    """The one workflow that owns an instance, what it must honour, and the callbacks that wake it."""

    def claim_workflow(self, claim: WorkflowClaim) -> WorkflowClaim | None:
        """Claim the instance for a workflow; returns the existing claim if another owns it."""
        ...

    def workflow(self, kind: str, instance_id: str) -> WorkflowClaim | None:
        """The claim on an instance, if any."""
        ...

    def attach_lifecycle(self, kind: str, instance_id: str, asg: str, hook: str, token: str,
                         deadline_epoch: float | None) -> None:
        """Give a running workflow the lifecycle action it must complete (and a tighter deadline)."""
        ...

    def tighten_deadline(self, kind: str, instance_id: str, deadline_epoch: float) -> None:
        """Lower a workflow's deadline; never raise it."""
        ...

    def set_callback(self, kind: str, instance_id: str, callback_id: str) -> None:
        """Record the callback id a waiting workflow listens on."""
        ...

    def register_wake(self, kind: str, container_instance_arn: str, callback_id: str, now_epoch: float) -> list[str]:
        """Say which callback wakes the workflow on an instance; return (and clear) the missed stops."""
        ...

    def note_missed_wake(self, kind: str, container_instance_arn: str, stopped_task: str) -> str | None:
        """Keep a stop no callback heard; return the callback now registered, if any."""
        ...

    def wake_target(self, kind: str, container_instance_arn: str) -> str | None:
        """The callback id a `kind` workflow on the instance waits on, if any."""
        ...

    def release_workflow(self, kind: str, instance_id: str, container_instance_arn: str | None = None) -> None:
        """Forget the claim (and the wake-up registration)."""
        ...

    def drain_queue(self, cluster: str) -> DrainQueue:
        """The cluster's drains under its budget (strongly consistent; empty at version 0 when none)."""
        ...

    def write_drain_queue(self, cluster: str, before: DrainQueue, after: DrainQueue) -> bool:
        """Replace the queue read as `before` by `after` (at the next version); False, writing nothing, when
        another drain wrote it since."""
        ...

    def register_service_wake(self, cluster: str, services: Sequence[str], container_instance_arn: str,
                              callback_id: str, now_epoch: float, since_epoch: float) -> bool:
        """Say that the drain of the instance (started at `since_epoch`) waits (on `callback_id`) for a replacement
        of each service; True when a wake-up reached none of its callbacks meanwhile
        (`note_missed_service_wake`): look at once."""
        ...

    def note_missed_service_wake(self, cluster: str, service: str, container_instance_arn: str,
                                 callback_id: str) -> None:
        """A wake-up found `callback_id` no longer waiting: keep it for the drain's next registration."""
        ...

    def service_wakes(self, cluster: str, service: str) -> list[ServiceWaiter]:
        """The drains waiting for a replacement of the service (missed ones included), in no particular order."""
        ...

    def drop_service_wake(self, cluster: str, service: str, container_instance_arn: str,
                          callback_id: str | None = None) -> None:
        """Forget that the instance's drain waits on the service (only if it still waits on `callback_id`, when
        given: a newer registration stays)."""
        ...


class CompletionCache(Protocol):
    """Instances seen running every eligible daemon (so replica events on them need no ECS read)."""

    def mark_complete(self, container_instance_arns: Sequence[str], now_epoch: float, ttl_s: int = DAY_S) -> None:
        """Remember instances that run every eligible daemon."""
        ...

    def is_complete(self, container_instance_arn: str) -> bool:
        """True when the instance was seen running every eligible daemon (and none stopped since)."""
        ...

    def clear_complete(self, container_instance_arn: str) -> None:
        """Forget it: a daemon stopped, or a check found one missing."""
        ...


class AuditCursor(Protocol):
    """Where the reconciler's rotating full audit stands: how many cluster audits are done, ever."""

    def audit_position(self) -> int:
        """Cluster audits done so far (0 before the first)."""
        ...

    def advance_audit(self, seen: int, to: int) -> bool:
        """Move the position from `seen` to `to`; False when another run moved it first (nothing written)."""
        ...


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: float) -> dict[str, str]:
    return {"N": repr(float(value)) if not float(value).is_integer() else str(int(value))}


def _ms(when: datetime) -> int:
    return round(when.timestamp() * 1000)


def _tries_key(cluster: str, instance_arn: str) -> dict[str, dict[str, str]]:
    return {"pk": _s(f"tries#{cluster}#{instance_arn}"), "sk": _s("tries")}


AUDIT_CURSOR_KEY = {"pk": {"S": "audit-cursor"}, "sk": {"S": "audit-cursor"}}


class StateStore:
    """The DynamoDB state table: every state port on one table."""

    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self.client = client
        self.table = table

    def first_sighting(self, key: str, now_epoch: float, ttl_s: int = DAY_S) -> bool:
        """Record `key`; False when it was already recorded (a duplicate delivery)."""
        try:
            self.client.put_item(
                TableName=self.table,
                Item={"pk": _s(f"seen#{key}"), "sk": _s("seen"), "expiresAt": _n(int(now_epoch) + ttl_s)},
                ConditionExpression="attribute_not_exists(pk)")
        except ConditionFailed:
            return False
        return True

    def budget_spent(self, cluster: str, services: Sequence[str], window: int) -> dict[str, int]:
        """Evictions already spent per service in `window` (BatchGetItem, 100 keys per call)."""
        spent: dict[str, int] = {}
        names = sorted(set(services))
        for start in range(0, len(names), 100):
            keys = [{"pk": _s(f"budget#{cluster}#{n}"), "sk": _s(str(window))} for n in names[start:start + 100]]
            request: dict[str, Any] = {self.table: {"Keys": keys, "ProjectionExpression": "pk, spent"}}
            while request:
                resp = self.client.batch_get_item(RequestItems=request)
                for item in resp.get("Responses", {}).get(self.table, []):
                    spent[item["pk"]["S"].rsplit("#", 1)[-1]] = int(item.get("spent", {"N": "0"})["N"])
                request = resp.get("UnprocessedKeys") or {}
        return spent

    def spend_budget(self, cluster: str, evicted: Mapping[str, int], window: int, window_s: int) -> None:
        """Add evictions to each service's window counter."""
        for service, count in evicted.items():
            self.client.update_item(
                TableName=self.table, Key={"pk": _s(f"budget#{cluster}#{service}"), "sk": _s(str(window))},
                UpdateExpression="ADD spent :n SET expiresAt = :ttl",
                ExpressionAttributeValues={":n": _n(count), ":ttl": _n((window + 2) * window_s)})

    def preempt_tries(self, cluster: str, instance_arn: str) -> PreemptTries | None:
        """Preempt's record of tries on the instance, if any (strongly consistent)."""
        resp = self.client.get_item(TableName=self.table, Key=_tries_key(cluster, instance_arn), ConsistentRead=True)
        item = resp.get("Item")
        if not item:
            return None
        return PreemptTries(tries=int(item["tries"]["N"]), futile=int(item["futile"]["N"]),
                            last_at=datetime.fromtimestamp(int(item["lastAtMs"]["N"]) / 1000, UTC),
                            daemons=tuple(sorted(item["daemons"]["SS"])), gave_up=item["gaveUp"]["BOOL"])

    def record_tries(self, cluster: str, instance_arn: str, before: PreemptTries | None,
                     after: PreemptTries) -> bool:
        """Replace the record `before` by `after` (PutItem on the condition that it is still `before`)."""
        item: dict[str, Any] = {
            **_tries_key(cluster, instance_arn), "tries": _n(after.tries), "futile": _n(after.futile),
            "lastAtMs": _n(_ms(after.last_at)), "daemons": {"SS": list(after.daemons)},
            "gaveUp": {"BOOL": after.gave_up}, "expiresAt": _n(int(after.last_at.timestamp()) + DAY_S)}
        if before is None:
            condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"}
        else:
            # lastAtMs moves on every write, and whole milliseconds compare exactly.
            condition = {"ConditionExpression": "tries = :t AND futile = :f AND lastAtMs = :l AND gaveUp = :g",
                         "ExpressionAttributeValues": {":t": _n(before.tries), ":f": _n(before.futile),
                                                       ":l": _n(_ms(before.last_at)),
                                                       ":g": {"BOOL": before.gave_up}}}
        try:
            self.client.put_item(TableName=self.table, Item=item, **condition)
        except ConditionFailed:
            return False
        return True

    def replaced_in(self, cluster: str, windows: Sequence[int]) -> dict[int, frozenset[str]]:
        """The instances replaced for a missing critical daemon in each window (one BatchGetItem)."""
        found: dict[int, frozenset[str]] = {w: frozenset() for w in windows}
        keys = [{"pk": _s(f"replace#{cluster}"), "sk": _s(str(w))} for w in sorted(set(windows))]
        request: dict[str, Any] = {self.table: {"Keys": keys, "ConsistentRead": True,
                                                "ProjectionExpression": "sk, instances"}}
        while request and keys:
            resp = self.client.batch_get_item(RequestItems=request)
            for item in resp.get("Responses", {}).get(self.table, []):
                found[int(item["sk"]["S"])] = frozenset(item.get("instances", {}).get("SS", []))
            request = resp.get("UnprocessedKeys") or {}
        return found

    def spend_replacement(self, cluster: str, instance_arn: str, window: int, limit: int, window_s: int) -> bool:
        """Add the instance to the window's replacements on the condition that the window holds fewer than
        `limit` and not this instance (UpdateItem); False when the condition fails."""
        try:
            self.client.update_item(
                TableName=self.table, Key={"pk": _s(f"replace#{cluster}"), "sk": _s(str(window))},
                UpdateExpression="ADD spent :one, instances :i SET expiresAt = :ttl",
                ConditionExpression="(attribute_not_exists(spent) OR spent < :limit) AND "
                                    "(attribute_not_exists(instances) OR NOT contains(instances, :arn))",
                ExpressionAttributeValues={":one": _n(1), ":i": {"SS": [instance_arn]}, ":limit": _n(limit),
                                           ":arn": _s(instance_arn), ":ttl": _n((window + 2) * window_s)})
        except ConditionFailed:
            return False
        return True

    def note_held(self, cluster: str, instance_arn: str, window: int, window_s: int) -> bool:
        """Add the instance to the window's held replacements (``held``) on the condition that it is not there."""
        try:
            self.client.update_item(
                TableName=self.table, Key={"pk": _s(f"replace#{cluster}"), "sk": _s(str(window))},
                UpdateExpression="ADD held :i SET expiresAt = :ttl",
                ConditionExpression="attribute_not_exists(held) OR NOT contains(held, :arn)",
                ExpressionAttributeValues={":i": {"SS": [instance_arn]}, ":arn": _s(instance_arn),
                                           ":ttl": _n((window + 2) * window_s)})
        except ConditionFailed:
            return False
        return True

    def claim_workflow(self, claim: WorkflowClaim) -> WorkflowClaim | None:
        """Claim the instance for a workflow; returns the existing claim if another owns it."""
        item = {
            "pk": _s(f"{claim.kind}#{claim.instance_id}"), "sk": _s(claim.kind),
            "executionName": _s(claim.execution_name), "startedAt": _n(claim.started_epoch),
            "expiresAt": _n(int(claim.started_epoch) + 3 * DAY_S),
        }
        for key, value in (("token", claim.token), ("asg", claim.asg), ("hook", claim.hook)):
            if value:
                item[key] = _s(value)
        if claim.deadline_epoch is not None:
            item["deadline"] = _n(claim.deadline_epoch)
        try:
            # A claim item without an execution (left by an unconditional update before updates required a
            # claim) owns nothing: it is taken over.
            self.client.put_item(TableName=self.table, Item=item,
                                 ConditionExpression="attribute_not_exists(pk) OR attribute_not_exists(executionName)")
        except ConditionFailed:
            return self.workflow(claim.kind, claim.instance_id)
        return None

    def workflow(self, kind: str, instance_id: str) -> WorkflowClaim | None:
        """The claim on an instance, if any (strongly consistent)."""
        resp = self.client.get_item(TableName=self.table, Key={"pk": _s(f"{kind}#{instance_id}"), "sk": _s(kind)},
                                    ConsistentRead=True)
        item = resp.get("Item")
        if not item or "executionName" not in item:
            return None  # no claim, or an item without an execution, which owns nothing (`claim_workflow`)
        return WorkflowClaim(
            instance_id=instance_id, kind=kind, execution_name=item["executionName"]["S"],
            token=item.get("token", {}).get("S"), asg=item.get("asg", {}).get("S"),
            hook=item.get("hook", {}).get("S"),
            deadline_epoch=float(item["deadline"]["N"]) if "deadline" in item else None,
            callback_id=item.get("callbackId", {}).get("S"), started_epoch=float(item["startedAt"]["N"]))

    def attach_lifecycle(self, kind: str, instance_id: str, asg: str, hook: str, token: str,
                         deadline_epoch: float | None) -> None:
        """Give a running workflow the lifecycle action it must complete (and a tighter deadline)."""
        values: dict[str, Any] = {":t": _s(token), ":a": _s(asg), ":h": _s(hook)}
        update = "SET #token = :t, asg = :a, hook = :h"
        if deadline_epoch is not None:
            values[":d"] = _n(deadline_epoch)
            update += ", deadline = if_not_exists(deadline, :d)"
        # Only onto a live claim: an update alone would create a claim with no execution (a late or duplicated
        # trigger after the workflow was released), which the next claim and every reader would trip on.
        with contextlib.suppress(ConditionFailed):
            self.client.update_item(TableName=self.table, Key={"pk": _s(f"{kind}#{instance_id}"), "sk": _s(kind)},
                                    UpdateExpression=update, ExpressionAttributeNames={"#token": "token"},
                                    ExpressionAttributeValues=values, ConditionExpression="attribute_exists(pk)")

    def tighten_deadline(self, kind: str, instance_id: str, deadline_epoch: float) -> None:
        """Lower a workflow's deadline (a Spot warning after a scale-in, say); never raise it."""
        with contextlib.suppress(ConditionFailed):  # no claim, or its deadline is already as tight
            self.client.update_item(
                TableName=self.table, Key={"pk": _s(f"{kind}#{instance_id}"), "sk": _s(kind)},
                UpdateExpression="SET deadline = :d",
                ConditionExpression="attribute_exists(pk) AND (attribute_not_exists(deadline) OR deadline > :d)",
                ExpressionAttributeValues={":d": _n(deadline_epoch)})

    def set_callback(self, kind: str, instance_id: str, callback_id: str) -> None:
        """Record the callback id a waiting workflow listens on."""
        with contextlib.suppress(ConditionFailed):  # no claim (released): nothing to record it on
            self.client.update_item(TableName=self.table, Key={"pk": _s(f"{kind}#{instance_id}"), "sk": _s(kind)},
                                    UpdateExpression="SET callbackId = :c", ConditionExpression="attribute_exists(pk)",
                                    ExpressionAttributeValues={":c": _s(callback_id)})

    def mark_complete(self, container_instance_arns: Sequence[str], now_epoch: float, ttl_s: int = DAY_S) -> None:
        """Remember instances that run every eligible daemon (BatchWriteItem, 25 per call)."""
        for start in range(0, len(container_instance_arns), 25):
            requests: dict[str, Any] = {self.table: [
                {"PutRequest": {"Item": {"pk": _s(f"complete#{arn}"), "sk": _s("complete"),
                                         "expiresAt": _n(int(now_epoch) + ttl_s)}}}
                for arn in container_instance_arns[start:start + 25]]}
            while requests:
                requests = self.client.batch_write_item(RequestItems=requests).get("UnprocessedItems") or {}

    def is_complete(self, container_instance_arn: str) -> bool:
        """True when the instance was seen running every eligible daemon (and none stopped since)."""
        resp = self.client.get_item(TableName=self.table,
                                    Key={"pk": _s(f"complete#{container_instance_arn}"), "sk": _s("complete")})
        return "Item" in resp

    def clear_complete(self, container_instance_arn: str) -> None:
        """Forget it: a daemon stopped, or a check found one missing."""
        self.client.delete_item(TableName=self.table,
                                Key={"pk": _s(f"complete#{container_instance_arn}"), "sk": _s("complete")})

    def audit_position(self) -> int:
        """Cluster audits done so far (0 before the first)."""
        item = self.client.get_item(TableName=self.table, Key=AUDIT_CURSOR_KEY, ConsistentRead=True).get("Item")
        return int(item["position"]["N"]) if item and "position" in item else 0

    def advance_audit(self, seen: int, to: int) -> bool:
        """Move the position from `seen` to `to` (a conditional write); False when another run moved it first."""
        try:
            self.client.put_item(
                TableName=self.table, Item={**AUDIT_CURSOR_KEY, "position": _n(to)},
                ConditionExpression="attribute_not_exists(pk) OR #p = :seen" if seen == 0 else "#p = :seen",
                ExpressionAttributeNames={"#p": "position"}, ExpressionAttributeValues={":seen": _n(seen)})
        except ConditionFailed:
            return False
        return True

    def register_wake(self, kind: str, container_instance_arn: str, callback_id: str, now_epoch: float) -> list[str]:
        """Say which callback wakes the `kind` workflow on a container instance; return (and clear) the
        stopped tasks whose wake-ups reached the previous callback too late."""
        resp = self.client.update_item(
            TableName=self.table, Key={"pk": _s(f"wake-{kind}#{container_instance_arn}"), "sk": _s("wake")},
            UpdateExpression="SET callbackId = :c, expiresAt = :t REMOVE missed",
            ExpressionAttributeValues={":c": _s(callback_id), ":t": _n(int(now_epoch) + DAY_S)},
            ReturnValues="ALL_OLD")
        return sorted(resp.get("Attributes", {}).get("missed", {}).get("SS", []))

    def note_missed_wake(self, kind: str, container_instance_arn: str, stopped_task: str) -> str | None:
        """Keep a stopped task whose wake-up found no waiting callback; return the callback now registered
        (None when the workflow has finished and nothing listens any more)."""
        try:
            resp = self.client.update_item(
                TableName=self.table, Key={"pk": _s(f"wake-{kind}#{container_instance_arn}"), "sk": _s("wake")},
                UpdateExpression="ADD missed :m", ExpressionAttributeValues={":m": {"SS": [stopped_task]}},
                ConditionExpression="attribute_exists(pk)", ReturnValues="ALL_NEW")
        except ConditionFailed:
            return None
        return resp.get("Attributes", {}).get("callbackId", {}).get("S")

    def wake_target(self, kind: str, container_instance_arn: str) -> str | None:
        """The callback id a `kind` workflow on the instance waits on, if any."""
        resp = self.client.get_item(TableName=self.table,
                                    Key={"pk": _s(f"wake-{kind}#{container_instance_arn}"), "sk": _s("wake")})
        item = resp.get("Item")
        return item["callbackId"]["S"] if item else None

    def release_workflow(self, kind: str, instance_id: str, container_instance_arn: str | None = None) -> None:
        """Forget the claim (and the wake-up registration) once the workflow has finished."""
        self.client.delete_item(TableName=self.table, Key={"pk": _s(f"{kind}#{instance_id}"), "sk": _s(kind)})
        if container_instance_arn:
            self.client.delete_item(TableName=self.table,
                                    Key={"pk": _s(f"wake-{kind}#{container_instance_arn}"), "sk": _s("wake")})

    def drain_queue(self, cluster: str) -> DrainQueue:
        """The cluster's drains under its budget (GetItem, strongly consistent)."""
        resp = self.client.get_item(TableName=self.table, Key=_queue_key(cluster), ConsistentRead=True)
        item = resp.get("Item")
        if not item:
            return DrainQueue()
        return DrainQueue(_entries(item.get("draining")), _entries(item.get("waiting")), int(item["version"]["N"]))

    def write_drain_queue(self, cluster: str, before: DrainQueue, after: DrainQueue) -> bool:
        """UpdateItem to version `before.version + 1` on the condition that the item is still at `before.version`
        (or absent, for version 0)."""
        values: dict[str, Any] = {":next": _n(before.version + 1), ":d": _entry_list(after.draining),
                                  ":w": _entry_list(after.waiting)}
        if before.version == 0:
            condition = "attribute_not_exists(pk)"
        else:
            condition, values[":v"] = "version = :v", _n(before.version)
        try:
            self.client.update_item(TableName=self.table, Key=_queue_key(cluster),
                                    UpdateExpression="SET version = :next, draining = :d, waiting = :w",
                                    ConditionExpression=condition, ExpressionAttributeValues=values)
        except ConditionFailed:
            return False
        return True

    def register_service_wake(self, cluster: str, services: Sequence[str], container_instance_arn: str,
                              callback_id: str, now_epoch: float, since_epoch: float) -> bool:
        """Per service, one UpdateItem setting the instance's entry (``{callback, since}``) in the waiters (a
        second one creates the map the first time); True when one held `MISSED` (a wake-up that reached no
        callback)."""
        missed = False
        entry = {"M": {"callback": _s(callback_id), "since": _n(since_epoch)}}
        for service in sorted(set(services)):
            key, names = _service_wake_key(cluster, service), {"#arn": container_instance_arn}
            ttl = _n(int(now_epoch) + DAY_S)
            for _ in range(3):  # the map appears or goes between two writes only under a race: write again
                try:
                    old = self.client.update_item(
                        TableName=self.table, Key=key, UpdateExpression="SET waiters.#arn = :e, expiresAt = :t",
                        ConditionExpression="attribute_exists(waiters)", ExpressionAttributeNames=names,
                        ExpressionAttributeValues={":e": entry, ":t": ttl}, ReturnValues="UPDATED_OLD")
                    was = old.get("Attributes", {}).get("waiters", {}).get("M", {}).get(container_instance_arn)
                    missed = missed or (was is not None and _waiter(container_instance_arn, was).missed)
                    break
                except ConditionFailed:
                    pass
                try:
                    self.client.update_item(
                        TableName=self.table, Key=key, UpdateExpression="SET waiters = :m, expiresAt = :t",
                        ConditionExpression="attribute_not_exists(waiters)",
                        ExpressionAttributeValues={":m": {"M": {container_instance_arn: entry}}, ":t": ttl})
                    break
                except ConditionFailed:
                    pass
        return missed

    def note_missed_service_wake(self, cluster: str, service: str, container_instance_arn: str,
                                 callback_id: str) -> None:
        """Set the instance's callback to `MISSED` (its place kept) on the condition that it still holds
        `callback_id`."""
        with contextlib.suppress(ConditionFailed):
            self.client.update_item(
                TableName=self.table, Key=_service_wake_key(cluster, service),
                UpdateExpression="SET waiters.#arn.callback = :m", ConditionExpression="waiters.#arn.callback = :c",
                ExpressionAttributeNames={"#arn": container_instance_arn},
                ExpressionAttributeValues={":m": _s(MISSED), ":c": _s(callback_id)})

    def service_wakes(self, cluster: str, service: str) -> list[ServiceWaiter]:
        """The service's waiters (GetItem)."""
        resp = self.client.get_item(TableName=self.table, Key=_service_wake_key(cluster, service))
        waiters = resp.get("Item", {}).get("waiters", {}).get("M", {})
        return [_waiter(arn, value) for arn, value in waiters.items()]

    def drop_service_wake(self, cluster: str, service: str, container_instance_arn: str,
                          callback_id: str | None = None) -> None:
        """REMOVE the instance from the service's waiters (nothing when the item is gone, or when it now holds
        another callback than `callback_id`)."""
        extra: dict[str, Any] = {}
        condition = "attribute_exists(pk)"
        if callback_id is not None:
            condition, extra = "waiters.#arn.callback = :c", {"ExpressionAttributeValues": {":c": _s(callback_id)}}
        with contextlib.suppress(ConditionFailed):
            self.client.update_item(
                TableName=self.table, Key=_service_wake_key(cluster, service), UpdateExpression="REMOVE waiters.#arn",
                ExpressionAttributeNames={"#arn": container_instance_arn}, ConditionExpression=condition, **extra)


def _queue_key(cluster: str) -> dict[str, dict[str, str]]:
    return {"pk": _s(f"drainqueue#{cluster}"), "sk": _s("queue")}


def _service_wake_key(cluster: str, service: str) -> dict[str, dict[str, str]]:
    return {"pk": _s(f"service-waiters#{cluster}#{service}"), "sk": _s("wake")}


def _waiter(instance_arn: str, value: Mapping[str, Any]) -> ServiceWaiter:
    entry = value["M"]
    return ServiceWaiter(instance_arn, entry["callback"]["S"], float(entry["since"]["N"]))


def _entry_list(entries: Sequence[QueueEntry]) -> dict[str, Any]:
    return {"L": [{"M": {"i": _s(e.instance_id), "g": _s(e.group), "a": _n(e.at), "s": _n(e.seen_at)}}
                  for e in entries]}


def _entries(raw: Mapping[str, Any] | None) -> tuple[QueueEntry, ...]:
    return tuple(QueueEntry(m["M"]["i"]["S"], m["M"]["g"]["S"], float(m["M"]["a"]["N"]), float(m["M"]["s"]["N"]))
                 for m in (raw or {}).get("L", []))
