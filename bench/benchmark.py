"""`daemon-guard bench`: run the suites side by side; write JSON, Markdown tables and a PNG chart."""

from __future__ import annotations

import argparse
import json
import platform
import py_compile
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.bench_exits import exits_markdown, rollout_markdown, run_exits_suite, run_rollout_suite
from bench.faults import fault_suite, faults_markdown
from bench.ranges import FULL_DRAWS, QUICK_DRAWS, ranges_markdown, ranges_suite
from bench.scale import scale_markdown, scale_suite
from bench.scenarios import DrainStory
from bench.suites import (
    DEFAULT_PROFILE,
    DRAIN_STRATEGIES,
    FUNCTIONS,
    drain_suite,
    placement_suite,
    robustness_suite,
    timeouts_text,
)
from sim.ecs import profile_params
from sim.params import describe, parse_settings


def _progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def cost_suite() -> dict[str, Any]:
    """The Lambda asset as deployed: zipped and unpacked size, and each handler's cold import from it.

    The asset is built exactly as `cdk synth` builds it (pip step and pruning included). Cold import
    is the median of 7 fresh interpreters that see only the asset and the Powertools layer's
    packages: once with the asset's bytecode compiled (what a synth under Python 3.13, the Lambda
    runtime's version, ships) and once from source only (what Lambda does with an asset that carries
    no bytecode for its Python: it compiles every module at each cold start).
    """
    import compileall
    import shutil

    from bench.asset import HANDLER_MODULES, build_measured_asset, cold_import_ms, layer_equivalent
    from infra.bundling import asset_size

    with tempfile.TemporaryDirectory(prefix="daemon-guard-asset-") as tmp:
        asset = build_measured_asset(Path(tmp) / "asset")
        zipped, unpacked, files = asset_size(asset)
        layer = layer_equivalent(Path(tmp) / "layer")
        source_only = {m: cold_import_ms(asset, layer, m) for m in HANDLER_MODULES}
        compiled = Path(tmp) / "compiled"
        shutil.copytree(asset, compiled)
        compileall.compile_dir(compiled, quiet=2, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
        with_bytecode = {m: cold_import_ms(compiled, layer, m) for m in HANDLER_MODULES}
    from bench.costs import measure

    return {"asset_zip_bytes": zipped, "asset_unpacked_bytes": unpacked, "asset_files": files,
            "cold_import_ms": with_bytecode, "cold_import_source_only_ms": source_only,
            "python": platform.python_version(), "running": measure()}


def _drain_table(drain: dict[str, Any]) -> list[str]:
    sc = drain["scenario"]
    lines = [f"**Drain** ({sc['on_demand']} on-demand + {sc['spot']} Spot instances; scale-ins of "
             f"{sc['scale_ins']}, an instance refresh, {sc['spot_interruptions']} Spot interruptions; "
             f"seeds {sc['seeds']}; ECS behaviour profile `{drain.get('profile', 'as-documented')}`)", "",
             "| strategy | claims | drains | daemon stopped before an app task STOPPED | tier-order violations | "
             "tasks killed | lifecycle timeouts | Spot drains in 120 s | overhead p50 / p99 (s) | "
             "overhead per tier p50 / p99 (s) | deadlines exceeded | API calls per drain | handler timeouts |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, s in drain["strategies"].items():
        claims = ", ".join(s.get("claims", [])) or "none"
        lines.append(f"| {name} | {claims} | {s['drains']} | {s['daemon_stopped_before_app_stopped']} | "
                     f"{s['tier_order_violations']} | {s['ungraceful_task_kills']} | {s['lifecycle_timeouts']} | "
                     f"{s['spot_within_120s']} / {s['spot_drains']} | "
                     f"{s['overhead_s']['p50']} / {s['overhead_s']['p99']} | "
                     f"{s['overhead_per_tier_s']['p50']} / {s['overhead_per_tier_s']['p99']} | "
                     f"{s['deadline_exceeded']} | {s['api_calls_per_drain']} | {timeouts_text(s)} |")
    return [*lines, ""]


ROBUST_DRAIN = ("daemon_stopped_before_app_stopped", "tier_order_violations", "ungraceful_task_kills",
                "lifecycle_timeouts", "spot_within_120s", "overhead_s.p99",
                *(f"handler_timeouts_by_function.{f}" for f in FUNCTIONS))
ROBUST_PLACEMENT = ("daemon_first_rate", "coverage_rate", "time_to_daemons_s.p99", "not_covered_by_end",
                    "replica_first_start_s.p50", "replica_first_start_s.p99", "evictions",
                    "evictions_per_instance_covered", *(f"handler_timeouts_by_function.{f}" for f in FUNCTIONS))


def _robustness_table(robust: dict[str, Any]) -> list[str]:
    def cell(r: dict[str, Any] | None) -> str:
        if r is None:
            return "n/a"
        lo, hi = r["min"], r["max"]
        return f"{lo:g}" if lo == hi else f"{lo:g} ({r['min_profile']}) to {hi:g} ({r['max_profile']})"

    lines = [f"**Robustness** (every strategy under the profiles {', '.join(robust['profiles'])}; "
             f"seeds {robust['seeds']}; min to max, with the profile of each extreme)", "",
             "| drain strategy | " + " | ".join(ROBUST_DRAIN) + " |", "|---" * (len(ROBUST_DRAIN) + 1) + "|"]
    lines += [f"| {name} | " + " | ".join(cell(m.get(k)) for k in ROBUST_DRAIN) + " |"
              for name, m in robust["drain"].items()]
    lines += ["", "| placement strategy | " + " | ".join(ROBUST_PLACEMENT) + " |",
              "|---" * (len(ROBUST_PLACEMENT) + 1) + "|"]
    lines += [f"| {name} | " + " | ".join(cell(m.get(k)) for k in ROBUST_PLACEMENT) + " |"
              for name, m in robust["placement"].items()]
    return [*lines, ""]


def _per_covered(figures: dict[str, Any]) -> str:
    """Evictions per instance covered by the end: a number, or why not (older reports lack it)."""
    if "evictions_per_instance_covered" not in figures:
        return "n/a"
    per = figures["evictions_per_instance_covered"]
    return f"{per} ({figures['instances_covered']} covered)" if per is not None else "none covered"


def markdown(report: dict[str, Any]) -> str:
    """The README tables."""
    lines: list[str] = []
    placement = report.get("placement")
    if placement:
        sc = placement["scenario"]
        lines += [f"**Placement** ({sc['launches_per_seed']} launches per seed, seeds {sc['seeds']}, backlog "
                  f"{sc['backlog_per_service']} pending tasks per service, daemon cycle {sc['daemon_cycle_s']} s; "
                  f"ECS behaviour profile `{placement.get('profile', 'as-documented')}`)", "",
                  "| strategy | daemon-first | coverage (60 s) | time to daemons p50 / p99 (s) | "
                  "not covered by the end | replica first start p50 / p99 (s) | "
                  "app tasks without daemons p50 / p99 (s) | evictions | evictions per instance covered | "
                  "min-healthy breaches | handler timeouts |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for name, s in placement["strategies"].items():
            lines.append(f"| {name} | {s['daemon_first_rate']:.2%} | {s['coverage_rate']:.2%} | "
                         f"{s['time_to_daemons_s']['p50']} / {s['time_to_daemons_s']['p99']} | "
                         f"{s['not_covered_by_end']} | "
                         f"{s['replica_first_start_s']['p50']} / {s['replica_first_start_s']['p99']} | "
                         f"{s['daemon_missing_s']['p50']} / {s['daemon_missing_s']['p99']} | {s['evictions']} | "
                         f"{_per_covered(s)} | {s['min_healthy_breaches']} | {timeouts_text(s)} |")
        failing = placement.get("failing_daemon")
        if failing:
            fs = failing["scenario"]
            lines += ["", f"One daemon's image ({fs['daemon']}) cannot start on {fs['share']:.0%} of instances "
                          f"({fs['launches_per_seed']} launches per seed):", "",
                      "| strategy | daemon-first | instances the daemon failed on | left without replicas | "
                      "serving replicas without that daemon | replica first start p50 / p99 (s) |",
                      "|---|---|---|---|---|---|"]
            lines += [f"| {name} | {s['daemon_first_rate']:.2%} | {s.get('failed_daemon_instances', 'n/a')} | "
                      f"{s['stranded_by_failed_daemon']} | {s.get('served_without_failed_daemon', 'n/a')} | "
                      f"{s['replica_first_start_s']['p50']} / {s['replica_first_start_s']['p99']} |"
                      for name, s in failing["strategies"].items()]
            critical = {name: s["critical"] for name, s in failing["strategies"].items() if "critical" in s}
            if critical:
                lines += ["", "With that daemon critical (`criticalDaemons`), gate mode replaces its instances instead "
                              "of failing open:", "",
                          "| strategy | instances replaced | replacements held | time to a covered replacement "
                          "p50 / p99 (s) | not covered by the end | capacity lost (instance-s) |",
                          "|---|---|---|---|---|---|"]
                lines += [f"| {name} | {c['instances_replaced']} | {c['replacements_held']} | "
                          f"{c['time_to_covered_replacement_s']['p50']} / "
                          f"{c['time_to_covered_replacement_s']['p99']} | "
                          f"{c['replacements_not_covered_by_end']} | {c['capacity_lost_instance_s']} |"
                          for name, c in critical.items()]
        lines += ["", "| cluster size | ECS calls per new-instance event | handler CPU p50 (ms) |", "|---|---|---|"]
        for size, c in placement["api_cost"].items():
            lines.append(f"| {size} | {c['calls_per_launch_event']} | {c['handler_cpu_ms_p50']} |")
        lines.append("")
    drain = report.get("drain")
    if drain:
        lines += _drain_table(drain)
    robust = report.get("robustness")
    if robust:
        lines += _robustness_table(robust)
    if report.get("ranges"):
        lines += ranges_markdown(report["ranges"])
    faults = report.get("faults")
    if faults:
        lines += faults_markdown(faults)
    cost = report.get("cost")
    if cost:
        lines += [f"**Asset**: {cost['asset_zip_bytes'] / 2**20:.2f} MiB zipped, "
                  f"{cost['asset_unpacked_bytes'] / 2**20:.2f} MiB unpacked, {cost['asset_files']} files.", "",
                  "| Lambda handler module | cold import p50, with bytecode (ms) | from source only (ms) |",
                  "|---|---|---|"]
        lines += [f"| {m} | {ms} | {cost['cold_import_source_only_ms'][m]} |"
                  for m, ms in cost["cold_import_ms"].items()]
        lines.append("")
        running = cost.get("running")
        if running:
            a, bill = running["assumptions"], running["per_1000_instance_hours"]
            lines += [f"**What it costs to run**, per 1,000 instance-hours ({a['fleet_instances']} instances living "
                      f"{a['instance_lifetime_h']:.0f} h on average: {a['launches_and_drains_per_1000_instance_hours']}"
                      " launches and as many drains; measured on the demo story, seed "
                      f"{running['story']['seed']}):", "",
                      "| part | Lambda invocations | GB-seconds | durable operations | DynamoDB requests | "
                      "EventBridge events | USD |", "|---|---|---|---|---|---|---|"]
            lines += [f"| {name} | {p['lambda_invocations']} | {p['gb_seconds']} | {p['durable_operations']} | "
                      f"{p['dynamodb_requests']} | {p['eventbridge_events']} | {p['usd']:.4f} |"
                      for name, p in bill.items() if isinstance(p, dict)]
            lines += [f"| **total** | | | | | | **{bill['total_usd']:.4f}** |", ""]
    return "\n".join(lines)


def plot(report: dict[str, Any], path: Path) -> None:
    """Daemon-first rate and time-to-daemons by strategy; drain overhead; API calls by cluster size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    placement = report.get("placement")
    if placement:
        names = list(placement["strategies"])
        s = placement["strategies"]
        ax = axes[0]
        colors = ["#999", "#bbb", "#4a7", "#27a"][:len(names)]
        ax.bar(names, [s[n]["daemon_first_rate"] * 100 for n in names], color=colors)
        ax.set_ylim(0, 100.5)
        ax.set_ylabel("daemon-first launches (%)")
        ax.set_title("Daemon-first rate (bars) and time to daemons p99 (dots)")
        twin = ax.twinx()
        twin.plot(names, [s[n]["time_to_daemons_s"]["p99"] for n in names], "ko")
        twin.set_ylabel("time to daemons p99 (s)")
        twin.set_ylim(bottom=0)
        ax.tick_params(axis="x", rotation=15)
        sizes = list(placement["api_cost"])
        axes[2].plot([int(x) for x in sizes], [placement["api_cost"][x]["calls_per_launch_event"] for x in sizes],
                     "o-", color="#27a")
        axes[2].set_xscale("log")
        axes[2].set_ylim(bottom=0)
        axes[2].set_xlabel("instances in the cluster")
        axes[2].set_ylabel("ECS calls per new-instance event")
        axes[2].set_title("Cost per event stays flat as the cluster grows")
    drain = report.get("drain")
    if drain:
        d = drain["strategies"]
        names = list(d)
        xs = range(len(names))
        ax = axes[1]
        ax.bar([x - 0.2 for x in xs], [d[n]["overhead_s"]["p50"] for n in names], width=0.4, color="#ccc",
               label="overhead p50 (s)")
        ax.plot(list(xs), [d[n]["overhead_per_tier_s"]["p99"] for n in names], "rs", label="per-tier p99 (s)")
        ax.set_ylim(bottom=0)
        ax.set_ylabel("seconds above the slowest stops")
        counts = ax.twinx()
        counts.bar([x + 0.2 for x in xs], [d[n]["ungraceful_task_kills"] for n in names], width=0.2,
                   color="#c33", label="tasks killed")
        counts.bar([x + 0.4 for x in xs], [_violations(d[n]) for n in names], width=0.2, color="#36c",
                   label="ordering violations")
        counts.set_ylim(bottom=0)
        counts.set_ylabel("count")
        ax.set_xticks(list(xs), names, rotation=20, ha="right")
        ax.set_title(f"Drain: overhead, kills, violations ({drain.get('profile', 'as-documented')})")
        handles = ax.get_legend_handles_labels()[0] + counts.get_legend_handles_labels()[0]
        labels = ax.get_legend_handles_labels()[1] + counts.get_legend_handles_labels()[1]
        ax.legend(handles, labels, fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _violations(figures: dict[str, Any]) -> int:
    """Daemon-before-app plus tier-order violations (n/a counts as 0 on the chart, as no order is kept)."""
    return sum(v for v in (figures["daemon_stopped_before_app_stopped"], figures["tier_order_violations"])
               if isinstance(v, int))


START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def update_readme(path: Path, table: str) -> None:
    """Replace the README's benchmark section (between the bench markers) with the latest tables."""
    text = path.read_text()
    if START not in text or END not in text:
        raise ValueError(f"{path} has no {START} ... {END} section")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{START}\n{table}\n{END}{tail}")


def drain_strategies(args: argparse.Namespace) -> tuple[str, ...]:
    """The drain strategies ``--strategies`` names (all of them by default); SystemExit names an unknown one."""
    chosen = tuple(s.strip() for s in str(getattr(args, "strategies", "") or "").split(",") if s.strip())
    unknown = [s for s in chosen if s not in DRAIN_STRATEGIES]
    if unknown:
        raise SystemExit(f"daemon-guard bench: unknown drain strategy {', '.join(unknown)}; "
                         f"known: {', '.join(DRAIN_STRATEGIES)}")
    return chosen or DRAIN_STRATEGIES


def list_params() -> str:
    """The named simulator parameters as a Markdown table (``--list-params``)."""
    rows = describe()
    lines = ["| name | type | default | range | source |", "|---|---|---|---|---|"]
    lines += [f"| {r['name']} | {r['type']} | {r['default']} | {r['range']} | {r['source']} |" for r in rows]
    return "\n".join(lines)


def run_bench(args: argparse.Namespace) -> int:
    """Run the chosen suites and write what was asked for."""
    if getattr(args, "list_params", False):
        print(list_params())
        return 0
    try:
        params = parse_settings(getattr(args, "param", None) or [])
    except ValueError as exc:
        print(f"daemon-guard bench: {exc}", file=sys.stderr)
        return 2
    seeds = tuple(int(s) for s in str(args.seeds).split(",") if s)
    launches = 200 if args.quick else args.launches
    sizes = (10, 100) if args.quick else tuple(int(s) for s in str(args.sizes).split(","))
    story = DrainStory(on_demand=60, spot=10, first_scale_in=20, second_scale_in=20, spot_interruptions=5,
                       refresh=False) if args.quick else DrainStory()
    report: dict[str, Any] = {}
    started = time.monotonic()
    profile = getattr(args, "profile", DEFAULT_PROFILE)
    profile_params(profile)  # an unknown profile fails here, before any run
    drain_strategies(args)  # and so does an unknown strategy
    report["profile"] = profile
    if args.suite in ("placement", "all"):
        report["placement"] = placement_suite(launches, seeds, sizes, _progress, profile, params)
    if args.suite in ("drain", "all"):
        report["drain"] = drain_suite(seeds, story, _progress, profile, drain_strategies(args), params)
    if args.suite == "ranges":
        report["ranges"] = ranges_suite(QUICK_DRAWS if args.quick else FULL_DRAWS, seeds[0], _progress, profile,
                                        fixed=params)
    if args.suite == "robustness":
        # The grid is long: it runs the quick story and 200 launches per seed under every profile.
        quick = DrainStory(on_demand=60, spot=10, first_scale_in=20, second_scale_in=20, spot_interruptions=5,
                           refresh=False)
        report["robustness"] = robustness_suite(seeds, quick, min(launches, 200), _progress)
    if args.suite in ("faults", "all"):
        report["faults"] = fault_suite(seeds, _progress)
    if args.suite in ("exits", "all"):
        _progress("exits: AWS Health scheduled changes and EC2 stops")
        report["exits"] = run_exits_suite(seeds, args.quick)
    if args.suite in ("rollout", "all"):
        _progress("rollout: a daemon service moved to a larger revision on a full cluster")
        report["rollout"] = run_rollout_suite(seeds, args.quick)
    if args.suite == "scale":
        report["scale"] = scale_suite(seeds, args.quick, _progress, profile)
    if args.suite in ("cost", "all"):
        _progress("cost: asset size and cold import")
        report["cost"] = cost_suite()
    report["wall_seconds"] = round(time.monotonic() - started, 1)
    text = "\n".join(part for part in (markdown(report), exits_markdown(report), rollout_markdown(report),
                                        scale_markdown(report)) if part)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2))
    if args.markdown:
        Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
        Path(args.markdown).write_text(text)
    if args.plot:
        plot(report, Path(args.plot))
    if args.readme:
        update_readme(Path(args.readme), text)
    print(text)
    return 0
