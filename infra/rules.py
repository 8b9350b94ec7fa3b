"""EventBridge rules with the narrowest patterns, the reconciler schedule, and lifecycle hooks.

Patterns name our cluster ARNs, our Auto Scaling group names, our hook names and the ECS event
names we act on. EC2 Spot interruption warnings and rebalance recommendations carry no group
name, so those two rules match the event type only and the intake drops instances it does not
manage (a log line and an ``EventsIgnored`` count, no AWS write).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import aws_cdk as cdk
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct
from daemon_guard.core.config import LAUNCH_HOOK_NAME, TERMINATE_HOOK_NAME, Config
from daemon_guard.core.patterns import event_patterns

DESCRIPTIONS = {
    "container-instance": "ECS container instances of the managed clusters changed state",
    "task": "ECS tasks of the managed clusters became PENDING, RUNNING or STOPPED",
    "placement-failure": "ECS could not place a task in a managed cluster",
    "launch-lifecycle": "an instance of a managed ASG waits on the daemon-guard launch hook",
    "terminate-lifecycle": "an instance of a managed ASG waits on the daemon-guard terminate hook",
    "spot-interruption": "EC2 Spot interruption warning (the intake keeps managed instances)",
    "rebalance": "EC2 rebalance recommendation (the intake keeps managed instances)",
    "scheduled-change": "AWS Health EC2 scheduled change (the intake keeps managed instances)",
    "instance-state": "EC2 instance stopping or shutting down (the intake keeps managed instances)",
}
LAUNCHING = "autoscaling:EC2_INSTANCE_LAUNCHING"
TERMINATING = "autoscaling:EC2_INSTANCE_TERMINATING"


def cluster_arn(scope: Construct, name: str) -> str:
    """``arn:{partition}:ecs:{region}:{account}:cluster/NAME`` for this stack."""
    return cdk.Stack.of(scope).format_arn(service="ecs", resource="cluster", resource_name=name)


def asg_arn(scope: Construct, name: str) -> str:
    """The ARN pattern of an Auto Scaling group by name (any group id)."""
    return cdk.Stack.of(scope).format_arn(
        service="autoscaling", resource="autoScalingGroup",
        resource_name=f"*:autoScalingGroupName/{name}", arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
    )


@dataclass(frozen=True, kw_only=True)
class RulesProps:
    """What the rules route and where failed deliveries go."""

    config: Config
    intake: lambda_.IFunction  # the intake's ``live`` alias
    reconciler: lambda_.IFunction  # the reconciler's ``live`` alias
    dlq: sqs.IQueue
    retry_attempts: int = 4  # Default: 4 retries
    max_event_age: cdk.Duration = field(default_factory=lambda: cdk.Duration.hours(1))  # Default: 1 hour


class DaemonGuardRules(Construct):
    """Every rule that feeds the intake, the reconciler schedule, and the lifecycle hooks."""

    def __init__(self, scope: Construct, construct_id: str, props: RulesProps) -> None:
        super().__init__(scope, construct_id)
        config = props.config
        self._props = props
        self.rules: dict[str, events.Rule] = {}

        stack = cdk.Stack.of(self)
        patterns = event_patterns(config, partition=stack.partition, region=stack.region, account=stack.account)
        for key, pattern in patterns.items():
            self._rule(key, DESCRIPTIONS[key], events.EventPattern(
                source=pattern["source"], detail_type=pattern["detail-type"], detail=pattern.get("detail")))

        self.schedule = events.Rule(
            self, "Reconcile",
            description=f"daemon-guard reconciler, every {config.reconcile_period_min} minute(s)",
            schedule=events.Schedule.rate(cdk.Duration.minutes(config.reconcile_period_min)),
            # A stale tick is worth nothing: the next one comes within the period.
            targets=[self._target(props.reconciler, retry_attempts=2,
                                  max_event_age=cdk.Duration.minutes(config.reconcile_period_min))],
        )
        self.rules["reconcile"] = self.schedule

        self.lifecycle_hooks: list[autoscaling.CfnLifecycleHook] = []
        groups = [g for c in config.clusters for g in c.groups]
        for index, group in enumerate(groups):
            if group.launch_hook:
                self._hook(index, group.name, hook=LAUNCH_HOOK_NAME, transition=LAUNCHING,
                           default_result=group.launch_timeout_result, heartbeat_s=group.heartbeat_timeout_s)
            if group.terminate_hook:
                self._hook(index, group.name, hook=TERMINATE_HOOK_NAME, transition=TERMINATING,
                           default_result="CONTINUE", heartbeat_s=group.heartbeat_timeout_s)

    def _target(self, fn: lambda_.IFunction, *, retry_attempts: int | None = None,
                max_event_age: cdk.Duration | None = None) -> targets.LambdaFunction:
        return targets.LambdaFunction(
            fn, dead_letter_queue=self._props.dlq,
            retry_attempts=self._props.retry_attempts if retry_attempts is None else retry_attempts,
            max_event_age=max_event_age or self._props.max_event_age,
        )

    def _rule(self, key: str, description: str, pattern: events.EventPattern) -> None:
        construct_id = "".join(part.title() for part in key.split("-"))
        self.rules[key] = events.Rule(
            self, construct_id, description=f"daemon-guard: {description}", event_pattern=pattern,
            targets=[self._target(self._props.intake)],
        )

    def _hook(self, index: int, group: str, *, hook: str, transition: str, default_result: str,
              heartbeat_s: int) -> None:
        suffix = "Launch" if transition == LAUNCHING else "Terminate"
        self.lifecycle_hooks.append(autoscaling.CfnLifecycleHook(
            self, f"{_id(group)}{index}{suffix}Hook",
            auto_scaling_group_name=group, lifecycle_hook_name=hook, lifecycle_transition=transition,
            default_result=default_result, heartbeat_timeout=heartbeat_s,
        ))


def _id(name: str) -> str:
    return "".join(ch for ch in name.title() if ch.isalnum())

