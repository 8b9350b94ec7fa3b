"""The ECS behaviours the guide leaves open, as profile parameters: each does what its row says."""

from __future__ import annotations

import itertools

import pytest

from sim.ecs import PROFILES, EcsParams, profile_params
from sim.world import World, WorldOptions
from tests.sim.conftest import (
    CLUSTER,
    HORIZON_S,
    add_daemon,
    add_instance,
    add_replicas,
    add_task_definition,
    advance_until,
    running,
    tasks_of,
)


def world_with(profile: str, **overrides: object) -> World:
    """A world running one behaviour profile, with one empty cluster."""
    params = profile_params(profile)
    w = World(WorldOptions(seed=11, ecs=EcsParams(**{**vars(params), **overrides})))
    w.ecs.create_cluster(CLUSTER)
    return w


def test_an_unknown_profile_is_refused_with_the_known_names() -> None:
    # GIVEN a profile name nobody defined / THEN the error lists the real ones
    with pytest.raises(ValueError, match="as-documented"):
        profile_params("optimistic")
    assert {"as-documented", "as-reported", "worst"} <= set(PROFILES)


def test_a_world_without_a_behaviour_profile_is_refused_with_the_known_names() -> None:
    # GIVEN world options that name no behaviour profile / THEN they are refused, naming the profiles
    with pytest.raises(ValueError, match=r"named ECS behaviour profile.*as-documented.*no default model"):
        WorldOptions(seed=1)
    # AND scheduler parameters cannot be made without one either (no profile-less default model)
    with pytest.raises(TypeError, match="profile"):
        EcsParams()  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="unknown behaviour profile 'legacy'"):
        EcsParams(**{**vars(profile_params("worst")), "profile": "legacy"})


def test_a_world_runs_the_profile_it_names() -> None:
    # GIVEN a world built from a named profile / THEN its scheduler runs that profile's behaviours
    world = world_with("worst")
    assert world.ecs.params.profile == "worst"
    assert {k: getattr(world.ecs.params, k) for k in PROFILES["worst"]} == PROFILES["worst"]


@pytest.mark.parametrize(("profile", "daemon_stopped_while_replica_stops"), [
    pytest.param("as-reported", True, id="left-running (amazon-ecs-agent#3829): while the replica shuts down"),
    pytest.param("as-documented", False, id="stopped: only once the replica has STOPPED"),
])
def test_when_ecs_stops_daemons_on_a_draining_instance(profile: str, daemon_stopped_while_replica_stops: bool) -> None:
    # GIVEN an instance with a daemon and a replica that takes its full shutdown to stop
    world = world_with(profile, task_shutdown_s=(20.0, 20.0))
    add_daemon(world, "fluent-bit")
    add_replicas(world, "api", 1, min_healthy=0, max_percent=100)
    inst = add_instance(world)
    world.clock.advance(HORIZON_S)
    (daemon,) = running(world, "service:fluent-bit", inst)
    (replica,) = running(world, "service:api", inst)
    # WHEN the instance is set DRAINING and everything has stopped
    world.client("ecs").update_container_instances_state(cluster=CLUSTER, containerInstances=[inst.arn],
                                                         status="DRAINING")
    advance_until(world, lambda: daemon.last_status == replica.last_status == "STOPPED")
    # THEN the daemon was told to stop before or after the replica STOPPED, as the profile says
    assert daemon.stopping_at is not None and replica.stopped_at is not None
    assert (daemon.stopping_at < replica.stopped_at) is daemon_stopped_while_replica_stops


@pytest.mark.parametrize(("holds", "daemon_live_beside_standalone"), [(True, True), (False, False)])
def test_whether_a_standalone_task_holds_the_daemons_back(holds: bool, daemon_live_beside_standalone: bool) -> None:
    # GIVEN a DRAINING instance left with a daemon and a standalone task
    world = world_with("as-documented", standalone_holds_daemons=holds)
    add_daemon(world, "fluent-bit")
    inst = add_instance(world)
    world.clock.advance(60.0)
    ecs = world.client("ecs")
    ecs.run_task(cluster=CLUSTER, taskDefinition=add_task_definition(world, "batch"), startedBy="nightly")
    world.clock.advance(30.0)
    (daemon,) = running(world, "service:fluent-bit", inst)
    # WHEN it drains and two daemon cycles pass
    ecs.update_container_instances_state(cluster=CLUSTER, containerInstances=[inst.arn], status="DRAINING")
    world.clock.advance(2 * world.ecs.params.daemon_cycle_s)
    # THEN the daemon still runs only where standalone tasks hold it back
    assert (daemon.desired_status == "RUNNING") is daemon_live_beside_standalone


def test_the_daemon_reservation_keeps_replicas_off_a_daemons_room() -> None:
    # GIVEN a backlogged replica service and a new instance with room for two replicas, or one and the daemon
    world = world_with("worst", daemon_reservation=True)
    add_daemon(world, "fluent-bit", cpu=512)
    add_replicas(world, "api", 5, cpu=512, min_healthy=0)
    inst = add_instance(world, cpu=1024)
    # WHEN the schedulers have had two daemon cycles
    world.clock.advance(2 * world.ecs.params.daemon_cycle_s + 10)
    # THEN the daemon runs there and replicas took only what it left
    assert len(running(world, "service:fluent-bit", inst)) == 1
    assert len([t for t in tasks_of(world, "service:api", inst) if t.live]) == 1


def test_without_the_reservation_replicas_take_the_daemons_room() -> None:
    # GIVEN the same cluster without a reservation, and a daemon cycle that comes late
    world = world_with("worst", daemon_reservation=False, daemon_cycle_s=10_000.0)
    add_daemon(world, "fluent-bit", cpu=512)
    add_replicas(world, "api", 5, cpu=512, min_healthy=0)
    inst = add_instance(world, cpu=1024)
    # WHEN the replica scheduler sees the new instance first
    world.clock.advance(30.0)
    # THEN replicas fill it and the daemon has no room
    assert len([t for t in tasks_of(world, "service:api", inst) if t.live]) == 2
    assert not tasks_of(world, "service:fluent-bit", inst)


def test_a_daemon_whose_image_fails_never_runs_and_is_retried() -> None:
    # GIVEN every instance unable to start the metrics daemon's image
    world = world_with("as-documented", failing_daemon="cwagent", failing_share=1.0)
    add_daemon(world, "cwagent")
    inst = add_instance(world)
    # WHEN several daemon cycles pass
    world.clock.advance(4 * world.ecs.params.daemon_cycle_s)
    # THEN it was tried more than once, never ran, and each try stopped as TaskFailedToStart
    tries = [t for t in world.ecs.tasks.values() if t.container_instance == inst.arn]
    assert len(tries) >= 2
    assert not running(world, "service:cwagent", inst)
    assert {t.stop_code for t in tries if not t.live} == {"TaskFailedToStart"}


def test_a_daemon_that_keeps_failing_to_start_is_retried_ever_less_often() -> None:
    # GIVEN every instance unable to start the metrics daemon's image
    world = world_with("as-documented", failing_daemon="cwagent", failing_share=1.0)
    add_daemon(world, "cwagent")
    inst = add_instance(world)
    # WHEN twenty daemon cycles pass
    world.clock.advance(20 * world.ecs.params.daemon_cycle_s)
    # THEN the tries are throttled as the guide's service throttle logic says: each wait longer than the last
    starts = sorted(t.created_at for t in world.ecs.tasks.values() if t.container_instance == inst.arn)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert 2 <= len(starts) < 10
    assert all(later > earlier for earlier, later in itertools.pairwise(gaps))


@pytest.mark.parametrize(("states", "member"), [
    pytest.param("live", True, id="live: a start attempt of the daemon makes the instance a member"),
    pytest.param("running", False, id="running: only a RUNNING daemon does"),
])
def test_the_affinity_constraint_during_a_start_attempt_of_a_daemon_that_never_runs(states: str, member: bool) -> None:
    # GIVEN a daemon whose image fails on every instance
    world = world_with("as-documented", failing_daemon="cwagent", failing_share=1.0, task_group_states=states)
    add_daemon(world, "cwagent")
    inst = add_instance(world)
    # WHEN ECS's first start attempt of it is live (PENDING) on the instance
    while not [t for t in tasks_of(world, "service:cwagent", inst) if t.live]:
        world.clock.advance(0.1)
    # THEN the affinity constraint AWS documents matches only if a live task counts as a member of its group
    affinity = [{"type": "memberOf", "expression": "task:group == service:cwagent"}]
    td = world.ecs.task_defs[add_task_definition(world, "api")]
    assert world.ecs.constraints_met(inst, affinity, td) is member
