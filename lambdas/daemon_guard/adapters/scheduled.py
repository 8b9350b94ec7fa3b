"""Drains due later: AWS Health scheduled changes announced ahead of a configured lead.

One item per instance in the state table (``pk`` ``scheduled-drain``, ``sk`` the EC2 instance id),
holding when the drain is due and the drain's Invoke payload. A re-announced change overwrites
the item (the latest start time wins); the reconciler starts due drains and removes their items.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
else:
    DynamoDBClient = Any

PK = "scheduled-drain"
KEEP_AFTER_DUE_S = 7 * 86400


@dataclass(frozen=True)
class ScheduledDrain:
    """A drain to start at `due_epoch` with `payload` (the drain workflow's Invoke payload)."""

    instance_id: str
    due_epoch: float
    payload: Mapping[str, Any]


class DrainSchedule(Protocol):
    """Drains due later, one per instance."""

    def put(self, drain: ScheduledDrain) -> None:
        """Record (or move) the instance's scheduled drain."""
        ...

    def due(self, now_epoch: float) -> list[ScheduledDrain]:
        """Every scheduled drain due at `now_epoch`."""
        ...

    def remove(self, instance_id: str) -> None:
        """Forget the instance's scheduled drain."""
        ...


class ScheduledDrains:
    """The scheduled drains in the state table."""

    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self.client = client
        self.table = table

    def put(self, drain: ScheduledDrain) -> None:
        """Record (or move) the instance's scheduled drain."""
        self.client.put_item(TableName=self.table, Item={
            "pk": {"S": PK}, "sk": {"S": drain.instance_id}, "due": {"N": repr(float(drain.due_epoch))},
            "payload": {"S": json.dumps(dict(drain.payload), sort_keys=True)},
            "expiresAt": {"N": str(int(drain.due_epoch) + KEEP_AFTER_DUE_S)}})

    def due(self, now_epoch: float) -> list[ScheduledDrain]:
        """Every scheduled drain due at `now_epoch` (Query on the one partition, paginated)."""
        found: list[ScheduledDrain] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table, "KeyConditionExpression": "pk = :pk", "FilterExpression": "#due <= :now",
            "ExpressionAttributeNames": {"#due": "due"},
            "ExpressionAttributeValues": {":pk": {"S": PK}, ":now": {"N": repr(float(now_epoch))}},
            "ConsistentRead": True}
        while True:
            resp = self.client.query(**kwargs)
            for item in resp.get("Items", []):
                found.append(ScheduledDrain(item["sk"]["S"], float(item["due"]["N"]), json.loads(item["payload"]["S"])))
            if "LastEvaluatedKey" not in resp:
                return found
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    def remove(self, instance_id: str) -> None:
        """Forget the instance's scheduled drain (started, or no longer wanted)."""
        self.client.delete_item(TableName=self.table, Key={"pk": {"S": PK}, "sk": {"S": instance_id}})
