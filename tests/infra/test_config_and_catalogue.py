"""Configuration fails the synth by name; the dashboard and the catalogue agree; the asset builds."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from daemon_guard.core.config import parse_config
from daemon_guard.core.metrics import ALL_METRICS, CLUSTER_DIMENSION

from infra.app import SynthError, build_app
from infra.bundling import BundlingError, LocalPythonBundler
from infra.configdoc import config_env_value, config_to_doc
from infra.observability import metrics_named_by_dashboard
from tests.infra.conftest import REPO, repo_context

GOOD: dict[str, Any] = {"clusters": [{"name": "prod", "autoScalingGroups": ["prod-asg"]}]}


def build(context: dict[str, Any]) -> cdk.Stack:
    return build_app(cdk.App(context={**context, "daemon-guard:skip-bundling-install": True,
                                      "daemon-guard:nag": False}))


@pytest.mark.parametrize(("doc", "field"), [
    ({"clusters": []}, "clusters"),
    ({**GOOD, "placementMode": "yolo"}, "placementMode"),
    ({**GOOD, "drainDeadlineSeconds": 5}, "drainDeadlineSeconds"),
    ({"clusters": [{"name": "prod", "autoScalingGroups": [{"name": "a", "heartbeatTimeoutSeconds": 9}]}]},
     "clusters[0].autoScalingGroups[0].heartbeatTimeoutSeconds"),
    ({**GOOD, "alarmTopicArn": "not-an-arn"}, "alarmTopicArn"),
    ({**GOOD, "colour": "blue"}, "unknown field(s) ['colour']"),
])
def test_invalid_configuration_fails_synth_naming_the_field(doc: dict[str, Any], field: str) -> None:
    # GIVEN a bad document in the context / WHEN the app is built / THEN SynthError names the field
    with pytest.raises(SynthError) as raised:
        build({"daemon-guard": doc})
    assert field in raised.value.message
    assert raised.value.message.startswith("daemon-guard config: ")


def test_missing_context_fails_synth_with_the_fix() -> None:
    with pytest.raises(SynthError, match='no "daemon-guard" key'):
        build({})


def test_managed_draining_group_is_refused_unless_told_to_coexist() -> None:
    # GIVEN prod-asg's capacity provider runs ECS managed draining
    providers = [{"name": "prod-cp", "autoScalingGroup": "prod-asg", "managedDraining": "ENABLED"}]
    # WHEN the group does not say coexistWithManagedDraining / THEN synth refuses, naming field and fix
    with pytest.raises(SynthError) as raised:
        build({"daemon-guard": GOOD, "daemon-guard:capacity-providers": providers})
    assert "coexistWithManagedDraining" in raised.value.message and "prod-cp" in raised.value.message
    # WHEN it does / THEN the stack builds
    coexisting = {"clusters": [{"name": "prod", "autoScalingGroups": [
        {"name": "prod-asg", "coexistWithManagedDraining": True}]}]}
    assert build({"daemon-guard": coexisting, "daemon-guard:capacity-providers": providers})


def test_malformed_capacity_provider_context_names_the_key() -> None:
    with pytest.raises(SynthError, match=r"daemon-guard:capacity-providers\[0\]\.managedDraining"):
        build({"daemon-guard": GOOD, "daemon-guard:capacity-providers": [
            {"name": "cp", "autoScalingGroup": "prod-asg", "managedDraining": "maybe"}]})


def test_json_string_context_from_the_command_line_is_accepted() -> None:
    assert build({"daemon-guard": json.dumps(GOOD)}).stack_name == "DaemonGuard"


def test_cdk_app_fails_with_one_clear_line_on_bad_config(tmp_path: Path) -> None:
    # GIVEN app.py run the way the CDK CLI runs it, with a bad document on the command line
    result = subprocess.run(
        [str(REPO / ".venv/bin/python"), "app.py"], cwd=REPO, capture_output=True, text=True, check=False,
        env={**os.environ, "CDK_OUTDIR": str(tmp_path),
             "CDK_CONTEXT_JSON": json.dumps({"daemon-guard": {"clusters": [], "placementMode": "gate"}})},
    )
    # THEN it exits non-zero with the field and the fix, and no traceback
    assert result.returncode == 1
    assert "daemon-guard config: clusters: list at least one cluster" in result.stderr
    assert "Traceback" not in result.stderr


# --- the validated document the Lambdas receive ---------------------------------------------------

@pytest.mark.parametrize("path", ["cdk.json", "examples/two-clusters.cdk.json"])
def test_config_document_round_trips_through_the_parser(path: str) -> None:
    config = parse_config(repo_context(path)["daemon-guard"])
    assert parse_config(config_to_doc(config)) == config
    assert parse_config(json.loads(config_env_value(config))) == config


def test_the_drain_deadline_policy_and_the_agent_stop_timeout_reach_the_lambdas() -> None:
    # GIVEN a document that forces the drain at its deadline and says the agents kill after 2 minutes
    config = parse_config({"clusters": [{"name": "prod", "autoScalingGroups": ["prod-asg"]}],
                           "drainDeadlinePolicy": "force", "agentStopTimeoutSeconds": 120})
    # WHEN written back as the document the Lambdas receive / THEN both survive
    assert parse_config(json.loads(config_env_value(config))) == config


# --- dashboard and catalogue ----------------------------------------------------------------------

def test_every_metric_the_dashboard_names_is_in_the_catalogue_with_the_same_dimensions() -> None:
    catalogue = {(m.name, frozenset((CLUSTER_DIMENSION, *m.extra_dimensions))) for m in ALL_METRICS}
    assert metrics_named_by_dashboard() <= catalogue


def test_every_catalogue_metric_meant_for_the_dashboard_is_on_it() -> None:
    named = {name for name, _ in metrics_named_by_dashboard()}
    assert {m.name for m in ALL_METRICS if m.on_dashboard} <= named
    assert not {m.name for m in ALL_METRICS if not m.on_dashboard} & named


# --- the asset ------------------------------------------------------------------------------------

def fake_source(tmp_path: Path) -> Path:
    package = tmp_path / "src" / "daemon_guard"
    (package / "__pycache__").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"")
    return package


def test_bundler_copies_the_package_without_bytecode(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert LocalPythonBundler(fake_source(tmp_path), ["anything==1"], install=False).try_bundle(str(out))
    assert (out / "daemon_guard" / "__init__.py").exists()
    assert not (out / "daemon_guard" / "__pycache__").exists()


def test_bundler_asks_pip_for_arm64_py313_wheels_and_explains_a_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN pip cannot reach a wheel
    calls: list[list[str]] = []

    def failing_pip(command: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        calls.append(command)
        return subprocess.CompletedProcess(command, 1, "", "ERROR: No matching distribution found")

    monkeypatch.setattr(subprocess, "run", failing_pip)
    bundler = LocalPythonBundler(fake_source(tmp_path), ["aws-durable-execution-sdk-python==3.0.0"], install=True)
    # WHEN the asset is bundled / THEN a BundlingError says what failed and how to go on
    with pytest.raises(BundlingError, match="manylinux2014_aarch64 / cp313") as raised:
        bundler.try_bundle(str(tmp_path / "out"))
    assert "daemon-guard:skip-bundling-install" in str(raised.value)
    (command,) = calls
    for flag in ("--target", "--only-binary=:all:", "manylinux2014_aarch64", "3.13", "cp",
                 "aws-durable-execution-sdk-python==3.0.0"):
        assert flag in command
