"""Issue 12's suites in `daemon-guard bench` (exits outside Auto Scaling, daemon rollout): run, render tables."""

from __future__ import annotations

from typing import Any

from bench.exits import TRIGGERS, ExitStory, exits_suite
from bench.rollout import RolloutStory, rollout_suite

TRIGGER_NAMES = {"scheduled-change": "AWS Health scheduled change", "ec2-state": "EC2 stop outside Auto Scaling"}


def run_exits_suite(seeds: tuple[int, ...], quick: bool) -> dict[str, Any]:
    """The exits story on every seed (a smaller cluster with ``--quick``)."""
    story = ExitStory(on_demand=20, scheduled_changes=3, stops=3, standalone_jobs=15) if quick else ExitStory()
    return exits_suite(seeds, story)


def exits_markdown(report: dict[str, Any]) -> str:
    """The README table of the exits suite, or nothing when it did not run."""
    exits = report.get("exits")
    if not exits:
        return ""
    sc = exits["scenario"]
    lines = [f"**Exits outside Auto Scaling** ({sc['on_demand']} instances; an AWS Health scheduled stop of "
             f"{sc['scheduled_changes']} announced {sc['change_start_s']:.0f} s ahead; {sc['stops']} instances "
             f"stopped with StopInstances; seeds {sc['seeds']})", "",
             "| strategy | trigger | instances | drains started | tasks killed | ordering violations | "
             "lifecycle timeouts | replaced before the change |", "|---|---|---|---|---|---|---|---|"]
    for strategy, by_trigger in exits["strategies"].items():
        for trigger in TRIGGERS:
            f = by_trigger[trigger]
            replaced = f["replaced_before_change"] if trigger == "scheduled-change" else "n/a"
            lines.append(f"| {strategy} | {TRIGGER_NAMES[trigger]} | {f['instances']} | {f['drains_started']} | "
                         f"{f['tasks_killed']} | {f['ordering_violations']} | {f['lifecycle_timeouts']} | {replaced} |")
    return "\n".join([*lines, ""])


def rollout_markdown(report: dict[str, Any]) -> str:
    """The README table of the daemon-rollout suite, or nothing when it did not run."""
    rollout = report.get("rollout")
    if not rollout:
        return ""
    sc = rollout["scenario"]
    lines = [f"**Daemon rollout on a full cluster** ({sc['instances']} instances under a replica backlog; "
             f"{sc['daemon']} updated to a revision of {sc['new_cpu']} CPU units / {sc['new_memory']} MiB; "
             f"{sc['horizon_after_rollout_s']:.0f} s observed; seeds {sc['seeds']})", "",
             "| strategy | coverage before | coverage min / mean during | new revision at the end | "
             "restored after (s) | evictions | min-healthy breaches |", "|---|---|---|---|---|---|---|"]
    for strategy, f in rollout["strategies"].items():
        restored = "never" if f["restored_s"] is None else f["restored_s"]
        lines.append(f"| {strategy} | {f['coverage_before_pct']}% | {f['coverage_min_pct']}% / "
                     f"{f['coverage_mean_pct']}% | {f['new_revision_end_pct']}% | {restored} | {f['evictions']} | "
                     f"{f['min_healthy_breaches']} |")
    return "\n".join([*lines, ""])


def run_rollout_suite(seeds: tuple[int, ...], quick: bool) -> dict[str, Any]:
    """The daemon-rollout story on every seed (a smaller cluster with ``--quick``)."""
    story = RolloutStory(instances=12, replica_services=6) if quick else RolloutStory()
    return rollout_suite(seeds, story)
