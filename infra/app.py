"""Build the daemon-guard stack from the cdk.json context.

Context keys:

- ``daemon-guard``: the configuration document (see ``daemon_guard.core.config``).
- ``daemon-guard:capacity-providers`` (optional): capacity providers of the managed groups, as
  ``[{"name": "cp", "autoScalingGroup": "prod-asg", "managedDraining": "ENABLED"}]``, for the
  synth-time refusal of groups already drained by ECS managed draining.
- ``daemon-guard:stack-name`` (optional): default ``DaemonGuard``.
- ``daemon-guard:nag`` (optional): run cdk-nag AwsSolutions checks; default true.
- ``daemon-guard:skip-bundling-install`` (optional, tests): skip the pip step of the asset.

An invalid configuration fails the synth with one line naming the field and the fix.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

import aws_cdk as cdk
from daemon_guard.core.config import ConfigError

from .construct import CapacityProviderInfo, DaemonGuard, DaemonGuardProps
from .nag import NagUnavailable, add_nag

CONFIG_CONTEXT = "daemon-guard"
CAPACITY_PROVIDERS_CONTEXT = "daemon-guard:capacity-providers"
STACK_NAME_CONTEXT = "daemon-guard:stack-name"
NAG_CONTEXT = "daemon-guard:nag"


class SynthError(SystemExit):
    """A configuration problem reported as a failed synth (exit status 1, one clear line)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _capacity_providers(raw: Any) -> tuple[CapacityProviderInfo, ...]:
    if raw is None:
        return ()
    key = CAPACITY_PROVIDERS_CONTEXT
    if not isinstance(raw, list):
        raise ConfigError(f"daemon-guard config: {key}: must be a list of "
                          '{"name": ..., "autoScalingGroup": ..., "managedDraining": "ENABLED"|"DISABLED"}')
    providers = []
    for index, item in enumerate(raw):
        where = f"{key}[{index}]"
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str) \
                or not isinstance(item.get("autoScalingGroup"), str):
            raise ConfigError(f"daemon-guard config: {where}: needs string fields 'name' and 'autoScalingGroup'")
        draining = item.get("managedDraining", "ENABLED")
        if draining not in ("ENABLED", "DISABLED"):
            raise ConfigError(f"daemon-guard config: {where}.managedDraining: must be ENABLED or DISABLED, "
                              f"got {draining!r}")
        providers.append(CapacityProviderInfo(name=item["name"], auto_scaling_group=item["autoScalingGroup"],
                                              managed_draining=draining == "ENABLED"))
    return tuple(providers)


def _truthy(value: Any, default: bool) -> bool:
    if value is None:
        return default
    return value is True or (isinstance(value, str) and value.strip().lower() in ("1", "true", "yes"))


def build_app(app: cdk.App) -> cdk.Stack:
    """Add the DaemonGuard stack to ``app`` from its context; raise `SynthError` on bad config."""
    doc = app.node.try_get_context(CONFIG_CONTEXT)
    if isinstance(doc, str):  # -c daemon-guard='{...}' on the command line
        try:
            doc = json.loads(doc)
        except json.JSONDecodeError as error:
            raise SynthError(f"daemon-guard config: (root): the context value is not valid JSON ({error})") from error
    if doc is None:
        raise SynthError(f'daemon-guard config: (root): no "{CONFIG_CONTEXT}" key in the cdk.json context; '
                         "add one (see README, Deploy) or pass -c with a JSON document")
    stack = cdk.Stack(
        app, str(app.node.try_get_context(STACK_NAME_CONTEXT) or "DaemonGuard"),
        description="daemon-guard: daemon-first placement and ordered drains for ECS on EC2 Auto Scaling",
        env=cdk.Environment(account=os.environ.get("CDK_DEFAULT_ACCOUNT"),
                            region=os.environ.get("CDK_DEFAULT_REGION")),
    )
    try:
        DaemonGuard(stack, "DaemonGuard", DaemonGuardProps(
            config=doc,
            capacity_providers=_capacity_providers(app.node.try_get_context(CAPACITY_PROVIDERS_CONTEXT)),
        ))
    except ConfigError as error:
        raise SynthError(str(error)) from error
    if _truthy(app.node.try_get_context(NAG_CONTEXT), default=True):
        try:
            add_nag(app)
        except NagUnavailable as missing:
            raise SynthError(f"daemon-guard: {missing}") from missing
    return stack
