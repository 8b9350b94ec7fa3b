"""The intake under ECS throttling, deployed from its template on simulated time: its ECS calls retry while its
invocation has time (`ECS_RETRY=deadline`), so it neither outlives its Timeout nor defers a check it could finish."""

from __future__ import annotations

import random
from typing import Any

from daemon_guard.core.retry import RESERVE_S

from bench.suites import GATE_ATTRIBUTE
from sim import event_shapes as shapes
from sim.deployment import GuardDeployment, Invocation
from sim.ecs_api import ApiFaults
from sim.latency import ApiLatency
from sim.world import World
from tests.integration.conftest import Deploy
from tests.integration.test_handlers_take_time import gate_config, gated_cluster


def throttled_for(deploy: Deploy, seconds: float) -> tuple[World, GuardDeployment, Any, Invocation]:
    """A gated cluster under the guard; ECS throttles every call for `seconds` from the moment one instance's
    state-change event reaches the intake. Returns the world, the deployment, the instance and the intake's first
    invocation for that event."""
    world, spec = gated_cluster(ApiLatency(read_median_s=0.04, write_median_s=0.08))
    deployment = deploy(world, gate_config(spec), reconcile=False)
    instance = next(iter(world.ecs.instances.values()))
    world.ecs_api.faults = ApiFaults(throttle_rate=1.0)
    start = world.clock.now
    world.clock.at(start + seconds, lambda: setattr(world.ecs_api, "faults", ApiFaults()))
    before = len(deployment.records.invocations)
    deployment.deliver(world.instance_event(instance))
    world.clock.run_until(start + 300.0)
    return world, deployment, instance, deployment.records.invocations[before]


def test_an_intake_throttled_past_its_timeout_defers_the_check_before_the_timeout(deploy: Deploy) -> None:
    # GIVEN ECS throttling every call for the next hour
    # WHEN an instance's state-change event reaches the intake
    _, deployment, instance, first = throttled_for(deploy, 3600.0)
    timeout_s = deployment.functions["intake"].facts.timeout_s
    # THEN the intake retried into its invocation's time, then deferred the check to the reconciler and returned
    # inside its Timeout with about its reserve to spare: no timeout, so Lambda does not retry the event
    assert first.error is None and first.result is not None
    assert first.result["decision"] == "deferred"
    assert timeout_s - RESERVE_S - 5.0 <= first.duration_s < timeout_s
    assert first.api_calls > 8  # more attempts than the fixed count that timed out under the storm
    intake = [i for i in deployment.records.invocations if i.name == "intake"]
    assert not any(i.error for i in intake)
    assert GATE_ATTRIBUTE not in instance.attributes


def test_an_intake_throttled_briefly_finishes_its_check_without_deferring(deploy: Deploy) -> None:
    # GIVEN ECS throttling every call for 30 s (more than four of the SDK's attempts wait out)
    # WHEN an instance's state-change event reaches the intake
    _, deployment, instance, first = throttled_for(deploy, 30.0)
    timeout_s = deployment.functions["intake"].facts.timeout_s
    # THEN the intake's calls got through once the throttling ended: it opened the gate in the same invocation,
    # inside its Timeout, deferring nothing
    assert first.error is None and first.result is not None
    assert first.result["decision"] == "open-gate"
    assert 30.0 <= first.duration_s < timeout_s
    assert instance.attributes.get(GATE_ATTRIBUTE) == "open"
    assert not any(i.result and i.result["decision"] == "deferred" for i in deployment.records.invocations)


def test_a_daemon_placement_failure_under_a_throttling_storm_is_deferred_not_failed(deploy: Deploy) -> None:
    # GIVEN a gated cluster under the guard, its intake's list of daemon services not yet read, and ECS
    # throttling every call for the next hour
    world, spec = gated_cluster(ApiLatency(read_median_s=0.04, write_median_s=0.08))
    deployment = deploy(world, gate_config(spec), reconcile=False)
    daemon = next(s for s in world.ecs.services.values() if s.cluster == spec.name and s.strategy == "DAEMON")
    instance = next(iter(world.ecs.instances.values()))
    world.ecs_api.faults = ApiFaults(throttle_rate=1.0)
    before = len(deployment.records.invocations)
    # WHEN ECS reports that it could not place the daemon on an instance
    deployment.deliver(shapes.service_action(
        rng=random.Random(1), time=world.clock.datetime(), cluster_arn=world.ecs.cluster_arn(spec.name),
        service_arn=daemon.arn, event_name="SERVICE_TASK_PLACEMENT_FAILURE", event_type="ERROR",
        reason="RESOURCE:CPU", container_instance_arns=[instance.arn], account=world.account, region=world.region))
    world.clock.run_until(world.clock.now + 300.0)
    # THEN the intake, unable to read which services are daemons, leaves the check to the reconciler inside its
    # Timeout: no error, so EventBridge does not retry the event into the storm
    (first,) = deployment.records.invocations[before:before + 1]
    timeout_s = deployment.functions["intake"].facts.timeout_s
    assert first.error is None and first.result is not None
    assert first.result["decision"] == "deferred"
    assert first.duration_s < timeout_s
    assert not any(i.error for i in deployment.records.invocations if i.name == "intake")
