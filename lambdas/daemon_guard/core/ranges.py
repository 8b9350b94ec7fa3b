"""The documented range of every number the guard plans with, read from ECS (pure: no I/O).

A value outside its range is one ECS never returns for a valid resource; planning with it would do
arithmetic on nonsense (a stopTimeout of 2**31 - 1 once planned a phase limit of -2147482797 s).
`check` refuses it with `OutOfRange`; the adapters then plan that one task or service conservatively
(`CONSERVATIVE`, and a warning log), and `daemon-guard replay` refuses the snapshot naming the field.

Ranges, from the ECS API reference (RegisterTaskDefinition, ContainerDefinition, CreateService,
DeploymentConfiguration) and Service Quotas:

- ``stopTimeout`` (a container's, seconds): at least 0. Fargate documents at most 120; on EC2 the API
  documents no maximum (the agent's ``ECS_CONTAINER_STOP_TIMEOUT`` is the default only). The guard
  plans up to 172,800 s (48 h, the longest any lifecycle hook can hold an instance): a longer stop
  can never be waited for. Out of range it is planned as ECS's default, 30 s (never a longer
  reservation that would force earlier phases to stop tasks early).
- ``cpu`` (CPU units, task or container): 0 to 196,608 (192 vCPUs, the largest task size ECS
  documents on EC2). Out of range: 0, so the task frees nothing when evicted and needs no room.
- ``memory`` (MiB): 0 to 25,165,824 (24 TiB, the largest EC2 instance; no task maximum is
  documented on EC2). Out of range: 0, as cpu.
- ``minimumHealthyPercent``: 0 to 100; ``maximumPercent``: 0 to 200 (ECS rejects more for the
  rolling update the guard reasons about). Out of range: 100 and 200, the most protective reading.
- ``desiredCount``, ``runningCount``, ``pendingCount``: 0 to 5,000 (Service Quotas: tasks per
  service, not adjustable). Out of range: the service is left undescribed, so the drain stops none
  of its replicas itself (ECS's DRAINING still replaces them) and the next look reads it again.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_PLANNED_STOP_TIMEOUT_S = 48 * 3600
ECS_DEFAULT_STOP_TIMEOUT_S = 30


@dataclass(frozen=True)
class Range:
    """The whole numbers ECS documents for one field, inclusive."""

    low: int
    high: int


RANGES: dict[str, Range] = {
    "stopTimeout": Range(0, MAX_PLANNED_STOP_TIMEOUT_S),
    "cpu": Range(0, 196_608),
    "memory": Range(0, 24 * 1024 * 1024),
    "minimumHealthyPercent": Range(0, 100),
    "maximumPercent": Range(0, 200),
    "desiredCount": Range(0, 5000),
    "runningCount": Range(0, 5000),
    "pendingCount": Range(0, 5000),
}
CONSERVATIVE: dict[str, int | None] = {
    "stopTimeout": ECS_DEFAULT_STOP_TIMEOUT_S, "cpu": 0, "memory": 0, "minimumHealthyPercent": 100,
    "maximumPercent": 200, "desiredCount": None, "runningCount": None, "pendingCount": None,
}


class OutOfRange(ValueError):
    """A number outside the range ECS documents for its field (or no whole number at all)."""

    def __init__(self, field: str, value: object) -> None:
        bounds = RANGES[field]
        super().__init__(f"{field} {str(value)[:40]!r} is outside the range ECS documents "
                         f"({bounds.low} to {bounds.high:,})")
        self.field = field
        self.value = value


def _whole(value: object) -> int | None:
    """`value` as a whole number: an int, or a string of ASCII digits (ECS writes task cpu and memory as text)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 18:
        return int(value)
    return None


def check(field: str, value: object) -> int:
    """`value` as an int within the documented range of `field`; OutOfRange otherwise."""
    number = _whole(value)
    bounds = RANGES[field]
    if number is None or not bounds.low <= number <= bounds.high:
        raise OutOfRange(field, value)
    return number
