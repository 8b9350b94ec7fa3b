"""Which guarantees a cluster has with a configuration, and what each one still misses (`daemon-guard doctor`).

Pure: the edge reads the cluster (services, capacity providers, the groups' lifecycle hooks, the
container instances) into `ClusterFacts`; `diagnose` says, per guarantee the configuration claims,
whether it holds and why not. The reconciler publishes the service part (`service_findings`) as the
metrics ``ServicesWithoutGate`` / ``DaemonServicesWithoutTier`` and the ``Constraints Missing`` event.

The guarantees, and what each rests on (README, "Guarantees"):

- ``daemons-first`` (placementMode ``gate``): the gate constraint on every replica service, none on a daemon.
- ``daemons-fit`` (always): every instance can hold its eligible daemons even when empty.
- ``daemons-after-apps``: with drainOrder ``apps-first``/``tiers`` the guard stops the apps itself
  behind the gate constraint (as ``daemons-first``); with ``draining`` ECS decides, which container
  agents older than `DAEMONS_LAST_AGENT` predate.
- ``tiers-in-order`` (drainOrder ``tiers``): each daemon service carries its tier's constraint.
- ``drain-on-exit`` (a group with ``terminateHook``): the group carries daemon-guard's terminate hook and
  its capacity provider does not also run ECS managed draining (unless ``coexistWithManagedDraining``).
- ``launch-held`` (a group with ``launchHook``): the group carries daemon-guard's launch hook.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from daemon_guard.core.config import LAUNCH_HOOK_NAME, TERMINATE_HOOK_NAME, Config, DrainOrder, PlacementMode
from daemon_guard.core.model import ServiceView
from daemon_guard.core.placement import gate_constraint
from daemon_guard.core.wiring import api_shape, ignored, plan_service, runs_on_instances, same_constraint

# The release floor for "ECS stops daemons last on a DRAINING instance". The agent's CHANGELOG.md
# (github.com/aws/amazon-ecs-agent, read at 8dfceca6, 2026-06-30) has no entry for it: AWS announced the
# order in November 2020 ("Improving daemon services in Amazon ECS": "ECS stops all other tasks before the
# daemon tasks"), as a control-plane change. 1.48.0 (tagged 2020-11-19) is the first agent release of that
# month; older agents predate the behaviour, so doctor does not count on it for them.
DAEMONS_LAST_AGENT = (1, 48, 0)

GuaranteeName = Literal["daemons-first", "daemons-fit", "daemons-after-apps", "tiers-in-order", "drain-on-exit",
                        "launch-held"]


@dataclass(frozen=True)
class CapacityProviderFacts:
    """An ECS capacity provider of the cluster: its group and whether ECS managed draining is on."""

    name: str
    auto_scaling_group: str
    managed_draining: bool


@dataclass(frozen=True)
class InstanceFacts:
    """One ACTIVE container instance: its agent, and the eligible daemons it cannot hold even when empty."""

    ec2_instance_id: str
    agent_version: str
    daemons_cannot_fit: tuple[str, ...] = ()


@dataclass(frozen=True)
class ClusterFacts:
    """What doctor read of one cluster. `hooks` maps each managed group to its lifecycle hook names (None:
    the group was not found)."""

    cluster: str
    services: tuple[ServiceView, ...]
    capacity_providers: tuple[CapacityProviderFacts, ...]
    hooks: dict[str, frozenset[str] | None]
    instances: tuple[InstanceFacts, ...]


@dataclass(frozen=True)
class Finding:
    """One thing missing for one guarantee: the subject (a service, a group, an instance) and what is wrong."""

    subject: str
    problem: str


@dataclass(frozen=True)
class Guarantee:
    """One guarantee: whether this configuration claims it, what it rests on, and what is missing."""

    name: GuaranteeName
    claimed: bool
    rests_on: str
    findings: tuple[Finding, ...] = ()

    @property
    def holds(self) -> bool:
        """True when claimed and nothing is missing."""
        return self.claimed and not self.findings


@dataclass(frozen=True)
class ServiceFindings:
    """The services missing a constraint, and those carrying one of ours they should not (a gate on a daemon,
    a tier constraint on a replica or of another tier)."""

    without_gate: tuple[str, ...]
    without_tier: tuple[str, ...]
    misplaced_gates: tuple[Finding, ...] = ()
    misplaced_tiers: tuple[Finding, ...] = ()


def service_findings(config: Config, services: Sequence[ServiceView]) -> ServiceFindings:
    """Replica services without the gate (gate mode), daemon services without their tier constraint (tiers), and
    services carrying a gate or tier constraint the configuration does not put there. Services not on container
    instances, not ACTIVE, or tagged daemon-guard:ignore=true are left out."""
    without_gate: list[str] = []
    without_tier: list[str] = []
    gates: list[Finding] = []
    misplaced: list[Finding] = []
    gate = gate_constraint(config.gate_attribute)
    for svc in sorted(services, key=lambda s: s.name):
        if svc.status != "ACTIVE" or ignored(svc.tags) or runs_on_instances(svc.launch_type,
                                                                          svc.capacity_providers) is False:
            continue
        plan = plan_service(config, service=svc.name, strategy=svc.strategy, tags=svc.tags,
                            constraints=api_shape(svc.constraints))
        if plan.missing:
            (without_gate if svc.strategy == "REPLICA" else without_tier).append(svc.name)
        for stale in plan.stale:
            if same_constraint(stale, gate):
                gates.append(Finding(svc.name, "daemon service with the gate constraint: ECS stops it when the gate "
                                     "shuts" if svc.strategy == "DAEMON" else "replica service with the gate "
                                     "constraint while placementMode is not gate: nothing opens the gate"))
            else:
                misplaced.append(Finding(svc.name, f"carries {stale['expression']!r}, not its tier's constraint"))
    return ServiceFindings(tuple(without_gate), tuple(without_tier), tuple(gates), tuple(misplaced))


def agent_version(text: str) -> tuple[int, ...] | None:
    """``1.89.0`` to (1, 89, 0); None when it is not a dotted version."""
    parts = text.strip().lstrip("v").split(".")
    return tuple(int(p) for p in parts) if parts and all(p.isdigit() for p in parts) else None


def _services_guarantees(config: Config, found: ServiceFindings) -> list[Guarantee]:
    gate = config.placement_mode is PlacementMode.GATE
    no_gate = tuple(Finding(s, "replica service without the gate constraint") for s in found.without_gate)
    tiers = config.drain_order is DrainOrder.TIERS
    return [
        Guarantee("daemons-first", gate, "the gate constraint on every replica service, none on a daemon"
                  if gate else f"nothing: placementMode {config.placement_mode.value} is best effort (gate "
                  "mode and the gate constraint make it a guarantee)",
                  (no_gate if gate else ()) + found.misplaced_gates),
        Guarantee("tiers-in-order", tiers, "each daemon service's tier constraint" if tiers
                  else f"nothing: drainOrder {config.drain_order.value} does not order daemon tiers",
                  tuple(Finding(s, "daemon service without its tier constraint") for s in found.without_tier)
                  + found.misplaced_tiers if tiers else ()),
    ]


def _after_apps(config: Config, facts: ClusterFacts, found: ServiceFindings) -> Guarantee:
    if config.drain_order is not DrainOrder.DRAINING:
        return Guarantee("daemons-after-apps", True, "the guard stops the apps itself behind the gate constraint",
                         tuple(Finding(s, "replica service without the gate constraint") for s in found.without_gate))
    old = []
    for inst in facts.instances:
        version = agent_version(inst.agent_version)
        if version is None or version < DAEMONS_LAST_AGENT:
            old.append(Finding(inst.ec2_instance_id, f"container agent {inst.agent_version or 'unknown'} is older "
                               f"than {'.'.join(map(str, DAEMONS_LAST_AGENT))}, the release that stops daemons last"))
    return Guarantee("daemons-after-apps", True, "ECS's own order on DRAINING (drainOrder draining: best effort, "
                     "ECS decides when daemons stop) and a container agent that stops daemons last", tuple(old))


def _groups(config: Config, facts: ClusterFacts) -> list[Guarantee]:
    managed = next((c for c in config.clusters if c.name == facts.cluster), None)
    groups = managed.groups if managed else ()
    drain, launch = [], []
    draining = {p.auto_scaling_group: p for p in facts.capacity_providers if p.managed_draining}
    for group in groups:
        hooks = facts.hooks.get(group.name)
        if group.terminate_hook:
            if hooks is None:
                drain.append(Finding(group.name, "Auto Scaling group not found"))
            elif TERMINATE_HOOK_NAME not in hooks:
                drain.append(Finding(group.name, f"no {TERMINATE_HOOK_NAME} lifecycle hook (deploy the stack)"))
            provider = draining.get(group.name)
            if provider is not None and not group.coexist_with_managed_draining:
                drain.append(Finding(group.name, f"capacity provider {provider.name} runs ECS managed draining: two "
                                     "terminate hooks race (turn it off, or set coexistWithManagedDraining)"))
        if group.launch_hook and (hooks is None or LAUNCH_HOOK_NAME not in hooks):
            launch.append(Finding(group.name, "Auto Scaling group not found" if hooks is None
                                  else f"no {LAUNCH_HOOK_NAME} lifecycle hook (deploy the stack)"))
    return [
        Guarantee("drain-on-exit", any(g.terminate_hook for g in groups),
                  "daemon-guard's terminate hook on each managed group, and no ECS managed draining beside it",
                  tuple(drain)),
        Guarantee("launch-held", any(g.launch_hook for g in groups), "daemon-guard's launch hook on each group "
                  "that asks for it", tuple(launch)),
    ]


def diagnose(config: Config, facts: ClusterFacts) -> tuple[Guarantee, ...]:
    """Every guarantee, claimed or not, with what it rests on and what is missing for this cluster."""
    found = service_findings(config, facts.services)
    fit = Guarantee("daemons-fit", True, "instance types large enough for their eligible daemons", tuple(
        Finding(i.ec2_instance_id, f"cannot hold {', '.join(i.daemons_cannot_fit)} even when empty")
        for i in facts.instances if i.daemons_cannot_fit))
    first, tiers = _services_guarantees(config, found)
    return (first, fit, _after_apps(config, facts, found), tiers, *_groups(config, facts))


def wired(guarantees: Sequence[Guarantee]) -> bool:
    """True when every claimed guarantee holds and nothing is misplaced (a gate nobody opens, say)."""
    return all(not g.findings for g in guarantees)
