"""The state ports: the in-memory store behaves as the DynamoDB table does, spec by spec.

Each specification runs against `MemoryState` (what unit tests and dry runs use) and against
`StateStore` on moto's DynamoDB (what the deployment uses), so a fake cannot drift from the real thing.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from daemon_guard.adapters.errors import translating
from daemon_guard.adapters.memory import MemoryState
from daemon_guard.adapters.scheduled import ScheduledDrain, ScheduledDrains
from daemon_guard.adapters.state import StateStore, WorkflowClaim
from daemon_guard.core.drain_budget import DrainQueue, QueueEntry
from daemon_guard.core.futility import PreemptTries
from moto import mock_aws

from sim.deployment import create_state_table

TABLE = "daemon-guard-state"
ARN = "arn:aws:ecs:us-east-1:111122223333:container-instance/prod/ci-1"
T0 = 1_714_564_800.0


def claim(execution: str = "drain-i-1-a", token: str | None = None, deadline: float | None = None) -> WorkflowClaim:
    return WorkflowClaim(instance_id="i-0123456789abcdef0", kind="drain", execution_name=execution, token=token,
                         asg=None, hook=None, deadline_epoch=deadline, callback_id=None, started_epoch=T0)


def _on_table(request: pytest.FixtureRequest, port: type[Any]) -> Iterator[Any]:
    """MemoryState, or `port` on a moto DynamoDB table shaped as the stack's."""
    if request.param == "memory":
        yield MemoryState()
        return
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_state_table(client, TABLE)
        yield port(translating(client), TABLE)


@pytest.fixture(params=["memory", "dynamodb"])
def store(request: pytest.FixtureRequest) -> Iterator[Any]:
    yield from _on_table(request, StateStore)


@pytest.fixture(params=["memory", "dynamodb"])
def schedule(request: pytest.FixtureRequest) -> Iterator[Any]:
    yield from _on_table(request, ScheduledDrains)


def test_an_event_is_new_once_and_a_duplicate_after(store: Any) -> None:
    # GIVEN a key never seen / WHEN it is seen twice / THEN only the first sighting is new
    assert store.first_sighting("task#1#3", T0) is True
    assert store.first_sighting("task#1#3", T0 + 1) is False


def test_evictions_add_up_per_service_and_window(store: Any) -> None:
    # GIVEN evictions in two windows
    store.spend_budget("prod", {"api": 2, "web": 1}, 7, 3600)
    store.spend_budget("prod", {"api": 1}, 7, 3600)
    store.spend_budget("prod", {"api": 5}, 8, 3600)
    # WHEN window 7 is read / THEN its counts only, services never spent on left out
    assert store.budget_spent("prod", ["api", "web", "idle"], 7) == {"api": 3, "web": 1}


def test_preempt_tries_are_replaced_only_by_a_writer_that_read_the_current_record(store: Any) -> None:
    # GIVEN no record on the instance / WHEN two concurrent checks both try to record the first try
    first = PreemptTries(1, 0, datetime.fromtimestamp(T0, UTC), ("fluent-bit",))
    assert store.record_tries("prod", ARN, None, first) is True
    assert store.record_tries("prod", ARN, None, first) is False
    # THEN one wins; the record reads back as written, and only a writer that read it may replace it
    assert store.preempt_tries("prod", ARN) == first
    gave_up = PreemptTries(1, 2, datetime.fromtimestamp(T0 + 20.5, UTC), ("cwagent", "fluent-bit"), gave_up=True)
    assert store.record_tries("prod", ARN, first, gave_up) is True
    assert store.record_tries("prod", ARN, first, gave_up) is False
    assert store.preempt_tries("prod", ARN) == gave_up
    assert store.preempt_tries("other", ARN) is None


def test_replacements_are_counted_once_per_instance_and_never_past_the_hourly_budget(store: Any) -> None:
    # GIVEN a budget of 2 replacements an hour
    # WHEN three instances are replaced in hour 7, one of them twice, and one in hour 8
    assert store.spend_replacement("prod", "ci-1", 7, 2, 3600) is True
    assert store.spend_replacement("prod", "ci-1", 7, 2, 3600) is False
    assert store.spend_replacement("prod", "ci-2", 7, 2, 3600) is True
    assert store.spend_replacement("prod", "ci-3", 7, 2, 3600) is False
    assert store.spend_replacement("prod", "ci-3", 8, 2, 3600) is True
    # THEN each hour holds what it counted, and another cluster nothing
    assert store.replaced_in("prod", [7, 8]) == {7: frozenset({"ci-1", "ci-2"}), 8: frozenset({"ci-3"})}
    assert store.replaced_in("other", [7]) == {7: frozenset()}


def test_a_held_replacement_is_noted_once_per_instance_and_hour(store: Any) -> None:
    # GIVEN an instance whose replacement the budget holds / WHEN it is noted twice in hour 7, then in hour 8
    # THEN only the first note of each hour is new
    assert store.note_held("prod", "ci-1", 7, 3600) is True
    assert store.note_held("prod", "ci-1", 7, 3600) is False
    assert store.note_held("prod", "ci-2", 7, 3600) is True
    assert store.note_held("prod", "ci-1", 8, 3600) is True


def test_the_first_claim_wins_and_a_second_learns_who_owns_the_instance(store: Any) -> None:
    # GIVEN a drain claiming an instance
    assert store.claim_workflow(claim("drain-i-1-a")) is None
    # WHEN a second trigger claims it / THEN it gets the first owner's claim back
    existing = store.claim_workflow(claim("drain-i-1-b"))
    assert existing is not None and existing.execution_name == "drain-i-1-a"


def test_a_joined_lifecycle_action_and_deadline_reach_the_running_claim(store: Any) -> None:
    # GIVEN a claim without a lifecycle action, and a deadline of T0 + 600
    store.claim_workflow(claim(deadline=T0 + 600))
    # WHEN a lifecycle action is attached, the deadline tightened, then loosened
    store.attach_lifecycle("drain", "i-0123456789abcdef0", "prod-asg", "hook", "tok", None)
    store.tighten_deadline("drain", "i-0123456789abcdef0", T0 + 300)
    store.tighten_deadline("drain", "i-0123456789abcdef0", T0 + 900)
    # THEN the claim carries the action and the tighter deadline only
    found = store.workflow("drain", "i-0123456789abcdef0")
    assert (found.token, found.asg, found.hook, found.deadline_epoch) == ("tok", "prod-asg", "hook", T0 + 300)


def test_a_stop_no_callback_heard_is_handed_to_the_next_wait(store: Any) -> None:
    # GIVEN a workflow waiting on callback c1
    assert store.register_wake("drain", ARN, "c1", T0) == []
    assert store.wake_target("drain", ARN) == "c1"
    # WHEN a stop arrives too late for c1, and the workflow then waits on c2
    assert store.note_missed_wake("drain", ARN, "task-9") == "c1"
    # THEN the new wait gets the missed stop, once
    assert store.register_wake("drain", ARN, "c2", T0 + 5) == ["task-9"]
    assert store.register_wake("drain", ARN, "c3", T0 + 9) == []


def test_nothing_listens_after_the_workflow_is_released(store: Any) -> None:
    # GIVEN a claimed workflow waiting on a callback
    store.claim_workflow(claim())
    store.register_wake("drain", ARN, "c1", T0)
    # WHEN it is released / THEN the claim and the wake-up are gone
    store.release_workflow("drain", "i-0123456789abcdef0", ARN)
    assert store.workflow("drain", "i-0123456789abcdef0") is None
    assert store.wake_target("drain", ARN) is None
    assert store.note_missed_wake("drain", ARN, "task-9") is None


def test_a_late_lifecycle_action_or_callback_for_a_released_workflow_makes_no_claim(store: Any) -> None:
    # GIVEN a workflow that ran and was released (its instance is no one's)
    store.claim_workflow(claim())
    store.release_workflow("drain", "i-0123456789abcdef0", ARN)
    # WHEN a late or duplicated trigger hands it a lifecycle action, a deadline and a callback
    store.attach_lifecycle("drain", "i-0123456789abcdef0", "prod-asg", "hook", "tok", T0 + 600)
    store.tighten_deadline("drain", "i-0123456789abcdef0", T0 + 300)
    store.set_callback("drain", "i-0123456789abcdef0", "c1")
    # THEN no partial claim appears (one without an execution would make the next claim and every reader fail),
    # and the next trigger claims the instance as usual
    assert store.workflow("drain", "i-0123456789abcdef0") is None
    assert store.claim_workflow(claim("drain-i-1-b")) is None


@pytest.fixture(params=["dynamodb"])
def table_store(request: pytest.FixtureRequest) -> Iterator[Any]:
    yield from _on_table(request, StateStore)


def test_a_claim_item_without_an_execution_owns_nothing_and_is_taken_over(table_store: Any) -> None:
    # GIVEN a table holding a claim item with no execution (what an unconditional update used to leave)
    table_store.client.update_item(
        TableName=TABLE, Key={"pk": {"S": "drain#i-0123456789abcdef0"}, "sk": {"S": "drain"}},
        UpdateExpression="SET callbackId = :c", ExpressionAttributeValues={":c": {"S": "c0"}})
    # WHEN it is read, then a trigger claims the instance / THEN nobody owns it, and the claim takes it
    assert table_store.workflow("drain", "i-0123456789abcdef0") is None
    assert table_store.claim_workflow(claim("drain-i-1-b")) is None
    assert table_store.workflow("drain", "i-0123456789abcdef0").execution_name == "drain-i-1-b"


def test_an_instance_is_complete_until_cleared(store: Any) -> None:
    # GIVEN an instance marked complete / WHEN cleared / THEN no longer complete
    store.mark_complete([ARN], T0)
    assert store.is_complete(ARN)
    store.clear_complete(ARN)
    assert not store.is_complete(ARN)


def test_only_due_drains_are_returned_and_a_removed_one_is_gone(schedule: Any) -> None:
    # GIVEN two scheduled drains, one due at T0 and one an hour later
    schedule.put(ScheduledDrain("i-0123456789abcdef0", T0, {"cluster": "prod"}))
    schedule.put(ScheduledDrain("i-0fedcba9876543210", T0 + 3600, {"cluster": "prod"}))
    # WHEN read at T0 / THEN the due one only; once removed, none
    assert [d.instance_id for d in schedule.due(T0)] == ["i-0123456789abcdef0"]
    schedule.remove("i-0123456789abcdef0")
    assert schedule.due(T0) == []


def test_the_audit_cursor_moves_only_for_the_writer_that_read_where_it_stood(store: Any) -> None:
    # GIVEN a fresh table: no audit done yet
    assert store.audit_position() == 0
    # WHEN one run moves it from 0 to 7, and a second run that also read 0 tries to move it to 5
    first, second = store.advance_audit(0, 7), store.advance_audit(0, 5)
    # THEN the first move holds, the second writes nothing, and the position goes on from 7 only
    assert (first, second, store.audit_position()) == (True, False, 7)
    assert store.advance_audit(7, 8) is True
    assert store.audit_position() == 8


def test_the_drain_queue_is_written_only_by_a_writer_that_read_its_current_version(store: Any) -> None:
    # GIVEN two drains that both read the empty queue
    first, second = store.drain_queue("prod"), store.drain_queue("prod")
    one = DrainQueue(draining=(QueueEntry("i-1", "asg", T0, T0),))
    two = DrainQueue(draining=(QueueEntry("i-2", "asg", T0, T0),))
    # WHEN both write / THEN only the first write lands; the second, re-read, builds on it
    assert store.write_drain_queue("prod", first, one) is True
    assert store.write_drain_queue("prod", second, two) is False
    now = store.drain_queue("prod")
    assert (now.draining, now.version) == (one.draining, 1)
    assert store.write_drain_queue("prod", now, DrainQueue(now.draining + two.draining)) is True
    assert [e.instance_id for e in store.drain_queue("prod").draining] == ["i-1", "i-2"]


def _waiting(store: Any, service: str) -> dict[str, tuple[str, float]]:
    return {w.instance_arn: (w.callback_id, w.since) for w in store.service_wakes("prod", service)}


def test_a_service_wake_is_registered_per_instance_and_dropped_alone(store: Any) -> None:
    # GIVEN two drains waiting on a replacement of checkout / WHEN one is dropped / THEN the other remains
    store.register_service_wake("prod", ["checkout", "cart"], ARN, "cb-1", T0, since_epoch=T0 - 60)
    store.register_service_wake("prod", ["checkout"], ARN + "2", "cb-2", T0, since_epoch=T0 - 30)
    assert _waiting(store, "checkout") == {ARN: ("cb-1", T0 - 60), ARN + "2": ("cb-2", T0 - 30)}
    store.drop_service_wake("prod", "checkout", ARN)
    assert _waiting(store, "checkout") == {ARN + "2": ("cb-2", T0 - 30)}
    assert _waiting(store, "cart") == {ARN: ("cb-1", T0 - 60)}
    store.drop_service_wake("prod", "nothing", ARN)  # no item: nothing to drop, no error
    store.drop_service_wake("prod", "cart", ARN, "cb-old")  # a newer registration stays
    assert _waiting(store, "cart") == {ARN: ("cb-1", T0 - 60)}
    store.drop_service_wake("prod", "cart", ARN, "cb-1")  # the registration it names goes
    assert _waiting(store, "cart") == {}


def test_a_missed_service_wake_is_reported_to_the_next_registration_once(store: Any) -> None:
    # GIVEN a registration whose callback a wake-up found gone
    store.register_service_wake("prod", ["checkout"], ARN, "cb-1", T0, since_epoch=T0)
    store.note_missed_service_wake("prod", "checkout", ARN, "cb-other")  # not the registered one: nothing
    assert store.register_service_wake("prod", ["checkout"], ARN, "cb-1", T0, since_epoch=T0) is False
    store.note_missed_service_wake("prod", "checkout", ARN, "cb-1")
    # THEN the entry keeps its place, marked missed
    [waiter] = store.service_wakes("prod", "checkout")
    assert waiter.missed and waiter.since == T0
    # WHEN the drain registers again / THEN it learns it missed one, once
    assert store.register_service_wake("prod", ["checkout"], ARN, "cb-2", T0, since_epoch=T0) is True
    assert store.register_service_wake("prod", ["checkout"], ARN, "cb-3", T0, since_epoch=T0) is False
