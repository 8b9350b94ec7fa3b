"""cdk-nag AwsSolutions checks and the findings daemon-guard accepts, each with its reason.

cdk-nag 3 acknowledges findings one by one (``AwsSolutions-IAM5[Resource::...]``), so the
resource strings are rendered here the way cdk-nag renders them (``<AWS::Region>``,
``<Logical.Attr>``) from the same ARNs the policies use.

Acknowledging needs only aws-cdk-lib (``cdk.Validations``), so the construct works without cdk-nag;
running the checks (`add_nag`) needs it: the wheel's ``nag`` extra, ``pip install 'daemon_guard-...whl[nag]'``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import aws_cdk as cdk
from constructs import Construct

NAG_MISSING = ("cdk-nag is not installed, and the AwsSolutions checks need it: install the wheel with its nag "
               "extra (pip install './dist/daemon_guard-<version>-py3-none-any.whl[nag]') or cdk-nag itself "
               "(pip install 'cdk-nag>=3,<4'), or turn the checks off with the context key daemon-guard:nag=false")


class NagUnavailable(ImportError):
    """The cdk-nag checks were asked for, and cdk-nag is not installed."""


def add_nag(app: cdk.App) -> None:
    """Run the AwsSolutions rules on the whole app; an unacknowledged finding fails the synth.

    Raises `NagUnavailable` (saying how to install it) when cdk-nag is not installed.
    """
    try:
        from cdk_nag import AwsSolutionsChecks
    except ImportError as missing:
        raise NagUnavailable(NAG_MISSING) from missing
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))


def _render(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Ref" in value:
        return f"<{value['Ref']}>"
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return f"<{'.'.join(value['Fn::GetAtt'])}>"
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(_render(p) for p in parts)
    raise ValueError(f"cannot render {value!r} as a cdk-nag finding")


def nag_resource(scope: Construct, arn: str) -> str:
    """The resource string cdk-nag prints for an ARN (tokens rendered as ``<...>``)."""
    return _render(cdk.Stack.of(scope).resolve(arn))


def acknowledge(scope: Construct, ids: Iterable[str], reason: str) -> None:
    """Acknowledge each finding id on ``scope`` and its children, with one reason."""
    cdk.Validations.of(scope).acknowledge(*(cdk.Acknowledgment(id=i, reason=reason) for i in ids))


def acknowledge_wildcards(scope: Construct, arns: Iterable[str], reason: str) -> None:
    """Acknowledge AwsSolutions-IAM5 for each wildcard ARN."""
    acknowledge(scope, (f"AwsSolutions-IAM5[Resource::{nag_resource(scope, a)}]" for a in arns), reason)
