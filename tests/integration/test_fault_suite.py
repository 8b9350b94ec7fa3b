"""The fault suite as a specification: under every fault kind, with gate placement and each ordered drain at
the `worst` ECS behaviour profile, every claim holds and nothing is lost."""

from __future__ import annotations

import functools
from typing import Any

import pytest

from bench.faults import CLAIM_COLUMNS, FAULT_KINDS, FAULT_STRATEGIES, run_fault, story_for

# Every kind runs a whole story with both drain orders (the test's sizes: bench.faults.story_for(small=True);
# the bench runs the full ones): `make test` runs them, `make test-fast` leaves them out.
pytestmark = pytest.mark.slow
CASES = [(kind, strategy) for kind in FAULT_KINDS for strategy in FAULT_STRATEGIES]
# The order each claiming configuration promises (apps-first stops its daemons together: no tier order).
CLAIMED = {"daemon-guard-tiers": CLAIM_COLUMNS,
           "daemon-guard-apps-first": tuple(c for c in CLAIM_COLUMNS if c != "tier_order_violations")}
# Known, not yet fixed: in gate mode a daemon that exits on an instance whose gate is open is repaired by
# evictions alone; at `worst` (replicas see freed room at their next pass, before the daemon scheduler's
# cycle) the replicas retake the room every time, preempt gives up after 4 futile tries, and the instance
# serves on without that daemon.
OPEN_GATE_REPAIR = pytest.mark.xfail(strict=True, reason="a crashed daemon on an open-gate instance is not "
                                     "re-placed at `worst`: evictions are retaken by replicas")


@functools.cache
def _run(kind: str, strategy: str) -> dict[str, Any]:
    """One story per case, shared by the tests below."""
    return run_fault(kind, strategy, seed=1, story=story_for(kind, small=True))


@pytest.mark.parametrize(("kind", "strategy"), CASES)
def test_every_claim_holds_under_the_fault(kind: str, strategy: str) -> None:
    # GIVEN the fault story (warm cluster, scale-out under backlog, scale-in drains; the load kind with an
    # instance refresh) with one fault injected, gate placement and a drain order, at `worst`
    # WHEN it runs through the real handlers and workflows
    result = _run(kind, strategy)

    # THEN the fault was really injected, and no claimed guarantee was broken, no task killed, no lifecycle
    # action timed out
    assert result["injected"] > 0
    assert {c: result[c] for c in CLAIMED[strategy]} == dict.fromkeys(CLAIMED[strategy], 0)


@pytest.mark.parametrize(("kind", "strategy"), [
    # In this short story the tiers run gets its daemon back inside the story and apps-first does not.
    pytest.param(kind, strategy, marks=OPEN_GATE_REPAIR)
    if (kind, strategy) == ("daemon-crash", "daemon-guard-apps-first") else (kind, strategy)
    for kind, strategy in CASES])
def test_nothing_is_lost_under_the_fault(kind: str, strategy: str) -> None:
    # GIVEN the same story and fault / WHEN it runs
    result = _run(kind, strategy)

    # THEN no task, lifecycle action, workflow or daemon was lost
    assert result["detail"] | {"effects_lost": result["effects_lost"]} == result["detail"] | {"effects_lost": 0}
