"""The simulator's own evaluator of the ECS cluster query language (what `memberOf` constraints say).

Written from the ECS developer guide ("Create expressions to define container instances for Amazon
ECS tasks", and the memberOf examples of "Amazon ECS task placement constraints"), independently of
`daemon_guard.core.query`: the simulated ECS must not evaluate constraints with the code under test,
or an evaluator bug would be mirrored and never show. `tests/sim/test_cluster_query.py` compares the
two on generated expressions; each disagreement is settled from the guide.

From the guide:
- ``subject operator [argument]``; subjects ``attribute:<name>``, ``ec2InstanceId``, ``agentConnected``,
  ``agentVersion``, ``registeredAt``, ``runningTasksCount``, ``task:group``.
- Operators: ``==``/``equals`` (string equality), ``!=``/``not_equals``, ``>``/``greater_than``,
  ``>=``/``greater_than_equal``, ``<``/``less_than``, ``<=``/``less_than_equal``, ``exists``,
  ``!exists``/``not_exists``, ``in``, ``!in``/``not_in`` (argument list ``[a, b]``), ``=~``/``matches``,
  ``!~``/``not_matches`` (a Java regular expression: Java's ``matches`` takes the whole value).
- Compound: ``&&``/``and``, ``||``/``or``, ``!``/``not``, parentheses for precedence.
- The memberOf example ``attribute:ecs.instance-type == t2.*``: ``*`` in an equality argument stands
  for any characters.

Choices where the guide is silent (each matches what the differential test found in core.query):
a negated operator is the negation of its positive one (so an absent attribute passes ``!=``);
ordering compares numbers as numbers, dotted versions part by part, dates as instants, else strings;
``task:group`` holds when any task on the instance is in a matching group.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from typing import Any

NEGATIONS = {"!=": "==", "not_equals": "==", "!exists": "exists", "not_exists": "exists", "!in": "in",
             "not_in": "in", "!~": "=~", "not_matches": "=~"}
SYNONYMS = {"equals": "==", "greater_than": ">", "greater_than_equal": ">=", "less_than": "<",
            "less_than_equal": "<=", "matches": "=~"}
ORDERING = (">", ">=", "<", "<=")
TOKEN = re.compile(r"""\s*(?:(?P<punct>\(|\)|\[|\]|,|&&|\|\||==|!=|>=|<=|=~|!~|!exists|!in\b|>|<|!)"""
                   r"""|'(?P<sq>[^']*)'|"(?P<dq>[^"]*)"|(?P<word>[^\s()\[\],'"]+))""")


class CqlError(ValueError):
    """The expression does not parse."""


@dataclass(frozen=True)
class Facts:
    """What an expression can ask of one container instance."""

    attributes: Mapping[str, str | None]
    ec2_instance_id: str
    agent_connected: bool
    agent_version: str | None
    registered_at: datetime | None
    running_tasks_count: int
    task_groups: Collection[str]


Test = Callable[[Facts], bool]


PATTERN = re.compile(r"""\s*(?:'(?P<sq>[^']*)'|"(?P<dq>[^"]*)"|(?P<raw>[^\s]+))""")


def _token(text: str, pos: int) -> tuple[tuple[str, str], int]:
    m = TOKEN.match(text, pos)
    if m is None or m.end() == pos:
        raise CqlError(f"cannot read {text[pos:]!r}")
    if m.group("punct") is not None:
        return ("p", m.group("punct")), m.end()
    if m.group("word") is not None:
        return ("w", m.group("word")), m.end()
    return ("q", m.group("sq") if m.group("sq") is not None else m.group("dq") or ""), m.end()


def _pattern(text: str, pos: int) -> tuple[str, int]:
    """A regular expression argument: quoted, or everything to the next blank ("[0-9]+" included), less
    the closing parentheses that end an enclosing group."""
    m = PATTERN.match(text, pos)
    if m is None or m.end() == pos:
        raise CqlError("=~ needs an argument")
    if m.group("raw") is None:
        return (m.group("sq") if m.group("sq") is not None else m.group("dq") or ""), m.end()
    raw, end = m.group("raw"), m.end()
    while raw.endswith(")") and raw.count("(") < raw.count(")"):
        raw, end = raw[:-1], end - 1
    return raw, end


@cache
def _wildcard(pattern: str) -> re.Pattern[str]:
    return re.compile("".join(".*" if ch == "*" else re.escape(ch) for ch in pattern), re.DOTALL)


_DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?")
_VERSION = re.compile(r"v?[0-9]+(\.[0-9]+)*")


def _number(text: str) -> Decimal | None:
    """A plain decimal number (not Python's float syntax: no exponents, `inf`, `nan` or underscores)."""
    return Decimal(text) if _DECIMAL.fullmatch(text) else None


def _version(text: str) -> tuple[int, ...] | None:
    if not _VERSION.fullmatch(text):
        return None
    nums = [int(p) for p in text.removeprefix("v").split(".")]
    while len(nums) > 1 and nums[-1] == 0:
        nums.pop()
    return tuple(nums)


def _instant(text: str) -> datetime | None:
    for fmt in ("%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"):
        try:
            at = datetime.strptime(text, fmt)
        except ValueError:
            continue
        return at if at.tzinfo else at.replace(tzinfo=UTC)
    return None


def _order(op: str, left: Any, right: Any) -> bool:
    """`left op right` for any two comparable values."""
    cmp = int(left > right) - int(left < right)
    return bool({">": cmp > 0, ">=": cmp >= 0, "<": cmp < 0, "<=": cmp <= 0}[op])


def _ordered(subject: str, op: str, value: str, arg: str) -> bool:
    if subject == "registeredAt":
        when, bound = _instant(value), _instant(arg)
        return when is not None and bound is not None and _order(op, when, bound)
    if subject == "agentVersion":
        mine, theirs = _version(value), _version(arg)
        return mine is not None and theirs is not None and _order(op, mine, theirs)
    a, b = _number(value), _number(arg)
    if a is not None and b is not None:
        return _order(op, a, b)
    va, vb = _version(value), _version(arg)
    if va is not None and vb is not None:
        return _order(op, va, vb)
    return _order(op, value, arg)


TYPED = ("registeredAt", "agentVersion", "runningTasksCount")


def _positive(subject: str, op: str, value: str, args: list[str]) -> bool:
    if subject in TYPED and op in ("==", "in"):
        # Typed subjects compare as what they are (an instant, a version, a count), not as text.
        return any(_ordered(subject, ">=", value, a) and _ordered(subject, "<=", value, a) for a in args)
    if op == "==":
        return bool(_wildcard(args[0]).fullmatch(value))
    if op == "in":
        return any(_wildcard(a).fullmatch(value) for a in args)
    if op == "=~":
        return re.fullmatch(args[0], value) is not None
    return _ordered(subject, op, value, args[0])


def _values(subject: str, facts: Facts) -> list[str] | None:
    """The subject's value(s) on the instance; None when it has none."""
    if subject.startswith("attribute:"):
        value = facts.attributes.get(subject[len("attribute:"):])
        return None if value is None else [value]
    if subject == "task:group":
        return list(facts.task_groups)
    simple = {"ec2InstanceId": facts.ec2_instance_id, "agentConnected": str(facts.agent_connected).lower(),
              "agentVersion": facts.agent_version, "runningTasksCount": str(facts.running_tasks_count),
              "registeredAt": facts.registered_at.strftime("%Y-%m-%dT%H:%M:%S+0000") if facts.registered_at
              else None}
    value = simple.get(subject)
    return None if value is None else [value]


SUBJECTS = ("ec2InstanceId", "agentConnected", "agentVersion", "registeredAt", "runningTasksCount", "task:group")


class _Reader:
    def __init__(self, text: str) -> None:
        self.text = text.strip()
        self.pos = 0

    def peek(self) -> tuple[str, str] | None:
        if not self.text[self.pos:].strip():
            return None
        return _token(self.text, self.pos)[0]

    def take(self) -> tuple[str, str]:
        if self.peek() is None:
            raise CqlError("expression ends too soon")
        tok, self.pos = _token(self.text, self.pos)
        return tok

    def pattern(self) -> str:
        value, self.pos = _pattern(self.text, self.pos)
        return value

    def is_(self, *words: str) -> bool:
        tok = self.peek()
        return tok is not None and tok[0] in ("p", "w") and tok[1] in words

    def disjunction(self) -> Test:
        parts = [self.conjunction()]
        while self.is_("||", "or"):
            self.take()
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else (lambda f: any(p(f) for p in parts))

    def conjunction(self) -> Test:
        parts = [self.negation()]
        while self.is_("&&", "and"):
            self.take()
            parts.append(self.negation())
        return parts[0] if len(parts) == 1 else (lambda f: all(p(f) for p in parts))

    def negation(self) -> Test:
        if self.is_("!", "not"):
            self.take()
            inner = self.negation()
            return lambda f: not inner(f)
        if self.is_("("):
            self.take()
            inner = self.disjunction()
            if self.take() != ("p", ")"):
                raise CqlError("missing ')'")
            return inner
        return self.comparison()

    def argument_list(self) -> list[str]:
        if self.take() != ("p", "["):
            raise CqlError("in / not_in take a list: [a, b]")
        items = [self.take()[1]]
        while self.is_(","):
            self.take()
            items.append(self.take()[1])
        if self.take() != ("p", "]"):
            raise CqlError("missing ']'")
        return items

    def comparison(self) -> Test:
        kind, subject = self.take()
        if kind != "w" or not ((subject.startswith("attribute:") and len(subject) > 10) or subject in SUBJECTS):
            raise CqlError(f"unknown subject {subject!r}")
        op = self.take()[1]
        negate = op in NEGATIONS
        op = SYNONYMS.get(NEGATIONS.get(op, op), NEGATIONS.get(op, op))
        if op not in ("==", "in", "=~", "exists", *ORDERING):
            raise CqlError(f"unknown operator {op!r}")
        if op == "exists":
            args: list[str] = []
        elif op == "in":
            args = self.argument_list()
        elif op == "=~":
            args = [self.pattern()]
        else:
            tok = self.take()
            if tok[0] == "p":
                raise CqlError(f"{op} needs an argument")
            args = [tok[1]]
        if op == "=~":
            try:
                re.compile(args[0])
            except re.error as exc:
                raise CqlError(f"not a regular expression: {args[0]!r}") from exc

        def test(facts: Facts) -> bool:
            if op == "exists":
                held = subject.startswith("attribute:") and subject[len("attribute:"):] in facts.attributes
            else:
                values = _values(subject, facts)
                held = values is not None and any(_positive(subject, op, v, args) for v in values)
            return held is not negate

        return test


def compile_query(expression: str) -> Test:
    """Parse an expression into a test on `Facts` (CqlError if it does not parse)."""
    reader = _Reader(expression)
    test = reader.disjunction()
    if reader.peek() is not None:
        raise CqlError(f"unexpected {reader.peek()}")
    return test
