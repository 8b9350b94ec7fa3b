"""A daemon that exits on an instance whose gate is open, end to end: the guard shuts the gate again, evicts only
once the shut gate is seen, and reopens it when the daemon runs, so no replica takes the daemon's room.

A warm gated cluster under a standing replica backlog (replicas see freed room at their next pass, before the
daemon scheduler's cycle: the `worst` profile), with writes seen by ECS only 1 to 4 s after they are made; at
300 s a daemon exits on four instances. Every figure is read off the simulator's truth (task transitions, the
instances' attributes as ECS sees them), not off what the guard believed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from bench.scenarios import ClusterSpec, build_cluster, keep_backlog
from bench.suites import GATE_ATTRIBUTE, guard_config
from sim.deployment import GuardDeployment
from sim.ecs import SimInstance, SimTask, profile_params
from sim.world import World, WorldOptions
from tests.integration.conftest import EVICTION_REASON

pytestmark = pytest.mark.slow

SEED = 1
CRASH_AT, END_S = 300.0, 480.0
CRASHES = 4


@dataclass
class Watch:
    """What ECS saw on the instances whose daemon exited: when each gate was first seen shut again, and every
    replica placed on one of them, after that, while it lacked a daemon."""

    world: World
    crashed: set[str] = field(default_factory=set)
    reshut_seen_at: dict[str, float] = field(default_factory=dict)
    placed_while_missing: list[str] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)

    def __call__(self, kind: str, payload: dict[str, Any]) -> None:
        ecs, now = self.world.ecs, self.world.clock.now
        if kind == "instance":
            inst: SimInstance = payload["instance"]
            value = inst.attributes.get(GATE_ATTRIBUTE) or ""
            if inst.arn in self.crashed and value.startswith("repair@"):
                self.reshut_seen_at.setdefault(inst.arn, now)
            return
        if kind != "task":
            return
        task: SimTask = payload["task"]
        first = task.arn not in self.seen
        self.seen.add(task.arn)
        arn = task.container_instance
        if not first or ecs.is_daemon_task(task) or arn not in self.reshut_seen_at:
            return
        if self.missing(ecs.instances[arn]):
            self.placed_while_missing.append(f"{task.group} on {arn} at {now:.1f}s")

    def missing(self, inst: SimInstance) -> list[str]:
        """The daemons with no live task on the instance."""
        ecs = self.world.ecs
        live = {t.group for t in ecs.live_tasks(inst) if ecs.is_daemon_task(t)}
        return [s.name for s in ecs.services.values() if s.strategy == "DAEMON" and f"service:{s.name}" not in live]


def _crash(world: World, watch: Watch) -> None:
    """A daemon exits on the first `CRASHES` ACTIVE instances running one."""
    for inst in world.ecs.instances.values():
        if len(watch.crashed) >= CRASHES or inst.status != "ACTIVE":
            continue
        daemon = next((t for t in world.ecs.live_tasks(inst) if world.ecs.is_daemon_task(t)
                       and t.last_status == "RUNNING"), None)
        if daemon is not None:
            watch.crashed.add(inst.arn)
            world.ecs.stop_task(daemon, "Essential container in task exited", "EssentialContainerExited")


@pytest.fixture(scope="module")
def run() -> Watch:
    """The story, once for the tests below."""
    ecs = replace(profile_params("worst"), attribute_visibility_s=(1.0, 4.0))
    world = World(WorldOptions(seed=SEED, ecs=ecs))
    spec = ClusterSpec(replica_services=8, desired_per_service=6, gate_attribute=GATE_ATTRIBUTE)
    build_cluster(world, spec)
    deployment = GuardDeployment(world, guard_config([spec.asg], "gate", drainOrder="apps-first"))
    watch = Watch(world)
    world.ecs.listeners.append(watch)
    try:
        keep_backlog(world, spec.name, 4, 5.0, END_S)
        world.asg.scale_out(spec.asg, 8, 1.0)
        world.clock.at(CRASH_AT, lambda: _crash(world, watch))
        world.clock.run_until(END_S)
    finally:
        deployment.close()
    return watch


def test_no_replica_lands_on_an_instance_missing_a_daemon_once_its_gate_is_shut_again(run: Watch) -> None:
    # GIVEN a gated cluster under a standing backlog, and a daemon that exits on four instances whose gates are open
    # WHEN the guard repairs them (writes seen by ECS seconds late)
    # THEN each gate was seen shut again, and from then on no replica was placed on the instance while it lacked a
    # daemon (the shut gate keeps the room, and the gate reopens only with every daemon back)
    assert len(run.crashed) == CRASHES
    assert set(run.reshut_seen_at) == run.crashed
    assert run.placed_while_missing == []


def test_evictions_come_only_after_the_shut_gate_is_seen(run: Watch) -> None:
    # GIVEN the same story / WHEN the guard makes room for the daemons
    evictions = [t for t in run.world.ecs.tasks.values() if t.container_instance in run.crashed
                 and t.stopped_reason.startswith(EVICTION_REASON)]
    # THEN it did evict (the backlog had retaken the room the exit freed), and never before the instance's gate was
    # seen shut again
    assert evictions
    assert [t.arn for t in evictions if t.stopping_at is None
            or t.stopping_at < run.reshut_seen_at.get(t.container_instance, math.inf)] == []


def test_every_daemon_is_back_and_every_gate_open_at_the_end(run: Watch) -> None:
    # GIVEN the same story / WHEN it ends
    ecs = run.world.ecs
    # THEN every instance whose daemon exited runs all its daemons again behind an open gate
    assert {arn: run.missing(ecs.instances[arn]) for arn in run.crashed} == {arn: [] for arn in run.crashed}
    assert {ecs.instances[arn].attributes.get(GATE_ATTRIBUTE) for arn in run.crashed} == {"open"}
