"""One step of the ordered drain (`plan_drain_step`): observe ordering violations, fence the instance, run
the phases as far as the observation allows, then complete the lifecycle action or say when to look again."""

from __future__ import annotations

from dataclasses import replace

from daemon_guard.core.actions import Action, CompleteLifecycle
from daemon_guard.core.config import DrainOrder
from daemon_guard.core.drain.deadlines import (
    HARD_END_MARGIN_S,
    POLL_S,
    HardEnd,
    global_deadline,
    hard_ends,
    notice_end,
    phase_deadline,
    plan_heartbeat,
)
from daemon_guard.core.drain.phases import PHASES, PhaseInput, PhaseOutcome, app_tasks, plan_fence
from daemon_guard.core.drain.progress import (
    DrainNote,
    DrainProgress,
    DrainStep,
    DrainView,
    Phase,
    PhaseWatch,
    phase_label,
)
from daemon_guard.core.drain.request import DrainPolicy, DrainRequest


def _earlier_left(view: DrainView, policy: DrainPolicy, tier: int) -> tuple[str, int] | None:
    """The earliest phase before daemon tier `tier` with a task not STOPPED (as the guard names it) and how
    many tasks it has left; None when nothing before that tier is left."""
    apps = app_tasks(view, policy)
    if apps:
        replicas = [t for t in apps if t.service_name is not None]
        return ("replicas", len(replicas)) if replicas else ("standalone", len(apps))
    live = view.live_by_phase
    lowest = min((k for k, tasks in live.items() if isinstance(k, int) and tasks and k < tier), default=None)
    if lowest is None:
        return None
    name = policy.tier_names[lowest] if lowest < len(policy.tier_names) else f"tier-{lowest}"
    return name, len(live[lowest])


def _observe_violations(view: DrainView, progress: DrainProgress,
                        policy: DrainPolicy) -> tuple[tuple[str, ...], tuple[tuple[str, str, float, int], ...]]:
    """Daemons stopping (or STOPPED) while earlier work remains: a daemon before the non-daemons, tier k+1
    before k. Returns the daemons newly seen so, and the guarantee breaks among them: with ``apps-first`` or
    ``tiers``, each such daemon the guard did not stop itself is a break of the order it claims, caused by
    someone else (`ecs-draining`: the instance was set DRAINING by another than the guard, as ECS does at a
    Spot notice with ECS_ENABLE_SPOT_INSTANCE_DRAINING; `stopped-elsewhere` otherwise). A daemon the guard
    stopped itself with earlier work left follows a break already counted (a hard end), or is a self-check
    failure (OrderingViolations)."""
    seen = set(progress.record.violations)
    stopped = [t for t in view.tasks if (t.stopping or t.last_status == "STOPPED") and t.arn not in seen
               and t.service_name is not None and t.service_name in view.daemon_tier]
    if not stopped:
        return (), ()
    found: list[str] = []
    breaks: list[tuple[str, str, float, int]] = []
    asked = set(progress.stops.requested)
    claimed = policy.order is not DrainOrder.DRAINING
    instance = view.instance
    drained_by_other = instance is not None and instance.status == "DRAINING" and not progress.fences.draining_requested
    left_before: dict[int, tuple[str, int] | None] = {}  # per tier, read once: linear in the instance's tasks
    for task in stopped:
        tier = view.daemon_tier[task.service_name or ""]
        if tier not in left_before:
            left_before[tier] = _earlier_left(view, policy, tier)
        left = left_before[tier]
        if left is None:
            continue
        found.append(task.arn)
        # apps-first claims no order among daemons: ECS stopping them all once the guard set DRAINING is its design.
        order_claimed = left[0] in ("replicas", "standalone") or policy.order is DrainOrder.TIERS
        if claimed and order_claimed and task.arn not in asked:
            cause = "ecs-draining" if drained_by_other else "stopped-elsewhere"
            breaks.append((left[0], cause, view.now, left[1]))
    return tuple(found), tuple(breaks)


def _next_phase(progress: DrainProgress, view: DrainView, policy: DrainPolicy) -> DrainProgress:
    """Close the current phase (recording its time) and open the next."""
    label = phase_label(progress, policy)
    times = progress.record.phase_times if progress.phase == "settle" else \
        (*progress.record.phase_times, (label, progress.phase_started_at, view.now))
    nxt: Phase
    if progress.phase == "replicas":
        nxt, tier = "standalone", 0
    elif progress.phase == "standalone":
        nxt, tier = ("tier", 0) if policy.tier_names else ("settle", 0)
    elif progress.phase == "settle":
        nxt, tier = "complete", 0
    else:
        nxt, tier = ("tier", progress.tier + 1) if progress.tier + 1 < len(policy.tier_names) else ("settle", 0)
    return replace(progress, phase=nxt, tier=tier, phase_started_at=view.now, watch=PhaseWatch.begin(view.now),
                   record=replace(progress.record, phase_times=times))


def _force_if_late(view: DrainView, progress: DrainProgress, policy: DrainPolicy, deadline: float,
                   gone: bool) -> tuple[DrainProgress, tuple[DrainNote, ...]]:
    """Past the global deadline the drain is forced (counted once): every phase is then out of time, so what
    is left stops at once, phase by phase in order, each followed to STOPPED (`_on_deadline`)."""
    if progress.record.forced or view.now < deadline or gone:
        return progress, ()
    progress = replace(progress, record=replace(progress.record, forced=True, forced_at=view.now,
                                                deadlines_missed=progress.record.deadlines_missed + 1))
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


GONE_KINDS = ("notice-missed", "instance-gone")


def _gone_early(view: DrainView, progress: DrainProgress, policy: DrainPolicy, notice: float | None,
                gone: bool) -> tuple[str, str, float, int] | None:
    """A drain that finds its instance gone before it completed: a break, counted once, that the guard can
    only publish after the fact (it learns of the end when it next looks).

    - ``notice-missed``: its notice has ended (it started late: the notice's events came after the end, or
      its steps could not run); what still ran was killed by EC2.
    - ``instance-gone``: no notice over, but tasks it was following (live at its last look, not STOPPED since)
      went with the instance: EC2 reclaimed it before the guard heard of the notice (a drain started from
      the lifecycle action alone), or it was terminated outside Auto Scaling.

    The tasks left are those followed at the last look (0 when it never saw the instance: unknown). A drain
    that never saw its instance and has no notice over says nothing: it cannot tell an instance that never
    registered from one that left."""
    if not gone or any(kind in GONE_KINDS for _, kind, _, _ in progress.record.breaks) \
            or any(kind == "notice" and phase == "settle" for phase, kind, _, _ in progress.record.breaks):
        return None
    left = len(progress.look.live_tasks)
    if notice is not None and view.now >= notice - HARD_END_MARGIN_S:
        return (phase_label(progress, policy), "notice-missed", view.now, left)
    return (phase_label(progress, policy), "instance-gone", view.now, left) if left else None


def left_unseen(progress: DrainProgress, lifecycle_over: bool, now: float) -> tuple[str, str, float, int] | None:
    """A drain that never saw its instance (not registered at its first look) and found its lifecycle action
    already over when it came to complete it: the instance left under the guard's hook before any drain
    looked (the lifecycle action's event, and a Spot warning's, came after it was gone). A break
    ``instance-gone`` of the replica phase (nothing of the drain ran), tasks unknown (0). An instance that
    never registered leaves its action waiting for the guard: completed, no break."""
    if not lifecycle_over or progress.look.instance_arn is not None \
            or any(kind in GONE_KINDS for _, kind, _, _ in progress.record.breaks):
        return None
    return ("replicas", "instance-gone", now, 0)


def plan_drain_step(request: DrainRequest, view: DrainView, progress: DrainProgress,
                    policy: DrainPolicy) -> DrainStep:
    """Plan the next step of the ordered drain of one instance."""
    if progress.done:
        return DrainStep((), progress, 0.0)
    deadline = global_deadline(request, view, progress, policy)
    notice = notice_end(request, progress, view)
    if notice != progress.hook.notice_at:
        progress = replace(progress, hook=replace(progress.hook, notice_at=notice))
    violations, outside = _observe_violations(view, progress, policy)
    notes = tuple(DrainNote("ordering-violation", arn) for arn in violations)
    notes += tuple(DrainNote("guarantee-broken", f"a daemon stopped by another than the guard ({cause}) while "
                             f"{left} task(s) of {phase} were not STOPPED", value=left, tier=phase)
                   for phase, cause, _, left in outside)
    if violations:
        progress = replace(progress, record=replace(progress.record, violations=progress.record.violations + violations,
                                                    breaks=progress.record.breaks + outside))
    gone = view.instance is None or view.instance.status in ("INACTIVE", "DEREGISTERING")
    missed = _gone_early(view, progress, policy, notice, gone)
    if missed is not None:
        progress = replace(progress, record=replace(progress.record, breaks=(*progress.record.breaks, missed)))
        why = "its notice over" if missed[1] == "notice-missed" else f"{missed[3]} task(s) not STOPPED"
        notes += (DrainNote("guarantee-broken", f"the instance was gone when the drain looked, {why} in "
                            f"{missed[0]}: what ran there was killed", value=missed[3], tier=missed[0]),)
    fence, progress = plan_fence(view, progress, policy)
    progress, forced = _force_if_late(view, progress, policy, deadline, gone)
    walked = _walk(PhaseInput(view, progress, policy, deadline), gone, hard_ends(request, view, progress, policy))
    actions, progress, notes = fence + walked.actions, walked.progress, notes + forced + walked.notes
    if walked.finished:
        lc = view.lifecycle
        if lc is not None:
            actions += (CompleteLifecycle(lc.asg, lc.hook, request.instance_id, lc.token, "CONTINUE"),)
        progress = replace(progress, record=replace(progress.record, result="CONTINUE" if lc else "no-lifecycle-action",
                                                    completed_at=view.now))
        return DrainStep(actions, progress, 0.0, notes)
    beat, beat_wait = plan_heartbeat(request, view.lifecycle, view.now, progress, policy)
    if beat is not None:
        actions += (beat,)
        progress = replace(progress, hook=replace(progress.hook, heartbeats=progress.hook.heartbeats + 1,
                                                  last_heartbeat_at=view.now))
    due = phase_deadline(view, progress, policy, deadline) if progress.phase != "settle" else view.now
    # A held replica phase is woken by its replacements and a standalone wait by its tasks' exits (their looks are
    # the slow fallback); every other wait is bounded by the polling rate.
    on_events = (progress.phase == "replicas" and progress.watch.replicas_held) or progress.phase == "standalone"
    cap = walked.look_again_s if on_events and walked.look_again_s else POLL_S
    wait = min(cap, beat_wait, walked.look_again_s or POLL_S, due - view.now if due > view.now else POLL_S)
    return DrainStep(actions, progress, max(1.0, wait), notes)
