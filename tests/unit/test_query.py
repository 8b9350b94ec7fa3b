"""Specs for the ECS cluster query language: what parses, what it selects, and where errors point."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from daemon_guard.core.model import InstanceView, Resources
from daemon_guard.core.query import (
    And,
    Comparison,
    Not,
    Or,
    QueryError,
    Subject,
    evaluate,
    parse,
    validate,
)

INSTANCE = InstanceView(
    arn="arn:aws:ecs:us-east-1:123456789012:container-instance/prod/0a1b2c",
    ec2_instance_id="i-0abc1234",
    status="ACTIVE",
    agent_connected=True,
    registered=Resources(cpu=2048, memory=4096),
    remaining=Resources(cpu=1024, memory=2048),
    attributes={
        "ecs.instance-type": "t2.small",
        "ecs.availability-zone": "us-east-1a",
        "ecs.ami-id": "ami-0123456789",
        "ecs.os-type": "linux",
        "ecs.cpu-architecture": "x86_64",
        "com.amazonaws.ecs.capability.docker-remote-api.1.44": None,
        "team": "payments",
        "disk-gb": "100",
        "kernel": "5.10.2",
    },
    registered_at=datetime(2024, 6, 14, 12, 30, 0, tzinfo=UTC),
    agent_version="1.82.1",
    running_tasks_count=3,
)
GROUPS = ("service:checkout", "service:fluent-bit", "family:batch-report")


def holds(expression: str, instance: InstanceView = INSTANCE, groups: tuple[str, ...] = GROUPS) -> bool:
    return evaluate(expression, instance, groups)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("attribute:ecs.instance-type == t2.small", True),
        ("attribute:ecs.instance-type equals t2.small", True),
        ("attribute:ecs.instance-type == t2.micro", False),
        ("attribute:ecs.instance-type != t2.micro", True),
        ("attribute:ecs.instance-type not_equals t2.small", False),
        ("attribute:disk-gb > 99", True),
        ("attribute:disk-gb greater_than 100", False),
        ("attribute:disk-gb >= 100", True),
        ("attribute:disk-gb greater_than_equal 101", False),
        ("attribute:disk-gb < 101", True),
        ("attribute:disk-gb less_than 100", False),
        ("attribute:disk-gb <= 100", True),
        ("attribute:disk-gb less_than_equal 99", False),
        ("attribute:team exists", True),
        ("attribute:gpu exists", False),
        ("attribute:gpu !exists", True),
        ("attribute:team not_exists", False),
        ("attribute:ecs.os-type in [linux, windows]", True),
        ("attribute:ecs.os-type !in [linux, windows]", False),
        ("attribute:ecs.os-type not_in [windows]", True),
        ("attribute:ecs.cpu-architecture =~ x86_.*", True),
        ("attribute:ecs.cpu-architecture matches arm.*", False),
        ("attribute:ecs.cpu-architecture !~ arm.*", True),
        ("attribute:ecs.cpu-architecture not_matches x86_.*", False),
    ],
)
def test_every_operator_and_its_word_alias_compare_as_documented(expression: str, expected: bool) -> None:
    # GIVEN a t2.small linux x86_64 instance with disk-gb=100 and a team attribute
    # WHEN the expression is evaluated on it
    result = holds(expression)
    # THEN symbol and word spellings of an operator agree
    assert result is expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("attribute:ecs.instance-type==t2.small", True),
        ("attribute:ecs.instance-type   ==\tt2.small", True),
        ("  attribute:ecs.instance-type == t2.small  ", True),
        ("attribute:ecs.availability-zone in[us-east-1a,us-east-1b]", True),
        ("attribute:team exists&&attribute:disk-gb exists", True),
    ],
)
def test_whitespace_between_tokens_is_optional(expression: str, expected: bool) -> None:
    # GIVEN an expression written with tight or loose spacing
    # WHEN it is evaluated
    # THEN spacing does not change the result
    assert holds(expression) is expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("attribute:ecs.instance-type == t2.*", True),
        ("attribute:ecs.instance-type == t3.*", False),
        ("attribute:ecs.instance-type == *.small", True),
        ("attribute:ecs.instance-type == t*l", True),
        ("attribute:ecs.instance-type == *", True),
        ("attribute:ecs.instance-type == t2", False),
        ("attribute:ecs.instance-type != t2.*", False),
        ("attribute:ecs.instance-type != m5.*", True),
        ("attribute:ecs.availability-zone in [us-west-*, us-east-*]", True),
        ("attribute:ecs.availability-zone !in [eu-*]", True),
        ("ec2InstanceId == i-0abc*", True),
        ("task:group == service:*", True),
        ("task:group == family:batch-*", True),
        # "." is literal outside =~: t2.small does not match t2-small
        ("attribute:ecs.instance-type == t2-*", False),
    ],
)
def test_star_in_an_equality_argument_matches_any_run_of_characters(expression: str, expected: bool) -> None:
    # GIVEN a t2.small instance in us-east-1a
    # WHEN an ==, !=, in or !in argument holds a '*'
    # THEN '*' matches any run of characters and everything else is literal
    assert holds(expression) is expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("attribute:ecs.instance-type =~ t2\\..*", True),
        ("attribute:ecs.instance-type =~ (t2|t3)\\.(small|medium)", True),
        ("attribute:ecs.instance-type =~ [a-z][0-9]\\.[a-z]+", True),
        ("attribute:ecs.instance-type =~ 't2\\.s.*'", True),
        # full match, like Java's String.matches: a fragment does not match
        ("attribute:ecs.instance-type =~ t2", False),
        ("attribute:ecs.instance-type =~ small", False),
        ("attribute:ecs.instance-type =~ .*small", True),
        ("attribute:ecs.instance-type =~ (?<family>t2)\\..*", True),
        ("ec2InstanceId =~ i-[0-9a-f]{8}", True),
        ("ec2InstanceId !~ i-[0-9a-f]{8}", False),
        ("agentConnected =~ t.*", True),
        ("task:group =~ service:fluent.*", True),
        ("task:group !~ service:datadog.*", True),
    ],
)
def test_matches_takes_a_java_style_regex_over_the_whole_value(expression: str, expected: bool) -> None:
    # GIVEN a t2.small instance i-0abc1234 running checkout, fluent-bit and a batch task
    # WHEN a =~ or !~ expression is evaluated
    # THEN the regex must match the whole value, Java named groups included
    assert holds(expression) is expected


def test_a_regex_inside_parentheses_keeps_its_own_parentheses() -> None:
    # GIVEN a regex with groups inside a parenthesised compound expression
    expression = "(attribute:ecs.instance-type =~ (t2|t3)\\..* and attribute:team exists)"
    # WHEN it is parsed
    parsed = parse(expression)
    # THEN the regex keeps its groups and the outer parentheses close the compound
    assert parsed == And(
        (
            Comparison(Subject("attribute", "ecs.instance-type"), "=~", ("(t2|t3)\\..*",)),
            Comparison(Subject("attribute", "team"), "exists"),
        )
    )


@pytest.mark.parametrize(
    ("expression", "arguments"),
    [
        ("attribute:ecs.availability-zone in [us-east-1a, us-east-1b]", ("us-east-1a", "us-east-1b")),
        ("attribute:ecs.availability-zone in (us-east-1a, us-east-1b)", ("us-east-1a", "us-east-1b")),
        ("ec2InstanceId in ['i-abcd1234', 'i-wxyx7890']", ("i-abcd1234", "i-wxyx7890")),
        ('ec2InstanceId in ["i-abcd1234"]', ("i-abcd1234",)),
        ("attribute:team in [ 'data science' , payments ]", ("data science", "payments")),
    ],
)
def test_an_argument_list_takes_brackets_or_parentheses_and_quoted_items(
    expression: str, arguments: tuple[str, ...]
) -> None:
    # GIVEN an in-list in one of the accepted spellings
    # WHEN it is parsed
    parsed = parse(expression)
    # THEN the items come out in order, quotes removed
    assert isinstance(parsed, Comparison)
    assert parsed.arguments == arguments


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("attribute:ecs.availability-zone in [us-east-1a, us-east-1b]", True),
        ("attribute:ecs.availability-zone in (us-east-1b, us-east-1c)", False),
        ("attribute:ecs.availability-zone in [us-east-1a]", True),
        ("attribute:ecs.availability-zone !in [us-east-1b, us-east-1c]", True),
        ("attribute:ecs.availability-zone not_in (us-east-1a)", False),
        ("ec2InstanceId in ['i-0abc1234', 'i-wxyx7890']", True),
        ("ec2InstanceId not_in ['i-0abc1234']", False),
        ("agentConnected in [true]", True),
        ("agentConnected in [false]", False),
        ("task:group in [service:checkout, service:payments]", True),
        ("task:group !in [service:payments, service:orders]", True),
    ],
)
def test_in_holds_when_the_value_equals_any_list_item(expression: str, expected: bool) -> None:
    # GIVEN an instance in us-east-1a, connected, running the checkout service
    # WHEN an in / !in expression is evaluated
    # THEN in is true when any item equals the value and !in is its negation
    assert holds(expression) is expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("registeredAt < 2024-06-15", True),
        ("registeredAt < 2024-06-14", False),
        ("registeredAt >= 2024-06-14", True),
        ("registeredAt > 2024-06-14T12:30:00Z", False),
        ("registeredAt >= 2024-06-14T12:30:00Z", True),
        ("registeredAt == 2024-06-14T12:30:00Z", True),
        ("registeredAt == 2024-06-14T12:30:00", True),
        ("registeredAt == 2024-06-14T14:30:00+02:00", True),
        ("registeredAt != 2024-06-14T14:30:00+02:00", False),
        ("registeredAt <= 2024-06-14T08:29:59-04:00", False),
        ("registeredAt greater_than 2016-06-14T00:00:00Z", True),
        ("registeredAt less_than_equal 2024-06-14T12:30:00+00:00", True),
        ("registeredAt == 2024-06-14", False),
    ],
)
def test_registered_at_compares_instants_in_every_documented_date_format(
    expression: str, expected: bool
) -> None:
    # GIVEN an instance registered at 2024-06-14T12:30:00Z
    # WHEN its registration time is compared with a date, a UTC time, a naive time or an offset time
    # THEN the argument is read as an instant (a bare date is midnight UTC, no offset means UTC)
    assert holds(expression) is expected


@pytest.mark.parametrize(
    ("registered_at", "expression", "expected"),
    [
        (datetime(2024, 6, 14, 12, 30), "registeredAt == 2024-06-14T12:30:00Z", True),
        (
            datetime(2024, 6, 14, 23, 0, tzinfo=timezone(timedelta(hours=-5))),
            "registeredAt > 2024-06-15",
            True,
        ),
        (None, "registeredAt < 2030-01-01", False),
        (None, "registeredAt > 2000-01-01", False),
        (None, "registeredAt != 2024-06-14", True),
    ],
)
def test_registered_at_treats_naive_times_as_utc_and_unknown_times_as_absent(
    registered_at: datetime | None, expression: str, expected: bool
) -> None:
    # GIVEN an instance whose registration time is naive, offset or unknown
    instance = replace(INSTANCE, registered_at=registered_at)
    # WHEN it is compared
    # THEN naive means UTC, and an unknown time fails every test except the negative one
    assert holds(expression, instance) is expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("runningTasksCount == 3", True),
        ("runningTasksCount == 03", True),
        ("runningTasksCount != 3", False),
        ("runningTasksCount > 2", True),
        ("runningTasksCount > 10", False),
        ("runningTasksCount < 10", True),
        ("runningTasksCount <= 3", True),
        ("runningTasksCount >= 4", False),
        # numeric, not string, order on attributes: "100" > "20" is false as text
        ("attribute:disk-gb > 20", True),
        ("attribute:disk-gb < 1000", True),
        ("attribute:disk-gb >= 99.5", True),
        ("attribute:disk-gb < -1", False),
        # equality on an attribute stays string equality, as the guide says
        ("attribute:disk-gb == 100.0", False),
        # text that is not a number on either side orders as text
        ("attribute:team > pay", True),
        ("attribute:team < apples", False),
    ],
)
def test_numbers_compare_numerically(expression: str, expected: bool) -> None:
    # GIVEN an instance with 3 running tasks and disk-gb=100
    # WHEN a number is compared
    # THEN the comparison is numeric when both sides are numbers
    assert holds(expression) is expected


@pytest.mark.parametrize(
    ("agent_version", "expression", "expected"),
    [
        ("1.82.1", "agentVersion >= 1.10.0", True),
        ("1.9.2", "agentVersion >= 1.10.0", False),
        ("1.9.2", "agentVersion < 1.14.5", True),
        ("1.14.5", "agentVersion < 1.14.5", False),
        ("1.10.0", "agentVersion == 1.10", True),
        ("1.10.0", "agentVersion equals 1.10.0", True),
        ("1.10.0", "agentVersion != 1.10.1", True),
        ("1.10.0", "agentVersion > 1.9.99", True),
        ("1.10.0", "agentVersion <= 1.10.0", True),
        ("v1.82.1", "agentVersion > 1.82", True),
        ("", "agentVersion >= 1.0.0", False),
        ("", "agentVersion < 99", False),
        ("", "agentVersion != 1.0.0", True),
    ],
)
def test_agent_version_compares_as_a_version(agent_version: str, expression: str, expected: bool) -> None:
    # GIVEN an instance reporting an agent version (or none)
    instance = replace(INSTANCE, agent_version=agent_version)
    # WHEN it is compared
    # THEN components compare as numbers, trailing zeros do not count, and no version is absent
    assert holds(expression, instance) is expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("attribute:kernel > 5.9.0", True),
        ("attribute:kernel < 5.10.10", True),
        ("attribute:kernel >= 5.10.2", True),
        ("attribute:kernel > 5.10", True),
    ],
)
def test_dotted_versions_in_attributes_order_as_versions(expression: str, expected: bool) -> None:
    # GIVEN an instance with attribute kernel=5.10.2
    # WHEN it is ordered against another dotted version
    # THEN 5.10 sorts after 5.9, not before it as text would
    assert holds(expression) is expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("agentConnected == true", True),
        ("agentConnected == TRUE", True),
        ("agentConnected == false", False),
        ("agentConnected != false", True),
        ("ec2InstanceId == i-0abc1234", True),
        ("ec2InstanceId != i-0abc1234", False),
        ("ec2InstanceId == I-0ABC1234", False),
    ],
)
def test_agent_connected_and_instance_id_compare_as_text(expression: str, expected: bool) -> None:
    # GIVEN a connected instance i-0abc1234
    # WHEN its connection or id is compared
    # THEN booleans ignore case and instance ids do not
    assert holds(expression) is expected


@pytest.mark.parametrize(
    ("groups", "expression", "expected"),
    [
        (GROUPS, "task:group == service:checkout", True),
        (GROUPS, "task:group == service:production", False),
        (("service:production",), "task:group == service:production", True),
        (GROUPS, "not(task:group == database)", True),
        (("database",), "not(task:group == database)", False),
        (("database", "service:web"), "task:group != database", False),
        ((), "task:group == service:checkout", False),
        ((), "task:group != service:checkout", True),
        ((), "task:group =~ .*", False),
        ((), "task:group !in [database]", True),
    ],
)
def test_task_group_holds_when_any_task_on_the_instance_is_in_the_group(
    groups: tuple[str, ...], expression: str, expected: bool
) -> None:
    # GIVEN an instance running tasks of some groups (or none)
    # WHEN a task:group expression is evaluated
    # THEN affinity holds when any task matches, and anti-affinity when none does
    assert holds(expression, groups=groups) is expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        # absent attribute: every positive test fails, every negative test passes
        ("attribute:gpu == nvidia", False),
        ("attribute:gpu != nvidia", True),
        ("attribute:gpu > 1", False),
        ("attribute:gpu >= 1", False),
        ("attribute:gpu < 1", False),
        ("attribute:gpu <= 1", False),
        ("attribute:gpu exists", False),
        ("attribute:gpu !exists", True),
        ("attribute:gpu in [nvidia, amd]", False),
        ("attribute:gpu !in [nvidia, amd]", True),
        ("attribute:gpu =~ .*", False),
        ("attribute:gpu !~ nvidia", True),
        ("attribute:gpu == *", False),
        # present without a value: it exists, yet has no value to compare
        ("attribute:com.amazonaws.ecs.capability.docker-remote-api.1.44 exists", True),
        ("attribute:com.amazonaws.ecs.capability.docker-remote-api.1.44 !exists", False),
        ("attribute:com.amazonaws.ecs.capability.docker-remote-api.1.44 == *", False),
        ("attribute:com.amazonaws.ecs.capability.docker-remote-api.1.44 != x", True),
        ("attribute:com.amazonaws.ecs.capability.docker-remote-api.1.44 =~ .*", False),
    ],
)
def test_an_absent_attribute_fails_positive_tests_and_passes_negative_ones(
    expression: str, expected: bool
) -> None:
    # GIVEN an instance without a gpu attribute and with a docker capability that has no value
    # WHEN either is tested
    # THEN each negative operator is exactly the negation of its positive twin
    assert holds(expression) is expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("attribute:team == x or attribute:team == payments and attribute:ecs.os-type == windows", False),
        ("attribute:team == payments or attribute:team == x and attribute:ecs.os-type == windows", True),
        ("(attribute:team == payments or attribute:team == x) and attribute:ecs.os-type == windows", False),
        ("not attribute:team == payments or attribute:ecs.os-type == linux", True),
        ("not (attribute:team == payments or attribute:ecs.os-type == linux)", False),
        ("not attribute:team == payments and attribute:ecs.os-type == linux", False),
        ("! attribute:gpu exists && attribute:team exists", True),
        ("!(attribute:gpu exists || attribute:team exists)", False),
        ("not not attribute:team exists", True),
        ("((attribute:team exists))", True),
        ("attribute:gpu exists || attribute:team exists && attribute:kernel exists", True),
    ],
)
def test_not_binds_tighter_than_and_which_binds_tighter_than_or(expression: str, expected: bool) -> None:
    # GIVEN a linux instance of team payments without a gpu
    # WHEN a compound expression mixes not, and, or and parentheses
    # THEN precedence is not > and > or, and parentheses override it
    assert holds(expression) is expected


@pytest.mark.parametrize(
    ("expression", "tree"),
    [
        (
            "agentConnected == true or runningTasksCount == 0 and attribute:a exists",
            Or(
                (
                    Comparison(Subject("agentConnected"), "==", ("true",)),
                    And(
                        (
                            Comparison(Subject("runningTasksCount"), "==", ("0",)),
                            Comparison(Subject("attribute", "a"), "exists"),
                        )
                    ),
                )
            ),
        ),
        (
            "not attribute:a exists and attribute:b exists and attribute:c exists",
            And(
                (
                    Not(Comparison(Subject("attribute", "a"), "exists")),
                    Comparison(Subject("attribute", "b"), "exists"),
                    Comparison(Subject("attribute", "c"), "exists"),
                )
            ),
        ),
        (
            "attribute:a not_exists || (attribute:b greater_than_equal 2 && attribute:c not_matches x)",
            Or(
                (
                    Comparison(Subject("attribute", "a"), "!exists"),
                    And(
                        (
                            Comparison(Subject("attribute", "b"), ">=", ("2",)),
                            Comparison(Subject("attribute", "c"), "!~", ("x",)),
                        )
                    ),
                )
            ),
        ),
    ],
)
def test_parse_builds_a_tree_with_canonical_operators(expression: str, tree: object) -> None:
    # GIVEN an expression with word and symbol spellings
    # WHEN it is parsed
    # THEN the tree follows precedence and names each operator by its symbol
    assert parse(expression) == tree


@pytest.mark.parametrize(
    ("expression", "position", "reason"),
    [
        ("", 0, "expected subject"),
        ("   ", 3, "expected subject"),
        ("foo == bar", 0, "unknown subject 'foo'"),
        ("Attribute:team exists", 0, "unknown subject 'Attribute:team'"),
        ("attribute: == x", 10, "expected attribute name"),
        ("attribute:bad@name == x", 13, "expected operator"),
        ("attribute:ecs.instance-type t2.small", 28, "expected operator"),
        ("attribute:team like payments", 15, "expected operator"),
        ("attribute:ecs.instance-type ==", 30, "expected value"),
        ("attribute:team in payments", 18, "expected '[' or '('"),
        ("attribute:team in [a, b", 23, "expected ',' or ']'"),
        ("attribute:team in (a b)", 21, "expected ',' or ')'"),
        ("attribute:team in []", 19, "expected value"),
        ("attribute:team in [a,]", 21, "expected value"),
        ("attribute:team == 'payments", 18, "unterminated quoted value"),
        ("attribute:team in [a, 'b]", 22, "unterminated quoted value"),
        ("(attribute:team exists", 22, "expected 'and', 'or' or ')'"),
        ("attribute:team exists)", 21, "unexpected ')'"),
        ("attribute:team exists attribute:kernel exists", 22, "expected 'and', 'or' or end of expression"),
        ("attribute:team exists AND attribute:kernel exists", 22, "expected 'and', 'or' or end"),
        ("attribute:team == data science", 23, "expected 'and', 'or' or end"),
        ("attribute:team exists and", 25, "expected subject"),
        ("attribute:team == x or", 22, "expected subject"),
        ("not", 3, "expected subject"),
        ("agentConnected > true", 15, "operator '>' is not valid for agentConnected"),
        ("agentConnected exists", 15, "operator 'exists' is not valid for agentConnected"),
        ("ec2InstanceId <= i-1", 14, "operator '<=' is not valid for ec2InstanceId"),
        ("runningTasksCount in [1, 2]", 18, "operator 'in' is not valid for runningTasksCount"),
        ("agentVersion =~ 1.*", 13, "operator '=~' is not valid for agentVersion"),
        ("registeredAt not_exists", 13, "operator 'not_exists' is not valid for registeredAt"),
        ("task:group >= 2", 11, "operator '>=' is not valid for task:group"),
        ("agentConnected == yes", 18, "invalid agentConnected value 'yes'"),
        ("registeredAt < 2018-13-01", 15, "invalid date '2018-13-01'"),
        ("registeredAt < yesterday", 15, "invalid date 'yesterday'"),
        ("registeredAt < 2018-06-18T22:28", 15, "invalid date"),
        ("registeredAt < 2018-06-18 22:28:28", 26, "expected 'and', 'or' or end"),
        ("runningTasksCount > many", 20, "invalid task count 'many'"),
        ("runningTasksCount >= 1.5", 21, "invalid task count '1.5'"),
        ("agentVersion >= latest", 16, "invalid agent version 'latest'"),
        ("agentVersion == 1.*", 16, "invalid agent version '1.*'"),
        ("attribute:team =~ [unclosed", 18, "invalid regular expression"),
        ("ec2InstanceId =~ (i-1", 17, "invalid regular expression"),
        ("attribute:team =~ \\p{Alpha}+", 18, "invalid regular expression"),
    ],
)
def test_an_invalid_expression_is_rejected_at_the_position_of_its_fault(
    expression: str, position: int, reason: str
) -> None:
    # GIVEN a malformed expression
    # WHEN it is parsed
    with pytest.raises(QueryError) as raised:
        parse(expression)
    # THEN the error names the 0-based position of the fault and says what went wrong
    assert raised.value.position == position
    assert reason in str(raised.value)
    assert f"at position {position}" in str(raised.value)


def test_a_query_error_draws_a_caret_under_the_fault() -> None:
    # GIVEN an expression missing its operator
    expression = "attribute:ecs.instance-type t2.small"
    # WHEN it is validated
    message = validate(expression)
    # THEN the message names the position and points at it
    assert message == (
        "expected operator at position 28\n"
        "  attribute:ecs.instance-type t2.small\n"
        "                              ^"
    )


def test_a_query_error_is_a_value_error() -> None:
    # GIVEN an invalid expression
    # WHEN it is parsed
    # THEN callers that catch ValueError catch it too
    with pytest.raises(ValueError, match="expected operator"):
        parse("attribute:x y")


@pytest.mark.parametrize(
    "expression",
    [
        "attribute:ecs.instance-type == t2.small",
        "attribute:ecs.availability-zone in [us-east-1a, us-east-1b]",
        "attribute:ecs.instance-type =~ g2.* and attribute:ecs.availability-zone != us-east-1d",
        "task:group == service:production",
        "not(task:group == database)",
        "runningTasksCount == 1",
        "agentVersion < 1.14.5",
        "registeredAt < 2018-02-13",
        "ec2InstanceId in ['i-abcd1234', 'i-wxyx7890']",
        "attribute:ecs.instance-type == t2.*",
    ],
)
def test_every_example_in_the_ecs_guide_is_valid(expression: str) -> None:
    # GIVEN an example expression from the ECS developer guide
    # WHEN it is validated
    # THEN it is accepted
    assert validate(expression) is None


def test_evaluate_accepts_a_parsed_tree_or_the_expression_text() -> None:
    # GIVEN one expression as text and as a parsed tree
    expression = "attribute:ecs.instance-type == t2.* and task:group != service:db"
    tree = parse(expression)
    # WHEN both are evaluated on the same instance
    # THEN they agree
    assert evaluate(tree, INSTANCE, GROUPS) is evaluate(expression, INSTANCE, GROUPS) is True


def test_evaluating_text_that_does_not_parse_raises_query_error() -> None:
    # GIVEN an expression with a bad operator
    # WHEN it is evaluated
    # THEN the evaluator raises instead of guessing
    with pytest.raises(QueryError):
        evaluate("attribute:x ~= y", INSTANCE)


def test_parse_results_are_cached_and_hashable() -> None:
    # GIVEN an expression parsed twice
    first = parse("attribute:ecs.os-type == linux or attribute:ecs.os-type =~ win.*")
    second = parse("attribute:ecs.os-type == linux or attribute:ecs.os-type =~ win.*")
    # WHEN the results are compared
    # THEN the second parse is the cached first one, and trees can key a dict
    assert first is second
    assert {first: "ok"}[second] == "ok"


def test_a_comparison_built_by_hand_checks_its_arguments() -> None:
    # GIVEN a hand-built comparison with a date that does not exist
    # WHEN it is constructed
    # THEN it refuses, as the parser would
    with pytest.raises(ValueError, match="invalid date"):
        Comparison(Subject("registeredAt"), "<", ("2018-02-30",))
