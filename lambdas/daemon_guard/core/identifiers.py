"""Identifiers the guard acts on, as value types: validated once, at the edge, with AWS's formats and limits.

Every value type is a `str` subclass whose constructor refuses anything AWS would never issue, so a
value of the type is proof that it was checked: an `InstanceId` can go into an ECS cluster query or a
CompleteLifecycleAction call as it is, because it cannot hold ``*``, a space, a quote or a query
fragment. Being strings, they compare, hash, log and serialise as the plain text they hold.

Formats (EC2 User Guide "Resource IDs"; Amazon ECS Developer Guide "Amazon Resource Names";
botocore's Auto Scaling model for CompleteLifecycleAction; CreateAutoScalingGroup's documentation):

- `InstanceId`: ``i-`` and 8 or 17 lowercase hex digits (``i-1a2b3c4d``, ``i-1234567890abcdef0``).
- `AccountId`: 12 digits. `Region`: ``us-east-1``-shaped (letters, hyphenated words, a number).
  `Partition`: ``aws`` or ``aws-`` and lowercase words (``aws-cn``, ``aws-us-gov``, ``aws-iso-b``).
- ECS ARNs, ``arn:PARTITION:ecs:REGION:ACCOUNT:RESOURCE``, in their long or old short form:
  `ClusterArn` ``cluster/NAME``; `ContainerInstanceArn` ``container-instance/[CLUSTER/]ID``;
  `TaskArn` ``task/[CLUSTER/]ID``; `ServiceArn` ``service/[CLUSTER/]NAME``. Cluster and service names
  are 1-255 letters, digits, hyphens and underscores; IDs are 32 hex digits (long form) or a UUID
  (short form).
- `AsgName`: 1-255 printable ASCII characters (33-126), no colon.
- `HookName`: 1-255 of letters, digits, ``-``, ``_`` and ``/`` (the API's AsciiStringMaxLen255).
- `LifecycleToken`: 36 characters (the API's exact length), shaped as a UUID. Letters beyond hex are
  accepted because AWS's own documentation samples carry tokens such as
  ``87654321-4321-4321-4321-21098EXAMPLE``; the shape alone already keeps out blanks and controls.

`IdentifierError` (a ValueError) carries a one-line reason that names what was expected and shows
the offending value, shortened.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar, Self

_SHOWN_CHARS = 40

PARTITION_REGIONS: tuple[tuple[str, str], ...] = (
    ("aws-us-gov", r"us-gov-\w+-\d+"),
    ("aws-iso-b", r"us-isob-\w+-\d+"),
    ("aws-iso-e", r"eu-isoe-\w+-\d+"),
    ("aws-iso-f", r"us-isof-\w+-\d+"),
    ("aws-iso", r"us-iso-\w+-\d+"),
    ("aws-eusc", r"eusc-de-\w+-\d+"),
    ("aws-cn", r"cn-\w+-\d+"),
    ("aws", r"(us|eu|ap|sa|ca|me|af|il|mx)-\w+-\d+"),
)
"""Each partition and the shape of its region names (botocore's endpoints.json; a test holds them equal)."""


EARLIEST_EPOCH = 1451606400.0  # 2016-01-01T00:00:00Z: no EventBridge (or CloudWatch Events) event is older
LATEST_EPOCH = 4102444800.0  # 2100-01-01T00:00:00Z


def valid_epoch(value: object) -> bool:
    """True for epoch seconds (int or float, not bool) between `EARLIEST_EPOCH` and `LATEST_EPOCH`."""
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and EARLIEST_EPOCH <= value < LATEST_EPOCH)


class IdentifierError(ValueError):
    """A value that is not the identifier it claims to be; `reason` is one line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def shown(value: object) -> str:
    """`value` as it may appear in a one-line reason: repr'd (controls escaped) and shortened."""
    text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "..."


def partition_of_region(region: str) -> str | None:
    """The partition a region belongs to, or None for a name no partition uses."""
    return next((name for name, shape in PARTITION_REGIONS if re.fullmatch(shape, region, re.ASCII)), None)


class _Checked(str):
    """A string that matched `_PATTERN` when it was made."""

    _PATTERN: ClassVar[re.Pattern[str]]
    _EXPECTED: ClassVar[str]

    def __new__(cls, value: object) -> Self:
        """Validate `value`; IdentifierError names what was expected."""
        if not isinstance(value, str):
            raise IdentifierError(f"expected {cls._EXPECTED}, got {type(value).__name__}")
        if not cls._PATTERN.fullmatch(value):
            raise IdentifierError(f"expected {cls._EXPECTED}, got {shown(value)}")
        return super().__new__(cls, value)


class InstanceId(_Checked):
    """An EC2 instance id: ``i-`` and 8 or 17 lowercase hex digits."""

    _PATTERN = re.compile(r"i-[0-9a-f]{8}(?:[0-9a-f]{9})?", re.ASCII)
    _EXPECTED = "an EC2 instance id (i- and 8 or 17 hex digits)"


class AccountId(_Checked):
    """An AWS account id: 12 digits."""

    _PATTERN = re.compile(r"\d{12}", re.ASCII)
    _EXPECTED = "an AWS account id (12 digits)"


class Region(_Checked):
    """An AWS Region name, e.g. ``us-east-1`` or ``us-gov-west-1``."""

    _PATTERN = re.compile(r"[a-z]{2,4}(?:-[a-z]+)+-\d{1,2}", re.ASCII)
    _EXPECTED = "an AWS Region name such as us-east-1"


class Partition(_Checked):
    """An AWS partition: ``aws``, ``aws-cn``, ``aws-us-gov``, ``aws-iso-b``, ..."""

    _PATTERN = re.compile(r"aws(?:-[a-z]+)*", re.ASCII)
    _EXPECTED = "an AWS partition such as aws or aws-cn"


class AsgName(_Checked):
    """An Auto Scaling group name: 1-255 printable ASCII characters (33-126), no colon."""

    _PATTERN = re.compile(r"[!-9;-~]{1,255}", re.ASCII)
    _EXPECTED = "an Auto Scaling group name (1-255 printable ASCII characters, no colon)"


class HookName(_Checked):
    """A lifecycle hook name: 1-255 letters, digits, ``-``, ``_`` and ``/``."""

    _PATTERN = re.compile(r"[A-Za-z0-9\-_/]{1,255}", re.ASCII)
    _EXPECTED = "a lifecycle hook name (1-255 letters, digits, '-', '_', '/')"


class LifecycleToken(_Checked):
    """A lifecycle action token: 36 characters shaped as a UUID."""

    _PATTERN = re.compile(r"[0-9A-Za-z]{8}-[0-9A-Za-z]{4}-[0-9A-Za-z]{4}-[0-9A-Za-z]{4}-[0-9A-Za-z]{12}", re.ASCII)
    _EXPECTED = "a lifecycle action token (a 36-character UUID)"


_NAME = r"[A-Za-z0-9_\-]{1,255}"
_ID = r"(?:[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
_ECS_ARN = re.compile(
    r"arn:(?P<partition>aws(?:-[a-z]+)*):ecs:(?P<region>[a-z]{2,4}(?:-[a-z]+)+-\d{1,2}):(?P<account>\d{12}):"
    r"(?P<kind>[a-z\-]+)/(?P<rest>.*)",
    re.ASCII,
)


@dataclass(frozen=True)
class Owner:
    """Where a resource lives: partition, account and Region (what the foreign-event checks compare)."""

    partition: str
    account: str
    region: str


class EcsArn(str):
    """An ECS resource ARN, with its owner (partition, account, Region) and (long form) cluster name.

    Subclasses fix the resource kind and the shape of what follows it.
    """

    _KIND: ClassVar[str] = ""
    _REST: ClassVar[re.Pattern[str]]
    _EXPECTED: ClassVar[str] = ""

    owner: Owner
    cluster_name: str | None
    resource_id: str

    def __new__(cls, value: object) -> Self:
        """Validate `value`; IdentifierError if it is not an ECS ARN of this kind."""
        if not isinstance(value, str):
            raise IdentifierError(f"expected {cls._EXPECTED}, got {type(value).__name__}")
        whole = _ECS_ARN.fullmatch(value)
        rest = cls._REST.fullmatch(whole["rest"]) if whole and whole["kind"] == cls._KIND else None
        if whole is None or rest is None:
            raise IdentifierError(f"expected {cls._EXPECTED}, got {shown(value)}")
        arn = super().__new__(cls, value)
        arn.owner = Owner(Partition(whole["partition"]), AccountId(whole["account"]), Region(whole["region"]))
        arn.cluster_name, arn.resource_id = rest["cluster"], rest["id"]
        return arn

    def __getnewargs__(self) -> tuple[str]:
        """Copies and pickles rebuild (and so re-validate) from the text alone."""
        return (str(self),)

    def __getstate__(self) -> None:
        """Nothing beyond the text: the parts are derived from it."""
        return None


class ClusterArn(EcsArn):
    """``arn:PARTITION:ecs:REGION:ACCOUNT:cluster/NAME``."""

    _KIND = "cluster"
    _REST = re.compile(rf"(?P<cluster>{_NAME})(?P<id>)", re.ASCII)
    _EXPECTED = "an ECS cluster ARN (arn:PARTITION:ecs:REGION:ACCOUNT:cluster/NAME)"

    cluster_name: str

    @property
    def name(self) -> str:
        """The cluster's name."""
        return self.cluster_name


class ContainerInstanceArn(EcsArn):
    """``arn:PARTITION:ecs:REGION:ACCOUNT:container-instance/[CLUSTER/]ID``."""

    _KIND = "container-instance"
    _REST = re.compile(rf"(?:(?P<cluster>{_NAME})/)?(?P<id>{_ID})", re.ASCII)
    _EXPECTED = "an ECS container instance ARN (arn:PARTITION:ecs:REGION:ACCOUNT:container-instance/CLUSTER/ID)"


class TaskArn(EcsArn):
    """``arn:PARTITION:ecs:REGION:ACCOUNT:task/[CLUSTER/]ID``."""

    _KIND = "task"
    _REST = re.compile(rf"(?:(?P<cluster>{_NAME})/)?(?P<id>{_ID})", re.ASCII)
    _EXPECTED = "an ECS task ARN (arn:PARTITION:ecs:REGION:ACCOUNT:task/CLUSTER/ID)"


class ServiceArn(EcsArn):
    """``arn:PARTITION:ecs:REGION:ACCOUNT:service/[CLUSTER/]NAME``."""

    _KIND = "service"
    _REST = re.compile(rf"(?:(?P<cluster>{_NAME})/)?(?P<id>{_NAME})", re.ASCII)
    _EXPECTED = "an ECS service ARN (arn:PARTITION:ecs:REGION:ACCOUNT:service/CLUSTER/NAME)"

    @property
    def name(self) -> str:
        """The service's name."""
        return self.resource_id
