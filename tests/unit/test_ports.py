"""The ports that replaced the raw clients: Auto Scaling reads, the event publisher, the completion cache, and
the replacement after a scheduled-change drain going through the executor."""

from __future__ import annotations

from typing import Any

import pytest
from daemon_guard import bootstrap
from daemon_guard.adapters.autoscaling import AutoScaling, GroupInstance
from daemon_guard.adapters.completion import KnownComplete
from daemon_guard.adapters.events import EventPublisher
from daemon_guard.adapters.executor import RecordingExecutor
from daemon_guard.adapters.memory import MemoryState
from daemon_guard.core.actions import SetInstanceHealth
from daemon_guard.core.config import parse_config
from daemon_guard.core.guard_events import OwnEvent
from daemon_guard.workflows.replace import replace_after_drain

CONFIG = parse_config({"clusters": [{"name": "prod", "autoScalingGroups": ["prod-asg"]}]})
INSTANCE = "i-0123456789abcdef0"


class AutoScalingClient:
    """Answers DescribeAutoScalingInstances from a table and records the writes."""

    def __init__(self, instances: dict[str, tuple[str, str]]) -> None:
        self.instances = instances  # instance id -> (group, lifecycle state)
        self.writes: list[tuple[str, dict[str, Any]]] = []

    def describe_auto_scaling_instances(self, InstanceIds: list[str]) -> dict[str, Any]:  # noqa: N803
        return {"AutoScalingInstances": [
            {"InstanceId": i, "AutoScalingGroupName": self.instances[i][0], "LifecycleState": self.instances[i][1]}
            for i in InstanceIds if i in self.instances]}

    def describe_auto_scaling_groups(self, AutoScalingGroupNames: list[str]) -> dict[str, Any]:  # noqa: N803
        groups: dict[str, list[dict[str, str]]] = {}
        for instance, (group, state) in self.instances.items():
            groups.setdefault(group, []).append({"InstanceId": instance, "LifecycleState": state})
        return {"AutoScalingGroups": [{"AutoScalingGroupName": g, "Instances": groups[g]}
                                      for g in AutoScalingGroupNames if g in groups]}

    def set_instance_health(self, **kwargs: Any) -> dict[str, Any]:
        self.writes.append(("set_instance_health", kwargs))
        return {}


def _runtime(client: AutoScalingClient, *, dry_run: bool = False) -> bootstrap.Runtime:
    return bootstrap.build(CONFIG, ecs_client=object(), autoscaling_client=client, dry_run=dry_run)


def test_the_auto_scaling_port_reads_an_instances_group_and_lifecycle_state() -> None:
    # GIVEN one instance in service in prod-asg
    port = AutoScaling(AutoScalingClient({INSTANCE: ("prod-asg", "InService")}))
    # WHEN it is looked up, and an unknown one too / THEN its group and state, and None for the unknown
    assert port.instance(INSTANCE) == GroupInstance("prod-asg", INSTANCE, "InService")
    assert port.instance("i-00000000000000000") is None
    assert port.group_instances(["prod-asg", "other"]) == [GroupInstance("prod-asg", INSTANCE, "InService")]


def test_a_drained_instance_is_marked_unhealthy_through_the_executor() -> None:
    # GIVEN a drained instance in service in a managed group, and a drain payload asking for a replacement
    client = AutoScalingClient({INSTANCE: ("prod-asg", "InService")})
    # WHEN the drain ends
    done = replace_after_drain(_runtime(client), {"instanceId": INSTANCE, "cluster": "prod", "replace": "unhealthy"})
    # THEN SetInstanceHealth Unhealthy was called once, without the grace period
    assert done == "marked-unhealthy"
    assert client.writes == [("set_instance_health", {"InstanceId": INSTANCE, "HealthStatus": "Unhealthy",
                                                      "ShouldRespectGracePeriod": False})]


def test_a_dry_run_records_the_replacement_and_writes_nothing() -> None:
    # GIVEN the same instance, under a dry-run runtime
    client = AutoScalingClient({INSTANCE: ("prod-asg", "InService")})
    rt = _runtime(client, dry_run=True)
    # WHEN the drain ends / THEN the action is recorded, not made
    assert replace_after_drain(rt, {"instanceId": INSTANCE, "cluster": "prod", "replace": "unhealthy"}) == "recorded"
    assert isinstance(rt.executor, RecordingExecutor)
    assert rt.executor.recorded == [("prod", SetInstanceHealth(INSTANCE, "Unhealthy"))]
    assert client.writes == []


@pytest.mark.parametrize(("instances", "expected"), [
    ({}, "no-managed-group"),
    ({INSTANCE: ("someone-elses-asg", "InService")}, "no-managed-group"),
    ({INSTANCE: ("prod-asg", "Terminating:Wait")}, "left-as-Terminating:Wait"),
])
def test_an_instance_outside_a_managed_group_or_already_leaving_is_left_as_is(
        instances: dict[str, tuple[str, str]], expected: str) -> None:
    # GIVEN an instance in no managed group, or already leaving / WHEN the drain ends
    client = AutoScalingClient(instances)
    # THEN nothing is written
    assert replace_after_drain(_runtime(client), {"instanceId": INSTANCE, "replace": "unhealthy"}) == expected
    assert client.writes == []


class EventsClient:
    """PutEvents that rejects the entries whose detail type is listed."""

    def __init__(self, rejected: set[str]) -> None:
        self.rejected = rejected
        self.calls: list[list[dict[str, Any]]] = []

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        self.calls.append(Entries)
        results = [{"ErrorCode": "InternalFailure"} if e["DetailType"] in self.rejected else {"EventId": "1"}
                   for e in Entries]
        return {"FailedEntryCount": sum("ErrorCode" in r for r in results), "Entries": results}


def _event(detail_type: str) -> OwnEvent:
    return OwnEvent(detail_type, {"cluster": "prod"}, ("arn:aws:ec2:us-east-1:111122223333:instance/" + INSTANCE,))


def test_the_event_publisher_reports_the_rejected_entries() -> None:
    # GIVEN EventBridge rejecting one detail type
    client = EventsClient({"Drain Forced"})
    # WHEN two events are put / THEN one failure is reported, with its error code, and one call was made
    assert EventPublisher(client).publish([_event("Drain Started"), _event("Drain Forced")]) == (1,
                                                                                                ["InternalFailure"])
    assert [e["Source"] for e in client.calls[0]] == ["daemon-guard", "daemon-guard"]


def test_the_event_publisher_refuses_more_than_putevents_takes() -> None:
    # GIVEN eleven events / WHEN put as one batch / THEN refused before any call (PutEvents takes ten)
    client = EventsClient(set())
    with pytest.raises(ValueError, match="at most 10"):
        EventPublisher(client).publish([_event("Drain Started")] * 11)
    assert client.calls == []


class CountingStore(MemoryState):
    """The in-memory state, counting the completion writes."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[tuple[str, ...]] = []

    def mark_complete(self, container_instance_arns: Any, now_epoch: float, ttl_s: int = 86400) -> None:
        self.writes.append(tuple(container_instance_arns))
        super().mark_complete(container_instance_arns, now_epoch, ttl_s)


def test_the_completion_port_writes_each_instance_once_and_forgets_on_a_stopped_daemon() -> None:
    # GIVEN the completion port over a store shared with another container
    store = CountingStore()
    here, there = KnownComplete(store, lambda: 1000.0), KnownComplete(store, lambda: 1000.0)
    # WHEN this container remembers two instances, twice
    here.remember(["ci-1", "ci-2"])
    here.remember(["ci-1", "ci-2", "ci-2"])
    # THEN the table was written once, and the other container knows them through it
    assert store.writes == [("ci-1", "ci-2")]
    assert there.known("ci-1")
    # WHEN a daemon stops on ci-1 (certain), seen by a container that never knew it
    KnownComplete(store, lambda: 1000.0).forget("ci-1", certain=True)
    # THEN the table forgets it (the first container's own memory still answers until it forgets too)
    assert not KnownComplete(store, lambda: 1000.0).known("ci-1")
    assert KnownComplete(store, lambda: 1000.0).known("ci-2")
