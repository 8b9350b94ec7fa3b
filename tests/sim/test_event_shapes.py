"""Events the simulator emits have the exact JSON shapes of AWS's real samples."""

from __future__ import annotations

import json
import random
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sim import event_shapes as shapes
from sim.event_shapes import Resources, TaskContainer
from sim.eventbridge import matches

ENVELOPE_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
ECS_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

T0 = datetime(2026, 1, 5, 8, 0, 0, 250000, tzinfo=UTC)
ACCOUNT = "111122223333"
REGION = "us-east-1"
CLUSTER = f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/default"
CONTAINER_INSTANCE = f"arn:aws:ecs:{REGION}:{ACCOUNT}:container-instance/default/b54a2a04046f4331"
TASK = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/default/b99d40b351764f71"
SERVICE = f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/default/servicetest"
ASG_ARN = (
    f"arn:aws:autoscaling:{REGION}:{ACCOUNT}:autoScalingGroup:042cba90-ad2f-431c-9b4d-6d9055bcc9fb"
    ":autoScalingGroupName/my-asg"
)

# Fields current container-instance events carry that the 2023 sample predates (README).
NEWER_CONTAINER_INSTANCE_FIELDS = {
    "detail.registeredAt",
    "detail.runningTasksCount",
    "detail.pendingTasksCount",
    "detail.agentUpdateStatus",
}


def _events_dir() -> Path:
    """The fixtures copy of the samples, else the shared originals."""
    here = Path(__file__).resolve()
    fixtures = here.parents[1] / "fixtures" / "events"
    return fixtures if fixtures.is_dir() else here.parents[3] / "shared" / "events"


def _sample(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((_events_dir() / name).read_text())
    return loaded


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _counterpart(sample: list[Any], element: Any) -> Any:
    """The sample element to compare `element` with: the one of the same `name`, else the first."""
    if isinstance(element, dict) and "name" in element:
        for candidate in sample:
            if isinstance(candidate, dict) and candidate.get("name") == element["name"]:
                return candidate
    return sample[0]


def shape_differences(sample: Any, built: Any, extras: set[str], path: str = "") -> list[str]:
    """Every place where `built` departs from `sample`'s keys or JSON types (extras are allowed)."""
    here = path or "<root>"
    if _json_type(sample) != _json_type(built):
        return [f"{here}: {_json_type(built)} instead of {_json_type(sample)}"]
    found: list[str] = []
    if isinstance(sample, dict):
        for key in sample.keys() - built.keys():
            found.append(f"{path}.{key}".lstrip(".") + ": missing")
        for key in built.keys() - sample.keys():
            if f"{path}.{key}".lstrip(".") not in extras:
                found.append(f"{path}.{key}".lstrip(".") + ": not in the sample")
        for key in sample.keys() & built.keys():
            found += shape_differences(sample[key], built[key], extras, f"{path}.{key}".lstrip("."))
    elif isinstance(sample, list) and sample:
        for element in built:
            found += shape_differences(_counterpart(sample, element), element, extras, f"{path}[]")
    return found


def _at(event: dict[str, Any], path: str) -> Any:
    value: Any = event
    for key in path.split("."):
        value = value[key]
    return value


@dataclass(frozen=True)
class Case:
    """A builder call, the sample it must look like, and what must equal the sample."""

    build: Callable[[random.Random], dict[str, Any]]
    sample: str
    extras: frozenset[str] = frozenset()
    fixed: tuple[str, ...] = ()
    ecs_timestamps: tuple[str, ...] = field(default=())


def _container_instance(rng: random.Random) -> dict[str, Any]:
    return shapes.container_instance_state_change(
        rng=rng,
        time=T0,
        cluster_arn=CLUSTER,
        container_instance_arn=CONTAINER_INSTANCE,
        ec2_instance_id="i-0123456789abcdef0",
        registered=Resources(cpu=2048, memory=3767),
        remaining=Resources(cpu=1988, memory=767),
        attributes={
            "com.amazonaws.ecs.capability.task-iam-role": None,
            "ecs.capability.execution-role": None,
        },
        version=14801,
        running_tasks_count=1,
        pending_tasks_count=0,
    )


def _task(rng: random.Random) -> dict[str, Any]:
    return shapes.task_state_change(
        rng=rng,
        time=T0,
        cluster_arn=CLUSTER,
        task_arn=TASK,
        task_definition_arn=f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/xray:2",
        container_instance_arn=CONTAINER_INSTANCE,
        containers=[TaskContainer("xray", f"arn:aws:ecs:{REGION}:{ACCOUNT}:container/3305", "STOPPED", 0)],
        last_status="RUNNING",
        desired_status="RUNNING",
        group="task-group",
        started_by="ecs-svc/9223370556150183303",
        version=4,
        created_at=T0,
        started_at=T0,
    )


def _service_action(
    event_type: str, event_name: str, **kwargs: Any
) -> Callable[[random.Random], dict[str, Any]]:
    def build(rng: random.Random) -> dict[str, Any]:
        return shapes.service_action(
            rng=rng,
            time=T0,
            cluster_arn=CLUSTER,
            service_arn=SERVICE,
            event_type=event_type,
            event_name=event_name,
            **kwargs,
        )

    return build


def _lifecycle(
    transition: shapes.LifecycleTransition, **kwargs: Any
) -> Callable[[random.Random], dict[str, Any]]:
    def build(rng: random.Random) -> dict[str, Any]:
        return shapes.lifecycle_action(
            transition,
            rng=rng,
            time=T0,
            asg_name="my-asg",
            asg_arn=ASG_ARN,
            hook_name="daemon-guard-hook",
            instance_id="i-0123456789abcdef0",
            notification_metadata="additional-info",
            **kwargs,
        )

    return build


def _spot(rng: random.Random) -> dict[str, Any]:
    return shapes.spot_interruption_warning(rng=rng, time=T0, instance_id="i-0123456789abcdef0")


def _rebalance(rng: random.Random) -> dict[str, Any]:
    return shapes.rebalance_recommendation(rng=rng, time=T0, instance_id="i-0123456789abcdef0")


ENVELOPE_FIXED = ("version", "source", "detail-type")
PLACEMENT_FAILURE = "SERVICE_TASK_PLACEMENT_FAILURE"
LIFECYCLE_FIXED = (*ENVELOPE_FIXED, "detail.LifecycleTransition", "detail.Origin", "detail.Destination")

CASES: dict[str, Case] = {
    "container instance state change": Case(
        _container_instance,
        "ecs-container-instance-state-change.awsdocs-ecs-devguide-2023.json",
        extras=frozenset(NEWER_CONTAINER_INSTANCE_FIELDS),
        fixed=(*ENVELOPE_FIXED, "detail.status", "detail.agentConnected"),
        ecs_timestamps=("detail.updatedAt", "detail.registeredAt"),
    ),
    "task state change (EC2)": Case(
        _task,
        "ecs-task-state-change-ec2-launch-type.awsdocs-ecs-devguide-2020.json",
        fixed=(*ENVELOPE_FIXED, "detail.lastStatus", "detail.desiredStatus"),
        ecs_timestamps=("detail.createdAt", "detail.startedAt", "detail.updatedAt"),
    ),
    "service action: placement failure (EC2)": Case(
        _service_action(
            "ERROR", PLACEMENT_FAILURE, reason="RESOURCE:CPU", container_instance_arns=[CONTAINER_INSTANCE]
        ),
        "ecs-service-action-placement-failure-ec2-resource-cpu.awsdocs-ecs-devguide-2023.json",
        fixed=(*ENVELOPE_FIXED, "detail.eventType", "detail.eventName", "detail.reason"),
        ecs_timestamps=("detail.createdAt",),
    ),
    "service action: placement failure (capacity provider)": Case(
        _service_action(
            "ERROR",
            PLACEMENT_FAILURE,
            reason="RESOURCE:FARGATE",
            capacity_provider_arns=[f"arn:aws:ecs:{REGION}:{ACCOUNT}:capacity-provider/FARGATE_SPOT"],
        ),
        "ecs-service-action-placement-failure-fargate-spot.awsdocs-ecs-devguide-2023.json",
        fixed=(*ENVELOPE_FIXED, "detail.eventType", "detail.eventName", "detail.reason"),
    ),
    "service action: capacity provider steady state": Case(
        _service_action(
            "INFO",
            "CAPACITY_PROVIDER_STEADY_STATE",
            capacity_provider_arns=[f"arn:aws:ecs:{REGION}:{ACCOUNT}:capacity-provider/cp"],
        ),
        "ecs-service-action-capacity-provider-steady-state.awsdocs-ecs-devguide-2023.json",
        fixed=(*ENVELOPE_FIXED, "detail.eventType", "detail.eventName"),
    ),
    "service action: steady state": Case(
        _service_action("INFO", "SERVICE_STEADY_STATE"),
        "ecs-service-action-service-steady-state.awsdocs-ecs-devguide-2023.json",
        fixed=(*ENVELOPE_FIXED, "detail.eventType", "detail.eventName"),
    ),
    "service action: task start impaired": Case(
        _service_action("WARN", "SERVICE_TASK_START_IMPAIRED"),
        "ecs-service-action-service-task-start-impaired.awsdocs-ecs-devguide-2023.json",
        fixed=(*ENVELOPE_FIXED, "detail.eventType", "detail.eventName"),
    ),
    "lifecycle action: launch": Case(
        _lifecycle("launch"),
        "asg-launch-lifecycle-action-ec2-to-asg.awsdocs-asg-userguide-2023.json",
        fixed=LIFECYCLE_FIXED,
    ),
    "lifecycle action: launch into the warm pool": Case(
        _lifecycle("launch", destination="WarmPool"),
        "asg-launch-lifecycle-action-warmpool-ec2-to-warmpool.awsdocs-asg-userguide-2023.json",
        fixed=LIFECYCLE_FIXED,
    ),
    "lifecycle action: launch from the warm pool": Case(
        _lifecycle("launch", origin="WarmPool"),
        "asg-launch-lifecycle-action-warmpool-to-asg.awsdocs-asg-userguide-2023.json",
        fixed=LIFECYCLE_FIXED,
    ),
    "lifecycle action: terminate into the warm pool": Case(
        _lifecycle("terminate", destination="WarmPool"),
        "asg-terminate-lifecycle-action-asg-to-warmpool.awsdocs-asg-userguide-2023.json",
        fixed=LIFECYCLE_FIXED,
    ),
    "spot interruption warning": Case(
        _spot,
        "ec2-spot-instance-interruption-warning.aws-node-termination-handler.json",
        fixed=(*ENVELOPE_FIXED, "detail.instance-action"),
    ),
    "spot interruption warning (docs)": Case(
        _spot, "ec2-spot-instance-interruption-warning.awsdocs-ec2-userguide.json", fixed=ENVELOPE_FIXED
    ),
    "rebalance recommendation": Case(
        _rebalance,
        "ec2-instance-rebalance-recommendation.aws-node-termination-handler.json",
        fixed=ENVELOPE_FIXED,
    ),
    "AWS Health EC2 scheduled change": Case(
        lambda rng: shapes.health_scheduled_change(
            rng=rng, time=T0, start_time=T0, instance_tags={"i-12345678": {"stage": "prod", "app": "my-app"}},
            event_type_code="AWS_EC2_DEDICATED_HOST_NETWORK_MAINTENANCE_SCHEDULED"),
        "aws-health-ec2-scheduled-change.aws-node-termination-handler.json",
        extras=frozenset({"detail.statusCode", "detail.eventRegion", "detail.eventScopeCode",
                          "detail.lastUpdatedTime"}),
        fixed=("source", "detail-type", "detail.service", "detail.eventTypeCategory", "detail.eventTypeCode",
               "detail.eventDescription", "detail.affectedEntities", "resources"),
    ),
    "EC2 instance state change": Case(
        lambda rng: shapes.instance_state_change(rng=rng, time=T0, instance_id="i-abcd1111", state="pending"),
        "ec2-instance-state-change-notification.aws-node-termination-handler.json",
        fixed=(*ENVELOPE_FIXED, "detail"),
    ),
    "rebalance recommendation (docs)": Case(
        _rebalance, "ec2-instance-rebalance-recommendation.awsdocs-ec2-userguide.json", fixed=ENVELOPE_FIXED
    ),
}


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_built_event_has_the_keys_and_json_types_of_the_real_sample(case: Case) -> None:
    # GIVEN a real sample and the builder of that kind
    sample = _sample(case.sample)
    # WHEN the builder makes an event
    built = case.build(random.Random(1))
    # THEN it has the sample's keys and JSON types at every depth, and only the allowed extras
    assert shape_differences(sample, built, set(case.extras)) == []
    # AND the allowed extras are all there
    assert all(_at(built, extra) is not None for extra in case.extras)


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_built_event_carries_the_samples_fixed_values(case: Case) -> None:
    # GIVEN a real sample and the builder of that kind
    sample = _sample(case.sample)
    # WHEN the builder makes an event
    built = case.build(random.Random(1))
    # THEN the enum-like values agree with the sample
    assert {p: _at(built, p) for p in case.fixed} == {p: _at(sample, p) for p in case.fixed}


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_built_event_writes_times_in_eventbridge_and_ecs_formats(case: Case) -> None:
    # GIVEN a builder
    # WHEN it makes an event
    built = case.build(random.Random(1))
    # THEN the envelope time has whole seconds and ECS detail timestamps have milliseconds
    assert ENVELOPE_TIME.match(built["time"])
    assert built["time"] == "2026-01-05T08:00:00Z"
    for path in case.ecs_timestamps:
        assert _at(built, path) == "2026-01-05T08:00:00.250Z"


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_built_event_survives_a_json_round_trip(case: Case) -> None:
    # GIVEN a built event
    built = case.build(random.Random(1))
    # WHEN it is serialised and parsed as a Lambda would receive it
    parsed = json.loads(json.dumps(built))
    # THEN nothing changes
    assert parsed == built


def test_ids_are_uuids_drawn_from_the_seeded_rng() -> None:
    # GIVEN two generators with the same seed and one with another
    # WHEN each builds three events
    def ids(seed: int) -> list[str]:
        rng = random.Random(seed)
        return [_spot(rng)["id"] for _ in range(3)]

    first, again, other = ids(11), ids(11), ids(12)
    # THEN the same seed gives the same version-4 UUIDs, all distinct, and another seed others
    assert first == again
    assert first != other
    assert len(set(first)) == 3
    assert all(uuid.UUID(i).version == 4 for i in first)


def test_stopped_task_carries_stop_fields_and_only_timestamps_that_were_reached() -> None:
    # GIVEN a task stopped by the service scheduler
    stopped = shapes.task_state_change(
        rng=random.Random(1),
        time=T0,
        cluster_arn=CLUSTER,
        task_arn=TASK,
        task_definition_arn=f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/app:7",
        container_instance_arn=CONTAINER_INSTANCE,
        containers=[TaskContainer("app", f"{TASK}/app", "STOPPED", exit_code=143, reason="SIGTERM")],
        last_status="STOPPED",
        desired_status="STOPPED",
        group="service:app",
        started_by="ecs-svc/1",
        version=6,
        created_at=T0,
        stopping_at=T0,
        stopped_at=T0,
        stopped_reason="Scaling activity initiated by (deployment ecs-svc/1)",
        stop_code="ServiceSchedulerInitiated",
    )
    detail = stopped["detail"]
    # WHEN its detail is read
    # THEN the stop fields are strings, the reached timestamps are ECS times, unreached ones absent
    assert detail["stopCode"] == "ServiceSchedulerInitiated"
    assert isinstance(detail["stoppedReason"], str)
    assert ECS_TIME.match(detail["stoppingAt"]) and ECS_TIME.match(detail["stoppedAt"])
    assert "startedAt" not in detail and "pullStartedAt" not in detail
    assert detail["containers"][0]["exitCode"] == 143
    assert detail["containers"][0]["reason"] == "SIGTERM"


def test_running_task_has_no_stop_fields() -> None:
    # GIVEN a running task
    # WHEN it is built without stop data
    detail = _task(random.Random(1))["detail"]
    # THEN no stop field is present, not even as null
    assert not {"stoppingAt", "stoppedAt", "stoppedReason", "stopCode"} & detail.keys()


def test_container_instance_attributes_with_values_carry_them() -> None:
    # GIVEN an attribute with a value and one without
    event = shapes.container_instance_state_change(
        rng=random.Random(1),
        time=T0,
        cluster_arn=CLUSTER,
        container_instance_arn=CONTAINER_INSTANCE,
        ec2_instance_id="i-1",
        registered=Resources(2048, 4096),
        remaining=Resources(2048, 4096),
        attributes={"ecs.capability.secrets": None, "ecs.instance-type": "m7g.large"},
        status="DRAINING",
    )
    # WHEN the attributes are read
    # THEN each carries a value only when it has one
    assert event["detail"]["attributes"] == [
        {"name": "ecs.capability.secrets"},
        {"name": "ecs.instance-type", "value": "m7g.large"},
    ]
    assert event["detail"]["status"] == "DRAINING"


@pytest.mark.parametrize(
    ("transition", "expected"),
    [
        ("launch", ("autoscaling:EC2_INSTANCE_LAUNCHING", "EC2", "AutoScalingGroup")),
        ("terminate", ("autoscaling:EC2_INSTANCE_TERMINATING", "AutoScalingGroup", "EC2")),
    ],
)
def test_lifecycle_action_defaults_follow_the_transition(
    transition: shapes.LifecycleTransition, expected: tuple[str, str, str]
) -> None:
    # GIVEN a plain scale-out or scale-in
    # WHEN its lifecycle action is built without metadata
    event = shapes.lifecycle_action(
        transition,
        rng=random.Random(1),
        time=T0,
        asg_name="my-asg",
        asg_arn=ASG_ARN,
        hook_name="h",
        instance_id="i-1",
    )
    detail = event["detail"]
    # THEN transition, origin and destination follow, a token is drawn, metadata is absent
    assert (detail["LifecycleTransition"], detail["Origin"], detail["Destination"]) == expected
    assert uuid.UUID(detail["LifecycleActionToken"])
    assert "NotificationMetadata" not in detail


def test_built_events_match_the_narrow_rules_daemon_guard_would_deploy() -> None:
    # GIVEN rules narrowed to our cluster and our Auto Scaling group
    cluster_rule = {"source": ["aws.ecs"], "detail": {"clusterArn": [CLUSTER]}}
    asg_rule = {
        "source": ["aws.autoscaling"],
        "detail-type": [shapes.LAUNCH_LIFECYCLE_ACTION, shapes.TERMINATE_LIFECYCLE_ACTION],
        "detail": {"AutoScalingGroupName": ["my-asg"]},
    }
    rng = random.Random(1)
    # WHEN built events are tested against them
    # THEN each kind reaches its rule and not the other
    for event in (_container_instance(rng), _task(rng), _service_action("INFO", "SERVICE_STEADY_STATE")(rng)):
        assert matches(cluster_rule, event) and not matches(asg_rule, event)
    for event in (_lifecycle("launch")(rng), _lifecycle("terminate")(rng)):
        assert matches(asg_rule, event) and not matches(cluster_rule, event)
