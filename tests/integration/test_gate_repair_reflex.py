"""Gate mode's reflex at the edge: a daemon missing behind an open gate shuts the gate again and evicts nothing
until a look shows it shut.

Read from the shipped example snapshot (an instance replicas filled, its daemons missing), its gate attribute set
as the story needs, through the intake, with a dry-run executor that records the actions it would take (so the
snapshot, like an ECS that has not yet applied the write, keeps showing the gate as it was).
"""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from daemon_guard import bootstrap
from daemon_guard.adapters.completion import KnownComplete
from daemon_guard.adapters.memory import MemoryState
from daemon_guard.adapters.parsing import parse_event
from daemon_guard.core.actions import SetAttribute, StopTasks
from daemon_guard.core.config import parse_config
from daemon_guard.services.intake import handle

from daemon_guard_cli.replay import ListSink, snapshot_ecs, validate_state
from daemon_guard_cli.snapshot_ports import NoGroups

ROOT = Path(__file__).resolve().parents[2]
EVENT = json.loads((ROOT / "examples" / "events" / "instance-registered.json").read_text())
RAW_STATE = json.loads((ROOT / "examples" / "state.json").read_text())
INSTANCE_ARN = EVENT["detail"]["containerInstanceArn"]
GATE = "daemon-guard.gate"
WHEN = parse_event(EVENT).time
assert isinstance(WHEN, datetime)


def with_gate(value: str) -> Any:
    """The snapshot with the instance's gate attribute at `value`."""
    raw = copy.deepcopy(RAW_STATE)
    instance = next(i for i in raw["containerInstances"] if i["containerInstanceArn"] == INSTANCE_ARN)
    instance["attributes"] = [a for a in instance["attributes"] if a["name"] != GATE] + [{"name": GATE, "value": value}]
    return validate_state(raw)


def runtime(state: Any) -> bootstrap.Runtime:
    """The guard in gate mode over `state`, recording instead of writing."""
    store = MemoryState()
    rt = bootstrap.build(parse_config({"clusters": [{"name": "prod"}], "placementMode": "gate"}),
                         ecs=lambda _cluster: snapshot_ecs(state), autoscaling=NoGroups(), metrics=ListSink(),
                         dry_run=True, clock=lambda: WHEN)
    return replace(rt, ledger=store, budget=store, claims=store, complete=KnownComplete(store, WHEN.timestamp))


def recorded(rt: bootstrap.Runtime, kind: type[Any]) -> list[Any]:
    return [a for _, a in rt.executor.recorded if isinstance(a, kind)]  # type: ignore[attr-defined]


def test_a_daemon_missing_behind_an_open_gate_shuts_it_and_evicts_nothing_until_it_is_seen_shut() -> None:
    # GIVEN an instance whose gate is open, its daemons missing and no room for them
    rt = runtime(with_gate("open"))
    # WHEN the intake checks it, and the read-back still shows the gate open (the write not yet seen)
    result = handle(EVENT, rt).as_dict()
    # THEN the gate is shut again (the time of the re-shut in its value) and no replica is stopped
    assert result["decision"] == "shut-gate"
    assert recorded(rt, SetAttribute) == [SetAttribute(INSTANCE_ARN, GATE, f"repair@{int(WHEN.timestamp())}")]
    assert recorded(rt, StopTasks) == []


def test_once_the_gate_is_seen_shut_again_the_reflex_makes_room() -> None:
    # GIVEN the same instance, its gate seen shut again five seconds ago
    rt = runtime(with_gate(f"repair@{int(WHEN.timestamp()) - 5}"))
    # WHEN the intake checks it
    result = handle(EVENT, rt).as_dict()
    # THEN it evicts the replicas the daemons need, and writes nothing to the gate
    assert result["decision"] == "evict"
    assert recorded(rt, StopTasks)
    assert recorded(rt, SetAttribute) == []
