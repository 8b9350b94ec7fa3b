"""The DaemonGuard construct: everything one deployment needs, from one validated configuration.

Usable from your own CDK app (``pip install`` the wheel; the package is ``daemon_guard_cdk``)::

    from daemon_guard_cdk import DaemonGuard, DaemonGuardProps

    guard = DaemonGuard(stack, "DaemonGuard", DaemonGuardProps(config={
        "clusters": [{"name": cluster, "autoScalingGroups": [asg, {"name": "prod-spot", "launchHook": True}]}],
    }))
    guard.protect(app)  # the constraints the configuration needs, on the app's ECS services (GateConstraints)

A cluster may be given by name or as an ``ecs.ICluster``, a group by name or as an
``autoscaling.IAutoScalingGroup`` (alone or as the ``name`` of a group object); the construct
reads their names, which must be known at synth (imported resources, or ones created with an
explicit ``cluster_name`` / ``auto_scaling_group_name``).

ECS managed draining: two terminate hooks on one group would race, so the construct refuses a
managed group whose capacity provider runs ECS managed draining unless the group says
``coexistWithManagedDraining``. Synth cannot ask AWS, so you declare capacity providers in
`DaemonGuardProps.capacity_providers` (the app reads them from the context key
``daemon-guard:capacity-providers``). Undeclared providers are not checked at synth; the
functions may read them at run time (``ecs:DescribeCapacityProviders`` is granted).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_ssm as ssm
from constructs import Construct
from daemon_guard.core.config import Config, ConfigError, parse_config
from daemon_guard.core.metrics import NAMESPACE

from .bundling import lambda_asset
from .configdoc import config_env_value
from .constraints import GateConstraints
from .functions import (
    POWERTOOLS_LAYER_PARAMETER,
    FunctionSpec,
    GuardFunction,
    alias_arn,
    durable_executions_arn,
    function_arn,
)
from .nag import acknowledge, acknowledge_wildcards
from .observability import DaemonGuardObservability, ObservabilityProps
from .permissions import Targets, ecs_arn, function_statements
from .rules import DaemonGuardRules, RulesProps, asg_arn

INTAKE_HANDLER = "daemon_guard.entrypoints.intake.handler"
RECONCILER_HANDLER = "daemon_guard.entrypoints.reconciler.handler"
DRAIN_HANDLER = "daemon_guard.entrypoints.drain.handler"
LAUNCH_GATE_HANDLER = "daemon_guard.entrypoints.launch_gate.handler"
TTL_ATTRIBUTE = "expiresAt"
WORKFLOW_MARGIN = cdk.Duration.minutes(15)


@dataclass(frozen=True, kw_only=True)
class CapacityProviderInfo:
    """An ECS capacity provider, as declared by the operator (synth cannot query AWS)."""

    name: str
    auto_scaling_group: str
    managed_draining: bool


@dataclass(frozen=True, kw_only=True)
class DaemonGuardProps:
    """Props of `DaemonGuard`; every optional prop states its default."""

    config: Config | Mapping[str, Any]
    """A validated `Config`, or the raw document (cdk.json context format) to validate; in the document a
    cluster may be an ``ecs.ICluster`` and a group an ``autoscaling.IAutoScalingGroup`` instead of a name."""
    capacity_providers: Sequence[CapacityProviderInfo] = field(default_factory=tuple)
    """Default: none declared (no synth-time managed-draining check)."""
    log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH
    """Default: one month."""
    lambdas_dir: Path | None = None
    """A folder holding the ``daemon_guard`` package to bundle. Default: the package this construct was
    installed with (the repository's ``lambdas/`` folder, or the wheel's own copy)."""
    install_dependencies: bool | None = None
    """Default: pip-install the durable SDK into the asset, unless the context flag
    ``daemon-guard:skip-bundling-install`` or ``DAEMON_GUARD_SKIP_BUNDLING_INSTALL=1`` says skip."""
    powertools_layer_parameter: str = POWERTOOLS_LAYER_PARAMETER
    """Default: the AWS-published Powertools layer for arm64 python3.13, latest version."""
    alarm_topic: sns.ITopic | None = None
    """Default: the config's alarmTopicArn if set, else a new KMS-encrypted topic (with the
    config's alarmEmail subscribed if set). Setting both this and alarmTopicArn is refused."""
    encryption_key: kms.IKey | None = None
    """Default: a new customer managed key (rotation on) for the alarm topic; the state table
    then uses the DynamoDB AWS managed key. When given, the table and the topic use this key."""
    event_retry_attempts: int = 4
    """EventBridge target retries. Default: 4."""
    event_max_age: cdk.Duration = field(default_factory=lambda: cdk.Duration.hours(1))
    """EventBridge and Lambda async maximum event age. Default: 1 hour."""
    workflow_retention: cdk.Duration = field(default_factory=lambda: cdk.Duration.days(14))
    """Durable execution history retention. Default: 14 days."""
    drain_execution_timeout: cdk.Duration | None = None
    """Default: drainDeadlineSeconds + 15 minutes."""
    launch_gate_execution_timeout: cdk.Duration | None = None
    """Default: launchGateTimeoutSeconds + the longest launch-hook heartbeat + 15 minutes (the gate applies
    its timeout result at its first look past launchGateTimeoutSeconds, at most one heartbeat later)."""
    removal_policy: cdk.RemovalPolicy = cdk.RemovalPolicy.DESTROY
    """For the state table. Default: destroy (it holds short-lived bookkeeping with a TTL)."""
    dashboard_name: str | None = None
    """Default: generated by CloudFormation."""


def _name_of(value: Any, attribute: str, where: str) -> Any:
    """The name of a CDK object (``cluster_name`` / ``auto_scaling_group_name``); other values unchanged."""
    if isinstance(value, str) or not hasattr(value, attribute):
        return value
    name = getattr(value, attribute)
    if cdk.Token.is_unresolved(name):
        raise ConfigError(
            f"daemon-guard config: {where}: the name of {value.node.path} is not known at synth; "
            f"create it with an explicit {'cluster_name' if attribute == 'cluster_name' else 'auto_scaling_group_name'}"
            " or pass the name as a string")
    return name


def resolve_cdk_objects(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The configuration document with every ``ICluster`` / ``IAutoScalingGroup`` replaced by its name."""
    resolved = dict(doc)
    clusters = doc.get("clusters")
    if not isinstance(clusters, list):
        return resolved
    out = []
    for i, raw in enumerate(clusters):
        if not isinstance(raw, Mapping):
            out.append(raw)
            continue
        cluster = {**raw, "name": _name_of(raw.get("name"), "cluster_name", f"clusters[{i}].name")}
        groups = cluster.get("autoScalingGroups")
        if isinstance(groups, list):
            attr = "auto_scaling_group_name"
            cluster["autoScalingGroups"] = [
                {**g, "name": _name_of(g.get("name"), attr, f"clusters[{i}].autoScalingGroups[{j}].name")}
                if isinstance(g, Mapping) else _name_of(g, attr, f"clusters[{i}].autoScalingGroups[{j}]")
                for j, g in enumerate(groups)]
        out.append(cluster)
    resolved["clusters"] = out
    return resolved


def _check_managed_draining(config: Config, providers: Sequence[CapacityProviderInfo]) -> None:
    for index, provider in enumerate(providers):
        group = config.group(provider.auto_scaling_group)
        if group is None or not provider.managed_draining or not group.terminate_hook:
            continue
        if not group.coexist_with_managed_draining:
            cluster = config.cluster_of_group(group.name)
            where = f"clusters[{cluster.name if cluster else '?'}].autoScalingGroups[{group.name}]"
            raise ConfigError(
                f"daemon-guard config: {where}.coexistWithManagedDraining: capacity provider "
                f"{provider.name!r} (capacityProviders[{index}]) runs ECS managed draining on this group, "
                "and two terminate hooks would race; turn managed draining off on the capacity provider, "
                "or set \"coexistWithManagedDraining\": true (daemon-guard then orders daemons only) "
                "or \"terminateHook\": false"
            )


def function_specs(config: Config, props: DaemonGuardProps) -> dict[str, FunctionSpec]:
    """Each function's handler, Timeout and (for the durable workflows) execution timeout and retention."""
    longest_launch_heartbeat = max(
        (g.heartbeat_timeout_s for c in config.clusters for g in c.groups if g.launch_hook), default=0)
    return {
        "intake": FunctionSpec(key="intake", handler=INTAKE_HANDLER, timeout=cdk.Duration.seconds(60),
                               description="intake: EventBridge events to placement and workflows"),
        "reconciler": FunctionSpec(
            key="reconciler", handler=RECONCILER_HANDLER,
            timeout=cdk.Duration.seconds(max(60, min(config.reconcile_period_min * 60, 900))),
            description="reconciler: coverage audit and repair"),
        "drain": FunctionSpec(
            key="drain", handler=DRAIN_HANDLER, timeout=cdk.Duration.minutes(5),
            description="drain workflow (durable)",
            durable_execution_timeout=props.drain_execution_timeout
            or cdk.Duration.seconds(config.drain_deadline_s).plus(WORKFLOW_MARGIN),
            durable_retention=props.workflow_retention),
        "launch-gate": FunctionSpec(
            key="launch-gate", handler=LAUNCH_GATE_HANDLER, timeout=cdk.Duration.minutes(5),
            description="launch gate workflow (durable)",
            durable_execution_timeout=props.launch_gate_execution_timeout
            or cdk.Duration.seconds(config.launch_gate_timeout_s + longest_launch_heartbeat).plus(WORKFLOW_MARGIN),
            durable_retention=props.workflow_retention),
    }


class DaemonGuard(Construct):
    """Daemon-first placement and ordered drains for the configured ECS clusters and ASGs.

    Attributes
    ----------
    config: the validated configuration.
    table: the DynamoDB state table (``pk``/``sk``, TTL ``expiresAt``).
    dlq: the encrypted SQS dead-letter queue of every rule target and async invocation.
    topic: the alarm topic.
    key: the KMS key this construct created, if any.
    intake, reconciler, drain, launch_gate: `GuardFunction` (``.function``, ``.alias``, ``.role``,
        ``.log_group``, ``.version``).
    functions: the four, by key.
    rules: the EventBridge rules by key (``reconcile`` is the schedule).
    lifecycle_hooks: the `CfnLifecycleHook` resources.
    dashboard, alarms: from `DaemonGuardObservability`.
    """

    def __init__(self, scope: Construct, construct_id: str, props: DaemonGuardProps) -> None:
        super().__init__(scope, construct_id)
        config = props.config if isinstance(props.config, Config) else parse_config(resolve_cdk_objects(props.config))
        if props.alarm_topic is not None and config.alarm_topic_arn is not None:
            raise ConfigError("daemon-guard config: alarmTopicArn: set it or pass the alarm_topic prop, not both")
        _check_managed_draining(config, props.capacity_providers)
        self.config = config
        self.props = props

        topic_key = self._state(config, props)
        self.topic = self._alarm_topic(config, props, topic_key)
        base = cdk.Names.unique_resource_name(self, max_length=48, separator="-")
        names = {key: f"{base}-{key}" for key in ("intake", "reconciler", "drain", "launch-gate")}
        self.functions: dict[str, GuardFunction] = self._functions(config, props, names)
        self.intake = self.functions["intake"]
        self.reconciler = self.functions["reconciler"]
        self.drain = self.functions["drain"]
        self.launch_gate = self.functions["launch-gate"]
        self.policies: dict[str, iam.Policy] = self._grant(config, props, names)

        self.rules_construct = DaemonGuardRules(self, "Rules", RulesProps(
            config=config, intake=self.intake.alias, reconciler=self.reconciler.alias, dlq=self.dlq,
            retry_attempts=props.event_retry_attempts, max_event_age=props.event_max_age,
        ))
        self.rules = self.rules_construct.rules
        self.lifecycle_hooks = self.rules_construct.lifecycle_hooks

        self.observability = DaemonGuardObservability(self, "Observability", ObservabilityProps(
            config=config, topic=self.topic, dlq=self.dlq, dashboard_name=props.dashboard_name,
            functions={k: f.function for k, f in self.functions.items()},
            rules=dict(self.rules),
        ))
        self.dashboard = self.observability.dashboard
        self.alarms = self.observability.alarms
        # A lifecycle hook holds instances from the moment it exists: create it only once the rules that
        # deliver its events, the functions that handle them and their permissions are all in place.
        # (A GuardFunction holds its role, policies, function, alias, invoke config and invoke permissions.)
        for hook in self.lifecycle_hooks:
            hook.node.add_dependency(*self.rules.values(), *self.functions.values())
        self._outputs()
        self._acknowledge_nag_findings(names)

    def _state(self, config: Config, props: DaemonGuardProps) -> kms.IKey | None:
        """The state table, the dead-letter queue and (when nothing else encrypts the alarm topic) a key for
        it; returns the key the alarm topic uses."""
        self.key: kms.Key | None = None
        if props.encryption_key is None and props.alarm_topic is None and config.alarm_topic_arn is None:
            self.key = kms.Key(self, "Key", enable_key_rotation=True,
                               description="daemon-guard alarm topic", removal_policy=cdk.RemovalPolicy.DESTROY)
        self.table = dynamodb.Table(
            self, "State",
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            time_to_live_attribute=TTL_ATTRIBUTE,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True),
            encryption=(dynamodb.TableEncryption.CUSTOMER_MANAGED if props.encryption_key
                        else dynamodb.TableEncryption.AWS_MANAGED),
            encryption_key=props.encryption_key,
            removal_policy=props.removal_policy,
        )
        self.dlq = sqs.Queue(
            self, "DeadLetters", encryption=sqs.QueueEncryption.SQS_MANAGED, enforce_ssl=True,
            retention_period=cdk.Duration.days(14),
        )
        return props.encryption_key or self.key

    def _functions(self, config: Config, props: DaemonGuardProps,
                   names: Mapping[str, str]) -> dict[str, GuardFunction]:
        """The four functions (`function_specs`), each with its environment, layer, alias and retries."""
        aliases = {key: alias_arn(self, name) for key, name in names.items()}
        environment = {
            "DAEMON_GUARD_CONFIG": config_env_value(config),
            "STATE_TABLE": self.table.table_name,
            "DRAIN_FUNCTION": aliases["drain"],
            "LAUNCH_GATE_FUNCTION": aliases["launch-gate"],
            # No POWERTOOLS_SERVICE_NAME: Powertools would add a `service` dimension to every metric,
            # and the dashboard and alarms read exactly {Cluster, ...}. The Logger names its service in code.
            "POWERTOOLS_METRICS_NAMESPACE": NAMESPACE,
        }
        code = lambda_asset(self, package_dir=props.lambdas_dir / "daemon_guard" if props.lambdas_dir else None,
                            install=props.install_dependencies)
        layer = lambda_.LayerVersion.from_layer_version_arn(
            self, "Powertools", ssm.StringParameter.value_for_string_parameter(self, props.powertools_layer_parameter),
        )
        # EventBridge invokes the intake's and the reconciler's `live` alias asynchronously: what still fails
        # after the retries lands in the DLQ (alarmed). Workflow executions report through durable execution
        # state. The reconciler is not retried: the next tick repeats its pass.
        async_retries = {"intake": 2, "reconciler": 0}
        # Attempts per ECS call (the SDK's adaptive retries) differ by function: a durable workflow is its own
        # retry loop and must not sit in the SDK's backoff while a Spot notice runs out, and the reconciler
        # must finish inside its period. The intake has an event to answer and a Timeout: any fixed count is
        # wrong for it (fewer defer more placement checks to the reconciler, which leaves a gate shut past its
        # timeout for up to a run; more back off past its 60 s Timeout under a throttling storm), so it retries
        # while its invocation has time for the wait and a reserve (`ECS_RETRY=deadline`, `core.retry`), its
        # attempts only a ceiling.
        ecs_attempts = {"intake": 20, "reconciler": 4, "drain": 3, "launch-gate": 3}
        ecs_retry = {"intake": "deadline", "reconciler": "sdk", "drain": "sdk", "launch-gate": "sdk"}
        return {
            key: GuardFunction(
                self, "".join(p.title() for p in key.split("-")), spec=spec, function_name=names[key], code=code,
                layers=[layer], environment={**environment, "ECS_MAX_ATTEMPTS": str(ecs_attempts[key]),
                                           "ECS_RETRY": ecs_retry[key]},
                log_retention=props.log_retention,
                dead_letter_queue=self.dlq if key in async_retries else None,
                async_retry_attempts=async_retries.get(key),
                max_event_age=props.event_max_age if key in async_retries else None,
            )
            for key, spec in function_specs(config, props).items()
        }

    def _grant(self, config: Config, props: DaemonGuardProps, names: Mapping[str, str]) -> dict[str, iam.Policy]:
        """Each function's least-privilege policy (`function_statements`), attached before the function exists."""
        aliases = [alias_arn(self, names[k]) for k in ("drain", "launch-gate")]
        workflows = [function_arn(self, names[k]) for k in ("drain", "launch-gate")]
        targets = Targets(table_arn=self.table.table_arn, dead_letter_queue_arn=self.dlq.queue_arn,
                          workflow_aliases=aliases,
                          workflow_executions=[durable_executions_arn(a) for a in workflows])
        policies: dict[str, iam.Policy] = {}
        for key, fn in self.functions.items():
            policies[key] = iam.Policy(
                fn, "Access", statements=function_statements(self, config, key, targets), roles=[fn.role])
            if props.encryption_key is not None:
                # A customer managed key encrypts the table: the functions use it through DynamoDB only.
                props.encryption_key.grant_encrypt_decrypt(fn.role)
            # The role is complete before the function exists, so no invocation runs short of rights.
            fn.depend_on_permissions(policies[key])
        return policies

    def protect(self, scope: Construct) -> GateConstraints:
        """Give every ECS service in `scope` the constraints this configuration needs (`GateConstraints`).

        Returns the aspect. Placement mode ``gate`` puts the gate constraint on replica services, drain
        order ``tiers`` each daemon's tier constraint on daemon services; with neither there is nothing to
        add, and the scope gets a warning saying so.
        """
        aspect = GateConstraints(self.config)
        if not aspect.adds_anything:
            cdk.Annotations.of(scope).add_warning_v2(
                "daemon-guard:nothing-to-wire", "daemon-guard: placementMode is not 'gate' and drainOrder is not "
                "'tiers': no service needs a constraint, so protect() adds none")
        cdk.Aspects.of(scope).add(aspect)
        return aspect

    def _outputs(self) -> None:
        """What operators need after `cdk deploy`: the workflow aliases, the dashboard, the table, the DLQ."""
        stack = cdk.Stack.of(self)
        dashboard_url = cdk.Fn.join("", [
            "https://", stack.region, ".console.", stack.url_suffix, "/cloudwatch/home?region=", stack.region,
            "#dashboards:name=", self.dashboard.dashboard_name])
        outputs = {
            "DrainAliasArn": (self.drain.alias.function_arn, "drain workflow's live alias (start drains here)"),
            "LaunchGateAliasArn": (self.launch_gate.alias.function_arn, "launch gate workflow's live alias"),
            "DashboardUrl": (dashboard_url, "CloudWatch dashboard"),
            "StateTableName": (self.table.table_name, "DynamoDB state table"),
            "DeadLetterQueueUrl": (self.dlq.queue_url, "dead letters of every rule target and async invocation"),
            "AlarmTopicArn": (self.topic.topic_arn, "SNS topic the alarms publish to"),
        }
        for output_id, (value, description) in outputs.items():
            cdk.CfnOutput(self, output_id, value=value, description=f"daemon-guard: {description}")

    def _alarm_topic(self, config: Config, props: DaemonGuardProps, key: kms.IKey | None) -> sns.ITopic:
        if props.alarm_topic is not None:
            topic = props.alarm_topic
        elif config.alarm_topic_arn is not None:
            topic = sns.Topic.from_topic_arn(self, "AlarmTopic", config.alarm_topic_arn)
        else:
            assert key is not None
            topic = sns.Topic(self, "AlarmTopic", display_name="daemon-guard alarms", master_key=key,
                              enforce_ssl=True)
            # CloudWatch alarms publish to an encrypted topic only when the key lets them.
            # Only CloudWatch alarms of this account and region (aws:SourceArn is the alarm's ARN).
            stack = cdk.Stack.of(self)
            key.add_to_resource_policy(iam.PolicyStatement(
                sid="CloudWatchAlarmsPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"], resources=["*"],
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {"aws:SourceArn": stack.format_arn(
                        service="cloudwatch", resource="alarm", resource_name="*",
                        arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME)},
                },
            ))
        if config.alarm_email is not None:
            topic.add_subscription(subscriptions.EmailSubscription(config.alarm_email))
        return topic

    def _acknowledge_nag_findings(self, names: Mapping[str, str]) -> None:
        """The cdk-nag findings this design accepts, with the reason for each."""
        config = self.config
        acknowledge(self, ["AwsSolutions-IAM5[Resource::*]"],
                    "Only actions without resource-level permissions use '*': xray:PutTraceSegments/"
                    "PutTelemetryRecords, ecs:DescribeTaskDefinition, ecs:DescribeCapacityProviders and "
                    "autoscaling:Describe*. ecs:ListTasks/ListServices on '*' (ListServices has no resource "
                    "type; ListTasks by service names no instance) carry an ArnEquals ecs:cluster condition "
                    "naming the managed clusters.")
        acknowledge(self, ["AwsSolutions-SQS3"],
                    "The queue is itself the dead-letter queue: of every rule target (DeadLetterConfig) and, as the "
                    "OnFailure destination of the live aliases' EventInvokeConfig, of every async invocation; the "
                    "rule only recognises queues named in a RedrivePolicy or a function DeadLetterConfig.")
        acknowledge(self, ["AwsSolutions-L1"],
                    "python3.13 is deliberate: the durable execution SDK, the AWS-published Powertools layer "
                    "(SSM /aws/service/powertools/python/arm64/python3.13) and the bundled wheels target it.")
        acknowledge_wildcards(
            self, [durable_executions_arn(function_arn(self, names[k])) for k in ("drain", "launch-gate")],
            "Durable execution ARNs carry the function version (never the alias), so ':*' is how IAM "
            "names the executions of this one workflow function; no other function is matched.")
        acknowledge_wildcards(
            self, [ecs_arn(self, kind, f"{c}/*") for c in sorted(config.cluster_names)
                   for kind in ("container-instance", "task", "service")],
            "The tasks, services and container instances of one managed cluster (their ids are not known "
            "at synth), each statement also under an ArnEquals ecs:cluster condition naming the managed "
            "clusters.")
        acknowledge_wildcards(
            self, [asg_arn(self, g) for g in sorted(config.group_names)],
            "The ASG ARN carries a group id unknown at synth; the autoScalingGroupName pins the managed group.")
