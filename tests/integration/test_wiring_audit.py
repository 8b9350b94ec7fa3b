"""The reconciler notices services deployed without their constraint: metrics and an event, within its read budget."""

from __future__ import annotations

from typing import Any

import pytest
from daemon_guard.core import guard_events as ge
from jsonschema import Draft202012Validator, FormatChecker

from bench.scenarios import ClusterSpec, build_cluster
from bench.suites import guard_config
from sim.deployment import GuardDeployment
from sim.ecs import profile_params
from sim.world import World, WorldOptions

PERIOD_S = 600.0  # services.reconcile.WIRING_AUDIT_PERIOD_MIN


def published(deployment: GuardDeployment, name: str) -> list[float]:
    """Every value the reconciler emitted for metric `name` (EMF may carry one value or a list)."""
    values: list[float] = []
    for doc in deployment.records.emf:
        if name in doc:
            values += [float(v) for v in (doc[name] if isinstance(doc[name], list) else [doc[name]])]
    return values


@pytest.mark.slow
def test_services_without_their_constraint_are_published_once_per_period() -> None:
    # GIVEN gate mode with tiers, two replica services without the gate and three daemons without their tier
    world = World(WorldOptions(seed=9, ecs=profile_params("as-reported")))
    spec = ClusterSpec(replica_services=2, desired_per_service=1)
    build_cluster(world, spec)
    doc: dict[str, Any] = guard_config([spec.asg], "gate", drainOrder="tiers") | {
        "clusters": [{"name": spec.name, "autoScalingGroups": [{"name": spec.asg, "terminateHook": False}]}]}
    deployment = GuardDeployment(world, doc, reconcile=False)
    try:
        # WHEN the reconciler runs twice within one period, then once more a period later
        deployment.reconcile_now()
        reads_first = world.ecs_api.calls.get("DescribeServices", 0)
        deployment.reconcile_now()
        reads_second = world.ecs_api.calls.get("DescribeServices", 0) - reads_first
        world.clock.run_until(world.clock.now + PERIOD_S)
        deployment.reconcile_now()
        events = [e for e in deployment.own_events.events if e["detail-type"] == ge.CONSTRAINTS_MISSING]
        # THEN the counts are published at the first run and a period later, not in between
        assert published(deployment, "ServicesWithoutGate") == [2.0, 2.0]
        assert published(deployment, "DaemonServicesWithoutTier") == [3.0, 3.0]
        # AND the second run read at most the daemon services (one DescribeServices batch; none while the daemon
        # list read a moment before is fresh), never the replicas again
        assert reads_second <= 1
        # AND each audit published one Constraints Missing event naming the services, valid against its schema
        assert len(events) == 2
        validator = Draft202012Validator(ge.SCHEMAS[ge.CONSTRAINTS_MISSING], format_checker=FormatChecker())
        assert [e.message for e in validator.iter_errors(events[0]["detail"])] == []
        assert events[0]["detail"]["servicesWithoutGate"] == ["app-00", "app-01"]
        assert len(events[0]["detail"]["daemonServicesWithoutTier"]) == 3
    finally:
        deployment.close()
