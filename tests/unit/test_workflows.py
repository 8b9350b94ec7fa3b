"""The durable workflows, run by the durable SDK's own local test runner against tiny hand-written AWS fakes.

The runner skips `ctx.wait`, but a callback's timeout is a real delay; so, as the intake does when a
task on the instance STOPS, the test completes each wake-up callback the workflow creates.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aws_durable_execution_sdk_python.lambda_service import InvocationStatus
from aws_durable_execution_sdk_python_testing.runner import DurableFunctionTestResult, DurableFunctionTestRunner
from botocore.exceptions import ClientError
from daemon_guard import bootstrap
from daemon_guard.bootstrap import Runtime
from daemon_guard.core.config import (
    LAUNCH_HOOK_NAME,
    TERMINATE_HOOK_NAME,
    Config,
    DrainOrder,
    DrainTier,
    ManagedCluster,
    ManagedGroup,
    PlacementMode,
    StandalonePolicy,
)
from daemon_guard.core.drain import (
    DrainLook,
    DrainProgress,
    DrainRequest,
    Fences,
    HookKeeping,
    PhaseWatch,
    StopLedger,
)
from daemon_guard.core.metrics import MetricSpec
from daemon_guard.entrypoints import drain, launch_gate
from daemon_guard.services.drain_look import observe
from daemon_guard.workflows.drain import drain_tick

CLUSTER, ASG, TOKEN = "prod", "prod-asg", "11111111-2222-3333-4444-555555555555"
INSTANCE_ID = "i-0123456789abcdef0"
INSTANCE_ARN = "arn:aws:ecs:us-west-2:123456789012:container-instance/prod/ci-1"
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
DAEMONS = {"xray": "agents", "prometheus": "metrics", "fluent-bit": "logs"}
TIERS = (DrainTier("agents", ("xray",)), DrainTier("metrics", ("prometheus",)), DrainTier("logs", ("fluent-bit",)))


# ---- fakes ---------------------------------------------------------------------------------------

@dataclass
class Pages:
    """A paginator of one page."""

    page: Callable[..., dict[str, Any]]

    def paginate(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        yield self.page(**kwargs)


def throttle(**_kw: Any) -> dict[str, Any]:
    """ECS's answer when the read rate is spent (after the SDK's retries)."""
    raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "ListTasks")


@dataclass
class FakeEcs:
    """One instance's tasks; StopTask stops a task at once, DRAINING makes ECS replace the replicas."""

    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    status: str = "ACTIVE"
    registered: bool = True
    calls: list[tuple[str, str]] = field(default_factory=list)
    described: list[str] = field(default_factory=list)  # services named in DescribeServices
    throttled: bool = False  # ECS throttles ListTasks (past the SDK's retries)
    attributes: dict[str, str] = field(default_factory=dict)  # the instance's custom attributes (PutAttributes)
    kept_elsewhere: int = 2  # a service's tasks of desired status RUNNING (ListTasks by service), wherever they run
    listed: list[str] = field(default_factory=list)  # services named in ListTasks

    def add(self, arn: str, service: str | None, last_status: str = "RUNNING") -> None:
        self.tasks[arn] = {"taskArn": arn, "group": f"service:{service}" if service else "family:batch",
                           "taskDefinitionArn": f"arn:td/{service or 'batch'}:1", "lastStatus": last_status,
                           "desiredStatus": "RUNNING", "containerInstanceArn": INSTANCE_ARN, "cpu": "128",
                           "memory": "256"}

    def _stop(self, arn: str) -> None:
        self.tasks[arn].update(lastStatus="STOPPED", desiredStatus="STOPPED", stoppingAt=T0, stoppedAt=T0)

    def get_paginator(self, name: str) -> Pages:
        if self.throttled and name == "list_tasks":
            return Pages(throttle)
        pages: dict[str, Callable[..., dict[str, Any]]] = {
            "list_container_instances": lambda **kw: {
                "containerInstanceArns": [INSTANCE_ARN] if self.registered and INSTANCE_ID in kw.get("filter", "")
                and kw.get("status", self.status) == self.status else []},
            "list_tasks": lambda **kw: {"taskArns": [a for a, t in self.tasks.items()
                                                     if t["desiredStatus"] == kw["desiredStatus"]]}
            if "serviceName" not in kw else self._service_tasks(kw["serviceName"]),
            "list_services": lambda **kw: {"serviceArns": [f"arn:svc/{name}" for name in DAEMONS]},
        }
        return Pages(pages[name])

    def _service_tasks(self, service: str) -> dict[str, Any]:
        """ListTasks by service, desired RUNNING: by default the two tasks DescribeServices counts, wherever they
        run (fewer: another drain has told some to stop, and runningCount still counts them)."""
        self.listed.append(service)
        return {"taskArns": [f"arn:task/{service}-{n}" for n in range(self.kept_elsewhere)]}

    def describe_container_instances(self, **kw: Any) -> dict[str, Any]:
        return {"containerInstances": [{
            "containerInstanceArn": INSTANCE_ARN, "ec2InstanceId": INSTANCE_ID, "status": self.status,
            "agentConnected": True, "registeredAt": T0, "version": 1,
            "attributes": [{"name": name, "value": value} for name, value in self.attributes.items()],
            "registeredResources": [{"name": "CPU", "integerValue": 2048}, {"name": "MEMORY", "integerValue": 8192}],
            "remainingResources": [{"name": "CPU", "integerValue": 1024}, {"name": "MEMORY", "integerValue": 4096}],
        }] if self.registered else []}

    def describe_tasks(self, **kw: Any) -> dict[str, Any]:
        return {"tasks": [dict(self.tasks[a]) for a in kw["tasks"] if a in self.tasks]}

    def describe_services(self, **kw: Any) -> dict[str, Any]:
        self.described.extend(ref.rsplit("/", 1)[-1] for ref in kw["services"])
        out = []
        for ref in kw["services"]:
            name = ref.rsplit("/", 1)[-1]
            daemon = name in DAEMONS
            out.append({"serviceArn": f"arn:svc/{name}", "serviceName": name, "taskDefinition": f"arn:td/{name}:1",
                        "schedulingStrategy": "DAEMON" if daemon else "REPLICA", "status": "ACTIVE",
                        "desiredCount": 2, "runningCount": 2,
                        "deploymentConfiguration": {"minimumHealthyPercent": 50, "maximumPercent": 200}})
        return {"services": out}

    def describe_task_definition(self, **kw: Any) -> dict[str, Any]:
        arn = kw["taskDefinition"]
        return {"taskDefinition": {"taskDefinitionArn": arn, "family": arn.split("/")[-1].split(":")[0],
                                   "networkMode": "bridge", "cpu": "128", "memory": "256",
                                   "containerDefinitions": [{"name": "main"}]}}

    def stop_task(self, **kw: Any) -> dict[str, Any]:
        self.calls.append(("StopTask", kw["task"]))
        self._stop(kw["task"])
        return {}

    def update_container_instances_state(self, **kw: Any) -> dict[str, Any]:
        self.calls.append(("UpdateContainerInstancesState", kw["status"]))
        self.status = kw["status"]
        for arn, task in self.tasks.items():
            service = task["group"].removeprefix("service:")
            if task["group"].startswith("service:") and service not in DAEMONS:
                self._stop(arn)  # ECS replaces the replicas elsewhere
        return {"failures": []}

    def put_attributes(self, **kw: Any) -> dict[str, Any]:
        self.calls.append(("PutAttributes", kw["attributes"][0]["name"]))
        self.attributes.update({a["name"]: a["value"] for a in kw["attributes"]})
        return {}


@dataclass
class FakeAutoScaling:
    """Records lifecycle calls."""

    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def complete_lifecycle_action(self, **kw: Any) -> dict[str, Any]:
        self.calls.append(("CompleteLifecycleAction", kw))
        return {}

    def record_lifecycle_action_heartbeat(self, **kw: Any) -> dict[str, Any]:
        self.calls.append(("RecordLifecycleActionHeartbeat", kw))
        return {}

    @property
    def completions(self) -> list[dict[str, Any]]:
        return [kw for name, kw in self.calls if name == "CompleteLifecycleAction"]


@dataclass
class Metrics:
    """Metrics as a list."""

    values: list[tuple[str, float]] = field(default_factory=list)

    def emit(self, spec: MetricSpec, value: float, cluster: str, **dimensions: str) -> None:
        self.values.append((spec.name, value))


class SteppingClock:
    """A clock that moves `step_s` forward on every read."""

    def __init__(self, step_s: float) -> None:
        self.now = T0
        self.step = timedelta(seconds=step_s)

    def __call__(self) -> datetime:
        self.now += self.step
        return self.now


def install(ecs: FakeEcs, autoscaling: FakeAutoScaling, *, step_s: float = 1.0,
            group: ManagedGroup | None = None, launch_gate_timeout_s: int = 600) -> Runtime:
    """A runtime over the fakes (no state table, no Lambda client), for the workflows' handlers to bind."""
    config = Config(clusters=(ManagedCluster(CLUSTER, (group or ManagedGroup(ASG),)),), drain_tiers=TIERS,
                    standalone_policy=StandalonePolicy.STOP, launch_gate_timeout_s=launch_gate_timeout_s)
    return bootstrap.build(config, ecs_client=ecs, autoscaling_client=autoscaling, metrics=Metrics(),
                           clock=SteppingClock(step_s))


def install_gated(ecs: FakeEcs, autoscaling: FakeAutoScaling) -> Runtime:
    """A runtime in gate mode with drainOrder tiers: the guard stops replicas itself, within their budget."""
    config = Config(clusters=(ManagedCluster(CLUSTER, (ManagedGroup(ASG),)),), drain_tiers=TIERS,
                    standalone_policy=StandalonePolicy.STOP, placement_mode=PlacementMode.GATE,
                    drain_order=DrainOrder.TIERS)
    return bootstrap.build(config, ecs_client=ecs, autoscaling_client=autoscaling, metrics=Metrics(),
                           clock=SteppingClock(1.0))


def run_waking(handler: Callable[..., Any], payload: dict[str, Any]) -> DurableFunctionTestResult:
    """Run a workflow to its end in the local runner, completing each wake-up callback it waits on."""
    runner = DurableFunctionTestRunner(handler=handler)
    try:
        return _run_waking(runner, payload)
    finally:
        # The runner stops its scheduler's event loop but never closes it (testing SDK 1.4.0), which
        # surfaced as an "unclosed event loop" ResourceWarning at the end of the suite.
        loop = runner._scheduler._loop
        if not loop.is_closed():
            loop.close()


def _run_waking(runner: DurableFunctionTestRunner, payload: dict[str, Any]) -> DurableFunctionTestResult:
    with runner:
        arn = runner.run_async(input=json.dumps(payload), execution_timeout=60)
        woken: set[str] = set()
        give_up = time.monotonic() + 30
        while time.monotonic() < give_up:
            events = runner.get_execution_history(arn).events
            if any(e.event_type.startswith("Execution") and e.event_type != "ExecutionStarted" for e in events):
                break
            for i, event in enumerate(events):
                details = event.callback_started_details
                settled = any(e.event_type == "InvocationCompleted" for e in events[i + 1:])
                if event.event_type == "CallbackStarted" and details and settled \
                        and details.callback_id not in woken:
                    woken.add(details.callback_id)
                    runner.send_callback_success(details.callback_id)
            time.sleep(0.005)
        result: DurableFunctionTestResult = runner.wait_for_result(arn, timeout=30)
    return result


# ---- drain ---------------------------------------------------------------------------------------

def drain_payload() -> dict[str, Any]:
    return {"instanceId": INSTANCE_ID, "cluster": CLUSTER, "trigger": "lifecycle", "asg": ASG,
            "hook": TERMINATE_HOOK_NAME, "token": TOKEN}


def test_the_drain_stops_tasks_tier_by_tier_and_continues_once() -> None:
    # GIVEN an instance with replicas, a standalone task and three daemon tiers; ECS stops a task when asked
    ecs = FakeEcs()
    for arn, service in [("api-1", "api"), ("api-2", "api"), ("batch-1", None), ("fluent-bit-1", "fluent-bit"),
                         ("prometheus-1", "prometheus"), ("xray-1", "xray")]:
        ecs.add(arn, service)
    autoscaling = FakeAutoScaling()
    rt = install(ecs, autoscaling)
    # WHEN the durable drain runs to its end
    result = run_waking(drain.build_handler(rt), drain_payload())
    # THEN DRAINING first, then standalone, then the tiers in order, then CONTINUE once
    assert result.status is InvocationStatus.SUCCEEDED, result.error
    assert ecs.calls == [("UpdateContainerInstancesState", "DRAINING"), ("StopTask", "batch-1"),
                         ("StopTask", "xray-1"), ("StopTask", "prometheus-1"), ("StopTask", "fluent-bit-1")]
    assert autoscaling.completions == [{"AutoScalingGroupName": ASG, "LifecycleHookName": TERMINATE_HOOK_NAME,
                                        "LifecycleActionToken": TOKEN, "LifecycleActionResult": "CONTINUE"}]
    assert json.loads(result.result or "{}")["result"] == "CONTINUE"


def test_a_drain_of_an_instance_that_is_already_gone_just_continues() -> None:
    # GIVEN an instance ECS no longer knows
    ecs = FakeEcs(registered=False)
    autoscaling = FakeAutoScaling()
    rt = install(ecs, autoscaling)
    # WHEN the drain runs / THEN it stops nothing and completes the lifecycle action once
    result = run_waking(drain.build_handler(rt), drain_payload())
    assert result.status is InvocationStatus.SUCCEEDED, result.error
    assert ecs.calls == []
    assert [kw["LifecycleActionResult"] for kw in autoscaling.completions] == ["CONTINUE"]


# ---- launch gate ---------------------------------------------------------------------------------

def gate_payload() -> dict[str, Any]:
    return {"instanceId": INSTANCE_ID, "cluster": CLUSTER, "asg": ASG, "hook": LAUNCH_HOOK_NAME, "token": TOKEN}


def test_the_launch_gate_continues_once_every_daemon_runs() -> None:
    # GIVEN a registered instance on which every daemon is RUNNING
    ecs = FakeEcs()
    for name in DAEMONS:
        ecs.add(f"{name}-1", name)
    autoscaling = FakeAutoScaling()
    rt = install(ecs, autoscaling, group=ManagedGroup(ASG, launch_hook=True))
    # WHEN the launch gate runs
    result = run_waking(launch_gate.build_handler(rt), gate_payload())
    # THEN it completes the launch action with CONTINUE, once
    assert result.status is InvocationStatus.SUCCEEDED, result.error
    assert [kw["LifecycleActionResult"] for kw in autoscaling.completions] == ["CONTINUE"]
    assert json.loads(result.result or "{}")["result"] == "CONTINUE"


@pytest.mark.parametrize("timeout_result", ["CONTINUE", "ABANDON"])
def test_the_launch_gate_applies_the_timeout_result_when_the_instance_never_registers(timeout_result: str) -> None:
    # GIVEN an instance that never registers, and a clock that moves 200 s per read
    ecs = FakeEcs(registered=False)
    autoscaling = FakeAutoScaling()
    rt = install(ecs, autoscaling, step_s=200, launch_gate_timeout_s=600,
            group=ManagedGroup(ASG, launch_hook=True, launch_timeout_result=timeout_result))
    # WHEN the launch gate runs past its 600 s timeout
    result = run_waking(launch_gate.build_handler(rt), gate_payload())
    # THEN the configured timeout result is applied, once, after heartbeats kept the hook alive
    assert result.status is InvocationStatus.SUCCEEDED, result.error
    assert [kw["LifecycleActionResult"] for kw in autoscaling.completions] == [timeout_result]
    assert any(name == "RecordLifecycleActionHeartbeat" for name, _ in autoscaling.calls)


@pytest.mark.parametrize(("late", "reads_services"), [(False, True), (True, False)])
def test_a_replica_phase_out_of_time_does_not_read_the_services(late: bool, reads_services: bool) -> None:
    # GIVEN a drain in its replica phase (order tiers), in time or out of time (a Spot notice's)
    ecs = FakeEcs()
    ecs.add("api-1", "api")
    rt = install_gated(ecs, FakeAutoScaling())
    progress = DrainProgress(started_at=T0.timestamp(),
                             look=DrainLook(instance_arn=INSTANCE_ARN, instance_status="ACTIVE",
                                            live_tasks=(("api-1", "service:api", 30),)), watch=PhaseWatch(late=late))
    # WHEN the drain looks at the instance
    view, _ = observe(rt, DrainRequest.from_payload(drain_payload()), progress)
    # THEN only a drain in time reads the replica services (their minimumHealthyPercent): out of time it
    # stops them all anyway, and a throttled DescribeServices would only delay that
    assert ("api" in ecs.described) is reads_services
    assert bool(view.services) is reads_services


@pytest.mark.parametrize(("kept", "stops"), [(2, [("StopTask", "api-1")]), (1, [])])
def test_a_replica_told_to_stop_by_another_drain_counts_for_nothing_though_running_count_still_holds_it(
        kept: int, stops: list[tuple[str, str]]) -> None:
    # GIVEN a drain in its replica phase (order tiers) with one task of api (2 desired, 50%), whose runningCount
    # says 2, while ListTasks by service shows `kept` of desired status RUNNING (1: another drain has just told
    # one to stop, still RUNNING until its containers exit, its replacement not yet pending)
    ecs = FakeEcs(kept_elsewhere=kept)
    ecs.add("api-1", "api")
    rt = install_gated(ecs, FakeAutoScaling())
    progress = DrainProgress(started_at=T0.timestamp(),
                             look=DrainLook(instance_arn=INSTANCE_ARN, instance_status="ACTIVE",
                                            live_tasks=(("api-1", "service:api", 30),)),
                             fences=Fences(gate_closed=True, gate_seen=True))
    # WHEN the drain steps
    drain_tick(rt, DrainRequest.from_payload(drain_payload()), progress.as_dict(), None)
    # THEN it stops its task only while ECS keeps both: otherwise that would leave api below 50%
    assert [c for c in ecs.calls if c[0] == "StopTask"] == stops
    assert ecs.listed == ["api"]


def test_a_replica_phase_held_on_its_services_counts_alone_lists_no_service_tasks() -> None:
    # GIVEN a drain whose task of api (2 desired, 2 running, 50%) is already stopping here, with another left
    ecs = FakeEcs()
    ecs.add("api-1", "api")
    ecs.add("api-2", "api")
    ecs.tasks["api-1"]["desiredStatus"] = "STOPPED"
    rt = install_gated(ecs, FakeAutoScaling())
    progress = DrainProgress(started_at=T0.timestamp(),
                             look=DrainLook(instance_arn=INSTANCE_ARN, instance_status="ACTIVE",
                                            live_tasks=(("api-1", "service:api", 30), ("api-2", "service:api", 30))),
                             fences=Fences(gate_closed=True, gate_seen=True), stops=StopLedger(requested=("api-1",)))
    # WHEN the drain looks
    view, _ = observe(rt, DrainRequest.from_payload(drain_payload()), progress)
    # THEN it reads the service (held by its counts: one of two may be down, and one is) and lists none of its
    # tasks: the list could only lower the count
    assert view.services["api"].running_count == 2
    assert ecs.listed == []


def test_the_first_look_sees_the_app_tasks_ecs_already_told_to_stop_so_the_daemons_wait_for_them() -> None:
    # GIVEN an instance ECS set DRAINING at a Spot notice before the drain began: one replica still shutting
    # down (desired STOPPED, not yet STOPPED), one long STOPPED, and a daemon running
    ecs = FakeEcs()
    ecs.add("api-1", "api")
    ecs.tasks["api-1"]["desiredStatus"] = "STOPPED"
    ecs.add("api-0", "api", last_status="STOPPED")
    ecs.tasks["api-0"]["desiredStatus"] = "STOPPED"
    ecs.add("xray-1", "xray")
    rt = install_gated(ecs, FakeAutoScaling())
    # WHEN the drain looks for the first time
    view, progress = observe(rt, DrainRequest.from_payload(drain_payload()), DrainProgress(started_at=T0.timestamp()))
    # THEN the stopping replica is a live task it follows (the daemons wait for it); the STOPPED one is not
    assert sorted(t.arn for t in view.tasks) == ["api-1", "xray-1"]
    assert sorted(live[0] for live in progress.look.live_tasks) == ["api-1", "xray-1"]


def test_a_look_remembers_the_last_time_it_saw_the_instance_so_a_break_can_say_what_it_did_not_see() -> None:
    # GIVEN a registered instance with a daemon
    ecs = FakeEcs()
    ecs.add("xray-1", "xray")
    rt = install_gated(ecs, FakeAutoScaling())
    request = DrainRequest.from_payload(drain_payload())
    # WHEN the drain looks, then EC2 takes the instance and the drain looks again
    _, seen = observe(rt, request, DrainProgress(started_at=T0.timestamp()))
    ecs.registered = False
    _, gone = observe(rt, request, replace(seen, look=replace(seen.look, ticks=0)))
    # THEN the first look records when it saw the instance; the second, finding it gone, keeps that time
    assert seen.look.seen_at == seen.look.looked_at > 0
    assert gone.look.seen_at == seen.look.seen_at < gone.look.looked_at
    assert gone.look.instance_status == "INACTIVE"


@pytest.mark.parametrize(("notice", "daemons_stopped"), [(None, []), (T0.timestamp() + 120, [("StopTask", "xray-1")])])
def test_a_spot_drain_stops_the_next_tier_on_the_events_view_when_ecs_throttles_the_look(
        notice: float | None, daemons_stopped: list[tuple[str, str]]) -> None:
    # GIVEN a drain whose last app task has just STOPPED (the event named it), with its daemon tiers left,
    # and ECS throttling the look that comes before a tier's daemons stop
    ecs = FakeEcs(throttled=True)
    for arn, service in [("xray-1", "xray"), ("prometheus-1", "prometheus"), ("fluent-bit-1", "fluent-bit")]:
        ecs.add(arn, service)
    rt = install_gated(ecs, FakeAutoScaling())
    live = (("batch-1", "family:batch", 30), ("xray-1", "service:xray", 30), ("prometheus-1", "service:prometheus", 30),
            ("fluent-bit-1", "service:fluent-bit", 30))
    progress = DrainProgress(started_at=T0.timestamp(), phase="standalone",
                             look=DrainLook(instance_arn=INSTANCE_ARN, instance_status="ACTIVE", live_tasks=live),
                             fences=Fences(gate_closed=True, gate_seen=True),
                             stops=StopLedger(requested=("batch-1",)), hook=HookKeeping(notice_at=notice))
    # WHEN the step woken by that stop runs
    result = drain_tick(rt, DrainRequest.from_payload(drain_payload()), progress.as_dict(), {"stoppedTask": "batch-1"})
    # THEN under a Spot notice it goes on from the events' view and stops the first tier; without one it
    # waits for a proper look (the step fails and is retried)
    assert [c for c in ecs.calls if c[0] == "StopTask"] == daemons_stopped
    assert ("error" in result) is (notice is None)


@pytest.mark.parametrize(("silent_s", "looks"), [(3.0, False), (25.0, True)])
def test_a_held_replica_phase_looks_at_ecs_once_no_event_has_come_for_a_while(silent_s: float, looks: bool) -> None:
    # GIVEN a replica phase held by minimumHealthyPercent (api at 2 of 2, 50%): api-1 was told to stop and
    # has STOPPED, but its Task State Change was lost, so the events' view still has it stopping
    ecs = FakeEcs()
    ecs.add("api-1", "api")
    ecs.add("api-2", "api")
    ecs._stop("api-1")
    rt = install_gated(ecs, FakeAutoScaling())
    last_look = T0.timestamp() - silent_s
    progress = DrainProgress(started_at=T0.timestamp() - 60,
                             look=DrainLook(instance_arn=INSTANCE_ARN, instance_status="ACTIVE",
                                            live_tasks=(("api-1", "service:api", 30), ("api-2", "service:api", 30)),
                                            looked_at=last_look, heard_at=last_look),
                             fences=Fences(gate_closed=True, gate_seen=True), watch=PhaseWatch(replicas_held=True),
                             stops=StopLedger(requested=("api-1",)))
    # WHEN the wait times out with no event, `silent_s` after the last look
    drain_tick(rt, DrainRequest.from_payload(drain_payload()), progress.as_dict(), None)
    # THEN within the slow look's interval it keeps to the events' view (no StopTask: api-1 still counts as
    # stopping); past it, it looks, sees api-1 STOPPED and stops api-2 within the budget
    assert (("StopTask", "api-2") in ecs.calls) is looks


@dataclass
class LaggingEcs(FakeEcs):
    """ECS whose reads show no PutAttributes yet (eventual consistency: the write is seen seconds later)."""

    def describe_container_instances(self, **kw: Any) -> dict[str, Any]:
        shown, self.attributes = self.attributes, {}
        try:
            return super().describe_container_instances(**kw)
        finally:
            self.attributes = shown


@pytest.mark.parametrize(("ecs_type", "stops_now"), [
    pytest.param(FakeEcs, True, id="the fence seen at once: the tier's daemon stops in the same step"),
    pytest.param(LaggingEcs, False, id="the fence not yet seen: the step waits to read it back"),
])
def test_a_tier_fenced_after_a_full_look_is_read_back_at_once_and_its_daemons_stop_only_once_seen(
        ecs_type: type[FakeEcs], stops_now: bool) -> None:
    # GIVEN a drain whose app tasks are gone, its three daemon tiers left, the gate seen shut; the wait timed out,
    # so the step looks at ECS in full
    ecs = ecs_type()
    for arn, service in [("xray-1", "xray"), ("prometheus-1", "prometheus"), ("fluent-bit-1", "fluent-bit")]:
        ecs.add(arn, service)
    rt = install_gated(ecs, FakeAutoScaling())
    live = (("xray-1", "service:xray", 30), ("prometheus-1", "service:prometheus", 30),
            ("fluent-bit-1", "service:fluent-bit", 30))
    progress = DrainProgress(started_at=T0.timestamp(), phase="tier", phase_started_at=T0.timestamp(),
                             look=DrainLook(instance_arn=INSTANCE_ARN, instance_status="ACTIVE", live_tasks=live,
                                            ticks=1),
                             fences=Fences(gate_closed=True, gate_seen=True))
    # WHEN the step runs
    result = drain_tick(rt, DrainRequest.from_payload(drain_payload()), progress.as_dict(), None)
    # THEN tier 0 is fenced, read back with the same look, and its daemon stops in this step if ECS shows the
    # fence, never before; unseen, the step waits the read-back interval (no later tier is touched either way)
    fenced = [c for c in ecs.calls if c[0] == "PutAttributes"]
    assert len(fenced) == 1 and fenced[0][1].endswith("agents")
    assert [c for c in ecs.calls if c[0] == "StopTask"] == ([("StopTask", "xray-1")] if stops_now else [])
    assert ("agents" in DrainProgress.from_dict(result["progress"]).fences.tiers_seen) is stops_now
    if not stops_now:
        assert result["wait_s"] == 2.0
