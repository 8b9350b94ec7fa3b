"""What a launch gate is asked to do: the launch lifecycle action it holds, as the workflow's payload.

Built once by the intake (or the reconciler) from a launch lifecycle action, serialized by the executor
(`as_payload`) and read back by the workflow with `from_payload`, which refuses a bad payload before
anything reads ECS or Auto Scaling.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from daemon_guard.core.identifiers import AsgName, HookName, IdentifierError, InstanceId, LifecycleToken, valid_epoch


@dataclass(frozen=True)
class GateRequest:
    """The launch lifecycle action a launch gate holds in Pending:Wait (the workflow's payload)."""

    WORKFLOW: ClassVar[Literal["launch-gate"]] = "launch-gate"
    CLAIM_KIND: ClassVar[Literal["gate"]] = "gate"  # its claim's kind in the state table

    instance_id: InstanceId
    cluster: str
    asg: AsgName
    hook: HookName
    token: LifecycleToken | None
    started_epoch: float | None = None  # when the lifecycle action began (the workflow keeps its own clock)

    def as_payload(self) -> dict[str, str | float]:
        """The Invoke payload (JSON): ``instanceId``, ``cluster``, ``asg``, ``hook``, and ``token`` and
        ``startedAt`` when known."""
        payload: dict[str, str | float] = {"instanceId": self.instance_id, "cluster": self.cluster, "asg": self.asg,
                                           "hook": self.hook}
        if self.token is not None:
            payload["token"] = self.token
        if self.started_epoch is not None:
            payload["startedAt"] = self.started_epoch
        return payload

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> GateRequest:
        """Read the Invoke payload; ValueError names the field that is missing or wrong.

        Identifiers are validated as `core.identifiers` value types, and ``startedAt``, when given, must be
        epoch seconds within the event-time bounds.
        """
        for key in ("instanceId", "cluster", "asg", "hook"):
            if not isinstance(payload.get(key), str) or not payload[key]:
                raise ValueError(f"launch gate payload needs a non-empty string '{key}'")
        started = payload.get("startedAt")
        if started is not None and not valid_epoch(started):
            raise ValueError(f"launch gate payload 'startedAt': expected epoch seconds in 2016-2099, got {started!r}")
        token = payload.get("token")
        started_epoch = None if started is None else float(started)
        try:
            return cls(instance_id=InstanceId(payload["instanceId"]), cluster=payload["cluster"],
                       asg=AsgName(payload["asg"]), hook=HookName(payload["hook"]),
                       token=None if token is None else LifecycleToken(token), started_epoch=started_epoch)
        except IdentifierError as refused:
            raise ValueError(f"launch gate payload: {refused.reason}") from None
