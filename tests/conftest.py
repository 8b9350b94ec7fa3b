"""Test-wide settings: every property test runs the same examples on every run and every machine.

One Hypothesis profile, loaded here for the whole suite: derandomized (examples drawn from a fixed seed
per test, so two runs of `make test` give the same results), no example database (nothing learnt on one
machine changes another's run), and no per-example deadline (the simulator's tests are CPU-bound and a
2-core CI box must not turn a slow example into a failure). A test may ask for more or fewer examples;
it inherits the rest.
"""

from __future__ import annotations

from hypothesis import settings

settings.register_profile("daemon-guard", derandomize=True, database=None, deadline=None, print_blob=True)
settings.load_profile("daemon-guard")
