"""Stop timing as named parameters (sim.params): how long containers take after SIGTERM, when STOPPED is
reported, and the stopTimeout of containers that set none."""

from __future__ import annotations

import re
from dataclasses import fields

import pytest

from sim.ecs import PROFILES, STOP_TIMING, EcsParams, SimTask, profile_params
from sim.params import PARAMS, describe, parse_settings, with_params
from sim.world import World, WorldOptions
from tests.sim.conftest import CLUSTER, HORIZON_S, add_instance, containers, running


def world_with(**params: object) -> World:
    """A world whose stop timing is set by name, with one empty cluster."""
    w = World(WorldOptions(seed=5, ecs=with_params(profile_params("as-reported"), params)))  # type: ignore[arg-type]
    w.ecs.create_cluster(CLUSTER)
    return w


def stop_all(world: World, name: str, count: int, stop_timeout_s: int | None) -> list[SimTask]:
    """`count` RUNNING replicas of `name` on one instance, each told to stop now."""
    td = world.ecs.register_task_definition(name, containers(name, 256, 512), stop_timeout_s=stop_timeout_s)
    world.ecs.create_service(CLUSTER, name, td, desired_count=count, minimum_healthy_percent=0)
    add_instance(world)
    world.clock.advance(HORIZON_S)
    tasks = running(world, f"service:{name}")
    world.ecs.services[world.ecs.arn("service", f"{CLUSTER}/{name}")].desired_count = 0  # no replacements
    for task in tasks:
        world.client("ecs").stop_task(cluster=CLUSTER, task=task.arn)
    world.clock.advance(700.0)
    return tasks


def test_every_named_ecs_parameter_defaults_as_its_field_and_every_profile_sets_the_stop_timing() -> None:
    # GIVEN the registry / THEN each ECS parameter names an EcsParams field and defaults as it does, and no
    # profile leaves a stop timing out (the bus's and the API's parameters: tests/sim/test_named_params.py)
    defaults = {f.name: f.default for f in fields(EcsParams)}
    for param in PARAMS.values():
        if param.target == "ecs":
            assert defaults[param.name] == param.default, param.name
    for name in STOP_TIMING:
        assert [p for p, values in PROFILES.items() if name not in values] == []
    assert [row["name"] for row in describe()] == list(PARAMS)


@pytest.mark.parametrize(("settings", "expected"), [
    pytest.param(["task_shutdown_s=600"], {"task_shutdown_s": (600.0, 600.0)}, id="one value: a range of one"),
    pytest.param(["stopped_report_lag_s=0.5,8"], {"stopped_report_lag_s": (0.5, 8.0)}, id="a range as LO,HI"),
    pytest.param(["agent_stop_timeout_s=120"], {"agent_stop_timeout_s": 120.0}, id="seconds"),
])
def test_parameters_are_set_by_name_from_the_command_line(settings: list[str], expected: dict[str, object]) -> None:
    # GIVEN --param settings / WHEN parsed / THEN each lands as its parameter's type
    assert parse_settings(settings) == expected


@pytest.mark.parametrize(("setting", "message"), [
    pytest.param("task_shutdown=5", "unknown parameter", id="a misspelt name"),
    pytest.param("task_shutdown_s", "expected NAME=VALUE", id="no value"),
    pytest.param("stopped_report_lag_s=8,1", "LO (8) is above HI (1)", id="a range upside down"),
    pytest.param("stopped_report_lag_s=-1", "outside its range", id="below the range"),
    pytest.param("agent_stop_timeout_s=30,60", "expected a number of seconds", id="a range where one value goes"),
    pytest.param("task_shutdown_s=nan", "outside its range", id="not a number"),
    pytest.param("task_shutdown_s=soon", "is not a number", id="words"),
])
def test_a_bad_setting_is_refused_naming_the_parameter_and_the_fix(setting: str, message: str) -> None:
    # GIVEN a setting that cannot be / THEN ValueError says what is wrong
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_settings([setting])


def test_containers_that_use_their_whole_stop_timeout_are_stopped_at_it_and_reported_after_the_lag() -> None:
    # GIVEN shutdowns longer than any stopTimeout (SIGKILL at it) and STOPPED reported 8 s after the exit
    world = world_with(task_shutdown_s=(600.0, 600.0), stopped_report_lag_s=(8.0, 8.0))
    # WHEN replicas with a 30 s stopTimeout are stopped
    tasks = stop_all(world, "api", 3, stop_timeout_s=30)
    # THEN their containers exit at the stopTimeout and STOPPED is seen 8 s later
    assert [(t.exited_at or 0) - (t.stopping_at or 0) for t in tasks] == pytest.approx([30.0] * 3)
    assert [(t.stopped_at or 0) - (t.stopping_at or 0) for t in tasks] == pytest.approx([38.0] * 3)


def test_a_container_without_stop_timeout_gets_the_agents() -> None:
    # GIVEN agents whose ECS_CONTAINER_STOP_TIMEOUT is 90 s, and a task definition that sets no stopTimeout
    world = world_with(task_shutdown_s=(600.0, 600.0), agent_stop_timeout_s=90.0)
    # WHEN its tasks are stopped
    tasks = stop_all(world, "api", 2, stop_timeout_s=None)
    # THEN they are SIGKILLed at the agent's timeout, and DescribeTaskDefinition shows no stopTimeout
    assert [(t.exited_at or 0) - (t.stopping_at or 0) for t in tasks] == pytest.approx([90.0] * 2)
    described = world.client("ecs").describe_task_definition(taskDefinition=tasks[0].task_definition)
    assert "stopTimeout" not in described["taskDefinition"]["containerDefinitions"][0]


def test_a_task_whose_containers_exited_before_the_termination_is_not_killed_even_if_not_reported() -> None:
    # GIVEN a task whose containers exit at once, STOPPED reported 20 s later
    world = world_with(task_shutdown_s=(1.0, 1.0), stopped_report_lag_s=(20.0, 20.0))
    td = world.ecs.register_task_definition("api", containers("api", 256, 512), stop_timeout_s=30)
    service = world.ecs.services[world.ecs.create_service(CLUSTER, "api", td, desired_count=1)]
    inst = add_instance(world)
    world.clock.advance(HORIZON_S)
    (task,) = running(world, "service:api")
    service.desired_count = 0  # no replacement lands on the instance meanwhile
    world.ecs.stop_task(task, "test")
    # WHEN EC2 terminates the instance after the exit, before the report
    world.clock.advance(5.0)
    killed = world.ecs.terminate_instance(inst.ec2_instance_id)
    # THEN nothing counts as killed
    assert killed == 0 and world.ecs.ungraceful_kills == []
