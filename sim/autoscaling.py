"""The simulated Auto Scaling service: groups, launches, lifecycle hooks, scale-in, refresh, Spot.

A launch is an EC2 boot followed, after a delay, by the ECS agent's registration. Lifecycle hooks
hold instances in Pending:Wait / Terminating:Wait until CompleteLifecycleAction, the heartbeat
timeout or the global timeout (min(48 h, 100 x heartbeat)) applies the result. Termination kills
whatever still runs on the instance (EcsSim counts each kill as ungraceful). A Spot interruption
warns, then EC2 terminates the instance 120 s later whatever the hooks say.
"""

from __future__ import annotations

import functools
import math
import random
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sim.clock import Clock, Timer
from sim.ecs import EcsSim
from sim.errors import SimApiError, UnsupportedOperation

HOOK_MAX_GLOBAL_S = 48 * 3600


@dataclass(frozen=True)
class InstanceType:
    """What one instance offers ECS."""

    name: str = "m5.xlarge"
    cpu: int = 4096
    memory: int = 15700


@dataclass(frozen=True)
class AsgParams:
    """Timings of EC2 and the ECS agent (seconds)."""

    boot_s: tuple[float, float] = (30.0, 50.0)
    agent_register_s: tuple[float, float] = (4.0, 12.0)
    shutdown_s: float = 2.0
    spot_notice_s: float = 120.0
    spot_hook_delay_s: tuple[float, float] = (1.0, 5.0)
    # EC2 stop or terminate outside Auto Scaling: seconds from `stopping`/`shutting-down` until the
    # OS shutdown has ended what still runs. EC2 documents no figure; this is the simulator's choice.
    os_shutdown_s: float = 120.0


@dataclass
class Hook:
    """A lifecycle hook on a group."""

    name: str
    transition: str  # autoscaling:EC2_INSTANCE_LAUNCHING | autoscaling:EC2_INSTANCE_TERMINATING
    heartbeat_timeout_s: int = 3600
    default_result: str = "ABANDON"

    @property
    def global_timeout_s(self) -> int:
        """min(48 h, 100 x heartbeat timeout)."""
        return min(HOOK_MAX_GLOBAL_S, 100 * self.heartbeat_timeout_s)


@dataclass
class PendingAction:
    """A lifecycle action waiting for its result."""

    hook: Hook
    token: str
    instance_id: str
    started: float
    origin: str
    destination: str
    deadline: float
    timer: Timer | None = None
    heartbeats: int = 0
    result: str | None = None
    timed_out: bool = False
    completed_at: float | None = None


@dataclass
class AsgInstance:
    """An EC2 instance in a group (or its warm pool)."""

    instance_id: str
    state: str
    launched_at: float
    spot: bool = False
    in_warm_pool: bool = False
    registered_at: float | None = None
    terminated_at: float | None = None
    drain_started_at: float | None = None


@dataclass
class Group:
    """An Auto Scaling group feeding one ECS cluster."""

    name: str
    cluster: str
    instance_type: InstanceType
    zones: tuple[str, ...]
    spot: bool = False
    hooks: dict[str, Hook] = field(default_factory=dict)
    instances: dict[str, AsgInstance] = field(default_factory=dict)
    warm_pool: bool = False
    custom_attributes: dict[str, str] = field(default_factory=dict)

    def zone_of(self, instance_id: str) -> str:
        """The instance's availability zone: a stable hash of its id (never `hash()`, which varies per process)."""
        return self.zones[zlib.crc32(instance_id.encode()) % len(self.zones)]


Listener = Callable[[str, dict[str, Any]], None]


class AutoScalingSim:
    """Groups, hooks and EC2 lifecycles; listeners get ("lifecycle"|"spot"|"rebalance"|"state", payload)."""

    def __init__(self, clock: Clock, rng: random.Random, ecs: EcsSim, params: AsgParams | None = None) -> None:
        self.clock = clock
        self.rng = rng
        self.ecs = ecs
        self.params = params or AsgParams()
        self.groups: dict[str, Group] = {}
        self.actions: dict[str, PendingAction] = {}
        self.history: list[PendingAction] = []
        self.replacements: list[tuple[str, str, float]] = []  # (instance replaced, its replacement, when)
        self.listeners: list[Listener] = []
        self.calls: dict[str, int] = {}
        self._on_result: dict[str, Callable[[str], None]] = {}
        self._count = 0

    # ---- setup ----------------------------------------------------------------------------------
    def create_group(self, name: str, cluster: str, instance_type: InstanceType | None = None, *,
                     zones: tuple[str, ...] = ("us-east-1a", "us-east-1b", "us-east-1c"),
                     spot: bool = False, warm_pool: bool = False) -> Group:
        """Create an empty group."""
        group = Group(name, cluster, instance_type or InstanceType(), zones, spot, warm_pool=warm_pool)
        self.groups[name] = group
        return group

    def put_hook(self, group: str, name: str, transition: str, heartbeat_timeout_s: int = 3600,
                 default_result: str = "ABANDON") -> Hook:
        """PutLifecycleHook with the real bounds (heartbeat 30-7200 s)."""
        if not 30 <= heartbeat_timeout_s <= 7200:
            raise SimApiError("ValidationError", "HeartbeatTimeout must be between 30 and 7200 seconds.")
        hook = Hook(name, transition, heartbeat_timeout_s, default_result)
        self.groups[group].hooks[name] = hook
        return hook

    def _hook_for(self, group: Group, transition: str) -> Hook | None:
        return next((h for h in group.hooks.values() if h.transition == transition), None)

    def group_of(self, instance_id: str) -> Group | None:
        return next((g for g in self.groups.values() if instance_id in g.instances), None)

    def _emit(self, kind: str, payload: dict[str, Any]) -> None:
        for listener in self.listeners:
            listener(kind, payload)

    # ---- launch ---------------------------------------------------------------------------------
    def scale_out(self, group_name: str, count: int, spacing_s: float = 0.0) -> list[str]:
        """Launch `count` instances, `spacing_s` apart."""
        ids = []
        for i in range(count):
            self._count += 1
            instance_id = f"i-{self.rng.getrandbits(40):010x}{self._count:07x}"
            ids.append(instance_id)
            self.clock.after(i * spacing_s, functools.partial(self._launch, group_name, instance_id))
        return ids

    def _launch(self, group_name: str, instance_id: str, from_warm_pool: bool = False) -> None:
        group = self.groups[group_name]
        inst = group.instances.get(instance_id) or AsgInstance(instance_id, "Pending", self.clock.now, group.spot)
        inst.state, inst.launched_at, inst.in_warm_pool = "Pending", self.clock.now, False
        group.instances[instance_id] = inst
        boot = self.rng.uniform(*self.params.boot_s) if not from_warm_pool else self.rng.uniform(5, 10)
        self.clock.after(boot + self.rng.uniform(*self.params.agent_register_s),
                         lambda: self._register(group, inst))
        hook = self._hook_for(group, "autoscaling:EC2_INSTANCE_LAUNCHING")
        if hook is None:
            inst.state = "InService"
            return
        inst.state = "Pending:Wait"
        self._start_action(group, hook, inst, origin="WarmPool" if from_warm_pool else "EC2",
                           destination="AutoScalingGroup",
                           on_result=lambda result: self._after_launch_hook(group, inst, result))

    def add_to_warm_pool(self, group_name: str, count: int) -> list[str]:
        """Launch `count` instances into the group's warm pool (EC2 -> WarmPool) through its launch hook:
        Warmed:Pending:Wait until the action completes, then Warmed:Stopped (ABANDON terminates)."""
        group = self.groups[group_name]
        ids = []
        for _ in range(count):
            self._count += 1
            instance_id = f"i-{self.rng.getrandbits(40):010x}{self._count:07x}"
            ids.append(instance_id)
            inst = AsgInstance(instance_id, "Warmed:Pending", self.clock.now, group.spot, in_warm_pool=True)
            group.instances[instance_id] = inst
            hook = self._hook_for(group, "autoscaling:EC2_INSTANCE_LAUNCHING")
            if hook is None:
                inst.state = "Warmed:Stopped"
                continue
            inst.state = "Warmed:Pending:Wait"
            self._start_action(group, hook, inst, origin="EC2", destination="WarmPool",
                               on_result=functools.partial(self._after_warm_entry, group, inst))
        return ids

    def _after_warm_entry(self, group: Group, inst: AsgInstance, result: str) -> None:
        if result == "CONTINUE":
            inst.state = "Warmed:Stopped"
        else:
            inst.state, inst.terminated_at = "Terminated", self.clock.now

    def _register(self, group: Group, inst: AsgInstance) -> None:
        if inst.state.startswith("Terminat") or inst.terminated_at is not None or inst.in_warm_pool:
            return
        zone = group.zone_of(inst.instance_id)
        attrs: dict[str, str | None] = {
            "ecs.instance-type": group.instance_type.name, "ecs.availability-zone": zone,
            "ecs.ami-id": "ami-0abcdef1234567890", "ecs.os-type": "linux", "ecs.cpu-architecture": "x86_64",
            "ecs.os-family": "LINUX", **group.custom_attributes,
        }
        inst.registered_at = self.clock.now
        self.ecs.register_instance(group.cluster, inst.instance_id, group.instance_type.cpu,
                                   group.instance_type.memory, attrs, asg=group.name)

    def _after_launch_hook(self, group: Group, inst: AsgInstance, result: str) -> None:
        if result == "CONTINUE":
            inst.state = "InService"
            return
        abandoned = inst.terminated_at is None  # not already terminated by something else
        self._terminate_now(group, inst)
        if abandoned:
            # ABANDON on a launch hook: the group terminates the instance and, to keep its desired
            # capacity, launches another (CompleteLifecycleAction, Amazon EC2 Auto Scaling API Reference).
            self.replacements.append((inst.instance_id, self.scale_out(group.name, 1)[0], self.clock.now))

    # ---- lifecycle actions ----------------------------------------------------------------------
    def _start_action(self, group: Group, hook: Hook, inst: AsgInstance, *, origin: str, destination: str,
                      on_result: Callable[[str], None]) -> PendingAction:
        action = PendingAction(hook, str(uuid.UUID(int=self.rng.getrandbits(128))), inst.instance_id,
                               self.clock.now, origin, destination,
                               deadline=self.clock.now + hook.global_timeout_s)
        self.actions[action.token] = action
        self.history.append(action)
        self._on_result[action.token] = on_result
        self._arm(action)
        self._emit("lifecycle", {"group": group, "action": action})
        return action

    def _arm(self, action: PendingAction) -> None:
        if action.timer:
            action.timer.cancel()
        due = min(self.clock.now + action.hook.heartbeat_timeout_s, action.deadline)
        action.timer = self.clock.at(due, lambda: self._timeout(action))

    def _timeout(self, action: PendingAction) -> None:
        if action.result is None:
            action.timed_out = True
            self._finish(action, action.hook.default_result)

    def _finish(self, action: PendingAction, result: str) -> None:
        action.result = result
        action.completed_at = self.clock.now
        if action.timer:
            action.timer.cancel()
        self.actions.pop(action.token, None)
        self._on_result.pop(action.token)(result)

    def _find_action(self, group_name: str, hook_name: str, token: str | None,
                     instance_id: str | None) -> PendingAction:
        if group_name not in self.groups:
            raise SimApiError("ValidationError", f"AutoScalingGroup name not found - {group_name}")
        if token:
            action = self.actions.get(token)
            if action is None or action.hook.name != hook_name:
                raise SimApiError("ValidationError", f"No active Lifecycle Action found with token {token}")
            return action
        if instance_id:
            for action in self.actions.values():
                if action.instance_id == instance_id and action.hook.name == hook_name:
                    return action
            raise SimApiError("ValidationError",
                              f"No active Lifecycle Action found with instance ID {instance_id}")
        raise SimApiError("ValidationError", "Either LifecycleActionToken or InstanceId must be specified.")

    # ---- termination ----------------------------------------------------------------------------
    def scale_in(self, group_name: str, count: int, to_warm_pool: bool | None = None) -> list[str]:
        """Terminate `count` InService instances (oldest first), through the terminate hook."""
        group = self.groups[group_name]
        victims = sorted((i for i in group.instances.values() if i.state == "InService"),
                         key=lambda i: i.launched_at)[:count]
        for inst in victims:
            self.terminate(group, inst, to_warm_pool=group.warm_pool if to_warm_pool is None else to_warm_pool)
        return [i.instance_id for i in victims]

    def terminate(self, group: Group, inst: AsgInstance, to_warm_pool: bool = False) -> None:
        """Begin terminating one instance: Terminating:Wait if a hook exists, else at once."""
        if inst.state.startswith("Terminating") or inst.terminated_at is not None:
            return
        hook = self._hook_for(group, "autoscaling:EC2_INSTANCE_TERMINATING")
        inst.drain_started_at = self.clock.now
        if hook is None:
            inst.state = "Terminating"
            self.clock.after(self.params.shutdown_s, lambda: self._terminate_now(group, inst, to_warm_pool))
            return
        inst.state = "Terminating:Wait"
        self._start_action(group, hook, inst, origin="AutoScalingGroup",
                           destination="WarmPool" if to_warm_pool else "EC2",
                           on_result=lambda _r: self._terminate_now(group, inst, to_warm_pool))

    def _terminate_now(self, group: Group, inst: AsgInstance, to_warm_pool: bool = False) -> None:
        if inst.terminated_at is not None and not inst.in_warm_pool:
            return
        self.ecs.terminate_instance(inst.instance_id)
        if to_warm_pool:
            inst.state, inst.in_warm_pool = "Warmed:Stopped", True
            return
        inst.state, inst.terminated_at = "Terminated", self.clock.now
        for action in [a for a in self.actions.values() if a.instance_id == inst.instance_id]:
            self._finish(action, "ABANDON")

    def terminate_outside(self, group: Group, inst: AsgInstance) -> None:
        """EC2 TerminateInstances by someone else: no hook runs; a waiting lifecycle action is abandoned."""
        registered = self.ecs.instance_of_ec2(inst.instance_id)
        if registered is not None:
            registered.status_reason = "terminated outside Auto Scaling"
        self._terminate_now(group, inst)

    def instance_refresh(self, group_name: str, min_healthy_percentage: int = 90) -> None:
        """Replace every instance in batches that keep `min_healthy_percentage` InService."""
        group = self.groups[group_name]
        old = [i for i in group.instances.values() if i.state == "InService"]
        batch = max(1, math.floor(len(old) * (100 - min_healthy_percentage) / 100))

        def next_batch() -> None:
            todo = [i for i in old if i.state == "InService"][:batch]
            if not todo:
                return
            for inst in todo:
                self.terminate(group, inst)
            # The next batch starts once every replacement of this one is InService, not the first.
            waiting = set(self.scale_out(group_name, len(todo)))

            def ready(instance_id: str) -> None:
                waiting.discard(instance_id)
                if not waiting:
                    next_batch()

            for iid in sorted(waiting):
                self._watch_in_service(group, iid, functools.partial(ready, iid))

        next_batch()

    def _watch_in_service(self, group: Group, instance_id: str, then: Callable[[], None]) -> None:
        def check() -> None:
            inst = group.instances.get(instance_id)
            if inst is not None and inst.state == "InService" and inst.registered_at is not None:
                then()
            elif inst is not None and inst.terminated_at is None:
                self.clock.after(5.0, check)
        self.clock.after(5.0, check)

    def return_from_warm_pool(self, group_name: str, count: int) -> list[str]:
        """Scale out from the warm pool (WarmPool -> AutoScalingGroup launch hooks)."""
        group = self.groups[group_name]
        warm = [i for i in group.instances.values() if i.in_warm_pool][:count]
        for inst in warm:
            self._launch(group_name, inst.instance_id, from_warm_pool=True)
        return [i.instance_id for i in warm]

    def spot_interruption(self, instance_id: str) -> None:
        """EC2 warns; the group starts terminating soon after; EC2 terminates at 120 s regardless."""
        group = self.group_of(instance_id)
        if group is None:
            return
        inst = group.instances[instance_id]
        self._emit("spot", {"instance_id": instance_id, "deadline": self.clock.now + self.params.spot_notice_s})
        container_instance = self.ecs.instance_of_ec2(instance_id)
        if self.ecs.params.spot_instance_draining and container_instance is not None \
                and container_instance.status == "ACTIVE":
            # ECS_ENABLE_SPOT_INSTANCE_DRAINING: the agent sees the notice and ECS sets DRAINING itself.
            self.ecs.set_status(container_instance, "DRAINING")
        self.clock.after(self.rng.uniform(*self.params.spot_hook_delay_s), lambda: self.terminate(group, inst))
        self.clock.after(self.params.spot_notice_s, lambda: self._terminate_now(group, inst))

    def stop_outside(self, instance_id: str, state: str = "stopping") -> None:
        """EC2 StopInstances (or TerminateInstances) by someone else: `stopping` (or `shutting-down`) now,
        and the OS shutdown ends what still runs `os_shutdown_s` later; no hook runs."""
        group = self.group_of(instance_id)
        if group is None:
            return
        inst = group.instances[instance_id]
        if inst.terminated_at is not None or inst.state.startswith("Terminating"):
            return
        inst.drain_started_at = self.clock.now
        self._emit("state", {"instance_id": instance_id, "state": state})
        self.clock.after(self.params.os_shutdown_s, lambda: self.terminate_outside(group, inst))

    def scheduled_change(self, instance_ids: list[str], start_in_s: float,
                         event_type_code: str = "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED") -> None:
        """AWS Health announces a scheduled change (here: a stop) of `instance_ids`, `start_in_s` ahead;
        at the start EC2 stops each instance still there."""
        known = [i for i in instance_ids if self.group_of(i) is not None]
        self._emit("health", {"instance_ids": known, "start": self.clock.now + start_in_s,
                              "event_type_code": event_type_code,
                              "groups": {i: self.group_of(i).name for i in known}})  # type: ignore[union-attr]
        for instance_id in known:
            self.clock.after(start_in_s, functools.partial(self.stop_outside, instance_id))

    def set_instance_health(self, instance_id: str, status: str) -> None:
        """SetInstanceHealth: an Unhealthy InService instance is terminated (through the hook) and replaced."""
        group = self.group_of(instance_id)
        if group is None or group.instances[instance_id].terminated_at is not None:
            raise SimApiError("ValidationError", f"Instance Id not found - No managed instance found for instance "
                                                 f"ID: {instance_id}")
        inst = group.instances[instance_id]
        if status == "Unhealthy" and inst.state == "InService":
            self.terminate(group, inst)
            self.replacements.append((inst.instance_id, self.scale_out(group.name, 1)[0], self.clock.now))

    def rebalance_recommendation(self, instance_id: str) -> None:
        """EC2 says the Spot instance is at elevated risk; nothing else happens."""
        self._emit("rebalance", {"instance_id": instance_id})

    # ---- API ------------------------------------------------------------------------------------
    def call(self, service: str, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """Serve an Auto Scaling API call."""
        self.calls[operation] = self.calls.get(operation, 0) + 1
        if service != "autoscaling":
            raise UnsupportedOperation(service, operation)
        if operation == "CompleteLifecycleAction":
            result = params.get("LifecycleActionResult")
            if result not in ("CONTINUE", "ABANDON"):
                raise SimApiError("ValidationError", "LifecycleActionResult must be CONTINUE or ABANDON.")
            action = self._find_action(params["AutoScalingGroupName"], params["LifecycleHookName"],
                                       params.get("LifecycleActionToken"), params.get("InstanceId"))
            self._finish(action, result)
            return {}
        if operation == "RecordLifecycleActionHeartbeat":
            action = self._find_action(params["AutoScalingGroupName"], params["LifecycleHookName"],
                                       params.get("LifecycleActionToken"), params.get("InstanceId"))
            action.heartbeats += 1
            self._arm(action)
            return {}
        if operation == "SetInstanceHealth":
            if params.get("HealthStatus") not in ("Healthy", "Unhealthy"):
                raise SimApiError("ValidationError", "HealthStatus must be Healthy or Unhealthy.")
            self.set_instance_health(params["InstanceId"], params["HealthStatus"])
            return {}
        if operation == "DescribeAutoScalingInstances":
            ids = params.get("InstanceIds", [])
            out = []
            for g in self.groups.values():
                for inst in g.instances.values():
                    if (not ids or inst.instance_id in ids) and inst.terminated_at is None:
                        out.append({"InstanceId": inst.instance_id, "InstanceType": g.instance_type.name,
                                    "AutoScalingGroupName": g.name,
                                    "AvailabilityZone": g.zone_of(inst.instance_id),
                                    "LifecycleState": inst.state, "HealthStatus": "HEALTHY",
                                    "ProtectedFromScaleIn": False})
            return {"AutoScalingInstances": out}
        if operation == "DescribeAutoScalingGroups":
            names = params.get("AutoScalingGroupNames") or sorted(self.groups)
            if len(names) > 100:
                raise SimApiError("ValidationError", "AutoScalingGroupNames can hold at most 100 names.")
            groups = []
            for name in names:
                found = self.groups.get(name)
                if found is None:
                    continue
                g = found
                live = [i for i in g.instances.values() if i.terminated_at is None and not i.in_warm_pool]
                groups.append({
                    "AutoScalingGroupName": g.name,
                    "AutoScalingGroupARN": f"arn:aws:autoscaling:us-east-1:111122223333:autoScalingGroup:"
                                           f"00000000-0000-4000-8000-000000000000:autoScalingGroupName/{g.name}",
                    "MinSize": 0, "MaxSize": 10000, "DesiredCapacity": len(live), "DefaultCooldown": 300,
                    "AvailabilityZones": list(g.zones), "HealthCheckType": "EC2",
                    "CreatedTime": self.clock.datetime(0.0),
                    "Instances": [{"InstanceId": i.instance_id, "InstanceType": g.instance_type.name,
                                   "AvailabilityZone": g.zone_of(i.instance_id), "LifecycleState": i.state,
                                   "HealthStatus": "Healthy", "ProtectedFromScaleIn": False} for i in live],
                })
            return {"AutoScalingGroups": groups}
        if operation == "DescribeWarmPool":
            group = self.groups.get(params["AutoScalingGroupName"])
            if group is None:
                raise SimApiError("ValidationError",
                                  f"AutoScalingGroup name not found - {params['AutoScalingGroupName']}")
            warm = [i for i in group.instances.values() if i.state.startswith("Warmed:") and i.terminated_at is None]
            return {"Instances": [
                {"InstanceId": i.instance_id, "InstanceType": group.instance_type.name,
                 "AvailabilityZone": group.zone_of(i.instance_id), "LifecycleState": i.state,
                 "HealthStatus": "Healthy", "ProtectedFromScaleIn": False} for i in warm]}
        if operation == "DescribeLifecycleHooks":
            group = self.groups.get(params["AutoScalingGroupName"])
            if group is None:
                raise SimApiError("ValidationError", "Group not found")
            return {"LifecycleHooks": [
                {"LifecycleHookName": h.name, "AutoScalingGroupName": group.name,
                 "LifecycleTransition": h.transition, "HeartbeatTimeout": h.heartbeat_timeout_s,
                 "GlobalTimeout": h.global_timeout_s, "DefaultResult": h.default_result}
                for h in group.hooks.values()]}
        raise UnsupportedOperation(service, operation)
