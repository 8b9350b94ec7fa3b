"""parse_event and dedupe_key against the real EventBridge samples in tests/fixtures/events."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from daemon_guard.adapters.parsing import MAX_EVENT_BYTES, ServiceActionDetailModel, dedupe_key, parse_event
from daemon_guard.core.events import (
    ContainerInstanceChanged,
    GuardEvent,
    Ignored,
    LifecycleAction,
    Malformed,
    RebalanceRecommendation,
    ServiceAction,
    SpotInterruption,
    TaskChanged,
    TestNotification,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError as PydanticValidationError

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "events"
REAL_TIME = "2024-05-01T12:00:00Z"
TASK = "ECS Task State Change"
MISSING = object()

ASG_LAUNCH_DOCS = "asg-instance-launch-lifecycle-action.awsdocs-asg-userguide-2023.json"
ASG_LAUNCH_SUCCESSFUL = "asg-instance-launch-successful.awsdocs-asg-userguide-2023.json"
ASG_TERMINATE_NTH = "asg-instance-terminate-lifecycle-action.aws-node-termination-handler.json"
ASG_TERMINATE_DOCS = "asg-instance-terminate-lifecycle-action.awsdocs-asg-userguide-2023.json"
ASG_TERMINATE_SUCCESSFUL = "asg-instance-terminate-successful.awsdocs-asg-userguide-2023.json"
ASG_EC2_TO_ASG = "asg-launch-lifecycle-action-ec2-to-asg.awsdocs-asg-userguide-2023.json"
ASG_EC2_TO_WARMPOOL = "asg-launch-lifecycle-action-warmpool-ec2-to-warmpool.awsdocs-asg-userguide-2023.json"
ASG_WARMPOOL_TO_ASG = "asg-launch-lifecycle-action-warmpool-to-asg.awsdocs-asg-userguide-2023.json"
ASG_TO_WARMPOOL = "asg-terminate-lifecycle-action-asg-to-warmpool.awsdocs-asg-userguide-2023.json"
REBALANCE_NTH = "ec2-instance-rebalance-recommendation.aws-node-termination-handler.json"
REBALANCE_DOCS = "ec2-instance-rebalance-recommendation.awsdocs-ec2-userguide.json"
SPOT_NTH = "ec2-spot-instance-interruption-warning.aws-node-termination-handler.json"
SPOT_DOCS = "ec2-spot-instance-interruption-warning.awsdocs-ec2-userguide.json"
CONTAINER_INSTANCE = "ecs-container-instance-state-change.awsdocs-ecs-devguide-2023.json"
DEPLOYMENT_COMPLETED = "ecs-deployment-state-change-completed.awsdocs-ecs-devguide-2023.json"
DEPLOYMENT_FAILED = "ecs-deployment-state-change-failed.awsdocs-ecs-devguide-2023.json"
DEPLOYMENT_ROLLBACK = "ecs-deployment-state-change-in-progress-rollback.awsdocs-ecs-devguide-2023.json"
DEPLOYMENT_IN_PROGRESS = "ecs-deployment-state-change-in-progress.awsdocs-ecs-devguide-2023.json"
CP_STEADY_STATE = "ecs-service-action-capacity-provider-steady-state.awsdocs-ecs-devguide-2023.json"
PLACEMENT_FAILURE_CPU = "ecs-service-action-placement-failure-ec2-resource-cpu.awsdocs-ecs-devguide-2023.json"
PLACEMENT_FAILURE_FARGATE = (
    "ecs-service-action-placement-failure-fargate-spot.awsdocs-ecs-devguide-2023.json"
)
SERVICE_STEADY_STATE = "ecs-service-action-service-steady-state.awsdocs-ecs-devguide-2023.json"
TASK_START_IMPAIRED = "ecs-service-action-service-task-start-impaired.awsdocs-ecs-devguide-2023.json"
TASK_EC2 = "ecs-task-state-change-ec2-launch-type.awsdocs-ecs-devguide-2020.json"
TASK_FARGATE = "ecs-task-state-change-fargate.awsdocs-ecs-devguide-2023.json"

# Samples whose `time` is the docs placeholder: they are Malformed as they stand (see the
# placeholder tests) and parse to this kind once the time is real.
PLACEHOLDER_SAMPLES: list[tuple[str, type[GuardEvent]]] = [
    (ASG_LAUNCH_DOCS, LifecycleAction),
    (ASG_LAUNCH_SUCCESSFUL, Ignored),
    (ASG_TERMINATE_DOCS, LifecycleAction),
    (ASG_TERMINATE_SUCCESSFUL, Ignored),
    (REBALANCE_DOCS, RebalanceRecommendation),
]

SAMPLE_KINDS: list[tuple[str, type[GuardEvent]]] = [
    (ASG_LAUNCH_DOCS, Malformed),
    (ASG_LAUNCH_SUCCESSFUL, Malformed),
    (ASG_TERMINATE_NTH, LifecycleAction),
    (ASG_TERMINATE_DOCS, Malformed),
    (ASG_TERMINATE_SUCCESSFUL, Malformed),
    (ASG_EC2_TO_ASG, LifecycleAction),
    (ASG_EC2_TO_WARMPOOL, LifecycleAction),
    (ASG_WARMPOOL_TO_ASG, LifecycleAction),
    (ASG_TO_WARMPOOL, LifecycleAction),
    (REBALANCE_NTH, RebalanceRecommendation),
    (REBALANCE_DOCS, Malformed),
    (SPOT_NTH, Malformed),  # dated 1970-01-01: see test_an_event_time_outside_the_era_of_aws_events_is_malformed
    (SPOT_DOCS, Malformed),
    (CONTAINER_INSTANCE, ContainerInstanceChanged),
    (DEPLOYMENT_COMPLETED, Ignored),
    (DEPLOYMENT_FAILED, Ignored),
    (DEPLOYMENT_ROLLBACK, Ignored),
    (DEPLOYMENT_IN_PROGRESS, Ignored),
    (CP_STEADY_STATE, ServiceAction),
    (PLACEMENT_FAILURE_CPU, ServiceAction),
    (PLACEMENT_FAILURE_FARGATE, ServiceAction),
    (SERVICE_STEADY_STATE, ServiceAction),
    (TASK_START_IMPAIRED, ServiceAction),
    (TASK_EC2, TaskChanged),
    (TASK_FARGATE, TaskChanged),
    # Exits outside Auto Scaling (tests/unit/test_exit_events.py); the EC2 guide's sample omits `version`.
    # placeholder account "account id": see tests/unit/test_exit_events.py for the sample from a real account
    ("aws-health-ec2-scheduled-change.aws-node-termination-handler.json", Malformed),
    # dated 2015, before the era of EventBridge events: test_exit_events.py parses it at a real time
    ("ec2-instance-state-change-notification.aws-node-termination-handler.json", Malformed),
    ("ec2-instance-state-change-notification.awsdocs-ec2-userguide.json", Malformed),
]


def load(name: str) -> dict[str, Any]:
    """A fresh copy of one sample event."""
    loaded: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return loaded


def changed(name: str, path: tuple[str | int, ...], value: object) -> dict[str, Any]:
    """The sample with the field at `path` set to `value`, or removed when `value` is MISSING.

    NTH's Spot sample is dated 1970-01-01, which is Malformed in itself: it gets a real time first.
    """
    event = load(name)
    if name == SPOT_NTH:
        event["time"] = REAL_TIME
    parent: Any = event
    for part in path[:-1]:
        parent = parent[part]
    if value is MISSING:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return event


utc = partial(datetime, tzinfo=UTC)


# --- every sample ------------------------------------------------------------------------------


def test_the_kind_table_covers_every_sample() -> None:
    # GIVEN the fixture directory / WHEN compared with the table / THEN no sample goes untested
    assert {name for name, _ in SAMPLE_KINDS} == {path.name for path in FIXTURES.glob("*.json")}


@pytest.mark.parametrize(("name", "kind"), SAMPLE_KINDS)
def test_every_sample_parses_to_its_kind(name: str, kind: type[GuardEvent]) -> None:
    # GIVEN a real sample
    raw = load(name)

    # WHEN parsed
    event = parse_event(raw)

    # THEN it has the expected kind
    assert type(event) is kind, event


# --- key fields --------------------------------------------------------------------------------


def test_a_container_instance_change_keeps_identity_status_version_and_attributes() -> None:
    # GIVEN the ECS container instance sample
    raw = load(CONTAINER_INSTANCE)

    # WHEN parsed
    event = parse_event(raw)

    # THEN it carries what placement needs, bare capabilities mapped to None
    assert isinstance(event, ContainerInstanceChanged)
    assert event.account == "111122223333"
    assert event.region == "us-east-1"
    assert event.cluster_arn == "arn:aws:ecs:us-east-1:111122223333:cluster/default"
    assert event.container_instance_arn == (
        "arn:aws:ecs:us-east-1:111122223333:container-instance/b54a2a04-046f-4331-9d74-3f6d7f6ca315"
    )
    assert event.ec2_instance_id == "i-f3a8506b"
    assert (event.status, event.agent_connected, event.version) == ("ACTIVE", True, 14801)
    assert event.registered_at is None
    assert len(event.attributes) == 14
    assert event.attributes["com.amazonaws.ecs.capability.ecr-auth"] is None
    assert event.event_id == "8952ba83-7be2-4ab5-9c32-6687532d15a2"
    assert event.time == utc(2016, 12, 6, 16, 41, 6)


def test_a_container_instance_change_reads_registered_at_and_attribute_values() -> None:
    # GIVEN a current-style event with registeredAt and a valued custom attribute
    raw = changed(CONTAINER_INSTANCE, ("detail", "registeredAt"), "2016-12-06T16:40:01.5+01:00")
    raw["detail"]["attributes"].append({"name": "daemon-guard.gate", "value": "open"})

    # WHEN parsed
    event = parse_event(raw)

    # THEN registeredAt comes out in UTC and the attribute keeps its value
    assert isinstance(event, ContainerInstanceChanged)
    assert event.registered_at == utc(2016, 12, 6, 15, 40, 1, 500000)
    assert event.attributes["daemon-guard.gate"] == "open"


def test_container_instance_attributes_are_read_only() -> None:
    # GIVEN a parsed container instance event
    event = parse_event(load(CONTAINER_INSTANCE))
    assert isinstance(event, ContainerInstanceChanged)

    # WHEN someone tries to change its attributes / THEN the value type refuses
    with pytest.raises(TypeError):
        event.attributes["x"] = "y"  # type: ignore[index]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            TASK_EC2,
            TaskChanged(
                account="111122223333",
                region="us-east-1",
                cluster_arn="arn:aws:ecs:us-east-1:111122223333:cluster/default",
                task_arn="arn:aws:ecs:us-east-1:111122223333:task/b99d40b3-5176-4f71-9a52-9dbd6f1cebef",
                container_instance_arn=(
                    "arn:aws:ecs:us-east-1:111122223333:container-instance/"
                    "b54a2a04-046f-4331-9d74-3f6d7f6ca315"
                ),
                group="task-group",
                last_status="RUNNING",
                desired_status="RUNNING",
                started_by="ecs-svc/9223370556150183303",
                launch_type=None,
                stopped_reason=None,
                version=4,
                event_id="9bcdac79-b31f-4d3d-9410-fbd727c29fab",
                time=utc(2016, 12, 6, 16, 41, 6),
            ),
        ),
        (
            TASK_FARGATE,
            TaskChanged(
                account="111122223333",
                region="us-west-2",
                cluster_arn="arn:aws:ecs:us-west-2:111122223333:cluster/FargateCluster",
                task_arn="arn:aws:ecs:us-west-2:111122223333:task/FargateCluster/c13b4cb40f1f4fe4a2971f76ae5a47ad",
                container_instance_arn=None,
                group="family:sample-fargate",
                last_status="RUNNING",
                desired_status="RUNNING",
                started_by=None,
                launch_type="FARGATE",
                stopped_reason=None,
                version=4,
                event_id="3317b2af-7005-947d-b652-f55e762e571a",
                time=utc(2020, 1, 23, 17, 57, 58),
            ),
        ),
    ],
)
def test_a_task_change_keeps_where_the_task_runs_and_its_statuses(name: str, expected: TaskChanged) -> None:
    # GIVEN a task sample / WHEN parsed / THEN every field the guard reads is extracted
    assert parse_event(load(name)) == expected


def test_a_stopped_task_keeps_its_stopped_reason() -> None:
    # GIVEN a task event for a task the guard stopped
    raw = changed(TASK_EC2, ("detail", "stoppedReason"), "daemon-guard: drain tier 1")

    # WHEN parsed
    event = parse_event(raw)

    # THEN the reason survives
    assert isinstance(event, TaskChanged)
    assert event.stopped_reason == "daemon-guard: drain tier 1"


@pytest.mark.parametrize(
    ("name", "event_name", "reason"),
    [
        (PLACEMENT_FAILURE_CPU, "SERVICE_TASK_PLACEMENT_FAILURE", "RESOURCE:CPU"),
        (PLACEMENT_FAILURE_FARGATE, "SERVICE_TASK_PLACEMENT_FAILURE", "RESOURCE:FARGATE"),
        (SERVICE_STEADY_STATE, "SERVICE_STEADY_STATE", None),
        (TASK_START_IMPAIRED, "SERVICE_TASK_START_IMPAIRED", None),
        (CP_STEADY_STATE, "CAPACITY_PROVIDER_STEADY_STATE", None),
    ],
)
def test_a_service_action_keeps_its_name_reason_and_service(
    name: str, event_name: str, reason: str | None
) -> None:
    # GIVEN a service action sample / WHEN parsed
    event = parse_event(load(name))

    # THEN the intake can tell a placement failure from the rest
    assert isinstance(event, ServiceAction)
    assert (event.event_name, event.reason) == (event_name, reason)
    assert event.cluster_arn == "arn:aws:ecs:us-west-2:111122223333:cluster/default"
    assert event.service_arn == "arn:aws:ecs:us-west-2:111122223333:service/default/servicetest"


def test_a_service_action_without_a_service_resource_has_no_service_arn() -> None:
    # GIVEN a service action whose resources name no ECS service
    raw = changed(PLACEMENT_FAILURE_CPU, ("resources",), [])

    # WHEN parsed / THEN service_arn is None rather than a guess
    event = parse_event(raw)
    assert isinstance(event, ServiceAction)
    assert event.service_arn is None


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            ASG_TERMINATE_NTH,
            ("terminate", "testt1.demo-0a20f32c.kops.sh", "i-0633ac2b0d9769723",
             "cluster-termination-handler", "0befcbdb-6ecd-498a-9ff7-ae9b54447cd6",
             "AutoScalingGroup", "EC2"),
        ),
        (
            ASG_EC2_TO_ASG,
            ("launch", "my-asg", "i-1234567890abcdef0", "my-launch-lifecycle-hook",
             "87654321-4321-4321-4321-21098EXAMPLE", "EC2", "AutoScalingGroup"),
        ),
        (
            ASG_EC2_TO_WARMPOOL,
            ("launch", "my-asg", "i-1234567890abcdef0", "my-launch-lifecycle-hook",
             "71514b9d-6a40-4b26-8523-05e7eEXAMPLE", "EC2", "WarmPool"),
        ),
        (
            ASG_WARMPOOL_TO_ASG,
            ("launch", "my-asg", "i-1234567890abcdef0", "my-launch-lifecycle-hook",
             "19cc4d4a-e450-4d1c-b448-0de67EXAMPLE", "WarmPool", "AutoScalingGroup"),
        ),
        (
            ASG_TO_WARMPOOL,
            ("terminate", "my-asg", "i-1234567890abcdef0", "my-termination-lifecycle-hook",
             "42694b3d-4b70-6a62-8523-09a1eEXAMPLE", "AutoScalingGroup", "WarmPool"),
        ),
    ],
)
def test_a_lifecycle_action_keeps_hook_token_and_warm_pool_path(name: str, expected: tuple[str, ...]) -> None:
    # GIVEN a lifecycle action sample / WHEN parsed
    event = parse_event(load(name))

    # THEN CompleteLifecycleAction has all it needs, and warm-pool moves are told apart
    assert isinstance(event, LifecycleAction)
    assert (
        event.transition,
        event.asg_name,
        event.ec2_instance_id,
        event.hook_name,
        event.token,
        event.origin,
        event.destination,
    ) == expected


@pytest.mark.parametrize(
    ("name", "origin", "destination"),
    [
        (ASG_LAUNCH_DOCS, "EC2", "AutoScalingGroup"),
        (ASG_TERMINATE_DOCS, "AutoScalingGroup", "EC2"),
    ],
)
def test_a_lifecycle_action_without_origin_reads_as_the_plain_path(
    name: str, origin: str, destination: str
) -> None:
    # GIVEN a lifecycle action from a group without a warm pool (no Origin / Destination)
    raw = changed(name, ("time",), REAL_TIME)

    # WHEN parsed
    event = parse_event(raw)

    # THEN the path is the plain one for its transition
    assert isinstance(event, LifecycleAction)
    assert (event.origin, event.destination) == (origin, destination)


def test_a_lifecycle_action_whose_transition_contradicts_its_detail_type_is_malformed() -> None:
    # GIVEN a launch lifecycle action saying it terminates
    raw = changed(ASG_EC2_TO_ASG, ("detail", "LifecycleTransition"), "autoscaling:EC2_INSTANCE_TERMINATING")

    # WHEN parsed / THEN it is refused, naming the field
    assert parse_event(raw) == Malformed(
        "EC2 Instance-launch Lifecycle Action: detail.LifecycleTransition: "
        "Input should be 'autoscaling:EC2_INSTANCE_LAUNCHING'"
    )


def test_a_spot_interruption_has_a_two_minute_deadline() -> None:
    # GIVEN the interruption warning sample
    raw = changed(SPOT_NTH, ("time",), REAL_TIME)

    # WHEN parsed
    event = parse_event(raw)

    # THEN the deadline is two minutes after the warning
    assert event == SpotInterruption(
        account="123456789012",
        region="us-east-1",
        ec2_instance_id="i-0b662ef9931388ba0",
        action="terminate",
        deadline=utc(2024, 5, 1, 12, 2),
        event_id="1e5527d7-bb36-4607-3370-4164db56a40e",
        time=utc(2024, 5, 1, 12),
    )


@pytest.mark.parametrize("action", ["terminate", "stop", "hibernate"])
def test_every_documented_spot_action_is_accepted(action: str) -> None:
    # GIVEN an interruption warning with one of EC2's documented actions
    raw = changed(SPOT_NTH, ("detail", "instance-action"), action)

    # WHEN parsed / THEN it is an interruption with that action
    event = parse_event(raw)
    assert isinstance(event, SpotInterruption)
    assert event.action == action


def test_a_rebalance_recommendation_names_its_instance() -> None:
    # GIVEN the rebalance sample / WHEN parsed / THEN instance and envelope are kept
    assert parse_event(load(REBALANCE_NTH)) == RebalanceRecommendation(
        account="123456789012",
        region="us-east-1",
        ec2_instance_id="i-0b662ef9931388ba0",
        event_id="5d5555d5-dd55-5555-5555-5555dd55d55d",
        time=utc(2020, 10, 26, 14, 14, 14),
    )


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (load(DEPLOYMENT_FAILED), "deployments are the ECS scheduler's business"),
        (
            changed(ASG_LAUNCH_SUCCESSFUL, ("time",), REAL_TIME),
            "placement starts when the instance registers",
        ),
        (changed(ASG_TERMINATE_SUCCESSFUL, ("time",), REAL_TIME), "drains start from the terminate hook"),
        (
            {**load(DEPLOYMENT_FAILED), "source": "aws.s3", "detail-type": "Object Created"},
            "not a kind daemon-guard handles (source 'aws.s3')",
        ),
    ],
)
def test_well_formed_events_the_guard_does_not_act_on_are_ignored_with_a_reason(
    raw: dict[str, Any], reason: str
) -> None:
    # GIVEN a well-formed event of a kind the guard leaves alone / WHEN parsed
    event = parse_event(raw)

    # THEN it is Ignored, saying why, with its kind and id for the log line
    assert isinstance(event, Ignored)
    assert event.reason == reason
    assert event.detail_type == raw["detail-type"]
    assert event.event_id == raw["id"]


# --- TEST_NOTIFICATION ---------------------------------------------------------------------------

RAW_TEST_NOTIFICATION = {
    "AccountId": "123456789012",
    "RequestId": "4e6156f4-a9e2-4bda-a7fd-33f2ae528958",
    "AutoScalingGroupARN": (
        "arn:aws:autoscaling:us-west-2:123456789012:autoScalingGroup:"
        "042cba90-ad2f-431c-9b4d-6d9055bcc9fb:autoScalingGroupName/my-asg"
    ),
    "AutoScalingGroupName": "my-asg",
    "Service": "AWS Auto Scaling",
    "Event": "autoscaling:TEST_NOTIFICATION",
    "Time": "2021-01-19T00:36:26.533Z",
}


def _wrapped_test_notification(marker_field: str) -> dict[str, Any]:
    raw = load(ASG_EC2_TO_ASG)
    raw["detail"] = {
        "AutoScalingGroupName": "my-asg",
        "Service": "AWS Auto Scaling",
        marker_field: "autoscaling:TEST_NOTIFICATION",
    }
    return raw


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            _wrapped_test_notification("LifecycleTransition"),
            TestNotification(
                account="123456789012",
                region="us-west-2",
                asg_name="my-asg",
                event_id="12345678-1234-1234-1234-123456789012",
            ),
        ),
        (
            _wrapped_test_notification("Event"),
            TestNotification(
                account="123456789012",
                region="us-west-2",
                asg_name="my-asg",
                event_id="12345678-1234-1234-1234-123456789012",
            ),
        ),
        (
            RAW_TEST_NOTIFICATION,
            TestNotification(
                account="123456789012",
                region="us-west-2",
                asg_name="my-asg",
                event_id="4e6156f4-a9e2-4bda-a7fd-33f2ae528958",
            ),
        ),
    ],
    ids=["eventbridge-transition", "eventbridge-event", "raw-hook-target"],
)
def test_an_autoscaling_test_notification_is_recognised_by_name(
    raw: dict[str, Any], expected: TestNotification
) -> None:
    # GIVEN a TEST_NOTIFICATION (no token, no instance) / WHEN parsed
    event = parse_event(raw)

    # THEN it is a TestNotification, not a malformed lifecycle action
    assert event == expected


def test_a_raw_test_notification_without_its_group_is_malformed() -> None:
    # GIVEN a raw test notification missing the group name
    raw = {key: value for key, value in RAW_TEST_NOTIFICATION.items() if key != "AutoScalingGroupName"}

    # WHEN parsed / THEN the missing field is named
    assert parse_event(raw) == Malformed("AutoScalingGroupName: Field required")


# --- documentation placeholders ------------------------------------------------------------------


@pytest.mark.parametrize(("name", "_kind"), [*PLACEHOLDER_SAMPLES, (SPOT_DOCS, SpotInterruption)])
def test_a_docs_placeholder_time_is_malformed_saying_so(name: str, _kind: type[GuardEvent]) -> None:
    # GIVEN a docs sample whose time is yyyy-mm-ddThh:mm:ssZ / WHEN parsed
    event = parse_event(load(name))

    # THEN it is refused as a placeholder, not as a vague parse error
    assert event == Malformed("time: documentation placeholder 'yyyy-mm-ddThh:mm:ssZ', not a real event")


@pytest.mark.parametrize(("name", "kind"), PLACEHOLDER_SAMPLES)
def test_a_placeholder_sample_with_a_real_time_parses_to_its_kind(name: str, kind: type[GuardEvent]) -> None:
    # GIVEN a docs placeholder sample given a real time (its resources still a placeholder)
    raw = changed(name, ("time",), REAL_TIME)

    # WHEN parsed
    event = parse_event(raw)

    # THEN the rest of the sample is a valid event of its kind
    assert type(event) is kind, event


def test_a_docs_placeholder_instance_action_is_malformed_saying_so() -> None:
    # GIVEN the docs interruption warning with a real time but instance-action "action"
    raw = changed(SPOT_DOCS, ("time",), REAL_TIME)

    # WHEN parsed / THEN the placeholder is named
    assert parse_event(raw) == Malformed(
        "EC2 Spot Instance Interruption Warning: detail.instance-action: "
        "documentation placeholder 'action', not a real event"
    )


def test_a_placeholder_group_arn_in_resources_does_not_matter() -> None:
    # GIVEN a lifecycle action whose resources is the docs placeholder
    raw = changed(ASG_LAUNCH_DOCS, ("time",), REAL_TIME)
    assert raw["resources"] == ["auto-scaling-group-arn"]

    # WHEN parsed / THEN the group still comes from the detail
    event = parse_event(raw)
    assert isinstance(event, LifecycleAction)
    assert event.asg_name == "my-asg"


# --- malformed -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "path", "value", "reason"),
    [
        (TASK_EC2, ("detail", "taskArn"), MISSING, "ECS Task State Change: detail.taskArn: Field required"),
        (TASK_EC2, ("detail", "version"), "4", f"{TASK}: detail.version: Input should be a valid integer"),
        (TASK_EC2, ("detail", "version"), True, f"{TASK}: detail.version: Input should be a valid integer"),
        (
            CONTAINER_INSTANCE,
            ("detail", "agentConnected"),
            "true",
            "ECS Container Instance State Change: detail.agentConnected: Input should be a valid boolean",
        ),
        (
            CONTAINER_INSTANCE,
            ("detail", "attributes", 0, "name"),
            7,
            "ECS Container Instance State Change: detail.attributes.0.name: Input should be a valid string",
        ),
        (
            CONTAINER_INSTANCE,
            ("detail", "registeredAt"),
            "yesterday",
            "ECS Container Instance State Change: detail.registeredAt: Input should be an ISO 8601 time",
        ),
        (
            ASG_TERMINATE_NTH,
            ("detail", "LifecycleActionToken"),
            MISSING,
            "EC2 Instance-terminate Lifecycle Action: detail.LifecycleActionToken: Field required",
        ),
        (
            ASG_TERMINATE_NTH,
            ("detail", "EC2InstanceId"),
            "",
            "EC2 Instance-terminate Lifecycle Action: detail.EC2InstanceId: "
            "expected an EC2 instance id (i- and 8 or 17 hex digits), got ''",
        ),
        (
            ASG_EC2_TO_WARMPOOL,
            ("detail", "Destination"),
            "Elsewhere",
            "EC2 Instance-launch Lifecycle Action: detail.Destination: "
            "Input should be 'EC2', 'AutoScalingGroup' or 'WarmPool'",
        ),
        (
            SPOT_NTH,
            ("detail", "instance-action"),
            "reboot",
            "EC2 Spot Instance Interruption Warning: detail.instance-action: "
            "Input should be 'terminate', 'stop' or 'hibernate'",
        ),
        (PLACEMENT_FAILURE_CPU, ("detail", "clusterArn"), MISSING,
         "ECS Service Action: detail.clusterArn: Field required"),
        (REBALANCE_NTH, ("detail",), "{}", "detail: Input should be a valid dictionary"),
        (TASK_EC2, ("detail-type",), MISSING, "detail-type: Field required"),
        (TASK_EC2, ("id",), 42, "id: Input should be a valid string"),
        (TASK_EC2, ("time",), "2016-13-45T99:00:00Z", "time: Input should be an ISO 8601 time"),
        (TASK_EC2, ("time",), "2016-12-06T16:41:06", "time: Input should be a time with a UTC offset"),
        (TASK_EC2, ("time",), 1481042466, "time: Input should be an ISO 8601 time string"),
        (TASK_EC2, ("resources",), "arn:aws:ecs:task", "resources: Input should be a valid list"),
    ],
)
def test_a_broken_event_is_malformed_naming_the_field(
    name: str, path: tuple[str | int, ...], value: object, reason: str
) -> None:
    # GIVEN a real sample with one field missing or wrong
    raw = changed(name, path, value)

    # WHEN parsed
    event = parse_event(raw)

    # THEN it is Malformed with a one-line reason naming that field
    assert event == Malformed(reason)


def test_several_problems_are_counted_after_the_first() -> None:
    # GIVEN a task event missing two fields
    raw = changed(TASK_EC2, ("detail", "taskArn"), MISSING)
    del raw["detail"]["group"]

    # WHEN parsed / THEN the reason names the first and counts the rest
    assert parse_event(raw) == Malformed(
        "ECS Task State Change: detail.taskArn: Field required (and 1 more)"
    )


def _nested(depth: int) -> dict[str, Any]:
    event: dict[str, Any] = {}
    for _ in range(depth):
        event = {"detail": event}
    return event


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, "event: expected a JSON object, got NoneType"),
        ([load(TASK_EC2)], "event: expected a JSON object, got list"),
        (json.dumps(load(TASK_EC2)), "event: expected a JSON object, got str"),
        ({"detail": {1, 2}}, "event: not JSON (TypeError)"),
        (_nested(100_000), "event: not JSON (RecursionError)"),
        ({}, "version: Field required (and 8 more)"),
    ],
    ids=["none", "list", "json-string", "set", "too-deep", "empty"],
)
def test_something_that_is_not_an_event_is_malformed(raw: object, reason: str) -> None:
    # GIVEN something that is not an event object / WHEN parsed / THEN Malformed says what it is
    assert parse_event(raw) == Malformed(reason)


def test_a_payload_over_256_kib_is_malformed_before_validation() -> None:
    # GIVEN a task event padded past EventBridge's event size limit
    raw = changed(TASK_EC2, ("detail", "padding"), "x" * MAX_EVENT_BYTES)

    # WHEN parsed
    event = parse_event(raw)

    # THEN it is refused on size
    assert isinstance(event, Malformed)
    assert event.reason.startswith("event: ")
    assert event.reason.endswith("bytes, over EventBridge's 262144-byte limit")


def test_a_reason_stays_on_one_bounded_line() -> None:
    # GIVEN a foreign event whose source is long and spans lines
    raw = {**load(DEPLOYMENT_FAILED), "source": "custom.app\n" + "x" * 10_000}

    # WHEN parsed
    event = parse_event(raw)

    # THEN the reason is one line, short enough for a log
    assert isinstance(event, Ignored)
    assert "\n" not in event.reason
    assert len(event.reason) <= 300


# --- dedupe keys ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        (
            load(CONTAINER_INSTANCE),
            "arn:aws:ecs:us-east-1:111122223333:container-instance/b54a2a04-046f-4331-9d74-3f6d7f6ca315#v14801",
        ),
        (load(TASK_EC2), "arn:aws:ecs:us-east-1:111122223333:task/b99d40b3-5176-4f71-9a52-9dbd6f1cebef#v4"),
        (load(ASG_TERMINATE_NTH), "782d5b4c-0f6f-1fd6-9d62-ecf6aed0a470"),
        (changed(SPOT_NTH, ("time",), REAL_TIME), "1e5527d7-bb36-4607-3370-4164db56a40e"),
        (load(REBALANCE_NTH), "5d5555d5-dd55-5555-5555-5555dd55d55d"),
        (load(PLACEMENT_FAILURE_CPU), "ddca6449-b258-46c0-8653-e0e3a6d0468b"),
        (load(DEPLOYMENT_FAILED), "ddca6449-b258-46c0-8653-e0e3aEXAMPLE"),
        (RAW_TEST_NOTIFICATION, "4e6156f4-a9e2-4bda-a7fd-33f2ae528958"),
        ([], None),
    ],
)
def test_dedupe_key_is_arn_and_version_for_ecs_changes_and_event_id_otherwise(
    raw: object, key: str | None
) -> None:
    # GIVEN a parsed event / WHEN keyed / THEN the key is the documented one
    assert dedupe_key(parse_event(raw)) == key


def test_a_redelivered_ecs_change_shares_its_key_and_a_new_version_does_not() -> None:
    # GIVEN the same task change delivered twice under different event ids, and its next change
    first = load(TASK_EC2)
    redelivered = changed(TASK_EC2, ("id",), "another-delivery")
    following = changed(TASK_EC2, ("detail", "version"), 5)

    # WHEN keyed
    keys = [dedupe_key(parse_event(raw)) for raw in (first, redelivered, following)]

    # THEN the duplicate collapses and the new version does not
    assert keys[0] == keys[1] != keys[2]


# --- never raises --------------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=25,
)
SAMPLES = [load(path.name) for path in sorted(FIXTURES.glob("*.json"))] + [RAW_TEST_NOTIFICATION]


@st.composite
def mutated_samples(draw: st.DrawFn) -> dict[str, Any]:
    """A real sample with one envelope or detail field removed or replaced by arbitrary JSON."""
    event: dict[str, Any] = copy.deepcopy(draw(st.sampled_from(SAMPLES)))
    target = event["detail"] if "detail" in event and draw(st.booleans()) else event
    key = draw(st.sampled_from(sorted(target)) | st.text(max_size=12))
    if draw(st.booleans()):
        target.pop(key, None)
    else:
        target[key] = draw(JSON_VALUES)
    return event


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=12), JSON_VALUES, max_size=8) | mutated_samples())
def test_arbitrary_json_objects_never_make_parse_event_raise(raw: dict[str, Any]) -> None:
    # GIVEN any JSON object, including near-misses of real events / WHEN parsed
    event = parse_event(raw)

    # THEN a GuardEvent comes back, never an exception, and never the internal-error fallback
    assert isinstance(event, GuardEvent)
    if isinstance(event, Malformed):
        assert not event.reason.startswith("internal error"), event.reason
        assert "\n" not in event.reason
    dedupe_key(event)


def test_time_is_always_utc() -> None:
    # GIVEN an event stamped with an offset
    raw = changed(REBALANCE_NTH, ("time",), "2020-10-26T16:14:14+02:00")

    # WHEN parsed / THEN its time is the same instant in UTC
    event = parse_event(raw)
    assert isinstance(event, RebalanceRecommendation)
    assert event.time == utc(2020, 10, 26, 14, 14, 14)
    assert event.time.utcoffset() == timedelta(0)


# --- identifiers, times and bounds ---------------------------------------------------------------

HOSTILE_IDS = ["*", "i-*", "i-x or agentConnected == true", "i-", "x", "😀", "i-0633ac2b0d9769723\x00",
               "arn:aws:ec2:us-east-1:123456789012:instance/i-0633ac2b0d9769723", " i-0633ac2b0d9769723"]


@pytest.mark.parametrize("value", HOSTILE_IDS)
@pytest.mark.parametrize(
    ("name", "path"),
    [
        (ASG_TERMINATE_NTH, ("detail", "EC2InstanceId")),
        (ASG_EC2_TO_ASG, ("detail", "EC2InstanceId")),
        (SPOT_NTH, ("detail", "instance-id")),
        (REBALANCE_NTH, ("detail", "instance-id")),
        (CONTAINER_INSTANCE, ("detail", "ec2InstanceId")),
    ],
)
def test_an_instance_id_that_is_a_wildcard_or_a_query_fragment_is_malformed(
    name: str, path: tuple[str, ...], value: str
) -> None:
    # GIVEN a real sample whose instance id is a wildcard, a query fragment, an ARN or junk
    raw = changed(name, path, value)

    # WHEN parsed
    event = parse_event(raw)

    # THEN it is Malformed naming the field and what was expected: it can never reach an ECS query
    assert isinstance(event, Malformed)
    assert f"detail.{path[-1]}: expected an EC2 instance id" in event.reason
    assert "\n" not in event.reason and "\x00" not in event.reason


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("LifecycleActionToken", " ", "expected a lifecycle action token"),
        ("LifecycleActionToken", "\n", "expected a lifecycle action token"),
        ("LifecycleActionToken", "0befcbdb-6ecd-498a-9ff7-ae9b54447cd6 ", "expected a lifecycle action token"),
        ("AutoScalingGroupName", "a:b", "expected an Auto Scaling group name"),
        ("AutoScalingGroupName", "x" * 256, "expected an Auto Scaling group name"),
        ("LifecycleHookName", "hook name", "expected a lifecycle hook name"),
    ],
)
def test_a_lifecycle_action_with_a_blank_token_or_bad_name_is_malformed(field: str, value: str,
                                                                        expected: str) -> None:
    # GIVEN a terminate lifecycle action with a blank token or an impossible name / WHEN parsed
    event = parse_event(changed(ASG_TERMINATE_NTH, ("detail", field), value))
    # THEN it is Malformed: no CompleteLifecycleAction can be made from it
    assert isinstance(event, Malformed)
    assert f"detail.{field}: {expected}" in event.reason


@pytest.mark.parametrize(
    "cluster_arn",
    ["arn:/default", "default", "arn:aws:ec2:us-east-1:111122223333:cluster/default",
     "arn:aws:ecs:us-east-1:111122223333", "arn:aws:ecs:us-east-1:111122223333:cluster/default/extra",
     "arn:aws:ecs:us-east-1:cluster/default"],
)
def test_a_malformed_cluster_arn_is_malformed_not_read_as_a_cluster_name(cluster_arn: str) -> None:
    # GIVEN a task event whose clusterArn is not an ECS cluster ARN / WHEN parsed
    event = parse_event(changed(TASK_EC2, ("detail", "clusterArn"), cluster_arn))
    # THEN it is Malformed naming the field (never the cluster "default" with no account check)
    assert isinstance(event, Malformed)
    assert "detail.clusterArn: expected an ECS cluster ARN" in event.reason


def test_an_arn_in_another_partition_keeps_its_partition_for_the_foreign_check() -> None:
    # GIVEN a task event from the aws-cn partition
    raw = load(TASK_EC2)
    for key in ("clusterArn", "taskArn", "containerInstanceArn"):
        raw["detail"][key] = raw["detail"][key].replace("arn:aws:ecs:us-east-1", "arn:aws-cn:ecs:cn-north-1")
    # WHEN parsed / THEN every ARN knows its partition, account and Region
    event = parse_event(raw)
    assert isinstance(event, TaskChanged)
    assert event.cluster_arn.owner.partition == event.task_arn.owner.partition == "aws-cn"
    assert event.cluster_arn.owner.region == "cn-north-1"


@pytest.mark.parametrize(
    ("path", "value", "reason"),
    [
        (("detail", "taskArn"), "arn:aws:ecs:us-east-1:999999999999:task/b99d40b3-5176-4f71-9a52-9dbd6f1cebef",
         "detail.taskArn: names cluster (short form) in aws:us-east-1:999999999999, not detail.clusterArn's "
         "default in aws:us-east-1:111122223333"),
        (("detail", "containerInstanceArn"),
         "arn:aws:ecs:us-east-1:111122223333:container-instance/other/2dd1b186f39845a584488d2ef155c131",
         "detail.containerInstanceArn: names cluster other in aws:us-east-1:111122223333, not detail.clusterArn's "
         "default in aws:us-east-1:111122223333"),
    ],
)
def test_an_instance_or_task_of_another_cluster_than_the_event_is_malformed(
    path: tuple[str, ...], value: str, reason: str
) -> None:
    # GIVEN a task event naming a task or instance of another account or cluster than its clusterArn
    event = parse_event(changed(TASK_EC2, path, value))
    # THEN it is Malformed saying which and whose
    assert event == Malformed(f"{TASK}: {reason}")


@pytest.mark.parametrize(
    ("time", "reason"),
    [
        ("1970-01-01T00:00:00Z", "time: 1970-01-01T00:00:00Z is before 2016-01-01, earlier than any AWS event"),
        ("0001-01-01T00:00:00+01:00",
         "time: 0001-01-01T00:00:00+01:00 is before 2016-01-01, earlier than any AWS event"),
        ("9999-12-31T23:59:59Z", "time: 9999-12-31T23:59:59Z is not before 2100-01-01: not a real event time"),
        ("9999-12-31T23:59:59-01:00",
         "time: 9999-12-31T23:59:59-01:00 is not before 2100-01-01: not a real event time"),
    ],
)
def test_an_event_time_outside_the_era_of_aws_events_is_malformed(time: str, reason: str) -> None:
    # GIVEN a Spot warning (whose deadline is derived from its time) dated at an end of the calendar
    raw = changed(SPOT_NTH, ("time",), time)
    # WHEN parsed / THEN Malformed with a clear reason, not an overflow or an "internal error"
    assert parse_event(raw) == Malformed(reason)
    # AND NTH's own sample, dated 1970, is refused the same way
    assert parse_event(load(SPOT_NTH)) == Malformed(
        "time: 1970-01-01T00:00:00Z is before 2016-01-01, earlier than any AWS event")


def test_a_registered_at_far_in_the_future_is_malformed() -> None:
    event = parse_event(changed(CONTAINER_INSTANCE, ("detail", "registeredAt"), "9999-01-01T00:00:00Z"))
    assert isinstance(event, Malformed)
    assert "detail.registeredAt: 9999-01-01T00:00:00Z is not before 2100-01-01" in event.reason


@pytest.mark.parametrize("version", [-1, 2**63, 10**30])
def test_a_version_outside_a_java_long_is_malformed(version: int) -> None:
    event = parse_event(changed(TASK_EC2, ("detail", "version"), version))
    assert isinstance(event, Malformed)
    assert event.reason.startswith(f"{TASK}: detail.version: Input should be")


def test_repeated_container_instance_arns_collapse_to_one_each_in_order() -> None:
    # GIVEN a placement failure naming one instance 2,400 times and another once
    raw = load(PLACEMENT_FAILURE_CPU)
    first = "arn:aws:ecs:us-west-2:111122223333:container-instance/default/2dd1b186f39845a584488d2ef155c131"
    second = "arn:aws:ecs:us-west-2:111122223333:container-instance/default/3dd1b186f39845a584488d2ef155c131"
    raw["detail"]["containerInstanceArns"] = [first] * 1200 + [second] + [first] * 1200
    # WHEN parsed
    event = parse_event(raw)
    # THEN each instance is named once, so it is read and planned once
    assert isinstance(event, ServiceAction)
    assert event.container_instance_arns == (first, second)


def test_a_container_instance_list_longer_than_a_cluster_can_be_is_refused() -> None:
    # GIVEN a placement failure naming more instances than ECS allows in one cluster (5,000)
    detail = load(PLACEMENT_FAILURE_CPU)["detail"]
    detail["containerInstanceArns"] = [
        f"arn:aws:ecs:us-west-2:111122223333:container-instance/default/{i:032x}" for i in range(5001)]
    # WHEN its detail is validated (the whole event would already be over EventBridge's 256 KiB)
    # THEN the list bound refuses it, naming the field
    with pytest.raises(PydanticValidationError) as refused:
        ServiceActionDetailModel.model_validate(detail)
    assert refused.value.errors()[0]["loc"] == ("containerInstanceArns",)
    assert "at most 5000 items" in refused.value.errors()[0]["msg"]


def test_an_event_id_longer_than_a_key_can_be_is_malformed() -> None:
    event = parse_event(changed(TASK_EC2, ("id",), "x" * 129))
    assert event == Malformed("id: String should have at most 128 characters")
