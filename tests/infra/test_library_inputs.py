"""The construct takes clusters and groups as names or as CDK objects whose names are known at synth."""

from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from daemon_guard.core.config import ConfigError

from infra.construct import resolve_cdk_objects


def test_imported_cluster_and_groups_become_their_names() -> None:
    # GIVEN an imported cluster and group, and a group object with options
    stack = cdk.Stack(cdk.App(), "S", env=cdk.Environment(account="123456789012", region="eu-west-1"))
    cluster = ecs.Cluster.from_cluster_arn(stack, "C", "arn:aws:ecs:eu-west-1:123456789012:cluster/prod")
    asg = autoscaling.AutoScalingGroup.from_auto_scaling_group_name(stack, "A", "prod-asg")
    spot = autoscaling.AutoScalingGroup.from_auto_scaling_group_name(stack, "B", "prod-spot")
    # WHEN the document is resolved
    doc = resolve_cdk_objects({"clusters": [{"name": cluster, "autoScalingGroups": [
        asg, {"name": spot, "launchHook": True}, "plain-name"]}], "placementMode": "gate"})
    # THEN every object is its name, the options and other keys untouched
    assert doc == {"clusters": [{"name": "prod", "autoScalingGroups": [
        "prod-asg", {"name": "prod-spot", "launchHook": True}, "plain-name"]}], "placementMode": "gate"}


def test_a_cluster_whose_name_is_unknown_at_synth_is_refused_with_the_fix() -> None:
    # GIVEN a cluster created in the same app without an explicit name
    stack = cdk.Stack(cdk.App(), "S")
    cluster = ecs.Cluster(stack, "New", vpc=ec2.Vpc(stack, "Vpc", max_azs=1, nat_gateways=0))
    # WHEN / THEN the document is refused, naming the field and the fix
    with pytest.raises(ConfigError, match=r"clusters\[0\]\.name: .* explicit cluster_name"):
        resolve_cdk_objects({"clusters": [{"name": cluster, "autoScalingGroups": []}]})
