"""What users compare daemon-guard's drain with, modelled in the simulator.

- ``ecs-native``: no lifecycle hook; Auto Scaling terminates at once and the tasks die with the
  instance.
- ``ecs-managed-draining``: ECS's own capacity-provider draining: on the terminate hook it sets the
  instance DRAINING, waits (inside ECS, no API calls of the user's) until no task is left (ECS's
  DRAINING model stops the daemons, when the behaviour profile says), then completes the hook. One
  fixed order, no deadline of its own (the hook's 48 h limit), no heartbeats needed.
- ``polling-drain``: the older Lambda drainers (ecs-cid-sample, the CDK InstanceDrainHook): on the
  terminate hook, UpdateContainerInstancesState DRAINING, then every 10 s DescribeContainerInstances
  until runningTasksCount is 0, then CompleteLifecycleAction CONTINUE. No ordering, no heartbeats
  (a drain longer than the heartbeat timeout times out), calls through boto3 so they are counted.
"""

from __future__ import annotations

from typing import Any

from botocore.config import Config
from daemon_guard.core.config import TERMINATE_HOOK_NAME

from sim.autoscaling import Group, PendingAction
from sim.world import World

POLL_S = 10.0
MANAGED_POLL_S = 5.0


class ManagedDraining:
    """ECS managed instance draining, as a controller inside ECS."""

    def __init__(self, world: World, heartbeat_s: int = 3600) -> None:
        self.world = world
        for group in world.asg.groups.values():
            world.asg.put_hook(group.name, "ecs-managed-draining-termination-hook",
                               "autoscaling:EC2_INSTANCE_TERMINATING", 7200, "CONTINUE")
        world.asg.listeners.append(self._on_asg)

    def _on_asg(self, kind: str, payload: dict[str, Any]) -> None:
        if kind != "lifecycle":
            return
        action: PendingAction = payload["action"]
        if action.hook.transition.endswith("TERMINATING"):
            self.world.clock.after(1.0, lambda: self._tick(payload["group"], action))

    def _tick(self, group: Group, action: PendingAction) -> None:
        if action.result is not None:
            return
        ecs = self.world.ecs
        inst = ecs.instance_of_ec2(action.instance_id)
        if inst is None:
            self.world.asg.call("autoscaling", "CompleteLifecycleAction", {
                "AutoScalingGroupName": group.name, "LifecycleHookName": action.hook.name,
                "LifecycleActionToken": action.token, "LifecycleActionResult": "CONTINUE"})
            return
        if inst.status == "ACTIVE":
            ecs.set_status(inst, "DRAINING")
        if not ecs.live_tasks(inst):
            self.world.asg.call("autoscaling", "CompleteLifecycleAction", {
                "AutoScalingGroupName": group.name, "LifecycleHookName": action.hook.name,
                "LifecycleActionToken": action.token, "LifecycleActionResult": "CONTINUE"})
            return
        self.world.clock.after(MANAGED_POLL_S, lambda: self._tick(group, action))


class PollingDrain:
    """The classic Lambda drainer, polling through the ECS and Auto Scaling APIs."""

    def __init__(self, world: World, cluster: str, heartbeat_s: int = 300) -> None:
        self.world = world
        self.cluster = cluster
        # The SDK's standard retries, 8 attempts per call (the baseline's own choice, not daemon-guard's).
        retries = Config(retries={"mode": "standard", "total_max_attempts": 8})
        self.ecs = world.client("ecs", retries)
        self.asg = world.client("autoscaling", retries)
        for group in world.asg.groups.values():
            world.asg.put_hook(group.name, TERMINATE_HOOK_NAME, "autoscaling:EC2_INSTANCE_TERMINATING",
                               heartbeat_s, "CONTINUE")
        world.bus.add_rule("polling-drain", {"source": ["aws.autoscaling"],
                                             "detail-type": ["EC2 Instance-terminate Lifecycle Action"]},
                           self._on_event)

    def _on_event(self, event: dict[str, Any]) -> None:
        detail = event["detail"]
        self._poll(detail, first=True)

    def _poll(self, detail: dict[str, Any], first: bool = False) -> None:
        self.world.begin_invocation()
        try:
            arns = self.ecs.list_container_instances(
                cluster=self.cluster, filter=f"ec2InstanceId == {detail['EC2InstanceId']}").get(
                "containerInstanceArns", [])
            if not arns:
                arns = self.ecs.list_container_instances(
                    cluster=self.cluster, status="DRAINING",
                    filter=f"ec2InstanceId == {detail['EC2InstanceId']}").get("containerInstanceArns", [])
            if arns and first:
                self.ecs.update_container_instances_state(cluster=self.cluster, containerInstances=arns,
                                                          status="DRAINING")
            running = 0
            if arns:
                described = self.ecs.describe_container_instances(cluster=self.cluster, containerInstances=arns)
                running = sum(ci["runningTasksCount"] + ci["pendingTasksCount"]
                              for ci in described["containerInstances"] if ci["status"] != "INACTIVE")
            if running == 0:
                self.asg.complete_lifecycle_action(
                    AutoScalingGroupName=detail["AutoScalingGroupName"],
                    LifecycleHookName=detail["LifecycleHookName"],
                    LifecycleActionToken=detail["LifecycleActionToken"], LifecycleActionResult="CONTINUE")
                return
        except Exception:
            pass
        self.world.clock.after(POLL_S, lambda: self._poll(detail))
