"""The deadline retry: a throttled call is tried again while the invocation has time for the wait and a reserve."""

from __future__ import annotations

import math
import random
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.retries.adaptive import ClientRateLimiter
from botocore.retries.standard import RetryHandler
from daemon_guard.adapters.errors import Throttled, translating
from daemon_guard.adapters.retry import DeadlineRetry, InvocationDeadline
from daemon_guard.bootstrap import client_configs, ecs_retry_mode, settings_of
from daemon_guard.core.retry import RESERVE_S, RetryBudget, next_wait

from sim.errors import SimApiError
from sim.wire import make_client

BUDGET = RetryBudget(max_attempts=20, reserve_s=10.0)


@pytest.mark.parametrize(("attempts", "throttled", "time_left_s", "draw", "expected"), [
    (1, True, 60.0, 0.5, 0.5),  # first retry of a throttle: up to 1 s
    (3, True, 60.0, 0.5, 2.0),  # third: up to 4 s
    (6, True, 60.0, 1.0, 20.0),  # capped at botocore's 20 s
    (12, True, 60.0, 0.99, 19.8),  # however many attempts came before
    (1, False, 60.0, 1.0, 0.05),  # a transient error backs off from 50 ms
    (5, True, 15.0, 1.0, 5.0),  # 16 s would leave less than the reserve: cut to the 5 s that leave it
    (5, True, 10.0, 0.1, None),  # only the reserve left: give up now
    (1, True, 4.0, 0.0, None),  # less than the reserve left
    (20, True, 60.0, 0.5, None),  # every attempt made
    (19, True, math.inf, 1.0, 20.0),  # outside Lambda (no deadline) only the attempts bound it
])
def test_the_next_wait_is_the_sdk_backoff_cut_to_the_time_left_after_the_reserve(
        attempts: int, throttled: bool, time_left_s: float, draw: float, expected: float | None) -> None:
    # GIVEN a call that failed `attempts` times / WHEN the next wait is decided with this time left and draw
    # THEN it is the jittered exponential back-off, cut to what leaves the reserve, or none
    wait = next_wait(BUDGET, attempts, throttled, time_left_s, draw)
    assert wait == (None if expected is None else pytest.approx(expected))


@pytest.mark.parametrize(("attempts", "reserve_s"), [(0, 10.0), (3, -1.0)])
def test_a_budget_without_an_attempt_or_with_a_negative_reserve_is_refused(attempts: int, reserve_s: float) -> None:
    with pytest.raises(ValueError, match="retry budget"):
        RetryBudget(attempts, reserve_s)


class Clock:
    """Simulated seconds that move only when slept."""

    def __init__(self) -> None:
        self.now = 0.0

    def current_time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class ThrottlingEcs:
    """Answers ListClusters, throttling every call until `until_s` on `clock`; counts the calls."""

    def __init__(self, clock: Clock, until_s: float) -> None:
        self.clock, self.until_s, self.calls = clock, until_s, 0

    def call(self, service: str, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        self.calls += 1
        if self.clock.now < self.until_s:
            raise SimApiError("ThrottlingException", "Rate exceeded", 400)
        return {"clusterArns": []}


def deadline_client(clock: Clock, ecs: ThrottlingEcs, deadline: InvocationDeadline) -> tuple[Any, DeadlineRetry]:
    """An adaptive ECS client as the intake builds it (one botocore attempt), with the deadline retry installed."""
    client = make_client("ecs", ecs, config=Config(retries={"mode": "adaptive", "total_max_attempts": 1}),
                         backoff=clock.sleep, rate_clock=clock)
    retry = DeadlineRetry(BUDGET, deadline, clock.sleep, random.Random(7).random)
    retry.install(client)
    return translating(client), retry


def test_a_call_throttled_past_the_invocation_s_time_gives_up_with_the_reserve_left() -> None:
    # GIVEN an invocation with 60 s left and ECS throttling for the next hour
    clock, deadline = Clock(), InvocationDeadline()
    ecs = ThrottlingEcs(clock, until_s=3600.0)
    client, retry = deadline_client(clock, ecs, deadline)
    # WHEN it makes one call
    with deadline.during(lambda: 60.0 - clock.now), pytest.raises(Throttled):
        client.list_clusters()
    # THEN it retried until only the reserve was left, then raised Throttled with the reserve still left
    assert ecs.calls > 1 and retry.gave_up == 1
    assert 60.0 - clock.now == pytest.approx(BUDGET.reserve_s, abs=2.0)  # give or take a rate-limiter wait


def test_a_call_throttled_briefly_gets_through_within_the_invocation() -> None:
    # GIVEN an invocation with 60 s left and ECS throttling for 30 s (more than 4 attempts of the SDK's back-off
    # would wait)
    clock, deadline = Clock(), InvocationDeadline()
    ecs = ThrottlingEcs(clock, until_s=30.0)
    client, retry = deadline_client(clock, ecs, deadline)
    # WHEN it makes one call / THEN it gets its answer, without giving up, before its Timeout
    with deadline.during(lambda: 60.0 - clock.now):
        assert client.list_clusters()["clusterArns"] == []
    assert retry.gave_up == 0 and 30.0 <= clock.now < 60.0


def test_outside_an_invocation_only_the_attempts_bound_the_retries() -> None:
    # GIVEN no invocation's deadline set (a CLI, replay) and ECS throttling for the next hour
    clock = Clock()
    ecs = ThrottlingEcs(clock, until_s=3600.0)
    client, retry = deadline_client(clock, ecs, InvocationDeadline())
    # WHEN a call is made / THEN it is tried its budget's attempts, then raises Throttled
    with pytest.raises(Throttled):
        client.list_clusters()
    assert ecs.calls == BUDGET.max_attempts and retry.gave_up == 1


def test_the_deadline_is_the_invocation_s_only_while_it_runs() -> None:
    # GIVEN a container's deadline / WHEN an invocation sets its time left / THEN it holds inside, not after
    deadline = InvocationDeadline()
    with deadline.during(lambda: 12.5):
        assert deadline() == 12.5
    assert deadline() == math.inf


ENVIRONMENT = {"DAEMON_GUARD_CONFIG": '{"clusters": [{"name": "prod", "autoScalingGroups": ["asg"]}]}',
               "STATE_TABLE": "daemon-guard-state", "ECS_MAX_ATTEMPTS": "20"}


@pytest.mark.parametrize(("mode", "sdk_attempts", "budget"), [
    ("deadline", 1, RetryBudget(20, RESERVE_S)),
    ("sdk", 20, None),
])
def test_who_retries_ecs_calls_comes_from_the_function_environment(
        mode: str, sdk_attempts: int, budget: RetryBudget | None) -> None:
    # GIVEN ECS_RETRY as the stack sets it per function / WHEN the function reads its environment
    environment = ENVIRONMENT | {"ECS_RETRY": mode}
    # THEN under `deadline` botocore makes one attempt a try and the deadline retry the rest, within the attempts;
    # under `sdk` botocore makes them all
    assert client_configs(environment)["ecs"].retries == {"mode": "adaptive", "total_max_attempts": sdk_attempts}
    assert settings_of(environment).ecs_retry == budget


@pytest.mark.parametrize("raw", ["", "Deadline", "botocore", " sdk"])
def test_an_unknown_retry_mode_is_refused_by_name(raw: str) -> None:
    # GIVEN a hand-edited (or absent) ECS_RETRY / WHEN it is read / THEN the error names the variable
    with pytest.raises((ValueError, RuntimeError), match="ECS_RETRY"):
        ecs_retry_mode(ENVIRONMENT | {"ECS_RETRY": raw})


def test_on_a_client_built_as_in_lambda_the_rate_limiter_records_a_throttle_before_the_deadline_retry_waits() -> None:
    # GIVEN the intake's ECS client as the Lambda builds it (adaptive mode, one botocore attempt), hooked
    config = client_configs(ENVIRONMENT | {"ECS_RETRY": "deadline"})["ecs"]
    client = boto3.client("ecs", region_name="us-east-1", config=config, aws_access_key_id="x",
                          aws_secret_access_key="x")
    DeadlineRetry(BUDGET, InvocationDeadline(), lambda _s: None).install(client)
    # WHEN botocore lists who answers a call's needs-retry event, in order
    handlers = list(client.meta.events._emitter._handlers.prefix_search("needs-retry.ecs.ListClusters"))
    owners = [type(getattr(h, "__self__", None)) for h in handlers]
    # THEN adaptive mode's limiter comes before the deadline retry (it records the throttle before the wait), and
    # the deadline retry is the last word (botocore's own handler, one attempt, never retries)
    assert owners.index(ClientRateLimiter) < owners.index(DeadlineRetry) == len(owners) - 1
    assert RetryHandler in owners
