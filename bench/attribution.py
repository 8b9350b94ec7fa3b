"""Which of the range suite's violations and kills the guard itself counted, and why (pure: no world).

The measurements (bench.measure, bench.drain_measure) see every violation from the simulator's own
records; the guard may or may not have seen it. A violation is *counted* when the guard published, for
that instance, the event that says so (each such event also feeds a metric with an alarm):

- ``daemons-first``: a replica served before the daemons on an instance whose gate the guard opened past
  its timeout (``Gate Failed Open``; GatesFailedOpen, alarmed) at or before that replica started. Cause
  ``gate-timeout``.
- ``daemons-after-apps``, ``tier-order``: a daemon told to stop while tasks of earlier phases were live,
  on an instance for which the guard published a ``Drain Guarantee Broken`` naming one of those phases
  (``late app tasks`` names the app phases too), at any time of its drain: the guard may see a daemon
  someone else stopped only after the fact. Cause: the event's ``cause``. A break that says the instance
  was gone (``notice-missed``, ``instance-gone``) explains a violation at a kill on that instance (EC2
  ending every task at once), and one after the drain's last look that saw the instance (its ``unseenSince``;
  null: it never saw it) in any phase it left (``phasesLeft``): what stopped there after that look, the
  guard did not see and says so. A violation before that look, which the guard saw or made, it does not
  explain.
- ``tasks-killed``: a task killed by the instance's end, on an instance for which the guard published a
  ``Drain Guarantee Broken`` before the kill (cause: the latest such event's ``cause``), or one whose cause
  says the drain found the instance gone (``notice-missed``: after its notice; ``instance-gone``: with tasks
  it was following) at any time: it could only say so after the fact.

Everything else is *uncounted*: a violation the guard did not see, or saw and did not say. The range
suite's promise is 0 uncounted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sim.clock import EPOCH

GATE_TIMEOUT = "gate-timeout"
NOTICE_MISSED = "notice-missed"
INSTANCE_GONE = "instance-gone"
# Causes the guard can only publish once the instance is gone: a kill on that instance is theirs whenever said.
AFTER_THE_FACT = (NOTICE_MISSED, INSTANCE_GONE)
APP_PHASES = ("replicas", "standalone")
LATE_APPS = "late app tasks"
CLAIM_NAMES = ("daemons-first", "daemons-after-apps", "tier-order", "tasks-killed")


@dataclass(frozen=True)
class Break:
    """A ``Drain Guarantee Broken`` event: the instance, the phase left with tasks not STOPPED, why, when;
    for a break found with the instance gone, the drain's last sight of it and the phases it left."""

    instance_id: str
    phase: str
    cause: str
    at: float
    unseen_since: float | None = None
    phases_left: tuple[str, ...] = ()


@dataclass(frozen=True)
class Violation:
    """One violation of `claim` on an instance at `at` (simulated seconds); `earlier`: for an ordering claim,
    the phases (as the guard names them) of the earlier tasks still live when the daemon was told to stop."""

    claim: str
    instance_id: str
    at: float
    earlier: tuple[str, ...] = ()


def sim_seconds(iso_time: str) -> float:
    """A guard event's ``at`` (ISO 8601 UTC) as simulated seconds."""
    return (datetime.fromisoformat(iso_time.replace("Z", "+00:00")) - EPOCH).total_seconds()


def guard_records(events: Iterable[Mapping[str, Any]]) -> tuple[list[Break], dict[str, float]]:
    """The guard's own published events read as breaks and, per instance, the first gate opened past its
    timeout (simulated seconds)."""
    breaks: list[Break] = []
    failed_open: dict[str, float] = {}
    for event in events:
        detail = event.get("detail", {})
        kind = event.get("detail-type")
        if kind == "Drain Guarantee Broken":
            unseen = detail.get("unseenSince")
            breaks.append(Break(detail["instanceId"], detail["phase"], detail.get("cause") or detail["hardEnd"],
                                sim_seconds(detail["at"]), sim_seconds(unseen) if unseen else None,
                                tuple(detail.get("phasesLeft") or ())))
        elif kind == "Gate Failed Open":
            at = sim_seconds(detail["at"])
            failed_open[detail["instanceId"]] = min(at, failed_open.get(detail["instanceId"], at))
    return breaks, failed_open


def _cause(v: Violation, breaks: Sequence[Break], failed_open: Mapping[str, float],
           kills_at: Mapping[str, set[float]]) -> str | None:
    """Why the guard counted `v`, or None when it did not (`kills_at`: per instance, when tasks were killed)."""
    if v.claim == "daemons-first":
        opened = failed_open.get(v.instance_id)
        return GATE_TIMEOUT if opened is not None and opened <= v.at + 1e-6 else None
    mine = sorted((b for b in breaks if b.instance_id == v.instance_id), key=lambda b: b.at)
    if v.claim == "tasks-killed":
        before = [b for b in mine if b.at <= v.at + 1e-6]
        late = [b for b in mine if b.cause in AFTER_THE_FACT]
        return before[-1].cause if before else late[0].cause if late else None
    names = set(v.earlier) | ({LATE_APPS} if set(v.earlier) & set(APP_PHASES) else set())
    at_end = v.at in kills_at.get(v.instance_id, set())
    matching = [b for b in mine if (b.phase in names and b.cause not in AFTER_THE_FACT)
                or (b.cause in AFTER_THE_FACT and _unseen(v, b, names, at_end))]
    if not matching:
        return None
    # The break that explains it: the last one at or before the stop, else the first one after (seen later).
    before = [b for b in matching if b.at <= v.at + 1e-6]
    return (before[-1] if before else matching[0]).cause


def _unseen(v: Violation, gone: Break, names: set[str], at_end: bool) -> bool:
    """A break said once the instance was gone explains the disorder of its end (daemons killed with apps)
    and, in the phases it left, what stopped after the drain's last sight of the instance."""
    if at_end:
        return gone.phase in names
    left = set(gone.phases_left) or {gone.phase}
    # No last sight: the drain never saw the instance registered, so it neither saw nor made anything there.
    seen_until = float("-inf") if gone.unseen_since is None else gone.unseen_since - 1e-6
    return v.at >= seen_until and bool(left & names)


def attribute(violations: Iterable[Violation], breaks: Sequence[Break],
              failed_open: Mapping[str, float]) -> dict[str, dict[str, Any]]:
    """Per claim, the violations the guard counted (by cause) and those it did not:
    ``{"counted": {claim: {cause: n}}, "uncounted": {claim: n}}`` (every claim named, zeros included)."""
    counted: dict[str, dict[str, int]] = {c: {} for c in CLAIM_NAMES}
    uncounted: dict[str, int] = dict.fromkeys(CLAIM_NAMES, 0)
    violations = list(violations)
    kills_at: dict[str, set[float]] = {}
    for v in violations:
        if v.claim == "tasks-killed":
            kills_at.setdefault(v.instance_id, set()).add(v.at)
    for v in violations:
        cause = _cause(v, breaks, failed_open, kills_at)
        if cause is None:
            uncounted[v.claim] += 1
        else:
            counted[v.claim][cause] = counted[v.claim].get(cause, 0) + 1
    return {"counted": counted, "uncounted": uncounted}
