"""The `daemon-guard` command: simulate, replay, benchmark, demo, and look at or drain a real cluster."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any


def _quiet_logs() -> None:
    """Send the Lambda code's JSON logs to stderr, so stdout carries only the command's output."""
    from daemon_guard.handlers.runtime import logger

    for handler in logger.handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.stream = sys.stderr  # not setStream: it would flush a stream a caller may have closed
    logger.setLevel(logging.ERROR)


def cmd_replay(args: argparse.Namespace) -> int:
    """One event through the intake, no AWS writes; one JSON object on stdout."""
    from daemon_guard_cli.replay import load_config, replay

    _quiet_logs()
    try:
        event = json.loads(Path(args.event).read_text())
    except (OSError, ValueError) as exc:
        print(f"daemon-guard replay: cannot read {args.event}: {exc}", file=sys.stderr)
        return 2
    try:
        config = load_config(args.config, event)
        state = json.loads(Path(args.state).read_text()) if args.state else None
    except (OSError, ValueError) as exc:
        print(f"daemon-guard replay: {exc}".splitlines()[0], file=sys.stderr)
        return 2
    result = replay(event, config, state)
    if result["decision"] == "malformed":
        print(f"daemon-guard replay: malformed event: {result['reason']}", file=sys.stderr)
        return 2
    print(json.dumps(result, default=str))
    return 0


def cmd_sim(args: argparse.Namespace) -> int:
    """Run a named scenario and print its timeline and summary."""
    from daemon_guard_cli.simulate import run_scenario

    _quiet_logs()
    return run_scenario(args.scenario, args.seed, args.launches)


def cmd_bench(args: argparse.Namespace) -> int:
    """Run the benchmark suites side by side and write JSON / Markdown / PNG."""
    from daemon_guard_cli.benchmark import run_bench

    _quiet_logs()
    return run_bench(args)


def cmd_demo(args: argparse.Namespace) -> int:
    """The scale-out then scale-in story, told as a timeline with a PNG beside it."""
    from daemon_guard_cli.demo import run_demo

    _quiet_logs()
    return int(run_demo(args.seed, Path(args.out)))


def cmd_status(args: argparse.Namespace) -> int:
    """Per-instance daemon coverage of a real cluster, from the ECS API."""
    from daemon_guard_cli.live import status

    _quiet_logs()
    return int(status(args.cluster, args.region))


def cmd_drain(args: argparse.Namespace) -> int:
    """Ask the deployed drain workflow to drain one instance (an operator's request)."""
    from daemon_guard_cli.live import request_drain

    _quiet_logs()
    return int(request_drain(args.cluster, args.instance_id, args.function, args.region))


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(prog="daemon-guard", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("replay", help="run one EventBridge event through the intake without AWS writes")
    p.add_argument("event", help="EVENT.json")
    p.add_argument("--config", help="daemon-guard config (or a cdk.json); default ./cdk.json")
    p.add_argument("--state", help="STATE.json snapshot of the cluster to read from")
    p.set_defaults(func=cmd_replay)
    p = sub.add_parser("sim", help="run a simulated scenario and print its timeline and summary")
    p.add_argument("--scenario", default="baseline-scale-out",
                   choices=["baseline-scale-out", "preempt-scale-out", "gate-scale-out", "drain-story"])
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--launches", type=int, default=1000)
    p.set_defaults(func=cmd_sim)
    p = sub.add_parser("bench", help="benchmark every strategy side by side")
    p.add_argument("--suite", default="all", choices=["placement", "drain", "faults", "robustness", "all"])
    p.add_argument("--profile", default="as-documented",
                   help="ECS behaviour profile (sim.ecs.PROFILES: as-documented, as-reported, worst, ...)")
    p.add_argument("--json", help="write the figures as JSON here")
    p.add_argument("--markdown", help="write the Markdown tables here")
    p.add_argument("--plot", help="write a PNG chart here")
    p.add_argument("--readme", help="replace the benchmark section of this README with the tables")
    p.add_argument("--launches", type=int, default=1000, help="launches per seed (placement)")
    p.add_argument("--seeds", default="1", help="comma-separated seeds")
    p.add_argument("--sizes", default="10,100,1000,5000", help="cluster sizes for the API cost")
    p.add_argument("--quick", action="store_true", help="a small run (CI smoke): 200 launches, small drain story")
    p.set_defaults(func=cmd_bench)
    p = sub.add_parser("demo", help="the scale-out / scale-in story with a readable timeline and a PNG")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--out", default="out/demo-timeline.png")
    p.set_defaults(func=cmd_demo)
    p = sub.add_parser("status", help="per-instance daemon coverage of a real cluster")
    p.add_argument("--cluster", required=True)
    p.add_argument("--region")
    p.set_defaults(func=cmd_status)
    p = sub.add_parser("drain", help="drain one instance of a real cluster through the deployed workflow")
    p.add_argument("--cluster", required=True)
    p.add_argument("instance_id")
    p.add_argument("--function", help="the drain workflow's alias ARN (default: $DRAIN_FUNCTION)")
    p.add_argument("--region")
    p.set_defaults(func=cmd_drain)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    args = build_parser().parse_args(argv)
    code: Any = args.func(args)
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
