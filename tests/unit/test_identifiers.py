"""The identifier value types: AWS's formats accepted, anything else refused with a one-line reason."""

from __future__ import annotations

import copy
import json
import os
import pickle
import re

import botocore
import pytest
from daemon_guard.core import query
from daemon_guard.core.identifiers import (
    PARTITION_REGIONS,
    AccountId,
    AsgName,
    ClusterArn,
    ContainerInstanceArn,
    HookName,
    IdentifierError,
    InstanceId,
    LifecycleToken,
    Owner,
    Region,
    ServiceArn,
    TaskArn,
    partition_of_region,
)
from daemon_guard.core.model import InstanceView, Resources
from hypothesis import given, settings
from hypothesis import strategies as st

HOSTILE = ["", " ", "\n", "*", "i-*", "i-x or agentConnected == true", "i-", "x", "😀", "i-1234567890abcdef0\x00",
           "arn:aws:ec2:us-east-1:111122223333:instance/i-1234567890abcdef0", "i-1234567890ABCDEF0",
           "i-1234567890abcdef", "i-1234567890abcdef01", "i-0abc1234 ", "i-0abc1234' or '1"]


@pytest.mark.parametrize("value", ["i-f3a8506b", "i-1234567890abcdef0", "i-0633ac2b0d9769723"])
def test_an_instance_id_of_8_or_17_hex_digits_is_accepted(value: str) -> None:
    # GIVEN a real instance id / WHEN made a value / THEN it is that text
    assert InstanceId(value) == value


@pytest.mark.parametrize("value", HOSTILE)
def test_anything_else_is_not_an_instance_id(value: str) -> None:
    # GIVEN a wildcard, a query fragment, a blank, an ARN, a NUL suffix / WHEN made an InstanceId
    with pytest.raises(IdentifierError) as refused:
        InstanceId(value)
    # THEN the one-line reason says what was expected
    assert refused.value.reason.startswith("expected an EC2 instance id")
    assert "\n" not in refused.value.reason


@pytest.mark.parametrize("value", [None, 7, ["i-f3a8506b"], True])
def test_a_non_string_is_refused_naming_its_type(value: object) -> None:
    with pytest.raises(IdentifierError, match=f"got {type(value).__name__}$"):
        InstanceId(value)


@pytest.mark.parametrize(
    ("kind", "value", "owner", "cluster"),
    [
        (ClusterArn, "arn:aws:ecs:us-east-1:111122223333:cluster/default", ("aws", "111122223333", "us-east-1"),
         "default"),
        (ClusterArn, "arn:aws-cn:ecs:cn-north-1:111122223333:cluster/prod_1-a", ("aws-cn", "111122223333",
                                                                               "cn-north-1"), "prod_1-a"),
        (ContainerInstanceArn, "arn:aws:ecs:us-west-2:111122223333:container-instance/default/"
         "2dd1b186f39845a584488d2ef155c131", ("aws", "111122223333", "us-west-2"), "default"),
        (ContainerInstanceArn, "arn:aws:ecs:us-east-1:111122223333:container-instance/"
         "b54a2a04-046f-4331-9d74-3f6d7f6ca315", ("aws", "111122223333", "us-east-1"), None),
        (TaskArn, "arn:aws-us-gov:ecs:us-gov-west-1:111122223333:task/FargateCluster/c13b4cb40f1f4fe4a2971f76ae5a47ad",
         ("aws-us-gov", "111122223333", "us-gov-west-1"), "FargateCluster"),
        (TaskArn, "arn:aws:ecs:us-east-1:111122223333:task/b99d40b3-5176-4f71-9a52-9dbd6f1cebef",
         ("aws", "111122223333", "us-east-1"), None),
        (ServiceArn, "arn:aws:ecs:us-west-2:111122223333:service/default/servicetest",
         ("aws", "111122223333", "us-west-2"), "default"),
        (ServiceArn, "arn:aws:ecs:us-west-2:111122223333:service/servicetest", ("aws", "111122223333", "us-west-2"),
         None),
    ],
)
def test_an_ecs_arn_in_either_form_knows_its_owner_and_cluster(kind: type[ClusterArn], value: str,
                                                                owner: tuple[str, str, str], cluster: str | None
                                                                ) -> None:
    # GIVEN an ECS ARN in its long or short form / WHEN parsed
    arn = kind(value)
    # THEN it is the same text, and knows who owns it and (long form) its cluster
    assert arn == value
    assert arn.owner == Owner(*owner)
    assert arn.cluster_name == cluster


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        (ClusterArn, "arn:/default"),
        (ClusterArn, "default"),
        (ClusterArn, "arn:aws:ec2:us-east-1:111122223333:cluster/default"),
        (ClusterArn, "arn:aws:ecs:us-east-1:cluster/default"),
        (ClusterArn, "arn:aws:ecs:us-east-1:1111:cluster/default"),
        (ClusterArn, "arn:aws:ecs:us-east-1:111122223333:cluster/"),
        (ClusterArn, "arn:aws:ecs:us-east-1:111122223333:cluster/a b"),
        (ClusterArn, "arn:aws:ecs:us-east-1:111122223333:cluster/" + "x" * 256),
        (ClusterArn, "arn:aws:ecs:us-east-1:111122223333:service/default/x"),
        (ClusterArn, "arn:aws:ecs:*:111122223333:cluster/default"),
        (ContainerInstanceArn, "arn:aws:ecs:us-east-1:111122223333:container-instance/default/*"),
        (ContainerInstanceArn, "arn:aws:ecs:us-east-1:111122223333:container-instance/default/xyz"),
        (TaskArn, "arn:aws:ecs:us-east-1:111122223333:task/default/2dd1b186f39845a584488d2ef155c13"),
        (ServiceArn, "arn:aws:ecs:us-east-1:111122223333:service/default/a;b"),
    ],
)
def test_a_malformed_ecs_arn_is_refused(kind: type[ClusterArn], value: str) -> None:
    # GIVEN something shaped almost like an ECS ARN / WHEN parsed / THEN refused, never read as a cluster name
    with pytest.raises(IdentifierError, match=r"^expected an ECS "):
        kind(value)


@pytest.mark.parametrize(
    ("kind", "good", "bad"),
    [
        (AsgName, ["my-asg", "testt1.demo-0a20f32c.kops.sh", "a" * 255], ["", "a:b", "a b", "a" * 256, "tab\t"]),
        (HookName, ["daemon-guard-terminate", "a/b_c"], ["", "a b", "a.b", "h" * 256]),
        (LifecycleToken, ["0befcbdb-6ecd-498a-9ff7-ae9b54447cd6", "87654321-4321-4321-4321-21098EXAMPLE"],
         ["", " ", "\n", "0befcbdb6ecd498a9ff7ae9b54447cd6", "0befcbdb-6ecd-498a-9ff7-ae9b54447cd6 ", "*" * 36]),
        (AccountId, ["111122223333"], ["", "11112222333", "11112222333a", "*"]),
        (Region, ["us-east-1", "us-gov-west-1", "eusc-de-east-1", "cn-northwest-1"],
         ["", "us-east-1b", "*", "US-EAST-1"]),
    ],
)
def test_names_and_tokens_follow_the_api_limits(kind: type[str], good: list[str], bad: list[str]) -> None:
    for value in good:
        assert kind(value) == value
    for value in bad:
        with pytest.raises(IdentifierError):
            kind(value)


def test_a_validated_arn_survives_copy_pickle_and_json() -> None:
    # GIVEN a parsed ARN
    arn = ContainerInstanceArn("arn:aws:ecs:us-west-2:111122223333:container-instance/default/"
                               "2dd1b186f39845a584488d2ef155c131")
    # WHEN copied, pickled or serialised / THEN it stays the same value (and type where Python keeps it)
    for again in (copy.deepcopy(arn), pickle.loads(pickle.dumps(arn))):
        assert type(again) is ContainerInstanceArn and again == arn and again.owner == arn.owner
    assert json.loads(json.dumps({"arn": arn})) == {"arn": str(arn)}


def test_the_partition_table_matches_botocore() -> None:
    # GIVEN botocore's endpoints.json, the SDK's truth about partitions and their Region names
    with open(os.path.join(os.path.dirname(botocore.__file__), "data", "endpoints.json")) as file:
        partitions = json.load(file)["partitions"]
    # THEN every partition is in the table and each of its Regions maps back to it
    assert {p["partition"] for p in partitions} <= {name for name, _ in PARTITION_REGIONS}
    for partition in partitions:
        assert re.fullmatch(partition["regionRegex"].strip("^$"), "x") is None
        for region in partition["regions"]:
            assert partition_of_region(region) == partition["partition"], region
            assert Region(region) == region
    assert partition_of_region("xx-nowhere") is None


# --- the property the ECS lookup rests on -------------------------------------------------------

VALID_IDS = st.from_regex(r"\Ai-[0-9a-f]{8}([0-9a-f]{9})?\Z")


def view(instance_id: str) -> InstanceView:
    return InstanceView(arn=f"arn-{instance_id}", ec2_instance_id=instance_id, status="ACTIVE", agent_connected=True,
                        registered=Resources(), remaining=Resources())


@settings(max_examples=200, deadline=None, derandomize=True)
@given(candidate=st.one_of(st.text(max_size=40), VALID_IDS, st.sampled_from(HOSTILE)), others=st.lists(VALID_IDS,
                                                                                                        max_size=5))
def test_an_accepted_id_makes_a_lookup_query_that_matches_only_its_own_instance(candidate: str,
                                                                               others: list[str]) -> None:
    # GIVEN any text, and a cluster of instances with other ids (and the candidate's own, if it is one)
    try:
        instance_id = InstanceId(candidate)
    except IdentifierError:
        # THEN either it is refused (and so never reaches a query) ...
        assert re.fullmatch(r"i-[0-9a-f]{8}([0-9a-f]{9})?", candidate) is None
        return
    # ... or the lookup query built from it, as the ECS adapter builds it, matches exactly its instance
    expression = query.parse(f"ec2InstanceId == {instance_id}")
    cluster = [view(i) for i in {*others, instance_id}]
    assert [v.ec2_instance_id for v in cluster if query.evaluate(expression, v)] == [instance_id]
