"""The validated configuration, back as the canonical JSON document the Lambdas receive.

`parse_config` turns the cdk.json context into a `Config` with every default resolved;
`config_to_doc` writes that `Config` back in the same format, so that
``parse_config(config_to_doc(c)) == c`` and the Lambdas read exactly what synth validated,
defaults included, through the ``DAEMON_GUARD_CONFIG`` environment variable.
"""

from __future__ import annotations

import json
from typing import Any

from daemon_guard.core.config import Config, ConfigError, ManagedGroup
from daemon_guard.core.drain_budget import rule_doc

# Lambda allows 4 KB for all environment variables of a function together.
LAMBDA_ENVIRONMENT_LIMIT_BYTES = 4096


def _group_doc(group: ManagedGroup) -> dict[str, Any]:
    return {
        "name": group.name,
        "launchHook": group.launch_hook,
        "terminateHook": group.terminate_hook,
        "launchTimeoutResult": group.launch_timeout_result,
        "coexistWithManagedDraining": group.coexist_with_managed_draining,
        "heartbeatTimeoutSeconds": group.heartbeat_timeout_s,
    }


def config_to_doc(config: Config) -> dict[str, Any]:
    """Return the configuration document (cdk.json context format) of a validated `Config`."""
    doc: dict[str, Any] = {
        "clusters": [
            {"name": c.name, "autoScalingGroups": [_group_doc(g) for g in c.groups]}
            for c in config.clusters
        ],
        "placementMode": config.placement_mode.value,
        "drainOrder": config.drain_order.value,
        "gateAttribute": config.gate_attribute,
        "gateTimeoutSeconds": config.gate_timeout_s,
        "drainTiers": [{"name": t.name, "services": list(t.services)} for t in config.drain_tiers],
        "drainDeadlineSeconds": config.drain_deadline_s,
        "tierDeadlineSeconds": config.tier_deadline_s,
        "standaloneTaskPolicy": config.standalone_policy.value,
        "standaloneWaitSeconds": config.standalone_wait_s,
        "spot": config.spot_policy.value,
        "rebalance": config.rebalance_policy.value,
        "reconcilePeriodMinutes": config.reconcile_period_min,
        "auditCycleMinutes": config.audit_cycle_min,
        "evictionBudgetPerService": config.eviction_budget_per_service,
        "evictionWindowSeconds": config.eviction_window_s,
        "preemptMaxTries": config.preempt_max_tries,
        "preemptMaxGiveUps": config.preempt_max_give_ups,
        "drainDeadlinePolicy": config.drain_deadline_policy.value,
        "agentStopTimeoutSeconds": config.agent_stop_timeout_s,
    }
    doc.update(_exit_doc(config))
    if config.critical_daemons:
        doc["criticalDaemons"] = sorted(config.critical_daemons)
    doc["maxReplacementsPerHour"] = config.max_replacements_per_hour
    if config.drain_budget:
        doc["drainBudget"] = [rule_doc(r) for r in config.drain_budget]
    if config.alarm_email is not None:
        doc["alarmEmail"] = config.alarm_email
    if config.alarm_topic_arn is not None:
        doc["alarmTopicArn"] = config.alarm_topic_arn
    home = {k: v for k, v in (("partition", config.home.partition), ("account", config.home.account),
                              ("region", config.home.region)) if v is not None}
    if home:
        doc["home"] = home
    return doc


def _exit_doc(config: Config) -> dict[str, Any]:
    """The keys of exits outside Auto Scaling (AWS Health scheduled changes, EC2 stops)."""
    doc: dict[str, Any] = {"scheduledChange": config.scheduled_change_policy.value,
                           "instanceStateChange": config.state_change_policy.value,
                           "stateChangeDeadlineSeconds": config.state_change_deadline_s,
                           "drainMode": config.drain_mode.value}
    if config.scheduled_change_lead_s is not None:
        doc["scheduledChangeLeadSeconds"] = config.scheduled_change_lead_s
    return doc


def config_env_value(config: Config) -> str:
    """The compact JSON for ``DAEMON_GUARD_CONFIG``; refuses a document Lambda could not hold.

    Raises
    ------
    ConfigError
        When the document alone would exceed Lambda's 4 KB environment limit.
    """
    value = json.dumps(config_to_doc(config), separators=(",", ":"), sort_keys=True)
    # Leave room for the other variables (table name, two alias ARNs, Powertools settings).
    budget = LAMBDA_ENVIRONMENT_LIMIT_BYTES - 1024
    if len(value.encode()) > budget:
        raise ConfigError(
            f"daemon-guard config: (root): the validated document is {len(value.encode())} bytes, more "
            f"than the {budget} bytes Lambda's environment can hold; split the clusters over two "
            "deployments (two stacks) or shorten drainTiers[].services"
        )
    return value
