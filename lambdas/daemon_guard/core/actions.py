"""Actions as data: what the planners ask the edges to do. Tests compare lists of them with `==`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # core.drain's planners import these actions: the request types are only named here
    from daemon_guard.core.drain.request import DrainRequest
    from daemon_guard.core.gate_request import GateRequest

LifecycleResult = Literal["CONTINUE", "ABANDON"]
OMIT_NONE = "omit-none"  # field metadata: an action written as JSON leaves the field out while it is None


@dataclass(frozen=True)
class StopTasks:
    """StopTask each task, with a reason ECS records on the task. A drain's stop names the phase it belongs to
    (`phase`: ``replicas``, ``standalone``, a daemon tier's name, or ``settle``, as `core.drain.phase_label`
    names them); an eviction's belongs to no phase (None)."""

    task_arns: tuple[str, ...]
    reason: str
    phase: str | None = field(default=None, metadata={OMIT_NONE: True})


@dataclass(frozen=True)
class OpenGate:
    """PutAttributes `<gate-attribute>=open` on a container instance, so gated replicas may land."""

    instance_arn: str
    attribute: str


@dataclass(frozen=True)
class SetAttribute:
    """PutAttributes `<name>=<value>` on a container instance (the drain's gate and tier attributes)."""

    instance_arn: str
    name: str
    value: str


@dataclass(frozen=True)
class SetDraining:
    """UpdateContainerInstancesState DRAINING (the adapter batches 10 per call)."""

    instance_arns: tuple[str, ...]


@dataclass(frozen=True)
class CompleteLifecycle:
    """CompleteLifecycleAction by token (or by instance id when the token is unknown)."""

    asg: str
    hook: str
    instance_id: str
    token: str | None
    result: LifecycleResult


@dataclass(frozen=True)
class RecordHeartbeat:
    """RecordLifecycleActionHeartbeat, to keep a waiting hook alive while work progresses."""

    asg: str
    hook: str
    instance_id: str
    token: str | None


@dataclass(frozen=True)
class ReplaceInstance:
    """Have the instance's Auto Scaling group replace it: CompleteLifecycleAction ABANDON while a launch hook
    holds it in Pending:Wait, else SetInstanceHealth Unhealthy (InService). Only on the managed groups.
    `daemons`: the critical daemons it lacks."""

    ec2_instance_id: str
    daemons: tuple[str, ...]
    reason: str



@dataclass(frozen=True)
class SetInstanceHealth:
    """SetInstanceHealth on an Auto Scaling instance (Unhealthy: its group replaces it), grace period ignored."""

    instance_id: str
    health: Literal["Healthy", "Unhealthy"]


Action = (StopTasks | OpenGate | SetAttribute | SetDraining | CompleteLifecycle | RecordHeartbeat | ReplaceInstance
          | SetInstanceHealth)


@dataclass(frozen=True)
class StartWorkflow:
    """Invoke a durable workflow by qualified ARN with an execution name (idempotent start).

    The request is the one value the workflow is started with; the executor sends its `as_payload()`
    and the workflow reads it back with the request type's own `from_payload`.
    """

    execution_name: str
    request: DrainRequest | GateRequest

    @property
    def workflow(self) -> Literal["drain", "launch-gate"]:
        """Which workflow the request starts."""
        return self.request.WORKFLOW

    def as_dict(self) -> dict[str, Any]:
        """JSON form (`core.outcomes.action_dict`): the workflow, the execution name and the payload sent."""
        return {"workflow": self.workflow, "execution_name": self.execution_name,
                "payload": self.request.as_payload()}


@dataclass(frozen=True)
class WakeWorkflow:
    """SendDurableExecutionCallbackSuccess to a waiting workflow."""

    callback_id: str
    reason: str
    stopped_task: str | None = None


AnyAction = Action | StartWorkflow | WakeWorkflow
