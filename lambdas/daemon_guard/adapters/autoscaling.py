"""The Auto Scaling port: complete lifecycle actions and record heartbeats, tolerating ones already gone, and
have a group replace one of its instances."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from daemon_guard.adapters.errors import LifecycleActionGone
from daemon_guard.core.actions import CompleteLifecycle, RecordHeartbeat, ReplaceInstance

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

    def replace(self, action: ReplaceInstance, launch_hooks: Mapping[str, str | None]) -> bool:
        """Have the instance's group replace it; False when it is in no group of `launch_hooks` (the managed
        groups, each with its launch hook's name or None) or already leaving.

        DescribeAutoScalingInstances says where it stands: held in Pending:Wait by the group's launch hook,
        CompleteLifecycleAction ABANDON (the group terminates it and launches another); InService,
        SetInstanceHealth Unhealthy without the grace period (the group terminates it, through the terminate
        hook, and launches another).
        """
        found = self.client.describe_auto_scaling_instances(InstanceIds=[action.ec2_instance_id])
        entry = next(iter(found.get("AutoScalingInstances", [])), None)
        if entry is None or entry["AutoScalingGroupName"] not in launch_hooks:
            return False
        group, state = entry["AutoScalingGroupName"], entry.get("LifecycleState", "")
        hook = launch_hooks[group]
        if state == "Pending:Wait" and hook:
            return self.complete(CompleteLifecycle(group, hook, action.ec2_instance_id, None, "ABANDON"))
        if state != "InService":
            return False
        self.client.set_instance_health(InstanceId=action.ec2_instance_id, HealthStatus="Unhealthy",
                                        ShouldRespectGracePeriod=False)
        return True
