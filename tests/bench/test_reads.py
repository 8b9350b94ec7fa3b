"""ECS read rates over a story: the mean per second and the busiest 10-second window."""

from __future__ import annotations

from bench.reads import ReadSampler
from sim.ecs import profile_params
from sim.world import World, WorldOptions


def test_the_peak_is_the_busiest_ten_seconds_and_the_mean_spans_the_whole_window() -> None:
    # GIVEN a running count of reads sampled each second: a burst of 50 reads in one second, then 1 a second
    sampler = ReadSampler(World(WorldOptions(seed=1, ecs=profile_params("as-documented"))))
    counts = [0, 50, *range(51, 70)]
    sampler.samples = [(float(t), n) for t, n in enumerate(counts)]
    # WHEN the rates are read over the whole window, and over its last ten seconds
    whole, tail = sampler.rates(), sampler.rates(begin=9.0)
    # THEN the mean spreads the reads over every second and the peak is the window holding the burst
    assert whole.reads == 69 and whole.seconds == 20
    assert whole.per_s == 69 / 20 and whole.per_min == 69 / 20 * 60
    assert whole.peak_per_s == (50 + 9) / 10
    assert tail.peak_per_s == 1.0
