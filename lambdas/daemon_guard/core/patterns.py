"""The EventBridge patterns daemon-guard subscribes to: one definition for the CDK rules and the simulator.

Patterns name our cluster ARNs, our Auto Scaling group names, our hook names and the ECS event
names we act on. Spot interruption warnings and rebalance recommendations carry no group name, so
those two match the event type only and the intake drops instances it does not manage.
"""

from __future__ import annotations

from typing import Any

from daemon_guard.core.config import LAUNCH_HOOK_NAME, TERMINATE_HOOK_NAME, Config

# Task states the reflex and the workflows act on: PENDING (a replica landing where a daemon is
# missing can still be evicted before it starts), RUNNING (gates, coverage, launch gate) and
# STOPPED (wakes a drain waiting on a tier; a daemon that died).
TASK_STATES = ("PENDING", "RUNNING", "STOPPED")
PLACEMENT_FAILURE = "SERVICE_TASK_PLACEMENT_FAILURE"


def cluster_arn(name: str, partition: str, region: str, account: str) -> str:
    """`arn:{partition}:ecs:{region}:{account}:cluster/NAME`."""
    return f"arn:{partition}:ecs:{region}:{account}:cluster/{name}"


def event_patterns(config: Config, *, partition: str, region: str, account: str) -> dict[str, dict[str, Any]]:
    """Rule name to EventBridge pattern, for every rule that feeds the intake."""
    clusters = [cluster_arn(c.name, partition, region, account) for c in config.clusters]
    launch_groups = sorted(g.name for c in config.clusters for g in c.groups if g.launch_hook)
    terminate_groups = sorted(g.name for c in config.clusters for g in c.groups if g.terminate_hook)
    patterns: dict[str, dict[str, Any]] = {
        "container-instance": {"source": ["aws.ecs"], "detail-type": ["ECS Container Instance State Change"],
                               "detail": {"clusterArn": clusters}},
        "task": {"source": ["aws.ecs"], "detail-type": ["ECS Task State Change"],
                 "detail": {"clusterArn": clusters, "lastStatus": list(TASK_STATES)}},
        "placement-failure": {"source": ["aws.ecs"], "detail-type": ["ECS Service Action"],
                              "detail": {"clusterArn": clusters, "eventName": [PLACEMENT_FAILURE]}},
        "spot-interruption": {"source": ["aws.ec2"], "detail-type": ["EC2 Spot Instance Interruption Warning"]},
        "rebalance": {"source": ["aws.ec2"], "detail-type": ["EC2 Instance Rebalance Recommendation"]},
        **exit_patterns(),
    }
    if launch_groups:
        patterns["launch-lifecycle"] = {
            "source": ["aws.autoscaling"], "detail-type": ["EC2 Instance-launch Lifecycle Action"],
            "detail": {"AutoScalingGroupName": launch_groups, "LifecycleHookName": [LAUNCH_HOOK_NAME]}}
    if terminate_groups:
        patterns["terminate-lifecycle"] = {
            "source": ["aws.autoscaling"], "detail-type": ["EC2 Instance-terminate Lifecycle Action"],
            "detail": {"AutoScalingGroupName": terminate_groups, "LifecycleHookName": [TERMINATE_HOOK_NAME]}}
    return patterns


def exit_patterns() -> dict[str, dict[str, Any]]:
    """Exits outside Auto Scaling: AWS Health EC2 scheduled changes, EC2 instances stopping or terminating.

    Neither event names a cluster or group, so the patterns narrow on what they do carry (the
    service and category, the two leaving states) and the intake keeps managed instances only.
    """
    return {
        "scheduled-change": {"source": ["aws.health"], "detail-type": ["AWS Health Event"],
                             "detail": {"service": ["EC2"], "eventTypeCategory": ["scheduledChange"]}},
        "instance-state": {"source": ["aws.ec2"], "detail-type": ["EC2 Instance State-change Notification"],
                           "detail": {"state": ["stopping", "shutting-down"]}},
    }
