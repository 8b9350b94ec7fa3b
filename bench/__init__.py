"""The benchmark and the demo: stories told on the simulator (sim/), measured from its own records.

Apart from the product (lambdas/, infra/, daemon_guard_cli/) and from the simulated AWS it runs on
(sim/): the stories (scenarios, exits, faults, rollouts), what users compare with (baselines), the
measurements, the suites and their report, the demo, and the development commands that need a clone
of the repository (`daemon-guard bench`, `demo`, `sim`, `costs`, `asset`). None of it ships in the wheel.
"""
