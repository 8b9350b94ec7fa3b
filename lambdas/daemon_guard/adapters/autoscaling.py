"""The Auto Scaling port (`AutoScalingPort`, served over boto3 by `AutoScaling`): complete lifecycle actions
and record heartbeats (tolerating ones already gone), set an instance's health, have a group replace one of its
instances, and read where the groups' instances stand in their lifecycle."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from daemon_guard.adapters.errors import LifecycleActionGone
from daemon_guard.core.actions import CompleteLifecycle, RecordHeartbeat, ReplaceInstance, SetInstanceHealth

if TYPE_CHECKING:
    from mypy_boto3_autoscaling import AutoScalingClient
else:
    AutoScalingClient = Any


@dataclass(frozen=True)
class GroupInstance:
    """One instance of an Auto Scaling group (or of its warm pool) and its lifecycle state (``Pending:Wait``...)."""

    group: str
    instance_id: str
    lifecycle_state: str


class AutoScalingPort(Protocol):
    """What the executor, the reconciler and the replacement ask of Auto Scaling. Each write returns False when
    there is nothing left to act on."""

    def complete(self, action: CompleteLifecycle) -> bool:
        """Complete a lifecycle action."""
        ...

    def heartbeat(self, action: RecordHeartbeat) -> bool:
        """Extend a lifecycle action's heartbeat timeout."""
        ...

    def replace(self, action: ReplaceInstance, launch_hooks: Mapping[str, str | None]) -> bool:
        """Have the instance's group replace it."""
        ...

    def set_health(self, action: SetInstanceHealth) -> bool:
        """Set an instance's health."""
        ...

    def group_instances(self, groups: Sequence[str]) -> list[GroupInstance]:
        """The instances in service or in transition of `groups`."""
        ...

    def warm_pool(self, group: str) -> list[GroupInstance]:
        """The instances of `group`'s warm pool."""
        ...

    def instance(self, instance_id: str) -> GroupInstance | None:
        """The group and lifecycle state of an instance, or None when it is in no group."""
        ...


class AutoScaling:
    """CompleteLifecycleAction and RecordLifecycleActionHeartbeat (by token or by instance id),
    SetInstanceHealth, and the reads of group members and warm pools."""

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
        found = self.instance(action.ec2_instance_id)
        if found is None or found.group not in launch_hooks:
            return False
        hook = launch_hooks[found.group]
        if found.lifecycle_state == "Pending:Wait" and hook:
            return self.complete(CompleteLifecycle(found.group, hook, action.ec2_instance_id, None, "ABANDON"))
        if found.lifecycle_state != "InService":
            return False
        return self.set_health(SetInstanceHealth(action.ec2_instance_id, "Unhealthy"))

    def set_health(self, action: SetInstanceHealth) -> bool:
        """SetInstanceHealth, not respecting the health check grace period (the instance is drained already)."""
        self.client.set_instance_health(InstanceId=action.instance_id, HealthStatus=action.health,
                                        ShouldRespectGracePeriod=False)
        return True

    def group_instances(self, groups: Sequence[str]) -> list[GroupInstance]:
        """The instances in service or in transition of `groups` (DescribeAutoScalingGroups; warm pools excluded)."""
        resp = self.client.describe_auto_scaling_groups(AutoScalingGroupNames=list(groups))
        return [GroupInstance(g["AutoScalingGroupName"], i["InstanceId"], i.get("LifecycleState", ""))
                for g in resp.get("AutoScalingGroups", []) for i in g.get("Instances", [])]

    def warm_pool(self, group: str) -> list[GroupInstance]:
        """The instances of `group`'s warm pool (DescribeWarmPool, paginated)."""
        return [GroupInstance(group, i["InstanceId"], i.get("LifecycleState", ""))
                for page in self.client.get_paginator("describe_warm_pool").paginate(AutoScalingGroupName=group)
                for i in page.get("Instances", [])]

    def instance(self, instance_id: str) -> GroupInstance | None:
        """The group and lifecycle state of an instance, or None when it is in no group
        (DescribeAutoScalingInstances)."""
        found = self.client.describe_auto_scaling_instances(InstanceIds=[instance_id])
        entry = next(iter(found.get("AutoScalingInstances", [])), None)
        if entry is None:
            return None
        return GroupInstance(entry["AutoScalingGroupName"], entry["InstanceId"], entry.get("LifecycleState", ""))
