"""The simulator's named parameters: what ECS leaves unknown, each with its type, default, range and source.

One registry (`PARAMS`) that the behaviour profiles, the documentation (sim/README.md, "Named parameters"),
the command line and the range suite (bench.ranges) read: `parse_settings` reads parameters by name from
text (``NAME=VALUE``, a range as ``LO,HI``), validating each against its documented range, `apply` sets
them on a world's options and `describe` lists them. A parameter sets one part of the world (`target`):
the `EcsParams` field of its name (a profile, `sim.ecs.PROFILES`, gives each a value and a setting by name
goes on top), the event bus's `FaultPlan`, or the ECS API's `ApiFaults`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from sim.ecs import EcsParams
from sim.eventbridge import FaultPlan
from sim.world import WorldOptions

Kind = Literal["seconds", "seconds-range", "rate", "boolean"]
Target = Literal["ecs", "delivery", "api"]
ParamValue = float | tuple[float, float] | bool
TRUE, FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


@dataclass(frozen=True)
class SimParam:
    """One named parameter: its type, default, the range of values it may take, and where that comes from."""

    name: str
    kind: Kind
    default: ParamValue
    low: float
    high: float
    source: str
    description: str
    target: Target = "ecs"

    @property
    def type_text(self) -> str:
        """The type as the listing shows it."""
        return {"seconds": "seconds", "seconds-range": "LO,HI seconds", "rate": "share 0..1",
                "boolean": "true|false"}[self.kind]

    @property
    def range_text(self) -> str:
        """The documented range as the listing shows it."""
        if self.kind == "boolean":
            return "false or true"
        unit = "" if self.kind == "rate" else " s"
        return f"{self.low:g} to {self.high:g}{unit}"

    def parse(self, text: str) -> ParamValue:
        """A value from the command line (``V``, ``LO,HI`` for a range, true/false for a boolean);
        ValueError says what is wrong."""
        if self.kind == "boolean":
            word = text.strip().lower()
            if word not in TRUE + FALSE:
                raise ValueError(f"--param {self.name}: expected true or false, got {text!r}")
            return word in TRUE
        parts = [p.strip() for p in text.split(",")]
        single = self.kind != "seconds-range"
        if (single and len(parts) != 1) or len(parts) > 2 or not all(parts):
            shape = {"seconds": "a number of seconds", "rate": "a share from 0 to 1"}.get(
                self.kind, "seconds as V or LO,HI")
            raise ValueError(f"--param {self.name}: expected {shape}, got {text!r}")
        try:
            values = [float(p) for p in parts]
        except ValueError:
            what = "a number" if self.kind == "rate" else "a number of seconds"
            raise ValueError(f"--param {self.name}: {text!r} is not {what}") from None
        for value in values:
            if not math.isfinite(value) or not self.low <= value <= self.high:
                raise ValueError(f"--param {self.name}: {value:g} is outside its range, {self.range_text}")
        if single:
            return values[0]
        low, high = values[0], values[-1]
        if low > high:
            raise ValueError(f"--param {self.name}: LO ({low:g}) is above HI ({high:g})")
        return (low, high)


EVENTBRIDGE = ("EventBridge: ECS events are durable deliveries, at least once (duplicates, reordering, "
               "retries for up to 24 h, then the dead-letter queue); ECS-BEHAVIOUR.md, event delivery")
PARAMS: dict[str, SimParam] = {p.name: p for p in (
    SimParam("task_shutdown_s", "seconds-range", (0.5, 4.0), 0.0, 600.0,
             "ECS guide, StopTask: SIGTERM, then SIGKILL after the container's stopTimeout; how long apps take is "
             "theirs (apps that flush on SIGTERM use it all: ../shared/ECS-BEHAVIOUR.md)",
             "seconds a task's containers take to exit after SIGTERM, drawn per stop; capped by the task's "
             "stopTimeout (SIGKILL then): a value at or above it means the whole stopTimeout"),
    SimParam("stopped_report_lag_s", "seconds-range", (0.4, 0.4), 0.0, 120.0,
             "not documented: the agent reports a task's state asynchronously (ECS-BEHAVIOUR.md: under a second "
             "to tens of seconds)",
             "seconds from the containers' exit to STOPPED in DescribeTasks and in the Task State Change event, "
             "drawn per stop from its own random stream"),
    SimParam("agent_stop_timeout_s", "seconds", 30.0, 1.0, 3600.0,
             "ECS container definition stopTimeout: unset on EC2, the agent's ECS_CONTAINER_STOP_TIMEOUT applies "
             "(default 30 s; operators raise it); not readable through the ECS API",
             "the stopTimeout of a task definition whose containers set none"),
    SimParam("daemon_cycle_s", "seconds", 15.2, 5.0, 120.0,
             "not documented: calibrated so that ECS alone is ~96% daemon-first (15.2 s with 27 s replica "
             "visibility; 6 s with 12 s also fits: the fast-cycle profile); ECS-BEHAVIOUR.md",
             "seconds between two passes of the daemon scheduler over a cluster's instances"),
    SimParam("daemon_stall_while_draining_s", "seconds", 0.0, 0.0, 600.0,
             "containers-roadmap#856: daemons not placed on new instances while other instances of the cluster "
             "drain (an instance refresh is exactly that)",
             "the daemon scheduler places nothing on a new instance (no daemon task yet) while another instance "
             "of the cluster is DRAINING, for up to this long from the first pass that held it back"),
    SimParam("attribute_visibility_s", "seconds-range", (0.0, 0.0), 0.0, 30.0,
             "ECS API reference: \"The Amazon ECS API follows an eventual consistency model\" (at once to "
             "seconds: ECS-BEHAVIOUR.md)",
             "seconds, drawn per write, before a PutAttributes, DeleteAttributes or UpdateContainerInstancesState "
             "takes effect for the scheduler, filtered ListContainerInstances and reads (in the order written)"),
    SimParam("event_delay_s", "seconds-range", (0.5, 0.9), 0.0, 300.0, EVENTBRIDGE,
             "seconds from an event's put to its delivery, drawn per delivery (the bench's default: 0.5 s "
             "latency and 0.4 s jitter, besides a 2% slow tail)", "delivery"),
    SimParam("event_duplicate_rate", "rate", 0.0, 0.0, 1.0, EVENTBRIDGE,
             "the chance that a delivery gains one more copy, repeatedly, up to 3 copies (the drain suite sets "
             "0.2 for daemon-guard unless named)", "delivery"),
    SimParam("event_reorder_window_s", "seconds", 0.0, 0.0, 120.0, EVENTBRIDGE,
             "extra uniform delay per delivery in [0, this], so later events overtake earlier ones", "delivery"),
    SimParam("event_dlq_rate", "rate", 0.0, 0.0, 0.2, EVENTBRIDGE,
             "the share of deliveries that exhaust their retries: lost to the dead-letter queue, never delivered",
             "delivery"),
    SimParam("api_rate_share", "rate", 1.0, 0.05, 1.0,
             "ECS API reference, request throttling (token buckets per action group); the account's other "
             "traffic (deploy tooling, autoscalers, consoles) shares them: ECS-BEHAVIOUR.md",
             "the share of each ECS rate bucket (burst and refill) left to the guard", "api"),
    SimParam("spot_instance_draining", "boolean", False, 0.0, 1.0,
             "ECS agent option ECS_ENABLE_SPOT_INSTANCE_DRAINING (off by default): ECS sets the instance "
             "DRAINING at a Spot interruption notice, racing the guard's order",
             "true: ECS itself sets DRAINING when EC2 gives a Spot instance its notice"),
    SimParam("attribute_change_event", "boolean", True, 0.0, 1.0,
             "ECS developer guide, container instance state change events: the causes it lists (task placed or "
             "stopped, agent connected, registered, deregistered, agent updated) do not name PutAttributes; "
             "undocumented either way",
             "true: a PutAttributes or DeleteAttributes emits a Container Instance State Change"),
    SimParam("running_count_includes_stopping", "boolean", False, 0.0, 1.0,
             "ECS API reference, Service runningCount: \"The number of tasks in the cluster that are in the RUNNING "
             "state\"; a task told to stop keeps lastStatus RUNNING until the agent reports it STOPPED (StopTask): "
             "whether the count drops at StopTask or then is not documented",
             "true: DescribeServices' runningCount counts a service task told to stop until it is reported STOPPED; "
             "false: it drops at StopTask (pendingCount is the same either way)"),
)}
# The FaultPlan and ApiFaults fields a delivery or API parameter sets (event_delay_s sets two: delay, jitter).
DELIVERY_FIELDS = {"event_duplicate_rate": "duplicate_rate", "event_reorder_window_s": "reorder_window_s",
                   "event_dlq_rate": "loss_rate"}
API_FIELDS = {"api_rate_share": "rate_share"}


def parse_settings(settings: Iterable[str]) -> dict[str, ParamValue]:
    """``NAME=VALUE`` settings (``--param``, repeatable) to values; ValueError names an unknown parameter."""
    out: dict[str, ParamValue] = {}
    for setting in settings:
        name, sep, text = setting.partition("=")
        name = name.strip()
        if not sep:
            raise ValueError(f"--param {setting!r}: expected NAME=VALUE (a range as NAME=LO,HI)")
        if name not in PARAMS:
            raise ValueError(f"--param {name}: unknown parameter; known: {', '.join(sorted(PARAMS))}")
        out[name] = PARAMS[name].parse(text)
    return out


def _check(values: Mapping[str, ParamValue]) -> None:
    unknown = sorted(set(values) - set(PARAMS))
    if unknown:
        raise ValueError(f"unknown parameter(s) {', '.join(unknown)}; known: {', '.join(sorted(PARAMS))}")


def with_params(base: EcsParams, values: Mapping[str, ParamValue]) -> EcsParams:
    """`base` with the named ECS parameters set (values as `parse_settings` returns them); the bus's and the
    API's parameters are refused here (`apply` sets every kind on a world's options)."""
    _check(values)
    other = sorted(n for n in values if PARAMS[n].target != "ecs")
    if other:
        raise ValueError(f"{', '.join(other)}: not an ECS scheduler parameter (set it on the world: sim.params.apply)")
    changes: dict[str, Any] = dict(values)
    return replace(base, **changes)


def delivery_with(plan: FaultPlan, values: Mapping[str, ParamValue]) -> FaultPlan:
    """`plan` with the named event delivery parameters in `values` set (the others are ignored)."""
    changes: dict[str, Any] = {DELIVERY_FIELDS[n]: v for n, v in values.items() if n in DELIVERY_FIELDS}
    delay = values.get("event_delay_s")
    if isinstance(delay, tuple):
        changes |= {"delay_s": delay[0], "jitter_s": delay[1] - delay[0]}
    return replace(plan, **changes)


def apply(options: WorldOptions, values: Mapping[str, ParamValue]) -> WorldOptions:
    """A world's options with the named parameters set on the part each belongs to."""
    _check(values)
    ecs = {n: v for n, v in values.items() if PARAMS[n].target == "ecs"}
    api: dict[str, Any] = {API_FIELDS[n]: v for n, v in values.items() if n in API_FIELDS}
    return replace(options, ecs=with_params(options.ecs, ecs), delivery=delivery_with(options.delivery, values),
                   api_faults=replace(options.api_faults, **api))


def shown(value: ParamValue) -> str:
    """A value as the command line writes it (``LO,HI`` for a range)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return ",".join(f"{v:g}" for v in value) if isinstance(value, tuple) else f"{value:g}"


def describe() -> list[dict[str, str]]:
    """Each parameter as a row: name, type, default, range, source (what ``--list-params`` prints)."""
    return [{"name": p.name, "type": p.type_text, "default": shown(p.default), "range": p.range_text,
             "source": p.source, "description": p.description} for p in PARAMS.values()]
