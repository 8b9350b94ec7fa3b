"""A daemon no instance can hold, end to end: counted, announced once per instance, alarmed; never evicted for."""

from __future__ import annotations

import pytest
from daemon_guard.core import guard_events as ge

from tests.integration.conftest import EVICTION_REASON
from tests.integration.test_own_events import assert_valid
from tests.integration.test_placement_in_sim import scale_out


@pytest.mark.slow
def test_preempt_stops_nothing_for_a_daemon_that_can_never_fit_and_says_so() -> None:
    # GIVEN preempt mode and a daemon bigger than any instance (the other daemons fit)
    run, audit = scale_out("preempt", huge_daemon=True)
    assert run.deployment is not None
    # THEN no eviction was made for it (evictions for the daemons that fit go on)
    evictions = [t for t in run.world.ecs.tasks.values() if t.stopped_reason.startswith(EVICTION_REASON)]
    assert all("too-big" not in t.stopped_reason for t in evictions)
    assert audit.wrong == []
    # AND the reconciler counts every such instance (the alarm's metric) and announces each once
    assert max(run.deployment.records.metric_values("InstancesDaemonsCannotFit")) >= 10
    events = [e for e in run.deployment.own_events.events if e["detail-type"] == ge.DAEMONS_CANNOT_FIT]
    instances = [e["detail"]["instanceId"] for e in events]
    assert instances and len(instances) == len(set(instances))
    assert all("too-big" in e["detail"]["daemons"] for e in events)
    assert_valid(events)
