"""What daemon-guard costs to run, per 1,000 instance-hours, measured in the simulator and priced at list prices.

The demo's story runs once with the real handlers and workflows (`sim.deployment.GuardDeployment`)
while every billable unit is counted:

- Lambda requests and duration, per function. Duration is the handler's own CPU time plus
  `API_ROUND_TRIP_MS` for each AWS call it made (the simulator answers instantly; AWS does not);
  GB-seconds use each function's configured memory (`infra.functions`: 512 MB).
- Durable operations: each execution started, plus each step and callback it checkpointed.
- DynamoDB requests on the state table (one request unit each: its items are far below 1 KB / 4 KB).
- EventBridge events delivered to daemon-guard's rules: one per intake invocation (AWS service events
  on the default bus and scheduled rules carry no EventBridge charge).

The placement story is the warm-up and scale-out (every new instance checked and covered), the drain
story the scale-in and Spot interruption (every instance drained); each is divided by its launches or
drains. The reconciler runs on its schedule whatever happens, so it is counted per hour.

Reference fleet for "per 1,000 instance-hours": 100 instances that each live `INSTANCE_LIFETIME_H`
hours on average, i.e. 10 hours of that fleet, with 1,000 / lifetime launches and as many drains.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

API_ROUND_TRIP_MS = 20.0
MEMORY_GB = 0.5
INSTANCE_LIFETIME_H = 24.0
FLEET_INSTANCES = 100
PRICES_SOURCE = ("AWS list prices, US East (N. Virginia), Arm, first tier: aws.amazon.com/lambda/pricing (requests, "
                 "duration; durable operations $8.00 per million as transcribed from that page on 2026-09-20), "
                 "aws.amazon.com/dynamodb/pricing/on-demand (rates since the November 2024 reduction), "
                 "aws.amazon.com/eventbridge/pricing (AWS service events on the default bus: no charge); "
                 "not re-read online from the build machine")
PRICES = {
    "lambda_request": 0.20 / 1e6,
    "lambda_gb_second": 0.0000133334,
    "durable_operation": 8.00 / 1e6,
    "dynamodb_write": 0.625 / 1e6,
    "dynamodb_read": 0.125 / 1e6,
    "eventbridge_aws_event": 0.0,
}
_DYNAMODB_WRITES = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems")


@dataclass
class Usage:
    """Billable units counted over one window of the story."""

    invocations: Counter[str]
    gb_seconds: float
    durable_operations: int
    dynamodb_reads: int
    dynamodb_writes: int
    events: int

    def dollars(self) -> float:
        """The list price of these units."""
        return (sum(self.invocations.values()) * PRICES["lambda_request"]
                + self.gb_seconds * PRICES["lambda_gb_second"]
                + self.durable_operations * PRICES["durable_operation"]
                + self.dynamodb_reads * PRICES["dynamodb_read"] + self.dynamodb_writes * PRICES["dynamodb_write"]
                + self.events * PRICES["eventbridge_aws_event"])

    def scaled(self, factor: float) -> dict[str, Any]:
        """These units times ``factor``, rounded for a table."""
        return {"lambda_invocations": round(sum(self.invocations.values()) * factor, 1),
                "by_function": {k: round(v * factor, 1) for k, v in sorted(self.invocations.items())},
                "gb_seconds": round(self.gb_seconds * factor, 2),
                "durable_operations": round(self.durable_operations * factor, 1),
                "dynamodb_requests": round((self.dynamodb_reads + self.dynamodb_writes) * factor, 1),
                "eventbridge_events": round(self.events * factor, 1),
                "usd": round(self.dollars() * factor, 4)}


def measure(seed: int = 7) -> dict[str, Any]:
    """Run the demo story with counters on; return per-launch, per-drain and per-hour usage and the 1,000 ih bill."""
    from daemon_guard.adapters.state import StateStore

    from bench import demo
    from sim.deployment import GuardDeployment

    world = demo._build_world(seed)
    deployment = GuardDeployment(world, demo.demo_config())
    dynamo: list[tuple[float, str]] = []
    state = deployment.runtime.ledger  # the one table every state port of the deployment uses
    assert isinstance(state, StateStore)
    state.client.meta.events.register(
        "before-call.dynamodb", lambda model, **_: dynamo.append((world.clock.now, model.name)))
    try:
        story = demo._run_story(world, None)
    finally:
        deployment.close()

    def usage(start: float, end: float, functions: tuple[str, ...]) -> Usage:
        calls = [i for i in deployment.records.invocations if start <= i.at < end and i.function in functions]
        starts = [e for e in deployment.durable.executions.values() if start <= e.started_at < end]
        return Usage(
            invocations=Counter(i.function for i in calls),
            gb_seconds=sum((i.cpu_ms + i.api_calls * API_ROUND_TRIP_MS) / 1000 * MEMORY_GB for i in calls),
            durable_operations=sum(1 + len(e.operations) for e in starts) if "workflow" in functions else 0,
            dynamodb_reads=sum(1 for at, op in dynamo if start <= at < end and op not in _DYNAMODB_WRITES),
            dynamodb_writes=sum(1 for at, op in dynamo if start <= at < end and op in _DYNAMODB_WRITES),
            events=sum(1 for i in calls if i.function == "intake"))

    launches = sum(1 for g in world.asg.groups.values() for i in g.instances.values())
    drains = len({i.instance_id for g in world.asg.groups.values() for i in g.instances.values()
                  if i.drain_started_at is not None} | set(story.spot_warnings))
    placement = usage(0.0, demo.DEMAND_DROP_AT, ("intake", "workflow"))
    drain = usage(demo.SCALE_IN_AT, demo.HORIZON, ("intake", "workflow"))
    reconciler = usage(0.0, demo.HORIZON, ("reconciler",))
    hours = demo.HORIZON / 3600
    per_1000 = 1000 / INSTANCE_LIFETIME_H
    fleet_hours = 1000 / FLEET_INSTANCES
    parts = {"placement": placement.scaled(per_1000 / launches),
             "drain": drain.scaled(per_1000 / drains),
             "reconciler": reconciler.scaled(fleet_hours / hours)}
    return {
        "story": {"seed": seed, "launches": launches, "drains": drains, "simulated_hours": round(hours, 3)},
        "assumptions": {"api_round_trip_ms": API_ROUND_TRIP_MS, "memory_gb": MEMORY_GB,
                        "instance_lifetime_h": INSTANCE_LIFETIME_H, "fleet_instances": FLEET_INSTANCES,
                        "launches_and_drains_per_1000_instance_hours": round(per_1000, 1)},
        "per_launch": placement.scaled(1 / launches), "per_drain": drain.scaled(1 / drains),
        "per_1000_instance_hours": {**parts, "total_usd": round(sum(p["usd"] for p in parts.values()), 4)},
        "prices": PRICES, "prices_source": PRICES_SOURCE,
    }
