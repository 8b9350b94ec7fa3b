"""The drain's look at its instance (ECS reads only): the view the drain plans from, and its policy.

Shared by the drain workflow (`workflows.drain`) and the drain previews (`services.drain_preview`), so a
preview plans from exactly what the workflow would see.
"""

from __future__ import annotations

from dataclasses import replace

from daemon_guard.bootstrap import Runtime
from daemon_guard.core.config import DrainOrder, tier_of
from daemon_guard.core.drain import DrainPolicy, DrainProgress, DrainRequest, DrainView, Lifecycle, replica_stops
from daemon_guard.core.model import InstanceView, Resources, ServiceView, TaskView

KIND = "drain"


def drain_policy(rt: Runtime, request: DrainRequest) -> DrainPolicy:
    """The configured policy for this drain."""
    cfg = rt.config
    group = cfg.group(request.asg) if request.asg else None
    return DrainPolicy(tier_names=tuple(t.name for t in cfg.drain_tiers), standalone=cfg.standalone_policy,
                       standalone_wait_s=cfg.standalone_wait_s, drain_deadline_s=cfg.drain_deadline_s,
                       tier_deadline_s=cfg.tier_deadline_s,
                       heartbeat_timeout_s=group.heartbeat_timeout_s if group else 0,
                       order=cfg.drain_order, gate_attribute=cfg.gate_attribute,
                       deadline_policy=cfg.drain_deadline_policy)


DESCRIBE_EVERY = 6


def model_view(rt: Runtime, request: DrainRequest, progress: DrainProgress) -> DrainView:
    """The instance as the event stream tells it: the tasks live at the last look minus those that STOPPED.

    Task State Change events say exactly which task stopped, so phase transitions need no ECS read;
    a hundred drains re-reading their instances on every stop would spend the cluster-read rate
    (20/s) they share with the placement reflex. Polls and the final confirmation read ECS.
    """
    arn = progress.look.instance_arn or ""
    instance = InstanceView(arn=arn, ec2_instance_id=request.instance_id,
                            status=progress.look.instance_status or "DRAINING", agent_connected=True,
                            registered=Resources(), remaining=Resources())
    requested = set(progress.stops.requested)
    tasks = [TaskView(arn=task, group=group, task_definition_arn="", last_status="RUNNING",
                      desired_status="STOPPED" if task in requested else "RUNNING", container_instance_arn=arn,
                      stop_timeout_s=stop_timeout)
             for task, group, stop_timeout in progress.look.live_tasks]
    return _view(rt, request, instance, tasks, _replica_services(rt, request, progress, tasks))


def _replica_services(rt: Runtime, request: DrainRequest, progress: DrainProgress,
                      tasks: list[TaskView]) -> dict[str, ServiceView]:
    """With drainOrder apps-first or tiers the guard stops replicas itself within minimumHealthyPercent,
    so the replica phase reads the services it still has tasks of (DescribeServices, 10 per call), and
    for each service whose counts would let a RUNNING task of it go, the tasks ECS keeps (ListTasks by
    service, desired RUNNING: `ServiceView.tasks_desired_running`, which `replica_stops` counts); a service held
    on its counts alone costs no more. A replica phase out of
    time (a Spot notice's) stops them all whatever their services say: no read."""
    if rt.config.drain_order is DrainOrder.DRAINING or not _replicas_in_time(progress):
        return {}
    ecs = rt.cluster(request.cluster)
    daemon_names = {s.name for s in ecs.daemon_services()}
    requested = set(progress.stops.requested)
    names = sorted({t.service_name for t in tasks if t.service_name and t.service_name not in daemon_names
                    and t.arn not in requested})
    services = {s.name: s for s in ecs.services(names)} if names else {}
    replicas = [t for t in tasks if t.service_name in services]
    going = {t.service_name for t in replica_stops(replicas, services, progress.stops.requested)
             if t.last_status == "RUNNING"}
    return {name: replace(svc, tasks_desired_running=len(ecs.service_task_arns(name))) if name in going else svc
            for name, svc in services.items()}


def _replicas_in_time(progress: DrainProgress) -> bool:
    """The replica phase, with time left to keep minimumHealthyPercent (what the services are read for)."""
    return progress.phase == "replicas" and not progress.watch.late and not progress.record.forced


def _view(rt: Runtime, request: DrainRequest, instance: InstanceView | None, tasks: list[TaskView],
          services: dict[str, ServiceView]) -> DrainView:
    tiers = {s.name: tier_of(s.name, s.tags, rt.config.drain_tiers)
             for s in rt.cluster(request.cluster).daemon_services()}
    claim = rt.claims.workflow(KIND, request.instance_id)
    token = (claim.token if claim else None) or request.token
    asg = (claim.asg if claim else None) or request.asg
    hook = (claim.hook if claim else None) or request.hook
    lifecycle = Lifecycle(asg, hook, token) if asg and hook else None
    return DrainView(now=rt.now().timestamp(), instance=instance, tasks=tasks, daemon_tier=tiers, services=services,
                     lifecycle=lifecycle, deadline_epoch=claim.deadline_epoch if claim else None)


def observe(rt: Runtime, request: DrainRequest, progress: DrainProgress) -> tuple[DrainView, DrainProgress]:
    """Read the instance, its tasks, the daemon tiers and the lifecycle action to complete.

    Reads are budgeted, because a hundred drains share ECS's cluster-read rate (20/s) with the
    placement reflex. The first step finds the container instance with one filtered
    ListContainerInstances; later the instance is described every sixth step, whenever no live
    task is left before or after the look (to see it go: tasks EC2 killed with the instance are STOPPED too,
    and went with it) and while a write of the drain's is not yet read back (its attributes
    and status: ECS's API is eventually consistent). The tasks are ListTasks(RUNNING) plus DescribeTasks
    of those and of the tasks still live at the last look (which is how a task told to stop is followed to
    STOPPED); the first look adds ListTasks(STOPPED), keeping the tasks not yet STOPPED, so that tasks
    someone else told to stop before the drain began (ECS on an instance it set DRAINING) are waited for too.
    The replica services are described only if the replica phase has lasted a minute (blocked?).
    """
    ecs = rt.cluster(request.cluster)
    instance: InstanceView | None
    described = False
    if progress.look.instance_arn is None:
        found = ecs.instance_arn_by_ec2_id(request.instance_id)
        instance = None if found is None else InstanceView(
            arn=found, ec2_instance_id=request.instance_id, status="DRAINING" if request.trigger == "draining"
            else "ACTIVE", agent_connected=True, registered=Resources(), remaining=Resources())
    elif described := (progress.look.ticks % DESCRIBE_EVERY == 0 or not progress.look.live_tasks
                       or progress.fences.awaiting_read_back):
        instance = ecs.instance(progress.look.instance_arn)
    else:
        instance = InstanceView(arn=progress.look.instance_arn, ec2_instance_id=request.instance_id,
                                status=progress.look.instance_status or "DRAINING", agent_connected=True,
                                registered=Resources(), remaining=Resources())
    if instance is None or instance.status == "INACTIVE":
        tasks = []
    else:
        running = ecs.task_arns_on(instance.arn, desired="RUNNING")
        # The first look also lists the tasks someone else already told to stop (ECS on an instance it set
        # DRAINING at a Spot notice): still shutting down, they are app tasks the daemons must wait for.
        stopping = ecs.task_arns_on(instance.arn, desired="STOPPED") if progress.look.instance_arn is None else []
        followed = {*running, *(live[0] for live in progress.look.live_tasks)}
        tasks = [t for t in ecs.tasks(list(dict.fromkeys([*running, *(live[0] for live in progress.look.live_tasks),
                                                          *stopping])))
                 if t.arn in followed or t.last_status != "STOPPED"]
        if not described and progress.look.instance_arn is not None \
                and all(t.last_status == "STOPPED" for t in tasks):
            # Nothing left live: the drain may end here, so it sees first that the instance is still there.
            # Tasks of an instance EC2 took away are STOPPED too (not by the drain): they went with it.
            instance = ecs.instance(instance.arn)
            tasks = tasks if instance is not None and instance.status != "INACTIVE" else []
    gone = instance is None or instance.status == "INACTIVE"
    # An instance gone keeps the tasks the drain was following: they went with it (`plan._gone_early` counts them).
    live = progress.look.live_tasks if gone else tuple((t.arn, t.group, t.stop_timeout_s) for t in tasks)
    looked_at = rt.now().timestamp()
    look = replace(progress.look, instance_arn=instance.arn if instance else progress.look.instance_arn,
                   instance_status=instance.status if instance else "INACTIVE",
                   live_tasks=live, ticks=progress.look.ticks + 1, looked_at=looked_at,
                   seen_at=progress.look.seen_at if gone else looked_at)
    progress = replace(progress, look=look)
    daemon_names = {s.name for s in ecs.daemon_services()}
    services = _replica_services(rt, request, progress, tasks)
    now = rt.now().timestamp()
    if not services and _replicas_in_time(progress) and not progress.look.services_checked \
            and now - progress.phase_started_at >= 60:
        names = sorted({t.service_name for t in tasks if t.service_name and t.service_name not in daemon_names})
        services = {s.name: s for s in ecs.services(names)} if names else {}
    return _view(rt, request, instance, tasks, services), progress
