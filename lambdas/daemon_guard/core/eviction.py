"""The eviction chooser: which replica tasks to stop so the missing daemons fit on an instance.

Rules (hard): never a daemon task, a standalone task, a task of a service we were not shown, a
protected task (ECS task scale-in protection) or a task already stopping; never take a service
below its minimumHealthyPercent; never exceed a service's eviction budget for the current window;
every task holding a host port the daemons need is a victim.

Preferences (in this order, over every set of victims that frees enough):

1. keep every service as far above its minimum healthy count as possible (maximise the smallest
   slack left among the services touched), so the services with the most slack pay;
2. stop as few tasks as possible;
3. take as little CPU and memory beyond the shortfall as possible (each dimension weighed as a
   share of what the instance registers);
4. the lowest task ARNs, so the same state always gives the same plan.

Resources of tasks already stopping are credited as about to be free. The planner runs again on
every event and every reconcile while earlier victims are still stopping, and crediting them is
what keeps those reruns from stopping more tasks than needed.

The search is exact over classes of interchangeable tasks (same service, CPU and memory) with
branch and bound, seeded by a greedy answer; a node cap keeps it fast on crowded instances, where
the best plan found so far (never worse than greedy) is returned.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from daemon_guard.core.fit import room_after_stopping, shortfall
from daemon_guard.core.model import HostPort, InstanceView, Resources, ServiceView, TaskView

SEARCH_NODE_LIMIT = 20_000
"""How many search nodes the exact search may visit before settling for the best plan so far."""


@dataclass(frozen=True)
class EvictionPlan:
    """The tasks to stop on one instance so the missing daemons fit.

    Attributes
    ----------
    victims
        Tasks to stop, sorted by ARN; empty when nothing needs to stop (or nothing may).
    freed
        CPU, memory and host ports the victims release (their summed requirements).
    feasible
        True when stopping `victims` (after the tasks already stopping) makes room for the need.
    reason
        One line for logs and reports: what the plan frees, or what blocked it.
    """

    victims: tuple[TaskView, ...]
    freed: Resources
    feasible: bool
    reason: str


@dataclass(frozen=True)
class _Standing:
    """How many tasks a service may lose, and why not more."""

    slack: int
    allowance: int
    limit: str


@dataclass(frozen=True)
class _Class:
    """Interchangeable candidates: same service, CPU and memory, sorted by ARN."""

    service: str
    cpu: int
    memory: int
    tasks: tuple[TaskView, ...]


def choose_evictions(
    need: Resources,
    instance: InstanceView,
    tasks: Sequence[TaskView],
    services: Mapping[str, ServiceView],
    budget_left: Mapping[str, int],
) -> EvictionPlan:
    """Choose the cheapest set of replica tasks on `instance` whose stop makes room for `need`.

    Parameters
    ----------
    need
        The missing daemons' combined requirements, host ports included.
    instance
        The instance; ``remaining`` is what is free (its ``ports`` are the ports already taken)
        and ``registered`` its capacity (its ``ports`` are the agent's reserved ports).
    tasks
        The tasks on the instance; tasks of other instances and STOPPED tasks are ignored.
    services
        Services by name. A service's ``running_count`` is cluster-wide; a task whose service is
        missing here is never evicted.
    budget_left
        Evictions each service may still take in the current window, by service name. A service
        absent from the mapping may lose no task.

    Returns
    -------
    EvictionPlan
        Feasible with no victims when `need` already fits (counting tasks already stopping);
        infeasible, with no victims and a reason naming what blocked, when no allowed set frees
        enough.
    """
    here = sorted(
        (t for t in tasks if t.container_instance_arn == instance.arn and t.last_status != "STOPPED"),
        key=lambda t: t.arn,
    )
    stopping = [t for t in here if t.stopping]
    live = [t for t in here if not t.stopping]
    free = room_after_stopping(instance, here)
    short = shortfall(need, free)
    credit = f" (counting {_count(len(stopping), 'task')} already stopping)" if stopping else ""
    if short.cpu == 0 and short.memory == 0 and not short.ports:
        room = f"room for {_describe(need)} is free{credit}" if need != Resources() else "nothing needed"
        return EvictionPlan((), Resources(), True, f"{room}; nothing to evict")

    too_big = _beyond_capacity(need, instance.registered)
    if too_big:
        return _infeasible(too_big)

    standings = _standings(here, stopping, services, budget_left)
    evictable = [t for t in live if _kept_kind(t, services) is None]

    forced = _port_holders(short, live, services, standings)
    if isinstance(forced, str):
        return _infeasible(forced)
    rest = [t for t in evictable if t not in forced]
    search = _Search(short, instance.registered, standings, forced, _classes(rest))
    best = search.run()
    if best is None:
        return _infeasible(_blocked_reason(short, here, services, standings, evictable))
    victims = tuple(sorted(best, key=lambda t: t.arn))
    freed = _sum(victims)
    per_service = Counter(_service(t) for t in victims)
    who = ", ".join(f"{n} {name}" for name, n in sorted(per_service.items()))
    reason = (
        f"stop {_count(len(victims), 'task')} ({who}) to free {_describe(freed)} "
        f"for a shortfall of {_describe(short)}{credit}"
    )
    return EvictionPlan(victims, freed, True, reason)


def _port_holders(short: Resources, live: Sequence[TaskView], services: Mapping[str, ServiceView],
                  standings: Mapping[str, _Standing]) -> list[TaskView] | str:
    """The tasks that must stop because they hold a host port the daemons need (each in port order, none
    twice), or why that cannot be: a port no stoppable task holds, one a kept task holds, or a holder's
    service out of eviction allowance."""
    forced: list[TaskView] = []
    for port in sorted(short.ports, key=lambda p: (p.port, p.protocol)):
        holders = [t for t in live if port in t.requirements.ports]
        if not holders:
            return f"port {_port(port)} is taken on the instance by no task we can stop"
        for holder in holders:
            kind = _kept_kind(holder, services)
            if kind is not None:
                return f"port {_port(port)} is held by {_kept_label(kind, holder)}"
            if holder not in forced:
                forced.append(holder)
    for name, count in sorted(Counter(_service(t) for t in forced).items()):
        if count > standings[name].allowance:
            return f"a needed port is held by {name}, which {standings[name].limit}"
    return forced


class _Search:
    """Branch and bound over how many tasks of each class to stop."""

    def __init__(
        self,
        short: Resources,
        registered: Resources,
        standings: Mapping[str, _Standing],
        forced: Sequence[TaskView],
        classes: Sequence[_Class],
    ) -> None:
        self._short = short
        self._cpu_weight = max(1, registered.memory)
        self._memory_weight = max(1, registered.cpu)
        self._slack = {name: s.slack for name, s in standings.items()}
        self._forced = tuple(forced)
        self._classes = tuple(classes)
        self._allowance = {name: s.allowance for name, s in standings.items()}
        forced_by_service = Counter(_service(t) for t in forced)
        self._nodes = 0
        self._best: tuple[TaskView, ...] | None = None
        self._best_key: tuple[int, int, int, tuple[str, ...]] | None = None
        # Upper bound on what classes i.. can still free, for the infeasibility cut.
        self._reach: list[tuple[int, int]] = [(0, 0)] * (len(self._classes) + 1)
        for i in range(len(self._classes) - 1, -1, -1):
            c = self._classes[i]
            k = min(len(c.tasks), max(0, self._allowance[c.service] - forced_by_service[c.service]))
            cpu, memory = self._reach[i + 1]
            self._reach[i] = (cpu + k * c.cpu, memory + k * c.memory)

    def run(self) -> tuple[TaskView, ...] | None:
        """The best victim set (forced tasks included), or None when no allowed set frees enough."""
        self._consider(self._greedy())
        taken = Counter(_service(t) for t in self._forced)
        cpu = sum(t.requirements.cpu for t in self._forced)
        memory = sum(t.requirements.memory for t in self._forced)
        self._descend(0, list(self._forced), taken, cpu, memory)
        return self._best

    def _enough(self, cpu: int, memory: int) -> bool:
        return cpu >= self._short.cpu and memory >= self._short.memory

    def _min_slack_left(self, taken: Mapping[str, int]) -> int:
        touched = [self._slack[name] - n for name, n in taken.items() if n > 0]
        return min(touched) if touched else 1 << 30

    def _key(self, victims: Sequence[TaskView]) -> tuple[int, int, int, tuple[str, ...]]:
        taken = Counter(_service(t) for t in victims)
        cpu = sum(t.requirements.cpu for t in victims) - self._short.cpu
        memory = sum(t.requirements.memory for t in victims) - self._short.memory
        excess = cpu * self._cpu_weight + memory * self._memory_weight
        return (-self._min_slack_left(taken), len(victims), excess, tuple(sorted(t.arn for t in victims)))

    def _consider(self, victims: Sequence[TaskView] | None) -> None:
        if victims is None:
            return
        key = self._key(victims)
        if self._best_key is None or key < self._best_key:
            self._best, self._best_key = tuple(victims), key

    def _descend(self, i: int, chosen: list[TaskView], taken: Counter[str], cpu: int, memory: int) -> None:
        self._nodes += 1
        if self._enough(cpu, memory):
            self._consider(chosen)
            return
        if i == len(self._classes) or self._nodes > SEARCH_NODE_LIMIT:
            return
        reach_cpu, reach_memory = self._reach[i]
        if not self._enough(cpu + reach_cpu, memory + reach_memory):
            return
        if self._best_key is not None:
            # Not enough yet, so any completion stops at least one more task and leaves no more slack.
            bound = (-self._min_slack_left(taken), len(chosen) + 1)
            if bound > self._best_key[:2]:
                return
        c = self._classes[i]
        most = min(len(c.tasks), self._allowance[c.service] - taken[c.service])
        for k in range(max(0, most), -1, -1):
            picked = list(c.tasks[:k])
            taken[c.service] += k
            self._descend(i + 1, chosen + picked, taken, cpu + k * c.cpu, memory + k * c.memory)
            taken[c.service] -= k

    def _greedy(self) -> list[TaskView] | None:
        """Take the task of the service with most slack left (bigger first) until enough, then trim."""
        chosen = list(self._forced)
        taken = Counter(_service(t) for t in chosen)
        pool = [t for c in self._classes for t in c.tasks]
        cpu = sum(t.requirements.cpu for t in chosen)
        memory = sum(t.requirements.memory for t in chosen)
        while not self._enough(cpu, memory):
            allowed = [t for t in pool
                       if taken[_service(t)] < self._allowance[_service(t)] and self._useful(t, cpu, memory)]
            if not allowed:
                return None
            pick = min(allowed, key=lambda t: (
                -(self._slack[_service(t)] - taken[_service(t)]),
                -self._useful(t, cpu, memory),
                t.arn,
            ))
            pool.remove(pick)
            chosen.append(pick)
            taken[_service(pick)] += 1
            cpu += pick.requirements.cpu
            memory += pick.requirements.memory
        for task in reversed(chosen[len(self._forced):]):
            if self._enough(cpu - task.requirements.cpu, memory - task.requirements.memory):
                chosen.remove(task)
                cpu -= task.requirements.cpu
                memory -= task.requirements.memory
        return chosen

    def _useful(self, task: TaskView, cpu: int, memory: int) -> int:
        need_cpu = max(0, self._short.cpu - cpu)
        need_memory = max(0, self._short.memory - memory)
        return (min(task.requirements.cpu, need_cpu) * self._cpu_weight
                + min(task.requirements.memory, need_memory) * self._memory_weight)


def _classes(candidates: Sequence[TaskView]) -> list[_Class]:
    groups: dict[tuple[str, int, int], list[TaskView]] = {}
    for task in sorted(candidates, key=lambda t: t.arn):
        groups.setdefault((_service(task), task.requirements.cpu, task.requirements.memory), []).append(task)
    return [_Class(s, cpu, memory, tuple(ts)) for (s, cpu, memory), ts in sorted(groups.items())]


def _standings(
    here: Sequence[TaskView],
    stopping: Sequence[TaskView],
    services: Mapping[str, ServiceView],
    budget_left: Mapping[str, int],
) -> dict[str, _Standing]:
    stopping_here = Counter(_service(t) for t in stopping if t.service_name is not None)
    standings: dict[str, _Standing] = {}
    for name in sorted({t.service_name for t in here if t.service_name is not None}):
        service = services.get(name)
        if service is None or service.strategy != "REPLICA":
            continue
        healthy = service.running_count - stopping_here[name]
        floor = _ceil_div(service.desired_count * service.minimum_healthy_percent, 100)
        slack = max(0, healthy - floor)
        budget = max(0, budget_left.get(name, 0))
        if slack == 0:
            limit = (f"is at minimumHealthyPercent {service.minimum_healthy_percent} "
                     f"({healthy} running, {floor} required)")
        elif budget == 0:
            limit = "has no eviction budget left in this window"
        elif budget < slack:
            limit = f"may lose {budget} more in this window (eviction budget)"
        else:
            limit = (f"may lose {slack} before minimumHealthyPercent {service.minimum_healthy_percent} "
                     f"({healthy} running, {floor} required)")
        standings[name] = _Standing(slack=slack, allowance=min(slack, budget), limit=limit)
        # Tasks that have not started serve nothing and are not in runningCount: stopping them takes
        # no service below its minimum and spends no eviction budget. They are the cheapest victims.
        not_started = sum(1 for t in here if t.service_name == name and _not_started(t) and not t.stopping)
        if not_started:
            standings[f"{name}{PENDING_SUFFIX}"] = _Standing(
                slack=NOT_STARTED_SLACK, allowance=not_started, limit="has not started")
    return standings


def _kept_kind(task: TaskView, services: Mapping[str, ServiceView]) -> str | None:
    """Why a live task may never be evicted (a kind of task), or None when it may be."""
    name = task.service_name
    if name is None:
        return "standalone"
    service = services.get(name)
    if service is None:
        return "unknown-service"
    if service.strategy == "DAEMON":
        return "daemon"
    if task.protected:
        return "protected"
    return None


def _kept_label(kind: str, task: TaskView) -> str:
    owner = f" of {task.service_name}" if task.service_name else ""
    return f"{kind} task{owner} {task.arn}"


def _blocked_reason(
    short: Resources,
    here: Sequence[TaskView],
    services: Mapping[str, ServiceView],
    standings: Mapping[str, _Standing],
    evictable: Sequence[TaskView],
) -> str:
    most_cpu = _most(evictable, standings, lambda t: t.requirements.cpu)
    most_memory = _most(evictable, standings, lambda t: t.requirements.memory)
    parts = [f"short of {_describe(Resources(short.cpu, short.memory))}",
             f"evictable tasks free at most {most_cpu} CPU units and {most_memory} MiB"]
    held: list[str] = []
    per_service = Counter(_service(t) for t in evictable)
    for name, count in sorted(per_service.items()):
        if standings[name].allowance < count:
            held.append(f"{name} {standings[name].limit}")
    kept = Counter(_kind(t, services) for t in here)
    for kind in ("daemon", "standalone", "protected", "already stopping", "unknown-service"):
        if kept[kind]:
            held.append(f"{_count(kept[kind], kind + ' task')}")
    if held:
        parts.append("held back: " + ", ".join(held))
    return "; ".join(parts)


def _kind(task: TaskView, services: Mapping[str, ServiceView]) -> str:
    if task.stopping:
        return "already stopping"
    return _kept_kind(task, services) or "evictable"


def _most(
    evictable: Sequence[TaskView], standings: Mapping[str, _Standing], size: Callable[[TaskView], int]
) -> int:
    """The most one dimension can gain: each service's allowance of its biggest tasks."""
    by_service: dict[str, list[int]] = {}
    for task in evictable:
        by_service.setdefault(_service(task), []).append(size(task))
    return sum(sum(sorted(sizes, reverse=True)[: standings[name].allowance])
               for name, sizes in by_service.items())


def _beyond_capacity(need: Resources, registered: Resources) -> str | None:
    if need.cpu > registered.cpu or need.memory > registered.memory:
        return (f"needs {_describe(Resources(need.cpu, need.memory))}, more than the instance registers "
                f"({_describe(Resources(registered.cpu, registered.memory))})")
    reserved = need.ports & registered.ports
    if reserved:
        return f"needs port {', '.join(_port(p) for p in _sorted_ports(reserved))}, reserved on the instance"
    return None


def _infeasible(reason: str) -> EvictionPlan:
    return EvictionPlan((), Resources(), False, reason)


def _sum(tasks: Sequence[TaskView]) -> Resources:
    total = Resources()
    for task in tasks:
        total = total + task.requirements
    return total


NOT_STARTED = frozenset({"PROVISIONING", "PENDING", "ACTIVATING"})
PENDING_SUFFIX = " (not started)"
NOT_STARTED_SLACK = 1_000_000  # ranks not-started tasks as the ones whose loss matters least


def _not_started(task: TaskView) -> bool:
    return task.last_status in NOT_STARTED


def _service(task: TaskView) -> str:
    """The standing a task counts against: its service, or its service's not-yet-started pool."""
    name = task.service_name or ""
    return f"{name}{PENDING_SUFFIX}" if name and _not_started(task) and not task.stopping else name


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _port(port: HostPort) -> str:
    return f"{port.port}/{port.protocol}"


def _sorted_ports(ports: frozenset[HostPort]) -> list[HostPort]:
    return sorted(ports, key=lambda p: (p.port, p.protocol))


def _describe(r: Resources) -> str:
    parts = []
    if r.cpu:
        parts.append(f"{r.cpu} CPU units")
    if r.memory:
        parts.append(f"{r.memory} MiB")
    if r.ports:
        parts.append("port " + ", ".join(_port(p) for p in _sorted_ports(r.ports)))
    return " and ".join(parts) if parts else "nothing"


