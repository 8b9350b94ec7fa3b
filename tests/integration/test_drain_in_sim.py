"""Ordered drain, end to end: the real intake and drain workflow on simulated terminations.

Figures come from the simulator's records (bench.drain_measure, Auto Scaling's lifecycle history,
ECS task transitions), never from what the workflow believed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from bench.drain_measure import DrainRecord, measure_drains
from bench.scenarios import TIERS, ClusterSpec, DrainStory, build_cluster, build_drain_cluster, run_drain_story
from bench.suites import GATE_ATTRIBUTE
from sim.autoscaling import PendingAction
from sim.deployment import GuardDeployment
from sim.ecs import SimInstance, profile_params
from sim.eventbridge import FaultPlan
from sim.params import ParamValue, with_params
from sim.world import World, WorldOptions
from tests.integration.conftest import Deploy, config_for, emitted, tier_stop_windows

SEED = 3
STORY = DrainStory(on_demand=16, spot=6, first_scale_in=5, second_scale_in=3, spot_interruptions=3,
                   refresh=False, standalone_jobs=6, replica_services=4, horizon_s=3000.0)
TIER_OF = {t["services"][0]: n for n, t in enumerate(TIERS)}


@dataclass
class DrainRun:
    """A finished drain story and what was observed."""

    world: World
    deployment: GuardDeployment
    drains: list[DrainRecord]
    spot: set[str]
    completions: Counter[str]

    @property
    def terminate_actions(self) -> list[PendingAction]:
        """Every terminate lifecycle action Auto Scaling started."""
        return [a for a in self.world.asg.history if a.hook.transition.endswith("TERMINATING")]


def record_completions(world: World) -> Counter[str]:
    """Successful CompleteLifecycleAction calls per token, as Auto Scaling answered them."""
    done: Counter[str] = Counter()
    serve = world.asg.call

    def call(service: str, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        out = serve(service, operation, params)
        if operation == "CompleteLifecycleAction":
            done[params.get("LifecycleActionToken") or params.get("InstanceId", "")] += 1
        return out

    world.asg.call = call  # type: ignore[method-assign]
    return done


def drain_story(deploy: Deploy, *, seed: int = SEED, delivery: FaultPlan | None = None,
                prepare: Callable[[GuardDeployment], None] | None = None, profile: str = "as-reported",
                order: str = "tiers", params: dict[str, ParamValue] | None = None) -> DrainRun:
    """The small drain story (scale-ins and Spot interruptions) under daemon-guard, with a drain order
    (the gated orders get the gate constraint on replicas and jobs, `tiers` the tier constraints on
    daemons), an ECS behaviour profile and named simulator parameters on top of it (sim.params). By default
    the configuration that claims both orders (`tiers`) on ECS as users report it (`as-reported`)."""
    ecs = with_params(profile_params(profile), params or {})
    world = World(WorldOptions(seed=seed, delivery=delivery or FaultPlan(), ecs=ecs))
    gated = order != "draining"
    groups = build_drain_cluster(world, STORY, gate_attribute=GATE_ATTRIBUTE if gated else None,
                                 tier_constraints=order == "tiers")
    completions = record_completions(world)
    deployment = deploy(world, config_for(list(groups), "gate" if gated else "preempt", drainOrder=order))
    if prepare is not None:
        prepare(deployment)
    spot: dict[str, float] = {}

    def on_start(instance_id: str, how: str) -> None:
        if how == "spot":
            spot[instance_id] = world.clock.now

    run_drain_story(world, STORY, groups, on_start)
    starts = {i.instance_id: i.drain_started_at for g in world.asg.groups.values()
              for i in g.instances.values() if i.drain_started_at is not None}
    starts.update(spot)
    drains = measure_drains(world, TIER_OF, starts, set(spot))
    return DrainRun(world, deployment, drains, set(spot), completions)


def assert_every_drain_was_clean(run: DrainRun) -> None:
    """Ordered, nothing killed, every lifecycle action completed CONTINUE once, before any timeout."""
    assert len(run.drains) == STORY.first_scale_in + STORY.second_scale_in + STORY.spot_interruptions
    assert [(d.instance_id, d.violations) for d in run.drains if d.violations] == []
    assert [(d.instance_id, d.kills) for d in run.drains if d.kills] == []
    actions = run.terminate_actions
    assert [a.instance_id for a in actions if a.result != "CONTINUE" or a.timed_out] == []
    assert [token for token, n in run.completions.items() if n > 1] == []
    assert run.deployment.durable.running() == []
    assert [e.name for e in run.deployment.durable.executions.values() if e.status == "FAILED"] == []


@pytest.mark.slow
def test_drains_stop_tasks_in_order_and_complete_every_lifecycle_action(deploy: Deploy) -> None:
    # GIVEN a busy cluster with three daemon tiers, standalone jobs, a terminate hook and drain order `tiers`,
    # on ECS as users report it
    # WHEN Auto Scaling scales in and Spot interrupts
    run = drain_story(deploy)
    # THEN no daemon stopped while a replica ran, tiers stopped in order, nothing was killed,
    # and every lifecycle action completed CONTINUE with no heartbeat timeout
    assert_every_drain_was_clean(run)
    for drain in run.drains:
        instance = next(i for i in run.world.ecs.instances.values() if i.ec2_instance_id == drain.instance_id)
        windows = tier_stop_windows(run.world, instance.arn, TIER_OF)
        for tier in range(1, len(TIERS)):
            if tier in windows and tier - 1 in windows:
                assert windows[tier][0] >= windows[tier - 1][1]
    assert emitted(run.deployment, "OrderingViolations") == 0


def test_order_tiers_keeps_both_orders_when_ecs_drains_daemons_as_early_as_users_report(deploy: Deploy) -> None:
    # GIVEN the worst ECS behaviour: daemons stop as soon as the last other task leaves RUNNING, and
    # standalone tasks do not hold them back; drain order `tiers` with its constraints
    run = drain_story(deploy, profile="worst", order="tiers")
    # THEN no daemon stopped before every app task had STOPPED, tiers stopped in order, nothing was
    # killed, every lifecycle action completed CONTINUE once, in time
    assert [(d.instance_id, d.daemon_before_app) for d in run.drains if d.daemon_before_app] == []
    assert_every_drain_was_clean(run)


# Apps that flush on SIGTERM use their whole stopTimeout (SIGKILL then), and the agent reports STOPPED 8 s later.
SLOW_STOPS: dict[str, ParamValue] = {"task_shutdown_s": (600.0, 600.0), "stopped_report_lag_s": (8.0, 8.0)}


@pytest.mark.slow
@pytest.mark.parametrize("order", ["apps-first", "tiers"])
def test_apps_using_their_whole_stop_timeout_and_a_late_stopped_report_never_buy_the_order_with_time(
        deploy: Deploy, order: str) -> None:
    # GIVEN the worst ECS behaviour, every app using its whole stopTimeout and STOPPED reported 8 s late
    run = drain_story(deploy, profile="worst", order=order, params=SLOW_STOPS)
    # THEN no daemon was told to stop before every app task had STOPPED, and nothing was killed
    assert [(d.instance_id, d.daemon_before_app) for d in run.drains if d.daemon_before_app] == []
    assert [(d.instance_id, d.kills) for d in run.drains if d.kills] == []
    assert [a.instance_id for a in run.terminate_actions if a.timed_out] == []
    if order == "tiers":
        # AND tiers stopped in order wherever time allowed it; a Spot notice shorter than the phases' stop
        # times breaks tier order only at its hard end, each break counted
        assert [(d.instance_id, d.violations) for d in run.drains if d.violations and not d.spot] == []
        broken = sum(d.violations for d in run.drains if d.spot)
        assert emitted(run.deployment, "DrainGuaranteeBreaks") >= broken


@pytest.mark.slow
def test_order_draining_hands_the_daemons_to_ecs_so_the_worst_profile_breaks_its_order(deploy: Deploy) -> None:
    # GIVEN the same worst ECS behaviour and drain order `draining` (DRAINING first, no constraints)
    run = drain_story(deploy, profile="worst", order="draining")
    # THEN ECS stops daemons while app tasks still shut down: the order is not the guard's to keep
    assert sum(d.daemon_before_app for d in run.drains) > 0


@pytest.mark.slow
def test_spot_interruptions_drain_inside_the_two_minute_notice(deploy: Deploy) -> None:
    # GIVEN the drain story's Spot interruptions
    run = drain_story(deploy)
    # WHEN each instance gets its two-minute warning
    spot = [d for d in run.drains if d.spot]
    # THEN each drain finished within 120 s with no task killed by the termination
    assert len(spot) == STORY.spot_interruptions
    assert [(d.instance_id, round(d.ended - d.started, 1)) for d in spot if d.ended - d.started > 120.0] == []
    assert sum(d.kills for d in spot) == 0


@pytest.mark.slow
def test_duplicated_lifecycle_events_start_at_most_one_workflow_per_token(deploy: Deploy) -> None:
    # GIVEN EventBridge delivering most events two or three times
    run = drain_story(deploy, delivery=FaultPlan(duplicate_rate=0.6))
    # WHEN the terminations are drained
    per_token: Counter[str] = Counter()
    for execution in run.deployment.durable.executions.values():
        if execution.function == run.deployment.drain_arn and execution.payload.get("token"):
            per_token[str(execution.payload["token"])] += 1
    # THEN each lifecycle token had one workflow, and every drain was still clean
    assert per_token
    assert [t for t, n in per_token.items() if n > 1] == []
    assert_every_drain_was_clean(run)


@pytest.mark.slow
def test_a_workflow_crash_at_every_step_repeats_no_completion_and_kills_nothing(deploy: Deploy) -> None:
    # GIVEN every workflow step crashes once after its effects and before its checkpoint
    def crash_everywhere(deployment: GuardDeployment) -> None:
        deployment.durable.crash_every_step = True

    # WHEN the terminations are drained
    run = drain_story(deploy, prepare=crash_everywhere)
    # THEN crashes happened, yet every drain completed once, in order, with nothing killed
    assert run.deployment.durable.crashes > 0
    assert_every_drain_was_clean(run)


# ---- hand-made clusters -------------------------------------------------------------------------

def small_cluster(world: World, *, replicas: int = 2, min_healthy: int = 50, max_percent: int = 200,
                  instances: int = 3) -> str:
    """Cluster `prod` with the three tiered daemons, one replica service, and `instances` instances."""
    spec = ClusterSpec(replica_services=0, desired_per_service=0)
    build_cluster(world, spec)
    td = world.ecs.register_task_definition("api", [{"name": "api", "cpu": 512, "memory": 1024}],
                                            stop_timeout_s=30)
    world.ecs.create_service("prod", "api", td, desired_count=replicas, minimum_healthy_percent=min_healthy,
                             maximum_percent=max_percent)
    world.asg.scale_out(spec.asg, instances, 1.0)
    world.clock.run_until(150.0)
    return spec.asg


def instance_with_replica(world: World) -> str:
    """The EC2 id of an instance running an `api` replica."""
    task = next(t for t in world.ecs.tasks.values() if t.group == "service:api" and t.last_status == "RUNNING")
    return world.ecs.instances[task.container_instance].ec2_instance_id


def test_a_drain_blocked_by_a_full_service_is_reported_then_forced_at_the_deadline(deploy: Deploy) -> None:
    # GIVEN a service that may neither go below nor above its desired count (min 100 %, max 100 %)
    world = World(WorldOptions(seed=SEED, ecs=profile_params("as-reported")))
    asg = small_cluster(world, replicas=3, min_healthy=100, max_percent=100)
    # (a deadline that leaves the replica phase more than the minute after which services are read, once the
    # later phases' stop times are reserved)
    deployment = deploy(world, config_for([asg], drainDeadlineSeconds=240, tierDeadlineSeconds=30))
    victim = instance_with_replica(world)
    # WHEN Auto Scaling terminates an instance running one of its replicas
    group = world.asg.groups[asg]
    world.asg.terminate(group, group.instances[victim])
    world.clock.run_until(world.clock.now + 400.0)
    # THEN the drain is reported blocked, the deadline forces it on, and the lifecycle action completes
    assert emitted(deployment, "DrainsBlocked") >= 1
    assert emitted(deployment, "DeadlinesMissed") >= 1
    (action,) = [a for a in world.asg.history if a.instance_id == victim]
    assert action.result == "CONTINUE"
    assert not action.timed_out
    assert action.completed_at is not None
    assert action.completed_at - action.started <= 240.0
    assert [t.arn for t in world.ecs.ungraceful_kills] == []


def test_an_instance_drained_by_someone_else_has_its_daemons_stopped_in_tier_order(deploy: Deploy) -> None:
    # GIVEN a managed cluster with three daemon tiers, under the profile in which ECS waits a grace after the
    # last other task before stopping a DRAINING instance's daemons itself (`grace`: the order of an instance
    # someone else drains is the guard's only while ECS leaves it that window; as users report ECS, it stops
    # them at once, which the `tiers` order's constraints are for)
    world = World(WorldOptions(seed=SEED, ecs=profile_params("grace")))
    asg = small_cluster(world, replicas=2)
    deploy(world, config_for([asg]))
    victim = instance_with_replica(world)
    arn = world.ecs.by_ec2[victim]
    # WHEN an operator sets the instance to DRAINING directly in ECS
    world.client("ecs").update_container_instances_state(cluster="prod", containerInstances=[arn],
                                                         status="DRAINING")
    world.clock.run_until(world.clock.now + 300.0)
    # THEN every daemon on it stopped, one tier after the other, after the replicas
    assert world.ecs.live_tasks(world.ecs.instances[arn]) == []
    windows = tier_stop_windows(world, arn, TIER_OF)
    assert sorted(windows) == [0, 1, 2]
    assert windows[0][1] <= windows[1][0]
    assert windows[1][1] <= windows[2][0]
    replica_stopped = max(tr.at for tr in world.ecs.transitions
                          if tr.instance_arn == arn and tr.group == "service:api" and tr.last_status == "STOPPED")
    assert replica_stopped <= windows[0][0]


# Every write takes effect 30 s after it is made: the top of the ECS API's eventual consistency range.
LATE_WRITES: dict[str, ParamValue] = {"attribute_visibility_s": (30.0, 30.0)}


@dataclass
class WritesSeen:
    """When ECS came to see each write on each instance (the moment it took effect for the schedulers)."""

    at: dict[tuple[str, str], float]

    def first(self, instance_arn: str, what: str) -> float | None:
        return self.at.get((instance_arn, what))


def record_writes_seen(deployment: GuardDeployment) -> WritesSeen:
    """Record when each status and attribute write takes effect in the simulated ECS (first time only)."""
    ecs, seen = deployment.world.ecs, WritesSeen({})
    set_status, set_attributes = ecs.set_status, ecs.set_attributes

    def status(inst: SimInstance, status: str) -> None:
        seen.at.setdefault((inst.arn, status), ecs.clock.now)
        set_status(inst, status)

    def attributes(inst: SimInstance, changes: dict[str, str | None], delete: bool = False) -> None:
        for name, value in changes.items():
            seen.at.setdefault((inst.arn, f"{name}={value}"), ecs.clock.now)
        set_attributes(inst, changes, delete)

    ecs.set_status = status  # type: ignore[method-assign]
    ecs.set_attributes = attributes  # type: ignore[method-assign]
    return seen


@pytest.mark.slow
@pytest.mark.parametrize("order", ["apps-first", "tiers"])
def test_with_writes_seen_30_s_late_the_drain_counts_on_its_gate_and_draining_only_once_ecs_shows_them(
        deploy: Deploy, order: str) -> None:
    # GIVEN the worst ECS behaviour and every write seen by ECS (its schedulers, filtered lists, reads) 30 s late
    recorded: list[WritesSeen] = []
    run = drain_story(deploy, profile="worst", order=order, params=LATE_WRITES,
                      prepare=lambda d: recorded.append(record_writes_seen(d)))
    (seen,) = recorded
    tasks = list(run.world.ecs.tasks.values())
    daemons = {t["services"][0] for t in TIERS}
    for inst in run.world.ecs.instances.values():
        on_it = [t for t in tasks if t.container_instance == inst.arn]
        replica_stops = [t.stopping_at for t in on_it if t.stopping_at is not None
                         and t.stopped_reason.startswith("daemon-guard drain: replicas")]
        if not replica_stops or inst.ec2_instance_id in run.spot:
            continue  # (a Spot drain races its notice: it does not wait to read its writes back)
        # THEN the drain stopped no replica before ECS saw the gate shut, and no replica was placed on the
        # instance after the drain began stopping them (the gate held every replacement elsewhere)
        gate_shut = seen.first(inst.arn, f"{GATE_ATTRIBUTE}=draining")
        assert gate_shut is not None and min(replica_stops) >= gate_shut
        placed = [t.arn for t in on_it if t.service_name and t.service_name not in daemons
                  and t.created_at > min(replica_stops)]
        assert placed == []
        # AND with apps-first no daemon was stopped by the drain before ECS showed the instance DRAINING
        daemon_stops = [t.stopping_at for t in on_it if t.stopping_at is not None
                        and t.stopped_reason.startswith("daemon-guard drain:") and t.service_name in daemons]
        if order == "apps-first" and daemon_stops:
            draining = seen.first(inst.arn, "DRAINING")
            assert draining is not None and min(daemon_stops) >= draining
    # AND no daemon stopped before every app task had STOPPED, nothing was killed, no lifecycle action timed out
    assert [(d.instance_id, d.daemon_before_app) for d in run.drains if d.daemon_before_app] == []
    assert [(d.instance_id, d.kills) for d in run.drains if d.kills] == []
    assert [a.instance_id for a in run.terminate_actions if a.timed_out] == []
    if order == "tiers":
        # AND tiers stopped in order on every drain that had the time to read its fences back. (A Spot drain
        # does not wait for that: with writes seen 30 s late, ECS may start again a daemon its tier just
        # stopped, and that tier-order violation is not yet counted as a guarantee break: an open gap.)
        assert [(d.instance_id, d.violations) for d in run.drains if d.violations and not d.spot] == []
