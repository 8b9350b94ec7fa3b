"""One region rule for every live command, and `--cluster` as a name or an ARN everywhere.

The rule: --region, else the region the ARNs given name (a cluster ARN, the drain function's), else
AWS_REGION, else AWS_DEFAULT_REGION or the profile's. A --region that contradicts an ARN, or two ARNs
in different regions, is refused in one line (exit 2) before any call.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from daemon_guard_cli.drain_dry_run import dry_run_drain
from daemon_guard_cli.live import CliError, resolve_region, snapshot, status
from tests.cli.test_drain_dry_run import CONFIG, busy_instance
from tests.cli.test_live import small_cluster

CLUSTER_ARN = "arn:aws:ecs:us-east-1:111122223333:cluster/prod"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:111122223333:function:daemon-guard-drain:live"
OTHER_FUNCTION_ARN = "arn:aws:lambda:eu-central-1:111122223333:function:daemon-guard-drain:live"


@pytest.fixture
def no_region(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    return monkeypatch


@pytest.mark.parametrize(("flag", "arns", "env", "expected"), [
    pytest.param("ap-south-1", (), "eu-west-1", "ap-south-1", id="the flag first"),
    pytest.param(None, ("prod",), "eu-west-1", "eu-west-1", id="a cluster name names no region: AWS_REGION"),
    pytest.param(None, (CLUSTER_ARN,), "eu-west-1", "us-east-1", id="a cluster ARN's region before AWS_REGION"),
    pytest.param(None, (FUNCTION_ARN, "prod"), None, "us-east-1", id="the function ARN's region"),
    pytest.param(None, (FUNCTION_ARN, CLUSTER_ARN), None, "us-east-1", id="two ARNs in one region"),
    pytest.param("us-east-1", (CLUSTER_ARN,), None, "us-east-1", id="a flag that agrees with the ARN"),
    pytest.param(None, (), "eu-west-1", "eu-west-1", id="nothing given: AWS_REGION"),
    pytest.param("eu-west-1", (CLUSTER_ARN,), None,
                 CliError(f"--region eu-west-1 but {CLUSTER_ARN} is in us-east-1"), id="a flag against the ARN"),
    pytest.param(None, (OTHER_FUNCTION_ARN, CLUSTER_ARN), None,
                 CliError(f"{OTHER_FUNCTION_ARN} is in eu-central-1 but {CLUSTER_ARN} is in us-east-1"),
                 id="two ARNs in two regions"),
    pytest.param(None, ("prod",), None, CliError("no AWS region: pass --region, set AWS_REGION"), id="no region"),
])
def test_one_function_decides_the_region_of_every_live_command(
        no_region: pytest.MonkeyPatch, flag: str | None, arns: tuple[str, ...], env: str | None,
        expected: str | CliError) -> None:
    # GIVEN a --region flag (or none), the ARNs a command was given, and AWS_REGION (or none)
    if env:
        no_region.setenv("AWS_REGION", env)
    # WHEN the region is decided / THEN it is the rule's, or one clear refusal
    if isinstance(expected, CliError):
        with pytest.raises(CliError, match=str(expected).replace("$", r"\$")):
            resolve_region(flag, *arns)
    else:
        assert resolve_region(flag, *arns) == expected


def test_status_takes_a_cluster_arn_and_reports_the_cluster_by_name() -> None:
    # GIVEN a simulated cluster named by its ARN
    world = small_cluster()
    out, err = io.StringIO(), io.StringIO()
    # WHEN status reads it without --region
    code = status(CLUSTER_ARN, None, client=world.client("ecs"), clock=world.clock.datetime, out=out, err=err)
    # THEN the cluster is read as by its name
    assert code == 1, err.getvalue()
    assert out.getvalue().startswith("cluster prod: 2 container instance(s), 1 daemon service(s)")


@pytest.mark.parametrize("command", ["status", "snapshot"])
def test_status_and_snapshot_refuse_a_region_that_contradicts_the_cluster_arn(command: str) -> None:
    # GIVEN a cluster ARN in us-east-1 and --region eu-west-1, and a client that must not be called
    out, err = io.StringIO(), io.StringIO()
    # WHEN the command runs
    if command == "status":
        code = status(CLUSTER_ARN, "eu-west-1", client=object(), out=out, err=err)
    else:
        code = snapshot(CLUSTER_ARN, "eu-west-1", None, client=object(), out=out, err=err)
    # THEN it exits 2 with one line naming both regions, and prints nothing else
    assert code == 2
    assert err.getvalue() == (f"daemon-guard {command}: --region eu-west-1 but {CLUSTER_ARN} is in us-east-1: "
                              "drop --region or pass the matching one\n")
    assert out.getvalue() == ""


def test_a_snapshot_of_a_cluster_arn_names_the_cluster_as_replay_reads_it(tmp_path: Path) -> None:
    # GIVEN a simulated cluster named by its ARN / WHEN it is snapshotted
    world = small_cluster()
    path = tmp_path / "state.json"
    code = snapshot(CLUSTER_ARN, None, str(path), client=world.client("ecs"), out=io.StringIO(), err=io.StringIO())
    # THEN the state names the cluster, as replay's schema wants
    assert code == 0
    assert json.loads(path.read_text())["cluster"] == "prod"


def test_the_drain_dry_run_takes_a_cluster_arn_of_a_managed_cluster(tmp_path: Path) -> None:
    # GIVEN a configuration managing "prod" and the cluster named by its ARN
    world = busy_instance()
    config = tmp_path / "config.json"
    config.write_text(json.dumps(CONFIG))
    out, err = io.StringIO(), io.StringIO()
    # WHEN the dry run is asked for
    code = dry_run_drain(CLUSTER_ARN, "i-0b05b05b05b05b05b", None, config_path=str(config),
                         ecs_client=world.client("ecs"), autoscaling_client=world.client("autoscaling"),
                         clock=world.clock.datetime, out=out, err=err)
    # THEN the cluster is managed and the steps are printed
    assert code == 0, err.getvalue()
    assert "replicas" in out.getvalue()


def test_the_drain_dry_run_refuses_a_region_that_contradicts_the_cluster_arn(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps(CONFIG))
    err = io.StringIO()
    code = dry_run_drain(CLUSTER_ARN, "i-0b05b05b05b05b05b", "eu-west-1", config_path=str(config),
                         ecs_client=object(), autoscaling_client=object(), out=io.StringIO(), err=err)
    assert code == 2
    assert err.getvalue().count("\n") == 1 and "--region eu-west-1 but" in err.getvalue()


def test_the_drain_dry_run_takes_the_region_from_aws_region(no_region: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # GIVEN AWS_REGION only, credentials, and an unreachable network (a proxy that refuses)
    no_region.setenv("AWS_REGION", "eu-west-1")
    no_region.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    no_region.setenv("AWS_SECRET_ACCESS_KEY", "example")
    no_region.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    config = tmp_path / "config.json"
    config.write_text(json.dumps(CONFIG))
    err = io.StringIO()
    # WHEN the dry run is asked for without --region
    code = dry_run_drain("prod", "i-0b05b05b05b05b05b", None, config_path=str(config), out=io.StringIO(), err=err)
    # THEN it went to AWS_REGION's endpoint (and says so in one line), rather than asking for a region
    assert code == 2
    line = err.getvalue().strip()
    assert "\n" not in line and "cannot reach the AWS endpoint in eu-west-1" in line, line
