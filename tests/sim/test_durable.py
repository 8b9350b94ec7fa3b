"""The simulated durable-execution service, driving small workflows through the durable SDK's own entry point.

Each workflow is a real `durable_execution` handler; the SDK's `LambdaClient` talks to `DurableSim`
through sim.wire (real boto3 requests), as it talks to Lambda. What is specified here is the
service side: tokens, timers on the simulated clock, callbacks, timeouts, paging and fault injection.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from aws_durable_execution_sdk_python import DurableContext, durable_execution
from aws_durable_execution_sdk_python.config import CallbackConfig, Duration, StepConfig
from aws_durable_execution_sdk_python.exceptions import CallbackError, CallbackTimeoutError
from aws_durable_execution_sdk_python.lambda_service import LambdaClient
from aws_durable_execution_sdk_python.retries import RetryStrategyConfig, create_retry_strategy
from botocore.exceptions import ClientError

from sim.clock import Clock
from sim.durable import STATE_PAGE, DurableSim, Execution
from sim.wire import make_client

FUNCTION = "arn:aws:lambda:us-east-1:111122223333:function:wf"
ALIAS = f"{FUNCTION}:live"


@dataclass
class Service:
    """A DurableSim serving one workflow at `ALIAS`, and a Lambda client on the wire to it."""

    clock: Clock
    durable: DurableSim
    client: Any
    outputs: list[Mapping[str, Any]] = field(default_factory=list)

    def start(self, name: str, payload: dict[str, Any] | None = None) -> Execution:
        """Invoke the alias with a durable execution name; return the execution."""
        self.client.invoke(FunctionName=ALIAS, InvocationType="Event", DurableExecutionName=name,
                           Payload=json.dumps(payload or {}).encode())
        return self.durable.executions[name]


@pytest.fixture
def serve() -> Iterator[Callable[..., Service]]:
    def build(handler: Callable[[Any, Any], Any], *, timeout_s: float | None = None) -> Service:
        clock = Clock()
        durable = DurableSim(clock, random.Random(1))
        durable.register(ALIAS, version="3", execution_timeout_s=timeout_s)
        client = make_client("lambda", durable)
        service = Service(clock, durable, client)

        def invoke(function: str, event: dict[str, Any]) -> Mapping[str, Any]:
            assert function == ALIAS
            LambdaClient._cached_boto_client = client
            output: Mapping[str, Any] = handler(event, None)
            service.outputs.append(output)
            return output

        durable.invoke = invoke
        return service

    yield build
    LambdaClient._cached_boto_client = None


def test_a_completed_step_is_not_run_again_when_the_execution_is_replayed(serve: Callable[..., Service]) -> None:
    # GIVEN a workflow with a step, then a one-minute wait, then a second step
    runs: list[str] = []

    def workflow(event: dict[str, Any], ctx: DurableContext) -> dict[str, Any]:
        first = ctx.step(lambda _c: runs.append("first") or 1, name="first")
        ctx.wait(Duration.from_seconds(60), name="pause")
        second = ctx.step(lambda _c: runs.append("second") or 2, name="second")
        return {"sum": first + second, "input": event["n"]}

    service = serve(durable_execution(workflow))
    # WHEN it is started and the clock runs past the wait
    execution = service.start("run-1", {"n": 7})
    service.clock.run_until(30.0)
    # THEN it suspends on the wait after the first step ...
    assert (execution.status, runs) == ("RUNNING", ["first"])
    service.clock.run_until(61.0)
    # ... and the invocation at the wait's end replays the first step without running it
    assert execution.status == "SUCCEEDED"
    assert execution.result == {"sum": 3, "input": 7}
    assert runs == ["first", "second"]
    assert execution.invocations == 2
    assert [op.name for op in execution.operations] == ["first", "pause", "second"]
    assert ":function:wf:3/durable-execution/run-1/" in execution.arn


def test_a_callback_completed_through_the_api_resumes_the_execution_with_its_result(
        serve: Callable[..., Service]) -> None:
    # GIVEN a workflow that hands a callback id out and waits for it
    handed_out: list[str] = []

    def workflow(_event: dict[str, Any], ctx: DurableContext) -> Any:
        callback = ctx.create_callback(name="approval", config=CallbackConfig(timeout=Duration.from_seconds(300)))
        ctx.step(lambda _c: handed_out.append(callback.callback_id), name="hand-out")
        return json.loads(callback.result() or "null")

    service = serve(durable_execution(workflow))
    execution = service.start("run-1")
    service.clock.run_until(10.0)
    assert execution.status == "RUNNING" and len(handed_out) == 1
    # WHEN the callback is completed at 20 s
    service.clock.run_until(20.0)
    service.client.send_durable_execution_callback_success(CallbackId=handed_out[0],
                                                           Result=json.dumps({"ok": True}).encode())
    service.clock.run_until(21.0)
    # THEN the execution resumed and returned the callback's result; the callback is no longer open
    assert (execution.status, execution.result) == ("SUCCEEDED", {"ok": True})
    with pytest.raises(ClientError) as denied:
        service.client.send_durable_execution_callback_success(CallbackId=handed_out[0], Result=b"{}")
    assert denied.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_a_callback_failure_and_a_callback_timeout_reach_the_workflow_as_the_sdk_errors(
        serve: Callable[..., Service]) -> None:
    # GIVEN a workflow waiting on two callbacks in turn, noting how each ended
    ids: list[str] = []

    def workflow(_event: dict[str, Any], ctx: DurableContext) -> list[str]:
        seen: list[str] = []
        for n in range(2):
            callback = ctx.create_callback(name=f"cb-{n}", config=CallbackConfig(timeout=Duration.from_seconds(30)))
            ctx.step(lambda _c, cid=callback.callback_id: ids.append(cid), name=f"note-{n}")
            try:
                callback.result()
                seen.append("ok")
            except CallbackTimeoutError:
                seen.append("timed out")
            except CallbackError:
                seen.append("failed")
        return seen

    service = serve(durable_execution(workflow))
    execution = service.start("run-1")
    service.clock.run_until(5.0)
    # WHEN the first callback is failed and the second is left to time out
    service.client.send_durable_execution_callback_failure(CallbackId=ids[0], Error={"ErrorMessage": "no"})
    service.clock.run_until(100.0)
    # THEN the workflow saw a failure, then a timeout, 30 s after the second callback was created
    assert (execution.status, execution.result) == ("SUCCEEDED", ["failed", "timed out"])
    (second,) = [op for op in execution.operations if op.name == "cb-1"]
    assert (second.status.value, (second.end_timestamp - second.start_timestamp).total_seconds()) == ("TIMED_OUT", 30)


def test_a_heartbeat_keeps_a_callback_open_until_heartbeats_stop(serve: Callable[..., Service]) -> None:
    # GIVEN a callback with a 20 s heartbeat timeout and a long overall timeout
    ids: list[str] = []

    def workflow(_event: dict[str, Any], ctx: DurableContext) -> str:
        callback = ctx.create_callback(name="beat", config=CallbackConfig(
            timeout=Duration.from_seconds(1000), heartbeat_timeout=Duration.from_seconds(20)))
        ctx.step(lambda _c: ids.append(callback.callback_id), name="note")
        try:
            callback.result()
        except CallbackTimeoutError:
            return "heartbeat missed"
        return "done"

    service = serve(durable_execution(workflow))
    execution = service.start("run-1")
    # WHEN heartbeats arrive every 15 s until 60 s, then stop
    for at in (15.0, 30.0, 45.0, 60.0):
        service.clock.run_until(at)
        service.client.send_durable_execution_callback_heartbeat(CallbackId=ids[0])
    service.clock.run_until(79.0)
    assert execution.status == "RUNNING"
    service.clock.run_until(81.0)
    # THEN the callback timed out 20 s after the last heartbeat
    assert (execution.status, execution.result) == ("SUCCEEDED", "heartbeat missed")


def test_a_failing_step_is_retried_when_its_retry_is_due_on_the_simulated_clock(
        serve: Callable[..., Service]) -> None:
    # GIVEN a step that fails twice, retried by the SDK's strategy 10 s apart (no jitter)
    attempts: list[float] = []

    def flaky(_c: Any) -> str:
        attempts.append(service.clock.now)
        if len(attempts) < 3:
            raise RuntimeError("not yet")
        return "done"

    retry = create_retry_strategy(RetryStrategyConfig(
        max_attempts=5, initial_delay=Duration.from_seconds(10), backoff_rate=1.0, jitter_strategy=_no_jitter()))

    def workflow(_event: dict[str, Any], ctx: DurableContext) -> str:
        result: str = ctx.step(flaky, name="flaky", config=StepConfig(retry_strategy=retry))
        return result

    service = serve(durable_execution(workflow))
    execution = service.start("run-1")
    # WHEN the clock runs
    service.clock.run_until(60.0)
    # THEN each retry ran in a new invocation when it was due, and the third attempt succeeded
    assert (execution.status, execution.result) == ("SUCCEEDED", "done")
    assert attempts == [0.1, 10.1, 20.1]


def _no_jitter() -> Any:
    from aws_durable_execution_sdk_python.retries import JitterStrategy

    return JitterStrategy.NONE


def test_an_error_the_workflow_raises_fails_the_execution_with_its_type_and_message(
        serve: Callable[..., Service]) -> None:
    # GIVEN a workflow that rejects its input before any step
    def workflow(event: dict[str, Any], _ctx: DurableContext) -> None:
        raise ValueError(f"bad input: {event}")

    service = serve(durable_execution(workflow))
    # WHEN it runs
    execution = service.start("run-1", {"x": 1})
    service.clock.run_until(1.0)
    # THEN it failed once (no retry), with the error as the SDK reported it, and checkpointed nothing
    assert execution.status == "FAILED"
    assert execution.error == "ValueError: bad input: {'x': 1}"
    assert (execution.invocations, execution.operations, execution.step_runs) == (1, [], {})


def test_an_execution_past_its_timeout_times_out_and_its_callback_cannot_be_completed(
        serve: Callable[..., Service]) -> None:
    # GIVEN a workflow waiting on a callback with no timeout, in an execution limited to 120 s
    ids: list[str] = []

    def workflow(_event: dict[str, Any], ctx: DurableContext) -> Any:
        callback = ctx.create_callback(name="forever")
        ctx.step(lambda _c: ids.append(callback.callback_id), name="note")
        return callback.result()

    service = serve(durable_execution(workflow), timeout_s=120.0)
    execution = service.start("run-1")
    # WHEN nothing completes the callback
    service.clock.run_until(119.0)
    assert execution.status == "RUNNING"
    service.clock.run_until(121.0)
    # THEN the execution timed out, and the callback is gone with it
    assert (execution.status, execution.error) == ("TIMED_OUT", "Execution timed out")
    with pytest.raises(ClientError) as gone:
        service.client.send_durable_execution_callback_success(CallbackId=ids[0], Result=b"{}")
    assert gone.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert service.clock.pending() == 0


def test_a_long_history_is_handed_over_a_page_at_a_time_and_read_with_get_durable_execution_state(
        serve: Callable[..., Service]) -> None:
    # GIVEN a workflow with more steps than the first page holds, then a wait
    def workflow(_event: dict[str, Any], ctx: DurableContext) -> int:
        total = sum(ctx.step(lambda _c, n=n: n, name=f"s-{n}") for n in range(STATE_PAGE + 20))
        ctx.wait(Duration.from_seconds(5), name="pause")
        return total

    service = serve(durable_execution(workflow))
    execution = service.start("run-1")
    service.clock.run_until(1.0)
    assert service.durable.calls.get("GetDurableExecutionState", 0) == 0
    # WHEN the replay after the wait needs the whole history
    service.clock.run_until(10.0)
    # THEN the invocation read the rest of it from the service and finished
    assert (execution.status, execution.result) == ("SUCCEEDED", sum(range(STATE_PAGE + 20)))
    assert service.durable.calls["GetDurableExecutionState"] >= 1


def test_a_checkpoint_with_a_stale_token_is_rejected(serve: Callable[..., Service]) -> None:
    # GIVEN an execution suspended on a wait (its invocation is over)
    def workflow(_event: dict[str, Any], ctx: DurableContext) -> None:
        ctx.wait(Duration.from_seconds(60), name="pause")

    service = serve(durable_execution(workflow))
    execution = service.start("run-1")
    service.clock.run_until(1.0)
    token = execution.record.get_new_checkpoint_token()
    # WHEN something checkpoints with the last invocation's token
    with pytest.raises(ClientError) as rejected:
        service.client.checkpoint_durable_execution(DurableExecutionArn=execution.arn, CheckpointToken=token,
                                                    Updates=[])
    # THEN the service refuses it as a stale token
    assert rejected.value.response["Error"]["Code"] == "InvalidParameterValueException"
    assert rejected.value.response["Error"]["Message"] == "Invalid checkpoint token"


def test_a_crash_before_a_checkpoint_reruns_the_step_in_a_retried_invocation(serve: Callable[..., Service]) -> None:
    # GIVEN a crash planned for the step "effect": its body runs, then the invocation dies
    runs: list[str] = []

    def workflow(_event: dict[str, Any], ctx: DurableContext) -> int:
        ctx.step(lambda _c: runs.append("before") or 0, name="before")
        value: int = ctx.step(lambda _c: runs.append("effect") or 42, name="effect")
        return value

    service = serve(durable_execution(workflow))
    service.durable.crash_plan.add(("run-1", "effect"))
    # WHEN it runs
    execution = service.start("run-1")
    service.clock.run_until(5.0)
    # THEN the effect ran twice (the first result never landed), the step before it once
    assert (execution.status, execution.result) == ("SUCCEEDED", 42)
    assert runs == ["before", "effect", "effect"]
    assert (service.durable.crashes, execution.invocations) == (1, 2)
    assert execution.step_runs == {"before": 1, "effect": 2}
