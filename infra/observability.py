"""Dashboard and alarms, built from the metric catalogue in ``daemon_guard.core.metrics``.

The layout is data (`PANELS`, `GUARD_ALARMS`) so that a test can hold it against the catalogue
without a synth: `metrics_named_by_dashboard` lists every (metric name, dimension names) the
dashboard and the alarms read. Metrics are made by one factory, `guard_metric`, separate from the
widgets and alarms that use them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct
from daemon_guard.core import metrics as m
from daemon_guard.core.config import Config
from daemon_guard.core.metrics import CLUSTER_DIMENSION, NAMESPACE, MetricSpec

COVERAGE_TARGET_PERCENT = 100.0
DRAIN_OVERHEAD_TARGET_PER_TIER_S = 2.0


@dataclass(frozen=True)
class Panel:
    """One dashboard graph: catalogue metrics, one line per cluster (and per extra dimension value)."""

    title: str
    specs: tuple[MetricSpec, ...]
    statistics: tuple[str, ...] = ("Sum",)
    annotation: str | None = None  # "coverage" or "drain-overhead": a target line
    width: int = 8


PANELS: tuple[Panel, ...] = (
    Panel("Daemon coverage (%)", (m.DAEMON_COVERAGE,), ("Minimum",), annotation="coverage"),
    Panel("Missing daemon tasks", (m.MISSING_DAEMON_TASKS,), ("Maximum",)),
    Panel("Time to daemons p50 / p99 (s)", (m.TIME_TO_DAEMONS,), ("p50", "p99")),
    Panel("Evictions / instances preempt gave up on", (m.EVICTIONS, m.PREEMPT_GAVE_UP)),
    Panel("Gates failed open / gate attribute rejected", (m.GATES_FAILED_OPEN, m.GATE_ATTRIBUTE_REJECTED)),
    Panel("Instances replaced for a critical daemon / replacements held",
          (m.CRITICAL_REPLACEMENTS, m.REPLACEMENTS_HELD)),
    Panel("Instances whose daemons cannot fit", (m.DAEMONS_CANNOT_FIT,), ("Maximum",)),
    Panel("Services without their constraint (gate / tier)", (m.SERVICES_WITHOUT_GATE, m.DAEMON_SERVICES_WITHOUT_TIER),
          ("Maximum",)),
    Panel("Gate open latency p50 / p99 (s)", (m.GATE_OPEN_LATENCY,), ("p50", "p99")),
    Panel("Placement decisions by mode", (m.PLACEMENT_DECISIONS,)),
    Panel("Drains started / in progress", (m.DRAINS_STARTED, m.DRAINS_IN_PROGRESS), ("Maximum",)),
    Panel("Drain budget: draining / waiting", (m.DRAINS_UNDER_BUDGET, m.DRAINS_WAITING), ("Maximum",)),
    Panel("Drain budget bypasses", (m.BUDGET_BYPASSES,)),
    Panel("Drain duration p50 / p99 (s)", (m.DRAIN_DURATION,), ("p50", "p99")),
    Panel("Drain overhead p50 / p99 (s)", (m.DRAIN_OVERHEAD,), ("p50", "p99"), annotation="drain-overhead"),
    Panel("Tier duration, max per tier (s)", (m.TIER_DURATION,), ("Maximum",)),
    Panel("Deadlines missed / drains blocked", (m.DEADLINES_MISSED, m.DRAINS_BLOCKED)),
    Panel("Lifecycle results", (m.LIFECYCLE_RESULTS,)),
    Panel("Heartbeats sent", (m.HEARTBEATS_SENT,)),
    Panel("Stuck lifecycle actions / ordering violations",
          (m.STUCK_LIFECYCLE_ACTIONS, m.ORDERING_VIOLATIONS), ("Maximum",)),
    Panel("Drain guarantee breaks (hard ends)", (m.GUARANTEE_BREAKS,)),
    Panel("Malformed events", (m.EVENTS_MALFORMED,)),
)


@dataclass(frozen=True)
class GuardAlarm:
    """An alarm on a catalogue metric, one per managed cluster."""

    key: str
    spec: MetricSpec
    statistic: str
    comparison: cw.ComparisonOperator
    threshold: float
    evaluation_periods: int
    description: str
    missing: cw.TreatMissingData = cw.TreatMissingData.NOT_BREACHING


GUARD_ALARMS: tuple[GuardAlarm, ...] = (
    GuardAlarm("Coverage", m.DAEMON_COVERAGE, "Maximum", cw.ComparisonOperator.LESS_THAN_THRESHOLD,
               COVERAGE_TARGET_PERCENT, 5, "daemon coverage below 100% for 5 minutes",
               cw.TreatMissingData.MISSING),
    GuardAlarm("DeadlineMissed", m.DEADLINES_MISSED, "Sum",
               cw.ComparisonOperator.GREATER_THAN_THRESHOLD, 0, 1, "a drain deadline forced the order"),
    GuardAlarm("DrainBlocked", m.DRAINS_BLOCKED, "Sum",
               cw.ComparisonOperator.GREATER_THAN_THRESHOLD, 0, 1, "a drain cannot progress without help"),
    GuardAlarm("StuckLifecycleAction", m.STUCK_LIFECYCLE_ACTIONS, "Maximum",
               cw.ComparisonOperator.GREATER_THAN_THRESHOLD, 0, 1,
               "a lifecycle action waits with no live workflow (it will time out)"),
    GuardAlarm("GateFailedOpen", m.GATES_FAILED_OPEN, "Sum",
               cw.ComparisonOperator.GREATER_THAN_THRESHOLD, 0, 1,
               "a placement gate opened by timeout with daemons missing"),
    GuardAlarm("CriticalReplacementHeld", m.REPLACEMENTS_HELD, "Sum",
               cw.ComparisonOperator.GREATER_THAN_THRESHOLD, 0, 1,
               "an instance lacks a critical daemon past the gate timeout and maxReplacementsPerHour is spent: "
               "its gate stays shut (no replicas land) until the budget allows a replacement"),
    GuardAlarm("DaemonsCannotFit", m.DAEMONS_CANNOT_FIT, "Maximum",
               cw.ComparisonOperator.GREATER_THAN_THRESHOLD, 0, 1,
               "an instance (type) cannot hold its eligible daemons even when empty: no eviction can help"),
    GuardAlarm("PreemptGaveUp", m.PREEMPT_GAVE_UP, "Sum",
               cw.ComparisonOperator.GREATER_THAN_THRESHOLD, 0, 1,
               "preempt stopped evicting on an instance: replicas take back the room it frees before ECS places "
               "the daemons; set placementMode gate (the gate constraint on replica services)"),
    GuardAlarm("OrderingViolation", m.ORDERING_VIOLATIONS, "Sum",
               cw.ComparisonOperator.GREATER_THAN_THRESHOLD, 0, 1, "self-check: a drain broke the stop order"),
    GuardAlarm("GuaranteeBroken", m.GUARANTEE_BREAKS, "Sum",
               cw.ComparisonOperator.GREATER_THAN_THRESHOLD, 0, 1,
               "a hard end (Spot notice, heartbeats' end, forced deadline) moved a drain on with tasks not STOPPED"),
)


def _dimension_names(spec: MetricSpec) -> frozenset[str]:
    return frozenset((CLUSTER_DIMENSION, *spec.extra_dimensions))


def metrics_named_by_dashboard() -> set[tuple[str, frozenset[str]]]:
    """Every (metric name, dimension names) in namespace DaemonGuard the dashboard or alarms read."""
    named = {(s.name, _dimension_names(s)) for p in PANELS for s in p.specs}
    named |= {(a.spec.name, _dimension_names(a.spec)) for a in GUARD_ALARMS}
    return named


def _search_literal(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def guard_metric(
    spec: MetricSpec,
    cluster: str,
    *,
    statistic: str = "Sum",
    period: cdk.Duration | None = None,
    label: str | None = None,
) -> cw.IMetric:
    """The one factory for catalogue metrics.

    A metric with only the ``Cluster`` dimension is a plain metric; one with extra dimensions
    (tier, lifecycle result, placement mode) is a SEARCH over those dimensions, so every value the
    code emits gets its own line without the dashboard knowing the values in advance.
    Default period: 1 minute.
    """
    period = period or cdk.Duration.minutes(1)
    if not spec.extra_dimensions:
        return cw.Metric(
            namespace=NAMESPACE, metric_name=spec.name, dimensions_map={CLUSTER_DIMENSION: cluster},
            statistic=statistic, period=period, label=label,
        )
    schema = ",".join((NAMESPACE, CLUSTER_DIMENSION, *spec.extra_dimensions))
    query = f'{{{schema}}} MetricName="{spec.name}" {CLUSTER_DIMENSION}="{_search_literal(cluster)}"'
    return cw.MathExpression(
        expression=f"SEARCH('{query}', '{statistic}', {int(period.to_seconds())})",
        using_metrics={}, period=period, label=label or "",
    )


@dataclass(frozen=True, kw_only=True)
class ObservabilityProps:
    """What the dashboard and alarms watch."""

    config: Config
    topic: sns.ITopic
    functions: Mapping[str, lambda_.IFunction]
    rules: Mapping[str, events.IRule]
    dlq: sqs.IQueue
    dashboard_name: str | None = None  # Default: generated by CloudFormation


class DaemonGuardObservability(Construct):
    """The deployment's dashboard, and alarms on the guard, the functions, the rules and the DLQ."""

    def __init__(self, scope: Construct, construct_id: str, props: ObservabilityProps) -> None:
        super().__init__(scope, construct_id)
        self._props = props
        clusters = [c.name for c in props.config.clusters]
        tiers = len(props.config.drain_tiers)
        self.dashboard = cw.Dashboard(
            self, "Dashboard", dashboard_name=props.dashboard_name,
            default_interval=cdk.Duration.hours(3),
        )
        self.dashboard.add_widgets(cw.TextWidget(
            markdown=f"# daemon-guard\nClusters: {', '.join(clusters)}. Targets: coverage "
                     f"{COVERAGE_TARGET_PERCENT:.0f}%, drain overhead {DRAIN_OVERHEAD_TARGET_PER_TIER_S:g} s "
                     f"per tier ({tiers} tier(s)).",
            width=24, height=2,
        ))
        widgets: list[cw.IWidget] = [self._panel(p, clusters, tiers) for p in PANELS]
        widgets += self._plumbing_widgets()
        for row in range(0, len(widgets), 3):
            self.dashboard.add_widgets(*widgets[row:row + 3])
        self.alarms: list[cw.Alarm] = self._alarms(clusters)

    def _panel(self, panel: Panel, clusters: Sequence[str], tiers: int) -> cw.GraphWidget:
        lines = [
            guard_metric(spec, cluster, statistic=stat,
                         label=None if spec.extra_dimensions else f"{cluster} {spec.name} {stat}")
            for spec in panel.specs for cluster in clusters for stat in panel.statistics
        ]
        annotations: list[cw.HorizontalAnnotation] = []
        left_axis: cw.YAxisProps | None = None
        if panel.annotation == "coverage":
            annotations.append(cw.HorizontalAnnotation(value=COVERAGE_TARGET_PERCENT, label="target 100%",
                                                       color=cw.Color.GREEN))
            left_axis = cw.YAxisProps(min=0, max=100, show_units=False)
        elif panel.annotation == "drain-overhead":
            annotations.append(cw.HorizontalAnnotation(
                value=DRAIN_OVERHEAD_TARGET_PER_TIER_S * tiers,
                label=f"target {DRAIN_OVERHEAD_TARGET_PER_TIER_S:g} s x {tiers} tier(s)", color=cw.Color.ORANGE))
        return cw.GraphWidget(title=panel.title, left=lines, left_annotations=annotations or None,
                              left_y_axis=left_axis, width=panel.width, height=6)

    def _plumbing_widgets(self) -> list[cw.IWidget]:
        fns = self._props.functions
        five = cdk.Duration.minutes(5)
        rule_failures = [
            cw.Metric(namespace="AWS/Events", metric_name="FailedInvocations",
                      dimensions_map={"RuleName": rule.rule_name}, statistic="Sum", period=five, label=key)
            for key, rule in self._props.rules.items()
        ]
        return [
            cw.GraphWidget(title="Lambda errors", width=8, height=6,
                           left=[f.metric_errors(period=five, label=k) for k, f in fns.items()]),
            cw.GraphWidget(title="Lambda throttles", width=8, height=6,
                           left=[f.metric_throttles(period=five, label=k) for k, f in fns.items()]),
            cw.GraphWidget(title="Lambda duration p50 / p99 (ms)", width=8, height=6,
                           left=[f.metric_duration(statistic=s, period=five, label=f"{k} {s}")
                                 for k, f in fns.items() for s in ("p50", "p99")]),
            cw.GraphWidget(title="EventBridge failed invocations", width=8, height=6, left=rule_failures),
            cw.GraphWidget(title="Dead-letter queue depth", width=8, height=6,
                           left=[self._props.dlq.metric_approximate_number_of_messages_visible(
                               period=cdk.Duration.minutes(1), statistic="Maximum", label="visible")]),
        ]

    def _alarms(self, clusters: Sequence[str]) -> list[cw.Alarm]:
        action = cw_actions.SnsAction(self._props.topic)
        alarms: list[cw.Alarm] = []

        def add(alarm: cw.Alarm) -> None:
            alarm.add_alarm_action(action)
            alarms.append(alarm)

        add(cw.Alarm(
            self, "DlqNotEmpty", alarm_description="daemon-guard: events or invocations reached the DLQ",
            metric=self._props.dlq.metric_approximate_number_of_messages_visible(
                period=cdk.Duration.minutes(1), statistic="Maximum"),
            threshold=0, evaluation_periods=1,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        ))
        for index, cluster in enumerate(clusters):
            for spec in GUARD_ALARMS:
                add(cw.Alarm(
                    self, f"{spec.key}{index}",
                    alarm_description=f"daemon-guard {cluster}: {spec.description}",
                    metric=guard_metric(spec.spec, cluster, statistic=spec.statistic),
                    threshold=spec.threshold, evaluation_periods=spec.evaluation_periods,
                    datapoints_to_alarm=spec.evaluation_periods,
                    comparison_operator=spec.comparison, treat_missing_data=spec.missing,
                ))
        for key, fn in self._props.functions.items():
            add(cw.Alarm(
                self, f"Errors{key.title().replace('-', '')}",
                alarm_description=f"daemon-guard: the {key} function reported errors",
                metric=fn.metric_errors(period=cdk.Duration.minutes(5), statistic="Sum"),
                threshold=0, evaluation_periods=1,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            ))
        for key, rule in self._props.rules.items():
            add(cw.Alarm(
                self, f"FailedInvocations{key.title().replace('-', '')}",
                alarm_description=f"daemon-guard: the {key} rule failed to invoke its target",
                metric=cw.Metric(namespace="AWS/Events", metric_name="FailedInvocations",
                                 dimensions_map={"RuleName": rule.rule_name}, statistic="Sum",
                                 period=cdk.Duration.minutes(5)),
                threshold=0, evaluation_periods=1,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            ))
        return alarms
