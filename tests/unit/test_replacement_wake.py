"""Replica phases woken by the replacement: a drain held by minimumHealthyPercent registers on the services it
waits on, and the intake wakes it when a task of one of them reaches RUNNING (AWS's Task State Change sample)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from daemon_guard import bootstrap
from daemon_guard.adapters.memory import MemoryState
from daemon_guard.bootstrap import Runtime
from daemon_guard.core.actions import WakeWorkflow
from daemon_guard.core.config import parse_config
from daemon_guard.core.drain import (
    DrainLook,
    DrainProgress,
    DrainRequest,
    PhaseWatch,
    StopLedger,
)
from daemon_guard.services.intake import handle
from daemon_guard.workflows.drain import held_services, listen_for

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "events"
TASK = "ecs-task-state-change-ec2-launch-type.awsdocs-ecs-devguide-2020.json"
CLUSTER = "default"
HELD_ON = "arn:aws:ecs:us-east-1:111122223333:container-instance/default/held"
CONFIG = parse_config({"clusters": [{"name": CLUSTER, "autoScalingGroups": ["my-asg"]}]})


class Pages:
    def __init__(self, page: dict[str, Any]) -> None:
        self.page = page

    def paginate(self, **_kw: Any) -> Any:
        yield self.page


class EcsWithoutDaemons:
    """ECS answering the daemon list (no daemon service); any other call is a test failure."""

    def get_paginator(self, name: str) -> Pages:
        assert name == "list_services", name
        return Pages({"serviceArns": []})

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"unexpected ECS call {name}")


class Sink:
    def emit(self, *_args: Any, **_kwargs: Any) -> None:
        """Metrics are not the point here."""


def runtime(state: MemoryState) -> Runtime:
    rt = bootstrap.build(CONFIG, ecs_client=EcsWithoutDaemons(), autoscaling_client=object(), metrics=Sink(),
                         dry_run=True)
    return bootstrap.Runtime(**{**vars(rt), "claims": state, "complete": rt.complete})


def running_task_of(service: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((FIXTURES / TASK).read_text())
    event["detail"]["group"] = f"service:{service}"
    return event


def test_a_replacement_reaching_running_wakes_the_drains_waiting_on_its_service() -> None:
    # GIVEN a drain held on checkout, and the instance the new task runs on already known complete
    state = MemoryState()
    state.register_service_wake(CLUSTER, ["checkout"], HELD_ON, "cb-held", 0.0, since_epoch=0.0)
    event = running_task_of("checkout")
    rt = runtime(state)
    rt.complete.remember([event["detail"]["containerInstanceArn"]])
    # WHEN the intake hears that a checkout task is RUNNING
    handle(event, rt)
    # THEN the held drain is woken, with no ECS read beyond the (cached) daemon list
    assert [a for _, a in rt.executor.recorded] == [  # type: ignore[attr-defined]
        WakeWorkflow("cb-held", "a task of checkout is RUNNING")]


class Callbacks:
    """The Lambda side of wake-ups: which callbacks were completed, and which had already completed ("gone")."""

    def __init__(self, gone: set[str]) -> None:
        self.gone, self.woken = gone, []  # type: tuple[set[str], list[str]]

    def can_run(self, _action: Any) -> bool:
        return True

    def run(self, _cluster: str, action: Any) -> str:
        assert isinstance(action, WakeWorkflow)
        self.woken.append(action.callback_id)
        return "gone" if action.callback_id in self.gone else "done"


def test_one_replacement_wakes_one_drain_the_one_that_started_first() -> None:
    # GIVEN three drains held on checkout, started at 300 s, 100 s and 200 s
    state = MemoryState()
    for n, started in ((1, 300.0), (2, 100.0), (3, 200.0)):
        state.register_service_wake(CLUSTER, ["checkout"], f"{HELD_ON}-{n}", f"cb-{n}", 400.0, since_epoch=started)
    event = running_task_of("checkout")
    callbacks = Callbacks(gone=set())
    rt = bootstrap.Runtime(**{**vars(runtime(state)), "executor": callbacks})
    rt.complete.remember([event["detail"]["containerInstanceArn"]])
    # WHEN one checkout task reaches RUNNING (room for one more stop)
    handle(event, rt)
    # THEN only the drain that started first is woken; the others keep their registration (and their slow look)
    assert callbacks.woken == ["cb-2"]
    assert len(state.service_wakes(CLUSTER, "checkout")) == 3


def test_a_wake_up_that_finds_its_callback_gone_goes_to_the_next_drain_in_turn() -> None:
    # GIVEN the first drain's callback already completed (it is between two waits), the second's not
    state = MemoryState()
    for n, started in ((1, 100.0), (2, 200.0), (3, 300.0)):
        state.register_service_wake(CLUSTER, ["checkout"], f"{HELD_ON}-{n}", f"cb-{n}", 400.0, since_epoch=started)
    event = running_task_of("checkout")
    callbacks = Callbacks(gone={"cb-1"})
    rt = bootstrap.Runtime(**{**vars(runtime(state)), "executor": callbacks})
    rt.complete.remember([event["detail"]["containerInstanceArn"]])
    # WHEN a checkout task reaches RUNNING
    handle(event, rt)
    # THEN the wake-up goes on to the second drain, and the first is marked missed (it looks at once when it
    # registers again)
    assert callbacks.woken == ["cb-1", "cb-2"]
    missed = {w.instance_arn for w in state.service_wakes(CLUSTER, "checkout") if w.missed}
    assert missed == {f"{HELD_ON}-1"}
    # AND WHEN another checkout task reaches RUNNING / THEN the missed one is skipped: the second is woken again
    handle(event, rt)
    assert callbacks.woken[2:] == ["cb-2"]


def test_a_task_of_another_service_wakes_nobody() -> None:
    state = MemoryState()
    state.register_service_wake(CLUSTER, ["checkout"], HELD_ON, "cb-held", 0.0, since_epoch=0.0)
    event = running_task_of("cart")
    rt = runtime(state)
    rt.complete.remember([event["detail"]["containerInstanceArn"]])
    handle(event, rt)
    assert rt.executor.recorded == []  # type: ignore[attr-defined]


def test_a_held_drain_registers_on_the_services_it_waits_on_and_forgets_them_once_released() -> None:
    # GIVEN a replica phase held with a checkout task and a cart task already told to stop
    state = MemoryState()
    rt = runtime(state)
    request = DrainRequest.from_payload({"instanceId": "i-0123456789abcdef0", "cluster": CLUSTER,
                                         "trigger": "lifecycle"})
    held = DrainProgress(started_at=0.0, watch=PhaseWatch(replicas_held=True), stops=StopLedger(requested=("t-cart",)),
                         look=DrainLook(instance_arn=HELD_ON, live_tasks=(("t-checkout", "service:checkout", 30),
                                                                          ("t-cart", "service:cart", 30))))
    # WHEN it listens / THEN it waits on checkout alone
    assert held_services(rt, request, held) == ["checkout"]
    heard = listen_for(rt, request, held.as_dict(), "cb-1", [])
    assert heard["services"] == ["checkout"]
    assert [(w.instance_arn, w.callback_id) for w in state.service_wakes(CLUSTER, "checkout")] == [
        (HELD_ON, "cb-1")]
    # WHEN the phase is no longer held / THEN its registration is forgotten
    moved_on = DrainProgress(started_at=0.0, look=DrainLook(instance_arn=HELD_ON), phase="standalone")
    assert listen_for(rt, request, moved_on.as_dict(), "cb-2", heard["services"])["services"] == []
    assert state.service_wakes(CLUSTER, "checkout") == []


def test_a_wake_up_that_reached_no_callback_makes_the_next_wait_look_at_once() -> None:
    # GIVEN a drain registered on checkout whose callback completed before the replacement's wake-up arrived
    state = MemoryState()
    state.register_service_wake(CLUSTER, ["checkout"], HELD_ON, "cb-old", 0.0, since_epoch=0.0)
    state.note_missed_service_wake(CLUSTER, "checkout", HELD_ON, "cb-old")
    rt = runtime(state)
    request = DrainRequest.from_payload({"instanceId": "i-0123456789abcdef0", "cluster": CLUSTER,
                                         "trigger": "lifecycle"})
    held = DrainProgress(started_at=0.0,
                         look=DrainLook(instance_arn=HELD_ON,
                                        live_tasks=(("t-checkout", "service:checkout",
                                                     30),)), watch=PhaseWatch(replicas_held=True))
    # WHEN it registers its next callback / THEN it is told to look at once, and the new callback is registered
    assert listen_for(rt, request, held.as_dict(), "cb-new", ["checkout"])["replaced"] == ["checkout"]
    assert [(w.instance_arn, w.callback_id) for w in state.service_wakes(CLUSTER, "checkout")] == [
        (HELD_ON, "cb-new")]


class EcsUnread:
    """ECS that must not be called at all."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"unexpected ECS call {name}")


def test_a_stop_on_an_instance_whose_drain_waits_wakes_it_without_reading_ecs() -> None:
    # GIVEN a drain waiting on its instance, and a task there reported STOPPED (AWS's sample, stopped)
    event = running_task_of("checkout")
    event["detail"] |= {"lastStatus": "STOPPED", "desiredStatus": "STOPPED"}
    instance = event["detail"]["containerInstanceArn"]
    state = MemoryState()
    state.register_wake("drain", instance, "cb-drain", 0.0)
    rt = bootstrap.build(CONFIG, ecs_client=EcsUnread(), autoscaling_client=object(), metrics=Sink(), dry_run=True)
    rt = bootstrap.Runtime(**{**vars(rt), "claims": state, "complete": rt.complete})
    # WHEN the intake hears it
    outcome = handle(event, rt)
    # THEN the drain is woken with the stopped task, and ECS is not read (a drain stops daemons on purpose: the
    # daemon list is not needed to tell a lost daemon)
    assert outcome.decision == "woke"
    assert [a for _, a in rt.executor.recorded] == [  # type: ignore[attr-defined]
        WakeWorkflow("cb-drain", outcome.reason, event["detail"]["taskArn"])]
