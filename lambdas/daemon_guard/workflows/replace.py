"""After a drain for an AWS Health scheduled change: have the instance's group replace it.

With ``scheduledChange: replace`` the drain's payload carries ``"replace": "unhealthy"``. Once the
instance is drained, SetInstanceHealth Unhealthy (not respecting the grace period) makes its Auto
Scaling group terminate it (through the terminate hook, whose drain then finds it empty) and
launch a replacement. An instance outside a managed group, or one already leaving, is left as is.
A failure here is logged, never raised: the drain itself is done.
"""

from __future__ import annotations

from typing import Any

from daemon_guard.adapters.errors import AwsError
from daemon_guard.bootstrap import Runtime
from daemon_guard.core.actions import SetInstanceHealth
from daemon_guard.core.drain.request import REPLACE_UNHEALTHY
from daemon_guard.observability import logger


def replace_after_drain(rt: Runtime, payload: dict[str, Any]) -> str:
    """Mark the drained instance Unhealthy when the payload asks for it; returns what was done."""
    if payload.get("replace") != REPLACE_UNHEALTHY:
        return "not-asked"
    instance_id = str(payload.get("instanceId"))
    try:
        entry = rt.autoscaling.instance(instance_id)
        if entry is None or rt.config.group(entry.group) is None:
            logger.info("drained instance is in no managed group; not replaced", extra={"instance": instance_id})
            return "no-managed-group"
        if not entry.lifecycle_state.startswith("InService"):
            return f"left-as-{entry.lifecycle_state}"
        ran = rt.executor.run(str(payload.get("cluster", "")), SetInstanceHealth(instance_id, "Unhealthy"))
    except AwsError as exc:
        logger.warning("could not mark the drained instance Unhealthy", extra={"instance": instance_id,
                                                                               "error": str(exc)})
        return "failed"
    if ran == "recorded":
        return "recorded"
    logger.info("drained instance marked Unhealthy for its group to replace",
                extra={"instance": instance_id, "group": entry.group})
    return "marked-unhealthy"
