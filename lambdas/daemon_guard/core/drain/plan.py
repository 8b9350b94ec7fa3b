"""One step of the ordered drain (`plan_drain_step`): observe ordering violations, fence the instance, run
the phases as far as the observation allows, then complete the lifecycle action or say when to look again."""

from __future__ import annotations

from dataclasses import replace

from daemon_guard.core.actions import Action, CompleteLifecycle
from daemon_guard.core.drain.deadlines import (
    POLL_S,
    HardEnd,
    global_deadline,
    hard_ends,
    notice_end,
    phase_deadline,
    plan_heartbeat,
)
from daemon_guard.core.drain.phases import PHASES, PhaseInput, PhaseOutcome, app_tasks, live_tasks, plan_fence
from daemon_guard.core.drain.progress import DrainNote, DrainProgress, DrainStep, DrainView, Phase, phase_label
from daemon_guard.core.drain.request import DrainPolicy, DrainRequest


def _observe_violations(view: DrainView, progress: DrainProgress, policy: DrainPolicy) -> tuple[str, ...]:
    """Stopping daemons while earlier work remains: a daemon before the non-daemons, tier k+1 before k."""
    if not any(t.stopping for key, tasks in view.live_by_phase.items() if isinstance(key, int) for t in tasks):
        return ()  # no daemon is stopping: nothing to look at
    found: list[str] = []
    non_daemon_left = bool(app_tasks(view, policy))
    seen = set(progress.violations)
    # The lowest tier with a live task, once: "an earlier tier is left" is then one comparison per task.
    lowest = min((k for k, tasks in view.live_by_phase.items() if isinstance(k, int) and tasks), default=None)
    for task in live_tasks(view.tasks):
        if not task.stopping or task.arn in seen:
            continue
        name = task.service_name
        if name is None or name not in view.daemon_tier:
            continue
        earlier_left = lowest is not None and lowest < view.daemon_tier[name]
        if non_daemon_left or earlier_left:
            found.append(task.arn)
    return tuple(found)


def _next_phase(progress: DrainProgress, view: DrainView, policy: DrainPolicy) -> DrainProgress:
    """Close the current phase (recording its time) and open the next."""
    label = phase_label(progress, policy)
    times = progress.phase_times if progress.phase == "settle" else \
        (*progress.phase_times, (label, progress.phase_started_at, view.now))
    nxt: Phase
    if progress.phase == "replicas":
        nxt, tier = "standalone", 0
    elif progress.phase == "standalone":
        nxt, tier = ("tier", 0) if policy.tier_names else ("settle", 0)
    elif progress.phase == "settle":
        nxt, tier = "complete", 0
    else:
        nxt, tier = ("tier", progress.tier + 1) if progress.tier + 1 < len(policy.tier_names) else ("settle", 0)
    return replace(progress, phase=nxt, tier=tier, phase_started_at=view.now, phase_times=times, last_count=-1,
                   last_progress_at=view.now, phase_late=False, overdue_noted=False)


def _force_if_late(view: DrainView, progress: DrainProgress, policy: DrainPolicy, deadline: float,
                   gone: bool) -> tuple[DrainProgress, tuple[DrainNote, ...]]:
    """Past the global deadline the drain is forced (counted once): every phase is then out of time, so what
    is left stops at once, phase by phase in order, each followed to STOPPED (`_on_deadline`)."""
    if progress.forced or view.now < deadline or gone:
        return progress, ()
    progress = replace(progress, forced=True, forced_at=view.now, deadlines_missed=progress.deadlines_missed + 1)
    return progress, (DrainNote("deadline-missed", f"global deadline passed in {phase_label(progress, policy)}"),)


def _walk(inp: PhaseInput, gone: bool, end: HardEnd) -> PhaseOutcome:
    """Run the phases as far as this observation allows (an instance gone finishes them all), each knowing
    the hard end `end`; the last, `plan_settle`, reads it as its deadline."""
    progress = inp.progress
    actions: tuple[Action, ...] = ()
    notes: tuple[DrainNote, ...] = ()
    for _ in range(len(inp.policy.tier_names) + 4):
        if progress.phase == "complete":
            break
        if gone:
            progress = _next_phase(progress, inp.view, inp.policy)
            continue
        deadline = end.at if progress.phase == "settle" else inp.deadline
        outcome = PHASES[progress.phase](replace(inp, progress=progress, deadline=deadline, end=end))
        actions, notes, progress = actions + outcome.actions, notes + outcome.notes, outcome.progress
        if not outcome.finished:
            return PhaseOutcome(progress, actions, notes, look_again_s=outcome.look_again_s)
        progress = _next_phase(progress, inp.view, inp.policy)
    return PhaseOutcome(progress, actions, notes, finished=progress.phase == "complete")


def plan_drain_step(request: DrainRequest, view: DrainView, progress: DrainProgress,
                    policy: DrainPolicy) -> DrainStep:
    """Plan the next step of the ordered drain of one instance."""
    if progress.done:
        return DrainStep((), progress, 0.0)
    deadline = global_deadline(request, view, progress, policy)
    notice = notice_end(request, progress, view)
    if notice != progress.notice_at:
        progress = replace(progress, notice_at=notice)
    violations = _observe_violations(view, progress, policy)
    notes = tuple(DrainNote("ordering-violation", arn) for arn in violations)
    progress = replace(progress, violations=progress.violations + violations) if violations else progress
    gone = view.instance is None or view.instance.status in ("INACTIVE", "DEREGISTERING")
    fence, progress = plan_fence(view, progress, policy)
    progress, forced = _force_if_late(view, progress, policy, deadline, gone)
    walked = _walk(PhaseInput(view, progress, policy, deadline), gone, hard_ends(request, view, progress, policy))
    actions, progress, notes = fence + walked.actions, walked.progress, notes + forced + walked.notes
    if walked.finished:
        lc = view.lifecycle
        if lc is not None:
            actions += (CompleteLifecycle(lc.asg, lc.hook, request.instance_id, lc.token, "CONTINUE"),)
        progress = replace(progress, result="CONTINUE" if lc else "no-lifecycle-action", completed_at=view.now)
        return DrainStep(actions, progress, 0.0, notes)
    beat, beat_wait = plan_heartbeat(request, view.lifecycle, view.now, progress, policy)
    if beat is not None:
        actions += (beat,)
        progress = replace(progress, heartbeats=progress.heartbeats + 1, last_heartbeat_at=view.now)
    due = phase_deadline(view, progress, policy, deadline) if progress.phase != "settle" else view.now
    # A held replica phase is woken by its replacements (its look is the slow fallback); every other wait is
    # bounded by the polling rate.
    cap = walked.look_again_s if progress.phase == "replicas" and progress.replicas_held and walked.look_again_s \
        else POLL_S
    wait = min(cap, beat_wait, walked.look_again_s or POLL_S, due - view.now if due > view.now else POLL_S)
    return DrainStep(actions, progress, max(1.0, wait), notes)
