"""`replay --state` refuses a state of another cluster, account or region, or a file that is no state at all."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from daemon_guard_cli.main import main
from daemon_guard_cli.state_scope import Scope, scope_mismatch

ROOT = Path(__file__).resolve().parents[2]
STATE = json.loads((ROOT / "examples" / "state.json").read_text())
REGISTERED = json.loads((ROOT / "examples" / "events" / "instance-registered.json").read_text())
TERMINATING = json.loads((ROOT / "examples" / "events" / "instance-terminating.json").read_text())
CONFIG = {"clusters": [{"name": "prod", "autoScalingGroups": [{"name": "prod-asg"}]}]}


def moved(doc: Any, old: str, new: str) -> Any:
    """The document with every occurrence of `old` in its text replaced by `new`."""
    return json.loads(json.dumps(doc).replace(old, new))


def replay(tmp_path: Path, event: Any, state: Any, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    files = {}
    for name, doc in (("event.json", event), ("state.json", state), ("config.json", CONFIG)):
        files[name] = tmp_path / name
        files[name].write_text(json.dumps(doc))
    code = main(["replay", str(files["event.json"]), "--state", str(files["state.json"]),
                 "--config", str(files["config.json"])])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(("event", "state", "refusal"), [
    pytest.param(REGISTERED, moved(STATE, "prod", "staging"),
                 "the state is of cluster staging but the event is of cluster prod", id="another cluster"),
    pytest.param(TERMINATING, moved(STATE, "prod", "staging"),
                 "the state is of cluster staging but the event is of cluster prod",
                 id="another cluster than the group's"),
    pytest.param(REGISTERED, moved(STATE, "111122223333", "444455556666"),
                 "the state is of account 444455556666 but the event is of account 111122223333",
                 id="another account"),
    pytest.param(REGISTERED, moved(STATE, "us-east-1", "eu-west-1"),
                 "the state is of region eu-west-1 but the event is of region us-east-1", id="another region"),
    pytest.param(REGISTERED, json.loads((ROOT / "cdk.json").read_text()), "not a STATE.json", id="a cdk.json"),
])
def test_a_state_of_another_scope_is_refused_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                         event: Any, state: Any, refusal: str) -> None:
    # GIVEN an event of cluster prod in 111122223333 / us-east-1, and a state that is not of it
    # WHEN replayed
    code, out, err = replay(tmp_path, event, state, capsys)
    # THEN it exits 2 with one line naming the state file and the difference, and decides nothing
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("daemon-guard replay: ") and refusal in err
    assert "state.json" in err


@pytest.mark.parametrize("event", [REGISTERED, TERMINATING], ids=["ecs event", "auto scaling event"])
def test_a_state_of_the_events_cluster_is_replayed(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   event: Any) -> None:
    # GIVEN the shipped example state and events, of the same cluster / WHEN replayed / THEN a decision
    code, out, err = replay(tmp_path, event, STATE, capsys)
    assert code == 0, err
    assert json.loads(out)["decision"] in ("evict", "start-workflow")


@pytest.mark.parametrize(("state", "event", "expected"), [
    (Scope(), Scope(frozenset({"prod"})), None),
    (Scope(frozenset({"prod"})), Scope(), None),
    (Scope(frozenset({"prod"}), frozenset({"1"}), frozenset({"r"})),
     Scope(frozenset({"prod"}), frozenset({"1"}), frozenset({"r"})), None),
    (Scope(frozenset({"prod", "dev"})), Scope(frozenset({"prod"})),
     "the state is of cluster dev, prod but the event is of cluster prod"),
    (Scope(regions=frozenset({"r1"})), Scope(regions=frozenset({"r2"})),
     "the state is of region r1 but the event is of region r2"),
])
def test_only_what_both_sides_say_is_compared(state: Scope, event: Scope, expected: str | None) -> None:
    # GIVEN what a state and an event each name / WHEN compared / THEN only a stated difference counts
    assert scope_mismatch(state, event) == expected
