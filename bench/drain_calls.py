"""Where the drain story's API calls and overhead go: ``python -m bench.drain_calls``.

Runs one daemon-guard drain strategy over the drain story (as ``daemon-guard bench --suite drain`` does:
`bench.suites.run_drain`) with every API call the functions make attributed, from the caller's stack, to
the function (drain workflow, intake, reconciler, launch gate), the site (the workflow or service function
and the adapter method that made it) and, for the drain workflow, the phase the drain was in (its
`DrainProgress`). The product is not touched: the attribution wraps the simulator's call log. Prints the
suite's figures, calls per drain by API, by site and by phase, and the guard's own phase durations.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from daemon_guard.core.drain import DrainProgress

from bench import suites as bench_suites
from bench.measure import percentile
from bench.scenarios import DrainStory
from sim.deployment import GuardDeployment
from sim.world import World

QUICK_STORY = DrainStory(on_demand=60, spot=10, first_scale_in=20, second_scale_in=20, spot_interruptions=5,
                         refresh=False)
_FUNCTIONS = {"daemon_guard.workflows.drain": "drain", "daemon_guard.workflows.launch_gate": "launch-gate",
              "daemon_guard.entrypoints.intake": "intake", "daemon_guard.entrypoints.reconciler": "reconciler"}


@dataclass
class CallSites:
    """API calls counted by (function, operation), (function, site) and (phase, operation)."""

    by_operation: Counter[tuple[str, str]] = field(default_factory=Counter)
    by_site: Counter[tuple[str, str]] = field(default_factory=Counter)
    by_phase: Counter[tuple[str, str]] = field(default_factory=Counter)

    def note(self, operation: str, frame: FrameType | None) -> None:
        """Attribute one call made with `frame` as the innermost caller."""
        function, site, adapter, phase = "other", "", "", ""
        while frame is not None:
            module = str(frame.f_globals.get("__name__", ""))
            name = frame.f_code.co_name
            if module.startswith("daemon_guard.adapters") and not adapter:
                adapter = name
            elif module.startswith(("daemon_guard.workflows", "daemon_guard.services")) and not site:
                site = name
            if not phase and module.startswith(("daemon_guard.workflows", "daemon_guard.services")):
                progress = frame.f_locals.get("progress")
                if isinstance(progress, DrainProgress):
                    phase = progress.phase if progress.phase != "tier" else f"tier-{progress.tier}"
                    if progress.phase == "replicas" and progress.watch.replicas_held:
                        phase = "replicas (held)"
            if module in _FUNCTIONS:
                function = _FUNCTIONS[module]
            frame = frame.f_back
        self.by_operation[(function, operation)] += 1
        self.by_site[(function, f"{site}>{adapter}" if adapter else site)] += 1
        if function == "drain":
            self.by_phase[(phase or "(before the first look)", operation)] += 1


def run(strategy: str, seed: int, story: DrainStory, profile: str) -> tuple[dict[str, Any], CallSites,
                                                                           dict[str, list[float]]]:
    """One traced run: the suite's figures, the call sites, and the guard's TierDuration values by phase."""
    sites = CallSites()
    durations: dict[str, list[float]] = {}

    class Traced(World):
        """The story's world, its call log attributed (run_drain builds its world by the name World)."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            record = self.call_log.record

            def noting(service: str, operation: str, error_code: str | None = None) -> None:
                sites.note(operation, sys._getframe(1))
                record(service, operation, error_code)

            self.call_log.record = noting  # type: ignore[method-assign]

    close = GuardDeployment.close

    def keep(deployment: GuardDeployment) -> None:
        durations.update(_phase_durations(deployment.records.emf))
        close(deployment)

    setattr(bench_suites, "World", Traced)  # noqa: B010
    setattr(GuardDeployment, "close", keep)  # noqa: B010
    try:
        figures = bench_suites.run_drain(strategy, seed, story, profile)
    finally:
        setattr(bench_suites, "World", World)  # noqa: B010
        setattr(GuardDeployment, "close", close)  # noqa: B010
    return figures, sites, durations


def _phase_durations(emf: list[dict[str, Any]]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for doc in emf:
        if "TierDuration" in doc:
            out.setdefault(str(doc.get("Tier")), []).extend(float(v) for v in doc["TierDuration"])
    return out


def report(figures: dict[str, Any], sites: CallSites, durations: dict[str, list[float]]) -> str:
    """The figures and the breakdowns as text, calls as per drain."""
    drains = max(1, int(figures["drains"]))
    keep = ("drains", "daemon_stopped_before_app_stopped", "tier_order_violations", "ungraceful_task_kills",
            "overhead_s", "overhead_per_tier_s", "deadline_exceeded", "lifecycle_timeouts", "api_calls_per_drain",
            "spot_within_120s", "spot_drains", "handler_timeouts", "handler_timeouts_by_function", "attribution")
    lines = [json.dumps({k: figures.get(k) for k in keep})]

    def table(title: str, counts: Counter[tuple[str, str]], limit: int = 40) -> None:
        lines.append(f"\n{title} (per drain)")
        for (a, b), n in counts.most_common(limit):
            lines.append(f"  {n / drains:8.2f}  {a:<24} {b}")

    table("calls by function and operation", sites.by_operation)
    table("calls by function and site", sites.by_site)
    table("drain workflow calls by phase and operation", sites.by_phase)
    lines.append("\nphase durations as the guard measured them (TierDuration): n, p50, p99 s")
    for label, values in sorted(durations.items()):
        lines.append(f"  {label:<12} {len(values):5d} {percentile(values, 50):8.1f} {percentile(values, 99):8.1f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run and print; exit 0."""
    parser = argparse.ArgumentParser(prog="python -m bench.drain_calls", description=__doc__)
    parser.add_argument("--strategy", default="daemon-guard-tiers")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profile", default="worst")
    parser.add_argument("--quick", action="store_true", help="the quick story (bench's --quick)")
    args = parser.parse_args(argv)
    figures, sites, durations = run(args.strategy, args.seed, QUICK_STORY if args.quick else DrainStory(),
                                    args.profile)
    print(report(figures, sites, durations))
    return 0


if __name__ == "__main__":
    sys.exit(main())
