"""`daemon-guard demo`: the whole story through the real handlers and workflows, with ECS alone and ECS's documented
workaround beside it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench.demo import run_demo

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_demo_tells_the_story_and_draws_the_timeline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN an output path whose directory does not exist yet
    out = tmp_path / "out" / "demo-timeline.png"
    # WHEN the demo runs
    code = run_demo(7, out)
    # THEN it succeeds and leaves a PNG
    assert code == 0
    assert out.read_bytes().startswith(PNG_MAGIC)
    assert out.stat().st_size > 50_000
    printed = capsys.readouterr()
    # AND the timeline shows each kind of decision, with simulated times as mm:ss
    timeline = printed.out
    for phrase in ("registered", "daemons RUNNING", "drain workflow started by the intake",
                   "tier 1 'app-agents' stopped", "tier 3 'log-router' stopped", "lifecycle action completed",
                   "Spot deadline met"):
        assert re.search(rf"^\d\d:\d\d  .*{re.escape(phrase)}", timeline, re.MULTILINE), phrase
    # AND the summary carries the figures: every launch, every drain, and nothing lost
    summary = timeline.split("\nsummary\n", 1)[1]
    assert "launches: 35 (20 warm, 15 scale-out)" in summary
    assert re.search(r"drains: 11 \(10 scale-in, 1 Spot; 1 within the 120 s notice\), ordering violations 0", summary)
    # AND daemon-guard (gate + tiers) stands beside ECS alone and ECS's documented workaround, row by row
    header = next(line for line in summary.splitlines() if "ECS alone   " in line)
    lines = [line for line in summary.splitlines() if re.match(r"^  \S.*\S {3,}\S", line)]
    columns = re.split(r"\s{3,}", header.strip())
    assert columns == ["daemon-guard (gate + tiers)", "ECS alone", "ECS + affinity"]
    rows = {cells[0]: dict(zip(columns, cells[1:], strict=True))
            for cells in (re.split(r"\s{3,}", line.strip()) for line in lines) if len(cells) == 4}
    assert set(rows) >= {"daemon-first rate, all launches", "daemon-first rate, scale-out", "every daemon within 60 s",
                         "daemons stopped before apps", "tier-order breaks", "tasks killed without a stop",
                         "lifecycle timeouts", "Spot drains within the notice"}
    guard = {name: row["daemon-guard (gate + tiers)"] for name, row in rows.items()}
    assert guard["daemon-first rate, all launches"] == guard["daemon-first rate, scale-out"] == "100.0%"
    assert guard["daemons stopped before apps"] == guard["tier-order breaks"] == "0"
    assert guard["tasks killed without a stop"] == guard["lifecycle timeouts"] == "0"
    assert guard["Spot drains within the notice"] == "1/1"
    # AND ECS keeps no order among daemons: its tier column says n/a, not 0
    assert rows["tier-order breaks"]["ECS alone"] == rows["tier-order breaks"]["ECS + affinity"] == "n/a"
    assert rows["daemon-first rate, all launches"]["ECS alone"].endswith("%")
    # AND no progress bar is drawn when stderr is not a terminal
    assert "\r" not in printed.err
    assert "simulating" not in timeline
