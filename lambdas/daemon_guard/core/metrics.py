"""The catalogue of metrics daemon-guard emits: one list read by the code and by the dashboard.

Every metric is emitted as EMF in namespace `DaemonGuard` with the `Cluster` dimension (plus the
extra dimensions named here). The dashboard, the alarms and a test hold to this list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

NAMESPACE = "DaemonGuard"
CLUSTER_DIMENSION = "Cluster"

Unit = Literal["Count", "Seconds", "Percent", "Milliseconds"]


@dataclass(frozen=True)
class MetricSpec:
    """A metric's name, unit, extra dimensions and whether the dashboard shows it."""

    name: str
    unit: Unit
    description: str
    extra_dimensions: tuple[str, ...] = ()
    on_dashboard: bool = True


# Placement
TIME_TO_DAEMONS = MetricSpec("TimeToDaemons", "Seconds", "registration to all eligible daemons RUNNING")
DAEMON_COVERAGE = MetricSpec("DaemonCoverage", "Percent", "share of eligible daemon slots RUNNING")
MISSING_DAEMON_TASKS = MetricSpec("MissingDaemonTasks", "Count", "eligible daemon slots not RUNNING")
EVICTIONS = MetricSpec("Evictions", "Count", "replica tasks stopped to make room for daemons")
GATE_OPEN_LATENCY = MetricSpec("GateOpenLatency", "Seconds", "registration to gate opened")
GATES_FAILED_OPEN = MetricSpec("GatesFailedOpen", "Count", "gates opened by timeout with daemons missing")
DAEMONS_CANNOT_FIT = MetricSpec("InstancesDaemonsCannotFit", "Count",
                                "instances that cannot hold their eligible daemons even when empty")
GATE_ATTRIBUTE_REJECTED = MetricSpec("GateAttributeRejected", "Count",
                                     "gates ECS would not open: the instance already has 10 custom attributes")
PREEMPT_GAVE_UP = MetricSpec("PreemptGaveUp", "Count",
                             "instances where preempt stopped evicting: replicas kept taking the room it freed")
PLACEMENT_DECISIONS = MetricSpec("PlacementDecisions", "Count", "placement decisions taken", ("Mode",))
CRITICAL_REPLACEMENTS = MetricSpec("InstancesReplacedForCriticalDaemon", "Count",
                                   "instances replaced: gate timeout passed with a critical daemon not RUNNING")
REPLACEMENTS_HELD = MetricSpec("CriticalReplacementsHeld", "Count",
                               "replacements held by maxReplacementsPerHour (the gate stays shut)")
# Wiring (the reconciler's audit of the services' constraints, at most once per WIRING_AUDIT_PERIOD_MIN)
SERVICES_WITHOUT_GATE = MetricSpec("ServicesWithoutGate", "Count",
                                   "replica services without the gate constraint (placementMode gate)")
DAEMON_SERVICES_WITHOUT_TIER = MetricSpec("DaemonServicesWithoutTier", "Count",
                                          "daemon services without their tier constraint (drainOrder tiers)")
# Drain
DRAINS_STARTED = MetricSpec("DrainsStarted", "Count", "drain workflows started")
DRAINS_IN_PROGRESS = MetricSpec("DrainsInProgress", "Count", "instances DRAINING seen by the reconciler")
DRAIN_DURATION = MetricSpec("DrainDuration", "Seconds", "drain start to lifecycle action completed")
DRAIN_OVERHEAD = MetricSpec("DrainOverhead", "Seconds", "drain time above the sum of slowest stops per tier")
TIER_DURATION = MetricSpec("TierDuration", "Seconds", "time to stop one daemon tier", ("Tier",))
DEADLINES_MISSED = MetricSpec("DeadlinesMissed", "Count", "global or tier deadlines that forced the order")
HEARTBEATS_SENT = MetricSpec("HeartbeatsSent", "Count", "lifecycle heartbeats recorded")
LIFECYCLE_RESULTS = MetricSpec("LifecycleResults", "Count", "lifecycle actions completed", ("Result",))
DRAINS_BLOCKED = MetricSpec("DrainsBlocked", "Count", "drains that cannot progress without help")
ORDERING_VIOLATIONS = MetricSpec("OrderingViolations", "Count", "self-check: stop order broken (want 0)")
GUARANTEE_BREAKS = MetricSpec("DrainGuaranteeBreaks", "Count",
                              "phases a hard end moved on with tasks not STOPPED (Spot notice, heartbeats' end, "
                              "forced deadline), daemons stopped by another, or the instance gone before its drain "
                              "ended")
DRAINS_UNDER_BUDGET = MetricSpec("DrainsUnderBudget", "Count",
                                 "drains counted by the drain budget (started or bypassed), at each decision")
DRAINS_WAITING = MetricSpec("DrainsWaiting", "Count", "drains waiting for the drain budget, at each decision")
BUDGET_BYPASSES = MetricSpec("DrainBudgetBypasses", "Count",
                             "drains started over the budget: a hard end sooner than they could finish after waiting")
STUCK_LIFECYCLE_ACTIONS = MetricSpec("StuckLifecycleActions", "Count", "waiting hooks with no live workflow")
# Intake
EVENTS_IGNORED = MetricSpec("EventsIgnored", "Count", "events out of scope", on_dashboard=False)
EVENTS_MALFORMED = MetricSpec("EventsMalformed", "Count", "events that failed to parse")
DUPLICATE_EVENTS = MetricSpec("DuplicateEvents", "Count", "events already seen", on_dashboard=False)
EVENTS_UNPUBLISHED = MetricSpec("GuardEventsUnpublished", "Count", "own events EventBridge did not accept (logged)",
                                on_dashboard=False)
CHECKS_DEFERRED = MetricSpec("ChecksDeferred", "Count", "placement checks left to the reconciler under throttling",
                             on_dashboard=False)

ALL_METRICS: tuple[MetricSpec, ...] = (
    TIME_TO_DAEMONS, DAEMON_COVERAGE, MISSING_DAEMON_TASKS, EVICTIONS, GATE_OPEN_LATENCY,
    GATES_FAILED_OPEN, GATE_ATTRIBUTE_REJECTED, PLACEMENT_DECISIONS, DRAINS_STARTED, DRAINS_IN_PROGRESS,
    DRAIN_DURATION,
    DRAIN_OVERHEAD, TIER_DURATION, DEADLINES_MISSED, HEARTBEATS_SENT, LIFECYCLE_RESULTS,
    DRAINS_BLOCKED, ORDERING_VIOLATIONS, GUARANTEE_BREAKS, STUCK_LIFECYCLE_ACTIONS, EVENTS_IGNORED, EVENTS_MALFORMED,
    DUPLICATE_EVENTS, CHECKS_DEFERRED, EVENTS_UNPUBLISHED, DAEMONS_CANNOT_FIT, PREEMPT_GAVE_UP, SERVICES_WITHOUT_GATE,
    DAEMON_SERVICES_WITHOUT_TIER, CRITICAL_REPLACEMENTS, REPLACEMENTS_HELD,
    DRAINS_UNDER_BUDGET, DRAINS_WAITING, BUDGET_BYPASSES,
)
