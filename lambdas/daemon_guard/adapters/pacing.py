"""The read pace: a token bucket the reconciler's own ECS reads pass through, so that it never takes more
than its share of the account's ECS read buckets (cluster reads and service reads: 100 burst, 20/s each).

It hooks the ECS client's ``before-call`` event for the length of a pass (`paced`); a read finding the
bucket empty waits (`Runtime.sleep`) until a token is back. Writes are not paced: they are few (repairs)
and sit in other buckets.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

READ_PREFIXES = ("Describe", "List", "Get")


class ReadPace:
    """A token bucket of `burst` reads refilled at `rate_per_s`; counts the reads it let through."""

    def __init__(self, rate_per_s: float, burst: float, clock: Callable[[], float],
                 sleep: Callable[[float], None]) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("a read pace needs a rate above 0 and a burst of at least 1")
        self.rate_per_s, self.burst = rate_per_s, burst
        self._clock, self._sleep = clock, sleep
        self._tokens, self._at = burst, clock()
        self.reads = 0
        self.waited_s = 0.0

    def take(self) -> None:
        """Let one read through, waiting for a token first when the bucket is empty."""
        self._refill()
        if self._tokens < 1:
            wait = (1 - self._tokens) / self.rate_per_s
            self._sleep(wait)
            self.waited_s += wait
            self._refill()
            self._tokens = max(self._tokens, 1.0)  # a sleep that returned early (no simulated time) still reads
        self._tokens -= 1
        self.reads += 1

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate_per_s)
        self._at = now


@contextmanager
def paced(client: Any, pace: ReadPace) -> Iterator[ReadPace]:
    """Pace every ECS read `client` makes inside the block (a client without botocore's event hooks, such as
    a test's fake, is left unpaced)."""
    events = getattr(getattr(client, "meta", None), "events", None)
    if events is None:
        yield pace
        return

    def before_call(model: Any = None, **_: Any) -> None:
        if model is not None and str(model.name).startswith(READ_PREFIXES):
            pace.take()

    events.register("before-call.ecs", before_call, unique_id="daemon-guard-read-pace")
    try:
        yield pace
    finally:
        events.unregister("before-call.ecs", unique_id="daemon-guard-read-pace")
