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


@pytest.mark.parametrize(("kind", "strategy"), CASES)
def test_nothing_is_lost_under_the_fault(kind: str, strategy: str) -> None:
    # GIVEN the same story and fault / WHEN it runs
    result = _run(kind, strategy)

    # THEN no task, lifecycle action, workflow or daemon was lost
    assert result["detail"] | {"effects_lost": result["effects_lost"]} == result["detail"] | {"effects_lost": 0}
