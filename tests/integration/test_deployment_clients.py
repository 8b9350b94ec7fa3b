"""The simulated functions build their clients as the deployed Lambda functions do: from the template's
environment through `bootstrap`, one client set per execution environment, adaptive mode's rate limiter on
simulated time."""

from __future__ import annotations

from dataclasses import replace

import boto3
import pytest
from daemon_guard import bootstrap
from daemon_guard.core.retry import RESERVE_S, RetryBudget

from sim.deployment import GuardDeployment, facts_for
from sim.ecs import profile_params
from sim.template import DeploymentFacts
from sim.world import World, WorldOptions
from tests.integration.conftest import Deploy, config_for

pytestmark = pytest.mark.slow  # each deployment synthesizes the template (cached per configuration)


def _without(facts: DeploymentFacts, handler_module: str, variable: str) -> DeploymentFacts:
    """The template's facts with `variable` removed from the environment of the function whose handler lives in
    `handler_module`."""
    functions = {
        logical_id: replace(fn, environment={k: v for k, v in fn.environment.items() if k != variable})
        if fn.handler.rsplit(".", 1)[0].endswith(handler_module) else fn
        for logical_id, fn in facts.functions.items()}
    return replace(facts, functions=functions)


@pytest.mark.parametrize("variable", ["ECS_MAX_ATTEMPTS", "ECS_RETRY", "STATE_TABLE", "DAEMON_GUARD_CONFIG"])
def test_a_template_function_without_a_setting_fails_the_deployment_naming_it(variable: str) -> None:
    # GIVEN the template of a configuration, but for one variable missing from the drain function's environment
    world = World(WorldOptions(seed=3, ecs=profile_params("as-reported")))
    doc = config_for(["asg-a"])
    facts = _without(facts_for(doc, world), "drain", variable)
    # WHEN it is deployed / THEN the deployment fails naming the function and the variable (no default filled in)
    with pytest.raises(bootstrap.MissingSetting, match=rf"drain.*: {variable} is not set"):
        GuardDeployment(world, doc, facts=facts)


def test_every_function_s_clients_carry_the_production_client_settings(deploy: Deploy) -> None:
    # GIVEN daemon-guard deployed from its template
    world = World(WorldOptions(seed=3, ecs=profile_params("as-reported")))
    deployment = deploy(world, config_for(["asg-a"]))
    for deployed in deployment.functions.values():
        # WHEN its clients are read / THEN each has the retries and timeouts of the client the Lambda builds
        # from that function's environment
        expected = bootstrap.client_configs(deployed.facts.environment)
        for service, client in deployed.clients.items():
            production = boto3.client(service, region_name=world.region,  # type: ignore[call-overload]
                                      config=expected[service]).meta.config
            assert client.meta.config.retries == production.retries, service
            assert (client.meta.config.connect_timeout, client.meta.config.read_timeout) == \
                (production.connect_timeout, production.read_timeout), service
        assert deployed.clients["ecs"].meta.config.retries["mode"] == "adaptive"
        # AND its ECS attempts are botocore's (ECS_RETRY=sdk), or one a try and the rest the deadline retry's
        environment = deployed.facts.environment
        attempts = int(environment["ECS_MAX_ATTEMPTS"])
        by_sdk = environment["ECS_RETRY"] == "sdk"
        assert deployed.clients["ecs"].meta.config.retries["total_max_attempts"] == (attempts if by_sdk else 1)
        assert bootstrap.settings_of(environment).ecs_retry == (None if by_sdk else RetryBudget(attempts, RESERVE_S))
        # AND every other count is attempts, the first one included (botocore's `max_attempts` would add one)
        assert {s: deployed.clients[s].meta.config.retries["total_max_attempts"]
                for s in ("autoscaling", "lambda", "events")} == {"autoscaling": 5, "lambda": 5, "events": 3}
