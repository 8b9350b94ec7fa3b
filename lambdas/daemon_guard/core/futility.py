"""Preempt's futility check: stop making room on an instance where replicas keep taking it back.

Preempt stops replica tasks so that a missing daemon fits, then leaves placing the daemon to ECS's
daemon scheduler. Where the replica scheduler comes back first (a backlog of pending replicas, a slow
daemon cycle), replicas take the freed room again before the daemon lands, and every later check
would stop more replicas for nothing. So preempt counts its tries per instance:

- a *try* is one round of evictions on an instance for its missing daemons;
- a try is *futile* when, at the next round, replica tasks placed after it are on the instance and
  the daemons are still missing (the room it freed was taken again);
- once `max_tries` tries were futile, preempt stops on that instance (``give-up``): only the gate
  constraint (placementMode ``gate``) keeps replicas off room held for daemons;
- once preempt gave up on `max_give_ups` instances of a cluster within an episode window (`EPISODE_S`),
  it makes no first try on another instance of that cluster until the window ends: where replicas always
  come back first
  (a standing backlog), each first try would only stop replicas too.

The record (`PreemptTries`) lives in the state store, written conditionally so that two concurrent
checks of one instance make one try. A record older than `EPISODE_S`, or for other daemons, starts a
new episode: preempt may try again, at most `max_tries` rounds of futile evictions per instance per
episode.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from daemon_guard.core.model import ServiceView, TaskView

EPISODE_S = 600
"""How long preempt's record of tries on an instance holds, and the window a cluster's give-ups are counted in.
A give-up is not for good: ten minutes after its last try preempt may try again (ECS's daemon scheduler or the
backlog may have moved on), so churn stays bounded (at most `max_tries` futile rounds per instance and window)
while no instance is left without its daemons for the rest of its life (the fault suite's load story ends with
two instances without their daemons with a window of an hour)."""
GIVE_UPS_COUNTER = "preempt.gave-up"
"""The name a cluster's give-ups are counted under in the eviction-budget store (no service is named so)."""


@dataclass(frozen=True)
class PreemptTries:
    """Preempt's record on one instance: its tries for the missing daemons, how many were futile.

    Attributes
    ----------
    tries
        Rounds of evictions made on the instance in this episode.
    futile
        Of those, the rounds whose room replicas took again before the daemons landed.
    last_at
        When the last round was made (or when preempt gave up).
    daemons
        The daemons the rounds made room for, sorted.
    gave_up
        True once preempt stopped making room on this instance.
    """

    tries: int
    futile: int
    last_at: datetime
    daemons: tuple[str, ...]
    gave_up: bool = False


Verdict = Literal["try", "give-up", "gave-up"]


@dataclass(frozen=True)
class FutilityVerdict:
    """Whether preempt makes another round of evictions, the record to write first, and why."""

    verdict: Verdict
    record: PreemptTries
    refilled: tuple[str, ...]
    reason: str

    @property
    def write(self) -> bool:
        """True when the record changed and must be written (conditionally) before acting."""
        return self.verdict != "gave-up"


def same_episode(record: PreemptTries, daemons: Sequence[str], now: datetime) -> bool:
    """True when `record` is about these daemons (any in common) and its last try is recent enough."""
    return bool(set(record.daemons) & set(daemons)) and (now - record.last_at).total_seconds() < EPISODE_S


def gave_up(record: PreemptTries | None, daemons: Sequence[str], now: datetime) -> bool:
    """True when preempt has given up making room for these daemons on the instance (in this episode)."""
    return record is not None and record.gave_up and same_episode(record, daemons, now)


def refilled_since(tasks: Sequence[TaskView], services: Mapping[str, ServiceView], since: datetime) -> tuple[str, ...]:
    """The replica tasks ECS placed on the instance after `since` and not stopping (sorted ARNs)."""
    return tuple(sorted(
        t.arn for t in tasks
        if not t.stopping and t.created_at is not None and t.created_at > since
        and (svc := services.get(t.service_name or "")) is not None and svc.strategy == "REPLICA"))


@dataclass(frozen=True)
class FutilityBounds:
    """How far preempt goes: futile tries per instance, instances given up on per cluster and episode."""

    max_tries: int = 2
    max_give_ups: int = 3


def judge_try(previous: PreemptTries | None, daemons: Sequence[str], tasks: Sequence[TaskView],
              services: Mapping[str, ServiceView], now: datetime, bounds: FutilityBounds,
              cluster_give_ups: int = 0) -> FutilityVerdict:
    """Decide whether preempt makes another round of evictions for `daemons` on this instance.

    Called only when a round is about to be made (the daemons are missing and do not fit). A round
    whose room replicas placed since have taken counts as futile; at `bounds.max_tries` futile rounds
    preempt gives up on the instance. `cluster_give_ups`: instances of the cluster given up on in this
    episode; at `bounds.max_give_ups` no first try is made on another.
    """
    wanted = tuple(sorted(daemons))
    current = previous if previous is not None and same_episode(previous, wanted, now) else None
    if current is None and cluster_give_ups >= bounds.max_give_ups:
        record = PreemptTries(0, 0, now, wanted, gave_up=True)
        return FutilityVerdict("give-up", record, (), (
            f"preempt gave up on {cluster_give_ups} instance(s) of this cluster within ten minutes: replicas take "
            f"back the room it frees before ECS places the daemons; no first try here: {GATE_ADVICE}"))
    if current is None:
        return FutilityVerdict("try", PreemptTries(1, 0, now, wanted), (), "first try on this instance")
    if current.gave_up:
        return FutilityVerdict("gave-up", current, (), gave_up_reason(current))
    refilled = refilled_since(tasks, services, current.last_at)
    futile = current.futile + (1 if refilled else 0)
    max_tries = bounds.max_tries
    if futile >= max_tries:
        record = PreemptTries(current.tries, futile, now, wanted, gave_up=True)
        return FutilityVerdict("give-up", record, refilled, gave_up_reason(record))
    retaken = f"{len(refilled)} replica task(s) placed since took the room" if refilled else \
        "no replica took the room since"
    return FutilityVerdict("try", PreemptTries(current.tries + 1, futile, now, wanted), refilled,
                           f"try {current.tries + 1}: {retaken} ({futile} of {max_tries} futile)")


def gave_up_reason(record: PreemptTries) -> str:
    """One line: what preempt tried on the instance, and why it stopped."""
    if record.tries == 0:
        return f"preempt gave up on this cluster's new instances for ten minutes: {GATE_ADVICE}"
    return (f"preempt made room {record.tries} time(s) for {', '.join(record.daemons)} and replicas took it "
            f"again before ECS placed the daemons ({record.futile} futile); no more evictions on this instance: "
            f"{GATE_ADVICE}")


GATE_ADVICE = "placementMode gate (the gate constraint on replica services) keeps the room for daemons"

