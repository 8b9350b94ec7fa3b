"""Defects the template review found, each pinned by a scenario in the simulator."""

from __future__ import annotations

from bench.scenarios import ClusterSpec, build_cluster
from bench.suites import GATE_ATTRIBUTE, guard_config
from sim.ecs import profile_params
from sim.world import World, WorldOptions
from tests.integration.conftest import Deploy, config_for, emitted

DAEMON_GROUPS = {"service:xray-daemon", "service:cwagent", "service:fluent-bit"}


def covered_cluster(world: World, instances: int) -> ClusterSpec:
    """Cluster `prod` whose `instances` instances run every daemon (and no gate attribute yet)."""
    spec = ClusterSpec(replica_services=3, desired_per_service=4)
    build_cluster(world, spec)
    world.asg.scale_out(spec.asg, instances, 1.0)
    world.clock.run_until(200.0)
    return spec


def test_a_gate_ecs_refuses_for_the_attribute_limit_is_reported_once_and_not_retried(deploy: Deploy) -> None:
    # GIVEN gate mode turned on for covered instances, one of which already has 10 custom attributes
    world = World(WorldOptions(seed=4, ecs=profile_params("as-reported")))
    spec = covered_cluster(world, 4)
    full = next(i for i in world.ecs.instances.values() if i.status == "ACTIVE")
    world.ecs.set_attributes(full, {f"team.label{n}": "x" for n in range(10)})
    doc = guard_config([spec.asg], "gate") | {"clusters": [{"name": spec.name, "autoScalingGroups": [
        {"name": spec.asg, "terminateHook": False}]}]}
    deployment = deploy(world, doc, reconcile=False)
    # WHEN the reconciler runs once
    result = deployment.reconcile_now()
    # THEN the pass completes (it opened every other gate), the full instance's gate stays shut,
    assert result is not None
    others = [i for i in world.ecs.instances.values() if i.status == "ACTIVE" and i is not full]
    assert others and all(i.attributes.get(GATE_ATTRIBUTE) == "open" for i in others)
    assert GATE_ATTRIBUTE not in full.attributes
    # AND one clear error line and one GateAttributeRejected count, after exactly one PutAttributes attempt
    errors = [r for r in deployment.records.logs if r.get("level") == "ERROR"]
    assert len(errors) == 1 and "10 custom attributes" in errors[0]["message"]
    assert emitted(deployment, "GateAttributeRejected") == 1
    assert world.call_log.error_count("AttributeLimitExceededException") == 1


def test_instances_held_by_another_teams_hook_are_not_the_reconcilers(deploy: Deploy) -> None:
    # GIVEN a managed group with daemon-guard's terminate hook and ANOTHER team's launch hook
    world = World(WorldOptions(seed=6, ecs=profile_params("as-reported")))
    spec = ClusterSpec(replica_services=2, desired_per_service=2)
    build_cluster(world, spec)
    world.asg.put_hook(spec.asg, "other-team-launch", "autoscaling:EC2_INSTANCE_LAUNCHING", 3600, "CONTINUE")
    deployment = deploy(world, config_for([spec.asg], terminate_hook=True, launch_hook=False), reconcile=False)
    # WHEN instances launch (held in Pending:Wait by the other hook) and the reconciler runs
    world.asg.scale_out(spec.asg, 3, 1.0)
    world.clock.run_until(30.0)
    waiting = [i for i in world.asg.groups[spec.asg].instances.values() if i.state == "Pending:Wait"]
    assert len(waiting) == 3
    deployment.reconcile_now()
    # THEN no stuck lifecycle action is reported, no launch gate starts, the other hook's actions are untouched
    assert emitted(deployment, "StuckLifecycleActions") == 0
    assert deployment.durable.calls.get("Invoke", 0) == 0
    assert world.asg.calls.get("CompleteLifecycleAction", 0) == 0


def test_a_warm_pool_entry_whose_event_was_lost_is_completed_by_the_reconciler(deploy: Deploy) -> None:
    # GIVEN a managed group with daemon-guard's launch hook, and the Auto Scaling events never delivered
    world = World(WorldOptions(seed=7, ecs=profile_params("as-reported")))
    spec = ClusterSpec(replica_services=2, desired_per_service=2)
    build_cluster(world, spec)
    world.asg.listeners.remove(world._on_asg)
    deployment = deploy(world, config_for([spec.asg], launch_hook=True), reconcile=False)
    # WHEN an instance enters the warm pool (Warmed:Pending:Wait on our hook) and the reconciler runs
    (instance_id,) = world.asg.add_to_warm_pool(spec.asg, 1)
    world.clock.run_until(5.0)
    assert world.asg.groups[spec.asg].instances[instance_id].state == "Warmed:Pending:Wait"
    deployment.reconcile_now()
    # THEN it completes the entry CONTINUE at once (not ABANDONed by a heartbeat timeout) and reports it
    (action,) = [a for a in world.asg.history if a.instance_id == instance_id]
    assert (action.result, action.timed_out) == ("CONTINUE", False)
    assert world.asg.groups[spec.asg].instances[instance_id].state == "Warmed:Stopped"
    assert emitted(deployment, "StuckLifecycleActions") == 1
