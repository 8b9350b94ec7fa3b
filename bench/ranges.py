"""The range suite: every configuration that claims a guarantee, over seeded draws of every named parameter.

`daemon-guard bench --suite ranges` runs gate placement (``daemon-guard-gate``, on the placement story) and
the apps-first and tiers drains with gate (on the drain story, whose scale-out and instance refresh also
launch instances the gate must hold) over draws that cover each range of sim.params: first its two
corners (every parameter at its low end, then every one at its high end), then Latin-hypercube draws (each
range cut into as many strata as there are draws, each stratum drawn once, seeded). Handlers run on
simulated time with the bench's normal settings, under one behaviour profile (``--profile``).

Per strategy it reports the violations of each claim summed over the draws and the draw (all its
parameter values) that did worst, with tasks killed, lifecycle timeouts, Spot drains inside the notice and
drain overhead. Claims: ``daemons-first`` (no instance serves a replica before its daemons are RUNNING),
``daemons-after-apps`` and ``tier-order`` (bench.drain_measure). Each claim's violations, and the tasks
killed, are split into those the guard counted itself, by cause (a Gate Failed Open or Drain Guarantee
Broken event for that instance: bench.attribution), and those it did not (``uncounted``, the figure that
must be 0), and the worst draw of each claim is the one with the most uncounted.
"""

from __future__ import annotations

import logging
import os
import random
import statistics
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from bench.scenarios import DrainStory, ScaleOut
from bench.suites import DEFAULT_PROFILE, named_params, run_drain, run_placement
from sim.params import PARAMS, ParamValue, SimParam, shown

Draw = dict[str, ParamValue]
Progress = Callable[[str], None]
# The configurations that claim a guarantee, each with its claims.
CLAIMED: dict[str, tuple[str, ...]] = {
    "daemon-guard-gate": ("daemons-first",),
    "daemon-guard-apps-first": ("daemons-first", "daemons-after-apps"),
    "daemon-guard-tiers": ("daemons-first", "daemons-after-apps", "tier-order"),
}
FULL_DRAWS, QUICK_DRAWS = 40, 8
# Small stories: each draw runs one scale-out and two drain stories. The drain story keeps an instance
# refresh (the daemon stall while draining, containers-roadmap#856, needs instances launched while
# others drain) and Spot interruptions.
PLACEMENT = ScaleOut(launches=40, warm_instances=12, warmup_s=180.0, tail_s=300.0)
DRAIN = DrainStory(on_demand=10, spot=4, first_scale_in=3, second_scale_in=3, spot_interruptions=2, refresh=True,
                   standalone_jobs=8, replica_services=4, horizon_s=3400.0)
CLAIM_KEYS = {"daemons-first": "served_before_daemons", "daemons-after-apps": "daemon_stopped_before_app_stopped",
              "tier-order": "tier_order_violations"}


def _value(param: SimParam, u: float) -> float:
    return param.low + u * (param.high - param.low)


def corner(high: bool, params: Sequence[SimParam] | None = None) -> Draw:
    """Every parameter at the low (or high) end of its range; a range as LO = HI at that end."""
    out: Draw = {}
    for p in params or list(PARAMS.values()):
        end = p.high if high else p.low
        out[p.name] = high if p.kind == "boolean" else (end, end) if p.kind == "seconds-range" else end
    return out


def latin_hypercube(count: int, rng: random.Random, params: Sequence[SimParam] | None = None) -> list[Draw]:
    """`count` draws in which each dimension's range, cut into `count` strata, has one draw per stratum
    (a LO,HI range is two dimensions, sorted into LO <= HI; a boolean is true in the upper half)."""
    chosen = params or list(PARAMS.values())
    columns: dict[str, list[list[float]]] = {}
    for p in chosen:
        dims = 2 if p.kind == "seconds-range" else 1
        columns[p.name] = []
        for _ in range(dims):
            strata = list(range(count))
            rng.shuffle(strata)
            columns[p.name].append([(s + rng.random()) / count for s in strata])
    draws: list[Draw] = []
    for i in range(count):
        draw: Draw = {}
        for p in chosen:
            us = [col[i] for col in columns[p.name]]
            if p.kind == "boolean":
                draw[p.name] = us[0] >= 0.5
            elif p.kind == "seconds-range":
                lo, hi = sorted(round(_value(p, u), 3) for u in us)
                draw[p.name] = (lo, hi)
            else:
                draw[p.name] = round(_value(p, us[0]), 4 if p.kind == "rate" else 3)
        draws.append(draw)
    return draws


def draws(count: int, seed: int, params: Sequence[SimParam] | None = None) -> list[Draw]:
    """The suite's draws: the two corners first, then Latin-hypercube draws up to `count` (seeded)."""
    corners = [corner(False, params), corner(True, params)][:count]
    return corners + latin_hypercube(count - len(corners), random.Random(f"ranges:{seed}"), params)


def run_draw(strategy: str, draw: Mapping[str, ParamValue], seed: int, profile: str) -> dict[str, Any]:
    """One strategy under one draw: its claims' violations and the drain figures (placement: none)."""
    if strategy == "daemon-guard-gate":
        figures = run_placement(strategy, seed, PLACEMENT, profile, params=draw)
        return {"violations": {"daemons-first": figures["served_before_daemons"]},
                "gates_failed_open": figures.get("gates_failed_open", 0),
                "attribution": figures["attribution"]}
    figures = run_drain(strategy, seed, DRAIN, profile, draw)
    return {"violations": {c: int(figures[CLAIM_KEYS[c]]) for c in CLAIMED[strategy]},
            "ungraceful_task_kills": figures["ungraceful_task_kills"],
            "lifecycle_timeouts": figures["lifecycle_timeouts"],
            "spot_drains": figures["spot_drains"], "spot_within_120s": figures["spot_within_120s"],
            "overhead_s": figures["overhead_s"], "attribution": figures["attribution"]}


def _run_job(job: tuple[str, Draw, int, str]) -> dict[str, Any]:
    """One (strategy, draw) in a worker process (the handlers' logs stay quiet, as in the bench)."""
    logging.disable(logging.WARNING)
    return run_draw(*job)


def _badness(result: Mapping[str, Any]) -> tuple[int, int, int, int]:
    uncounted = result["attribution"]["uncounted"]
    return (sum(uncounted[c] for c in [*result["violations"], "tasks-killed"]), sum(result["violations"].values()),
            int(result.get("ungraceful_task_kills", 0)), int(result.get("lifecycle_timeouts", 0)))


def split(claims: Sequence[str], results: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The violations of each claim (and the tasks killed) summed over the draws, split into those the guard
    counted, by cause (bench.attribution), and those it did not."""
    names = [*claims, *([] if claims == ("daemons-first",) else ["tasks-killed"])]
    counted: dict[str, dict[str, int]] = {c: {} for c in names}
    for r in results:
        for claim in names:
            for cause, n in r["attribution"]["counted"][claim].items():
                counted[claim][cause] = counted[claim].get(cause, 0) + n
    return {"counted": {c: dict(sorted(v.items())) for c, v in counted.items()},
            "uncounted": {c: sum(r["attribution"]["uncounted"][c] for r in results) for c in names}}


def summarize(strategy: str, chosen: Sequence[Draw], results: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One strategy over the draws: violations per claim, the worst draw (overall and per claim), the rest."""
    claims = CLAIMED[strategy]
    worst = max(range(len(results)), key=lambda i: (_badness(results[i]), -i))
    out: dict[str, Any] = {
        "claims": list(claims), "draws": len(results),
        "violations": {c: sum(r["violations"][c] for r in results) for c in claims},
        **split(claims, results),
        "worst_draw": {"draw": worst, "params": named_params(chosen[worst]),
                       "violations": results[worst]["violations"],
                       "uncounted": results[worst]["attribution"]["uncounted"]},
        "worst_draw_by_claim": {},
    }
    for c in claims:
        i = max(range(len(results)), key=lambda i: (results[i]["attribution"]["uncounted"][c],
                                                    results[i]["violations"][c], -i))
        out["worst_draw_by_claim"][c] = {"draw": i, "violations": results[i]["violations"][c],
                                         "uncounted": results[i]["attribution"]["uncounted"][c],
                                         "params": named_params(chosen[i])}
    if strategy == "daemon-guard-gate":
        out |= {"gates_failed_open": sum(r["gates_failed_open"] for r in results), "ungraceful_task_kills": "n/a",
                "lifecycle_timeouts": "n/a", "spot_within_notice": "n/a", "overhead_s": "n/a"}
        return out
    out |= {"ungraceful_task_kills": sum(r["ungraceful_task_kills"] for r in results),
            "lifecycle_timeouts": sum(r["lifecycle_timeouts"] for r in results),
            "spot_within_notice": {"within": sum(r["spot_within_120s"] for r in results),
                                   "drains": sum(r["spot_drains"] for r in results)},
            # p50: the median draw's; p99: the worst draw's.
            "overhead_s": {"p50": round(statistics.median(r["overhead_s"]["p50"] for r in results), 2),
                           "p99": round(max(r["overhead_s"]["p99"] for r in results), 2)}}
    return out


def ranges_suite(count: int, seed: int, progress: Progress, profile: str = DEFAULT_PROFILE,
                 strategies: Sequence[str] = tuple(CLAIMED),
                 fixed: Mapping[str, ParamValue] | None = None, workers: int | None = None) -> dict[str, Any]:
    """Every claiming configuration over `count` draws (seed `seed` for the draws and the worlds); the
    parameters in `fixed` (``--param``) hold their value in every draw, the others are drawn. The runs are
    independent worlds: `workers` processes run them (default: up to 2 CPUs; 1 runs them in this one)."""
    pinned = dict(fixed or {})
    chosen = [draw | pinned for draw in draws(count, seed, [p for p in PARAMS.values() if p.name not in pinned])]
    out: dict[str, Any] = {"profile": profile, "seed": seed, "fixed": named_params(pinned),
                           "stories": {"placement_launches": PLACEMENT.launches,
                                       "drain": {"on_demand": DRAIN.on_demand, "spot": DRAIN.spot,
                                                 "instance_refresh": DRAIN.refresh,
                                                 "spot_interruptions": DRAIN.spot_interruptions}}}
    jobs = [(strategy, draw, seed, profile) for strategy in strategies for draw in chosen]
    workers = workers if workers is not None else min(2, os.cpu_count() or 1)
    progress(f"ranges: {len(strategies)} configurations x {len(chosen)} draws, profile {profile}, "
             f"{workers} worker(s)")
    if workers <= 1:
        results = [run_draw(*job) for job in jobs]
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = []
            for i, result in enumerate(pool.map(_run_job, jobs)):
                progress(f"ranges: {jobs[i][0]}, draw {i % len(chosen) + 1}/{len(chosen)} done")
                results.append(result)
    for n, strategy in enumerate(strategies):
        out[strategy] = summarize(strategy, chosen, results[n * len(chosen):(n + 1) * len(chosen)])
    return out


def _draw_text(worst: Mapping[str, Any]) -> str:
    params = worst["params"]
    values = ", ".join(f"{k}={shown(tuple(v) if isinstance(v, list) else v)}" for k, v in params.items())
    return f"#{worst['draw']} ({values})"


def _cell(s: Mapping[str, Any], claim: str) -> str:
    """A claim's violations with the share the guard did not count: ``17 (3 uncounted)``."""
    total = s["violations"].get(claim) if claim != "tasks-killed" else s["ungraceful_task_kills"]
    if total is None or claim not in s.get("uncounted", {}):
        return "n/a" if total is None else str(total)
    return f"{total} ({s['uncounted'][claim]} uncounted)"


def _causes(s: Mapping[str, Any]) -> str:
    parts = [f"{claim}: " + ", ".join(f"{cause} {n}" for cause, n in causes.items())
             for claim, causes in s.get("counted", {}).items() if causes]
    return "; ".join(parts) if parts else "none"


def ranges_markdown(report: Mapping[str, Any]) -> list[str]:
    """The range suite's table (each claim's violations, of which uncounted), the causes the guard counted,
    then the worst draw of each claim."""
    strategies = {k: v for k, v in report.items() if k in CLAIMED}
    lines = [f"**Ranges** (each claiming configuration over {next(iter(strategies.values()))['draws']} draws of "
             f"every named parameter: the two corners, then Latin-hypercube draws; seed {report['seed']}; "
             f"ECS behaviour profile `{report['profile']}`). Each figure is summed over the draws; *uncounted*: "
             "violations for which the guard published no event (Gate Failed Open, Drain Guarantee Broken)", "",
             "| strategy | claims | draws | daemons-first violations | daemon stopped before an app STOPPED | "
             "tier-order violations | tasks killed | lifecycle timeouts | Spot drains in the notice | "
             "overhead p50 (median draw) / p99 (worst draw) (s) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name, s in strategies.items():
        spot = s["spot_within_notice"]
        spot_text = f"{spot['within']} / {spot['drains']}" if isinstance(spot, dict) else spot
        over = s["overhead_s"]
        over_text = f"{over['p50']} / {over['p99']}" if isinstance(over, dict) else over
        lines.append(f"| {name} | {', '.join(s['claims'])} | {s['draws']} | {_cell(s, 'daemons-first')} | "
                     f"{_cell(s, 'daemons-after-apps')} | {_cell(s, 'tier-order')} | "
                     f"{_cell(s, 'tasks-killed') if isinstance(s['ungraceful_task_kills'], int) else 'n/a'} | "
                     f"{s['lifecycle_timeouts']} | {spot_text} | {over_text} |")
    lines += ["", "Counted by the guard, by cause:", ""]
    lines += [f"- {name}: {_causes(s)}" for name, s in strategies.items()]
    lines += ["", "Worst draw per claim (most uncounted, then most violations):", ""]
    for name, s in strategies.items():
        for claim, worst in s["worst_draw_by_claim"].items():
            lines.append(f"- {name}, {claim}: {worst['violations']} ({worst.get('uncounted', 0)} uncounted) "
                         f"in draw {_draw_text(worst)}")
    return [*lines, ""]
