"""The Amazon ECS cluster query language: parse an expression once, evaluate it on many instances.

This is what ECS evaluates for a `memberOf` placement constraint, written out from the ECS
developer guide ("Create expressions to define container instances for Amazon ECS tasks").

Grammar (whitespace is free between tokens; keywords and subjects are case-sensitive)::

    expression := or
    or         := and (("or" | "||") and)*
    and        := unary (("and" | "&&") unary)*
    unary      := ("not" | "!") unary | "(" expression ")" | comparison
    comparison := subject operator [argument]
    subject    := agentConnected | agentVersion | attribute:<name> | ec2InstanceId
                | registeredAt | runningTasksCount | task:group
    operator   := == equals | != not_equals | > greater_than | >= greater_than_equal
                | < less_than | <= less_than_equal | exists | !exists not_exists
                | in | !in not_in | =~ matches | !~ not_matches
    argument   := value | list            (no argument for exists / !exists)
    list       := "[" value ("," value)* "]" | "(" value ("," value)* ")"
    value      := 'quoted' | "quoted" | bare   (a bare value ends at whitespace or an unmatched ")")

Precedence is not > and > or. Each subject takes the operators the guide lists for it
(`attribute:*` takes all of them, `task:group` the string operators), and typed arguments are
checked when parsing: `registeredAt` takes the guide's four date formats, `runningTasksCount` an
integer, `agentVersion` a dotted version, `agentConnected` true or false.

Semantics:

- `==`, `!=`, `in`, `!in` compare strings; `*` in the argument matches any run of characters
  (`attribute:ecs.instance-type == t2.*`). `in` is a disjunction of `==`, wildcards included.
- `=~` and `!~` take a Java regular expression that must match the whole value, as Java's
  `String.matches` does. It runs on Python's `re`; Java named groups `(?<name>...)` are translated,
  other Java-only constructs (such as `\\p{Alpha}`) are rejected when parsing.
- Ordering on `attribute:*` is numeric when both sides are decimal numbers (`-?digits[.digits]`), by
  version when both are versions (digits and dots, a plain integer being a one-part version:
  `1.10.0 > 1.9.2`, `10 > 5.10.2`), else by string. The guide lists the operators but not how
  values are ordered; this reading is shared with the simulator's evaluator through one table of
  cases (`tests/sim/test_cluster_query.py`). `agentVersion` compares as a version
  (`1.10` equals `1.10.0`), `runningTasksCount` as an integer, `registeredAt` as an instant
  (a date alone is midnight UTC, a time without an offset is UTC).
- `task:group` holds when any task on the instance is in a matching group, so
  `not(task:group == database)` (or `task:group != database`) is anti-affinity.
- A negative operator (`!=`, `!exists`, `!in`, `!~`) is exactly the negation of its positive
  twin. So a subject with no value (an absent attribute, an attribute with no value, an unknown
  agent version or registration time) fails every positive test, `exists` excepted for an
  attribute that is present without a value, and passes every negative one.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any, Literal, TypeAlias

from daemon_guard.core.model import InstanceView

__all__ = [
    "And",
    "Comparison",
    "Expr",
    "Field",
    "Not",
    "Operator",
    "Or",
    "QueryError",
    "Subject",
    "evaluate",
    "parse",
    "validate",
]

Operator = Literal["==", "!=", ">", ">=", "<", "<=", "exists", "!exists", "in", "!in", "=~", "!~"]
Field = Literal[
    "agentConnected",
    "agentVersion",
    "attribute",
    "ec2InstanceId",
    "registeredAt",
    "runningTasksCount",
    "task:group",
]

_WORD_OPERATORS: dict[str, Operator] = {
    "equals": "==",
    "not_equals": "!=",
    "greater_than": ">",
    "greater_than_equal": ">=",
    "less_than": "<",
    "less_than_equal": "<=",
    "exists": "exists",
    "!exists": "!exists",
    "not_exists": "!exists",
    "in": "in",
    "!in": "!in",
    "not_in": "!in",
    "matches": "=~",
    "not_matches": "!~",
}
# Longest first, so that ">=" is not read as ">" followed by a value "=...".
_SYMBOL_OPERATORS: tuple[tuple[str, Operator], ...] = (
    ("==", "=="),
    ("!=", "!="),
    (">=", ">="),
    ("<=", "<="),
    ("=~", "=~"),
    ("!~", "!~"),
    (">", ">"),
    ("<", "<"),
)
_NEGATIONS: dict[Operator, Operator] = {"!=": "==", "!exists": "exists", "!in": "in", "!~": "=~"}
_ORDERING: frozenset[Operator] = frozenset({">", ">=", "<", "<="})
_STRING_OPERATORS: frozenset[Operator] = frozenset({"==", "!=", "in", "!in", "=~", "!~"})
_TYPED_OPERATORS: frozenset[Operator] = frozenset({"==", "!=", ">", ">=", "<", "<="})
_ALLOWED: dict[Field, frozenset[Operator]] = {
    "agentConnected": _STRING_OPERATORS,
    "agentVersion": _TYPED_OPERATORS,
    "attribute": frozenset(_WORD_OPERATORS.values()),
    "ec2InstanceId": _STRING_OPERATORS,
    "registeredAt": _TYPED_OPERATORS,
    "runningTasksCount": _TYPED_OPERATORS,
    "task:group": _STRING_OPERATORS,
}
_FIXED_SUBJECTS: dict[str, Field] = {
    "agentConnected": "agentConnected",
    "agentVersion": "agentVersion",
    "ec2InstanceId": "ec2InstanceId",
    "registeredAt": "registeredAt",
    "runningTasksCount": "runningTasksCount",
    "task:group": "task:group",
}
_ATTRIBUTE_PREFIX = "attribute:"
# ECS attribute names: 1-128 letters, digits, hyphens, underscores, slashes, back slashes, periods.
_ATTRIBUTE_NAME = re.compile(r"[A-Za-z0-9_./\\-]{1,128}")
_WORD_CHARS = frozenset(string.ascii_letters + string.digits + "_-.:/\\")

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}:\d{2}(Z|[+-]\d{2}:\d{2})?)?", re.ASCII)
_COUNT = re.compile(r"\d+", re.ASCII)
_VERSION = re.compile(r"\d+(\.\d+)*", re.ASCII)
_NUMBER = re.compile(r"-?\d+(\.\d+)?", re.ASCII)
# A plain integer is a one-part version, so `10` orders against `5.10.2` as a version (10 > 5.10.2).
_DOTTED = re.compile(r"v?\d+(\.\d+)*", re.ASCII)
_JAVA_NAMED_GROUP = re.compile(r"\(\?<(?=[A-Za-z])")

_Compare = Callable[[Any, Any], bool]
_COMPARE: dict[Operator, _Compare] = {
    "==": lambda a, b: a == b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
}


class QueryError(ValueError):
    """An expression that is not valid ECS cluster query language.

    The message names the 0-based `position` of the fault and draws a caret under it.
    """

    def __init__(self, reason: str, expression: str, position: int) -> None:
        self.reason = reason
        self.expression = expression
        self.position = position
        # Tabs and newlines would shift the caret off its column.
        shown = "".join(" " if char.isspace() else char for char in expression)
        super().__init__(f"{reason} at position {position}\n  {shown}\n  {' ' * position}^")


class _ArgumentError(ValueError):
    """An argument a comparison cannot take; `index` says which one (-1: the comparison itself)."""

    def __init__(self, reason: str, index: int = -1) -> None:
        super().__init__(reason)
        self.reason = reason
        self.index = index


@dataclass(frozen=True)
class Subject:
    """What a comparison reads from an instance; `attribute` names the attribute for `attribute:*`."""

    field: Field
    attribute: str = ""

    def __str__(self) -> str:
        return f"{_ATTRIBUTE_PREFIX}{self.attribute}" if self.field == "attribute" else self.field


_Operand: TypeAlias = re.Pattern[str] | datetime | int | tuple[int, ...] | str


@dataclass(frozen=True)
class Comparison:
    """One `subject operator [argument]` test; `arguments` holds the list of `in`/`!in`.

    Arguments are checked and compiled (wildcards, regex, dates, versions) when the node is built,
    so evaluation does no parsing. Building one with a bad argument raises ValueError.
    """

    subject: Subject
    operator: Operator
    arguments: tuple[str, ...] = ()
    _operands: tuple[_Operand, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_operands", _compile(self.subject, self.operator, self.arguments))


@dataclass(frozen=True)
class And:
    """True when every operand is true."""

    operands: tuple[Expr, ...]


@dataclass(frozen=True)
class Or:
    """True when any operand is true."""

    operands: tuple[Expr, ...]


@dataclass(frozen=True)
class Not:
    """True when its operand is false."""

    operand: Expr


Expr: TypeAlias = Comparison | And | Or | Not


def parse(expression: str) -> Expr:
    """Parse a cluster query expression into an immutable tree; results are cached.

    Raises
    ------
    QueryError
        When the expression is malformed, uses an operator its subject does not take, or has an
        argument of the wrong type (bad date, number, version, regular expression).
    """
    return _parse_cached(expression)


def validate(expression: str) -> str | None:
    """Return None when the expression is valid, else the QueryError message (with its caret)."""
    try:
        parse(expression)
    except QueryError as error:
        return str(error)
    return None


def evaluate(expr: Expr | str, instance: InstanceView, task_groups: Collection[str] = ()) -> bool:
    """Tell whether an instance satisfies an expression.

    Parameters
    ----------
    expr
        A tree from `parse`, or an expression string (parsed through the cache).
    instance
        The container instance to judge.
    task_groups
        The groups of the tasks currently on that instance, read by `task:group`.

    Raises
    ------
    QueryError
        When `expr` is a string that does not parse.
    """
    node = parse(expr) if isinstance(expr, str) else expr
    return _evaluate(node, instance, task_groups)


# --- evaluation ---------------------------------------------------------------------------------


def _evaluate(node: Expr, instance: InstanceView, task_groups: Collection[str]) -> bool:
    if isinstance(node, Comparison):
        positive = _NEGATIONS.get(node.operator)
        if positive is None:
            return _holds(node, node.operator, instance, task_groups)
        return not _holds(node, positive, instance, task_groups)
    if isinstance(node, And):
        return all(_evaluate(operand, instance, task_groups) for operand in node.operands)
    if isinstance(node, Or):
        return any(_evaluate(operand, instance, task_groups) for operand in node.operands)
    return not _evaluate(node.operand, instance, task_groups)


def _holds(
    node: Comparison, operator: Operator, instance: InstanceView, task_groups: Collection[str]
) -> bool:
    """Evaluate a positive operator (never `!=`, `!exists`, `!in`, `!~`)."""
    subject = node.subject.field
    operands = node._operands
    if subject == "attribute":
        if node.subject.attribute not in instance.attributes:
            return False
        if operator == "exists":
            return True
        value = instance.attributes[node.subject.attribute]
        if value is None:
            return False
        if operator in _ORDERING:
            return _compare_strings(operator, value, node.arguments[0])
        return _matches_any(operands, value)
    if subject == "task:group":
        return any(_matches_any(operands, group) for group in task_groups)
    if subject == "ec2InstanceId":
        return bool(instance.ec2_instance_id) and _matches_any(operands, instance.ec2_instance_id)
    if subject == "agentConnected":
        return _matches_any(operands, "true" if instance.agent_connected else "false")
    if subject == "agentVersion":
        version = _lenient_version(instance.agent_version)
        return version is not None and _COMPARE[operator](version, operands[0])
    if subject == "registeredAt":
        registered = instance.registered_at
        if registered is None:
            return False
        if registered.tzinfo is None:
            registered = registered.replace(tzinfo=UTC)
        return _COMPARE[operator](registered, operands[0])
    return _COMPARE[operator](instance.running_tasks_count, operands[0])


def _matches_any(patterns: tuple[_Operand, ...], value: str) -> bool:
    return any(isinstance(pattern, re.Pattern) and pattern.fullmatch(value) for pattern in patterns)


def _compare_strings(operator: Operator, left: str, right: str) -> bool:
    compare = _COMPARE[operator]
    if _NUMBER.fullmatch(left) and _NUMBER.fullmatch(right):
        return compare(Decimal(left), Decimal(right))
    if _DOTTED.fullmatch(left) and _DOTTED.fullmatch(right):
        return compare(_version_key(left.lstrip("v")), _version_key(right.lstrip("v")))
    return compare(left, right)


def _version_key(text: str) -> tuple[int, ...]:
    parts = [int(part) for part in text.split(".")]
    # Trailing zeros carry no order: 1.10 and 1.10.0 are the same version.
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def _lenient_version(text: str) -> tuple[int, ...] | None:
    # Agents report plain "1.82.1"; tolerate a "v" prefix or a build suffix rather than go blind.
    found = _VERSION.match(text.strip().removeprefix("v"))
    return _version_key(found.group()) if found else None


# --- compiling arguments ------------------------------------------------------------------------


def _compile(subject: Subject, operator: Operator, arguments: tuple[str, ...]) -> tuple[_Operand, ...]:
    if operator not in _ALLOWED[subject.field]:
        raise _ArgumentError(f"operator '{operator}' is not valid for {subject.field}")
    if subject.field == "attribute" and not _ATTRIBUTE_NAME.fullmatch(subject.attribute):
        raise _ArgumentError(f"invalid attribute name '{subject.attribute}'")
    expected = 0 if operator in ("exists", "!exists") else None if operator in ("in", "!in") else 1
    if expected is None and not arguments:
        raise _ArgumentError(f"operator '{operator}' needs at least one argument")
    if expected is not None and len(arguments) != expected:
        raise _ArgumentError(f"operator '{operator}' takes {expected} argument(s), got {len(arguments)}")
    return tuple(
        _operand(subject.field, operator, argument, index) for index, argument in enumerate(arguments)
    )


def _operand(subject: Field, operator: Operator, argument: str, index: int) -> _Operand:
    if operator in ("=~", "!~"):
        try:
            return re.compile(_JAVA_NAMED_GROUP.sub("(?P<", argument), re.DOTALL)
        except re.error as error:
            raise _ArgumentError(f"invalid regular expression: {error}", index) from None
    if subject == "agentVersion":
        if not _VERSION.fullmatch(argument):
            raise _ArgumentError(f"invalid agent version '{argument}' (expected digits and dots)", index)
        return _version_key(argument)
    if subject == "registeredAt":
        return _date(argument, index)
    if subject == "runningTasksCount":
        if not _COUNT.fullmatch(argument):
            raise _ArgumentError(f"invalid task count '{argument}' (expected a whole number)", index)
        return int(argument)
    if subject == "agentConnected":
        if argument.lower() not in ("true", "false"):
            raise _ArgumentError(f"invalid agentConnected value '{argument}' (expected true or false)", index)
        return re.compile(argument.lower())
    if operator in _ORDERING:
        return argument
    return re.compile(".*".join(re.escape(part) for part in argument.split("*")), re.DOTALL)


def _date(argument: str, index: int) -> datetime:
    reason = (
        f"invalid date '{argument}' (expected 2018-06-18, 2018-06-18T22:28:28, "
        "2018-06-18T22:28:28Z or 2018-06-18T22:28:28+00:00)"
    )
    if not _DATE.fullmatch(argument):
        raise _ArgumentError(reason, index)
    try:
        moment = datetime.fromisoformat(argument)
    except ValueError:
        raise _ArgumentError(reason, index) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# --- parsing ------------------------------------------------------------------------------------


@lru_cache(maxsize=1024)
def _parse_cached(expression: str) -> Expr:
    return _Parser(expression).expression()


class _Parser:
    """A recursive-descent parser reading the text directly, so every error knows its column."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, reason: str, position: int | None = None) -> QueryError:
        return QueryError(reason, self.text, self.pos if position is None else position)

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def word_end(self, start: int) -> int:
        end = start
        while end < len(self.text) and self.text[end] in _WORD_CHARS:
            end += 1
        return end

    def accept(self, *tokens: str) -> bool:
        """Consume the first token found here; a word token must end at a word boundary."""
        self.skip_space()
        for token in tokens:
            if not self.text.startswith(token, self.pos):
                continue
            end = self.pos + len(token)
            if token[-1].isalpha() and end < len(self.text) and self.text[end] in _WORD_CHARS:
                continue
            self.pos = end
            return True
        return False

    def expression(self) -> Expr:
        node = self.disjunction()
        self.skip_space()
        if self.pos < len(self.text):
            if self.text[self.pos] == ")":
                raise self.fail("unexpected ')'")
            raise self.fail("expected 'and', 'or' or end of expression")
        return node

    def disjunction(self) -> Expr:
        operands = [self.conjunction()]
        while self.accept("or", "||"):
            operands.append(self.conjunction())
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def conjunction(self) -> Expr:
        operands = [self.unary()]
        while self.accept("and", "&&"):
            operands.append(self.unary())
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def unary(self) -> Expr:
        if self.accept("not", "!"):
            return Not(self.unary())
        if self.accept("("):
            node = self.disjunction()
            if not self.accept(")"):
                raise self.fail("expected 'and', 'or' or ')'")
            return node
        return self.comparison()

    def comparison(self) -> Expr:
        self.skip_space()
        start = self.pos
        end = self.word_end(start)
        word = self.text[start:end]
        if not word:
            raise self.fail("expected subject")
        subject = self.subject(word, start)
        self.pos = end
        self.skip_space()
        operator_at = self.pos
        operator = self.operator()
        if operator is None:
            raise self.fail("expected operator")
        if operator not in _ALLOWED[subject.field]:
            token = self.text[operator_at : self.pos]
            raise self.fail(f"operator '{token}' is not valid for {subject.field}", operator_at)
        arguments, positions = self.arguments(operator)
        try:
            return Comparison(subject, operator, arguments)
        except _ArgumentError as bad:
            raise self.fail(bad.reason, positions[bad.index] if bad.index >= 0 else start) from None

    def subject(self, word: str, start: int) -> Subject:
        if word.startswith(_ATTRIBUTE_PREFIX):
            name = word[len(_ATTRIBUTE_PREFIX) :]
            if not name:
                raise self.fail("expected attribute name", start + len(_ATTRIBUTE_PREFIX))
            if not _ATTRIBUTE_NAME.fullmatch(name):
                raise self.fail(f"invalid attribute name '{name}'", start + len(_ATTRIBUTE_PREFIX))
            return Subject("attribute", name)
        fixed = _FIXED_SUBJECTS.get(word)
        if fixed is None:
            raise self.fail(
                f"unknown subject '{word}' (expected agentConnected, agentVersion, attribute:<name>, "
                "ec2InstanceId, registeredAt, runningTasksCount or task:group)",
                start,
            )
        return Subject(fixed)

    def operator(self) -> Operator | None:
        text, pos = self.text, self.pos
        bang = text.startswith("!", pos) and pos + 1 < len(text) and text[pos + 1].isalpha()
        if pos < len(text) and (bang or text[pos].isalpha()):
            end = self.word_end(pos + 1 if bang else pos)
            found = _WORD_OPERATORS.get(text[pos:end])
            if found is not None:
                self.pos = end
            return found
        for token, symbol in _SYMBOL_OPERATORS:
            if text.startswith(token, pos):
                self.pos += len(token)
                return symbol
        return None

    def arguments(self, operator: Operator) -> tuple[tuple[str, ...], tuple[int, ...]]:
        if operator in ("exists", "!exists"):
            return (), ()
        if operator not in ("in", "!in"):
            value, position = self.value(in_list=False)
            return (value,), (position,)
        self.skip_space()
        opener = self.text[self.pos : self.pos + 1]
        if opener not in ("[", "("):
            raise self.fail("expected '[' or '(' to open the argument list")
        closer = "]" if opener == "[" else ")"
        self.pos += 1
        values: list[str] = []
        positions: list[int] = []
        while True:
            value, position = self.value(in_list=True)
            values.append(value)
            positions.append(position)
            if self.accept(","):
                continue
            if self.accept(closer):
                return tuple(values), tuple(positions)
            raise self.fail(f"expected ',' or '{closer}'")

    def value(self, in_list: bool) -> tuple[str, int]:
        """Read one quoted or bare value and return it with its start position."""
        self.skip_space()
        text, start = self.text, self.pos
        if start < len(text) and text[start] in "'\"":
            end = text.find(text[start], start + 1)
            if end < 0:
                raise self.fail("unterminated quoted value", start)
            self.pos = end + 1
            return text[start + 1 : end], start
        pos, depth = start, 0
        while pos < len(text):
            char = text[pos]
            if char.isspace() or (in_list and char in ",)]"):
                break
            if char == "\\":
                pos += 2
                continue
            # Balanced parentheses stay in the value, so `=~ (t2|t3)\..*` is one regex while
            # `not(task:group == database)` still closes its group.
            if char == "(":
                depth += 1
            elif char == ")":
                if depth == 0:
                    break
                depth -= 1
            pos += 1
        pos = min(pos, len(text))
        if pos == start:
            raise self.fail("expected value")
        self.pos = pos
        return text[start:pos], start
