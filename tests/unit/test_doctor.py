"""`core.doctor`: which guarantees a cluster has with a configuration, and what each misses."""

from __future__ import annotations

from typing import Any

import pytest
from daemon_guard.core.config import Config, parse_config
from daemon_guard.core.doctor import (
    CapacityProviderFacts,
    ClusterFacts,
    Guarantee,
    InstanceFacts,
    diagnose,
    service_findings,
    wired,
)
from daemon_guard.core.model import PlacementConstraint, ServiceView
from daemon_guard.core.placement import gate_constraint, tier_constraint

GATE = PlacementConstraint("memberOf", gate_constraint()["expression"])
GROUPS = [{"name": "prod-asg"}, {"name": "prod-spot", "launchHook": True}]


def config(**extra: Any) -> Config:
    return parse_config({"clusters": [{"name": "prod", "autoScalingGroups": GROUPS}], **extra})


GATED = config(placementMode="gate", drainOrder="tiers",
               drainTiers=[{"name": "agents"}, {"name": "log-router", "services": ["fluent-bit"]}])


def svc(name: str, daemon: bool = False, *constraints: PlacementConstraint, **kwargs: Any) -> ServiceView:
    return ServiceView(arn=f"arn:aws:ecs:us-east-1:111122223333:service/prod/{name}", name=name,
                       strategy="DAEMON" if daemon else "REPLICA", task_definition_arn="td", constraints=constraints,
                       launch_type=kwargs.pop("launch_type", "EC2"), **kwargs)


def tier(name: str) -> PlacementConstraint:
    return PlacementConstraint("memberOf", tier_constraint(name)["expression"])


WIRED_SERVICES = (svc("api", False, GATE), svc("xray", True, tier("agents")),
                  svc("fluent-bit", True, tier("log-router")))
HOOKS: dict[str, frozenset[str] | None] = {
    "prod-asg": frozenset({"daemon-guard-terminate"}),
    "prod-spot": frozenset({"daemon-guard-terminate", "daemon-guard-launch"})}


def facts(**changes: Any) -> ClusterFacts:
    base: dict[str, Any] = {"cluster": "prod", "services": WIRED_SERVICES, "capacity_providers": (
        CapacityProviderFacts("prod-cp", "prod-asg", managed_draining=False),), "hooks": HOOKS,
        "instances": (InstanceFacts("i-0aaa", "1.89.0"),)}
    return ClusterFacts(**{**base, **changes})


def findings(guarantees: tuple[Guarantee, ...]) -> dict[str, list[str]]:
    return {g.name: [f"{f.subject}: {f.problem}" for f in g.findings] for g in guarantees if g.findings}


def test_a_fully_wired_cluster_has_every_claimed_guarantee() -> None:
    guarantees = diagnose(GATED, facts())
    assert wired(guarantees)
    assert {g.name for g in guarantees if g.claimed} == {
        "daemons-first", "daemons-fit", "daemons-after-apps", "tiers-in-order", "drain-on-exit", "launch-held"}


@pytest.mark.parametrize(("change", "guarantee", "subject", "words"), [
    ({"services": (svc("api"), *WIRED_SERVICES[1:])}, "daemons-first daemons-after-apps", "api",
     "without the gate"),
    ({"services": (*WIRED_SERVICES[:2], svc("fluent-bit", True))}, "tiers-in-order", "fluent-bit",
     "without its tier"),
    ({"services": (*WIRED_SERVICES[:2], svc("fluent-bit", True, tier("agents")))}, "tiers-in-order", "fluent-bit",
     "not its tier's"),
    ({"services": (*WIRED_SERVICES, svc("cwagent", True, GATE, tier("agents")))}, "daemons-first", "cwagent",
     "stops it when the gate shuts"),
    ({"capacity_providers": (CapacityProviderFacts("prod-cp", "prod-asg", True),)}, "drain-on-exit", "prod-asg",
     "managed draining"),
    ({"hooks": {**HOOKS, "prod-asg": frozenset()}}, "drain-on-exit", "prod-asg", "no daemon-guard-terminate"),
    ({"hooks": {**HOOKS, "prod-spot": frozenset({"daemon-guard-terminate"})}}, "launch-held", "prod-spot",
     "no daemon-guard-launch"),
    ({"hooks": {**HOOKS, "prod-spot": None}}, "drain-on-exit launch-held", "prod-spot", "not found"),
    ({"instances": (InstanceFacts("i-0bbb", "1.89.0", ("fluent-bit",)),)}, "daemons-fit", "i-0bbb",
     "cannot hold fluent-bit"),
])
def test_each_missing_piece_is_reported_under_the_guarantee_it_breaks(
        change: dict[str, Any], guarantee: str, subject: str, words: str) -> None:
    # GIVEN a wired cluster with one piece missing / WHEN diagnosed / THEN the guarantees it breaks list it, only they
    guarantees = diagnose(GATED, facts(**change))
    assert not wired(guarantees)
    listed = findings(guarantees)
    assert list(listed) == guarantee.split()
    for name in guarantee.split():
        assert any(line.startswith(f"{subject}: ") and words in line for line in listed[name]), listed


def test_preempt_with_ecs_draining_claims_no_constraint_and_counts_on_the_agent() -> None:
    # GIVEN the defaults (preempt, draining) and an instance with an agent from before the daemons-last release
    defaults = config()
    agents = (InstanceFacts("i-0old", "1.47.0"), InstanceFacts("i-0new", "1.89.0"))
    guarantees = diagnose(defaults, facts(services=(svc("api"), svc("xray", True)), instances=agents))
    # THEN daemons-first and tiers are not claimed, and the old agent is what breaks daemons-after-apps
    claimed = {g.name: g for g in guarantees}
    assert not claimed["daemons-first"].claimed and not claimed["tiers-in-order"].claimed
    assert findings(guarantees) == {"daemons-after-apps": [
        "i-0old: container agent 1.47.0 is older than 1.48.0, the release that stops daemons last"]}


def test_a_replica_gated_outside_gate_mode_is_a_finding_even_unclaimed() -> None:
    guarantees = diagnose(config(), facts(services=(svc("api", False, GATE),)))
    assert not wired(guarantees)
    assert "nothing opens the gate" in findings(guarantees)["daemons-first"][0]


def test_fargate_inactive_and_opted_out_services_are_not_counted() -> None:
    services = (svc("web", launch_type="FARGATE"), svc("old", status="DRAINING"),
                svc("legacy", tags={"daemon-guard:ignore": "true"}), svc("cp", launch_type=None,
                                                                           capacity_providers=("FARGATE_SPOT",)))
    found = service_findings(GATED, services)
    assert found.without_gate == () and found.without_tier == ()
