"""Every file the CLI reads is bounded before it is read: regular files only, at most a limit, strict JSON.

`daemon-guard replay` (and every command reading a file) refuses a FIFO, a device, a directory, a
file past its limit (unread), a document of the wrong kind (on its first byte) and a JSON object
naming a key twice, each with exit 2 and one line; a reader that closes stdout ends it quietly.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from daemon_guard.adapters import parsing

from daemon_guard_cli import inputs
from daemon_guard_cli.errors import InputError
from daemon_guard_cli.main import main

REPO = Path(__file__).resolve().parents[2]
EVENT = REPO / "examples" / "events" / "instance-registered.json"
STATE = REPO / "examples" / "state.json"


def refused(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """The one line `daemon-guard` printed when it refused its input (exit 2)."""
    code = main(list(argv))
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1, err
    return err


@pytest.fixture
def fifo(tmp_path: Path) -> str:
    """A named pipe nobody writes to (reading it would hang)."""
    path = tmp_path / "event.json"
    os.mkfifo(path)
    return str(path)


@pytest.mark.parametrize("flag", ["event", "--state", "--config"])
def test_a_fifo_is_refused_without_waiting_for_a_writer(capsys: pytest.CaptureFixture[str], fifo: str,
                                                        flag: str) -> None:
    # GIVEN a FIFO in place of each file replay reads
    argv = ["replay", fifo] if flag == "event" else ["replay", str(EVENT), flag, fifo]
    # WHEN replayed / THEN refused at once, in one line naming the file
    assert "a FIFO (named pipe), not a regular file" in refused(capsys, *argv)


@pytest.mark.parametrize("path", ["/dev/zero", "/dev/null"])
def test_a_device_is_refused_unread(capsys: pytest.CaptureFixture[str], path: str) -> None:
    # GIVEN /dev/zero (endless) or /dev/null as the event / WHEN replayed / THEN refused, nothing read
    assert f"{path}: a character device, not a regular file" in refused(capsys, "replay", path)


def test_a_directory_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # GIVEN a directory as the state / WHEN replayed / THEN refused
    assert "a directory, not a regular file" in refused(capsys, "replay", str(EVENT), "--state", str(tmp_path))


def test_a_10_gb_sparse_file_is_refused_by_its_size_unread(capsys: pytest.CaptureFixture[str],
                                                            tmp_path: Path) -> None:
    # GIVEN a 10 GB sparse file (no disk used) as the event and as the state
    sparse = tmp_path / "sparse.json"
    with sparse.open("wb") as file:
        file.truncate(10 * 1024**3)
    # WHEN replayed / THEN each is refused by its size, naming the limit
    assert "10,737,418,240 bytes, more than the 262,144 bytes EventBridge delivers" in refused(
        capsys, "replay", str(sparse))
    assert f"more than the {inputs.MAX_STATE_BYTES:,} bytes a snapshot of 5,000 container instances" in refused(
        capsys, "replay", str(EVENT), "--state", str(sparse))


def test_an_event_over_eventbridges_limit_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # GIVEN an event one byte over 256 KiB
    big = tmp_path / "big.json"
    big.write_text('{"pad": "' + "x" * (256 * 1024 - 10) + '"}')
    assert big.stat().st_size == 256 * 1024 + 1
    # WHEN replayed / THEN refused by its size
    assert "262,145 bytes, more than the 262,144" in refused(capsys, "replay", str(big))


def test_a_large_json_list_as_state_is_refused_on_its_first_byte(capsys: pytest.CaptureFixture[str],
                                                                 tmp_path: Path) -> None:
    # GIVEN a 5 MB JSON list of small objects as the state (a snapshot is an object)
    listed = tmp_path / "list.json"
    listed.write_text(json.dumps([{"a": n} for n in range(500_000)]))
    # WHEN replayed / THEN refused as the wrong kind of document, before the list is parsed
    assert "expected a JSON object, got list" in refused(
        capsys, "replay", str(EVENT), "--state", str(listed))


def test_a_duplicate_key_is_refused_with_the_key_named(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # GIVEN a terminate lifecycle action naming EC2InstanceId twice (a wildcard, then a valid id)
    event = (REPO / "examples" / "events" / "instance-terminating.json").read_text()
    dup = tmp_path / "dup.json"
    dup.write_text(event.replace('"EC2InstanceId"', '"EC2InstanceId": "i-*", "EC2InstanceId"', 1))
    assert dup.read_text().count('"EC2InstanceId"') == 2
    # WHEN replayed / THEN refused, the key named (the last value would otherwise have started a drain)
    assert "duplicate key 'EC2InstanceId'" in refused(capsys, "replay", str(dup))


def test_a_duplicate_key_deep_in_the_state_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # GIVEN the example snapshot with a key written twice in one of its nested objects
    text = STATE.read_text()
    dup = tmp_path / "state.json"
    dup.write_text(text.replace('"cluster":', '"cluster": "other", "cluster":', 1))
    # WHEN replayed / THEN refused, the key named
    assert "duplicate key 'cluster'" in refused(capsys, "replay", str(EVENT), "--state", str(dup))


def test_drain_dry_run_reads_its_config_bounded(capsys: pytest.CaptureFixture[str], fifo: str) -> None:
    # GIVEN a FIFO as drain --dry-run's --config / WHEN run / THEN refused before any AWS call
    assert "a FIFO (named pipe)" in refused(capsys, "drain", "--dry-run", "--cluster", "prod", "i-0123456789abcdef0",
                                            "--region", "us-east-1", "--config", fifo)


def test_the_event_limit_is_the_lambda_parsers(tmp_path: Path) -> None:
    # GIVEN the CLI's event limit and the Lambda parser's / THEN they are one number: EventBridge's 256 KiB
    assert inputs.MAX_EVENT_BYTES == parsing.MAX_EVENT_BYTES == 256 * 1024


def test_a_file_past_its_limit_is_refused_naming_the_limit(tmp_path: Path) -> None:
    # GIVEN a 102-byte file
    path = tmp_path / "long.json"
    path.write_bytes(b"{}" + b" " * 100)
    # WHEN read with a limit of 10 bytes / THEN refused, the limit and its reason named
    with pytest.raises(InputError, match="102 bytes, more than the 10 bytes the test allows"):
        inputs.read_bounded(str(path), 10, "the test allows")


def test_a_closed_stdout_ends_replay_quietly() -> None:
    # GIVEN replay's output piped into a reader that takes one byte and leaves
    replay = subprocess.Popen([sys.executable, "-m", "daemon_guard_cli.main", "replay", str(EVENT), "--state",
                               str(STATE)], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert replay.stdout is not None and replay.stderr is not None
    replay.stdout.read(1)
    replay.stdout.close()
    # WHEN it writes the rest / THEN it ends quietly: no "internal error", no traceback
    err = replay.stderr.read().decode()
    code = replay.wait(timeout=120)
    assert code in (0, 141), err
    assert "internal error" not in err and "Traceback" not in err, err


@pytest.mark.parametrize(("section", "change", "field"), [
    ("taskDefinitions", {"stopTimeout": 2**31 - 1}, "containerDefinitions[0].stopTimeout"),
    ("taskDefinitions", {"stopTimeout": -100}, "containerDefinitions[0].stopTimeout"),
    ("taskDefinitions", {"cpu": "1e400"}, ".cpu"),
    ("services", {"minimumHealthyPercent": -2**31}, "deploymentConfiguration.minimumHealthyPercent"),
    ("services", {"desiredCount": -1}, ".desiredCount"),
])
def test_a_snapshot_value_outside_ecs_documented_range_is_refused_naming_it(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, section: str, change: dict[str, object],
        field: str) -> None:
    # GIVEN the example snapshot with one number ECS would never return
    state = json.loads(STATE.read_text())
    entry = state[section][0]
    for key, value in change.items():
        if key == "stopTimeout":
            entry["containerDefinitions"][0][key] = value
        elif key == "minimumHealthyPercent":
            entry["deploymentConfiguration"][key] = value
        else:
            entry[key] = value
    path = tmp_path / "state.json"
    path.write_text(json.dumps(state))
    # WHEN replayed / THEN refused in one line naming the field and the documented range
    line = refused(capsys, "replay", str(EVENT), "--state", str(path))
    assert field in line and "outside the range ECS documents" in line
