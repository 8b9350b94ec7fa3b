"""Which drain a replacement wakes (`core.replica_wake.wake_order`), as a table."""

from __future__ import annotations

import pytest
from daemon_guard.core.replica_wake import MISSED, ServiceWaiter, wake_order

A, B, C = "arn:ci/a", "arn:ci/b", "arn:ci/c"


@pytest.mark.parametrize(("waiters", "order"), [
    pytest.param([], [], id="nobody-waits"),
    pytest.param([(B, "cb-b", 20.0), (A, "cb-a", 30.0), (C, "cb-c", 10.0)], ["cb-c", "cb-b", "cb-a"],
                 id="the-drain-that-started-first-comes-first"),
    pytest.param([(B, "cb-b", 10.0), (A, "cb-a", 10.0)], ["cb-a", "cb-b"], id="a-tie-goes-by-instance"),
    pytest.param([(A, MISSED, 5.0), (B, "cb-b", 10.0)], ["cb-b"], id="a-callback-known-gone-is-left-out"),
])
def test_wake_order(waiters: list[tuple[str, str, float]], order: list[str]) -> None:
    # GIVEN the drains registered on a service / WHEN a replacement reaches RUNNING / THEN they are woken in turn
    assert [w.callback_id for w in wake_order(ServiceWaiter(*w) for w in waiters)] == order
