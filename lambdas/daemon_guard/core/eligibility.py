"""Which daemons belong on an instance, and which of them have no task there yet.

A daemon service is eligible on an instance when every ``memberOf`` constraint, of the service and
of its task definition, holds on that instance, as the ECS daemon scheduler judges it.
``distinctInstance`` always holds for a daemon: it runs one task per instance by construction.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from daemon_guard.core.model import (
    InstanceView,
    PlacementConstraint,
    ServiceView,
    TaskDefinitionView,
    TaskView,
)
from daemon_guard.core.query import QueryError, evaluate, parse

LIVE_STATUSES = frozenset({"PROVISIONING", "PENDING", "ACTIVATING", "RUNNING"})
"""Last statuses of a task that holds (or is about to hold) its daemon's place on an instance."""


class InvalidConstraint(NamedTuple):
    """A daemon that cannot be judged: its service name and a one-line message saying why."""

    service: str
    message: str


@dataclass(frozen=True)
class Eligibility:
    """The daemons that belong on one instance, and the ones that could not be judged.

    Attributes
    ----------
    eligible
        Daemon services whose every constraint holds on the instance, in the order given.
    invalid
        One entry per problem: an expression the query language rejects, or a task definition
        that was not supplied. Such a daemon is not in `eligible`; report it, never place it.
    """

    eligible: tuple[ServiceView, ...]
    invalid: tuple[InvalidConstraint, ...] = ()


def eligible_daemons(
    instance: InstanceView,
    daemons: Sequence[ServiceView],
    task_defs: Mapping[str, TaskDefinitionView],
    task_groups: Collection[str] = (),
) -> Eligibility:
    """Judge which daemon services belong on `instance`.

    Parameters
    ----------
    instance
        The container instance. Its status is not judged here: whether a DRAINING instance gets
        daemons is the planner's call.
    daemons
        Services to judge; those not ``DAEMON`` or not ``ACTIVE`` are skipped silently.
    task_defs
        Task definitions by ARN; each daemon's ``task_definition_arn`` must be present.
    task_groups
        Groups of the tasks on the instance, read by ``task:group`` expressions.

    Returns
    -------
    Eligibility
        The eligible daemons and the problems found. Every invalid expression is reported, even
        when another constraint already rules the daemon out.
    """
    eligible: list[ServiceView] = []
    invalid: list[InvalidConstraint] = []
    for service in daemons:
        if service.strategy != "DAEMON" or service.status != "ACTIVE":
            continue
        task_def = task_defs.get(service.task_definition_arn)
        if task_def is None:
            invalid.append(InvalidConstraint(
                service.name, f"task definition {service.task_definition_arn} was not supplied"))
            continue
        expressions = list(_member_of(service.constraints, "service")) + list(
            _member_of(task_def.constraints, "task definition"))
        problems = [_problem(service.name, source, expression) for source, expression in expressions]
        found = [p for p in problems if p is not None]
        if found:
            invalid.extend(found)
            continue
        if all(evaluate(expression, instance, task_groups) for _, expression in expressions):
            eligible.append(service)
    return Eligibility(tuple(eligible), tuple(invalid))


def missing_daemons(
    instance: InstanceView,
    eligible: Sequence[ServiceView],
    tasks_on_instance: Sequence[TaskView],
) -> tuple[ServiceView, ...]:
    """The eligible daemons with no live task on `instance`, in the order given.

    A task counts when it is on this instance, in the daemon's group (``service:<name>``), desired
    RUNNING and PROVISIONING, PENDING, ACTIVATING or RUNNING. A task being stopped does not count:
    its daemon needs a new one.
    """
    present = {
        task.group
        for task in tasks_on_instance
        if task.container_instance_arn == instance.arn
        and task.desired_status == "RUNNING"
        and task.last_status in LIVE_STATUSES
    }
    return tuple(service for service in eligible if service.group not in present)


def _member_of(constraints: Iterable[PlacementConstraint], source: str) -> Iterable[tuple[str, str]]:
    for constraint in constraints:
        if constraint.type == "memberOf":
            yield source, constraint.expression


def _problem(service: str, source: str, expression: str) -> InvalidConstraint | None:
    try:
        parse(expression)
    except QueryError as error:
        # The first line only: the rest of the message is a caret drawing for terminals.
        why = str(error).splitlines()[0]
        return InvalidConstraint(service, f"{source} memberOf expression {expression!r}: {why}")
    return None
