"""The deadline retry: whether a failed AWS call is tried again, and after how long, given the time left.

A Lambda invocation that sits in its SDK's back-off past its Timeout is killed mid-way; one that gives up on
the first throttle leaves work to be repeated later. `next_wait` retries as long as the invocation has time
for the wait and a reserve to finish after it: botocore's standard back-off (full jitter, ``rand * min(base *
2^(attempt - 1), 20 s)``, the base 1 s for a throttle and 50 ms for a transient error) cut to the time left
minus the reserve, and no retry once that is gone. The adapter (`adapters.retry`) feeds it the attempts
made, the kind of error, the Lambda context's time left (`TimeLeft`) and a random draw.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

TimeLeft = Callable[[], float]  # seconds the invocation has left (the Lambda context's remaining time)

THROTTLE_BASE_S = 1.0  # botocore's throttling_base_scale
TRANSIENT_BASE_S = 0.05  # botocore's non_throttling_base_scale
MAX_BACKOFF_S = 20.0  # botocore's ExponentialBackoff._MAX_BACKOFF
# What an invocation keeps after its last wait: the rest of its work (a few more ECS calls, each of which adaptive
# mode's rate limiter may hold up to 2 s at its lowest rate, and state-table writes) and a clean return.
RESERVE_S = 10.0


def unlimited() -> float:
    """The time left of code run outside Lambda (a CLI, a test): no limit."""
    return math.inf


@dataclass(frozen=True)
class RetryBudget:
    """How far a function retries one call: at most `max_attempts` attempts (the first included), and never
    a wait that leaves less than `reserve_s` of the invocation (to finish its work and return cleanly)."""

    max_attempts: int
    reserve_s: float

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.reserve_s < 0:
            raise ValueError("a retry budget needs at least 1 attempt and a reserve of 0 s or more")


def next_wait(budget: RetryBudget, attempts: int, throttled: bool, time_left_s: float, draw: float) -> float | None:
    """Seconds to wait before the next attempt of a call that failed `attempts` times, or None: give up now.

    `throttled`: the failure was a throttle (back off from 1 s) rather than a transient error (from 50 ms).
    `time_left_s`: what the invocation has left. `draw`: a random number in [0, 1), the jitter.
    The wait is botocore's jittered exponential back-off, cut to what is left after the reserve; with
    nothing left after the reserve, or every attempt made, there is no next attempt.
    """
    room = time_left_s - budget.reserve_s
    if attempts >= budget.max_attempts or room <= 0:
        return None
    base = THROTTLE_BASE_S if throttled else TRANSIENT_BASE_S
    return min(draw * min(base * 2.0 ** (attempts - 1), MAX_BACKOFF_S), room)
