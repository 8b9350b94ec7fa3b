"""Preempt's futility check: where replicas keep taking back the room preempt frees, it stops evicting."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from daemon_guard.core.actions import StopTasks
from daemon_guard.core.config import PlacementMode
from daemon_guard.core.eligibility import Eligibility
from daemon_guard.core.futility import EPISODE_S, FutilityBounds, PreemptTries, Verdict, gave_up, judge_try
from daemon_guard.core.model import Resources, TaskDefinitionView, TaskView
from daemon_guard.core.placement import PlacementPolicy, PlacementState, plan_placement

from tests.unit.conftest import T0, a_daemon_service, a_replica_service, a_task, an_instance

SERVICES = {"api": a_replica_service("api", desired=8, running=8, min_healthy=50),
            "fluent-bit": a_daemon_service("fluent-bit")}
DAEMONS = ("fluent-bit",)
LAST_TRY = T0 + timedelta(seconds=30)
NOW = LAST_TRY + timedelta(seconds=20)
BOUNDS = FutilityBounds(max_tries=2, max_give_ups=3)


def placed(arn: str, at: datetime, service: str = "api", **kw: bool) -> TaskView:
    """A task ECS placed on the instance at `at` (its createdAt)."""
    return replace(a_task(arn, service, cpu=512, memory=2048, **kw), created_at=at)


OLD_API = tuple(placed(f"api-{i}", T0) for i in range(1, 5))
REFILL = (placed("api-9", LAST_TRY + timedelta(seconds=5)),)
REFILL_STOPPING = (placed("api-9", LAST_TRY + timedelta(seconds=5), stopping=True),)
REFILL_DAEMON = (placed("fb-2", LAST_TRY + timedelta(seconds=5), "fluent-bit"),)


def tries(n: int, futile: int, *, gave_up: bool = False, daemons: tuple[str, ...] = DAEMONS,
          at: datetime = LAST_TRY) -> PreemptTries:
    """Preempt's record: `n` tries, `futile` of them futile, the last at `at`."""
    return PreemptTries(n, futile, at, daemons, gave_up)


@pytest.mark.parametrize(("previous", "tasks", "give_ups", "verdict", "record"), [
    pytest.param(None, OLD_API, 0, "try", tries(1, 0, at=NOW), id="no record: the first try"),
    pytest.param(tries(1, 0), OLD_API, 0, "try", tries(2, 0, at=NOW),
                 id="no replica placed since the last try: not futile, try again"),
    pytest.param(tries(1, 0), OLD_API + REFILL, 0, "try", tries(2, 1, at=NOW),
                 id="a replica placed since took the room: one futile try, under the bound"),
    pytest.param(tries(2, 1), OLD_API + REFILL, 0, "give-up", tries(2, 2, gave_up=True, at=NOW),
                 id="the bound of futile tries reached: give up"),
    pytest.param(tries(2, 2, gave_up=True), OLD_API + REFILL, 0, "gave-up", tries(2, 2, gave_up=True),
                 id="already given up: nothing to write"),
    pytest.param(tries(1, 0), OLD_API + REFILL_STOPPING, 0, "try", tries(2, 0, at=NOW),
                 id="a replica already stopping holds no room: not futile"),
    pytest.param(tries(1, 0), OLD_API + REFILL_DAEMON, 0, "try", tries(2, 0, at=NOW),
                 id="a daemon task placed since is not a refill"),
    pytest.param(tries(2, 1, daemons=("cwagent",)), OLD_API + REFILL, 0, "try", tries(1, 0, at=NOW),
                 id="tries for other daemons: a new episode"),
    pytest.param(tries(2, 2, gave_up=True, at=NOW - timedelta(seconds=EPISODE_S)), OLD_API + REFILL, 0, "try",
                 tries(1, 0, at=NOW), id="a record an hour old: a new episode"),
    pytest.param(None, OLD_API, 3, "give-up", PreemptTries(0, 0, NOW, DAEMONS, gave_up=True),
                 id="the cluster's bound of give-ups reached: no first try on a new instance"),
    pytest.param(tries(1, 0), OLD_API, 3, "try", tries(2, 0, at=NOW),
                 id="an instance already tried keeps its own count past the cluster's bound"),
])
def test_a_try_is_futile_when_replicas_placed_since_took_the_room(
        previous: PreemptTries | None, tasks: tuple[TaskView, ...], give_ups: int, verdict: Verdict,
        record: PreemptTries) -> None:
    # GIVEN preempt's record on an instance still missing fluent-bit, the tasks on it now, and how many
    # instances of the cluster preempt gave up on this hour
    # WHEN another round of evictions is about to be made
    judged = judge_try(previous, DAEMONS, tasks, SERVICES, NOW, BOUNDS, give_ups)
    # THEN the verdict and the record written before acting are as specified
    assert (judged.verdict, judged.record) == (verdict, record)
    assert judged.write == (verdict != "gave-up")


@pytest.mark.parametrize(("record", "daemons", "expected"), [
    (None, DAEMONS, False),
    (tries(2, 2, gave_up=True), DAEMONS, True),
    (tries(2, 2, gave_up=True), ("fluent-bit", "cwagent"), True),
    (tries(2, 2, gave_up=True), ("cwagent",), False),
    (tries(2, 1), DAEMONS, False),
    (tries(2, 2, gave_up=True, at=NOW - timedelta(seconds=EPISODE_S + 1)), DAEMONS, False),
])
def test_preempt_has_given_up_only_for_the_same_daemons_within_the_episode(
        record: PreemptTries | None, daemons: tuple[str, ...], expected: bool) -> None:
    # GIVEN a record / WHEN asked for these daemons now / THEN preempt has given up or not
    assert gave_up(record, daemons, NOW) is expected


# ---- in the placement plan ---------------------------------------------------------------------------
FULL = an_instance(cpu_left=0, memory_left=0)
TASK_DEFS = {"arn:td/fluent-bit:1": TaskDefinitionView("arn:td/fluent-bit:1", "fluent-bit", "bridge",
                                                       Resources(256, 512))}


def full_instance(record: PreemptTries | None, tasks: tuple[TaskView, ...]) -> PlacementState:
    """A full instance missing fluent-bit, with preempt's record on it."""
    return PlacementState(instance=FULL, tasks=tasks, eligibility=Eligibility((SERVICES["fluent-bit"],)),
                          task_defs=TASK_DEFS, services=SERVICES, budget_left={"api": 4}, now=NOW,
                          preempt_tries=record)


def preempt(mode: PlacementMode = PlacementMode.PREEMPT) -> PlacementPolicy:
    """The reflex with 2 futile tries allowed per instance, 3 instances given up on per cluster and hour."""
    return PlacementPolicy(mode, "daemon-guard.gate", 120, BOUNDS)


def test_an_eviction_carries_the_try_to_record_before_it_acts() -> None:
    # GIVEN a full instance preempt never tried / WHEN the reflex plans
    plan = plan_placement(full_instance(None, OLD_API), preempt())
    # THEN it evicts, and the plan carries the first try for the edge to write first
    assert plan.decision == "evict"
    assert isinstance(plan.actions[0], StopTasks)
    assert plan.tries == tries(1, 0, at=NOW)


def test_the_plan_stops_evicting_once_the_futile_tries_reach_the_bound() -> None:
    # GIVEN one futile try already, and replicas placed since the last one / WHEN the reflex plans with a bound of 2
    plan = plan_placement(full_instance(tries(2, 1), OLD_API + REFILL), preempt())
    # THEN nothing is stopped, the give-up is recorded, and the reason recommends the gate
    assert (plan.decision, plan.actions) == ("futile", ())
    assert plan.tries == tries(2, 2, gave_up=True, at=NOW)
    assert "placementMode gate" in plan.reason
    assert plan.missing == DAEMONS


def test_an_instance_preempt_gave_up_on_gets_no_eviction_and_no_second_give_up() -> None:
    # GIVEN an instance preempt gave up on / WHEN the reflex plans again
    plan = plan_placement(full_instance(tries(2, 2, gave_up=True), OLD_API + REFILL), preempt())
    # THEN it stays futile with nothing to write (the give-up is counted once)
    assert (plan.decision, plan.actions, plan.tries) == ("futile", (), None)


def test_observe_mode_reports_the_evictions_it_would_make_whatever_the_record() -> None:
    # GIVEN a record of a give-up / WHEN the reflex plans in observe mode / THEN it still says what it would evict
    plan = plan_placement(full_instance(tries(2, 2, gave_up=True), OLD_API), preempt(PlacementMode.OBSERVE))
    assert plan.decision == "would-evict"
    assert plan.tries is None
