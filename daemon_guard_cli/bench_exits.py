"""The exits suite's place in `daemon-guard bench`: run it, and render its table (a section of its own)."""

from __future__ import annotations

from typing import Any

from sim.exits import TRIGGERS, ExitStory, exits_suite

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
