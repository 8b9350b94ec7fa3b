"""The named parameters beyond stop timing (sim.params): each sets a real behaviour of the simulator, and
the command line's settings are read, or refused with one line that says why."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from sim.autoscaling import InstanceType
from sim.ecs import profile_params
from sim.params import PARAMS, ParamValue, apply, parse_settings
from sim.world import World, WorldOptions
from tests.sim.conftest import CLUSTER, add_daemon, add_instance, add_replicas, advance_until, running, tasks_of


def world_with(**values: ParamValue) -> World:
    """A world with the named parameters set and one cluster with one daemon."""
    world = World(apply(WorldOptions(seed=3, ecs=replace(profile_params("as-reported"), daemon_cycle_s=10.0)), values))
    world.ecs.create_cluster(CLUSTER)
    add_daemon(world, "fluent-bit")
    return world


@pytest.mark.parametrize(("settings", "expected"), [
    pytest.param(["event_delay_s=2,60"], {"event_delay_s": (2.0, 60.0)}, id="a delivery range"),
    pytest.param(["event_dlq_rate=0.05"], {"event_dlq_rate": 0.05}, id="a rate"),
    pytest.param(["spot_instance_draining=true"], {"spot_instance_draining": True}, id="a boolean"),
    pytest.param(["spot_instance_draining=off", "api_rate_share=0.25"],
                 {"spot_instance_draining": False, "api_rate_share": 0.25}, id="repeated"),
])
def test_every_kind_of_parameter_is_read_from_the_command_line(settings: list[str],
                                                                expected: dict[str, ParamValue]) -> None:
    # GIVEN --param settings / WHEN parsed / THEN each lands as its parameter's type
    assert parse_settings(settings) == expected


@pytest.mark.parametrize(("setting", "message"), [
    pytest.param("event_dlq_rate=0.5", "0.5 is outside its range, 0 to 0.2", id="a rate above its range"),
    pytest.param("api_rate_share=0", "0 is outside its range, 0.05 to 1", id="no share at all"),
    pytest.param("spot_instance_draining=maybe", "expected true or false", id="not a boolean"),
    pytest.param("event_duplicate_rate=0.1,0.2", "expected a share from 0 to 1", id="a range where one goes"),
    pytest.param("attribute_visibility_s=20,5", "LO (20) is above HI (5)", id="a range upside down"),
])
def test_a_value_outside_what_a_parameter_takes_is_refused_in_one_line(setting: str, message: str) -> None:
    # GIVEN a setting out of range / WHEN parsed / THEN one line names the parameter and its range
    with pytest.raises(ValueError, match=re.escape(message)) as caught:
        parse_settings([setting])
    assert "\n" not in str(caught.value)


def test_the_delivery_and_api_parameters_set_the_bus_and_the_buckets() -> None:
    # GIVEN every delivery and API parameter set by name
    base = WorldOptions(ecs=profile_params("as-reported"))
    options = apply(base, {"event_delay_s": (2.0, 60.0), "event_duplicate_rate": 0.3,
                           "event_reorder_window_s": 10.0, "event_dlq_rate": 0.05,
                           "api_rate_share": 0.25})
    # THEN the bus delays 2 s plus up to 58 s, duplicates, reorders and loses; the API keeps a quarter of
    # each bucket
    d = options.delivery
    assert (d.delay_s, d.jitter_s, d.duplicate_rate, d.reorder_window_s, d.loss_rate) == (2.0, 58.0, 0.3, 10.0, 0.05)
    world = World(options)
    assert (world.ecs_api.buckets["cluster-modify"].burst, world.ecs_api.buckets["cluster-modify"].rate) == (25, 10)
    assert {p.target for p in PARAMS.values()} == {"ecs", "delivery", "api"}


def test_a_new_instance_gets_no_daemon_while_another_drains_until_the_stall_is_over() -> None:
    # GIVEN a 100 s daemon stall while draining, and one instance of the cluster DRAINING
    world = world_with(daemon_stall_while_draining_s=100.0)
    old = add_instance(world)
    world.clock.advance(30.0)
    world.client("ecs").update_container_instances_state(cluster=CLUSTER, containerInstances=[old.arn],
                                                         status="DRAINING")
    # WHEN a new instance registers
    new = add_instance(world)
    start = world.clock.now
    world.clock.advance(90.0)
    # THEN no daemon is placed on it within the stall, and one is once it is over
    assert running(world, "service:fluent-bit", new) == []
    world.clock.advance(30.0)
    (daemon,) = running(world, "service:fluent-bit", new)
    assert (daemon.started_at or 0) - start >= 100.0


def test_without_a_stall_a_new_instance_gets_its_daemon_at_the_next_cycle_while_another_drains() -> None:
    # GIVEN no stall (the default) and one instance DRAINING
    world = world_with()
    old = add_instance(world)
    world.clock.advance(30.0)
    world.ecs.set_status(old, "DRAINING")
    # WHEN a new instance registers / THEN its daemon runs within a cycle and its start
    new = add_instance(world)
    world.clock.advance(20.0)
    assert len(running(world, "service:fluent-bit", new)) == 1


def test_a_write_is_seen_by_the_scheduler_and_by_filtered_lists_only_after_the_visibility_lag() -> None:
    # GIVEN writes seen 5 s after they are made
    world = world_with(attribute_visibility_s=(5.0, 5.0))
    inst = add_instance(world)
    ecs = world.client("ecs")
    # WHEN the guard opens a gate attribute
    ecs.put_attributes(cluster=CLUSTER, attributes=[{"name": "gate", "value": "open", "targetId": inst.arn}])
    # THEN a filtered list does not see it yet, and does 5 s later
    assert ecs.list_container_instances(cluster=CLUSTER, filter="attribute:gate == open")["containerInstanceArns"] == []
    world.clock.advance(5.0)
    assert ecs.list_container_instances(cluster=CLUSTER,
                                        filter="attribute:gate == open")["containerInstanceArns"] == [inst.arn]
    # WHEN it sets DRAINING / THEN the answer says DRAINING but ECS still has it ACTIVE for 5 s
    answer = ecs.update_container_instances_state(cluster=CLUSTER, containerInstances=[inst.arn], status="DRAINING")
    assert answer["containerInstances"][0]["status"] == "DRAINING"
    assert ecs.list_container_instances(cluster=CLUSTER, status="DRAINING")["containerInstanceArns"] == []
    world.clock.advance(5.0)
    assert inst.status == "DRAINING"


def test_the_scheduler_and_describe_see_a_shut_gate_only_after_the_visibility_lag() -> None:
    # GIVEN writes seen 30 s after they are made, an instance whose gate is open and a gated replica service
    world = world_with(attribute_visibility_s=(30.0, 30.0))
    inst = add_instance(world)
    world.ecs.set_attributes(inst, {"gate": "open"})
    service = world.ecs.services[add_replicas(world, "api", 0, constraints=["attribute:gate == open"])]
    world.clock.advance(300.0)  # the instance is long visible to the replica scheduler
    ecs = world.client("ecs")
    # WHEN the guard shuts the gate and, 1 s later, the service is scaled to one task
    ecs.put_attributes(cluster=CLUSTER, attributes=[{"name": "gate", "value": "draining", "targetId": inst.arn}])
    world.clock.advance(1.0)
    service.desired_count = 1
    world.clock.advance(20.0)
    # THEN within the lag the scheduler still places it on the instance, and DescribeContainerInstances still
    # shows the gate open: a writer that counts on its write before reading it back is wrong for that long
    assert len(tasks_of(world, "service:api", inst)) == 1

    def gate() -> str | None:
        (described,) = ecs.describe_container_instances(cluster=CLUSTER, containerInstances=[inst.arn])[
            "containerInstances"]
        return next((a.get("value") for a in described["attributes"] if a["name"] == "gate"), None)

    assert gate() == "open"
    # WHEN the lag has passed / THEN the read shows it shut and the scheduler places no more there
    world.clock.advance(10.0)
    assert gate() == "draining"
    service.desired_count = 2
    world.clock.advance(60.0)
    assert len(tasks_of(world, "service:api", inst)) == 1


def test_with_spot_instance_draining_ecs_sets_draining_at_the_notice_itself() -> None:
    # GIVEN ECS_ENABLE_SPOT_INSTANCE_DRAINING on a Spot group's instances
    world = world_with(spot_instance_draining=True)
    world.asg.create_group("spot", CLUSTER, InstanceType(), spot=True)
    (iid,) = world.asg.scale_out("spot", 1, 1.0)
    world.clock.advance(120.0)
    inst = world.ecs.instance_of_ec2(iid)
    assert inst is not None and inst.status == "ACTIVE"
    # WHEN EC2 gives its notice / THEN ECS drains the instance at once
    world.asg.spot_interruption(iid)
    assert inst.status == "DRAINING"


@pytest.mark.parametrize(("emits", "expected"), [(True, 1), (False, 0)])
def test_an_attribute_change_emits_an_instance_state_change_only_where_the_parameter_says(emits: bool,
                                                                                         expected: int) -> None:
    # GIVEN an ACTIVE instance, and ECS emitting instance events on attribute changes or not (undocumented)
    world = world_with(attribute_change_event=emits)
    inst = add_instance(world)
    heard: list[str] = []
    world.ecs.listeners.append(lambda kind, _payload: heard.append(kind))
    # WHEN an attribute is put on it
    world.ecs.set_attributes(inst, {"daemon-guard.gate": "open"})
    # THEN the instance changed either way, and an instance event went out only when the parameter says so
    assert inst.attributes["daemon-guard.gate"] == "open"
    assert heard.count("instance") == expected


@pytest.mark.parametrize(("includes", "expected"), [(True, 2), (False, 1)])
def test_a_task_told_to_stop_leaves_running_count_at_stop_task_or_at_stopped_as_the_parameter_says(
        includes: bool, expected: int) -> None:
    # GIVEN a service of two RUNNING replicas whose apps take 10 s to exit, and runningCount counting a task told
    # to stop until it is reported STOPPED or not (undocumented)
    world = world_with(running_count_includes_stopping=includes, task_shutdown_s=(10.0, 10.0))
    add_instance(world)
    add_replicas(world, "api", 2)
    advance_until(world, lambda: len(running(world, "service:api")) == 2, limit=600.0)
    svc = world.ecs.service_named(CLUSTER, "api")
    assert world.ecs.service_counts(svc) == (2, 0)
    # WHEN one of them is told to stop
    world.ecs.stop_task(running(world, "service:api")[0], "test")
    # THEN runningCount counts it or not as the parameter says; its replacement shows as pending either way, and
    # once it is STOPPED and the replacement RUNNING the counts agree again
    assert world.ecs.service_counts(svc) == (expected, 0)
    world.clock.advance(2.0)
    assert world.ecs.service_counts(svc) == (expected, 1)
    world.clock.advance(30.0)
    assert world.ecs.service_counts(svc) == (2, 0)
