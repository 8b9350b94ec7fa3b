"""The simulated ECS control plane: instances, task definitions, services, tasks and the scheduler.

The scheduler model (parameters in `EcsParams`, choices in sim/README.md):
- The daemon scheduler runs in cycles (`daemon_cycle_s`, random phase per cluster): each cycle it
  places every eligible daemon missing from an ACTIVE instance if it fits, raises
  SERVICE_TASK_PLACEMENT_FAILURE (rate-limited per service) if it does not, stops daemons whose
  constraints no longer match, and stops daemons on DRAINING instances once no other task has
  run there for `daemon_drain_delay_s`.
- The replica scheduler runs every `replica_pass_s`: it starts missing replicas, replaces tasks on
  DRAINING instances within minimumHealthyPercent / maximumPercent, and stops PENDING service
  tasks on DRAINING instances at once. A newly registered instance becomes visible to replica
  placement after a per-instance delay (`replica_visibility_*`), standing in for the service
  scheduler's backlog retry cadence; this is the knob calibrated to AWS's ~96% figure.
- Daemons get no priority beyond what these cycles give them: best effort, as in ECS.
"""

from __future__ import annotations

import math
import random
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from daemon_guard.core.model import HostPort, InstanceView, Resources

from sim.clock import Clock
from sim.cluster_query import Facts, Test, compile_query
from sim.errors import SimApiError

LIVE = ("PROVISIONING", "PENDING", "ACTIVATING", "RUNNING")
AGENT_VERSION = "1.89.0"


@dataclass(frozen=True, kw_only=True)
class EcsParams:
    """Timings and behaviours of the simulated ECS scheduler and agent (seconds), always those of a named
    behaviour profile (`profile`, one of PROFILES): build them with `profile_params(name)`, then set
    parameters on top (`dataclasses.replace`, sim.params). There is no profile-less default model."""

    profile: str
    daemon_cycle_s: float = 15.2
    replica_pass_s: float = 1.0
    replica_visibility_median_s: float = 27.0
    replica_visibility_sigma: float = 0.58
    provisioning_s: float = 0.5
    daemon_start_s: tuple[float, float] = (1.5, 4.0)
    replica_start_s: tuple[float, float] = (2.0, 8.0)
    # Stop timing (sim.params, where each is documented with its range and source): how long a task's
    # containers take to exit after SIGTERM (capped by its stopTimeout), how late STOPPED is reported, and
    # the stopTimeout of containers that set none (the agent's ECS_CONTAINER_STOP_TIMEOUT).
    task_shutdown_s: tuple[float, float] = (0.5, 4.0)
    stopped_report_lag_s: tuple[float, float] = (0.4, 0.4)
    agent_stop_timeout_s: float = 30.0
    # The daemon scheduler places nothing on a new instance (no daemon task yet) while another instance of
    # the cluster is DRAINING, for up to this long (containers-roadmap#856); 0: it does not stall.
    daemon_stall_while_draining_s: float = 0.0
    # Eventual consistency of writes (sim.params): a PutAttributes, DeleteAttributes or
    # UpdateContainerInstancesState takes effect (for the scheduler, filtered lists and reads) after a lag
    # drawn in this range, per write, in the order written.
    attribute_visibility_s: tuple[float, float] = (0.0, 0.0)
    # ECS_ENABLE_SPOT_INSTANCE_DRAINING on the instances: ECS itself sets DRAINING at a Spot notice.
    spot_instance_draining: bool = False
    # Whether a PutAttributes / DeleteAttributes emits a Container Instance State Change: the guide's list of
    # what causes one does not name attribute changes (ECS-BEHAVIOUR.md); the simulator has always sent one.
    attribute_change_event: bool = True
    # Whether DescribeServices' runningCount still counts a task told to stop until it is reported STOPPED (its
    # lastStatus is RUNNING meanwhile) or drops it at StopTask: not documented (sim.params).
    running_count_includes_stopping: bool = False
    daemon_drain_delay_s: float = 30.0
    placement_failure_event_interval_s: float = 60.0
    stopped_task_retention_s: float = 3600.0
    # The behaviours ECS leaves undocumented or users report otherwise (sim/README.md, "Behaviour
    # profiles"): no default, every profile names each.
    daemon_reservation: bool
    daemon_drain_trigger: str
    standalone_holds_daemons: bool
    backlog_visibility: str
    # A daemon whose image cannot start on some instances (CannotPullContainerError): its family and
    # the share of instances affected (chosen by a hash of the instance id, not the random stream).
    failing_daemon: str | None = None
    failing_share: float = 0.0
    # The service throttle logic (guide, "Amazon ECS service throttle logic"): tasks that go from PENDING
    # to STOPPED without RUNNING are restarted after an incrementally longer wait, at most 27 minutes.
    # Doubling from one daemon cycle is our reading of "incrementally"; per instance for a daemon.
    failed_start_backoff_max_s: float = 1620.0
    # Which tasks make an instance a member of their group for `task:group` in a constraint: every live
    # task (PROVISIONING, PENDING, RUNNING: our reading of "placed") or only RUNNING ones. Not documented.
    task_group_states: str = "live"

    def __post_init__(self) -> None:
        """Refuse parameters that name no behaviour profile."""
        if self.profile not in PROFILES:
            raise ValueError(f"EcsParams: unknown behaviour profile {self.profile!r}; build the parameters with "
                             f"sim.ecs.profile_params(NAME), NAME one of {', '.join(PROFILES)}")


DRAIN_TRIGGERS = ("left-running", "stopped", "grace")
BACKLOG_VISIBILITY = ("next-pass", "retry-backoff")
# Stop timing as every profile has had it so far (apps exit on SIGTERM within seconds, STOPPED reported
# 0.4 s later, the agent's default stopTimeout): inside each range of sim.params, and the figures'
# history. The range suite explores the rest of each range by name (`--param`).
STOP_TIMING: dict[str, Any] = {"task_shutdown_s": (0.5, 4.0), "stopped_report_lag_s": (0.4, 0.4),
                               "agent_stop_timeout_s": 30.0}

PROFILES: dict[str, dict[str, Any]] = {
    # What the ECS guide and the seed blog say: daemons reserved and first; stopped at the next
    # daemon pass once every other task has STOPPED ("ECS stops all other tasks before the daemon tasks").
    "as-documented": {"daemon_reservation": True, "daemon_drain_trigger": "stopped",
                      "standalone_holds_daemons": True, "backlog_visibility": "retry-backoff", **STOP_TIMING},
    # What users report: no reservation (containers-roadmap#428, #502), daemons stopped as soon as
    # the last replica leaves RUNNING (amazon-ecs-agent#3829).
    "as-reported": {"daemon_reservation": False, "daemon_drain_trigger": "left-running",
                    "standalone_holds_daemons": True, "backlog_visibility": "retry-backoff", **STOP_TIMING},
    # The worst end of every range for the guard's claims (stop timing aside: see STOP_TIMING).
    "worst": {"daemon_reservation": False, "daemon_drain_trigger": "left-running",
              "standalone_holds_daemons": False, "backlog_visibility": "next-pass", **STOP_TIMING},
    # The fast-cycle calibration pair with the reported behaviours (also ~96% daemon-first natively).
    "fast-cycle": {"daemon_reservation": False, "daemon_drain_trigger": "left-running",
                   "standalone_holds_daemons": True, "backlog_visibility": "retry-backoff",
                   "daemon_cycle_s": 6.0, "replica_visibility_median_s": 12.0, **STOP_TIMING},
    # The daemons stop a grace (daemon_drain_delay_s, 30 s) after the last other task STOPPED, no reservation:
    # the late end of "when ECS stops daemons on a DRAINING instance" (ECS-BEHAVIOUR.md); no longer a default.
    "grace": {"daemon_reservation": False, "daemon_drain_trigger": "grace",
              "standalone_holds_daemons": True, "backlog_visibility": "retry-backoff", **STOP_TIMING},
}


def profile_params(name: str) -> EcsParams:
    """The scheduler parameters of a named behaviour profile (ValueError names the known ones)."""
    if name not in PROFILES:
        raise ValueError(f"unknown behaviour profile {name!r}; known: {', '.join(PROFILES)}")
    return EcsParams(profile=name, **PROFILES[name])


def no_profile() -> EcsParams:
    """What a world built without a behaviour profile gets: a clear refusal (there is no default model)."""
    raise ValueError("a simulated world runs a named ECS behaviour profile: WorldOptions(ecs=sim.ecs.profile_params"
                     f"(NAME)), NAME one of {', '.join(PROFILES)} (there is no default model)")


@dataclass
class SimTaskDef:
    """A registered task definition revision."""

    arn: str
    family: str
    revision: int
    network_mode: str
    containers: list[dict[str, Any]]
    constraints: list[dict[str, str]]
    cpu: int
    memory: int
    stop_timeout_s: int | None  # None: no container sets one (the agent's ECS_CONTAINER_STOP_TIMEOUT applies)

    @property
    def host_ports(self) -> frozenset[HostPort]:
        """Fixed host ports the task holds (host mode: container ports; bridge: non-zero hostPort)."""
        ports: set[HostPort] = set()
        for c in self.containers:
            for m in c.get("portMappings", []):
                proto = m.get("protocol", "tcp")
                if self.network_mode == "host":
                    ports.add(HostPort(int(m.get("hostPort") or m["containerPort"]), proto))
                elif self.network_mode == "bridge" and m.get("hostPort"):
                    ports.add(HostPort(int(m["hostPort"]), proto))
        return frozenset(ports)

    @property
    def requirements(self) -> Resources:
        """What one task of this definition reserves on its instance."""
        return Resources(self.cpu, self.memory, self.host_ports)


@dataclass
class SimInstance:
    """A registered container instance."""

    arn: str
    cluster: str
    ec2_instance_id: str
    registered: Resources
    attributes: dict[str, str | None]
    registered_at: float
    asg: str | None = None
    status: str = "ACTIVE"
    agent_connected: bool = True
    version: int = 1
    used_cpu: int = 0
    used_memory: int = 0
    used_ports: set[HostPort] = field(default_factory=set)
    # Task ARNs in placement order (a dict as an ordered set: a set's order follows str hashing,
    # which changes per process, and would make runs differ across processes for one seed).
    tasks: dict[str, None] = field(default_factory=dict)
    replica_visible_at: float = 0.0
    backlog_visible_at: float = 0.0
    daemons_only_since: float | None = None
    writes_visible_at: float = 0.0  # when the last write through the API takes effect (attribute_visibility_s)
    daemon_stall_since: float | None = None  # first daemon cycle that held it back (daemon_stall_while_draining_s)
    status_reason: str = ""
    agent_version: str = AGENT_VERSION

    @property
    def remaining(self) -> Resources:
        """Registered minus what live tasks reserve."""
        return Resources(self.registered.cpu - self.used_cpu, self.registered.memory - self.used_memory,
                         frozenset(self.registered.ports - self.used_ports))


@dataclass
class SimCapacityProvider:
    """An Auto Scaling group capacity provider attached to a cluster, with or without ECS managed draining."""

    name: str
    arn: str
    cluster: str
    auto_scaling_group_arn: str
    managed_draining: bool


@dataclass
class SimService:
    """A REPLICA or DAEMON service."""

    arn: str
    name: str
    cluster: str
    strategy: str
    task_definition: str
    desired_count: int
    minimum_healthy_percent: int
    maximum_percent: int
    constraints: list[dict[str, str]]
    placement_strategy: list[dict[str, str]]
    tags: dict[str, str]
    created_at: float
    status: str = "ACTIVE"
    last_failure_event: float = -math.inf
    failed_epoch: int = -1
    backlogged: bool = False
    events: list[tuple[float, str]] = field(default_factory=list)


@dataclass
class SimTask:
    """A task from PROVISIONING to STOPPED."""

    arn: str
    cluster: str
    task_definition: str
    container_instance: str
    group: str
    started_by: str
    created_at: float
    last_status: str = "PROVISIONING"
    desired_status: str = "RUNNING"
    started_at: float | None = None
    stopping_at: float | None = None
    stopped_at: float | None = None
    stopped_reason: str = ""
    stop_code: str = ""
    version: int = 1
    protected_until: float | None = None
    killed: bool = False
    exited_at: float | None = None  # when its containers exit once told to stop (STOPPED is reported later)

    @property
    def live(self) -> bool:
        """True until the task has STOPPED."""
        return self.last_status != "STOPPED"

    @property
    def service_name(self) -> str | None:
        """The owning service, or None for a standalone task."""
        return self.group[len("service:"):] if self.group.startswith("service:") else None


@dataclass(frozen=True)
class TaskTransition:
    """One observed change of a task, recorded for benchmarks and timelines."""

    at: float
    task_arn: str
    instance_arn: str
    group: str
    last_status: str
    desired_status: str
    daemon: bool


Listener = Callable[[str, dict[str, Any]], None]


class EcsSim:
    """The ECS control plane model. `listeners` receive ("task"|"instance"|"service-action", payload)."""

    def __init__(self, clock: Clock, rng: random.Random, params: EcsParams,
                 account: str = "111122223333", region: str = "us-east-1",
                 report_rng: random.Random | None = None, write_rng: random.Random | None = None) -> None:
        self.clock = clock
        self.rng = rng
        # STOPPED's report lag draws from a stream of its own, so that its range changes nothing else.
        self.report_rng = report_rng or random.Random(f"{account}:stopped-report")
        # And so does the lag before a write is seen (attribute_visibility_s).
        self.write_rng = write_rng or random.Random(f"{account}:write-visibility")
        self.params = params
        self.account = account
        self.region = region
        self.clusters: dict[str, str] = {}
        self.task_defs: dict[str, SimTaskDef] = {}
        self.families: dict[str, int] = defaultdict(int)
        self.services: dict[str, SimService] = {}
        self.capacity_providers: dict[str, SimCapacityProvider] = {}
        self.instances: dict[str, SimInstance] = {}
        # The same instances by cluster (in registration order), and the DRAINING ones: the schedulers pass over
        # one cluster every second, and a scan of every cluster's instances made a 10-cluster account quadratic.
        self.in_cluster: dict[str, dict[str, SimInstance]] = defaultdict(dict)
        self.draining_in: dict[str, dict[str, SimInstance]] = defaultdict(dict)
        self.by_ec2: dict[str, str] = {}
        self.tasks: dict[str, SimTask] = {}
        self.listeners: list[Listener] = []
        self.transitions: list[TaskTransition] = []
        # (task group, instance ARN) -> (consecutive failed starts, earliest next start): the service throttle.
        self.start_failures: dict[tuple[str, str], tuple[int, float]] = {}
        self.ungraceful_kills: list[SimTask] = []
        self.live_by_group: dict[tuple[str, str], dict[str, SimTask]] = defaultdict(dict)
        # Per (cluster, group): tasks live with desired RUNNING, and of those the RUNNING ones.
        self.active: dict[tuple[str, str], int] = defaultdict(int)
        self.running: dict[tuple[str, str], int] = defaultdict(int)
        self.per_instance: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.per_zone: dict[tuple[str, str], dict[str | None, int]] = defaultdict(lambda: defaultdict(int))
        self.capacity_epoch = 0
        self._eligible_cache: dict[tuple[str, str, int], bool] = {}
        self._queries: dict[str, Test] = {}
        self._ids = 0
        self._started = False

    # ---- identity -------------------------------------------------------------------------------
    def _id(self) -> str:
        self._ids += 1
        return f"{self.rng.getrandbits(64):016x}{self._ids:016x}"

    def arn(self, kind: str, rest: str) -> str:
        """An ECS ARN in this account and region."""
        return f"arn:aws:ecs:{self.region}:{self.account}:{kind}/{rest}"

    def cluster_arn(self, name: str) -> str:
        """ARN of a cluster by name."""
        return self.arn("cluster", name)

    def resolve_cluster(self, ref: str | None) -> str:
        """Cluster name from a name or ARN; ClusterNotFoundException if unknown."""
        name = (ref or "default").rsplit("/", 1)[-1]
        if name not in self.clusters:
            raise SimApiError("ClusterNotFoundException", "Cluster not found.")
        return name

    # ---- setup ----------------------------------------------------------------------------------
    def create_cluster(self, name: str) -> str:
        """Create a cluster and start its scheduler cycles."""
        self.clusters[name] = self.cluster_arn(name)
        phase = self.rng.uniform(0, self.params.daemon_cycle_s)
        self.clock.after(phase, lambda: self._daemon_cycle_loop(name))
        self.clock.after(self.rng.uniform(0, self.params.replica_pass_s), lambda: self._replica_loop(name))
        return self.clusters[name]

    def register_task_definition(self, family: str, containers: list[dict[str, Any]], *,
                                 network_mode: str = "bridge", constraints: Iterable[str] = (),
                                 cpu: int | None = None, memory: int | None = None,
                                 stop_timeout_s: int | None = 30) -> str:
        """Register a revision; returns its ARN. `stop_timeout_s` None: its containers set no stopTimeout."""
        self.families[family] += 1
        rev = self.families[family]
        arn = self.arn("task-definition", f"{family}:{rev}")
        total_cpu = cpu if cpu is not None else sum(int(c.get("cpu", 0)) for c in containers)
        total_mem = memory if memory is not None else sum(
            int(c.get("memory") or c.get("memoryReservation") or 0) for c in containers)
        self.task_defs[arn] = SimTaskDef(arn, family, rev, network_mode, containers,
                                         [{"type": "memberOf", "expression": e} for e in constraints],
                                         total_cpu, total_mem, stop_timeout_s)
        return arn

    def create_service(self, cluster: str, name: str, task_definition: str, *, daemon: bool = False,
                       desired_count: int = 0, minimum_healthy_percent: int | None = None,
                       maximum_percent: int | None = None, constraints: Iterable[str] = (),
                       placement_strategy: Iterable[dict[str, str]] = (),
                       tags: dict[str, str] | None = None) -> str:
        """Create a REPLICA or DAEMON service; returns its ARN."""
        arn = self.arn("service", f"{cluster}/{name}")
        self.services[arn] = SimService(
            arn=arn, name=name, cluster=cluster, strategy="DAEMON" if daemon else "REPLICA",
            task_definition=task_definition, desired_count=0 if daemon else desired_count,
            minimum_healthy_percent=(0 if daemon else 100) if minimum_healthy_percent is None
            else minimum_healthy_percent,
            maximum_percent=(100 if daemon else 200) if maximum_percent is None else maximum_percent,
            constraints=[{"type": "memberOf", "expression": e} for e in constraints],
            placement_strategy=list(placement_strategy), tags=dict(tags or {}), created_at=self.clock.now)
        return arn

    def create_capacity_provider(self, cluster: str, name: str, auto_scaling_group: str, *,
                                 managed_draining: bool = True) -> SimCapacityProvider:
        """A capacity provider of `auto_scaling_group`, attached to `cluster` (ECS's default: managed draining on)."""
        group_arn = (f"arn:aws:autoscaling:{self.region}:{self.account}:autoScalingGroup:"
                     f"00000000-0000-4000-8000-000000000000:autoScalingGroupName/{auto_scaling_group}")
        provider = SimCapacityProvider(name, self.arn("capacity-provider", name), cluster, group_arn, managed_draining)
        self.capacity_providers[name] = provider
        return provider

    def service_named(self, cluster: str, name: str) -> SimService:
        """The service of this name in the cluster (ServiceNotFoundException if none)."""
        svc = self.services.get(self.arn("service", f"{cluster}/{name}"))
        if svc is None:
            raise SimApiError("ServiceNotFoundException", "Service not found.")
        return svc

    # ---- instances ------------------------------------------------------------------------------
    def register_instance(self, cluster: str, ec2_instance_id: str, cpu: int, memory: int,
                          attributes: dict[str, str | None], *, asg: str | None = None) -> str:
        """The agent registers: the instance becomes ACTIVE and visible to the schedulers."""
        arn = self.arn("container-instance", f"{cluster}/{self._id()[:32]}")
        ports = frozenset({HostPort(p, "tcp") for p in (22, 2375, 2376, 51678, 51679)})
        reserved = set(ports)
        inst = SimInstance(arn=arn, cluster=cluster, ec2_instance_id=ec2_instance_id,
                           registered=Resources(cpu, memory, frozenset()), attributes=dict(attributes),
                           registered_at=self.clock.now, asg=asg)
        inst.used_ports = reserved
        inst.registered = Resources(cpu, memory, frozenset())
        inst.replica_visible_at = inst.backlog_visible_at = self.clock.now + self._visibility_delay()
        self.clock.at(inst.replica_visible_at, self._capacity_changed)
        self.instances[arn] = inst
        self.in_cluster[cluster][arn] = inst
        self.by_ec2[ec2_instance_id] = arn
        self._notify_instance(inst)
        return arn

    def _visibility_delay(self) -> float:
        # Drawn in every profile, so the random stream (and so the launches) stay the same across them.
        delay = self.rng.lognormvariate(math.log(self.params.replica_visibility_median_s),
                                        self.params.replica_visibility_sigma)
        return 0.0 if self.params.backlog_visibility == "next-pass" else delay

    def instance_of_ec2(self, ec2_instance_id: str) -> SimInstance | None:
        """The live container instance on an EC2 instance, if registered."""
        arn = self.by_ec2.get(ec2_instance_id)
        return self.instances.get(arn) if arn else None

    def set_status(self, inst: SimInstance, status: str) -> None:
        """ACTIVE <-> DRAINING (the UpdateContainerInstancesState effect)."""
        if inst.status == status:
            return
        inst.status = status
        self._index_draining(inst)
        inst.version += 1
        inst.daemons_only_since = None
        self._capacity_changed()  # an instance back to ACTIVE is room again for services that failed to place
        if status == "DRAINING":
            for t in self._tasks_on(inst):
                if t.service_name and t.last_status in ("PROVISIONING", "PENDING") \
                        and not self._is_daemon_task(t):
                    self.stop_task(t, "Container instance is draining", "ServiceSchedulerInitiated")
            if self.params.daemon_drain_trigger == "left-running":
                self.clock.after(0.0, lambda: self._drain_daemons(inst, self.live_tasks(inst)))
        self._notify_instance(inst)

    def _index_draining(self, inst: SimInstance) -> None:
        if inst.status == "DRAINING":
            self.draining_in[inst.cluster][inst.arn] = inst
        else:
            self.draining_in[inst.cluster].pop(inst.arn, None)

    def set_attributes(self, inst: SimInstance, changes: dict[str, str | None], delete: bool = False) -> None:
        """PutAttributes / DeleteAttributes on an instance (daemons that stop matching go next cycle)."""
        for name, value in changes.items():
            if delete:
                inst.attributes.pop(name, None)
            else:
                inst.attributes[name] = value
        inst.version += 1
        self._capacity_changed()
        if self.params.attribute_change_event:
            self._notify_instance(inst)

    def write(self, inst: SimInstance, effect: Callable[[], None]) -> None:
        """A write through the API (attributes, state) takes effect after `attribute_visibility_s`: at once
        when the range is 0, else after a lag drawn per write, never before an earlier write to the instance."""
        low, high = self.params.attribute_visibility_s
        if high <= 0.0:
            effect()
            return
        at = max(self.clock.now + self.write_rng.uniform(low, high), inst.writes_visible_at)
        inst.writes_visible_at = at
        self.clock.at(at, effect)

    def _capacity_changed(self) -> None:
        self.capacity_epoch += 1

    def terminate_instance(self, ec2_instance_id: str) -> int:
        """EC2 termination: every task still running dies (counted), the instance deregisters."""
        inst = self.instance_of_ec2(ec2_instance_id)
        if inst is None:
            return 0
        killed = 0
        for t in list(self._tasks_on(inst)):
            if t.live:
                # Containers that already exited (STOPPED not yet reported) lose nothing: not a kill.
                exited = t.exited_at is not None and t.exited_at <= self.clock.now
                if not exited:
                    t.killed = True
                    self.ungraceful_kills.append(t)
                    killed += 1
                if t.desired_status != "STOPPED":
                    self._mark_stopping(t)
                self._set_stopped(t, "Host EC2 (instance " + ec2_instance_id + ") terminated.",
                                  "TerminationNotice")
        inst.status = "INACTIVE"
        self._index_draining(inst)
        inst.agent_connected = False
        inst.version += 1
        self._notify_instance(inst)
        del self.by_ec2[ec2_instance_id]
        return killed

    def view(self, inst: SimInstance) -> InstanceView:
        """The core view of an instance (for the simulator's own query evaluation)."""
        live = [t for t in self._tasks_on(inst) if t.live]
        return InstanceView(
            arn=inst.arn, ec2_instance_id=inst.ec2_instance_id, status=inst.status,
            agent_connected=inst.agent_connected, registered=inst.registered, remaining=inst.remaining,
            attributes=inst.attributes, registered_at=self.clock.datetime(inst.registered_at),
            agent_version=inst.agent_version, running_tasks_count=sum(t.last_status == "RUNNING" for t in live),
            pending_tasks_count=sum(t.last_status != "RUNNING" for t in live), version=inst.version)

    # ---- tasks ----------------------------------------------------------------------------------
    def _tasks_on(self, inst: SimInstance) -> list[SimTask]:
        return [self.tasks[a] for a in inst.tasks]

    def _is_daemon_task(self, task: SimTask) -> bool:
        name = task.service_name
        if name is None:
            return False
        svc = self.services.get(self.arn("service", f"{task.cluster}/{name}"))
        return svc is not None and svc.strategy == "DAEMON"

    def place_task(self, inst: SimInstance, task_definition: str, group: str, started_by: str) -> SimTask:
        """Reserve resources and start a task's lifecycle on an instance."""
        td = self.task_defs[task_definition]
        task = SimTask(arn=self.arn("task", f"{inst.cluster}/{self._id()[:32]}"), cluster=inst.cluster,
                       task_definition=task_definition, container_instance=inst.arn, group=group,
                       started_by=started_by, created_at=self.clock.now)
        self.tasks[task.arn] = task
        key = (task.cluster, group)
        self.live_by_group[key][task.arn] = task
        self.active[key] += 1
        self.per_instance[key][inst.arn] += 1
        self.per_zone[key][inst.attributes.get("ecs.availability-zone")] += 1
        inst.tasks[task.arn] = None
        inst.used_cpu += td.cpu
        inst.used_memory += td.memory
        inst.used_ports |= td.host_ports
        inst.daemons_only_since = None
        self._record(task)
        daemon = self._is_daemon_task(task)
        lo, hi = self.params.daemon_start_s if daemon else self.params.replica_start_s
        self.clock.after(self.params.provisioning_s, lambda: self._advance(task, "PENDING"))
        start = self.params.provisioning_s + self.rng.uniform(lo, hi)
        if daemon and self.image_fails(inst, td.family):
            self.clock.after(start, lambda: self._fail_to_start(task))
        else:
            self.clock.after(start, lambda: self._advance(task, "RUNNING"))
        return task

    def image_fails(self, inst: SimInstance, family: str) -> bool:
        """Whether `family`'s image cannot start on this instance (the failing-daemon scenario)."""
        if family != self.params.failing_daemon or self.params.failing_share <= 0:
            return False
        return zlib.crc32(inst.ec2_instance_id.encode()) % 1000 < self.params.failing_share * 1000

    def _fail_to_start(self, task: SimTask) -> None:
        if task.desired_status == "STOPPED" or not task.live:
            return
        key = (task.group, task.container_instance)
        failures = self.start_failures.get(key, (0, 0.0))[0] + 1
        wait = min(self.params.failed_start_backoff_max_s, self.params.daemon_cycle_s * 2 ** (failures - 1))
        self.start_failures[key] = (failures, self.clock.now + wait)
        self._mark_stopping(task)
        task.stopping_at = self.clock.now
        task.stopped_reason = "CannotPullContainerError: pull image manifest has been retried 5 time(s)"
        task.stop_code = "TaskFailedToStart"
        self._set_stopped(task, task.stopped_reason, task.stop_code)

    def _advance(self, task: SimTask, status: str) -> None:
        if task.desired_status == "STOPPED" or not task.live:
            return
        task.last_status = status
        task.version += 1
        if status == "RUNNING":
            task.started_at = self.clock.now
            self.running[(task.cluster, task.group)] += 1
        self._record(task)

    def _mark_stopping(self, task: SimTask) -> None:
        key = (task.cluster, task.group)
        task.desired_status = "STOPPED"
        self.active[key] -= 1
        if task.last_status == "RUNNING":
            self.running[key] -= 1
        inst = self.instances[task.container_instance]
        self.per_instance[key][inst.arn] -= 1
        self.per_zone[key][inst.attributes.get("ecs.availability-zone")] -= 1
        if self.params.daemon_drain_trigger == "left-running" and inst.status == "DRAINING" \
                and not self._is_daemon_task(task):
            # amazon-ecs-agent#3829: the daemons go as soon as the last other task leaves RUNNING.
            self.clock.after(0.0, lambda: self._drain_daemons(inst, self.live_tasks(inst)))

    def stop_timeout(self, td: SimTaskDef) -> float:
        """The seconds after SIGTERM at which the agent SIGKILLs the task's containers: the task definition's
        stopTimeout, or the agent's ECS_CONTAINER_STOP_TIMEOUT where its containers set none."""
        return float(td.stop_timeout_s) if td.stop_timeout_s is not None else self.params.agent_stop_timeout_s

    def stop_task(self, task: SimTask, reason: str, stop_code: str = "UserInitiated") -> None:
        """StopTask: desired STOPPED now; the containers exit after the task's shutdown (`task_shutdown_s`,
        SIGKILL at its stopTimeout), and STOPPED is reported `stopped_report_lag_s` after that."""
        if task.desired_status == "STOPPED" or not task.live:
            return
        self._mark_stopping(task)
        task.stopping_at = self.clock.now
        task.stopped_reason = reason
        task.stop_code = stop_code
        task.version += 1
        self._record(task)
        td = self.task_defs[task.task_definition]
        shutdown = 0.0
        if task.last_status not in ("PROVISIONING", "PENDING"):
            shutdown = min(self.stop_timeout(td), self.rng.uniform(*self.params.task_shutdown_s))
        low, high = self.params.stopped_report_lag_s
        lag = self.report_rng.uniform(low, high) if high > low else low
        task.exited_at = self.clock.now + shutdown
        self.clock.after(shutdown + lag, lambda: self._set_stopped(task, reason, stop_code))

    def _set_stopped(self, task: SimTask, reason: str, stop_code: str) -> None:
        if not task.live:
            return
        task.last_status = "STOPPED"
        task.stopped_at = self.clock.now
        task.stopped_reason = task.stopped_reason or reason
        task.stop_code = task.stop_code or stop_code
        task.version += 1
        inst = self.instances[task.container_instance]
        td = self.task_defs[task.task_definition]
        inst.used_cpu -= td.cpu
        inst.used_memory -= td.memory
        inst.used_ports -= td.host_ports
        self.live_by_group[(task.cluster, task.group)].pop(task.arn, None)
        if inst.backlog_visible_at <= self.clock.now:
            # Freed room reaches services already in placement backoff only at their next retry.
            inst.backlog_visible_at = self.clock.now + self._visibility_delay()
            self.clock.at(inst.backlog_visible_at, self._capacity_changed)
        self._capacity_changed()
        self._record(task)

    def _record(self, task: SimTask) -> None:
        self.transitions.append(TaskTransition(self.clock.now, task.arn, task.container_instance, task.group,
                                               task.last_status, task.desired_status,
                                               self._is_daemon_task(task)))
        for listener in self.listeners:
            listener("task", {"task": task})

    def _notify_instance(self, inst: SimInstance) -> None:
        for listener in self.listeners:
            listener("instance", {"instance": inst})

    def _placement_failure(self, svc: SimService, reason: str, instances: list[str]) -> None:
        if self.clock.now - svc.last_failure_event < self.params.placement_failure_event_interval_s:
            return
        svc.last_failure_event = self.clock.now
        svc.events.append((self.clock.now, f"unable to place a task: {reason}"))
        for listener in self.listeners:
            listener("service-action", {"service": svc, "event_name": "SERVICE_TASK_PLACEMENT_FAILURE",
                                        "reason": reason, "instances": instances[:5]})

    # ---- placement ------------------------------------------------------------------------------
    def constraints_met(self, inst: SimInstance, svc_constraints: list[dict[str, str]],
                        td: SimTaskDef, group: str | None = None, distinct_ok: bool = True) -> bool:
        """Every memberOf expression of the service and task definition holds on the instance."""
        exprs = [c["expression"] for c in (*svc_constraints, *td.constraints) if c.get("type") == "memberOf"]
        if not exprs:
            return True
        facts = self.facts(inst)
        return all(self._compiled(e)(facts) for e in exprs)

    def facts(self, inst: SimInstance) -> Facts:
        """What a cluster query can ask of the instance (for the simulator's own evaluator)."""
        live = [self.tasks[a] for a in inst.tasks if self.tasks[a].live]
        return Facts(attributes=inst.attributes, ec2_instance_id=inst.ec2_instance_id,
                     agent_connected=inst.agent_connected, agent_version=inst.agent_version,
                     registered_at=self.clock.datetime(inst.registered_at),
                     running_tasks_count=sum(t.last_status == "RUNNING" for t in live),
                     task_groups={t.group for t in live
                                  if self.params.task_group_states == "live" or t.last_status == "RUNNING"})

    def _compiled(self, expression: str) -> Test:
        """The simulator's own evaluator (sim.cluster_query), never the code under test."""
        test = self._queries.get(expression)
        if test is None:
            test = self._queries[expression] = compile_query(expression)
        return test

    @staticmethod
    def shortfall(need: Resources, free: Resources, used_ports: set[HostPort]) -> str | None:
        if need.cpu > free.cpu:
            return "RESOURCE:CPU"
        if need.memory > free.memory:
            return "RESOURCE:MEMORY"
        clash = need.ports & used_ports
        if clash:
            return "RESOURCE:PORTS_UDP" if all(p.protocol == "udp" for p in clash) else "RESOURCE:PORTS"
        return None

    def _choose_instance(self, svc: SimService, candidates: list[SimInstance]) -> SimInstance | None:
        if not candidates:
            return None
        key_ = (svc.cluster, f"service:{svc.name}")
        per_instance, per_zone = self.per_instance[key_], self.per_zone[key_]
        strategies = svc.placement_strategy or [{"type": "spread", "field": "attribute:ecs.availability-zone"},
                                                {"type": "spread", "field": "instanceId"}]

        def key(inst: SimInstance) -> tuple[float, ...]:
            parts: list[float] = []
            for strat in strategies:
                kind, fld = strat.get("type"), strat.get("field", "")
                if kind == "spread" and fld.startswith("attribute:"):
                    parts.append(per_zone[inst.attributes.get(fld[len("attribute:"):])])
                elif kind == "spread":
                    parts.append(per_instance[inst.arn])
                elif kind == "binpack":
                    parts.append(inst.registered.cpu - inst.used_cpu if fld == "cpu"
                                 else inst.registered.memory - inst.used_memory)
            parts.append(inst.registered_at)
            return tuple(parts)

        return min(candidates, key=key)

    def try_place(self, svc: SimService, instances: list[SimInstance]) -> tuple[SimInstance | None, str]:
        """Pick an instance for one task of `svc`, or say why none fits."""
        td = self.task_defs[svc.task_definition]
        reason = "ATTRIBUTE"
        fitting: list[SimInstance] = []
        for inst in instances:
            need = td.requirements
            if self.params.daemon_reservation and svc.strategy == "REPLICA":
                held = self._reserved_for_daemons(inst)
                need = Resources(need.cpu + held.cpu, need.memory + held.memory, need.ports | held.ports)
            if inst.registered.cpu - inst.used_cpu < need.cpu:
                reason = "RESOURCE:CPU"
                continue
            if inst.registered.memory - inst.used_memory < need.memory:
                reason = "RESOURCE:MEMORY"
                continue
            if not self.constraints_met(inst, svc.constraints, td):
                continue
            short = self.shortfall(need, inst.remaining, inst.used_ports)
            if short is None:
                fitting.append(inst)
            else:
                reason = short
        return self._choose_instance(svc, fitting), reason

    def _reserved_for_daemons(self, inst: SimInstance) -> Resources:
        """What the eligible daemons not (yet) live on the instance hold back from replicas (the guide:
        "resources aren't used by pending replica tasks")."""
        groups = {self.tasks[a].group for a in inst.tasks if self.tasks[a].live}
        cpu = memory = 0
        ports: set[HostPort] = set()
        for svc in self.services.values():
            if svc.cluster != inst.cluster or svc.strategy != "DAEMON" or svc.status != "ACTIVE" \
                    or f"service:{svc.name}" in groups:
                continue
            key = (svc.arn, inst.arn, inst.version)
            eligible = self._eligible_cache.get(key)
            if eligible is None:
                eligible = self.constraints_met(inst, svc.constraints, self.task_defs[svc.task_definition])
                self._eligible_cache[key] = eligible
            if eligible:
                req = self.task_defs[svc.task_definition].requirements
                cpu, memory = cpu + req.cpu, memory + req.memory
                ports |= req.ports
        return Resources(cpu, memory, frozenset(ports))

    # ---- daemon scheduler -----------------------------------------------------------------------
    def _daemon_cycle_loop(self, cluster: str) -> None:
        self.daemon_cycle(cluster)
        self.clock.after(self.params.daemon_cycle_s, lambda: self._daemon_cycle_loop(cluster))

    def daemon_cycle(self, cluster: str) -> None:
        """One pass of the daemon scheduler over every instance of the cluster."""
        daemons = [s for s in self.services.values()
                   if s.cluster == cluster and s.strategy == "DAEMON" and s.status == "ACTIVE"]
        draining = self.params.daemon_stall_while_draining_s > 0.0 and bool(self.draining_in[cluster])
        for inst in list(self.in_cluster[cluster].values()):
            if inst.status == "INACTIVE" or not inst.agent_connected:
                continue
            live = [t for t in self._tasks_on(inst) if t.live]
            if inst.status == "DRAINING":
                self._drain_daemons(inst, live)
                continue
            if draining and self._stalled(inst, live):
                continue
            groups = {t.group for t in live if t.desired_status == "RUNNING"}
            for svc in daemons:
                td = self.task_defs[svc.task_definition]
                eligible = self.constraints_met(inst, svc.constraints, td)
                mine = [t for t in live if t.group == f"service:{svc.name}" and t.desired_status == "RUNNING"]
                if not eligible:
                    for t in mine:
                        self.stop_task(t, "Placement constraints no longer satisfied", "ServiceSchedulerInitiated")
                    continue
                if self._roll_daemon(svc, mine):
                    continue
                if f"service:{svc.name}" in groups or self._start_throttled(f"service:{svc.name}", inst):
                    continue
                short = self.shortfall(td.requirements, inst.remaining, inst.used_ports)
                if short is None:
                    self.place_task(inst, svc.task_definition, f"service:{svc.name}", f"ecs-svc/{svc.name}")
                else:
                    self._placement_failure(svc, short, [inst.arn])

    def _stalled(self, inst: SimInstance, live: list[SimTask]) -> bool:
        """containers-roadmap#856 (called while another instance of the cluster is DRAINING): no daemon is
        placed on a new instance (none of its tasks a daemon) for up to `daemon_stall_while_draining_s`."""
        if any(self._is_daemon_task(t) for t in live):
            return False
        if inst.daemon_stall_since is None:
            inst.daemon_stall_since = self.clock.now
        return self.clock.now < inst.daemon_stall_since + self.params.daemon_stall_while_draining_s

    def _start_throttled(self, group: str, inst: SimInstance) -> bool:
        """A daemon whose last start on this instance failed waits out the service throttle's backoff."""
        failed = self.start_failures.get((group, inst.arn))
        return failed is not None and self.clock.now < failed[1]

    def update_service_constraints(self, svc: SimService, constraints: list[dict[str, str]]) -> None:
        """UpdateService placementConstraints: the list is replaced (no new deployment). The schedulers apply it
        at their next pass: daemons whose constraints stop matching are stopped, as on ECS."""
        svc.constraints = [dict(c) for c in constraints]
        self._eligible_cache = {k: v for k, v in self._eligible_cache.items() if k[0] != svc.arn}
        self._capacity_changed()

    def update_daemon_service(self, svc: SimService, task_definition: str) -> None:
        """UpdateService of a DAEMON service to a new revision: the daemon scheduler rolls it out (and, as the
        guide says of the throttle, a new task definition ends it at once)."""
        svc.task_definition = task_definition
        group = f"service:{svc.name}"
        self.start_failures = {k: v for k, v in self.start_failures.items() if k[0] != group}

    def _roll_daemon(self, svc: SimService, mine: list[SimTask]) -> bool:
        """A daemon task of an older revision is stopped first; the new revision is placed once it is gone.

        Daemon deployments cannot surge (one task per instance, maximumPercent 100): ECS stops old
        tasks, at most the share minimumHealthyPercent allows at a time across the cluster (ECS's
        default for daemons is 0: all at once), then places the new revision where it fits.
        Returns True while this instance's task is being replaced.
        """
        outdated = [t for t in mine if t.task_definition != svc.task_definition]
        if not outdated:
            return False
        group = f"service:{svc.name}"
        live = [t for t in self.tasks.values() if t.group == group and t.cluster == svc.cluster and t.live]
        floor = math.ceil(len(live) * svc.minimum_healthy_percent / 100)
        stoppable = sum(1 for t in live if t.desired_status == "RUNNING" and t.last_status == "RUNNING") - floor
        if stoppable <= 0:
            return True
        for t in outdated[:stoppable]:
            self.stop_task(t, "Deployment: replaced by a new task definition revision", "ServiceSchedulerInitiated")
        return True

    def _drain_daemons(self, inst: SimInstance, live: list[SimTask]) -> None:
        """Stop the daemons of a DRAINING instance once the other tasks are gone, as the profile says:
        once they left RUNNING (at once), once they STOPPED (this pass), or a grace after that."""
        if inst.status != "DRAINING":
            return
        trigger = self.params.daemon_drain_trigger
        others = [t for t in live if not self._is_daemon_task(t)
                  and (self.params.standalone_holds_daemons or t.service_name is not None)
                  and (trigger != "left-running" or t.desired_status == "RUNNING")]
        if others:
            inst.daemons_only_since = None
            return
        if inst.daemons_only_since is None:
            inst.daemons_only_since = self.clock.now
        grace = self.params.daemon_drain_delay_s if trigger == "grace" else 0.0
        if self.clock.now - inst.daemons_only_since >= grace:
            for t in live:
                if self._is_daemon_task(t):
                    self.stop_task(t, "Container instance is draining", "ServiceSchedulerInitiated")

    # ---- replica scheduler ----------------------------------------------------------------------
    def _replica_loop(self, cluster: str) -> None:
        self.replica_pass(cluster)
        self.clock.after(self.params.replica_pass_s, lambda: self._replica_loop(cluster))

    def replica_pass(self, cluster: str) -> None:
        """One pass of the service scheduler: fill deficits, replace tasks on DRAINING instances."""
        services = [s for s in self.services.values()
                    if s.cluster == cluster and s.strategy == "REPLICA" and s.status == "ACTIVE"]
        if not services:
            return
        draining_by_group: dict[str, list[SimTask]] = defaultdict(list)
        for drained in self.draining_in[cluster].values():
            for t in self._tasks_on(drained):
                if t.live and t.desired_status == "RUNNING":
                    draining_by_group[t.group].append(t)
        fresh: list[SimInstance] | None = None
        backlog: list[SimInstance] | None = None
        for svc in services:
            group = f"service:{svc.name}"
            key = (cluster, group)
            draining = draining_by_group.get(group, [])
            active = self.active[key]
            healthy_n = active - len(draining)
            target = svc.desired_count
            ceiling = math.floor(target * svc.maximum_percent / 100)
            floor_ = math.ceil(target * svc.minimum_healthy_percent / 100)
            starts = min(target - healthy_n, ceiling - active)
            if starts > 0 and svc.failed_epoch == self.capacity_epoch:
                starts = 0  # nothing changed since the last failed attempt
            if starts > 0 and fresh is None:
                now = self.clock.now
                fresh = [i for i in self.in_cluster[cluster].values()
                         if i.status == "ACTIVE" and i.agent_connected
                         and now >= i.replica_visible_at]
                backlog = [i for i in fresh if now >= i.backlog_visible_at]
            placed_all = True
            for _ in range(max(0, starts)):
                inst, reason = self.try_place(svc, (backlog if svc.backlogged else fresh) or [])
                if inst is None:
                    svc.failed_epoch = self.capacity_epoch
                    svc.backlogged, placed_all = True, False
                    self._placement_failure(svc, reason, [])
                    break
                self.place_task(inst, svc.task_definition, group, f"ecs-svc/{svc.name}")
            if starts > 0 and placed_all:
                svc.backlogged = False
            if draining:
                # Stop tasks on DRAINING instances while keeping minimumHealthyPercent RUNNING.
                can_stop = self.running[key] - floor_
                for t in sorted(draining, key=lambda t: (t.last_status == "RUNNING", t.arn)):
                    if t.last_status != "RUNNING":
                        self.stop_task(t, "Container instance is draining", "ServiceSchedulerInitiated")
                    elif can_stop > 0:
                        self.stop_task(t, "Container instance is draining", "ServiceSchedulerInitiated")
                        can_stop -= 1
            elif active > target:
                newest = sorted((t for t in self.live_by_group[key].values() if t.desired_status == "RUNNING"),
                                key=lambda t: (-t.created_at, t.arn))
                for t in newest[:active - target]:
                    self.stop_task(t, "Scaling activity initiated by deployment", "ServiceSchedulerInitiated")

    # ---- standalone tasks -----------------------------------------------------------------------
    def run_task(self, cluster: str, task_definition: str, count: int, started_by: str, group: str, *,
                 constraints: list[dict[str, str]] | None = None) -> tuple[list[SimTask], list[str]]:
        """RunTask: place `count` standalone tasks; return tasks and failure reasons."""
        svc = SimService(arn="", name=group, cluster=cluster, strategy="REPLICA",
                         task_definition=task_definition, desired_count=count, minimum_healthy_percent=0,
                         maximum_percent=100, constraints=constraints or [], placement_strategy=[],
                         tags={}, created_at=self.clock.now)
        placeable = [i for i in self.in_cluster[cluster].values() if i.status == "ACTIVE" and i.agent_connected]
        tasks: list[SimTask] = []
        failures: list[str] = []
        for _ in range(count):
            inst, reason = self.try_place(svc, placeable)
            if inst is None:
                failures.append(reason)
            else:
                tasks.append(self.place_task(inst, task_definition, group, started_by))
        return tasks, failures

    # ---- read helpers ---------------------------------------------------------------------------
    def live_tasks(self, inst: SimInstance) -> list[SimTask]:
        """Tasks on the instance that have not STOPPED."""
        return [t for t in self._tasks_on(inst) if t.live]

    def service_counts(self, svc: SimService) -> tuple[int, int]:
        """(runningCount, pendingCount) as DescribeServices reports them."""
        key = (svc.cluster, f"service:{svc.name}")
        running = self.running[key]
        if self.params.running_count_includes_stopping:
            running += sum(1 for t in self.live_by_group[key].values()
                           if t.desired_status == "STOPPED" and t.last_status == "RUNNING")
        return running, self.active[key] - self.running[key]

    def is_daemon_task(self, task: SimTask) -> bool:
        """True when the task belongs to a DAEMON service."""
        return self._is_daemon_task(task)
