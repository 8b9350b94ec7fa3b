"""Simulated Amazon EventBridge: content filtering of event patterns, and a bus with delivery faults.

`matches` implements EventBridge's content filtering (the semantics of aws/event-ruler as the
EventBridge User Guide documents them): a pattern is a JSON object whose leaves are arrays of
allowed values; keys are ANDed, the values of one array are ORed; an array in the event matches
when any of its elements does. Supported inside a leaf array: literals (string, number, boolean,
null; types are not interchangeable, `""` is not `null`), `prefix`, `suffix` (both also with
`{"equals-ignore-case": ...}`), `equals-ignore-case`, `wildcard`, `numeric`, `cidr`, `exists`, and
`anything-but` (a value, a list of values, or `{"prefix"|"suffix"|"equals-ignore-case"|"wildcard":
...}`). `"$or": [pattern, ...]` may appear at any object level.

`EventBus` routes each `put` event to every matching rule and delivers it through the simulated
clock according to a `FaultPlan`: a base delay with jitter, loss, duplication and reordering.
Every random draw comes from the injected `random.Random`, so the same seed gives the same run.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import math
import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sim.clock import Clock
from sim.errors import SimApiError, UnsupportedOperation

Event = dict[str, Any]
Target = Callable[[Event], None]

_STRING_OPERATORS = ("prefix", "suffix", "equals-ignore-case", "wildcard")
_ANYTHING_BUT_OPERATORS = ("prefix", "suffix", "equals-ignore-case", "wildcard")
_LEAF_OPERATORS = frozenset({*_STRING_OPERATORS, "numeric", "cidr", "exists", "anything-but"})
_NUMERIC_COMPARATORS = frozenset({"<", "<=", "=", ">", ">="})


class _Missing:
    """Marker for a field the event does not carry."""


_MISSING = _Missing()


# --------------------------------------------------------------------------------------------------
# Content filtering
# --------------------------------------------------------------------------------------------------


def matches(pattern: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    """True when `event` matches the EventBridge event `pattern`.

    Raises ValueError for a malformed pattern (as PutRule would reject it).
    """
    validate_pattern(pattern)
    return _match_object(pattern, event)


def validate_pattern(pattern: Mapping[str, Any]) -> None:
    """Raise ValueError when `pattern` is not a well-formed EventBridge event pattern."""
    if not isinstance(pattern, Mapping):
        raise ValueError(f"an event pattern must be a JSON object, got {type(pattern).__name__}")
    for key, sub in pattern.items():
        if key == "$or":
            if not isinstance(sub, list) or len(sub) < 2 or not all(isinstance(p, Mapping) for p in sub):
                raise ValueError("$or takes a list of at least two pattern objects")
            for alternative in sub:
                validate_pattern(alternative)
        elif isinstance(sub, Mapping):
            validate_pattern(sub)
        elif isinstance(sub, list):
            for condition in sub:
                _validate_condition(key, condition)
        else:
            raise ValueError(f"field {key!r}: a pattern leaf must be an array of values, got {sub!r}")


def _validate_condition(key: str, condition: Any) -> None:
    if condition is None or isinstance(condition, str | int | float | bool):
        return
    if not isinstance(condition, Mapping) or len(condition) != 1:
        raise ValueError(f"field {key!r}: a condition must be a value or a one-key operator object")
    ((operator, arg),) = condition.items()
    if operator not in _LEAF_OPERATORS:
        raise ValueError(f"field {key!r}: unknown operator {operator!r}")
    if operator == "exists" and not isinstance(arg, bool):
        raise ValueError(f"field {key!r}: exists takes true or false")
    if operator == "numeric":
        _numeric_bounds(arg)
    if operator in ("prefix", "suffix") and not isinstance(arg, str):
        _ignore_case_arg(arg)
    if operator in ("equals-ignore-case", "wildcard", "cidr") and not isinstance(arg, str):
        raise ValueError(f"field {key!r}: {operator} takes a string")
    if operator == "cidr":
        ipaddress.ip_network(arg, strict=False)
    if operator == "anything-but":
        _validate_anything_but(key, arg)


def _validate_anything_but(key: str, arg: Any) -> None:
    if isinstance(arg, Mapping):
        if len(arg) != 1 or next(iter(arg)) not in _ANYTHING_BUT_OPERATORS:
            raise ValueError(f"field {key!r}: anything-but takes one of {_ANYTHING_BUT_OPERATORS}")
        ((operator, excluded),) = arg.items()
        values = excluded if isinstance(excluded, list) else [excluded]
        if operator in ("prefix", "suffix"):
            for value in values:
                if not isinstance(value, str):
                    _ignore_case_arg(value)
        elif not values or not all(isinstance(v, str) for v in values):
            raise ValueError(f"field {key!r}: anything-but {operator} takes strings")
    elif isinstance(arg, list):
        if not arg or not all(v is None or isinstance(v, str | int | float | bool) for v in arg):
            raise ValueError(f"field {key!r}: anything-but takes a non-empty list of values")
    elif not (arg is None or isinstance(arg, str | int | float | bool)):
        raise ValueError(f"field {key!r}: anything-but takes a value, a list or an operator object")


def _match_object(pattern: Mapping[str, Any], value: Any) -> bool:
    if isinstance(value, list):
        objects = [v for v in value if isinstance(v, Mapping)]
        if objects:
            return any(_match_object(pattern, v) for v in objects)
    fields: Mapping[str, Any] = value if isinstance(value, Mapping) else {}
    for key, sub in pattern.items():
        if key == "$or":
            if not any(_match_object(alternative, fields) for alternative in sub):
                return False
        elif isinstance(sub, Mapping):
            if not _match_object(sub, fields.get(key, {})):
                return False
        elif not _match_leaf(sub, fields.get(key, _MISSING)):
            return False
    return True


def _leaf_values(value: Any) -> list[Any]:
    """The scalar values at a path: none when absent or an object, each element of an array."""
    if isinstance(value, _Missing | Mapping):
        return []
    if isinstance(value, list):
        leaves: list[Any] = []
        for element in value:
            leaves.extend(_leaf_values(element))
        return leaves
    return [value]


def _match_leaf(conditions: Sequence[Any], value: Any) -> bool:
    leaves = _leaf_values(value)
    for condition in conditions:
        if isinstance(condition, Mapping):
            ((operator, arg),) = condition.items()
            if operator == "exists":
                if bool(leaves) == arg:
                    return True
            elif any(_match_operator(operator, arg, v) for v in leaves):
                return True
        elif any(_equal(condition, v) for v in leaves):
            return True
    return False


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _equal(literal: Any, v: Any) -> bool:
    """JSON equality: types never coerce (`"5"` is not `5`, `true` is not `1`, `""` is not null)."""
    if literal is None or v is None:
        return literal is None and v is None
    if isinstance(literal, bool) or isinstance(v, bool):
        return isinstance(literal, bool) and isinstance(v, bool) and literal == v
    if _is_number(literal):
        return _is_number(v) and float(v) == float(literal)
    return isinstance(v, str) and v == literal


def _ignore_case_arg(arg: Any) -> str:
    if (
        isinstance(arg, Mapping)
        and set(arg) == {"equals-ignore-case"}
        and isinstance(arg["equals-ignore-case"], str)
    ):
        return str(arg["equals-ignore-case"])
    raise ValueError(f"expected a string or {{'equals-ignore-case': string}}, got {arg!r}")


def _affix(operator: str, arg: Any, v: str) -> bool:
    if isinstance(arg, str):
        return v.startswith(arg) if operator == "prefix" else v.endswith(arg)
    needle = _ignore_case_arg(arg).casefold()
    folded = v.casefold()
    return folded.startswith(needle) if operator == "prefix" else folded.endswith(needle)


def _match_operator(operator: str, arg: Any, v: Any) -> bool:
    if operator == "anything-but":
        return _anything_but(arg, v)
    if operator == "numeric":
        return _is_number(v) and _numeric(arg, float(v))
    if not isinstance(v, str):
        return False
    if operator in ("prefix", "suffix"):
        return _affix(operator, arg, v)
    if operator == "equals-ignore-case":
        return v.casefold() == str(arg).casefold()
    if operator == "wildcard":
        return _wildcard(str(arg)).fullmatch(v) is not None
    if operator == "cidr":
        try:
            return ipaddress.ip_address(v) in ipaddress.ip_network(str(arg), strict=False)
        except ValueError:
            return False
    raise ValueError(f"unknown operator {operator!r}")


def _anything_but(arg: Any, v: Any) -> bool:
    if isinstance(arg, Mapping):
        ((operator, excluded),) = arg.items()
        if not isinstance(v, str):
            return True
        values = excluded if isinstance(excluded, list) else [excluded]
        if operator in ("prefix", "suffix"):
            return not any(_affix(operator, x, v) for x in values)
        if operator == "equals-ignore-case":
            return all(v.casefold() != str(x).casefold() for x in values)
        return not any(_wildcard(str(x)).fullmatch(v) for x in values)
    values = arg if isinstance(arg, list) else [arg]
    return not any(_equal(x, v) for x in values)


def _numeric_bounds(arg: Any) -> list[tuple[str, float]]:
    if not isinstance(arg, list) or len(arg) not in (2, 4) or len(arg) % 2:
        raise ValueError(f"numeric takes [op, n] or [op, n, op, n], got {arg!r}")
    bounds: list[tuple[str, float]] = []
    for i in range(0, len(arg), 2):
        comparator, number = arg[i], arg[i + 1]
        if comparator not in _NUMERIC_COMPARATORS or not _is_number(number):
            raise ValueError(f"numeric: bad comparison {comparator!r} {number!r}")
        bounds.append((str(comparator), float(number)))
    return bounds


def _numeric(arg: Any, v: float) -> bool:
    for comparator, bound in _numeric_bounds(arg):
        ok = {
            "<": v < bound,
            "<=": v <= bound,
            "=": v == bound,
            ">": v > bound,
            ">=": v >= bound,
        }[comparator]
        if not ok:
            return False
    return True


def _wildcard(expression: str) -> re.Pattern[str]:
    """`*` matches any run of characters; `\\*` is a literal star."""
    parts: list[str] = []
    i = 0
    while i < len(expression):
        char = expression[i]
        if char == "\\" and i + 1 < len(expression) and expression[i + 1] in "*\\":
            parts.append(re.escape(expression[i + 1]))
            i += 2
            continue
        parts.append(".*" if char == "*" else re.escape(char))
        i += 1
    return re.compile("".join(parts), re.DOTALL)


# --------------------------------------------------------------------------------------------------
# The bus
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FaultPlan:
    """How deliveries misbehave. The defaults are a healthy bus: about half a second of latency.

    - `delay_s`: base delay from `put` to delivery (EventBridge's typical latency is ~0.5 s).
    - `jitter_s`: extra uniform random delay in [0, jitter_s] per delivery.
    - `duplicate_rate`: each delivery gains one more copy with this probability, repeatedly, up to
      `max_copies` copies in all (at-least-once delivery).
    - `loss_rate`: probability that a rule's delivery of an event is dropped altogether.
    - `reorder_window_s`: extra uniform random delay in [0, reorder_window_s], so later events can
      overtake earlier ones.
    - `tail_rate` / `tail_median_s`: with this probability a delivery is late by a lognormal delay of
      this median (sigma 1): EventBridge's occasional slow delivery.
    - `invoke_s` / `cold_start_rate` / `cold_start_s`: the target Lambda's invocation latency, and
      with this probability a cold start of this length on top (the measured cold import plus the
      runtime's start).
    """

    delay_s: float = 0.5
    jitter_s: float = 0.0
    duplicate_rate: float = 0.0
    max_copies: int = 3
    loss_rate: float = 0.0
    reorder_window_s: float = 0.0
    tail_rate: float = 0.0
    tail_median_s: float = 3.0
    invoke_s: float = 0.0
    cold_start_rate: float = 0.0
    cold_start_s: float = 0.0

    def __post_init__(self) -> None:
        """Reject impossible plans early."""
        for name in ("delay_s", "jitter_s", "reorder_window_s", "tail_median_s", "invoke_s", "cold_start_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        for name in ("duplicate_rate", "loss_rate", "tail_rate", "cold_start_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be within [0, 1]")
        if self.max_copies < 1:
            raise ValueError("max_copies must be >= 1")


@dataclass
class RuleStats:
    """Per-rule counters: events that matched, deliveries made, events lost, extra copies sent."""

    matched: int = 0
    delivered: int = 0
    lost: int = 0
    duplicated: int = 0

    @property
    def in_flight(self) -> int:
        """Deliveries scheduled but not yet made."""
        return self.matched - self.lost + self.duplicated - self.delivered


@dataclass
class _Rule:
    name: str
    pattern: dict[str, Any]
    target: Target
    stats: RuleStats = field(default_factory=RuleStats)


class EventBus:
    """A simulated event bus: rules with patterns and targets, deliveries through the clock.

    Each delivery hands the target its own deep copy of the event. A target that raises
    propagates out of the clock loop: the simulator surfaces bugs instead of hiding them.
    """

    def __init__(
        self,
        clock: Clock,
        rng: random.Random,
        faults: FaultPlan | None = None,
        *,
        tap: list[Event] | None = None,
    ) -> None:
        """Build a bus on `clock`, drawing every random choice from `rng`.

        `tap`, when given, receives a deep copy of every published event, in publication order.
        """
        self.clock = clock
        self.rng = rng
        self.faults = faults if faults is not None else FaultPlan()
        self.tap = tap
        self.published = 0
        self._rules: dict[str, _Rule] = {}

    def add_rule(self, name: str, pattern: Mapping[str, Any], target: Target) -> None:
        """Route events matching `pattern` to `target`. Raises ValueError on a bad pattern or name."""
        if name in self._rules:
            raise ValueError(f"rule {name!r} already exists")
        validate_pattern(pattern)
        self._rules[name] = _Rule(name, copy.deepcopy(dict(pattern)), target)

    def remove_rule(self, name: str) -> None:
        """Stop routing to rule `name`; deliveries already scheduled still happen."""
        del self._rules[name]

    @property
    def rule_names(self) -> list[str]:
        """Names of the rules, in the order they were added."""
        return list(self._rules)

    def stats(self, name: str) -> RuleStats:
        """The counters of rule `name`."""
        return self._rules[name].stats

    @property
    def delivered(self) -> int:
        """Deliveries made, over all rules."""
        return sum(r.stats.delivered for r in self._rules.values())

    @property
    def lost(self) -> int:
        """Deliveries dropped, over all rules."""
        return sum(r.stats.lost for r in self._rules.values())

    @property
    def duplicated(self) -> int:
        """Extra copies scheduled, over all rules."""
        return sum(r.stats.duplicated for r in self._rules.values())

    def put(self, event: Mapping[str, Any]) -> list[str]:
        """Publish `event`: schedule its delivery to every matching rule. Returns the rule names."""
        snapshot: Event = copy.deepcopy(dict(event))
        self.published += 1
        if self.tap is not None:
            self.tap.append(copy.deepcopy(snapshot))
        matched: list[str] = []
        for rule in self._rules.values():
            if not _match_object(rule.pattern, snapshot):
                continue
            matched.append(rule.name)
            rule.stats.matched += 1
            self._schedule(rule, snapshot)
        return matched

    def _schedule(self, rule: _Rule, event: Event) -> None:
        faults = self.faults
        if faults.loss_rate > 0 and self.rng.random() < faults.loss_rate:
            rule.stats.lost += 1
            return
        copies = 1
        while (
            faults.duplicate_rate > 0
            and copies < faults.max_copies
            and self.rng.random() < faults.duplicate_rate
        ):
            copies += 1
        rule.stats.duplicated += copies - 1
        for _ in range(copies):
            delay = faults.delay_s
            if faults.jitter_s > 0:
                delay += self.rng.uniform(0.0, faults.jitter_s)
            if faults.reorder_window_s > 0:
                delay += self.rng.uniform(0.0, faults.reorder_window_s)
            self.clock.after(delay + self._timing(faults), self._deliverer(rule, event))

    def _timing(self, faults: FaultPlan) -> float:
        """The measured part of a delivery's time: a slow tail, the Lambda invocation, a cold start."""
        extra = faults.invoke_s
        if faults.tail_rate > 0 and self.rng.random() < faults.tail_rate:
            extra += self.rng.lognormvariate(math.log(faults.tail_median_s), 1.0)
        if faults.cold_start_rate > 0 and self.rng.random() < faults.cold_start_rate:
            extra += faults.cold_start_s
        return extra

    @staticmethod
    def _deliverer(rule: _Rule, event: Event) -> Callable[[], None]:
        def deliver() -> None:
            rule.stats.delivered += 1
            rule.target(copy.deepcopy(event))

        return deliver


class PutEventsBackend:
    """EventBridge's PutEvents on the default bus: the guard's own events, published to `bus`.

    Validation as EventBridge does it: 1 to 10 entries; each needs Source, DetailType and a Detail
    that is a JSON object; an entry over 256 KB is rejected. Every accepted event is also kept in
    `events` (in publication order), with the envelope EventBridge adds.
    """

    MAX_ENTRY_BYTES = 256 * 1024

    def __init__(self, bus: EventBus, clock: Clock, account: str, region: str) -> None:
        self.bus = bus
        self.clock = clock
        self.account = account
        self.region = region
        self.events: list[Event] = []
        self.calls: dict[str, int] = {}
        self._count = 0

    def call(self, service: str, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """Serve PutEvents; anything else fails loudly."""
        self.calls[operation] = self.calls.get(operation, 0) + 1
        if service != "events" or operation != "PutEvents":
            raise UnsupportedOperation(service, operation)
        entries = params.get("Entries", [])
        if not 1 <= len(entries) <= 10:
            raise SimApiError("ValidationException", "Entries must hold 1 to 10 entries.")
        results: list[dict[str, Any]] = []
        for entry in entries:
            results.append(self._put(entry))
        failed = sum(1 for r in results if "ErrorCode" in r)
        return {"FailedEntryCount": failed, "Entries": results}

    def _put(self, entry: Mapping[str, Any]) -> dict[str, Any]:
        try:
            detail = json.loads(entry.get("Detail", ""))
        except ValueError:
            return {"ErrorCode": "MalformedDetail", "ErrorMessage": "Detail is malformed."}
        if not isinstance(detail, dict) or not entry.get("Source") or not entry.get("DetailType"):
            return {"ErrorCode": "InvalidArgument", "ErrorMessage": "Source, DetailType and a JSON object Detail."}
        if len(json.dumps(entry).encode()) > self.MAX_ENTRY_BYTES:
            return {"ErrorCode": "EntrySizeTooBig", "ErrorMessage": "Entry is over 256 KB."}
        self._count += 1
        event_id = f"{self._count:08x}-0000-4000-8000-{self._count:012x}"
        event: Event = {"version": "0", "id": event_id, "detail-type": entry["DetailType"], "source": entry["Source"],
                        "account": self.account, "time": self.clock.iso(), "region": self.region,
                        "resources": list(entry.get("Resources", [])), "detail": detail}
        self.events.append(copy.deepcopy(event))
        self.bus.put(event)
        return {"EventId": event_id}
