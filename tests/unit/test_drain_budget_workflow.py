"""The drain budget at the edge: concurrent Lambdas never both take the last place, and a durable drain over
the budget waits (its hook kept alive) before its first action, or bypasses the budget when it cannot wait."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import boto3
import pytest
from aws_durable_execution_sdk_python.lambda_service import InvocationStatus
from daemon_guard import bootstrap
from daemon_guard.adapters.errors import translating
from daemon_guard.adapters.memory import MemoryState
from daemon_guard.adapters.state import StateStore
from daemon_guard.bootstrap import Runtime
from daemon_guard.core.config import Config, ManagedCluster, ManagedGroup, StandalonePolicy
from daemon_guard.core.drain import DrainRequest
from daemon_guard.core.drain_budget import Admission, BudgetRule, DrainQueue, QueueEntry
from daemon_guard.entrypoints import drain
from daemon_guard.services.drain_budget import budget_place, give_back, take_place
from moto import mock_aws

from sim.deployment import create_state_table
from tests.unit.test_workflows import (
    ASG,
    CLUSTER,
    INSTANCE_ID,
    T0,
    TIERS,
    FakeAutoScaling,
    FakeEcs,
    Metrics,
    SteppingClock,
    drain_payload,
    run_waking,
)

TABLE = "daemon-guard-state"
ONE_AT_A_TIME = (BudgetRule(1),)
OTHER = QueueEntry("i-0000000000000000a", ASG, T0.timestamp(), T0.timestamp())


def budget_config(rules: tuple[BudgetRule, ...] = ONE_AT_A_TIME) -> Config:
    return Config(clusters=(ManagedCluster(CLUSTER, (ManagedGroup(ASG),)),), drain_tiers=TIERS,
                  standalone_policy=StandalonePolicy.STOP, drain_budget=rules)


@pytest.fixture
def table_client() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_state_table(client, TABLE)
        yield client


class ReadTogether:
    """The state table as two concurrent Lambdas see it: both first reads of the queue return before either
    writes (a barrier), and writes are applied one at a time, as DynamoDB applies writes to one item."""

    def __init__(self, store: StateStore) -> None:
        self.store = store
        self.barrier = threading.Barrier(2)
        self.first_read: set[int] = set()
        self.write_lock = threading.Lock()
        self.writes: list[bool] = []

    def drain_queue(self, cluster: str) -> DrainQueue:
        queue = self.store.drain_queue(cluster)
        if threading.get_ident() not in self.first_read:
            self.first_read.add(threading.get_ident())
            self.barrier.wait(timeout=10)
        return queue

    def write_drain_queue(self, cluster: str, before: DrainQueue, after: DrainQueue) -> bool:
        with self.write_lock:
            ok = self.store.write_drain_queue(cluster, before, after)
            self.writes.append(ok)
            return ok


def test_two_concurrent_claims_of_the_last_place_start_one_drain(table_client: Any) -> None:
    # GIVEN a budget of one and two Lambdas that both read the empty queue before either writes
    store = StateStore(translating(table_client), TABLE)
    racing = ReadTogether(store)
    rt = replace(bootstrap.build(budget_config(), ecs_client=object(), autoscaling_client=object(),
                                 metrics=Metrics(), clock=SteppingClock(0.0)), claims=racing)
    results: dict[str, Admission] = {}

    def claim(instance_id: str) -> None:
        results[instance_id] = take_place(rt, CLUSTER, QueueEntry(instance_id, ASG, T0.timestamp(), T0.timestamp()),
                                          None, stale_s=3600.0)

    # WHEN both claim the last place at once
    threads = [threading.Thread(target=claim, args=(i,)) for i in ("i-1", "i-2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    # THEN one write lost the race; re-read, that drain waits: one drain started, one waits first in line
    assert sorted(a.decision for a in results.values()) == ["start", "wait"]
    assert racing.writes.count(False) == 1
    queue = store.drain_queue(CLUSTER)
    assert len(queue.draining) == 1 and len(queue.waiting) == 1
    assert [a.place for a in results.values() if a.decision == "wait"] == [1]


@dataclass
class FreedAfter:
    """The memory state, where the drain counted before this one finishes after `looks` looks at the queue."""

    state: MemoryState
    looks: int

    def __getattr__(self, name: str) -> Any:
        return getattr(self.state, name)

    def drain_queue(self, cluster: str) -> DrainQueue:
        self.looks -= 1
        if self.looks == 0:
            queue = self.state.drain_queue(cluster)
            self.state.write_drain_queue(cluster, queue, queue.without(OTHER.instance_id))
        return self.state.drain_queue(cluster)


def budget_runtime(ecs: FakeEcs, autoscaling: FakeAutoScaling, looks: int, step_s: float) -> tuple[Runtime, Any]:
    state = MemoryState()
    state.write_drain_queue(CLUSTER, DrainQueue(), DrainQueue(draining=(OTHER,)))
    claims = FreedAfter(state, looks)
    rt = replace(bootstrap.build(budget_config(), ecs_client=ecs, autoscaling_client=autoscaling, metrics=Metrics(),
                                 clock=SteppingClock(step_s)), claims=claims)
    return rt, state


def test_a_drain_over_the_budget_keeps_its_hook_alive_and_acts_only_once_a_place_is_free() -> None:
    # GIVEN a budget of one, taken by another drain that finishes after four looks at the queue, and a clock
    # moving a minute per read (the 300 s heartbeat timeout wants a heartbeat every 150 s)
    ecs = FakeEcs()
    ecs.add("api-1", "api")
    ecs.add("fluent-bit-1", "fluent-bit")
    autoscaling = FakeAutoScaling()
    rt, state = budget_runtime(ecs, autoscaling, looks=4, step_s=60.0)
    beats_before_first_action: list[int] = []
    update = ecs.update_container_instances_state

    def first_action(**kw: Any) -> dict[str, Any]:
        beats_before_first_action.append(sum(1 for n, _ in autoscaling.calls if n == "RecordLifecycleActionHeartbeat"))
        return update(**kw)

    ecs.update_container_instances_state = first_action  # type: ignore[method-assign]
    # WHEN the durable drain runs
    result = run_waking(drain.build_handler(rt), drain_payload())
    # THEN it heartbeat while it waited, set DRAINING only once the place was free, completed once, and gave its
    # place back
    assert result.status is InvocationStatus.SUCCEEDED, result.error
    assert beats_before_first_action and beats_before_first_action[0] >= 1
    assert [kw["LifecycleActionResult"] for kw in autoscaling.completions] == ["CONTINUE"]
    assert state.drain_queue(CLUSTER).draining == () and state.drain_queue(CLUSTER).waiting == ()
    assert ("DrainsWaiting", 1) in rt.metrics.values  # type: ignore[attr-defined]


def test_a_spot_drain_over_the_budget_bypasses_it_counted() -> None:
    # GIVEN a full budget of one (never freed) / WHEN a drain racing a two-minute Spot notice arrives
    ecs = FakeEcs()
    ecs.add("fluent-bit-1", "fluent-bit")
    autoscaling = FakeAutoScaling()
    rt, state = budget_runtime(ecs, autoscaling, looks=-1, step_s=1.0)
    payload = drain_payload() | {"trigger": "spot", "deadline": (T0 + timedelta(seconds=120)).timestamp()}
    result = run_waking(drain.build_handler(rt), payload)
    # THEN it drains at once, counted as a bypass, and the other drain still holds its place
    assert result.status is InvocationStatus.SUCCEEDED, result.error
    assert json.loads(result.result or "{}")["result"] == "CONTINUE"
    assert ("DrainBudgetBypasses", 1) in rt.metrics.values  # type: ignore[attr-defined]
    assert [e.instance_id for e in state.drain_queue(CLUSTER).draining] == [OTHER.instance_id]
    assert INSTANCE_ID not in {e.instance_id for e in state.drain_queue(CLUSTER).waiting}


def test_a_finished_drain_wakes_the_waiter_next_in_line() -> None:
    # GIVEN i-2 waiting behind i-1 with its callback recorded on its claim
    state = MemoryState()
    state.write_drain_queue(CLUSTER, DrainQueue(), DrainQueue(
        draining=(QueueEntry("i-1", ASG, 0.0, 0.0),), waiting=(QueueEntry("i-2", ASG, 1.0, T0.timestamp()),)))
    rt = replace(bootstrap.build(budget_config(), ecs_client=object(), autoscaling_client=object(), metrics=Metrics(),
                                 clock=SteppingClock(0.0), dry_run=True), claims=state)
    # WHEN i-1's drain gives its place back / THEN i-2 is the one to start
    assert give_back(rt, CLUSTER, "i-1") == ("i-2",)
    assert state.drain_queue(CLUSTER).draining == ()


def test_a_replay_shows_each_drains_place_in_line() -> None:
    # GIVEN a budget of one and a replay's in-memory state
    rt = bootstrap.build(budget_config(), ecs_client=object(), autoscaling_client=object(), metrics=Metrics(),
                         clock=SteppingClock(1.0), dry_run=True)

    def request(instance_id: str, **extra: Any) -> DrainRequest:
        return DrainRequest.from_payload({"instanceId": instance_id, "cluster": CLUSTER, "trigger": "lifecycle",
                                          "asg": ASG, **extra})

    # WHEN three drains are replayed, the third racing a Spot notice / THEN the first starts, the second waits
    # first in line, the third bypasses the budget
    assert budget_place(rt, request("i-00000001"), take=True) == {
        "decision": "start", "place": 0, "draining": 1, "waiting": 0, "reason": "1 draining within the budget"}
    second = budget_place(rt, request("i-00000002"), take=True)
    assert second is not None and (second["decision"], second["place"]) == ("wait", 1)
    spot = budget_place(rt, request("i-00000003", deadline=(T0 + timedelta(seconds=120)).timestamp()))
    assert spot is not None and spot["decision"] == "bypass"
    assert budget_place(replace(rt, config=Config(clusters=rt.config.clusters)), request("i-00000004")) is None
