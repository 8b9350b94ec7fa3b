"""Template assertions for exits outside Auto Scaling: the two narrow rules and the one new permission."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import pytest
from daemon_guard.core.config import parse_config

from infra.construct import DRAIN_HANDLER, INTAKE_HANDLER
from infra.permissions import FUNCTION_KEYS, Targets, function_statements
from tests.infra.conftest import as_list, render, synth

CONFIG: dict[str, Any] = {"clusters": [{"name": "prod", "autoScalingGroups": ["prod-asg", "prod-spot"]}]}
ASG_ARNS = {
    f"arn:${{AWS::Partition}}:autoscaling:${{AWS::Region}}:${{AWS::AccountId}}:autoScalingGroup:*:"
    f"autoScalingGroupName/{name}" for name in ("prod-asg", "prod-spot")
}


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    _, _, template = synth({"daemon-guard": CONFIG}, tmp_path_factory.mktemp("cdk"), nag=False)
    return template


def _of_type(raw: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in raw["Resources"].items() if r["Type"] == kind}


def _rule(raw: dict[str, Any], detail_type: str) -> dict[str, Any]:
    (rule,) = [r["Properties"] for r in _of_type(raw, "AWS::Events::Rule").values()
               if detail_type in r["Properties"].get("EventPattern", {}).get("detail-type", [])]
    return rule


def _role_of(raw: dict[str, Any], handler: str) -> str:
    fn = next(r for r in _of_type(raw, "AWS::Lambda::Function").values() if r["Properties"]["Handler"] == handler)
    role: str = fn["Properties"]["Role"]["Fn::GetAtt"][0]
    return role


def _statements_of_role(raw: dict[str, Any], role: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        for policy in _of_type(raw, kind).values():
            if {"Ref": role} in policy["Properties"].get("Roles", []):
                found.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return found


def test_the_scheduled_change_rule_matches_ec2_scheduled_changes_only(raw: dict[str, Any]) -> None:
    # GIVEN the default configuration / WHEN synthesized / THEN the Health rule names EC2 and scheduledChange
    rule = _rule(raw, "AWS Health Event")
    assert rule["EventPattern"] == {"source": ["aws.health"], "detail-type": ["AWS Health Event"],
                                    "detail": {"service": ["EC2"], "eventTypeCategory": ["scheduledChange"]}}


def test_the_state_change_rule_matches_the_two_leaving_states_only(raw: dict[str, Any]) -> None:
    rule = _rule(raw, "EC2 Instance State-change Notification")
    assert rule["EventPattern"]["detail"] == {"state": ["stopping", "shutting-down"]}


def test_both_rules_target_the_intake_alias(raw: dict[str, Any]) -> None:
    intake_fn = next(k for k, r in _of_type(raw, "AWS::Lambda::Function").items()
                     if r["Properties"]["Handler"] == INTAKE_HANDLER)
    intake_alias = next(k for k, r in _of_type(raw, "AWS::Lambda::Alias").items()
                        if r["Properties"]["FunctionName"] == {"Ref": intake_fn})
    for detail_type in ("AWS Health Event", "EC2 Instance State-change Notification"):
        (target,) = _rule(raw, detail_type)["Targets"]
        assert target["Arn"] == {"Ref": intake_alias}


def test_set_instance_health_is_granted_to_the_drain_function_alone_on_the_managed_groups(raw: dict[str, Any]) -> None:
    # GIVEN scheduledChange: replace (the default) / WHEN synthesized
    drain_role = _role_of(raw, DRAIN_HANDLER)
    granted = [s for s in _statements_of_role(raw, drain_role)
               if "autoscaling:SetInstanceHealth" in as_list(s["Action"])]
    # THEN the drain's role may mark the managed groups' instances only
    assert len(granted) == 1
    assert {render(r) for r in as_list(granted[0]["Resource"])} == ASG_ARNS
    # and no other role may
    others = [s for role in (r for r in _of_type(raw, "AWS::IAM::Role") if r != drain_role)
              for s in _statements_of_role(raw, role) if "autoscaling:SetInstanceHealth" in as_list(s["Action"])]
    assert others == []


@pytest.mark.parametrize("policy", ["drain", "report"])
def test_without_replace_no_function_may_set_instance_health(policy: str) -> None:
    # GIVEN scheduledChange other than replace / WHEN each function's statements are built
    stack = cdk.Stack(cdk.App(), "Probe")
    targets = Targets(table_arn="arn:aws:dynamodb:us-east-1:111122223333:table/t",
                      dead_letter_queue_arn="arn:aws:sqs:us-east-1:111122223333:dlq",
                      workflow_aliases=["arn:aws:lambda:us-east-1:111122223333:function:d:live"],
                      workflow_executions=["arn:aws:lambda:us-east-1:111122223333:function:d:*"])
    config = parse_config({**CONFIG, "scheduledChange": policy})
    actions = {action for key in FUNCTION_KEYS for st in function_statements(stack, config, key, targets)
               for action in as_list(st.to_json()["Action"])}
    # THEN no function may set instance health
    assert "autoscaling:SetInstanceHealth" not in actions


def test_every_function_may_publish_its_own_events_on_the_default_bus_only(raw: dict[str, Any]) -> None:
    # GIVEN the synthesized app / THEN each function's role has PutEvents on the default bus, source daemon-guard
    for fn in _of_type(raw, "AWS::Lambda::Function").values():
        if "daemon_guard" not in fn["Properties"].get("Handler", ""):
            continue
        role = fn["Properties"]["Role"]["Fn::GetAtt"][0]
        puts = [s for s in _statements_of_role(raw, role) if "events:PutEvents" in as_list(s["Action"])]
        assert len(puts) == 1, fn["Properties"]["Handler"]
        assert [render(r) for r in as_list(puts[0]["Resource"])] == [
            "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/default"]
        assert puts[0]["Condition"] == {"StringEquals": {"events:source": "daemon-guard"}}
