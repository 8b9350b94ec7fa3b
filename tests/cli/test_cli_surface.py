"""The command's surface: help and version, region resolution, snapshot (against the simulator's ECS API), and
the shipped examples replayed out of the box."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from daemon_guard_cli.live import CliError, capture, resolve_region, snapshot
from daemon_guard_cli.main import build_parser, main
from daemon_guard_cli.replay import load_config, replay
from tests.cli.test_live import CLUSTER, small_cluster

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
DRAIN_ARN = "arn:aws:lambda:eu-central-1:111122223333:function:daemon-guard-drain:live"


# ---- help and version ---------------------------------------------------------------------------
def test_every_subcommand_has_a_description_and_shows_its_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN the command line
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for name, sub in commands.items():
        # WHEN a subcommand's help is printed
        text = sub.format_help()
        # THEN it says what the command does, and every option with a default shows it
        assert sub.description and len(sub.description) > 40, name
        for action in sub._actions:
            if action.default not in (None, False, "==SUPPRESS==") and action.help:
                assert "default" in text, (name, action.dest)
    assert "(default: out/demo-timeline.png)" in commands["demo"].format_help()


@pytest.mark.parametrize(("given", "expected"), [
    pytest.param("", None, id="none named: every drain strategy"),
    pytest.param("daemon-guard-tiers, ecs-native", ("daemon-guard-tiers", "ecs-native"), id="the ones named, in order"),
])
def test_bench_strategies_selects_the_drain_strategies_to_run(given: str, expected: tuple[str, ...] | None) -> None:
    # GIVEN `daemon-guard bench --strategies ...` / WHEN the drain strategies are read
    from bench.benchmark import drain_strategies
    from bench.suites import DRAIN_STRATEGIES
    args = build_parser().parse_args(["bench", "--suite", "drain", "--strategies", given])
    # THEN they are the ones named, or all of them
    assert drain_strategies(args) == (expected or DRAIN_STRATEGIES)


def test_bench_refuses_an_unknown_strategy_before_running_anything() -> None:
    # GIVEN a misspelt strategy / WHEN the bench starts / THEN it stops at once, naming it and the known ones
    with pytest.raises(SystemExit, match="unknown drain strategy daemon-guard-tier; known: ecs-native"):
        main(["bench", "--suite", "drain", "--strategies", "daemon-guard-tier"])


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN / WHEN --version
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    # THEN it prints the installed version and exits 0
    assert exit_.value.code == 0
    assert capsys.readouterr().out.startswith("daemon-guard 0.")


# ---- region -------------------------------------------------------------------------------------
@pytest.fixture
def no_region(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    return monkeypatch


def test_region_comes_from_the_flag_then_the_arn_then_aws_region_then_aws_default_region(
        no_region: pytest.MonkeyPatch) -> None:
    # GIVEN both environment variables set
    no_region.setenv("AWS_REGION", "eu-west-1")
    no_region.setenv("AWS_DEFAULT_REGION", "us-west-2")
    # THEN the flag wins, then the ARN, then AWS_REGION
    assert resolve_region("ap-south-1") == "ap-south-1"
    assert resolve_region(None, DRAIN_ARN) == "eu-central-1"
    assert resolve_region(None) == "eu-west-1"
    # AND AWS_DEFAULT_REGION when AWS_REGION is absent
    no_region.delenv("AWS_REGION")
    assert resolve_region(None) == "us-west-2"


def test_region_comes_from_the_profile(no_region: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # GIVEN a profile with a region and no region variables
    (tmp_path / "config").write_text("[profile ops]\nregion = sa-east-1\n")
    no_region.setenv("AWS_PROFILE", "ops")
    # THEN the profile's region is used
    assert resolve_region(None) == "sa-east-1"


def test_no_region_anywhere_or_a_contradiction_is_one_clear_error(no_region: pytest.MonkeyPatch) -> None:
    # GIVEN no region anywhere
    with pytest.raises(CliError, match="no AWS region: pass --region, set AWS_REGION"):
        resolve_region(None)
    # GIVEN a flag that contradicts the function ARN
    with pytest.raises(CliError, match=r"--region us-east-1 but .* is in eu-central-1"):
        resolve_region("us-east-1", DRAIN_ARN)


def test_drain_without_region_uses_the_function_arns(no_region: pytest.MonkeyPatch) -> None:
    # GIVEN no region in the environment, and an unreachable network (a proxy that refuses)
    no_region.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    no_region.setenv("AWS_SECRET_ACCESS_KEY", "example")
    no_region.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    no_region.setenv("STATE_TABLE", "daemon-guard-state")
    err = io.StringIO()
    from daemon_guard_cli.live import request_drain

    # WHEN a drain is requested with only the function ARN
    code = request_drain(CLUSTER, "i-0abc1234def567890", DRAIN_ARN, None, err=err)

    # THEN the region came from the ARN and the failure to connect is one bounded, clear line
    assert code == 2
    line = err.getvalue().strip()
    assert line.count("\n") == 0
    assert "cannot reach the AWS endpoint in eu-central-1 after 3 attempts" in line


# ---- snapshot -----------------------------------------------------------------------------------
def test_snapshot_writes_the_state_replay_reads(tmp_path: Path) -> None:
    # GIVEN a simulated cluster with two instances and a daemon
    world = small_cluster()
    out, err = io.StringIO(), io.StringIO()
    path = tmp_path / "state.json"

    # WHEN an operator snapshots it through the ECS API
    code = snapshot(CLUSTER, "us-east-1", str(path), client=world.client("ecs"), out=out, err=err)

    # THEN the file holds every instance, task, service and task definition, and replay reads it
    assert code == 0
    state = json.loads(path.read_text())
    assert state["cluster"] == CLUSTER
    assert sorted(i["ec2InstanceId"] for i in state["containerInstances"]) == sorted(
        ["i-0b16b16b16b16b16b", "i-05a115a115a115a11"])
    assert [s["serviceName"] for s in state["services"]] == ["fluent-bit"]
    assert {t["taskDefinitionArn"] for t in state["tasks"]} <= {d["taskDefinitionArn"]
                                                                 for d in state["taskDefinitions"]}
    assert f"{path}: cluster prod, 2 container instance(s)" in err.getvalue()
    small = next(i for i in state["containerInstances"] if i["ec2InstanceId"] == "i-05a115a115a115a11")
    event = {"version": "0", "id": "0b7bc2d6-6d67-4b0e-9c68-7d1bc8d2c1a1",
             "detail-type": "ECS Container Instance State Change", "source": "aws.ecs",
             "account": "111122223333", "time": "2026-01-05T09:30:00Z", "region": "us-east-1",
             "resources": [small["containerInstanceArn"]],
             "detail": {**small, "clusterArn": f"arn:aws:ecs:us-east-1:111122223333:cluster/{CLUSTER}",
                        "updatedAt": "2026-01-05T09:30:00Z", "version": 2}}
    config = load_config(None, event)
    decision = replay(event, config, state)
    assert decision["instance"] == "i-05a115a115a115a11"
    # the log router can never fit on the small instance, even empty: no eviction is planned there
    assert decision["decision"] == "cannot-fit"


def test_snapshot_reads_only() -> None:
    # GIVEN a simulated cluster, its API call log emptied
    world = small_cluster()
    world.call_log.calls.clear()
    # WHEN it is captured
    capture(world.client("ecs"), CLUSTER)
    # THEN it made calls, and every one of them is a read
    operations = {op for (_service, op) in world.call_log.calls}
    assert operations
    assert all(op.startswith(("List", "Describe")) for op in operations), operations


# ---- the examples -------------------------------------------------------------------------------
def _replay_example(event: str) -> dict[str, object]:
    result = subprocess.run(
        [sys.executable, "-m", "daemon_guard_cli.main", "replay", f"examples/events/{event}",
         "--state", "examples/state.json"], cwd=REPO, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    decision: dict[str, object] = json.loads(result.stdout)
    return decision


def test_the_example_launch_replays_to_a_placement_with_evictions() -> None:
    # GIVEN the shipped snapshot and the new instance's registration event
    # WHEN replayed as the README shows
    decision = _replay_example("instance-registered.json")
    # THEN the intake plans the evictions that make room for the missing daemons
    assert decision["route"] == "placement"
    assert decision["decision"] == "evict"
    actions = decision["actions"]
    assert isinstance(actions, list) and actions and actions[0]["type"] == "StopTasks"


def test_the_example_termination_replays_to_a_drain_start() -> None:
    # GIVEN the shipped snapshot and the terminate lifecycle action of one of its instances
    # WHEN replayed
    decision = _replay_example("instance-terminating.json")
    # THEN a drain workflow would start for that instance
    assert decision["route"] == "drain"
    assert decision["decision"] == "start-workflow"
    actions = decision["actions"]
    assert isinstance(actions, list) and [a["workflow"] for a in actions] == ["drain"]
