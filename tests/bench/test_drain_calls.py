"""The drain story's API calls attributed to the function, site and drain phase that made them (bench.drain_calls)."""

from __future__ import annotations

import sys
from typing import Any

from daemon_guard.core.drain import DrainProgress, PhaseWatch

from bench.drain_calls import CallSites


def call_from(module: str, function: str, progress: DrainProgress | None, sites: CallSites, operation: str) -> None:
    """Make `sites` note one call as if `function` of `module` had made it with `progress` in hand."""
    namespace: dict[str, Any] = {"__name__": module, "sys": sys}
    exec(f"def {function}(sites, operation, progress):\n    sites.note(operation, sys._getframe())\n",
         namespace)
    namespace[function](sites, operation, progress)


def test_a_drain_workflows_call_is_counted_under_its_site_and_the_phase_the_drain_was_in() -> None:
    # GIVEN a drain held in its replica phase and one in tier 1
    sites = CallSites()
    held = DrainProgress(started_at=0.0, watch=PhaseWatch(replicas_held=True))
    tier = DrainProgress(started_at=0.0, phase="tier", tier=1)
    # WHEN the workflow module makes a DescribeServices call for the first and a ListTasks call for the second
    call_from("daemon_guard.workflows.drain", "observe", held, sites, "DescribeServices")
    call_from("daemon_guard.workflows.drain", "observe", tier, sites, "ListTasks")
    # THEN each is counted under the drain workflow, its site, and its phase
    assert sites.by_operation == {("drain", "DescribeServices"): 1, ("drain", "ListTasks"): 1}
    assert sites.by_site == {("drain", "observe"): 2}
    assert sites.by_phase == {("replicas (held)", "DescribeServices"): 1, ("tier-1", "ListTasks"): 1}


def test_the_intakes_calls_are_counted_by_function_and_site_without_a_phase() -> None:
    # GIVEN the intake's handler module / WHEN it makes a call / THEN it counts under the intake, no phase
    sites = CallSites()
    call_from("daemon_guard.entrypoints.intake", "handler", None, sites, "SendDurableExecutionCallbackSuccess")
    assert sites.by_operation == {("intake", "SendDurableExecutionCallbackSuccess"): 1}
    assert sites.by_phase == {}
