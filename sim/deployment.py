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

import contextlib
import importlib
import io
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3
from aws_durable_execution_sdk_python.lambda_service import LambdaClient
from daemon_guard.adapters.state import StateStore
from daemon_guard.core.config import Config, parse_config
from daemon_guard.handlers.runtime import Runtime, logger, set_runtime

from sim.durable import DurableSim
from sim.eventbridge import PutEventsBackend
from sim.iam import Authorizer, Place, Request, guard, statements_of
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

    def get_remaining_time_in_millis(self) -> int:
        """The function's whole timeout (the simulated handler takes no simulated time of its own)."""
        return self.timeout_s * 1000


@dataclass
class Invocation:
    """One handler invocation: what it returned and what it cost."""

    at: float
    function: str
    result: dict[str, Any] | None
    api_calls: int
    cpu_ms: float
    error: str | None = None


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
class DeployedFunction:
    """One function of the template, live in the world: its facts, entry point and runtime (container).

    `lambda_client` is the boto3 Lambda client the durable SDK's own `LambdaClient` uses in this
    function (as the SDK's `LambdaClient.initialize_client()` would create it with the function's role):
    its checkpoint and state calls go through sim.wire to `DurableSim`, authorized as the function's role.
    """

    key: str
    facts: FunctionFacts
    entry: Callable[..., Any]
    runtime: Runtime
    lambda_client: Any


class GuardDeployment:
    """The template's functions, rules, hooks and table, wired to a World, with IAM enforced."""

    def __init__(self, world: World, config_doc: dict[str, Any], *, reconcile: bool = True,
                 capture_logs: bool = True, facts: DeploymentFacts | None = None) -> None:
        self.world = world
        self.facts = facts or deployment_facts(config_doc, world.account, world.region)
        self.records = Records()
        self.authorizer = Authorizer(statements_of(self.facts.policies))
        self._mock = _start_moto()
        self._dynamodb_admin = boto3.client("dynamodb", region_name=world.region, aws_access_key_id="sim",
                                            aws_secret_access_key="sim")
        _create_table(self._dynamodb_admin, self.facts.table_name)
        self.durable = DurableSim(world.clock, stream(world.options.seed, "durable"), world.account, world.region)
        self.own_events = PutEventsBackend(world.bus, world.clock, world.account, world.region)
        self.place = Place(world.account, world.region, lookup=self._lookup)
        self.functions: dict[str, DeployedFunction] = {}
        for fn in self.facts.functions.values():
            key = _key_of(fn)
            self.functions[key] = self._deploy(key, fn)
        intake_fn = self.functions["intake"]
        self.config: Config = intake_fn.runtime.config
        self.runtime = intake_fn.runtime  # the intake's container (tests drive the intake through it)
        self.drain_arn = self.functions["drain"].facts.alias_arn
        self.gate_arn = self.functions["launch-gate"].facts.alias_arn
        for workflow in (self.functions["drain"], self.functions["launch-gate"]):
            self.durable.register(workflow.facts.alias_arn, version=workflow.facts.version,
                                  execution_timeout_s=workflow.facts.durable_timeout_s,
                                  retention_days=workflow.facts.durable_retention_days or 14)
        self.durable.invoke = self._durable_invocation
        self._log_stream = io.StringIO()
        if capture_logs:
            for handler in logger.handlers:
                if hasattr(handler, "setStream"):
                    handler.setStream(self._log_stream)
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
        """Stop moto and uninstall the runtime."""
        set_runtime(None)
        LambdaClient._cached_boto_client = None
        self._mock.stop()

    # ---- building -------------------------------------------------------------------------------
    def _deploy(self, key: str, fn: FunctionFacts) -> DeployedFunction:
        module_name, _, attribute = fn.handler.rpartition(".")
        entry = getattr(importlib.import_module(module_name), attribute)
        env = fn.environment
        role = fn.role_arn
        world = self.world

        def guarded(client: Any) -> Any:
            return guard(client, lambda: self.authorizer, role, self.place, on_denied=self._denied(role))

        dynamodb = guarded(boto3.client("dynamodb", region_name=world.region, aws_access_key_id="sim",
                                        aws_secret_access_key="sim"))
        runtime = Runtime(
            config=parse_config(json.loads(env["DAEMON_GUARD_CONFIG"])),
            ecs_client=guarded(world.client("ecs", adaptive=True)),
            autoscaling_client=guarded(world.client("autoscaling", adaptive=True)),
            lambda_client=guarded(make_client("lambda", self.durable, world.region, call_log=world.call_log,
                                              backoff=lambda _d: None)),
            events_client=guarded(make_client("events", self.own_events, world.region, call_log=world.call_log)),
            state=StateStore(dynamodb, env["STATE_TABLE"]) if env.get("STATE_TABLE") else None,
            clock=world.clock.datetime, drain_function=env.get("DRAIN_FUNCTION"),
            launch_gate_function=env.get("LAUNCH_GATE_FUNCTION"), account=world.account, region=world.region)
        # Not in the call log: how the SDK batches its checkpoints depends on its threads' timing, and the
        # logged counts are figures that must not vary between runs of a seed.
        sdk_client = guarded(make_client("lambda", TimedBackend(self.durable, world), world.region))
        return DeployedFunction(key, fn, entry, runtime, sdk_client)

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
    def _invoke(self, deployed: DeployedFunction, run: Callable[[], Any]) -> Any:
        fn = deployed.facts
        set_runtime(deployed.runtime)
        self.world.begin_invocation()
        before = self.world.call_log.count()
        out = io.StringIO()
        started = time.process_time()
        backend_before = self.world.backend_cpu_s
        error: str | None = None
        result: Any = None
        try:
            with contextlib.redirect_stdout(out):
                result = run()
            if self.world.ecs_api.caller_offset > fn.timeout_s:
                raise TimedOut(f"Task timed out after {fn.timeout_s:.2f} seconds")
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            # The handler's own CPU: the simulated AWS side's work is not the Lambda's.
            cpu_ms = (time.process_time() - started - (self.world.backend_cpu_s - backend_before)) * 1000
            self._collect(fn, out.getvalue())
            self.records.invocations.append(Invocation(
                self.world.clock.now, deployed.key if deployed.key in ("intake", "reconciler") else "workflow",
                result if isinstance(result, dict) else None, self.world.call_log.count() - before, cpu_ms, error))
        return result

    def _collect(self, fn: FunctionFacts, text: str) -> None:
        logs = self._log_stream.getvalue()
        if logs:
            self._log_stream.seek(0)
            self._log_stream.truncate()
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

    def _durable_invocation(self, function_arn: str, event: dict[str, Any]) -> Any:
        """Lambda invoking a durable function with its invocation input (DurableExecutionArn, CheckpointToken,
        InitialExecutionState): the SDK's entry point replays, checkpoints and answers its status."""
        deployed = self._deployed(function_arn)
        context = self._context(deployed)
        return self._invoke(deployed, lambda: _run_handler(deployed, event, context))

    def _deployed(self, arn: str) -> DeployedFunction:
        facts = self.facts.function_by_arn(arn)
        return next(d for d in self.functions.values() if d.facts is facts)

    def _context(self, deployed: DeployedFunction) -> FakeLambdaContext:
        fn = deployed.facts
        return FakeLambdaContext(fn.name, fn.memory_mb, fn.alias_arn, timeout_s=fn.timeout_s)

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
        try:
            self._invoke(deployed, lambda: _run_handler(deployed, event, context))
            return
        except Exception:
            pass
        delay = ASYNC_RETRY_DELAYS_S[min(attempt, len(ASYNC_RETRY_DELAYS_S) - 1)]
        if attempt < max_retries and self.world.clock.now + delay - queued <= max_age:
            self.world.clock.after(delay, lambda: self.invoke_async(qualified_arn, event, attempt + 1, queued))
            return
        destination = config.on_failure_arn if config else None
        if destination is None:
            self.records.lost.append((f"{fn.name} event", "failed every attempt; no failure destination"))
        elif self._platform(fn, "sqs:SendMessage", destination, f"{fn.name} failed event"):
            self.records.dead_letters.append(event)

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
        try:
            return self._invoke(deployed, lambda: _run_handler(deployed, event, context))
        except Exception:
            return None

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


def _run_handler(deployed: DeployedFunction, event: Any, context: FakeLambdaContext) -> Any:
    """Call the function's handler (the object its handler string names) as Lambda's runtime would.

    The durable SDK's entry point builds its Lambda client once per container
    (`LambdaClient.initialize_client()`, cached on the class); here every function shares the process,
    so the cache holds the calling function's client, bound to its role.
    """
    LambdaClient._cached_boto_client = deployed.lambda_client
    return deployed.entry(event, context)


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


def _create_table(client: Any, name: str) -> None:
    client.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                              {"AttributeName": "sk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}])


def facts_for(config_doc: Mapping[str, Any], world: World) -> DeploymentFacts:
    """The deployment facts of a configuration in a world's account and region (synthesized, cached)."""
    return deployment_facts(config_doc, world.account, world.region)
