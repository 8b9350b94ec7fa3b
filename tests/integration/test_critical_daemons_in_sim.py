"""Critical daemons, end to end: in gate mode an instance whose critical daemon ECS never places is
replaced, never opened, within the cluster's replacement budget.

The metrics agent's image (cwagent) cannot start on a share of instances (the simulator's
failing-daemon option, decided per EC2 instance id); cwagent is marked critical. Every figure is read
off the simulator's truth (task transitions, the groups' replacements), not off what the guard believed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest
from daemon_guard.core import guard_events as ge
from jsonschema import Draft202012Validator, FormatChecker

from bench.measure import LaunchRecord, critical_daemon_figures, launch_records
from bench.scenarios import ClusterSpec, ScaleOut, build_cluster, run_scale_out
from bench.suites import DEFAULT_PROFILE, GATE_ATTRIBUTE, guard_config
from sim.clock import EPOCH
from sim.deployment import GuardDeployment
from sim.ecs import profile_params
from sim.world import World, WorldOptions
from tests.integration.conftest import emitted

pytestmark = pytest.mark.slow

SEED = 1
FAILING_SHARE = 0.25
PLAN = ScaleOut(launches=12, warm_instances=6, warmup_s=150.0, spacing_s=2.0, tail_s=480.0)


@dataclass
class Run:
    """A finished scale-out with cwagent critical, and what was observed."""

    world: World
    deployment: GuardDeployment
    records: list[LaunchRecord]
    horizon: float


def scale_out(budget: int, *, launch_hook: bool = False) -> Run:
    """PLAN in gate mode with cwagent critical and failing on FAILING_SHARE of instances."""
    params = replace(profile_params(DEFAULT_PROFILE), failing_daemon="cwagent", failing_share=FAILING_SHARE)
    world = World(WorldOptions(seed=SEED, ecs=params))
    spec = ClusterSpec(replica_services=12, gate_attribute=GATE_ATTRIBUTE)
    build_cluster(world, spec)
    doc = guard_config([spec.asg], "gate", criticalDaemons=["cwagent"], maxReplacementsPerHour=budget) | {
        "clusters": [{"name": "prod", "autoScalingGroups": [
            {"name": spec.asg, "terminateHook": False, "launchHook": launch_hook}]}]}
    deployment = GuardDeployment(world, doc)
    try:
        horizon = run_scale_out(world, spec, PLAN)
    finally:
        deployment.close()
    # The deployment ran with its template's IAM enforced: the replacements were allowed, nothing was denied.
    assert deployment.records.access_denied == []
    return Run(world, deployment, launch_records(world.ecs, horizon), horizon)


def served_replicas_without_every_daemon_first(run: Run) -> list[str]:
    """Instances that ran a replica before every eligible daemon ran (the guarantee wants none)."""
    return [r.instance_arn for r in run.records if r.first_replica_started_at is not None and not r.daemon_first]


def failed_on(run: Run) -> list[LaunchRecord]:
    """Instances on which cwagent failed to start."""
    return [r for r in run.records if r.daemon_failed_to_start]


def replacements_per_hour(run: Run) -> dict[int, int]:
    """The groups' replacements by clock hour (the budget's window)."""
    hours: dict[int, int] = {}
    for _, _, at in run.world.asg.replacements:
        hour = int((EPOCH.timestamp() + at) // 3600)
        hours[hour] = hours.get(hour, 0) + 1
    return hours


def test_a_missing_critical_daemon_replaces_the_instance_and_every_serving_instance_ran_it_first() -> None:
    # GIVEN gate mode, cwagent critical, and a budget larger than the instances it fails on
    # WHEN the cluster scales out
    run = scale_out(budget=50)
    failed = failed_on(run)
    assert failed, "the seed must put the failing image on some instances"
    # THEN every instance that served replicas ran every daemon (cwagent included) before its first replica
    assert served_replicas_without_every_daemon_first(run) == []
    assert [r.instance_arn for r in failed if r.first_replica_started_at is not None] == []
    # AND no gate failed open; each instance cwagent failed on past its gate timeout was replaced, once
    assert emitted(run.deployment, "GatesFailedOpen") == 0
    replaced = [old for old, _, _ in run.world.asg.replacements]
    assert len(replaced) == len(set(replaced))
    ec2_of = {i.arn: i.ec2_instance_id for i in run.world.ecs.instances.values()}
    timed_out = {ec2_of[r.instance_arn] for r in failed if run.horizon - r.registered_at > 200.0}
    assert timed_out <= set(replaced)
    assert emitted(run.deployment, "InstancesReplacedForCriticalDaemon") == len(replaced)
    assert run.world.asg.calls.get("SetInstanceHealth", 0) == len(replaced)
    # AND each replacement was announced, in its schema
    events = [e for e in run.deployment.own_events.events if e["detail-type"] == ge.REPLACED_FOR_CRITICAL]
    validator = Draft202012Validator(ge.SCHEMAS[ge.REPLACED_FOR_CRITICAL], format_checker=FormatChecker())
    assert sorted(e["detail"]["instanceId"] for e in events) == sorted(replaced)
    assert all(validator.is_valid(e["detail"]) and e["detail"]["criticalDaemons"] == ["cwagent"] for e in events)
    # AND most replacements are covered by the end (the figures the benchmark reports)
    figures = critical_daemon_figures(run.world, run.records, run.horizon)
    assert figures["instances_replaced"] == len(replaced)
    assert figures["served_without_failed_daemon"] == 0


def test_past_the_replacement_budget_the_instance_is_held_with_its_gate_shut_and_counted() -> None:
    # GIVEN the same scale-out with a budget of 2 replacements an hour
    run = scale_out(budget=2)
    # WHEN cwagent fails on more instances than that
    assert len(failed_on(run)) > 2
    # THEN at most 2 instances were replaced per clock hour, and the others were held: counted, gate shut
    assert all(count <= 2 for count in replacements_per_hour(run).values())
    assert emitted(run.deployment, "CriticalReplacementsHeld") > 0
    assert emitted(run.deployment, "GatesFailedOpen") == 0
    # AND still no instance served replicas without every daemon first
    assert served_replicas_without_every_daemon_first(run) == []


def test_with_a_launch_hook_the_replacement_abandons_the_launch() -> None:
    # GIVEN the launch hook holds new instances in Pending:Wait
    run = scale_out(budget=50, launch_hook=True)
    # WHEN cwagent fails on some of them past the gate timeout
    # THEN their launches were abandoned (the group launched others), none marked Unhealthy
    abandoned = [a for a in run.world.asg.history
                 if a.hook.name == "daemon-guard-launch" and a.result == "ABANDON" and not a.timed_out]
    assert abandoned
    assert len(run.world.asg.replacements) >= len(abandoned)
    assert run.world.asg.calls.get("SetInstanceHealth", 0) == 0
    assert served_replicas_without_every_daemon_first(run) == []
    assert emitted(run.deployment, "GatesFailedOpen") == 0
