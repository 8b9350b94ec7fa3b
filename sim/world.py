"""One simulated AWS account: clock, ECS, Auto Scaling and EventBridge wired together.

Each part draws from its own random stream derived from the seed, so that adding automation
(which consumes event ids, API faults, delivery jitter) never changes what ECS or EC2 do: the
strategies of a benchmark see the same launches, latencies and interruptions.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.config import Config as BotoConfig

from sim import event_shapes as shapes
from sim.autoscaling import AsgParams, AutoScalingSim, Group, PendingAction
from sim.clock import Clock
from sim.ecs import EcsParams, EcsSim, SimInstance, SimService, SimTask, no_profile
from sim.ecs_api import ApiFaults, EcsApi
from sim.eventbridge import EventBus, FaultPlan
from sim.latency import ApiLatency
from sim.wire import Backend, CallLog, make_client


class TimedBackend:
    """Charges the simulated AWS side's CPU time to the world, so a handler's own cost can be told apart."""

    def __init__(self, inner: Backend, world: World) -> None:
        self.inner = inner
        self.world = world

    def call(self, service: str, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """Forward, timing the backend (on the caller's thread: each invocation runs on its own)."""
        started = time.thread_time()
        try:
            return self.inner.call(service, operation, params)
        finally:
            spent = time.thread_time() - started
            self.world.backend_cpu_s += spent
            self.world.thread_cpu.backend_s = getattr(self.world.thread_cpu, "backend_s", 0.0) + spent


def stream(seed: int, name: str) -> random.Random:
    """An independent, reproducible random stream for one part of the world."""
    return random.Random(f"{seed}:{name}")


@dataclass(frozen=True)
class WorldOptions:
    """What the world models: `ecs` is a named behaviour profile's parameters (sim.ecs.profile_params), always
    given (without it the options are refused); the other parts have defaults."""

    seed: int = 1
    ecs: EcsParams = field(default_factory=no_profile)
    asg: AsgParams = field(default_factory=AsgParams)
    delivery: FaultPlan = field(default_factory=FaultPlan)
    api_faults: ApiFaults = field(default_factory=ApiFaults)
    api_latency: ApiLatency = field(default_factory=ApiLatency)  # the deployed functions' calls (sim.latency)
    throttling: bool = True
    emit_events: bool = True


class World:
    """The simulated control plane plus boto3 clients that talk to it through botocore."""

    def __init__(self, options: WorldOptions) -> None:
        self.options = options
        seed = self.options.seed
        # botocore's retry jitter draws from the global generator: seed it so a run repeats exactly.
        random.seed(f"{seed}:global")
        self.clock = Clock()
        self.ecs = EcsSim(self.clock, stream(seed, "ecs"), self.options.ecs,
                          report_rng=stream(seed, "ecs-stopped-report"), write_rng=stream(seed, "ecs-write-visibility"))
        self.asg = AutoScalingSim(self.clock, stream(seed, "asg"), self.ecs, self.options.asg)
        self.ecs_api = EcsApi(self.ecs, stream(seed, "api-faults"), self.options.api_faults,
                              throttling=self.options.throttling)
        self.bus = EventBus(self.clock, stream(seed, "delivery"), self.options.delivery)
        self.call_log = CallLog()
        self.backend_cpu_s = 0.0
        self.thread_cpu = threading.local()  # backend_s: the backend's CPU on this thread
        # Parks the calling invocation for a client's retry backoff (sim.latency.Workers.sleep); False when
        # the caller is not an invocation.
        self.sleeper: Callable[[float], bool] | None = None
        self._event_rng = stream(seed, "event-ids")
        self._asg_arns: dict[str, str] = {}
        self.account, self.region = self.ecs.account, self.ecs.region
        if self.options.emit_events:
            self.ecs.listeners.append(self._on_ecs)
            self.asg.listeners.append(self._on_asg)

    # ---- clients --------------------------------------------------------------------------------
    def client(self, service: str, config: BotoConfig | None = None) -> Any:
        """A boto3 client answered by this world (ECS and Auto Scaling). `config`: the client's botocore Config
        as a function builds it (`bootstrap.client_configs`); default: one attempt per call. Retry backoff and
        adaptive mode's rate limiter wait on the caller's simulated time (`backoff`, `current_time`)."""
        backends: dict[str, Backend] = {"ecs": self.ecs_api, "autoscaling": self.asg}
        return make_client(service, TimedBackend(backends[service], self), self.region, call_log=self.call_log,
                           backoff=self.backoff, config=config, rate_clock=self)

    def backoff(self, seconds: float) -> None:
        """A client backing off: an invocation waits on the simulated clock while the world goes on; any
        other caller's own clock moves on (the world's stays, no other event interleaves)."""
        if self.sleeper is not None and self.sleeper(seconds):
            return
        self.ecs_api.caller_offset += seconds

    def current_time(self) -> float:
        """The caller's simulated time (a `RateClock`, with `sleep`): the world's, plus what a caller outside
        an invocation has waited."""
        return self.clock.now + self.ecs_api.caller_offset

    def sleep(self, amount: float) -> None:
        """Wait `amount` seconds of the caller's simulated time (a `RateClock`): as `backoff`."""
        self.backoff(amount)

    def begin_invocation(self) -> None:
        """A new caller starts at the world's time."""
        self.ecs_api.caller_offset = 0.0

    # ---- events ---------------------------------------------------------------------------------
    def _common(self) -> dict[str, Any]:
        return {"rng": self._event_rng, "time": self.clock.datetime(), "account": self.account,
                "region": self.region}

    def _on_ecs(self, kind: str, payload: dict[str, Any]) -> None:
        if not self.bus.rule_names:
            return
        if kind == "task":
            self.bus.put(self.task_event(payload["task"]))
        elif kind == "instance":
            self.bus.put(self.instance_event(payload["instance"]))
        elif kind == "service-action":
            svc: SimService = payload["service"]
            self.bus.put(shapes.service_action(
                **self._common(), cluster_arn=self.ecs.cluster_arn(svc.cluster), service_arn=svc.arn,
                event_name=payload["event_name"], event_type="ERROR", created_at=self.clock.datetime(),
                reason=payload["reason"], container_instance_arns=payload["instances"] or None))

    def task_event(self, task: SimTask) -> dict[str, Any]:
        """The ECS Task State Change event for the task as it is now."""
        td = self.ecs.task_defs[task.task_definition]
        dt = self.clock.datetime
        return shapes.task_state_change(
            **self._common(), cluster_arn=self.ecs.cluster_arn(task.cluster), task_arn=task.arn,
            task_definition_arn=task.task_definition, container_instance_arn=task.container_instance,
            containers=[shapes.TaskContainer(c["name"], self.ecs_api.container_arn(task, c["name"]), task.last_status)
                        for c in td.containers],
            last_status=task.last_status, desired_status=task.desired_status, group=task.group,
            started_by=task.started_by, version=task.version, created_at=dt(task.created_at),
            updated_at=dt(), started_at=dt(task.started_at) if task.started_at is not None else None,
            stopping_at=dt(task.stopping_at) if task.stopping_at is not None else None,
            stopped_at=dt(task.stopped_at) if task.stopped_at is not None else None,
            execution_stopped_at=dt(task.stopped_at) if task.stopped_at is not None else None,
            stopped_reason=task.stopped_reason or None, stop_code=task.stop_code or None, launch_type="EC2")

    def instance_event(self, inst: SimInstance) -> dict[str, Any]:
        """The ECS Container Instance State Change event for the instance as it is now."""
        rem = inst.remaining
        live = self.ecs.live_tasks(inst)
        return shapes.container_instance_state_change(
            **self._common(), cluster_arn=self.ecs.cluster_arn(inst.cluster), container_instance_arn=inst.arn,
            ec2_instance_id=inst.ec2_instance_id,
            registered=shapes.Resources(inst.registered.cpu, inst.registered.memory),
            remaining=shapes.Resources(rem.cpu, rem.memory,
                                       tuple(sorted(str(p.port) for p in inst.used_ports if p.protocol == "tcp")),
                                       tuple(sorted(str(p.port) for p in inst.used_ports if p.protocol == "udp"))),
            status=inst.status, agent_connected=inst.agent_connected, attributes=inst.attributes,
            version=inst.version, registered_at=self.clock.datetime(inst.registered_at),
            updated_at=self.clock.datetime(), running_tasks_count=sum(t.last_status == "RUNNING" for t in live),
            pending_tasks_count=sum(t.last_status != "RUNNING" for t in live))

    def _on_asg(self, kind: str, payload: dict[str, Any]) -> None:
        if not self.bus.rule_names:
            return
        if kind == "lifecycle":
            group: Group = payload["group"]
            action: PendingAction = payload["action"]
            launch = action.hook.transition.endswith("LAUNCHING")
            self.bus.put(shapes.lifecycle_action(
                "launch" if launch else "terminate", **self._common(), asg_name=group.name,
                asg_arn=self.asg_arn(group.name), hook_name=action.hook.name, instance_id=action.instance_id,
                token=action.token, origin=action.origin, destination=action.destination))
        elif kind == "spot":
            self.bus.put(shapes.spot_interruption_warning(**self._common(), instance_id=payload["instance_id"]))
        elif kind == "rebalance":
            self.bus.put(shapes.rebalance_recommendation(**self._common(), instance_id=payload["instance_id"]))
        elif kind == "state":
            self.bus.put(shapes.instance_state_change(**self._common(), instance_id=payload["instance_id"],
                                                      state=payload["state"]))
        elif kind == "health" and payload["instance_ids"]:
            tags = {i: {"aws:autoscaling:groupName": payload["groups"][i]} for i in payload["instance_ids"]}
            self.bus.put(shapes.health_scheduled_change(
                **self._common(), instance_tags=tags, start_time=self.clock.datetime(payload["start"]),
                event_type_code=payload["event_type_code"]))

    def asg_arn(self, name: str) -> str:
        """The ARN of a group, as Auto Scaling writes it (drawn once per group, then stable)."""
        if name not in self._asg_arns:
            self._asg_arns[name] = (
                f"arn:aws:autoscaling:{self.region}:{self.account}:autoScalingGroup:"
                f"{self._event_rng.getrandbits(32):08x}-0000-4000-8000-000000000000:autoScalingGroupName/{name}")
        return self._asg_arns[name]
