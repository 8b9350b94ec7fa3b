"""Placement figures read off launch records: what counts as stranded by a daemon that cannot start."""

from __future__ import annotations

from typing import Any

import pytest

from bench.measure import STRANDED_AFTER_S, LaunchRecord, eviction_cost, summarize


def _launch(arn: str, registered_at: float, first_replica: float | None, failed: bool) -> LaunchRecord:
    return LaunchRecord(arn, registered_at, ("service:cwagent",), None if failed else registered_at + 5.0,
                        first_replica, 0.0, failed)


def test_an_instance_a_daemon_never_reached_is_stranded_without_replicas_or_serving_without_the_daemon() -> None:
    # GIVEN three instances the daemon failed on (one without replicas, one with, one too young to judge)
    # and one healthy instance
    horizon = 1000.0
    records = [_launch("stranded", 0.0, None, True), _launch("served", 0.0, 40.0, True),
               _launch("young", horizon - STRANDED_AFTER_S + 1, None, True), _launch("healthy", 0.0, 30.0, False)]
    # WHEN the figures are summarized
    summary = summarize(records, horizon).as_dict()
    # THEN only the instances old enough count, each on its side
    assert summary["failed_daemon_instances"] == 2
    assert summary["stranded_by_failed_daemon"] == 1
    assert summary["served_without_failed_daemon"] == 1


@pytest.mark.parametrize(("figures", "expected"), [
    pytest.param({"launches": 200, "not_covered_by_end": 182, "evictions": 1067},
                 {"instances_covered": 18, "evictions_per_instance_covered": 59.28}, id="preempt churning"),
    pytest.param({"launches": 200, "not_covered_by_end": 0, "evictions": 0},
                 {"instances_covered": 200, "evictions_per_instance_covered": 0.0}, id="no evictions (gate)"),
    pytest.param({"launches": 20, "not_covered_by_end": 20, "evictions": 7},
                 {"instances_covered": 0, "evictions_per_instance_covered": None}, id="evictions covered none"),
    pytest.param({"launches": 20, "not_covered_by_end": 2}, {"instances_covered": 18,
                 "evictions_per_instance_covered": 0.0}, id="ECS alone reports no evictions"),
])
def test_evictions_are_weighed_against_the_launches_whose_daemons_all_ran(figures: dict[str, Any],
                                                                          expected: dict[str, Any]) -> None:
    # GIVEN a strategy's merged figures / WHEN the cost of its evictions is read / THEN per instance covered
    assert eviction_cost(figures) == expected
