"""parse_config: one validated configuration with its defaults; every error names the field and the fix."""

from __future__ import annotations

from typing import Any

import pytest
from daemon_guard.core.config import (
    CRITICAL_TAG,
    DRAIN_TIER_TAG,
    Config,
    ConfigError,
    DeadlinePolicy,
    DrainTier,
    Home,
    ManagedCluster,
    ManagedGroup,
    PlacementMode,
    SpotPolicy,
    StandalonePolicy,
    is_critical,
    parse_config,
    tier_of,
)

MINIMAL = {"clusters": [{"name": "prod", "autoScalingGroups": ["prod-asg"]}]}


def doc(**fields: Any) -> dict[str, Any]:
    """The minimal document with `fields` added or replaced."""
    return {**MINIMAL, **fields}


def cluster(**fields: Any) -> dict[str, Any]:
    """A document whose one cluster carries `fields`."""
    return {"clusters": [{"name": "prod", "autoScalingGroups": ["prod-asg"], **fields}]}


def group(**fields: Any) -> dict[str, Any]:
    """A document whose one group is an object carrying `fields`."""
    return {"clusters": [{"name": "prod", "autoScalingGroups": [{"name": "prod-asg", **fields}]}]}


def test_a_minimal_document_gets_the_documented_defaults() -> None:
    # GIVEN one cluster with one group / WHEN parsed
    config = parse_config(MINIMAL)
    # THEN every default is resolved: preempt, one daemon tier, 15-minute drain deadline, ...
    assert config == Config(clusters=(ManagedCluster("prod", (ManagedGroup("prod-asg"),)),))
    assert config.placement_mode is PlacementMode.PREEMPT
    assert config.drain_tiers == (DrainTier("daemons"),)
    assert config.drain_deadline_s == 900
    assert config.tier_deadline_s == 300
    assert config.standalone_policy is StandalonePolicy.WAIT
    assert config.spot_policy is SpotPolicy.DRAIN and config.rebalance_policy is SpotPolicy.REPORT
    assert config.gate_attribute == "daemon-guard.gate"
    group_ = config.group("prod-asg")
    assert group_ is not None
    assert (group_.launch_hook, group_.terminate_hook, group_.heartbeat_timeout_s) == (False, True, 300)
    assert (group_.launch_timeout_result, group_.coexist_with_managed_draining) == ("CONTINUE", False)


def test_a_full_document_is_read_field_by_field() -> None:
    # GIVEN every setting given / WHEN parsed
    config = parse_config(doc(
        placementMode="gate", gateAttribute="my.gate", gateTimeoutSeconds=60, launchGateTimeoutSeconds=300,
        drainTiers=[{"name": "agents", "services": ["xray"]}, {"name": "logs", "services": ["fluent-bit"]}],
        drainDeadlineSeconds=1800, tierDeadlineSeconds=120, standaloneTaskPolicy="stop", standaloneWaitSeconds=0,
        spot="report", rebalance="drain", reconcilePeriodMinutes=5, evictionBudgetPerService=3,
        evictionWindowSeconds=120, alarmEmail="ops@example.com",
        alarmTopicArn="arn:aws:sns:us-west-2:123456789012:alarms"))
    # THEN each value lands in its field
    assert config.placement_mode is PlacementMode.GATE
    assert config.drain_tiers == (DrainTier("agents", ("xray",)), DrainTier("logs", ("fluent-bit",)))
    assert (config.gate_attribute, config.gate_timeout_s, config.launch_gate_timeout_s) == ("my.gate", 60, 300)
    assert (config.drain_deadline_s, config.tier_deadline_s, config.standalone_wait_s) == (1800, 120, 0)
    assert config.standalone_policy is StandalonePolicy.STOP
    assert (config.spot_policy, config.rebalance_policy) == (SpotPolicy.REPORT, SpotPolicy.DRAIN)
    assert (config.reconcile_period_min, config.eviction_budget_per_service, config.eviction_window_s) == (5, 3, 120)
    assert config.alarm_email == "ops@example.com"
    assert config.cluster_of_group("prod-asg") == config.clusters[0]
    assert config.manages_cluster_arn("arn:aws:ecs:us-west-2:123456789012:cluster/prod")
    assert not config.manages_cluster_arn("arn:aws:ecs:us-west-2:123456789012:cluster/staging")


@pytest.mark.parametrize(("document", "field", "fix"), [
    pytest.param([], "(root)", "must be a JSON object", id="not an object"),
    pytest.param(doc(placementmode="gate"), "(root)", "unknown field(s) ['placementmode']", id="misspelt key"),
    pytest.param({}, "clusters", "list at least one cluster", id="no clusters"),
    pytest.param({"clusters": []}, "clusters", "list at least one cluster", id="empty clusters"),
    pytest.param({"clusters": ["prod"]}, "clusters[0]", "must be an object", id="cluster as a string"),
    pytest.param({"clusters": [{"autoScalingGroups": []}]}, "clusters[0].name", "must be an ECS cluster name",
                 id="cluster without a name"),
    pytest.param(cluster(asgs=[]), "clusters[0]", "unknown field(s) ['asgs']", id="unknown cluster field"),
    pytest.param(cluster(autoScalingGroups="prod-asg"), "clusters[0].autoScalingGroups", "must be a list",
                 id="groups not a list"),
    pytest.param({"clusters": [{"name": "a"}, {"name": "a"}]}, "clusters", "each cluster may appear once",
                 id="duplicate cluster"),
    pytest.param({"clusters": [{"name": "a", "autoScalingGroups": ["g"]}, {"name": "b", "autoScalingGroups": ["g"]}]},
                 "autoScalingGroups", "an ASG may belong to one cluster only", id="group in two clusters"),
    pytest.param(group(name="bad name!"), "clusters[0].autoScalingGroups[0].name", "must be an Auto Scaling group",
                 id="bad group name"),
    pytest.param(group(hook=True), "clusters[0].autoScalingGroups[0]", "unknown field(s) ['hook']",
                 id="unknown group field"),
    pytest.param(group(launchHook="yes"), "clusters[0].autoScalingGroups[0].launchHook", "must be true or false",
                 id="launchHook not a boolean"),
    pytest.param(group(launchTimeoutResult="DEFAULT"), "clusters[0].autoScalingGroups[0].launchTimeoutResult",
                 "must be CONTINUE or ABANDON", id="bad launch timeout result"),
    pytest.param(group(heartbeatTimeoutSeconds=10), "clusters[0].autoScalingGroups[0].heartbeatTimeoutSeconds",
                 "must be between 30 and 7200", id="heartbeat below the hook minimum"),
    pytest.param(doc(placementMode="prevent"), "placementMode", "must be one of preempt, gate, observe",
                 id="unknown placement mode"),
    pytest.param(doc(gateAttribute="ecs.gate"), "gateAttribute", "not starting with 'ecs.'",
                 id="gate attribute in the ecs. namespace"),
    pytest.param(doc(gateTimeoutSeconds=5), "gateTimeoutSeconds", "must be between 10 and 3600",
                 id="gate timeout too short"),
    pytest.param(doc(gateTimeoutSeconds=True), "gateTimeoutSeconds", "must be a whole number",
                 id="a boolean is not a number"),
    pytest.param(doc(drainDeadlineSeconds=30), "drainDeadlineSeconds", "must be between 60 and 172800",
                 id="drain deadline too short"),
    pytest.param(doc(drainDeadlineSeconds=600, tierDeadlineSeconds=900), "tierDeadlineSeconds",
                 "must not exceed drainDeadlineSeconds", id="tier deadline above the drain deadline"),
    pytest.param(doc(drainTiers=[]), "drainTiers", "must be a non-empty list", id="no tiers"),
    pytest.param(doc(drainTiers=[{"name": "settle"}]), "drainTiers[0].name", "drain's own phase names",
                 id="tier named as a drain phase"),
    pytest.param(doc(drainTiers=[{"services": ["x"]}]), "drainTiers[0]", "non-empty 'name'", id="tier without name"),
    pytest.param(doc(drainTiers=[{"name": "a", "services": "x"}]), "drainTiers[0].services",
                 "must be a list of daemon service names", id="tier services not a list"),
    pytest.param(doc(drainTiers=[{"name": "a", "services": ["x"]}, {"name": "b", "services": ["x"]}]),
                 "drainTiers[1].services", "already belong to an earlier tier", id="daemon in two tiers"),
    pytest.param(doc(drainTiers=[{"name": "a"}, {"name": "a"}]), "drainTiers", "tier names must be unique",
                 id="duplicate tier names"),
    pytest.param(doc(standaloneTaskPolicy="kill"), "standaloneTaskPolicy", "must be one of wait, stop, ignore",
                 id="unknown standalone policy"),
    pytest.param(doc(spot="ignore"), "spot", "must be one of drain, report", id="unknown spot policy"),
    pytest.param(doc(agentStopTimeoutSeconds=0), "agentStopTimeoutSeconds", "must be between 1 and 3600",
                 id="agent stop timeout of zero"),
    pytest.param(doc(agentStopTimeoutSeconds="30s"), "agentStopTimeoutSeconds", "must be a whole number",
                 id="agent stop timeout as the agent's duration text"),
    pytest.param(doc(drainDeadlinePolicy="kill"), "drainDeadlinePolicy", "must be one of order, force",
                 id="unknown drain deadline policy"),
    pytest.param(doc(alarmEmail="ops"), "alarmEmail", "must be an e-mail address", id="bad e-mail"),
    pytest.param(doc(alarmTopicArn="alarms"), "alarmTopicArn", "must be an SNS topic ARN", id="bad topic"),
])
def test_every_error_names_the_field_and_the_fix(document: Any, field: str, fix: str) -> None:
    # GIVEN a document with one mistake / WHEN parsed
    with pytest.raises(ConfigError) as error:
        parse_config(document)
    # THEN the message names the field at fault and what to do
    message = str(error.value)
    assert message.startswith(f"daemon-guard config: {field}: ")
    assert fix in message


TIERS = (DrainTier("agents", ("xray",)), DrainTier("metrics", ("prometheus",)), DrainTier("logs", ("fluent-bit",)))


@pytest.mark.parametrize(("service", "tags", "expected"), [
    pytest.param("fluent-bit", {}, 2, id="configured list"),
    pytest.param("xray", {}, 0, id="configured list, first tier"),
    pytest.param("fluent-bit", {DRAIN_TIER_TAG: "agents"}, 0, id="tag by name wins over the list"),
    pytest.param("datadog", {DRAIN_TIER_TAG: "1"}, 1, id="tag by index"),
    pytest.param("datadog", {DRAIN_TIER_TAG: "7"}, 0, id="tag index out of range: default tier"),
    pytest.param("prometheus", {DRAIN_TIER_TAG: "nope"}, 1, id="unknown tag: the configured list"),
    pytest.param("datadog", {}, 0, id="unlisted, untagged daemon: tier 0"),
])
def test_a_daemons_tier_comes_from_its_tag_then_the_list_then_tier_0(service: str, tags: dict[str, str],
                                                                     expected: int) -> None:
    # GIVEN three configured tiers / WHEN a daemon's tier is asked / THEN tag, list, default, in that order
    assert tier_of(service, tags, TIERS) == expected


def test_critical_daemons_and_the_replacement_budget_are_read_with_their_defaults() -> None:
    # GIVEN no setting, then both set / WHEN parsed / THEN none critical and 5 an hour, then what was given
    assert (parse_config(MINIMAL).critical_daemons, parse_config(MINIMAL).max_replacements_per_hour) == (
        frozenset(), 5)
    config = parse_config(doc(criticalDaemons=["cwagent", "fluent-bit"], maxReplacementsPerHour=0))
    assert (config.critical_daemons, config.max_replacements_per_hour) == (frozenset({"cwagent", "fluent-bit"}), 0)


@pytest.mark.parametrize(("fields", "message"), [
    pytest.param({"criticalDaemons": "cwagent"}, "criticalDaemons: must be a list of daemon service names",
                 id="a name, not a list"),
    pytest.param({"criticalDaemons": ["cw agent"]}, "criticalDaemons: must be a list of daemon service names",
                 id="not a service name"),
    pytest.param({"maxReplacementsPerHour": -1}, "maxReplacementsPerHour: must be between 0 and 1000",
                 id="negative budget"),
])
def test_a_bad_critical_setting_names_the_field_and_the_fix(fields: dict[str, Any], message: str) -> None:
    # GIVEN a bad value / WHEN parsed / THEN the error names the field and what it must be
    with pytest.raises(ConfigError, match=message):
        parse_config(doc(**fields))


@pytest.mark.parametrize(("tags", "listed", "expected"), [
    pytest.param({}, frozenset({"cwagent"}), True, id="listed"),
    pytest.param({}, frozenset(), False, id="neither listed nor tagged"),
    pytest.param({CRITICAL_TAG: "true"}, frozenset(), True, id="tagged true"),
    pytest.param({CRITICAL_TAG: "TRUE "}, frozenset(), True, id="tag value in any case"),
    pytest.param({CRITICAL_TAG: "false"}, frozenset({"cwagent"}), False, id="tagged false wins over the list"),
    pytest.param({CRITICAL_TAG: "yes"}, frozenset({"cwagent"}), True, id="unreadable tag: the list decides"),
])
def test_a_daemon_is_critical_by_its_tag_then_the_list(tags: dict[str, str], listed: frozenset[str],
                                                       expected: bool) -> None:
    # GIVEN a daemon's tags and the configured list / WHEN asked / THEN the tag wins, then the list
    assert is_critical("cwagent", tags, listed) is expected


# --- home (replay's foreign-event rules) ----------------------------------------------------------


def test_the_home_is_unset_by_default_and_read_when_given() -> None:
    # GIVEN no home, then a full one / WHEN parsed / THEN unset, then exactly that home
    assert parse_config(MINIMAL).home == Home()
    config = parse_config(doc(home={"partition": "aws-cn", "account": "111122223333", "region": "cn-north-1"}))
    assert config.home == Home(partition="aws-cn", account="111122223333", region="cn-north-1")
    assert parse_config(doc(home={"region": "us-east-1"})).home == Home(region="us-east-1")


@pytest.mark.parametrize(
    ("home", "message"),
    [
        ("us-east-1", "home: must be an object"),
        ({"acount": "111122223333"}, "home: unknown field(s) ['acount']"),
        ({"account": "1111"}, "home.account: expected an AWS account id (12 digits), got '1111'"),
        ({"account": 111122223333}, "home.account: expected an AWS account id (12 digits), got int"),
        ({"region": "us-east-1b"}, "home.region: expected an AWS Region name"),
        ({"region": "zz-nowhere-1"}, "home.region: zz-nowhere-1 is in no AWS partition"),
        ({"partition": "AWS"}, "home.partition: expected an AWS partition"),
        ({"partition": "aws", "region": "cn-north-1"}, "home.partition: aws does not hold region cn-north-1"),
    ],
)
def test_a_bad_home_names_the_field(home: object, message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_config(doc(home=home))
    assert f"daemon-guard config: {message}" in str(refused.value)


@pytest.mark.parametrize(("fields", "agent_stop_timeout_s", "deadline_policy"), [
    pytest.param({}, 30, DeadlinePolicy.ORDER, id="defaults: the agent's 30 s, the deadline only stops early"),
    pytest.param({"agentStopTimeoutSeconds": 120, "drainDeadlinePolicy": "force"}, 120, DeadlinePolicy.FORCE,
                 id="an agent raised to 2 minutes, a deadline that forces the drain on"),
])
def test_the_agent_stop_timeout_and_the_deadline_policy_are_read(fields: dict[str, Any], agent_stop_timeout_s: int,
                                                                 deadline_policy: DeadlinePolicy) -> None:
    # GIVEN what the operator's agents run with (ECS_CONTAINER_STOP_TIMEOUT) and what the deadline may do
    config = parse_config(doc(**fields))
    # THEN both land in the configuration
    assert config.agent_stop_timeout_s == agent_stop_timeout_s
    assert config.drain_deadline_policy is deadline_policy


def test_every_drain_phase_label_other_than_tier_is_reserved_as_a_tier_name() -> None:
    # GIVEN the drain's phases WHEN a tier could be named like one THEN the config refuses that name
    from daemon_guard.core.config import RESERVED_TIER_NAMES
    from daemon_guard.core.drain import PHASE_NAMES

    assert set(PHASE_NAMES) - {"tier"} == set(RESERVED_TIER_NAMES)
