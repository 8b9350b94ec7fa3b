"""Helpers for template tests: synthesize through `build_app`, offline, without the pip step."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import aws_cdk as cdk
from aws_cdk.assertions import Template

from infra.app import build_app

REPO = Path(__file__).resolve().parents[2]


def repo_context(path: str = "cdk.json") -> dict[str, Any]:
    """The context of a cdk.json-format file in the repository."""
    context: dict[str, Any] = json.loads((REPO / path).read_text())["context"]
    return context


def synth(context: Mapping[str, Any], outdir: Path, *, nag: bool) -> tuple[cdk.Stack, Template, dict[str, Any]]:
    """Build and synthesize the app from ``context``; the pip step of the asset is skipped."""
    app = cdk.App(outdir=str(outdir), context={
        **context, "daemon-guard:skip-bundling-install": True, "daemon-guard:nag": nag,
    })
    stack = build_app(app)
    assembly = app.synth()
    template = json.loads(Path(assembly.get_stack_artifact(stack.artifact_id).template_full_path).read_text())
    return stack, Template.from_json(template), template


def render(value: Any) -> str:
    """A CloudFormation value as text: ``Fn::Join`` joined, ``Ref`` as ``${X}``, ``GetAtt`` as ``${X.Y}``."""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, dict) and "Ref" in value:
        return "${" + str(value["Ref"]) + "}"
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return "${" + ".".join(value["Fn::GetAtt"]) + "}"
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(render(p) for p in parts)
    return json.dumps(value, sort_keys=True)


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def statements(template: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(logical id of the policy, statement) for every identity policy statement in the template."""
    for logical_id, resource in template["Resources"].items():
        kind = resource["Type"]
        props = resource.get("Properties", {})
        if kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            for statement in props["PolicyDocument"]["Statement"]:
                yield logical_id, statement
        elif kind == "AWS::IAM::Role":
            for policy in props.get("Policies", []):
                for statement in policy["PolicyDocument"]["Statement"]:
                    yield logical_id, statement
