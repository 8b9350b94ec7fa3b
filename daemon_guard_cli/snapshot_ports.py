"""Replay's ports: a snapshot's state served read-only behind the ECS and Auto Scaling ports, the writes recorded.

`SnapshotEcs` is the `EcsPort` over one validated STATE.json (its lists in the ECS API's output shapes): each
read answers from the snapshot, mapped to core views by the same functions as the boto3 adapter's; each write
changes nothing and is appended to `writes`. It is no simulator: nothing moves, a stopped task stays running.
The snapshot holds no Auto Scaling state, so `NoGroups` knows no group and records its writes the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from daemon_guard.adapters.autoscaling import GroupInstance
from daemon_guard.adapters.ecs import InstanceLookups, instance_view, service_view, task_definition_view, task_view
from daemon_guard.core import query as cluster_query
from daemon_guard.core.actions import CompleteLifecycle, RecordHeartbeat, ReplaceInstance, SetInstanceHealth
from daemon_guard.core.model import InstanceView, ServiceView, TaskDefinitionView, TaskView

Raw = Mapping[str, Any]
Write = tuple[str, tuple[Any, ...]]  # the port method's name and its arguments


class SnapshotEcs(InstanceLookups):
    """The `EcsPort` of one cluster, answered from a snapshot's container instances, tasks, services and task
    definitions; what the snapshot cannot say (task protection) reads as ECS's default (not protected)."""

    def __init__(self, instances: Sequence[Raw], tasks: Sequence[Raw], services: Sequence[Raw],
                 task_definitions: Sequence[Raw], agent_stop_timeout_s: int = 30) -> None:
        self._instances = list(instances)
        self._tasks = list(tasks)
        self._services = list(services)
        self._task_defs = {td["taskDefinitionArn"]: task_definition_view(td, agent_stop_timeout_s)
                           for td in task_definitions}
        self.writes: list[Write] = []

    @property
    def known_task_definitions(self) -> Mapping[str, TaskDefinitionView]:
        """Every task definition of the snapshot."""
        return self._task_defs

    def instance_arns(self, status: str | None = None, query: str | None = None) -> list[str]:
        """As ListContainerInstances answers: every status but INACTIVE unless one is asked for, and the filter
        evaluated by the cluster query language (`core.query`), wildcards included."""
        expression = cluster_query.parse(query) if query else None
        arns = []
        for raw in self._instances:
            if raw.get("status") == "INACTIVE" or (status and raw.get("status") != status):
                continue
            if expression is None or cluster_query.evaluate(expression, instance_view(raw), self._groups_on(raw)):
                arns.append(raw["containerInstanceArn"])
        return arns

    def _groups_on(self, raw: Raw) -> set[str]:
        return {t.get("group", "") for t in self._tasks
                if t.get("containerInstanceArn") == raw["containerInstanceArn"] and t.get("lastStatus") != "STOPPED"}

    def instances(self, arns: Sequence[str]) -> list[InstanceView]:
        """The snapshot's container instances of `arns`."""
        wanted = set(arns)
        return [instance_view(raw) for raw in self._instances if raw["containerInstanceArn"] in wanted]

    def task_arns_on(self, instance_arn: str, desired: str | None = None) -> list[str]:
        """Tasks on an instance by desired status; by default RUNNING, then STOPPED."""
        return [t["taskArn"] for status in ((desired,) if desired else ("RUNNING", "STOPPED")) for t in self._tasks
                if t.get("desiredStatus") == status and t.get("containerInstanceArn") == instance_arn]

    def service_task_arns(self, service: str) -> list[str]:
        """Tasks of service `service` (its name) whose desired status is RUNNING."""
        return [t["taskArn"] for t in self._tasks
                if t.get("desiredStatus") == "RUNNING" and t.get("group") == f"service:{service}"]

    def tasks(self, arns: Sequence[str]) -> list[TaskView]:
        """The snapshot's tasks of `arns`, STOPPED ones left out."""
        wanted = set(arns)
        return [task_view(raw, self.task_definition(raw["taskDefinitionArn"])) for raw in self._tasks
                if raw["taskArn"] in wanted and raw.get("lastStatus") != "STOPPED"]

    def task_definition(self, arn: str) -> TaskDefinitionView:
        """One task definition (the snapshot's validation holds every one a task or service names)."""
        found = self._task_defs.get(arn)
        if found is None:
            raise LookupError(f"task definition {arn} is not in the snapshot")
        return found

    def services(self, names_or_arns: Sequence[str]) -> list[ServiceView]:
        """The snapshot's services named (by name or ARN)."""
        wanted = set(names_or_arns)
        return [view for raw in self._services if raw["serviceArn"] in wanted or raw["serviceName"] in wanted
                if (view := service_view(raw)) is not None]

    def daemon_services(self, refresh: bool = False) -> tuple[ServiceView, ...]:
        """Every ACTIVE DAEMON service of the snapshot."""
        return tuple(s for s in self.services(self.service_arns("DAEMON")) if s.status == "ACTIVE")

    def service_arns(self, strategy: str | None = None) -> list[str]:
        """The snapshot's service ARNs, of one scheduling strategy or all."""
        return [s["serviceArn"] for s in self._services if not strategy or s.get("schedulingStrategy") == strategy]

    def protected(self, task_arns: Sequence[str]) -> set[str]:
        """None: a snapshot does not record task protection."""
        return set()

    def stop_durations(self, task_arns: Sequence[str]) -> dict[str, float]:
        """Seconds from stoppingAt to stoppedAt, for the snapshot's tasks of `task_arns` that carry both."""
        wanted = set(task_arns)
        return {t["taskArn"]: max(0.0, (t["stoppedAt"] - t["stoppingAt"]).total_seconds()) for t in self._tasks
                if t["taskArn"] in wanted and t.get("stoppingAt") is not None and t.get("stoppedAt") is not None}

    def stop_tasks(self, task_arns: Sequence[str], reason: str) -> None:
        """Recorded, not made."""
        self.writes.append(("stop_tasks", (tuple(task_arns), reason)))

    def put_attribute(self, instance_arn: str, name: str, value: str) -> None:
        """Recorded, not made."""
        self.writes.append(("put_attribute", (instance_arn, name, value)))

    def set_draining(self, instance_arns: Sequence[str]) -> list[str]:
        """Recorded, not made; no failure."""
        self.writes.append(("set_draining", (tuple(instance_arns),)))
        return []


class NoGroups:
    """The `AutoScalingPort` of a snapshot, which holds no Auto Scaling state: no group, no warm pool, and each
    write recorded (and reported made)."""

    def __init__(self) -> None:
        self.writes: list[Write] = []

    def complete(self, action: CompleteLifecycle) -> bool:
        """Recorded, not made."""
        return self._record("complete", action)

    def heartbeat(self, action: RecordHeartbeat) -> bool:
        """Recorded, not made."""
        return self._record("heartbeat", action)

    def replace(self, action: ReplaceInstance, launch_hooks: Mapping[str, str | None]) -> bool:
        """Recorded, not made."""
        return self._record("replace", action)

    def set_health(self, action: SetInstanceHealth) -> bool:
        """Recorded, not made."""
        return self._record("set_health", action)

    def _record(self, name: str, action: object) -> bool:
        self.writes.append((name, (action,)))
        return True

    def group_instances(self, groups: Sequence[str]) -> list[GroupInstance]:
        """None: no group is known."""
        return []

    def warm_pool(self, group: str) -> list[GroupInstance]:
        """None: no warm pool is known."""
        return []

    def instance(self, instance_id: str) -> GroupInstance | None:
        """None: the instance is in no known group."""
        return None
