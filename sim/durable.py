"""Lambda's durable-execution service, on the simulated clock: the workflows run through the SDK.

The workflow functions are invoked as Lambda invokes a durable function: the handler the template
names (the SDK's `durable_execution` entry point) receives the durable invocation input
(``DurableExecutionArn``, ``CheckpointToken``, ``InitialExecutionState`` with the first `STATE_PAGE`
operations and a ``NextMarker``), and the SDK's own client calls the durable-execution API
(CheckpointDurableExecution, GetDurableExecutionState) through sim.wire as real boto3 requests,
with IAM enforced by the function's role. The SDK does the replay; nothing here restates it.

This module is the service side. Checkpoint updates are applied by the SDK testing library's
service components (`CheckpointCore`: validation and the per-type processors for STEP, WAIT,
CALLBACK, CONTEXT and EXECUTION; `OperationPaginatorState`: the paging of long histories), given
the simulated time. What the testing library does on its own threads and wall clock is done here on
the simulated clock: each checkpoint hands out a new token; a WAIT's timer, a STEP retry coming due,
a callback completed (SendDurableExecutionCallbackSuccess / Failure), timed out or missing its
heartbeat re-invokes the execution; the handler's output (SUCCEEDED / FAILED / PENDING) closes it or
leaves it waiting. The Lambda API that starts and wakes executions (Invoke with
DurableExecutionName, the callback calls) is served here too.

What the template says of each workflow function applies: the execution ARN carries the version
the alias points to (``function:NAME:VERSION/durable-execution/NAME/ID``), and an execution still
running at its ExecutionTimeout fails (status TIMED_OUT, its callbacks no longer completable).

Fault injection: `crash_before_checkpoint` (``crash_plan``, ``crash_every_step``) makes a chosen
step run its body and the invocation die before the step's result is checkpointed (the worst case
for repeated effects); Lambda retries the failed invocation after `retry_delay_s`.
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import Any

from aws_durable_execution_sdk_python import state as sdk_state
from aws_durable_execution_sdk_python.lambda_service import (
    CallbackTimeoutType,
    ErrorObject,
    OperationAction,
    OperationStatus,
    OperationType,
    OperationUpdate,
)
from aws_durable_execution_sdk_python_testing.checkpoint.core import CheckpointCore
from aws_durable_execution_sdk_python_testing.checkpoint.effects import CallbackCreated
from aws_durable_execution_sdk_python_testing.checkpoint.transformer import CheckpointRequestDispatcher
from aws_durable_execution_sdk_python_testing.exceptions import (
    IllegalStateException,
    InvalidParameterValueException,
)
from aws_durable_execution_sdk_python_testing.execution import Execution as ServiceRecord
from aws_durable_execution_sdk_python_testing.execution import OperationPaginatorState
from aws_durable_execution_sdk_python_testing.model import StartDurableExecutionInput
from aws_durable_execution_sdk_python_testing.token import CallbackToken, CheckpointToken

from sim.clock import Clock, Timer
from sim.errors import SimApiError, UnsupportedOperation
from sim.latency import Outcome

# Invoke(qualified function ARN, durable invocation input) -> the handler's output; raises if the
# invocation itself failed (Lambda then retries it).
Invoker = Callable[[str, dict[str, Any]], Mapping[str, Any]]
# Start an invocation (qualified function ARN, durable invocation input) and report how it ended; on
# simulated time (sim.latency) it may end later, while other events run.
StartInvocation = Callable[[str, dict[str, Any], Callable[[Outcome], None]], None]
STATE_PAGE = 100  # operations handed to an invocation; more are read with GetDurableExecutionState
STATE_PAGE_MAX_ITEMS = 1000  # the most GetDurableExecutionState returns per call
PAGE_BYTES = 5 * 1024 * 1024


def _stop_checkpointing_promptly() -> None:
    """Let an invocation end as soon as its handler returns, not on the SDK's next wall-clock poll.

    The SDK's checkpoint thread notices the end of an invocation by polling its stop flag every
    100 ms of wall time (`_STOP_SIGNAL_POLL_SECONDS`); Lambda bills no one for that, but the
    simulator runs thousands of invocations, each of which would wait it out. Stopping also wakes
    the thread (with the wake-up the SDK itself queues for a refresh), so it exits at once. Batching,
    checkpoints and replay are the SDK's as shipped. Fails loudly if a new SDK version moved them.
    """
    execution_state = sdk_state.ExecutionState
    original = execution_state.stop_checkpointing
    if getattr(original, "sim_prompt", False):
        return
    wake = sdk_state._Signal.REFRESH_WAKE

    def stop_checkpointing(self: Any) -> None:
        original(self)
        self._checkpoint_queue.put(wake)

    stop_checkpointing.sim_prompt = True  # type: ignore[attr-defined]
    execution_state.stop_checkpointing = stop_checkpointing  # type: ignore[method-assign]


_stop_checkpointing_promptly()


class SimulatedCrash(Exception):
    """An injected crash of a workflow invocation."""


@dataclass
class Execution:
    """One durable execution: the service's record of it and what the simulator tracks around it."""

    name: str
    function: str
    payload: dict[str, Any]
    arn: str
    started_at: float
    record: ServiceRecord
    status: str = "RUNNING"
    result: Any = None
    error: str | None = None
    invocations: int = 0
    step_runs: dict[str, int] = field(default_factory=dict)
    crashed_steps: set[str] = field(default_factory=set)
    timer: Timer | None = None
    wake: Timer | None = None
    op_timers: dict[str, Timer] = field(default_factory=dict)
    heartbeats: dict[str, Timer] = field(default_factory=dict)
    callback_options: dict[str, tuple[int, int]] = field(default_factory=dict)
    created_callbacks: list[str] = field(default_factory=list)
    invoking: bool = False
    rerun: bool = False  # woken while an invocation was running: invoke again once it has ended

    @property
    def operations(self) -> list[Any]:
        """The checkpointed operations (steps, waits, callbacks, contexts), oldest first."""
        return [op for op in self.record.operations if op.operation_type is not OperationType.EXECUTION]


def _error_text(error: Mapping[str, Any] | None) -> str:
    error = error or {}
    return f"{error.get('ErrorType') or 'Error'}: {error.get('ErrorMessage') or ''}"


class DurableSim:
    """Durable executions and the Lambda API that starts, checkpoints and wakes them."""

    def __init__(self, clock: Clock, rng: random.Random, account: str = "111122223333",
                 region: str = "us-east-1") -> None:
        self.clock = clock
        self.rng = rng
        self.account, self.region = account, region
        self.versions: dict[str, str] = {}
        self.timeouts: dict[str, float | None] = {}
        self.retention_days: dict[str, int] = {}
        self.invoke: Invoker = lambda _function, _event: {"Status": "FAILED"}
        # How an invocation runs: at once through `invoke` by default; the deployment runs it on
        # simulated time (sim.latency), where it ends later.
        self.start_invocation: StartInvocation = self._invoke_at_once
        self.executions: dict[str, Execution] = {}
        self.by_arn: dict[str, Execution] = {}
        self.invoke_latency_s = 0.1
        self.resume_latency_s = 0.2
        self.retry_delay_s = 1.0
        self.crash_plan: set[tuple[str, str]] = set()
        self.crash_every_step = False
        self.crashes = 0
        self.calls: dict[str, int] = {}
        self._dispatcher = CheckpointRequestDispatcher()
        self._calls_lock = threading.Lock()

    def register(self, qualified_arn: str, *, version: str = "1", execution_timeout_s: float | None = None,
                 retention_days: int = 14) -> None:
        """Serve the durable function at a qualified function ARN (alias) pointing at `version`."""
        self.versions[qualified_arn] = version
        self.timeouts[qualified_arn] = execution_timeout_s
        self.retention_days[qualified_arn] = retention_days

    def execution_of_callback(self, callback_id: str) -> Execution | None:
        """The execution a callback id belongs to (None if it names none)."""
        try:
            return self.by_arn.get(CallbackToken.from_str(callback_id).execution_arn)
        except (ValueError, KeyError, TypeError):
            return None

    def running(self) -> list[Execution]:
        """Executions not yet finished."""
        return [e for e in self.executions.values() if e.status == "RUNNING"]

    # ---- the Lambda API -------------------------------------------------------------------------
    def call(self, service: str, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """Serve Invoke, the checkpoint and state calls, and the callback calls."""
        with self._calls_lock:  # the SDK's checkpoint thread calls while the handler's thread may
            self.calls[operation] = self.calls.get(operation, 0) + 1
        if service != "lambda":
            raise UnsupportedOperation(service, operation)
        if operation == "Invoke":
            return self._start(params)
        if operation == "CheckpointDurableExecution":
            return self._checkpoint(params)
        if operation == "GetDurableExecutionState":
            return self._state(params)
        if operation in ("SendDurableExecutionCallbackSuccess", "SendDurableExecutionCallbackFailure",
                         "SendDurableExecutionCallbackHeartbeat"):
            return self._callback(operation, params)
        raise UnsupportedOperation(service, operation)

    def _start(self, params: dict[str, Any]) -> dict[str, Any]:
        function = params["FunctionName"]
        if params.get("Qualifier"):
            function = f"{function}:{params['Qualifier']}"
        if function not in self.versions:
            raise SimApiError("ResourceNotFoundException", f"Function not found: {function}", 404)
        if function.count(":") < 7:
            raise SimApiError("InvalidParameterValueException",
                              "Durable functions must be invoked with a qualified ARN (version or alias).")
        raw = params.get("Payload") or b"{}"
        payload = json.loads(raw)
        name = params.get("DurableExecutionName") or f"auto-{self.rng.getrandbits(64):016x}"
        existing = self.executions.get(name)
        if existing is not None:
            if existing.payload != payload:
                raise SimApiError("DurableExecutionAlreadyStartedException",
                                  f"Execution {name} already started with a different payload.", 409)
            return {"StatusCode": 202, "DurableExecutionArn": existing.arn}
        unqualified = ":".join(function.split(":")[:7])
        execution_id = f"{self.rng.getrandbits(128):032x}"
        arn = f"{unqualified}:{self.versions[function]}/durable-execution/{name}/{execution_id}"
        timeout = self.timeouts[function]
        record = ServiceRecord(arn, StartDurableExecutionInput(
            account_id=self.account, function_name=unqualified, function_qualifier=function.split(":")[7],
            execution_name=name, execution_timeout_seconds=int(timeout or 0),
            execution_retention_period_days=self.retention_days[function], invocation_id=execution_id,
            input=raw.decode() if isinstance(raw, bytes) else str(raw)), [])
        record.start(now=self.clock.datetime())
        execution = Execution(name, function, payload, arn, self.clock.now, record)
        self.executions[name] = execution
        self.by_arn[arn] = execution
        if timeout:
            execution.timer = self.clock.after(timeout, lambda: self._time_out_execution(execution))
        self._wake(execution, self.invoke_latency_s)
        return {"StatusCode": 202, "DurableExecutionArn": arn}

    def _current(self, params: Mapping[str, Any]) -> tuple[Execution, str]:
        """The execution a checkpoint token belongs to, if the token is the current invocation's."""
        token_text = str(params.get("CheckpointToken") or "")
        try:
            token = CheckpointToken.from_str(token_text)
        except (ValueError, KeyError, TypeError):
            raise SimApiError("InvalidParameterValueException", "Invalid checkpoint token") from None
        execution = self.by_arn.get(str(params.get("DurableExecutionArn")))
        if execution is None:
            raise SimApiError("ResourceNotFoundException", "The durable execution does not exist.", 404)
        record = execution.record
        current = (record.durable_execution_arn, record.token_sequence, record.current_invocation_id)
        if record.is_complete or not execution.invoking \
                or (token.execution_arn, token.token_sequence, token.invocation_id) != current:
            raise SimApiError("InvalidParameterValueException", "Invalid checkpoint token")
        return execution, token_text

    def _checkpoint(self, params: dict[str, Any]) -> dict[str, Any]:
        """CheckpointDurableExecution: apply the updates, answer a new token and the changed operations.

        Runs on the SDK's checkpoint thread while the handler runs: it touches this execution's record
        only; timers are armed on the simulator's thread once the invocation ends.
        """
        execution, token = self._current(params)
        updates = [OperationUpdate.from_dict(u) for u in params.get("Updates") or []]
        for update in updates:
            if update.operation_type is OperationType.STEP and update.action is OperationAction.START:
                label = update.name or ""
                execution.step_runs[label] = execution.step_runs.get(label, 0) + 1
        for update in updates:
            if update.operation_type is OperationType.STEP and update.action is OperationAction.SUCCEED \
                    and self._should_crash(execution, update.name or ""):
                raise SimulatedCrash(f"injected crash after {update.name} ran, before its checkpoint")
        try:
            result = CheckpointCore.apply(execution.record, token, updates, params.get("ClientToken"),
                                          self._dispatcher, self.clock.datetime())
        except (InvalidParameterValueException, IllegalStateException) as exc:
            raise SimApiError("InvalidParameterValueException", str(exc)) from None
        for effect in result.effects:
            if isinstance(effect, CallbackCreated):
                options = effect.callback_options
                execution.callback_options[effect.callback_token.to_str()] = (
                    (options.timeout_seconds, options.heartbeat_timeout_seconds) if options else (0, 0))
                execution.created_callbacks.append(effect.callback_token.to_str())
        out: dict[str, Any] = {"NewExecutionState": {"Operations": [op.to_dict() for op in result.operations]}}
        if result.checkpoint_token is not None:
            out["CheckpointToken"] = result.checkpoint_token
        return out

    def _state(self, params: dict[str, Any]) -> dict[str, Any]:
        """GetDurableExecutionState: a page of the history the current invocation replays."""
        execution, _ = self._current(params)
        limit = max(1, min(int(params.get("MaxItems") or STATE_PAGE_MAX_ITEMS), STATE_PAGE_MAX_ITEMS))
        try:
            ops, marker = OperationPaginatorState.pin(execution.record).page(
                params.get("Marker") or None, PAGE_BYTES, limit)
        except InvalidParameterValueException as exc:
            raise SimApiError("InvalidParameterValueException", str(exc)) from None
        out: dict[str, Any] = {"Operations": [op.to_dict() for op in ops]}
        if marker:
            out["NextMarker"] = marker
        return out

    def _callback(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        callback_id = str(params["CallbackId"])
        execution = self.execution_of_callback(callback_id)
        op = None
        if execution is not None and execution.status == "RUNNING":
            op = next((o for o in execution.record.operations if o.operation_type is OperationType.CALLBACK
                       and o.callback_details and o.callback_details.callback_id == callback_id), None)
        if execution is None or op is None or op.status is not OperationStatus.STARTED:
            raise SimApiError("ResourceNotFoundException", "The callback does not exist or is complete.", 404)
        now = self.clock.datetime()
        if operation == "SendDurableExecutionCallbackHeartbeat":
            self._arm_heartbeat(execution, op.operation_id, callback_id)
            return {}
        if operation == "SendDurableExecutionCallbackSuccess":
            result = params.get("Result")
            execution.record.complete_callback_success(callback_id, result if result else None, now=now)
        else:
            execution.record.complete_callback_failure(callback_id, ErrorObject.from_dict(params.get("Error") or {}),
                                                       now=now)
        self._cancel(execution, op.operation_id)
        self._wake(execution, self.resume_latency_s)
        return {}

    # ---- faults -----------------------------------------------------------------------------------
    def _should_crash(self, execution: Execution, step: str) -> bool:
        """True once per (execution, step) chosen for a crash."""
        key = (execution.name, step)
        if key in self.crash_plan or (self.crash_every_step and step not in execution.crashed_steps):
            self.crash_plan.discard(key)
            execution.crashed_steps.add(step)
            self.crashes += 1
            return True
        return False

    # ---- invocations ------------------------------------------------------------------------------
    def _wake(self, execution: Execution, delay: float) -> None:
        """Invoke the execution after `delay` (once: an earlier pending wake-up covers a later one)."""
        if execution.status != "RUNNING":
            return
        due = self.clock.now + delay
        if execution.wake is not None and execution.wake.at <= due:
            return
        if execution.wake is not None:
            execution.wake.cancel()
        execution.wake = self.clock.after(delay, lambda: self._run(execution))

    def _run(self, execution: Execution) -> None:
        execution.wake = None
        if execution.status != "RUNNING":
            return
        if execution.invoking:
            execution.rerun = True  # the service runs one invocation of an execution at a time
            return
        record = execution.record
        record.complete_due_operations(self.clock.datetime())
        record.begin_new_invocation()
        paginator = OperationPaginatorState.pin(record)
        ops, marker = paginator.page(None, PAGE_BYTES, STATE_PAGE)
        # The input carries the whole state (its first page, the rest to be read): all of it is seen.
        paginator.advance_handler_seen(record.seq_counter)
        updated = list(record.updated_operation_ids)
        record.mark_state_delivered()
        event = {"DurableExecutionArn": execution.arn, "CheckpointToken": record.get_new_checkpoint_token(),
                 "InitialExecutionState": {"Operations": [op.to_json_dict() for op in ops],
                                           "NextMarker": marker or ""},
                 "UpdatedOperationIds": updated}
        execution.invocations += 1
        execution.invoking = True
        self.start_invocation(execution.function, event, partial(self._settle, execution))

    def _invoke_at_once(self, function: str, event: dict[str, Any], done: Callable[[Outcome], None]) -> None:
        try:
            outcome = Outcome(result=self.invoke(function, event))
        except Exception as exc:  # the invocation failed: settled (and retried) by `_settle`
            outcome = Outcome(error=exc)
        done(outcome)

    def _settle(self, execution: Execution, outcome: Outcome) -> None:
        """An invocation ended: the execution closes, waits (timers armed), or is invoked again."""
        execution.invoking = False
        if outcome.error is not None and not isinstance(outcome.error, Exception):
            raise outcome.error  # not the handler failing: the simulation itself was interrupted
        output = outcome.result if outcome.error is None else None
        rerun, execution.rerun = execution.rerun, False
        record = execution.record
        self._arm_timers(execution)
        if execution.status != "RUNNING":
            return
        if not isinstance(output, Mapping):  # the invocation failed (crashed, timed out): Lambda retries it
            self._wake(execution, self.retry_delay_s)
            return
        status = output.get("Status")
        if status == "SUCCEEDED":
            text = output.get("Result")
            self._finish(execution, "SUCCEEDED", result=json.loads(text) if text else None)
        elif status == "FAILED":
            self._finish(execution, "FAILED", error=_error_text(output.get("Error")))
        elif status == "PENDING":
            if rerun or record.has_unseen_changes():
                self._wake(execution, 0.0)
            elif not record.has_pending_operations(record):
                self._finish(execution, "FAILED", error="InvalidParameterValueException: "
                             "Cannot return PENDING status with no pending operations.")
        else:
            self._finish(execution, "FAILED", error=f"InvalidParameterValueException: invalid status {status!r}")

    def _finish(self, execution: Execution, status: str, *, result: Any = None, error: str | None = None) -> None:
        now = self.clock.datetime()
        record = execution.record
        if status == "SUCCEEDED":
            record.complete_success(json.dumps(result), now=now)
        elif status == "FAILED":
            record.complete_fail(ErrorObject.from_message(error or ""), now=now)
        else:
            record.complete_timeout(ErrorObject.from_message(error or ""), now=now)
        execution.status, execution.result, execution.error = status, result, error
        for op_id in [*execution.op_timers, *execution.heartbeats]:
            self._cancel(execution, op_id)
        for timer in (execution.timer, execution.wake):
            if timer is not None:
                timer.cancel()
        execution.wake = None

    def _time_out_execution(self, execution: Execution) -> None:
        """ExecutionTimeout elapsed: the execution fails; nothing it waits on resumes it."""
        if execution.status == "RUNNING":
            self._finish(execution, "TIMED_OUT", error="Execution timed out")

    # ---- timers -----------------------------------------------------------------------------------
    def _arm_timers(self, execution: Execution) -> None:
        """Timers for what the invocation left waiting: WAITs, STEP retries, callback timeouts."""
        now = self.clock.datetime()
        for op in execution.record.operations:
            if op.operation_id in execution.op_timers:
                continue
            due = None
            if op.operation_type is OperationType.WAIT and op.status is OperationStatus.STARTED and op.wait_details:
                due = op.wait_details.scheduled_end_timestamp
            elif op.operation_type is OperationType.STEP and op.status is OperationStatus.PENDING and op.step_details:
                due = op.step_details.next_attempt_timestamp
            if due is not None:
                delay = max(0.0, (due - now) / timedelta(seconds=1))
                execution.op_timers[op.operation_id] = self.clock.after(
                    delay, partial(self._due, execution, op.operation_id))
        for callback_id in execution.created_callbacks:
            timeout_s, _ = execution.callback_options.get(callback_id, (0, 0))
            op_id = CallbackToken.from_str(callback_id).operation_id
            if timeout_s > 0:
                execution.op_timers[op_id] = self.clock.after(
                    timeout_s, partial(self._callback_timed_out, execution, callback_id, heartbeat=False))
            self._arm_heartbeat(execution, op_id, callback_id)
        execution.created_callbacks.clear()

    def _arm_heartbeat(self, execution: Execution, op_id: str, callback_id: str) -> None:
        """(Re)start a callback's heartbeat timeout, if it has one."""
        _, heartbeat_s = execution.callback_options.get(callback_id, (0, 0))
        if heartbeat_s <= 0:
            return
        previous = execution.heartbeats.pop(op_id, None)
        if previous is not None:
            previous.cancel()
        execution.heartbeats[op_id] = self.clock.after(
            heartbeat_s, lambda: self._callback_timed_out(execution, callback_id, heartbeat=True))

    def _due(self, execution: Execution, op_id: str) -> None:
        execution.op_timers.pop(op_id, None)
        if execution.status == "RUNNING":
            execution.record.complete_due_operations(self.clock.datetime())
            self._wake(execution, 0.0)

    def _callback_timed_out(self, execution: Execution, callback_id: str, *, heartbeat: bool) -> None:
        if execution.status != "RUNNING":
            return
        kind = CallbackTimeoutType.HEARTBEAT if heartbeat else CallbackTimeoutType.TIMEOUT
        message = "Callback timed out on heartbeat" if heartbeat else "Callback timed out"
        try:
            execution.record.complete_callback_timeout(
                callback_id, ErrorObject(message=message, type=kind.value, data=None, stack_trace=None),
                now=self.clock.datetime())
        except IllegalStateException:
            return  # completed meanwhile
        self._cancel(execution, CallbackToken.from_str(callback_id).operation_id)
        self._wake(execution, 0.0)

    def _cancel(self, execution: Execution, op_id: str) -> None:
        for timers in (execution.op_timers, execution.heartbeats):
            timer = timers.pop(op_id, None)
            if timer is not None:
                timer.cancel()

