"""`daemon-guard demo`: the whole story through the real handlers and workflows (about 10 s)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from daemon_guard_cli.demo import run_demo

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
    figures = dict(re.findall(r"^  ([a-z -]+):\s+(\S+)", timeline.split("\nsummary\n", 1)[1], re.MULTILINE))
    assert figures["launches"] == "35"
    assert figures["drains"] == "11"
    assert figures["daemon-first rate"].endswith("%")
    assert figures["coverage"].endswith("%")
    assert int(figures["evictions"]) >= 0
    assert figures["ordering violations"] == "0"
    assert figures["ungraceful kills"] == "0"
    assert figures["lifecycle timeouts"] == "0"
    # AND the progress bar went to stderr, not into the timeline
    assert "100%" in printed.err
    assert "simulating" not in timeline
