"""Least-privilege statements for the daemon-guard functions.

- Mutating ECS actions (StopTask, UpdateContainerInstancesState, PutAttributes, DeleteAttributes)
  carry an ``ArnEquals ecs:cluster`` condition naming the managed clusters; nothing else.
- ECS reads name cluster-scoped resources (``cluster/NAME``, ``task/NAME/*``, ...) where ECS
  supports resource-level permissions; ListTasks and ListServices take ``*`` with the same
  cluster condition; DescribeTaskDefinition and DescribeCapacityProviders support only ``*``.
- CompleteLifecycleAction and RecordLifecycleActionHeartbeat name the managed ASG ARNs;
  Auto Scaling Describe* support only ``*``.
"""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from constructs import Construct
from daemon_guard.core.config import Config, ScheduledChangePolicy
from daemon_guard.core.guard_events import SOURCE

from .rules import asg_arn, cluster_arn

ECS_MUTATING_ACTIONS = (
    "ecs:StopTask", "ecs:UpdateContainerInstancesState", "ecs:PutAttributes", "ecs:DeleteAttributes",
)
LIFECYCLE_ACTIONS = ("autoscaling:CompleteLifecycleAction", "autoscaling:RecordLifecycleActionHeartbeat")


def ecs_arn(scope: Construct, resource: str, name: str) -> str:
    """``arn:{partition}:ecs:{region}:{account}:{resource}/{name}``."""
    return cdk.Stack.of(scope).format_arn(service="ecs", resource=resource, resource_name=name)


def guard_statements(scope: Construct, config: Config) -> list[iam.PolicyStatement]:
    """What every daemon-guard function may do on ECS and Auto Scaling."""
    names = sorted(config.cluster_names)
    clusters = [cluster_arn(scope, n) for n in names]
    in_our_clusters = {"ArnEquals": {"ecs:cluster": clusters}}
    groups = sorted(config.group_names)
    statements = [
        iam.PolicyStatement(
            sid="EcsMutateManagedClustersOnly", actions=list(ECS_MUTATING_ACTIONS), resources=["*"],
            conditions=in_our_clusters,
        ),
        iam.PolicyStatement(
            sid="EcsReadManagedClusters",
            actions=["ecs:DescribeClusters", "ecs:ListContainerInstances", "ecs:ListAttributes"],
            resources=clusters,
        ),
        iam.PolicyStatement(
            sid="EcsDescribeManagedClusterResources",
            actions=["ecs:DescribeContainerInstances", "ecs:DescribeTasks", "ecs:DescribeServices",
                     "ecs:ListTagsForResource"],
            resources=[ecs_arn(scope, kind, f"{n}/*") for n in names
                       for kind in ("container-instance", "task", "service")],
        ),
        iam.PolicyStatement(
            sid="EcsListInManagedClusters", actions=["ecs:ListTasks", "ecs:ListServices"], resources=["*"],
            conditions=in_our_clusters,
        ),
        iam.PolicyStatement(
            sid="EcsReadAccountWide",
            actions=["ecs:DescribeTaskDefinition", "ecs:DescribeCapacityProviders"], resources=["*"],
        ),
        iam.PolicyStatement(
            sid="AutoScalingDescribe",
            actions=["autoscaling:DescribeAutoScalingGroups", "autoscaling:DescribeAutoScalingInstances",
                     "autoscaling:DescribeLifecycleHooks"],
            resources=["*"],
        ),
    ]
    if groups:
        statements.append(iam.PolicyStatement(
            sid="LifecycleActionsOnManagedGroups", actions=list(LIFECYCLE_ACTIONS),
            resources=[asg_arn(scope, g) for g in groups],
        ))
    return statements


def workflow_caller_statements(alias_arns: Sequence[str], execution_arns: Sequence[str],
                               function_arns: Sequence[str]) -> list[iam.PolicyStatement]:
    """Start workflows by alias, wake them with callbacks, and look up their executions."""
    return [
        iam.PolicyStatement(sid="StartWorkflowsByAlias", actions=["lambda:InvokeFunction"],
                            resources=list(alias_arns)),
        iam.PolicyStatement(
            sid="WakeAndReadWorkflowExecutions",
            actions=["lambda:SendDurableExecutionCallbackSuccess", "lambda:GetDurableExecution"],
            resources=list(execution_arns),
        ),
        iam.PolicyStatement(sid="ListWorkflowExecutions", actions=["lambda:ListDurableExecutionsByFunction"],
                            resources=list(function_arns)),
    ]


def replace_statements(scope: Construct, config: Config) -> list[iam.PolicyStatement]:
    """The drain workflow alone: mark a drained instance Unhealthy so its (managed) group replaces it.

    Only with ``scheduledChange: replace`` (the default), and only on the managed groups' ARNs.
    """
    groups = sorted(config.group_names)
    if not groups or config.scheduled_change_policy is not ScheduledChangePolicy.REPLACE:
        return []
    return [iam.PolicyStatement(sid="ReplaceDrainedInstancesOfManagedGroups", actions=["autoscaling:SetInstanceHealth"],
                                resources=[asg_arn(scope, g) for g in groups])]


def own_events_statements(scope: Construct) -> list[iam.PolicyStatement]:
    """Publish the guard's own events (source ``daemon-guard``) on the account's default bus, nothing else.

    Every function publishes: the intake and the reconciler (placement repairs, gates, drains
    started), the launch gate (gates) and the drain workflow (phases, deadlines, completions).
    """
    default_bus = cdk.Stack.of(scope).format_arn(service="events", resource="event-bus", resource_name="default")
    return [iam.PolicyStatement(sid="PublishOwnEventsOnTheDefaultBus", actions=["events:PutEvents"],
                                resources=[default_bus],
                                conditions={"StringEquals": {"events:source": SOURCE}})]
