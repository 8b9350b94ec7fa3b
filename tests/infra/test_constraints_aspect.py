"""`GateConstraints` / `DaemonGuard.protect()`: each service of the app gets the constraints the configuration needs."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk.assertions import Annotations, Match, Template
from daemon_guard.core.placement import gate_constraint, tier_constraint

from infra.constraints import GateConstraints
from infra.construct import DaemonGuard, DaemonGuardProps

GATE = {"Type": "memberOf", "Expression": gate_constraint()["expression"]}
CONFIG: dict[str, Any] = {
    "clusters": [{"name": "prod", "autoScalingGroups": ["prod-asg"]}],
    "placementMode": "gate", "drainOrder": "tiers",
    "drainTiers": [{"name": "agents", "services": ["xray"]}, {"name": "log-router", "services": ["fluent-bit"]}],
}


def tier(name: str) -> dict[str, str]:
    return {"Type": "memberOf", "Expression": tier_constraint(name)["expression"]}


class Platform:
    """A stack with a managed cluster (L2, named prod), an unmanaged one, and a task definition."""

    def __init__(self) -> None:
        self.app = cdk.App()
        self.stack = cdk.Stack(self.app, "Platform", env=cdk.Environment(account="123456789012", region="eu-west-1"))
        vpc = ec2.Vpc.from_vpc_attributes(self.stack, "Vpc", vpc_id="vpc-0123", availability_zones=["eu-west-1a"])
        self.prod = ecs.Cluster.from_cluster_attributes(self.stack, "Prod", cluster_name="prod", vpc=vpc,
                                                        has_ec2_capacity=True)
        self.other = ecs.Cluster.from_cluster_attributes(self.stack, "Other", cluster_name="staging", vpc=vpc,
                                                         has_ec2_capacity=True)
        # The same cluster as an L1 resource: L1 services below name it by Ref
        self.prod_l1 = ecs.CfnCluster(self.stack, "ProdL1", cluster_name="prod")
        self.task = ecs.Ec2TaskDefinition(self.stack, "Task")
        self.task.add_container("app", image=ecs.ContainerImage.from_registry("app"), memory_limit_mib=256)

    def l2(self, construct_id: str, *, daemon: bool = False, cluster: ecs.ICluster | None = None,
           name: str | None = None, **kwargs: Any) -> ecs.Ec2Service:
        return ecs.Ec2Service(self.stack, construct_id, cluster=cluster or self.prod, task_definition=self.task,
                              daemon=daemon, service_name=name, **kwargs)

    def l1(self, construct_id: str, *, by_ref: bool = False, **props: Any) -> ecs.CfnService:
        cluster = self.prod_l1.ref if by_ref else "arn:aws:ecs:eu-west-1:123456789012:cluster/prod"
        return ecs.CfnService(self.stack, construct_id, cluster=cluster, task_definition=self.task.task_definition_arn,
                              **props)

    def synth(self, config: dict[str, Any] | None = None) -> Template:
        cdk.Aspects.of(self.stack).add(GateConstraints(config or CONFIG))
        return Template.from_stack(self.stack)

    def constraints(self, template: Template, construct_id: str) -> list[dict[str, str]]:
        logical = self.stack.get_logical_id(self._cfn(construct_id))
        props = template.to_json()["Resources"][logical]["Properties"]
        return list(props.get("PlacementConstraints", []))

    def _cfn(self, construct_id: str) -> cdk.CfnElement:
        node = self.stack.node.find_child(construct_id)
        child = node.node.default_child if not isinstance(node, cdk.CfnElement) else node
        assert isinstance(child, cdk.CfnElement)
        return child


@pytest.mark.slow
def test_replica_services_get_the_gate_and_daemons_their_tier_l2_and_l1() -> None:
    # GIVEN L2 and L1 replica and daemon services of the managed cluster (by name, ARN or Ref), one tiered by tag
    p = Platform()
    p.l2("Api")
    p.l2("Xray", daemon=True, name="xray")
    tagged = p.l2("Agent", daemon=True, name="fluent-bit-2")
    cdk.Tags.of(tagged).add("daemon-guard:drain-tier", "log-router")
    p.l1("Worker", launch_type="EC2", desired_count=2, by_ref=True)
    p.l1("FluentBit", service_name="fluent-bit", scheduling_strategy="DAEMON",
         capacity_provider_strategy=[{"capacityProvider": "prod-cp", "weight": 1}])
    # WHEN the app is synthesized with the aspect
    template = p.synth()
    # THEN replicas carry the gate, each daemon its own tier's constraint (by list or by tag), and no daemon the gate
    assert p.constraints(template, "Api") == [GATE]
    assert p.constraints(template, "Worker") == [GATE]
    assert p.constraints(template, "Xray") == [tier("agents")]
    assert p.constraints(template, "FluentBit") == [tier("log-router")]
    assert p.constraints(template, "Agent") == [tier("log-router")]


def test_existing_constraints_are_kept_and_nothing_is_added_twice() -> None:
    # GIVEN a replica that already has its own constraint and the gate, and an L1 with a distinctInstance
    p = Platform()
    p.l2("Api", placement_constraints=[ecs.PlacementConstraint.member_of("attribute:ecs.os-type == linux"),
                                       ecs.PlacementConstraint.member_of(gate_constraint()["expression"])])
    p.l1("Worker", launch_type="EC2", placement_constraints=[{"type": "distinctInstance"}])
    # WHEN the aspect runs twice over the app
    cdk.Aspects.of(p.stack).add(GateConstraints(CONFIG))
    template = p.synth()
    # THEN each service has its own constraints, then the gate, once
    assert p.constraints(template, "Api") == [
        {"Type": "memberOf", "Expression": "attribute:ecs.os-type == linux"}, GATE]
    assert p.constraints(template, "Worker") == [{"Type": "distinctInstance"}, GATE]


def test_other_clusters_fargate_external_and_opted_out_services_are_left_alone() -> None:
    # GIVEN services the guard does not manage: another cluster, Fargate (launch type or provider), EXTERNAL,
    # and one tagged daemon-guard:ignore=true
    p = Platform()
    p.l2("Staging", cluster=p.other)
    p.l1("Fargate", launch_type="FARGATE")
    p.l1("FargateSpot", capacity_provider_strategy=[{"capacityProvider": "FARGATE_SPOT", "weight": 1}])
    p.l1("Anywhere", launch_type="EXTERNAL")
    cdk.Tags.of(p.l2("Legacy")).add("daemon-guard:ignore", "true")
    # WHEN synthesized with the aspect
    template = p.synth()
    # THEN none of them carries a constraint
    for construct_id in ("Staging", "Fargate", "FargateSpot", "Anywhere", "Legacy"):
        assert p.constraints(template, construct_id) == [], construct_id


def test_a_service_whose_launch_type_is_unknown_is_left_alone_with_a_warning() -> None:
    # GIVEN an L1 service with neither a launch type nor a capacity provider strategy
    p = Platform()
    p.l1("Unknown")
    # WHEN synthesized / THEN it gets no constraint, and a warning says why and what to set
    template = p.synth()
    assert p.constraints(template, "Unknown") == []
    Annotations.from_stack(p.stack).has_warning("/Platform/Unknown", Match.string_like_regexp("launchType EC2"))


def test_a_service_past_ecs_limit_of_10_constraints_fails_the_synth_naming_it() -> None:
    # GIVEN a replica with 4 constraints whose task definition carries 6 more (ECS counts both, 10 per task)
    p = Platform()
    task = ecs.Ec2TaskDefinition(p.stack, "Crowded", placement_constraints=[
        ecs.PlacementConstraint.member_of(f"attribute:td{i} exists") for i in range(6)])
    task.add_container("app", image=ecs.ContainerImage.from_registry("app"), memory_limit_mib=256)
    ecs.Ec2Service(p.stack, "Busy", cluster=p.prod, task_definition=task, placement_constraints=[
        ecs.PlacementConstraint.member_of(f"attribute:svc{i} exists") for i in range(4)])
    cdk.Aspects.of(p.stack).add(GateConstraints(CONFIG))
    # WHEN synthesized / THEN the synth fails naming the service, the count and the way out
    with pytest.raises(Exception, match=r"Busy.*11 placement constraints.*ECS allows 10 per task"):
        p.app.synth()


def test_a_daemon_already_carrying_the_gate_fails_the_synth() -> None:
    # GIVEN a daemon someone gated by hand
    p = Platform()
    p.l2("Gated", daemon=True, placement_constraints=[ecs.PlacementConstraint.member_of(
        gate_constraint()["expression"])])
    cdk.Aspects.of(p.stack).add(GateConstraints(CONFIG))
    # WHEN synthesized / THEN the synth fails and says to remove it
    with pytest.raises(Exception, match=r"Gated.*daemon service carries .*remove it"):
        p.app.synth()


def test_preempt_mode_adds_no_gate_and_draining_order_no_tier() -> None:
    # GIVEN the default configuration (preempt, draining)
    p = Platform()
    p.l2("Api")
    p.l2("Xray", daemon=True, name="xray")
    # WHEN synthesized with the aspect / THEN no service is constrained (a gate nobody opens would starve replicas)
    template = p.synth({"clusters": [{"name": "prod"}]})
    assert p.constraints(template, "Api") == []
    assert p.constraints(template, "Xray") == []


@pytest.mark.slow
def test_guard_protect_wires_the_services_of_the_app() -> None:
    # GIVEN a DaemonGuard and the platform's services in the same app
    p = Platform()
    p.l2("Api")
    p.l2("Xray", daemon=True, name="xray")
    guard = DaemonGuard(p.stack, "DaemonGuard", DaemonGuardProps(config=CONFIG, install_dependencies=False))
    # WHEN the app is protected and synthesized
    guard.protect(p.app)
    template = Template.from_stack(p.stack)
    # THEN the services carry their constraints and the guard's own resources are untouched
    assert p.constraints(template, "Api") == [GATE]
    assert p.constraints(template, "Xray") == [tier("agents")]
    template.resource_count_is("AWS::ECS::Service", 2)
