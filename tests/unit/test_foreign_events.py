"""The intake's foreign-event rule: partition, account and region must be the deployment's own."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from daemon_guard import bootstrap
from daemon_guard.bootstrap import LearntHome, Runtime
from daemon_guard.core.config import parse_config
from daemon_guard.services.intake import handle

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "events"
TASK = "ecs-task-state-change-ec2-launch-type.awsdocs-ecs-devguide-2020.json"
CONFIG = parse_config({"clusters": [{"name": "default", "autoScalingGroups": ["my-asg"]}]})


class NoCalls:
    """An AWS client that must not be called: the foreign check decides before any read."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"unexpected AWS call {name}")


class Sink:
    def emit(self, *_args: Any, **_kwargs: Any) -> None:
        """Metrics are not the point here."""


def runtime(function_arn: str | None = None, **home: str) -> Runtime:
    rt = bootstrap.build(CONFIG, ecs_client=NoCalls(), autoscaling_client=NoCalls(), metrics=Sink(), dry_run=True,
                         home=LearntHome(**home))
    if function_arn:
        rt.home.learn(function_arn)
    return rt


def task_event(partition: str = "aws", account: str = "111122223333", region: str = "us-east-1",
               envelope_account: str | None = None) -> dict[str, Any]:
    """AWS's EC2 task sample with its ARNs (and envelope) in the given partition, account and region."""
    text = (FIXTURES / TASK).read_text().replace("arn:aws:ecs:us-east-1:111122223333",
                                                 f"arn:{partition}:ecs:{region}:{account}")
    event: dict[str, Any] = json.loads(text)
    event["account"], event["region"] = envelope_account or account, region
    event["detail"]["lastStatus"] = event["detail"]["desiredStatus"] = "STOPPED"  # a wake: no read without a state
    return event


def test_the_runtime_learns_partition_account_and_region_from_its_function_arn() -> None:
    rt = runtime("arn:aws-cn:lambda:cn-north-1:111122223333:function:daemon-guard-intake:live")
    assert (rt.home.partition, rt.home.account, rt.home.region) == ("aws-cn", "111122223333", "cn-north-1")


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (task_event(partition="aws-cn", region="cn-north-1"), "partition aws-cn is not this deployment's partition"),
        (task_event(partition="aws-us-gov", region="us-gov-west-1"), "partition aws-us-gov is not"),
        (task_event(account="999999999999"), "account 999999999999 is not this deployment's account"),
        (task_event(region="eu-west-1"), "region eu-west-1 is not this deployment's region"),
        (task_event(envelope_account="111122223333", account="999999999999"),
         "arn:aws:ecs:us-east-1:999999999999:cluster/default is not of the event's partition"),
    ],
)
def test_an_event_from_another_partition_account_or_region_is_ignored(event: dict[str, Any], reason: str) -> None:
    # GIVEN a Lambda deployed in aws / 111122223333 / us-east-1
    rt = runtime("arn:aws:lambda:us-east-1:111122223333:function:daemon-guard-intake:live")
    # WHEN an ECS event of another partition, account or region arrives / THEN ignored, no AWS call
    result = handle(event, rt).as_dict()
    assert result["decision"] == "ignored"
    assert result["reason"].startswith(reason), result


def test_an_event_from_home_passes_the_check() -> None:
    # GIVEN an event from home, of a cluster the configuration does not manage (so it needs no read)
    rt = runtime("arn:aws:lambda:us-east-1:111122223333:function:daemon-guard-intake:live")
    event = task_event()
    event["detail"]["clusterArn"] = event["detail"]["clusterArn"].replace("cluster/default", "cluster/other")
    # WHEN handled / THEN it gets past the foreign check to the routing's own reason
    assert handle(event, rt).reason == "cluster other is not managed"


def test_an_arn_that_disagrees_with_its_envelope_is_ignored_even_without_a_home() -> None:
    # GIVEN no home known, and a task event whose ARNs are of another account than its envelope
    result = handle(task_event(account="999999999999", envelope_account="111122223333"), runtime()).as_dict()
    # THEN it is ignored: the ARN is not of the event's own account
    assert result["decision"] == "ignored"
    assert "is not of the event's partition, account and region" in result["reason"]


def test_without_a_home_the_region_alone_sets_the_partition() -> None:
    # GIVEN a runtime that knows only its region (AWS_REGION), in the China partition
    rt = runtime(region="cn-north-1")
    # WHEN an aws-partition event arrives / THEN foreign, by partition
    result = handle(task_event(), rt)
    assert result.reason.startswith("partition aws is not this deployment's partition")
