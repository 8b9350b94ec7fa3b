"""Exits outside Auto Scaling, end to end: AWS Health scheduled changes and EC2 stops in the simulator.

Figures come from the simulator's records (tasks killed by EC2, Auto Scaling's lifecycle history),
never from what the workflows believed.
"""

from __future__ import annotations

from typing import Any

import pytest

from bench.exits import ExitStory, measure_exits, run_exit_story
from bench.scenarios import DrainStory, build_drain_cluster
from bench.suites import GATE_ATTRIBUTE
from sim.ecs import profile_params
from sim.world import World, WorldOptions
from tests.integration.conftest import Deploy, config_for

STORY = ExitStory(on_demand=16, replica_services=4, standalone_jobs=12, scheduled_changes=3, stops=3,
                  horizon_s=1800.0)


def exits(deploy: Deploy | None, seed: int = 2, **options: Any) -> tuple[dict[str, Any], World, Any]:
    """Run the small exits story on ECS as users report it, with daemon-guard (gate placement and drain order
    `tiers` with their constraints, the configuration that claims the order; and `options`) or without."""
    world = World(WorldOptions(seed=seed, ecs=profile_params("as-reported")))
    guarded = deploy is not None
    asg, _ = build_drain_cluster(world, DrainStory(on_demand=STORY.on_demand, spot=0,
                                                   replica_services=STORY.replica_services),
                                 gate_attribute=GATE_ATTRIBUTE if guarded else None, tier_constraints=guarded)
    deployment = deploy(world, config_for([asg], "gate", drainOrder="tiers", **options)) \
        if deploy is not None else None
    starts = run_exit_story(world, STORY, asg)
    return measure_exits(world, deployment, starts, STORY), world, deployment


def test_without_the_guard_scheduled_changes_and_stops_kill_running_tasks() -> None:
    # GIVEN ECS alone / WHEN AWS stops scheduled instances and someone stops others / THEN tasks die
    figures, _, _ = exits(None)
    assert figures["scheduled-change"]["tasks_killed"] > 0
    assert figures["ec2-state"]["tasks_killed"] > 0


@pytest.mark.slow
def test_a_scheduled_change_drains_in_order_and_the_group_replaces_the_instance_before_it(deploy: Deploy) -> None:
    # GIVEN daemon-guard with the default options (replace, at once)
    figures, _, _ = exits(deploy)
    change = figures["scheduled-change"]
    # THEN every affected instance was drained, nothing was killed or left waiting, and each was
    # replaced through its group before the change began
    assert change["drains_started"] == change["instances"] == 3
    assert (change["tasks_killed"], change["ordering_violations"], change["lifecycle_timeouts"]) == (0, 0, 0)
    assert change["replaced_before_change"] == 3


@pytest.mark.slow
def test_an_instance_stopped_outside_auto_scaling_drains_under_the_deadline_that_remains(deploy: Deploy) -> None:
    figures, _, _ = exits(deploy)
    stops = figures["ec2-state"]
    assert stops["drains_started"] == stops["instances"] == 3
    assert (stops["tasks_killed"], stops["ordering_violations"]) == (0, 0)


@pytest.mark.slow
def test_with_a_lead_the_drain_waits_for_the_reconciler_until_the_lead_before_the_change(deploy: Deploy) -> None:
    # GIVEN a 300 s lead on a change announced 900 s ahead
    figures, world, deployment = exits(deploy, scheduledChangeLeadSeconds=300)
    drains = [e for e in deployment.durable.executions.values()
              if e.function == deployment.drain_arn and e.payload.get("trigger") == "scheduled-change"]
    # THEN no drain started before the lead (announced at 400 s: due at 1000 s), all within a reconciler period
    assert len(drains) == 3
    assert all(1000.0 <= e.started_at <= 1000.0 + 60.0 + 5.0 for e in drains)
    assert figures["scheduled-change"]["tasks_killed"] == 0
    assert world.clock.now >= 1800.0


@pytest.mark.slow
def test_drain_only_leaves_the_instance_for_aws_and_report_only_changes_nothing(deploy: Deploy) -> None:
    figures, world, _ = exits(deploy, scheduledChange="drain", instanceStateChange="report")
    # THEN drained but not replaced (AWS's stop found them empty), and stops only reported (tasks died)
    assert figures["scheduled-change"]["drains_started"] == 3
    assert figures["scheduled-change"]["replaced_before_change"] == 0
    assert figures["scheduled-change"]["tasks_killed"] == 0
    assert figures["ec2-state"]["drains_started"] == 0
    assert figures["ec2-state"]["tasks_killed"] > 0
    assert world.asg.calls.get("SetInstanceHealth", 0) == 0
