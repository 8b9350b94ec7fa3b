"""daemon-guard deployed into a simulated world: the real handlers and workflows, unmodified.

What the CDK app deploys, mirrored: the EventBridge rules (the same patterns, from
`daemon_guard.core.patterns`) target the intake handler, a schedule runs the reconciler, the
lifecycle hooks sit on the groups, and the two durable workflows are served at alias ARNs.
The code reaches the simulated ECS, Auto Scaling and Lambda APIs through boto3 and botocore, and
its DynamoDB table through moto. Each invocation runs under the Powertools decorators; its EMF
output is captured and parsed, so the metrics a dashboard would show can be read back.
"""

from __future__ import annotations

import contextlib
import io
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
from daemon_guard.adapters.state import StateStore
from daemon_guard.core.config import LAUNCH_HOOK_NAME, TERMINATE_HOOK_NAME, Config, parse_config
from daemon_guard.core.patterns import event_patterns
from daemon_guard.handlers import intake, reconciler
from daemon_guard.handlers.runtime import Runtime, logger, set_runtime
from daemon_guard.workflows import drain, launch_gate

from sim.durable import DurableSim
from sim.eventbridge import PutEventsBackend
from sim.wire import make_client
from sim.world import World, stream

TABLE = "daemon-guard-state"
RETRY_DELAYS_S = (1.0, 2.0, 4.0, 8.0)


@dataclass
class FakeLambdaContext:
    """The LambdaContext fields Powertools reads."""

    function_name: str
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = ""
    aws_request_id: str = "sim"

    def get_remaining_time_in_millis(self) -> int:
        """Plenty."""
        return 60_000


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

    def metric_values(self, name: str) -> list[float]:
        """Every value of one metric emitted so far."""
        return [float(v) for doc in self.emf if name in doc for v in doc[name]]


class GuardDeployment:
    """The intake, reconciler and workflows, wired to a World."""

    def __init__(self, world: World, config_doc: dict[str, Any], *, reconcile: bool = True,
                 capture_logs: bool = True) -> None:
        self.world = world
        self.config: Config = parse_config(config_doc)
        self.records = Records()
        self._mock = _start_moto()
        dynamodb = boto3.client("dynamodb", region_name=world.region, aws_access_key_id="sim",
                                aws_secret_access_key="sim")
        _create_table(dynamodb)
        self.durable = DurableSim(world.clock, stream(world.options.seed, "durable"), world.account, world.region)
        prefix = f"arn:aws:lambda:{world.region}:{world.account}:function:daemon-guard"
        self.drain_arn, self.gate_arn = f"{prefix}-drain:live", f"{prefix}-launch-gate:live"
        self.durable.register(self.drain_arn, drain.drain_workflow)
        self.durable.register(self.gate_arn, launch_gate.launch_gate_workflow)
        self.durable.on_invocation = lambda run: self._invoke("workflow", run)
        self.own_events = PutEventsBackend(world.bus, world.clock, world.account, world.region)
        self.runtime = Runtime(
            config=self.config, ecs_client=world.client("ecs", adaptive=True),
            autoscaling_client=world.client("autoscaling", adaptive=True),
            lambda_client=make_client("lambda", self.durable, world.region, call_log=world.call_log,
                                      backoff=lambda _d: None),
            events_client=make_client("events", self.own_events, world.region, call_log=world.call_log),
            state=StateStore(dynamodb, TABLE), clock=world.clock.datetime,
            drain_function=self.drain_arn, launch_gate_function=self.gate_arn,
            account=world.account, region=world.region)
        self._log_stream = io.StringIO()
        if capture_logs:
            for handler in logger.handlers:
                if hasattr(handler, "setStream"):
                    handler.setStream(self._log_stream)
        for name, pattern in event_patterns(self.config, partition="aws", region=world.region,
                                            account=world.account).items():
            world.bus.add_rule(f"daemon-guard-{name}", pattern, self.deliver)
        for cluster in self.config.clusters:
            for group in cluster.groups:
                if group.name not in world.asg.groups:
                    continue
                if group.terminate_hook:
                    world.asg.put_hook(group.name, TERMINATE_HOOK_NAME, "autoscaling:EC2_INSTANCE_TERMINATING",
                                       group.heartbeat_timeout_s, "CONTINUE")
                if group.launch_hook:
                    world.asg.put_hook(group.name, LAUNCH_HOOK_NAME, "autoscaling:EC2_INSTANCE_LAUNCHING",
                                       group.heartbeat_timeout_s, group.launch_timeout_result)
        if reconcile:
            period = self.config.reconcile_period_min * 60.0
            world.clock.after(period, lambda: self._reconcile_loop(period))

    def close(self) -> None:
        """Stop moto and uninstall the runtime."""
        set_runtime(None)
        self._mock.stop()

    # ---- invocations ----------------------------------------------------------------------------
    def _invoke(self, function: str, run: Callable[[], Any]) -> Any:
        set_runtime(self.runtime)
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
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            # The handler's own CPU: the simulated AWS side's work is not the Lambda's.
            cpu_ms = (time.process_time() - started - (self.world.backend_cpu_s - backend_before)) * 1000
            self._collect(out.getvalue())
            self.records.invocations.append(Invocation(
                self.world.clock.now, function, result if isinstance(result, dict) else None,
                self.world.call_log.count() - before, cpu_ms, error))
        return result

    def _collect(self, text: str) -> None:
        for line in text.splitlines():
            if line.startswith("{") and '"_aws"' in line:
                self.records.emf.append(json.loads(line))
        logs = self._log_stream.getvalue()
        if logs:
            self._log_stream.seek(0)
            self._log_stream.truncate()
            for line in logs.splitlines():
                if line.startswith("{"):
                    self.records.logs.append(json.loads(line))

    def deliver(self, event: dict[str, Any], attempt: int = 0) -> None:
        """EventBridge delivers to the intake; failures are retried with backoff, then dead-lettered."""
        context = FakeLambdaContext("daemon-guard-intake")
        try:
            self._invoke("intake", lambda: intake.handler(event, context))  # type: ignore[arg-type]
        except Exception:
            if attempt < len(RETRY_DELAYS_S):
                self.world.clock.after(RETRY_DELAYS_S[attempt], lambda: self.deliver(event, attempt + 1))
            else:
                self.records.dead_letters.append(event)

    def reconcile_now(self) -> Any:
        """Run the reconciler once, as the schedule would."""
        context = FakeLambdaContext("daemon-guard-reconciler")
        try:
            return self._invoke("reconciler", lambda: reconciler.handler({}, context))  # type: ignore[arg-type]
        except Exception:
            return None

    def _reconcile_loop(self, period: float) -> None:
        self.reconcile_now()
        self.world.clock.after(period, lambda: self._reconcile_loop(period))


def _start_moto() -> Any:
    from moto import mock_aws

    mock = mock_aws()
    mock.start()
    return mock


def _create_table(client: Any) -> None:
    client.create_table(
        TableName=TABLE, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                              {"AttributeName": "sk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}])
