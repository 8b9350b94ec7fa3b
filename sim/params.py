"""The simulator's named parameters: what ECS leaves unknown, each with its type, default, range and source.

One registry (`PARAMS`) that the behaviour profiles, the documentation (sim/README.md, "Named parameters")
and the command line read: `with_params` sets parameters by name from text (``NAME=VALUE``, a range as
``LO,HI``), validating each against its documented range, and `describe` lists them. A parameter names
the `EcsParams` field it sets; a profile (`sim.ecs.PROFILES`) gives each a value, and a setting by name
goes on top of the profile.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from sim.ecs import EcsParams

Kind = Literal["seconds", "seconds-range"]
ParamValue = float | tuple[float, float]


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

    @property
    def range_text(self) -> str:
        """The documented range as the listing shows it."""
        return f"{self.low:g} to {self.high:g} s"

    def parse(self, text: str) -> ParamValue:
        """A value from the command line (``V``, or ``LO,HI`` for a range); ValueError says what is wrong."""
        parts = [p.strip() for p in text.split(",")]
        if (self.kind == "seconds" and len(parts) != 1) or len(parts) > 2 or not all(parts):
            shape = "a number of seconds" if self.kind == "seconds" else "seconds as V or LO,HI"
            raise ValueError(f"--param {self.name}: expected {shape}, got {text!r}")
        try:
            values = [float(p) for p in parts]
        except ValueError:
            raise ValueError(f"--param {self.name}: {text!r} is not a number of seconds") from None
        for value in values:
            if not math.isfinite(value) or not self.low <= value <= self.high:
                raise ValueError(f"--param {self.name}: {value:g} is outside its range, {self.range_text}")
        if self.kind == "seconds":
            return values[0]
        low, high = values[0], values[-1]
        if low > high:
            raise ValueError(f"--param {self.name}: LO ({low:g}) is above HI ({high:g})")
        return (low, high)


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
)}


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


def with_params(base: EcsParams, values: Mapping[str, ParamValue]) -> EcsParams:
    """`base` with the named parameters set (values as `parse_settings` returns them)."""
    unknown = sorted(set(values) - set(PARAMS))
    if unknown:
        raise ValueError(f"unknown parameter(s) {', '.join(unknown)}; known: {', '.join(sorted(PARAMS))}")
    changes: dict[str, Any] = dict(values)
    return replace(base, **changes)


def describe() -> list[dict[str, str]]:
    """Each parameter as a row: name, type, default, range, source (what ``--list-params`` prints)."""
    def shown(value: ParamValue) -> str:
        return ",".join(f"{v:g}" for v in value) if isinstance(value, tuple) else f"{value:g}"

    return [{"name": p.name, "type": "LO,HI seconds" if p.kind == "seconds-range" else "seconds",
             "default": shown(p.default), "range": p.range_text, "source": p.source, "description": p.description}
            for p in PARAMS.values()]
