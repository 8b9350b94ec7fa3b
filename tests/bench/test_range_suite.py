"""The range suite (bench.ranges): draws that cover every named parameter's range, the command line that
sets parameters by name, and one tiny run in the simulator."""

from __future__ import annotations

import pytest

from bench.ranges import CLAIMED, corner, draws, ranges_markdown, ranges_suite
from daemon_guard_cli.main import main
from sim.params import PARAMS, ParamValue


def within(name: str, value: ParamValue) -> bool:
    """A drawn value is one its parameter takes (a range as LO <= HI, both inside)."""
    p = PARAMS[name]
    if p.kind == "boolean":
        return isinstance(value, bool)
    values = value if isinstance(value, tuple) else (value,)
    return all(p.low <= float(v) <= p.high for v in values) and list(values) == sorted(values)


def test_the_draws_begin_with_both_corners_of_every_range() -> None:
    # GIVEN 8 draws / THEN the first is every range at its low end, the second every range at its high end
    first, second, *_ = draws(8, seed=1)
    assert first == corner(False) and second == corner(True)
    assert first["spot_instance_draining"] is False and second["spot_instance_draining"] is True
    assert first["attribute_visibility_s"] == (0.0, 0.0) and second["event_dlq_rate"] == PARAMS["event_dlq_rate"].high


@pytest.mark.parametrize("count", [2, 8, 40])
def test_every_draw_is_inside_every_range_and_names_every_parameter(count: int) -> None:
    # GIVEN the suite's draws / THEN there are as many as asked, each sets every parameter inside its range
    chosen = draws(count, seed=3)
    assert len(chosen) == count
    for draw in chosen:
        assert set(draw) == set(PARAMS)
        assert [n for n, v in draw.items() if not within(n, v)] == []


def test_the_latin_hypercube_puts_one_draw_in_each_stratum_of_each_range() -> None:
    # GIVEN 40 draws (2 corners, then 38 Latin-hypercube draws)
    lhs = draws(40, seed=5)[2:]
    # THEN for a one-value parameter, the 38 draws fall one in each 38th of its range
    for name in ("daemon_cycle_s", "event_dlq_rate", "api_rate_share", "daemon_stall_while_draining_s"):
        p = PARAMS[name]
        strata = sorted(int((float(d[name]) - p.low) / (p.high - p.low) * 38 - 1e-9) for d in lhs)  # type: ignore[arg-type]
        assert strata == list(range(38)), name
    # AND a boolean is true in half of them
    assert sum(1 for d in lhs if d["spot_instance_draining"]) == 19


def test_the_draws_repeat_for_a_seed_and_differ_across_seeds() -> None:
    # GIVEN two seeds / THEN the same seed draws the same, another seed other Latin-hypercube draws
    assert draws(8, seed=1) == draws(8, seed=1)
    assert draws(8, seed=1)[2:] != draws(8, seed=2)[2:]


def test_bench_refuses_an_out_of_range_parameter_in_one_line_before_running_anything(
        capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a parameter above its range / WHEN bench starts / THEN exit 2 and one line naming it and its range
    assert main(["bench", "--suite", "ranges", "--param", "event_dlq_rate=0.5"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "daemon-guard bench: --param event_dlq_rate: 0.5 is outside its range, 0 to 0.2"


def test_bench_refuses_an_unknown_parameter(capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a misspelt name / THEN exit 2, the known names listed on the one line
    assert main(["bench", "--suite", "drain", "--param", "event_delay=1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown parameter" in err[0] and "event_delay_s" in err[0]


def test_list_params_shows_every_parameter_with_type_default_range_and_source(
        capsys: pytest.CaptureFixture[str]) -> None:
    # WHEN the parameters are listed / THEN one row each: name, type, default, range, source
    assert main(["bench", "--list-params"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")][1:]
    assert [r.split(" | ")[0].removeprefix("| ") for r in rows] == list(PARAMS)
    by_name = {r.split(" | ")[0].removeprefix("| "): r for r in rows}
    assert "| spot_instance_draining | true|false | false | false or true | ECS agent option" in \
        by_name["spot_instance_draining"]
    assert "| attribute_change_event | true|false | true | false or true | ECS developer guide" in \
        by_name["attribute_change_event"]


@pytest.mark.slow
def test_a_tiny_range_run_reports_each_claim_and_the_worst_draw() -> None:
    # GIVEN one draw: every parameter pinned at its default but two, drawn (one draw: their low corner)
    pinned = {n: p.default for n, p in PARAMS.items() if n not in ("event_duplicate_rate", "attribute_visibility_s")}
    # WHEN the tiers drain runs it in the simulator
    report = ranges_suite(1, seed=2, progress=lambda _: None, profile="as-documented",
                          strategies=("daemon-guard-tiers",), fixed=pinned, workers=1)
    tiers = report["daemon-guard-tiers"]
    # THEN every claim has its violations and the worst draw carries all its parameter values
    assert tiers["draws"] == 1
    assert set(tiers["violations"]) == set(CLAIMED["daemon-guard-tiers"])
    assert set(tiers["worst_draw"]["params"]) == set(PARAMS)
    assert set(tiers["spot_within_notice"]) == {"within", "drains"}
    assert isinstance(tiers["ungraceful_task_kills"], int) and isinstance(tiers["lifecycle_timeouts"], int)
    # AND each claim's violations (and the kills) split into counted, by cause, and uncounted
    assert set(tiers["uncounted"]) == set(tiers["counted"]) == {*CLAIMED["daemon-guard-tiers"], "tasks-killed"}
    totals = {**tiers["violations"], "tasks-killed": tiers["ungraceful_task_kills"]}
    assert {c: sum(tiers["counted"][c].values()) + tiers["uncounted"][c] for c in totals} == totals
    assert "| daemon-guard-tiers | daemons-first, daemons-after-apps, tier-order | 1 |" in "\n".join(
        ranges_markdown(report))
