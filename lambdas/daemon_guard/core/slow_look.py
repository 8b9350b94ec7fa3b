"""The slow look: when a workflow that waits on events (a drain, a launch gate) reads ECS anyway.

ECS events are durable EventBridge deliveries: at least once, so late (retries for up to 24 h), and now
and then never (the dead-letter queue). A workflow that moves on only when an event wakes it would wait
for a lost one until its deadline. So, when no event has come for a while, it looks once (ListTasks and
DescribeTasks: two cluster reads), and a lost or late event costs seconds.

The interval is not one chosen value: it is the time the workflow had already gone without an event at
its last look, held within `[LOOK_MIN_S, LOOK_MAX_S]`, so silent looks space out geometrically (10, 20,
40, 60, 60 s ...). A lost event right after a burst of them is found within `LOOK_MIN_S`; one lost
during a long quiet wait costs at most that wait again, and never more than `LOOK_MAX_S`.

- `LOOK_MIN_S`, 10 s: a delivered event arrives within a second and a stopped task is reported STOPPED
  within under a second to tens of seconds of its exit (ECS-BEHAVIOUR.md), so a look sooner than this
  mostly finds what the next event would have said; it is also the drain's polling cadence (`POLL_S`),
  the read rate each waiting drain was already given.
- `LOOK_MAX_S`, 60 s: the reconciler's schedule, the guard's documented bound for anything the events
  missed.

The read budget: a workflow silent for a minute spends 2 reads per `LOOK_MAX_S`, so a hundred such
drains spend 3.3 reads/s, a sixth of ECS's cluster-read refill (20/s) that they share with the
placement reflex; only workflows that have just heard an event look as often as every `LOOK_MIN_S`.
"""

from __future__ import annotations

LOOK_MIN_S = 10.0
LOOK_MAX_S = 60.0
READS_PER_LOOK = 2  # ListTasks + DescribeTasks (up to 100 tasks)


def slow_look_interval(looked_at: float, heard_at: float) -> float:
    """Seconds from the last look to the next one: the silence that look had already seen (`looked_at`
    minus `heard_at`, the last event or the workflow's start), within `[LOOK_MIN_S, LOOK_MAX_S]`."""
    return min(LOOK_MAX_S, max(LOOK_MIN_S, looked_at - heard_at))


def slow_look_due(now: float, looked_at: float, heard_at: float) -> bool:
    """True when the workflow should read ECS although no event asked it to: the interval since its last
    look (`slow_look_interval`) has passed."""
    return now - looked_at >= slow_look_interval(looked_at, heard_at)


def seconds_to_slow_look(now: float, looked_at: float, heard_at: float) -> float:
    """Seconds until the next slow look is due (0 when it is due now): a waiting workflow's longest wait."""
    return max(0.0, looked_at + slow_look_interval(looked_at, heard_at) - now)
