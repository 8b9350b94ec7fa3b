"""The intake Lambda: every EventBridge rule's target. Parses, routes and handles one event (`services.intake`).

Its ECS calls retry while the invocation has time (`adapters.retry`): the context's time left is set on the
runtime's deadline for the invocation; a call still throttled then raises `Throttled` (the check is deferred).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from daemon_guard.bootstrap import Runtime, lazy
from daemon_guard.entrypoints import time_left_of
from daemon_guard.observability import logger
from daemon_guard.services.intake import handle

Handler = Callable[[dict[str, Any], LambdaContext], dict[str, Any]]


def build_handler(rt: Runtime) -> Handler:
    """The intake's Lambda handler, bound to `rt`."""

    @logger.inject_lambda_context(correlation_id_path="id", log_event=False)
    def intake(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        rt.home.learn(getattr(context, "invoked_function_arn", "") or "")
        try:
            with rt.deadline.during(time_left_of(context)):
                return handle(event, rt).as_dict()
        except Exception:
            # An AWS error mid-way: log it and let EventBridge retry (the paths are idempotent).
            logger.exception("event handling failed")
            raise

    return intake


handler = lazy(build_handler)
