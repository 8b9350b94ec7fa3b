"""The simulated ECS scheduler: daemon and replica placement, DRAINING, task lifecycle and resources."""

from __future__ import annotations

import itertools
from datetime import datetime

import pytest

from sim.ecs import TaskTransition
from sim.world import World
from tests.sim.conftest import (
    CLUSTER,
    HORIZON_S,
    Port,
    add_daemon,
    add_instance,
    add_replicas,
    add_task_definition,
    advance_until,
    capture,
    first_time,
    new_world,
    running,
    statuses,
    tasks_of,
)

PLACEMENT_FAILURES = {"source": ["aws.ecs"], "detail-type": ["ECS Service Action"],
                      "detail": {"eventName": ["SERVICE_TASK_PLACEMENT_FAILURE"]}}


def _remaining_cpu(world: World, instance_arn: str) -> int:
    out = world.client("ecs").describe_container_instances(cluster=CLUSTER, containerInstances=[instance_arn])
    resources = out["containerInstances"][0]["remainingResources"]
    return int(next(r["integerValue"] for r in resources if r["name"] == "CPU"))


def _counts_over_time(transitions: list[TaskTransition], group: str, since: float) -> list[tuple[int, int]]:
    """(healthy, active) of a group after each instant: healthy = RUNNING with desired RUNNING."""
    state: dict[str, tuple[str, str]] = {}
    out: list[tuple[int, int]] = []
    mine = [tr for tr in transitions if tr.group == group]
    for i, tr in enumerate(mine):
        state[tr.task_arn] = (tr.last_status, tr.desired_status)
        last_at_this_instant = i + 1 == len(mine) or mine[i + 1].at > tr.at
        if tr.at >= since and last_at_this_instant:
            healthy = sum(s == ("RUNNING", "RUNNING") for s in state.values())
            active = sum(d == "RUNNING" and last != "STOPPED" for last, d in state.values())
            out.append((healthy, active))
    return out


# ---- daemon scheduler -------------------------------------------------------------------------------------


def test_every_daemon_lands_on_a_new_instance_within_one_daemon_cycle(world: World) -> None:
    # GIVEN a cluster that has been running a while with two daemon services
    add_daemon(world, "fluent-bit", ports=[(24224, "tcp")])
    add_daemon(world, "cwagent", ports=[(25888, "udp")])
    world.clock.advance(100.0)
    params = world.ecs.params

    # WHEN a new instance registers and one daemon cycle passes
    inst = add_instance(world)
    world.clock.advance(params.daemon_cycle_s)

    # THEN one task of each daemon is placed on it
    assert len(tasks_of(world, "service:fluent-bit", inst)) == 1
    assert len(tasks_of(world, "service:cwagent", inst)) == 1
    # AND both are RUNNING once their start latency has passed
    world.clock.advance(params.provisioning_s + params.daemon_start_s[1])
    assert len(running(world, "service:fluent-bit", inst)) == 1
    assert len(running(world, "service:cwagent", inst)) == 1


@pytest.mark.parametrize(("daemon_cpu", "daemon_memory", "daemon_ports", "holder_ports", "reason"), [
    (128, 9000, [], [], "RESOURCE:MEMORY"),
    (8192, 256, [], [], "RESOURCE:CPU"),
    (128, 256, [(24224, "tcp")], [(24224, "tcp")], "RESOURCE:PORTS"),
    (128, 256, [(2000, "udp")], [(2000, "udp")], "RESOURCE:PORTS_UDP"),
])
def test_a_daemon_that_does_not_fit_raises_a_placement_failure_with_the_real_reason(
        world: World, *, daemon_cpu: int, daemon_memory: int, daemon_ports: list[Port],
        holder_ports: list[Port], reason: str) -> None:
    # GIVEN an instance (4 vCPU, 8 GiB) on which a standalone task may already hold a port
    failures = capture(world, PLACEMENT_FAILURES)
    inst = add_instance(world)
    if holder_ports:
        td = add_task_definition(world, "holder", ports=holder_ports)
        world.client("ecs").start_task(cluster=CLUSTER, taskDefinition=td, containerInstances=[inst.arn])
    # AND a daemon that cannot fit on it
    service_arn = add_daemon(world, "agent", cpu=daemon_cpu, memory=daemon_memory, ports=daemon_ports)

    # WHEN the daemon scheduler has had a cycle
    world.clock.advance(world.ecs.params.daemon_cycle_s + 1.0)

    # THEN no daemon task is placed and the service reports the reason ECS gives
    assert tasks_of(world, "service:agent") == []
    assert [(e["resources"], e["detail"]["reason"]) for e in failures] == [([service_arn], reason)]
    assert failures[0]["detail"]["containerInstanceArns"] == [inst.arn]


def test_placement_failure_events_are_rate_limited_per_service(world: World) -> None:
    # GIVEN a daemon that can never fit on the only instance
    failures = capture(world, PLACEMENT_FAILURES)
    add_instance(world, memory=1024)
    add_daemon(world, "big", memory=2048)

    # WHEN the daemon scheduler retries for ten minutes (about 40 cycles)
    world.clock.advance(600.0)

    # THEN the failure is reported again and again, but at most once a minute
    times = [datetime.fromisoformat(e["detail"]["createdAt"]).timestamp() for e in failures]
    interval = world.ecs.params.placement_failure_event_interval_s
    assert 5 <= len(times) <= 600.0 / interval + 1
    assert all(later - earlier >= interval for earlier, later in itertools.pairwise(times))


def test_a_daemon_is_only_placed_where_its_constraint_matches(world: World) -> None:
    # GIVEN a daemon for GPU instances only, and two instances of which one has a GPU
    add_daemon(world, "dcgm-exporter", constraints=["attribute:gpu exists"])
    plain = add_instance(world)
    gpu = add_instance(world, attributes={"gpu": "a10g"})

    # WHEN the daemon scheduler has run a few cycles
    world.clock.advance(60.0)

    # THEN the daemon runs on the GPU instance only
    assert len(running(world, "service:dcgm-exporter", gpu)) == 1
    assert tasks_of(world, "service:dcgm-exporter", plain) == []


def test_a_daemon_whose_placement_constraint_stops_matching_is_stopped(world: World) -> None:
    # GIVEN a daemon constrained to `role == ingest` running on an ingest instance
    add_daemon(world, "shipper", constraints=["attribute:role == ingest"])
    inst = add_instance(world, attributes={"role": "ingest"})
    world.clock.advance(60.0)
    (task,) = running(world, "service:shipper", inst)

    # WHEN someone deletes the attribute (DeleteAttributes)
    world.client("ecs").delete_attributes(cluster=CLUSTER, attributes=[{"name": "role", "targetId": inst.arn}])
    world.clock.advance(world.ecs.params.daemon_cycle_s + 10.0)

    # THEN ECS stops the daemon task (and does not place it again)
    assert task.last_status == "STOPPED"
    assert task.stop_code == "ServiceSchedulerInitiated"
    assert tasks_of(world, "service:shipper", inst) == []


# ---- replica scheduler ------------------------------------------------------------------------------------


def test_replicas_fill_their_deficit_only_where_their_gate_constraint_holds(world: World) -> None:
    # GIVEN a replica service gated on `gate == open` and an instance without the attribute
    add_replicas(world, "api", 3, constraints=["attribute:gate == open"])
    inst = add_instance(world)
    world.clock.advance(HORIZON_S)
    # THEN no replica lands while the gate is shut
    assert tasks_of(world, "service:api") == []

    # WHEN the gate opens (PutAttributes)
    world.client("ecs").put_attributes(
        cluster=CLUSTER, attributes=[{"name": "gate", "value": "open", "targetId": inst.arn}])
    world.clock.advance(30.0)

    # THEN the service fills its deficit on that instance
    assert len(running(world, "service:api", inst)) == 3


def test_replicas_spread_to_a_new_instance_once_it_is_visible_to_the_service_scheduler(world: World) -> None:
    # GIVEN a service that wants 4 tasks but only 2 fit on the first instance
    add_replicas(world, "api", 4, cpu=2048)
    first = add_instance(world)
    world.clock.advance(HORIZON_S)
    assert len(running(world, "service:api", first)) == 2

    # WHEN a second instance joins
    second = add_instance(world)
    world.clock.advance(HORIZON_S)

    # THEN the deficit is placed there
    assert len(running(world, "service:api", second)) == 2


def test_an_instance_set_back_to_active_takes_replicas_again(world: World) -> None:
    # GIVEN a service short of one task because its only other instance is DRAINING
    add_replicas(world, "api", 3, cpu=2048)
    first, spare = add_instance(world), add_instance(world)
    ecs = world.client("ecs")
    ecs.update_container_instances_state(cluster=CLUSTER, containerInstances=[spare.arn], status="DRAINING")
    world.clock.advance(HORIZON_S)
    assert len(running(world, "service:api")) == 2

    # WHEN the operator sets the spare instance ACTIVE again
    ecs.update_container_instances_state(cluster=CLUSTER, containerInstances=[spare.arn], status="ACTIVE")
    world.clock.advance(30.0)

    # THEN the missing replica is placed on it
    assert len(running(world, "service:api", spare)) == 1
    assert len(running(world, "service:api", first)) == 2


# ---- DRAINING ---------------------------------------------------------------------------------------------


def test_draining_stops_pending_service_tasks_at_once(world: World) -> None:
    # GIVEN service tasks that are still starting on an instance
    inst = add_instance(world)
    world.clock.advance(HORIZON_S)
    add_replicas(world, "api", 3)
    advance_until(world, lambda: any(t.last_status == "PENDING" for t in tasks_of(world, "service:api")))
    starting = [t for t in tasks_of(world, "service:api") if t.last_status != "RUNNING"]
    assert starting

    # WHEN the instance is set to DRAINING
    world.client("ecs").update_container_instances_state(
        cluster=CLUSTER, containerInstances=[inst.arn], status="DRAINING")

    # THEN each of them is told to stop at that very moment
    assert {t.desired_status for t in starting} == {"STOPPED"}
    assert {t.stopping_at for t in starting} == {world.clock.now}
    # AND is STOPPED without a graceful shutdown period
    world.clock.advance(world.ecs.params.stopped_report_lag_s[1])
    assert {t.last_status for t in starting} == {"STOPPED"}


@pytest.mark.parametrize(("min_healthy", "max_percent"), [(100, 200), (50, 100), (0, 100), (50, 150)])
def test_draining_replaces_running_replicas_within_the_deployment_limits(
        world: World, min_healthy: int, max_percent: int) -> None:
    # GIVEN 4 RUNNING replicas on one instance and an empty instance beside it
    desired = 4
    add_replicas(world, "api", desired, min_healthy=min_healthy, max_percent=max_percent)
    old = add_instance(world)
    world.clock.advance(HORIZON_S)
    new = add_instance(world, zone="us-east-1b")
    world.clock.advance(HORIZON_S)
    before = running(world, "service:api", old)
    assert len(before) == desired

    # WHEN the first instance is set to DRAINING
    drained_at = world.clock.now
    world.client("ecs").update_container_instances_state(
        cluster=CLUSTER, containerInstances=[old.arn], status="DRAINING")
    world.clock.advance(HORIZON_S)

    # THEN every replica moved to the other instance
    assert {t.last_status for t in before} == {"STOPPED"}
    assert len(running(world, "service:api", new)) == desired
    # AND at no instant were fewer than minimumHealthyPercent RUNNING, or more than maximumPercent live
    counts = _counts_over_time(world.ecs.transitions, "service:api", drained_at)
    assert min(h for h, _ in counts) >= desired * min_healthy // 100
    assert max(a for _, a in counts) <= desired * max_percent // 100


def test_draining_with_minimum_healthy_100_stops_each_old_task_only_after_a_replacement_runs(world: World) -> None:
    # GIVEN 2 RUNNING replicas (minimumHealthyPercent 100) and a second instance
    add_replicas(world, "api", 2, min_healthy=100, max_percent=200)
    old = add_instance(world)
    world.clock.advance(HORIZON_S)
    new = add_instance(world)
    world.clock.advance(HORIZON_S)
    before = running(world, "service:api", old)

    # WHEN the first instance drains
    world.client("ecs").update_container_instances_state(
        cluster=CLUSTER, containerInstances=[old.arn], status="DRAINING")
    world.clock.advance(HORIZON_S)

    # THEN the k-th old task was asked to stop only once the k-th replacement was RUNNING
    replacements = tasks_of(world, "service:api", new)
    replaced_at = sorted(first_time(world, t.arn, "RUNNING") for t in replacements)
    stopped_at = sorted(t.stopping_at or 0.0 for t in before)
    assert len(replacements) == len(before) == 2
    assert all(stop >= start for stop, start in zip(stopped_at, replaced_at, strict=True))


def test_draining_leaves_standalone_tasks_alone_and_stops_daemons_only_after_every_other_task() -> None:
    # GIVEN the profile whose daemons stop a grace after the last other task (`grace`), and an instance running
    # a daemon, a replica and a standalone task
    world = new_world(profile="grace")
    world.ecs.create_cluster(CLUSTER)
    add_daemon(world, "fluent-bit")
    add_replicas(world, "api", 1, min_healthy=0, max_percent=100)
    inst = add_instance(world)
    world.clock.advance(HORIZON_S)
    batch_td = add_task_definition(world, "batch")
    ecs = world.client("ecs")
    ecs.run_task(cluster=CLUSTER, taskDefinition=batch_td, startedBy="nightly")
    world.clock.advance(30.0)
    (daemon,) = running(world, "service:fluent-bit", inst)
    (replica,) = running(world, "service:api", inst)
    (standalone,) = running(world, "family:batch", inst)

    # WHEN the instance drains and ten minutes pass
    ecs.update_container_instances_state(cluster=CLUSTER, containerInstances=[inst.arn], status="DRAINING")
    world.clock.advance(HORIZON_S)

    # THEN the replica is gone, the standalone task is untouched, and the daemon still runs beside it
    assert replica.last_status == "STOPPED"
    assert (standalone.last_status, standalone.desired_status) == ("RUNNING", "RUNNING")
    assert (daemon.last_status, daemon.desired_status) == ("RUNNING", "RUNNING")

    # WHEN the standalone task is stopped by its owner
    ecs.stop_task(cluster=CLUSTER, task=standalone.arn, reason="done")
    advance_until(world, lambda: daemon.last_status == "STOPPED")

    # THEN the daemon stops only after no other task remains, and not before the drain delay
    params = world.ecs.params
    assert standalone.stopped_at is not None and daemon.stopping_at is not None
    assert daemon.stopping_at - standalone.stopped_at >= params.daemon_drain_delay_s
    assert daemon.stopping_at - standalone.stopped_at <= params.daemon_drain_delay_s + 2 * params.daemon_cycle_s


# ---- task lifecycle and resources -------------------------------------------------------------------------


@pytest.mark.parametrize("daemon", [True, False])
def test_tasks_go_provisioning_pending_running_with_the_start_latency_of_their_kind(
        world: World, daemon: bool) -> None:
    # GIVEN an instance, and a daemon or a replica service
    inst = add_instance(world)
    world.clock.advance(HORIZON_S)
    if daemon:
        add_daemon(world, "agent")
    else:
        add_replicas(world, "agent", 5)
    params = world.ecs.params
    low, high = params.daemon_start_s if daemon else params.replica_start_s

    # WHEN their tasks start
    world.clock.advance(60.0)

    # THEN each went PROVISIONING -> PENDING -> RUNNING, with the configured latencies
    tasks = tasks_of(world, "service:agent", inst)
    assert tasks
    for task in tasks:
        seen = statuses(world, task.arn)
        assert [s for _, s, _ in seen] == ["PROVISIONING", "PENDING", "RUNNING"]
        placed, pending, started = (at for at, _, _ in seen)
        assert pending - placed == pytest.approx(params.provisioning_s)
        assert low <= started - pending <= high
        assert task.started_at == started


@pytest.mark.parametrize(("stop_timeout_s", "bound_s"), [(1, 1.0), (30, 4.0)])
def test_a_running_task_stops_within_its_stop_timeout(world: World, stop_timeout_s: int, bound_s: float) -> None:
    # GIVEN RUNNING replicas with a given stopTimeout (shutdowns take 0.5-4 s unless cut short)
    add_replicas(world, "api", 8, stop_timeout_s=stop_timeout_s)
    add_instance(world)
    world.clock.advance(HORIZON_S)
    tasks = running(world, "service:api")
    ecs = world.client("ecs")

    # WHEN each is stopped through StopTask
    for task in tasks:
        ecs.stop_task(cluster=CLUSTER, task=task.arn)
    world.clock.advance(60.0)

    # THEN none took longer than min(stopTimeout, its shutdown) plus the agent's report lag
    overhead = world.ecs.params.stopped_report_lag_s[0]
    latencies = [(t.stopped_at or 0.0) - (t.stopping_at or 0.0) for t in tasks]
    assert all(overhead < latency <= bound_s + overhead + 1e-9 for latency in latencies)
    # AND a short stopTimeout really cut some shutdowns short
    if stop_timeout_s == 1:
        assert max(latencies) == pytest.approx(stop_timeout_s + overhead)


def test_a_stopping_task_holds_its_resources_until_it_is_stopped(world: World) -> None:
    # GIVEN a RUNNING 1-vCPU standalone task
    inst = add_instance(world)
    td = add_task_definition(world, "batch", cpu=1024, stop_timeout_s=30)
    ecs = world.client("ecs")
    (started,) = ecs.start_task(cluster=CLUSTER, taskDefinition=td, containerInstances=[inst.arn])["tasks"]
    world.clock.advance(30.0)
    assert _remaining_cpu(world, inst.arn) == 4096 - 1024

    # WHEN it is stopped
    ecs.stop_task(cluster=CLUSTER, task=started["taskArn"])
    # THEN its CPU stays reserved while it shuts down
    assert _remaining_cpu(world, inst.arn) == 4096 - 1024
    # AND is free once it is STOPPED
    world.clock.advance(10.0)
    assert world.ecs.tasks[started["taskArn"]].last_status == "STOPPED"
    assert _remaining_cpu(world, inst.arn) == 4096

