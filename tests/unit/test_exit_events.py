"""Exits outside Auto Scaling: AWS Health EC2 scheduled changes and EC2 state changes, parsed and routed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from daemon_guard.adapters.parsing import parse_event
from daemon_guard.core.config import (
    Config,
    ConfigError,
    ManagedCluster,
    ScheduledChangePolicy,
    SpotPolicy,
    parse_config,
)
from daemon_guard.core.events import Ignored, InstanceStateChanged, Malformed, ScheduledChange
from daemon_guard.core.intake import route
from daemon_guard.core.patterns import event_patterns

from sim.eventbridge import matches
from tests.unit.conftest import load_event

HEALTH = "aws-health-ec2-scheduled-change.aws-node-termination-handler.json"
STATE_NTH = "ec2-instance-state-change-notification.aws-node-termination-handler.json"
STATE_DOCS = "ec2-instance-state-change-notification.awsdocs-ec2-userguide.json"
CONFIG = Config(clusters=(ManagedCluster("default"),))


ACCOUNT = "123456789012"


def health(**detail: Any) -> dict[str, Any]:
    """The AWS Health EC2 scheduled-change sample, from a real account, with `detail` fields overridden."""
    raw = load_event(HEALTH)
    raw["account"] = ACCOUNT  # the documented sample says "account id"
    raw["detail"].update(detail)
    return raw


def state(value: str) -> dict[str, Any]:
    """The EC2 state-change sample in another state, at a time after 2016 (the sample is dated 2015)."""
    raw = load_event(STATE_NTH)
    raw["time"] = "2026-01-05T08:00:00Z"
    raw["detail"]["state"] = value
    return raw


def test_the_documented_health_sample_as_printed_is_malformed_for_its_placeholder_account() -> None:
    # GIVEN the sample exactly as documented ("account": "account id") / WHEN parsed
    event = parse_event(load_event(HEALTH))
    # THEN it is refused, naming the field
    assert isinstance(event, Malformed) and event.reason.startswith("account:")


def test_a_health_scheduled_change_names_its_instances_and_start_time() -> None:
    # GIVEN the documented EC2 scheduled change from a real account / WHEN parsed
    event = parse_event(health())
    # THEN the affected instance and the RFC 1123 start time come out as values
    assert isinstance(event, ScheduledChange)
    assert event.ec2_instance_ids == ("i-12345678",)
    assert event.start_time == datetime(2016, 6, 5, 15, 10, 9, tzinfo=UTC)
    assert event.event_type_code == "AWS_EC2_DEDICATED_HOST_NETWORK_MAINTENANCE_SCHEDULED"


def test_a_health_start_time_may_also_be_iso_8601() -> None:
    event = parse_event(health(startTime="2026-01-05T08:00:00Z"))
    assert isinstance(event, ScheduledChange) and event.start_time == datetime(2026, 1, 5, 8, tzinfo=UTC)


def test_a_health_start_time_that_is_no_time_is_malformed_and_says_where() -> None:
    event = parse_event(health(startTime="next Tuesday"))
    assert isinstance(event, Malformed) and "detail.startTime" in event.reason


def test_health_entities_that_are_not_instances_are_left_out_and_duplicates_collapse() -> None:
    event = parse_event(health(affectedEntities=[{"entityValue": "h-0123"}, {"entityValue": "i-1234abcd"},
                                                 {"entityValue": "i-1234abcd"}, {"entityValue": "i-5678ef01"}]))
    assert isinstance(event, ScheduledChange) and event.ec2_instance_ids == ("i-1234abcd", "i-5678ef01")


@pytest.mark.parametrize("hostile", ["i-*", "i-1", "i-x or agentConnected == true", "i-1234abcd\x00"])
def test_a_health_entity_that_looks_like_an_instance_but_is_none_makes_the_event_malformed(hostile: str) -> None:
    # GIVEN an affected entity that starts like an instance id but is not one / WHEN parsed
    event = parse_event(health(affectedEntities=[{"entityValue": "i-1234abcd"}, {"entityValue": hostile}]))
    # THEN nothing of the event is acted on, and the reason names the field
    assert isinstance(event, Malformed) and "affectedEntities" in event.reason


def test_health_affected_entities_are_bounded() -> None:
    many = [{"entityValue": f"i-{n:08x}"} for n in range(5001)]
    event = parse_event(health(affectedEntities=many))
    assert isinstance(event, Malformed) and "affectedEntities" in event.reason


@pytest.mark.parametrize(("detail", "why"), [
    ({"service": "RDS"}, "AWS Health RDS scheduledChange"),
    ({"eventTypeCategory": "issue"}, "AWS Health EC2 issue"),
])
def test_health_events_for_other_services_or_categories_are_ignored(detail: dict[str, str], why: str) -> None:
    event = parse_event(health(**detail))
    assert isinstance(event, Ignored) and why in event.reason


def test_the_ec2_state_change_sample_parses_in_every_documented_state() -> None:
    for value in ("pending", "running", "stopping", "stopped", "shutting-down", "terminated"):
        event = parse_event(state(value))
        assert isinstance(event, InstanceStateChanged) and event.state == value
        assert event.ec2_instance_id == "i-abcd1111"


def test_an_undocumented_ec2_state_is_malformed() -> None:
    event = parse_event(state("rebooting"))
    assert isinstance(event, Malformed) and "detail.state" in event.reason


def test_the_ec2_guide_sample_lacks_version_which_every_eventbridge_event_carries() -> None:
    # GIVEN the EC2 User Guide's sample, which elides `version` / WHEN parsed / THEN Malformed, naming it
    event = parse_event(load_event(STATE_DOCS))
    assert isinstance(event, Malformed) and event.reason.startswith("version")
    # and with the envelope's version it is the same event as aws-node-termination-handler's copy
    fixed = {**load_event(STATE_DOCS), "version": "0"}
    assert isinstance(parse_event(fixed), InstanceStateChanged)


@pytest.mark.parametrize(("value", "kind"), [
    ("stopping", "drain"), ("shutting-down", "drain"),
    ("pending", "ignore"), ("running", "ignore"), ("stopped", "ignore"), ("terminated", "ignore"),
])
def test_only_stopping_and_shutting_down_start_a_drain(value: str, kind: str) -> None:
    r = route(parse_event(state(value)), CONFIG)
    assert r.kind == kind
    if kind == "drain":
        assert r.trigger == "ec2-state" and r.ec2_instance_id == "i-abcd1111"


def test_a_scheduled_change_routes_every_affected_instance_to_a_drain() -> None:
    r = route(parse_event(health(affectedEntities=[{"entityValue": "i-1234abcd"}, {"entityValue": "i-5678ef01"}])),
              CONFIG)
    assert (r.kind, r.trigger, r.ec2_instance_ids) == ("drain", "scheduled-change", ("i-1234abcd", "i-5678ef01"))


@pytest.mark.parametrize(("detail", "why"), [
    ({"statusCode": "closed"}, "closed"),
    ({"affectedEntities": []}, "names no EC2 instance"),
])
def test_a_closed_scheduled_change_or_one_without_instances_is_ignored(detail: dict[str, Any], why: str) -> None:
    r = route(parse_event(health(**detail)), CONFIG)
    assert r.kind == "ignore" and why in r.reason


def test_the_rules_match_the_samples_that_matter_and_nothing_else() -> None:
    # GIVEN the patterns / WHEN matched against the samples / THEN only leaving states and EC2 changes match
    patterns = event_patterns(CONFIG, partition="aws", region="us-east-1", account="123456789012")
    health_rule, state_rule = patterns["scheduled-change"], patterns["instance-state"]
    assert matches(health_rule, load_event(HEALTH))
    assert not matches(health_rule, health(service="RDS"))
    assert not matches(health_rule, health(eventTypeCategory="issue"))
    assert matches(state_rule, state("stopping")) and matches(state_rule, state("shutting-down"))
    assert not any(matches(state_rule, state(v)) for v in ("pending", "running", "stopped", "terminated"))


def test_exit_options_default_to_replace_at_once_and_drain_on_stop() -> None:
    config = parse_config({"clusters": [{"name": "prod"}]})
    assert config.scheduled_change_policy is ScheduledChangePolicy.REPLACE
    assert config.scheduled_change_lead_s is None
    assert config.state_change_policy is SpotPolicy.DRAIN
    assert config.state_change_deadline_s == 90


def test_exit_options_are_validated_with_the_field_named() -> None:
    with pytest.raises(ConfigError, match="scheduledChange"):
        parse_config({"clusters": [{"name": "prod"}], "scheduledChange": "reboot"})
    with pytest.raises(ConfigError, match="scheduledChangeLeadSeconds"):
        parse_config({"clusters": [{"name": "prod"}], "scheduledChangeLeadSeconds": -1})
    lead = parse_config({"clusters": [{"name": "prod"}], "scheduledChangeLeadSeconds": 3600})
    assert lead.scheduled_change_lead_s == 3600
