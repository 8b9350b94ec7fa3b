"""The robustness suite's ranges: each metric's min and max across profiles, and where each came from."""

from __future__ import annotations

from bench.suites import ranges


def test_each_metric_reports_its_extremes_and_their_profiles() -> None:
    # GIVEN one strategy's figures under three profiles (n/a where it keeps no order)
    by_profile = {
        "as-documented": {"s": {"kills": 0, "overhead_s": {"p99": 3.0}, "tier_order_violations": "n/a"}},
        "as-reported": {"s": {"kills": 2, "overhead_s": {"p99": 1.0}, "tier_order_violations": "n/a"}},
        "worst": {"s": {"kills": 5, "overhead_s": {"p99": 2.0}, "tier_order_violations": "n/a"}},
    }
    # WHEN the ranges are taken
    out = ranges(by_profile)["s"]
    # THEN each numeric metric has its min and max with the profile of each; n/a is no number
    assert out["kills"] == {"min": 0.0, "min_profile": "as-documented", "max": 5.0, "max_profile": "worst"}
    assert out["overhead_s.p99"] == {"min": 1.0, "min_profile": "as-reported", "max": 3.0,
                                     "max_profile": "as-documented"}
    assert "tier_order_violations" not in out
