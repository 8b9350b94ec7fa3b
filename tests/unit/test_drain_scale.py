"""The drain planner and its preview are linear in the tasks of one instance.

Counted, never timed: every task is a `CountedTask` whose attribute reads, and whose ARN's equality
tests, add to one counter. Four times the tasks must cost about four times the operations (a
membership test against a tuple, or a task looked up by scanning a list, makes it sixteen). The
benchmark figure (seconds for 100,000 tasks) is `python -m bench.drain_scale`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any, ClassVar

import pytest
from daemon_guard.core.config import DrainOrder, StandalonePolicy
from daemon_guard.core.drain import DrainPolicy, DrainProgress, DrainRequest, DrainView, plan_drain_step
from daemon_guard.core.drain_preview import preview_drain
from daemon_guard.core.model import TaskView

from bench.drain_scale import START, TIERS, instance_with

ORDERS = list(DrainOrder)


class Counter:
    """Operations on tasks, summed over one run."""

    operations: ClassVar[int] = 0


class CountedArn(str):
    """A task ARN that counts each equality test (what a membership test in a tuple or list does per item)."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        Counter.operations += 1
        return str.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        Counter.operations += 1
        return str.__ne__(self, other)

    __hash__ = str.__hash__


class CountedTask(TaskView):
    """A task that counts every attribute read (dataclass equality reads every field)."""

    def __getattribute__(self, name: str) -> Any:
        Counter.operations += 1
        return super().__getattribute__(name)


def counted(view: DrainView) -> DrainView:
    """The same instance, its tasks counted."""
    tasks = tuple(CountedTask(**{**t.__dict__, "arn": CountedArn(t.arn)}) for t in view.tasks)
    return replace(view, tasks=tasks)


def policy(order: DrainOrder) -> DrainPolicy:
    """Three tiers, standalone tasks waited for."""
    return DrainPolicy(tier_names=TIERS, standalone=StandalonePolicy.WAIT, standalone_wait_s=300,
                       drain_deadline_s=900, tier_deadline_s=300, heartbeat_timeout_s=300, order=order)


def operations(tasks: int, run: Callable[[DrainRequest, DrainView], object]) -> int:
    """Task operations `run` makes on an instance holding `tasks` tasks."""
    view, request = instance_with(tasks)
    view = counted(view)
    Counter.operations = 0
    run(request, view)
    return Counter.operations


def fresh() -> DrainProgress:
    """A drain that starts now."""
    return DrainProgress.begin(START)


@pytest.mark.parametrize("order", ORDERS, ids=[o.value for o in ORDERS])
def test_the_preview_costs_four_times_the_operations_for_four_times_the_tasks(order: DrainOrder) -> None:
    # GIVEN one instance with 1,000 tasks and one with 4,000 (replicas, standalone tasks, three daemon tiers)
    # WHEN the drain is previewed on each, every task operation counted
    small = operations(1000, lambda request, view: preview_drain(request, view, policy(order)))
    large = operations(4000, lambda request, view: preview_drain(request, view, policy(order)))
    # THEN the larger costs about four times as much (linear), not sixteen (quadratic)
    assert small > 0
    assert large / small < 4.6, f"{small} operations for 1,000 tasks, {large} for 4,000"


def mid_drain(request: DrainRequest, view: DrainView, order: DrainOrder) -> object:
    """A step in the middle of a drain: half the replicas already asked to stop, and the last tier's daemons
    stopping (by someone else) while the first tier still runs: every lookup the planner makes is large."""
    replicas = [t.arn for t in view.tasks if t.group.startswith("service:api-")]
    last_tier = f"service:{TIERS[-1]}"
    tasks = [replace(t, desired_status="STOPPED") if t.group == last_tier else t for t in view.tasks]
    progress = replace(fresh(), fences=replace(fresh().fences, draining_requested=True, gate_closed=True),
                       stops=replace(fresh().stops, requested=tuple(replicas[::2])))
    return plan_drain_step(request, replace(view, tasks=tasks), progress, policy(order))


@pytest.mark.parametrize("order", ORDERS, ids=[o.value for o in ORDERS])
def test_one_drain_step_costs_four_times_the_operations_for_four_times_the_tasks(order: DrainOrder) -> None:
    # GIVEN one instance with 1,000 tasks and one with 4,000, each in the middle of its drain
    # WHEN a step of the drain is planned on each, every task operation counted
    small = operations(1000, lambda request, view: mid_drain(request, view, order))
    large = operations(4000, lambda request, view: mid_drain(request, view, order))
    # THEN the larger costs about four times as much
    assert small > 0
    assert large / small < 4.6, f"{small} operations for 1,000 tasks, {large} for 4,000"


@pytest.mark.slow
@pytest.mark.parametrize("order", ORDERS, ids=[o.value for o in ORDERS])
def test_the_preview_of_100k_tasks_lets_each_task_go_once_in_its_phase(order: DrainOrder) -> None:
    # GIVEN one instance with 100,000 tasks: 90,000 replicas, 7,000 standalone tasks, 3,000 daemons in 3 tiers
    view, request = instance_with(100_000)
    # WHEN the drain is previewed
    steps = preview_drain(request, view, policy(order))
    # THEN every task goes (stopped, or replaced by ECS) in exactly one step: replicas first, then standalone
    # tasks, then each tier in order
    named = [(step.phase, arn, group) for step in steps if step.kind in ("stop-tasks", "ecs-replaces")
             for arn, group in step.tasks]
    assert len(named) == 100_000
    assert len({arn for _, arn, _ in named}) == 100_000
    phases = [phase for phase, _, _ in named]
    assert phases == sorted(phases, key=["replicas", "standalone", *TIERS].index)
    assert steps[-1].kind == "complete-lifecycle"
