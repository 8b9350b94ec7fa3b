"""The ECS API of the simulator: the operations daemon-guard calls, with ECS's limits and throttling.

Requests arrive as the input shapes boto3 users pass (decoded by sim.wire); responses are the
output shapes botocore parses. Real limits: DescribeTasks 100, DescribeContainerInstances 100,
DescribeServices 10, UpdateContainerInstancesState 10, GetTaskProtection 10, PutAttributes 10,
list pages of at most 100. Throttling: token buckets per ECS's published rates (burst / refill per
second): cluster reads 100/20, cluster modifies 100/40, service reads 100/20, service modifies 50/5,
task-definition reads 100/20 (an assumption: ECS publishes no separate figure), task modifies
(StopTask, RunTask, StartTask) 100/40 (ECS groups them with cluster modifies; kept separate here
so that evictions and drains do not starve each other in the model).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from sim.cluster_query import CqlError, compile_query
from sim.ecs import EcsSim, SimInstance, SimService, SimTask
from sim.errors import SimApiError, UnsupportedOperation


@dataclass
class TokenBucket:
    """Burst capacity refilled at `rate` tokens per simulated second."""

    burst: float
    rate: float
    tokens: float = -1.0
    updated: float = 0.0

    def take(self, now: float) -> bool:
        """Spend one token if there is one (tokens spent by a caller ahead in time stay spent)."""
        if self.tokens < 0:
            self.tokens, self.updated = self.burst, now
        if now > self.updated:
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


BUCKETS: dict[str, tuple[float, float]] = {
    "cluster-read": (100, 20), "cluster-modify": (100, 40), "service-read": (100, 20),
    "service-modify": (50, 5), "taskdef-read": (100, 20), "task-modify": (100, 40),
}
CATEGORY: dict[str, str] = {
    "ListContainerInstances": "cluster-read", "DescribeContainerInstances": "cluster-read",
    "ListTasks": "cluster-read", "DescribeTasks": "cluster-read", "ListAttributes": "cluster-read",
    "GetTaskProtection": "cluster-read", "ListTagsForResource": "cluster-read",
    "DescribeClusters": "cluster-read", "DescribeCapacityProviders": "cluster-read",
    "UpdateContainerInstancesState": "cluster-modify", "PutAttributes": "cluster-modify",
    "DeleteAttributes": "cluster-modify",
    "ListServices": "service-read", "DescribeServices": "service-read", "UpdateService": "service-modify",
    "DescribeTaskDefinition": "taskdef-read",
    "StopTask": "task-modify", "RunTask": "task-modify", "StartTask": "task-modify",
    "UpdateTaskProtection": "task-modify",
}


@dataclass(frozen=True)
class ApiFaults:
    """Injected API faults: throttles and 5xx errors on a share of calls (seeded)."""

    throttle_rate: float = 0.0
    server_error_rate: float = 0.0
    # The share of each rate bucket (burst and refill) left to the guard; the rest is the account's other
    # traffic (sim.params, api_rate_share).
    rate_share: float = 1.0


def _page(items: list[str], params: dict[str, Any], default: int = 100, limit: int = 100) -> dict[str, Any]:
    size = params.get("maxResults", default)
    if not 1 <= size <= limit:
        raise SimApiError("InvalidParameterException", f"maxResults must be between 1 and {limit}.")
    token = params.get("nextToken")
    start = 0
    if token:
        try:
            start = int(token)
        except ValueError:
            raise SimApiError("InvalidParameterException", "Invalid nextToken.") from None
    out: dict[str, Any] = {"page": items[start:start + size]}
    if start + size < len(items):
        out["nextToken"] = str(start + size)
    return out


def _resources(inst: SimInstance, remaining: bool) -> list[dict[str, Any]]:
    res = inst.remaining if remaining else inst.registered
    used = sorted(str(p.port) for p in inst.used_ports if p.protocol == "tcp") if remaining else \
        ["22", "2375", "2376", "51678", "51679"]
    udp = sorted(str(p.port) for p in inst.used_ports if p.protocol == "udp") if remaining else []
    return [
        {"name": "CPU", "type": "INTEGER", "doubleValue": 0.0, "longValue": 0, "integerValue": res.cpu},
        {"name": "MEMORY", "type": "INTEGER", "doubleValue": 0.0, "longValue": 0, "integerValue": res.memory},
        {"name": "PORTS", "type": "STRINGSET", "doubleValue": 0.0, "longValue": 0, "integerValue": 0,
         "stringSetValue": used},
        {"name": "PORTS_UDP", "type": "STRINGSET", "doubleValue": 0.0, "longValue": 0, "integerValue": 0,
         "stringSetValue": udp},
    ]


class EcsApi:
    """Serves ECS operations against an `EcsSim`; `call` is the wire backend entry point."""

    def __init__(self, ecs: EcsSim, rng: random.Random | None = None, faults: ApiFaults | None = None,
                 throttling: bool = True) -> None:
        self.ecs = ecs
        self.rng = rng or random.Random(0)
        self.faults = faults or ApiFaults()
        self.throttling = throttling
        share = self.faults.rate_share
        self.buckets = {k: TokenBucket(burst * share, rate * share) for k, (burst, rate) in BUCKETS.items()}
        self.calls: dict[str, int] = {}
        self._listings: dict[str, list[str]] = {}  # ListContainerInstances listings still being paged
        self._listed = 0
        self.throttled = 0
        self.faults_injected = 0
        # Seconds the current caller has slept in retry backoff: its clock runs ahead of the world's.
        self.caller_offset = 0.0
        self._ops: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "ListContainerInstances": self.list_container_instances,
            "DescribeContainerInstances": self.describe_container_instances,
            "ListServices": self.list_services, "DescribeServices": self.describe_services,
            "DescribeTaskDefinition": self.describe_task_definition, "ListTasks": self.list_tasks,
            "DescribeTasks": self.describe_tasks, "StopTask": self.stop_task,
            "UpdateContainerInstancesState": self.update_container_instances_state,
            "PutAttributes": self.put_attributes, "DeleteAttributes": self.delete_attributes,
            "ListAttributes": self.list_attributes, "GetTaskProtection": self.get_task_protection,
            "RunTask": self.run_task, "StartTask": self.start_task,
            "ListTagsForResource": self.list_tags_for_resource, "UpdateService": self.update_service,
            "DescribeClusters": self.describe_clusters, "DescribeCapacityProviders": self.describe_capacity_providers,
        }

    def call(self, service: str, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """Serve one ECS call, after throttling and fault injection."""
        handler = self._ops.get(operation)
        if service != "ecs" or handler is None:
            raise UnsupportedOperation(service, operation)
        self.calls[operation] = self.calls.get(operation, 0) + 1
        now = self.ecs.clock.now + self.caller_offset
        if self.faults.server_error_rate and self.rng.random() < self.faults.server_error_rate:
            self.faults_injected += 1
            raise SimApiError("ServerException", "Service unavailable (injected).", 500)
        if self.faults.throttle_rate and self.rng.random() < self.faults.throttle_rate:
            self.faults_injected += 1
            self.throttled += 1
            raise SimApiError("ThrottlingException", "Rate exceeded")
        if self.throttling and not self.buckets[CATEGORY[operation]].take(now):
            self.throttled += 1
            raise SimApiError("ThrottlingException", "Rate exceeded")
        return handler(params)

    # ---- shapes ---------------------------------------------------------------------------------
    def _instance_shape(self, inst: SimInstance, include_tags: bool = False) -> dict[str, Any]:
        live = self.ecs.live_tasks(inst)
        out: dict[str, Any] = {
            "containerInstanceArn": inst.arn, "ec2InstanceId": inst.ec2_instance_id,
            "version": inst.version,
            "versionInfo": {"agentVersion": inst.agent_version, "agentHash": "4a1b2c3d",
                            "dockerVersion": "DockerVersion: 25.0.8"},
            "remainingResources": _resources(inst, True), "registeredResources": _resources(inst, False),
            "status": inst.status, "agentConnected": inst.agent_connected,
            "runningTasksCount": sum(t.last_status == "RUNNING" for t in live),
            "pendingTasksCount": sum(t.last_status != "RUNNING" for t in live),
            "attributes": [{"name": k, **({"value": v} if v is not None else {})}
                           for k, v in sorted(inst.attributes.items())],
            "registeredAt": self.ecs.clock.datetime(inst.registered_at),
            "attachments": [],
        }
        if inst.status_reason:
            out["statusReason"] = inst.status_reason
        if include_tags:
            out["tags"] = []
        return out

    @staticmethod
    def container_arn(task: SimTask, name: str) -> str:
        """The ARN of one of the task's containers, the same in DescribeTasks and in task events."""
        return f"{task.arn.replace(':task/', ':container/')}/{name}"

    def _task_shape(self, task: SimTask) -> dict[str, Any]:
        td = self.ecs.task_defs[task.task_definition]
        inst = self.ecs.instances[task.container_instance]
        dt = self.ecs.clock.datetime
        out: dict[str, Any] = {
            "taskArn": task.arn, "clusterArn": self.ecs.cluster_arn(task.cluster),
            "taskDefinitionArn": task.task_definition, "containerInstanceArn": task.container_instance,
            "lastStatus": task.last_status, "desiredStatus": task.desired_status, "group": task.group,
            "launchType": "EC2", "cpu": str(td.cpu), "memory": str(td.memory), "version": task.version,
            "createdAt": dt(task.created_at), "overrides": {"containerOverrides": []},
            "availabilityZone": inst.attributes.get("ecs.availability-zone") or "us-east-1a",
            "containers": [{"containerArn": self.container_arn(task, c["name"]),
                            "taskArn": task.arn, "name": c["name"], "lastStatus": task.last_status,
                            "networkBindings": [], "cpu": str(c.get("cpu", 0)),
                            **({"memory": str(c["memory"])} if c.get("memory") else {})}
                           for c in td.containers],
            "attributes": [], "tags": [],
        }
        if task.started_by:
            out["startedBy"] = task.started_by
        if task.started_at is not None:
            out["startedAt"] = dt(task.started_at)
        if task.stopping_at is not None:
            out["stoppingAt"] = dt(task.stopping_at)
            out["stoppedReason"] = task.stopped_reason
            if task.stop_code:
                out["stopCode"] = task.stop_code
        if task.stopped_at is not None:
            out["stoppedAt"] = dt(task.stopped_at)
            out["executionStoppedAt"] = dt(task.stopped_at)
        return out

    def _service_shape(self, svc: SimService, tags: bool) -> dict[str, Any]:
        running, pending = self.ecs.service_counts(svc)
        desired = svc.desired_count
        if svc.strategy == "DAEMON":
            desired = running + pending
        out: dict[str, Any] = {
            "serviceArn": svc.arn, "serviceName": svc.name, "clusterArn": self.ecs.cluster_arn(svc.cluster),
            "status": svc.status, "desiredCount": desired, "runningCount": running, "pendingCount": pending,
            "launchType": "EC2", "taskDefinition": svc.task_definition,
            "deploymentConfiguration": {"maximumPercent": svc.maximum_percent,
                                        "minimumHealthyPercent": svc.minimum_healthy_percent},
            "placementConstraints": [dict(c) for c in svc.constraints],
            "placementStrategy": [dict(s) for s in svc.placement_strategy],
            "schedulingStrategy": svc.strategy, "createdAt": self.ecs.clock.datetime(svc.created_at),
            "events": [], "deployments": [],
        }
        if tags:
            out["tags"] = [{"key": k, "value": v} for k, v in sorted(svc.tags.items())]
        return out

    # ---- lookups --------------------------------------------------------------------------------
    def _instance(self, cluster: str, ref: str) -> SimInstance | None:
        arn = ref if ref.startswith("arn:") else self.ecs.arn("container-instance", f"{cluster}/{ref}")
        inst = self.ecs.instances.get(arn)
        return inst if inst is not None and inst.cluster == cluster else None

    def _task(self, cluster: str, ref: str) -> SimTask | None:
        arn = ref if ref.startswith("arn:") else self.ecs.arn("task", f"{cluster}/{ref}")
        task = self.ecs.tasks.get(arn)
        return task if task is not None and task.cluster == cluster else None

    @staticmethod
    def _limit(items: list[Any], limit: int, what: str) -> None:
        if len(items) > limit:
            raise SimApiError("InvalidParameterException", f"{what} cannot have more than {limit} items.")
        if not items:
            raise SimApiError("InvalidParameterException", f"{what} can not be empty.")

    # ---- operations -----------------------------------------------------------------------------
    def list_container_instances(self, p: dict[str, Any]) -> dict[str, Any]:
        """ListContainerInstances with `filter` (cluster query language) and `status`."""
        cluster = self.ecs.resolve_cluster(p.get("cluster"))
        status = p.get("status")
        expr = None
        if p.get("filter"):
            try:
                expr = compile_query(p["filter"])
            except CqlError as exc:
                raise SimApiError("InvalidParameterException", f"Invalid filter: {exc}") from None
        token = str(p.get("nextToken") or "")
        if token:
            listing, _, offset = token.partition(":")
            if not offset.isdigit() or listing not in self._listings:
                raise SimApiError("InvalidParameterException", "Invalid nextToken.")
            arns = self._listings[listing]
        else:
            # One evaluation per listing, its pages served from it (a token names the listing and where it
            # stands): evaluating the filter over the whole cluster again for each page made listings quadratic.
            arns, offset = [], ""
            for inst in self.ecs.in_cluster[cluster].values():
                if inst.status == "INACTIVE":
                    continue
                if status and inst.status != status:
                    continue
                if expr is not None and not expr(self.ecs.facts(inst)):
                    continue
                arns.append(inst.arn)
            self._listed += 1
            listing = str(self._listed)
        page = _page(arns, {**p, "nextToken": offset or None})
        if "nextToken" in page:
            self._listings[listing] = arns
            page["nextToken"] = f"{listing}:{page['nextToken']}"
        else:
            self._listings.pop(listing, None)
        return {"containerInstanceArns": page.pop("page"), **page}

    def describe_container_instances(self, p: dict[str, Any]) -> dict[str, Any]:
        """DescribeContainerInstances, at most 100 per call; unknown ARNs come back as failures."""
        cluster = self.ecs.resolve_cluster(p.get("cluster"))
        refs = p.get("containerInstances", [])
        self._limit(refs, 100, "containerInstances")
        found, failures = [], []
        for ref in refs:
            inst = self._instance(cluster, ref)
            if inst is None:
                failures.append({"arn": ref, "reason": "MISSING"})
            else:
                found.append(self._instance_shape(inst, "TAGS" in p.get("include", [])))
        return {"containerInstances": found, "failures": failures}

    def list_services(self, p: dict[str, Any]) -> dict[str, Any]:
        """ListServices, optionally by schedulingStrategy; 10 per page by default, 100 at most."""
        cluster = self.ecs.resolve_cluster(p.get("cluster"))
        strategy = p.get("schedulingStrategy")
        arns = [s.arn for s in self.ecs.services.values()
                if s.cluster == cluster and s.status == "ACTIVE" and (not strategy or s.strategy == strategy)]
        page = _page(arns, p, default=10)
        return {"serviceArns": page.pop("page"), **page}

    def describe_services(self, p: dict[str, Any]) -> dict[str, Any]:
        """DescribeServices, at most 10 per call; `include: ["TAGS"]` adds tags."""
        cluster = self.ecs.resolve_cluster(p.get("cluster"))
        refs = p.get("services", [])
        self._limit(refs, 10, "services")
        found, failures = [], []
        for ref in refs:
            arn = ref if ref.startswith("arn:") else self.ecs.arn("service", f"{cluster}/{ref}")
            svc = self.ecs.services.get(arn)
            if svc is None or svc.cluster != cluster:
                failures.append({"arn": ref, "reason": "MISSING"})
            else:
                found.append(self._service_shape(svc, "TAGS" in p.get("include", [])))
        return {"services": found, "failures": failures}

    def update_service(self, p: dict[str, Any]) -> dict[str, Any]:
        """UpdateService, placementConstraints only (the list is replaced; an empty list removes them all; no
        new deployment). As documented: at most 10 constraints per task, the task definition's included;
        ``memberOf`` needs a valid cluster query expression, ``distinctInstance`` takes none."""
        unsupported = set(p) - {"cluster", "service", "placementConstraints"}
        if unsupported:
            raise UnsupportedOperation("ecs", f"UpdateService with {', '.join(sorted(unsupported))}")
        cluster = self.ecs.resolve_cluster(p.get("cluster"))
        svc = self.ecs.service_named(cluster, str(p.get("service", "")).rsplit("/", 1)[-1])
        if svc.status != "ACTIVE":
            raise SimApiError("ServiceNotActiveException", "Service was not ACTIVE.")
        if "placementConstraints" in p:
            constraints = [dict(c) for c in p["placementConstraints"]]
            for c in constraints:
                if c.get("type") == "distinctInstance" and c.get("expression"):
                    raise SimApiError("InvalidParameterException",
                                      "distinctInstance placement constraint can not have an expression.")
                if c.get("type") == "memberOf":
                    try:
                        compile_query(c.get("expression", ""))
                    except CqlError as exc:
                        raise SimApiError("InvalidParameterException", f"Invalid expression: {exc}") from None
            if len(constraints) + len(self.ecs.task_defs[svc.task_definition].constraints) > 10:
                raise SimApiError("InvalidParameterException",
                                  "Too many placement constraints: at most 10 per task, task definition included.")
            self.ecs.update_service_constraints(svc, constraints)
        return {"service": self._service_shape(svc, tags=False)}

    def describe_clusters(self, p: dict[str, Any]) -> dict[str, Any]:
        """DescribeClusters: each cluster with the capacity providers attached to it."""
        found, failures = [], []
        for ref in p.get("clusters") or ["default"]:
            name = ref.rsplit("/", 1)[-1]
            if name not in self.ecs.clusters:
                failures.append({"arn": ref, "reason": "MISSING"})
                continue
            found.append({"clusterArn": self.ecs.cluster_arn(name), "clusterName": name, "status": "ACTIVE",
                          "capacityProviders": sorted(c.name for c in self.ecs.capacity_providers.values()
                                                      if c.cluster == name),
                          "registeredContainerInstancesCount": sum(
                              1 for i in self.ecs.in_cluster[name].values() if i.status != "INACTIVE"),
                          "activeServicesCount": sum(1 for s in self.ecs.services.values()
                                                     if s.cluster == name and s.status == "ACTIVE")})
        return {"clusters": found, "failures": failures}

    def describe_capacity_providers(self, p: dict[str, Any]) -> dict[str, Any]:
        """DescribeCapacityProviders by name or ARN (Auto Scaling group providers)."""
        found, failures = [], []
        for ref in p.get("capacityProviders") or sorted(self.ecs.capacity_providers):
            provider = self.ecs.capacity_providers.get(ref.rsplit("/", 1)[-1])
            if provider is None:
                failures.append({"arn": ref, "reason": "MISSING"})
                continue
            found.append({"capacityProviderArn": provider.arn, "name": provider.name, "status": "ACTIVE",
                          "autoScalingGroupProvider": {
                              "autoScalingGroupArn": provider.auto_scaling_group_arn,
                              "managedTerminationProtection": "DISABLED",
                              "managedDraining": "ENABLED" if provider.managed_draining else "DISABLED"}})
        return {"capacityProviders": found, "failures": failures}

    def describe_task_definition(self, p: dict[str, Any]) -> dict[str, Any]:
        """DescribeTaskDefinition by ARN or family:revision (or family for the latest)."""
        ref = p.get("taskDefinition", "")
        td = self.ecs.task_defs.get(ref)
        if td is None:
            family, _, rev = ref.rsplit("/", 1)[-1].partition(":")
            revision = int(rev) if rev.isdigit() else self.ecs.families.get(family, 0)
            td = self.ecs.task_defs.get(self.ecs.arn("task-definition", f"{family}:{revision}"))
        if td is None:
            raise SimApiError("ClientException", "Unable to describe task definition.")
        return {"taskDefinition": {
            "taskDefinitionArn": td.arn, "family": td.family, "revision": td.revision,
            "networkMode": td.network_mode, "status": "ACTIVE", "cpu": str(td.cpu), "memory": str(td.memory),
            "requiresCompatibilities": ["EC2"], "compatibilities": ["EC2"],
            "placementConstraints": [dict(c) for c in td.constraints],
            "containerDefinitions": [
                {"name": c["name"], "image": c.get("image", f"public.ecr.aws/example/{c['name']}:latest"),
                 "cpu": int(c.get("cpu", 0)), "essential": True,
                 **({"memory": int(c["memory"])} if c.get("memory") else {}),
                 **({"memoryReservation": int(c["memoryReservation"])} if c.get("memoryReservation") else {}),
                 "portMappings": [{"containerPort": int(m["containerPort"]),
                                   "hostPort": int(m.get("hostPort", 0)),
                                   "protocol": m.get("protocol", "tcp")} for m in c.get("portMappings", [])],
                 **({"stopTimeout": td.stop_timeout_s} if td.stop_timeout_s is not None else {})}
                for c in td.containers],
        }}

    def list_tasks(self, p: dict[str, Any]) -> dict[str, Any]:
        """ListTasks by containerInstance, serviceName, family, startedBy and desiredStatus.

        As in ECS, `desiredStatus` filters on the desired status (default RUNNING); PENDING is
        accepted and matches nothing, since ECS only ever sets a task's lastStatus to PENDING.
        """
        cluster = self.ecs.resolve_cluster(p.get("cluster"))
        desired = p.get("desiredStatus", "RUNNING")
        if desired not in ("RUNNING", "PENDING", "STOPPED"):
            raise SimApiError("InvalidParameterException", "desiredStatus must be RUNNING, PENDING or STOPPED.")
        if p.get("serviceName") and (p.get("family") or p.get("startedBy")):
            raise SimApiError("InvalidParameterException",
                              "serviceName may not be specified with family or startedBy.")
        source: list[SimTask]
        if p.get("containerInstance"):
            inst = self._instance(cluster, p["containerInstance"])
            if inst is None:
                raise SimApiError("InvalidParameterException", "Container instance not found.")
            source = [self.ecs.tasks[a] for a in inst.tasks]
        elif p.get("serviceName"):
            svc = self.ecs.service_named(cluster, p["serviceName"].rsplit("/", 1)[-1])
            source = list(self.ecs.live_by_group[(cluster, f"service:{svc.name}")].values())
            if desired == "STOPPED":
                source = [t for t in self.ecs.tasks.values()
                          if t.cluster == cluster and t.group == f"service:{svc.name}"]
        else:
            source = [t for t in self.ecs.tasks.values() if t.cluster == cluster]
        now = self.ecs.clock.now
        arns: list[str] = []
        for t in source:
            if desired == "STOPPED":
                if t.desired_status != "STOPPED" or (t.stopped_at is not None and
                                                     now - t.stopped_at > self.ecs.params.stopped_task_retention_s):
                    continue
            elif desired == "PENDING":
                # ECS accepts PENDING but never sets a task's desired status to it: no results.
                continue
            elif t.desired_status != "RUNNING":
                continue
            if p.get("startedBy") and t.started_by != p["startedBy"]:
                continue
            if p.get("family") and self.ecs.task_defs[t.task_definition].family != p["family"]:
                continue
            arns.append(t.arn)
        page = _page(arns, p)
        return {"taskArns": page.pop("page"), **page}

    def describe_tasks(self, p: dict[str, Any]) -> dict[str, Any]:
        """DescribeTasks, at most 100 per call."""
        cluster = self.ecs.resolve_cluster(p.get("cluster"))
        refs = p.get("tasks", [])
        self._limit(refs, 100, "tasks")
        found, failures = [], []
        for ref in refs:
            task = self._task(cluster, ref)
            if task is None:
                failures.append({"arn": ref, "reason": "MISSING"})
            else:
                found.append(self._task_shape(task))
        return {"tasks": found, "failures": failures}

    def stop_task(self, p: dict[str, Any]) -> dict[str, Any]:
        """StopTask: returns the task with desiredStatus STOPPED."""
        cluster = self.ecs.resolve_cluster(p.get("cluster"))
        task = self._task(cluster, p.get("task", ""))
        if task is None:
            raise SimApiError("InvalidParameterException", "The referenced task was not found.")
        self.ecs.stop_task(task, p.get("reason", "Task stopped by the user"), "UserInitiated")
        return {"task": self._task_shape(task)}

    def update_container_instances_state(self, p: dict[str, Any]) -> dict[str, Any]:
        """UpdateContainerInstancesState ACTIVE|DRAINING, at most 10 instances per call."""
        cluster = self.ecs.resolve_cluster(p.get("cluster"))
        refs = p.get("containerInstances", [])
        self._limit(refs, 10, "containerInstances")
        status = p.get("status")
        if status not in ("ACTIVE", "DRAINING"):
            raise SimApiError("InvalidParameterException", "status must be ACTIVE or DRAINING.")
        found, failures = [], []
        for ref in refs:
            inst = self._instance(cluster, ref)
            if inst is None or inst.status == "INACTIVE":
                failures.append({"arn": ref, "reason": "MISSING"})
                continue
            self.ecs.write(inst, partial(self.ecs.set_status, inst, status))
            # The answer carries the state asked for, even while the write is not yet seen elsewhere.
            found.append(self._instance_shape(inst) | {"status": status})
        return {"containerInstances": found, "failures": failures}

    def _attribute_targets(self, cluster: str, attrs: list[dict[str, Any]]) -> list[tuple[SimInstance, dict[str, Any]]]:
        self._limit(attrs, 10, "attributes")
        out = []
        for a in attrs:
            if a.get("targetType", "container-instance") != "container-instance" or not a.get("targetId"):
                raise SimApiError("InvalidParameterException", "Attributes need a container-instance targetId.")
            inst = self._instance(cluster, a["targetId"])
            if inst is None:
                raise SimApiError("TargetNotFoundException", f"Could not find {a['targetId']}.")
            out.append((inst, a))
        return out

    def put_attributes(self, p: dict[str, Any]) -> dict[str, Any]:
        """PutAttributes (10 per call, 10 custom attributes per instance)."""
        cluster = self.ecs.resolve_cluster(p.get("cluster"))
        targets = self._attribute_targets(cluster, p.get("attributes", []))
        for inst, a in targets:
            name = a["name"]
            if name.startswith("ecs."):
                raise SimApiError("InvalidParameterException", "Attributes prefixed with ecs. are reserved.")
            custom = {k for k in inst.attributes if not k.startswith("ecs.")}
            if name not in custom and len(custom) >= 10:
                raise SimApiError("AttributeLimitExceededException",
                                  "You can apply up to 10 custom attributes per resource.")
            value = a.get("value")
            self.ecs.write(inst, partial(self.ecs.set_attributes, inst, {name: value}))
        return {"attributes": p.get("attributes", [])}

    def delete_attributes(self, p: dict[str, Any]) -> dict[str, Any]:
        """DeleteAttributes (10 per call)."""
        cluster = self.ecs.resolve_cluster(p.get("cluster"))
        for inst, a in self._attribute_targets(cluster, p.get("attributes", [])):
            self.ecs.write(inst, partial(self.ecs.set_attributes, inst, {a["name"]: None}, delete=True))
        return {"attributes": p.get("attributes", [])}

    def list_attributes(self, p: dict[str, Any]) -> dict[str, Any]:
        """ListAttributes of container instances by name (and value)."""
        cluster = self.ecs.resolve_cluster(p.get("cluster"))
        if p.get("targetType") != "container-instance":
            raise SimApiError("InvalidParameterException", "targetType must be container-instance.")
        name, value = p.get("attributeName"), p.get("attributeValue")
        if value is not None and name is None:
            raise SimApiError("InvalidParameterException", "attributeValue requires attributeName.")
        items: list[dict[str, Any]] = []
        for inst in self.ecs.in_cluster[cluster].values():
            if inst.status == "INACTIVE":
                continue
            for k, v in sorted(inst.attributes.items()):
                if (name is None or k == name) and (value is None or v == value):
                    items.append({"name": k, **({"value": v} if v is not None else {}),
                                  "targetType": "container-instance", "targetId": inst.arn})
        size = p.get("maxResults", 100)
        start = int(p.get("nextToken") or 0)
        out: dict[str, Any] = {"attributes": items[start:start + size]}
        if start + size < len(items):
            out["nextToken"] = str(start + size)
        return out

    def get_task_protection(self, p: dict[str, Any]) -> dict[str, Any]:
        """GetTaskProtection for at most 10 tasks."""
        cluster = self.ecs.resolve_cluster(p.get("cluster"))
        refs = p.get("tasks", [])
        self._limit(refs, 10, "tasks")
        now = self.ecs.clock.now
        found, failures = [], []
        for ref in refs:
            task = self._task(cluster, ref)
            if task is None:
                failures.append({"arn": ref, "reason": "TASK_NOT_VALID"})
                continue
            enabled = task.protected_until is not None and task.protected_until > now
            entry: dict[str, Any] = {"taskArn": task.arn, "protectionEnabled": enabled}
            if enabled and task.protected_until is not None:
                entry["expirationDate"] = self.ecs.clock.datetime(task.protected_until)
            found.append(entry)
        return {"protectedTasks": found, "failures": failures}

    def run_task(self, p: dict[str, Any]) -> dict[str, Any]:
        """RunTask: standalone tasks placed by the simulator's placement engine (count ≤ 10)."""
        cluster = self.ecs.resolve_cluster(p.get("cluster"))
        count = p.get("count", 1)
        if not 1 <= count <= 10:
            raise SimApiError("InvalidParameterException", "count must be between 1 and 10.")
        td = self.describe_task_definition({"taskDefinition": p.get("taskDefinition", "")})["taskDefinition"]
        group = p.get("group") or f"family:{td['family']}"
        tasks, reasons = self.ecs.run_task(cluster, td["taskDefinitionArn"], count, p.get("startedBy", ""),
                                           group, constraints=p.get("placementConstraints"))
        return {"tasks": [self._task_shape(t) for t in tasks],
                "failures": [{"reason": r} for r in reasons]}

    def start_task(self, p: dict[str, Any]) -> dict[str, Any]:
        """StartTask on named container instances (≤ 10), no placement engine."""
        cluster = self.ecs.resolve_cluster(p.get("cluster"))
        refs = p.get("containerInstances", [])
        self._limit(refs, 10, "containerInstances")
        td = self.describe_task_definition({"taskDefinition": p.get("taskDefinition", "")})["taskDefinition"]
        tasks, failures = [], []
        for ref in refs:
            inst = self._instance(cluster, ref)
            if inst is None or inst.status != "ACTIVE":
                failures.append({"arn": ref, "reason": "MISSING" if inst is None else "INSTANCE_NOT_ACTIVE"})
                continue
            need = self.ecs.task_defs[td["taskDefinitionArn"]].requirements
            short = self.ecs.shortfall(need, inst.remaining, inst.used_ports)
            if short:
                failures.append({"arn": ref, "reason": short})
                continue
            tasks.append(self.ecs.place_task(inst, td["taskDefinitionArn"],
                                             p.get("group") or f"family:{td['family']}", p.get("startedBy", "")))
        return {"tasks": [self._task_shape(t) for t in tasks], "failures": failures}

    def list_tags_for_resource(self, p: dict[str, Any]) -> dict[str, Any]:
        """ListTagsForResource for services (others have none in the model)."""
        svc = self.ecs.services.get(p.get("resourceArn", ""))
        if svc is None:
            if ":service/" in p.get("resourceArn", ""):
                raise SimApiError("InvalidParameterException", "The specified resource could not be found.")
            return {"tags": []}
        return {"tags": [{"key": k, "value": v} for k, v in sorted(svc.tags.items())]}
