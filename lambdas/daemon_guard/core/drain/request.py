"""What a drain is asked to do: the request that started it (its payload), the configured policy, and
the lifecycle action it must complete."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeVar

from daemon_guard.core.config import DeadlinePolicy, DrainOrder, StandalonePolicy
from daemon_guard.core.identifiers import (
    AsgName,
    HookName,
    IdentifierError,
    InstanceId,
    LifecycleToken,
    valid_epoch,
)

REPLACE_UNHEALTHY = "unhealthy"
"""The payload's ``replace`` value: mark the drained instance Unhealthy so its group replaces it."""


@dataclass(frozen=True)
class DrainRequest:
    """What started the drain (the workflow's payload)."""

    WORKFLOW: ClassVar[Literal["drain"]] = "drain"
    CLAIM_KIND: ClassVar[Literal["drain"]] = "drain"  # its claim's kind in the state table

    instance_id: InstanceId
    cluster: str
    trigger: str
    asg: AsgName | None = None
    hook: HookName | None = None
    token: LifecycleToken | None = None
    deadline_epoch: float | None = None
    destination: str | None = None
    replace: bool = False  # once drained, have its group replace it (SetInstanceHealth Unhealthy)

    def as_payload(self) -> dict[str, str | float]:
        """The Invoke payload (JSON), the one serialization of a drain request: what `from_payload` reads back.
        Unset fields are left out; ``replace`` is written ``"unhealthy"``."""
        fields: dict[str, str | float | None] = {
            "instanceId": self.instance_id, "cluster": self.cluster, "trigger": self.trigger, "asg": self.asg,
            "hook": self.hook, "token": self.token, "deadline": self.deadline_epoch,
            "destination": self.destination, "replace": REPLACE_UNHEALTHY if self.replace else None}
        return {k: v for k, v in fields.items() if v is not None}

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> DrainRequest:
        """Read the Invoke payload (an operator's too); ValueError names the field that is missing or wrong.

        Identifiers are validated as `core.identifiers` value types before anything reads ECS, so an
        ``instanceId`` of ``*`` or a query fragment is refused, and ``deadline`` must be epoch seconds
        within the event-time bounds (no NaN, no 1970, no year 9999).
        """
        for key in ("instanceId", "cluster", "trigger"):
            if not isinstance(payload.get(key), str) or not payload[key]:
                raise ValueError(f"drain payload needs a non-empty string '{key}'")
        deadline = payload.get("deadline")
        if payload.get("replace") not in (None, REPLACE_UNHEALTHY):
            raise ValueError(f"drain payload 'replace': expected \"{REPLACE_UNHEALTHY}\" or nothing, "
                             f"got {payload.get('replace')!r}")
        if deadline is not None and not valid_epoch(deadline):
            raise ValueError(f"drain payload 'deadline': expected epoch seconds in 2016-2099, got {deadline!r}")
        try:
            return cls(instance_id=InstanceId(payload["instanceId"]), cluster=payload["cluster"],
                       trigger=payload["trigger"], asg=_optional(AsgName, payload.get("asg")),
                       hook=_optional(HookName, payload.get("hook")),
                       token=_optional(LifecycleToken, payload.get("token")),
                       deadline_epoch=float(deadline) if deadline is not None else None,
                       destination=_text(payload.get("destination"), "destination"),
                       replace=payload.get("replace") == REPLACE_UNHEALTHY)
        except IdentifierError as refused:
            raise ValueError(f"drain payload: {refused.reason}") from None


def _text(value: object, key: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise ValueError(f"drain payload '{key}': expected a string, got {value!r}")


def _optional(kind: Callable[[object], T], value: object) -> T | None:
    """None and "" (no lifecycle action) stay None; anything else must be a valid `kind`."""
    return None if value is None or value == "" else kind(value)


@dataclass(frozen=True)
class DrainPolicy:
    """Configured order and time limits."""

    tier_names: tuple[str, ...]
    standalone: StandalonePolicy
    standalone_wait_s: float
    drain_deadline_s: float
    tier_deadline_s: float
    heartbeat_timeout_s: float
    order: DrainOrder = DrainOrder.DRAINING
    gate_attribute: str = "daemon-guard.gate"
    deadline_policy: DeadlinePolicy = DeadlinePolicy.ORDER


@dataclass(frozen=True)
class Lifecycle:
    """The lifecycle action the drain must complete."""

    asg: str
    hook: str
    token: str | None
T = TypeVar("T")
