"""A daemon rollout on a full cluster: ECS alone loses the daemon for good; the guard restores it within limits."""

from __future__ import annotations

import pytest

from bench.rollout import RolloutStory, run_rollout

# Long simulator stories: `make test` runs them, `make test-fast` leaves them out.
pytestmark = pytest.mark.slow

STORY = RolloutStory(instances=12, replica_services=6, horizon_s=1000.0)


def test_ecs_alone_leaves_full_instances_without_the_new_daemon_revision() -> None:
    # GIVEN a full cluster / WHEN the log router moves to a larger revision with ECS alone
    figures = run_rollout("ecs-native", 2, STORY)
    # THEN coverage falls and does not come back: the backlog holds the room the old task left
    assert figures["coverage_before_pct"] == 100.0
    assert figures["new_revision_end_pct"] < 50.0 and figures["restored_s"] is None


@pytest.mark.parametrize("strategy", ["daemon-guard-preempt", "daemon-guard-gate"])
def test_the_guard_restores_the_new_revision_everywhere_without_breaching_min_healthy(strategy: str) -> None:
    figures = run_rollout(strategy, 2, STORY)
    assert figures["new_revision_end_pct"] == 100.0 and figures["restored_s"] is not None
    assert figures["evictions"] > 0 and figures["min_healthy_breaches"] == 0


def test_observe_mode_changes_nothing_during_a_rollout() -> None:
    figures = run_rollout("daemon-guard-observe", 2, STORY)
    assert figures["evictions"] == 0 and figures["restored_s"] is None
