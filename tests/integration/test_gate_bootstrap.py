"""Turning gate mode on for a cluster that already runs: the gates of covered instances open."""

from __future__ import annotations

from bench.scenarios import ClusterSpec, build_cluster
from bench.suites import GATE_ATTRIBUTE, guard_config
from sim.deployment import GuardDeployment
from sim.ecs import profile_params
from sim.world import World, WorldOptions


def test_bootstrapping_gate_mode_opens_the_gate_on_instances_that_already_run_their_daemons() -> None:
    # GIVEN a running cluster whose instances carry their daemons but no gate attribute yet
    world = World(WorldOptions(seed=4, ecs=profile_params("as-reported")))
    spec = ClusterSpec(replica_services=3, desired_per_service=4)
    build_cluster(world, spec)
    world.asg.scale_out(spec.asg, 6, 1.0)
    world.clock.run_until(200.0)
    covered = [i for i in world.ecs.instances.values() if i.status == "ACTIVE"
               and {t.group for t in world.ecs.live_tasks(i) if t.last_status == "RUNNING"}
               >= {"service:xray-daemon", "service:cwagent", "service:fluent-bit"}]
    assert covered and all(GATE_ATTRIBUTE not in i.attributes for i in covered)

    # WHEN daemon-guard is deployed in gate mode and its reconciler runs once
    doc = guard_config([spec.asg], "gate") | {"clusters": [{"name": spec.name, "autoScalingGroups": [
        {"name": spec.asg, "terminateHook": False}]}]}
    deployment = GuardDeployment(world, doc, reconcile=False)
    try:
        deployment.reconcile_now()
    finally:
        deployment.close()

    # THEN every instance that already ran its daemons has its gate open, and nothing was stopped
    assert [i.ec2_instance_id for i in covered if i.attributes.get(GATE_ATTRIBUTE) != "open"] == []
    assert world.ecs_api.calls.get("StopTask", 0) == 0
