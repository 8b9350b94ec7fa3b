"""`daemon-guard drain --dry-run` and the replay of a drain trigger: the planned steps, and no write call."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from daemon_guard.core.config import parse_config
from daemon_guard.core.drain import DrainPolicy, DrainRequest, DrainView
from daemon_guard.core.drain_preview import preview_drain
from daemon_guard.core.model import InstanceView, Resources, TaskView

from daemon_guard_cli.drain_dry_run import dry_run_drain
from daemon_guard_cli.replay import replay
from sim.ecs import profile_params
from sim.world import World, WorldOptions

CLUSTER = "prod"
CONFIG = {"clusters": [{"name": CLUSTER}], "drainTiers": [{"name": "agents", "services": ["xray"]},
                                                          {"name": "log-router", "services": ["fluent-bit"]}]}
WRITE_PREFIXES = ("Describe", "List", "Get")


def busy_instance() -> World:
    """One instance running two replicas of `web`, a standalone job, and two daemons in two tiers."""
    world = World(WorldOptions(seed=5, ecs=profile_params("as-reported")))
    ecs = world.ecs
    ecs.create_cluster(CLUSTER)
    for name in ("fluent-bit", "xray"):
        td = ecs.register_task_definition(name, [{"name": name, "cpu": 128, "memory": 128}])
        ecs.create_service(CLUSTER, name, td, daemon=True)
    web = ecs.register_task_definition("web", [{"name": "web", "cpu": 256, "memory": 512}])
    ecs.register_instance(CLUSTER, "i-0b05b05b05b05b05b", 4096, 15700, {"ecs.os-type": "linux"})
    world.clock.run_until(40.0)
    ecs.create_service(CLUSTER, "web", web, desired_count=2)
    job = ecs.register_task_definition("job", [{"name": "job", "cpu": 256, "memory": 256}])
    ecs.run_task(CLUSTER, job, 1, "batch", "family:job")
    world.clock.run_until(120.0)
    return world


def write_calls(world: World) -> dict[str, int]:
    return {op: n for (_, op), n in world.call_log.calls.items() if not op.startswith(WRITE_PREFIXES)}


def test_the_dry_run_prints_every_phase_in_order_and_makes_no_write_call(tmp_path: Path) -> None:
    # GIVEN a busy instance and a configuration with two daemon tiers
    world = busy_instance()
    config = tmp_path / "config.json"
    config.write_text(json.dumps(CONFIG))
    writes_before = dict(world.ecs_api.calls)
    out, err = io.StringIO(), io.StringIO()
    # WHEN an operator asks for a dry run of its drain
    code = dry_run_drain(CLUSTER, "i-0b05b05b05b05b05b", "us-east-1", config_path=str(config),
                         ecs_client=world.client("ecs"),
                         autoscaling_client=world.client("autoscaling"), clock=world.clock.datetime,
                         out=out, err=err)
    # THEN the steps come in the drain's order, naming the tasks of each phase
    assert code == 0, err.getvalue()
    text = out.getvalue()
    steps = [line for line in text.splitlines() if line[:1].isdigit()]
    assert [s.split(":")[0].split(". ", 1)[1] for s in steps] == [
        "replicas", "replicas", "standalone", "standalone", "agents", "log-router", "lifecycle"]
    assert "DRAINING" in steps[0] and "ECS replaces" in steps[1] and "wait up to 300s" in steps[2]
    assert text.count("     web  ") == 2 and "job" in text and "xray" in text and "fluent-bit" in text
    assert "global deadline: 900s" in text
    # AND no mutating API call reached AWS: every call was a Describe, List or Get
    assert write_calls(world) == {}
    assert all(op.startswith(WRITE_PREFIXES) for op in world.ecs_api.calls if world.ecs_api.calls[op]
               != writes_before.get(op, 0))
    assert world.ecs.instances[next(iter(world.ecs.instances))].status == "ACTIVE"


def test_the_dry_run_of_an_instance_not_in_the_cluster_says_so_and_exits_2(tmp_path: Path) -> None:
    world = busy_instance()
    config = tmp_path / "config.json"
    config.write_text(json.dumps(CONFIG))
    out, err = io.StringIO(), io.StringIO()
    code = dry_run_drain(CLUSTER, "i-0dead0dead0dead0d", "us-east-1", config_path=str(config),
                         ecs_client=world.client("ecs"),
                         autoscaling_client=world.client("autoscaling"), out=out, err=err)
    assert code == 2 and "i-0dead0dead0dead0d is not registered" in err.getvalue() and out.getvalue() == ""
    assert write_calls(world) == {}


def test_the_dry_run_refuses_a_cluster_the_configuration_does_not_manage(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps(CONFIG))
    err = io.StringIO()
    code = dry_run_drain("staging", "i-1", "us-east-1", config_path=str(config), ecs_client=object(),
                         autoscaling_client=object(), out=io.StringIO(), err=err)
    assert code == 2 and "staging is not a managed cluster" in err.getvalue()


def test_replaying_a_drain_trigger_with_a_snapshot_returns_the_planned_steps() -> None:
    # GIVEN a Spot warning for an instance whose snapshot runs one replica and one daemon
    prefix = "arn:aws:ecs:us-east-1:111122223333"
    instance_arn = f"{prefix}:container-instance/prod/0a0b0c0d0e0f40a1b2c3d4e5f6a7b8c9"
    web_task, fluent_bit_task = (f"{prefix}:task/prod/{n}a1b1c1d1e1f41a1b2c3d4e5f6a7b8c9" for n in (1, 2))
    state: dict[str, Any] = {
        "containerInstances": [{"containerInstanceArn": instance_arn, "ec2InstanceId": "i-05b0705b0705b0705",
                                "status": "ACTIVE", "agentConnected": True, "registeredResources": [],
                                "remainingResources": [], "attributes": []}],
        "tasks": [
            {"taskArn": web_task, "group": "service:web",
             "lastStatus": "RUNNING", "desiredStatus": "RUNNING", "containerInstanceArn": instance_arn,
             "taskDefinitionArn": "arn:aws:ecs:us-east-1:111122223333:task-definition/web:1"},
            {"taskArn": fluent_bit_task, "group": "service:fluent-bit",
             "lastStatus": "RUNNING", "desiredStatus": "RUNNING", "containerInstanceArn": instance_arn,
             "taskDefinitionArn": "arn:aws:ecs:us-east-1:111122223333:task-definition/fluent-bit:1"}],
        "services": [{"serviceArn": "arn:aws:ecs:us-east-1:111122223333:service/prod/fluent-bit",
                      "serviceName": "fluent-bit", "schedulingStrategy": "DAEMON",
                      "taskDefinition": "arn:aws:ecs:us-east-1:111122223333:task-definition/fluent-bit:1",
                      "placementConstraints": []}],
        "taskDefinitions": [{"taskDefinitionArn": f"arn:aws:ecs:us-east-1:111122223333:task-definition/{n}:1",
                             "family": n, "containerDefinitions": [{"name": n, "cpu": 128, "memory": 128}]}
                            for n in ("web", "fluent-bit")],
    }
    event = json.loads(Path("tests/fixtures/events/ec2-spot-instance-interruption-warning."
                            "aws-node-termination-handler.json").read_text())
    event["detail"]["instance-id"] = "i-05b0705b0705b0705"
    event["time"] = "2026-01-05T08:00:00Z"  # the sample is dated 1970, before any AWS event
    # WHEN replayed (the snapshot backend refuses any write)
    result = replay(event, parse_config(CONFIG), state)
    # THEN the decision carries the drain's steps in order, under the Spot notice's deadline
    kinds = [(s["kind"], s["phase"]) for s in result["plannedSteps"]]
    assert kinds == [("set-draining", "replicas"), ("ecs-replaces", "replicas"),
                     ("stop-tasks", "log-router"), ("no-lifecycle-action", "lifecycle")]
    assert result["plannedSteps"][2]["tasks"] == [[fluent_bit_task, "fluent-bit"]]
    assert result["plannedSteps"][0]["deadline_s"] == 110.0


def test_the_preview_is_the_planner_run_forward_and_changes_nothing_it_was_given() -> None:
    # GIVEN an instance with one daemon and a lifecycle action, and no replicas
    instance = InstanceView(arn="ci", ec2_instance_id="i-1", status="ACTIVE", agent_connected=True,
                            registered=Resources(), remaining=Resources())
    task = TaskView(arn="t-fb", group="service:fluent-bit", task_definition_arn="", last_status="RUNNING",
                    desired_status="RUNNING", container_instance_arn="ci")
    from daemon_guard.core.config import StandalonePolicy
    from daemon_guard.core.drain import Lifecycle
    view = DrainView(now=0.0, instance=instance, tasks=(task,), daemon_tier={"fluent-bit": 0},
                     lifecycle=Lifecycle("asg", "hook", "token"))
    policy = DrainPolicy(("daemons",), StandalonePolicy.WAIT, 300, 900, 300, 300)
    # WHEN previewed
    steps = preview_drain(DrainRequest("i-1", "prod", "lifecycle", "asg", "hook", "token"), view, policy)
    # THEN DRAINING, the daemon's tier, then CONTINUE; and the view it was given is untouched
    assert [s.kind for s in steps] == ["set-draining", "stop-tasks", "complete-lifecycle"]
    assert "CONTINUE" in steps[-1].detail
    assert view.tasks == (task,) and view.instance is instance
