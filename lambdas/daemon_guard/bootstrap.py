"""The composition root: every port a Lambda container uses, built once and handed to the code that needs it.

`from_environment()` builds the production `Runtime` from the Lambda environment
(DAEMON_GUARD_CONFIG, STATE_TABLE, DRAIN_FUNCTION, LAUNCH_GATE_FUNCTION, AWS_REGION) with boto3;
`build()` is the one constructor, so the simulator, the CLI and the tests bind their own clients,
clock and metrics sink through the same code; it wraps each client in its port, and the `Runtime` it
returns holds ports only (no module outside `adapters/` and this one touches a boto3 client). Nothing
here is a module global: each entry point (`daemon_guard.entrypoints`) builds its handler from a
runtime, and `lazy()` builds the production one on the first invocation and keeps it for the
container's life.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from daemon_guard.adapters.autoscaling import AutoScaling, AutoScalingPort
from daemon_guard.adapters.completion import KnownComplete
from daemon_guard.adapters.ecs import EcsCluster, EcsPort
from daemon_guard.adapters.errors import translating
from daemon_guard.adapters.events import EventPublisher
from daemon_guard.adapters.executor import AwsExecutor, Executor, RecordingExecutor
from daemon_guard.adapters.memory import MemoryState
from daemon_guard.adapters.pacing import ReadPace, paced
from daemon_guard.adapters.retry import DeadlineRetry, InvocationDeadline
from daemon_guard.adapters.scheduled import DrainSchedule, ScheduledDrains
from daemon_guard.adapters.state import AuditCursor, EventLedger, EvictionBudget, StateStore, WorkflowClaims
from daemon_guard.adapters.workflows import DurableCheckpoints, WorkflowStarter
from daemon_guard.core.config import LAUNCH_HOOK_NAME, Config, parse_config
from daemon_guard.core.identifiers import partition_of_region
from daemon_guard.core.retry import RESERVE_S, RetryBudget
from daemon_guard.observability import EmfSink, MetricsSink, logger

if TYPE_CHECKING:
    from botocore.config import Config as BotoConfig

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The system clock, in UTC."""
    return datetime.now(UTC)


@dataclass
class LearntHome:
    """Where the deployment lives: the partition, account and region events must come from.

    Known in part from the start (the region, from AWS_REGION) and completed once, from the function's
    own ARN on its first invocation (`learn`).
    """

    partition: str | None = None
    account: str | None = None
    region: str | None = None

    def learn(self, invoked_function_arn: str) -> None:
        """Take the partition, account and region from the function's own ARN, once."""
        parts = invoked_function_arn.split(":")
        if self.account is None and len(parts) > 4 and parts[2] == "lambda" and parts[4]:
            self.partition, self.region, self.account = parts[1], parts[3], parts[4]

    @property
    def home_partition(self) -> str | None:
        """The deployment's partition: learnt, or else the one its region belongs to."""
        return self.partition or (partition_of_region(self.region) if self.region else None)

    def foreign(self, account: str, region: str, partition: str | None = None) -> str | None:
        """Why a resource of `partition`/`account`/`region` is not ours, or None when it is (or home is unknown).

        `partition` defaults to the one `region` belongs to; each part is compared only once known here.
        """
        home_partition = self.home_partition
        partition = partition or partition_of_region(region) or "(none)"
        if home_partition is not None and partition != home_partition:
            return f"partition {partition} is not this deployment's partition"
        if self.account is not None and account != self.account:
            return f"account {account} is not this deployment's account"
        if self.region is not None and region != self.region:
            return f"region {region} is not this deployment's region"
        return None


class EcsClusters:
    """One ECS port per managed cluster, made on first use and kept for the container's life (each caches):
    an `EcsCluster` over `client`, or what `make` builds (replay's snapshot)."""

    def __init__(self, client: Any, clock: Clock, agent_stop_timeout_s: int = 30,
                 make: Callable[[str], EcsPort] | None = None) -> None:
        self.client = client
        self._clock = clock
        self._agent_stop_timeout_s = agent_stop_timeout_s
        self._make = make
        self.ports: dict[str, EcsPort] = {}

    def __call__(self, name: str) -> EcsPort:
        """The ECS port for cluster `name`."""
        port = self.ports.get(name)
        if port is None:
            port = self.ports[name] = self._make(name) if self._make is not None else EcsCluster(
                self.client, name, lambda: self._clock().timestamp(), agent_stop_timeout_s=self._agent_stop_timeout_s)
        return port

    def paced(self, pace: ReadPace) -> AbstractContextManager[ReadPace]:
        """Every ECS read any cluster's port makes inside the block waits for `pace` (the reconciler's)."""
        return paced(self.client, pace)


@dataclass(frozen=True)
class Runtime:
    """The ports and settings one Lambda container runs with, built once by `build()`.

    Ports only: no raw client leaves `build()`. Immutable: what changes over the container's life is only
    what its ports cache (ECS reads, instances seen complete) and the home it learns from its first invocation.
    """

    config: Config
    ecs: EcsClusters
    autoscaling: AutoScalingPort  # the reads of group members and warm pools (its writes go through the executor)
    executor: Executor  # carries out every action (a dry run: records them)
    ledger: EventLedger
    budget: EvictionBudget
    claims: WorkflowClaims
    complete: KnownComplete
    schedule: DrainSchedule
    audit: AuditCursor  # where the reconciler's rotating audit stands
    workflows: WorkflowStarter | None = None  # held by the executor; none: no workflow starts or wakes
    events: EventPublisher | None = None  # the guard's own events (none: publish nothing)
    metrics: MetricsSink = field(default_factory=EmfSink)
    clock: Clock = utc_now
    home: LearntHome = field(default_factory=LearntHome)
    durable: DurableCheckpoints = field(default_factory=DurableCheckpoints)
    sleep: Callable[[float], None] = time.sleep  # waits out a read pace (simulated time in the proving ground)
    deadline: InvocationDeadline = field(default_factory=InvocationDeadline)  # the invocation's time left, if set

    def cluster(self, name: str) -> EcsPort:
        """The ECS port for a managed cluster (kept for the container's life: it caches)."""
        return self.ecs(name)

    @property
    def clusters(self) -> dict[str, EcsPort]:
        """The ECS ports made so far, by cluster."""
        return self.ecs.ports

    def now(self) -> datetime:
        """The current time (simulated in the proving ground)."""
        return self.clock()


def build(config: Config, *, ecs_client: Any = None, autoscaling_client: Any = None, lambda_client: Any | None = None,
          events_client: Any | None = None, dynamodb_client: Any | None = None, table: str | None = None,
          metrics: MetricsSink | None = None, clock: Clock = utc_now, drain_function: str | None = None,
          launch_gate_function: str | None = None, dry_run: bool = False, home: LearntHome | None = None,
          durable_client: Any | None = None, ecs: Callable[[str], EcsPort] | None = None,
          autoscaling: AutoScalingPort | None = None, sleep: Callable[[float], None] = time.sleep,
          ecs_retry: RetryBudget | None = None) -> Runtime:
    """Build every adapter once from the clients given; the one way a `Runtime` is made.

    Parameters
    ----------
    config
        The validated configuration (`parse_config`).
    ecs_client, autoscaling_client, lambda_client, events_client, dynamodb_client
        boto3 clients (or the simulator's), each wrapped so it raises the project's errors
        (`adapters.errors`); a missing Lambda client starts no workflow, a missing
        EventBridge client publishes nothing; without a table the state lives in memory (`MemoryState`).
    table
        The state table's name (STATE_TABLE).
    metrics
        Where metric values go. Default: EMF on stdout (`EmfSink`).
    clock
        The current time. Default: the system clock in UTC.
    drain_function, launch_gate_function
        The workflows' alias ARNs (DRAIN_FUNCTION, LAUNCH_GATE_FUNCTION). Default: none (not started).
    dry_run
        Carry out no action: a `RecordingExecutor` records them instead. Default: False.
    home
        What is known of the deployment's partition, account and region. Default: nothing yet.
    durable_client
        The Lambda client the durable SDK checkpoints through. Default: none (the SDK builds its own).
    ecs, autoscaling
        Ports given in place of `ecs_client` (one per cluster name) and `autoscaling_client`: replay's,
        served from a snapshot. Default: the ports over the clients.
    sleep
        How the code waits out its own read pace (the reconciler's) and its ECS retries. Default: `time.sleep`.
    ecs_retry
        Retry `ecs_client`'s failed calls while the invocation has time (`adapters.retry.DeadlineRetry`, the
        time left set by the entry point on `Runtime.deadline`), within this budget; the client must then be
        built with one botocore attempt (`client_configs`). Default: none (botocore's own retries).
    """
    deadline = InvocationDeadline()
    if ecs_retry is not None:
        DeadlineRetry(ecs_retry, deadline, sleep).install(ecs_client)
    ecs_client, autoscaling_client, lambda_client, events_client, dynamodb_client = (
        translating(c) for c in (ecs_client, autoscaling_client, lambda_client, events_client, dynamodb_client))
    store: StateStore | MemoryState
    schedule: DrainSchedule
    if dynamodb_client is not None and table:
        store, schedule = StateStore(dynamodb_client, table), ScheduledDrains(dynamodb_client, table)
    else:
        store = schedule = MemoryState()
    clusters = EcsClusters(ecs_client, clock, config.agent_stop_timeout_s, make=ecs)
    autoscaling = autoscaling or AutoScaling(autoscaling_client)
    workflows = WorkflowStarter(lambda_client) if lambda_client is not None else None
    executor: Executor = RecordingExecutor() if dry_run else AwsExecutor(
        clusters, autoscaling, workflows, {"drain": drain_function, "launch-gate": launch_gate_function},
        {g.name: LAUNCH_HOOK_NAME if g.launch_hook else None for c in config.clusters for g in c.groups})
    return Runtime(
        config=config, ecs=clusters, autoscaling=autoscaling, executor=executor,
        ledger=store, budget=store, claims=store, complete=KnownComplete(store, lambda: clock().timestamp()),
        schedule=schedule, audit=store, workflows=workflows,
        events=EventPublisher(events_client) if events_client is not None else None,
        metrics=metrics or EmfSink(), clock=clock, home=home or LearntHome(),
        durable=DurableCheckpoints(durable_client), sleep=sleep, deadline=deadline)


# The retries of each client a function builds, by botocore service name. ECS: adaptive mode (the SDK's
# client-side rate limiter slows a function that ECS throttles), its attempts per function (`ECS_MAX_ATTEMPTS`),
# counted by botocore (`ECS_RETRY=sdk`) or by the deadline retry within the invocation's time (`ECS_RETRY=deadline`,
# botocore then making one attempt a try);
# the state table: botocore's defaults for DynamoDB. Every count is `total_max_attempts`, attempts with the first
# one included (botocore's `max_attempts` counts retries only: 5 there would be 6 calls).
CLIENT_RETRIES: dict[str, Any] = {  # botocore's retries dict (a TypedDict in its stubs)
    "autoscaling": {"mode": "standard", "total_max_attempts": 5},
    "lambda": {"mode": "standard", "total_max_attempts": 5},
    "events": {"mode": "standard", "total_max_attempts": 3},
}
CLIENT_SERVICES = ("ecs", "autoscaling", "lambda", "events", "dynamodb")


@dataclass(frozen=True)
class Settings:
    """What a function reads from its environment besides its clients' settings (`settings_of`)."""

    config: Config
    table: str
    drain_function: str | None
    launch_gate_function: str | None
    region: str | None
    ecs_retry: RetryBudget | None  # the deadline retry of ECS calls (`ECS_RETRY=deadline`); none: botocore's


def settings_of(environ: Mapping[str, str]) -> Settings:
    """The settings of a function environment (the Lambda's own, or a template's in the simulator).

    MissingSetting names DAEMON_GUARD_CONFIG, STATE_TABLE, ECS_RETRY or ECS_MAX_ATTEMPTS when the stack did not
    set it."""
    return Settings(config=parse_config(json.loads(required_setting("DAEMON_GUARD_CONFIG", environ))),
                    table=required_setting("STATE_TABLE", environ), drain_function=environ.get("DRAIN_FUNCTION"),
                    launch_gate_function=environ.get("LAUNCH_GATE_FUNCTION"), region=environ.get("AWS_REGION"),
                    ecs_retry=RetryBudget(ecs_attempts(environ), RESERVE_S) if ecs_retry_mode(environ) == "deadline"
                    else None)


def client_configs(environ: Mapping[str, str]) -> dict[str, BotoConfig]:
    """The botocore Config of each client a function builds (retry mode, attempts, timeouts), by service.

    The one place they are decided: the Lambda builds its clients with them (`from_environment`) and the
    simulator builds each simulated function's from its template environment. MissingSetting or ValueError
    names ECS_MAX_ATTEMPTS when it is absent or not a whole number from 1 to 20, or ECS_RETRY when it is absent
    or neither ``sdk`` nor ``deadline``. Under ``deadline`` the ECS client makes one attempt a try: the deadline
    retry (`Settings.ecs_retry`, installed by `build`) makes the others."""
    from botocore.config import Config as BotoConfig

    attempts = ecs_attempts(environ)
    ecs = {"mode": "adaptive", "total_max_attempts": 1 if ecs_retry_mode(environ) == "deadline" else attempts}
    retries: dict[str, Any] = {**CLIENT_RETRIES, "ecs": ecs}
    return {service: BotoConfig(retries=retries[service]) if service in retries else BotoConfig()
            for service in CLIENT_SERVICES}


def from_environment(environ: Mapping[str, str] | None = None) -> Runtime:
    """The production runtime: boto3 clients built with `client_configs()` and settings from the Lambda
    environment (`os.environ` unless given)."""
    import boto3

    started = time.monotonic()
    environ = os.environ if environ is None else environ
    settings = settings_of(environ)
    configs = client_configs(environ)
    clients = {service: boto3.client(service, config=configs[service]) for service in CLIENT_SERVICES}  # type: ignore[call-overload]
    runtime = build(
        settings.config, ecs_client=clients["ecs"], autoscaling_client=clients["autoscaling"],
        lambda_client=clients["lambda"], events_client=clients["events"], dynamodb_client=clients["dynamodb"],
        table=settings.table, drain_function=settings.drain_function,
        launch_gate_function=settings.launch_gate_function, ecs_retry=settings.ecs_retry,
        home=LearntHome(region=settings.region))  # the partition follows; the first invocation confirms
    logger.debug("runtime built", extra={"ms": round((time.monotonic() - started) * 1000, 1)})
    return runtime


class MissingSetting(RuntimeError):
    """A variable the stack sets on every function is absent: the function was not deployed by the stack."""


def required_setting(name: str, environ: Mapping[str, str] | None = None) -> str:
    """The value of environment variable `name` (in `environ`, default `os.environ`), which the stack sets on
    every function.

    A production function never falls back to a default it was not deployed with (state kept in memory,
    another retry budget): without the variable it refuses to start, naming it (`MissingSetting`)."""
    value = (os.environ if environ is None else environ).get(name, "")
    if not value:
        raise MissingSetting(f"{name} is not set: the daemon-guard stack sets it on every function; "
                             "deploy the function with the stack (cdk deploy) rather than by hand")
    return value


def ecs_attempts(environ: Mapping[str, str] | None = None) -> int:
    """Attempts per ECS call from ``ECS_MAX_ATTEMPTS`` (set per function by the stack; required).

    MissingSetting when it is absent; ValueError names the variable when it is not a whole number from 1 to 20."""
    raw = required_setting("ECS_MAX_ATTEMPTS", environ)
    if not raw.isdigit() or not 1 <= int(raw) <= 20:
        raise ValueError(f"ECS_MAX_ATTEMPTS: expected a whole number from 1 to 20, got {raw!r}")
    return int(raw)


def ecs_retry_mode(environ: Mapping[str, str] | None = None) -> str:
    """Who retries a function's failed ECS calls, from ``ECS_RETRY`` (set per function by the stack; required):
    ``sdk`` (botocore, up to ECS_MAX_ATTEMPTS attempts) or ``deadline`` (up to ECS_MAX_ATTEMPTS attempts while the
    invocation has time for the wait and `core.retry.RESERVE_S`: the intake's).

    MissingSetting when it is absent; ValueError names the variable when it is neither."""
    raw = required_setting("ECS_RETRY", environ)
    if raw not in ("sdk", "deadline"):
        raise ValueError(f"ECS_RETRY: expected 'sdk' or 'deadline', got {raw!r}")
    return raw


def lazy(build_handler: Callable[[Runtime], Callable[[Any, Any], Any]]) -> Callable[[Any, Any], Any]:
    """The production Lambda handler: `build_handler(from_environment())`, built on the first invocation
    (so importing an entry point builds no client) and kept for the container's life."""
    built: list[Callable[[Any, Any], Any]] = []

    def handler(event: Any, context: Any) -> Any:
        if not built:
            built.append(build_handler(from_environment()))
        return built[0](event, context)

    return handler
