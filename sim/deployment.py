"""daemon-guard deployed into a simulated world: what `cdk deploy` deploys, read from the template.

The configuration is synthesized (in process, cached per configuration: `sim.template`) and the
deployment is built from the template alone: each function's handler string (imported), its
environment (the config, the table name, the workflow aliases), timeout and memory; the durable
workflows' ExecutionTimeout; the EventInvokeConfig attached to the alias each rule targets
(retries, maximum event age, failure destination); the rules' patterns, targets and schedule; the
lifecycle hooks on the groups; the state table. Nothing here restates what `infra/` decides.

Every AWS call a function makes carries its role and is authorized against that role's statements
in the template (`sim.iam`): ECS, Auto Scaling and Lambda through boto3 and botocore answered by
the simulator, the state table through moto, the workflows' checkpoints, and what Lambda itself
does with the role (log streams, traces, failed events to the queue). A denied call gets AWS's
AccessDenied error. Each invocation runs under the Powertools decorators; its EMF output is
captured and parsed, so the metrics a dashboard would show can be read back.
"""

from __future__ import annotations

import importlib
import io
import json
import logging
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3
from daemon_guard import bootstrap
from daemon_guard.bootstrap import LearntHome, Runtime
from daemon_guard.core.config import Config
from daemon_guard.observability import logger

from sim.clock import Clock
from sim.durable import DurableSim
from sim.eventbridge import PutEventsBackend
from sim.iam import Authorizer, Place, Request, guard, statements_of
from sim.latency import HandlerKilled, Outcome, Workers, charge_latency
from sim.template import DeploymentFacts, FunctionFacts, RuleFacts, deployment_facts
from sim.wire import make_client
from sim.world import TimedBackend, World, stream

# Lambda's documented waits between the attempts of an asynchronous invocation that failed.
ASYNC_RETRY_DELAYS_S = (60.0, 120.0)


@dataclass
class FakeLambdaContext:
    """The LambdaContext fields Powertools and the handlers read, from the function's template facts."""

    function_name: str
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = ""
    aws_request_id: str = "sim"
    timeout_s: int = 60
    clock: Clock | None = None
    deadline: float | None = None  # the simulated second its Timeout ends the invocation

    def get_remaining_time_in_millis(self) -> int:
        """What is left of the function's Timeout in simulated time."""
        if self.clock is None or self.deadline is None:
            return self.timeout_s * 1000
        return max(0, int((self.deadline - self.clock.now) * 1000))


@dataclass
class Invocation:
    """One handler invocation: what it returned and what it cost."""

    at: float
    function: str
    result: dict[str, Any] | None
    api_calls: int
    cpu_ms: float
    error: str | None = None
    duration_s: float = 0.0  # simulated: its calls' latency and backoff
    name: str = ""  # the deployed function (intake, reconciler, drain, launch-gate); `function` folds the workflows


@dataclass
class Records:
    """Everything the deployment observed."""

    invocations: list[Invocation] = field(default_factory=list)
    emf: list[dict[str, Any]] = field(default_factory=list)
    logs: list[dict[str, Any]] = field(default_factory=list)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)
    lost: list[tuple[str, str]] = field(default_factory=list)  # (what, why): Lambda could not do it
    access_denied: list[tuple[str, str]] = field(default_factory=list)  # (role, service:operation)

    def metric_values(self, name: str) -> list[float]:
        """Every value of one metric emitted so far."""
        return [float(v) for doc in self.emf if name in doc for v in doc[name]]


class TimedOut(Exception):
    """The invocation ran past its function's Timeout."""


@dataclass
class ExecutionEnvironment:
    """One Lambda execution environment of a function: its runtime and handler, built once (module-level
    clients, caches) and reused warm by the invocations after the first; one invocation at a time.

    For the workflows, `runtime.durable.client` is the boto3 Lambda client the durable SDK checkpoints
    through (as `LambdaClient.initialize_client()` would create it with the function's role): its
    checkpoint and state calls go through sim.wire to `DurableSim`, authorized as the function's role.
    `clients` are the role-bound boto3 clients the runtime was built with (by service name), for a test
    to call as the function's role would (e.g. against a cluster it does not manage).
    """

    entry: Callable[..., Any]
    runtime: Runtime
    clients: Mapping[str, Any]
    busy: bool = False
    invocations: int = 0


@dataclass
class DeployedFunction:
    """One function of the template, live in the world: its facts and its execution environments.

    An invocation takes an idle environment (the oldest first) or, when every one is busy, a new one
    (a cold start), as Lambda scales a function out: concurrent invocations never share a client, and
    each environment's adaptive-mode rate limiter and caches are its own. `entry`, `runtime` and `clients`
    are the first environment's (built when the function is deployed).
    """

    key: str
    facts: FunctionFacts
    environments: list[ExecutionEnvironment]
    new_environment: Callable[[], ExecutionEnvironment]

    @property
    def entry(self) -> Callable[..., Any]:
        """The first environment's handler."""
        return self.environments[0].entry

    @property
    def runtime(self) -> Runtime:
        """The first environment's runtime."""
        return self.environments[0].runtime

    @property
    def clients(self) -> Mapping[str, Any]:
        """The first environment's role-bound clients."""
        return self.environments[0].clients

    def acquire(self) -> ExecutionEnvironment:
        """An environment for one invocation: an idle one, else a new one; busy until `release`."""
        environment = next((e for e in self.environments if not e.busy), None)
        if environment is None:
            environment = self.new_environment()
            self.environments.append(environment)
        environment.busy = True
        environment.invocations += 1
        return environment


class GuardDeployment:
    """The template's functions, rules, hooks and table, wired to a World, with IAM enforced."""

    def __init__(self, world: World, config_doc: dict[str, Any], *, reconcile: bool = True,
                 capture_logs: bool = True, facts: DeploymentFacts | None = None,
                 keep_requests: bool = False) -> None:
        self.world = world
        self.facts = facts or deployment_facts(config_doc, world.account, world.region)
        self.records = Records()
        # keep_requests: every distinct IAM request kept, for a test to replay against other policies.
        self.authorizer = Authorizer(statements_of(self.facts.policies), keep_requests=keep_requests)
        self._mock = _start_moto()
        self._dynamodb_admin = boto3.client("dynamodb", region_name=world.region, aws_access_key_id="sim",
                                            aws_secret_access_key="sim")
        create_state_table(self._dynamodb_admin, self.facts.table_name)
        # Invocations on simulated time: API latency per call, other events interleaving (sim.latency).
        self.workers = Workers(world.clock)
        world.sleeper = self.workers.sleep
        self._latency_rng = stream(world.options.seed, "api-latency")
        self.durable = DurableSim(world.clock, stream(world.options.seed, "durable"), world.account, world.region)
        self.own_events = PutEventsBackend(world.bus, world.clock, world.account, world.region)
        self.place = Place(world.account, world.region, lookup=self._lookup)
        self.functions: dict[str, DeployedFunction] = {}
        try:
            for fn in self.facts.functions.values():
                key = _key_of(fn)
                self.functions[key] = self._deploy(key, fn)
        except BaseException:
            self.close()  # a template a function refuses: nothing of the deployment stays running
            raise
        intake_fn = self.functions["intake"]
        self.config: Config = intake_fn.runtime.config
        self.runtime = intake_fn.runtime  # the intake's container (tests drive the intake through it)
        self.drain_arn = self.functions["drain"].facts.alias_arn
        self.gate_arn = self.functions["launch-gate"].facts.alias_arn
        for workflow in (self.functions["drain"], self.functions["launch-gate"]):
            self.durable.register(workflow.facts.alias_arn, version=workflow.facts.version,
                                  execution_timeout_s=workflow.facts.durable_timeout_s,
                                  retention_days=workflow.facts.durable_retention_days or 14)
        self.durable.start_invocation = self._durable_invocation
        self._capture_logs = capture_logs
        self._nested_calls = 0  # calls made by invocation slices nested in the one running (see _invoke)
        for rule in self.facts.rules:
            if rule.pattern is not None:
                world.bus.add_rule(rule.name, dict(rule.pattern), self._rule_delivery(rule))
        for hook in self.facts.hooks:
            if hook.group in world.asg.groups:
                world.asg.put_hook(hook.group, hook.name, hook.transition, hook.heartbeat_s, hook.default_result)
        self._schedules = [r for r in self.facts.rules if r.schedule_s is not None]
        if reconcile:
            for rule in self._schedules:
                self._schedule(rule)

    def close(self) -> None:
        """End invocations still waiting on a call and stop moto."""
        self.workers.close()
        self.world.sleeper = None
        self._mock.stop()

    # ---- building -------------------------------------------------------------------------------
    def _deploy(self, key: str, fn: FunctionFacts) -> DeployedFunction:
        """Import the module the handler string names, check it has the handler, and build the function's first
        execution environment (so that a template the function would refuse fails the deployment)."""
        module_name, _, attribute = fn.handler.rpartition(".")
        module = importlib.import_module(module_name)
        if not callable(getattr(module, attribute, None)):
            raise LookupError(f"{fn.name}: handler {fn.handler} names no callable")

        def new_environment() -> ExecutionEnvironment:
            return self._environment(fn, module.build_handler)

        return DeployedFunction(key, fn, [new_environment()], new_environment)

    def _environment(self, fn: FunctionFacts,
                     build_handler: Callable[[Runtime], Callable[..., Any]]) -> ExecutionEnvironment:
        """One execution environment: the runtime the function builds at start from its template environment
        (`bootstrap.settings_of`, and each client with `bootstrap.client_configs`: retry mode, attempts,
        timeouts), its clients role-bound and answered by the world, on the simulated clock."""
        env = fn.environment
        try:
            settings, configs = bootstrap.settings_of(env), bootstrap.client_configs(env)
        except bootstrap.MissingSetting as err:
            raise bootstrap.MissingSetting(f"{fn.name}: {err}") from err
        role = fn.role_arn
        world = self.world

        def guarded(client: Any) -> Any:
            charge_latency(client, self.workers, world.options.api_latency, self._latency_rng)
            return guard(client, lambda: self.authorizer, role, self.place, on_denied=self._denied(role))

        def answered_by(service: str, backend: Any) -> Any:
            return make_client(service, backend, world.region, call_log=world.call_log, backoff=world.backoff,
                               config=configs[service], rate_clock=world)

        clients = {
            "ecs": guarded(world.client("ecs", configs["ecs"])),
            "autoscaling": guarded(world.client("autoscaling", configs["autoscaling"])),
            "lambda": guarded(answered_by("lambda", self.durable)),
            "events": guarded(answered_by("events", self.own_events)),
            "dynamodb": guarded(boto3.client("dynamodb", region_name=world.region, aws_access_key_id="sim",
                                             aws_secret_access_key="sim", config=configs["dynamodb"])),
        }
        runtime = bootstrap.build(
            settings.config, ecs_client=clients["ecs"], autoscaling_client=clients["autoscaling"],
            lambda_client=clients["lambda"], events_client=clients["events"], dynamodb_client=clients["dynamodb"],
            table=settings.table, clock=world.clock.datetime, drain_function=settings.drain_function,
            launch_gate_function=settings.launch_gate_function, ecs_retry=settings.ecs_retry,
            home=LearntHome(account=world.account, region=world.region),
            # The durable SDK's own client, bound to the role. Not in the call log: how the SDK batches its
            # checkpoints depends on its threads' timing, and the logged counts must not vary within a seed.
            durable_client=guarded(make_client("lambda", TimedBackend(self.durable, world), world.region)),
            sleep=self._sleep)
        return ExecutionEnvironment(build_handler(runtime), runtime, clients)

    def _sleep(self, seconds: float) -> None:
        """A function waiting out its own pace: parked on the simulated clock while the world goes on."""
        self.workers.sleep(seconds)

    def _denied(self, role: str) -> Callable[[str, str, str], None]:
        def note(service: str, operation: str, code: str) -> None:
            self.records.access_denied.append((role, f"{service}:{operation}"))
            self.world.call_log.record(service, operation, code)
        return note

    def _lookup(self, kind: str, name: str) -> str | None:
        if kind == "autoScalingGroup" and name:
            return self.world.asg_arn(name)
        if kind == "group of instance":
            group = self.world.asg.group_of(name)
            return group.name if group is not None else None
        if kind == "durable execution":
            found = self.durable.execution_of_callback(name)
            return found.arn if found else None
        return None

    def _platform(self, fn: FunctionFacts, action: str, resource: str, what: str) -> bool:
        """Lambda (or X-Ray) acting with the function's role; a denial loses `what`, the function runs on."""
        decision = self.authorizer.decide(fn.role_arn, Request(action, (resource,)))
        if not decision.allowed:
            self.records.access_denied.append((fn.role_arn, action))
            self.records.lost.append((what, decision.reason))
        return decision.allowed

    # ---- invocations ----------------------------------------------------------------------------
    def _invoke(self, deployed: DeployedFunction, event: Any, context: FakeLambdaContext,
                done: Callable[[Outcome], None]) -> None:
        """Run one invocation on simulated time (sim.latency) in an execution environment of its own: its calls
        cost API latency, other events interleave, and its Timeout ends it; `done(outcome)` once it has finished."""
        fn = deployed.facts
        environment = deployed.acquire()
        started_at = self.world.clock.now
        out, logs = io.StringIO(), io.StringIO()
        cost: dict[str, float] = {"calls": 0, "cpu_s": 0.0, "offset": 0.0}

        def enter() -> Callable[[], None]:
            # One slice of the invocation, until it waits on a call: its stdout, its logs, and its own caller
            # offset (the back-off its SDK threads waited outside the clock): another invocation's must never be
            # read as this one's time, nor this one's leak into the next caller's.
            saved_stdout, sys.stdout = sys.stdout, out
            saved_offset, self.world.ecs_api.caller_offset = self.world.ecs_api.caller_offset, cost["offset"]
            # The handler's stream is swapped, not set with setStream: that flushes the previous stream, which a
            # caller may have closed (a CLI run under pytest's capture leaves the logger on a closed stderr).
            streams = [(h, h.stream) for h in logger.handlers
                       if self._capture_logs and isinstance(h, logging.StreamHandler)]
            for handler, _ in streams:
                handler.stream = logs
            # Calls are counted on the whole log, not the thread's: a durable function's body runs on a thread of
            # the SDK's own (its handler pool), and only this invocation runs during the slice. A slice nested in
            # this one (an invocation it started synchronously) counts its own calls, not this one's.
            calls, cpu, backend = self.world.call_log.count(), time.thread_time(), self._backend_cpu()
            outer_nested, self._nested_calls = self._nested_calls, 0

            def undo() -> None:
                # The handler's own CPU: the simulated AWS side's work is not the Lambda's.
                cost["cpu_s"] += time.thread_time() - cpu - (self._backend_cpu() - backend)
                made = self.world.call_log.count() - calls
                cost["calls"] += made - self._nested_calls
                self._nested_calls = outer_nested + made
                for handler, previous in streams:
                    handler.stream = previous
                sys.stdout = saved_stdout
                cost["offset"], self.world.ecs_api.caller_offset = self.world.ecs_api.caller_offset, saved_offset
            return undo

        def body() -> Any:
            self.world.begin_invocation()
            result = environment.entry(event, context)
            if self.world.ecs_api.caller_offset > fn.timeout_s:
                raise TimedOut(f"Task timed out after {fn.timeout_s:.2f} seconds")
            return result

        def finished(outcome: Outcome) -> None:
            environment.busy = False
            if isinstance(outcome.error, HandlerKilled):
                outcome = Outcome(error=TimedOut(f"Task timed out after {fn.timeout_s:.2f} seconds"))
            error = f"{type(outcome.error).__name__}: {outcome.error}" if outcome.error is not None else None
            self._collect(fn, out.getvalue(), logs.getvalue())
            result = outcome.result
            self.records.invocations.append(Invocation(
                started_at, deployed.key if deployed.key in ("intake", "reconciler") else "workflow",
                result if isinstance(result, dict) else None, int(cost["calls"]), cost["cpu_s"] * 1000, error,
                self.world.clock.now - started_at, deployed.key))
            done(outcome)

        self.workers.start(body, finished, deadline=started_at + fn.timeout_s, enter=enter)

    def _backend_cpu(self) -> float:
        return float(getattr(self.world.thread_cpu, "backend_s", 0.0))

    def _collect(self, fn: FunctionFacts, text: str, logs: str) -> None:
        if fn.log_group_arn is not None and (text or logs):
            stream_arn = fn.log_group_arn.removesuffix("*") + "log-stream:sim"
            writable = (self._platform(fn, "logs:CreateLogStream", stream_arn, f"{fn.name} log stream")
                        and self._platform(fn, "logs:PutLogEvents", stream_arn, f"{fn.name} logs and metrics"))
            if not writable:
                return  # CloudWatch never sees these lines (EMF metrics included)
        if fn.tracing:
            self._platform(fn, "xray:PutTraceSegments", "*", f"{fn.name} trace segments")
            self._platform(fn, "xray:PutTelemetryRecords", "*", f"{fn.name} X-Ray telemetry")
        for line in text.splitlines():
            if line.startswith("{") and '"_aws"' in line:
                self.records.emf.append(json.loads(line))
        for line in logs.splitlines():
            if line.startswith("{"):
                self.records.logs.append(json.loads(line))

    def _durable_invocation(self, function_arn: str, event: dict[str, Any], done: Callable[[Outcome], None]) -> None:
        """Lambda invoking a durable function with its invocation input (DurableExecutionArn, CheckpointToken,
        InitialExecutionState): the SDK's entry point replays, checkpoints and answers its status."""
        deployed = self._deployed(function_arn)
        context = self._context(deployed)
        self._invoke(deployed, event, context, done)

    def _deployed(self, arn: str) -> DeployedFunction:
        facts = self.facts.function_by_arn(arn)
        return next(d for d in self.functions.values() if d.facts is facts)

    def _context(self, deployed: DeployedFunction) -> FakeLambdaContext:
        fn = deployed.facts
        return FakeLambdaContext(fn.name, fn.memory_mb, fn.alias_arn, timeout_s=fn.timeout_s, clock=self.world.clock,
                                 deadline=self.world.clock.now + fn.timeout_s)

    def _rule_delivery(self, rule: RuleFacts) -> Callable[[dict[str, Any]], None]:
        def deliver(event: dict[str, Any]) -> None:
            for target in rule.targets:
                self.invoke_async(target.arn, target.input if target.input is not None else event)
        return deliver

    def invoke_async(self, qualified_arn: str, event: Any, attempt: int = 0, queued_at: float | None = None) -> None:
        """Lambda's asynchronous invocation of a qualified function, with the EventInvokeConfig of that
        qualifier: retries after 1 and 2 minutes, events older than the maximum age dropped, and what
        still fails sent to the failure destination (with the function's role)."""
        deployed = self._deployed(qualified_arn)
        fn = deployed.facts
        config = fn.alias_async if qualified_arn == fn.alias_arn else None
        max_retries = config.max_retries if config else 2
        max_age = config.max_event_age_s if config else 21600
        queued = self.world.clock.now if queued_at is None else queued_at
        context = self._context(deployed)

        def done(outcome: Outcome) -> None:
            if outcome.error is None:
                return
            if not isinstance(outcome.error, Exception):
                raise outcome.error  # not the handler failing: the simulation itself was interrupted
            delay = ASYNC_RETRY_DELAYS_S[min(attempt, len(ASYNC_RETRY_DELAYS_S) - 1)]
            if attempt < max_retries and self.world.clock.now + delay - queued <= max_age:
                self.world.clock.after(delay, lambda: self.invoke_async(qualified_arn, event, attempt + 1, queued))
                return
            destination = config.on_failure_arn if config else None
            if destination is None:
                self.records.lost.append((f"{fn.name} event", "failed every attempt; no failure destination"))
            elif self._platform(fn, "sqs:SendMessage", destination, f"{fn.name} failed event"):
                self.records.dead_letters.append(event)

        self._invoke(deployed, event, context, done)

    def deliver(self, event: dict[str, Any]) -> None:
        """Deliver `event` to the target the event rules share (the intake's alias), as EventBridge would
        once a rule matched; whatever the event holds (a test may hand it one no pattern matches)."""
        (target,) = {t.arn for r in self.facts.rules if r.pattern is not None for t in r.targets}
        self.invoke_async(target, event)

    def reconcile_now(self) -> Any:
        """Run the reconciler once, synchronously, as its schedule target (the template's input)."""
        deployed = self.functions["reconciler"]
        (rule,) = [r for r in self._schedules if any(t.arn == deployed.facts.alias_arn for t in r.targets)]
        target = next(t for t in rule.targets if t.arn == deployed.facts.alias_arn)
        context = self._context(deployed)
        event = target.input if target.input is not None else _scheduled_event(self.world, rule)
        outcomes: list[Outcome] = []
        self._invoke(deployed, event, context, outcomes.append)
        while not outcomes:  # it waits on calls: run the world until it has finished
            due = self.world.clock.next_due()
            if due is None:
                return None
            self.world.clock.run_until(due)
        return outcomes[0].result

    def _schedule(self, rule: RuleFacts) -> None:
        self.world.clock.after(float(rule.schedule_s or 60.0), lambda: self._tick(rule))

    def _tick(self, rule: RuleFacts) -> None:
        event = _scheduled_event(self.world, rule)
        for target in rule.targets:
            self.invoke_async(target.arn, target.input if target.input is not None else event)
        self._schedule(rule)


def _key_of(fn: FunctionFacts) -> str:
    """The function's role in daemon-guard, from its handler's module (intake, reconciler, drain, launch-gate)."""
    module = fn.handler.rsplit(".", 1)[0].rsplit(".", 1)[-1]
    return module.replace("_", "-")


def _scheduled_event(world: World, rule: RuleFacts) -> dict[str, Any]:
    """The Scheduled Event EventBridge sends a schedule rule's targets."""
    return {"version": "0", "id": f"sched-{world.clock.now:.0f}", "detail-type": "Scheduled Event",
            "source": "aws.events", "account": world.account, "time": world.clock.datetime().isoformat(),
            "region": world.region, "resources": [f"arn:aws:events:{world.region}:{world.account}:rule/{rule.name}"],
            "detail": {}}


def _start_moto() -> Any:
    from moto import mock_aws

    mock = mock_aws()
    mock.start()
    return mock


def create_state_table(client: Any, name: str) -> None:
    """A DynamoDB table shaped as the stack's state table (pk, sk), on `client` (moto's)."""
    client.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                              {"AttributeName": "sk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}])


def facts_for(config_doc: Mapping[str, Any], world: World) -> DeploymentFacts:
    """The deployment facts of a configuration in a world's account and region (synthesized, cached)."""
    return deployment_facts(config_doc, world.account, world.region)
