"""What the intake decided for one event: a frozen `Outcome` with a typed decision, and its JSON form.

The decision is one of `Decision`'s names, never a free string: the placement planner's decisions
(`PlacementDecision`) and those of the intake's other paths (`IntakeDecision`). An event naming
several instances (an AWS Health scheduled change) has one outcome per instance in `instances`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from daemon_guard.core.actions import OMIT_NONE, AnyAction
from daemon_guard.core.intake import Route, RouteKind
from daemon_guard.core.placement import PlacementDecision

IntakeDecision = Literal[
    "malformed", "ignored", "duplicate", "deferred", "reconciled",  # any event
    "woke", "nothing-waiting",  # wakes
    "completed", "start-workflow", "not-configured", "joined", "started", "already-started",  # workflow starts
    "reported", "scheduled", "observed",  # drains by configuration
]
Decision = PlacementDecision | IntakeDecision


def action_dict(action: object) -> dict[str, Any]:
    """An action as JSON: its type and fields (a field marked `OMIT_NONE` only once it has a value), or what
    its own `as_dict` says (a start's payload)."""
    as_dict = getattr(action, "as_dict", None)
    if callable(as_dict):
        return {"type": type(action).__name__, **as_dict()}
    values = {f.name: getattr(action, f.name) for f in fields(action)  # type: ignore[arg-type]
              if not (f.metadata.get(OMIT_NONE) and getattr(action, f.name) is None)}
    return {"type": type(action).__name__, **{k: (list(v) if isinstance(v, tuple) else v) for k, v in values.items()}}


@dataclass(frozen=True)
class Outcome:
    """The intake's decision for one event (or, in `instances`, for each instance the event names)."""

    route: RouteKind
    decision: Decision
    reason: str
    instance: str | None = None
    actions: tuple[AnyAction, ...] = ()
    instances: tuple[Outcome, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)  # JSON the path adds (a drain's planned steps)

    def as_dict(self) -> dict[str, Any]:
        """JSON form: what the intake returns and logs, and what `daemon-guard replay` prints."""
        out: dict[str, Any] = {"route": self.route, "decision": self.decision, "reason": self.reason,
                               "instance": self.instance, "actions": [action_dict(a) for a in self.actions]}
        if self.instances:
            verdicts = sorted({o.decision for o in self.instances})
            out["decision"] = "+".join(verdicts)
            out["instances"] = [{"instance": o.instance, "decision": o.decision} for o in self.instances]
        return {**out, **self.extra}


def decision(r: Route, decision: Decision, reason: str, instance: str | None = None,
             actions: Sequence[AnyAction] = ()) -> Outcome:
    """The outcome of handling an event routed as `r`."""
    return Outcome(r.kind, decision, reason, instance, tuple(actions))
