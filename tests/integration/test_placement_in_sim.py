"""Daemon-first placement, end to end: the real intake and reconciler on a simulated scale-out.

A small warm cluster under a replica backlog gains new instances two seconds apart; every figure is
read off the simulator's task transitions (bench.measure), not off what the guard believed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from bench.measure import LaunchRecord, launch_records
from bench.scenarios import ClusterSpec, ScaleOut, build_cluster, run_scale_out
from bench.suites import GATE_ATTRIBUTE, BreachCounter
from sim.deployment import GuardDeployment
from sim.ecs import SimTask, profile_params
from sim.eventbridge import FaultPlan
from sim.world import World, WorldOptions
from tests.integration.conftest import EVICTION_REASON, config_for, emitted, evicted

# Seed 1 is one on which ECS alone leaves daemons out on this scale-out (so preempt must act).
SEED = 1
PLAN = ScaleOut(launches=30, warm_instances=10, warmup_s=150.0, spacing_s=2.0, tail_s=90.0)


@dataclass
class Run:
    """A finished scale-out and what was observed."""

    world: World
    deployment: GuardDeployment | None
    launches: list[LaunchRecord]
    breaches: BreachCounter


class EvictionAudit:
    """Records, at the instant of each eviction, anything the guard must never have stopped."""

    def __init__(self, world: World, protected: set[str]) -> None:
        self.world = world
        self.protected = protected
        self.wrong: list[str] = []

    def __call__(self, kind: str, payload: dict[str, Any]) -> None:
        if kind != "task":
            return
        task: SimTask = payload["task"]
        if task.stopping_at != self.world.clock.now or not task.stopped_reason.startswith(EVICTION_REASON):
            return
        if self.world.ecs.is_daemon_task(task):
            self.wrong.append(f"daemon {task.arn}")
        elif task.service_name is None:
            self.wrong.append(f"standalone {task.arn}")
        elif task.arn in self.protected:
            self.wrong.append(f"protected {task.arn}")


def scale_out(mode: str | None, *, seed: int = SEED, delivery: FaultPlan | None = None,
              extra: dict[str, Any] | None = None, protect_services: int = 0, standalone: int = 0,
              huge_daemon: bool = False) -> tuple[Run, EvictionAudit]:
    """Run PLAN with daemon-guard in `mode` (None: ECS alone)."""
    world = World(WorldOptions(seed=seed, ecs=profile_params("as-reported"), delivery=delivery or FaultPlan()))
    gate = mode == "gate"
    spec = ClusterSpec(replica_services=12, gate_attribute=GATE_ATTRIBUTE if gate else None)
    build_cluster(world, spec)
    if huge_daemon:
        # A daemon no instance can ever hold: more memory than an instance has.
        td = world.ecs.register_task_definition("too-big", [{"name": "too-big", "cpu": 64, "memory": 64_000}])
        world.ecs.create_service(spec.name, "too-big", td, daemon=True)
    protected: set[str] = set()
    protected_groups = {f"service:app-{i:02d}" for i in range(protect_services)}

    def protect(kind: str, payload: dict[str, Any]) -> None:
        task: SimTask = payload["task"] if kind == "task" else None  # type: ignore[assignment]
        if task is not None and task.group in protected_groups and task.protected_until is None:
            task.protected_until = world.clock.now + 48 * 3600.0  # ECS allows up to 48 h
            protected.add(task.arn)

    world.ecs.listeners.insert(0, protect)
    breaches = BreachCounter(world)
    audit = EvictionAudit(world, protected)
    world.ecs.listeners += [breaches, audit]
    if standalone:
        job = world.ecs.register_task_definition("batch", [{"name": "job", "cpu": 256, "memory": 512}])

        def submit() -> None:
            world.ecs.run_task(spec.name, job, standalone, "batch", "family:batch")

        world.clock.at(60.0, submit)
    deployment = None
    if mode is not None:
        deployment = GuardDeployment(world, config_for([spec.asg], mode, terminate_hook=False, **(extra or {})))
    try:
        horizon = run_scale_out(world, spec, PLAN)
    finally:
        if deployment is not None:
            deployment.close()
    return Run(world, deployment, launch_records(world.ecs, horizon, since=PLAN.measured_from), breaches), audit


@pytest.mark.slow
def test_preempt_gets_every_daemon_running_within_a_minute_of_registration() -> None:
    # GIVEN a backlog scale-out on which ECS alone leaves daemons out
    native, _ = scale_out(None)
    assert not all(r.covered_within(60.0) for r in native.launches)
    # WHEN daemon-guard runs in preempt mode on the same seed
    run, audit = scale_out("preempt")
    # THEN every measured launch has all its daemons RUNNING within 60 s, by evicting replicas only
    assert len(run.launches) == PLAN.launches
    late = [r.instance_arn for r in run.launches if not r.covered_within(60.0)]
    assert late == []
    assert run.breaches.evictions > 0
    assert audit.wrong == []
    # AND no eviction took a service below its minimumHealthyPercent
    assert run.breaches.breaches == 0


@pytest.mark.slow
def test_preempt_never_evicts_daemons_standalone_or_protected_tasks() -> None:
    # GIVEN one replica service runs under task scale-in protection and standalone jobs run too
    # WHEN daemon-guard preempts during the scale-out
    run, audit = scale_out("preempt", protect_services=1, standalone=8)
    # THEN it still evicted, and every evicted task was an unprotected service replica
    assert evicted(run.world) != []
    assert audit.wrong == []
    assert run.breaches.breaches == 0


def test_gate_mode_starts_no_replica_before_every_daemon_runs_and_opens_every_gate() -> None:
    # GIVEN replica services constrained to gate-open instances
    # WHEN daemon-guard runs in gate mode
    run, _ = scale_out("gate")
    # THEN on every new instance all daemons were RUNNING before any replica started (daemon-first)
    assert [r.instance_arn for r in run.launches if not r.daemon_first] == []
    # AND every gate opened, none by timeout, and no replica was evicted
    opened = [i for i in run.world.ecs.instances.values()
              if i.status == "ACTIVE" and i.attributes.get(GATE_ATTRIBUTE) == "open"]
    assert len(opened) == len([i for i in run.world.ecs.instances.values() if i.status == "ACTIVE"])
    assert run.deployment is not None
    assert emitted(run.deployment, "GatesFailedOpen") == 0
    assert run.world.ecs_api.calls.get("StopTask", 0) == 0


@pytest.mark.slow
def test_a_gate_whose_daemon_can_never_fit_fails_open_at_its_timeout() -> None:
    # GIVEN gate mode with a daemon too big for any instance and a 30 s gate timeout
    # WHEN new instances join
    run, _ = scale_out("gate", huge_daemon=True, extra={"gateTimeoutSeconds": 30})
    # THEN their gates open anyway (capacity is never starved) and each is counted as failed open
    assert run.deployment is not None
    active = [i for i in run.world.ecs.instances.values() if i.status == "ACTIVE"]
    assert all(i.attributes.get(GATE_ATTRIBUTE) == "open" for i in active)
    assert emitted(run.deployment, "GatesFailedOpen") >= PLAN.launches


@pytest.mark.slow
def test_observe_mode_decides_but_changes_nothing() -> None:
    # GIVEN the scale-out on which preempt evicts
    # WHEN daemon-guard runs in observe mode
    run, _ = scale_out("observe")
    # THEN it made placement decisions and not a single StopTask or PutAttributes
    assert run.deployment is not None
    assert emitted(run.deployment, "PlacementDecisions") > 0
    assert run.world.ecs_api.calls.get("StopTask", 0) == 0
    assert run.world.ecs_api.calls.get("PutAttributes", 0) == 0
    assert evicted(run.world) == []


@pytest.mark.slow
def test_duplicated_container_instance_events_are_recognised_and_evict_nothing_more() -> None:
    # GIVEN the same preempt scale-out with clean delivery
    clean, _ = scale_out("preempt")
    # WHEN EventBridge delivers half the events twice or more
    dup, audit = scale_out("preempt", delivery=FaultPlan(duplicate_rate=0.5))
    # THEN duplicates are counted as such and cause no extra evictions
    assert dup.deployment is not None
    assert emitted(dup.deployment, "DuplicateEvents") > 0
    assert dup.breaches.evictions <= clean.breaches.evictions
    assert audit.wrong == []
    assert dup.breaches.breaches == 0
    assert all(r.covered_within(60.0) for r in dup.launches)
