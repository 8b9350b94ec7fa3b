"""Drain dry runs at the edge: read the instance (ECS reads only) and preview the ordered drain.

Used by `daemon-guard drain --dry-run` (a live cluster, read-only), by `daemon-guard replay` of a
drain trigger (a state snapshot), and by ``drainMode: observe``, where every drain trigger is
answered with its planned steps in the log instead of a drain. In observe mode a terminate
lifecycle action is completed with CONTINUE at once: what happens without daemon-guard, so that
nothing waits on a report (no ECS write is made).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from daemon_guard.bootstrap import Runtime
from daemon_guard.core.actions import CompleteLifecycle
from daemon_guard.core.drain import DrainProgress, DrainRequest
from daemon_guard.core.drain_preview import PlannedStep, preview_drain, render_preview
from daemon_guard.core.intake import Route
from daemon_guard.core.outcomes import Outcome
from daemon_guard.observability import logger
from daemon_guard.services.drain_budget import budget_place
from daemon_guard.services.drain_look import drain_policy, observe


def preview(rt: Runtime, request: DrainRequest) -> tuple[PlannedStep, ...]:
    """The planned steps of draining `request.instance_id` now, from ECS reads (the drain's own first look)."""
    now = rt.now().timestamp()
    view, _ = observe(rt, request, DrainProgress.begin(now))
    if view.instance is not None:
        view = replace(view, instance=rt.cluster(request.cluster).instance(view.instance.arn))
    return preview_drain(request, view, drain_policy(rt, request))


def steps_json(steps: tuple[PlannedStep, ...]) -> list[dict[str, Any]]:
    """The steps as JSON objects, in order."""
    return [{"step": n, **{k: (list(map(list, v)) if k == "tasks" else v) for k, v in vars(s).items()}}
            for n, s in enumerate(steps, 1)]


def observe_drain(r: Route, rt: Runtime, request: DrainRequest) -> Outcome:
    """``drainMode: observe``: log the planned steps, complete a lifecycle action at once, drain nothing."""
    steps = preview(rt, request)
    place = budget_place(rt, request)
    logger.info("drain observed: planned steps (drainMode observe, nothing changed)",
                extra={"instance": request.instance_id, "trigger": request.trigger,
                       "plan": render_preview(request, steps), "drainBudget": place})
    actions: list[CompleteLifecycle] = []
    if request.asg and request.hook:
        complete = CompleteLifecycle(request.asg, request.hook, request.instance_id, request.token, "CONTINUE")
        actions.append(complete)
        rt.executor.run(request.cluster, complete)
    extra: dict[str, Any] = {"plannedSteps": steps_json(steps)} | ({"drainBudget": place} if place else {})
    return Outcome(r.kind, "observed", f"{r.reason}: drainMode observe, planned steps only", request.instance_id,
                   tuple(actions), extra=extra)
