"""Placement figures read off launch records: what counts as stranded by a daemon that cannot start."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from bench.measure import STRANDED_AFTER_S, LaunchRecord, critical_daemon_figures, eviction_cost, summarize


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


def _world(replacements: list[tuple[str, str, float]], terminated: dict[str, float]) -> Any:
    """The parts of a simulated world the critical figures read: instances (ARN = EC2 id), replacements."""
    ids = {"i-a", "i-b", "i-c", "i-d"}
    return SimpleNamespace(
        ecs=SimpleNamespace(instances={i: SimpleNamespace(arn=i, ec2_instance_id=i) for i in ids}),
        asg=SimpleNamespace(replacements=replacements, groups={"g": SimpleNamespace(instances={
            i: SimpleNamespace(instance_id=i, terminated_at=terminated.get(i)) for i in ids})}))


def test_a_replacement_is_timed_to_the_first_covered_instance_of_its_chain_and_its_idle_time_is_capacity_lost() -> None:
    # GIVEN i-a (the daemon failed) replaced by i-b (failed too) replaced by i-c (covered at 400 s); i-d healthy
    records = [_launch("i-a", 0.0, None, True), _launch("i-b", 150.0, None, True),
               LaunchRecord("i-c", 300.0, ("service:cwagent",), 400.0, 420.0, 0.0, False),
               _launch("i-d", 0.0, 30.0, False)]
    world = _world([("i-a", "i-b", 130.0), ("i-b", "i-c", 280.0)], {"i-a": 140.0, "i-b": 290.0})
    # WHEN the figures are read
    figures = critical_daemon_figures(world, records, horizon=1000.0)
    # THEN both replacements are timed to i-c's coverage, from their own registration
    assert figures["instances_replaced"] == 2
    assert figures["time_to_covered_replacement_s"] == {"p50": 250.0, "p99": 400.0}
    assert figures["replacements_not_covered_by_end"] == 0
    # AND the capacity lost is the time i-a and i-b stood registered without replicas, until terminated
    assert figures["capacity_lost_instance_s"] == 140.0 + 140.0
    assert figures["served_without_failed_daemon"] == 0
