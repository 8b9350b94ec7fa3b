"""The simulated daemon scheduler rolls a DAEMON service out as ECS does: old task stopped first, then the new one."""

from __future__ import annotations

from sim.ecs import profile_params
from sim.world import World, WorldOptions


def cluster(min_healthy: int, instances: int = 4) -> tuple[World, str]:
    world = World(WorldOptions(seed=1, ecs=profile_params("as-reported")))
    ecs = world.ecs
    ecs.create_cluster("prod")
    td = ecs.register_task_definition("fluent-bit", [{"name": "fluent-bit", "cpu": 128, "memory": 256}])
    svc = ecs.create_service("prod", "fluent-bit", td, daemon=True, minimum_healthy_percent=min_healthy)
    for i in range(instances):
        ecs.register_instance("prod", f"i-{i}", 4096, 15700, {"ecs.os-type": "linux"})
    world.clock.run_until(60.0)
    return world, svc


def running(world: World, revision: str | None = None) -> int:
    return sum(1 for t in world.ecs.tasks.values() if t.group == "service:fluent-bit" and t.last_status == "RUNNING"
               and t.desired_status == "RUNNING" and (revision is None or t.task_definition == revision))


def test_with_room_every_instance_ends_on_the_new_revision() -> None:
    # GIVEN four instances with room, each running the daemon
    world, arn = cluster(min_healthy=0)
    assert running(world) == 4
    # WHEN the service moves to a new revision
    new = world.ecs.register_task_definition("fluent-bit", [{"name": "fluent-bit", "cpu": 256, "memory": 512}])
    world.ecs.update_daemon_service(world.ecs.services[arn], new)
    world.clock.run_until(120.0)
    # THEN every instance runs the new revision and none the old
    assert running(world, new) == 4 and running(world) == 4


def test_minimum_healthy_percent_bounds_how_many_old_tasks_stop_at_once() -> None:
    world, arn = cluster(min_healthy=50)
    new = world.ecs.register_task_definition("fluent-bit", [{"name": "fluent-bit", "cpu": 256, "memory": 512}])
    world.ecs.update_daemon_service(world.ecs.services[arn], new)
    lowest = [4]

    def watch(kind: str, _: dict[str, object]) -> None:
        if kind == "task":
            lowest[0] = min(lowest[0], running(world))

    world.ecs.listeners.append(watch)
    world.clock.run_until(200.0)
    assert lowest[0] >= 2 and running(world, new) == 4
