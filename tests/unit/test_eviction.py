"""The eviction chooser: the cheapest allowed set of replica tasks that makes room for daemons."""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter

import pytest
from daemon_guard.core.eviction import EvictionPlan, choose_evictions
from daemon_guard.core.model import HostPort, InstanceView, Resources, ServiceView, TaskView

INSTANCE_ARN = "arn:aws:ecs:eu-west-1:111122223333:container-instance/prod/i1"
TCP80 = HostPort(80)


def instance(cpu: int = 0, memory: int = 0, taken: frozenset[HostPort] = frozenset()) -> InstanceView:
    """An instance of 2048 CPU units and 8192 MiB with `cpu`/`memory` left and `taken` ports."""
    return InstanceView(
        arn=INSTANCE_ARN,
        ec2_instance_id="i-1",
        status="ACTIVE",
        agent_connected=True,
        registered=Resources(2048, 8192, frozenset({HostPort(22)})),
        remaining=Resources(cpu, memory, taken | {HostPort(22)}),
    )


def task(
    arn: str,
    owner: str | None,
    cpu: int = 0,
    memory: int = 0,
    *,
    ports: frozenset[HostPort] = frozenset(),
    protected: bool = False,
    stopping: bool = False,
) -> TaskView:
    """A RUNNING task on the instance; `owner` None makes it standalone."""
    return TaskView(
        arn=arn,
        group=f"service:{owner}" if owner else "family:batch",
        task_definition_arn=f"arn:td/{owner or 'batch'}:1",
        last_status="RUNNING",
        desired_status="STOPPED" if stopping else "RUNNING",
        container_instance_arn=INSTANCE_ARN,
        requirements=Resources(cpu, memory, ports),
        protected=protected,
    )


def replica(name: str, desired: int, running: int, min_healthy: int = 100) -> ServiceView:
    """A REPLICA service; slack is running minus ceil(desired * min_healthy / 100)."""
    return ServiceView(
        arn=f"arn:svc/{name}", name=name, strategy="REPLICA", task_definition_arn=f"arn:td/{name}:1",
        desired_count=desired, running_count=running, minimum_healthy_percent=min_healthy,
    )


def daemon(name: str) -> ServiceView:
    """A DAEMON service."""
    return ServiceView(arn=f"arn:svc/{name}", name=name, strategy="DAEMON",
                       task_definition_arn=f"arn:td/{name}:1")


SERVICES = {
    "api": replica("api", desired=4, running=4, min_healthy=75),      # slack 1
    "worker": replica("worker", desired=10, running=10, min_healthy=50),  # slack 5
    "web": replica("web", desired=4, running=4, min_healthy=50),      # slack 2
    "jobs": replica("jobs", desired=5, running=5, min_healthy=0),     # slack 5
    "fluent-bit": daemon("fluent-bit"),
}
BUDGET = {"api": 5, "worker": 5, "web": 5, "jobs": 5}


def victims_of(plan: EvictionPlan) -> tuple[str, ...] | None:
    """Victim ARNs of a feasible plan, None for an infeasible one."""
    return tuple(t.arn for t in plan.victims) if plan.feasible else None


@pytest.mark.parametrize(
    ("need", "free", "tasks", "expected"),
    [
        pytest.param(Resources(256, 512), Resources(256, 512), [task("w1", "worker", 512, 1024)], (),
                     id="already-fits-nothing-evicted"),
        pytest.param(Resources(0, 512), Resources(), [
            task("w1", "worker", 0, 1024), task("w2", "worker", 0, 512), task("w3", "worker", 0, 2048),
        ], ("w2",), id="frees-exactly-enough-not-more"),
        pytest.param(Resources(0, 768), Resources(0, 256), [
            task("w1", "worker", 0, 1024), task("w2", "worker", 0, 512),
        ], ("w2",), id="only-the-shortfall-counts"),
        pytest.param(Resources(512, 512), Resources(), [
            task("w1", "worker", 512, 0), task("w2", "worker", 0, 512), task("w3", "worker", 0, 4096),
        ], ("w1", "w2"), id="cpu-and-memory-both-covered"),
        pytest.param(Resources(0, 1024), Resources(), [
            task("j1", "jobs", 0, 512), task("w1", "worker", 0, 512), task("w3", "worker", 0, 1024),
        ], ("w3",), id="fewest-tasks-when-slack-left-is-equal"),
        pytest.param(Resources(0, 512), Resources(), [
            task("a1", "api", 0, 512), task("w1", "worker", 0, 512),
        ], ("w1",), id="most-slack-preferred-over-lower-arn"),
        pytest.param(Resources(0, 1024), Resources(), [
            task("a1", "api", 0, 1024), task("w1", "worker", 0, 512), task("w2", "worker", 0, 512),
        ], ("w1", "w2"), id="slack-weighs-before-task-count"),
        pytest.param(Resources(0, 512), Resources(), [
            task("w3", "worker", 0, 512), task("w1", "worker", 0, 512), task("w2", "worker", 0, 512),
        ], ("w1",), id="ties-broken-by-lowest-arn"),
        pytest.param(Resources(0, 512), Resources(), [
            task("d1", "fluent-bit", 0, 4096), task("w1", "worker", 0, 512),
        ], ("w1",), id="never-a-daemon"),
        pytest.param(Resources(0, 512), Resources(), [
            task("s1", None, 0, 4096), task("w1", "worker", 0, 512),
        ], ("w1",), id="never-a-standalone-task"),
        pytest.param(Resources(0, 512), Resources(), [
            task("w0", "worker", 0, 512, protected=True), task("w1", "worker", 0, 512),
        ], ("w1",), id="never-a-protected-task"),
        pytest.param(Resources(0, 512), Resources(), [
            task("u1", "unknown", 0, 4096), task("w1", "worker", 0, 512),
        ], ("w1",), id="never-a-task-of-a-service-not-shown"),
        pytest.param(Resources(0, 1024), Resources(), [
            task("w0", "worker", 0, 512, stopping=True), task("w1", "worker", 0, 512),
            task("w2", "worker", 0, 512),
        ], ("w1",), id="tasks-already-stopping-are-credited-not-stopped-again"),
        pytest.param(Resources(0, 512), Resources(), [
            task("w0", "worker", 0, 512, stopping=True),
        ], (), id="stopping-tasks-free-enough-nothing-more-to-stop"),
        pytest.param(Resources(0, 512), Resources(), [
            task("d1", "fluent-bit", 0, 4096), task("s1", None, 0, 4096),
            task("w0", "worker", 0, 4096, protected=True),
        ], None, id="nothing-evictable-infeasible"),
        pytest.param(Resources(0, 1536), Resources(), [
            task("a1", "api", 0, 1024), task("a2", "api", 0, 1024),
        ], None, id="min-healthy-caps-a-service-at-its-slack"),
        pytest.param(Resources(0, 9000), Resources(), [task("w1", "worker", 0, 8192)], None,
                     id="more-than-the-instance-registers-infeasible"),
    ],
)
def test_chooses_the_cheapest_allowed_victims(
    need: Resources, free: Resources, tasks: list[TaskView], expected: tuple[str, ...] | None,
) -> None:
    # GIVEN an instance with `free` left, these tasks on it and generous budgets
    node = instance(free.cpu, free.memory)

    # WHEN the chooser makes room for `need`
    plan = choose_evictions(need, node, tasks, SERVICES, BUDGET)

    # THEN it stops exactly the expected tasks (None: nothing allowed frees enough)
    assert victims_of(plan) == expected
    if plan.feasible:
        assert plan.freed == sum((t.requirements for t in plan.victims), Resources())
    else:
        assert plan.victims == () and plan.freed == Resources()


@pytest.mark.parametrize(
    ("running", "stopping_here", "expected"),
    [
        pytest.param(4, 0, ("a1",), id="one-above-floor-may-lose-one"),
        pytest.param(4, 1, None, id="a-stopping-task-uses-up-the-slack"),
        pytest.param(3, 0, None, id="already-at-floor"),
        pytest.param(2, 0, None, id="below-floor"),
        pytest.param(6, 2, ("a1",), id="slack-left-after-stopping-tasks"),
    ],
)
def test_never_takes_a_service_below_minimum_healthy_counting_stopping_tasks(
    running: int, stopping_here: int, expected: tuple[str, ...] | None,
) -> None:
    # GIVEN api with desired 4 at minimumHealthyPercent 75 (floor 3), `running` cluster-wide,
    # and `stopping_here` of its tasks on this instance already stopping (freeing no memory)
    services = {"api": replica("api", desired=4, running=running, min_healthy=75)}
    stopping = [task(f"s{i}", "api", stopping=True) for i in range(stopping_here)]
    tasks = [*stopping, task("a1", "api", 0, 512)]

    # WHEN 512 MiB is needed
    plan = choose_evictions(Resources(0, 512), instance(), tasks, services, {"api": 5})

    # THEN api loses a task only while it stays at or above its floor
    assert victims_of(plan) == expected


@pytest.mark.parametrize(
    ("budget", "expected"),
    [
        pytest.param({"worker": 2}, ("w1", "w2"), id="budget-of-two-allows-two"),
        pytest.param({"worker": 1}, None, id="budget-of-one-is-not-enough"),
        pytest.param({"worker": 0}, None, id="budget-spent"),
        pytest.param({}, None, id="service-absent-from-budget-may-lose-nothing"),
        pytest.param({"worker": 1, "web": 1}, ("w1", "x1"), id="budget-spread-over-services"),
    ],
)
def test_respects_the_eviction_budget_left(budget: dict[str, int], expected: tuple[str, ...] | None) -> None:
    # GIVEN two worker tasks and one web task of 512 MiB each
    tasks = [task("w1", "worker", 0, 512), task("w2", "worker", 0, 512), task("x1", "web", 0, 512)]

    # WHEN 1024 MiB is needed with `budget` left
    plan = choose_evictions(Resources(0, 1024), instance(), tasks, SERVICES, budget)

    # THEN no service loses more tasks than its budget allows
    assert victims_of(plan) == expected


@pytest.mark.parametrize(
    ("need_ports", "holders", "expected"),
    [
        pytest.param({TCP80}, [task("x1", "web", 0, 128, ports=frozenset({TCP80}))], ("x1",),
                     id="port-holder-is-the-victim"),
        pytest.param({HostPort(80, "udp")}, [task("x1", "web", 0, 128, ports=frozenset({TCP80}))], (),
                     id="udp-does-not-clash-with-tcp"),
        pytest.param({TCP80}, [task("w1", "worker", 0, 4096),
                               task("x1", "web", 0, 128, ports=frozenset({TCP80}))],
                     ("w1", "x1"), id="port-holder-plus-memory"),
        pytest.param({TCP80}, [task("d1", "fluent-bit", 0, 128, ports=frozenset({TCP80}))], None,
                     id="port-held-by-a-daemon-infeasible"),
        pytest.param({TCP80}, [task("a1", "api", 0, 128, ports=frozenset({TCP80})),
                               task("a2", "api", 0, 1024)], None,
                     id="port-holder-service-at-its-limit-after-memory"),
        pytest.param({HostPort(22)}, [], None, id="reserved-port-infeasible"),
    ],
)
def test_frees_the_host_ports_the_daemons_need(
    need_ports: set[HostPort], holders: list[TaskView], expected: tuple[str, ...] | None,
) -> None:
    # GIVEN an instance whose taken ports are those the tasks hold, with 256 MiB free
    taken = frozenset(p for t in holders for p in t.requirements.ports)
    node = instance(0, 256, taken)
    need = Resources(0, 1024 if len(holders) == 2 else 0, frozenset(need_ports))

    # WHEN the daemons need those ports (and maybe memory)
    plan = choose_evictions(need, node, holders, SERVICES, BUDGET)

    # THEN the holder of a clashing port is always among the victims
    assert victims_of(plan) == expected


def test_infeasible_reason_names_the_shortfall_and_what_held_back() -> None:
    # GIVEN api at minimumHealthyPercent 100 and a protected worker task
    services = {**SERVICES, "api": replica("api", desired=2, running=2, min_healthy=100)}
    tasks = [task("a1", "api", 0, 1024), task("w1", "worker", 0, 1024, protected=True),
             task("d1", "fluent-bit", 0, 256)]

    # WHEN 512 MiB is needed
    plan = choose_evictions(Resources(0, 512), instance(), tasks, services, BUDGET)

    # THEN the plan is infeasible and says why
    assert not plan.feasible
    assert "short of 512 MiB" in plan.reason
    assert "api is at minimumHealthyPercent 100 (2 running, 2 required)" in plan.reason
    assert "1 protected task" in plan.reason
    assert "1 daemon task" in plan.reason


@pytest.mark.parametrize(
    ("holder", "expected"),
    [
        (task("d1", "fluent-bit", ports=frozenset({TCP80})),
         "port 80/tcp is held by daemon task of fluent-bit d1"),
        (task("s1", None, ports=frozenset({TCP80})), "port 80/tcp is held by standalone task s1"),
        (task("x1", "web", ports=frozenset({TCP80}), protected=True), "held by protected task of web x1"),
    ],
)
def test_infeasible_reason_names_the_port_holder(holder: TaskView, expected: str) -> None:
    # GIVEN port 80/tcp held by a task that may not be evicted
    node = instance(1024, 1024, frozenset({TCP80}))

    # WHEN a daemon needs port 80/tcp
    plan = choose_evictions(Resources(0, 0, frozenset({TCP80})), node, [holder], SERVICES, BUDGET)

    # THEN the reason names the holder
    assert not plan.feasible
    assert expected in plan.reason


def test_feasible_reason_says_what_is_stopped_and_why() -> None:
    # GIVEN two worker tasks
    tasks = [task("w1", "worker", 0, 512), task("w2", "worker", 0, 512)]

    # WHEN 1024 MiB is needed
    plan = choose_evictions(Resources(0, 1024), instance(), tasks, SERVICES, BUDGET)

    # THEN the reason names the count, the services and the shortfall
    assert plan.reason == "stop 2 tasks (2 worker) to free 1024 MiB for a shortfall of 1024 MiB"


def test_ignores_tasks_of_other_instances_and_stopped_tasks() -> None:
    # GIVEN a big worker task on another instance and a STOPPED one here
    elsewhere = TaskView("w0", "service:worker", "arn:td/worker:1", "RUNNING", "RUNNING", "arn:other",
                         Resources(0, 4096))
    stopped = TaskView("w9", "service:worker", "arn:td/worker:1", "STOPPED", "STOPPED", INSTANCE_ARN,
                       Resources(0, 4096))

    # WHEN 512 MiB is needed
    plan = choose_evictions(Resources(0, 512), instance(), [elsewhere, stopped, task("w1", "worker", 0, 512)],
                            SERVICES, BUDGET)

    # THEN only the live task on this instance is considered
    assert victims_of(plan) == ("w1",)


def test_crowded_instance_gives_the_same_plan_every_time() -> None:
    # GIVEN fifty tasks of five services with varied sizes
    services = {f"s{i}": replica(f"s{i}", desired=20, running=20, min_healthy=50) for i in range(5)}
    tasks = [task(f"t{n:02d}", f"s{n % 5}", 16 * (n % 7 + 1), 64 * (n % 11 + 1)) for n in range(50)]
    budget = {name: 10 for name in services}

    # WHEN room for a large need is chosen twice, from tasks in different orders
    first = choose_evictions(Resources(600, 2000), instance(), tasks, services, budget)
    second = choose_evictions(Resources(600, 2000), instance(), list(reversed(tasks)), services, budget)

    # THEN both plans are the same and free enough
    assert first.feasible
    assert first == second
    assert first.freed.cpu >= 600 and first.freed.memory >= 2000


def test_stopping_tasks_credited_are_named_in_the_reason() -> None:
    # GIVEN a worker task already stopping that holds the room a daemon needs
    tasks = [task("w0", "worker", 0, 512, stopping=True)]

    # WHEN 512 MiB is needed
    plan = choose_evictions(Resources(0, 512), instance(), tasks, SERVICES, BUDGET)

    # THEN nothing more is stopped, and the reason says why
    expected = "room for 512 MiB is free (counting 1 task already stopping); nothing to evict"
    assert plan == EvictionPlan((), Resources(), True, expected)


def best_by_trying_every_set(
    need: Resources, tasks: list[TaskView], services: dict[str, ServiceView], budget: dict[str, int],
) -> tuple[str, ...] | None:
    """The chooser's documented order, applied to every subset: the reference for the search."""
    def slack(name: str) -> int:
        s = services[name]
        return max(0, s.running_count - math.ceil(s.desired_count * s.minimum_healthy_percent / 100))

    best: tuple[tuple[int, int, int, tuple[str, ...]], tuple[str, ...]] | None = None
    for k in range(len(tasks) + 1):
        for subset in itertools.combinations(tasks, k):
            taken = Counter(t.service_name or "" for t in subset)
            if any(n > min(slack(name), budget[name]) for name, n in taken.items()):
                continue
            cpu = sum(t.requirements.cpu for t in subset) - need.cpu
            memory = sum(t.requirements.memory for t in subset) - need.memory
            if cpu < 0 or memory < 0:
                continue
            arns = tuple(sorted(t.arn for t in subset))
            # Excess weighed as a share of the instance: 2048 CPU units, 8192 MiB.
            key = (-min([slack(name) - n for name, n in taken.items()], default=1 << 30), k,
                   cpu * 8192 + memory * 2048, arns)
            if best is None or key < best[0]:
                best = (key, arns)
    return None if best is None else best[1]


def test_the_search_finds_the_same_plan_as_trying_every_set() -> None:
    # GIVEN many small random instances (seeded: the same every run)
    for seed in range(150):
        rng = random.Random(seed)
        services = {f"s{i}": replica(f"s{i}", desired=rng.randint(1, 6), running=rng.randint(0, 6),
                                     min_healthy=rng.choice([0, 50, 100])) for i in range(3)}
        budget = {name: rng.randint(0, 3) for name in services}
        tasks = [task(f"t{n}", f"s{rng.randrange(3)}", 64 * rng.randint(0, 4), 128 * rng.randint(0, 4))
                 for n in range(rng.randint(0, 8))]
        need = Resources(64 * rng.randint(1, 8), 128 * rng.randint(1, 8))

        # WHEN the chooser plans
        plan = choose_evictions(need, instance(), tasks, services, budget)

        # THEN it picks what exhaustive search under the same rules and preferences picks
        assert victims_of(plan) == best_by_trying_every_set(need, tasks, services, budget), f"seed {seed}"
