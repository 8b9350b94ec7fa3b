"""``drainMode: observe`` on a live cluster: drain triggers are answered with their planned steps only."""

from __future__ import annotations

from bench.scenarios import DrainStory, build_drain_cluster
from sim.ecs import profile_params
from sim.world import World, WorldOptions
from tests.integration.conftest import Deploy, WriteCounter, config_for


def test_observe_mode_answers_with_the_plan_completes_the_hook_at_once_and_makes_no_ecs_write(deploy: Deploy) -> None:
    # GIVEN a running cluster under daemon-guard in drainMode observe
    world = World(WorldOptions(seed=4, ecs=profile_params("as-reported")))
    asg, _ = build_drain_cluster(world, DrainStory(on_demand=6, spot=0, replica_services=3))
    deployment = deploy(world, config_for([asg], drainMode="observe"))
    world.asg.scale_out(asg, 6, 0.5)
    world.clock.run_until(300.0)
    writes = WriteCounter(world)
    before = writes.snapshot()
    # WHEN Auto Scaling scales in two instances through the terminate hook
    victims = world.asg.scale_in(asg, 2)
    world.clock.run_until(400.0)
    after = writes.snapshot()
    # THEN no ECS write was made (no DRAINING, no StopTask) and no drain workflow started
    assert after["UpdateContainerInstancesState"] == before["UpdateContainerInstancesState"]
    assert after["StopTask"] == before["StopTask"]
    assert not [e for e in deployment.durable.executions.values() if e.function == deployment.drain_arn]
    # AND each lifecycle action was completed with CONTINUE at once, never left to time out
    actions = [a for a in world.asg.history if a.instance_id in victims and a.hook.transition.endswith("TERMINATING")]
    assert len(actions) == 2 and all(a.result == "CONTINUE" and not a.timed_out for a in actions)
    assert all(a.completed_at is not None and a.completed_at - a.started < 5.0 for a in actions)
    # AND the intake answered each with the drain's planned steps, in order
    observed = [i.result for i in deployment.records.invocations
                if i.function == "intake" and i.result is not None and i.result.get("decision") == "observed"]
    assert {o["instance"] for o in observed} == set(victims)
    for o in observed:
        kinds = [step["kind"] for step in o["plannedSteps"]]
        assert kinds[0] == "set-draining" and kinds[-1] == "complete-lifecycle" and "stop-tasks" in kinds
