"""The fault suite as a specification: under every fault kind, nothing is lost."""

from __future__ import annotations

import pytest

from bench.faults import FAULT_KINDS, run_fault

# Every kind runs a whole story (the load kind 600 launches and drains at once): `make test` runs them,
# `make test-fast` leaves them out.
pytestmark = pytest.mark.slow


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_nothing_is_lost_under_the_fault(kind: str) -> None:
    # GIVEN the fault story (warm cluster, scale-out under backlog, scale-in drains) with one fault injected
    # WHEN it runs through the real handlers and workflows
    result = run_fault(kind, seed=1)

    # THEN the fault was really injected, and no task, lifecycle action, workflow or daemon was lost
    assert result["injected"] > 0
    assert result["detail"] | {"effects_lost": result["effects_lost"]} == result["detail"] | {"effects_lost": 0}
    assert result["lifecycle_timeouts"] == 0
