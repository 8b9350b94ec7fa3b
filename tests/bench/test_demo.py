"""`daemon-guard demo`: the whole story through the real handlers and workflows, and ECS alone beside it."""

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
    # AND ECS alone on the same story stands beside daemon-guard, row by row
    rows = {m[0].strip(): (m[1], m[2]) for m in
            re.findall(r"^  ([a-z0-9 ,/()-]+?)\s{2,}(\S+(?: / \S+)?)\s{3}(\S+(?: / \S+)?)$", summary, re.MULTILINE)}
    assert set(rows) >= {"daemon-first rate, all launches", "daemon-first rate, scale-out",
                         "every daemon within 60 s", "time to daemons p50 / p99 (s)",
                         "tasks killed without a stop", "lifecycle timeouts"}
    assert rows["daemon-first rate, all launches"][0].endswith("%")
    assert int(rows["tasks killed without a stop"][0]) > 0
    assert rows["tasks killed without a stop"][1] == "0"
    assert rows["lifecycle timeouts"][1] == "0"
    # AND no progress bar is drawn when stderr is not a terminal
    assert "\r" not in printed.err
    assert "simulating" not in timeline
