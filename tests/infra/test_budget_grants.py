"""The drain budget's grants: the drain's role may read group sizes and wake the next waiter only when a
``drainBudget`` asks for it (sizes: only for a percentage)."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import pytest
from daemon_guard.core.config import parse_config

from infra.permissions import Targets, function_statements
from tests.infra.conftest import as_list

CONFIG = {"clusters": [{"name": "prod", "autoScalingGroups": ["prod-asg"]}]}
TARGETS = Targets(table_arn="arn:aws:dynamodb:us-east-1:111122223333:table/t",
                  dead_letter_queue_arn="arn:aws:sqs:us-east-1:111122223333:dlq",
                  workflow_aliases=["arn:aws:lambda:us-east-1:111122223333:function:d:live"],
                  workflow_executions=["arn:aws:lambda:us-east-1:111122223333:function:d:*"])


def drain_grants(**extra: Any) -> dict[str, set[str]]:
    stack = cdk.Stack(cdk.App(), "Probe")
    statements = function_statements(stack, parse_config({**CONFIG, **extra}), "drain", TARGETS)
    return {st.sid or "": set(as_list(st.to_json()["Action"])) for st in statements}


@pytest.mark.parametrize(("budget", "sizes", "wakes"), [
    (None, False, False),
    ("3", False, True),
    ("10%", True, True),
])
def test_the_drain_role_gets_the_budgets_calls_only_with_a_budget(budget: str | None, sizes: bool,
                                                                    wakes: bool) -> None:
    # GIVEN a configuration with or without a drain budget / WHEN the drain's statements are built
    grants = drain_grants(**({"drainBudget": budget} if budget else {}))
    # THEN group sizes only for a percentage, waking the next waiter for any budget; the table actions unchanged
    assert (grants.get("DrainBudgetGroupSizes") == {"autoscaling:DescribeAutoScalingGroups"}) is sizes
    assert (grants.get("WakeDrainsWaitingForBudget") == {"lambda:SendDurableExecutionCallbackSuccess"}) is wakes
    assert grants["StateTable"] == {"dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
                                    "dynamodb:PutItem"}
