"""The workflow port: start durable executions idempotently and wake them through callbacks.

Durable functions are invoked by qualified ARN (an alias) with a DurableExecutionName: the same
name with the same payload returns the existing execution, so a duplicated event starts nothing.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from daemon_guard.adapters.errors import CallbackGone, ExecutionAlreadyStarted

if TYPE_CHECKING:
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
