"""The reconciler, end to end: what lost events leave undone, the schedule repairs, within bounded reads."""

from __future__ import annotations

import pytest

from bench.measure import launch_records
from bench.scenarios import ClusterSpec, build_cluster, keep_backlog
from sim.deployment import GuardDeployment
from sim.ecs import profile_params
from sim.eventbridge import FaultPlan
from sim.world import World, WorldOptions
from tests.integration.conftest import Deploy, config_for, emitted

RECONCILE_PERIOD_S = 60.0


def busy_cluster(world: World, instances: int, *, replica_services: int = 8) -> ClusterSpec:
    """Cluster `prod` with three daemons, replicas under a backlog, and `instances` instances launched."""
    spec = ClusterSpec(replica_services=replica_services, desired_per_service=4)
    build_cluster(world, spec)
    world.asg.scale_out(spec.asg, instances, 1.0)
    return spec


@pytest.mark.slow
def test_with_a_tenth_of_events_lost_coverage_and_lifecycle_actions_are_restored(deploy: Deploy) -> None:
    # GIVEN EventBridge losing 10% of deliveries, a replica backlog, and daemon-guard with a terminate hook
    world = World(WorldOptions(seed=5, ecs=profile_params("as-reported"), delivery=FaultPlan(loss_rate=0.1)))
    spec = busy_cluster(world, 10)
    # (a one-cluster deployment can afford its full audit every minute: the coverage metric is the audit's)
    deployment = deploy(world, config_for([spec.asg], auditCycleMinutes=1))
    keep_backlog(world, spec.name, 6, 5.0, until=900.0)
    world.clock.run_until(150.0)
    # WHEN 30 instances join and then 12 leave
    world.asg.scale_out(spec.asg, 30, 2.0)
    world.clock.run_until(400.0)
    world.asg.scale_in(spec.asg, 12)
    world.clock.run_until(1000.0)
    # THEN every new instance had all its daemons RUNNING within two reconcile periods (plus one
    # daemon scheduling cycle and a start: ECS itself places a daemon once room is made)
    slack = world.ecs.params.daemon_cycle_s + 10.0
    late = [(r.instance_arn, r.time_to_daemons) for r in launch_records(world.ecs, 1000.0, since=150.0)
            if not r.covered_within(2 * RECONCILE_PERIOD_S + slack)]
    assert late == []
    # AND events were really lost, and every lifecycle action still completed CONTINUE, none by timeout
    assert world.bus.lost > 0
    terminate = [a for a in world.asg.history if a.hook.transition.endswith("TERMINATING")]
    assert len(terminate) == 12
    assert [a.instance_id for a in terminate if a.result != "CONTINUE" or a.timed_out] == []
    assert [t.arn for t in world.ecs.ungraceful_kills] == []
    assert emitted(deployment, "DaemonCoverage") > 0


def reconcile_cost(instances: int) -> tuple[int, float]:
    """ECS calls of one audit of a settled cluster of `instances`, and the coverage it reported."""
    world = World(WorldOptions(seed=2, ecs=profile_params("as-reported")))
    spec = busy_cluster(world, instances)
    deployment = GuardDeployment(world, config_for([spec.asg], terminate_hook=False, auditCycleMinutes=1),
                                 reconcile=False)
    try:
        world.clock.run_until(300.0)
        deployment.reconcile_now()  # the reconciler's container learns the task definitions once
        world.clock.run_until(360.0)  # the next minute: the cluster's audit is due again (auditCycleMinutes 1)
        before = sum(world.ecs_api.calls.values())
        deployment.reconcile_now()
        calls = sum(world.ecs_api.calls.values()) - before
        return calls, deployment.records.metric_values("DaemonCoverage")[-1]
    finally:
        deployment.close()


@pytest.mark.slow
def test_one_audit_reads_a_bounded_number_of_pages_and_emits_coverage() -> None:
    # GIVEN settled clusters of 10 and 40 instances running three daemons
    # WHEN the reconciler audits each once
    small_calls, small_coverage = reconcile_cost(10)
    large_calls, large_coverage = reconcile_cost(40)
    # THEN it reports full coverage, and its ECS calls are a handful of pages, not one per instance or task
    assert small_coverage == large_coverage == 100.0
    # (the audit's 11 or 12, and the run's incremental look: the daemon list and one filtered ListContainerInstances)
    assert small_calls <= 14
    assert large_calls == small_calls
