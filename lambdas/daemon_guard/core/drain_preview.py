"""A drain's planned steps, in order, before it happens: the dry run of `core.drain.plan_drain_step`.

`preview_drain` runs the real planner forward over what was observed, as if every step went as
planned: DRAINING takes effect, ECS replaces the service replicas, each StopTask'ed task stops,
and a phase that waits (standalone tasks under the ``wait`` policy) waits its full time. It
reports each step with the tasks it concerns, the phase's time limit and, last, the lifecycle
action. Pure: the views in, the steps out; nothing is read or written.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from daemon_guard.core.actions import CompleteLifecycle, SetAttribute, SetDraining, StopTasks
from daemon_guard.core.config import StandalonePolicy
from daemon_guard.core.drain import (
    DrainPolicy,
    DrainProgress,
    DrainRequest,
    DrainView,
    Phase,
    global_deadline,
    phase_deadline,
    phase_label,
    plan_drain_step,
)
from daemon_guard.core.model import TaskView

StepKind = Literal["set-draining", "ecs-replaces", "wait", "stop-tasks", "complete-lifecycle", "no-lifecycle-action",
                   "nothing-to-drain"]
MAX_STEPS = 200
UNTIERED: dict[str, Phase] = {"replicas": "replicas", "standalone": "standalone", "settle": "settle"}  # by label


@dataclass(frozen=True)
class PlannedStep:
    """One step of the planned drain: what happens, in which phase, to which tasks, within what time.

    `limit_s` is the phase's own time limit (seconds after the phase begins) and `deadline_s` the
    drain's global deadline (seconds after the drain starts); None where none applies.
    """

    kind: StepKind
    phase: str
    detail: str
    tasks: tuple[tuple[str, str], ...] = ()
    limit_s: float | None = None
    deadline_s: float | None = None


def _tasks(tasks: list[TaskView]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((t.arn, t.service_name or t.group) for t in tasks))


def _phase_tasks(view: DrainView, progress: DrainProgress, policy: DrainPolicy) -> list[TaskView]:
    daemon = view.daemon_tier
    live = [t for t in view.tasks if t.last_status != "STOPPED"]
    if progress.phase == "replicas":
        return [t for t in live if t.service_name is not None and t.service_name not in daemon]
    if progress.phase == "standalone":
        return [] if policy.standalone is StandalonePolicy.IGNORE else [t for t in live if t.service_name is None]
    return [t for t in live if t.service_name is not None and daemon.get(t.service_name) == progress.tier]


def preview_drain(request: DrainRequest, view: DrainView, policy: DrainPolicy) -> tuple[PlannedStep, ...]:
    """The steps the ordered drain of `view.instance` would take, in order, if everything went as planned."""
    if view.instance is None:
        return (PlannedStep("nothing-to-drain", "-", f"{request.instance_id} is not registered in the cluster"),)
    start = view.now
    progress = DrainProgress.begin(start)
    deadline = global_deadline(request, view, progress, policy) - start
    steps: list[PlannedStep] = []
    reported: set[str] = set()
    first, first_view = progress, view

    def limit_of(phase_name: str) -> float:
        kind: Phase = UNTIERED.get(phase_name, "tier")
        tier = policy.tier_names.index(phase_name) if phase_name in policy.tier_names else 0
        return phase_deadline(first_view, replace(first, phase=kind, tier=tier), policy, start + deadline) - start

    for _ in range(MAX_STEPS):
        label = phase_label(progress, policy)
        step = plan_drain_step(request, view, progress, policy)
        tasks = list(view.tasks)
        for action in step.actions:
            if isinstance(action, SetDraining):
                steps.append(PlannedStep("set-draining", label, "UpdateContainerInstancesState DRAINING: ECS stops "
                                         "placing tasks here and begins replacing service replicas",
                                         deadline_s=deadline))
                view = replace(view, instance=replace(view.instance, status="DRAINING")) if view.instance else view
            elif isinstance(action, SetAttribute) and view.instance is not None:
                # The drain reads its fences back before it counts on them: the preview shows them in effect.
                shown = {**view.instance.attributes, action.name: action.value}
                view = replace(view, instance=replace(view.instance, attributes=shown))
            elif isinstance(action, StopTasks):
                told = set(action.task_arns)
                stopped = [t for t in tasks if t.arn in told]
                phase = action.phase or label
                steps.append(PlannedStep("stop-tasks", phase, f"StopTask ({action.reason}), each followed to STOPPED",
                                         _tasks(stopped), limit_of(phase), deadline))
                tasks = [t for t in tasks if t.arn not in told]
            elif isinstance(action, CompleteLifecycle):
                steps.append(PlannedStep("complete-lifecycle", "lifecycle", f"CompleteLifecycleAction {action.result} "
                                         f"({action.asg} / {action.hook})", deadline_s=deadline))
        if step.progress.phase == "complete":
            if step.progress.record.result == "no-lifecycle-action":
                steps.append(PlannedStep("no-lifecycle-action", "lifecycle",
                                         "no lifecycle action to complete (the drain ends when the instance is empty)"))
            return tuple(steps)
        waiting = _phase_tasks(replace(view, tasks=tasks), step.progress, policy)
        if step.progress.phase == "replicas" and waiting:
            steps.append(PlannedStep("ecs-replaces", "replicas", "ECS replaces these service replicas within "
                                     "their minimumHealthyPercent / maximumPercent; the drain waits for them",
                                     _tasks(waiting), limit_of("replicas"), deadline))
            replaced = {t.arn for t in waiting}
            tasks = [t for t in tasks if t.arn not in replaced]
        elif not step.actions and waiting:
            waiting_in = phase_label(step.progress, policy)
            if waiting_in not in reported:
                reported.add(waiting_in)
                what = f"wait up to {policy.standalone_wait_s:.0f}s from the drain's start for these to finish, " \
                    "then stop them"
                steps.append(PlannedStep("wait", waiting_in, what, _tasks(waiting), limit_of(waiting_in), deadline))
            view = replace(view, now=view.now + step.wait_s)
        progress = step.progress
        view = replace(view, tasks=tasks)
    raise RuntimeError(f"drain preview of {request.instance_id} did not finish in {MAX_STEPS} steps")


def render_preview(request: DrainRequest, steps: tuple[PlannedStep, ...]) -> list[str]:
    """The planned steps as numbered lines for a terminal."""
    lines = [f"drain plan for {request.instance_id} (cluster {request.cluster}, trigger {request.trigger}); "
             "nothing was changed"]
    for n, step in enumerate(steps, 1):
        limit = f" [within {step.limit_s:.0f}s of the phase start]" if step.limit_s is not None else ""
        lines.append(f"{n}. {step.phase}: {step.detail}{limit}")
        lines += [f"     {group}  {arn}" for arn, group in step.tasks]
    deadline = next((s.deadline_s for s in steps if s.deadline_s is not None), None)
    if deadline is not None:
        lines.append(f"global deadline: {deadline:.0f}s after the drain starts; past it, what is left stops in order")
    return lines
