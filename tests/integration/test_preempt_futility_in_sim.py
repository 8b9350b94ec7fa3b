"""Preempt's futility bound, end to end: where replicas always take back the room it frees, it stops.

Under the `worst` behaviour profile the replica scheduler sees the backlog on its next pass and fills
freed room before ECS's daemon scheduler comes back, so preempt's evictions cover nothing. With the
bound, preempt gives up on an instance after its futile tries, then on the cluster's new instances,
says so (metric, event recommending gate mode) and stops churning.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from daemon_guard.core import guard_events as ge

from bench.scenarios import ClusterSpec, ScaleOut, build_cluster, run_scale_out
from bench.suites import TIMING, BreachCounter, guard_config
from sim.deployment import GuardDeployment
from sim.ecs import profile_params
from sim.latency import api_latency
from sim.world import World, WorldOptions
from tests.integration.test_own_events import assert_valid

PLAN = ScaleOut(launches=24, warm_instances=10, warmup_s=150.0, spacing_s=2.0, tail_s=120.0)


@dataclass
class Futile:
    """A preempt scale-out under the worst profile: the deployment's records and the evictions made."""

    deployment: GuardDeployment
    evictions: int


@contextmanager
def worst_scale_out(seed: int, plan: ScaleOut = PLAN, **bounds: int) -> Iterator[Futile]:
    """`plan` under the `worst` profile with preempt and the given futility bounds (config keys)."""
    world = World(WorldOptions(seed=seed, ecs=profile_params("worst"), delivery=TIMING,
                               api_latency=api_latency("worst")))
    spec = ClusterSpec(replica_services=12)
    build_cluster(world, spec)
    counter = BreachCounter(world)
    world.ecs.listeners.append(counter)
    doc = guard_config([spec.asg], "preempt", **bounds) | {
        "clusters": [{"name": spec.name, "autoScalingGroups": [{"name": spec.asg, "terminateHook": False}]}]}
    deployment = GuardDeployment(world, doc)
    try:
        run_scale_out(world, spec, plan)
        yield Futile(deployment, counter.evictions)
    finally:
        deployment.close()


@pytest.mark.slow
def test_preempt_gives_up_where_replicas_take_back_the_room_and_says_to_use_gate() -> None:
    # GIVEN a scale-out where replicas always refill what preempt frees, one futile try allowed per
    # instance and two instances given up on per cluster
    with worst_scale_out(1, preemptMaxTries=1, preemptMaxGiveUps=2) as run:
        gave_up = sum(run.deployment.records.metric_values("PreemptGaveUp"))
        events = run.deployment.own_events.events
    # THEN preempt gave up, counted it, and published each give-up in its documented shape, recommending gate
    assert gave_up >= 2
    kinds = assert_valid(events)
    assert kinds[ge.PREEMPT_GAVE_UP] == gave_up
    assert all(e["detail"]["recommendedPlacementMode"] == "gate" for e in events
               if e["detail-type"] == ge.PREEMPT_GAVE_UP)
    # AND each instance was given up on once (a check that found the give-up recorded published nothing)
    instances = [e["detail"]["containerInstanceArn"] for e in events if e["detail-type"] == ge.PREEMPT_GAVE_UP]
    assert len(instances) == len(set(instances))


@pytest.mark.slow
def test_preempt_stops_far_fewer_replicas_with_the_bound_than_without() -> None:
    # GIVEN the same scale-out with a bound too high to reach, and with the default bound
    with worst_scale_out(1, preemptMaxTries=100, preemptMaxGiveUps=100_000) as run:
        unbounded = run.evictions
    with worst_scale_out(1) as run:
        bounded = run.evictions
    # THEN the bound cuts the churn (the figures at 200 launches are in the benchmark)
    assert bounded < unbounded / 2, (bounded, unbounded)
