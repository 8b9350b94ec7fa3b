"""Least-privilege statements, per function: each role gets only what its own code calls.

Which function calls what (the proving ground enforces these statements on every simulated call,
and a test drops each statement in turn to show a scenario failing with AccessDenied):

- every function reads ECS: ListContainerInstances (the cluster), DescribeContainerInstances,
  ListTasks, DescribeTasks, ListServices, DescribeServices and DescribeTaskDefinition;
- the placement reflex (intake, reconciler, launch gate) reads task protection before it may plan
  an eviction (GetTaskProtection, every mode), evicts in preempt and gate mode (StopTask) and opens
  gates in gate mode, and shuts one again for a daemon missing behind it (PutAttributes); observe mode
  writes nothing;
- the drain stops tasks and sets its instance DRAINING (UpdateContainerInstancesState: the drain
  only); with ``drainOrder`` apps-first or tiers it also shuts the gate and marks stopped tiers
  (PutAttributes);
- the intake and the reconciler start workflows (InvokeFunction on the two ``live`` aliases); the
  intake wakes them (SendDurableExecutionCallbackSuccess on their executions); a reconcile pass
  (the reconciler's, or the intake's on a daemon's placement failure) reads the groups
  (DescribeAutoScalingGroups, and DescribeWarmPool for warm-pool instances) to find lifecycle
  actions left waiting on our hooks;
- lifecycle actions: the workflows heartbeat and complete them; the intake (and the reconciler, when
  the event was lost) completes a warm-pool entry at once (CONTINUE);
- the state table: each function gets the item operations its code issues;
- the intake and the reconciler: Lambda sends their failed async events to the dead-letter queue;
- every function publishes the guard's own events (PutEvents on the default bus, only with
  ``events:source`` ``daemon-guard``);
- in gate mode the placement reflex (intake, reconciler, launch gate) replaces an instance whose gate
  timeout passed with a critical daemon missing (DescribeAutoScalingInstances to find its group and
  state, then CompleteLifecycleAction ABANDON while the launch hook holds it, else SetInstanceHealth
  on the managed groups: the intake and the reconciler only, the launch gate running only while its
  hook holds the instance);
- the drain marks a drained instance Unhealthy so its group replaces it (DescribeAutoScalingInstances
  to find the group, then SetInstanceHealth on the managed groups; only with ``scheduledChange:
  replace``, the default);
- the reconciler starts scheduled drains that are due (Query on the state table);
- with a ``drainBudget``, a drain reads its groups' sizes when a rule is a percentage
  (DescribeAutoScalingGroups) and, finishing, wakes the drain next in line (SendDurableExecutionCallbackSuccess).

Each statement is as narrow as the calls allow (the Service Authorization Reference says what each
action is authorized on, and ``tests/integration/test_least_privilege.py`` holds the statements to it):

- every ECS action that names a task, container instance or service is scoped to the managed
  clusters' ARNs (``task/NAME/*``, ``container-instance/NAME/*``, ``service/NAME/*``) *and* carries an
  ``ArnEquals ecs:cluster`` condition naming them (each alone is tested: a request naming one cluster
  and resources of another is denied);
- ListTasks and ListServices are on ``*`` (ListServices has no resource type, and ListTasks by
  service names no container instance) with the ``ecs:cluster`` condition; ListContainerInstances is
  on the cluster ARNs (it has no ``ecs:cluster`` key);
- DescribeTaskDefinition, DescribeAutoScalingGroups, DescribeWarmPool and
  DescribeAutoScalingInstances support only ``*`` and no condition key of their own;
- lifecycle actions and SetInstanceHealth name the managed groups' ARNs; the table, the queue, the
  aliases, the executions and the default bus (with ``events:source``) by their ARNs.

One action is granted by one statement of a role: the simulator reports a call two statements allow.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from constructs import Construct
from daemon_guard.core.config import Config, DrainOrder, PlacementMode, ScheduledChangePolicy
from daemon_guard.core.guard_events import SOURCE

from .rules import asg_arn, cluster_arn

FUNCTION_KEYS = ("intake", "reconciler", "drain", "launch-gate")

# What each function's code calls, by statement (see the module docstring).
ECS_READS = ("EcsReadClusterInstances", "EcsReadInstances", "EcsReadTasks", "EcsReadServices",
             "EcsListInManagedClusters", "EcsReadTaskDefinitions")
# The placement reflex (intake, reconciler, launch gate): evictions in preempt mode, gates in gate mode.
REFLEX = ("EcsTaskProtection", "EcsEvict", "EcsOpenGates")
# ... and, in gate mode, replacing an instance that lacks a critical daemon past the gate timeout.
REPLACE_FOR_CRITICAL = ("ReplaceForCriticalDaemons", "FindGroupOfGatedInstance")
GRANTS: Mapping[str, tuple[str, ...]] = {
    "intake": (*ECS_READS, *REFLEX, *REPLACE_FOR_CRITICAL, "DescribeGroups", "DescribeWarmPools",
               "CompleteLifecycleActions",
               "StartWorkflows", "WakeWorkflows", "StateTable",
               "FailedEventsToDeadLetters", "PublishOwnEvents"),
    "reconciler": (*ECS_READS, *REFLEX, *REPLACE_FOR_CRITICAL, "DescribeGroups", "DescribeWarmPools",
                   "CompleteLifecycleActions",
                   "StartWorkflows", "StateTable",
                   "FailedEventsToDeadLetters", "PublishOwnEvents"),
    "drain": (*ECS_READS, "EcsDrainStops", "EcsDrainInstances", "EcsDrainAttributes",
              "HeartbeatAndCompleteLifecycleActions",
              "StateTable",
              "PublishOwnEvents", "ReplaceDrainedInstances", "FindGroupOfInstance",
              "DrainBudgetGroupSizes", "WakeDrainsWaitingForBudget"),
    # The launch gate runs only while its hook holds the instance: it replaces by ABANDON, never SetInstanceHealth.
    "launch-gate": (*ECS_READS, *REFLEX, "FindGroupOfGatedInstance", "HeartbeatAndCompleteLifecycleActions",
                    "StateTable",
                    "PublishOwnEvents"),
}

# The state table operations each function's code issues (adapters/state.py, by caller).
TABLE_ACTIONS: Mapping[str, tuple[str, ...]] = {
    # dedupe and claims (Put), claims, wakes and marks (Get), budgets and wakes (Update), marks (Delete,
    # BatchWrite), budgets (BatchGet)
    "intake": ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
               "dynamodb:BatchGetItem", "dynamodb:BatchWriteItem"),
    # ... and the scheduled drains that are due (Query)
    "reconciler": ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
                   "dynamodb:BatchGetItem", "dynamodb:BatchWriteItem", "dynamodb:Query"),
    # its claim (Get), callback and wake registration (Update), release (Delete), an instance's end said once
    # (the event ledger: conditional Put)
    "drain": ("dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:PutItem"),
    # the reflex's marks and budgets (the replacement budget too), its preempt tries (Get, conditional Put),
    # wake registration (Update), release (Delete)
    "launch-gate": ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
                    "dynamodb:BatchGetItem", "dynamodb:BatchWriteItem"),
}

ECS_MUTATING_ACTIONS = ("ecs:StopTask", "ecs:UpdateContainerInstancesState", "ecs:PutAttributes")
LIFECYCLE_ACTIONS = ("autoscaling:CompleteLifecycleAction", "autoscaling:RecordLifecycleActionHeartbeat")


def ecs_arn(scope: Construct, resource: str, name: str) -> str:
    """``arn:{partition}:ecs:{region}:{account}:{resource}/{name}``."""
    return cdk.Stack.of(scope).format_arn(service="ecs", resource=resource, resource_name=name)


@dataclass(frozen=True, kw_only=True)
class Targets:
    """The ARNs the statements name."""

    table_arn: str
    dead_letter_queue_arn: str
    workflow_aliases: Sequence[str]
    workflow_executions: Sequence[str]


def function_statements(scope: Construct, config: Config, key: str, targets: Targets) -> list[iam.PolicyStatement]:
    """The statements of one function's role (``key`` in `FUNCTION_KEYS`), beyond logs and traces."""
    names = sorted(config.cluster_names)
    clusters = [cluster_arn(scope, n) for n in names]
    in_our_clusters = {"ArnEquals": {"ecs:cluster": clusters}}
    groups = [asg_arn(scope, g) for g in sorted(config.group_names)]

    default_bus = cdk.Stack.of(scope).format_arn(service="events", resource="event-bus", resource_name="default")

    def scoped(kind: str) -> list[str]:
        return [ecs_arn(scope, kind, f"{n}/*") for n in names]

    def replace_in_groups(wanted: bool) -> dict[str, Any] | None:
        return dict(actions=["autoscaling:SetInstanceHealth"], resources=groups) if groups and wanted else None

    def find_group(wanted: bool) -> dict[str, Any] | None:
        return dict(actions=["autoscaling:DescribeAutoScalingInstances"], resources=["*"]) if groups and wanted \
            else None

    builders: dict[str, Callable[[], dict[str, Any] | None]] = {
        "EcsReadClusterInstances": lambda: dict(
            actions=["ecs:ListContainerInstances"], resources=clusters),
        "EcsReadInstances": lambda: dict(
            actions=["ecs:DescribeContainerInstances"], resources=scoped("container-instance"),
            conditions=in_our_clusters),
        "EcsReadTasks": lambda: dict(
            actions=["ecs:DescribeTasks"], resources=scoped("task"), conditions=in_our_clusters),
        "EcsReadServices": lambda: dict(
            actions=["ecs:DescribeServices"], resources=scoped("service"), conditions=in_our_clusters),
        # ListTasks by service names no container instance, so its resource is "*" (ListServices has none).
        "EcsListInManagedClusters": lambda: dict(
            actions=["ecs:ListTasks", "ecs:ListServices"], resources=["*"], conditions=in_our_clusters),
        "EcsReadTaskDefinitions": lambda: dict(actions=["ecs:DescribeTaskDefinition"], resources=["*"]),
        # Whenever an eviction may be planned (every mode, observe included) the reflex reads protection.
        "EcsTaskProtection": lambda: dict(
            actions=["ecs:GetTaskProtection"], resources=scoped("task"), conditions=in_our_clusters),
        # Preempt evicts; gate mode evicts on instances whose gate is open; observe never does.
        "EcsEvict": lambda: dict(actions=["ecs:StopTask"], resources=scoped("task"), conditions=in_our_clusters)
        if config.placement_mode is not PlacementMode.OBSERVE else None,
        "EcsOpenGates": lambda: dict(
            actions=["ecs:PutAttributes"], resources=scoped("container-instance"), conditions=in_our_clusters)
        if config.placement_mode is PlacementMode.GATE else None,
        "EcsDrainStops": lambda: dict(
            actions=["ecs:StopTask"], resources=scoped("task"), conditions=in_our_clusters),
        "EcsDrainInstances": lambda: dict(
            actions=["ecs:UpdateContainerInstancesState"], resources=scoped("container-instance"),
            conditions=in_our_clusters),
        # apps-first and tiers shut the gate and mark stopped tiers with instance attributes.
        "EcsDrainAttributes": lambda: dict(
            actions=["ecs:PutAttributes"], resources=scoped("container-instance"), conditions=in_our_clusters)
        if config.drain_order is not DrainOrder.DRAINING else None,
        "DescribeGroups": lambda: dict(
            actions=["autoscaling:DescribeAutoScalingGroups"], resources=["*"]),
        "DescribeWarmPools": lambda: dict(actions=["autoscaling:DescribeWarmPool"], resources=["*"]),
        "CompleteLifecycleActions": lambda: dict(
            actions=["autoscaling:CompleteLifecycleAction"], resources=groups) if groups else None,
        "HeartbeatAndCompleteLifecycleActions": lambda: dict(
            actions=list(LIFECYCLE_ACTIONS), resources=groups) if groups else None,
        "StartWorkflows": lambda: dict(
            actions=["lambda:InvokeFunction"], resources=list(targets.workflow_aliases)),
        "WakeWorkflows": lambda: dict(
            actions=["lambda:SendDurableExecutionCallbackSuccess"], resources=list(targets.workflow_executions)),
        # Lambda sends an async invocation that failed every retry to the alias's OnFailure queue with
        # the function's role (the CDK destination cannot grant it: the functions' roles are imported
        # immutable, see functions.py).
        "FailedEventsToDeadLetters": lambda: dict(
            actions=["sqs:SendMessage"], resources=[targets.dead_letter_queue_arn]),
        "StateTable": lambda: dict(
            actions=list(TABLE_ACTIONS[key]), resources=[targets.table_arn]),
        "PublishOwnEvents": lambda: dict(
            actions=["events:PutEvents"], resources=[default_bus],
            conditions={"StringEquals": {"events:source": SOURCE}}),
        # Gate mode replaces instances that lack a critical daemon (the reflex); the drain, those drained for a
        # scheduled change. Each finds the instance's group first (DescribeAutoScalingInstances supports only "*").
        "ReplaceForCriticalDaemons": lambda: replace_in_groups(config.placement_mode is PlacementMode.GATE),
        "FindGroupOfGatedInstance": lambda: find_group(config.placement_mode is PlacementMode.GATE),
        "ReplaceDrainedInstances": lambda: replace_in_groups(
            config.scheduled_change_policy is ScheduledChangePolicy.REPLACE),
        "FindGroupOfInstance": lambda: find_group(config.scheduled_change_policy is ScheduledChangePolicy.REPLACE),
        # With a drainBudget: a percentage counts the groups' instances; a finished drain wakes the next waiter.
        "DrainBudgetGroupSizes": lambda: dict(actions=["autoscaling:DescribeAutoScalingGroups"], resources=["*"])
        if any(r.percent for r in config.drain_budget) else None,
        "WakeDrainsWaitingForBudget": lambda: dict(
            actions=["lambda:SendDurableExecutionCallbackSuccess"], resources=list(targets.workflow_executions))
        if config.drain_budget else None,
    }
    out: list[iam.PolicyStatement] = []
    for sid in GRANTS[key]:
        spec = builders[sid]()
        if spec is not None:
            out.append(iam.PolicyStatement(sid=sid, **spec))
    return out
