"""The one executor: each action type (`core.actions`) mapped to the AWS call that carries it out.

`AwsExecutor` makes the calls, through the ports (`EcsPort`, `AutoScalingPort`, `WorkflowStarter`);
`RecordingExecutor` is a dry run: it records each action and calls nothing. Every planner's
actions go through `Executor.run`, which says what came of it:

- ``"done"``: carried out;
- ``"gone"``: nothing left to act on (the lifecycle action is no longer waiting, the callback no
  longer listens, a different execution already holds the name);
- ``"recorded"``: a dry run noted it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal, Protocol

from daemon_guard.adapters.autoscaling import AutoScalingPort
from daemon_guard.adapters.ecs import EcsPort
from daemon_guard.adapters.workflows import WorkflowStarter
from daemon_guard.core.actions import (
    AnyAction,
    CompleteLifecycle,
    OpenGate,
    RecordHeartbeat,
    ReplaceInstance,
    SetAttribute,
    SetDraining,
    SetInstanceHealth,
    StartWorkflow,
    StopTasks,
    WakeWorkflow,
)

RunResult = Literal["done", "gone", "recorded"]


class Executor(Protocol):
    """Carries out actions."""

    def can_run(self, action: AnyAction) -> bool:
        """False when this deployment has no way to carry `action` out (no Lambda client, no function)."""
        ...

    def run(self, cluster: str, action: AnyAction) -> RunResult:
        """Carry out `action` (on `cluster`, for the ECS ones)."""
        ...


def _done(ok: bool) -> RunResult:
    return "done" if ok else "gone"


class AwsExecutor:
    """Each action type to its AWS call: one table (`_calls`), one method per type."""

    def __init__(self, ecs: Callable[[str], EcsPort], autoscaling: AutoScalingPort, workflows: WorkflowStarter | None,
                 functions: Mapping[str, str | None], launch_hooks: Mapping[str, str | None] | None = None) -> None:
        self._ecs = ecs
        self._launch_hooks = dict(launch_hooks or {})
        self._autoscaling = autoscaling
        self._workflows = workflows
        self._functions = functions
        self._calls: dict[type[Any], Callable[[str, Any], RunResult]] = {
            StopTasks: self._stop_tasks, OpenGate: self._open_gate, SetAttribute: self._set_attribute,
            SetDraining: self._set_draining, CompleteLifecycle: self._complete, RecordHeartbeat: self._heartbeat,
            StartWorkflow: self._start, WakeWorkflow: self._wake, ReplaceInstance: self._replace,
            SetInstanceHealth: self._set_health,
        }

    def can_run(self, action: AnyAction) -> bool:
        """Workflows need the Lambda client (and, to start one, its function's alias ARN)."""
        if isinstance(action, StartWorkflow):
            return self._workflows is not None and self._functions.get(action.workflow) is not None
        if isinstance(action, WakeWorkflow):
            return self._workflows is not None
        return True

    def run(self, cluster: str, action: AnyAction) -> RunResult:
        """Make the action's AWS call."""
        return self._calls[type(action)](cluster, action)

    def _stop_tasks(self, cluster: str, action: StopTasks) -> RunResult:
        self._ecs(cluster).stop_tasks(action.task_arns, action.reason)
        return "done"

    def _open_gate(self, cluster: str, action: OpenGate) -> RunResult:
        self._ecs(cluster).put_attribute(action.instance_arn, action.attribute, "open")
        return "done"

    def _set_attribute(self, cluster: str, action: SetAttribute) -> RunResult:
        self._ecs(cluster).put_attribute(action.instance_arn, action.name, action.value)
        return "done"

    def _set_draining(self, cluster: str, action: SetDraining) -> RunResult:
        self._ecs(cluster).set_draining(action.instance_arns)
        return "done"

    def _complete(self, cluster: str, action: CompleteLifecycle) -> RunResult:
        return _done(self._autoscaling.complete(action))

    def _heartbeat(self, cluster: str, action: RecordHeartbeat) -> RunResult:
        return _done(self._autoscaling.heartbeat(action))

    def _replace(self, cluster: str, action: ReplaceInstance) -> RunResult:
        return _done(self._autoscaling.replace(action, self._launch_hooks))

    def _set_health(self, cluster: str, action: SetInstanceHealth) -> RunResult:
        return _done(self._autoscaling.set_health(action))

    def _start(self, cluster: str, action: StartWorkflow) -> RunResult:
        function = self._functions.get(action.workflow)
        if self._workflows is None or function is None:
            raise LookupError(f"no {action.workflow} workflow configured")  # callers ask can_run first
        return _done(self._workflows.start(function, action.execution_name, action.request.as_payload()))

    def _wake(self, cluster: str, action: WakeWorkflow) -> RunResult:
        if self._workflows is None:
            raise LookupError("no Lambda client configured to wake workflows")  # callers ask can_run first
        return _done(self._workflows.wake(action.callback_id, action.reason, action.stopped_task))


class RecordingExecutor:
    """A dry run: records every action, in order, and calls nothing."""

    def __init__(self) -> None:
        self.recorded: list[tuple[str, AnyAction]] = []

    def can_run(self, action: AnyAction) -> bool:
        """Anything can be recorded."""
        return True

    def run(self, cluster: str, action: AnyAction) -> RunResult:
        """Record it."""
        self.recorded.append((cluster, action))
        return "recorded"
