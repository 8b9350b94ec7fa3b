"""Template assertions: one synthesized app (one cluster, two ASGs), checked point by point."""

from __future__ import annotations

import importlib.metadata
import json
import re
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Annotations, Match, Template
from daemon_guard.core.config import LAUNCH_HOOK_NAME, TERMINATE_HOOK_NAME
from daemon_guard.core.metrics import ALL_METRICS, CLUSTER_DIMENSION, NAMESPACE

from infra.construct import DRAIN_HANDLER, INTAKE_HANDLER, LAUNCH_GATE_HANDLER, RECONCILER_HANDLER
from infra.functions import POWERTOOLS_LAYER_PARAMETER
from infra.observability import metrics_named_by_dashboard
from infra.permissions import ECS_MUTATING_ACTIONS, LIFECYCLE_ACTIONS
from tests.infra.conftest import as_list, render, statements, synth

CONFIG: dict[str, Any] = {
    "clusters": [{"name": "prod", "autoScalingGroups": [
        {"name": "prod-asg", "launchHook": True, "launchTimeoutResult": "ABANDON", "heartbeatTimeoutSeconds": 120},
        "prod-spot",
    ]}],
    "drainTiers": [{"name": "agents", "services": ["xray"]}, {"name": "log-router", "services": ["fluent-bit"]}],
    "drainDeadlineSeconds": 900,
    "reconcilePeriodMinutes": 2,
    "alarmEmail": "oncall@example.com",
}
CLUSTER_ARN = "arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:cluster/prod"
ASG_ARNS = {
    f"arn:${{AWS::Partition}}:autoscaling:${{AWS::Region}}:${{AWS::AccountId}}:autoScalingGroup:*:"
    f"autoScalingGroupName/{name}" for name in ("prod-asg", "prod-spot")
}
READ_ONLY = re.compile(r"^[a-z0-9-]+:(Describe|List|Get)[A-Za-z]*$")
TELEMETRY = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}


@pytest.fixture(scope="module")
def synthesized_stack(tmp_path_factory: pytest.TempPathFactory) -> tuple[cdk.Stack, Template, dict[str, Any]]:
    return synth({"daemon-guard": CONFIG}, tmp_path_factory.mktemp("cdk"), nag=False)


@pytest.fixture(scope="module")
def synthesized(synthesized_stack: tuple[cdk.Stack, Template, dict[str, Any]]) -> tuple[Template, dict[str, Any]]:
    _, template, raw = synthesized_stack
    return template, raw


def test_a_new_stack_synthesizes_without_warnings_or_notes(
        synthesized_stack: tuple[cdk.Stack, Template, dict[str, Any]]) -> None:
    # GIVEN the stack synthesized (the durable functions included)
    annotations = Annotations.from_stack(synthesized_stack[0])
    # THEN it carries no warning and no note for `cdk synth` to print (a note that durability "will trigger a
    # resource replacement" is wrong for a stack whose functions are durable from their first deployment)
    assert annotations.find_warning("*", Match.any_value()) == []
    assert annotations.find_info("*", Match.any_value()) == []


@pytest.fixture(scope="module")
def template(synthesized: tuple[Template, dict[str, Any]]) -> Template:
    return synthesized[0]


@pytest.fixture(scope="module")
def raw(synthesized: tuple[Template, dict[str, Any]]) -> dict[str, Any]:
    return synthesized[1]


def resources(raw: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in raw["Resources"].items() if r["Type"] == kind}


def rule_by_detail_type(raw: dict[str, Any], detail_type: str) -> dict[str, Any]:
    found = [r for r in resources(raw, "AWS::Events::Rule").values()
             if detail_type in r["Properties"].get("EventPattern", {}).get("detail-type", [])]
    assert len(found) == 1, detail_type
    properties: dict[str, Any] = found[0]["Properties"]
    return properties


def logical_id_of_handler(raw: dict[str, Any], handler: str) -> str:
    return next(k for k, r in resources(raw, "AWS::Lambda::Function").items() if r["Properties"]["Handler"] == handler)


def alias_of(raw: dict[str, Any], function_id: str) -> str:
    return next(k for k, r in resources(raw, "AWS::Lambda::Alias").items()
                if r["Properties"]["FunctionName"] == {"Ref": function_id})


# --- event rules ----------------------------------------------------------------------------------

@pytest.mark.parametrize("detail_type", ["ECS Container Instance State Change", "ECS Task State Change"])
def test_ecs_state_rules_match_only_the_managed_cluster(raw: dict[str, Any], detail_type: str) -> None:
    # GIVEN one managed cluster / WHEN synthesized / THEN the rule names that cluster's ARN, nothing wider
    pattern = rule_by_detail_type(raw, detail_type)["EventPattern"]
    assert pattern["source"] == ["aws.ecs"]
    assert [render(a) for a in pattern["detail"]["clusterArn"]] == [CLUSTER_ARN]


def test_placement_failure_rule_matches_the_cluster_and_the_event_name(raw: dict[str, Any]) -> None:
    pattern = rule_by_detail_type(raw, "ECS Service Action")["EventPattern"]
    assert [render(a) for a in pattern["detail"]["clusterArn"]] == [CLUSTER_ARN]
    assert pattern["detail"]["eventName"] == ["SERVICE_TASK_PLACEMENT_FAILURE"]


def test_lifecycle_rules_match_the_groups_with_that_hook_and_our_hook_name(raw: dict[str, Any]) -> None:
    launch = rule_by_detail_type(raw, "EC2 Instance-launch Lifecycle Action")["EventPattern"]
    terminate = rule_by_detail_type(raw, "EC2 Instance-terminate Lifecycle Action")["EventPattern"]
    assert launch["source"] == terminate["source"] == ["aws.autoscaling"]
    assert launch["detail"] == {"AutoScalingGroupName": ["prod-asg"], "LifecycleHookName": [LAUNCH_HOOK_NAME]}
    assert terminate["detail"] == {"AutoScalingGroupName": ["prod-asg", "prod-spot"],
                                   "LifecycleHookName": [TERMINATE_HOOK_NAME]}


@pytest.mark.parametrize("detail_type", ["EC2 Spot Instance Interruption Warning",
                                         "EC2 Instance Rebalance Recommendation"])
def test_spot_rules_match_the_event_type_from_ec2(raw: dict[str, Any], detail_type: str) -> None:
    pattern = rule_by_detail_type(raw, detail_type)["EventPattern"]
    assert pattern == {"source": ["aws.ec2"], "detail-type": [detail_type]}


def test_every_rule_targets_the_intake_alias_with_dlq_retries_and_max_age(raw: dict[str, Any]) -> None:
    intake_alias = alias_of(raw, logical_id_of_handler(raw, INTAKE_HANDLER))
    dlq = next(iter(resources(raw, "AWS::SQS::Queue")))
    pattern_rules = [r for r in resources(raw, "AWS::Events::Rule").values() if "EventPattern" in r["Properties"]]
    assert len(pattern_rules) == 9  # 7 + the two exits outside Auto Scaling (issue 12)
    for rule in pattern_rules:
        (target,) = rule["Properties"]["Targets"]
        assert target["Arn"] == {"Ref": intake_alias}
        assert target["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": [dlq, "Arn"]}
        assert target["RetryPolicy"] == {"MaximumRetryAttempts": 4, "MaximumEventAgeInSeconds": 3600}


def test_reconciler_runs_on_the_configured_period(raw: dict[str, Any]) -> None:
    reconciler_alias = alias_of(raw, logical_id_of_handler(raw, RECONCILER_HANDLER))
    (schedule,) = [r["Properties"] for r in resources(raw, "AWS::Events::Rule").values()
                   if "ScheduleExpression" in r["Properties"]]
    assert schedule["ScheduleExpression"] == "rate(2 minutes)"
    assert schedule["Targets"][0]["Arn"] == {"Ref": reconciler_alias}
    assert "DeadLetterConfig" in schedule["Targets"][0]


def test_dead_letter_queue_is_encrypted_and_ssl_only(template: Template) -> None:
    template.has_resource_properties("AWS::SQS::Queue", {"SqsManagedSseEnabled": True})
    template.has_resource_properties("AWS::SQS::QueuePolicy", {"PolicyDocument": {"Statement": Match.array_with([
        Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})])}})


# --- lifecycle hooks ------------------------------------------------------------------------------

def test_lifecycle_hooks_set_default_result_and_heartbeat_explicitly(raw: dict[str, Any]) -> None:
    hooks = sorted(
        (h["Properties"]["AutoScalingGroupName"], h["Properties"]["LifecycleTransition"],
         h["Properties"]["DefaultResult"], h["Properties"]["HeartbeatTimeout"], h["Properties"]["LifecycleHookName"])
        for h in resources(raw, "AWS::AutoScaling::LifecycleHook").values()
    )
    assert hooks == [
        ("prod-asg", "autoscaling:EC2_INSTANCE_LAUNCHING", "ABANDON", 120, LAUNCH_HOOK_NAME),
        ("prod-asg", "autoscaling:EC2_INSTANCE_TERMINATING", "CONTINUE", 120, TERMINATE_HOOK_NAME),
        ("prod-spot", "autoscaling:EC2_INSTANCE_TERMINATING", "CONTINUE", 300, TERMINATE_HOOK_NAME),
    ]


# --- functions ------------------------------------------------------------------------------------

def test_functions_run_python313_on_arm64_with_tracing_and_log_retention(raw: dict[str, Any]) -> None:
    functions = resources(raw, "AWS::Lambda::Function")
    log_groups = resources(raw, "AWS::Logs::LogGroup")
    assert {f["Properties"]["Handler"] for f in functions.values()} == {
        INTAKE_HANDLER, RECONCILER_HANDLER, DRAIN_HANDLER, LAUNCH_GATE_HANDLER}
    code = {json.dumps(f["Properties"]["Code"], sort_keys=True) for f in functions.values()}
    assert len(code) == 1, "one asset for every handler"
    for fn in functions.values():
        props = fn["Properties"]
        assert props["Runtime"] == "python3.13"
        assert props["Architectures"] == ["arm64"]
        assert props["TracingConfig"] == {"Mode": "Active"}
        log_group = props["LoggingConfig"]["LogGroup"]["Ref"]
        assert log_groups[log_group]["Properties"]["RetentionInDays"] == 30


def test_functions_use_the_aws_published_powertools_layer(raw: dict[str, Any]) -> None:
    (parameter_id,) = [k for k, p in raw["Parameters"].items() if p["Default"] == POWERTOOLS_LAYER_PARAMETER]
    for fn in resources(raw, "AWS::Lambda::Function").values():
        assert fn["Properties"]["Layers"] == [{"Ref": parameter_id}]


def test_powertools_layer_is_the_release_the_tests_run() -> None:
    # GIVEN the Powertools the tests run / THEN the layer parameter names exactly that release, not `latest`
    installed = importlib.metadata.version("aws-lambda-powertools")
    assert f"/aws/service/powertools/python/arm64/python3.13/{installed}" == POWERTOOLS_LAYER_PARAMETER


def test_async_invocation_settings_sit_on_the_alias_the_rules_invoke(raw: dict[str, Any]) -> None:
    # GIVEN rules that target the intake's and the reconciler's `live` alias
    configs = resources(raw, "AWS::Lambda::EventInvokeConfig")
    by_function = {c["Properties"]["FunctionName"]["Ref"]: c["Properties"] for c in configs.values()}
    (dlq,) = resources(raw, "AWS::SQS::Queue")
    for handler, retries in ((INTAKE_HANDLER, 2), (RECONCILER_HANDLER, 0)):
        fn = logical_id_of_handler(raw, handler)
        alias = alias_of(raw, fn)
        targets = [t["Arn"] for r in resources(raw, "AWS::Events::Rule").values()
                   for t in r["Properties"].get("Targets", []) if t["Arn"] == {"Ref": alias}]
        assert targets, handler
        # THEN the EventInvokeConfig Lambda applies is the alias's: retries, 1 h maximum age, failures to the DLQ
        props = by_function[fn]
        assert props["Qualifier"] == {"Fn::Select": [7, {"Fn::Split": [":", {"Ref": alias}]}]}, handler  # "live"
        assert props["MaximumRetryAttempts"] == retries
        assert props["MaximumEventAgeInSeconds"] == 3600
        assert props["DestinationConfig"] == {"OnFailure": {"Destination": {"Fn::GetAtt": [dlq, "Arn"]}}}
    assert len(configs) == 2  # none on $LATEST


def test_functions_receive_the_validated_config_and_the_workflow_aliases(raw: dict[str, Any]) -> None:
    for fn in resources(raw, "AWS::Lambda::Function").values():
        env = fn["Properties"]["Environment"]["Variables"]
        assert json.loads(env["DAEMON_GUARD_CONFIG"])["clusters"][0]["name"] == "prod"
        assert "POWERTOOLS_SERVICE_NAME" not in env  # it would add a `service` dimension to every metric
        assert env["POWERTOOLS_METRICS_NAMESPACE"] == NAMESPACE
        assert "Ref" in env["STATE_TABLE"]
        assert render(env["DRAIN_FUNCTION"]).endswith("-drain:live")
        assert render(env["LAUNCH_GATE_FUNCTION"]).endswith("-launch-gate:live")


def test_each_function_gets_its_own_attempts_per_ecs_call(raw: dict[str, Any]) -> None:
    # GIVEN the synthesized stack / THEN the workflows retry ECS calls little (they are their own retry loop,
    # racing Spot notices), the reconciler moderately (it must end inside its period), all through the SDK; the
    # intake retries while its invocation has time (its attempts only a ceiling)
    variables = [f["Properties"]["Environment"]["Variables"] | {"handler": f["Properties"]["Handler"]}
                 for f in resources(raw, "AWS::Lambda::Function").values()]
    assert {v["handler"]: (v["ECS_MAX_ATTEMPTS"], v["ECS_RETRY"]) for v in variables} == {
        INTAKE_HANDLER: ("20", "deadline"), RECONCILER_HANDLER: ("4", "sdk"), DRAIN_HANDLER: ("3", "sdk"),
        LAUNCH_GATE_HANDLER: ("3", "sdk")}


def test_workflows_are_durable_and_published_behind_live_aliases(raw: dict[str, Any]) -> None:
    functions = resources(raw, "AWS::Lambda::Function")
    durable = {f["Properties"]["Handler"]: f["Properties"].get("DurableConfig") for f in functions.values()}
    assert durable[DRAIN_HANDLER] == {"ExecutionTimeout": 900 + 900, "RetentionPeriodInDays": 14}
    # The gate applies its timeout result at its first look past launchGateTimeoutSeconds (default 600 s),
    # at most one heartbeat (120 s) later: the execution must outlive that, then release its claim.
    assert durable[LAUNCH_GATE_HANDLER] == {"ExecutionTimeout": 600 + 120 + 900, "RetentionPeriodInDays": 14}
    assert durable[INTAKE_HANDLER] is None and durable[RECONCILER_HANDLER] is None
    aliases = resources(raw, "AWS::Lambda::Alias")
    assert sorted(a["Properties"]["Name"] for a in aliases.values()) == ["live"] * 4
    assert all("Fn::GetAtt" in a["Properties"]["FunctionVersion"] for a in aliases.values())


# --- state ----------------------------------------------------------------------------------------

def test_state_table_is_on_demand_with_ttl_pitr_and_encryption(template: Template) -> None:
    template.has_resource_properties("AWS::DynamoDB::Table", {
        "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        "TimeToLiveSpecification": {"AttributeName": "expiresAt", "Enabled": True},
        "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
        "SSESpecification": {"SSEEnabled": True},
    })


# --- least privilege ------------------------------------------------------------------------------

def test_no_mutating_action_on_star_without_a_condition(raw: dict[str, Any]) -> None:
    for policy, statement in statements(raw):
        if "*" in as_list(statement["Resource"]) and "Condition" not in statement:
            loose = [a for a in as_list(statement["Action"]) if not READ_ONLY.match(a) and a not in TELEMETRY]
            assert loose == [], f"{policy}: {loose} on '*' without a condition"


def test_mutating_ecs_actions_require_the_managed_cluster(raw: dict[str, Any]) -> None:
    seen: set[str] = set()
    for policy, statement in statements(raw):
        actions = set(as_list(statement["Action"]))
        mutating = actions & set(ECS_MUTATING_ACTIONS)
        if not mutating:
            continue
        seen |= mutating
        clusters = statement["Condition"]["ArnEquals"]["ecs:cluster"]
        assert [render(c) for c in as_list(clusters)] == [CLUSTER_ARN], policy
    assert seen == set(ECS_MUTATING_ACTIONS) - {"ecs:PutAttributes"}  # preempt mode opens no gates


def test_lifecycle_actions_are_scoped_to_the_managed_groups(raw: dict[str, Any]) -> None:
    # GIVEN two managed ASGs / WHEN synthesized / THEN Complete/Heartbeat name those two ASG ARNs only
    scoped = [s for _, s in statements(raw) if set(as_list(s["Action"])) & set(LIFECYCLE_ACTIONS)]
    assert scoped
    for statement in scoped:
        assert {render(r) for r in as_list(statement["Resource"])} == ASG_ARNS
        assert "Condition" not in statement


def actions_of(raw: dict[str, Any], handler: str) -> set[str]:
    """Every action the role of the function with `handler` is granted."""
    role = raw["Resources"][logical_id_of_handler(raw, handler)]["Properties"]["Role"]["Fn::GetAtt"][0]
    out: set[str] = set()
    for resource in raw["Resources"].values():
        if resource["Type"] == "AWS::IAM::Policy" and {"Ref": role} in resource["Properties"]["Roles"]:
            for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
                out |= set(as_list(statement["Action"]))
    return out


def test_every_function_that_can_reach_the_placement_reflex_may_read_task_protection(raw: dict[str, Any]) -> None:
    # GIVEN preempt mode: the reflex reads GetTaskProtection before evicting (intake, reconciler, launch gate)
    for handler in (INTAKE_HANDLER, RECONCILER_HANDLER, LAUNCH_GATE_HANDLER):
        assert {"ecs:GetTaskProtection", "ecs:StopTask"} <= actions_of(raw, handler)
        assert "ecs:PutAttributes" not in actions_of(raw, handler)  # gates are opened in gate mode only
    assert "ecs:GetTaskProtection" not in actions_of(raw, DRAIN_HANDLER)


def test_only_the_drain_may_set_instances_draining(raw: dict[str, Any]) -> None:
    assert "ecs:UpdateContainerInstancesState" in actions_of(raw, DRAIN_HANDLER)
    for handler in (INTAKE_HANDLER, RECONCILER_HANDLER, LAUNCH_GATE_HANDLER):
        assert "ecs:UpdateContainerInstancesState" not in actions_of(raw, handler), handler


def test_workflows_are_invoked_only_through_their_aliases(raw: dict[str, Any]) -> None:
    invokes = [s for _, s in statements(raw) if "lambda:InvokeFunction" in as_list(s["Action"])]
    assert len(invokes) == 2  # intake and reconciler
    for statement in invokes:
        targets = sorted(render(r) for r in as_list(statement["Resource"]))
        assert len(targets) == 2
        assert targets[0].endswith("-drain:live") and targets[1].endswith("-launch-gate:live")


def test_durable_checkpoints_are_allowed_on_each_workflows_own_executions(raw: dict[str, Any]) -> None:
    checkpoints = [(p, s) for p, s in statements(raw) if "lambda:CheckpointDurableExecution" in as_list(s["Action"])]
    assert len(checkpoints) == 2
    for _, statement in checkpoints:
        (resource,) = as_list(statement["Resource"])
        assert re.search(r":function:[A-Za-z0-9-]+-(drain|launch-gate):\*$", render(resource))


def test_intake_can_wake_workflows_by_callback(raw: dict[str, Any]) -> None:
    callbacks = [s for _, s in statements(raw)
                 if "lambda:SendDurableExecutionCallbackSuccess" in as_list(s["Action"])]
    assert len(callbacks) == 1  # the intake only: the reconciler starts workflows, never wakes them
    assert "lambda:SendDurableExecutionCallbackSuccess" in actions_of(raw, INTAKE_HANDLER)
    for statement in callbacks:
        assert all(render(r).endswith(":*") for r in as_list(statement["Resource"]))


# --- dashboard and alarms -------------------------------------------------------------------------

def test_dashboard_names_every_catalogue_metric_meant_for_it(raw: dict[str, Any]) -> None:
    (dashboard,) = resources(raw, "AWS::CloudWatch::Dashboard").values()
    body = render(dashboard["Properties"]["DashboardBody"])

    def named(name: str) -> bool:  # a plain metric, or a SEARCH over extra dimensions
        return f'"{name}"' in body or f'MetricName=\\"{name}\\"' in body

    for spec in ALL_METRICS:
        assert named(spec.name) == spec.on_dashboard, spec.name
    assert f'"{NAMESPACE}"' in body and f'"{CLUSTER_DIMENSION}"' in body
    for plumbing in ("FailedInvocations", "ApproximateNumberOfMessagesVisible", "Errors", "Throttles", "Duration"):
        assert f'"{plumbing}"' in body
    assert '"value":100' in body  # coverage target
    assert '"value":4' in body  # drain overhead target: 2 s x 2 tiers
    assert all(named(name) for name, _ in metrics_named_by_dashboard())
    assert 'SEARCH(\'{DaemonGuard,Cluster,Tier} MetricName=\\"TierDuration\\" Cluster=\\"prod\\"' in body


def test_alarms_cover_dlq_coverage_deadlines_blocked_stuck_and_errors(raw: dict[str, Any]) -> None:
    alarms = list(resources(raw, "AWS::CloudWatch::Alarm").values())
    topic = next(iter(resources(raw, "AWS::SNS::Topic")))
    by_metric: dict[str, list[dict[str, Any]]] = {}
    for alarm in alarms:
        props = alarm["Properties"]
        assert props["AlarmActions"] == [{"Ref": topic}]
        by_metric.setdefault(props["MetricName"], []).append(props)
    (dlq,) = by_metric["ApproximateNumberOfMessagesVisible"]
    assert (dlq["ComparisonOperator"], dlq["Threshold"]) == ("GreaterThanThreshold", 0)
    (coverage,) = by_metric["DaemonCoverage"]
    assert (coverage["ComparisonOperator"], coverage["Threshold"]) == ("LessThanThreshold", 100)
    assert coverage["Period"] * coverage["EvaluationPeriods"] == 300
    assert coverage["Dimensions"] == [{"Name": CLUSTER_DIMENSION, "Value": "prod"}]
    for name in ("DeadlinesMissed", "DrainsBlocked", "StuckLifecycleActions"):
        (alarm,) = by_metric[name]
        assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)
    assert len(by_metric["Errors"]) == 4


def test_alarm_topic_is_encrypted_and_mails_the_configured_address(template: Template) -> None:
    template.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": Match.any_value()})
    template.has_resource_properties("AWS::SNS::Subscription", {"Protocol": "email",
                                                                "Endpoint": "oncall@example.com"})
    template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True, "KeyPolicy": {
        "Statement": Match.array_with([Match.object_like({
            "Principal": {"Service": "cloudwatch.amazonaws.com"}})])}})


def test_cloudwatch_may_use_the_key_only_for_this_accounts_alarms(raw: dict[str, Any]) -> None:
    (key,) = resources(raw, "AWS::KMS::Key").values()
    (statement,) = [s for s in key["Properties"]["KeyPolicy"]["Statement"]
                    if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}]
    assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    assert render(statement["Condition"]["ArnLike"]["aws:SourceArn"]) == (
        "arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:*")


def test_lifecycle_hooks_are_created_after_what_handles_their_events(raw: dict[str, Any]) -> None:
    # GIVEN a hook holds every instance from the moment it exists
    needed = set(resources(raw, "AWS::Events::Rule")) | set(resources(raw, "AWS::Lambda::Function")) \
        | set(resources(raw, "AWS::Lambda::Alias")) | set(resources(raw, "AWS::IAM::Policy")) \
        | set(resources(raw, "AWS::Lambda::EventInvokeConfig")) | set(resources(raw, "AWS::Lambda::Permission"))
    hooks = resources(raw, "AWS::AutoScaling::LifecycleHook")
    assert hooks
    for hook_id, hook in hooks.items():
        # THEN it waits for every rule, function, alias, invoke config, permission and policy
        assert needed <= set(hook.get("DependsOn", [])), hook_id


def test_stack_outputs_name_what_operators_need(raw: dict[str, Any]) -> None:
    outputs = raw["Outputs"]
    by_suffix = {next(s for s in ("DrainAliasArn", "LaunchGateAliasArn", "DashboardUrl", "StateTableName",
                                  "DeadLetterQueueUrl", "AlarmTopicArn") if s in k): v["Value"]
                 for k, v in outputs.items()}
    assert by_suffix["DrainAliasArn"] == {"Ref": alias_of(raw, logical_id_of_handler(raw, DRAIN_HANDLER))}
    assert by_suffix["LaunchGateAliasArn"] == {
        "Ref": alias_of(raw, logical_id_of_handler(raw, LAUNCH_GATE_HANDLER))}
    assert by_suffix["StateTableName"] == {"Ref": next(iter(resources(raw, "AWS::DynamoDB::Table")))}
    assert by_suffix["DeadLetterQueueUrl"] == {"Ref": next(iter(resources(raw, "AWS::SQS::Queue")))}
    assert by_suffix["AlarmTopicArn"] == {"Ref": next(iter(resources(raw, "AWS::SNS::Topic")))}
    dashboard = next(iter(resources(raw, "AWS::CloudWatch::Dashboard")))
    assert "#dashboards:name=${" + dashboard + "}" in render(by_suffix["DashboardUrl"])

