"""The workflow ports: start durable executions idempotently, wake them through callbacks, and run them
through the durable SDK (`DurableCheckpoints`).

Durable functions are invoked by qualified ARN (an alias) with a DurableExecutionName: the same
name with the same payload returns the existing execution, so a duplicated event starts nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from daemon_guard.adapters.errors import CallbackGone, ExecutionAlreadyStarted

if TYPE_CHECKING:
    from aws_durable_execution_sdk_python import DurableContext
    from mypy_boto3_lambda import LambdaClient
else:
    LambdaClient = Any


class WorkflowStarter:
    """Lambda Invoke / SendDurableExecutionCallbackSuccess."""

    def __init__(self, client: LambdaClient) -> None:
        self.client = client

    def start(self, function_arn: str, execution_name: str, payload: dict[str, Any]) -> bool:
        """Start (asynchronously) the named execution; False if a different one already holds the name."""
        try:
            self.client.invoke(FunctionName=function_arn, InvocationType="Event",
                               DurableExecutionName=execution_name, Payload=json.dumps(payload).encode())
        except ExecutionAlreadyStarted:
            return False
        return True

    def wake(self, callback_id: str, reason: str, stopped_task: str | None = None) -> bool:
        """Complete a waiting callback (with the task that STOPPED, if any); False when it is gone."""
        result: dict[str, str] = {"wake": reason}
        if stopped_task:
            result["stoppedTask"] = stopped_task
        try:
            self.client.send_durable_execution_callback_success(
                CallbackId=callback_id, Result=json.dumps(result).encode())
        except CallbackGone:
            return False
        return True


class DurableCheckpoints:
    """The durable SDK's entry point, bound to the Lambda client it checkpoints through (None: the SDK builds
    its own, as in production)."""

    def __init__(self, client: LambdaClient | None = None) -> None:
        self.client = client

    def handler(self, workflow: Callable[[dict[str, Any], DurableContext], dict[str, Any]]
                ) -> Callable[[Any, Any], Any]:
        """`durable_execution` of `workflow`."""
        # Imported here: only the two workflow functions load the durable SDK, not the intake or the reconciler.
        from aws_durable_execution_sdk_python import durable_execution

        return durable_execution(workflow, boto3_client=self.client)
