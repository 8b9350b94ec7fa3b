"""The simulated EventBridge: content filtering semantics and delivery faults."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest

from sim.clock import Clock
from sim.eventbridge import EventBus, FaultPlan, matches, validate_pattern

CLUSTER_A = "arn:aws:ecs:us-east-1:111122223333:cluster/a"
CLUSTER_B = "arn:aws:ecs:us-east-1:111122223333:cluster/b"

EVENT: dict[str, Any] = {
    "version": "0",
    "id": "8952ba83-7be2-4ab5-9c32-6687532d15a2",
    "detail-type": "ECS Container Instance State Change",
    "source": "aws.ecs",
    "account": "111122223333",
    "time": "2026-01-05T08:00:00Z",
    "region": "us-east-1",
    "resources": ["arn:aws:ecs:us-east-1:111122223333:container-instance/a/abc"],
    "detail": {
        "agentConnected": True,
        "clusterArn": CLUSTER_A,
        "status": "DRAINING",
        "version": 14801,
        "runningTasksCount": 3,
        "ec2InstanceId": "i-0abc",
        "privateIp": "10.0.1.17",
        "reason": None,
        "note": "",
        "attributes": [
            {"name": "ecs.capability.docker-remote-api.1.17"},
            {"name": "ecs.os-type", "value": "linux"},
        ],
        "tags": ["blue", "Prod"],
        "path": "/var/lib/ecs/data",
        "weight": 2.5,
    },
}

MATCHING_CASES: list[tuple[str, dict[str, Any], bool]] = [
    # plain values, AND across keys, OR within an array
    ("exact value", {"source": ["aws.ecs"]}, True),
    ("exact value, other", {"source": ["aws.ec2"]}, False),
    ("or within an array", {"source": ["aws.ec2", "aws.ecs"]}, True),
    ("and across keys", {"source": ["aws.ecs"], "detail-type": ["ECS Task State Change"]}, False),
    ("nested field", {"detail": {"status": ["DRAINING"]}}, True),
    ("nested field, other value", {"detail": {"status": ["ACTIVE"]}}, False),
    ("missing field", {"detail": {"nope": ["x"]}}, False),
    ("missing parent object", {"nope": {"x": ["y"]}}, False),
    ("cluster list", {"detail": {"clusterArn": [CLUSTER_B, CLUSTER_A]}}, True),
    ("cluster list, foreign", {"detail": {"clusterArn": [CLUSTER_B]}}, False),
    ("number", {"detail": {"version": [14801]}}, True),
    ("number equals float form", {"detail": {"version": [14801.0]}}, True),
    ("number is not its string", {"detail": {"version": ["14801"]}}, False),
    ("boolean", {"detail": {"agentConnected": [True]}}, True),
    ("boolean is not 1", {"detail": {"agentConnected": [1]}}, False),
    ("null", {"detail": {"reason": [None]}}, True),
    ("null is not empty string", {"detail": {"note": [None]}}, False),
    ("empty string", {"detail": {"note": [""]}}, True),
    ("empty string is not null", {"detail": {"reason": [""]}}, False),
    # event arrays
    (
        "event array, any element",
        {"resources": ["arn:aws:ecs:us-east-1:111122223333:container-instance/a/abc"]},
        True,
    ),
    ("event array of scalars", {"detail": {"tags": ["Prod"]}}, True),
    ("event array of scalars, none", {"detail": {"tags": ["green"]}}, False),
    ("event array of objects", {"detail": {"attributes": {"name": ["ecs.os-type"]}}}, True),
    (
        "array of objects, same element",
        {"detail": {"attributes": {"name": ["ecs.os-type"], "value": ["linux"]}}},
        True,
    ),
    (
        "array of objects, fields of different elements",
        {"detail": {"attributes": {"name": ["ecs.capability.docker-remote-api.1.17"], "value": ["linux"]}}},
        False,
    ),
    # prefix / suffix
    ("prefix", {"detail": {"clusterArn": [{"prefix": "arn:aws:ecs:us-east-1:"}]}}, True),
    ("prefix, other", {"detail": {"clusterArn": [{"prefix": "arn:aws:ecs:eu-west-1:"}]}}, False),
    ("prefix ignores numbers", {"detail": {"version": [{"prefix": "148"}]}}, False),
    ("prefix ignore case", {"detail": {"status": [{"prefix": {"equals-ignore-case": "drain"}}]}}, True),
    ("suffix", {"detail": {"clusterArn": [{"suffix": "/a"}]}}, True),
    ("suffix, other", {"detail": {"clusterArn": [{"suffix": "/b"}]}}, False),
    ("suffix ignore case", {"detail": {"tags": [{"suffix": {"equals-ignore-case": "ROD"}}]}}, True),
    # anything-but
    ("anything-but value", {"detail": {"status": [{"anything-but": "ACTIVE"}]}}, True),
    ("anything-but value, excluded", {"detail": {"status": [{"anything-but": "DRAINING"}]}}, False),
    ("anything-but list", {"detail": {"status": [{"anything-but": ["ACTIVE", "DRAINING"]}]}}, False),
    ("anything-but number", {"detail": {"version": [{"anything-but": [1, 2]}]}}, True),
    ("anything-but number, excluded", {"detail": {"version": [{"anything-but": 14801}]}}, False),
    ("anything-but missing field", {"detail": {"nope": [{"anything-but": "x"}]}}, False),
    ("anything-but prefix", {"region": [{"anything-but": {"prefix": "eu-"}}]}, True),
    ("anything-but prefix, excluded", {"region": [{"anything-but": {"prefix": "us-"}}]}, False),
    ("anything-but suffix", {"detail": {"path": [{"anything-but": {"suffix": ".png"}}]}}, True),
    ("anything-but suffix, excluded", {"detail": {"path": [{"anything-but": {"suffix": "/data"}}]}}, False),
    (
        "anything-but ignore case",
        {"detail": {"status": [{"anything-but": {"equals-ignore-case": "active"}}]}},
        True,
    ),
    (
        "anything-but ignore case, excluded",
        {"detail": {"status": [{"anything-but": {"equals-ignore-case": ["draining", "x"]}}]}},
        False,
    ),
    ("anything-but wildcard", {"detail": {"path": [{"anything-but": {"wildcard": "*/tmp/*"}}]}}, True),
    (
        "anything-but wildcard, excluded",
        {"detail": {"path": [{"anything-but": {"wildcard": "*/ecs/*"}}]}},
        False,
    ),
    # numeric
    ("numeric range", {"detail": {"runningTasksCount": [{"numeric": [">", 0, "<=", 3]}]}}, True),
    ("numeric range, outside", {"detail": {"runningTasksCount": [{"numeric": [">", 3]}]}}, False),
    ("numeric equals", {"detail": {"weight": [{"numeric": ["=", 2.5]}]}}, True),
    ("numeric ignores strings", {"detail": {"status": [{"numeric": [">=", 0]}]}}, False),
    ("numeric ignores booleans", {"detail": {"agentConnected": [{"numeric": [">=", 0]}]}}, False),
    # exists
    ("exists true", {"detail": {"ec2InstanceId": [{"exists": True}]}}, True),
    ("exists true, absent", {"detail": {"nope": [{"exists": True}]}}, False),
    ("exists false, absent", {"detail": {"nope": [{"exists": False}]}}, True),
    ("exists false, present", {"detail": {"ec2InstanceId": [{"exists": False}]}}, False),
    ("exists false under a missing parent", {"nope": {"x": [{"exists": False}]}}, True),
    ("exists true on an object is false", {"detail": [{"exists": True}]}, False),
    # equals-ignore-case, wildcard, cidr
    ("equals-ignore-case", {"detail": {"status": [{"equals-ignore-case": "draining"}]}}, True),
    ("equals-ignore-case, other", {"detail": {"status": [{"equals-ignore-case": "active"}]}}, False),
    ("wildcard", {"detail": {"clusterArn": [{"wildcard": "arn:aws:ecs:*:111122223333:cluster/*"}]}}, True),
    (
        "wildcard, other",
        {"detail": {"clusterArn": [{"wildcard": "arn:aws:ecs:*:999999999999:cluster/*"}]}},
        False,
    ),
    ("wildcard escaped star is literal", {"detail": {"path": [{"wildcard": "/var/\\*"}]}}, False),
    ("cidr", {"detail": {"privateIp": [{"cidr": "10.0.0.0/16"}]}}, True),
    ("cidr, outside", {"detail": {"privateIp": [{"cidr": "10.1.0.0/16"}]}}, False),
    # $or
    ("$or, second branch", {"$or": [{"source": ["aws.ec2"]}, {"detail": {"status": ["DRAINING"]}}]}, True),
    ("$or, no branch", {"$or": [{"source": ["aws.ec2"]}, {"detail": {"status": ["ACTIVE"]}}]}, False),
    (
        "$or nested, anded with siblings",
        {"source": ["aws.ecs"], "detail": {"$or": [{"status": ["ACTIVE"]}, {"runningTasksCount": [3]}]}},
        True,
    ),
    (
        "$or anded with a failing sibling",
        {"source": ["aws.ec2"], "$or": [{"region": ["us-east-1"]}, {"account": ["1"]}]},
        False,
    ),
    # mixtures inside one array are ORed
    ("mixed conditions", {"detail": {"status": ["ACTIVE", {"prefix": "DRAIN"}]}}, True),
    ("empty pattern matches everything", {}, True),
]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [(p, e) for _, p, e in MATCHING_CASES],
    ids=[name for name, _, _ in MATCHING_CASES],
)
def test_pattern_matching_follows_eventbridge_content_filtering(
    pattern: dict[str, Any], expected: bool
) -> None:
    # GIVEN a container-instance event and an event pattern
    # WHEN the pattern is tested against the event
    result = matches(pattern, EVENT)
    # THEN it matches exactly when EventBridge would
    assert result is expected


MALFORMED_PATTERNS: list[tuple[str, Any]] = [
    ("leaf is a scalar", {"source": "aws.ecs"}),
    ("unknown operator", {"source": [{"startswith": "aws"}]}),
    ("two operators in one object", {"source": [{"prefix": "a", "suffix": "b"}]}),
    ("exists not boolean", {"source": [{"exists": "yes"}]}),
    ("numeric bad comparator", {"detail": {"n": [{"numeric": ["~", 1]}]}}),
    ("numeric odd length", {"detail": {"n": [{"numeric": [">", 1, "<"]}]}}),
    ("$or with one branch", {"$or": [{"source": ["aws.ecs"]}]}),
    ("anything-but unknown operator", {"source": [{"anything-but": {"numeric": [">", 1]}}]}),
    ("pattern not an object", ["aws.ecs"]),
]


@pytest.mark.parametrize(
    "pattern", [p for _, p in MALFORMED_PATTERNS], ids=[n for n, _ in MALFORMED_PATTERNS]
)
def test_malformed_pattern_is_rejected_like_put_rule(pattern: Any) -> None:
    # GIVEN a pattern EventBridge would refuse
    # WHEN it is validated
    # THEN it is rejected with a ValueError
    with pytest.raises(ValueError):
        validate_pattern(pattern)


# --------------------------------------------------------------------------------------------------
# The bus
# --------------------------------------------------------------------------------------------------


def _event(n: int, cluster: str = CLUSTER_A) -> dict[str, Any]:
    return {
        "source": "aws.ecs",
        "detail-type": "ECS Task State Change",
        "detail": {"clusterArn": cluster, "n": n},
    }


def _publisher(bus: EventBus, n: int) -> Callable[[], None]:
    def publish() -> None:
        bus.put(_event(n))

    return publish


def _run(
    faults: FaultPlan, seed: int = 7, count: int = 200, spacing_s: float = 0.1
) -> list[tuple[float, int]]:
    """Publish `count` events `spacing_s` apart and return (delivery time, n) in delivery order."""
    clock = Clock()
    bus = EventBus(clock, random.Random(seed), faults)
    received: list[tuple[float, int]] = []
    bus.add_rule("all", {"source": ["aws.ecs"]}, lambda e: received.append((clock.now, e["detail"]["n"])))
    for n in range(count):
        clock.at(n * spacing_s, _publisher(bus, n))
    clock.run_until(count * spacing_s + 3600)
    return received


def test_healthy_bus_delivers_each_event_once_in_order_after_the_base_delay() -> None:
    # GIVEN a bus with the default fault plan
    # WHEN events are published a tenth of a second apart
    received = _run(FaultPlan(), count=20)
    # THEN each arrives exactly once, in order, half a second after it was published
    assert [n for _, n in received] == list(range(20))
    assert [round(t - n * 0.1, 6) for t, n in received] == [0.5] * 20


def test_loss_drops_events_and_counts_them() -> None:
    # GIVEN a bus that loses a third of its deliveries
    clock = Clock()
    bus = EventBus(clock, random.Random(1), FaultPlan(loss_rate=0.3))
    received: list[int] = []
    bus.add_rule("all", {"source": ["aws.ecs"]}, lambda e: received.append(e["detail"]["n"]))
    # WHEN 300 events are published
    for n in range(300):
        bus.put(_event(n))
    clock.advance(10)
    # THEN some never arrive, and the counters account for every one
    stats = bus.stats("all")
    assert 0 < stats.lost < 300
    assert len(received) == stats.delivered == 300 - stats.lost
    assert len(set(received)) == len(received)
    assert bus.published == stats.matched == 300


def test_duplication_delivers_extra_copies_up_to_the_cap() -> None:
    # GIVEN a bus that always duplicates, capped at three copies
    clock = Clock()
    bus = EventBus(clock, random.Random(2), FaultPlan(duplicate_rate=1.0, max_copies=3))
    received: list[int] = []
    bus.add_rule("all", {"source": ["aws.ecs"]}, lambda e: received.append(e["detail"]["n"]))
    # WHEN two events are published
    bus.put(_event(0))
    bus.put(_event(1))
    clock.advance(10)
    # THEN each arrives three times and the extra copies are counted
    assert sorted(received) == [0, 0, 0, 1, 1, 1]
    assert bus.stats("all").duplicated == 4
    assert bus.stats("all").delivered == 6
    assert bus.stats("all").in_flight == 0


def test_each_delivery_gets_its_own_copy_of_the_event() -> None:
    # GIVEN a duplicating bus whose target mutates what it receives
    clock = Clock()
    bus = EventBus(clock, random.Random(3), FaultPlan(duplicate_rate=1.0, max_copies=2))
    received: list[dict[str, Any]] = []

    def mutate(event: dict[str, Any]) -> None:
        received.append(event)
        event["detail"]["n"] = -1

    bus.add_rule("all", {"source": ["aws.ecs"]}, mutate)
    original = _event(5)
    # WHEN the event is published, then mutated by the publisher
    bus.put(original)
    original["detail"]["n"] = 99
    clock.advance(10)
    # THEN every copy started from the event as published
    assert len(received) == 2
    assert received[0] is not received[1]
    assert bus.stats("all").delivered == 2


def test_reorder_window_lets_later_events_overtake_earlier_ones() -> None:
    # GIVEN a bus with a reorder window wider than the spacing between events
    # WHEN events are published
    received = _run(FaultPlan(reorder_window_s=2.0), count=50)
    # THEN all arrive, but not in publication order
    order = [n for _, n in received]
    assert sorted(order) == list(range(50))
    assert order != list(range(50))


@pytest.mark.parametrize(
    "faults",
    [
        FaultPlan(jitter_s=0.3),
        FaultPlan(loss_rate=0.1, duplicate_rate=0.2, reorder_window_s=1.5, jitter_s=0.2),
    ],
    ids=["jitter", "every fault"],
)
def test_same_seed_gives_identical_delivery_sequences(faults: FaultPlan) -> None:
    # GIVEN two buses with the same fault plan and seed
    # WHEN the same events are published on each
    first = _run(faults, seed=42)
    second = _run(faults, seed=42)
    other_seed = _run(faults, seed=43)
    # THEN the delivery sequences are identical, and another seed differs
    assert first == second
    assert first != other_seed


def test_rule_with_a_narrow_cluster_pattern_receives_only_its_clusters_events() -> None:
    # GIVEN a rule for cluster A only and a rule for every ECS event
    clock = Clock()
    bus = EventBus(clock, random.Random(4))
    narrow: list[str] = []
    wide: list[str] = []
    bus.add_rule(
        "ours",
        {"source": ["aws.ecs"], "detail": {"clusterArn": [CLUSTER_A]}},
        lambda e: narrow.append(e["detail"]["clusterArn"]),
    )
    bus.add_rule("all", {"source": ["aws.ecs"]}, lambda e: wide.append(e["detail"]["clusterArn"]))
    # WHEN events of both clusters are published
    routed = [bus.put(_event(n, CLUSTER_A if n % 2 else CLUSTER_B)) for n in range(6)]
    clock.advance(10)
    # THEN the narrow rule sees only cluster A, the wide one sees everything
    assert narrow == [CLUSTER_A] * 3
    assert len(wide) == 6
    assert routed[0] == ["all"]
    assert routed[1] == ["ours", "all"]
    assert bus.stats("ours").matched == 3


def test_tap_records_every_published_event_even_unmatched_ones() -> None:
    # GIVEN a bus with a tap and one rule that matches nothing
    clock = Clock()
    tap: list[dict[str, Any]] = []
    bus = EventBus(clock, random.Random(5), tap=tap)
    bus.add_rule("none", {"source": ["aws.ec2"]}, lambda e: None)
    # WHEN two events are published
    bus.put(_event(1))
    bus.put(_event(2))
    clock.advance(10)
    # THEN the tap holds both, in order, and nothing was delivered
    assert [e["detail"]["n"] for e in tap] == [1, 2]
    assert bus.published == 2
    assert bus.delivered == 0


def test_adding_a_rule_twice_or_with_a_bad_pattern_is_refused() -> None:
    # GIVEN a bus with a rule
    bus = EventBus(Clock(), random.Random(6))
    bus.add_rule("r", {"source": ["aws.ecs"]}, lambda e: None)
    # WHEN the same name or a malformed pattern is added
    # THEN both are refused
    with pytest.raises(ValueError):
        bus.add_rule("r", {"source": ["aws.ecs"]}, lambda e: None)
    with pytest.raises(ValueError):
        bus.add_rule("s", {"source": "aws.ecs"}, lambda e: None)
    assert bus.rule_names == ["r"]


def test_a_healthy_bus_draws_no_randomness() -> None:
    # GIVEN a shared random generator and a bus with no jitter or faults
    rng = random.Random(9)
    expected_next = random.Random(9).random()
    clock = Clock()
    bus = EventBus(clock, rng, FaultPlan(delay_s=0.0))
    bus.add_rule("all", {"source": ["aws.ecs"]}, lambda e: None)
    # WHEN events flow
    for n in range(10):
        bus.put(_event(n))
    clock.advance(1)
    # THEN the generator was left untouched for the rest of the simulator
    assert rng.random() == expected_next


@pytest.mark.parametrize(
    "kwargs",
    [{"loss_rate": 1.5}, {"duplicate_rate": -0.1}, {"delay_s": -1.0}, {"max_copies": 0}],
    ids=["loss above one", "negative duplication", "negative delay", "no copies"],
)
def test_impossible_fault_plans_are_refused(kwargs: dict[str, Any]) -> None:
    # GIVEN impossible fault parameters
    # WHEN a plan is built
    # THEN it is refused
    with pytest.raises(ValueError):
        FaultPlan(**kwargs)
