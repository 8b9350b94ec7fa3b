"""The four Lambda entry points: each builds its handler from a `Runtime` (`daemon_guard.bootstrap`)."""

from __future__ import annotations

from typing import Any

from daemon_guard.core.retry import TimeLeft


def time_left_of(context: Any) -> TimeLeft:
    """Seconds the invocation has left, read from its Lambda context each time it is asked (the context's
    `get_remaining_time_in_millis`, simulated time in the proving ground)."""
    return lambda: float(context.get_remaining_time_in_millis()) / 1000
