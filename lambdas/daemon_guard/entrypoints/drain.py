"""The drain Lambda: a durable function (`workflows.drain`) run through the durable SDK's own entry point."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_durable_execution_sdk_python import DurableContext

from daemon_guard.bootstrap import Runtime, lazy
from daemon_guard.workflows.drain import drain_workflow


def build_handler(rt: Runtime) -> Callable[[Any, Any], Any]:
    """`durable_execution` of the drain workflow bound to `rt`."""

    def drain(event: dict[str, Any], ctx: DurableContext) -> dict[str, Any]:
        return drain_workflow(rt, event, ctx)

    return rt.durable.handler(drain)


handler = lazy(build_handler)
