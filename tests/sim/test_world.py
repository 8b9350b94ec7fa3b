"""The world as automation sees it: events routed by EventBridge rules and parsed by the guard; determinism."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from daemon_guard.adapters.parsing import parse_event
from daemon_guard.core.events import (
    ContainerInstanceChanged,
    LifecycleAction,
    RebalanceRecommendation,
    ServiceAction,
    SpotInterruption,
    TaskChanged,
)

from bench.measure import launch_records, summarize
from bench.scenarios import ClusterSpec, ScaleOut, build_cluster, run_scale_out
from sim.ecs import TaskTransition
from sim.world import World
from tests.sim.conftest import CLUSTER, add_daemon, capture, new_world

ASG = "prod-asg"
ROOT = Path(__file__).resolve().parents[2]

KINDS: list[tuple[str, type]] = [
    ("ECS Task State Change", TaskChanged),
    ("ECS Container Instance State Change", ContainerInstanceChanged),
    ("ECS Service Action", ServiceAction),
    ("EC2 Instance-launch Lifecycle Action", LifecycleAction),
    ("EC2 Instance-terminate Lifecycle Action", LifecycleAction),
    ("EC2 Spot Instance Interruption Warning", SpotInterruption),
    ("EC2 Instance Rebalance Recommendation", RebalanceRecommendation),
]


def _eventful_world() -> tuple[World, list[dict[str, Any]], str]:
    """Two clusters; prod has a Spot group with both hooks, a daemon, and a daemon that never fits."""
    world = new_world()
    events = capture(world, {"source": ["aws.ecs", "aws.autoscaling", "aws.ec2"]}, name="everything")
    world.ecs.create_cluster(CLUSTER)
    world.ecs.create_cluster("other")
    add_daemon(world, "fluent-bit")
    add_daemon(world, "too-big", memory=64_000)
    add_daemon(world, "other-agent", cluster="other")
    world.asg.create_group(ASG, CLUSTER, spot=True)
    world.asg.create_group("other-asg", "other")
    world.asg.put_hook(ASG, "launch-gate", "autoscaling:EC2_INSTANCE_LAUNCHING", 300, "CONTINUE")
    world.asg.put_hook(ASG, "drain", "autoscaling:EC2_INSTANCE_TERMINATING", 300, "CONTINUE")
    (iid, _) = world.asg.scale_out(ASG, 2)
    world.asg.scale_out("other-asg", 1)
    world.clock.advance(120.0)
    world.asg.rebalance_recommendation(iid)
    world.asg.spot_interruption(iid)
    world.clock.advance(180.0)
    return world, events, iid


@pytest.fixture(scope="module")
def eventful() -> tuple[World, list[dict[str, Any]], str]:
    """One eventful run shared by the read-only event tests."""
    return _eventful_world()


@pytest.mark.parametrize(("detail_type", "kind"), KINDS)
def test_each_emitted_kind_parses_to_its_guard_event(
        eventful: tuple[World, list[dict[str, Any]], str], detail_type: str, kind: type) -> None:
    # GIVEN a run that registers, places, fails to place, hooks, interrupts and rebalances
    _, events, _ = eventful
    # WHEN its events of one kind are parsed by the guard's intake
    of_kind = [e for e in events if e["detail-type"] == detail_type]
    parsed = [parse_event(e) for e in of_kind]
    # THEN there are some, and each becomes that kind's core event (never Malformed)
    assert of_kind
    assert {type(p) for p in parsed} == {kind}


def test_task_events_carry_what_the_scheduler_did(eventful: tuple[World, list[dict[str, Any]], str]) -> None:
    # GIVEN the run's task events / WHEN parsed / THEN each matches a recorded transition of that task
    world, events, _ = eventful
    recorded = {(tr.task_arn, tr.last_status, tr.desired_status) for tr in world.ecs.transitions}
    parsed = [parse_event(e) for e in events if e["detail-type"] == "ECS Task State Change"]
    assert all(isinstance(p, TaskChanged) for p in parsed)
    seen = {(p.task_arn, p.last_status, p.desired_status) for p in parsed if isinstance(p, TaskChanged)}
    assert seen == recorded


def test_task_events_and_describe_tasks_name_containers_alike(
        eventful: tuple[World, list[dict[str, Any]], str]) -> None:
    # GIVEN the last event of a task still known to ECS
    world, events, _ = eventful
    event = next(e for e in reversed(events) if e["detail-type"] == "ECS Task State Change"
                 and e["detail"]["clusterArn"] == world.ecs.cluster_arn(CLUSTER))
    # WHEN the same task is described
    (task,) = world.client("ecs").describe_tasks(cluster=CLUSTER, tasks=[event["detail"]["taskArn"]])["tasks"]
    # THEN its containers have the same ARNs in both
    assert [c["containerArn"] for c in event["detail"]["containers"]] == [
        c["containerArn"] for c in task["containers"]]
    assert all(":container/" in c["containerArn"] for c in task["containers"])


def test_lifecycle_and_spot_events_name_the_interrupted_instance(
        eventful: tuple[World, list[dict[str, Any]], str]) -> None:
    # GIVEN the Spot instance that was interrupted
    _, events, iid = eventful
    parsed = [parse_event(e) for e in events]
    # WHEN / THEN the warning, the rebalance and the terminate hook all name it, with one stable group ARN
    spot = [p for p in parsed if isinstance(p, SpotInterruption)]
    assert [(p.ec2_instance_id, p.action) for p in spot] == [(iid, "terminate")]
    assert [p.ec2_instance_id for p in parsed if isinstance(p, RebalanceRecommendation)] == [iid]
    terminating = [p for p in parsed if isinstance(p, LifecycleAction) and p.transition == "terminate"]
    assert [(p.ec2_instance_id, p.hook_name, p.asg_name) for p in terminating] == [(iid, "drain", ASG)]
    group_arns = {e["resources"][0] for e in events if e["source"] == "aws.autoscaling"}
    assert len(group_arns) == 1
    assert group_arns.pop().endswith(f":autoScalingGroupName/{ASG}")


def test_placement_failure_events_carry_the_service_and_reason(
        eventful: tuple[World, list[dict[str, Any]], str]) -> None:
    # GIVEN a daemon that never fits / WHEN its service actions are parsed / THEN they name it and the reason
    world, events, _ = eventful
    parsed = [parse_event(e) for e in events if e["detail-type"] == "ECS Service Action"]
    too_big = world.ecs.service_named(CLUSTER, "too-big").arn
    assert {(p.service_arn, p.event_name, p.reason) for p in parsed if isinstance(p, ServiceAction)} == {
        (too_big, "SERVICE_TASK_PLACEMENT_FAILURE", "RESOURCE:MEMORY")}


def test_a_rule_on_detail_cluster_arn_receives_only_that_clusters_events() -> None:
    # GIVEN two busy clusters and a rule for one of them, as the guard deploys it
    world = new_world()
    prod_arn = world.ecs.cluster_arn(CLUSTER)
    ours = capture(world, {"source": ["aws.ecs"], "detail": {"clusterArn": [prod_arn]}}, name="ours")
    every = capture(world, {"source": ["aws.ecs"]}, name="every")
    for cluster, group in ((CLUSTER, ASG), ("other", "other-asg")):
        world.ecs.create_cluster(cluster)
        add_daemon(world, f"agent-{cluster}", cluster=cluster)
        world.asg.create_group(group, cluster)
        world.asg.scale_out(group, 2)

    # WHEN both clusters launch instances and place daemons
    world.clock.advance(120.0)

    # THEN the rule got every prod event and nothing else
    assert {e["detail"]["clusterArn"] for e in every} == {prod_arn, world.ecs.cluster_arn("other")}
    assert [e["id"] for e in ours] == [e["id"] for e in every if e["detail"]["clusterArn"] == prod_arn]
    assert {e["detail-type"] for e in ours} == {"ECS Task State Change", "ECS Container Instance State Change"}


def test_without_rules_the_world_publishes_nothing() -> None:
    # GIVEN a world without rules / WHEN it runs / THEN the bus is never asked to publish
    world = new_world()
    world.ecs.create_cluster(CLUSTER)
    add_daemon(world, "agent")
    world.asg.create_group(ASG, CLUSTER)
    world.asg.scale_out(ASG, 1)
    world.clock.advance(120.0)
    assert world.ecs.transitions
    assert world.bus.published == 0


# ---- determinism ------------------------------------------------------------------------------------------


def _story(seed: int) -> list[TaskTransition]:
    """A small scale-out under replica backlog, then a scale-in."""
    world = new_world(seed)
    spec = ClusterSpec(replica_services=4, desired_per_service=60)
    build_cluster(world, spec)
    run_scale_out(world, spec, ScaleOut(launches=12, spacing_s=3.0, tail_s=60.0))
    world.asg.scale_in(spec.asg, 3)
    world.clock.advance(120.0)
    return world.ecs.transitions


def test_the_same_seed_gives_the_same_run() -> None:
    # GIVEN / WHEN the same story is run twice with one seed / THEN every transition is the same
    first, second = _story(11), _story(11)
    assert len(first) > 100
    assert first == second


def test_a_different_seed_gives_a_different_run() -> None:
    assert _story(11) != _story(12)


def test_the_same_seed_gives_the_same_run_in_another_process() -> None:
    # GIVEN two interpreters with different string hashing (PYTHONHASHSEED)
    code = ("import hashlib; from tests.sim.test_world import _story; "
            "print(hashlib.sha256(repr(_story(11)).encode()).hexdigest())")

    def digest(hash_seed: str) -> str:
        env = {**os.environ, "PYTHONHASHSEED": hash_seed,
               "PYTHONPATH": os.pathsep.join([str(ROOT / "lambdas"), str(ROOT)])}
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                             check=True)
        return out.stdout.strip()

    # WHEN each runs the same story with the same seed
    # THEN they agree with each other and with this process
    here = hashlib.sha256(repr(_story(11)).encode()).hexdigest()
    assert digest("1") == digest("2") == here


# ---- calibration ------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_baseline_reproduces_awss_daemon_first_figure_without_automation() -> None:
    # GIVEN the baseline cluster under replica backlog, no automation, seed 1
    world = new_world(1)
    spec = ClusterSpec()
    build_cluster(world, spec)

    # WHEN 300 instances launch (after the warm cluster is in place)
    plan = ScaleOut(launches=300)
    horizon = run_scale_out(world, spec, plan)
    summary = summarize(launch_records(world.ecs, horizon, since=plan.measured_from), horizon)

    # THEN about 96 % of them get every daemon RUNNING before any replica (AWS's published figure)
    assert summary.launches == 300
    assert 0.93 <= summary.daemon_first_rate <= 0.99
