"""Intake routing: which path each event takes, from the event and the configuration alone."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from daemon_guard.adapters.parsing import parse_event
from daemon_guard.core.config import LAUNCH_HOOK_NAME, TERMINATE_HOOK_NAME, Config, ManagedCluster, ManagedGroup
from daemon_guard.core.events import GuardEvent, Malformed, TaskChanged, TestNotification
from daemon_guard.core.intake import Route, route

from tests.unit.conftest import load_event

# The AWS samples name cluster "default" and Auto Scaling group "my-asg".
CONFIG = Config(clusters=(ManagedCluster("default", (ManagedGroup("my-asg", launch_hook=True),)),))
SAMPLE_INSTANCE_ARN = "arn:aws:ecs:us-east-1:111122223333:container-instance/b54a2a04-046f-4331-9d74-3f6d7f6ca315"

CONTAINER_INSTANCE = "ecs-container-instance-state-change.awsdocs-ecs-devguide-2023.json"
TASK_EC2 = "ecs-task-state-change-ec2-launch-type.awsdocs-ecs-devguide-2020.json"
TASK_FARGATE = "ecs-task-state-change-fargate.awsdocs-ecs-devguide-2023.json"
PLACEMENT_FAILURE_EC2 = "ecs-service-action-placement-failure-ec2-resource-cpu.awsdocs-ecs-devguide-2023.json"
PLACEMENT_FAILURE_FARGATE = "ecs-service-action-placement-failure-fargate-spot.awsdocs-ecs-devguide-2023.json"
STEADY_STATE = "ecs-service-action-service-steady-state.awsdocs-ecs-devguide-2023.json"
DEPLOYMENT = "ecs-deployment-state-change-completed.awsdocs-ecs-devguide-2023.json"
LAUNCH = "asg-launch-lifecycle-action-ec2-to-asg.awsdocs-asg-userguide-2023.json"
LAUNCH_TO_WARM_POOL = "asg-launch-lifecycle-action-warmpool-ec2-to-warmpool.awsdocs-asg-userguide-2023.json"
TERMINATE_TO_WARM_POOL = "asg-terminate-lifecycle-action-asg-to-warmpool.awsdocs-asg-userguide-2023.json"
TERMINATE_NTH = "asg-instance-terminate-lifecycle-action.aws-node-termination-handler.json"
TERMINATE_DOCS = "asg-instance-terminate-lifecycle-action.awsdocs-asg-userguide-2023.json"
SPOT = "ec2-spot-instance-interruption-warning.aws-node-termination-handler.json"
REBALANCE = "ec2-instance-rebalance-recommendation.aws-node-termination-handler.json"


def sample(name: str, **detail: Any) -> GuardEvent:
    """A real sample, parsed, with `detail` fields overridden (e.g. our hook's name)."""
    raw = load_event(name)
    if name == SPOT:
        raw["time"] = "2024-05-01T12:00:00Z"  # NTH's sample is dated 1970: Malformed as it stands
    raw["detail"].update(detail)
    return parse_event(raw)


def ours(name: str, hook: str) -> GuardEvent:
    """A lifecycle sample on the managed group with daemon-guard's hook."""
    return sample(name, AutoScalingGroupName="my-asg", LifecycleHookName=hook)


def task(last: str, desired: str, **changes: Any) -> GuardEvent:
    """The EC2 task sample in another state."""
    event = sample(TASK_EC2)
    assert isinstance(event, TaskChanged)
    return replace(event, last_status=last, desired_status=desired, **changes)


ROUTES: list[Any] = [
    # ---- container instances
    pytest.param(sample(CONTAINER_INSTANCE), "placement", "container instance ACTIVE", id="new ACTIVE instance"),
    pytest.param(sample(CONTAINER_INSTANCE, status="DRAINING"), "drain", "set to DRAINING",
                 id="instance someone set DRAINING: order its daemons"),
    pytest.param(sample(CONTAINER_INSTANCE, agentConnected=False), "ignore", "agent disconnected",
                 id="agent disconnected"),
    pytest.param(sample(CONTAINER_INSTANCE, clusterArn="arn:aws:ecs:us-east-1:111122223333:cluster/other"),
                 "ignore", "cluster other is not managed", id="instance of a foreign cluster"),
    # ---- tasks
    pytest.param(sample(TASK_EC2), "placement", "RUNNING", id="task RUNNING: check the instance"),
    pytest.param(task("PENDING", "RUNNING"), "placement", "PENDING", id="task PENDING: check the instance"),
    pytest.param(task("STOPPED", "STOPPED"), "wake", "STOPPED", id="task STOPPED: wake the waiting workflow"),
    pytest.param(task("RUNNING", "STOPPED"), "ignore", "stopping", id="task stopping: act once it has STOPPED"),
    pytest.param(sample(TASK_FARGATE), "ignore", "not managed", id="task of a foreign (Fargate) cluster"),
    pytest.param(task("RUNNING", "RUNNING", container_instance_arn=None), "ignore", "not on an EC2",
                 id="task on no container instance"),
    # ---- service actions
    pytest.param(sample(PLACEMENT_FAILURE_EC2), "placement", "could not be placed (RESOURCE:CPU)",
                 id="placement failure naming instances: check them"),
    pytest.param(sample(PLACEMENT_FAILURE_EC2, containerInstanceArns=[]), "reconcile", "could not be placed",
                 id="EC2 placement failure naming no instance: audit the cluster"),
    pytest.param(sample(PLACEMENT_FAILURE_FARGATE), "ignore", "Fargate",
                 id="Fargate capacity failure: no daemon runs on Fargate"),
    pytest.param(sample(STEADY_STATE), "ignore", "SERVICE_STEADY_STATE needs nothing", id="steady state"),
    # ---- lifecycle actions
    pytest.param(ours(LAUNCH, LAUNCH_HOOK_NAME), "launch-gate", "launch lifecycle action", id="launch"),
    pytest.param(ours(LAUNCH_TO_WARM_POOL, LAUNCH_HOOK_NAME), "launch-gate", "warm pool: complete at once",
                 id="launch into the warm pool"),
    pytest.param(ours(TERMINATE_NTH, TERMINATE_HOOK_NAME), "drain", "terminate lifecycle action", id="terminate"),
    pytest.param(ours(TERMINATE_TO_WARM_POOL, TERMINATE_HOOK_NAME), "drain", "returning to the warm pool",
                 id="terminate back to the warm pool"),
    pytest.param(sample(LAUNCH), "ignore", "my-launch-lifecycle-hook is not daemon-guard's",
                 id="someone else's launch hook"),
    pytest.param(sample(TERMINATE_TO_WARM_POOL), "ignore", "is not daemon-guard's", id="someone else's terminate hook"),
    pytest.param(sample(TERMINATE_NTH), "ignore", "testt1.demo-0a20f32c.kops.sh is not managed",
                 id="foreign Auto Scaling group"),
    pytest.param(TestNotification(account="1", region="us-west-2", asg_name="my-asg", event_id="e"), "ignore",
                 "TEST_NOTIFICATION", id="TEST_NOTIFICATION"),
    # ---- EC2
    pytest.param(sample(SPOT), "drain", "Spot interruption warning", id="Spot interruption"),
    pytest.param(sample(REBALANCE), "drain", "rebalance recommendation", id="rebalance recommendation"),
    # ---- everything else
    pytest.param(sample(DEPLOYMENT), "ignore", "deployments", id="a kind the guard does not act on"),
    pytest.param(sample(TERMINATE_DOCS), "ignore", "malformed: time", id="documentation placeholder: malformed"),
    pytest.param(parse_event({"detail-type": 42}), "ignore", "malformed", id="garbage: malformed"),
    pytest.param(Malformed("detail.clusterArn: missing"), "ignore", "malformed: detail.clusterArn",
                 id="malformed names the field at fault"),
]


@pytest.mark.parametrize(("event", "kind", "words"), ROUTES)
def test_each_event_takes_its_route_with_a_reason(event: GuardEvent, kind: str, words: str) -> None:
    # GIVEN a parsed event and a config managing cluster "default" and group "my-asg"
    # WHEN it is routed
    routed = route(event, CONFIG)
    # THEN it takes the expected route, and the one-line reason says why
    assert routed.kind == kind
    assert words in routed.reason
    assert "\n" not in routed.reason


def test_a_route_carries_what_its_path_needs() -> None:
    # GIVEN a new ACTIVE instance, a terminate lifecycle action and a Spot warning
    # WHEN routed / THEN each route names the cluster, instance and trigger its path reads
    assert route(sample(CONTAINER_INSTANCE), CONFIG) == Route(
        "placement", "container instance ACTIVE", "default", (SAMPLE_INSTANCE_ARN,), "i-f3a8506b",
        dedupe_key=f"{SAMPLE_INSTANCE_ARN}#v14801")
    terminate = route(ours(TERMINATE_NTH, TERMINATE_HOOK_NAME), CONFIG)
    assert (terminate.cluster, terminate.trigger, terminate.ec2_instance_id) == ("default", "lifecycle",
                                                                                  "i-0633ac2b0d9769723")
    spot = route(sample(SPOT), CONFIG)
    assert (spot.trigger, spot.ec2_instance_id) == ("spot", "i-0b662ef9931388ba0")
    assert route(task("STOPPED", "STOPPED"), CONFIG).instance_arns == (SAMPLE_INSTANCE_ARN,)
