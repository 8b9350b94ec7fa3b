"""The shipped contexts synthesize AwsSolutions-clean (nag on) and cfn-lint clean."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_sqs as sqs
from aws_cdk.assertions import Template

from infra.app import build_app
from tests.infra.conftest import REPO, repo_context, synth

CFN_LINT = Path(sys.executable).parent / "cfn-lint"


@pytest.fixture(scope="module")
def default_app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # GIVEN the cdk.json context / WHEN synthesized with cdk-nag on / THEN no unacknowledged finding raises
    out = tmp_path_factory.mktemp("default")
    synth(repo_context(), out, nag=True)
    return out


@pytest.fixture(scope="module")
def two_clusters(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Template, dict[str, Any]]:
    out = tmp_path_factory.mktemp("two")
    _, template, raw = synth(repo_context("examples/two-clusters.cdk.json"), out, nag=True)
    return out, template, raw


def cfn_lint(template: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CFN_LINT), str(template)], capture_output=True, text=True, check=False, cwd=REPO)


def test_default_context_is_nag_clean_with_every_acknowledgement_reasoned(default_app: Path) -> None:
    assert (default_app / "DaemonGuard.template.json").exists()
    report = json.loads((default_app / "validation-report.json").read_text())
    # cdk lists only failing plugins; the stray-queue test below shows AwsSolutions does run.
    assert [p for p in report["pluginReports"] if p["conclusion"] != "success" or p["violations"]] == []


def test_nag_is_active_and_refuses_an_unacknowledged_finding(tmp_path: Path) -> None:
    # GIVEN the app with nag on and one stray unencrypted queue / WHEN synthesized / THEN synth fails
    app = cdk.App(outdir=str(tmp_path), context={**repo_context(), "daemon-guard:skip-bundling-install": True})
    stack = build_app(app)
    sqs.Queue(stack, "Stray", encryption=sqs.QueueEncryption.UNENCRYPTED)
    with pytest.raises(RuntimeError, match="AwsSolutions-SQS2"):
        app.synth()
    report = (tmp_path / "validation-report.json").read_text()
    assert "AwsSolutions-SQS" in report
    assert "DaemonGuard/DaemonGuard/" not in report, "only the stray queue is reported"


@pytest.mark.slow
def test_default_template_is_cfn_lint_clean(default_app: Path) -> None:
    result = cfn_lint(default_app / "DaemonGuard.template.json")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_two_cluster_example_is_cfn_lint_clean(two_clusters: tuple[Path, Template, dict[str, Any]]) -> None:
    out, _, _ = two_clusters
    result = cfn_lint(out / "DaemonGuardPlatform.template.json")
    assert result.returncode == 0, result.stdout + result.stderr


def test_two_cluster_example_hooks_every_group_once_for_termination(
    two_clusters: tuple[Path, Template, dict[str, Any]],
) -> None:
    # GIVEN two clusters with three ASGs / WHEN synthesized / THEN three terminate hooks, one per ASG
    _, _, raw = two_clusters
    hooks = [r["Properties"] for r in raw["Resources"].values() if r["Type"] == "AWS::AutoScaling::LifecycleHook"]
    terminating = sorted(h["AutoScalingGroupName"] for h in hooks
                         if h["LifecycleTransition"] == "autoscaling:EC2_INSTANCE_TERMINATING")
    launching = sorted(h["AutoScalingGroupName"] for h in hooks
                       if h["LifecycleTransition"] == "autoscaling:EC2_INSTANCE_LAUNCHING")
    assert terminating == ["batch-asg", "payments-on-demand", "payments-spot"]
    assert launching == ["payments-on-demand"]


def test_two_cluster_example_watches_both_clusters_and_uses_the_given_topic(
    two_clusters: tuple[Path, Template, dict[str, Any]],
) -> None:
    _, template, raw = two_clusters
    rules = [r["Properties"] for r in raw["Resources"].values() if r["Type"] == "AWS::Events::Rule"]
    (instances,) = [r for r in rules
                    if r.get("EventPattern", {}).get("detail-type") == ["ECS Container Instance State Change"]]
    clusters = [part for arn in instances["EventPattern"]["detail"]["clusterArn"] for part in arn["Fn::Join"][1]
                if isinstance(part, str) and ":cluster/" in part]
    assert clusters == [":cluster/payments", ":cluster/batch"]
    template.resource_count_is("AWS::SNS::Topic", 0)
    alarms = [r["Properties"] for r in raw["Resources"].values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    assert alarms and all(a["AlarmActions"] == ["arn:aws:sns:eu-west-1:123456789012:platform-oncall"] for a in alarms)
