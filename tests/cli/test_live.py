"""`daemon-guard status` and `daemon-guard drain` against the simulator's ECS API and botocore Stubbers."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import NoCredentialsError, NoRegionError
from botocore.stub import ANY, Stubber
from daemon_guard.services.starts import execution_name

from daemon_guard_cli.live import explain, request_drain, status
from sim.ecs import profile_params
from sim.world import World, WorldOptions

CLUSTER = "prod"
GATE = "daemon-guard.gate"
INSTANCE = "i-0abc1234def567890"
INSTANCE_ARN = "arn:aws:ecs:us-east-1:111122223333:container-instance/prod/0123456789abcdef0123456789abcdef"
DRAIN_ALIAS = "arn:aws:lambda:us-east-1:111122223333:function:daemon-guard-drain:live"
NOW = datetime(2026, 1, 5, 9, 30, 0, tzinfo=UTC)


def small_cluster() -> World:
    """Two instances and one log-router daemon: it fits on the big one but can never fit on the small one."""
    world = World(WorldOptions(seed=3, ecs=profile_params("as-reported")))
    ecs = world.ecs
    ecs.create_cluster(CLUSTER)
    td = ecs.register_task_definition("fluent-bit", [{"name": "fluent-bit", "cpu": 128, "memory": 512,
                                                      "portMappings": [{"containerPort": 24224,
                                                                        "hostPort": 24224}]}])
    ecs.create_service(CLUSTER, "fluent-bit", td, daemon=True)
    big = ecs.register_instance(CLUSTER, "i-0b16b16b16b16b16b", 4096, 15700, {"ecs.os-type": "linux"})
    ecs.register_instance(CLUSTER, "i-05a115a115a115a11", 4096, 256, {"ecs.os-type": "linux"})
    world.clock.run_until(60.0)
    ecs.set_attributes(ecs.instances[big], {GATE: "open"})
    return world


def run_status(cluster: str, client: Any, clock: Any) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = status(cluster, "us-east-1", client=client, clock=clock, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_status_reports_the_instance_missing_a_daemon_and_exits_1() -> None:
    # GIVEN a cluster where the log router runs on one instance and cannot fit on the other
    world = small_cluster()
    # WHEN an operator asks for the cluster's status
    code, out, err = run_status(CLUSTER, world.client("ecs"), world.clock.datetime)
    # THEN the table shows both instances, the missing daemon by name, and the gate attribute
    assert code == 1
    assert err == ""
    rows = {line.split()[0]: line for line in out.splitlines() if line.startswith("i-")}
    assert set(rows) == {"i-0b16b16b16b16b16b", "i-05a115a115a115a11"}
    assert rows["i-05a115a115a115a11"].split()[1:5] == ["ACTIVE", "1m00s", "1", "0"]
    assert "fluent-bit" in rows["i-05a115a115a115a11"]
    assert rows["i-0b16b16b16b16b16b"].split()[3:] == ["1", "1", "-", "open"]
    # AND the summary line gives the coverage and names the instance missing daemons
    assert out.splitlines()[-1].startswith("coverage 50.0% (1/2 eligible daemon slots RUNNING on 2 ACTIVE")
    assert "1 instance(s) missing daemons: i-05a115a115a115a11" in out.splitlines()[-1]


def test_status_of_a_fully_covered_cluster_exits_0() -> None:
    # GIVEN a cluster whose every instance runs its daemon
    world = small_cluster()
    small = world.ecs.instance_of_ec2("i-05a115a115a115a11")
    assert small is not None
    world.ecs.terminate_instance("i-05a115a115a115a11")
    # WHEN the status is read
    code, out, _ = run_status(CLUSTER, world.client("ecs"), world.clock.datetime)
    # THEN it reports full coverage and exits 0
    assert code == 0
    assert "coverage 100.0% (1/1 eligible daemon slots RUNNING" in out


def test_status_of_an_unknown_cluster_exits_2_with_one_line() -> None:
    # GIVEN a region without the named cluster
    world = small_cluster()
    # WHEN an operator asks for its status
    code, out, err = run_status("nope", world.client("ecs"), world.clock.datetime)
    # THEN one clear line on stderr, nothing on stdout, exit 2
    assert code == 2
    assert out == ""
    assert err.splitlines() == ["daemon-guard status: cluster 'nope' not found in us-east-1: check --cluster "
                                "and --region"]


def test_missing_credentials_and_region_get_clear_messages() -> None:
    # GIVEN the errors botocore raises without credentials or a region
    # WHEN they are explained
    # THEN each says what to do, in one line
    assert explain(NoCredentialsError()).startswith("no AWS credentials found: set AWS_PROFILE")
    assert explain(NoRegionError()) == "no AWS region: pass --region or set AWS_REGION"


def clients() -> tuple[Any, Any]:
    return boto3.client("ecs", **KWARGS), boto3.client("lambda", **KWARGS)


KWARGS: dict[str, Any] = {"region_name": "us-east-1", "aws_access_key_id": "testing",
                          "aws_secret_access_key": "testing"}
TABLE = "daemon-guard-state"
DYNAMODB = boto3.client("dynamodb", **KWARGS)


def stub_lookup(stub: Stubber, found: bool) -> None:
    query = f"ec2InstanceId == {INSTANCE}"
    arns = [INSTANCE_ARN] if found else []
    stub.add_response("list_container_instances", {"containerInstanceArns": arns},
                      {"cluster": CLUSTER, "maxResults": 100, "filter": query})
    if not found:
        stub.add_response("list_container_instances", {"containerInstanceArns": []},
                          {"cluster": CLUSTER, "maxResults": 100, "filter": query, "status": "DRAINING"})
        return
    stub.add_response("describe_container_instances", {"containerInstances": [{
        "containerInstanceArn": INSTANCE_ARN, "ec2InstanceId": INSTANCE, "status": "ACTIVE",
        "agentConnected": True, "runningTasksCount": 7, "pendingTasksCount": 0}], "failures": []},
        {"cluster": CLUSTER, "containerInstances": [INSTANCE_ARN]})


def test_drain_request_invokes_the_alias_with_the_execution_name_and_payload(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN an instance of the cluster and the drain workflow's alias in $DRAIN_FUNCTION
    monkeypatch.setenv("DRAIN_FUNCTION", DRAIN_ALIAS)
    ecs, lam = clients()
    sent: list[dict[str, Any]] = []
    lam.meta.events.register("provide-client-params.lambda.Invoke", lambda params, **_: sent.append(params))
    execution_arn = f"{DRAIN_ALIAS}/durable-execution/drain-{INSTANCE}/0001"
    name = execution_name("drain", INSTANCE, "operator:2026-01-05T09:30:00Z")
    out, err = io.StringIO(), io.StringIO()
    with Stubber(ecs) as ecs_stub, Stubber(lam) as lam_stub, Stubber(DYNAMODB) as claims:
        stub_lookup(ecs_stub, found=True)
        claims.add_response("put_item", {}, {"TableName": TABLE, "Item": ANY, "ConditionExpression": ANY})
        lam_stub.add_response("invoke", {"StatusCode": 202, "DurableExecutionArn": execution_arn},
                              {"FunctionName": DRAIN_ALIAS, "InvocationType": "Event",
                               "DurableExecutionName": name, "Payload": ANY})
        # WHEN an operator requests the drain
        code = request_drain(CLUSTER, INSTANCE, None, "us-east-1", ecs_client=ecs, lambda_client=lam,
                             dynamodb_client=DYNAMODB, table=TABLE, clock=lambda: NOW, out=out, err=err)
        # THEN the instance is claimed, and the qualified alias invoked once, by execution name, with the
        # operator's payload
        claims.assert_no_pending_responses()
        lam_stub.assert_no_pending_responses()
    assert code == 0, err.getvalue()
    assert len(sent) == 1
    assert json.loads(sent[0]["Payload"]) == {"instanceId": INSTANCE, "cluster": CLUSTER, "trigger": "operator"}
    # AND the execution ARN is printed
    assert out.getvalue().splitlines()[-1] == execution_arn


def test_drain_request_for_an_instance_outside_the_cluster_exits_2_without_invoking() -> None:
    # GIVEN an EC2 instance that is no container instance of the cluster
    ecs, lam = clients()
    err = io.StringIO()
    with Stubber(ecs) as ecs_stub, Stubber(lam) as lam_stub:
        stub_lookup(ecs_stub, found=False)
        # WHEN a drain is requested
        code = request_drain(CLUSTER, INSTANCE, DRAIN_ALIAS, "us-east-1", ecs_client=ecs, lambda_client=lam,
                             dynamodb_client=DYNAMODB, table=TABLE, clock=lambda: NOW, out=io.StringIO(), err=err)
        # THEN nothing is invoked and one line says why
        lam_stub.assert_no_pending_responses()
    assert code == 2
    assert err.getvalue() == f"daemon-guard drain: {INSTANCE} is not a container instance of cluster 'prod' in " \
                             "us-east-1\n"


@pytest.mark.parametrize(("function", "message"), [
    (None, "no drain workflow given: pass --function"),
    ("arn:aws:lambda:us-east-1:111122223333:function:daemon-guard-drain", "is not a qualified Lambda function ARN"),
])
def test_drain_request_without_a_qualified_function_exits_2(monkeypatch: pytest.MonkeyPatch, function: str | None,
                                                            message: str) -> None:
    # GIVEN no alias ARN (or an unqualified one) and no $DRAIN_FUNCTION
    monkeypatch.delenv("DRAIN_FUNCTION", raising=False)
    ecs, lam = clients()
    err = io.StringIO()
    with Stubber(ecs), Stubber(lam):
        # WHEN a drain is requested
        code = request_drain(CLUSTER, INSTANCE, function, "us-east-1", ecs_client=ecs, lambda_client=lam,
                             dynamodb_client=DYNAMODB, table=TABLE, clock=lambda: NOW, out=io.StringIO(), err=err)
    # THEN no AWS call is made and one line says what to pass
    assert code == 2
    assert message in err.getvalue()
    assert len(err.getvalue().splitlines()) == 1
