"""Which constraints a service needs (`core.wiring`): the one decision behind the aspect, `constraints` and `doctor`."""

from __future__ import annotations

from typing import Any

import pytest
from daemon_guard.core.config import parse_config
from daemon_guard.core.placement import gate_constraint, tier_constraint
from daemon_guard.core.wiring import is_ours, plan_service, runs_on_instances, without_ours

GATED = parse_config({"clusters": [{"name": "prod"}], "placementMode": "gate", "drainOrder": "tiers",
                      "drainTiers": [{"name": "agents"}, {"name": "log-router", "services": ["fluent-bit"]}]})
PREEMPT = parse_config({"clusters": [{"name": "prod"}]})
GATE = gate_constraint()
OWN = {"type": "memberOf", "expression": "attribute:ecs.os-type == linux"}


@pytest.mark.parametrize(("strategy", "name", "tags", "existing", "missing", "stale"), [
    ("REPLICA", "api", {}, [], [GATE], []),
    ("REPLICA", "api", {}, [OWN, {"type": "memberOf", "expression": "attribute:daemon-guard.gate  ==  open"}], [], []),
    ("DAEMON", "fluent-bit", {}, [], [tier_constraint("log-router")], []),
    ("DAEMON", "xray", {}, [], [tier_constraint("agents")], []),
    ("DAEMON", "xray", {"daemon-guard:drain-tier": "log-router"}, [], [tier_constraint("log-router")], []),
    ("DAEMON", "xray", {}, [GATE], [tier_constraint("agents")], [GATE]),
    ("DAEMON", "fluent-bit", {}, [tier_constraint("agents")], [tier_constraint("log-router")],
     [tier_constraint("agents")]),
    ("REPLICA", "api", {"daemon-guard:ignore": "true"}, [], [], []),
])
def test_each_service_needs_its_own_constraint_and_none_of_ours_elsewhere(
        strategy: Any, name: str, tags: dict[str, str], existing: list[dict[str, str]],
        missing: list[dict[str, str]], stale: list[dict[str, str]]) -> None:
    # GIVEN gate mode with tiers / WHEN a service is planned / THEN what is missing and what of ours is wrong
    plan = plan_service(GATED, service=name, strategy=strategy, tags=tags, constraints=existing)
    assert list(plan.missing) == missing
    assert list(plan.stale) == stale
    # AND once wired the service keeps its own constraints, has ours once, and none that is wrong
    assert [c for c in plan.desired if not is_ours(c, "daemon-guard.gate")] == \
        [c for c in existing if not is_ours(c, "daemon-guard.gate")]
    assert all(c not in plan.desired for c in stale)


def test_preempt_with_draining_needs_no_constraint() -> None:
    for strategy in ("REPLICA", "DAEMON"):
        assert plan_service(PREEMPT, service="s", strategy=strategy, tags={}, constraints=[]).wired  # type: ignore[arg-type]


def test_ecs_limit_of_10_counts_the_task_definition() -> None:
    # GIVEN a replica with 4 constraints of its own and 6 in its task definition
    own = [{"type": "memberOf", "expression": f"attribute:a{i} exists"} for i in range(4)]
    # WHEN planned / THEN the gate would make 11: refused with the count
    plan = plan_service(GATED, service="api", strategy="REPLICA", tags={}, constraints=own,
                        task_definition_constraints=6)
    assert plan.problem is not None and "11 placement constraints" in plan.problem
    # AND with 5 in the task definition it fits exactly
    assert plan_service(GATED, service="api", strategy="REPLICA", tags={}, constraints=own,
                        task_definition_constraints=5).problem is None


def test_removing_takes_off_ours_only() -> None:
    assert without_ours([OWN, GATE, tier_constraint("agents"), {"type": "distinctInstance"}], "daemon-guard.gate") \
        == (OWN, {"type": "distinctInstance"})


@pytest.mark.parametrize(("launch_type", "providers", "expected"), [
    ("EC2", [], True), ("FARGATE", [], False), ("EXTERNAL", [], False), (None, ["prod-cp"], True),
    (None, ["FARGATE_SPOT"], False), (None, [], None),
])
def test_only_services_on_container_instances_are_wired(launch_type: str | None, providers: list[str],
                                                        expected: bool | None) -> None:
    assert runs_on_instances(launch_type, providers) is expected
