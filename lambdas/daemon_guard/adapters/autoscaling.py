"""The Auto Scaling port: complete lifecycle actions and record heartbeats, tolerating ones already gone."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from daemon_guard.core.actions import CompleteLifecycle, RecordHeartbeat

if TYPE_CHECKING:
    from mypy_boto3_autoscaling import AutoScalingClient
else:
    AutoScalingClient = Any


def _gone(exc: ClientError) -> bool:
    error = exc.response.get("Error", {})
    return error.get("Code") == "ValidationError" and "No active Lifecycle Action" in error.get("Message", "")


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
        except ClientError as exc:
            if _gone(exc) and action.token:
                # The token may be stale (a replayed event): try once more by instance id.
                try:
                    self.client.complete_lifecycle_action(
                        AutoScalingGroupName=action.asg, LifecycleHookName=action.hook,
                        InstanceId=action.instance_id, LifecycleActionResult=action.result)
                except ClientError as again:
                    if _gone(again):
                        return False
                    raise
                return True
            if _gone(exc):
                return False
            raise
        return True

    def heartbeat(self, action: RecordHeartbeat) -> bool:
        """Extend the hook's heartbeat timeout; False if the action is no longer waiting."""
        try:
            self.client.record_lifecycle_action_heartbeat(**self._target(action))
        except ClientError as exc:
            if _gone(exc):
                return False
            raise
        return True
