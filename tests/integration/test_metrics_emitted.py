"""The dashboard and alarms read exactly what the code emits: EMF collected from simulator runs.

One run exercises every path that emits: a gate-mode scale-out with a daemon too big to ever fit
(gates fail open), a gate-mode scale-out whose critical daemon fails to start on some instances
(replaced, then held by a budget of one), a preempt-mode scale-out under backlog (evictions), drains of instances with a
blocked service under a short deadline (blocked, deadline missed, heartbeats), duplicated and
malformed events, the reconciler, a gate ECS refuses (an instance at its attribute limit), and preempt
giving up where replicas always take back the room it frees.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from daemon_guard.core.metrics import ALL_METRICS, CLUSTER_DIMENSION, NAMESPACE

from bench.scenarios import ClusterSpec, ScaleOut, build_cluster, run_scale_out
from bench.suites import GATE_ATTRIBUTE, guard_config
from infra.observability import metrics_named_by_dashboard
from sim.deployment import GuardDeployment
from sim.ecs import profile_params
from sim.eventbridge import FaultPlan
from sim.world import World, WorldOptions
from tests.integration.test_preempt_futility_in_sim import worst_scale_out

# Long simulator stories: `make test` runs them, `make test-fast` leaves them out.
pytestmark = pytest.mark.slow

Emitted = set[tuple[str, frozenset[str]]]


def _emitted(records: list[dict[str, Any]]) -> Emitted:
    out: Emitted = set()
    for doc in records:
        for directive in doc["_aws"]["CloudWatchMetrics"]:
            assert directive["Namespace"] == NAMESPACE
            for dims in directive["Dimensions"]:
                for metric in directive["Metrics"]:
                    out.add((metric["Name"], frozenset(dims)))
    return out


def _scale_out(mode: str, seed: int) -> Emitted:
    world = World(WorldOptions(seed=seed, ecs=profile_params("as-reported"), delivery=FaultPlan(duplicate_rate=0.3)))
    spec = ClusterSpec(replica_services=6, gate_attribute=GATE_ATTRIBUTE if mode == "gate" else None)
    build_cluster(world, spec)
    if mode == "gate":
        # A daemon no instance can hold, eligible in one zone only: there gates can only fail open.
        td = world.ecs.register_task_definition("huge-agent", [{"name": "huge", "cpu": 64, "memory": 20000}])
        world.ecs.create_service(spec.name, "huge-agent", td, daemon=True,
                                 constraints=["attribute:ecs.availability-zone == us-east-1a"])
    doc = guard_config([spec.asg], mode, gateTimeoutSeconds=30) | {
        "clusters": [{"name": spec.name, "autoScalingGroups": [{"name": spec.asg, "terminateHook": False}]}]}
    deployment = GuardDeployment(world, doc)
    try:
        run_scale_out(world, spec, ScaleOut(launches=25, warm_instances=12, warmup_s=120.0))
        deployment.deliver({"detail-type": "ECS Task State Change", "source": "aws.ecs", "detail": "not an object"})
        return _emitted(deployment.records.emf)
    finally:
        deployment.close()


def _critical(seed: int) -> Emitted:
    """Gate mode with cwagent critical and failing on a third of instances, one replacement an hour."""
    params = replace(profile_params("as-documented"), failing_daemon="cwagent", failing_share=0.34)
    world = World(WorldOptions(seed=seed, ecs=params))
    spec = ClusterSpec(replica_services=4, gate_attribute=GATE_ATTRIBUTE)
    build_cluster(world, spec)
    doc = guard_config([spec.asg], "gate", gateTimeoutSeconds=30, criticalDaemons=["cwagent"],
                       maxReplacementsPerHour=1) | {
        "clusters": [{"name": spec.name, "autoScalingGroups": [{"name": spec.asg, "terminateHook": False}]}]}
    deployment = GuardDeployment(world, doc)
    try:
        run_scale_out(world, spec, ScaleOut(launches=8, warm_instances=4, warmup_s=120.0, tail_s=180.0))
        return _emitted(deployment.records.emf)
    finally:
        deployment.close()


def _drains(seed: int) -> Emitted:
    world = World(WorldOptions(seed=seed, ecs=profile_params("as-reported")))
    spec = ClusterSpec(replica_services=4, desired_per_service=12)
    build_cluster(world, spec)
    pinned = world.ecs.register_task_definition("pinned", [{"name": "p", "cpu": 128, "memory": 128}])
    world.ecs.create_service(spec.name, "pinned", pinned, desired_count=8, minimum_healthy_percent=100,
                             maximum_percent=100)
    doc = guard_config([spec.asg], drainDeadlineSeconds=150, tierDeadlineSeconds=20) | {
        "clusters": [{"name": spec.name, "autoScalingGroups": [{"name": spec.asg, "heartbeatTimeoutSeconds": 30}]}]}
    deployment = GuardDeployment(world, doc)
    try:
        world.asg.scale_out(spec.asg, 8, 1.0)
        world.clock.run_until(200.0)
        world.asg.scale_in(spec.asg, 3)
        world.clock.run_until(600.0)
        return _emitted(deployment.records.emf)
    finally:
        deployment.close()


def _budget(seed: int) -> Emitted:
    """A scale-in of three under a drain budget of one (10% of six), and a Spot notice meanwhile: two drains wait,
    the Spot drain bypasses the budget."""
    world = World(WorldOptions(seed=seed, ecs=profile_params("as-reported")))
    spec = ClusterSpec(replica_services=2, desired_per_service=4)
    build_cluster(world, spec)
    doc = guard_config([spec.asg], drainBudget="10%") | {
        "clusters": [{"name": spec.name, "autoScalingGroups": [{"name": spec.asg, "heartbeatTimeoutSeconds": 60}]}]}
    deployment = GuardDeployment(world, doc)
    try:
        world.asg.scale_out(spec.asg, 6, 1.0)
        world.clock.run_until(200.0)
        leaving = set(world.asg.scale_in(spec.asg, 3))
        world.clock.run_until(205.0)
        world.asg.spot_interruption(sorted(set(world.asg.groups[spec.asg].instances) - leaving)[0])
        world.clock.run_until(700.0)
        assert deployment.records.access_denied == []
        return _emitted(deployment.records.emf)
    finally:
        deployment.close()


def _gate_refused(seed: int) -> Emitted:
    """Gate mode turned on where one covered instance already holds ECS's 10 custom attributes."""
    world = World(WorldOptions(seed=seed, ecs=profile_params("as-reported")))
    spec = ClusterSpec(replica_services=2, desired_per_service=2)
    build_cluster(world, spec)
    world.asg.scale_out(spec.asg, 2, 1.0)
    world.clock.run_until(200.0)
    full = next(i for i in world.ecs.instances.values() if i.status == "ACTIVE")
    world.ecs.set_attributes(full, {f"team.label{n}": "x" for n in range(10)})
    doc = guard_config([spec.asg], "gate") | {
        "clusters": [{"name": spec.name, "autoScalingGroups": [{"name": spec.asg, "terminateHook": False}]}]}
    deployment = GuardDeployment(world, doc, reconcile=False)
    try:
        deployment.reconcile_now()
        return _emitted(deployment.records.emf)
    finally:
        deployment.close()


def _preempt_gave_up(seed: int) -> Emitted:
    """Preempt where replicas always take back the room it frees (the `worst` profile): it gives up."""
    plan = ScaleOut(launches=4, warm_instances=6, warmup_s=120.0, tail_s=60.0)
    with worst_scale_out(seed, plan, preemptMaxTries=1, preemptMaxGiveUps=1) as run:
        return _emitted(run.deployment.records.emf)


@pytest.fixture(scope="module")
def emitted() -> Iterator[Emitted]:
    yield (_scale_out("gate", 3) | _scale_out("preempt", 4) | _drains(5) | _gate_refused(6) | _preempt_gave_up(7)
           | _critical(8) | _budget(9))


def test_every_metric_the_dashboard_and_alarms_read_is_emitted_with_the_same_dimensions(emitted: Emitted) -> None:
    # GIVEN the metrics the dashboard and alarms name / WHEN the simulator runs the real handlers
    # THEN each one appeared in the EMF output with exactly those dimension names
    missing = sorted((name, sorted(dims)) for name, dims in metrics_named_by_dashboard() - emitted)
    assert missing == []


def test_every_emitted_metric_is_in_the_catalogue_and_on_the_dashboard_unless_left_off_on_purpose(
        emitted: Emitted) -> None:
    # GIVEN the catalogue / WHEN the handlers emit / THEN nothing outside it, and every emitted
    # metric is on the dashboard or marked on_dashboard=False
    catalogue = {(s.name, frozenset((CLUSTER_DIMENSION, *s.extra_dimensions))): s for s in ALL_METRICS}
    unknown = sorted(name for name, dims in emitted if (name, dims) not in catalogue)
    assert unknown == []
    on_dashboard = {name for name, _ in metrics_named_by_dashboard()}
    hidden = sorted(name for name, dims in emitted if name not in on_dashboard and catalogue[(name, dims)].on_dashboard)
    assert hidden == []
