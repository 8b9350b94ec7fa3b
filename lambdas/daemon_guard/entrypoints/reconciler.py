"""The reconciler Lambda: the schedule rule's target. One reconcile pass over every managed cluster."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from daemon_guard.bootstrap import Runtime, lazy
from daemon_guard.entrypoints import time_left_of
from daemon_guard.observability import logger
from daemon_guard.services.reconcile import reconcile

Handler = Callable[[dict[str, Any], LambdaContext], dict[str, Any]]


def build_handler(rt: Runtime) -> Handler:
    """The reconciler's Lambda handler, bound to `rt`."""

    @logger.inject_lambda_context(log_event=False)
    def reconciler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        summaries = reconcile(rt, time_left_of(context))
        return {"clusters": [{"cluster": s.cluster, "coverage": s.coverage, "repaired": s.repaired,
                              "repairsDeferred": s.repairs_deferred, "audit": s.audit, "throttled": s.throttled}
                             for s in summaries]}

    return reconciler


handler = lazy(build_handler)
