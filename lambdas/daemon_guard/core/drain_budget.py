"""Drain budgets (``drainBudget``): how many of a cluster's instances, and of each group's, may drain at once.

As Karpenter's disruption budgets: each rule allows N instances or N% (rounded up) of the instances, always
or only inside a schedule window (a five-field cron expression in UTC and a duration); the most restrictive
active rule applies, and with no active rule drains are not bounded. Drains over the budget wait in order of
arrival (`DrainQueue.waiting`) and start as others finish: `admit` decides whether one drain may start now,
`next_to_start` who may. A drain racing a hard end (a Spot notice, an EC2 stop, a Health change due sooner
than it could finish after waiting, `must_bypass`) starts at once, counted in `draining` all the same.

Pure: the queue is read and written by the state table with a conditional write (`adapters.state`), so two
Lambdas deciding at once never both take the last place.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Literal

# A waiter looks at the queue at least this often; one not seen for `WAITER_STALE_S` is gone (its drain ended).
WAIT_POLL_S = 15.0
WAITER_STALE_S = 300.0
SEEN_REFRESH_S = 60.0
MAX_WINDOW_S = 7 * 86400

_DOW = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}
_MONTHS = {m: i + 1 for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct",
                                            "nov", "dec"))}
_MACROS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
           "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}
_NO_NAMES: dict[str, int] = {}
_FIELDS: tuple[tuple[int, int, Mapping[str, int]], ...] = (
    (0, 59, _NO_NAMES), (0, 23, _NO_NAMES), (1, 31, _NO_NAMES), (1, 12, _MONTHS), (0, 7, _DOW))
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?$")


class BudgetError(ValueError):
    """A drain budget that cannot be read: the message names the part and the fix."""


@dataclass(frozen=True)
class Cron:
    """A parsed five-field cron expression (UTC): the minutes, hours, days, months and weekdays it fires on."""

    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    any_day: bool
    any_weekday: bool

    def fires_at(self, when: datetime) -> bool:
        """True when the expression fires at this minute (day of month OR weekday when both are restricted,
        as cron does)."""
        if when.minute not in self.minutes or when.hour not in self.hours or when.month not in self.months:
            return False
        day, weekday = when.day in self.days, (when.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:
            return day and weekday
        return day or weekday


def _cron_field(text: str, low: int, high: int, names: Mapping[str, int], where: str) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        body, _, step_text = part.partition("/")
        step = int(step_text) if step_text.isdigit() and int(step_text) > 0 else None
        if step_text and step is None:
            raise BudgetError(f"{where}: step {step_text!r} must be a positive whole number")
        if body == "*":
            start, end = low, high
        else:
            first, _, last = body.partition("-")
            start, end = _cron_value(first, names, where), _cron_value(last or first, names, where)
            if step is not None and not last:
                end = high
        if not (low <= start <= end <= high):
            raise BudgetError(f"{where}: {part!r} must lie within {low}-{high}")
        values.update(range(start, end + 1, step or 1))
    return frozenset(values)


def _cron_value(text: str, names: Mapping[str, int], where: str) -> int:
    if text.isdigit():
        return int(text)
    if text.lower() in names:
        return names[text.lower()]
    raise BudgetError(f"{where}: {text!r} is not a number{' or a name' if names else ''}")


def parse_cron(text: str) -> Cron:
    """Read a five-field cron expression (minute hour day-of-month month day-of-week, UTC; names such as
    ``mon-fri`` and ``jan`` allowed) or a macro (``@daily``, ``@weekly``, ...). BudgetError names the field."""
    expanded = _MACROS.get(text.strip().lower(), text.strip())
    fields = expanded.split()
    if len(fields) != 5:
        raise BudgetError(f"schedule {text!r}: expected five fields (minute hour day month weekday) or a macro")
    names = ("minute", "hour", "day of month", "month", "day of week")
    parsed = [_cron_field(f, low, high, nm, f"schedule {text!r} {name}")
              for f, (low, high, nm), name in zip(fields, _FIELDS, names, strict=True)]
    weekdays = frozenset(d % 7 for d in parsed[4])
    return Cron(text, parsed[0], parsed[1], parsed[2], parsed[3], weekdays,
                any_day=fields[2] == "*", any_weekday=fields[4] == "*")


def parse_duration(text: str) -> int:
    """``8h``, ``30m`` or ``1h30m`` to seconds (at least a minute, at most a week)."""
    found = _DURATION.match(text.strip()) if isinstance(text, str) else None
    if not found or not any(found.groups()):
        raise BudgetError(f"duration {text!r}: expected hours and minutes such as '8h', '30m' or '1h30m'")
    seconds = int(found.group(1) or 0) * 3600 + int(found.group(2) or 0) * 60
    if not 60 <= seconds <= MAX_WINDOW_S:
        raise BudgetError(f"duration {text!r}: must be between 1m and 168h")
    return seconds


@dataclass(frozen=True)
class BudgetRule:
    """At most `limit` instances (or `limit` percent, rounded up) draining at once, in the schedule's
    windows (each `duration_s` long from a firing of `schedule`) or always (no schedule)."""

    limit: int
    percent: bool = False
    schedule: Cron | None = None
    duration_s: int = 0

    @property
    def nodes(self) -> str:
        """The limit as written in the configuration: ``"10%"`` or ``"3"``."""
        return f"{self.limit}%" if self.percent else str(self.limit)

    def active(self, now: float) -> bool:
        """True when the rule applies at `now` (epoch seconds): always, or within `duration_s` after a firing."""
        if self.schedule is None:
            return True
        minute = datetime.fromtimestamp(now, UTC).replace(second=0, microsecond=0)
        return any(self.schedule.fires_at(minute - timedelta(minutes=back))
                   for back in range(math.ceil(self.duration_s / 60)))

    def allows(self, instances: int) -> int:
        """How many of `instances` may drain at once under this rule."""
        return math.ceil(instances * self.limit / 100) if self.percent else self.limit


def parse_rule(raw: object, where: str) -> BudgetRule:
    """Read one rule: ``{"nodes": "10%" | "3" | 3, "schedule": "0 9 * * mon-fri", "duration": "8h"}`` (schedule
    and duration together or neither), or the bare ``nodes`` value."""
    doc = raw if isinstance(raw, Mapping) else {"nodes": raw}
    unknown = set(doc) - {"nodes", "schedule", "duration"}
    if unknown:
        raise BudgetError(f"{where}: unknown field(s) {sorted(unknown)}; allowed: nodes, schedule, duration")
    nodes = doc.get("nodes")
    text = str(nodes) if isinstance(nodes, (str, int)) and not isinstance(nodes, bool) else ""
    found = re.fullmatch(r"(\d+)(%?)", text.strip())
    if not found or (found.group(2) and int(found.group(1)) > 100):
        raise BudgetError(f"{where}.nodes: expected a count such as 3 or a percentage such as '10%' (0-100%), "
                          f"got {nodes!r}")
    schedule, duration = doc.get("schedule"), doc.get("duration")
    if (schedule is None) != (duration is None):
        raise BudgetError(f"{where}: 'schedule' and 'duration' go together (a window: when it opens and how long)")
    if schedule is not None and not isinstance(schedule, str):
        raise BudgetError(f"{where}.schedule: expected a cron expression such as '0 9 * * mon-fri'")
    try:
        return BudgetRule(int(found.group(1)), bool(found.group(2)),
                          parse_cron(schedule) if schedule is not None else None,
                          parse_duration(duration if isinstance(duration, str) else repr(duration))
                          if duration is not None else 0)
    except BudgetError as refused:
        raise BudgetError(f"{where}: {refused}") from None


def parse_budget(raw: object) -> tuple[BudgetRule, ...]:
    """Read ``drainBudget``: a list of rules, one rule, or a bare ``nodes`` value (``"10%"``, ``3``)."""
    items = raw if isinstance(raw, list) else [raw]
    return tuple(parse_rule(item, f"drainBudget[{i}]" if isinstance(raw, list) else "drainBudget")
                 for i, item in enumerate(items))


def rule_doc(rule: BudgetRule) -> dict[str, str]:
    """A rule back in its configuration form (`parse_rule` reads it to the same rule)."""
    doc = {"nodes": rule.nodes}
    if rule.schedule is not None:
        hours, minutes = divmod(rule.duration_s // 60, 60)
        doc |= {"schedule": rule.schedule.text, "duration": (f"{hours}h" if hours else "") + (f"{minutes}m" if
                                                                                                minutes else "")}
    return doc


def budget_limit(rules: Sequence[BudgetRule], instances: int, now: float) -> int | None:
    """The most restrictive active rule's allowance for `instances`; None when no rule is active (unbounded)."""
    allowed = [rule.allows(instances) for rule in rules if rule.active(now)]
    return min(allowed) if allowed else None


@dataclass(frozen=True)
class QueueEntry:
    """One drain in the queue: its instance, its Auto Scaling group ('' for none), when it arrived (or
    started), and when its drain last looked at the queue (a waiter that stops looking has ended)."""

    instance_id: str
    group: str
    at: float
    seen_at: float


@dataclass(frozen=True)
class DrainQueue:
    """A cluster's drains under its budget: those draining and those waiting (in order of arrival), and the
    version the state table's conditional write compares."""

    draining: tuple[QueueEntry, ...] = ()
    waiting: tuple[QueueEntry, ...] = ()
    version: int = 0

    def without(self, instance_id: str) -> DrainQueue:
        """The queue once this instance's drain has finished (or stopped waiting)."""
        return replace(self, draining=tuple(e for e in self.draining if e.instance_id != instance_id),
                       waiting=tuple(e for e in self.waiting if e.instance_id != instance_id))

    def place(self, instance_id: str) -> int:
        """The instance's place among the waiters (1: next), 0 when it is draining or not queued."""
        return next((i + 1 for i, e in enumerate(self.waiting) if e.instance_id == instance_id), 0)


@dataclass(frozen=True)
class Sizes:
    """How many instances the cluster and each of its groups hold (what percentages are of)."""

    cluster: int
    groups: Mapping[str, int]


Decision = Literal["start", "wait", "bypass"]


@dataclass(frozen=True)
class Admission:
    """Whether a drain starts now, its place in the queue when it waits, and the queue to write back."""

    decision: Decision
    queue: DrainQueue
    place: int
    reason: str


def _fits(rules: Sequence[BudgetRule], sizes: Sizes, now: float, draining: Sequence[QueueEntry],
          group: str) -> bool:
    cluster_limit = budget_limit(rules, sizes.cluster, now)
    if cluster_limit is not None and len(draining) >= cluster_limit:
        return False
    group_limit = budget_limit(rules, sizes.groups.get(group, sizes.cluster), now) if group else None
    return group_limit is None or sum(1 for e in draining if e.group == group) < group_limit


def _fresh(queue: DrainQueue, now: float, stale_s: float) -> DrainQueue:
    """The queue without drains that ended unseen: started longer ago than `stale_s` (the lifecycle hook's
    global timeout: no lifecycle action outlives it) or waiters silent for `WAITER_STALE_S`."""
    return replace(queue, draining=tuple(e for e in queue.draining if now - e.at < stale_s),
                   waiting=tuple(e for e in queue.waiting if now - e.seen_at < WAITER_STALE_S))


def next_to_start(rules: Sequence[BudgetRule], queue: DrainQueue, sizes: Sizes, now: float) -> tuple[str, ...]:
    """The waiters that may start now, in order of arrival: each one that fits once the earlier ones have
    started (a waiter held by its own group's limit does not hold back another group's)."""
    draining = list(queue.draining)
    chosen: list[str] = []
    for entry in queue.waiting:
        if _fits(rules, sizes, now, draining, entry.group):
            draining.append(entry)
            chosen.append(entry.instance_id)
    return tuple(chosen)


def admit(rules: Sequence[BudgetRule], queue: DrainQueue, me: QueueEntry, sizes: Sizes, now: float,
          bypass: str | None = None, stale_s: float = 48 * 3600.0) -> Admission:
    """May this drain start now? Its entry joins the waiters (once, keeping its arrival) and starts when
    `next_to_start` names it; `bypass` (why it cannot wait) starts it at once. A drain already draining
    stays so (a retried step decides the same)."""
    queue = _fresh(queue, now, stale_s)
    if any(e.instance_id == me.instance_id for e in queue.draining):
        return Admission("start", queue, 0, "already draining")
    known = next((e for e in queue.waiting if e.instance_id == me.instance_id), None)
    # A waiter's sighting is refreshed once a minute, not on every look: most looks then change nothing and
    # write nothing.
    if known is None or now - known.seen_at >= SEEN_REFRESH_S:
        me = replace(me, at=known.at if known else me.at, seen_at=now)
    else:
        me = known
    waiting = tuple(me if e.instance_id == me.instance_id else e for e in queue.waiting) if known else \
        (*queue.waiting, me)
    queue = replace(queue, waiting=waiting)
    started = replace(me, at=now)
    if bypass is not None:
        return Admission("bypass", replace(queue.without(me.instance_id), draining=(*queue.draining, started)), 0,
                         bypass)
    if me.instance_id in next_to_start(rules, queue, sizes, now):
        return Admission("start", replace(queue.without(me.instance_id), draining=(*queue.draining, started)), 0,
                         f"{len(queue.draining) + 1} draining within the budget")
    place = queue.place(me.instance_id)
    return Admission("wait", queue, place, f"budget full: {len(queue.draining)} draining, place {place} of "
                                           f"{len(queue.waiting)} waiting")


def must_bypass(notice_end: float | None, now: float, drain_s: float) -> str | None:
    """Why a drain may not wait for the budget: a hard end (a Spot notice, an EC2 stop, a Health change) due
    sooner than it could finish if it waited (`drain_s`, the time a drain may take once started). None: it
    can wait."""
    if notice_end is not None and notice_end - now <= drain_s:
        return f"hard end in {max(0.0, notice_end - now):.0f}s, sooner than a drain could finish after waiting"
    return None


def hook_wait_end(hook_since: float, heartbeat_timeout_s: float, drain_s: float) -> float:
    """The latest a waiting drain may keep waiting: its lifecycle hook's global timeout (100 heartbeat
    timeouts, at most 48 h, from the lifecycle action) minus one heartbeat timeout and the drain's own time."""
    return hook_since + min(48 * 3600.0, 100 * heartbeat_timeout_s) - heartbeat_timeout_s - drain_s
