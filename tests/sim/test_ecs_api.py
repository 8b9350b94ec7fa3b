"""The simulated ECS API as boto3 sees it: every operation, the real limits, errors and throttling."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from sim.wire import ValidatingBackend, make_client
from tests.sim.conftest import (
    CLUSTER,
    Busy,
    add_daemon,
    add_instance,
    add_replicas,
    add_task_definition,
    advance_until,
    busy_world,
    new_world,
    running,
    tasks_of,
)

Client = Any


@pytest.fixture(scope="module")
def busy() -> Busy:
    """One populated cluster for the read-only tests of this module (they must not change it)."""
    return busy_world()


@pytest.fixture
def fresh() -> Busy:
    """A populated cluster a test may change."""
    return busy_world()


def _ecs(busy: Busy) -> Client:
    return busy.world.client("ecs")


def _error(call: Callable[[], Any]) -> tuple[str, str]:
    with pytest.raises(ClientError) as caught:
        call()
    err = caught.value.response["Error"]
    return err["Code"], err["Message"]


def _all_task_arns(busy: Busy) -> list[str]:
    return [t.arn for t in busy.world.ecs.tasks.values() if t.cluster == CLUSTER]


# ---- container instances ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("params", "expected"), [
    ({}, [0, 1, 2]),
    ({"status": "ACTIVE"}, [0, 1]),
    ({"status": "DRAINING"}, [2]),
    ({"filter": "attribute:gate == open"}, [0]),
    ({"filter": "attribute:ecs.availability-zone in [us-east-1b, us-east-1c]"}, [1, 2]),
    ({"filter": "attribute:ecs.availability-zone != us-east-1a", "status": "ACTIVE"}, [1]),
    ({"filter": "attribute:gate !exists"}, [1, 2]),
    ({"filter": "task:group == service:worker"}, [0]),
])
def test_list_container_instances_honours_filter_and_status(
        busy: Busy, params: dict[str, str], expected: list[int]) -> None:
    # GIVEN three instances: gated open in 1a, plain in 1b, DRAINING in 1c
    # WHEN listing with a cluster query and/or a status
    out = _ecs(busy).list_container_instances(cluster=CLUSTER, **params)
    # THEN exactly the matching instances come back
    assert sorted(out["containerInstanceArns"]) == sorted(busy.instances[i].arn for i in expected)


def test_list_container_instances_rejects_a_malformed_filter(busy: Busy) -> None:
    # GIVEN / WHEN a filter that is not cluster query language / THEN ECS's error
    malformed = "attribute:gate == open and ("
    code, _ = _error(lambda: _ecs(busy).list_container_instances(cluster=CLUSTER, filter=malformed))
    assert code == "InvalidParameterException"


def test_describe_container_instances_reports_state_resources_and_attributes(busy: Busy) -> None:
    # GIVEN the gated instance, its tasks and an ARN that does not exist
    gated = busy.instances[0]
    missing = gated.arn[:-4] + "ffff"

    # WHEN described
    out = _ecs(busy).describe_container_instances(cluster=CLUSTER, containerInstances=[gated.arn, missing])

    # THEN the instance comes back as ECS shows it, and the unknown one as a MISSING failure
    (described,) = out["containerInstances"]
    live = busy.world.ecs.live_tasks(gated)
    remaining = {r["name"]: r for r in described["remainingResources"]}
    registered = {r["name"]: r for r in described["registeredResources"]}
    assert described["ec2InstanceId"] == gated.ec2_instance_id
    assert (described["status"], described["agentConnected"]) == ("ACTIVE", True)
    assert {"name": "gate", "value": "open"} in described["attributes"]
    assert described["runningTasksCount"] + described["pendingTasksCount"] == len(live)
    assert registered["CPU"]["integerValue"] == 4096
    assert remaining["CPU"]["integerValue"] == 4096 - sum(busy.world.ecs.task_defs[t.task_definition].cpu
                                                          for t in live)
    assert "24224" in remaining["PORTS"]["stringSetValue"]
    assert out["failures"] == [{"arn": missing, "reason": "MISSING"}]


# ---- services and task definitions ------------------------------------------------------------------------


@pytest.mark.parametrize(("strategy", "expected"), [
    (None, {"fluent-bit", "api", "worker"}),
    ("DAEMON", {"fluent-bit"}),
    ("REPLICA", {"api", "worker"}),
])
def test_list_services_filters_by_scheduling_strategy(busy: Busy, strategy: str | None, expected: set[str]) -> None:
    # GIVEN one daemon and two replica services / WHEN listed by scheduling strategy
    params = {"schedulingStrategy": strategy} if strategy else {}
    arns = _ecs(busy).list_services(cluster=CLUSTER, **params)["serviceArns"]
    # THEN only services of that strategy
    assert {arn.rsplit("/", 1)[-1] for arn in arns} == expected


@pytest.mark.parametrize(("include", "tags"), [
    ([], None),
    (["TAGS"], [{"key": "daemon-guard:drain-tier", "value": "log-router"}]),
])
def test_describe_services_returns_tags_only_when_asked(
        busy: Busy, include: list[str], tags: list[dict[str, str]] | None) -> None:
    # GIVEN a tagged daemon service / WHEN described with or without include=TAGS
    (svc,) = _ecs(busy).describe_services(cluster=CLUSTER, services=["fluent-bit"], include=include)["services"]
    # THEN tags appear only when asked for, beside the scheduling strategy and counts
    assert svc.get("tags") == tags
    assert svc["schedulingStrategy"] == "DAEMON"
    assert svc["runningCount"] == len(running(busy.world, "service:fluent-bit"))


def test_describe_services_reports_deployment_configuration_and_counts(busy: Busy) -> None:
    # GIVEN the api service (6 desired, 50 % minimum healthy) mid-drain
    out = _ecs(busy).describe_services(cluster=CLUSTER, services=[busy.api_arn, "nope"])
    (svc,) = out["services"]
    # THEN its counts and limits are ECS's, and an unknown name is a MISSING failure
    live = [t for t in tasks_of(busy.world, "service:api") if t.desired_status == "RUNNING"]
    assert svc["desiredCount"] == 6
    assert svc["deploymentConfiguration"] == {"maximumPercent": 200, "minimumHealthyPercent": 50}
    assert svc["runningCount"] + svc["pendingCount"] == len(live)
    assert out["failures"] == [{"arn": "nope", "reason": "MISSING"}]


def test_list_tags_for_resource_returns_a_services_tags(busy: Busy) -> None:
    # GIVEN / WHEN the daemon service's tags are listed / THEN they are the tags it was created with
    tags = _ecs(busy).list_tags_for_resource(resourceArn=busy.daemon_arn)["tags"]
    assert tags == [{"key": "daemon-guard:drain-tier", "value": "log-router"}]


@pytest.mark.parametrize("ref", ["batch", "batch:1", "arn"])
def test_describe_task_definition_by_family_revision_or_arn(busy: Busy, ref: str) -> None:
    # GIVEN the standalone task definition / WHEN described by family, family:revision or ARN
    out = _ecs(busy).describe_task_definition(taskDefinition=busy.batch_td if ref == "arn" else ref)
    # THEN it is the same revision, with its containers' requirements
    td = out["taskDefinition"]
    assert (td["taskDefinitionArn"], td["family"], td["revision"]) == (busy.batch_td, "batch", 1)
    assert td["containerDefinitions"][0]["cpu"] == 128


def test_describe_task_definition_of_an_unknown_family_is_a_client_exception(busy: Busy) -> None:
    code, _ = _error(lambda: _ecs(busy).describe_task_definition(taskDefinition="nope:3"))
    assert code == "ClientException"


# ---- tasks ------------------------------------------------------------------------------------------------


def _expected_tasks(busy: Busy, selector: str) -> set[str]:
    tasks = [t for t in busy.world.ecs.tasks.values() if t.cluster == CLUSTER]
    drained = busy.instances[2].arn
    return {t.arn for t in tasks if {
        "default": t.desired_status == "RUNNING",
        "instance": t.desired_status == "RUNNING" and t.container_instance == drained,
        "service": t.desired_status == "RUNNING" and t.group == "service:api",
        "stopped": t.desired_status == "STOPPED",
        "stopped-service": t.desired_status == "STOPPED" and t.group == "service:api",
        "started-by": t.desired_status == "RUNNING" and t.started_by == "nightly",
        "pending": False,  # ECS never sets a task's desired status to PENDING
    }[selector]}


@pytest.mark.parametrize(("params", "selector"), [
    ({}, "default"),
    ({"containerInstance": "DRAINED"}, "instance"),
    ({"serviceName": "api"}, "service"),
    ({"desiredStatus": "STOPPED"}, "stopped"),
    ({"serviceName": "api", "desiredStatus": "STOPPED"}, "stopped-service"),
    ({"startedBy": "nightly"}, "started-by"),
    ({"desiredStatus": "PENDING"}, "pending"),
])
def test_list_tasks_filters_as_ecs_does(busy: Busy, params: dict[str, str], selector: str) -> None:
    # GIVEN tasks in every status on three instances / WHEN listed with a filter
    if params.get("containerInstance") == "DRAINED":
        params = {**params, "containerInstance": busy.instances[2].arn}
    pages = _ecs(busy).get_paginator("list_tasks").paginate(cluster=CLUSTER, **params)
    listed = [arn for page in pages for arn in page["taskArns"]]
    # THEN exactly the tasks ECS would list, each once
    assert len(listed) == len(set(listed))
    assert set(listed) == _expected_tasks(busy, selector)


def test_list_tasks_pages_with_next_token(busy: Busy) -> None:
    # GIVEN more RUNNING tasks than one page of 3
    ecs = _ecs(busy)
    expected = _expected_tasks(busy, "default")
    assert len(expected) > 3

    # WHEN paging by hand
    seen: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        out = ecs.list_tasks(cluster=CLUSTER, maxResults=3, **({"nextToken": token} if token else {}))
        seen += out["taskArns"]
        pages += 1
        token = out.get("nextToken")
        if token is None:
            break

    # THEN every page but the last is full and together they list each task once
    assert pages == -(-len(expected) // 3)
    assert sorted(seen) == sorted(expected)


def test_list_services_pages_ten_at_a_time_by_default() -> None:
    # GIVEN a cluster with 12 services
    world = new_world(throttling=False)
    world.ecs.create_cluster(CLUSTER)
    for i in range(12):
        add_replicas(world, f"svc-{i:02d}", 0)
    ecs = world.client("ecs")

    # WHEN listed without maxResults
    first = ecs.list_services(cluster=CLUSTER)
    second = ecs.list_services(cluster=CLUSTER, nextToken=first["nextToken"])

    # THEN ten come first, then the rest
    assert len(first["serviceArns"]) == 10
    assert len(second["serviceArns"]) == 2
    assert "nextToken" not in second


def test_describe_tasks_reports_each_status_as_ecs_does(busy: Busy) -> None:
    # GIVEN tasks in PROVISIONING, RUNNING, stopping and STOPPED
    arns = _all_task_arns(busy)
    # WHEN described (100 at most per call)
    described = {t["taskArn"]: t for t in _ecs(busy).describe_tasks(cluster=CLUSTER, tasks=arns)["tasks"]}
    # THEN each carries the timestamps its status implies
    assert set(described) == set(arns)
    seen = set()
    for arn in arns:
        task, out = busy.world.ecs.tasks[arn], described[arn]
        seen.add((out["lastStatus"], out["desiredStatus"]))
        assert out["group"] == task.group
        assert out["containerInstanceArn"] == task.container_instance
        assert ("startedAt" in out) == (task.started_at is not None)
        assert ("stoppingAt" in out) == (task.desired_status == "STOPPED")
        assert ("stoppedAt" in out) == (out["lastStatus"] == "STOPPED")
    assert {("PROVISIONING", "RUNNING"), ("RUNNING", "RUNNING"), ("RUNNING", "STOPPED"),
            ("STOPPED", "STOPPED")} <= seen


def test_stop_task_returns_the_task_with_desired_status_stopped(fresh: Busy) -> None:
    # GIVEN a RUNNING standalone task
    (task,) = running(fresh.world, "family:batch")
    # WHEN stopped with a reason
    out = _ecs(fresh).stop_task(cluster=CLUSTER, task=task.arn, reason="maintenance")["task"]
    # THEN ECS answers at once with desired STOPPED, and the task stops shortly after
    assert (out["lastStatus"], out["desiredStatus"], out["stoppedReason"]) == ("RUNNING", "STOPPED", "maintenance")
    fresh.world.clock.advance(10.0)
    assert task.last_status == "STOPPED"


def test_stop_task_of_an_unknown_task_is_an_invalid_parameter(busy: Busy) -> None:
    code, _ = _error(lambda: _ecs(busy).stop_task(cluster=CLUSTER, task="0123456789abcdef"))
    assert code == "InvalidParameterException"


def test_update_container_instances_state_sets_draining_and_reports_failures(fresh: Busy) -> None:
    # GIVEN an ACTIVE instance and an unknown one
    inst = fresh.instances[1]
    unknown = inst.arn[:-4] + "ffff"
    # WHEN set to DRAINING
    out = _ecs(fresh).update_container_instances_state(
        cluster=CLUSTER, containerInstances=[inst.arn, unknown], status="DRAINING")
    # THEN it is DRAINING (and its version moved on); the unknown one is a failure
    (updated,) = out["containerInstances"]
    assert (updated["status"], inst.status) == ("DRAINING", "DRAINING")
    assert out["failures"] == [{"arn": unknown, "reason": "MISSING"}]


def test_attributes_can_be_put_listed_and_deleted(fresh: Busy) -> None:
    # GIVEN an instance without the gate attribute
    ecs = _ecs(fresh)
    inst = fresh.instances[1]

    # WHEN PutAttributes opens its gate
    ecs.put_attributes(cluster=CLUSTER, attributes=[{"name": "gate", "value": "open", "targetId": inst.arn}])
    # THEN ListAttributes finds both gated instances
    listed = ecs.list_attributes(cluster=CLUSTER, targetType="container-instance", attributeName="gate",
                                 attributeValue="open")["attributes"]
    assert sorted(a["targetId"] for a in listed) == sorted([fresh.instances[0].arn, inst.arn])

    # WHEN DeleteAttributes removes it again
    ecs.delete_attributes(cluster=CLUSTER, attributes=[{"name": "gate", "targetId": inst.arn}])
    # THEN only the first instance has it
    listed = ecs.list_attributes(cluster=CLUSTER, targetType="container-instance", attributeName="gate")
    assert [a["targetId"] for a in listed["attributes"]] == [fresh.instances[0].arn]


def test_put_attributes_refuses_reserved_names(busy: Busy) -> None:
    code, _ = _error(lambda: _ecs(busy).put_attributes(
        cluster=CLUSTER, attributes=[{"name": "ecs.instance-type", "value": "x", "targetId": busy.instances[0].arn}]))
    assert code == "InvalidParameterException"


def test_get_task_protection_reports_protection_and_expiry(fresh: Busy) -> None:
    # GIVEN one protected replica and one unprotected
    first, second = running(fresh.world, "service:api")[:2]
    first.protected_until = fresh.world.clock.now + 600.0

    # WHEN asked
    out = _ecs(fresh).get_task_protection(cluster=CLUSTER, tasks=[first.arn, second.arn])

    # THEN the first is protected until its expiry, the second is not
    by_arn = {p["taskArn"]: p for p in out["protectedTasks"]}
    assert by_arn[first.arn]["protectionEnabled"] is True
    assert by_arn[first.arn]["expirationDate"] == fresh.world.clock.datetime(first.protected_until)
    assert by_arn[second.arn]["protectionEnabled"] is False


def test_run_task_places_standalone_tasks_and_reports_what_did_not_fit(fresh: Busy) -> None:
    # GIVEN a task definition too big for any instance, and a small one
    world = fresh.world
    huge = add_task_definition(world, "huge", memory=64_000)
    small = add_task_definition(world, "small")
    ecs = _ecs(fresh)

    # WHEN both are run
    placed = ecs.run_task(cluster=CLUSTER, taskDefinition=small, count=2, startedBy="ops", group="adhoc")
    refused = ecs.run_task(cluster=CLUSTER, taskDefinition=huge)

    # THEN the small ones are placed on ACTIVE instances as standalone tasks in their group
    assert [t["group"] for t in placed["tasks"]] == ["adhoc", "adhoc"]
    assert {t["startedBy"] for t in placed["tasks"]} == {"ops"}
    assert fresh.instances[2].arn not in {t["containerInstanceArn"] for t in placed["tasks"]}
    # AND the huge one is refused with ECS's resource reason
    assert (refused["tasks"], refused["failures"]) == ([], [{"reason": "RESOURCE:MEMORY"}])


def test_start_task_places_on_the_named_instance_only_when_it_is_active(fresh: Busy) -> None:
    # GIVEN an ACTIVE and a DRAINING instance
    active, draining = fresh.instances[1], fresh.instances[2]
    # WHEN StartTask names both
    out = _ecs(fresh).start_task(cluster=CLUSTER, taskDefinition="batch",
                                 containerInstances=[active.arn, draining.arn])
    # THEN one task lands on the ACTIVE one, and the DRAINING one is a failure
    assert [t["containerInstanceArn"] for t in out["tasks"]] == [active.arn]
    assert out["failures"] == [{"arn": draining.arn, "reason": "INSTANCE_NOT_ACTIVE"}]


# ---- limits, errors, throttling ---------------------------------------------------------------------------


def _too_many(busy: Busy, what: str, n: int) -> Callable[[], Any]:
    ecs = _ecs(busy)
    inst = busy.instances[1].arn  # no custom attributes yet: 10 fit
    calls: dict[str, Callable[[], Any]] = {
        "DescribeTasks": lambda: ecs.describe_tasks(cluster=CLUSTER, tasks=[f"t{i}" for i in range(n)]),
        "DescribeServices": lambda: ecs.describe_services(cluster=CLUSTER, services=[f"s{i}" for i in range(n)]),
        "DescribeContainerInstances": lambda: ecs.describe_container_instances(
            cluster=CLUSTER, containerInstances=[inst] * n),
        "UpdateContainerInstancesState": lambda: ecs.update_container_instances_state(
            cluster=CLUSTER, containerInstances=[inst] * n, status="ACTIVE"),
        "PutAttributes": lambda: ecs.put_attributes(
            cluster=CLUSTER, attributes=[{"name": f"a{i}", "value": "v", "targetId": inst} for i in range(n)]),
        "DeleteAttributes": lambda: ecs.delete_attributes(
            cluster=CLUSTER, attributes=[{"name": f"a{i}", "targetId": inst} for i in range(n)]),
        "GetTaskProtection": lambda: ecs.get_task_protection(cluster=CLUSTER, tasks=[f"t{i}" for i in range(n)]),
    }
    return calls[what]


@pytest.mark.parametrize(("operation", "limit"), [
    ("DescribeTasks", 100), ("DescribeServices", 10), ("DescribeContainerInstances", 100),
    ("UpdateContainerInstancesState", 10), ("PutAttributes", 10), ("DeleteAttributes", 10),
    ("GetTaskProtection", 10),
])
def test_batch_operations_enforce_ecs_limits(fresh: Busy, operation: str, limit: int) -> None:
    # GIVEN / WHEN one item over the limit / THEN InvalidParameterException
    code, _ = _error(_too_many(fresh, operation, limit + 1))
    assert code == "InvalidParameterException"
    # AND the limit itself is accepted
    _too_many(fresh, operation, limit)()


@pytest.mark.parametrize("call", [
    lambda ecs: ecs.list_container_instances(cluster="nope"),
    lambda ecs: ecs.list_tasks(cluster="nope"),
    lambda ecs: ecs.describe_services(cluster="nope", services=["api"]),
    lambda ecs: ecs.list_services(cluster="arn:aws:ecs:us-east-1:111122223333:cluster/nope"),
])
def test_an_unknown_cluster_is_cluster_not_found(busy: Busy, call: Callable[[Client], Any]) -> None:
    code, _ = _error(lambda: call(_ecs(busy)))
    assert code == "ClusterNotFoundException"


def test_a_cluster_sees_only_its_own_instances_and_tasks(fresh: Busy) -> None:
    # GIVEN a second cluster with a service of the same name whose task was stopped
    world = fresh.world
    add_replicas(world, "api", 1, cluster="other")
    world.clock.advance(600.0)
    (foreign,) = running(world, "service:api", next(i for i in world.ecs.instances.values() if i.cluster == "other"))
    ecs = _ecs(fresh)
    ecs.stop_task(cluster="other", task=foreign.arn)
    world.clock.advance(10.0)

    # WHEN each cluster is listed
    other_instances = ecs.list_container_instances(cluster="other")["containerInstanceArns"]
    prod_instances = ecs.list_container_instances(cluster=CLUSTER)["containerInstanceArns"]
    prod_stopped = ecs.list_tasks(cluster=CLUSTER, serviceName="api", desiredStatus="STOPPED")["taskArns"]
    other_stopped = ecs.list_tasks(cluster="other", serviceName="api", desiredStatus="STOPPED")["taskArns"]

    # THEN neither leaks into the other
    assert len(other_instances) == 1
    assert set(other_instances).isdisjoint(prod_instances)
    assert foreign.arn not in prod_stopped
    assert other_stopped == [foreign.arn]


def test_an_operation_the_simulator_does_not_model_fails_loudly(busy: Busy) -> None:
    # GIVEN / WHEN code calls an ECS operation outside the simulated subset
    code, message = _error(lambda: _ecs(busy).create_capacity_provider(
        name="cp", autoScalingGroupProvider={"autoScalingGroupArn": "arn:aws:autoscaling:x"}))
    # THEN it is told plainly, not answered with something plausible
    assert code == "UnsupportedOperation"
    assert message == "simulator does not model ecs:CreateCapacityProvider"


def test_cluster_reads_are_throttled_past_their_burst_and_refill_at_20_per_second() -> None:
    # GIVEN a cluster with throttling as ECS publishes it (cluster reads: burst 100, 20/s)
    world = new_world()
    world.ecs.create_cluster(CLUSTER)
    add_instance(world)
    ecs = world.client("ecs")

    # WHEN 100 reads are made within one simulated second
    for _ in range(50):
        ecs.list_container_instances(cluster=CLUSTER)
        ecs.list_tasks(cluster=CLUSTER)
    # THEN the 101st is throttled
    code, _ = _error(lambda: ecs.describe_container_instances(
        cluster=CLUSTER, containerInstances=[next(iter(world.ecs.instances))]))
    assert code == "ThrottlingException"
    # AND other categories have their own buckets
    ecs.list_services(cluster=CLUSTER)

    # WHEN one simulated second passes
    world.clock.advance(1.0)
    # THEN 20 more reads pass and the 21st is throttled again
    for _ in range(20):
        ecs.list_tasks(cluster=CLUSTER)
    code, _ = _error(lambda: ecs.list_tasks(cluster=CLUSTER))
    assert code == "ThrottlingException"


# ---- every response has botocore's output shape -----------------------------------------------------------


def _exercise_reads(ecs: Client, busy: Busy) -> None:
    """Every read operation over everything in the cluster."""
    instances = ecs.list_container_instances(cluster=CLUSTER)["containerInstanceArns"]
    ecs.list_container_instances(cluster=CLUSTER, status="DRAINING", filter="attribute:gate !exists")
    ecs.describe_container_instances(cluster=CLUSTER, containerInstances=instances, include=["TAGS"])
    services = ecs.list_services(cluster=CLUSTER, schedulingStrategy="REPLICA", maxResults=100)["serviceArns"]
    services += ecs.list_services(cluster=CLUSTER, schedulingStrategy="DAEMON")["serviceArns"]
    ecs.describe_services(cluster=CLUSTER, services=[*services, "missing"], include=["TAGS"])
    for svc in services:
        ecs.list_tags_for_resource(resourceArn=svc)
    arns: list[str] = []
    for params in ({}, {"desiredStatus": "STOPPED"}, {"serviceName": "api"}, {"startedBy": "nightly"},
                   *({"containerInstance": i} for i in instances)):
        arns += ecs.list_tasks(cluster=CLUSTER, **params)["taskArns"]
    described = ecs.describe_tasks(cluster=CLUSTER, tasks=[*sorted(set(arns)), "missing"])["tasks"]
    for td in {t["taskDefinitionArn"] for t in described}:
        ecs.describe_task_definition(taskDefinition=td)
    ecs.get_task_protection(cluster=CLUSTER, tasks=[t["taskArn"] for t in described[:9]] + ["missing"])
    ecs.list_attributes(cluster=CLUSTER, targetType="container-instance")
    ecs.list_attributes(cluster=CLUSTER, targetType="container-instance", attributeName="gate", maxResults=1)


def test_every_ecs_response_matches_botocores_output_shapes() -> None:
    # GIVEN a busy cluster mid-drain, served through a backend that checks every response's shape
    busy = busy_world()
    world = busy.world
    ecs = make_client("ecs", ValidatingBackend(world.ecs_api), world.region)
    (protected, *_) = running(world, "service:api")
    protected.protected_until = world.clock.now + 300.0

    # WHEN every operation is exercised at several moments of the drain
    for _ in range(4):
        _exercise_reads(ecs, busy)
        world.clock.advance(0.5)
    target = busy.instances[1].arn
    ecs.put_attributes(cluster=CLUSTER, attributes=[{"name": "zone-tier", "value": "b", "targetId": target}])
    ecs.delete_attributes(cluster=CLUSTER, attributes=[{"name": "zone-tier", "targetId": target}])
    ecs.run_task(cluster=CLUSTER, taskDefinition="batch", count=2, startedBy="nightly")
    ecs.run_task(cluster=CLUSTER, taskDefinition="batch", count=1, placementConstraints=[
        {"type": "memberOf", "expression": "attribute:gate == shut"}])
    ecs.start_task(cluster=CLUSTER, taskDefinition="batch", containerInstances=[target, busy.instances[2].arn])
    (victim, *_) = running(world, "family:batch")
    ecs.stop_task(cluster=CLUSTER, task=victim.arn)
    ecs.update_container_instances_state(cluster=CLUSTER, containerInstances=[target, "missing"], status="DRAINING")
    world.clock.advance(120.0)
    _exercise_reads(ecs, busy)
    ecs.update_container_instances_state(cluster=CLUSTER, containerInstances=[target], status="ACTIVE")
    world.clock.advance(4000.0)
    _exercise_reads(ecs, busy)

    # THEN no response deviated from the model (ValidatingBackend raises on the first that does)
    assert world.ecs_api.calls.keys() >= {
        "ListContainerInstances", "DescribeContainerInstances", "ListServices", "DescribeServices",
        "DescribeTaskDefinition", "ListTasks", "DescribeTasks", "StopTask", "UpdateContainerInstancesState",
        "PutAttributes", "DeleteAttributes", "ListAttributes", "GetTaskProtection", "RunTask", "StartTask",
        "ListTagsForResource"}



# ---- placement constraints of services (UpdateService) -----------------------------------------------------


def _validated(world: Any) -> Client:
    return make_client("ecs", ValidatingBackend(world.ecs_api), world.region)


def test_update_service_replaces_the_constraints_and_describe_services_shows_them() -> None:
    # GIVEN a replica service with one constraint of its own, served through a shape-checking backend
    world = new_world(throttling=False)
    world.ecs.create_cluster(CLUSTER)
    add_replicas(world, "api", 0, constraints=["attribute:ecs.os-type == linux"])
    ecs = _validated(world)
    gate = {"type": "memberOf", "expression": "attribute:daemon-guard.gate == open"}
    own = {"type": "memberOf", "expression": "attribute:ecs.os-type == linux"}
    # WHEN UpdateService sets the whole list (its own kept, the gate added), then an empty list
    updated = ecs.update_service(cluster=CLUSTER, service="api", placementConstraints=[own, gate])["service"]
    described = ecs.describe_services(cluster=CLUSTER, services=["api"])["services"][0]
    cleared = ecs.update_service(cluster=CLUSTER, service="api", placementConstraints=[])["service"]
    # THEN ECS returns and describes the new list, and an empty list removes them all
    assert updated["placementConstraints"] == described["placementConstraints"] == [own, gate]
    assert cleared["placementConstraints"] == []


@pytest.mark.parametrize(("constraints", "code", "words"), [
    ([{"type": "memberOf", "expression": f"attribute:a{i} exists"} for i in range(10)], "InvalidParameterException",
     "at most 10 per task"),
    ([{"type": "memberOf", "expression": "attribute:a =="}], "InvalidParameterException", "Invalid expression"),
    ([{"type": "distinctInstance", "expression": "attribute:a exists"}], "InvalidParameterException",
     "can not have an expression"),
])
def test_update_service_refuses_what_ecs_refuses(constraints: list[dict[str, str]], code: str, words: str) -> None:
    # GIVEN a service whose task definition carries one constraint
    world = new_world(throttling=False)
    world.ecs.create_cluster(CLUSTER)
    td = world.ecs.register_task_definition("api", [{"name": "api", "cpu": 64, "memory": 64}],
                                            constraints=["attribute:ecs.os-type == linux"])
    world.ecs.create_service(CLUSTER, "api", td, desired_count=0)
    # WHEN UpdateService gets 10 more, a bad expression, or a distinctInstance with one / THEN ECS's error
    got_code, message = _error(lambda: _validated(world).update_service(
        cluster=CLUSTER, service="api", placementConstraints=constraints))
    assert (got_code, words in message) == (code, True)
    assert world.ecs.service_named(CLUSTER, "api").constraints == []


def test_a_daemon_whose_new_constraint_stops_matching_is_stopped_by_the_scheduler() -> None:
    # GIVEN a daemon running on an instance
    world = new_world(throttling=False)
    world.ecs.create_cluster(CLUSTER)
    add_daemon(world, "fluent-bit")
    inst = add_instance(world)
    advance_until(world, lambda: bool(running(world, "service:fluent-bit", inst)))
    # WHEN its constraints change to one the instance fails (the tier attribute is set)
    world.ecs.set_attributes(inst, {"daemon-guard.gate.stop.log": "stopped"})
    _validated(world).update_service(cluster=CLUSTER, service="fluent-bit", placementConstraints=[
        {"type": "memberOf", "expression": "attribute:daemon-guard.gate.stop.log !exists"}])
    # THEN the daemon scheduler stops it, as ECS does with running daemon tasks that no longer match
    advance_until(world, lambda: not running(world, "service:fluent-bit", inst))


def test_describe_clusters_and_capacity_providers_show_managed_draining() -> None:
    # GIVEN a cluster with two capacity providers, one running ECS managed draining
    world = new_world(throttling=False)
    world.ecs.create_cluster(CLUSTER)
    world.ecs.create_capacity_provider(CLUSTER, "prod-cp", "prod-asg", managed_draining=True)
    world.ecs.create_capacity_provider(CLUSTER, "spot-cp", "prod-spot", managed_draining=False)
    ecs = _validated(world)
    # WHEN they are described through the API
    (cluster,) = ecs.describe_clusters(clusters=[CLUSTER])["clusters"]
    providers = ecs.describe_capacity_providers(capacityProviders=cluster["capacityProviders"])["capacityProviders"]
    # THEN each names its group and whether managed draining is on
    assert cluster["capacityProviders"] == ["prod-cp", "spot-cp"]
    assert {(p["name"], p["autoScalingGroupProvider"]["autoScalingGroupArn"].rsplit("/", 1)[-1],
             p["autoScalingGroupProvider"]["managedDraining"]) for p in providers} == {
        ("prod-cp", "prod-asg", "ENABLED"), ("spot-cp", "prod-spot", "DISABLED")}
