"""`GateConstraints`: a CDK aspect that gives the services of an app the constraints the guard's guarantees need.

Apply it with ``guard.protect(scope)`` (or ``Aspects.of(scope).add(GateConstraints(config))``). For every
ECS service in the scope that runs on EC2 container instances (L2 ``Ec2Service`` or L1 ``CfnService`` with
launch type EC2 or a capacity provider strategy without Fargate) in a managed cluster, it adds what
`daemon_guard.core.wiring.plan_service` says is missing: the gate constraint on replica services in
placement mode ``gate``, the constraint of its tier on each daemon service with drain order ``tiers``.
It never gates a daemon, never adds a constraint twice, keeps the service's own constraints, and
refuses the synth (a validation error naming the service) when a service would pass ECS's limit of 10
placement constraints per task (task definition included), or already carries one of daemon-guard's
constraints the configuration does not want there (a gate on a daemon, another tier's constraint).

Left alone, with a warning: a service whose cluster or launch type cannot be known at synth (a cluster
given as an unresolved token; no launch type and no capacity provider strategy, so the cluster's
default strategy decides). Left alone silently: services of other clusters, Fargate and EXTERNAL
services, and any service tagged ``daemon-guard:ignore=true``.

Tags are read from the service (``CfnService.tags``) and from ``Tags.of(...)`` set on the service or a
scope above it (those are applied as aspects too, possibly after this one), so a
``daemon-guard:drain-tier`` tag picks the tier as it does at run time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aws_cdk as cdk
import jsii
from aws_cdk import aws_ecs as ecs
from constructs import IConstruct, IValidation
from daemon_guard.core.config import Config, DrainOrder, PlacementMode, cluster_name_from_arn, parse_config
from daemon_guard.core.wiring import Strategy, plan_service, runs_on_instances

WARNING_ID = "daemon-guard:constraints"


@jsii.implements(IValidation)
class _Refusal:
    """A validation that fails the synth with one message."""

    def __init__(self, message: str) -> None:
        self.message = message

    def validate(self) -> list[str]:
        """The message, every time: the synth stops here."""
        return [self.message]


def _by_logical_id(stack: cdk.Stack, logical_id: str) -> IConstruct | None:
    return next((child for child in stack.node.find_all() if isinstance(child, cdk.CfnResource)
                 and stack.resolve(child.logical_id) == logical_id), None)


def _referenced(stack: cdk.Stack, value: Any) -> IConstruct | None:
    """The resource a resolved ``Ref`` or ``Fn::GetAtt`` points at, in the same stack."""
    if isinstance(value, dict) and set(value) == {"Ref"}:
        return _by_logical_id(stack, str(value["Ref"]))
    if isinstance(value, dict) and set(value) == {"Fn::GetAtt"}:
        return _by_logical_id(stack, str(value["Fn::GetAtt"][0]))
    return None


def cluster_name(cfn: ecs.CfnService) -> str | None:
    """The name of the service's cluster, when synth can know it (ECS's ``default`` when none is given)."""
    stack = cdk.Stack.of(cfn)
    value = stack.resolve(cfn.cluster)
    if value is None:
        return "default"
    if isinstance(value, str):
        return cluster_name_from_arn(value)
    target = _referenced(stack, value)
    if isinstance(target, ecs.CfnCluster):
        name = stack.resolve(target.cluster_name)
        return name if isinstance(name, str) else None
    return None


def service_tags(cfn: ecs.CfnService) -> dict[str, str]:
    """The service's tags: its own, then ``Tags.of()`` set on it or above it (nearest scope last, so it wins)."""
    tags = {str(k): str(v) for k, v in (cfn.tags.tag_values() or {}).items()}
    for scope in cfn.node.scopes:
        for aspect in cdk.Aspects.of(scope).all:
            if isinstance(aspect, cdk.Tag):
                tags[aspect.key] = aspect.value
            elif isinstance(aspect, cdk.RemoveTag):
                tags.pop(aspect.key, None)
    return tags


def _constraints(stack: cdk.Stack, value: Any) -> list[dict[str, str]] | None:
    """Resolved placement constraints as ``{"type", "expression"}``; None when some part is not known at synth."""
    resolved = stack.resolve(value)
    if resolved is None:
        return []
    if not isinstance(resolved, list):
        return None
    out = []
    for item in resolved:
        if not isinstance(item, dict) or not all(isinstance(v, str) for v in item.values()):
            return None
        out.append({k[0].lower() + k[1:]: v for k, v in item.items()})  # CloudFormation or CDK casing
    return out


def _task_definition_constraints(cfn: ecs.CfnService, l2: ecs.Ec2Service | None) -> int:
    stack = cdk.Stack.of(cfn)
    target = l2.task_definition.node.default_child if l2 is not None else _referenced(
        stack, stack.resolve(cfn.task_definition))
    if not isinstance(target, ecs.CfnTaskDefinition):
        return 0
    return len(_constraints(stack, target.placement_constraints) or [])


@jsii.implements(cdk.IAspect)
class GateConstraints:
    """Adds the gate constraint to replica services and the tier constraint to daemon services (see module doc).

    Parameters
    ----------
    config: the validated `Config` (``DaemonGuard.config``) or the raw configuration document.
    """

    def __init__(self, config: Config | Mapping[str, Any]) -> None:
        from .construct import resolve_cdk_objects

        self.config = config if isinstance(config, Config) else parse_config(resolve_cdk_objects(config))

    @property
    def adds_anything(self) -> bool:
        """False when the configuration needs no constraint (placement not ``gate``, drain order not ``tiers``)."""
        return self.config.placement_mode is PlacementMode.GATE or self.config.drain_order is DrainOrder.TIERS

    def visit(self, node: IConstruct) -> None:
        """Wire one L2 service (through its API) or one L1 ``CfnService`` that no L2 owns."""
        if isinstance(node, ecs.Ec2Service) and isinstance(node.node.default_child, ecs.CfnService):
            self._wire(node.node.default_child, node)
        elif isinstance(node, ecs.CfnService) and not isinstance(node.node.scope, ecs.BaseService):
            # (an L1 owned by a Fargate or External L2 never runs on the guard's instances)
            self._wire(node, None)

    def _warn(self, cfn: ecs.CfnService, message: str) -> None:
        cdk.Annotations.of(cfn).add_warning_v2(WARNING_ID, f"daemon-guard: {message}")

    def _wire(self, cfn: ecs.CfnService, l2: ecs.Ec2Service | None) -> None:
        stack = cdk.Stack.of(cfn)
        cluster = cluster_name(cfn)
        if cluster is None:
            self._warn(cfn, "the service's cluster is not known at synth: no constraint added (add them by "
                            "hand, or run `daemon-guard constraints --apply` after deploying)")
            return
        if cluster not in self.config.cluster_names:
            return
        providers = stack.resolve(cfn.capacity_provider_strategy) or []
        names = [str(p.get("capacityProvider", "")) for p in providers if isinstance(p, dict)]
        on_instances = runs_on_instances(stack.resolve(cfn.launch_type), names)
        if on_instances is False:
            return
        if on_instances is None:
            self._warn(cfn, "no launch type and no capacity provider strategy: the cluster's default decides, "
                            "so no constraint was added; set launchType EC2 or a capacity provider strategy")
            return
        existing = _constraints(stack, cfn.placement_constraints)
        if existing is None:
            self._warn(cfn, "placement constraints not known at synth: no constraint added")
            return
        strategy: Strategy = "DAEMON" if stack.resolve(cfn.scheduling_strategy) == "DAEMON" else "REPLICA"
        name = stack.resolve(cfn.service_name)
        plan = plan_service(self.config, service=name if isinstance(name, str) else cfn.node.path,
                            strategy=strategy, tags=service_tags(cfn), constraints=existing,
                            task_definition_constraints=_task_definition_constraints(cfn, l2))
        if plan.stale:
            cfn.node.add_validation(_Refusal(
                f"daemon-guard: {cfn.node.path}: {strategy.lower()} service carries "
                f"{', '.join(repr(c['expression']) for c in plan.stale)}, which this configuration does not put "
                "there (a gate on a daemon stops it when the gate shuts; a tier constraint belongs to its tier): "
                "remove it"))
            return
        if plan.problem:
            cfn.node.add_validation(_Refusal(f"daemon-guard: {cfn.node.path}: {plan.problem}"))
            return
        if l2 is not None:
            for constraint in plan.missing:
                l2.add_placement_constraints(ecs.PlacementConstraint.member_of(constraint["expression"]))
        elif plan.missing:
            cfn.placement_constraints = [
                ecs.CfnService.PlacementConstraintProperty(type=c["type"], expression=c.get("expression"))
                for c in plan.desired]
