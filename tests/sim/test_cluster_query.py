"""The simulator's constraint evaluator against the guard's: two readings of the ECS guide must agree.

`sim.cluster_query` (what the simulated ECS enforces) and `daemon_guard.core.query` (what the guard
decides with) are written independently; hypothesis generates expressions and instances, and every
expression the guard accepts must select the same instances in both. Disagreements found so far and
how the guide settled them are listed in sim/cluster_query.py's docstring.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from daemon_guard.core import query
from daemon_guard.core.model import InstanceView, Resources
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from sim.cluster_query import CqlError, Facts, compile_query

NAMES = ("ecs.instance-type", "team", "disk", "kernel")
VALUES = ("t2.small", "t2.*", "m5.large", "payments", "10", "9", "100", "5.10.2", "5.9", "1e3", "a b")
GROUPS = ("service:api", "service:fluent-bit", "family:batch")
PATTERNS = ("t2\\..*", ".*ay.*", "[0-9]+", "payments")
DATES = ("2024-06-14", "2024-06-14T12:30:00Z", "2024-06-14T12:30:00+00:00", "2025-01-01")

values = st.sampled_from(VALUES).map(lambda v: f"'{v}'" if " " in v else v)


@st.composite
def comparisons(draw: st.DrawFn) -> str:
    """One `subject operator [argument]` the guide allows."""
    kind = draw(st.sampled_from(("attribute", "group", "count", "version", "date", "id")))
    if kind == "attribute":
        subject = f"attribute:{draw(st.sampled_from(NAMES))}"
        op = draw(st.sampled_from(("==", "!=", "equals", "not_equals", ">", ">=", "<", "<=", "exists", "!exists",
                                   "in", "!in", "=~", "!~")))
    elif kind == "group":
        subject, op = "task:group", draw(st.sampled_from(("==", "!=", "in", "!in", "=~", "!~")))
        return f"{subject} {op} " + (f"[{', '.join(draw(st.lists(st.sampled_from(GROUPS), min_size=1, max_size=2)))}]"
                                      if op in ("in", "!in") else draw(st.sampled_from((*GROUPS, "service:*"))))
    elif kind == "count":
        return f"runningTasksCount {draw(st.sampled_from(('==', '!=', '>', '<=')))} {draw(st.integers(0, 4))}"
    elif kind == "version":
        return f"agentVersion {draw(st.sampled_from(('==', '!=', '>', '<')))} " \
               f"{draw(st.sampled_from(('1.89.0', '1.89', '1.9.1', '1.100.0')))}"
    elif kind == "date":
        return f"registeredAt {draw(st.sampled_from(('==', '>', '>=', '<')))} {draw(st.sampled_from(DATES))}"
    else:
        subject, op = "ec2InstanceId", draw(st.sampled_from(("==", "!=", "=~")))
        return f"{subject} {op} {draw(st.sampled_from(('i-0abc', 'i-0.*', 'i-9')))}"
    if op in ("exists", "!exists"):
        return f"{subject} {op}"
    if op in ("in", "!in"):
        return f"{subject} {op} [{', '.join(draw(st.lists(values, min_size=1, max_size=3)))}]"
    if op in ("=~", "!~"):
        return f"{subject} {op} {draw(st.sampled_from(PATTERNS))}"
    return f"{subject} {op} {draw(values)}"


expressions = st.recursive(
    comparisons(),
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from((" and ", " && ", " or ", " || ")), inner).map("".join),
        inner.map(lambda e: f"not ({e})"),
        inner.map(lambda e: f"({e})"),
    ),
    max_leaves=4,
)


@st.composite
def instances(draw: st.DrawFn) -> tuple[InstanceView, frozenset[str]]:
    """An instance (some attributes, some without a value) and the task groups it runs."""
    attributes = draw(st.dictionaries(st.sampled_from(NAMES), st.one_of(st.none(), st.sampled_from(VALUES)),
                                      max_size=4))
    groups = frozenset(draw(st.lists(st.sampled_from(GROUPS), max_size=2)))
    view = InstanceView(arn="arn:ci/1", ec2_instance_id=draw(st.sampled_from(("i-0abc", "i-1def"))), status="ACTIVE",
                        agent_connected=True, registered=Resources(), remaining=Resources(), attributes=attributes,
                        registered_at=datetime(2024, 6, 14, 12, 30, tzinfo=UTC),
                        agent_version=draw(st.sampled_from(("1.89.0", "1.9.1", "1.100.0"))),
                        running_tasks_count=draw(st.integers(0, 4)))
    return view, groups


def facts_of(view: InstanceView, groups: frozenset[str]) -> Facts:
    """The same instance as the simulator's evaluator sees it."""
    return Facts(attributes=view.attributes, ec2_instance_id=view.ec2_instance_id,
                 agent_connected=view.agent_connected, agent_version=view.agent_version,
                 registered_at=view.registered_at, running_tasks_count=view.running_tasks_count, task_groups=groups)


@settings(max_examples=400)
@given(expressions, instances())
def test_the_simulator_and_the_guard_select_the_same_instances(expression: str,
                                                                instance: tuple[InstanceView, frozenset[str]]) -> None:
    # GIVEN an expression the guard accepts and an instance
    try:
        parsed = query.parse(expression)
    except query.QueryError:
        assume(False)
        return
    view, groups = instance
    # WHEN both evaluators judge it / THEN they agree
    assert compile_query(expression)(facts_of(view, groups)) == query.evaluate(parsed, view, groups), expression


# How ordering reads attribute values. The guide lists `>`, `>=`, `<`, `<=` for `attribute:*` but not how
# values are ordered; both evaluators share this reading: decimal numbers as numbers, versions (digits and
# dots, a plain integer being a one-part version) part by part, anything else as text.
ORDERING = [
    ("10", ">", "9", True, "numbers as numbers, not text"),
    ("1.5", ">", "1.10", True, "two decimals compare as decimals"),
    ("5.10.2", ">", "10", False, "a plain integer against a dotted version orders as a version"),
    ("5.10.2", "<", "10", True, "so 5.10.2 is below 10"),
    ("5.10.2", ">", "5.9", True, "a dotted version against a decimal orders as a version"),
    ("1.10.0", "<=", "1.10", True, "trailing zeros carry no order"),
    ("1e3", ">", "9", False, "no float syntax: 1e3 is text, and '1' sorts before '9'"),
    ("payments", ">", "10", True, "text against a number orders as text"),
    ("t2.small", "<", "t3.micro", True, "text as text"),
]


@pytest.mark.parametrize(("value", "operator", "argument", "selected", "reading"), ORDERING,
                         ids=[case[-1] for case in ORDERING])
def test_both_evaluators_order_attribute_values_the_same_documented_way(value: str, operator: str, argument: str,
                                                                         selected: bool, reading: str) -> None:
    # GIVEN an instance whose attribute has this value
    view = InstanceView(arn="arn:ci/1", ec2_instance_id="i-0abc", status="ACTIVE", agent_connected=True,
                        registered=Resources(), remaining=Resources(), attributes={"disk": value})
    expression = f"attribute:disk {operator} {argument}"
    # WHEN the simulator and the guard evaluate the ordering / THEN both read it as the table says
    assert compile_query(expression)(facts_of(view, frozenset())) is selected, reading
    assert query.evaluate(query.parse(expression), view, frozenset()) is selected, reading


@pytest.mark.parametrize("expression", [
    "attribute:a ==", "attribute:a in a, b", "(attribute:a == b", "nonsense == 1", "attribute:a =~ [",
])
def test_the_simulator_rejects_what_does_not_parse(expression: str) -> None:
    # GIVEN a malformed expression / THEN the simulated ECS refuses it (InvalidParameterException upstream)
    with pytest.raises(CqlError):
        compile_query(expression)


@pytest.mark.parametrize(("expression", "selected"), [
    pytest.param("attribute:ecs.instance-type == t2.*", True, id="the guide's memberOf example: * is a wildcard"),
    pytest.param("attribute:ecs.instance-type in [m5.large, t2.small]", True, id="argument list"),
    pytest.param("attribute:ecs.instance-type =~ t2", False, id="a Java regex must match the whole value"),
    pytest.param("task:group == service:api and not (task:group == service:db)", True, id="affinity and anti"),
    pytest.param("attribute:absent != x", True, id="a negation holds where the attribute is absent"),
    pytest.param("attribute:daemon-guard.gate.stop.metrics !exists", True, id="the tier constraint, before the drain"),
])
def test_the_guides_examples(expression: str, selected: bool) -> None:
    # GIVEN a t2.small instance running a task of service:api / THEN the guide's reading holds
    facts = Facts(attributes={"ecs.instance-type": "t2.small"}, ec2_instance_id="i-1", agent_connected=True,
                  agent_version="1.89.0", registered_at=None, running_tasks_count=1, task_groups={"service:api"})
    assert compile_query(expression)(facts) is selected
