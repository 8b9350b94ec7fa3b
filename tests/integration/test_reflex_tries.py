"""The reflex writes preempt's try before it evicts, and stands back when another check wrote first.

Read from the shipped example snapshot (a new instance replicas filled before its daemons), through the
intake, with a dry-run executor that records the actions it would take.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from daemon_guard import bootstrap
from daemon_guard.adapters.completion import KnownComplete
from daemon_guard.adapters.memory import MemoryState
from daemon_guard.adapters.parsing import parse_event
from daemon_guard.core.actions import StopTasks
from daemon_guard.core.config import parse_config
from daemon_guard.core.futility import PreemptTries
from daemon_guard.services.intake import handle

from daemon_guard_cli.replay import ListSink, snapshot_ecs, validate_state
from daemon_guard_cli.snapshot_ports import NoGroups

ROOT = Path(__file__).resolve().parents[2]
EVENT = json.loads((ROOT / "examples" / "events" / "instance-registered.json").read_text())
STATE = validate_state(json.loads((ROOT / "examples" / "state.json").read_text()))
INSTANCE_ARN = EVENT["detail"]["containerInstanceArn"]


class OutpacedState(MemoryState):
    """A state store where another check of the instance always writes its try first."""

    def record_tries(self, cluster: str, instance_arn: str, before: PreemptTries | None,
                     after: PreemptTries) -> bool:
        return False


def runtime(store: MemoryState) -> bootstrap.Runtime:
    when = parse_event(EVENT).time
    assert isinstance(when, datetime)
    rt = bootstrap.build(parse_config({"clusters": [{"name": "prod"}]}), ecs=lambda _cluster: snapshot_ecs(STATE),
                         autoscaling=NoGroups(), metrics=ListSink(),
                         dry_run=True, clock=lambda: when)
    return replace(rt, ledger=store, budget=store, claims=store, complete=KnownComplete(store, when.timestamp))


def stops(rt: bootstrap.Runtime) -> list[Any]:
    return [a for _, a in rt.executor.recorded if isinstance(a, StopTasks)]  # type: ignore[attr-defined]


def test_an_eviction_records_the_try_before_stopping_anything() -> None:
    # GIVEN a new instance whose daemons do not fit / WHEN the intake handles its registration
    store = MemoryState()
    rt = runtime(store)
    result = handle(EVENT, rt).as_dict()
    # THEN it evicts, and preempt's first try on the instance is recorded
    assert result["decision"] == "evict"
    assert stops(rt)
    record = store.preempt_tries("prod", INSTANCE_ARN)
    assert record is not None and (record.tries, record.futile, record.gave_up) == (1, 0, False)


def test_a_check_outpaced_by_another_stops_nothing() -> None:
    # GIVEN another check of the same instance records its try first
    rt = runtime(OutpacedState())
    # WHEN the intake handles the registration
    result = handle(EVENT, rt).as_dict()
    # THEN this check stands back: no eviction of its own
    assert result["decision"] == "wait-for-ecs"
    assert stops(rt) == []
