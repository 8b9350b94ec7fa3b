"""Which drain a replacement wakes: the replica phases held by minimumHealthyPercent, in the order they get a slot.

A drain whose replica phase is held (stopping one more task of a service would take it below its
minimumHealthyPercent) registers on each service it waits on. A task of the service reaching RUNNING makes
room for one more stop, not one per waiting drain: waking every waiter would send all of them to ECS for
one slot (a herd of reads under the account's shared rate) and let the slot go to whichever looks first.
So one RUNNING task wakes one drain, the one that started first (a drain that started earlier is nearer its
deadline), skipping waiters whose callback already completed; the others keep their slow look, so a wake-up
that goes to a drain unable to use the slot costs the rest seconds, never progress.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

MISSED = "missed"  # a service wake-up that reached no callback, kept for the drain's next registration


@dataclass(frozen=True)
class ServiceWaiter:
    """One drain waiting for a replacement of a service: its instance, its callback, when the drain started."""

    instance_arn: str
    callback_id: str
    since: float

    @property
    def missed(self) -> bool:
        """A wake-up already found this callback gone: nothing to wake until the drain registers again."""
        return self.callback_id == MISSED


def wake_order(waiters: Iterable[ServiceWaiter]) -> list[ServiceWaiter]:
    """The waiters a replacement may wake, in turn: the drain that started first, then the next (ties by
    instance, so two intakes agree); waiters whose callback is known gone are left out."""
    return sorted((w for w in waiters if not w.missed), key=lambda w: (w.since, w.instance_arn))
