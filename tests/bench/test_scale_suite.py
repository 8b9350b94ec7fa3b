"""The scale suite's reconciler story at a small size: what it measures, and that the reconciler holds its bounds."""

from __future__ import annotations

import pytest

from bench.reads import READ_REFILL_PER_S
from bench.scale import ScaleStory, run_reconciler_story, scale_markdown


@pytest.mark.slow
def test_the_reconciler_audits_every_cluster_within_its_cycle_and_repairs_a_starved_daemon() -> None:
    # GIVEN 60 instances in 3 clusters, an audit cycle of 3 minutes, and no event reaching the guard
    story = ScaleStory(instances=60, clusters=3, cycle_min=3)
    # WHEN the story runs (seeded) and a log router is starved two minutes in
    figures = run_reconciler_story(story, seed=4)
    # THEN every cluster was audited within the cycle, the starved daemon was noticed and the guard repaired it
    assert figures["clusters_audited"] == 3
    assert figures["first_full_round_s"] is not None and figures["first_full_round_s"] <= 3 * 60
    assert figures["noticed_s"] is not None and figures["noticed_s"] <= 60
    assert figures["repair_s"] is not None and figures["repair_s"] <= 120
    assert figures["restored_by"] == "guard"
    # AND the reconciler's reads stayed under a tenth of the read refill, its 10 s peak under its pace, unthrottled
    assert figures["reads_per_min"] / 60 <= 0.1 * READ_REFILL_PER_S
    assert figures["peak_reads_per_s"] <= 8.0 + 40 / 10
    assert figures["throttles"] == 0
    assert figures["duration_p99_over_timeout"] < 0.5
    # AND its state-table requests are counted
    assert figures["state_table"]["writes_per_min"] > 0
    # AND the README table names the size
    assert "| 60x3 | 3 |" in scale_markdown({"scale": {"reconciler": {story.label: figures}}})


def test_the_refresh_table_shows_what_a_refresh_without_a_budget_loses() -> None:
    # GIVEN the refresh figures of a refresh without a budget and with 10%
    def figures(budget: str, share: float, below: list[str]) -> dict[str, object]:
        return {"budget": budget, "profile": "as-documented", "instances": 100, "min_running_share": share,
                "services_below_minimum_healthy": below, "drain_s": {"p50": 80.0, "p99": 240.0}, "kills": 0,
                "lifecycle_timeouts": 0, "reads_per_s": {"mean": 7.0, "peak": 60.0}, "throttles": 3,
                "most_under_budget": 10, "most_waiting": 90}
    refresh = {"none": figures("none", 0.5, ["app-00", "app-03"]), "10%": figures("10%", 1.0, [])}
    # WHEN the scale suite's README text is written
    text = scale_markdown({"scale": {"reconciler": {}, "refresh": refresh}})
    # THEN each budget has its row, naming the services it took below their minimumHealthyPercent
    assert "**Instance refresh of 100**" in text and "`as-documented`" in text
    assert "| none | 0.5 | app-00, app-03 | 80.0 / 240.0 | 0 | 0 | 7.0 / 60.0 | 3 | 10 / 90 |" in text
    assert "| 10% | 1.0 | - |" in text
