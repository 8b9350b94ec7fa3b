"""Replay's ports: a snapshot served read-only behind the ECS and Auto Scaling ports, every write recorded."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from daemon_guard import bootstrap
from daemon_guard.adapters.ecs import EcsPort
from daemon_guard.core.actions import CompleteLifecycle
from daemon_guard.core.identifiers import InstanceId

from daemon_guard_cli.replay import load_config, replay, snapshot_ecs, validate_state
from daemon_guard_cli.snapshot_ports import NoGroups, SnapshotEcs

ROOT = Path(__file__).resolve().parents[2]
STATE_DOC = json.loads((ROOT / "examples" / "state.json").read_text())
STATE = validate_state(STATE_DOC)
REGISTERED = json.loads((ROOT / "examples" / "events" / "instance-registered.json").read_text())
TERMINATING = json.loads((ROOT / "examples" / "events" / "instance-terminating.json").read_text())
CONFIG = load_config(str(ROOT / "cdk.json"), {})


def with_stopped_task(doc: dict[str, Any], stopping_at: str, stopped_at: str) -> tuple[dict[str, Any], str]:
    """The snapshot with its first task STOPPED at those times, and that task's ARN."""
    changed = copy.deepcopy(doc)
    task = changed["tasks"][0]
    task.update(lastStatus="STOPPED", desiredStatus="STOPPED", stoppingAt=stopping_at, stoppedAt=stopped_at)
    return changed, task["taskArn"]


def test_an_instance_is_found_by_its_ec2_id_as_ecs_finds_it() -> None:
    # GIVEN the example snapshot's ECS port
    port: EcsPort = snapshot_ecs(STATE)
    raw = STATE_DOC["containerInstances"][3]
    # WHEN the guard looks up the container instance on one EC2 instance
    found = port.instance_by_ec2_id(InstanceId(raw["ec2InstanceId"]))
    # THEN it is that instance, and a filter matching every instance names each one but the INACTIVE
    assert found is not None and found.arn == raw["containerInstanceArn"]
    assert len(port.instance_arns(query="ec2InstanceId == i-*")) == len(STATE_DOC["containerInstances"])


def test_a_stopped_task_is_listed_by_desired_status_but_never_described() -> None:
    # GIVEN a snapshot whose first task STOPPED 12.5 s after it began stopping
    doc, arn = with_stopped_task(STATE_DOC, "2026-01-05T09:58:00Z", "2026-01-05T09:58:12.500Z")
    task = next(t for t in doc["tasks"] if t["taskArn"] == arn)
    port = snapshot_ecs(validate_state(doc))
    # WHEN its instance's tasks are listed and described
    stopped = port.task_arns_on(task["containerInstanceArn"], desired="STOPPED")
    described = port.tasks(port.task_arns_on(task["containerInstanceArn"]))
    # THEN it is listed as STOPPED, left out of DescribeTasks as the boto3 adapter leaves it, and timed
    assert stopped == [arn]
    assert arn not in {t.arn for t in described}
    assert port.stop_durations([arn]) == {arn: 12.5}


def test_a_write_is_recorded_and_the_snapshot_does_not_move() -> None:
    # GIVEN the example snapshot's ECS port and a running task on an ACTIVE instance
    port = snapshot_ecs(STATE)
    task = STATE_DOC["tasks"][0]
    instance = task["containerInstanceArn"]
    # WHEN the guard stops the task, opens a gate and sets the instance DRAINING through the port
    port.stop_tasks([task["taskArn"]], "daemon-guard: drain")
    port.put_attribute(instance, "daemon-guard.gate", "open")
    failures = port.set_draining([instance])
    # THEN each write is recorded in order, none failed, and every read answers as before
    assert port.writes == [("stop_tasks", ((task["taskArn"],), "daemon-guard: drain")),
                           ("put_attribute", (instance, "daemon-guard.gate", "open")),
                           ("set_draining", ((instance,),))]
    assert failures == []
    assert [t.arn for t in port.tasks([task["taskArn"]])] == [task["taskArn"]]
    view = port.instance(instance)
    assert view is not None and view.status == "ACTIVE" and "daemon-guard.gate" not in view.attributes


def test_the_snapshot_knows_no_auto_scaling_group_and_records_a_completion() -> None:
    # GIVEN replay's Auto Scaling port (a snapshot holds no Auto Scaling state)
    groups = NoGroups()
    action = CompleteLifecycle("prod-asg", "daemon-guard-terminate", "i-027111f9790000001", None, "CONTINUE")
    # WHEN the guard reads groups and completes a lifecycle action
    # THEN no group, warm pool or member is known, and the completion is recorded as made
    assert groups.group_instances(["prod-asg"]) == [] and groups.warm_pool("prod-asg") == []
    assert groups.instance("i-027111f9790000001") is None
    assert groups.complete(action) is True and groups.writes == [("complete", (action,))]


def test_replay_of_the_examples_plans_from_the_snapshot_and_sends_nothing() -> None:
    # GIVEN the shipped snapshot and its two events
    # WHEN each is replayed
    placed = replay(REGISTERED, CONFIG, STATE)
    drained = replay(TERMINATING, CONFIG, STATE)
    # THEN the new instance gets its evictions and the leaving one a drain, planned step by step
    assert placed["decision"] == "evict"
    assert [a["type"] for a in placed["actions"]] == ["StopTasks"]
    assert drained["decision"] == "start-workflow"
    assert [s["phase"] for s in drained["plannedSteps"]] == [
        "replicas", "replicas", "app-agents", "metrics", "log-router", "lifecycle"]


def test_a_runtime_built_on_the_snapshot_ports_reads_every_cluster_from_the_snapshot() -> None:
    # GIVEN replay's ports / WHEN a runtime is built on them
    groups = NoGroups()
    runtime = bootstrap.build(CONFIG, ecs=lambda _cluster: snapshot_ecs(STATE), autoscaling=groups, dry_run=True)
    # THEN every cluster it asks for is the snapshot's port, and Auto Scaling is the snapshot's (no group)
    assert isinstance(runtime.cluster("prod"), SnapshotEcs) and runtime.autoscaling is groups
