"""Eligibility: which daemons belong on an instance, and which of them have no task there yet."""

from __future__ import annotations

import pytest
from daemon_guard.core.eligibility import Eligibility, InvalidConstraint, eligible_daemons, missing_daemons
from daemon_guard.core.model import (
    InstanceView,
    PlacementConstraint,
    Resources,
    ServiceView,
    TaskDefinitionView,
    TaskView,
)

INSTANCE_ARN = "arn:aws:ecs:eu-west-1:111122223333:container-instance/prod/i1"


def instance(**attributes: str) -> InstanceView:
    """A t3.large instance with extra `attributes`."""
    return InstanceView(
        arn=INSTANCE_ARN,
        ec2_instance_id="i-1",
        status="ACTIVE",
        agent_connected=True,
        registered=Resources(2048, 8192),
        remaining=Resources(2048, 8192),
        attributes={"ecs.instance-type": "t3.large", "ecs.os-type": "linux", **attributes},
    )


def member_of(expression: str) -> PlacementConstraint:
    """A memberOf constraint."""
    return PlacementConstraint("memberOf", expression)


def daemon(
    name: str,
    *constraints: PlacementConstraint,
    strategy: str = "DAEMON",
    status: str = "ACTIVE",
) -> ServiceView:
    """A daemon service with `constraints` on the service."""
    return ServiceView(
        arn=f"arn:svc/{name}", name=name, strategy="DAEMON" if strategy == "DAEMON" else "REPLICA",
        task_definition_arn=f"arn:td/{name}:1", constraints=constraints, status=status,
    )


def task_def(name: str, *constraints: PlacementConstraint) -> TaskDefinitionView:
    """The task definition `arn:td/<name>:1` with `constraints`."""
    return TaskDefinitionView(arn=f"arn:td/{name}:1", family=name, network_mode="host",
                              requirements=Resources(128, 256), constraints=constraints)


def names(services: tuple[ServiceView, ...]) -> list[str]:
    """Service names, in order."""
    return [s.name for s in services]


@pytest.mark.parametrize(
    ("service_constraints", "task_def_constraints", "attributes", "groups", "expected"),
    [
        pytest.param((), (), {}, (), True, id="no-constraints-runs-everywhere"),
        pytest.param((member_of("attribute:ecs.instance-type =~ t3.*"),), (), {}, (), True,
                     id="service-constraint-holds"),
        pytest.param((member_of("attribute:ecs.instance-type == m5.large"),), (), {}, (), False,
                     id="service-constraint-fails"),
        pytest.param((), (member_of("attribute:gpu == true"),), {"gpu": "true"}, (), True,
                     id="task-definition-constraint-holds"),
        pytest.param((), (member_of("attribute:gpu == true"),), {}, (), False,
                     id="task-definition-constraint-fails-on-absent-attribute"),
        pytest.param((member_of("attribute:ecs.os-type == linux"),), (member_of("attribute:gpu exists"),),
                     {}, (), False, id="service-holds-but-task-definition-fails"),
        pytest.param((member_of("attribute:gpu exists"),), (member_of("attribute:ecs.os-type == linux"),),
                     {"gpu": "true"}, (), True, id="both-hold"),
        pytest.param((PlacementConstraint("distinctInstance"),), (PlacementConstraint("distinctInstance"),),
                     {}, (), True, id="distinct-instance-always-holds-for-a-daemon"),
        pytest.param((member_of("task:group == service:database"),), (), {}, ("service:database",), True,
                     id="task-group-affinity-holds"),
        pytest.param((member_of("task:group == service:database"),), (), {}, ("service:api",), False,
                     id="task-group-affinity-fails"),
        pytest.param((member_of("not(task:group == service:batch)"),), (), {}, ("service:batch",), False,
                     id="task-group-anti-affinity"),
    ],
)
def test_a_daemon_is_eligible_when_every_member_of_constraint_holds(
    service_constraints: tuple[PlacementConstraint, ...],
    task_def_constraints: tuple[PlacementConstraint, ...],
    attributes: dict[str, str],
    groups: tuple[str, ...],
    expected: bool,
) -> None:
    # GIVEN a daemon with constraints on the service and on its task definition
    service = daemon("agent", *service_constraints)
    definitions = {"arn:td/agent:1": task_def("agent", *task_def_constraints)}

    # WHEN judged on an instance with these attributes and task groups
    result = eligible_daemons(instance(**attributes), [service], definitions, groups)

    # THEN it is eligible exactly when every memberOf holds, and nothing is reported
    assert result == Eligibility((service,) if expected else (), ())


def test_only_active_daemon_services_are_judged_in_the_order_given() -> None:
    # GIVEN daemons, a replica service and an inactive daemon
    services = [daemon("log-router"), daemon("api", strategy="REPLICA"), daemon("old", status="INACTIVE"),
                daemon("metrics")]
    definitions = {f"arn:td/{s.name}:1": task_def(s.name) for s in services}

    # WHEN judged
    result = eligible_daemons(instance(), services, definitions)

    # THEN the active daemons are eligible, in order, and the others skipped without a report
    assert names(result.eligible) == ["log-router", "metrics"]
    assert result.invalid == ()


@pytest.mark.parametrize(
    ("service", "definition", "expected_message"),
    [
        pytest.param(daemon("agent", member_of("attribute:gpu ==")), task_def("agent"),
                     "service memberOf expression 'attribute:gpu ==': expected value at position 16",
                     id="invalid-service-expression"),
        pytest.param(daemon("agent"), task_def("agent", member_of("attribute:gpu = true")),
                     "task definition memberOf expression 'attribute:gpu = true'",
                     id="invalid-task-definition-expression"),
        pytest.param(daemon("agent", member_of("attribute:gpu == false"), member_of("flavour == x")),
                     task_def("agent"), "service memberOf expression 'flavour == x'",
                     id="reported-even-when-another-constraint-already-fails"),
        pytest.param(daemon("agent"), None, "task definition arn:td/agent:1 was not supplied",
                     id="unknown-task-definition"),
    ],
)
def test_a_daemon_that_cannot_be_judged_is_ineligible_and_reported(
    service: ServiceView, definition: TaskDefinitionView | None, expected_message: str,
) -> None:
    # GIVEN a daemon whose constraints cannot be evaluated, next to a sound one
    sound = daemon("log-router")
    definitions = {"arn:td/log-router:1": task_def("log-router")}
    if definition is not None:
        definitions[definition.arn] = definition

    # WHEN judged
    result = eligible_daemons(instance(), [service, sound], definitions)

    # THEN it is left out and reported by name; the sound daemon is unaffected
    assert names(result.eligible) == ["log-router"]
    assert len(result.invalid) == 1
    reported_service, message = result.invalid[0]
    assert reported_service == "agent"
    assert expected_message in message
    assert "\n" not in message


def test_invalid_constraints_are_named_tuples_of_service_and_message() -> None:
    # GIVEN / WHEN a report entry is built / THEN it reads by field and unpacks as (service, message)
    entry = InvalidConstraint("agent", "bad")
    assert (entry.service, entry.message) == ("agent", "bad")
    assert tuple(entry) == ("agent", "bad")


def task(
    group: str,
    last_status: str = "RUNNING",
    desired_status: str = "RUNNING",
    container_instance_arn: str = INSTANCE_ARN,
) -> TaskView:
    """A task of `group` on the instance."""
    return TaskView(arn=f"arn:task/{group}", group=group, task_definition_arn="arn:td/x:1",
                    last_status=last_status, desired_status=desired_status,
                    container_instance_arn=container_instance_arn)


@pytest.mark.parametrize(
    ("tasks", "expected_missing"),
    [
        pytest.param([], ["log-router", "metrics"], id="none-running-all-missing"),
        pytest.param([task("service:log-router"), task("service:metrics")], [], id="all-running"),
        pytest.param([task("service:log-router", "PENDING")], ["metrics"], id="pending-counts"),
        pytest.param([task("service:log-router", "PROVISIONING")], ["metrics"], id="provisioning-counts"),
        pytest.param([task("service:log-router", "ACTIVATING")], ["metrics"], id="activating-counts"),
        pytest.param([task("service:log-router", "RUNNING", "STOPPED")], ["log-router", "metrics"],
                     id="a-task-being-stopped-does-not-count"),
        pytest.param([task("service:log-router", "STOPPED", "STOPPED")], ["log-router", "metrics"],
                     id="a-stopped-task-does-not-count"),
        pytest.param([task("service:log-router", container_instance_arn="arn:other")],
                     ["log-router", "metrics"], id="a-task-on-another-instance-does-not-count"),
        pytest.param([task("family:log-router")], ["log-router", "metrics"],
                     id="a-standalone-task-of-the-same-family-does-not-count"),
        pytest.param([task("service:api"), task("service:metrics")], ["log-router"],
                     id="replicas-are-ignored"),
    ],
)
def test_missing_daemons_are_eligible_ones_without_a_live_task_here(
    tasks: list[TaskView], expected_missing: list[str],
) -> None:
    # GIVEN two eligible daemons and these tasks
    eligible = (daemon("log-router"), daemon("metrics"))

    # WHEN the missing ones are listed
    missing = missing_daemons(instance(), eligible, tasks)

    # THEN only daemons without a live task of their group on this instance are missing, in order
    assert names(missing) == expected_missing
