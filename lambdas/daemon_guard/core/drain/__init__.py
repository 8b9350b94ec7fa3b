"""The ordered drain, one step at a time: replicas, then standalone tasks, then daemon tiers, then CONTINUE.

`plan_drain_step` is pure: it reads what the workflow observed (`DrainView`), what it has done so
far (`DrainProgress`, checkpointed between steps) and the policy, and returns the actions of this
step, the new progress, how long to wait before looking again and what to measure. Because it
re-derives everything from observed state, running a step twice (a replayed or crashed
invocation) repeats no effect that matters: StopTask on a stopping task and DRAINING on a draining
instance change nothing, and the lifecycle action is completed once (the adapter tolerates a
second try).

Each phase is one pure function (`plan_replicas`, `plan_standalone`, `plan_tier`, and `plan_settle`,
the last look before the lifecycle action), and so is the fence that keeps new work off the instance
(`plan_fence`). What the drain may promise depends on its
`DrainOrder` (core.config): with ``draining`` ECS decides when the daemons stop; with ``apps-first``
the guard stops every app task itself and follows it to STOPPED before DRAINING; with ``tiers`` it
also stops each daemon tier itself behind a tier attribute that keeps ECS from restarting it.

Time: a global deadline (configured, or the Spot notice minus a safety margin). Each phase's own
deadline reserves the time every later phase needs to stop its tasks (the longest stopTimeout among
them plus `STOP_MARGIN_S`: ECS sends SIGTERM, then SIGKILL after the stopTimeout), so a phase out of
time still leaves room for the rest. A phase out of time (its deadline, or the global one, passed)
stops everything it still holds at once, minimumHealthyPercent no longer counting, and the miss is
counted; it still follows those tasks to STOPPED before the next phase begins. Order is never traded for
time: a phase whose tasks outlive their expected stop time (stopTimeout plus `STOP_MARGIN_S`) keeps
waiting, looking again every `POLL_S`, and the lifecycle action waits with it, kept alive by heartbeats.
Only a hard end (`hard_ends`: a Spot notice or EC2 stop about to end, heartbeats that must stop before
the hook's global timeout, the drain deadline when `drainDeadlinePolicy` is ``force``) moves a phase on
with a task not STOPPED, and only when the later phases need the rest of the time to stop their own
tasks; each such move is a *guarantee break*, counted (`DrainProgress.breaks`) and published. The
lifecycle action completes once no task is left (or the instance is gone), or at the hard end, which
is a break too.
"""

from __future__ import annotations

from daemon_guard.core.drain.deadlines import (
    HARD_END_MARGIN_S,
    HOOK_MAX_GLOBAL_S,
    POLL_S,
    SPOT_SAFETY_S,
    STOP_MARGIN_S,
    HardEnd,
    HardEndKind,
    global_deadline,
    hard_end,
    hard_ends,
    hook_global_timeout_s,
    notice_end,
    phase_deadline,
    phase_index,
    phase_stop_times,
    plan_heartbeat,
)
from daemon_guard.core.drain.phases import (
    BLOCKED_AFTER_S,
    BUDGET_POLL_S,
    PHASES,
    PhaseInput,
    PhaseOutcome,
    app_tasks,
    follow_stops,
    gate_reopened,
    live_tasks,
    plan_fence,
    plan_replicas,
    plan_settle,
    plan_standalone,
    plan_tier,
    read_back,
    replica_stops,
)
from daemon_guard.core.drain.plan import (
    left_unseen,
    plan_drain_step,
)
from daemon_guard.core.drain.progress import (
    PHASE_NAMES,
    REPLICAS_KEY,
    STANDALONE_KEY,
    DrainLook,
    DrainNote,
    DrainProgress,
    DrainRecord,
    DrainStep,
    DrainView,
    Fences,
    HookKeeping,
    Phase,
    PhaseWatch,
    StopLedger,
    phase_label,
    phases_from,
)
from daemon_guard.core.drain.request import (
    DrainPolicy,
    DrainRequest,
    Lifecycle,
)

__all__ = [
    "BLOCKED_AFTER_S",
    "BUDGET_POLL_S",
    "HARD_END_MARGIN_S",
    "HOOK_MAX_GLOBAL_S",
    "PHASES",
    "PHASE_NAMES",
    "POLL_S",
    "REPLICAS_KEY",
    "SPOT_SAFETY_S",
    "STANDALONE_KEY",
    "STOP_MARGIN_S",
    "DrainLook",
    "DrainNote",
    "DrainPolicy",
    "DrainProgress",
    "DrainRecord",
    "DrainRequest",
    "DrainStep",
    "DrainView",
    "Fences",
    "HardEnd",
    "HardEndKind",
    "HookKeeping",
    "Lifecycle",
    "Phase",
    "PhaseInput",
    "PhaseOutcome",
    "PhaseWatch",
    "StopLedger",
    "app_tasks",
    "follow_stops",
    "gate_reopened",
    "global_deadline",
    "hard_end",
    "hard_ends",
    "hook_global_timeout_s",
    "left_unseen",
    "live_tasks",
    "notice_end",
    "phase_deadline",
    "phase_index",
    "phase_label",
    "phase_stop_times",
    "phases_from",
    "plan_drain_step",
    "plan_fence",
    "plan_heartbeat",
    "plan_replicas",
    "plan_settle",
    "plan_standalone",
    "plan_tier",
    "read_back",
    "replica_stops",
]
