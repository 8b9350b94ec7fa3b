"""Every number the guard plans with is within the range ECS documents, or planned conservatively.

At the adapter (the Lambda's reads), an out-of-range value is logged and replaced by its
conservative stand-in (`core.ranges.CONSERVATIVE`): never arithmetic on it, never a crash into
retries, never a task stopped early. `daemon-guard replay` refuses it (tests/cli/test_bounded_input.py).
"""

from __future__ import annotations

from typing import Any

import pytest
from daemon_guard.adapters.ecs import service_view, task_definition_view
from daemon_guard.core import ranges
from daemon_guard.core.ranges import OutOfRange, check

TD = "arn:aws:ecs:us-east-1:111122223333:task-definition/app:1"
SVC = "arn:aws:ecs:us-east-1:111122223333:service/prod/app"


@pytest.mark.parametrize(("field", "value", "expected"), [
    ("stopTimeout", 30, 30), ("stopTimeout", 0, 0), ("stopTimeout", 172_800, 172_800),
    ("stopTimeout", 2**31 - 1, None), ("stopTimeout", -100, None), ("stopTimeout", 1.5, None),
    ("stopTimeout", True, None), ("cpu", "256", 256), ("cpu", 196_608, 196_608), ("cpu", "1e400", None),
    ("cpu", "1 vCPU", None), ("cpu", -1, None), ("memory", "2048", 2048), ("memory", 2**40, None),
    ("minimumHealthyPercent", 0, 0), ("minimumHealthyPercent", 100, 100), ("minimumHealthyPercent", -2**31, None),
    ("minimumHealthyPercent", 101, None), ("maximumPercent", 200, 200), ("maximumPercent", 201, None),
    ("desiredCount", 5000, 5000), ("desiredCount", 5001, None), ("runningCount", -1, None),
])
def test_a_number_is_taken_only_within_the_range_ecs_documents(field: str, value: object,
                                                               expected: int | None) -> None:
    # GIVEN a value read for a field / WHEN checked / THEN it is taken as a whole number, or refused naming both
    if expected is None:
        with pytest.raises(OutOfRange, match=field):
            check(field, value)
    else:
        assert check(field, value) == expected


def a_task_definition(**container: Any) -> dict[str, Any]:
    """One container of 256 CPU units and 512 MiB, with what the test changes."""
    return {"taskDefinitionArn": TD, "family": "app", "networkMode": "bridge",
            "containerDefinitions": [{"name": "app", "cpu": 256, "memory": 512, **container}]}


@pytest.mark.parametrize(("stop_timeout", "planned"), [
    (30, 30), (120, 120), (2**31 - 1, ranges.ECS_DEFAULT_STOP_TIMEOUT_S), (-100, ranges.ECS_DEFAULT_STOP_TIMEOUT_S),
    ("90", 90), ("ninety", ranges.ECS_DEFAULT_STOP_TIMEOUT_S),
])
def test_an_out_of_range_stop_timeout_is_planned_as_ecs_default(stop_timeout: object, planned: int) -> None:
    # GIVEN a task definition read from ECS with this stopTimeout
    # WHEN mapped to the core view
    view = task_definition_view(a_task_definition(stopTimeout=stop_timeout))
    # THEN the drain plans with it only within range; else with ECS's default 30 s (no longer reservation that
    # would force earlier phases, no negative one that would run past the deadline)
    assert view.stop_timeout_s == planned


@pytest.mark.parametrize(("task_level", "cpu", "memory"), [
    ({"cpu": "256", "memory": "512"}, 256, 512),
    ({"cpu": "1e400", "memory": "512"}, 0, 512),
    ({"cpu": "256", "memory": str(2**40)}, 256, 0),
    ({}, 256, 512),
])
def test_out_of_range_cpu_or_memory_counts_for_nothing(task_level: dict[str, str], cpu: int, memory: int) -> None:
    # GIVEN a task definition whose task-level cpu or memory may be out of range
    # WHEN mapped / THEN an out-of-range amount counts as 0: the task frees nothing if evicted, needs no room
    view = task_definition_view({**a_task_definition(), **task_level})
    assert (view.requirements.cpu, view.requirements.memory) == (cpu, memory)


def a_service(strategy: str = "REPLICA", deployment: dict[str, Any] | None = None, **counts: Any) -> dict[str, Any]:
    """A service of 4 running tasks out of 4, its deployment limits as given."""
    return {"serviceArn": SVC, "serviceName": "app", "schedulingStrategy": strategy, "taskDefinition": TD,
            "desiredCount": 4, "runningCount": 4, "pendingCount": 0,
            "deploymentConfiguration": deployment or {"minimumHealthyPercent": 50, "maximumPercent": 200},
            **counts}


@pytest.mark.parametrize(("deployment", "minimum", "maximum"), [
    ({"minimumHealthyPercent": 50, "maximumPercent": 200}, 50, 200),
    ({"minimumHealthyPercent": -2**31, "maximumPercent": 200}, 100, 200),
    ({"minimumHealthyPercent": 50, "maximumPercent": 2**31 - 1}, 50, 200),
])
def test_out_of_range_deployment_limits_read_as_the_most_protective(deployment: dict[str, Any], minimum: int,
                                                                    maximum: int) -> None:
    # GIVEN a replica service with these deployment limits / WHEN mapped
    view = service_view(a_service(deployment=deployment))
    # THEN an out-of-range minimumHealthyPercent reads as 100 (one task at a time), maximumPercent as 200
    assert view is not None
    assert (view.minimum_healthy_percent, view.maximum_percent) == (minimum, maximum)


@pytest.mark.parametrize("counts", [{"desiredCount": -1}, {"runningCount": 2**31 - 1}, {"pendingCount": 1.5}])
def test_a_replica_service_with_out_of_range_counts_is_left_undescribed(counts: dict[str, Any]) -> None:
    # GIVEN a replica service whose counts ECS would never return / WHEN mapped
    # THEN it is left undescribed: the drain stops none of its tasks itself (replica_stops skips it)
    assert service_view(a_service(**counts)) is None


def test_a_daemon_service_with_out_of_range_counts_is_still_a_daemon() -> None:
    # GIVEN a daemon service with an impossible desiredCount / WHEN mapped
    view = service_view(a_service("DAEMON", {"minimumHealthyPercent": 0, "maximumPercent": 100},
                                  desiredCount=10**12))
    # THEN it is still placed and ordered as a daemon (its counts plan nothing), the count read as 0
    assert view is not None and view.strategy == "DAEMON" and view.desired_count == 0
