"""Drain budgets: which drains may start now, who is next, and when a drain may not wait."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from daemon_guard.core import guard_events as ge
from daemon_guard.core.config import ConfigError, parse_config
from daemon_guard.core.drain_budget import (
    BudgetError,
    BudgetRule,
    DrainQueue,
    QueueEntry,
    Sizes,
    admit,
    budget_limit,
    hook_wait_end,
    must_bypass,
    next_to_start,
    parse_budget,
    parse_cron,
    rule_doc,
)
from jsonschema import Draft202012Validator, FormatChecker

from infra.configdoc import config_to_doc

MONDAY_10 = datetime(2026, 12, 7, 10, 0, tzinfo=UTC).timestamp()
MONDAY_18 = datetime(2026, 12, 7, 18, 0, tzinfo=UTC).timestamp()
SATURDAY_10 = datetime(2026, 12, 5, 10, 0, tzinfo=UTC).timestamp()
TEN_PERCENT = (BudgetRule(10, percent=True),)
SIZES = Sizes(cluster=20, groups={"a": 10, "b": 10})


def entry(instance_id: str, group: str = "a", at: float = MONDAY_10) -> QueueEntry:
    return QueueEntry(instance_id, group, at, at)


def queue(draining: tuple[str, ...] = (), waiting: tuple[str, ...] = (), group: str = "a") -> DrainQueue:
    return DrainQueue(tuple(entry(i, group) for i in draining), tuple(entry(i, group) for i in waiting))


@pytest.mark.parametrize(("rules", "instances", "now", "expected"), [
    (TEN_PERCENT, 20, MONDAY_10, 2),
    (TEN_PERCENT, 5, MONDAY_10, 1),  # a percentage rounds up, as Karpenter's
    ((BudgetRule(3),), 20, MONDAY_10, 3),
    ((BudgetRule(0, percent=True),), 20, MONDAY_10, 0),
    ((), 20, MONDAY_10, None),  # no rule: unbounded
    (parse_budget([{"nodes": "10%"}, {"nodes": "0", "schedule": "0 9 * * mon-fri", "duration": "8h"}]), 20,
     MONDAY_10, 0),  # inside the weekday window the most restrictive rule wins
    (parse_budget([{"nodes": "10%"}, {"nodes": "0", "schedule": "0 9 * * mon-fri", "duration": "8h"}]), 20,
     MONDAY_18, 2),  # the window has closed
    (parse_budget([{"nodes": "0", "schedule": "0 9 * * mon-fri", "duration": "8h"}]), 20, SATURDAY_10, None),
])
def test_the_most_restrictive_active_rule_sets_how_many_may_drain(rules: tuple[BudgetRule, ...], instances: int,
                                                                  now: float, expected: int | None) -> None:
    # GIVEN budget rules and a fleet size / WHEN the allowance is computed at a time / THEN it is as Karpenter's
    assert budget_limit(rules, instances, now) == expected


def test_a_drain_within_the_budget_starts_at_once() -> None:
    # GIVEN one of the cluster's two places taken (group a's one) / WHEN a drain of group b arrives
    # THEN it starts and is counted as draining
    admission = admit(TEN_PERCENT, queue(draining=("i-1",)), entry("i-2", "b"), SIZES, MONDAY_10)
    assert admission.decision == "start"
    assert [e.instance_id for e in admission.queue.draining] == ["i-1", "i-2"]
    assert admission.queue.waiting == ()


def test_a_drain_over_the_budget_waits_behind_earlier_arrivals() -> None:
    # GIVEN both places taken and one drain already waiting
    # WHEN a third drain arrives / THEN it waits, second in line
    admission = admit(TEN_PERCENT, queue(draining=("i-1", "i-2"), waiting=("i-3",)), entry("i-4"), SIZES,
                      MONDAY_10 + 1)
    assert (admission.decision, admission.place) == ("wait", 2)
    assert [e.instance_id for e in admission.queue.waiting] == ["i-3", "i-4"]


def test_a_later_arrival_does_not_overtake_the_head_of_the_queue() -> None:
    # GIVEN one place free and i-3 waiting first / WHEN i-4 asks before i-3 looks again
    # THEN i-4 keeps waiting: the free place is i-3's
    admission = admit(TEN_PERCENT, queue(draining=("i-1",), waiting=("i-3", "i-4"), group="b"), entry("i-4", "b"),
                      Sizes(20, {"b": 20}), MONDAY_10 + 1)
    assert (admission.decision, admission.place) == ("wait", 2)


def test_a_waiter_held_by_its_own_groups_limit_does_not_hold_back_another_group() -> None:
    # GIVEN group a's one place taken (10% of 10) and a waiter of group a ahead of a waiter of group b
    waiting = DrainQueue((entry("i-1", "a"),), (entry("i-2", "a"), entry("i-3", "b")))
    # WHEN who may start is asked / THEN b's waiter starts; a's waits for its group
    assert next_to_start(TEN_PERCENT, waiting, SIZES, MONDAY_10) == ("i-3",)


def test_waiters_start_in_order_of_arrival_as_places_free() -> None:
    # GIVEN three waiters and two free places / WHEN who may start is asked / THEN the first two, in order
    assert next_to_start(TEN_PERCENT, queue(waiting=("i-5", "i-6", "i-7"), group="b"), Sizes(20, {"b": 20}),
                         MONDAY_10) == ("i-5", "i-6")


def test_a_waiter_keeps_its_arrival_when_it_asks_again() -> None:
    # GIVEN i-3 waiting since 10:00 / WHEN it asks again at 10:01 / THEN it keeps its place and arrival time
    admission = admit(TEN_PERCENT, queue(draining=("i-1", "i-2"), waiting=("i-3", "i-4")),
                      entry("i-3", at=MONDAY_10 + 60), SIZES, MONDAY_10 + 60)
    assert admission.place == 1
    assert admission.queue.waiting[0] == QueueEntry("i-3", "a", MONDAY_10, MONDAY_10 + 60)


def test_a_drain_already_counted_starts_again_without_taking_a_second_place() -> None:
    # GIVEN i-1 draining / WHEN its step is retried / THEN it starts, counted once
    admission = admit(TEN_PERCENT, queue(draining=("i-1", "i-2")), entry("i-1"), SIZES, MONDAY_10)
    assert admission.decision == "start"
    assert len(admission.queue.draining) == 2


def test_a_drain_that_cannot_wait_bypasses_the_budget_and_is_counted() -> None:
    # GIVEN a full budget / WHEN a drain racing a Spot notice asks / THEN it starts, counted among the draining
    admission = admit(TEN_PERCENT, queue(draining=("i-1", "i-2")), entry("i-9"), SIZES, MONDAY_10,
                      bypass="Spot notice")
    assert admission.decision == "bypass"
    assert len(admission.queue.draining) == 3


def test_drains_that_ended_unseen_give_their_places_back() -> None:
    # GIVEN a drain counted since long past the hook's timeout and a waiter silent for ten minutes
    stale = DrainQueue((entry("i-1", at=MONDAY_10 - 40_000), entry("i-2")), (entry("i-3", at=MONDAY_10 - 600),))
    # WHEN a new drain asks / THEN the stale ones are dropped and it starts
    admission = admit(TEN_PERCENT, stale, entry("i-4", "b"), SIZES, MONDAY_10, stale_s=30_000)
    assert admission.decision == "start"
    assert [e.instance_id for e in admission.queue.draining] == ["i-2", "i-4"]
    assert admission.queue.waiting == ()


@pytest.mark.parametrize(("notice_in", "expected"), [(None, False), (120.0, True), (900.0, True), (3600.0, False)])
def test_only_a_hard_end_sooner_than_a_drain_could_finish_bypasses(notice_in: float | None, expected: bool) -> None:
    # GIVEN a hard end some time away and drains that take up to 900 s / WHEN asked / THEN bypass only if sooner
    notice = None if notice_in is None else MONDAY_10 + notice_in
    assert (must_bypass(notice, MONDAY_10, 900.0) is not None) is expected


def test_waiting_ends_in_time_for_the_drain_within_the_hooks_global_timeout() -> None:
    # GIVEN a 300 s heartbeat timeout (global 30,000 s) and 900 s drains / THEN waiting may last 28,800 s
    assert hook_wait_end(0.0, 300.0, 900.0) == 28_800.0


@pytest.mark.parametrize(("text", "fires", "quiet"), [
    ("0 9 * * mon-fri", datetime(2026, 12, 7, 9, 0), datetime(2026, 12, 5, 9, 0)),
    ("*/15 * * * *", datetime(2026, 12, 7, 9, 45), datetime(2026, 12, 7, 9, 46)),
    ("@daily", datetime(2026, 12, 7, 0, 0), datetime(2026, 12, 7, 1, 0)),
    ("0 0 1 * 6", datetime(2026, 12, 5, 0, 0), datetime(2026, 12, 6, 0, 0)),  # day OR weekday, as cron
])
def test_a_schedule_fires_as_cron_does(text: str, fires: datetime, quiet: datetime) -> None:
    cron = parse_cron(text)
    assert cron.fires_at(fires) and not cron.fires_at(quiet)


@pytest.mark.parametrize(("raw", "message"), [
    ("ten", "drainBudget.nodes: expected a count such as 3 or a percentage"),
    ("150%", "0-100%"),
    ([{"nodes": "0", "schedule": "0 9 * * *"}], "drainBudget[0]: 'schedule' and 'duration' go together"),
    ([{"nodes": "0", "schedule": "0 25 * * *", "duration": "1h"}], "hour: '25' must lie within 0-23"),
    ([{"nodes": "0", "schedule": "0 9 * *", "duration": "1h"}], "expected five fields"),
    ([{"nodes": "0", "schedule": "@daily", "duration": "8 hours"}], "expected hours and minutes"),
    ([{"nodes": 1, "window": "x"}], "unknown field(s) ['window']"),
])
def test_a_budget_that_cannot_be_read_is_refused_naming_the_part(raw: Any, message: str) -> None:
    with pytest.raises(BudgetError, match=None) as refused:
        parse_budget(raw)
    assert message in str(refused.value)


def test_the_configuration_reads_and_writes_back_drain_budgets() -> None:
    # GIVEN a document with a default rule and a weekday window
    raw = {"clusters": [{"name": "prod", "autoScalingGroups": ["prod-asg"]}],
           "drainBudget": [{"nodes": "10%"}, {"nodes": 0, "schedule": "0 9 * * mon-fri", "duration": "8h30m"}]}
    # WHEN parsed and written back / THEN the same rules, and the document parses to the same configuration
    config = parse_config(raw)
    assert [rule_doc(r) for r in config.drain_budget] == [
        {"nodes": "10%"}, {"nodes": "0", "schedule": "0 9 * * mon-fri", "duration": "8h30m"}]
    assert parse_config(config_to_doc(config)) == config
    assert parse_config({"clusters": raw["clusters"]}).drain_budget == ()


def test_the_configuration_names_drain_budget_in_its_error() -> None:
    with pytest.raises(ConfigError, match=r"daemon-guard config: drainBudget\[0\].nodes"):
        parse_config({"clusters": [{"name": "prod"}], "drainBudget": [{"nodes": "x"}]})


def test_the_bypass_event_holds_to_its_published_schema() -> None:
    # GIVEN a drain that bypassed a full budget / WHEN announced / THEN its detail is valid against the schema
    event = ge.budget_bypassed("prod", "i-0123456789abcdef0", MONDAY_10, "hard end in 120s", draining=3, waiting=4)
    validator = Draft202012Validator(ge.SCHEMAS[ge.BUDGET_BYPASSED], format_checker=FormatChecker())
    assert [e.message for e in validator.iter_errors(event.detail)] == []


def test_a_waiter_looking_again_within_a_minute_changes_nothing_to_write() -> None:
    # GIVEN i-3 waiting, seen at 10:00 / WHEN it looks again at 10:00:15 / THEN the queue is as it was
    before = queue(draining=("i-1", "i-2"), waiting=("i-3",))
    assert admit(TEN_PERCENT, before, entry("i-3", at=MONDAY_10 + 15), SIZES, MONDAY_10 + 15).queue == before
