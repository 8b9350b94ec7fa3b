"""Simulated Auto Scaling: launches, lifecycle hooks and their timeouts, termination, refresh, Spot, warm pools."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from sim.autoscaling import InstanceType
from sim.errors import SimApiError
from sim.wire import ValidatingBackend, make_client
from sim.world import World
from tests.sim.conftest import CLUSTER, add_daemon, capture, new_world, running, tasks_of

ASG = "prod-asg"
LAUNCH = "autoscaling:EC2_INSTANCE_LAUNCHING"
TERMINATE = "autoscaling:EC2_INSTANCE_TERMINATING"
LIFECYCLE = {"source": ["aws.autoscaling"]}


def _world(*, launch_hook: dict[str, Any] | None = None, terminate_hook: dict[str, Any] | None = None,
           spot: bool = False, warm_pool: bool = False) -> World:
    """A cluster with one daemon and an empty group, with the hooks asked for."""
    world = new_world()
    world.ecs.create_cluster(CLUSTER)
    add_daemon(world, "fluent-bit")
    world.asg.create_group(ASG, CLUSTER, InstanceType(), spot=spot, warm_pool=warm_pool)
    if launch_hook is not None:
        world.asg.put_hook(ASG, "launch-gate", LAUNCH, **launch_hook)
    if terminate_hook is not None:
        world.asg.put_hook(ASG, "drain", TERMINATE, **terminate_hook)
    return world


def _state(world: World, instance_id: str) -> str | None:
    """The instance's LifecycleState as DescribeAutoScalingInstances reports it (None once gone)."""
    found = world.client("autoscaling").describe_auto_scaling_instances(InstanceIds=[instance_id])
    states = [i["LifecycleState"] for i in found["AutoScalingInstances"]]
    return states[0] if states else None


def _launch_in_service(world: World, count: int = 1) -> list[str]:
    """Launch instances and wait until each is InService with its daemon RUNNING."""
    ids = world.asg.scale_out(ASG, count)
    world.clock.advance(120.0)
    assert {_state(world, i) for i in ids} == {"InService"}
    assert len(running(world, "service:fluent-bit")) == count
    return ids


def _complete(world: World, hook: str, result: str, **target: str) -> None:
    world.client("autoscaling").complete_lifecycle_action(
        AutoScalingGroupName=ASG, LifecycleHookName=hook, LifecycleActionResult=result, **target)


def _heartbeat(world: World, hook: str, **target: str) -> None:
    world.client("autoscaling").record_lifecycle_action_heartbeat(
        AutoScalingGroupName=ASG, LifecycleHookName=hook, **target)


def _client_error(call: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as caught:
        call()
    return caught.value.response["Error"]["Code"], caught.value.response["Error"]["Message"]


# ---- launch -----------------------------------------------------------------------------------------------


def test_a_launched_instance_registers_with_ecs_after_boot_and_agent_delay() -> None:
    # GIVEN a group without hooks
    world = _world()
    params = world.asg.params
    earliest = params.boot_s[0] + params.agent_register_s[0]
    latest = params.boot_s[1] + params.agent_register_s[1]

    # WHEN five instances launch at once
    ids = world.asg.scale_out(ASG, 5)
    world.clock.advance(earliest - 0.1)
    # THEN none has registered before EC2 boot plus the agent's delay
    assert all(world.ecs.instance_of_ec2(i) is None for i in ids)
    world.clock.advance(latest - earliest + 0.2)
    # AND each registered by then, as an ACTIVE container instance of the group's cluster
    registered = [world.ecs.instance_of_ec2(i) for i in ids]
    assert all(inst is not None and inst.status == "ACTIVE" and inst.asg == ASG for inst in registered)
    assert all(earliest <= (inst.registered_at if inst else 0.0) <= latest for inst in registered)


def test_a_launch_hook_holds_the_instance_in_pending_wait_until_continue() -> None:
    # GIVEN a launch hook that waits up to an hour
    world = _world(launch_hook={"heartbeat_timeout_s": 3600})
    events = capture(world, LIFECYCLE)

    # WHEN an instance launches and two minutes pass
    (iid,) = world.asg.scale_out(ASG, 1)
    world.clock.advance(120.0)

    # THEN it waits in Pending:Wait while ECS already runs its daemon
    assert _state(world, iid) == "Pending:Wait"
    assert len(running(world, "service:fluent-bit")) == 1
    (event,) = events
    assert event["detail-type"] == "EC2 Instance-launch Lifecycle Action"

    # WHEN the guard completes the action with CONTINUE
    _complete(world, "launch-gate", "CONTINUE", LifecycleActionToken=event["detail"]["LifecycleActionToken"])
    # THEN it goes InService
    assert _state(world, iid) == "InService"


def test_abandoning_the_launch_action_terminates_the_instance() -> None:
    # GIVEN an instance held by the launch hook
    world = _world(launch_hook={"heartbeat_timeout_s": 3600})
    (iid,) = world.asg.scale_out(ASG, 1)
    world.clock.advance(120.0)
    inst = world.ecs.instance_of_ec2(iid)
    assert inst is not None

    # WHEN the action is abandoned
    _complete(world, "launch-gate", "ABANDON", InstanceId=iid)

    # THEN the instance is gone from the group and its container instance is INACTIVE
    assert _state(world, iid) is None
    assert inst.status == "INACTIVE"
    # AND the group launched another to keep its desired capacity
    world.clock.advance(1.0)
    ((replaced, replacement, _),) = world.asg.replacements
    assert replaced == iid and _state(world, replacement) == "Pending:Wait"


@pytest.mark.parametrize(("default_result", "state_after"), [("CONTINUE", "InService"), ("ABANDON", None)])
def test_a_launch_action_left_alone_takes_the_default_result_at_the_heartbeat_timeout(
        default_result: str, state_after: str | None) -> None:
    # GIVEN a launch hook with a 60 s heartbeat timeout
    world = _world(launch_hook={"heartbeat_timeout_s": 60, "default_result": default_result})
    (iid,) = world.asg.scale_out(ASG, 1)

    # WHEN nobody answers
    world.clock.advance(59.0)
    assert _state(world, iid) == "Pending:Wait"
    world.clock.advance(2.0)

    # THEN the default result applies at 60 s (an ABANDON launches another instance in its place)
    assert _state(world, iid) == state_after
    action = world.asg.history[0]
    assert (action.timed_out, action.result, action.completed_at) == (True, default_result, 60.0)
    assert len(world.asg.replacements) == (1 if default_result == "ABANDON" else 0)


def test_a_heartbeat_restarts_the_heartbeat_timeout() -> None:
    # GIVEN a launch hook with a 60 s heartbeat timeout
    world = _world(launch_hook={"heartbeat_timeout_s": 60, "default_result": "ABANDON"})
    (iid,) = world.asg.scale_out(ASG, 1)

    # WHEN the guard records a heartbeat at 50 s
    world.clock.advance(50.0)
    _heartbeat(world, "launch-gate", InstanceId=iid)

    # THEN the action still waits at 100 s, and times out 60 s after the heartbeat
    world.clock.advance(50.0)
    assert _state(world, iid) == "Pending:Wait"
    world.clock.advance(11.0)
    assert _state(world, iid) is None
    assert world.asg.history[0].completed_at == pytest.approx(110.0)


def test_heartbeats_cannot_outlive_the_global_timeout() -> None:
    # GIVEN a hook with a 30 s heartbeat timeout: its global timeout is 100 x 30 s = 3000 s
    world = _world(launch_hook={"heartbeat_timeout_s": 30, "default_result": "CONTINUE"})
    (iid,) = world.asg.scale_out(ASG, 1)
    world.clock.advance(0.0)  # the launch itself
    assert world.asg.actions

    # WHEN the guard heartbeats every 20 s for as long as Auto Scaling lets it
    beats = 0
    while world.asg.actions:
        world.clock.advance(20.0)
        if world.asg.actions:
            _heartbeat(world, "launch-gate", InstanceId=iid)
            beats += 1

    # THEN the action ends at the global timeout with the default result, whatever the heartbeats
    (action,) = world.asg.history
    assert action.completed_at == pytest.approx(3000.0)
    assert (action.timed_out, action.result) == (True, "CONTINUE")
    assert beats == 149
    # AND a late heartbeat is refused
    code, message = _client_error(lambda: _heartbeat(world, "launch-gate", InstanceId=iid))
    assert code == "ValidationError"
    assert "No active Lifecycle Action" in message


@pytest.mark.parametrize(("heartbeat_s", "global_s"), [(30, 3000), (600, 60_000), (3600, 172_800), (7200, 172_800)])
def test_the_global_timeout_is_100_heartbeats_capped_at_48_hours(heartbeat_s: int, global_s: int) -> None:
    # GIVEN a hook with a heartbeat timeout / WHEN described / THEN its global timeout
    world = _world(terminate_hook={"heartbeat_timeout_s": heartbeat_s})
    (hook,) = world.client("autoscaling").describe_lifecycle_hooks(AutoScalingGroupName=ASG)["LifecycleHooks"]
    assert (hook["HeartbeatTimeout"], hook["GlobalTimeout"]) == (heartbeat_s, global_s)


@pytest.mark.parametrize("heartbeat_s", [29, 7201])
def test_a_hook_heartbeat_timeout_outside_30_to_7200_seconds_is_refused(heartbeat_s: int) -> None:
    world = _world()
    with pytest.raises(SimApiError) as caught:
        world.asg.put_hook(ASG, "drain", TERMINATE, heartbeat_timeout_s=heartbeat_s)
    assert caught.value.code == "ValidationError"


@pytest.mark.parametrize("by", ["token", "instance id"])
def test_complete_lifecycle_action_finds_the_action_by_token_or_by_instance_id(by: str) -> None:
    # GIVEN an instance waiting in its launch hook
    world = _world(launch_hook={"heartbeat_timeout_s": 3600})
    events = capture(world, LIFECYCLE)
    (iid,) = world.asg.scale_out(ASG, 1)
    world.clock.advance(5.0)
    token = events[0]["detail"]["LifecycleActionToken"]

    # WHEN completed by one or the other
    _complete(world, "launch-gate", "CONTINUE",
              **({"LifecycleActionToken": token} if by == "token" else {"InstanceId": iid}))

    # THEN the action is done and the instance InService
    assert world.asg.actions == {}
    assert _state(world, iid) == "InService"


def test_completing_with_an_unknown_token_is_a_validation_error() -> None:
    # GIVEN an instance waiting in its launch hook
    world = _world(launch_hook={"heartbeat_timeout_s": 3600})
    (iid,) = world.asg.scale_out(ASG, 1)
    world.clock.advance(5.0)
    wrong = "11111111-2222-4333-8444-555555555555"

    # WHEN completed with a token Auto Scaling never issued
    code, message = _client_error(lambda: _complete(world, "launch-gate", "CONTINUE", LifecycleActionToken=wrong))

    # THEN Auto Scaling's error, and the instance still waits
    assert code == "ValidationError"
    assert message == f"No active Lifecycle Action found with token {wrong}"
    assert _state(world, iid) == "Pending:Wait"


# ---- termination ------------------------------------------------------------------------------------------


def test_terminating_without_a_hook_kills_running_tasks_and_counts_them() -> None:
    # GIVEN an InService instance running its daemon, and no terminate hook
    world = _world()
    _launch_in_service(world)
    (daemon,) = running(world, "service:fluent-bit")

    # WHEN the group scales in
    world.asg.scale_in(ASG, 1)
    world.clock.advance(10.0)

    # THEN the daemon died with the instance, counted as an ungraceful kill
    assert (daemon.last_status, daemon.killed, daemon.stop_code) == ("STOPPED", True, "TerminationNotice")
    assert world.ecs.ungraceful_kills == [daemon]


def test_with_a_terminate_hook_tasks_live_until_the_action_completes() -> None:
    # GIVEN an InService instance running its daemon, and a terminate hook
    world = _world(terminate_hook={"heartbeat_timeout_s": 3600})
    (iid,) = _launch_in_service(world)
    (daemon,) = running(world, "service:fluent-bit")

    # WHEN the group scales in and ten minutes pass
    world.asg.scale_in(ASG, 1)
    world.clock.advance(600.0)
    # THEN the instance waits in Terminating:Wait and the daemon still runs
    assert _state(world, iid) == "Terminating:Wait"
    assert daemon.last_status == "RUNNING"
    assert world.ecs.ungraceful_kills == []

    # WHEN the action completes without anyone stopping the daemon
    _complete(world, "drain", "CONTINUE", InstanceId=iid)
    # THEN EC2 terminates it with the daemon still on it: one ungraceful kill
    assert world.ecs.ungraceful_kills == [daemon]


def test_a_drain_that_stops_every_task_before_completing_kills_nothing() -> None:
    # GIVEN an instance in Terminating:Wait
    world = _world(terminate_hook={"heartbeat_timeout_s": 3600})
    (iid,) = _launch_in_service(world)
    world.asg.scale_in(ASG, 1)
    world.clock.advance(5.0)
    inst = world.ecs.instance_of_ec2(iid)
    assert inst is not None

    # WHEN the guard drains it, stops its daemon, waits for STOPPED, then completes the action
    ecs = world.client("ecs")
    ecs.update_container_instances_state(cluster=CLUSTER, containerInstances=[inst.arn], status="DRAINING")
    for task in running(world, "service:fluent-bit", inst):
        ecs.stop_task(cluster=CLUSTER, task=task.arn)
    world.clock.advance(30.0)
    _complete(world, "drain", "CONTINUE", InstanceId=iid)

    # THEN the instance is gone and no task was killed
    assert _state(world, iid) is None
    assert world.ecs.ungraceful_kills == []


def test_a_spot_interruption_warns_then_terminates_at_120_seconds_whatever_the_hook() -> None:
    # GIVEN a Spot instance running its daemon, with a terminate hook that would wait an hour
    world = _world(terminate_hook={"heartbeat_timeout_s": 3600}, spot=True)
    (iid,) = _launch_in_service(world)
    (daemon,) = running(world, "service:fluent-bit")
    warnings = capture(world, {"source": ["aws.ec2"], "detail-type": ["EC2 Spot Instance Interruption Warning"]},
                       name="spot")
    terminations = capture(world, {"detail-type": ["EC2 Instance-terminate Lifecycle Action"]}, name="hooks")

    # WHEN EC2 interrupts it
    start = world.clock.now
    world.asg.spot_interruption(iid)
    world.clock.advance(119.0)

    # THEN the warning came first, then the terminate hook, and the instance still runs at 119 s
    assert [e["detail"]["instance-id"] for e in warnings] == [iid]
    assert [e["detail"]["EC2InstanceId"] for e in terminations] == [iid]
    assert _state(world, iid) == "Terminating:Wait"
    assert daemon.last_status == "RUNNING"

    # WHEN the two minutes are up
    world.clock.advance(1.5)
    # THEN EC2 has taken the instance, killing what still ran on it
    assert _state(world, iid) is None
    assert daemon.stopped_at == pytest.approx(start + 120.0)
    assert world.ecs.ungraceful_kills == [daemon]


def test_instance_refresh_replaces_every_instance_in_batches_keeping_min_healthy() -> None:
    # GIVEN ten InService instances
    world = _world()
    old = set(_launch_in_service(world, 10))

    # WHEN an instance refresh runs with MinHealthyPercentage 50 (batches of 5)
    world.asg.instance_refresh(ASG, min_healthy_percentage=50)
    lowest = 10
    for _ in range(600):
        world.clock.advance(1.0)
        serving = [i for i in world.ecs.instances.values() if i.status == "ACTIVE"]
        lowest = min(lowest, len(serving))

    # THEN every old instance was replaced by a new one
    group = world.asg.groups[ASG].instances
    assert {i for i, inst in group.items() if inst.state == "InService"}.isdisjoint(old)
    assert sum(inst.state == "InService" for inst in group.values()) == 10
    assert all(group[i].state == "Terminated" for i in old)
    # AND at no moment were fewer than half of them serving (registered with ECS)
    assert lowest >= 5
    # AND each new instance runs the daemon
    assert len(running(world, "service:fluent-bit")) == 10


def test_returning_an_instance_to_the_warm_pool_fires_the_terminate_hook_towards_the_warm_pool() -> None:
    # GIVEN a group with a warm pool and both hooks
    world = _world(launch_hook={"heartbeat_timeout_s": 300, "default_result": "CONTINUE"},
                   terminate_hook={"heartbeat_timeout_s": 300}, warm_pool=True)
    events = capture(world, LIFECYCLE)
    (iid,) = world.asg.scale_out(ASG, 1)
    world.clock.advance(120.0)
    _complete(world, "launch-gate", "CONTINUE", InstanceId=iid)

    # WHEN the group scales in
    world.asg.scale_in(ASG, 1)
    world.clock.advance(1.0)

    # THEN the terminate hook says the instance goes to the warm pool
    terminate = events[-1]["detail"]
    assert (terminate["LifecycleTransition"], terminate["Origin"], terminate["Destination"]) == (
        TERMINATE, "AutoScalingGroup", "WarmPool")

    # WHEN the action completes
    _complete(world, "drain", "CONTINUE", InstanceId=iid)
    # THEN the instance is stopped in the warm pool, deregistered from ECS
    assert _state(world, iid) == "Warmed:Stopped"
    assert tasks_of(world, "service:fluent-bit") == []

    # WHEN it comes back out of the warm pool
    world.asg.return_from_warm_pool(ASG, 1)
    world.clock.advance(60.0)
    # THEN the launch hook fires again, from the warm pool, and it registers with ECS anew
    launch = events[-1]["detail"]
    assert (launch["LifecycleTransition"], launch["Origin"], launch["Destination"]) == (
        LAUNCH, "WarmPool", "AutoScalingGroup")
    inst = world.ecs.instance_of_ec2(iid)
    assert inst is not None and inst.status == "ACTIVE"


# ---- every response has botocore's output shape -----------------------------------------------------------


def test_every_auto_scaling_response_matches_botocores_output_shapes() -> None:
    # GIVEN a group with both hooks, served through a backend that checks every response's shape
    world = _world(launch_hook={"heartbeat_timeout_s": 300}, terminate_hook={"heartbeat_timeout_s": 300})
    asg = make_client("autoscaling", ValidatingBackend(world.asg), world.region)
    ids = world.asg.scale_out(ASG, 3)
    world.clock.advance(120.0)

    # WHEN every operation the guard uses is exercised in each lifecycle state
    asg.describe_lifecycle_hooks(AutoScalingGroupName=ASG)
    asg.describe_auto_scaling_instances(InstanceIds=ids)
    asg.record_lifecycle_action_heartbeat(AutoScalingGroupName=ASG, LifecycleHookName="launch-gate",
                                          InstanceId=ids[0])
    for iid in ids:
        asg.complete_lifecycle_action(AutoScalingGroupName=ASG, LifecycleHookName="launch-gate",
                                      LifecycleActionResult="CONTINUE", InstanceId=iid)
    world.asg.scale_in(ASG, 1)
    world.clock.advance(1.0)
    states = {i["LifecycleState"] for i in asg.describe_auto_scaling_instances()["AutoScalingInstances"]}

    # THEN every response parsed as the model says (ValidatingBackend raises otherwise)
    assert states == {"InService", "Terminating:Wait"}
