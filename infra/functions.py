"""The four daemon-guard functions: intake, reconciler and two durable workflows.

Every function: python3.13 on arm64, X-Ray active tracing, its own log group with a retention,
its own execution role (no AWS managed policies), the one shared asset, Powertools from the
AWS-published layer (pinned to the release the tests run), a published version behind the alias
``live``. EventBridge and the intake invoke the alias, so the asynchronous-invocation settings
(retries, maximum event age, failure destination) are attached to the alias, not to ``$LATEST``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

ALIAS_NAME = "live"
RUNTIME = lambda_.Runtime.PYTHON_3_13
ARCHITECTURE = lambda_.Architecture.ARM_64
POWERTOOLS_VERSION = "3.37.0"  # keep equal to aws-lambda-powertools in requirements.txt (a test checks)
# The AWS-published SSM parameter naming the layer of exactly this Powertools release for arm64 python3.13.
POWERTOOLS_LAYER_PARAMETER = f"/aws/service/powertools/python/arm64/python3.13/{POWERTOOLS_VERSION}"


@dataclass(frozen=True, kw_only=True)
class FunctionSpec:
    """What differs between the functions."""

    key: str
    handler: str
    description: str
    timeout: cdk.Duration
    memory_size: int = 512
    durable_execution_timeout: cdk.Duration | None = None  # None: not a durable function
    durable_retention: cdk.Duration = field(default_factory=lambda: cdk.Duration.days(14))


class GuardFunction(Construct):
    """One function with its role, log group, version and ``live`` alias.

    The physical name is chosen at synth (unique per construct path) so that every function's
    environment can name every alias ARN without a dependency cycle. Durable functions get their
    checkpoint permissions (``lambda:CheckpointDurableExecution``, ``lambda:GetDurableExecutionState``)
    on their own durable executions only (``function:NAME:*``).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        spec: FunctionSpec,
        function_name: str,
        code: lambda_.Code,
        layers: list[lambda_.ILayerVersion],
        environment: Mapping[str, str],
        log_retention: logs.RetentionDays,
        dead_letter_queue: sqs.IQueue | None = None,
        async_retry_attempts: int | None = None,
        max_event_age: cdk.Duration | None = None,
    ) -> None:
        """`dead_letter_queue`, `async_retry_attempts` and `max_event_age` configure asynchronous
        invocations of the ``live`` alias (an EventInvokeConfig on the alias, failures to the queue)."""
        super().__init__(scope, construct_id)
        self.spec = spec
        self.function_name = function_name
        self.role = iam.Role(
            self, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"daemon-guard {spec.key} function",
        )
        self.log_group = logs.LogGroup(
            self, "Logs", retention=log_retention, removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        self.log_group.grant_write(self.role)
        self.role.add_to_principal_policy(iam.PolicyStatement(
            sid="XRayTraces", actions=["xray:PutTraceSegments", "xray:PutTelemetryRecords"], resources=["*"]))
        durable = (
            lambda_.DurableConfig(execution_timeout=spec.durable_execution_timeout,
                                  retention_period=spec.durable_retention)
            if spec.durable_execution_timeout is not None else None
        )
        self.function = lambda_.Function(
            self, "Function", function_name=function_name,
            description=f"daemon-guard {spec.description}",
            runtime=RUNTIME, architecture=ARCHITECTURE, handler=spec.handler, code=code,
            layers=layers, log_group=self.log_group,
            # The function reads the role's ARN (an implicit dependency); `depend_on_permissions`
            # then orders it after the role's policies without a redundant DependsOn on the role.
            role=iam.Role.from_role_arn(self, "ExecutionRole", self.role.role_arn, mutable=False),
            tracing=lambda_.Tracing.ACTIVE, timeout=spec.timeout, memory_size=spec.memory_size,
            environment=dict(environment), durable_config=durable,
            recursive_loop=lambda_.RecursiveLoop.TERMINATE,
        )
        self.version = self.function.current_version
        # What the rules target is the alias: its EventInvokeConfig is the one Lambda applies.
        self.alias = lambda_.Alias(
            self, "Alias", alias_name=ALIAS_NAME, version=self.version,
            retry_attempts=async_retry_attempts, max_event_age=max_event_age,
            on_failure=destinations.SqsDestination(dead_letter_queue) if dead_letter_queue is not None else None,
        )
        if durable is not None:
            # CDK notes on every durable function that turning durability on replaces an existing function; these
            # are durable from their first deployment (and a change of it is a template diff `cdk diff` shows).
            cdk.Annotations.of(self.function).acknowledge_info(
                "aws-lambda:Function.DurableConfig", "durable from the first deployment: nothing is replaced")
            self.role.add_to_principal_policy(iam.PolicyStatement(
                sid="CheckpointOwnDurableExecutions",
                actions=["lambda:CheckpointDurableExecution", "lambda:GetDurableExecutionState"],
                resources=[durable_executions_arn(function_arn(self, function_name))],
            ))


    def depend_on_permissions(self, *policies: Construct) -> None:
        """Create the function only after its role's policies (call once every grant is made)."""
        default_policy = self.role.node.try_find_child("DefaultPolicy")
        for policy in (default_policy, *policies):
            if policy is not None:
                self.function.node.add_dependency(policy)


def function_arn(scope: Construct, function_name: str) -> str:
    """The unqualified ARN of a function by name, in this stack's account and region."""
    return cdk.Stack.of(scope).format_arn(service="lambda", resource="function", resource_name=function_name,
                                          arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME)


def alias_arn(scope: Construct, function_name: str) -> str:
    """The qualified ARN of a function's ``live`` alias."""
    return f"{function_arn(scope, function_name)}:{ALIAS_NAME}"


def durable_executions_arn(unqualified_function_arn: str) -> str:
    """``arn:...:function:NAME:*``: every durable execution of every version of the function.

    Durable execution permissions are checked against execution ARNs, which carry the version
    (never the alias), so the qualifier is a wildcard.
    """
    return f"{unqualified_function_arn}:*"
