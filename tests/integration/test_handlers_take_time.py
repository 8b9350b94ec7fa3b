"""The deployed functions on simulated time: every AWS call costs API latency, and the Timeout holds."""

from __future__ import annotations

import pytest

from bench.scenarios import ClusterSpec, build_cluster
from bench.suites import GATE_ATTRIBUTE, guard_config
from sim.deployment import GuardDeployment
from sim.ecs import profile_params
from sim.latency import ApiLatency
from sim.world import World, WorldOptions
from tests.integration.conftest import Deploy


def gated_cluster(latency: ApiLatency, seed: int = 4) -> tuple[World, ClusterSpec]:
    """Cluster `prod` with three instances running every daemon, their gates not yet open."""
    world = World(WorldOptions(seed=seed, ecs=profile_params("as-reported"), api_latency=latency))
    spec = ClusterSpec(replica_services=3, desired_per_service=4, gate_attribute=GATE_ATTRIBUTE)
    build_cluster(world, spec)
    world.asg.scale_out(spec.asg, 3, 1.0)
    world.clock.run_until(200.0)
    return world, spec


def gate_config(spec: ClusterSpec) -> dict[str, object]:
    return guard_config([spec.asg], "gate") | {"clusters": [{"name": spec.name, "autoScalingGroups": [
        {"name": spec.asg, "terminateHook": False}]}]}


def test_a_reconciler_pass_takes_the_latency_of_its_calls_and_its_writes_land_then(deploy: Deploy) -> None:
    # GIVEN every AWS call taking exactly one simulated second
    world, spec = gated_cluster(ApiLatency(read_median_s=1.0, write_median_s=1.0, sigma=0.0))
    deployment = deploy(world, gate_config(spec), reconcile=False)
    started = world.clock.now
    # WHEN the reconciler runs once
    result = deployment.reconcile_now()
    # THEN it finished, having opened every gate, one second per call later than it started (meanwhile the
    # events of its first gates reached the intake)
    assert result is not None
    assert all(i.attributes.get(GATE_ATTRIBUTE) == "open" for i in world.ecs.instances.values())
    (run,) = [i for i in deployment.records.invocations if i.function == "reconciler"]
    assert run.error is None
    assert run.api_calls > 0
    assert run.duration_s >= run.api_calls
    assert world.clock.now - started == run.duration_s


def test_a_handler_that_would_outlive_its_timeout_ends_there_and_its_later_calls_never_land(deploy: Deploy) -> None:
    # GIVEN every AWS call taking longer than any function's Timeout
    world, spec = gated_cluster(ApiLatency(read_median_s=3600.0, write_median_s=3600.0, sigma=0.0))
    deployment = deploy(world, gate_config(spec), reconcile=False)
    # WHEN the reconciler runs once
    result = deployment.reconcile_now()
    # THEN it timed out as Lambda ends a function, and no gate was opened
    assert result is None
    (run,) = [i for i in deployment.records.invocations if i.function == "reconciler"]
    assert run.error is not None and run.error.startswith("TimedOut: Task timed out")
    assert run.duration_s == deployment.functions["reconciler"].facts.timeout_s
    assert not any(GATE_ATTRIBUTE in i.attributes for i in world.ecs.instances.values())


def test_an_event_whose_invocation_times_out_is_retried_twice_then_sent_to_the_failure_destination(
        deploy: Deploy) -> None:
    # GIVEN calls slower than the intake's Timeout
    world, spec = gated_cluster(ApiLatency(read_median_s=3600.0, write_median_s=3600.0, sigma=0.0))
    deployment = deploy(world, gate_config(spec), reconcile=False)
    instance = next(iter(world.ecs.instances.values()))
    # WHEN the instance's state-change event reaches the intake and Lambda has time to retry
    deployment.deliver(world.instance_event(instance))
    world.clock.run_until(world.clock.now + 600.0)
    # THEN three attempts each timed out, and the event went to the failure destination (nothing lost)
    attempts = [i for i in deployment.records.invocations if i.function == "intake"]
    assert len(attempts) == 3
    assert all(a.error is not None and a.error.startswith("TimedOut") for a in attempts)
    assert len(deployment.records.dead_letters) == 1
    assert deployment.records.lost == []


def invocation_trace(seed: int) -> list[tuple[float, str, int, float]]:
    """Each invocation of a gate-mode scale-out with typical API latency: start, function, calls, duration."""
    world, spec = gated_cluster(ApiLatency(read_median_s=0.04, write_median_s=0.08), seed)
    deployment = GuardDeployment(world, gate_config(spec))
    try:
        world.asg.scale_out(spec.asg, 3, 2.0)
        world.clock.run_until(world.clock.now + 150.0)
        return [(i.at, i.function, i.api_calls, i.duration_s) for i in deployment.records.invocations]
    finally:
        deployment.close()


@pytest.mark.slow
def test_the_same_seed_gives_the_same_interleaving() -> None:
    # GIVEN the same seed twice / WHEN the same scale-out runs / THEN every invocation starts, calls and ends alike
    first = invocation_trace(5)
    assert any(duration > 0 for *_, duration in first)
    assert invocation_trace(5) == first


def test_a_reconciler_short_of_time_leaves_repairs_to_the_next_run_instead_of_timing_out(deploy: Deploy) -> None:
    # GIVEN AWS calls so slow that one pass cannot both audit the cluster and open every gate in its Timeout
    world, spec = gated_cluster(ApiLatency(read_median_s=2.5, write_median_s=2.5, sigma=0.0))
    deployment = deploy(world, gate_config(spec), reconcile=False)
    # WHEN the reconciler runs on its schedule, three times
    results = [deployment.reconcile_now() for _ in range(3)]
    # THEN no run timed out: the first left repairs to later runs, and between them every gate was opened
    runs = [i for i in deployment.records.invocations if i.function == "reconciler"]
    assert [r.error for r in runs] == [None, None, None]
    first = results[0]
    assert first is not None and first["clusters"][0]["repairsDeferred"] > 0
    assert all(i.attributes.get(GATE_ATTRIBUTE) == "open" for i in world.ecs.instances.values())


def test_every_call_the_functions_make_is_counted_once_in_the_invocation_that_made_it(deploy: Deploy) -> None:
    # GIVEN a gated cluster under daemon-guard with its terminate hook (the drain workflow's body runs on a thread
    # of the durable SDK's own, not the invocation's)
    world, spec = gated_cluster(ApiLatency(read_median_s=0.04, write_median_s=0.08))
    deployment = deploy(world, guard_config([spec.asg], "gate"))
    before = world.call_log.count()
    # WHEN one instance is scaled in and drained
    world.asg.scale_in(spec.asg, 1)
    world.clock.run_until(world.clock.now + 300.0)
    # THEN the drain workflow's invocations carry the calls of its steps, and the invocations together carry every
    # call the log saw, none twice
    workflow = [i for i in deployment.records.invocations if i.function == "workflow"]
    assert workflow and sum(i.api_calls for i in workflow) > 0
    assert sum(i.api_calls for i in deployment.records.invocations) == world.call_log.count() - before
