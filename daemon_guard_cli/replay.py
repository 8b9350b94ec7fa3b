"""`daemon-guard replay`: one event through the Lambda's own intake and planning, with no AWS writes.

A drain trigger (terminate lifecycle action, Spot warning, ...) also gets ``plannedSteps``: the
drain's steps in order, previewed from the snapshot (`daemon_guard.core.drain_preview`).

Reads come from a STATE.json snapshot (DescribeContainerInstances / DescribeTasks / DescribeServices /
DescribeTaskDefinition shapes) served behind the Lambda's own ECS port (`daemon_guard_cli.snapshot_ports`),
so everything past the port is the Lambda's code; the intake's actions are recorded by the dry-run
executor, and any write reaching a port is recorded there. Nothing is sent. The lookup of a container
instance by EC2 id evaluates its cluster-query filter with `core.query`, as ECS (and the simulator) would.

Inputs are validated before anything runs; every problem is an `InputError` naming the file and the
field (the command prints it on one line and exits 2):

- EVENT.json and STATE.json: regular files, UTF-8 JSON objects (no NaN or Infinity, no duplicate key), at
  most 64 levels deep, read only up to their limits (`daemon_guard_cli.inputs`): an event 256 KiB
  (EventBridge's maximum), a snapshot `MAX_STATE_BYTES`.
- STATE.json, the documented snapshot schema (README, "Replay an event"): an object with optional
  ``cluster`` (a cluster name) and the lists ``containerInstances``, ``tasks``, ``services`` and
  ``taskDefinitions``, each entry in the ECS API's output shape (DescribeContainerInstances,
  DescribeTasks, DescribeServices, DescribeTaskDefinition), checked against botocore's model of
  that shape (types, enums, timestamps as ISO 8601 strings, numbers within the shape's range).
  Identity fields are required and validated as `core.identifiers` value types
  (``containerInstanceArn``, ``ec2InstanceId`` when present, ``taskArn``, ``serviceArn``), are
  unique, and every task definition a task or service names is in ``taskDefinitions``.
- The home (partition, account, region) from the configuration's optional ``home`` or the
  ``--partition``/``--account``/``--region`` flags: events (and the ARNs they name) from elsewhere
  are ignored, as the deployed Lambda ignores them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from daemon_guard import bootstrap
from daemon_guard.adapters.parsing import parse_event
from daemon_guard.bootstrap import LearntHome, Runtime
from daemon_guard.core import ranges
from daemon_guard.core.config import Config, ConfigError, Home, parse_config, parse_home
from daemon_guard.core.drain import DrainRequest
from daemon_guard.core.events import ContainerInstanceChanged, LifecycleAction, ServiceAction, TaskChanged
from daemon_guard.core.identifiers import (
    ContainerInstanceArn,
    IdentifierError,
    InstanceId,
    ServiceArn,
    TaskArn,
    partition_of_region,
)
from daemon_guard.services.drain_budget import budget_place
from daemon_guard.services.drain_preview import preview, steps_json
from daemon_guard.services.intake import handle

from daemon_guard_cli.errors import InputError
from daemon_guard_cli.inputs import MAX_CONFIG_BYTES, read_json
from daemon_guard_cli.snapshot_ports import NoGroups, SnapshotEcs

STATE_LISTS = {"containerInstances": "ContainerInstance", "tasks": "Task", "services": "Service",
               "taskDefinitions": "TaskDefinition"}
_CLUSTER_NAME = re.compile(r"[A-Za-z0-9_\-]{1,255}", re.ASCII)
_INT_RANGE = {"integer": 2**31, "long": 2**63}
# Members botocore's model leaves optional that the guard reads by key (a tag without its key is no tag).
_ALSO_REQUIRED = {"Tag": ("key",)}
# Fields botocore models as plain strings whose values the guard branches on (ECS Developer Guide).
_TASK_STATUSES = ("PROVISIONING", "PENDING", "ACTIVATING", "RUNNING", "DEACTIVATING", "STOPPING", "DEPROVISIONING",
                  "STOPPED", "DELETED")
_STATUSES = {
    ("containerInstances", "status"): ("ACTIVE", "DRAINING", "REGISTERING", "DEREGISTERING", "REGISTRATION_FAILED",
                                       "INACTIVE"),
    ("tasks", "lastStatus"): _TASK_STATUSES,
    ("tasks", "desiredStatus"): _TASK_STATUSES,
    ("services", "status"): ("ACTIVE", "DRAINING", "INACTIVE"),
}

# ---- configuration and home -----------------------------------------------------------------------

def load_config(path: str | None, event: Any) -> Config:
    """--config (a daemon-guard document or a whole cdk.json), else ./cdk.json, else what the event names."""
    candidate = Path(path) if path else Path("cdk.json")
    if path or candidate.exists():
        where = str(candidate)
        doc = read_json(where, MAX_CONFIG_BYTES, "a configuration may take", expect="object")
        if isinstance(doc, dict) and "context" in doc:
            context = doc["context"]
            if not isinstance(context, dict):
                raise InputError(where, "context: must be an object")
            doc = context.get("daemon-guard", {})
        try:
            return parse_config(doc)
        except ConfigError as exc:
            raise InputError(where, str(exc)) from None
    parsed = parse_event(event)
    cluster = "default"
    group: list[str] = []
    if isinstance(parsed, ContainerInstanceChanged | TaskChanged | ServiceAction):
        cluster = parsed.cluster_arn.name
    if isinstance(parsed, LifecycleAction):
        group = [parsed.asg_name]
    return parse_config({"clusters": [{"name": cluster, "autoScalingGroups": group}]})


def home_from(config: Config, partition: str | None, account: str | None, region: str | None) -> Home:
    """The configured home with any flag given in its place; InputError names the flag at fault."""
    flags = {k: v for k, v in (("partition", partition), ("account", account), ("region", region)) if v is not None}
    merged = {k: v for k, v in (("partition", config.home.partition), ("account", config.home.account),
                                ("region", config.home.region)) if v is not None}
    if "region" in flags and "partition" not in flags:
        merged.pop("partition", None)  # a region given on the command line brings its own partition
    for key, value in flags.items():
        try:
            parse_home({key: value})
        except ConfigError as exc:
            raise InputError(f"--{key}", str(exc).split(f"home.{key}: ", 1)[-1]) from None
    try:
        return parse_home({**merged, **flags})
    except ConfigError as exc:
        flag = "--partition" if "partition" in flags else "--region"
        raise InputError(flag, str(exc).split(": ", 2)[-1] + " (flags and the configuration's home combined)") \
            from None


# ---- the snapshot ---------------------------------------------------------------------------------

@cache
def _ecs_model() -> Any:
    import botocore.session

    return botocore.session.get_session().get_service_model("ecs")


def _timestamp(value: Any, where: str) -> datetime:
    if not isinstance(value, str):
        raise InputError(where, f"expected an ISO 8601 time string, got {type(value).__name__}")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(where, f"expected an ISO 8601 time, got {value[:40]!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    if not 1970 <= parsed.year < 2100:
        raise InputError(where, f"{value[:40]} is not a time between 1970 and 2100")
    return parsed.astimezone(UTC)


def _shaped(value: Any, shape: Any, where: str) -> Any:
    """`value` checked against a botocore output shape, timestamps turned into datetimes."""
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            raise InputError(where, f"expected an object, got {type(value).__name__}")
        members = shape.members
        for required in (*shape.required_members, *_ALSO_REQUIRED.get(shape.name, ())):
            if required not in value:
                raise InputError(f"{where}.{required}", "required")
        return {k: v if k not in members else _shaped(v, members[k], f"{where}.{k}") for k, v in value.items()}
    if kind == "list":
        if not isinstance(value, list):
            raise InputError(where, f"expected a list, got {type(value).__name__}")
        return [_shaped(v, shape.member, f"{where}[{i}]") for i, v in enumerate(value)]
    if kind == "map":
        if not isinstance(value, dict):
            raise InputError(where, f"expected an object, got {type(value).__name__}")
        return {k: _shaped(v, shape.value, f"{where}.{k}") for k, v in value.items()}
    if kind == "timestamp":
        return _timestamp(value, where)
    if kind in _INT_RANGE:
        if not isinstance(value, int) or isinstance(value, bool):
            raise InputError(where, f"expected a whole number, got {type(value).__name__}")
        if not -_INT_RANGE[kind] <= value < _INT_RANGE[kind]:
            raise InputError(where, f"{value} is out of range for an {kind}")
        return value
    if kind in ("double", "float"):
        if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
            raise InputError(where, f"expected a number, got {type(value).__name__}")
        return value
    if kind == "boolean":
        if not isinstance(value, bool):
            raise InputError(where, f"expected true or false, got {type(value).__name__}")
        return value
    if not isinstance(value, str):
        raise InputError(where, f"expected a string, got {type(value).__name__}")
    if shape.enum and value not in shape.enum:
        raise InputError(where, f"expected one of {', '.join(shape.enum)}, got {value[:40]!r}")
    return value


def _identity(entry: dict[str, Any], key: str, kind: Any, where: str, required: bool = True) -> str | None:
    if key not in entry:
        if required:
            raise InputError(f"{where}.{key}", "required")
        return None
    try:
        return str(kind(entry[key]))
    except IdentifierError as refused:
        raise InputError(f"{where}.{key}", refused.reason) from None


def _unique(seen: set[str], value: str | None, where: str) -> None:
    if value is not None:
        if value in seen:
            raise InputError(where, f"{value} appears more than once")
        seen.add(value)


@dataclass(frozen=True)
class Snapshot:
    """A validated STATE.json: each list in the API's output shape, timestamps as datetimes."""

    cluster: str | None
    container_instances: list[dict[str, Any]]
    tasks: list[dict[str, Any]]
    services: list[dict[str, Any]]
    task_definitions: list[dict[str, Any]]


def _text(entry: dict[str, Any], key: str, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value:
        raise InputError(f"{where}.{key}", "required")
    return value


def validate_state(doc: Any, path: str = "STATE.json") -> Snapshot:
    """Check a snapshot against the documented schema; InputError names the file and the field."""
    if not isinstance(doc, dict):
        raise InputError(path, f"expected a JSON object, got {type(doc).__name__}")
    cluster = doc.get("cluster")
    if cluster is not None and not (isinstance(cluster, str) and _CLUSTER_NAME.fullmatch(cluster)):
        raise InputError(f"{path}: cluster", "expected a cluster name (1-255 letters, digits, '-', '_')")
    model = _ecs_model()
    lists: dict[str, list[dict[str, Any]]] = {}
    for key, shape_name in STATE_LISTS.items():
        raw = doc.get(key, [])
        lists[key] = _shaped(raw, _ListOf(model.shape_for(shape_name)), f"{path}: {key}")
    for (key, field), allowed in _STATUSES.items():
        for i, entry in enumerate(lists[key]):
            if field in entry and entry[field] not in allowed:
                raise InputError(f"{path}: {key}[{i}].{field}",
                                 f"expected one of {', '.join(allowed)}, got {str(entry[field])[:40]!r}")
    known_defs: set[str] = set()
    for i, td in enumerate(lists["taskDefinitions"]):
        _unique(known_defs, _text(td, "taskDefinitionArn", f"{path}: taskDefinitions[{i}]"),
                f"{path}: taskDefinitions[{i}].taskDefinitionArn")
    seen_arns: set[str] = set()
    seen_ids: set[str] = set()
    for i, inst in enumerate(lists["containerInstances"]):
        where = f"{path}: containerInstances[{i}]"
        _unique(seen_arns, _identity(inst, "containerInstanceArn", ContainerInstanceArn, where),
                f"{where}.containerInstanceArn")
        _unique(seen_ids, _identity(inst, "ec2InstanceId", InstanceId, where, required=False),
                f"{where}.ec2InstanceId")
    seen_tasks: set[str] = set()
    for i, task in enumerate(lists["tasks"]):
        where = f"{path}: tasks[{i}]"
        _unique(seen_tasks, _identity(task, "taskArn", TaskArn, where), f"{where}.taskArn")
        _identity(task, "containerInstanceArn", ContainerInstanceArn, where, required=False)
        if _text(task, "taskDefinitionArn", where) not in known_defs:
            raise InputError(f"{where}.taskDefinitionArn", f"{task['taskDefinitionArn']} is not in taskDefinitions")
    seen_services: set[str] = set()
    for i, svc in enumerate(lists["services"]):
        where = f"{path}: services[{i}]"
        _unique(seen_services, _identity(svc, "serviceArn", ServiceArn, where), f"{where}.serviceArn")
        _text(svc, "serviceName", where)
        definition = svc.get("taskDefinition")
        if definition is None and svc.get("schedulingStrategy") == "DAEMON":
            raise InputError(f"{where}.taskDefinition", "required for a DAEMON service")
        if definition is not None and definition not in known_defs:
            raise InputError(f"{where}.taskDefinition", f"{definition} is not in taskDefinitions")
    _check_ranges(lists, path)
    return Snapshot(cluster, lists["containerInstances"], lists["tasks"], lists["services"],
                    lists["taskDefinitions"])


def _ranged(entry: Mapping[str, Any], field: str, where: str, name: str | None = None) -> None:
    """`entry[field]`, when present, within the range ECS documents for `name` (default: `field`)."""
    if entry.get(field) is not None:
        try:
            ranges.check(name or field, entry[field])
        except ranges.OutOfRange as refused:
            raise InputError(f"{where}.{field}", str(refused)) from None


def _check_ranges(lists: Mapping[str, list[dict[str, Any]]], path: str) -> None:
    """Every number the guard plans with within the range ECS documents (`core.ranges`): a snapshot
    holding another was not written by ECS, and replay would plan with nonsense."""
    for i, td in enumerate(lists["taskDefinitions"]):
        where = f"{path}: taskDefinitions[{i}]"
        for field in ("cpu", "memory"):
            _ranged(td, field, where)
        for k, container in enumerate(td.get("containerDefinitions", [])):
            for field, name in (("cpu", "cpu"), ("memory", "memory"), ("memoryReservation", "memory"),
                                ("stopTimeout", "stopTimeout")):
                _ranged(container, field, f"{where}.containerDefinitions[{k}]", name)
    for i, task in enumerate(lists["tasks"]):
        for field in ("cpu", "memory"):
            _ranged(task, field, f"{path}: tasks[{i}]")
    for i, svc in enumerate(lists["services"]):
        where = f"{path}: services[{i}]"
        for field in ("desiredCount", "runningCount", "pendingCount"):
            _ranged(svc, field, where)
        for field in ("minimumHealthyPercent", "maximumPercent"):
            _ranged(svc.get("deploymentConfiguration", {}), field, f"{where}.deploymentConfiguration")


@dataclass(frozen=True)
class _ListOf:
    """A list shape made on the spot (botocore names no list of TaskDefinition)."""

    member: Any
    type_name: str = "list"


EMPTY = Snapshot(None, [], [], [], [])


def snapshot_ecs(state: Snapshot, agent_stop_timeout_s: int = 30) -> SnapshotEcs:
    """The ECS port over a validated snapshot (any cluster asked for reads it: a snapshot is one cluster's)."""
    return SnapshotEcs(state.container_instances, state.tasks, state.services, state.task_definitions,
                       agent_stop_timeout_s)


class ListSink:
    """Metrics recorded in memory (replay prints only its decision)."""

    def __init__(self) -> None:
        self.values: list[tuple[str, float, str]] = []

    def emit(self, spec: Any, value: float, cluster: str, **dimensions: str) -> None:
        """Record one value."""
        self.values.append((spec.name, value, cluster))


def replay(event: Any, config: Config, state: Snapshot | Mapping[str, Any] | None,
           home: Home | None = None) -> dict[str, Any]:
    """The intake's decision for `event`, computed with reads from `state` and no writes.

    `state` is a validated `Snapshot` (a raw mapping is validated first); `home` (default: the
    configuration's) decides which events are foreign, as the Lambda's own ARN does once deployed.
    """
    snapshot = state if isinstance(state, Snapshot) else EMPTY if state is None else validate_state(state)
    home = home or config.home
    when = _event_time(event)
    runtime = bootstrap.build(
        config, ecs=lambda _cluster: snapshot_ecs(snapshot, config.agent_stop_timeout_s), autoscaling=NoGroups(),
        metrics=ListSink(), dry_run=True, clock=(lambda: when) if when is not None else bootstrap.utc_now,
        home=LearntHome(account=home.account, region=home.region,
                        partition=home.partition or (partition_of_region(home.region) if home.region else None)))
    return with_planned_steps(handle(event, runtime).as_dict(), runtime)


def with_planned_steps(result: dict[str, Any], runtime: Runtime) -> dict[str, Any]:
    """A drain the intake would start, previewed from the snapshot: its planned steps, in order."""
    start = next((a for a in result.get("actions", []) if a.get("type") == "StartWorkflow"
                  and a.get("workflow") == "drain"), None)
    if start is None or "plannedSteps" in result:
        return result
    request = DrainRequest.from_payload(start["payload"])
    place = budget_place(runtime, request, take=True)  # its place in the drain budget's line, when configured
    return {**result, "plannedSteps": steps_json(preview(runtime, request))} | ({"drainBudget": place} if place else {})


def _event_time(event: Any) -> datetime | None:
    parsed = parse_event(event)
    time = getattr(parsed, "time", None)
    return time if isinstance(time, datetime) else None
