"""The `daemon-guard` command: replay, simulate, benchmark, demo; look at, capture or drain a real cluster.

Exit codes: 0 done, 2 bad input (one line on stderr naming the file or argument and the field),
1 an unexpected error (one line asking for a report; the traceback only with ``--debug``).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import traceback
from pathlib import Path
from typing import Any, NoReturn

from daemon_guard_cli.errors import InputError


def _quiet_logs() -> None:
    """Send the Lambda code's JSON logs to stderr, so stdout carries only the command's output."""
    from daemon_guard.observability import logger

    for handler in logger.handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.stream = sys.stderr  # not setStream: it would flush a stream a caller may have closed
    logger.setLevel(logging.ERROR)


SIMULATOR_MISSING = ("daemon-guard {command}: a development command; it needs the simulator and the benchmark "
                     "(sim/, bench/), which ship with the repository, not with the installed package; run it from "
                     "a clone of the repository (`make install`, then `.venv/bin/daemon-guard {command}`)")


def _needs_simulator(command: str) -> bool:
    """True when the simulator can be imported; else say so in one line (the command then exits 2)."""
    import importlib.util

    if importlib.util.find_spec("sim") is not None and importlib.util.find_spec("bench") is not None:
        return True
    print(SIMULATOR_MISSING.format(command=command), file=sys.stderr)
    return False


def cmd_replay(args: argparse.Namespace) -> int:
    """One event through the intake, no AWS writes; one JSON object on stdout (InputError: exit 2)."""
    from daemon_guard_cli.inputs import read_event, read_state

    # Both files are bounded and read before the Lambda code (and its imports) is loaded.
    event = read_event(args.event)
    raw_state = read_state(args.state) if args.state else None
    from daemon_guard_cli.replay import EMPTY, home_from, load_config, replay
    from daemon_guard_cli.state_scope import load_state

    _quiet_logs()
    config = load_config(args.config, event)
    home = home_from(config, args.partition, args.account, args.region)
    state = load_state(raw_state, args.state, event, config, home) if args.state else EMPTY
    result = replay(event, config, state, home)
    if result["decision"] == "malformed":
        raise InputError(args.event, f"malformed event: {result['reason']}")
    print(json.dumps(result, default=str))
    return 0


def cmd_sim(args: argparse.Namespace) -> int:
    """Run a named scenario and print its timeline and summary."""
    if not _needs_simulator("sim"):
        return 2
    from bench.simulate import run_scenario

    _quiet_logs()
    return run_scenario(args.scenario, args.seed, args.launches)


def cmd_bench(args: argparse.Namespace) -> int:
    """Run the benchmark suites side by side and write JSON / Markdown / PNG."""
    if not _needs_simulator("bench"):
        return 2
    from bench.benchmark import run_bench

    _quiet_logs()
    return run_bench(args)


def cmd_demo(args: argparse.Namespace) -> int:
    """The scale-out then scale-in story, told as a timeline with a PNG beside it."""
    if not _needs_simulator("demo"):
        return 2
    from bench.demo import run_demo

    _quiet_logs()
    return int(run_demo(args.seed, Path(args.out)))


def cmd_status(args: argparse.Namespace) -> int:
    """Per-instance daemon coverage of a real cluster, from the ECS API."""
    from daemon_guard_cli.live import status

    _quiet_logs()
    return int(status(args.cluster, args.region))


def cmd_drain(args: argparse.Namespace) -> int:
    """Ask the deployed drain workflow to drain one instance (an operator's request), or preview it."""
    from daemon_guard_cli.live import request_drain

    _quiet_logs()
    if args.dry_run:
        from daemon_guard_cli.drain_dry_run import dry_run_drain

        return dry_run_drain(args.cluster, args.instance_id, args.region, config_path=args.config)
    return int(request_drain(args.cluster, args.instance_id, args.function, args.region, table=args.state_table,
                             config_path=args.config))


def cmd_constraints(args: argparse.Namespace) -> int:
    """Which services lack the constraints the configuration needs; add them (--apply) or take them off (--remove)."""
    from daemon_guard_cli.wiring import constraints

    _quiet_logs()
    return constraints(args.cluster, args.region, config_path=args.config, apply=args.apply, remove=args.remove)


def cmd_doctor(args: argparse.Namespace) -> int:
    """Which guarantees the cluster has with the configuration, and what each misses."""
    from daemon_guard_cli.wiring import doctor

    _quiet_logs()
    return doctor(args.cluster, args.region, config_path=args.config)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit 2), like every other input error."""

    def error(self, message: str) -> NoReturn:
        """Print `prog: message` on one line and exit 2."""
        self.exit(2, f"{self.prog}: {' '.join(message.split())} (see --help)\n")


def cmd_snapshot(args: argparse.Namespace) -> int:
    """Capture a real cluster's state (read-only ECS calls) as STATE.json for `replay`."""
    from daemon_guard_cli.live import snapshot

    return int(snapshot(args.cluster, args.region, args.out))


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("daemon-guard")
    except PackageNotFoundError:
        return "unknown (not installed)"


REGION_HELP = ("AWS region; default: the region of the ARN given (--cluster, drain's --function), else $AWS_REGION, "
               "else $AWS_DEFAULT_REGION or the profile's region; a --region an ARN contradicts is refused")
LIVE_NOTE = ("Credentials: the default boto3 chain (AWS_PROFILE, environment, SSO, instance role). Each call gives up "
             "after 3 attempts with a 5 s connect timeout, and the command exits 2 with one line saying why.")


class _DefaultsFormatter(argparse.HelpFormatter):
    """Shows ``(default: X)`` after an option's help, unless the help already states its default."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or action.default in (None, False, argparse.SUPPRESS):
            return text
        return f"{text} (default: %(default)s)"


def _sub(sub: Any, name: str, summary: str, description: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(
        name, help=summary, description=description, formatter_class=_DefaultsFormatter)
    parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="print the traceback of an unexpected error")
    return parser


def _wiring_options(parser: argparse.ArgumentParser) -> None:
    """--cluster, --config and --region, as `constraints` and `doctor` take them."""
    parser.add_argument("--cluster", required=True, help="ECS cluster name or ARN")
    parser.add_argument("--config", help="daemon-guard config (or a cdk.json); default: ./cdk.json, else the defaults")
    parser.add_argument("--region", help=REGION_HELP)


def build_parser() -> argparse.ArgumentParser:
    """The command line: every subcommand with a description, and its defaults in --help."""
    parser = _Parser(
        prog="daemon-guard", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Run `daemon-guard COMMAND --help` for a command's options and defaults.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.add_argument("--debug", action="store_true", help="print the traceback of an unexpected error")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _replay_command(sub)
    _sim_command(sub)
    _bench_command(sub)
    _demo_command(sub)
    _status_command(sub)
    _snapshot_command(sub)
    _drain_command(sub)
    _constraints_command(sub)
    _doctor_command(sub)
    return parser


def _replay_command(sub: Any) -> None:
    """`daemon-guard replay`: run one EventBridge event through the intake without AWS writes."""
    p = _sub(sub, "replay", "run one EventBridge event through the intake without AWS writes",
             "Run one EventBridge event (ECS or Auto Scaling) through the Lambda intake's own parsing and "
             "planning, reading the cluster from a STATE.json snapshot, and print the decision as one JSON "
             "object. Nothing is written anywhere. Try: daemon-guard replay "
             "examples/events/instance-registered.json --state examples/state.json")
    p.add_argument("event", help="EVENT.json: one EventBridge event")
    p.add_argument("--config", help="daemon-guard config document, or a cdk.json holding one under "
                                    "context.daemon-guard; default: ./cdk.json if present, else a config "
                                    "naming just the event's cluster and group")
    p.add_argument("--state", help="STATE.json: the cluster to read from (`daemon-guard snapshot` writes one); "
                                   "default: an empty cluster; schema: docs/replay.md")
    p.add_argument("--partition", help="home partition; default: the config's home, else the home region's")
    p.add_argument("--account", help="home account: events from other accounts are ignored, as by the Lambda; "
                                     "default: the config's home, else any")
    p.add_argument("--region", help="home region: events from other regions are ignored, as by the Lambda; "
                                    "default: the config's home, else any")
    p.set_defaults(func=cmd_replay)


def _sim_command(sub: Any) -> None:
    """`daemon-guard sim`: run a simulated scenario and print its timeline and summary."""
    p = _sub(sub, "sim", "run a simulated scenario and print its timeline and summary",
             "Run one scenario in the simulator (needs a clone of the repository) and print its timeline "
             "and summary.")
    p.add_argument("--scenario", default="baseline-scale-out",
                   choices=["baseline-scale-out", "preempt-scale-out", "gate-scale-out", "drain-story"],
                   help="which story to run")
    p.add_argument("--seed", type=int, default=1, help="random seed")
    p.add_argument("--launches", type=int, default=1000, help="instance launches (scale-out scenarios)")
    p.set_defaults(func=cmd_sim)


def _bench_command(sub: Any) -> None:
    """`daemon-guard bench`: benchmark every strategy side by side."""
    p = _sub(sub, "bench", "benchmark every strategy side by side",
             "Run the benchmark suites in the simulator (needs a clone of the repository): placement, drain, "
             "faults, exits (AWS Health scheduled changes and EC2 stops), rollout (a daemon moved to a larger "
             "revision on a full cluster) and cost (the Lambda asset's size and cold import, built as synth "
             "builds it); robustness runs every strategy over the ECS behaviour profiles.")
    p.add_argument("--suite", default="all",
                   choices=["placement", "drain", "faults", "exits", "rollout", "cost", "robustness", "ranges",
                            "all", "scale"],
                   help="which suite to run (ranges: the guarantees over seeded draws of every named parameter)")
    p.add_argument("--profile", default="as-documented",
                   help="ECS behaviour profile (sim.ecs.PROFILES: as-documented, as-reported, worst, ...)")
    p.add_argument("--json", help="write the figures as JSON here (default: not written)")
    p.add_argument("--markdown", help="write the Markdown tables here (default: not written)")
    p.add_argument("--plot", help="write a PNG chart here (default: not written)")
    p.add_argument("--readme", help="replace the benchmark section of this README with the tables "
                                    "(default: not written)")
    p.add_argument("--launches", type=int, default=1000, help="launches per seed (placement)")
    p.add_argument("--seeds", default="1", help="comma-separated seeds")
    p.add_argument("--sizes", default="10,100,1000,5000", help="cluster sizes for the API cost")
    p.add_argument("--quick", action="store_true", help="a small run (CI smoke): 200 launches, small drain story")
    p.add_argument("--strategies", default="",
                   help="comma-separated strategies to run in the drain suite (default: all of them), "
                        "e.g. daemon-guard-tiers,daemon-guard-apps-first")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="set a named simulator parameter for the placement and drain suites (repeatable; a range "
                        "as NAME=LO,HI); --list-params lists them")
    p.add_argument("--list-params", action="store_true",
                   help="list the named simulator parameters (name, type, default, range, source) and exit")
    p.set_defaults(func=cmd_bench)


def _demo_command(sub: Any) -> None:
    """`daemon-guard demo`: the scale-out / scale-in story with a readable timeline and a PNG."""
    p = _sub(sub, "demo", "the scale-out / scale-in story with a readable timeline and a PNG",
             "Tell one scale-out and one scale-in in the simulator (needs a clone of the repository): ECS "
             "alone on the same launches beside daemon-guard, a readable timeline, and a PNG of it.")
    p.add_argument("--seed", type=int, default=7, help="random seed")
    p.add_argument("--out", default="out/demo-timeline.png", help="where to write the PNG")
    p.set_defaults(func=cmd_demo)


def _status_command(sub: Any) -> None:
    """`daemon-guard status`: per-instance daemon coverage of a real cluster."""
    p = _sub(sub, "status", "per-instance daemon coverage of a real cluster",
             "Print each container instance's daemon coverage, judged by the guard's own eligibility rules, "
             "from read-only ECS calls. Exit 0 when every eligible daemon runs on every ACTIVE instance, 1 "
             "when some is missing, 2 on an error. " + LIVE_NOTE)
    p.add_argument("--cluster", required=True, help="ECS cluster name or ARN")
    p.add_argument("--region", help=REGION_HELP)
    p.set_defaults(func=cmd_status)


def _snapshot_command(sub: Any) -> None:
    """`daemon-guard snapshot`: capture a real cluster as STATE.json for replay."""
    p = _sub(sub, "snapshot", "capture a real cluster as STATE.json for replay",
             "Read a cluster with read-only ECS calls (List/Describe of container instances, tasks, services "
             "and task definitions) and write it in the STATE.json format `replay --state` reads. " + LIVE_NOTE)
    p.add_argument("--cluster", required=True, help="ECS cluster name or ARN")
    p.add_argument("--out", default="-", help="where to write STATE.json ('-': stdout)")
    p.add_argument("--region", help=REGION_HELP)
    p.set_defaults(func=cmd_snapshot)


def _drain_command(sub: Any) -> None:
    """`daemon-guard drain`: drain one instance of a real cluster through the deployed workflow (or preview it)."""
    p = _sub(sub, "drain", "drain one instance of a real cluster through the deployed workflow (or preview it)",
             "Ask the deployed drain workflow to drain one EC2 instance, as an operator would: the instance "
             "must be a container instance of the cluster; it is claimed in the state table first, as the intake "
             "claims it, so a drain already running there is joined and repeating the request starts nothing new. "
             "With --dry-run, print the planned steps instead, from ECS reads only. " + LIVE_NOTE)
    p.add_argument("--cluster", required=True, help="ECS cluster name or ARN")
    p.add_argument("instance_id", help="EC2 instance id (i-...)")
    p.add_argument("--function", help="the drain workflow's alias ARN (stack output); default: $DRAIN_FUNCTION")
    p.add_argument("--region", help=REGION_HELP)
    p.add_argument("--dry-run", action="store_true", help="print the planned steps (ECS reads only, no write)")
    p.add_argument("--config", help="daemon-guard config (or a cdk.json); default: ./cdk.json")
    p.add_argument("--state-table", help="the stack's state table, where the drain is claimed first (one workflow "
                                         "per instance); default: $STATE_TABLE")
    p.set_defaults(func=cmd_drain)


def _constraints_command(sub: Any) -> None:
    """`daemon-guard constraints`: which services lack daemon-guard's constraints; add or remove them."""
    p = _sub(sub, "constraints", "which services lack daemon-guard's constraints; add or remove them",
             "Read every service of the cluster and print which lacks the constraint the configuration needs: the "
             "gate constraint on replica services (placementMode gate), its tier's constraint on each daemon "
             "service (drainOrder tiers). --apply sets them with UpdateService, one service at a time, keeping the "
             "services' own constraints and ECS's limit of 10 per task; --remove takes daemon-guard's off. Services "
             "tagged daemon-guard:ignore=true are left alone. Exit 0 all wired (or done), 1 some not (or refused), "
             "2 on an error. " + LIVE_NOTE)
    _wiring_options(p)
    p.add_argument("--apply", action="store_true", help="add the missing constraints (UpdateService)")
    p.add_argument("--remove", action="store_true", help="take daemon-guard's constraints off (UpdateService)")
    p.set_defaults(func=cmd_constraints)


def _doctor_command(sub: Any) -> None:
    """`daemon-guard doctor`: which guarantees a cluster has with this configuration, and what each misses."""
    p = _sub(sub, "doctor", "which guarantees a cluster has with this configuration, and what each misses",
             "Read the cluster's services, capacity providers, the managed groups' lifecycle hooks and the container "
             "instances (read-only) and print each guarantee: claimed by the configuration or not, what it rests "
             "on, and what is missing (services without their constraint, managed draining beside the hook, "
             "missing hooks, instances whose daemons cannot fit, old container agents). Exit 0 when every claimed "
             "guarantee is wired, 1 when not, 2 on an error. " + LIVE_NOTE)
    _wiring_options(p)
    p.set_defaults(func=cmd_doctor)


def _reader_gone() -> int:
    """Whoever read stdout stopped (``daemon-guard replay ... | head -c1``): end quietly, as a tool killed by
    SIGPIPE does (exit 141), with stdout pointed at /dev/null so the interpreter's last flush cannot fail."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 141


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script: bad input exits 2 and a bug exits 1, each with one line."""
    args = build_parser().parse_args(argv)
    try:
        code: Any = args.func(args)
    except InputError as exc:
        print(f"daemon-guard {args.command}: {exc.line()}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return _reader_gone()
    except Exception as exc:  # the one place a bug becomes a one-line report
        if args.debug:
            traceback.print_exc()
        detail = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        print(f"daemon-guard {args.command}: internal error ({detail}); this is a bug in daemon-guard, please "
              "report it with the command and its input" + ("" if args.debug else " (rerun with --debug for the "
                                                              "traceback)"), file=sys.stderr)
        return 1
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
