"""`daemon-guard replay`: one event through the Lambda's own intake and planning, with no AWS writes.

A drain trigger (terminate lifecycle action, Spot warning, ...) also gets ``plannedSteps``: the
drain's steps in order, previewed from the snapshot (`daemon_guard.core.drain_preview`).

Reads come from a STATE.json snapshot (DescribeContainerInstances / DescribeTasks / DescribeServices /
DescribeTaskDefinition shapes) served to the real boto3 ECS client through the simulator's wire
layer, so the code path is the Lambda's, request serialisation included. Writes are refused.

STATE.json: ``{"cluster": "prod", "containerInstances": [...], "tasks": [...], "services": [...],
"taskDefinitions": [...]}`` (each list in the API's output shape; datetimes as ISO 8601 strings).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from daemon_guard.core.config import Config, parse_config
from daemon_guard.core.drain import DrainRequest
from daemon_guard.core.events import ContainerInstanceChanged, LifecycleAction, ServiceAction, TaskChanged
from daemon_guard.handlers.drain_preview import preview, steps_json
from daemon_guard.handlers.intake import handle
from daemon_guard.handlers.parsing import parse_event
from daemon_guard.handlers.runtime import Runtime

from sim.errors import SimApiError
from sim.wire import make_client

READS = {"DescribeContainerInstances", "ListContainerInstances", "ListTasks", "DescribeTasks", "ListServices",
         "DescribeServices", "DescribeTaskDefinition", "GetTaskProtection", "ListTagsForResource",
         "DescribeAutoScalingGroups", "DescribeAutoScalingInstances"}


def _dates(value: Any) -> Any:
    """ISO 8601 strings under keys ending in `At`/`Date` become datetimes (the output shape's type)."""
    if isinstance(value, dict):
        return {k: (datetime.fromisoformat(v.replace("Z", "+00:00"))
                    if isinstance(v, str) and (k.endswith("At") or k.endswith("Date")) else _dates(v))
                for k, v in value.items()}
    if isinstance(value, list):
        return [_dates(v) for v in value]
    return value


class SnapshotBackend:
    """Serves ECS reads from a snapshot; any write is refused (replay makes no AWS writes)."""

    def __init__(self, state: Mapping[str, Any]) -> None:
        self.instances = _dates(list(state.get("containerInstances", [])))
        self.tasks = _dates(list(state.get("tasks", [])))
        self.services = _dates(list(state.get("services", [])))
        self.task_defs = {td["taskDefinitionArn"]: td for td in state.get("taskDefinitions", [])}

    def call(self, service: str, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """Answer one read."""
        if operation not in READS:
            raise SimApiError("AccessDenied", f"replay makes no AWS writes ({service}:{operation} refused)", 403)
        if operation == "DescribeContainerInstances":
            wanted = set(params.get("containerInstances", []))
            found = [i for i in self.instances if i["containerInstanceArn"] in wanted]
            known = {i["containerInstanceArn"] for i in found}
            return {"containerInstances": found,
                    "failures": [{"arn": a, "reason": "MISSING"} for a in sorted(wanted - known)]}
        if operation == "ListContainerInstances":
            filt = params.get("filter", "")
            status = params.get("status")
            arns = [i["containerInstanceArn"] for i in self.instances
                    if (not status or i.get("status") == status)
                    and (not filt.startswith("ec2InstanceId ==")
                         or i.get("ec2InstanceId") == filt.split("==")[1].strip())]
            return {"containerInstanceArns": arns}
        if operation == "ListTasks":
            desired = params.get("desiredStatus", "RUNNING")
            arns = [t["taskArn"] for t in self.tasks
                    if t.get("desiredStatus") == desired
                    and (not params.get("containerInstance")
                         or t.get("containerInstanceArn") == params["containerInstance"])
                    and (not params.get("serviceName") or t.get("group") == f"service:{params['serviceName']}")]
            return {"taskArns": arns}
        if operation == "DescribeTasks":
            wanted = set(params.get("tasks", []))
            return {"tasks": [t for t in self.tasks if t["taskArn"] in wanted], "failures": []}
        if operation == "ListServices":
            strategy = params.get("schedulingStrategy")
            return {"serviceArns": [s["serviceArn"] for s in self.services
                                    if not strategy or s.get("schedulingStrategy") == strategy]}
        if operation == "DescribeServices":
            wanted = set(params.get("services", []))
            return {"services": [s for s in self.services if s["serviceArn"] in wanted or s["serviceName"] in wanted],
                    "failures": []}
        if operation == "DescribeTaskDefinition":
            td = self.task_defs.get(params["taskDefinition"])
            if td is None:
                raise SimApiError("ClientException", f"task definition {params['taskDefinition']} not in the snapshot")
            return {"taskDefinition": td}
        if operation == "GetTaskProtection":
            return {"protectedTasks": [{"taskArn": a, "protectionEnabled": False} for a in params.get("tasks", [])]}
        if operation == "DescribeAutoScalingGroups":
            return {"AutoScalingGroups": []}
        return {"AutoScalingInstances": []} if operation == "DescribeAutoScalingInstances" else {"tags": []}


class ListSink:
    """Metrics recorded in memory (replay prints only its decision)."""

    def __init__(self) -> None:
        self.values: list[tuple[str, float, str]] = []

    def emit(self, spec: Any, value: float, cluster: str, **dimensions: str) -> None:
        """Record one value."""
        self.values.append((spec.name, value, cluster))


def load_config(path: str | None, event: Any) -> Config:
    """--config (a daemon-guard document or a whole cdk.json), else ./cdk.json, else what the event names."""
    candidate = Path(path) if path else Path("cdk.json")
    if path or candidate.exists():
        doc = json.loads(candidate.read_text())
        if isinstance(doc, dict) and "context" in doc:
            doc = doc["context"].get("daemon-guard", {})
        return parse_config(doc)
    parsed = parse_event(event)
    cluster = "default"
    group: list[str] = []
    if isinstance(parsed, ContainerInstanceChanged | TaskChanged | ServiceAction):
        cluster = parsed.cluster_arn.rsplit("/", 1)[-1]
    if isinstance(parsed, LifecycleAction):
        group = [parsed.asg_name]
    return parse_config({"clusters": [{"name": cluster, "autoScalingGroups": group}]})


def replay(event: Any, config: Config, state: Mapping[str, Any] | None) -> dict[str, Any]:
    """The intake's decision for `event`, computed with reads from `state` and no writes."""
    backend = SnapshotBackend(state or {})
    runtime = Runtime(config=config, ecs_client=make_client("ecs", backend),
                      autoscaling_client=make_client("autoscaling", backend), metrics=ListSink(), dry_run=True)
    when = _event_time(event)
    if when is not None:
        runtime.clock = lambda: when
    return with_planned_steps(handle(event, runtime), runtime)


def with_planned_steps(result: dict[str, Any], runtime: Runtime) -> dict[str, Any]:
    """A drain the intake would start, previewed from the snapshot: its planned steps, in order."""
    start = next((a for a in result.get("actions", []) if a.get("type") == "StartWorkflow"
                  and a.get("workflow") == "drain"), None)
    if start is None or "plannedSteps" in result:
        return result
    payload = {k: v for k, v in start["payload"] if v is not None}
    return {**result, "plannedSteps": steps_json(preview(runtime, DrainRequest.from_payload(payload)))}


def _event_time(event: Any) -> datetime | None:
    parsed = parse_event(event)
    time = getattr(parsed, "time", None)
    return time if isinstance(time, datetime) else None
