"""`daemon-guard constraints` and `daemon-guard doctor` against the simulator's ECS and Auto Scaling APIs."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from daemon_guard.core.placement import gate_constraint, tier_constraint

from daemon_guard_cli.wiring import constraints, doctor
from sim.ecs import profile_params
from sim.world import World, WorldOptions

CLUSTER = "prod"
OWN = {"type": "memberOf", "expression": "attribute:ecs.os-type == linux"}
CONFIG: dict[str, Any] = {
    "clusters": [{"name": CLUSTER, "autoScalingGroups": ["prod-asg"]}],
    "placementMode": "gate", "drainOrder": "tiers",
    "drainTiers": [{"name": "agents", "services": ["xray"]}, {"name": "log-router", "services": ["fluent-bit"]}],
}


def cluster_without_constraints() -> World:
    """Replica and daemon services made elsewhere, none with daemon-guard's constraints; the group has its hook."""
    world = World(WorldOptions(seed=5, ecs=profile_params("as-reported"), throttling=False))
    ecs = world.ecs
    ecs.create_cluster(CLUSTER)
    for name in ("fluent-bit", "xray"):
        td = ecs.register_task_definition(name, [{"name": name, "cpu": 64, "memory": 128}])
        ecs.create_service(CLUSTER, name, td, daemon=True)
    api = ecs.register_task_definition("api", [{"name": "api", "cpu": 256, "memory": 512}])
    ecs.create_service(CLUSTER, "api", api, desired_count=0, constraints=[OWN["expression"]])
    ecs.create_service(CLUSTER, "worker", api, desired_count=0)
    ecs.create_service(CLUSTER, "legacy", api, desired_count=0, tags={"daemon-guard:ignore": "true"})
    ecs.create_capacity_provider(CLUSTER, "prod-cp", "prod-asg", managed_draining=False)
    world.asg.create_group("prod-asg", CLUSTER)
    world.asg.put_hook("prod-asg", "daemon-guard-terminate", "autoscaling:EC2_INSTANCE_TERMINATING", 300)
    ecs.register_instance(CLUSTER, "i-0aaa1111bbbb22223", 4096, 8192, {"ecs.os-type": "linux"})
    return world


def constraints_of(world: World) -> dict[str, list[dict[str, str]]]:
    return {s.name: [dict(c) for c in s.constraints] for s in world.ecs.services.values()}


def run(command: Any, world: World, config: Path, **kwargs: Any) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = command(CLUSTER, None, config_path=str(config), ecs_client=world.client("ecs"),
                   autoscaling_client=world.client("autoscaling"), out=out, err=err, **kwargs)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "cdk.json"
    path.write_text(json.dumps({"context": {"daemon-guard": CONFIG}}))
    return path


def test_apply_then_doctor_then_remove_returns_the_services_to_what_they_were(config: Path) -> None:
    # GIVEN a cluster whose services lack daemon-guard's constraints
    world = cluster_without_constraints()
    before = constraints_of(world)

    # WHEN an operator looks (read-only) / THEN each service that lacks one is named, nothing changes, exit 1
    code, out, err = run(constraints, world, config)
    assert (code, err) == (1, "")
    assert "api (replica): missing memberOf(attribute:daemon-guard.gate == open)" in out
    assert "fluent-bit (daemon): missing memberOf(attribute:daemon-guard.gate.stop.log-router !exists)" in out
    assert "legacy" not in out
    assert constraints_of(world) == before
    assert world.ecs_api.calls.get("UpdateService", 0) == 0
    # AND doctor says which guarantees are not wired, exit 1
    code, out, _ = run(doctor, world, config)
    assert code == 1
    assert "[MISSING] daemons-first" in out and "[MISSING] tiers-in-order" in out and "[ok] drain-on-exit" in out

    # WHEN the constraints are applied
    code, out, err = run(constraints, world, config, apply=True)
    # THEN each service got its own, once, its other constraints kept; the opted-out one is untouched
    assert (code, err) == (0, "")
    assert out.splitlines()[-1] == "4 service(s) updated, 0 already wired, 0 refused"
    after = constraints_of(world)
    assert after["api"] == [OWN, gate_constraint()]
    assert after["worker"] == [gate_constraint()]
    assert after["xray"] == [tier_constraint("agents")]
    assert after["fluent-bit"] == [tier_constraint("log-router")]
    assert after["legacy"] == []
    # AND applying again changes nothing (one UpdateService per service, the first time only)
    assert run(constraints, world, config, apply=True)[1].splitlines()[-1] == \
        "0 service(s) updated, 4 already wired, 0 refused"
    assert world.ecs_api.calls["UpdateService"] == 4
    # AND doctor reports every claimed guarantee wired, exit 0
    code, out, err = run(doctor, world, config)
    assert (code, err) == (0, ""), out
    assert out.splitlines()[-1] == "every claimed guarantee is wired"

    # WHEN the constraints are removed (the uninstall step)
    code, out, _ = run(constraints, world, config, remove=True)
    # THEN every service is back to what it was
    assert code == 0
    assert constraints_of(world) == before


def test_doctor_names_managed_draining_a_missing_hook_and_an_old_agent(tmp_path: Path) -> None:
    # GIVEN the defaults (preempt, ECS's draining order) on a group whose provider runs managed draining, without
    # daemon-guard's hook, and an instance whose agent predates ECS stopping daemons last
    world = cluster_without_constraints()
    world.ecs.capacity_providers["prod-cp"].managed_draining = True
    world.asg.groups["prod-asg"].hooks.clear()
    old = world.ecs.register_instance(CLUSTER, "i-0ccc3333dddd44445", 4096, 8192, {})
    world.ecs.instances[old].agent_version = "1.40.0"
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"clusters": [{"name": CLUSTER, "autoScalingGroups": ["prod-asg"]}]}))
    # WHEN doctor runs
    code, out, _ = run(doctor, world, path)
    # THEN it exits 1 and names each, under the guarantee it breaks; the constraints are not claimed
    assert code == 1
    assert "[not claimed] daemons-first" in out
    assert "prod-asg: capacity provider prod-cp runs ECS managed draining" in out
    assert "prod-asg: no daemon-guard-terminate lifecycle hook" in out
    assert "i-0ccc3333dddd44445: container agent 1.40.0 is older than 1.48.0" in out


def test_a_service_past_ecs_limit_is_refused_and_the_others_applied(config: Path) -> None:
    # GIVEN one replica whose 10 constraints leave no room for the gate
    world = cluster_without_constraints()
    api = world.ecs.service_named(CLUSTER, "api")
    api.constraints = [{"type": "memberOf", "expression": f"attribute:a{i} exists"} for i in range(10)]
    # WHEN applied / THEN it is left as it was and named, the others wired, exit 1
    code, out, _ = run(constraints, world, config, apply=True)
    assert code == 1
    assert "api: not changed: api: 11 placement constraints" in out
    assert len(world.ecs.service_named(CLUSTER, "api").constraints) == 10
    assert world.ecs.service_named(CLUSTER, "worker").constraints == [gate_constraint()]


def test_unknown_cluster_and_both_flags_exit_2_with_one_line(config: Path) -> None:
    world = cluster_without_constraints()
    out, err = io.StringIO(), io.StringIO()
    assert constraints(CLUSTER, None, config_path=str(config), apply=True, remove=True, ecs_client=world.client("ecs"),
                       autoscaling_client=world.client("autoscaling"), out=out, err=err) == 2
    assert "opposites" in err.getvalue()
    code, _, err_text = run(doctor, world, config.parent / "missing.json")
    assert code == 2 and len(err_text.splitlines()) == 1
