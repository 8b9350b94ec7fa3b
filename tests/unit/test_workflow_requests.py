"""The workflows' request values: built once, serialized by the executor, read back by the workflow's own parser."""

from __future__ import annotations

from typing import Any

import pytest
from daemon_guard.core.actions import StartWorkflow
from daemon_guard.core.drain import DrainRequest
from daemon_guard.core.gate_request import GateRequest
from daemon_guard.core.identifiers import AsgName, HookName, InstanceId, LifecycleToken
from daemon_guard.core.outcomes import action_dict

INSTANCE = InstanceId("i-0123456789abcdef0")
TOKEN = LifecycleToken("bcd2a5e1-2bd6-4b86-9a7c-4d1c4a0a1f9e")
SPOT = DrainRequest(INSTANCE, "prod", "spot", deadline_epoch=1_714_564_920.0)
LIFECYCLE = DrainRequest(INSTANCE, "prod", "lifecycle", asg=AsgName("prod-asg"), hook=HookName("daemon-guard-drain"),
                         token=TOKEN, destination="WarmPool")
SCHEDULED = DrainRequest(INSTANCE, "prod", "scheduled-change", deadline_epoch=1_714_564_920.0, replace=True)
GATE = GateRequest(INSTANCE, "prod", AsgName("prod-asg"), HookName("daemon-guard-launch"), TOKEN, 1_714_564_800.0)


@pytest.mark.parametrize("request_", [SPOT, LIFECYCLE, SCHEDULED, GATE], ids=["spot", "lifecycle", "scheduled",
                                                                             "gate"])
def test_a_request_reads_back_from_its_payload_unchanged(request_: DrainRequest | GateRequest) -> None:
    # GIVEN a request / WHEN serialized as the executor sends it and parsed as the workflow reads it
    # THEN it is the same value
    assert type(request_).from_payload(request_.as_payload()) == request_


def test_the_payload_leaves_unset_fields_out_and_writes_replace_as_unhealthy() -> None:
    # GIVEN a scheduled change's drain / WHEN serialized / THEN only what is set, replace as "unhealthy"
    assert SCHEDULED.as_payload() == {"instanceId": INSTANCE, "cluster": "prod", "trigger": "scheduled-change",
                                      "deadline": 1_714_564_920.0, "replace": "unhealthy"}


def test_a_start_names_its_workflow_and_shows_its_payload_as_json() -> None:
    # GIVEN starts of each workflow / WHEN shown as the intake returns them / THEN the payload sent is there
    assert StartWorkflow("gate-x", GATE).workflow == "launch-gate"
    assert action_dict(StartWorkflow("drain-x", SPOT)) == {
        "type": "StartWorkflow", "workflow": "drain", "execution_name": "drain-x", "payload": SPOT.as_payload()}


@pytest.mark.parametrize(("payload", "message"), [
    ({"cluster": "prod", "trigger": "spot"}, "drain payload needs a non-empty string 'instanceId'"),
    ({"instanceId": "i-*", "cluster": "prod", "trigger": "spot"}, "drain payload: expected an EC2 instance id"),
    ({**SPOT.as_payload(), "replace": "terminate"}, "drain payload 'replace': expected \"unhealthy\""),
    ({**SPOT.as_payload(), "destination": 7}, "drain payload 'destination': expected a string"),
    ({**SPOT.as_payload(), "deadline": 0}, "drain payload 'deadline': expected epoch seconds"),
])
def test_a_bad_drain_payload_is_refused_naming_the_field(payload: dict[str, Any], message: str) -> None:
    # GIVEN a payload the intake never builds / WHEN the drain workflow reads it / THEN one clear error
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        DrainRequest.from_payload(payload)


@pytest.mark.parametrize(("payload", "message"), [
    ({"instanceId": INSTANCE, "cluster": "prod", "asg": "prod-asg"}, "needs a non-empty string 'hook'"),
    ({**GATE.as_payload(), "instanceId": "i-*"}, "launch gate payload: expected an EC2 instance id"),
    ({**GATE.as_payload(), "token": "not-a-token"}, "launch gate payload: expected a lifecycle action token"),
    ({**GATE.as_payload(), "startedAt": "yesterday"}, "launch gate payload 'startedAt': expected epoch seconds"),
])
def test_a_bad_gate_payload_is_refused_naming_the_field(payload: dict[str, Any], message: str) -> None:
    # GIVEN a payload the intake never builds / WHEN the launch gate reads it / THEN one clear error
    with pytest.raises(ValueError, match=message):
        GateRequest.from_payload(payload)
