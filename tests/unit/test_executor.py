"""The one executor: every action type reaches its one AWS call; a dry run records and calls nothing."""

from __future__ import annotations

import typing
from typing import Any

import pytest
from daemon_guard import bootstrap
from daemon_guard.adapters.executor import AwsExecutor, RecordingExecutor
from daemon_guard.core.actions import (
    AnyAction,
    CompleteLifecycle,
    OpenGate,
    RecordHeartbeat,
    ReplaceInstance,
    SetAttribute,
    SetDraining,
    SetInstanceHealth,
    StartWorkflow,
    StopTasks,
    WakeWorkflow,
)
from daemon_guard.core.config import parse_config
from daemon_guard.core.drain import DrainRequest
from daemon_guard.core.identifiers import InstanceId

CONFIG = parse_config({"clusters": [{"name": "prod", "autoScalingGroups": ["prod-asg"]}]})
DRAIN_ARN = "arn:aws:lambda:us-east-1:111122223333:function:dg-drain:live"
CI = "arn:aws:ecs:us-east-1:111122223333:container-instance/prod/ci-1"


class Recorder:
    """Any AWS client: records each call by operation name and answers with an empty response."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        def call(**kwargs: Any) -> dict[str, Any]:
            self.calls.append((name, kwargs))
            return {}
        return call


ONE_OF_EACH: list[tuple[AnyAction, str]] = [
    (StopTasks(("task-1",), "room for a daemon"), "stop_task"),
    (OpenGate(CI, "daemon-guard.gate"), "put_attributes"),
    (SetAttribute(CI, "daemon-guard.tier", "2"), "put_attributes"),
    (SetDraining((CI,)), "update_container_instances_state"),
    (CompleteLifecycle("prod-asg", "hook", "i-0123456789abcdef0", "tok", "CONTINUE"), "complete_lifecycle_action"),
    (RecordHeartbeat("prod-asg", "hook", "i-0123456789abcdef0", "tok"), "record_lifecycle_action_heartbeat"),
    (StartWorkflow("drain-i-1", DrainRequest(InstanceId("i-0123456789abcdef0"), "prod", "operator")), "invoke"),
    (WakeWorkflow("callback-1", "a task stopped"), "send_durable_execution_callback_success"),
    (SetInstanceHealth("i-0123456789abcdef0", "Unhealthy"), "set_instance_health"),
]


REPLACE = ReplaceInstance("i-0123456789abcdef0", ("cwagent",), "critical daemon missing")


def test_every_action_type_has_a_call() -> None:
    # GIVEN the action types the planners return / THEN the table above (or the replacement's below) names each one
    assert {type(a) for a, _ in ONE_OF_EACH} | {ReplaceInstance} == set(typing.get_args(AnyAction))


class GroupMember(Recorder):
    """An Auto Scaling client that finds the instance in `group`, in `state`."""

    def __init__(self, group: str, state: str) -> None:
        super().__init__()
        self.entry = {"InstanceId": REPLACE.ec2_instance_id, "AutoScalingGroupName": group, "LifecycleState": state}

    def describe_auto_scaling_instances(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("describe_auto_scaling_instances", kwargs))
        return {"AutoScalingInstances": [self.entry]}


@pytest.mark.parametrize(("launch_hook", "group", "state", "result", "write"), [
    pytest.param(False, "prod-asg", "InService", "done",
                 ("set_instance_health", {"InstanceId": REPLACE.ec2_instance_id, "HealthStatus": "Unhealthy",
                                          "ShouldRespectGracePeriod": False}), id="InService: SetInstanceHealth"),
    pytest.param(True, "prod-asg", "Pending:Wait", "done",
                 ("complete_lifecycle_action", {"AutoScalingGroupName": "prod-asg",
                                                "LifecycleHookName": "daemon-guard-launch",
                                                "InstanceId": REPLACE.ec2_instance_id,
                                                "LifecycleActionResult": "ABANDON"}),
                 id="held by the launch hook: ABANDON"),
    pytest.param(True, "prod-asg", "InService", "done",
                 ("set_instance_health", {"InstanceId": REPLACE.ec2_instance_id, "HealthStatus": "Unhealthy",
                                          "ShouldRespectGracePeriod": False}),
                 id="launch hook already completed: SetInstanceHealth"),
    pytest.param(False, "other-asg", "InService", "gone", None, id="not a managed group: nothing"),
    pytest.param(False, "prod-asg", "Terminating:Wait", "gone", None, id="already leaving: nothing"),
])
def test_a_replacement_is_the_call_the_instances_lifecycle_state_allows(
        launch_hook: bool, group: str, state: str, result: str, write: tuple[str, dict[str, Any]] | None) -> None:
    # GIVEN a managed group (with or without the launch hook) and where the instance stands in its group
    config = parse_config({"clusters": [{"name": "prod", "autoScalingGroups": [
        {"name": "prod-asg", "launchHook": launch_hook}]}]})
    autoscaling = GroupMember(group, state)
    rt = bootstrap.build(config, ecs_client=Recorder(), autoscaling_client=autoscaling)
    # WHEN the executor replaces it
    assert rt.executor.run("prod", REPLACE) == result
    # THEN it looked the instance up, then made the one write its state allows (or none)
    assert autoscaling.calls == [("describe_auto_scaling_instances", {"InstanceIds": [REPLACE.ec2_instance_id]}),
                                 *([write] if write else [])]


@pytest.mark.parametrize(("action", "operation"), ONE_OF_EACH, ids=lambda v: type(v).__name__ if not
                         isinstance(v, str) else v)
def test_each_action_makes_its_one_aws_call(action: AnyAction, operation: str) -> None:
    # GIVEN a runtime whose clients record calls
    ecs, autoscaling, lambda_ = Recorder(), Recorder(), Recorder()
    rt = bootstrap.build(CONFIG, ecs_client=ecs, autoscaling_client=autoscaling, lambda_client=lambda_,
                         drain_function=DRAIN_ARN)
    assert isinstance(rt.executor, AwsExecutor)
    # WHEN the executor runs the action
    assert rt.executor.run("prod", action) == "done"
    # THEN exactly its one AWS call was made
    assert [name for name, _ in ecs.calls + autoscaling.calls + lambda_.calls] == [operation]


def test_a_dry_run_records_every_action_and_calls_nothing() -> None:
    # GIVEN a dry-run runtime over clients that record calls
    ecs, autoscaling, lambda_ = Recorder(), Recorder(), Recorder()
    rt = bootstrap.build(CONFIG, ecs_client=ecs, autoscaling_client=autoscaling, lambda_client=lambda_, dry_run=True)
    assert isinstance(rt.executor, RecordingExecutor)
    # WHEN it runs one action of each type
    results = [rt.executor.run("prod", action) for action, _ in ONE_OF_EACH]
    # THEN each is recorded, in order, and no AWS call is made
    assert results == ["recorded"] * len(ONE_OF_EACH)
    assert [a for _, a in rt.executor.recorded] == [a for a, _ in ONE_OF_EACH]
    assert ecs.calls == autoscaling.calls == lambda_.calls == []


def test_workflows_cannot_be_started_without_their_function() -> None:
    # GIVEN a runtime with a Lambda client but no drain function configured
    rt = bootstrap.build(CONFIG, ecs_client=Recorder(), autoscaling_client=Recorder(), lambda_client=Recorder())
    start, _ = ONE_OF_EACH[6]
    # THEN the executor says it cannot start one (the intake answers "not-configured")
    assert not rt.executor.can_run(start)
