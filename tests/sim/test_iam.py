"""The simulator's IAM: every statement evaluated, resources and conditions enforced, overlaps reported."""

from __future__ import annotations

from typing import Any

from sim.iam import Authorizer, Place, Request, Statement, actions_matching, request_of

ROLE = "arn:aws:iam::111122223333:role/guard"
PLACE = Place("111122223333", "us-east-1")
PROD = "arn:aws:ecs:us-east-1:111122223333:cluster/prod"
IN_PROD = {"ArnEquals": {"ecs:cluster": (PROD,)}}


def statement(label: str, actions: tuple[str, ...], resources: tuple[str, ...] = ("*",),
              conditions: dict[str, Any] | None = None, effect: str = "Allow") -> Statement:
    return Statement(label, effect, actions, resources, conditions or {})


def stop_task(cluster: str, task: str) -> Request:
    """The request StopTask makes, as the simulator forms it from the call's parameters."""
    return request_of("ecs", "StopTask", {"cluster": cluster, "task": task}, PLACE)


PROD_TASKS = statement("Evict", ("ecs:StopTask",), ("arn:aws:ecs:us-east-1:111122223333:task/prod/*",), IN_PROD)


def test_a_call_is_credited_to_every_statement_that_allows_it_and_the_overlap_is_reported() -> None:
    # GIVEN the narrow statement in use and a broad one that also allows StopTask
    broad = statement("Broad", ("ecs:DescribeTaskDefinition", "ecs:*"))
    authorizer = Authorizer({ROLE: [PROD_TASKS, broad]})
    # WHEN the guard stops a task of its cluster
    decision = authorizer.decide(ROLE, stop_task("prod", "t1"))
    # THEN both statements are credited, and the call is reported as allowed by the two
    assert decision.allowed and decision.statements == ("Evict", "Broad")
    assert authorizer.used_actions[(ROLE, "Broad", "ecs:StopTask")] == 1
    assert authorizer.overlaps == {(ROLE, "ecs:StopTask", ("Evict", "Broad")): 1}


def test_a_request_naming_one_cluster_and_a_task_of_another_is_denied_by_either_scope() -> None:
    # GIVEN StopTask on the managed cluster's task ARNs under an ecs:cluster condition naming it
    authorizer = Authorizer({ROLE: [PROD_TASKS]})
    theirs = "arn:aws:ecs:us-east-1:111122223333:task/shared/t1"
    ours = "arn:aws:ecs:us-east-1:111122223333:task/prod/t1"
    # WHEN a request names the managed cluster and another cluster's task, or the reverse
    # THEN the resource ARN denies the first, the condition the second; the guard's own call passes
    assert not authorizer.decide(ROLE, stop_task("prod", theirs)).allowed
    assert not authorizer.decide(ROLE, stop_task("shared", ours)).allowed
    assert authorizer.decide(ROLE, stop_task("prod", ours)).allowed


def test_an_explicit_deny_wins_over_every_allow() -> None:
    # GIVEN an allow of StopTask in prod and a deny of every ECS write
    deny = statement("NoWrites", ("ecs:Stop*",), effect="Deny")
    # WHEN the guard stops a task of its cluster / THEN it is denied, naming the deny
    decision = Authorizer({ROLE: [PROD_TASKS, deny]}).decide(ROLE, stop_task("prod", "t1"))
    assert not decision.allowed and "NoWrites" in decision.reason


def test_a_wildcard_action_names_every_action_of_the_reference_it_matches() -> None:
    # GIVEN the Service Authorization Reference / WHEN a pattern is expanded / THEN it names real actions
    assert actions_matching("ecs:ListTasks") == ("ecs:ListTasks",)
    assert {"ecs:DescribeTasks", "ecs:DescribeClusters"} <= set(actions_matching("ecs:Describe*"))
    assert "ecs:DeleteCluster" in actions_matching("ecs:*")
    assert actions_matching("ecs:NoSuchAction") == ()


def test_kept_requests_replayed_against_a_narrower_policy_show_the_one_it_denies() -> None:
    # GIVEN an authorizer that kept what the guard asked (the same request twice, kept once)
    authorizer = Authorizer({ROLE: [PROD_TASKS, statement("Lists", ("ecs:ListTasks",), conditions=IN_PROD)]},
                            keep_requests=True)
    for request in (stop_task("prod", "t1"), stop_task("prod", "t1"),
                    request_of("ecs", "ListTasks", {"cluster": "prod"}, PLACE)):
        assert authorizer.decide(ROLE, request).allowed
    assert len(authorizer.requests) == 2
    # WHEN they are decided again without the Lists statement
    denied = authorizer.without(ROLE, "Lists").replay(authorizer.requests.values())
    # THEN exactly the ListTasks request is denied
    assert [(role, request.action) for role, request, _ in denied] == [(ROLE, "ecs:ListTasks")]
