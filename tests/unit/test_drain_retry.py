"""How long a drain step that failed on AWS (throttling past the SDK's retries) waits before trying again."""

from __future__ import annotations

from dataclasses import replace

import pytest
from daemon_guard.bootstrap import MissingSetting, ecs_attempts, from_environment
from daemon_guard.core.drain import plan_drain_step
from daemon_guard.workflows.drain import RETRY_CAP_S, retry_after

from tests.unit.test_drain_planner import EVERYTHING, START, fresh, policy, request, view


@pytest.mark.parametrize(("failures", "time_left_s", "at_most"), [
    (1, None, 4 * 1.5),            # no notice: 2 s doubling, spread 0.5-1.5x
    (5, None, RETRY_CAP_S * 1.5),  # no notice: capped at 30 s
    (5, 100.0, 10.0 * 1.5),        # a Spot notice 100 s away: a tenth of what is left
    (5, 20.0, 2.0 * 1.5),
    (5, 3.0, 1.0 * 1.5),           # at least a second
])
def test_a_failed_step_backs_off_but_never_sleeps_through_a_spot_notice(failures: int, time_left_s: float | None,
                                                                      at_most: float) -> None:
    # GIVEN a drain whose step failed `failures` times in a row / WHEN it picks its wait
    waits = [retry_after(f"i-{n:017x}", failures, time_left_s) for n in range(50)]
    # THEN every instance waits within the bound, and instances do not all wait alike
    assert all(0 < w <= at_most for w in waits)
    assert len(set(waits)) > 1


def test_the_drain_remembers_the_spot_notice_it_has_seen() -> None:
    # GIVEN a drain started by a scale-in, which then sees a Spot notice (handed over through its claim)
    seen = replace(view(EVERYTHING), deadline_epoch=START + 120)
    # WHEN a step is planned
    step = plan_drain_step(request(), seen, fresh(), policy())
    # THEN its progress keeps when the notice ends (a failed step's retry is bounded by it), and a later
    # step that no longer sees the notice keeps it too
    assert step.progress.hook.notice_at == START + 120
    later = plan_drain_step(request(), view(EVERYTHING, now=START + 10), step.progress, policy())
    assert later.progress.hook.notice_at == START + 120


@pytest.mark.parametrize(("raw", "attempts"), [("1", 1), ("3", 3), ("20", 20)])
def test_the_attempts_per_ecs_call_come_from_the_function_environment(
        monkeypatch: pytest.MonkeyPatch, raw: str, attempts: int) -> None:
    # GIVEN ECS_MAX_ATTEMPTS as the stack sets it per function
    monkeypatch.setenv("ECS_MAX_ATTEMPTS", raw)
    # WHEN the production runtime reads it / THEN each ECS call gets that many attempts
    assert ecs_attempts() == attempts


@pytest.mark.parametrize("name", ["DAEMON_GUARD_CONFIG", "STATE_TABLE", "ECS_MAX_ATTEMPTS", "ECS_RETRY"])
def test_a_function_deployed_without_a_stack_setting_refuses_to_start_naming_it(
        monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    # GIVEN a function environment as the stack writes it, but for one variable
    for variable, value in {"DAEMON_GUARD_CONFIG": '{"clusters": [{"name": "prod", "autoScalingGroups": ["asg"]}]}',
                            "STATE_TABLE": "daemon-guard-state", "ECS_MAX_ATTEMPTS": "3",
                            "ECS_RETRY": "sdk", "AWS_REGION": "us-east-1"}.items():
        monkeypatch.setenv(variable, value)
    monkeypatch.delenv(name)
    # WHEN the production runtime is built / THEN it refuses in one line naming the variable (no state in memory,
    # no default retry budget)
    with pytest.raises(MissingSetting, match=f"^{name} is not set"):
        from_environment()


@pytest.mark.parametrize("raw", ["0", "21", "three", "-1", " 3"])
def test_a_bad_attempt_count_is_refused_by_name(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    # GIVEN a hand-edited ECS_MAX_ATTEMPTS / WHEN it is read / THEN the error names the variable
    monkeypatch.setenv("ECS_MAX_ATTEMPTS", raw)
    with pytest.raises(ValueError, match="ECS_MAX_ATTEMPTS"):
        ecs_attempts()
