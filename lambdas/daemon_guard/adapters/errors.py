"""The project's own errors, and the one place that translates botocore's into them.

Every AWS client the code uses is wrapped by `translating()` (the composition root does it), so a
botocore `ClientError` or `BotoCoreError` reaches the services and workflows only as an `AwsError`
subclass that says what it means: AWS asked us to slow down (`Throttled`), a conditional write lost
(`ConditionFailed`), a lifecycle action is no longer waiting (`LifecycleActionGone`), and so on.
The original exception stays attached (``original``, and ``__cause__``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

THROTTLING_CODES = frozenset({"ThrottlingException", "Throttling", "TooManyRequestsException",
                              "RequestLimitExceeded"})
ATTRIBUTE_LIMIT_EXCEEDED = "AttributeLimitExceededException"  # ECS: 10 custom attributes per resource
CALLBACK_GONE_CODES = frozenset({"ResourceNotFoundException", "InvalidParameterValueException",
                                 "CallbackTimeoutException"})


class DaemonGuardError(Exception):
    """The root of daemon-guard's own errors."""


class AwsError(DaemonGuardError):
    """An AWS call failed (after botocore's own retries); `code` is AWS's error code ('' for a transport error)."""

    def __init__(self, original: ClientError | BotoCoreError, code: str = "", operation: str = "") -> None:
        super().__init__(str(original))
        self.original = original
        self.code = code
        self.operation = operation


class Throttled(AwsError):
    """AWS asked us to slow down, and botocore's retries did not get through."""


class AttributeLimitExceeded(AwsError):
    """ECS PutAttributes: the container instance already has its 10 custom attributes."""


class ConditionFailed(AwsError):
    """DynamoDB: the write's condition did not hold (someone else got there first)."""


class LifecycleActionGone(AwsError):
    """Auto Scaling: no such lifecycle action is waiting (completed already, or timed out)."""


class ExecutionAlreadyStarted(AwsError):
    """Lambda: a different durable execution already holds this execution name."""


class CallbackGone(AwsError):
    """Lambda: the durable execution's callback no longer waits (completed, timed out, or its execution ended)."""


def error_code(exc: ClientError) -> str:
    """The AWS error code of a ClientError ('' if none)."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def _kind(code: str, message: str, operation: str) -> type[AwsError]:
    if code in THROTTLING_CODES:
        return Throttled
    if code == ATTRIBUTE_LIMIT_EXCEEDED:
        return AttributeLimitExceeded
    if code == "ConditionalCheckFailedException":
        return ConditionFailed
    if code == "ValidationError" and "No active Lifecycle Action" in message:
        return LifecycleActionGone
    if code == "DurableExecutionAlreadyStartedException":
        return ExecutionAlreadyStarted
    if operation == "SendDurableExecutionCallbackSuccess" and code in CALLBACK_GONE_CODES:
        return CallbackGone
    return AwsError


def translate(exc: ClientError | BotoCoreError) -> AwsError:
    """The project's error for a botocore one."""
    if not isinstance(exc, ClientError):
        return AwsError(exc)
    code = error_code(exc)
    message = str(exc.response.get("Error", {}).get("Message", ""))
    operation = str(getattr(exc, "operation_name", "") or "")
    return _kind(code, message, operation)(exc, code, operation)


class _TranslatingPaginator:
    def __init__(self, paginator: Any) -> None:
        self._paginator = paginator

    def paginate(self, **kwargs: Any) -> Iterator[Any]:
        try:
            yield from self._paginator.paginate(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc) from exc


class _TranslatingClient:
    """A client whose every call (and every page) raises the project's errors instead of botocore's."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name == "get_paginator":
            return lambda operation: _TranslatingPaginator(attribute(operation))
        if name.startswith("_") or not callable(attribute):
            return attribute
        return _translated(attribute)


def _translated(call: Callable[..., Any]) -> Callable[..., Any]:
    def translated_call(*args: Any, **kwargs: Any) -> Any:
        try:
            return call(*args, **kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc) from exc
    return translated_call


def translating(client: Any) -> Any:
    """`client`, raising `AwsError`s; None stays None (no such client configured)."""
    return None if client is None or isinstance(client, _TranslatingClient) else _TranslatingClient(client)

