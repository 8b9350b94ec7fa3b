"""A drain's StopTasks names the phase it belongs to; the preview reads the phase from it, never from the reason."""

from __future__ import annotations

import pytest
from daemon_guard.core.actions import StopTasks
from daemon_guard.core.config import DrainOrder, StandalonePolicy
from daemon_guard.core.drain import DrainPolicy, DrainRequest, DrainView, Lifecycle
from daemon_guard.core.drain_preview import preview_drain
from daemon_guard.core.model import InstanceView, Resources, TaskView
from daemon_guard.core.outcomes import action_dict

INSTANCE = InstanceView(arn="ci", ec2_instance_id="i-1", status="ACTIVE", agent_connected=True,
                        registered=Resources(), remaining=Resources())
REQUEST = DrainRequest("i-1", "prod", "lifecycle", "asg", "hook", "token")


def daemon(name: str) -> TaskView:
    """A RUNNING task of daemon service `name` on the instance."""
    return TaskView(arn=f"t-{name}", group=f"service:{name}", task_definition_arn="", last_status="RUNNING",
                    desired_status="RUNNING", container_instance_arn="ci")


@pytest.mark.parametrize("tier_name", ["final deadline", "logs: fluent-bit"])
def test_the_preview_labels_each_tier_stop_by_the_phase_the_stop_carries(tier_name: str) -> None:
    # GIVEN an apps-first drain whose second tier's name reads like a stop reason's suffix
    policy = DrainPolicy(("agents", tier_name), StandalonePolicy.WAIT, 300, 900, 300, 300,
                         order=DrainOrder.APPS_FIRST)
    view = DrainView(now=0.0, instance=INSTANCE, tasks=(daemon("xray"), daemon("fluent-bit")),
                     daemon_tier={"xray": 0, "fluent-bit": 1}, lifecycle=Lifecycle("asg", "hook", "token"))
    # WHEN previewed
    steps = [s for s in preview_drain(REQUEST, view, policy) if s.kind == "stop-tasks"]
    # THEN each stop is shown in its own tier, named exactly as configured, within a tier's time limit
    assert [(s.phase, s.tasks[0][1]) for s in steps] == [("agents", "xray"), (tier_name, "fluent-bit")]
    assert [s.limit_s for s in steps] == [300.0, 300.0]


def test_an_eviction_is_written_as_before_and_a_drain_stop_with_its_phase() -> None:
    # GIVEN an eviction's stop (no drain phase) and a drain tier's stop
    eviction = StopTasks(("t-1",), "daemon-guard: make room for fluent-bit")
    drain = StopTasks(("t-2",), "daemon-guard drain: agents", "agents")
    # WHEN each is written as JSON / THEN only the drain's names a phase
    assert action_dict(eviction) == {"type": "StopTasks", "task_arns": ["t-1"],
                                     "reason": "daemon-guard: make room for fluent-bit"}
    assert action_dict(drain)["phase"] == "agents"
