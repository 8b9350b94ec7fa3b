"""Which placement constraints a service needs for the configured guarantees, and how to get there.

One decision, three users: the CDK aspect (`daemon_guard_cdk.GateConstraints`) at synth, the
`daemon-guard constraints` command for services made elsewhere, and `doctor` / the reconciler that
report what is missing. The constraint strings themselves come from `core.placement`
(`gate_constraint`, `tier_constraint`); this module only says who carries which:

- placement mode ``gate``: every replica service carries the gate constraint; a daemon never does
  (ECS stops a running daemon whose constraints stop matching: a shut gate would stop it).
- drain order ``tiers``: every daemon service carries the constraint of its tier (`tier_of`: the
  ``daemon-guard:drain-tier`` tag, then the configured lists, then the first tier).

"Ours" are the gate constraint and any tier constraint of the configured gate attribute: applying
the plan adds what is required and takes off ours that are not (a gate on a daemon, another tier's
constraint), and keeps every other constraint as it is. Removing takes off ours only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from daemon_guard.core.config import Config, DrainOrder, PlacementMode, tier_of
from daemon_guard.core.model import PlacementConstraint
from daemon_guard.core.placement import gate_constraint, tier_attribute, tier_constraint

# ECS API reference (CreateService / UpdateService / RegisterTaskDefinition, placementConstraints): "You can
# specify a maximum of 10 constraints for each task. This limit includes constraints in the task definition
# and those specified at runtime."
MAX_CONSTRAINTS_PER_TASK = 10
IGNORE_TAG = "daemon-guard:ignore"
"""A service tagged ``daemon-guard:ignore=true`` is left as it is (and not reported as missing anything)."""
FARGATE_PROVIDERS = frozenset({"FARGATE", "FARGATE_SPOT"})

Constraint = Mapping[str, str]
"""A placement constraint in the ECS API shape: ``{"type": "memberOf", "expression": "..."}``."""
Strategy = Literal["REPLICA", "DAEMON"]


def _normal(constraint: Constraint) -> tuple[str, str]:
    return str(constraint.get("type", "")), " ".join(str(constraint.get("expression", "")).split())


def same_constraint(a: Constraint, b: Constraint) -> bool:
    """True when two constraints are one (type equal, expressions equal up to whitespace)."""
    return _normal(a) == _normal(b)


def is_ours(constraint: Constraint, gate_attribute: str) -> bool:
    """True for the gate constraint or a tier constraint of `gate_attribute` (any tier name)."""
    kind, expression = _normal(constraint)
    if kind != "memberOf":
        return False
    if same_constraint(constraint, gate_constraint(gate_attribute)):
        return True
    prefix, suffix = f"attribute:{tier_attribute('', gate_attribute)}", " !exists"
    tier = expression[len(prefix):-len(suffix)] if expression.startswith(prefix) and expression.endswith(suffix) else ""
    return bool(tier) and " " not in tier


def ignored(tags: Mapping[str, str]) -> bool:
    """True when the service opts out with ``daemon-guard:ignore=true``."""
    return tags.get(IGNORE_TAG, "").strip().lower() == "true"


def runs_on_instances(launch_type: str | None, capacity_providers: Sequence[str]) -> bool | None:
    """Whether the service's tasks land on EC2 container instances: True for launch type EC2 or a capacity
    provider strategy without Fargate, False for Fargate or EXTERNAL, None when neither is stated (the
    cluster's default strategy decides, unknown here)."""
    if launch_type:
        return launch_type == "EC2"
    if capacity_providers:
        return not any(p in FARGATE_PROVIDERS for p in capacity_providers)
    return None


def required_constraints(config: Config, strategy: Strategy, name: str | None,
                         tags: Mapping[str, str]) -> tuple[dict[str, str], ...]:
    """The constraints the configuration needs on this service (none when it opts out)."""
    if ignored(tags):
        return ()
    if strategy == "REPLICA":
        return (gate_constraint(config.gate_attribute),) if config.placement_mode is PlacementMode.GATE else ()
    if config.drain_order is DrainOrder.TIERS:
        tier = config.drain_tiers[tier_of(name or "", tags, config.drain_tiers)]
        return (tier_constraint(tier.name, config.gate_attribute),)
    return ()


@dataclass(frozen=True)
class ServiceWiring:
    """One service's constraints against the configuration: what is missing, what of ours is wrong, and
    the service's constraints once wired (`desired`), unless that would pass ECS's limit (`problem`)."""

    service: str
    strategy: Strategy
    missing: tuple[dict[str, str], ...]
    stale: tuple[dict[str, str], ...]
    desired: tuple[dict[str, str], ...]
    problem: str | None = None

    @property
    def wired(self) -> bool:
        """True when nothing is missing and nothing of ours is wrong."""
        return not self.missing and not self.stale


def api_shape(constraints: Iterable[PlacementConstraint]) -> list[dict[str, str]]:
    """Core views of constraints in the ECS API shape (no ``expression`` for ``distinctInstance``)."""
    return [{"type": c.type, "expression": c.expression} if c.expression else {"type": c.type} for c in constraints]


def _as_dicts(constraints: Iterable[Constraint]) -> list[dict[str, str]]:
    return [{k: str(v) for k, v in c.items() if k in ("type", "expression")} for c in constraints]


def plan_service(config: Config, *, service: str, strategy: Strategy, tags: Mapping[str, str],
                 constraints: Sequence[Constraint], task_definition_constraints: int = 0) -> ServiceWiring:
    """What this service needs: its own constraints kept, ours made to match the configuration."""
    existing = _as_dicts(constraints)
    required = required_constraints(config, strategy, service, tags)
    missing = tuple(r for r in required if not any(same_constraint(r, c) for c in existing))
    stale = () if ignored(tags) else tuple(
        c for c in existing if is_ours(c, config.gate_attribute) and not any(same_constraint(c, r) for r in required))
    desired = tuple([c for c in existing if not any(same_constraint(c, s) for s in stale)] + list(missing))
    total = len(desired) + task_definition_constraints
    problem = None
    if missing and total > MAX_CONSTRAINTS_PER_TASK:
        problem = (f"{service}: {total} placement constraints with daemon-guard's ({len(desired)} on the service, "
                   f"{task_definition_constraints} in its task definition); ECS allows {MAX_CONSTRAINTS_PER_TASK} "
                   "per task: merge or drop some, or tag the service daemon-guard:ignore=true")
    return ServiceWiring(service, strategy, missing, stale, desired, problem)


def without_ours(constraints: Sequence[Constraint], gate_attribute: str) -> tuple[dict[str, str], ...]:
    """The service's constraints with daemon-guard's taken off (the uninstall step)."""
    return tuple(c for c in _as_dicts(constraints) if not is_ours(c, gate_attribute))
