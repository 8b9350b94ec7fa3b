"""The reconciler's rotating full audit (`services.reconcile.audit_due`): which clusters a run audits, where the
rotation stands in the state table, and what a new deployment or a run behind does."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from daemon_guard import bootstrap
from daemon_guard.bootstrap import Runtime
from daemon_guard.core.config import parse_config
from daemon_guard.services import reconcile
from daemon_guard.services.reconcile import ReconcileSummary, audit_due

CLUSTERS = [f"c{k:02d}" for k in range(10)]
SLOT_S = 20 * 60 / len(CLUSTERS)  # auditCycleMinutes 20 over 10 clusters: one cluster every 120 s
NOW = 1_800_000_000.0 // SLOT_S * SLOT_S + 30.0  # 30 s into a slot
CURRENT_SLOT = int(NOW // SLOT_S)


class Sink:
    def emit(self, *_args: Any, **_kwargs: Any) -> None:
        """Metrics are not the point here."""


def runtime() -> Runtime:
    config = parse_config({"clusters": [{"name": c, "autoScalingGroups": [f"{c}-asg"]} for c in CLUSTERS],
                           "auditCycleMinutes": 20})
    return bootstrap.build(config, ecs_client=object(), autoscaling_client=object(), metrics=Sink(), dry_run=True,
                           clock=lambda: datetime.fromtimestamp(NOW, UTC))


@pytest.fixture
def audited(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The clusters the run audits (the audit itself stubbed: its reads are the integration tests' business)."""
    done: list[str] = []

    def audit(_rt: Runtime, cluster: str, *_args: Any, **_kwargs: Any) -> ReconcileSummary:
        done.append(cluster)
        return ReconcileSummary(cluster)

    monkeypatch.setattr(reconcile, "reconcile_cluster", audit)
    return done


def test_a_new_deployment_joins_the_rotation_at_the_current_slot(audited: list[str]) -> None:
    # GIVEN a deployment whose rotation has never moved
    rt = runtime()
    # WHEN its first run audits what is due
    audit_due(rt)
    # THEN it audits the cluster whose slot this is and the one a reconciler period (1 minute) before it spans,
    # not a whole round at once
    assert audited == [CLUSTERS[(CURRENT_SLOT - 2) % len(CLUSTERS)], CLUSTERS[(CURRENT_SLOT - 1) % len(CLUSTERS)]]
    assert rt.audit.audit_position() == CURRENT_SLOT


@pytest.mark.parametrize(("behind", "audits"), [
    pytest.param(0, 0, id="up-to-date"),
    pytest.param(3, 3, id="three-slots-behind-catches-up"),
    pytest.param(25, 10, id="more-than-a-round-behind-catches-up-one-round"),
])
def test_a_run_behind_catches_up_at_most_one_round(audited: list[str], behind: int, audits: int) -> None:
    # GIVEN a rotation `behind` slots behind the clock (failed runs, an outage)
    rt = runtime()
    assert rt.audit.advance_audit(0, CURRENT_SLOT - behind)
    # WHEN a run audits what is due
    audit_due(rt)
    # THEN it audits the slots missed, at most one round, and the rotation stands at the current slot
    assert len(audited) == audits
    assert rt.audit.audit_position() == CURRENT_SLOT
