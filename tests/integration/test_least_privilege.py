"""Least privilege, proved against the deployment built from the synthesized template.

Small scenarios run with IAM enforced on every simulated call (one template, synthesized
once). Together they exercise every statement of every role, and every action each statement
grants; dropping any one statement makes the scenario that used it hit AccessDenied. A static
check holds every action and condition key of the template to the Service Authorization Reference.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bench.scenarios import ClusterSpec, build_cluster, keep_backlog
from sim.deployment import GuardDeployment
from sim.ecs import EcsParams
from sim.ecs_api import ApiFaults
from sim.eventbridge import FaultPlan
from sim.iam import Authorizer, Statement, action_facts, condition_keys, statements_of
from sim.template import DeploymentFacts, deployment_facts, synthesized_template
from sim.world import World, WorldOptions
from tests.integration.conftest import config_for

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "events"
STEP_S = 20.0


def document() -> dict[str, Any]:
    """The one configuration: preempt mode, both hooks, a 30 s heartbeat, a 400 s launch gate."""
    doc = config_for(["prod-asg"], "preempt", terminate_hook=True, launch_hook=True,
                     launchGateTimeoutSeconds=400)
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
             WorldOptions(seed=11, delivery=FaultPlan(loss_rate=0.5))),
    # Replicas visible to the scheduler at once and a slow daemon cycle: replicas often land first.
    Scenario("launch gates alone", _gates_alone, 150.0,
             WorldOptions(seed=17, ecs=EcsParams(replica_visibility_median_s=0.5, daemon_cycle_s=60.0))),
    Scenario("a launch gate that times out", _daemon_never_fits, 480.0, WorldOptions(seed=12)),
    Scenario("a blocked drain", _blocked_drain, 1200.0, WorldOptions(seed=15)),
    Scenario("daemons crash", _daemons_crash, 300.0, WorldOptions(seed=16)),
    Scenario("spot warning and warm pool", _spot_and_warm_pool, 200.0, WorldOptions(seed=13)),
    Scenario("a warm-pool entry nobody heard of", _warm_pool_entry_unheard, 70.0, WorldOptions(seed=18)),
    Scenario("a Health scheduled change", _scheduled_change, 400.0, WorldOptions(seed=19)),
    Scenario("ECS failing every call", _ecs_failing, 240.0,
             WorldOptions(seed=14, api_faults=ApiFaults(server_error_rate=1.0))),
)


@pytest.fixture(scope="module")
def facts() -> DeploymentFacts:
    return deployment_facts(document(), World().account, World().region)


def run(scenario: Scenario, facts: DeploymentFacts, *, drop: tuple[str, str] | None = None) -> GuardDeployment:
    """Run one scenario (closed after); with `drop`, stop at the first AccessDenied of that role."""
    world = World(scenario.options)
    build_cluster(world, scenario.cluster)
    deployment = GuardDeployment(world, document(), facts=facts)
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
    return deployment


@pytest.fixture(scope="module")
def coverage(facts: DeploymentFacts) -> Iterator[dict[str, tuple[Authorizer, GuardDeployment]]]:
    """Each scenario, run with every statement in place."""
    out: dict[str, tuple[Authorizer, GuardDeployment]] = {}
    for scenario in SCENARIOS:
        deployment = run(scenario, facts)
        out[scenario.name] = (deployment.authorizer, deployment)
    yield out


def statements(facts: DeploymentFacts) -> list[tuple[str, Statement]]:
    """(role, statement) for every identity-policy statement of the template."""
    return [(role, s) for role, listed in statements_of(facts.policies).items() for s in listed]


def test_the_scenarios_run_clean_with_the_template_as_synthesized(
        coverage: dict[str, tuple[Authorizer, GuardDeployment]]) -> None:
    # GIVEN the template's policies / WHEN the scenarios run / THEN no call anywhere is denied
    for name, (_, deployment) in coverage.items():
        assert deployment.records.access_denied == [], name


def test_every_statement_and_every_action_it_grants_is_used(
        facts: DeploymentFacts, coverage: dict[str, tuple[Authorizer, GuardDeployment]]) -> None:
    # GIVEN what the scenarios asked of IAM / THEN each statement granted something, and each action
    # a statement lists was called through it: an action the code never calls fails here
    used: set[tuple[str, str, str]] = set()
    for authorizer, _ in coverage.values():
        used |= set(authorizer.used_actions)
    unused: list[str] = []
    for role, statement in statements(facts):
        for action in statement.actions:
            if not any(r == role and label == statement.label and statement_action_matches(action, a)
                       for r, label, a in used):
                unused.append(f"{role.rsplit('/', 1)[-1]} {statement.label}: {action}")
    assert unused == [], "\n".join(unused)


def statement_action_matches(pattern: str, action: str) -> bool:
    return Statement("x", "Allow", (pattern,), ("*",), {}).matches_action(action)


def test_dropping_any_statement_makes_a_scenario_fail_with_access_denied(
        facts: DeploymentFacts, coverage: dict[str, tuple[Authorizer, GuardDeployment]]) -> None:
    # GIVEN each statement in turn dropped from its role / WHEN the first scenario that used it runs again
    # THEN a call of that role is denied
    survived: list[str] = []
    for role, statement in statements(facts):
        scenario = next(s for s in SCENARIOS if coverage[s.name][0].used[(role, statement.label)])
        deployment = run(scenario, facts, drop=(role, statement.label))
        if not any(r == role for r, _ in deployment.records.access_denied):
            survived.append(f"{role.rsplit('/', 1)[-1]} {statement.label} ({scenario.name})")
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


GATED = Scenario("gated scale out and tiered drains", _gated_scale_out_and_in, 900.0, WorldOptions(seed=21),
                 ClusterSpec(replica_services=8, desired_per_service=4, gate_attribute="daemon-guard.gate",
                             tier_constraints=True))


def test_gate_and_tier_grants_are_each_needed_by_the_gated_configuration() -> None:
    # GIVEN the gate-mode, drainOrder-tiers template, and the scenario run with every statement in place
    facts = deployment_facts(gated_document(), World().account, World().region)
    baseline = run(GATED, facts)
    assert baseline.records.access_denied == []
    gated = [(role, st) for role, st in statements(facts) if st.label.rsplit("/", 1)[-1] in GATED_STATEMENTS]
    used = [(role, st) for role, st in gated if baseline.authorizer.used[(role, st.label)]]
    # THEN the drain marked its instances and some function opened gates through these statements
    assert {st.label.rsplit("/", 1)[-1] for _, st in used} == set(GATED_STATEMENTS)
    # and WHEN each used one is dropped in turn THEN that role is denied a call
    survived = [f"{role.rsplit('/', 1)[-1]} {st.label}" for role, st in used
                if not any(r == role for r, _ in run(GATED, facts, drop=(role, st.label)).records.access_denied)]
    assert survived == []
