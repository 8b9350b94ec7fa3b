"""`daemon-guard status`, `snapshot` and `drain`: look at, capture, or drain a real cluster (boto3 default credentials).

`snapshot` writes the cluster as STATE.json for `replay` (the same read-only ECS calls).

`status` reads the ECS API only (ListContainerInstances, DescribeContainerInstances, ListServices,
DescribeServices, DescribeTaskDefinition, ListTasks, DescribeTasks) through the same adapter and the
same eligibility rules the Lambda code uses, and prints per-instance daemon coverage. It writes nothing.

`drain` asks the deployed drain workflow to drain one instance, as an operator would: it checks that
the EC2 instance is a container instance of the cluster, then starts it the intake's way
(`services.starts.claim_and_start`): the instance is claimed in the state table (--state-table or
$STATE_TABLE), so a drain already running there is joined rather than doubled, and the workflow's alias
is invoked with a DurableExecutionName, so that repeating the exact request starts nothing new.

Exit codes: 0 all well (every eligible daemon RUNNING / drain requested), 1 some daemon missing,
2 an error, explained in one line on stderr (no credentials, no region, cluster not found, access
denied, ...).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError
from daemon_guard.adapters.ecs import EcsCluster
from daemon_guard.adapters.errors import AwsError
from daemon_guard.core.config import cluster_name_from_arn
from daemon_guard.core.coverage import coverage, coverage_percent, running_groups
from daemon_guard.core.eligibility import eligible_daemons, missing_daemons
from daemon_guard.core.identifiers import IdentifierError, InstanceId
from daemon_guard.core.model import InstanceView, ServiceView, TaskView

DEFAULT_GATE_ATTRIBUTE = "daemon-guard.gate"
"""The gate attribute shown by `status` unless $DAEMON_GUARD_GATE_ATTRIBUTE names another."""

Clock = Callable[[], datetime]


class CliError(Exception):
    """A problem to report in one line, with exit code 2."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


CONNECT_TIMEOUT_S = 5
READ_TIMEOUT_S = 30
MAX_ATTEMPTS = 3
"""Live commands fail fast: a 5 s connect timeout and at most 3 attempts per call (first try included)."""


def arn_region(arn: str | None) -> str | None:
    """The region an ARN names (``arn:PARTITION:SERVICE:REGION:...``), if any."""
    parts = (arn or "").split(":")
    return parts[3] if len(parts) > 3 and parts[0] == "arn" and parts[3] else None


def stated_region(explicit: str | None, *arns: str | None) -> str | None:
    """The region the command line states: --region, else the one the ARNs given name (None: neither).

    Raises `CliError` when --region contradicts an ARN, or two ARNs name different regions.
    """
    named = [(arn, region) for arn in arns if arn and (region := arn_region(arn))]
    for arn, region in named:
        if explicit and region != explicit:
            raise CliError(f"--region {explicit} but {arn} is in {region}: drop --region or pass the matching one")
        if region != named[0][1]:
            raise CliError(f"{named[0][0]} is in {named[0][1]} but {arn} is in {region}: one command, one region")
    return explicit or (named[0][1] if named else None)


def resolve_region(explicit: str | None, *arns: str | None) -> str:
    """The one region rule of every live command: --region, else the region the ARNs given name (a
    cluster ARN, the drain function's), else AWS_REGION, else AWS_DEFAULT_REGION or the profile's.

    Raises `CliError` when none is found, or when --region or the ARNs contradict each other.
    """
    region = stated_region(explicit, *arns) or os.environ.get("AWS_REGION")
    if not region:
        import boto3

        region = boto3.session.Session().region_name  # AWS_DEFAULT_REGION, then the profile's region
    if not region:
        raise CliError("no AWS region: pass --region, set AWS_REGION (or AWS_DEFAULT_REGION), "
                       "or give the profile a region (`aws configure set region ...`)")
    return region


def _client(service: str, region: str | None) -> Any:
    """A boto3 client from the default credential chain, failing fast (`CONNECT_TIMEOUT_S`, `MAX_ATTEMPTS`)."""
    import boto3
    from botocore.config import Config

    config = Config(connect_timeout=CONNECT_TIMEOUT_S, read_timeout=READ_TIMEOUT_S,
                    retries={"mode": "adaptive" if service == "ecs" else "standard", "max_attempts": MAX_ATTEMPTS})
    return boto3.client(service, region_name=region, config=config)  # type: ignore[call-overload]


def explain(exc: BaseException, cluster: str | None = None, region: str | None = None) -> str:
    """One line that says what went wrong and what to do, for the errors an operator meets."""
    where = f" in {region}" if region else ""
    if isinstance(exc, AwsError):
        exc = exc.original
    if isinstance(exc, CliError):
        return str(exc)
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return ("no AWS credentials found: set AWS_PROFILE (or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY), "
                "or run `aws configure` / `aws sso login`")
    if isinstance(exc, NoRegionError):
        return "no AWS region: pass --region or set AWS_REGION"
    if isinstance(exc, EndpointConnectionError | ConnectTimeoutError | BotoConnectionError):
        return (f"cannot reach the AWS endpoint{where} after {MAX_ATTEMPTS} attempts "
                f"({CONNECT_TIMEOUT_S} s connect timeout each): {str(exc).splitlines()[0]}; "
                "check the region, the network and any proxy (HTTPS_PROXY)")
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code, message = str(error.get("Code", "")), str(error.get("Message", "")).splitlines()[0:1]
        text = message[0] if message else ""
        if code == "ClusterNotFoundException":
            return f"cluster '{cluster}' not found{where}: check --cluster and --region"
        if code in ("ExpiredToken", "ExpiredTokenException", "RequestExpired"):
            return "the AWS credentials have expired: refresh them (for example `aws sso login`)"
        if code in ("UnrecognizedClientException", "InvalidClientTokenId", "InvalidSignatureException",
                    "SignatureDoesNotMatch"):
            return f"the AWS credentials were rejected ({code}): check the profile or keys in use"
        if code in ("AccessDeniedException", "AccessDenied", "UnauthorizedOperation"):
            return f"access denied: {text or code}"
        if code == "ResourceNotFoundException":
            return f"not found{where}: {text or code}"
        return f"{code or 'AWS error'}: {text}" if text else code or "AWS error"
    if isinstance(exc, BotoCoreError):
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


# ---- status -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class InstanceCoverage:
    """One container instance's daemons, as `status` reports them."""

    instance: InstanceView
    eligible: tuple[ServiceView, ...]
    running: tuple[str, ...]
    starting: tuple[str, ...]
    missing: tuple[str, ...]
    problems: tuple[str, ...]

    @property
    def counted(self) -> bool:
        """Only ACTIVE instances count: a DRAINING one stops its daemons on purpose."""
        return self.instance.status == "ACTIVE"

    @property
    def not_running(self) -> tuple[str, ...]:
        """Eligible daemons without a RUNNING task (missing, or still starting)."""
        return self.missing + self.starting


def instance_coverage(instance: InstanceView, daemons: Sequence[ServiceView], ecs: EcsCluster,
                      tasks: Sequence[TaskView]) -> InstanceCoverage:
    """Judge one instance with the guard's own eligibility rules."""
    groups = {t.group for t in tasks if not t.stopping}
    eligibility = eligible_daemons(instance, daemons, ecs.known_task_definitions, groups)
    missing = tuple(s.name for s in missing_daemons(instance, eligibility.eligible, tasks))
    covered = coverage(eligibility.eligible, running_groups(tasks))
    starting = tuple(name for name in covered.not_running if name not in missing)
    return InstanceCoverage(instance, eligibility.eligible, covered.running, starting, missing,
                            tuple(p.message for p in eligibility.invalid))


def _age(registered_at: datetime | None, now: datetime) -> str:
    if registered_at is None:
        return "?"
    seconds = max(0, int((now - registered_at).total_seconds()))
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"


def _table(rows: list[list[str]], headers: list[str]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return [fmt.format(*headers).rstrip(), fmt.format(*("-" * w for w in widths)).rstrip(),
            *(fmt.format(*r).rstrip() for r in rows)]


def collect(ecs: EcsCluster) -> tuple[tuple[ServiceView, ...], list[InstanceCoverage]]:
    """Read the cluster: its daemon services and every registered instance's coverage."""
    instances = ecs.instances(ecs.instance_arns())
    daemons = ecs.daemon_services(refresh=True)
    out = []
    for instance in sorted(instances, key=lambda i: (i.registered_at or datetime.min.replace(tzinfo=UTC),
                                                     i.ec2_instance_id)):
        tasks = ecs.tasks(ecs.task_arns_on(instance.arn, desired="RUNNING"))
        out.append(instance_coverage(instance, daemons, ecs, tasks))
    return daemons, out


def report(cluster: str, daemons: Sequence[ServiceView], coverage: Sequence[InstanceCoverage], now: datetime,
           gate_attribute: str, out: TextIO) -> int:
    """Print the table and the summary; 0 when every eligible daemon RUNS on every ACTIVE instance, else 1."""
    print(f"cluster {cluster}: {len(coverage)} container instance(s), {len(daemons)} daemon service(s)"
          + (f" ({', '.join(sorted(s.name for s in daemons))})" if daemons else ""), file=out)
    rows = []
    for c in coverage:
        missing = ", ".join([*c.missing, *(f"{n} (starting)" for n in c.starting)]) or "-"
        gate = c.instance.attributes.get(gate_attribute) if gate_attribute in c.instance.attributes else None
        rows.append([c.instance.ec2_instance_id or c.instance.arn.rsplit("/", 1)[-1], c.instance.status,
                     _age(c.instance.registered_at, now), str(len(c.eligible)), str(len(c.running)), missing,
                     "-" if gate is None else str(gate)])
    if rows:
        print("", file=out)
        for line in _table(rows, ["INSTANCE", "STATUS", "AGE", "ELIGIBLE", "RUNNING", "MISSING",
                                  f"GATE ({gate_attribute})"]):
            print(line, file=out)
        print("", file=out)
    for c in coverage:
        for problem in c.problems:
            print(f"warning: {c.instance.ec2_instance_id}: {problem}", file=out)
    counted = [c for c in coverage if c.counted]
    slots = sum(len(c.eligible) for c in counted)
    running = sum(len(c.running) for c in counted)
    short = [c for c in counted if c.not_running]
    percent = coverage_percent(running, slots)
    skipped = len(coverage) - len(counted)
    note = f"; {skipped} DRAINING instance(s) not counted" if skipped else ""
    print(f"coverage {percent:.1f}% ({running}/{slots} eligible daemon slots RUNNING on {len(counted)} ACTIVE "
          f"instance(s)); {len(short)} instance(s) missing daemons"
          + (f": {', '.join(c.instance.ec2_instance_id for c in short)}" if short else "") + note, file=out)
    return 1 if short else 0


def status(cluster: str, region: str | None, *, client: Any = None, clock: Clock = _utc_now,
           out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Per-instance daemon coverage of a real cluster; 0 all covered, 1 some daemon missing, 2 error."""
    out, err = out or sys.stdout, err or sys.stderr
    gate_attribute = os.environ.get("DAEMON_GUARD_GATE_ATTRIBUTE", DEFAULT_GATE_ATTRIBUTE)
    try:
        region = stated_region(region, cluster) if client is not None else resolve_region(region, cluster)
        ecs = EcsCluster(client if client is not None else _client("ecs", region), cluster,
                         lambda: clock().timestamp())
        daemons, coverage = collect(ecs)
    except (CliError, AwsError, BotoCoreError, ClientError) as exc:
        print(f"daemon-guard status: {explain(exc, cluster, region)}", file=err)
        return 2
    return report(cluster_name_from_arn(cluster), daemons, coverage, clock(), gate_attribute, out)


# ---- drain --------------------------------------------------------------------------------------
class _RecordingLambda:
    """A Lambda client that remembers the last Invoke response (the execution ARN is in it)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.last_response: dict[str, Any] = {}

    def invoke(self, **kwargs: Any) -> dict[str, Any]:
        """Lambda Invoke, response kept."""
        response: dict[str, Any] = self.client.invoke(**kwargs)
        self.last_response = response
        return response


def _function_arn(function_arn: str | None) -> str:
    arn = function_arn or os.environ.get("DRAIN_FUNCTION")
    if not arn:
        raise CliError("no drain workflow given: pass --function <the drain workflow's alias ARN> "
                       "or set DRAIN_FUNCTION")
    parts = arn.split(":")
    if not (len(parts) == 8 and parts[:3] == ["arn", parts[1], "lambda"] and parts[5] == "function" and parts[7]):
        raise CliError(f"{arn} is not a qualified Lambda function ARN: durable functions are invoked through a "
                       "version or alias, e.g. arn:aws:lambda:REGION:ACCOUNT:function:NAME:live")
    return arn


class _NoMetrics:
    """The operator's drain emits no metric (a CLI has no EMF pipeline); the workflow's own are emitted."""

    def emit(self, spec: Any, value: float, cluster: str, **dimensions: str) -> None:
        """Drop it."""


def _state_table(table: str | None) -> str:
    name = table or os.environ.get("STATE_TABLE")
    if not name:
        raise CliError("no state table given: pass --state-table <the stack's state table> or set STATE_TABLE "
                       "(the drain is claimed there first, so one workflow drains an instance)")
    return name


def request_drain(cluster: str, instance_id: str, function_arn: str | None, region: str | None, *,
                  table: str | None = None, config_path: str | None = None, ecs_client: Any = None,
                  lambda_client: Any = None, dynamodb_client: Any = None, clock: Clock = _utc_now,
                  out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Start the drain workflow for one instance of `cluster`; print the execution ARN. 0 started (or joined
    the drain that already owns the instance), 2 error.

    The request goes the intake's way (`services.starts.claim_and_start`): the instance is claimed in the
    state table first, so a drain already running there is joined rather than doubled, and the workflow is
    started by execution name. The configuration (--config, else ./cdk.json) gives the drain mode.
    """
    from daemon_guard.bootstrap import build
    from daemon_guard.core.actions import StartWorkflow
    from daemon_guard.core.drain import DrainRequest
    from daemon_guard.core.intake import Route
    from daemon_guard.services.starts import claim_and_start, execution_name

    from daemon_guard_cli.drain_dry_run import load_drain_config

    out, err = out or sys.stdout, err or sys.stderr
    name = cluster_name_from_arn(cluster)
    try:
        try:
            ec2_id = InstanceId(instance_id)
        except IdentifierError as refused:
            raise CliError(f"instance id: {refused.reason}") from None
        arn = _function_arn(function_arn)
        state_table = _state_table(table)
        try:
            config = load_drain_config(config_path, name)
        except ValueError as bad:
            raise CliError(str(bad)) from None
        injected = ecs_client is not None and lambda_client is not None and dynamodb_client is not None
        region = stated_region(region, arn, cluster) if injected else resolve_region(region, arn, cluster)
        recorder = _RecordingLambda(lambda_client if lambda_client is not None else _client("lambda", region))
        rt = build(config, ecs_client=ecs_client if ecs_client is not None else _client("ecs", region),
                   autoscaling_client=None, lambda_client=recorder,
                   dynamodb_client=dynamodb_client if dynamodb_client is not None else _client("dynamodb", region),
                   table=state_table, metrics=_NoMetrics(), clock=clock, drain_function=arn)
        instance = rt.cluster(name).instance_by_ec2_id(ec2_id)
        if instance is None:
            raise CliError(f"{instance_id} is not a container instance of cluster '{cluster}'"
                           + (f" in {region}" if region else ""))
        requested = clock().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        start = StartWorkflow(execution_name("drain", ec2_id, f"operator:{requested}"),
                              DrainRequest(ec2_id, name, "operator"))
        outcome = claim_and_start(Route("drain", "operator request", name, trigger="operator", ec2_instance_id=ec2_id),
                                  rt, start)
    except (CliError, AwsError, BotoCoreError, ClientError) as exc:
        print(f"daemon-guard drain: {explain(exc, cluster, region)}", file=err)
        return 2
    if outcome.decision == "already-started":
        print(f"drain of {instance_id} already requested as {start.execution_name} (nothing new started)", file=out)
        return 0
    if outcome.decision != "started":
        print(f"drain of {instance_id} not started ({outcome.decision}): {outcome.reason}", file=out)
        return 0
    execution_arn = recorder.last_response.get("DurableExecutionArn")
    print(f"drain of {instance_id} ({instance.status}, {instance.running_tasks_count} running task(s)) requested "
          f"at {requested}: execution {start.execution_name}", file=out)
    print(execution_arn or f"{arn} / {start.execution_name}", file=out)
    return 0


# ---- snapshot -----------------------------------------------------------------------------------
def _chunks(items: Sequence[str], size: int) -> list[list[str]]:
    return [list(items[i:i + size]) for i in range(0, len(items), size)]


def capture(client: Any, cluster: str) -> dict[str, Any]:
    """Read a cluster into the STATE.json shape replay reads (read-only calls, API output shapes)."""
    def listed(operation: str, key: str, **params: Any) -> list[str]:
        return [arn for page in client.get_paginator(operation).paginate(cluster=cluster, **params)
                for arn in page[key]]

    instances = [i for chunk in _chunks(listed("list_container_instances", "containerInstanceArns"), 100)
                 for i in client.describe_container_instances(cluster=cluster, containerInstances=chunk)
                 ["containerInstances"]]
    tasks = [t for chunk in _chunks(listed("list_tasks", "taskArns", desiredStatus="RUNNING"), 100)
             for t in client.describe_tasks(cluster=cluster, tasks=chunk)["tasks"]]
    services = [s for chunk in _chunks(listed("list_services", "serviceArns"), 10)
                for s in client.describe_services(cluster=cluster, services=chunk)["services"]]
    definitions = sorted({s["taskDefinition"] for s in services if s.get("taskDefinition")}
                         | {t["taskDefinitionArn"] for t in tasks})
    task_definitions = [client.describe_task_definition(taskDefinition=arn)["taskDefinition"]
                        for arn in definitions]
    return {"cluster": cluster_name_from_arn(cluster), "containerInstances": instances, "tasks": tasks,
            "services": services, "taskDefinitions": task_definitions}


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def snapshot(cluster: str, region: str | None, out_path: str | None, *, client: Any = None,
             out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Write the cluster's state as STATE.json (to ``out_path``, or stdout); 0 written, 2 error."""
    out, err = out or sys.stdout, err or sys.stderr
    try:
        region = stated_region(region, cluster) if client is not None else resolve_region(region, cluster)
        state = capture(client if client is not None else _client("ecs", region), cluster)
    except (CliError, AwsError, BotoCoreError, ClientError) as exc:
        print(f"daemon-guard snapshot: {explain(exc, cluster, region)}", file=err)
        return 2
    text = json.dumps(state, indent=1, default=_json_value) + "\n"
    if out_path in (None, "-"):
        out.write(text)
        return 0
    try:
        with open(out_path, "w", encoding="utf-8") as file:
            file.write(text)
    except OSError as exc:
        print(f"daemon-guard snapshot: cannot write {out_path}: {exc.strerror or exc}", file=err)
        return 2
    print(f"{out_path}: cluster {cluster}, {len(state['containerInstances'])} container instance(s), "
          f"{len(state['tasks'])} task(s), {len(state['services'])} service(s), "
          f"{len(state['taskDefinitions'])} task definition(s)", file=err)
    return 0
