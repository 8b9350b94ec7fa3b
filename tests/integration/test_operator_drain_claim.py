"""`daemon-guard drain` claims the instance as the intake does: one drain workflow per instance, whoever asks first.

The operator's command runs `services.starts.claim_and_start`, the path the intake, the exits and the
reconciler take, against the deployment's own state table (moto) and durable workflows (the simulator).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from daemon_guard.core.events import SpotInterruption
from daemon_guard.core.identifiers import InstanceId
from daemon_guard.core.intake import Route
from daemon_guard.services.starts import start_drain

from bench.scenarios import ClusterSpec, build_cluster
from daemon_guard_cli.live import request_drain
from sim.deployment import GuardDeployment
from sim.ecs import profile_params
from sim.wire import make_client
from sim.world import World, WorldOptions
from tests.integration.conftest import config_for


class Operated:
    """A managed cluster of two instances with daemon-guard deployed; the clock stays put (no workflow runs)."""

    def __init__(self, config_file: Path) -> None:
        self.world = World(WorldOptions(seed=21, ecs=profile_params("as-reported")))
        spec = ClusterSpec(replica_services=2, desired_per_service=2)
        build_cluster(self.world, spec)
        self.world.asg.scale_out(spec.asg, 2, 1.0)
        self.world.clock.run_until(120.0)
        doc = config_for([spec.asg])
        config_file.write_text(json.dumps(doc))
        self.config_file = config_file
        self.deployment = GuardDeployment(self.world, doc, reconcile=False)
        self.ec2_id = InstanceId(next(iter(self.world.ecs.instances.values())).ec2_instance_id)

    def operator(self) -> tuple[int, str]:
        """`daemon-guard drain prod <instance>` with the operator's own clients."""
        out, err = io.StringIO(), io.StringIO()
        dynamodb = boto3.client("dynamodb", region_name=self.world.region, aws_access_key_id="sim",
                                aws_secret_access_key="sim")
        code = request_drain("prod", self.ec2_id, self.deployment.drain_arn, self.world.region,
                             table=self.deployment.facts.table_name, config_path=str(self.config_file),
                             ecs_client=self.world.client("ecs"),
                             lambda_client=make_client("lambda", self.deployment.durable, self.world.region),
                             dynamodb_client=dynamodb, clock=self.world.clock.datetime, out=out, err=err)
        assert err.getvalue() == ""
        return code, out.getvalue()

    def spot_warning(self) -> str:
        """The intake's start for a Spot warning on the same instance; returns its decision."""
        now = self.world.clock.datetime()
        event = SpotInterruption(account=self.world.account, region=self.world.region, ec2_instance_id=self.ec2_id,
                                 action="terminate", deadline=now + timedelta(seconds=120), event_id="spot-1",
                                 time=now)
        route = Route("drain", "Spot interruption warning", "prod", ec2_instance_id=self.ec2_id, trigger="spot")
        return start_drain(route, event, self.deployment.runtime).decision

    def drains(self) -> list[Any]:
        """The drain executions started so far."""
        return [e for e in self.deployment.durable.executions.values()
                if e.function == self.deployment.drain_arn]


@pytest.fixture
def operated(tmp_path: Path) -> Iterator[Operated]:
    """A fresh deployment per example (claims live in its table)."""
    made = Operated(tmp_path / "daemon-guard.json")
    yield made
    made.deployment.close()


def test_an_operator_drain_joins_the_drain_the_intake_started(operated: Operated) -> None:
    # GIVEN the intake started a drain for a Spot warning on the instance
    assert operated.spot_warning() == "started"
    # WHEN an operator asks to drain the same instance
    code, out = operated.operator()
    # THEN the request joins the running drain: no second workflow
    assert code == 0
    assert "not started (joined)" in out and "already owns" in out
    assert len(operated.drains()) == 1


def test_the_intake_joins_a_drain_an_operator_started(operated: Operated) -> None:
    # GIVEN an operator drained the instance with `daemon-guard drain`
    code, out = operated.operator()
    assert code == 0 and "requested" in out
    # WHEN a Spot warning for the same instance reaches the intake
    decision = operated.spot_warning()
    # THEN it joins the operator's drain (the claim is the intake's own): still one workflow
    assert decision == "joined"
    assert len(operated.drains()) == 1
    assert operated.drains()[0].payload == {"instanceId": operated.ec2_id, "cluster": "prod", "trigger": "operator"}
