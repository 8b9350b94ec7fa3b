"""Simulated time: a discrete-event loop with a seeded tie order. Same seed, same run."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

EPOCH = datetime(2026, 1, 5, 8, 0, 0, tzinfo=UTC)


@dataclass
class _Entry:
    at: float
    action: Callable[[], None]
    cancelled: bool = False


class Timer:
    """A handle to a scheduled action; `cancel()` makes it a no-op."""

    def __init__(self, entry: _Entry) -> None:
        self._entry = entry

    def cancel(self) -> None:
        """Do not run the action."""
        self._entry.cancelled = True

    @property
    def at(self) -> float:
        """Simulated second at which the action runs."""
        return self._entry.at


class Clock:
    """Seconds since EPOCH; actions run in time order, ties in scheduling order."""

    def __init__(self) -> None:
        self.now = 0.0
        # (when, scheduling order, entry): tuples compare in C, and the order never reaches the entry.
        self._queue: list[tuple[float, int, _Entry]] = []
        self._seq = itertools.count()

    def at(self, when: float, action: Callable[[], None]) -> Timer:
        """Run `action` at simulated second `when` (never in the past)."""
        entry = _Entry(max(when, self.now), action)
        heapq.heappush(self._queue, (entry.at, next(self._seq), entry))
        return Timer(entry)

    def after(self, delay: float, action: Callable[[], None]) -> Timer:
        """Run `action` `delay` seconds from now."""
        return self.at(self.now + max(0.0, delay), action)

    def run_until(self, until: float) -> None:
        """Run every action due up to and including `until`, then set the clock to `until`."""
        while self._queue and self._queue[0][0] <= until:
            entry = heapq.heappop(self._queue)[2]
            if entry.cancelled:
                continue
            self.now = entry.at
            entry.action()
        self.now = max(self.now, until)

    def advance(self, seconds: float) -> None:
        """Run the loop `seconds` forward."""
        self.run_until(self.now + seconds)

    def datetime(self, t: float | None = None) -> datetime:
        """The wall-clock time of simulated second `t` (default now)."""
        return EPOCH + timedelta(seconds=self.now if t is None else t)

    def iso(self, t: float | None = None) -> str:
        """`YYYY-MM-DDTHH:MM:SSZ` as EventBridge writes times."""
        return self.datetime(t).strftime("%Y-%m-%dT%H:%M:%SZ")

    def next_due(self) -> float | None:
        """The simulated second of the next action that will run, or None when nothing is scheduled."""
        while self._queue and self._queue[0][2].cancelled:
            heapq.heappop(self._queue)
        return self._queue[0][0] if self._queue else None

    def pending(self) -> int:
        """Number of scheduled, not cancelled actions."""
        return sum(1 for _, _, e in self._queue if not e.cancelled)
