"""Daemon coverage: which eligible daemons have a RUNNING task on an instance, and the share of slots covered.

One definition for every reader: the placement planner (is the instance complete, which daemons to
wait for), the reconciler (the coverage metric) and `daemon-guard status` (the table and its summary).
A daemon is covered by a task in its group that is RUNNING and not being stopped (desired STOPPED): a
task told to stop covers nothing, its daemon needs a new one.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from daemon_guard.core.model import ServiceView, TaskView


@dataclass(frozen=True)
class Coverage:
    """One instance's eligible daemons, split into those covered (RUNNING) and those not, by name."""

    running: tuple[str, ...]
    not_running: tuple[str, ...]

    @property
    def complete(self) -> bool:
        """True when every eligible daemon is RUNNING."""
        return not self.not_running


def covers(task: TaskView) -> bool:
    """True when `task` counts for its daemon: RUNNING and not being stopped."""
    return task.last_status == "RUNNING" and not task.stopping


def running_groups(tasks: Iterable[TaskView]) -> frozenset[str]:
    """The task groups (``service:<name>``) with a covering task among `tasks`."""
    return frozenset(t.group for t in tasks if covers(t))


def coverage(eligible: Sequence[ServiceView], running: Collection[str]) -> Coverage:
    """Split `eligible` (in its order) by whether its group is among the `running` groups (`running_groups`)."""
    return Coverage(tuple(s.name for s in eligible if s.group in running),
                    tuple(s.name for s in eligible if s.group not in running))


def coverage_percent(running_slots: int, eligible_slots: int) -> float:
    """Share of eligible daemon slots with a RUNNING task, in percent (100 when there are none)."""
    return 100.0 if eligible_slots == 0 else 100.0 * running_slots / eligible_slots
