"""Adaptive retry mode in the simulator: botocore's client-side rate limiter waits on the caller's clock."""

from __future__ import annotations

from typing import Any

from botocore.config import Config

from sim.errors import SimApiError
from sim.wire import make_client


class FakeClock:
    """A RateClock that only moves when waited on."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.waits: list[float] = []

    def current_time(self) -> float:
        return self.now

    def sleep(self, amount: float) -> None:
        self.waits.append(amount)
        self.now += amount


class ThrottlingBackend:
    """Answers ListClusters, throttling the first `throttles` calls."""

    def __init__(self, throttles: int) -> None:
        self.throttles = throttles

    def call(self, service: str, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        if self.throttles > 0:
            self.throttles -= 1
            raise SimApiError("ThrottlingException", "Rate exceeded", 400)
        return {"clusterArns": []}


def test_an_adaptive_client_throttled_by_ecs_waits_for_tokens_on_the_simulated_clock() -> None:
    # GIVEN an adaptive-mode ECS client on a simulated clock, and an ECS that throttles its first calls
    clock = FakeClock()
    backoffs: list[float] = []
    client = make_client("ecs", ThrottlingBackend(throttles=3), config=Config(
        retries={"mode": "adaptive", "total_max_attempts": 10}), backoff=backoffs.append, rate_clock=clock)
    # WHEN it makes calls after the throttles
    for _ in range(5):
        client.list_clusters()
    # THEN the rate limiter (enabled by the throttles) made later calls wait for tokens on that clock, not in real
    # time, and the retry backoff went to the simulator too
    assert clock.waits and all(w > 0 for w in clock.waits)
    assert len(backoffs) == 3


def test_an_adaptive_client_never_throttled_never_waits() -> None:
    # GIVEN an adaptive-mode client on a simulated clock, and an ECS that never throttles
    clock = FakeClock()
    client = make_client("ecs", ThrottlingBackend(throttles=0), config=Config(
        retries={"mode": "adaptive", "total_max_attempts": 3}), backoff=lambda _s: None, rate_clock=clock)
    # WHEN it calls / THEN the limiter stays off: no wait
    for _ in range(5):
        client.list_clusters()
    assert clock.waits == []
