"""The launch-gate Lambda: a durable function (`workflows.launch_gate`) run through the durable SDK's entry point."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_durable_execution_sdk_python import DurableContext

from daemon_guard.bootstrap import Runtime, lazy
from daemon_guard.workflows.launch_gate import launch_gate_workflow


def build_handler(rt: Runtime) -> Callable[[Any, Any], Any]:
    """`durable_execution` of the launch gate workflow bound to `rt`."""

    def launch_gate(event: dict[str, Any], ctx: DurableContext) -> dict[str, Any]:
        return launch_gate_workflow(rt, event, ctx)

    return rt.durable.handler(launch_gate)


handler = lazy(build_handler)
