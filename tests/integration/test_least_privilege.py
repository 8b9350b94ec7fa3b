"""Least privilege, proved in actions and in scope against the deployment built from the synthesized template.

Small scenarios run with IAM enforced on every simulated call (one template, synthesized once), in a
world that also holds a cluster and an Auto Scaling group daemon-guard does not manage
(`conftest.build_unmanaged`). Together they exercise every statement of every role and every action
each statement grants (a wildcard must be used in full), each call through one statement only, and
the guard never asks for anything of the unmanaged cluster or group; dropping any one statement
denies a call the scenarios made.

Scope: probes made with each function's own role-bound clients ask for what no role may read or
touch (the unmanaged cluster and group, a request naming one cluster and resources of the other,
other tables, buses, sources, queues, functions, executions and log groups) and expect AccessDenied.
A mutation test (slow) widens each statement in turn (its resources to "*", each condition dropped,
its services' wildcard added) and fails unless these checks catch every mutant. A static check
holds every action and condition key of the template to the Service Authorization Reference.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from daemon_guard.core.guard_events import SOURCE

from bench.scenarios import ClusterSpec, build_cluster, keep_backlog
from sim.deployment import DeployedFunction, GuardDeployment
from sim.ecs import SimInstance, profile_params
from sim.ecs_api import ApiFaults
from sim.eventbridge import FaultPlan
from sim.iam import (
    Authorizer,
    Request,
    Statement,
    action_facts,
    actions_matching,
    condition_keys,
    fill_arn,
    statements_of,
)
from sim.template import DeploymentFacts, deployment_facts, facts_from_template, synthesized_template
from sim.world import World, WorldOptions
from tests.integration.conftest import UNMANAGED_CLUSTER, UNMANAGED_GROUP, build_unmanaged, config_for

# Long simulator stories: `make test` runs them, `make test-fast` leaves them out.
pytestmark = pytest.mark.slow

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "events"
STEP_S = 20.0

# The ECS behaviour the scenarios run: daemons starve and stop as users report it.
AS_REPORTED = profile_params("as-reported")


def document() -> dict[str, Any]:
    """The one configuration: preempt mode, both hooks, a 30 s heartbeat, a 400 s launch gate, and the full
    audit every minute (so the short stories reach the reconciler's audit paths, not only its per-run look)."""
    doc = config_for(["prod-asg"], "preempt", terminate_hook=True, launch_hook=True,
                     launchGateTimeoutSeconds=400, auditCycleMinutes=1)
    doc["clusters"][0]["autoScalingGroups"][0]["heartbeatTimeoutSeconds"] = 30
    return doc


@dataclass
class Scenario:
    """A small story: `setup` builds the world and deployment; then the clock runs to `until` in steps."""

    name: str
    setup: Callable[[World, GuardDeployment], None]
    until: float
    options: WorldOptions
    cluster: ClusterSpec = field(default_factory=lambda: ClusterSpec(replica_services=8, desired_per_service=4))


def _scale_out_and_in(world: World, deployment: GuardDeployment) -> None:
    """Launches under a replica backlog with half the events lost (intake, reconciler and launch gates
    evict), then a scale-in (drains)."""
    keep_backlog(world, "prod", 6, 5.0, until=400.0)
    world.asg.scale_out("prod-asg", 8, 1.0)
    world.clock.after(120.0, lambda: world.asg.scale_out("prod-asg", 16, 2.0))
    world.clock.after(420.0, lambda: world.asg.scale_in("prod-asg", 2))


def _gates_alone(world: World, deployment: GuardDeployment) -> None:
    """No ECS event reaches the intake: the launch gates find the missing daemons and make room."""
    world.ecs.listeners.remove(world._on_ecs)
    keep_backlog(world, "prod", 6, 5.0, until=150.0)
    world.asg.scale_out("prod-asg", 4, 1.0)


def _daemon_never_fits(world: World, deployment: GuardDeployment) -> None:
    """A daemon no instance can hold: the launch gate waits out its 400 s (a long history)."""
    td = world.ecs.register_task_definition("huge-agent", [{"name": "huge", "cpu": 64, "memory": 20000}])
    world.ecs.create_service("prod", "huge-agent", td, daemon=True)
    world.asg.scale_out("prod-asg", 1, 1.0)


def _blocked_drain(world: World, deployment: GuardDeployment) -> None:
    """A service that may not lose a task holds a drain to its deadline (heartbeats, a long history)."""
    pinned = world.ecs.register_task_definition("pinned", [{"name": "p", "cpu": 128, "memory": 128}])
    world.ecs.create_service("prod", "pinned", pinned, desired_count=2, minimum_healthy_percent=100,
                             maximum_percent=100)
    world.asg.scale_out("prod-asg", 1, 1.0)
    world.clock.after(120.0, lambda: world.asg.scale_in("prod-asg", 1))


def _daemons_crash(world: World, deployment: GuardDeployment) -> None:
    """A daemon crashes (the intake hears it); later another crashes unheard, just before a reconcile."""
    world.asg.scale_out("prod-asg", 2, 1.0)

    def crash(heard: bool) -> None:
        daemon = next(t for t in world.ecs.tasks.values() if t.group == "service:cwagent"
                      and t.last_status == "RUNNING" and t.desired_status == "RUNNING")
        if not heard:
            world.ecs.listeners.remove(world._on_ecs)
        world.ecs.stop_task(daemon, "Essential container in task exited", "EssentialContainerExited")
        if not heard:
            world.clock.after(1.0, lambda: world.ecs.listeners.append(world._on_ecs))

    world.clock.after(150.0, lambda: crash(True))
    world.clock.after(239.5, lambda: crash(False))


def _spot_and_warm_pool(world: World, deployment: GuardDeployment) -> None:
    """A Spot interruption warning (the intake finds the instance's cluster), a warm-pool entry and a
    daemon's placement failure."""
    world.asg.scale_out("prod-asg", 1, 1.0)
    world.clock.after(100.0, lambda: world.asg.spot_interruption(next(iter(world.asg.groups["prod-asg"].instances))))
    event = json.loads((FIXTURES / "asg-launch-lifecycle-action-warmpool-ec2-to-warmpool."
                                   "awsdocs-asg-userguide-2023.json").read_text())
    event["account"], event["region"] = world.account, world.region
    event["resources"] = [world.asg_arn("prod-asg")]
    event["detail"].update(AutoScalingGroupName="prod-asg", LifecycleHookName="daemon-guard-launch")
    deployment.deliver(copy.deepcopy(event))
    # ECS cannot place a daemon and names no instance: the intake audits the cluster (groups included).
    failure = json.loads((FIXTURES / "ecs-service-action-placement-failure-ec2-resource-cpu."
                                     "awsdocs-ecs-devguide-2023.json").read_text())
    failure["account"], failure["region"] = world.account, world.region
    failure["resources"] = [next(s.arn for s in world.ecs.services.values() if s.name == "xray-daemon")]
    failure["detail"]["clusterArn"] = world.ecs.cluster_arn("prod")
    del failure["detail"]["containerInstanceArns"]
    world.clock.after(50.0, lambda: deployment.deliver(failure))


def _warm_pool_entry_unheard(world: World, deployment: GuardDeployment) -> None:
    """An instance enters the warm pool and no Auto Scaling event is delivered: the reconciler finds it."""
    world.asg.listeners.remove(world._on_asg)
    world.clock.after(40.0, lambda: world.asg.add_to_warm_pool("prod-asg", 1))  # 20 s before a reconcile


def _scheduled_change(world: World, deployment: GuardDeployment) -> None:
    """AWS Health schedules a stop of one instance: it drains, and the drain has its group replace it."""
    world.asg.scale_out("prod-asg", 1, 1.0)
    world.clock.after(100.0, lambda: world.asg.scheduled_change(
        [next(iter(world.asg.groups["prod-asg"].instances))], 900.0))


def _ecs_failing(world: World, deployment: GuardDeployment) -> None:
    """ECS answers every call with a server error: failed events go to the dead-letter queue."""
    world.asg.scale_out("prod-asg", 1, 1.0)


SCENARIOS = (
    Scenario("scale out and in under a backlog", _scale_out_and_in, 700.0,
             WorldOptions(seed=11, ecs=AS_REPORTED, delivery=FaultPlan(loss_rate=0.5))),
    # Replicas visible to the scheduler at once and a slow daemon cycle: replicas often land first.
    Scenario("launch gates alone", _gates_alone, 150.0,
             WorldOptions(seed=17, ecs=replace(AS_REPORTED, replica_visibility_median_s=0.5, daemon_cycle_s=60.0))),
    Scenario("a launch gate that times out", _daemon_never_fits, 480.0, WorldOptions(seed=12, ecs=AS_REPORTED)),
    Scenario("a blocked drain", _blocked_drain, 1200.0, WorldOptions(seed=15, ecs=AS_REPORTED)),
    Scenario("daemons crash", _daemons_crash, 300.0, WorldOptions(seed=16, ecs=AS_REPORTED)),
    Scenario("spot warning and warm pool", _spot_and_warm_pool, 200.0, WorldOptions(seed=13, ecs=AS_REPORTED)),
    Scenario("a warm-pool entry nobody heard of", _warm_pool_entry_unheard, 70.0,
             WorldOptions(seed=18, ecs=AS_REPORTED)),
    # No replica services: nothing holds the drain, which ends in SetInstanceHealth.
    Scenario("a Health scheduled change", _scheduled_change, 400.0, WorldOptions(seed=19, ecs=AS_REPORTED),
             ClusterSpec(replica_services=0)),
    # The intake retries a server error while its invocation has time (up to its Timeout less a reserve), so an
    # event's three deliveries take minutes before it reaches the dead-letter queue.
    Scenario("ECS failing every call", _ecs_failing, 600.0,
             WorldOptions(seed=14, ecs=AS_REPORTED, api_faults=ApiFaults(server_error_rate=1.0))),
)


@pytest.fixture(scope="module")
def facts() -> DeploymentFacts:
    return deployment_facts(document(), World(WorldOptions(ecs=AS_REPORTED)).account, "us-east-1")


Call = tuple[str, str, str]  # (role, operation, its parameters as JSON)


def record_calls(deployment: GuardDeployment) -> list[Call]:
    """From now on, every call each function makes through its role-bound clients, with its parameters."""
    calls: list[Call] = []
    for fn in deployment.functions.values():
        for client in fn.clients.values():
            event_id = client.meta.service_model.service_id.hyphenize()

            def note(params: dict[str, Any], model: Any, role: str = fn.facts.role_arn, **_: Any) -> None:
                calls.append((role, model.name, json.dumps(params, default=str, sort_keys=True)))
            client.meta.events.register(f"before-parameter-build.{event_id}", note,
                                        unique_id=f"least-privilege-calls-{event_id}")
    return calls


@dataclass
class Run:
    """One scenario run: the deployment (closed) and every call the guard made in it."""

    deployment: GuardDeployment
    calls: list[Call]

    @property
    def authorizer(self) -> Authorizer:
        return self.deployment.authorizer


def run(scenario: Scenario, facts: DeploymentFacts, *, drop: tuple[str, str] | None = None,
        config: Callable[[], dict[str, Any]] = document) -> Run:
    """Run one scenario beside the unmanaged cluster and group (closed after); with `drop`, stop at the
    first AccessDenied of that role."""
    world = World(scenario.options)
    build_cluster(world, scenario.cluster)
    build_unmanaged(world)
    deployment = GuardDeployment(world, config(), facts=facts, keep_requests=True)
    calls = record_calls(deployment)
    try:
        if drop is not None:
            deployment.authorizer = deployment.authorizer.without(*drop)
        scenario.setup(world, deployment)
        t = 0.0
        while t < scenario.until:
            t = min(t + STEP_S, scenario.until)
            world.clock.run_until(t)
            if drop is not None and any(role == drop[0] for role, _ in deployment.records.access_denied):
                break
    finally:
        deployment.close()
    return Run(deployment, calls)


@pytest.fixture(scope="module")
def coverage(facts: DeploymentFacts) -> dict[str, Run]:
    """Each scenario, run with every statement in place."""
    return {scenario.name: run(scenario, facts) for scenario in SCENARIOS}


def statements(facts: DeploymentFacts) -> list[tuple[str, Statement]]:
    """(role, statement) for every identity-policy statement of the template."""
    return [(role, s) for role, listed in statements_of(facts.policies).items() for s in listed]


def short(role: str) -> str:
    return role.rsplit("/", 1)[-1]


def asked(runs: Iterable[Run]) -> list[tuple[str, Request]]:
    """Every distinct request the runs made, (role, request)."""
    out: dict[Any, tuple[str, Request]] = {}
    for r in runs:
        out.update(r.authorizer.requests)
    return list(out.values())


def replayed(facts: DeploymentFacts, requests: Iterable[tuple[str, Request]]) -> Authorizer:
    """The template's statements, having decided `requests` again (what each statement was used for)."""
    authorizer = Authorizer(statements_of(facts.policies))
    authorizer.replay(requests)
    return authorizer


def statement_problems(authorizer: Authorizer, role: str, statement: Statement) -> list[str]:
    """What the calls `authorizer` decided say against one statement: an action its patterns name (a
    wildcard expanded by the Service Authorization Reference) that no call used through it, or a call
    another statement of the role allowed too (one of them is broader than the call needs)."""
    used = {action.lower() for r, label, action in authorizer.used_actions if r == role and label == statement.label}
    problems = [f"{short(role)} {statement.label}: {action} is never called through it"
                for pattern in statement.actions for action in actions_matching(pattern) or (pattern,)
                if action.lower() not in used]
    problems += [f"{short(role)} {action} is allowed by {' and '.join(labels)} ({n} calls)"
                 for (r, action, labels), n in authorizer.overlaps.items() if r == role and statement.label in labels]
    return problems


def test_the_scenarios_run_clean_with_the_template_as_synthesized(coverage: dict[str, Run]) -> None:
    # GIVEN the template's policies / WHEN the scenarios run / THEN no call anywhere is denied
    for name, result in coverage.items():
        assert result.deployment.records.access_denied == [], name


def unmanaged_marks(world: World) -> set[str]:
    """What names the unmanaged cluster or group in a request: its names and ARNs, its instances, tasks
    and services (their ARNs carry ``/shared/``), the EC2 ids of its group's instances."""
    marks = {world.ecs.cluster_arn(UNMANAGED_CLUSTER), f'"{UNMANAGED_CLUSTER}"', f"/{UNMANAGED_CLUSTER}/",
             UNMANAGED_GROUP, *world.asg.groups[UNMANAGED_GROUP].instances}
    return marks | {i.ec2_instance_id for i in world.ecs.instances.values() if i.cluster == UNMANAGED_CLUSTER}


def test_the_guard_never_asks_anything_of_the_unmanaged_cluster_or_group(coverage: dict[str, Run]) -> None:
    # GIVEN each scenario's world, which also holds a cluster and group daemon-guard does not manage
    attempts: list[str] = []
    for name, result in coverage.items():
        marks = unmanaged_marks(result.deployment.world)
        assert result.deployment.world.asg.groups[UNMANAGED_GROUP].instances, name
        # WHEN the guard ran its scenario / THEN no call's parameters and no request IAM saw names it
        texts = [(short(role), op, text) for role, op, text in result.calls]
        texts += [(short(role), request.action, " ".join([*request.resources, *request.context.values()]))
                  for role, request in result.authorizer.requests.values()]
        attempts += [f"{name}: {role} {op} {text}" for role, op, text in texts if any(m in text for m in marks)]
    assert attempts == []


def test_every_statement_and_every_action_it_grants_is_used_through_it_alone(
        facts: DeploymentFacts, coverage: dict[str, Run]) -> None:
    # GIVEN every request the scenarios made, decided again against every statement of its role
    authorizer = replayed(facts, asked(coverage.values()))
    # THEN each action a statement names (each one a wildcard names) was called through it, and no call
    # was allowed by two statements: an action the code never calls, or a broad one added to a
    # statement in use, fails here
    problems = [p for role, statement in statements(facts) for p in statement_problems(authorizer, role, statement)]
    assert problems == [], "\n".join(problems)


def test_dropping_any_statement_denies_a_call_the_scenarios_made(facts: DeploymentFacts,
                                                                  coverage: dict[str, Run]) -> None:
    # GIVEN every request the scenarios made and each statement in turn dropped from its role
    # WHEN the role's requests are decided again / THEN one is denied. A narrower policy changes no
    # decision before it, and a seeded scenario runs the same up to there (the slow test below runs them)
    requests = asked(coverage.values())
    full = Authorizer(statements_of(facts.policies))
    survived = [f"{short(role)} {statement.label}" for role, statement in statements(facts)
                if not full.without(role, statement.label).replay(r for r in requests if r[0] == role)]
    assert survived == []


@pytest.mark.slow
def test_dropping_any_statement_makes_a_scenario_fail_with_access_denied(
        facts: DeploymentFacts, coverage: dict[str, Run]) -> None:
    # GIVEN each statement in turn dropped from its role / WHEN the first scenario that used it runs again
    # THEN a call of that role is denied
    survived: list[str] = []
    for role, statement in statements(facts):
        scenario = next(s for s in SCENARIOS if coverage[s.name].authorizer.used[(role, statement.label)])
        result = run(scenario, facts, drop=(role, statement.label))
        if not any(r == role for r, _ in result.deployment.records.access_denied):
            survived.append(f"{short(role)} {statement.label} ({scenario.name})")
    assert survived == []


def test_every_action_and_condition_key_in_the_template_exists_for_that_action() -> None:
    # GIVEN every identity and resource policy statement of the synthesized template
    template = synthesized_template(document())
    problems: list[str] = []
    for logical, resource in template["Resources"].items():
        props = resource.get("Properties", {})
        documents = [props.get("PolicyDocument"), props.get("KeyPolicy")]
        for doc in filter(None, documents):
            for statement in doc["Statement"]:
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                for action in actions:
                    # THEN the action exists, and each condition key is global or one the action supports
                    if "*" not in action and action_facts(action) is None:
                        problems.append(f"{logical}: {action} does not exist")
                        continue
                    for keys in statement.get("Condition", {}).values():
                        for key in keys:
                            if not key.startswith("aws:") and key not in condition_keys(action):
                                problems.append(f"{logical}: {action} has no condition key {key}")
    assert problems == []


# ---- scope: what no role may read or touch ----------------------------------------------------------

ACCESS_DENIED = ("AccessDenied", "AccessDeniedException")
Ask = Callable[[DeployedFunction, Authorizer], bool]


@dataclass(frozen=True)
class Probe:
    """A request no role may make; `denied(function, authorizer)` makes it as the function's role."""

    what: str
    denied: Ask


def by_client(service: str, operation: str, **params: Any) -> Ask:
    """The call, made with the function's own role-bound client: denied when AWS's AccessDenied came back."""
    def denied(fn: DeployedFunction, _: Authorizer) -> bool:
        try:
            getattr(fn.clients[service], operation)(**params)
        except ClientError as error:
            return error.response["Error"]["Code"] in ACCESS_DENIED
        except Exception:  # IAM let it through and the service refused it: not a denial
            return False
        return False
    return denied


def by_authorizer(action: str, resource: str) -> Ask:
    """For what the role's code reaches through Lambda itself (queues, logs, executions): IAM's decision."""
    def denied(fn: DeployedFunction, authorizer: Authorizer) -> bool:
        return not authorizer.evaluate(fn.facts.role_arn, Request(action, (resource,))).allowed
    return denied


def probes(world: World) -> list[Probe]:
    """Requests on the unmanaged cluster and group (and requests naming one cluster with resources of
    the other, which only the ``ecs:cluster`` condition or only the resource ARNs deny), and on other
    tables, buses, sources, functions, executions, queues and log groups of the account."""
    ecs = world.ecs

    def instance(cluster: str) -> SimInstance:
        return next(i for i in ecs.instances.values() if i.cluster == cluster)

    def task(cluster: str) -> str:
        return next(t.arn for t in ecs.tasks.values() if t.cluster == cluster)

    def service(cluster: str) -> str:
        return next(s.arn for s in ecs.services.values() if s.cluster == cluster)

    def on_resources(how: str, cluster: str, of: str) -> list[Probe]:
        inst = instance(of).arn
        attribute = {"name": "daemon-guard.gate", "value": "open", "targetType": "container-instance",
                     "targetId": inst}
        calls = [("describe_container_instances", dict(containerInstances=[inst])),
                 ("describe_tasks", dict(tasks=[task(of)])), ("describe_services", dict(services=[service(of)])),
                 ("get_task_protection", dict(tasks=[task(of)])), ("stop_task", dict(task=task(of), reason="probe")),
                 ("put_attributes", dict(attributes=[attribute])),
                 ("update_container_instances_state", dict(containerInstances=[inst], status="DRAINING"))]
        return [Probe(f"ecs {op} {how}", by_client("ecs", op, cluster=cluster, **params)) for op, params in calls]

    ours, theirs = "prod", UNMANAGED_CLUSTER
    out = [Probe(f"ecs {op} in the unmanaged cluster{what}", by_client("ecs", op, cluster=theirs, **params))
           for op, params, what in (("list_container_instances", {}, ""), ("list_tasks", {}, ""),
                                    ("list_services", {}, ""),
                                    ("list_tasks", dict(containerInstance=instance(theirs).arn), ", of an instance"))]
    out += on_resources("in the unmanaged cluster", theirs, theirs)
    out += on_resources("naming the unmanaged cluster, on managed resources", theirs, ours)
    out += on_resources("naming the managed cluster, on unmanaged resources", ours, theirs)

    their_instance = next(iter(world.asg.groups[UNMANAGED_GROUP].instances))
    hook = dict(AutoScalingGroupName=UNMANAGED_GROUP, LifecycleHookName="daemon-guard-terminate",
                InstanceId=their_instance)
    out += [Probe("autoscaling CompleteLifecycleAction on the unmanaged group", by_client(
                "autoscaling", "complete_lifecycle_action", LifecycleActionResult="CONTINUE", **hook)),
            Probe("autoscaling RecordLifecycleActionHeartbeat on the unmanaged group", by_client(
                "autoscaling", "record_lifecycle_action_heartbeat", **hook)),
            Probe("autoscaling SetInstanceHealth in the unmanaged group", by_client(
                "autoscaling", "set_instance_health", InstanceId=their_instance, HealthStatus="Unhealthy"))]

    def elsewhere(service: str, kind: str, **values: str) -> str:
        return fill_arn(service, kind, "aws", world.region, world.account, **values)

    entry = {"DetailType": "probe", "Detail": "{}"}
    out += [Probe("lambda Invoke of another function", by_client(
                "lambda", "invoke", FunctionName=elsewhere("lambda", "function", FunctionName="shared-fn") + ":live",
                InvocationType="Event", Payload=b"{}")),
            Probe("events PutEvents on another bus", by_client(
                "events", "put_events", Entries=[{**entry, "Source": SOURCE, "EventBusName": "shared-bus"}])),
            Probe("events PutEvents from another source", by_client(
                "events", "put_events", Entries=[{**entry, "Source": "shared.app"}]))]
    execution = elsewhere("lambda", "durable execution", FunctionName="shared-fn", Version="1",
                          ExecutionName="probe", ExecutionId="1")
    table = elsewhere("dynamodb", "table", TableName="shared-table")
    stream = elsewhere("logs", "log-stream", LogGroupName="shared-logs", LogStreamName="probe")
    on_arns = [*((f"lambda:{a}", execution) for a in ("SendDurableExecutionCallbackSuccess",
                                                       "CheckpointDurableExecution", "GetDurableExecutionState")),
               *((f"dynamodb:{a}", table) for a in ("GetItem", "PutItem", "UpdateItem", "DeleteItem", "BatchGetItem",
                                                    "BatchWriteItem", "Query", "Scan")),
               ("sqs:SendMessage", elsewhere("sqs", "queue", QueueName="shared-queue")),
               ("logs:CreateLogStream", stream), ("logs:PutLogEvents", stream)]
    return out + [Probe(f"{action} on {arn}", by_authorizer(action, arn)) for action, arn in on_arns]


@dataclass
class Probed:
    """A small world with the managed and the unmanaged cluster and group, where daemon-guard ran for a
    while (then closed: its role-bound clients still call the world, as the function's role would)."""

    world: World
    deployment: GuardDeployment
    probes: list[Probe]

    def leaks(self, authorizer: Authorizer, roles: Iterable[str] | None = None) -> list[str]:
        """Each probe one of `roles` (default: every function's) was not denied, with `authorizer` deciding."""
        wanted = None if roles is None else set(roles)
        saved, self.deployment.authorizer = self.deployment.authorizer, authorizer
        try:
            return [f"{fn.key}: {probe.what}" for fn in self.deployment.functions.values()
                    if wanted is None or fn.facts.role_arn in wanted
                    for probe in self.probes if not probe.denied(fn, authorizer)]
        finally:
            self.deployment.authorizer = saved


@pytest.fixture(scope="module")
def probed(facts: DeploymentFacts) -> Probed:
    world = World(WorldOptions(seed=31, ecs=AS_REPORTED))
    build_cluster(world, ClusterSpec(replica_services=2, desired_per_service=2))
    build_unmanaged(world, instances=1)
    deployment = GuardDeployment(world, document(), facts=facts)
    world.asg.scale_out("prod-asg", 1, 1.0)
    world.clock.run_until(150.0)
    deployment.close()  # one deployment at a time holds moto's state table
    return Probed(world, deployment, probes(world))


def test_no_role_may_read_or_touch_the_unmanaged_cluster_group_or_anything_else(
        facts: DeploymentFacts, probed: Probed) -> None:
    # GIVEN a world with the managed cluster and group, and an unmanaged cluster and group beside them
    assert probed.deployment.records.access_denied == []
    # WHEN each function's role asks for what it must not read or touch, with its own clients
    # THEN every request is denied with AWS's AccessDenied
    leaks = probed.leaks(Authorizer(statements_of(facts.policies)))
    assert leaks == [], "\n".join(leaks)


# ---- gate mode with drainOrder: tiers -------------------------------------------------------------
# The grants only this configuration has (gates opened by the reflex, gate and tier marks set by the
# drain) are proved the same way on their own template.

GATED_STATEMENTS = ("EcsOpenGates", "EcsDrainAttributes")


def gated_document() -> dict[str, Any]:
    """Gate mode, drainOrder tiers, both hooks."""
    return config_for(["prod-asg"], "gate", terminate_hook=True, launch_hook=True, drainOrder="tiers")


def _gated_scale_out_and_in(world: World, deployment: GuardDeployment) -> None:
    """Gated replicas wait for the gates the guard opens; then a scale-in drains tier by tier."""
    keep_backlog(world, "prod", 4, 5.0, until=300.0)
    world.asg.scale_out("prod-asg", 4, 1.0)
    world.clock.after(300.0, lambda: world.asg.scale_in("prod-asg", 2))


GATED = Scenario("gated scale out and tiered drains", _gated_scale_out_and_in, 900.0,
                 WorldOptions(seed=21, ecs=AS_REPORTED),
                 ClusterSpec(replica_services=8, desired_per_service=4, gate_attribute="daemon-guard.gate",
                             tier_constraints=True))


@pytest.fixture(scope="module")
def gated_facts() -> DeploymentFacts:
    return deployment_facts(gated_document(), World(WorldOptions(ecs=AS_REPORTED)).account, "us-east-1")


@pytest.fixture(scope="module")
def gated(gated_facts: DeploymentFacts) -> Run:
    """The gated scenario, run with every statement in place."""
    return run(GATED, gated_facts, config=gated_document)


def gated_statements(facts: DeploymentFacts) -> list[tuple[str, Statement]]:
    return [(role, st) for role, st in statements(facts) if st.label.rsplit("/", 1)[-1] in GATED_STATEMENTS]


def test_gate_and_tier_grants_are_each_needed_by_the_gated_configuration(
        gated_facts: DeploymentFacts, gated: Run) -> None:
    # GIVEN the gate-mode, drainOrder-tiers template, and the scenario run with every statement in place
    assert gated.deployment.records.access_denied == []
    requests = asked([gated])
    authorizer = replayed(gated_facts, requests)
    # THEN the drain marked its instances and some function opened gates through these statements, each
    # action through one statement alone
    used = [(role, st) for role, st in gated_statements(gated_facts) if authorizer.used[(role, st.label)]]
    assert {st.label.rsplit("/", 1)[-1] for _, st in used} == set(GATED_STATEMENTS)
    assert [p for role, st in used for p in statement_problems(authorizer, role, st)] == []
    # and WHEN each used one is dropped in turn THEN a request of that role is denied
    full = Authorizer(statements_of(gated_facts.policies))
    assert [st.label for role, st in used
            if not full.without(role, st.label).replay(r for r in requests if r[0] == role)] == []


@pytest.mark.slow
def test_dropping_a_gate_or_tier_grant_makes_the_gated_scenario_fail_with_access_denied(
        gated_facts: DeploymentFacts, gated: Run) -> None:
    # GIVEN each gate and tier statement the gated scenario used, dropped in turn / WHEN it runs again
    # THEN that role is denied a call
    used = [(role, st) for role, st in gated_statements(gated_facts) if gated.authorizer.used[(role, st.label)]]
    survived = [f"{short(role)} {st.label}" for role, st in used
                if not any(r == role for r, _ in run(GATED, gated_facts, drop=(role, st.label),
                                                     config=gated_document).deployment.records.access_denied)]
    assert survived == []


# ---- mutation: every widened statement is caught --------------------------------------------------


@dataclass(frozen=True)
class Mutant:
    """The template with one statement of one policy widened."""

    name: str
    template: dict[str, Any]


Change = Callable[[dict[str, Any]], None]


def widenings(statement: Mapping[str, Any]) -> list[tuple[str, Change]]:
    """The ways to widen one statement: its resources to "*" (when they are not already), each condition
    key dropped, and each of its services' wildcard (``ecs:*``) added to its actions."""
    out: list[tuple[str, Change]] = []
    if statement.get("Resource") not in ("*", ["*"]):
        out.append(('Resource "*"', lambda st: st.update(Resource="*")))
    for operator, keys in statement.get("Condition", {}).items():
        for key in keys:
            def drop(st: dict[str, Any], operator: str = operator, key: str = key) -> None:
                del st["Condition"][operator][key]
                st["Condition"] = {op: ks for op, ks in st["Condition"].items() if ks}
                if not st["Condition"]:
                    del st["Condition"]
            out.append((f"without {operator} {key}", drop))
    actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
    for prefix in sorted({a.split(":", 1)[0] for a in actions}):
        def broaden(st: dict[str, Any], wildcard: str = f"{prefix}:*") -> None:
            st["Action"] = [*(st["Action"] if isinstance(st["Action"], list) else [st["Action"]]), wildcard]
        out.append((f"{prefix}:* added", broaden))
    return out


def mutants(template: dict[str, Any], only: Callable[[Mapping[str, Any]], bool] = lambda _: True) -> Iterator[Mutant]:
    """The template with each Allow statement of each identity policy (that `only` accepts) widened in
    each way `widenings` knows, one at a time (the parsed template patched in memory)."""
    for logical, resource in template["Resources"].items():
        if resource["Type"] not in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            continue
        for index, statement in enumerate(resource["Properties"]["PolicyDocument"]["Statement"]):
            if statement.get("Effect", "Allow") != "Allow" or not only(statement):
                continue
            for what, change in widenings(statement):
                policy = copy.deepcopy(resource)
                change(policy["Properties"]["PolicyDocument"]["Statement"][index])
                yield Mutant(f"{logical}/{statement.get('Sid', index)}: {what}",
                             {**template, "Resources": {**template["Resources"], logical: policy}})


def changed_statements(base: DeploymentFacts, mutated: DeploymentFacts) -> list[tuple[str, Statement]]:
    """(role, statement) of `mutated` that differ from `base`'s."""
    before = statements_of(base.policies)
    return [(role, st) for role, listed in statements_of(mutated.policies).items() for st in listed
            if st not in before.get(role, [])]


def surviving(template: dict[str, Any], base: DeploymentFacts, requests: list[tuple[str, Request]],
              probed: Probed, only: Callable[[Mapping[str, Any]], bool] = lambda _: True) -> tuple[int, list[str]]:
    """(mutants, those no check caught): each mutant's statement checked against every request its role
    made (`statement_problems`: an action never used through it, a call two statements allow), and its
    role's probes made with the mutant's policies (`Probed.leaks`). Widening changes no decision on a
    request that was allowed, so each scenario would run as it did: deciding its requests again is
    running it again."""
    count, survivors = 0, []
    for mutant in mutants(template, only):
        count += 1
        mutated = facts_from_template(mutant.template, probed.world.account, probed.world.region)
        changed = changed_statements(base, mutated)
        assert changed, mutant.name
        roles = {role for role, _ in changed}
        authorizer = Authorizer(statements_of(mutated.policies))
        authorizer.replay(r for r in requests if r[0] in roles)
        problems = [p for role, st in changed for p in statement_problems(authorizer, role, st)]
        if not problems and not probed.leaks(authorizer, roles):
            survivors.append(mutant.name)
    return count, survivors


@pytest.mark.slow
def test_every_widened_statement_is_caught_by_a_scope_check(
        facts: DeploymentFacts, coverage: dict[str, Run], probed: Probed,
        gated_facts: DeploymentFacts, gated: Run) -> None:
    # GIVEN the template's own statements pass every scope check
    started = time.monotonic()
    requests = asked(coverage.values())
    assert probed.leaks(Authorizer(statements_of(facts.policies))) == []
    # WHEN each statement is widened in turn (resources to "*", a condition dropped, a service wildcard
    # added): of the preempt template, and the gate and tier grants of the gated one
    count, survivors = surviving(synthesized_template(document()), facts, requests, probed)
    gated_count, gated_survivors = surviving(
        synthesized_template(gated_document()), gated_facts, asked([gated]), probed,
        only=lambda st: str(st.get("Sid")) in GATED_STATEMENTS)
    print(f"{count + gated_count} mutants checked in {time.monotonic() - started:.1f} s")
    # THEN a check catches every one
    assert count > 100 and gated_count >= 6
    assert survivors + gated_survivors == []
