"""The Auto Scaling port: complete lifecycle actions and record heartbeats, tolerating ones already gone."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from daemon_guard.adapters.errors import LifecycleActionGone
from daemon_guard.core.actions import CompleteLifecycle, RecordHeartbeat

if TYPE_CHECKING:
    from mypy_boto3_autoscaling import AutoScalingClient
else:
    AutoScalingClient = Any


class AutoScaling:
    """CompleteLifecycleAction and RecordLifecycleActionHeartbeat, by token or by instance id."""

    def __init__(self, client: AutoScalingClient) -> None:
        self.client = client

    @staticmethod
    def _target(action: CompleteLifecycle | RecordHeartbeat) -> dict[str, str]:
        target = {"AutoScalingGroupName": action.asg, "LifecycleHookName": action.hook}
        if action.token:
            target["LifecycleActionToken"] = action.token
        else:
            target["InstanceId"] = action.instance_id
        return target

    def complete(self, action: CompleteLifecycle) -> bool:
        """Complete the action; False if no such action is waiting (already completed or timed out)."""
        try:
            self.client.complete_lifecycle_action(LifecycleActionResult=action.result, **self._target(action))
        except LifecycleActionGone:
            if not action.token:
                return False
            # The token may be stale (a replayed event): try once more by instance id.
            try:
                self.client.complete_lifecycle_action(
                    AutoScalingGroupName=action.asg, LifecycleHookName=action.hook,
                    InstanceId=action.instance_id, LifecycleActionResult=action.result)
            except LifecycleActionGone:
                return False
        return True

    def heartbeat(self, action: RecordHeartbeat) -> bool:
        """Extend the hook's heartbeat timeout; False if the action is no longer waiting."""
        try:
            self.client.record_lifecycle_action_heartbeat(**self._target(action))
        except LifecycleActionGone:
            return False
        return True
