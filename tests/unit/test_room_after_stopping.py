"""The room an instance has once its stopping tasks reach STOPPED: CPU, memory and host ports all come back.

ECS releases a stopped task's "CPU, memory, and available ports" when it reaches STOPPED (developer guide,
container instance state change events); ports the agent reserved at registration stay taken.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from daemon_guard.core.config import PlacementMode
from daemon_guard.core.eligibility import Eligibility
from daemon_guard.core.eviction import choose_evictions
from daemon_guard.core.fit import room_after_stopping
from daemon_guard.core.model import HostPort, InstanceView, Resources, TaskDefinitionView, TaskView
from daemon_guard.core.placement import PlacementPolicy, PlacementState, needs_eviction_inputs, plan_placement

from tests.unit.conftest import T0, a_daemon_service, a_replica_service, a_task, an_instance

SSH, FORWARD = HostPort(22), HostPort(24224)
# The agent reserved 22 at registration; a replica holds 24224 on the host.
INSTANCE = replace(an_instance(cpu_left=100, memory_left=200, ports_taken=frozenset({SSH, FORWARD})),
                   registered=Resources(2048, 8192, frozenset({SSH})))
OTHER_INSTANCE = "arn:aws:ecs:us-west-2:123456789012:container-instance/prod/ci-2"


@pytest.mark.parametrize(("tasks", "room"), [
    pytest.param((a_task("api-1", "api", stopping=True, cpu=512, memory=1024, ports=frozenset({FORWARD})),),
                 Resources(612, 1224, frozenset({SSH})),
                 id="a stopping task gives back its CPU, memory and host port (eviction's case)"),
    pytest.param((a_task("api-1", "api", last_status="DEACTIVATING", stopping=True, cpu=512, memory=1024,
                         ports=frozenset({FORWARD})),),
                 Resources(612, 1224, frozenset({SSH})),
                 id="a port held by a stopping replica is free for a daemon once it stops (placement's case)"),
    pytest.param((a_task("api-1", "api", cpu=512, memory=1024, ports=frozenset({FORWARD})),),
                 Resources(100, 200, frozenset({SSH, FORWARD})), id="a task still wanted RUNNING keeps its room"),
    pytest.param((a_task("api-1", "api", last_status="STOPPED", cpu=512, memory=1024, ports=frozenset({FORWARD})),),
                 Resources(100, 200, frozenset({SSH, FORWARD})),
                 id="a STOPPED task's room is already in remainingResources: not counted twice"),
    pytest.param((a_task("api-1", "api", stopping=True, cpu=512, memory=1024, ports=frozenset({FORWARD}),
                         instance_arn=OTHER_INSTANCE),),
                 Resources(100, 200, frozenset({SSH, FORWARD})), id="a task on another instance changes nothing"),
    pytest.param((a_task("sshd", None, stopping=True, cpu=10, memory=20, ports=frozenset({SSH})),),
                 Resources(110, 220, frozenset({SSH, FORWARD})),
                 id="a port the agent reserved at registration stays taken"),
    pytest.param((), Resources(100, 200, frozenset({SSH, FORWARD})), id="nothing stopping: remainingResources"),
])
def test_room_after_stopping(tasks: tuple[TaskView, ...], room: Resources) -> None:
    # GIVEN an instance with 100 CPU units, 200 MiB left and ports 22 (agent) and 24224 (a replica) taken
    # WHEN the tasks given are on it
    # THEN the room once the stopping ones reach STOPPED is as ECS releases it
    assert room_after_stopping(INSTANCE, tasks) == room


LOG_ROUTER = a_daemon_service("fluent-bit")
ROUTER_TD = TaskDefinitionView("arn:td/fluent-bit:1", "fluent-bit", "bridge", Resources(64, 128,
                                                                                         frozenset({FORWARD})))
STOPPING_REPLICA = a_task("api-1", "api", stopping=True, cpu=512, memory=1024, ports=frozenset({FORWARD}))
RUNNING_REPLICA = a_task("api-2", "api", cpu=512, memory=1024)


def _placement(instance: InstanceView) -> PlacementState:
    return PlacementState(instance=instance, tasks=(STOPPING_REPLICA, RUNNING_REPLICA),
                          eligibility=Eligibility((LOG_ROUTER,)), task_defs={ROUTER_TD.arn: ROUTER_TD},
                          services={"api": a_replica_service("api", desired=2, running=2, min_healthy=50)},
                          budget_left={"api": 1}, now=T0 + timedelta(seconds=10))


def test_placement_waits_for_ecs_when_the_daemons_port_is_held_by_a_stopping_replica() -> None:
    # GIVEN the log router's host port held by a replica already being stopped, and CPU and memory enough
    placement = _placement(replace(INSTANCE, remaining=Resources(1024, 2048, frozenset({SSH, FORWARD}))))
    policy = PlacementPolicy(PlacementMode.PREEMPT, "daemon-guard.gate", 120)
    # WHEN the placement reflex plans
    plan = plan_placement(placement, policy)
    # THEN the daemon fits once the replica reaches STOPPED: nothing to stop, no eviction inputs to load
    assert (plan.decision, plan.actions) == ("wait-for-ecs", ())
    assert plan.reason == "fluent-bit fit; ECS places daemons"
    assert not needs_eviction_inputs(placement, policy)


def test_eviction_chooses_no_victim_when_the_stopping_replica_frees_the_port() -> None:
    # GIVEN the same instance, asked for the log router's room
    instance = replace(INSTANCE, remaining=Resources(1024, 2048, frozenset({SSH, FORWARD})))
    # WHEN the eviction planner chooses
    plan = choose_evictions(ROUTER_TD.requirements, instance, (STOPPING_REPLICA, RUNNING_REPLICA),
                            {"api": a_replica_service("api", desired=2, running=2, min_healthy=50)}, {"api": 1})
    # THEN the room is free once the stopping replica ends: no victim, as the placement planner agrees
    assert plan.feasible and plan.victims == ()
