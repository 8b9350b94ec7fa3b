"""The wire layer: real boto3 clients, real botocore serialisation and parsing, a fake backend."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from sim.errors import SimApiError, UnsupportedOperation
from sim.wire import CallLog, ValidatingBackend, make_client, validate_output

Handler = Callable[[dict[str, Any]], dict[str, Any]]

CLUSTER = "arn:aws:ecs:us-east-1:123456789012:cluster/prod"
INSTANCE = "arn:aws:ecs:us-east-1:123456789012:container-instance/prod/0123456789abcdef"
TOKEN = "5f1c2f0e-8a5d-4c1e-9a43-2b7d0c6e9f11"
REGISTERED = datetime(2026, 1, 5, 8, 0, 1, 250000, tzinfo=UTC)


class FakeBackend:
    """Canned handlers per (service, operation); remembers what it was asked."""

    def __init__(self, handlers: dict[tuple[str, str], Handler]) -> None:
        self.handlers = handlers
        self.seen: list[tuple[str, str, dict[str, Any]]] = []

    def call(self, service: str, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        self.seen.append((service, operation, params))
        handler = self.handlers.get((service, operation))
        if handler is None:
            raise UnsupportedOperation(service, operation)
        return handler(params)


def fails_then(failures: list[SimApiError], result: dict[str, Any]) -> Handler:
    """A handler raising each error in turn, then answering `result`."""

    def handler(_params: dict[str, Any]) -> dict[str, Any]:
        if failures:
            raise failures.pop(0)
        return result

    return handler


def test_ecs_list_tasks_round_trips_filters_and_parses_arns_and_token() -> None:
    # GIVEN an ECS client whose backend answers ListTasks with one page
    backend = FakeBackend(
        {("ecs", "ListTasks"): lambda _p: {"taskArns": ["arn:task/1", "arn:task/2"], "nextToken": "t2"}}
    )
    ecs = make_client("ecs", backend)

    # WHEN the caller filters by instance and desired status
    out = ecs.list_tasks(cluster=CLUSTER, containerInstance=INSTANCE, desiredStatus="RUNNING")

    # THEN the backend saw exactly those params and botocore parsed the page
    assert backend.seen == [
        ("ecs", "ListTasks", {"cluster": CLUSTER, "containerInstance": INSTANCE, "desiredStatus": "RUNNING"})
    ]
    assert out["taskArns"] == ["arn:task/1", "arn:task/2"]
    assert out["nextToken"] == "t2"
    assert out["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_ecs_describe_container_instances_parses_datetimes_and_nested_structures() -> None:
    # GIVEN a backend describing a DRAINING instance with attributes and remaining resources
    instance = {
        "containerInstanceArn": INSTANCE,
        "ec2InstanceId": "i-0abc",
        "status": "DRAINING",
        "agentConnected": True,
        "runningTasksCount": 3,
        "pendingTasksCount": 0,
        "registeredAt": REGISTERED,
        "attributes": [{"name": "ecs.os-type", "value": "linux"}, {"name": "tier", "value": "daemon"}],
        "remainingResources": [
            {"name": "CPU", "type": "INTEGER", "integerValue": 1536},
            {"name": "PORTS", "type": "STRINGSET", "stringSetValue": ["22", "2376"]},
        ],
    }
    backend = ValidatingBackend(
        FakeBackend({("ecs", "DescribeContainerInstances"): lambda _p: {"containerInstances": [instance]}})
    )
    ecs = make_client("ecs", backend)

    # WHEN the caller describes it
    out = ecs.describe_container_instances(cluster=CLUSTER, containerInstances=[INSTANCE])

    # THEN every nested value comes back with its type, timestamps as aware datetimes
    (parsed,) = out["containerInstances"]
    assert parsed == instance
    assert parsed["registeredAt"] == REGISTERED
    assert parsed["remainingResources"][0]["integerValue"] == 1536


def test_ecs_error_surfaces_as_client_error_with_its_code() -> None:
    # GIVEN a backend that rejects the cluster
    backend = FakeBackend(
        {
            ("ecs", "ListTasks"): fails_then(
                [SimApiError("ClusterNotFoundException", "Cluster not found.")], {}
            )
        }
    )
    ecs = make_client("ecs", backend)

    # WHEN the caller lists tasks
    with pytest.raises(ClientError) as caught:
        ecs.list_tasks(cluster="nope")

    # THEN botocore raised the AWS error with code, message and status
    error = caught.value.response["Error"]
    assert error["Code"] == "ClusterNotFoundException"
    assert error["Message"] == "Cluster not found."
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_throttling_is_retried_by_botocore_when_retries_allow_it() -> None:
    # GIVEN a backend that throttles twice and a client allowing three attempts
    throttle = [SimApiError("ThrottlingException", "Rate exceeded") for _ in range(2)]
    backend = FakeBackend({("ecs", "ListTasks"): fails_then(throttle, {"taskArns": ["arn:task/1"]})})
    log = CallLog()
    delays: list[float] = []
    retries = {"mode": "standard", "total_max_attempts": 3}
    ecs = make_client("ecs", backend, retries=retries, call_log=log, backoff=delays.append)

    # WHEN the caller lists tasks once
    out = ecs.list_tasks(cluster=CLUSTER)

    # THEN botocore retried: three calls reached the simulator, two backoffs were requested, and it succeeded
    assert out["taskArns"] == ["arn:task/1"]
    assert log.count("ecs", "ListTasks") == 3
    assert log.error_count("ThrottlingException") == 2
    assert len(delays) == 2
    assert out["ResponseMetadata"]["RetryAttempts"] == 2


def test_default_client_does_not_retry_throttling() -> None:
    # GIVEN a backend that always throttles and a client with default retries
    backend = FakeBackend(
        {("ecs", "ListTasks"): fails_then([SimApiError("ThrottlingException", "Rate exceeded")] * 5, {})}
    )
    log = CallLog()
    ecs = make_client("ecs", backend, call_log=log)

    # WHEN the caller lists tasks
    with pytest.raises(ClientError) as caught:
        ecs.list_tasks(cluster=CLUSTER)

    # THEN it failed after exactly one call
    assert caught.value.response["Error"]["Code"] == "ThrottlingException"
    assert log.count() == 1


def test_autoscaling_lifecycle_calls_round_trip() -> None:
    # GIVEN an Auto Scaling client over a backend that accepts lifecycle calls
    backend = FakeBackend(
        {
            ("autoscaling", "CompleteLifecycleAction"): lambda _p: {},
            ("autoscaling", "RecordLifecycleActionHeartbeat"): lambda _p: {},
        }
    )
    asg = make_client("autoscaling", backend)

    # WHEN the caller heartbeats and then completes an action
    beat = asg.record_lifecycle_action_heartbeat(
        LifecycleHookName="drain",
        AutoScalingGroupName="prod-asg",
        LifecycleActionToken=TOKEN,
        InstanceId="i-1",
    )
    done = asg.complete_lifecycle_action(
        LifecycleHookName="drain",
        AutoScalingGroupName="prod-asg",
        LifecycleActionToken=TOKEN,
        LifecycleActionResult="CONTINUE",
        InstanceId="i-1",
    )

    # THEN the backend saw both calls with their params, and both parsed as successes
    assert [(op, params) for _svc, op, params in backend.seen] == [
        (
            "RecordLifecycleActionHeartbeat",
            {
                "LifecycleHookName": "drain",
                "AutoScalingGroupName": "prod-asg",
                "LifecycleActionToken": TOKEN,
                "InstanceId": "i-1",
            },
        ),
        (
            "CompleteLifecycleAction",
            {
                "LifecycleHookName": "drain",
                "AutoScalingGroupName": "prod-asg",
                "LifecycleActionToken": TOKEN,
                "LifecycleActionResult": "CONTINUE",
                "InstanceId": "i-1",
            },
        ),
    ]
    assert beat["ResponseMetadata"]["RequestId"]
    assert done["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_autoscaling_describe_groups_round_trips_nested_lists_and_ints() -> None:
    # GIVEN a backend describing one group with instances, tags and a timestamp
    group = {
        "AutoScalingGroupName": "prod-asg",
        "MinSize": 1,
        "MaxSize": 10,
        "DesiredCapacity": 3,
        "DefaultCooldown": 300,
        "AvailabilityZones": ["us-east-1a", "us-east-1b"],
        "HealthCheckType": "EC2",
        "CreatedTime": datetime(2026, 1, 1, 0, 0, 0, 123000, tzinfo=UTC),
        "NewInstancesProtectedFromScaleIn": False,
        "Instances": [
            {
                "InstanceId": "i-1",
                "AvailabilityZone": "us-east-1a",
                "LifecycleState": "Terminating:Wait",
                "HealthStatus": "Healthy",
                "ProtectedFromScaleIn": True,
                "WeightedCapacity": "1",
            }
        ],
        "Tags": [
            {"Key": "team", "Value": "ops", "PropagateAtLaunch": True, "ResourceType": "auto-scaling-group"}
        ],
    }
    backend = ValidatingBackend(
        FakeBackend({("autoscaling", "DescribeAutoScalingGroups"): lambda _p: {"AutoScalingGroups": [group]}})
    )
    asg = make_client("autoscaling", backend)

    # WHEN the caller filters by names and tags with a page size
    out = asg.describe_auto_scaling_groups(
        AutoScalingGroupNames=["prod-asg", "other"],
        MaxRecords=50,
        IncludeInstances=True,
        Filters=[{"Name": "tag:team", "Values": ["ops", "sre"]}],
    )

    # THEN params arrive with their types and nesting, and the group parses back identically
    assert backend.inner.seen[0][2] == {  # type: ignore[attr-defined]
        "AutoScalingGroupNames": ["prod-asg", "other"],
        "MaxRecords": 50,
        "IncludeInstances": True,
        "Filters": [{"Name": "tag:team", "Values": ["ops", "sre"]}],
    }
    assert out["AutoScalingGroups"] == [group]


def test_autoscaling_validation_error_surfaces_as_client_error() -> None:
    # GIVEN a backend that rejects an unknown lifecycle token
    error = SimApiError("ValidationError", "No active Lifecycle Action found with token " + TOKEN)
    backend = FakeBackend({("autoscaling", "CompleteLifecycleAction"): fails_then([error], {})})
    asg = make_client("autoscaling", backend)

    # WHEN the caller completes the action
    with pytest.raises(ClientError) as caught:
        asg.complete_lifecycle_action(
            LifecycleHookName="drain",
            AutoScalingGroupName="prod-asg",
            LifecycleActionToken=TOKEN,
            LifecycleActionResult="CONTINUE",
        )

    # THEN botocore parsed the query-protocol error
    parsed: dict[str, Any] = dict(caught.value.response["Error"])
    assert parsed["Code"] == "ValidationError"
    assert parsed["Message"] == f"No active Lifecycle Action found with token {TOKEN}"
    assert parsed["Type"] == "Sender"


def test_lambda_invoke_with_qualifier_and_durable_name_round_trips() -> None:
    # GIVEN a backend that accepts an async durable invocation
    arn = "arn:aws:lambda:us-east-1:123456789012:function:guard:live/durable-execution/run-1/abc"
    backend = ValidatingBackend(
        FakeBackend(
            {
                ("lambda", "Invoke"): lambda _p: {
                    "StatusCode": 202,
                    "Payload": b"",
                    "ExecutedVersion": "7",
                    "DurableExecutionArn": arn,
                }
            }
        )
    )
    lam = make_client("lambda", backend)

    # WHEN the caller invokes an alias by name with a payload
    out = lam.invoke(
        FunctionName="guard",
        Qualifier="live",
        InvocationType="Event",
        DurableExecutionName="run-1",
        Payload=json.dumps({"instance": "i-1"}).encode(),
    )

    # THEN the backend saw path, query, headers and body as params, and the caller got the response members
    assert backend.inner.seen[0][2] == {  # type: ignore[attr-defined]
        "FunctionName": "guard",
        "Qualifier": "live",
        "InvocationType": "Event",
        "DurableExecutionName": "run-1",
        "Payload": b'{"instance": "i-1"}',
    }
    assert out["StatusCode"] == 202
    assert out["ExecutedVersion"] == "7"
    assert out["DurableExecutionArn"] == arn
    assert out["Payload"].read() == b""


def test_lambda_invoke_returns_payload_and_function_error() -> None:
    # GIVEN a backend whose function raised
    body = b'{"errorMessage": "boom"}'
    backend = FakeBackend(
        {("lambda", "Invoke"): lambda _p: {"StatusCode": 200, "FunctionError": "Unhandled", "Payload": body}}
    )
    lam = make_client("lambda", backend)

    # WHEN the caller invokes it synchronously by ARN
    out = lam.invoke(FunctionName="arn:aws:lambda:us-east-1:123456789012:function:guard")

    # THEN the ARN survived URI encoding and the error payload is readable
    assert backend.seen[0][2] == {"FunctionName": "arn:aws:lambda:us-east-1:123456789012:function:guard"}
    assert out["FunctionError"] == "Unhandled"
    assert out["Payload"].read() == body


def test_lambda_durable_callback_success_and_failure_round_trip() -> None:
    # GIVEN a backend accepting durable execution callbacks
    backend = FakeBackend(
        {
            ("lambda", "SendDurableExecutionCallbackSuccess"): lambda _p: {},
            ("lambda", "SendDurableExecutionCallbackFailure"): lambda _p: {},
        }
    )
    lam = make_client("lambda", backend)

    # WHEN the caller reports one callback done and one failed
    lam.send_durable_execution_callback_success(CallbackId="cb-1", Result=b'{"drained": true}')
    lam.send_durable_execution_callback_failure(
        CallbackId="cb-2", Error={"ErrorType": "DrainTimeout", "ErrorMessage": "15 minutes"}
    )

    # THEN the backend saw the callback ids with their result and error
    assert [(op, params) for _svc, op, params in backend.seen] == [
        ("SendDurableExecutionCallbackSuccess", {"CallbackId": "cb-1", "Result": b'{"drained": true}'}),
        (
            "SendDurableExecutionCallbackFailure",
            {"CallbackId": "cb-2", "Error": {"ErrorType": "DrainTimeout", "ErrorMessage": "15 minutes"}},
        ),
    ]


def test_lambda_error_surfaces_with_rest_json_error_type() -> None:
    # GIVEN a backend that does not know the function
    error = SimApiError("ResourceNotFoundException", "Function not found: guard", 404)
    backend = FakeBackend({("lambda", "Invoke"): fails_then([error], {})})
    lam = make_client("lambda", backend)

    # WHEN the caller invokes it
    with pytest.raises(ClientError) as caught:
        lam.invoke(FunctionName="guard")

    # THEN the code and status come through
    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_unmodelled_operation_fails_with_a_clear_message() -> None:
    # GIVEN a backend that models nothing
    ecs = make_client("ecs", FakeBackend({}))

    # WHEN the caller uses an operation the simulator does not model
    with pytest.raises(ClientError) as caught:
        ecs.create_capacity_provider(name="cp", autoScalingGroupProvider={"autoScalingGroupArn": "arn:asg"})

    # THEN the error names the gap
    assert caught.value.response["Error"]["Code"] == "UnsupportedOperation"
    assert caught.value.response["Error"]["Message"] == "simulator does not model ecs:CreateCapacityProvider"


def test_call_log_counts_per_service_and_operation_across_clients() -> None:
    # GIVEN two clients sharing one call log
    backend = FakeBackend(
        {
            ("ecs", "ListTasks"): lambda _p: {"taskArns": []},
            ("autoscaling", "RecordLifecycleActionHeartbeat"): lambda _p: {},
        }
    )
    log = CallLog()
    ecs = make_client("ecs", backend, call_log=log)
    asg = make_client("autoscaling", backend, call_log=log)

    # WHEN they make three calls
    ecs.list_tasks(cluster=CLUSTER)
    ecs.list_tasks(cluster=CLUSTER)
    asg.record_lifecycle_action_heartbeat(LifecycleHookName="h", AutoScalingGroupName="g")

    # THEN the log counts them per operation and in total
    assert log.calls == {("ecs", "ListTasks"): 2, ("autoscaling", "RecordLifecycleActionHeartbeat"): 1}
    assert log.count("ecs") == 2
    assert log.count() == 3


def test_validate_output_accepts_a_well_formed_response() -> None:
    # GIVEN a response that matches ListTasks' output shape
    response = {"taskArns": ["arn:task/1"], "nextToken": "t"}

    # WHEN it is validated
    problems = validate_output("ecs", "ListTasks", response)

    # THEN there is nothing to report
    assert problems == []


def test_validate_output_flags_wrong_type_unknown_member_and_bad_enum() -> None:
    # GIVEN a container instance with a string count, an invented member and an invalid status
    response = {
        "containerInstances": [
            {
                "containerInstanceArn": INSTANCE,
                "runningTasksCount": "3",
                "drainTier": 1,
                "registeredAt": REGISTERED,
                "attributes": [{"name": "a", "value": "b", "targetType": "container-box"}],
            }
        ]
    }

    # WHEN it is validated
    problems = validate_output("ecs", "DescribeContainerInstances", response)

    # THEN each problem is reported with its path
    joined = "\n".join(problems)
    assert len(problems) == 3, joined
    assert "containerInstances[0].runningTasksCount: expected integer" in joined
    assert "unknown member 'drainTier'" in joined
    assert "containerInstances[0].attributes[0].targetType: 'container-box' is not one of" in joined


def test_validating_backend_rejects_a_response_botocore_would_not_produce() -> None:
    # GIVEN a backend that answers with a number where a timestamp belongs
    inner = FakeBackend(
        {("ecs", "DescribeContainerInstances"): lambda _p: {"containerInstances": [{"registeredAt": 1.5}]}}
    )
    backend = ValidatingBackend(inner)

    # WHEN the simulator's answer is checked
    with pytest.raises(AssertionError) as caught:
        backend.call("ecs", "DescribeContainerInstances", {"containerInstances": [INSTANCE]})

    # THEN the assertion lists the problem
    assert "registeredAt: expected timestamp" in str(caught.value)
