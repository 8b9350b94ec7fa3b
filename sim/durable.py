"""Simulated Lambda durable executions: checkpoint-and-replay on the simulated clock.

The workflows are written against the durable SDK's `DurableContext` (step, create_callback) and
are tested with the SDK's own local runner; here the same functions run on simulated time. Like
the service, an execution is re-invoked from the top and replays checkpointed operations in order:
a completed step returns its stored result without running again; a pending callback suspends the
invocation until SendDurableExecutionCallbackSuccess or its timeout. The Lambda API surface
(Invoke with DurableExecutionName, SendDurableExecutionCallbackSuccess) is served through sim.wire,
so the intake's boto3 calls are real requests.

What the template says of each workflow function applies: the execution ARN carries the version
the alias points to (``function:NAME:VERSION/durable-execution/NAME/ID``), an execution still
running at its ExecutionTimeout fails (status TIMED_OUT, its pending callbacks cancelled), and the
workflow's own role must allow each CheckpointDurableExecution (every step result it stores) and
GetDurableExecutionState (an invocation whose history is longer than the first page the service
hands it, `STATE_PAGE` operations, reads the rest): a denied call fails the execution, as the SDK
would raise.

Fault injection: `crash_before_checkpoint` makes the chosen step run its body and then crash before
its result is stored (the worst case for repeated effects); the invocation is retried, as Lambda
retries a failed durable invocation.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aws_durable_execution_sdk_python.config import CallbackConfig
from aws_durable_execution_sdk_python.exceptions import CallbackTimeoutError

from sim.clock import Clock, Timer
from sim.errors import SimApiError, UnsupportedOperation
from sim.latency import Outcome

Workflow = Callable[[dict[str, Any], Any], Any]
# Authorize(function ARN (qualified), action, execution ARN) -> None, or raise the denial.
Authorize = Callable[[str, str, str], None]
STATE_PAGE = 100  # operations handed to an invocation; more are read with GetDurableExecutionState


class _Suspend(Exception):
    """The invocation ends here until something completes what it waits on."""


class SimulatedCrash(Exception):
    """An injected crash of a workflow invocation."""


@dataclass
class Operation:
    """A checkpointed operation: a step's result or a callback's state."""

    kind: str
    name: str
    result: Any = None
    status: str = "SUCCEEDED"
    callback_id: str | None = None
    timer: Timer | None = None


@dataclass
class Execution:
    """One durable execution."""

    name: str
    function: str
    payload: dict[str, Any]
    arn: str
    started_at: float
    operations: list[Operation] = field(default_factory=list)
    status: str = "RUNNING"
    result: Any = None
    error: str | None = None
    invocations: int = 0
    step_runs: dict[str, int] = field(default_factory=dict)
    timer: Timer | None = None
    in_flight: bool = False  # an invocation is running (on simulated time it may wait on calls)
    rerun: bool = False  # woken while an invocation was running: invoke again once it has ended


class SimCallback:
    """The future `create_callback` returns."""

    def __init__(self, op: Operation) -> None:
        self._op = op
        self.callback_id = op.callback_id or ""

    def result(self) -> Any:
        """The callback's result; raises CallbackTimeoutError on timeout; suspends while pending."""
        if self._op.status == "SUCCEEDED":
            return self._op.result
        if self._op.status == "TIMED_OUT":
            raise CallbackTimeoutError(message="Callback timed out")
        raise _Suspend()


class SimDurableContext:
    """The subset of DurableContext the workflows use, with replay."""

    def __init__(self, runtime: DurableSim, execution: Execution) -> None:
        self._rt = runtime
        self._ex = execution
        self._index = 0

    def _next(self) -> Operation | None:
        ops = self._ex.operations
        return ops[self._index] if self._index < len(ops) else None

    def step(self, func: Callable[[Any], Any], name: str | None = None, config: Any = None) -> Any:
        """Run once and checkpoint; on replay return the checkpoint."""
        op = self._next()
        if op is not None:
            if op.kind != "step" or op.name != (name or ""):
                raise RuntimeError(f"non-deterministic replay: expected {op.kind} {op.name}, got step {name}")
            self._index += 1
            return op.result
        label = name or ""
        self._ex.step_runs[label] = self._ex.step_runs.get(label, 0) + 1
        result = func(None)
        if self._rt.should_crash(self._ex, label):
            raise SimulatedCrash(f"injected crash after {label} ran, before its checkpoint")
        stored = json.loads(json.dumps(result))
        self._rt.authorize(self._ex.function, "lambda:CheckpointDurableExecution", self._ex.arn)
        self._ex.operations.append(Operation("step", label, stored))
        self._index += 1
        return stored

    def create_callback(self, name: str | None = None, config: CallbackConfig | None = None) -> SimCallback:
        """A callback with an optional timeout; its id wakes the execution."""
        op = self._next()
        if op is not None:
            self._index += 1
            return SimCallback(op)
        callback_id = f"cb-{self._ex.name}-{len(self._ex.operations)}-{self._rt.rng.getrandbits(32):08x}"
        op = Operation("callback", name or "", None, "STARTED", callback_id)
        timeout = config.timeout.to_seconds() if config is not None and config.timeout else 0
        if timeout:
            op.timer = self._rt.clock.after(timeout, lambda: self._rt.time_out(self._ex, op))
        self._ex.operations.append(op)
        self._rt.callbacks[callback_id] = (self._ex, op)
        self._index += 1
        return SimCallback(op)


def _at_once(_function: str, run: Callable[[], Any], done: Callable[[Outcome], None]) -> None:
    try:
        outcome = Outcome(result=run())
    except Exception as exc:  # the invocation's outcome, settled by DurableSim._settle
        outcome = Outcome(error=exc)
    done(outcome)


class DurableSim:
    """Durable executions and the Lambda API that starts and wakes them."""

    def __init__(self, clock: Clock, rng: random.Random, account: str = "111122223333",
                 region: str = "us-east-1") -> None:
        self.clock = clock
        self.rng = rng
        self.account, self.region = account, region
        self.functions: dict[str, Workflow] = {}
        self.versions: dict[str, str] = {}
        self.timeouts: dict[str, float | None] = {}
        self.authorize: Authorize = lambda _function, _action, _arn: None
        self.executions: dict[str, Execution] = {}
        self.callbacks: dict[str, tuple[Execution, Operation]] = {}
        self.invoke_latency_s = 0.1
        self.resume_latency_s = 0.2
        self.retry_delay_s = 1.0
        self.crash_plan: set[tuple[str, str]] = set()
        self.crash_every_step = False
        self.crashes = 0
        self.calls: dict[str, int] = {}
        # Runs one invocation of a workflow function and reports how it ended (at once by default; the
        # deployment runs it on simulated time, where it may end later: sim.latency).
        self.start_invocation: Callable[[str, Callable[[], Any], Callable[[Outcome], None]], None] = _at_once

    def register(self, qualified_arn: str, workflow: Workflow, *, version: str = "1",
                 execution_timeout_s: float | None = None) -> None:
        """Serve `workflow` at a qualified function ARN (alias) pointing at `version`."""
        self.functions[qualified_arn] = workflow
        self.versions[qualified_arn] = version
        self.timeouts[qualified_arn] = execution_timeout_s

    def should_crash(self, execution: Execution, step: str) -> bool:
        """True once per (execution, step) chosen for a crash."""
        key = (execution.name, step)
        if key in self.crash_plan or (self.crash_every_step and execution.step_runs.get(step, 0) == 1):
            self.crash_plan.discard(key)
            self.crashes += 1
            return True
        return False

    # ---- the Lambda API -------------------------------------------------------------------------
    def call(self, service: str, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """Serve Invoke and SendDurableExecutionCallbackSuccess."""
        self.calls[operation] = self.calls.get(operation, 0) + 1
        if service != "lambda":
            raise UnsupportedOperation(service, operation)
        if operation == "Invoke":
            return self._invoke(params)
        if operation == "SendDurableExecutionCallbackSuccess":
            found = self.callbacks.get(params["CallbackId"])
            if found is None or found[1].status != "STARTED":
                raise SimApiError("ResourceNotFoundException", "The callback does not exist or is complete.", 404)
            execution, op = found
            op.status = "SUCCEEDED"
            op.result = json.loads(params.get("Result") or b"null")
            if op.timer:
                op.timer.cancel()
            self.clock.after(self.resume_latency_s, lambda: self._run(execution))
            return {}
        raise UnsupportedOperation(service, operation)

    def _invoke(self, params: dict[str, Any]) -> dict[str, Any]:
        function = params["FunctionName"]
        if params.get("Qualifier"):
            function = f"{function}:{params['Qualifier']}"
        if function not in self.functions:
            raise SimApiError("ResourceNotFoundException", f"Function not found: {function}", 404)
        if function.count(":") < 7:
            raise SimApiError("InvalidParameterValueException",
                              "Durable functions must be invoked with a qualified ARN (version or alias).")
        payload = json.loads(params.get("Payload") or b"{}")
        name = params.get("DurableExecutionName") or f"auto-{self.rng.getrandbits(64):016x}"
        existing = self.executions.get(name)
        if existing is not None:
            if existing.payload != payload:
                raise SimApiError("DurableExecutionAlreadyStartedException",
                                  f"Execution {name} already started with a different payload.", 409)
            return {"StatusCode": 202, "DurableExecutionArn": existing.arn}
        unqualified = ":".join(function.split(":")[:7])
        arn = (f"{unqualified}:{self.versions[function]}/durable-execution/{name}/"
               f"{self.rng.getrandbits(128):032x}")
        execution = Execution(name, function, payload, arn, self.clock.now)
        self.executions[name] = execution
        timeout = self.timeouts[function]
        if timeout:
            execution.timer = self.clock.after(timeout, lambda: self._time_out_execution(execution))
        self.clock.after(self.invoke_latency_s, lambda: self._run(execution))
        return {"StatusCode": 202, "DurableExecutionArn": arn}

    def time_out(self, execution: Execution, op: Operation) -> None:
        """A callback's timeout elapsed: mark it and resume the execution."""
        if op.status == "STARTED":
            op.status = "TIMED_OUT"
            self._run(execution)

    def _time_out_execution(self, execution: Execution) -> None:
        """ExecutionTimeout elapsed: the execution fails; nothing it waits on resumes it."""
        if execution.status != "RUNNING":
            return
        execution.status, execution.error = "TIMED_OUT", "Execution timed out"
        for op in execution.operations:
            if op.timer is not None:
                op.timer.cancel()

    def _run(self, execution: Execution) -> None:
        if execution.status != "RUNNING":
            return
        if execution.in_flight:
            execution.rerun = True  # the service runs one invocation of an execution at a time
            return
        execution.invocations += 1
        execution.in_flight = True
        ctx = SimDurableContext(self, execution)
        workflow = self.functions[execution.function]

        def invocation() -> Any:
            if len(execution.operations) > STATE_PAGE:
                self.authorize(execution.function, "lambda:GetDurableExecutionState", execution.arn)
            return workflow(execution.payload, ctx)

        self.start_invocation(execution.function, invocation, lambda outcome: self._settle(execution, outcome))

    def _settle(self, execution: Execution, outcome: Outcome) -> None:
        """An invocation ended: suspended, crashed (retried), failed, or the execution succeeded."""
        execution.in_flight = False
        error = outcome.error
        if execution.status != "RUNNING":
            return  # timed out meanwhile
        if isinstance(error, _Suspend):
            if execution.rerun:
                execution.rerun = False
                self.clock.after(self.resume_latency_s, lambda: self._run(execution))
            return
        if isinstance(error, SimulatedCrash):
            self.clock.after(self.retry_delay_s, lambda: self._run(execution))
            return
        if error is not None and not isinstance(error, Exception):
            raise error
        if error is not None:
            execution.status, execution.error = "FAILED", f"{type(error).__name__}: {error}"
            if execution.timer is not None:
                execution.timer.cancel()
            return
        execution.status, execution.result = "SUCCEEDED", outcome.result
        if execution.timer is not None:
            execution.timer.cancel()

    def running(self) -> list[Execution]:
        """Executions not yet finished."""
        return [e for e in self.executions.values() if e.status == "RUNNING"]
