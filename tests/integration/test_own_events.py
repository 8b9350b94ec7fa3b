"""The guard's own events: every one it publishes holds to its documented schema; publishing never fails work."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from daemon_guard import bootstrap
from daemon_guard.core import guard_events as ge
from daemon_guard.core.config import StandalonePolicy, parse_config
from daemon_guard.core.drain import (
    DrainPolicy,
    DrainProgress,
    DrainRecord,
    DrainRequest,
    DrainStep,
)
from daemon_guard.services.notify import announce, drain_step_events
from jsonschema import Draft202012Validator, FormatChecker

from sim.errors import SimApiError
from sim.eventbridge import matches
from tests.integration.test_drain_in_sim import drain_story
from tests.integration.test_placement_in_sim import scale_out

from .conftest import Deploy

VALIDATORS = {t: Draft202012Validator(s, format_checker=FormatChecker()) for t, s in ge.SCHEMAS.items()}


def assert_valid(events: list[dict[str, Any]]) -> Counter[str]:
    """Every event is ours, of a documented detail-type, and its detail holds to that type's schema."""
    kinds: Counter[str] = Counter()
    for event in events:
        assert event["source"] == ge.SOURCE
        assert event["detail-type"] in VALIDATORS, event["detail-type"]
        errors = [e.message for e in VALIDATORS[event["detail-type"]].iter_errors(event["detail"])]
        assert errors == [], (event["detail-type"], errors, event["detail"])
        kinds[event["detail-type"]] += 1
    return kinds


def test_every_schema_is_a_valid_json_schema() -> None:
    for schema in ge.SCHEMAS.values():
        Draft202012Validator.check_schema(schema)


@pytest.mark.slow
def test_drain_events_hold_to_their_schemas_and_tell_each_drain_from_start_to_end(deploy: Deploy) -> None:
    # GIVEN the small drain story (scale-ins, Spot interruptions) under daemon-guard
    run = drain_story(deploy)
    events = run.deployment.own_events.events
    # THEN every published event validates, and each drain is told: started, its phases, completed
    kinds = assert_valid(events)
    started = {e["detail"]["instanceId"] for e in events if e["detail-type"] == ge.DRAIN_STARTED}
    completed = {e["detail"]["instanceId"] for e in events if e["detail-type"] == ge.DRAIN_COMPLETED}
    assert started and started <= completed
    assert kinds[ge.TIER_COMPLETED] >= 3 * len(completed)  # replicas, standalone and the daemon tiers
    tiers = {e["detail"]["tier"] for e in events if e["detail-type"] == ge.TIER_COMPLETED}
    assert {"replicas", "app-agents", "metrics", "log-router"} <= tiers


@pytest.mark.slow
def test_the_readme_rule_routes_drain_completions_only(deploy: Deploy) -> None:
    run = drain_story(deploy)
    rule = {"source": ["daemon-guard"], "detail-type": ["Instance Drain Completed"]}
    routed = [e for e in run.deployment.own_events.events if matches(rule, e)]
    assert routed and all(e["detail-type"] == ge.DRAIN_COMPLETED for e in routed)


@pytest.mark.parametrize(("mode", "extra", "expected"), [
    ("preempt", {}, {ge.PLACEMENT_REPAIRED}),
    ("gate", {"gateTimeoutSeconds": 10}, {ge.GATE_OPENED, ge.GATE_FAILED_OPEN}),
])
@pytest.mark.slow
def test_placement_events_hold_to_their_schemas(mode: str, extra: dict[str, Any], expected: set[str]) -> None:
    # GIVEN a backlog scale-out under daemon-guard (gate mode with a short gate timeout, so some fail open)
    run, _ = scale_out(mode, extra=extra)
    assert run.deployment is not None
    # THEN what it did is published, and every event holds to its schema
    kinds = assert_valid(run.deployment.own_events.events)
    assert expected <= set(kinds)


def test_a_forced_drain_is_announced_with_its_phase() -> None:
    # GIVEN a step in which the global deadline forced the drain, and one that completed it
    request = DrainRequest("i-0abc", "prod", "spot")
    before = DrainProgress(started_at=100.0, phase="standalone", phase_started_at=150.0)
    forced = DrainProgress(started_at=100.0, phase="standalone", phase_started_at=150.0,
                           record=DrainRecord(forced=True, forced_at=210.0, deadlines_missed=1))
    done = DrainProgress(started_at=100.0, phase="complete",
                         record=DrainRecord(forced=True, forced_at=210.0, deadlines_missed=1,
                                            result="no-lifecycle-action", completed_at=220.0,
                                            phase_times=(("standalone", 150.0, 212.0), ("daemons", 212.0, 220.0))))
    policy = DrainPolicy(("daemons",), StandalonePolicy.WAIT, 300, 900, 300, 300)
    events = drain_step_events(request, before, DrainStep((), forced, 1.0), policy) + \
        drain_step_events(request, forced, DrainStep((), done, 0.0), policy)
    # THEN forced, the two phases, completed: in that order, each valid
    assert [e.detail_type for e in events] == [ge.DRAIN_FORCED, ge.TIER_COMPLETED, ge.TIER_COMPLETED,
                                              ge.DRAIN_COMPLETED]
    assert events[0].detail["phase"] == "standalone" and events[0].detail["seconds"] == 110.0
    assert events[-1].detail["deadlinesMissed"] == 1
    assert_valid([{"source": ge.SOURCE, "detail-type": e.detail_type, "detail": dict(e.detail)} for e in events])


class FailingEvents:
    """An EventBridge client that fails every call (throttled, say)."""

    def put_events(self, **_: Any) -> dict[str, Any]:
        raise RuntimeError("ThrottlingException")


class RejectingEvents:
    """An EventBridge client that accepts the call but rejects one entry."""

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803 (the API's name)
        return {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "InternalFailure"}] + [{"EventId": "x"}] *
                (len(Entries) - 1)}


class Sink:
    def __init__(self) -> None:
        self.values: list[tuple[str, float]] = []

    def emit(self, spec: Any, value: float, cluster: str, **dimensions: str) -> None:
        self.values.append((spec.name, value))


@pytest.mark.parametrize(("client", "accepted", "unpublished"), [(FailingEvents(), 0, 2), (RejectingEvents(), 1, 1)])
def test_a_failure_to_publish_is_counted_and_never_raised(client: Any, accepted: int, unpublished: int) -> None:
    sink = Sink()
    rt = bootstrap.build(parse_config({"clusters": [{"name": "prod"}]}), ecs_client=None, autoscaling_client=None,
                         events_client=client, metrics=sink)
    events = [ge.tier_completed("prod", "i-0abc", "replicas", 0.0, 5.0), ge.tier_completed("prod", "i-0abc", "x", 5, 6)]
    assert announce(rt, events) == accepted
    assert sink.values == [("GuardEventsUnpublished", unpublished)]


@pytest.mark.slow
def test_a_drain_completes_even_when_eventbridge_refuses_every_event(deploy: Deploy) -> None:
    # GIVEN EventBridge refusing every PutEvents (the sim answers with an error)
    def refuse(deployment: Any) -> None:
        def throttled(service: str, operation: str, params: dict[str, Any]) -> dict[str, Any]:
            raise SimApiError("ThrottlingException", "Rate exceeded")

        deployment.own_events.call = throttled

    run = drain_story(deploy, prepare=refuse)
    # THEN every drain still completed its lifecycle action, nothing was killed, the misses were counted
    assert run.drains and all(not d.timed_out and d.kills == 0 for d in run.drains)
    assert sum(run.deployment.records.metric_values("GuardEventsUnpublished")) > 0
