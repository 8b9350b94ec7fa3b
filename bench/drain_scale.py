"""How the drain planner and its preview scale with the tasks of one instance: ``python -m bench.drain_scale``.

Builds one ACTIVE instance holding N tasks (service replicas spread over 100 services, standalone
tasks, and daemons in three tiers), then times, for each drain order, one `plan_drain_step` (the
drain workflow's step) and one `preview_drain` (the dry run, ``drainMode: observe`` and `replay`).
Pure planners on in-memory views: nothing is read or written. Prints one line per (order, size)
with the seconds each took; the target is under 5 s for 100,000 tasks.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from daemon_guard.core.config import DrainOrder, StandalonePolicy
from daemon_guard.core.drain import DrainPolicy, DrainProgress, DrainRequest, DrainView, Lifecycle, plan_drain_step
from daemon_guard.core.drain_preview import preview_drain
from daemon_guard.core.model import InstanceView, Resources, ServiceView, TaskView

INSTANCE_ARN = "arn:aws:ecs:us-east-1:123456789012:container-instance/prod/0123456789abcdef0123456789abcdef"
TIERS = ("agents", "metrics", "logs")
SERVICES = 100
START = 1_700_000_000.0


def instance_with(tasks: int) -> tuple[DrainView, DrainRequest]:
    """One instance with `tasks` tasks: 90% replicas of 100 services, 7% standalone, 3% daemons in 3 tiers."""
    def task(n: int, group: str) -> TaskView:
        return TaskView(arn=f"arn:aws:ecs:us-east-1:123456789012:task/prod/{n:032x}", group=group,
                        task_definition_arn=f"arn:td/{group}:1", last_status="RUNNING", desired_status="RUNNING",
                        container_instance_arn=INSTANCE_ARN, requirements=Resources(1, 1), stop_timeout_s=30)

    replicas, standalone = tasks * 90 // 100, tasks * 7 // 100
    views = [task(n, f"service:api-{n % SERVICES}") for n in range(replicas)]
    views += [task(replicas + n, "family:batch") for n in range(standalone)]
    views += [task(n, f"service:{TIERS[n % len(TIERS)]}") for n in range(replicas + standalone, tasks)]
    per_service = replicas // SERVICES
    services = {f"api-{k}": ServiceView(arn=f"arn:svc/api-{k}", name=f"api-{k}", strategy="REPLICA",
                                        task_definition_arn=f"arn:td/api-{k}:1", desired_count=per_service * 10,
                                        running_count=per_service * 10, minimum_healthy_percent=50)
                for k in range(SERVICES)}
    instance = InstanceView(arn=INSTANCE_ARN, ec2_instance_id="i-0123456789abcdef0", status="ACTIVE",
                            agent_connected=True, registered=Resources(), remaining=Resources())
    view = DrainView(now=START, instance=instance, tasks=tuple(views),
                     daemon_tier={name: k for k, name in enumerate(TIERS)}, services=services,
                     lifecycle=Lifecycle("prod-asg", "daemon-guard-terminate", "tok-1"))
    request = DrainRequest(instance_id="i-0123456789abcdef0", cluster="prod", trigger="lifecycle",  # type: ignore[arg-type]
                           asg="prod-asg", hook="daemon-guard-terminate", token="tok-1")  # type: ignore[arg-type]
    return view, request


def _timed(work: Callable[[], object]) -> tuple[float, float]:
    """Wall-clock and CPU seconds of `work()` (CPU time says more on a shared, loaded machine)."""
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    return time.perf_counter() - wall, time.process_time() - cpu


@dataclass(frozen=True)
class Figure:
    """One measurement: an order and a size, the planner's step and the preview, wall and CPU seconds."""

    order: str
    tasks: int
    planner: tuple[float, float]
    preview: tuple[float, float]
    steps: int


def measure(sizes: Sequence[int], orders: Sequence[DrainOrder]) -> list[Figure]:
    """One `plan_drain_step` and one `preview_drain` of a fresh drain, for each order and size."""
    figures = []
    for size in sizes:
        view, request = instance_with(size)
        for order in orders:
            policy = DrainPolicy(tier_names=TIERS, standalone=StandalonePolicy.WAIT, standalone_wait_s=300,
                                 drain_deadline_s=900, tier_deadline_s=300, heartbeat_timeout_s=300, order=order)
            progress = DrainProgress.begin(START)
            planner = _timed(lambda: plan_drain_step(request, view, progress, policy))  # noqa: B023
            steps: list[int] = []
            preview = _timed(lambda: steps.append(len(preview_drain(request, view, policy))))  # noqa: B023
            figures.append(Figure(order.value, size, planner, preview, steps[0]))
    return figures


def main(argv: list[str] | None = None) -> int:
    """Print the figures; exit 0."""
    parser = argparse.ArgumentParser(prog="python -m bench.drain_scale", description=__doc__)
    parser.add_argument("--sizes", default="1000,10000,100000", help="comma-separated task counts")
    parser.add_argument("--orders", default=",".join(o.value for o in DrainOrder), help="comma-separated orders")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    orders = [DrainOrder(o) for o in args.orders.split(",")]
    print(f"{'order':<11} {'tasks':>7} {'planner s (cpu)':>16} {'preview s (cpu)':>16} {'total s':>8} {'steps':>6}")
    for f in measure(sizes, orders):
        total = f.planner[0] + f.preview[0]
        print(f"{f.order:<11} {f.tasks:>7} {f.planner[0]:>7.2f} ({f.planner[1]:>5.2f}) "
              f"{f.preview[0]:>7.2f} ({f.preview[1]:>5.2f}) {total:>8.2f} {f.steps:>6}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
