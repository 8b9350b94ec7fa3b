"""`daemon-guard replay`: one event through the Lambda's own intake and planning, with no AWS writes.

Reads come from a STATE.json snapshot (DescribeContainerInstances / DescribeTasks / DescribeServices /
DescribeTaskDefinition shapes) served to real boto3 clients: botocore validates every request against
the service model, then a ``before-call`` hook answers it from the snapshot (as botocore's Stubber
does), so the code path is the Lambda's. Writes are refused with AccessDenied. Nothing is sent.

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
from daemon_guard.core.events import ContainerInstanceChanged, LifecycleAction, ServiceAction, TaskChanged
from daemon_guard.handlers.intake import handle
from daemon_guard.handlers.parsing import parse_event
from daemon_guard.handlers.runtime import Runtime

READS = {"DescribeContainerInstances", "ListContainerInstances", "ListTasks", "DescribeTasks", "ListServices",
         "DescribeServices", "DescribeTaskDefinition", "GetTaskProtection", "ListTagsForResource",
         "DescribeAutoScalingGroups", "DescribeAutoScalingInstances"}


class ReplayApiError(Exception):
    """An API error the snapshot answers with: `code`, `message`, HTTP `status`."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.status = code, message, status


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
            raise ReplayApiError("AccessDenied", f"replay makes no AWS writes ({service}:{operation} refused)", 403)
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
                raise ReplayApiError("ClientException",
                                     f"task definition {params['taskDefinition']} not in the snapshot")
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


def snapshot_client(service: str, backend: SnapshotBackend) -> Any:
    """A real boto3 client whose calls are validated by botocore and answered by `backend`; none leaves."""
    import boto3
    from botocore.awsrequest import AWSResponse
    from botocore.compat import HTTPHeaders

    client = boto3.client(service, region_name="us-east-1", aws_access_key_id="replay",  # type: ignore[call-overload]
                          aws_secret_access_key="replay")
    pending: dict[str, Any] = {}

    def remember(params: dict[str, Any], **_: Any) -> None:
        pending["params"] = params

    def answer(model: Any, **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        meta = {"ResponseMetadata": {"HTTPStatusCode": 200, "RequestId": "replay"}}
        try:
            found = backend.call(service, model.name, pending.pop("params", {}))
            return AWSResponse("", 200, HTTPHeaders(), None), {**found, **meta}
        except ReplayApiError as error:
            return AWSResponse("", error.status, HTTPHeaders(), None), {
                "Error": {"Code": error.code, "Message": error.message},
                "ResponseMetadata": {**meta["ResponseMetadata"], "HTTPStatusCode": error.status}}

    service_id = client.meta.service_model.service_id.hyphenize()
    client.meta.events.register_first(f"before-parameter-build.{service_id}", remember)
    client.meta.events.register_first(f"before-call.{service_id}", answer)
    return client


def replay(event: Any, config: Config, state: Mapping[str, Any] | None) -> dict[str, Any]:
    """The intake's decision for `event`, computed with reads from `state` and no writes."""
    backend = SnapshotBackend(state or {})
    runtime = Runtime(config=config, ecs_client=snapshot_client("ecs", backend),
                      autoscaling_client=snapshot_client("autoscaling", backend), metrics=ListSink(), dry_run=True)
    when = _event_time(event)
    if when is not None:
        runtime.clock = lambda: when
    return handle(event, runtime)


def _event_time(event: Any) -> datetime | None:
    parsed = parse_event(event)
    time = getattr(parsed, "time", None)
    return time if isinstance(time, datetime) else None
