"""A drain whose instance goes before it ends: each task EC2 kills is a guarantee break the guard counts.

The range suite found these kills uncounted: EventBridge delivered the Spot warning later than the two-minute
notice, the reconciler started the drain from the lifecycle action alone (no notice known), and EC2 reclaimed
the instance while the drain still followed its tasks.
"""

from __future__ import annotations

import pytest

from bench.attribution import Violation, attribute, guard_records
from sim.ecs import profile_params
from sim.params import apply
from sim.world import World, WorldOptions
from tests.integration.conftest import Deploy, config_for, emitted
from tests.integration.test_drain_in_sim import instance_with_replica, small_cluster

SEED = 3
# Events 300 s late (longer than the Spot notice: the warning and the lifecycle action come after the instance
# is gone), and apps that take 100 s to stop (more than the notice leaves once the reconciler starts the drain).
LATE_EVENTS = {"event_delay_s": (300.0, 300.0), "task_shutdown_s": (100.0, 100.0)}


@pytest.mark.slow
def test_a_spot_instance_reclaimed_before_its_warning_arrives_is_one_counted_break_covering_every_kill(
        deploy: Deploy) -> None:
    # GIVEN a managed cluster whose events are delivered 300 s late, and apps that take 100 s to stop
    world = World(apply(WorldOptions(seed=SEED, ecs=profile_params("as-documented")), LATE_EVENTS))
    asg = small_cluster(world, replicas=2)
    deployment = deploy(world, config_for([asg], "gate", drainOrder="tiers"))
    victim = instance_with_replica(world)
    # WHEN EC2 interrupts the Spot instance (its warning reaches the guard only after the two minutes)
    world.asg.spot_interruption(victim)
    world.clock.run_until(world.clock.now + 900.0)
    # THEN EC2 killed tasks on it (the drain, started by the reconciler from the waiting lifecycle action,
    # had no notice to race and apps too slow for what was left)
    kills = [t for t in world.ecs.ungraceful_kills if world.ecs.instances[t.container_instance].ec2_instance_id
             == victim]
    assert kills
    # AND the guard published one Drain Guarantee Broken for the instance, the instance gone with its tasks
    breaks, failed_open = guard_records(deployment.own_events.events)
    assert [(b.instance_id, b.cause) for b in breaks] == [(victim, "instance-gone")]
    assert emitted(deployment, "DrainGuaranteeBreaks") == 1
    # AND the range suite's attribution counts every kill by it, none uncounted
    out = attribute([Violation("tasks-killed", victim, t.stopped_at or 0.0) for t in kills], breaks, failed_open)
    assert out["counted"]["tasks-killed"] == {"instance-gone": len(kills)}
    assert out["uncounted"]["tasks-killed"] == 0
