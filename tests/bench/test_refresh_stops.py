"""The refresh story names who stopped the RUNNING tasks of a service that went below its minimumHealthyPercent."""

from __future__ import annotations

from bench.drain_budget import stops_by_reason
from sim.world import World
from tests.sim.conftest import CLUSTER, add_instance, add_replicas, advance_until, new_world, running


def _world_with_three_running() -> World:
    world = new_world(throttling=False, profile="as-documented")
    world.ecs.create_cluster(CLUSTER)
    add_instance(world)
    add_replicas(world, "api", 3)
    add_replicas(world, "web", 1)
    advance_until(world, lambda: len(running(world, "service:api")) == 3 and len(running(world, "service:web")) == 1,
                  limit=600.0)
    return world


def test_stops_are_counted_by_who_stopped_each_running_task_and_kills_by_name() -> None:
    # GIVEN a service of three RUNNING tasks, the refresh starting now
    world = _world_with_three_running()
    since = world.clock.now
    first, second, third = sorted(running(world, "service:api"), key=lambda t: t.arn)
    world.ecs.service_named(CLUSTER, "api").desired_count = 1  # no replacement to muddle the count
    # WHEN the guard's replica phase stops one, its deadline another, and once they have STOPPED EC2 terminates the
    # instance under the third
    world.ecs.stop_task(first, "daemon-guard drain: replicas")
    world.ecs.stop_task(second, "daemon-guard drain: replicas deadline")
    world.clock.advance(10.0)
    world.ecs.terminate_instance(world.ecs.instances[third.container_instance].ec2_instance_id)
    # THEN each is counted under its own reason, the kill as one; a service not asked for is left out
    assert stops_by_reason(world, ["api"], since) == {"api": {"daemon-guard drain: replicas": 1,
                                                              "daemon-guard drain: replicas deadline": 1,
                                                              "killed at termination": 1}}


def test_tasks_stopped_before_the_refresh_or_never_running_are_not_counted() -> None:
    # GIVEN a RUNNING task stopped before the refresh, and a service with no task stopped since
    world = _world_with_three_running()
    world.ecs.stop_task(running(world, "service:api")[0], "Scaling activity initiated by deployment")
    world.clock.advance(10.0)
    # WHEN the stops are counted from now on / THEN there are none
    assert stops_by_reason(world, ["api", "web"], world.clock.now) == {"api": {}, "web": {}}
