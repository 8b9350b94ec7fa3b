"""The one configuration format: read by the CDK app at synth and by every Lambda at run time.

The JSON document lives under the cdk.json context key ``daemon-guard`` and reaches the Lambdas
through the ``DAEMON_GUARD_CONFIG`` environment variable. `parse_config` validates it and
names the field and the fix in every error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Any

from daemon_guard.core.drain_budget import BudgetError, BudgetRule, parse_budget
from daemon_guard.core.identifiers import AccountId, IdentifierError, Partition, Region, partition_of_region


class ConfigError(ValueError):
    """A configuration problem, naming the field and the fix."""


class PlacementMode(StrEnum):
    """How the guard makes room for daemons on a new instance."""

    PREEMPT = "preempt"
    GATE = "gate"
    OBSERVE = "observe"


class DrainOrder(StrEnum):
    """How a drain keeps its order, and so which guarantees it can make (README, "Guarantees").

    - ``draining``: set DRAINING first; ECS replaces the replicas and decides when the daemons stop.
      No constraint needed; the order is best effort.
    - ``apps-first``: replica services carry the gate constraint (placement mode ``gate``). The guard
      shuts the gate, stops the replicas itself within minimumHealthyPercent and follows every app task
      to STOPPED, and only then sets DRAINING: daemons stop after apps.
    - ``tiers``: as ``apps-first``, and each daemon service carries `tier_constraint(tier)`; the
      guard sets the tier's attribute and stops its daemons itself, tier by tier: daemons after apps
      and tiers in order, and ECS restarts none of them.
    """

    DRAINING = "draining"
    APPS_FIRST = "apps-first"
    TIERS = "tiers"


class DeadlinePolicy(StrEnum):
    """What the drain deadline (``drainDeadlineSeconds``) may do.

    - ``order``: stop early. Past it every phase is out of time: what is left stops at once, phase by
      phase, each followed to STOPPED before the next begins; the order holds, the drain waits as long
      as the lifecycle hook can be kept alive.
    - ``force``: also a hard end: past it, a phase whose tasks are not STOPPED moves on (a guarantee
      break, counted and alarmed) so that the lifecycle action completes by the deadline.
    """

    ORDER = "order"
    FORCE = "force"


class StandalonePolicy(StrEnum):
    """What a drain does with standalone (non-service) tasks."""

    WAIT = "wait"
    STOP = "stop"
    IGNORE = "ignore"


class SpotPolicy(StrEnum):
    """What an interruption warning or rebalance recommendation triggers."""

    DRAIN = "drain"
    REPORT = "report"


class ScheduledChangePolicy(StrEnum):
    """What an AWS Health EC2 scheduled change (stop, reboot, retirement) triggers."""

    REPLACE = "replace"  # drain, then SetInstanceHealth Unhealthy so the group replaces the instance
    DRAIN = "drain"  # drain only; the instance stays for AWS's change
    REPORT = "report"


class DrainMode(StrEnum):
    """Whether drain triggers drain (``run``) or only report their planned steps (``observe``)."""

    RUN = "run"
    OBSERVE = "observe"


DRAIN_TIER_TAG = "daemon-guard:drain-tier"
# The drain's own phase labels: a tier of the same name would be indistinguishable in notes, metrics and the preview.
RESERVED_TIER_NAMES = ("replicas", "standalone", "settle", "complete")
CRITICAL_TAG = "daemon-guard:critical"
LAUNCH_HOOK_NAME = "daemon-guard-launch"
TERMINATE_HOOK_NAME = "daemon-guard-terminate"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-/]{0,254}$")
_ATTRIBUTE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")


@dataclass(frozen=True)
class ManagedGroup:
    """An Auto Scaling group whose instances join a managed cluster."""

    name: str
    launch_hook: bool = False
    terminate_hook: bool = True
    launch_timeout_result: str = "CONTINUE"
    coexist_with_managed_draining: bool = False
    heartbeat_timeout_s: int = 300


@dataclass(frozen=True)
class ManagedCluster:
    """A cluster the guard manages, with its Auto Scaling groups."""

    name: str
    groups: tuple[ManagedGroup, ...] = ()


@dataclass(frozen=True)
class DrainTier:
    """A named tier of daemons stopped together; tiers stop in list order."""

    name: str
    services: tuple[str, ...] = ()


@dataclass(frozen=True)
class Home:
    """Where the deployment lives, when the configuration says so (each part optional).

    The deployed Lambda learns its home from its own function ARN; `daemon-guard replay` has no
    function ARN and takes it from here (or its flags), so it ignores the same foreign events.
    """

    partition: str | None = None
    account: str | None = None
    region: str | None = None


@dataclass(frozen=True)
class Config:
    """Validated configuration; every default is resolved here, once."""

    clusters: tuple[ManagedCluster, ...]
    placement_mode: PlacementMode = PlacementMode.PREEMPT
    drain_order: DrainOrder = DrainOrder.DRAINING
    gate_attribute: str = "daemon-guard.gate"
    gate_timeout_s: int = 120
    launch_gate_timeout_s: int = 600
    drain_tiers: tuple[DrainTier, ...] = (DrainTier("daemons"),)
    drain_deadline_s: int = 900
    tier_deadline_s: int = 300
    standalone_policy: StandalonePolicy = StandalonePolicy.WAIT
    standalone_wait_s: int = 300
    spot_policy: SpotPolicy = SpotPolicy.DRAIN
    rebalance_policy: SpotPolicy = SpotPolicy.REPORT
    reconcile_period_min: int = 1
    audit_cycle_min: int = 20  # the reconciler's rotating full audit covers every cluster within this
    eviction_budget_per_service: int = 2
    eviction_window_s: int = 60
    preempt_max_tries: int = 4
    preempt_max_give_ups: int = 3
    alarm_email: str | None = None
    alarm_topic_arn: str | None = None
    home: Home = Home()
    scheduled_change_policy: ScheduledChangePolicy = ScheduledChangePolicy.REPLACE
    scheduled_change_lead_s: int | None = None  # None: drain as soon as the change is announced
    state_change_policy: SpotPolicy = SpotPolicy.DRAIN
    state_change_deadline_s: int = 90
    drain_mode: DrainMode = DrainMode.RUN
    drain_deadline_policy: DeadlinePolicy = DeadlinePolicy.ORDER
    agent_stop_timeout_s: int = 30  # the stopTimeout of a container that sets none (ECS_CONTAINER_STOP_TIMEOUT)
    critical_daemons: frozenset[str] = frozenset()  # gate mode: never fail open without these; replace instead
    max_replacements_per_hour: int = 5  # per cluster: instances replaced for a missing critical daemon
    drain_budget: tuple[BudgetRule, ...] = ()  # none: drains are not bounded (`core.drain_budget`)
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def cluster_names(self) -> frozenset[str]:
        """Names of every managed cluster."""
        return frozenset(c.name for c in self.clusters)

    @property
    def group_names(self) -> frozenset[str]:
        """Names of every managed Auto Scaling group."""
        return frozenset(g.name for c in self.clusters for g in c.groups)

    def group(self, name: str) -> ManagedGroup | None:
        """The managed group of this name, if any."""
        return next((g for c in self.clusters for g in c.groups if g.name == name), None)

    def cluster_of_group(self, name: str) -> ManagedCluster | None:
        """The cluster an Auto Scaling group feeds, if managed."""
        return next((c for c in self.clusters if any(g.name == name for g in c.groups)), None)

    def manages_cluster_arn(self, cluster_arn: str) -> bool:
        """True when the ARN (or bare name) names a managed cluster."""
        return cluster_name_from_arn(cluster_arn) in self.cluster_names


def cluster_name_from_arn(cluster: str) -> str:
    """`arn:aws:ecs:r:a:cluster/NAME` or `NAME` to `NAME`."""
    return cluster.rsplit("/", 1)[-1] if cluster.startswith("arn:") else cluster


_KNOWN_KEYS = {
    "clusters", "placementMode", "gateAttribute", "gateTimeoutSeconds", "drainTiers",
    "drainDeadlineSeconds", "tierDeadlineSeconds", "standaloneTaskPolicy", "standaloneWaitSeconds",
    "spot", "rebalance", "reconcilePeriodMinutes", "evictionBudgetPerService",
    "evictionWindowSeconds", "preemptMaxTries", "preemptMaxGiveUps", "alarmEmail", "alarmTopicArn",
    "launchGateTimeoutSeconds", "home",
    "scheduledChange", "scheduledChangeLeadSeconds", "instanceStateChange", "stateChangeDeadlineSeconds",
    "drainMode", "drainOrder", "drainDeadlinePolicy", "agentStopTimeoutSeconds",
    "criticalDaemons", "maxReplacementsPerHour", "auditCycleMinutes", "drainBudget",
}
_HOME_KEYS = {"partition", "account", "region"}
_GROUP_KEYS = {"name", "launchHook", "terminateHook", "launchTimeoutResult",
               "coexistWithManagedDraining", "heartbeatTimeoutSeconds"}


def _require(cond: bool, where: str, fix: str) -> None:
    if not cond:
        raise ConfigError(f"daemon-guard config: {where}: {fix}")


def _int(doc: Mapping[str, Any], key: str, default: int, low: int, high: int, where: str = "") -> int:
    value = doc.get(key, default)
    path = f"{where}{key}"
    _require(isinstance(value, int) and not isinstance(value, bool), path,
             f"must be a whole number, got {value!r}")
    _require(low <= value <= high, path, f"must be between {low} and {high}, got {value}")
    return int(value)


def _bool(doc: Mapping[str, Any], key: str, default: bool, where: str) -> bool:
    value = doc.get(key, default)
    _require(isinstance(value, bool), f"{where}{key}", f"must be true or false, got {value!r}")
    return bool(value)


def _enum(doc: Mapping[str, Any], key: str, enum: type[Enum], default: Enum) -> Any:
    value = doc.get(key, default.value)
    allowed = [e.value for e in enum]
    _require(value in allowed, key, f"must be one of {', '.join(allowed)}, got {value!r}")
    return enum(value)


def _parse_group(raw: Any, where: str) -> ManagedGroup:
    if isinstance(raw, str):
        raw = {"name": raw}
    _require(isinstance(raw, Mapping), where, "must be an ASG name or an object with a 'name'")
    unknown = set(raw) - _GROUP_KEYS
    _require(not unknown, where, f"unknown field(s) {sorted(unknown)}; allowed: {sorted(_GROUP_KEYS)}")
    name = raw.get("name")
    _require(isinstance(name, str) and bool(_NAME.match(name)), f"{where}.name",
             f"must be an Auto Scaling group name, got {name!r}")
    result = raw.get("launchTimeoutResult", "CONTINUE")
    _require(result in ("CONTINUE", "ABANDON"), f"{where}.launchTimeoutResult",
             f"must be CONTINUE or ABANDON, got {result!r}")
    return ManagedGroup(
        name=str(name),
        launch_hook=_bool(raw, "launchHook", False, f"{where}."),
        terminate_hook=_bool(raw, "terminateHook", True, f"{where}."),
        launch_timeout_result=str(result),
        coexist_with_managed_draining=_bool(raw, "coexistWithManagedDraining", False, f"{where}."),
        heartbeat_timeout_s=_int(raw, "heartbeatTimeoutSeconds", 300, 30, 7200, f"{where}."),
    )


def _parse_cluster(raw: Any, index: int) -> ManagedCluster:
    where = f"clusters[{index}]"
    _require(isinstance(raw, Mapping), where, "must be an object with 'name' and 'autoScalingGroups'")
    unknown = set(raw) - {"name", "autoScalingGroups"}
    _require(not unknown, where, f"unknown field(s) {sorted(unknown)}; allowed: name, autoScalingGroups")
    name = raw.get("name")
    _require(isinstance(name, str) and bool(_NAME.match(name)), f"{where}.name",
             f"must be an ECS cluster name, got {name!r}")
    groups_raw = raw.get("autoScalingGroups", [])
    _require(isinstance(groups_raw, list), f"{where}.autoScalingGroups", "must be a list of ASG names")
    groups = tuple(_parse_group(g, f"{where}.autoScalingGroups[{i}]") for i, g in enumerate(groups_raw))
    return ManagedCluster(name=str(name), groups=groups)


def _parse_tiers(raw: Any) -> tuple[DrainTier, ...]:
    _require(isinstance(raw, list) and len(raw) >= 1, "drainTiers",
             "must be a non-empty list of {\"name\": ..., \"services\": [...]}")
    tiers: list[DrainTier] = []
    seen_services: set[str] = set()
    for i, tier in enumerate(raw):
        where = f"drainTiers[{i}]"
        _require(isinstance(tier, Mapping) and isinstance(tier.get("name"), str) and tier["name"] != "",
                 where, "must be an object with a non-empty 'name' and optional 'services'")
        services = tier.get("services", [])
        _require(isinstance(services, list) and all(isinstance(s, str) for s in services),
                 f"{where}.services", "must be a list of daemon service names")
        dupes = seen_services & set(services)
        _require(not dupes, f"{where}.services", f"{sorted(dupes)} already belong to an earlier tier")
        seen_services |= set(services)
        _require(tier["name"] not in RESERVED_TIER_NAMES, f"{where}.name",
                 f"{tier['name']!r} is one of the drain's own phase names ({', '.join(RESERVED_TIER_NAMES)})")
        tiers.append(DrainTier(str(tier["name"]), tuple(services)))
    names = [t.name for t in tiers]
    _require(len(names) == len(set(names)), "drainTiers", "tier names must be unique")
    return tuple(tiers)


def parse_home(raw: Any) -> Home:
    """Validate the optional ``home`` object (partition, account, region, each optional and consistent)."""
    if raw is None:
        return Home()
    _require(isinstance(raw, Mapping), "home", 'must be an object such as {"account": "111122223333", '
             '"region": "us-east-1", "partition": "aws"}')
    unknown = set(raw) - _HOME_KEYS
    _require(not unknown, "home", f"unknown field(s) {sorted(unknown)}; allowed: {sorted(_HOME_KEYS)}")
    parts: dict[str, str | None] = {}
    for key, kind in (("partition", Partition), ("account", AccountId), ("region", Region)):
        value = raw.get(key)
        try:
            parts[key] = None if value is None else str(kind(value))
        except IdentifierError as refused:
            raise ConfigError(f"daemon-guard config: home.{key}: {refused.reason}") from None
    region, partition = parts["region"], parts["partition"]
    if region is not None:
        _require(partition_of_region(region) is not None, "home.region", f"{region} is in no AWS partition")
        _require(partition in (None, partition_of_region(region)), "home.partition",
                 f"{partition} does not hold region {region} (it is in {partition_of_region(region)})")
    return Home(partition=partition, account=parts["account"], region=region)


def parse_config(doc: Any) -> Config:
    """Validate a configuration document and resolve its defaults."""
    _require(isinstance(doc, Mapping), "(root)", "must be a JSON object")
    unknown = set(doc) - _KNOWN_KEYS
    _require(not unknown, "(root)", f"unknown field(s) {sorted(unknown)}; allowed: {sorted(_KNOWN_KEYS)}")
    clusters_raw = doc.get("clusters")
    _require(isinstance(clusters_raw, list) and len(clusters_raw) > 0, "clusters",
             "list at least one cluster: [{\"name\": \"prod\", \"autoScalingGroups\": [\"prod-asg\"]}]")
    clusters = tuple(_parse_cluster(c, i) for i, c in enumerate(clusters_raw))
    names = [c.name for c in clusters]
    _require(len(names) == len(set(names)), "clusters", "each cluster may appear once")
    groups = [g.name for c in clusters for g in c.groups]
    _require(len(groups) == len(set(groups)), "autoScalingGroups", "an ASG may belong to one cluster only")
    gate_attribute = doc.get("gateAttribute", "daemon-guard.gate")
    _require(isinstance(gate_attribute, str) and bool(_ATTRIBUTE.match(gate_attribute))
             and not gate_attribute.startswith("ecs."), "gateAttribute",
             "must be a custom attribute name (letters, digits, '.', '-', '_'; not starting with 'ecs.')")
    deadline = _int(doc, "drainDeadlineSeconds", 900, 60, 48 * 3600)
    tier_deadline = _int(doc, "tierDeadlineSeconds", 300, 10, 48 * 3600)
    _require(tier_deadline <= deadline, "tierDeadlineSeconds", "must not exceed drainDeadlineSeconds")
    email = doc.get("alarmEmail")
    _require(email is None or (isinstance(email, str) and "@" in email), "alarmEmail",
             "must be an e-mail address")
    topic = doc.get("alarmTopicArn")
    _require(topic is None or (isinstance(topic, str) and topic.startswith("arn:") and ":sns:" in topic),
             "alarmTopicArn", "must be an SNS topic ARN")
    placement_mode = _enum(doc, "placementMode", PlacementMode, PlacementMode.PREEMPT)
    drain_order = _enum(doc, "drainOrder", DrainOrder, DrainOrder.DRAINING)
    tiers = _parse_tiers(doc.get("drainTiers", [{"name": "daemons"}]))
    _require(drain_order is DrainOrder.DRAINING or placement_mode is PlacementMode.GATE, "drainOrder",
             f"'{drain_order.value}' keeps replicas off a draining instance with the gate constraint: "
             "set placementMode to 'gate' (and gate_constraint() on the replica services), or use 'draining'")
    _require(drain_order is not DrainOrder.TIERS or all(_ATTRIBUTE.match(f"{gate_attribute}.stop.{t.name}")
                                                      for t in tiers), "drainTiers",
             "with drainOrder 'tiers' each tier name becomes part of an attribute name: letters, digits, "
             "'.', '-', '_' only")
    return Config(
        clusters=clusters,
        placement_mode=placement_mode,
        drain_order=drain_order,
        gate_attribute=gate_attribute,
        gate_timeout_s=_int(doc, "gateTimeoutSeconds", 120, 10, 3600),
        launch_gate_timeout_s=_int(doc, "launchGateTimeoutSeconds", 600, 60, 7200),
        drain_tiers=tiers,
        drain_deadline_s=deadline,
        tier_deadline_s=tier_deadline,
        standalone_policy=_enum(doc, "standaloneTaskPolicy", StandalonePolicy, StandalonePolicy.WAIT),
        standalone_wait_s=_int(doc, "standaloneWaitSeconds", 300, 0, 48 * 3600),
        spot_policy=_enum(doc, "spot", SpotPolicy, SpotPolicy.DRAIN),
        rebalance_policy=_enum(doc, "rebalance", SpotPolicy, SpotPolicy.REPORT),
        reconcile_period_min=_int(doc, "reconcilePeriodMinutes", 1, 1, 60),
        audit_cycle_min=_int(doc, "auditCycleMinutes", 20, 1, 24 * 60),
        eviction_budget_per_service=_int(doc, "evictionBudgetPerService", 2, 1, 1000),
        eviction_window_s=_int(doc, "evictionWindowSeconds", 60, 1, 3600),
        preempt_max_tries=_int(doc, "preemptMaxTries", 4, 1, 100),
        preempt_max_give_ups=_int(doc, "preemptMaxGiveUps", 3, 1, 100_000),
        alarm_email=email,
        alarm_topic_arn=topic,
        home=parse_home(doc.get("home")),
        drain_deadline_policy=_enum(doc, "drainDeadlinePolicy", DeadlinePolicy, DeadlinePolicy.ORDER),
        # ECS_CONTAINER_STOP_TIMEOUT is not readable through the ECS API: the operator says what the agents run with.
        agent_stop_timeout_s=_int(doc, "agentStopTimeoutSeconds", 30, 1, 3600),
        critical_daemons=_critical_daemons(doc.get("criticalDaemons", [])),
        max_replacements_per_hour=_int(doc, "maxReplacementsPerHour", 5, 0, 1000),
        drain_budget=_drain_budget(doc.get("drainBudget", [])),
        **_exit_options(doc),
    )


def _critical_daemons(raw: Any) -> frozenset[str]:
    """``criticalDaemons``: the daemon service names that gate mode never fails open without."""
    _require(isinstance(raw, list) and all(isinstance(s, str) and bool(_NAME.match(s)) for s in raw),
             "criticalDaemons", f"must be a list of daemon service names, got {raw!r}")
    return frozenset(raw)


def _drain_budget(raw: Any) -> tuple[BudgetRule, ...]:
    """``drainBudget``: how many instances may drain at once (`core.drain_budget.parse_budget`)."""
    try:
        return parse_budget(raw) if raw != [] else ()
    except BudgetError as refused:
        raise ConfigError(f"daemon-guard config: {refused}") from None


def _exit_options(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The keys of exits outside Auto Scaling: AWS Health scheduled changes and EC2 stops."""
    lead = doc.get("scheduledChangeLeadSeconds")
    if lead is not None:
        lead = _int(doc, "scheduledChangeLeadSeconds", 0, 0, 30 * 86400)
    return {
        "scheduled_change_policy": _enum(doc, "scheduledChange", ScheduledChangePolicy, ScheduledChangePolicy.REPLACE),
        "scheduled_change_lead_s": lead,
        "state_change_policy": _enum(doc, "instanceStateChange", SpotPolicy, SpotPolicy.DRAIN),
        "state_change_deadline_s": _int(doc, "stateChangeDeadlineSeconds", 90, 10, 3600),
        "drain_mode": _enum(doc, "drainMode", DrainMode, DrainMode.RUN),
    }


def is_critical(service_name: str, tags: Mapping[str, str], critical_daemons: frozenset[str]) -> bool:
    """True for a critical daemon: the service tag ``daemon-guard:critical`` wins (``true`` / ``false``,
    any case), then the configured ``criticalDaemons``."""
    tagged = tags.get(CRITICAL_TAG)
    if tagged is not None and tagged.strip().lower() in ("true", "false"):
        return tagged.strip().lower() == "true"
    return service_name in critical_daemons


def tier_of(service_name: str, tags: Mapping[str, str], tiers: Sequence[DrainTier]) -> int:
    """Index of a daemon's drain tier: the service tag wins, then the configured lists, then tier 0.

    Unlisted daemons stop in the first tier so that the daemons an operator named (the log router
    last, say) keep the places they were given.
    """
    tagged = tags.get(DRAIN_TIER_TAG)
    if tagged is not None:
        for index, tier in enumerate(tiers):
            if tier.name == tagged:
                return index
        if tagged.isdigit() and int(tagged) < len(tiers):
            return int(tagged)
    for index, tier in enumerate(tiers):
        if service_name in tier.services:
            return index
    return 0
