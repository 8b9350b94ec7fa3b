"""Your own CDK app with daemon-guard in it (`pip install ./dist/daemon_guard-0.1.0-py3-none-any.whl`; `cdk synth`)."""

import aws_cdk as cdk
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_ecs as ecs
from daemon_guard_cdk import DaemonGuard, DaemonGuardProps

app = cdk.App()
stack = cdk.Stack(app, "Platform", env=cdk.Environment(account="123456789012", region="eu-west-1"))

# Existing resources, by name or ARN; the construct takes these objects or plain names.
cluster = ecs.Cluster.from_cluster_arn(stack, "Prod", "arn:aws:ecs:eu-west-1:123456789012:cluster/prod")
asg = autoscaling.AutoScalingGroup.from_auto_scaling_group_name(stack, "ProdAsg", "prod-asg")

DaemonGuard(stack, "DaemonGuard", DaemonGuardProps(config={
    "clusters": [{"name": cluster, "autoScalingGroups": [asg, {"name": "prod-spot", "launchHook": True}]}],
    "drainTiers": [{"name": "log-router", "services": ["fluent-bit"]}],
    "alarmEmail": "oncall@example.com",
}))

app.synth()
