"""Bad input never crashes the intake and never reaches AWS: property-based over every event kind.

Each sample in tests/fixtures/events is first rebased onto a simulated cluster that daemon-guard
manages (our account, region, cluster, group, hooks, a real instance), so that the untouched event
would be acted on; then it is broken one way or another and run through the real intake with real
boto3 clients answered by the simulator. Also the `daemon-guard replay` command on the same inputs.
"""

from __future__ import annotations

import copy
import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from daemon_guard.core.events import SpotInterruption
from daemon_guard.core.identifiers import IdentifierError, InstanceId
from daemon_guard.core.intake import Route
from daemon_guard.core.query import validate
from daemon_guard.observability import logger
from daemon_guard.services import intake
from daemon_guard.services.starts import start_drain
from hypothesis import HealthCheck, given, settings
from hypothesis import event as event_
from hypothesis import strategies as st

from bench.scenarios import ClusterSpec, build_cluster
from daemon_guard_cli.main import main as cli
from daemon_guard_cli.replay import snapshot_ecs, validate_state
from sim.deployment import GuardDeployment
from sim.ecs import profile_params
from sim.world import World, WorldOptions
from tests.integration.conftest import WriteCounter, config_for

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "events"
SAMPLES = sorted(FIXTURES.glob("*.json"))
# Fixed example counts, derandomized: `make test` stays affordable and a failure reproduces.
SETTINGS = settings(max_examples=60, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])
NO_WRITES = {"StopTask": 0, "PutAttributes": 0, "DeleteAttributes": 0, "UpdateContainerInstancesState": 0,
             "RunTask": 0, "StartTask": 0, "CompleteLifecycleAction": 0, "RecordLifecycleActionHeartbeat": 0,
             "Invoke": 0, "SendDurableExecutionCallbackSuccess": 0}


class Guarded:
    """A managed cluster with one registered instance, daemon-guard deployed, clock at rest (a test that
    needs a workflow invoked moves it by a second)."""

    def __init__(self) -> None:
        self.world = World(WorldOptions(seed=11, ecs=profile_params("as-reported")))
        spec = ClusterSpec(replica_services=2, desired_per_service=2)
        build_cluster(self.world, spec)
        self.asg = spec.asg
        self.world.asg.scale_out(spec.asg, 2, 1.0)
        self.world.clock.run_until(120.0)
        self.deployment = GuardDeployment(self.world, config_for([spec.asg], launch_hook=True), reconcile=False)
        # With the clock at rest ECS's rate buckets never refill: thousands of examples would drain them and
        # the module would test throttling, not input. Throttling has its own tests.
        self.world.ecs_api.throttling = False
        self.writes = WriteCounter(self.world, self.deployment)
        instance, spare = list(self.world.ecs.instances.values())[:2]
        self.instance_arn, self.ec2_id = instance.arn, instance.ec2_instance_id
        self.spare_ec2_id = spare.ec2_instance_id  # never named by a broken event
        self.cluster_arn = self.world.ecs.cluster_arn("prod")
        self.daemon_arn = next(s.arn for s in self.world.ecs.services.values() if s.strategy == "DAEMON")

    def rebase(self, event: dict[str, Any]) -> dict[str, Any]:
        """The sample as if it came from our account, region, cluster, group, hooks and instance."""
        out = copy.deepcopy(event)
        out["account"], out["region"] = self.world.account, self.world.region
        if out.get("time") == "yyyy-mm-ddThh:mm:ssZ":
            out["time"] = "2024-05-01T12:00:00Z"
        detail = out.get("detail")
        if not isinstance(detail, dict):
            return out
        launch = "launch" in str(out.get("detail-type", "")).lower()
        for key, value in {"clusterArn": self.cluster_arn, "containerInstanceArn": self.instance_arn,
                           "ec2InstanceId": self.ec2_id, "EC2InstanceId": self.ec2_id, "instance-id": self.ec2_id,
                           "AutoScalingGroupName": self.asg,
                           "LifecycleHookName": "daemon-guard-launch" if launch else "daemon-guard-terminate",
                           }.items():
            if key in detail:
                detail[key] = value
        if "containerInstanceArns" in detail:
            detail["containerInstanceArns"] = [self.instance_arn]
        if isinstance(out.get("resources"), list):
            out["resources"] = [self.daemon_arn if ":service/" in str(r) else
                                self.instance_arn if ":container-instance/" in str(r) else r
                                for r in out["resources"]]
        return out

    def handle(self, event: object) -> tuple[dict[str, Any], dict[str, int]]:
        """Run the real intake once; the decision and the AWS writes it made."""
        before = self.writes.snapshot()
        rt = self.deployment.runtime
        self.world.begin_invocation()
        result = intake.handle(event, rt).as_dict()
        after = self.writes.snapshot()
        return result, {op: after[op] - before[op] for op in NO_WRITES}


@pytest.fixture(scope="module")
def guarded() -> Iterator[Guarded]:
    """One simulated deployment shared by the examples of this module (the clock never moves)."""
    g = Guarded()
    yield g
    g.deployment.close()


def sample(index: int) -> dict[str, Any]:
    """One raw fixture event."""
    event: dict[str, Any] = json.loads(SAMPLES[index].read_text())
    return event


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path in a JSON value (dict keys and list indexes)."""
    out: list[tuple[Any, ...]] = []
    if isinstance(value, dict):
        for k, v in value.items():
            out += [(*prefix, k), *paths(v, (*prefix, k))]
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += [(*prefix, i), *paths(v, (*prefix, i))]
    return out


def parent_of(event: Any, path: tuple[Any, ...]) -> Any:
    """The container holding the value at `path`."""
    for step in path[:-1]:
        event = event[step]
    return event


JUNK = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20),
                 st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(), max_size=2))
BAD_TIMES = st.one_of(st.sampled_from(["yyyy-mm-ddThh:mm:ssZ", "yesterday", "2024-13-45T99:99:99Z",
                                       "2024-05-01T12:00:00", "", "1714564800", "2024-05-01 12:00"]),
                      st.text(max_size=30).filter(lambda s: not s[:4].isdigit()))
HOSTILE_STRINGS = st.one_of(
    st.sampled_from(["*", "i-*", "i-x or agentConnected == true", "", " ", "\n", "\t", "😀", "i-0abc1234\x00",
                     "arn:/default", "default", "arn:aws:ec2:us-east-1:111122223333:cluster/prod",
                     "i-0abc1234' or '1' == '1", "x" * 300, "\u202e", "arn:aws:ecs:*:*:cluster/*"]),
    st.text(alphabet="i-*?[]()'\" =!~<>:/\x00\n", min_size=1, max_size=30))
IDENTIFIER_FIELDS = {"EC2InstanceId", "instance-id", "ec2InstanceId", "clusterArn", "containerInstanceArn",
                     "taskArn", "LifecycleActionToken", "LifecycleHookName", "AutoScalingGroupName"}
EXTREME_TIMES = st.sampled_from(["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59Z", "9999-12-31T23:59:59-14:00",
                                 "1970-01-01T00:00:00Z", "0001-01-01T00:00:00Z"])
INVALID_QUERIES = st.one_of(
    st.sampled_from(["attribute:ecs.instance-type ==", "attribute: == t2.micro", "(attribute:a == b",
                     "attribute:a == b)", "attribute:a in [b, c", "attribute:a =~", "bogus:x == 1",
                     "attribute:a == b and", "not", "registeredAt > not-a-date", "runningTasksCount > many",
                     "attribute:a !! b", "task:group == ", "ec2InstanceId in []"]),
    st.text(alphabet="attribute:!=~<>()[], andornt.-_ 0123456789", min_size=1, max_size=40),
).filter(lambda e: validate(e) is not None)


@st.composite
def broken_events(draw: st.DrawFn, guarded: Guarded) -> tuple[str, dict[str, Any], bool]:
    """(how, event, must_be_rejected): a rebased sample broken one way."""
    event = guarded.rebase(sample(draw(st.integers(0, len(SAMPLES) - 1))))
    how = draw(st.sampled_from(["drop", "retype", "huge", "foreign-account", "foreign-region",
                                "foreign-cluster", "foreign-asg", "bad-time", "hostile-id", "extreme",
                                "foreign-partition"]))
    detail = event.get("detail", {})
    if how == "hostile-id":
        fields = sorted(IDENTIFIER_FIELDS & set(detail)) or ["account"]
        field = draw(st.sampled_from(fields))
        (detail if field in detail else event)[field] = draw(HOSTILE_STRINGS)
        return how, event, True
    if how == "extreme":
        if "version" in detail:
            detail["version"] = draw(st.sampled_from([-1, 2**63, 10**30]))
        else:
            event["time"] = draw(EXTREME_TIMES)
        return how, event, True
    if how == "foreign-partition":
        text = json.dumps(detail).replace("arn:aws:", "arn:aws-cn:")
        event["detail"] = json.loads(text)
        return how, event, "arn:aws:" in json.dumps(detail)
    if how == "drop":
        path = draw(st.sampled_from(paths(event)))
        container = parent_of(event, path)
        del container[path[-1]]
        return how, event, False  # an optional field may go; the event then still counts as valid
    if how == "retype":
        path = draw(st.sampled_from(paths(event)))
        container = parent_of(event, path)
        old = container[path[-1]]
        new = draw(JUNK.filter(lambda v: type(v) is not type(old)))
        container[path[-1]] = new
        return how, event, False
    if how == "huge":
        key = draw(st.sampled_from([k for k, v in detail.items() if isinstance(v, str)] or ["id"]))
        target = detail if key in detail else event
        target[key] = "x" * draw(st.sampled_from([300_000, 1_000_000]))
        return how, event, True
    if how == "foreign-account":
        event["account"] = draw(st.sampled_from(["999999999999", "000000000000"]))
        for key in ("clusterArn", "containerInstanceArn"):
            if isinstance(detail.get(key), str):
                detail[key] = detail[key].replace(guarded.world.account, event["account"])
        return how, event, True
    if how == "foreign-region":
        event["region"] = draw(st.sampled_from(["eu-west-1", "ap-south-2"]))
        for key in ("clusterArn", "containerInstanceArn"):
            if isinstance(detail.get(key), str):
                detail[key] = detail[key].replace(guarded.world.region, event["region"])
        return how, event, True
    if how == "foreign-cluster":
        for key in ("clusterArn",):
            if key in detail:
                detail[key] = detail[key].replace("cluster/prod", "cluster/" + draw(st.sampled_from(["staging", "x"])))
        return how, event, "clusterArn" in detail
    if how == "foreign-asg":
        if "AutoScalingGroupName" in detail:
            detail["AutoScalingGroupName"] = draw(st.sampled_from(["other-asg", "prod-asg-2"]))
        return how, event, "AutoScalingGroupName" in detail
    event["time"] = draw(BAD_TIMES)
    return how, event, True


@given(data=st.data())
@SETTINGS
def test_a_broken_event_of_any_kind_never_raises_and_never_writes(guarded: Guarded, data: st.DataObject) -> None:
    # GIVEN a sample of any event kind, rebased onto a managed cluster and then broken
    how, event, must_reject = data.draw(broken_events(guarded))
    # WHEN the intake handles it
    result, writes = guarded.handle(event)
    # THEN it returns a decision; rejected events are malformed or ignored and make no AWS write
    assert set(result) >= {"route", "decision", "reason"}
    if must_reject:
        assert result["decision"] in ("malformed", "ignored", "skip"), (how, result)
    if result["decision"] in ("malformed", "ignored", "duplicate") or must_reject:
        assert writes == NO_WRITES, (how, result)


@given(raw=st.one_of(st.none(), st.integers(), st.text(max_size=50), st.lists(st.integers(), max_size=3),
                     st.dictionaries(st.text(max_size=10), JUNK, max_size=5)))
@SETTINGS
def test_something_that_is_not_an_event_is_malformed(guarded: Guarded, raw: object) -> None:
    # GIVEN a payload that is not an EventBridge event at all
    # WHEN the intake handles it
    result, writes = guarded.handle(raw)
    # THEN it is rejected as malformed with no AWS write
    assert result["decision"] == "malformed"
    assert writes == NO_WRITES


def test_the_rebased_samples_are_acted_on_so_the_harness_sees_writes(guarded: Guarded) -> None:
    # GIVEN the untouched terminate lifecycle sample, rebased onto the managed group and instance
    event = guarded.rebase(sample(SAMPLES.index(FIXTURES / "asg-instance-terminate-lifecycle-action."
                                                          "awsdocs-asg-userguide-2023.json")))
    event["detail"]["LifecycleActionToken"] = "11111111-2222-3333-4444-555555555555"
    event["detail"]["EC2InstanceId"] = guarded.spare_ec2_id
    # WHEN the intake handles it
    result, writes = guarded.handle(event)
    # THEN it starts the drain workflow: the write counter does see writes
    assert result["decision"] == "started", result
    assert writes["Invoke"] == 1


@given(expression=INVALID_QUERIES)
@SETTINGS
def test_an_invalid_constraint_on_a_daemon_service_is_reported_not_acted_on(guarded: Guarded,
                                                                            expression: str) -> None:
    # GIVEN a daemon service whose placement constraint does not parse (every valid daemon already runs)
    world = guarded.world
    svc = next(s for s in world.ecs.services.values() if s.name == "cwagent")
    saved = svc.constraints
    svc.constraints = [{"type": "memberOf", "expression": expression}]
    guarded.deployment.runtime.clusters.clear()  # a new container: no cached daemon list
    event = world.instance_event(world.ecs.instances[guarded.instance_arn])
    event["detail"]["version"] = data_version(guarded)
    try:
        # WHEN a container-instance event for the instance arrives
        result, writes = guarded.handle(event)
    finally:
        svc.constraints = saved
        guarded.deployment.runtime.clusters.clear()
    # THEN the intake decides without raising and touches nothing
    assert result["route"] == "placement"
    assert writes == NO_WRITES, result


_versions = iter(range(10_000, 10_000_000))


def data_version(guarded: Guarded) -> int:
    """A container-instance version never seen before (so the event is not a duplicate)."""
    return next(_versions)


# ---- daemon-guard replay ------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def fresh_log_stream() -> Iterator[None]:
    """The CLI points the Lambda logger at sys.stderr, which capsys closes after each test: detach it."""
    yield
    for handler in logger.handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.stream = io.StringIO()  # not setStream: that would flush the closed stream


@pytest.mark.parametrize("path", SAMPLES, ids=[p.name.split(".")[0] for p in SAMPLES])
def test_replay_answers_one_json_object_for_a_well_formed_sample(path: Path, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a real sample (with a real time in place of a documentation placeholder or NTH's 1970)
    event = json.loads(path.read_text())
    # (and NTH's 2015 EC2 state change), a real account in place of the Health sample's "account id"
    if event.get("time") in ("yyyy-mm-ddThh:mm:ssZ", "1970-01-01T00:00:00Z", "2015-11-11T21:29:54Z"):
        event["time"] = "2024-05-01T12:00:00Z"
    if event.get("account") == "account id":
        event["account"] = "123456789012"
    if event.get("detail", {}).get("instance-action") == "action":
        event["detail"]["instance-action"] = "terminate"
    event.setdefault("version", "0")  # the EC2 guide's state-change sample elides the envelope's version
    file = tmp_path / "event.json"
    file.write_text(json.dumps(event))
    # WHEN replayed
    code = cli(["replay", str(file), "--config", str(write_config(tmp_path))])
    out, err = capsys.readouterr()
    # THEN exit 0 and exactly one JSON object with the decision's keys
    assert code == 0, err
    decision = json.loads(out)
    assert set(decision) >= {"route", "decision", "reason", "instance", "actions"}
    assert "Traceback" not in err


def write_config(tmp_path: Path) -> Path:
    """A daemon-guard config naming the samples' clusters and groups."""
    file = tmp_path / "config.json"
    file.write_text(json.dumps({"clusters": [{"name": "default", "autoScalingGroups": ["my-asg"]}]}))
    return file


@given(data=st.data())
@settings(max_examples=30, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_replay_exits_2_with_one_line_for_malformed_input(tmp_path_factory: pytest.TempPathFactory,
                                                          capsys: pytest.CaptureFixture[str],
                                                          data: st.DataObject) -> None:
    # GIVEN a sample broken so that it cannot be an event (bad time, not JSON, not an object)
    tmp = tmp_path_factory.mktemp("replay")
    kind = data.draw(st.sampled_from(["bad-time", "not-json", "not-object", "missing-detail"]))
    event = json.loads(SAMPLES[data.draw(st.integers(0, len(SAMPLES) - 1))].read_text())
    file = tmp / "event.json"
    if kind == "bad-time":
        event["time"] = data.draw(BAD_TIMES)
        file.write_text(json.dumps(event))
    elif kind == "not-json":
        file.write_text(data.draw(st.sampled_from(["{", "not json", "{'a': 1}", "[1,"])))
    elif kind == "not-object":
        file.write_text(json.dumps(data.draw(st.one_of(st.integers(), st.lists(st.integers()), st.text()))))
    else:
        del event["detail"]
        file.write_text(json.dumps(event))
    capsys.readouterr()
    # WHEN replayed
    code = cli(["replay", str(file), "--config", str(write_config(tmp))])
    out, err = capsys.readouterr()
    # THEN exit 2, nothing on stdout, one message line on stderr and no traceback
    assert code == 2, (kind, out, err)
    assert out == ""
    assert len(messages(err)) == 1, err
    assert messages(err)[0].startswith("daemon-guard replay: ")
    assert "Traceback" not in err


def messages(stderr: str) -> list[str]:
    """Lines of stderr meant for a person (the intake's structured JSON log lines left out)."""
    return [line for line in stderr.strip().splitlines() if not line.startswith('{"level"')]


def test_replay_stderr_is_exactly_one_line_for_a_malformed_event(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a sample with a documentation placeholder for its time
    file = tmp_path / "event.json"
    file.write_text(SAMPLES[0].read_text())
    # WHEN replayed
    code = cli(["replay", str(file), "--config", str(write_config(tmp_path))])
    _, err = capsys.readouterr()
    # THEN stderr holds the one-line message and nothing else
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("name", ["missing.json", "directory"])
def test_replay_exits_2_for_an_unreadable_file(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a path that does not exist, or a directory
    path = tmp_path / name
    if name == "directory":
        path.mkdir()
    # WHEN replayed
    code = cli(["replay", str(path), "--config", str(write_config(tmp_path))])
    out, err = capsys.readouterr()
    # THEN exit 2 with one line on stderr and no traceback
    assert code == 2
    assert out == ""
    assert len(messages(err)) == 1, err
    assert "Traceback" not in err


# ---- hostile identifiers: no query from event data can reach another instance --------------------

HOSTILE_IDS = ["*", "i-*", "i-x or agentConnected == true"]
ID_CARRIERS = {
    "spot": ("ec2-spot-instance-interruption-warning.aws-node-termination-handler.json", "instance-id"),
    "rebalance": ("ec2-instance-rebalance-recommendation.aws-node-termination-handler.json", "instance-id"),
    "terminate": ("asg-instance-terminate-lifecycle-action.awsdocs-asg-userguide-2023.json", "EC2InstanceId"),
    "launch": ("asg-launch-lifecycle-action-ec2-to-asg.awsdocs-asg-userguide-2023.json", "EC2InstanceId"),
}
_tokens = iter(range(1, 10**6))


def carrier(guarded: Guarded, kind: str, instance_id: str) -> dict[str, Any]:
    """A drain or launch trigger on the managed group, now, naming `instance_id`, with a fresh token."""
    name, field = ID_CARRIERS[kind]
    event = guarded.rebase(sample(SAMPLES.index(FIXTURES / name)))
    event["time"] = guarded.world.clock.iso()
    event["id"] = f"hostile-{next(_tokens)}"
    event["detail"][field] = instance_id
    if "LifecycleActionToken" in event["detail"]:
        event["detail"]["LifecycleActionToken"] = f"{next(_tokens):08d}-2222-3333-4444-555555555555"
    return event


def ecs_reads(guarded: Guarded) -> int:
    """ListContainerInstances calls the simulated ECS API has answered so far."""
    return guarded.world.ecs_api.calls.get("ListContainerInstances", 0)


@pytest.mark.parametrize("instance_id", HOSTILE_IDS)
@pytest.mark.parametrize("kind", sorted(ID_CARRIERS))
def test_a_wildcard_or_query_fragment_instance_id_drains_nothing_in_the_simulator(
        guarded: Guarded, kind: str, instance_id: str) -> None:
    # GIVEN a Spot warning, rebalance recommendation or lifecycle action for the managed group whose
    # instance id is a wildcard or a query fragment that ECS's filter would match on every instance
    event = carrier(guarded, kind, instance_id)
    reads = ecs_reads(guarded)
    # WHEN the real intake handles it against the simulator
    result, writes = guarded.handle(event)
    # THEN it is malformed, naming the field: no drain starts, nothing stops, no lifecycle action completes,
    # and no ECS query is even made from the id
    assert result["decision"] == "malformed", result
    assert f".{ID_CARRIERS[kind][1]}: expected an EC2 instance id" in result["reason"]
    assert writes == NO_WRITES
    assert ecs_reads(guarded) == reads


def test_the_same_trigger_with_a_real_instance_id_is_acted_on(guarded: Guarded) -> None:
    # GIVEN the Spot warning of the hostile test, naming a real managed instance instead
    event = carrier(guarded, "spot", guarded.spare_ec2_id)
    # WHEN handled / THEN a drain is started (or joins the one already running): the path is live
    result, _ = guarded.handle(event)
    assert result["decision"] in ("started", "joined"), result


def test_the_ecs_lookup_refuses_an_unvalidated_id_without_querying_ecs(guarded: Guarded) -> None:
    # GIVEN the ECS port of the managed cluster
    ecs = guarded.deployment.runtime.cluster("prod")
    reads = ecs_reads(guarded)
    # WHEN asked for the instance of a hostile id (a caller that skipped the edge's validation)
    for hostile in HOSTILE_IDS:
        with pytest.raises(IdentifierError):
            ecs.instance_arn_by_ec2_id(hostile)  # type: ignore[arg-type]
    # THEN no query was sent; and a real id finds its own instance, and only it
    assert ecs_reads(guarded) == reads
    assert ecs.instance_arn_by_ec2_id(InstanceId(guarded.ec2_id)) == guarded.instance_arn
    assert ecs_reads(guarded) == reads + 1


def test_an_operator_drain_payload_with_a_hostile_instance_id_fails_before_any_ecs_call(guarded: Guarded) -> None:
    # GIVEN an operator's drain request naming "i-*", sent straight to the deployed drain workflow
    rt = guarded.deployment.runtime
    assert rt.workflows is not None  # invoked raw: a `DrainRequest` could not even be built with this id
    assert rt.workflows.start(guarded.deployment.drain_arn, "drain-operator-hostile",
                              {"instanceId": "i-*", "cluster": "prod", "trigger": "operator"})
    # WHEN the workflow is invoked (a moment later on the simulated clock)
    guarded.world.clock.run_until(guarded.world.clock.now + 1.0)
    # THEN it fails on the payload before its first step: nothing read, nothing stopped, nothing completed
    execution = guarded.deployment.durable.executions["drain-operator-hostile"]
    assert execution.status == "FAILED"
    assert "drain payload: expected an EC2 instance id" in (execution.error or "")
    assert execution.step_runs == {} and execution.operations == []


def test_a_launch_gate_payload_with_a_hostile_instance_id_fails_before_any_step(guarded: Guarded) -> None:
    # GIVEN a launch gate invoked raw with "i-*" (the intake only ever sends a `GateRequest`'s payload)
    rt = guarded.deployment.runtime
    assert rt.workflows is not None
    assert rt.workflows.start(guarded.deployment.gate_arn, "gate-hostile",
                              {"instanceId": "i-*", "cluster": "prod", "asg": guarded.asg,
                               "hook": "daemon-guard-launch"})
    # WHEN the workflow is invoked (a moment later on the simulated clock)
    guarded.world.clock.run_until(guarded.world.clock.now + 1.0)
    # THEN it fails on the payload, by the request's own parser, before its first step
    execution = guarded.deployment.durable.executions["gate-hostile"]
    assert execution.status == "FAILED"
    assert "launch gate payload: expected an EC2 instance id" in (execution.error or "")
    assert execution.step_runs == {} and execution.operations == []


@pytest.mark.parametrize("query_text", [
    "ec2InstanceId == *", "ec2InstanceId == i-*", "ec2InstanceId == i-x or agentConnected == true",
    "ec2InstanceId == {id}", "ec2InstanceId == {id} and agentConnected == false",
])
def test_replay_answers_an_instance_lookup_exactly_as_the_simulated_ecs_does(
        guarded: Guarded, query_text: str) -> None:
    # GIVEN a replay snapshot taken from the simulated cluster (DescribeContainerInstances, as JSON)
    world = guarded.world
    arns = [i.arn for i in world.ecs.instances.values() if i.cluster == "prod"]
    shapes = world.ecs_api.call("ecs", "DescribeContainerInstances",
                                {"cluster": "prod", "containerInstances": arns})["containerInstances"]
    doc = json.loads(json.dumps({"containerInstances": shapes}, default=lambda d: d.isoformat()))
    port = snapshot_ecs(validate_state(doc))
    expression = query_text.format(id=guarded.ec2_id)
    # WHEN both answer ListContainerInstances with that filter
    simulated = world.ecs_api.call("ecs", "ListContainerInstances", {"cluster": "prod", "filter": expression})
    replayed = port.instance_arns(query=expression)
    # THEN they name the same instances: a wildcard would match them all in both (which is why the id
    # is validated before any query), and a real id exactly its own instance
    assert sorted(replayed) == sorted(simulated["containerInstanceArns"])


STATE = Path(__file__).resolve().parents[1] / "fixtures" / "replay-state.json"


def replay_files(tmp: Path, event: dict[str, Any], config: dict[str, Any] | None = None) -> list[str]:
    """Arguments of a replay of `event` against the fixture snapshot, the samples' config unless given."""
    (tmp / "event.json").write_text(json.dumps(event))
    (tmp / "config.json").write_text(json.dumps(
        config or {"clusters": [{"name": "default", "autoScalingGroups": ["my-asg"]}]}))
    return ["replay", str(tmp / "event.json"), "--config", str(tmp / "config.json"), "--state", str(STATE)]


def spot_warning(instance_id: str, account: str = "111122223333") -> dict[str, Any]:
    """NTH's Spot warning, dated now-ish, for `instance_id` in the snapshot's account."""
    event = sample(SAMPLES.index(FIXTURES / "ec2-spot-instance-interruption-warning.aws-node-termination-handler.json"))
    event["time"], event["account"] = "2024-05-01T12:00:00Z", account
    event["detail"]["instance-id"] = instance_id
    return event


@pytest.mark.parametrize("instance_id", HOSTILE_IDS)
def test_replay_rejects_a_hostile_instance_id_as_the_lambda_does(instance_id: str, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a snapshot with two instances and a Spot warning whose instance id would match them both
    args = replay_files(tmp_path, spot_warning(instance_id))
    # WHEN replayed
    code = cli(args)
    out, err = capsys.readouterr()
    # THEN exit 2, one line naming the event file and the field; no decision, so no action either
    assert (code, out) == (2, "")
    assert messages(err) == [f"daemon-guard replay: {tmp_path / 'event.json'}: malformed event: EC2 Spot "
                             f"Instance Interruption Warning: detail.instance-id: expected an EC2 instance id "
                             f"(i- and 8 or 17 hex digits), got {instance_id!r}"]


def test_replay_of_the_same_warning_for_a_real_instance_plans_its_drain(tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    code = cli(replay_files(tmp_path, spot_warning("i-0b662ef9931388ba0")))
    out, err = capsys.readouterr()
    assert code == 0, err
    decision = json.loads(out)
    assert (decision["decision"], decision["instance"]) == ("start-workflow", "i-0b662ef9931388ba0")


@pytest.mark.parametrize(
    ("home", "flags", "account", "expected"),
    [
        ({"account": "111122223333", "region": "us-east-1"}, [], "999999999999",
         "account 999999999999 is not this deployment's account"),
        ({"account": "111122223333", "region": "eu-west-1"}, [], "111122223333",
         "region us-east-1 is not this deployment's region"),
        ({"region": "cn-north-1"}, [], "111122223333", "partition aws is not this deployment's partition"),
        (None, ["--account", "222233334444"], "111122223333", "account 111122223333 is not this deployment's"),
        ({"account": "222233334444"}, ["--account", "111122223333"], "111122223333", None),
        (None, [], "111122223333", None),
    ],
)
def test_replay_ignores_an_event_from_outside_the_configured_home_as_the_lambda_does(
        home: dict[str, str] | None, flags: list[str], account: str, expected: str | None, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a config naming the home (or flags naming it), and a Spot warning from some account
    config: dict[str, Any] = {"clusters": [{"name": "default", "autoScalingGroups": ["my-asg"]}]}
    if home:
        config["home"] = home
    # WHEN replayed
    code = cli([*replay_files(tmp_path, spot_warning("i-0b662ef9931388ba0", account), config), *flags])
    out, err = capsys.readouterr()
    decision = json.loads(out)
    # THEN events from elsewhere are ignored, saying why; without a home nothing is foreign
    assert code == 0, err
    if expected is None:
        assert decision["decision"] == "start-workflow", decision
    else:
        assert decision["decision"] == "ignored"
        assert decision["reason"].startswith(expected), decision


@pytest.mark.parametrize("partition", ["aws-cn", "aws-us-gov"])
def test_an_ecs_event_from_another_partition_is_ignored_by_the_lambda(guarded: Guarded, partition: str) -> None:
    # GIVEN a container instance event of the managed cluster, its ARNs in another partition
    world = guarded.world
    event = world.instance_event(world.ecs.instances[guarded.instance_arn])
    event["detail"]["version"] = data_version(guarded)
    for key in ("clusterArn", "containerInstanceArn"):
        event["detail"][key] = event["detail"][key].replace("arn:aws:", f"arn:{partition}:")
    # WHEN handled / THEN ignored as foreign, with no write
    result, writes = guarded.handle(event)
    assert result["decision"] == "ignored", result
    assert partition in result["reason"]
    assert writes == NO_WRITES


# ---- the property: no input to `daemon-guard replay` escapes as a traceback --------------------------

EXTREMES = st.sampled_from([-1, 2**31, 2**63, -(2**63) - 1, 10**30, 1e308, -1e308, 0.5, "", "x" * 5000, True,
                            "9999-12-31T23:59:59Z", "0001-01-01T00:00:00+01:00", "yesterday", "²", "١٢٣"])
DEPTHS = st.sampled_from([30, 70, 1000, 5000])


def nested(depth: int) -> Any:
    """A value `depth` lists deep."""
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


@st.composite
def mutated_state(draw: st.DrawFn) -> tuple[str, str, bool]:
    """(how, STATE.json text, must_fail): the fixture snapshot broken one way (types, deletions, extremes,
    hostile strings, depth, duplicates, not JSON)."""
    state = json.loads(STATE.read_text())
    how = draw(st.sampled_from(["drop", "retype", "extreme", "hostile", "deep", "duplicate", "nan", "whole"]))
    if how == "whole":
        whole = draw(st.one_of(JUNK, HOSTILE_STRINGS, st.just({"containerInstances": "x"})))
        return how, json.dumps(whole), not isinstance(whole, dict) or "containerInstances" in whole
    if how == "nan":
        return how, STATE.read_text().replace('"integerValue": 2048', '"integerValue": NaN', 1), True
    if how == "deep":
        depth = draw(DEPTHS)
        if draw(st.booleans()):
            return how, '{"tasks": ' + "[" * depth + "0" + "]" * depth + "}", True
        return how, "[" * depth + "]" * 10, True
    if how == "duplicate":
        key = draw(st.sampled_from(["containerInstances", "tasks", "services", "taskDefinitions"]))
        state[key] = state[key] + state[key][:1]
        return how, json.dumps(state), True
    path = draw(st.sampled_from(paths(state)))
    container = parent_of(state, path)
    if how == "drop":
        del container[path[-1]]
    elif how == "retype":
        old = container[path[-1]]
        container[path[-1]] = draw(JUNK.filter(lambda v: type(v) is not type(old)))
    else:
        container[path[-1]] = draw(EXTREMES if how == "extreme" else HOSTILE_STRINGS)
    return how, json.dumps(state), False


@st.composite
def mutated_event(draw: st.DrawFn) -> tuple[str, dict[str, Any], bool]:
    """(how, event, must_fail): a sample (dated in AWS's era) broken by a hostile id, an extreme or a
    deletion; hostile ids and extremes must exit 2."""
    event = sample(draw(st.integers(0, len(SAMPLES) - 1)))
    # (and NTH's 2015 EC2 state change), a real account in place of the Health sample's "account id"
    if event.get("time") in ("yyyy-mm-ddThh:mm:ssZ", "1970-01-01T00:00:00Z", "2015-11-11T21:29:54Z"):
        event["time"] = "2024-05-01T12:00:00Z"
    if event.get("account") == "account id":
        event["account"] = "123456789012"
    detail = event.get("detail", {})
    how = draw(st.sampled_from(["hostile-id", "extreme", "drop"]))
    fields = sorted(IDENTIFIER_FIELDS & set(detail))
    if how == "hostile-id" and fields:
        detail[draw(st.sampled_from(fields))] = draw(HOSTILE_STRINGS)
        return how, event, False  # a hostile ASG name may be a valid, unmanaged one: ignored, exit 0
    if how == "extreme":
        event["time"] = draw(EXTREME_TIMES)
        return how, event, True
    path = draw(st.sampled_from(paths(event)))
    del parent_of(event, path)[path[-1]]
    return "drop", event, False


@given(data=st.data())
@settings(max_examples=80, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_replay_answers_any_mutated_event_or_state_with_a_decision_or_one_line_and_exit_2(
        tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str], data: st.DataObject) -> None:
    # GIVEN a real event and the documented snapshot, one of them mutated
    tmp = tmp_path_factory.mktemp("prop")
    event = spot_warning("i-0b662ef9931388ba0")
    state_text = STATE.read_text()
    must_fail = True
    if data.draw(st.booleans(), label="mutate the state"):
        how, state_text, must_fail = data.draw(mutated_state())
    else:
        how, event, must_fail = data.draw(mutated_event())
    args = replay_files(tmp, event)
    (tmp / "state.json").write_text(state_text)
    args[-1] = str(tmp / "state.json")
    capsys.readouterr()
    # WHEN replayed
    code = cli(args)
    out, err = capsys.readouterr()
    event_(f"{how}: exit {code}")  # --hypothesis-show-statistics shows what the examples covered
    # THEN no traceback and no internal error: a decision (exit 0), or one line naming a file (exit 2)
    assert "Traceback" not in err and "internal error" not in err, (how, err)
    assert code in (0, 2), (how, code, err)
    if code == 2:
        assert out == ""
        assert len(messages(err)) == 1, (how, err)
        assert messages(err)[0].startswith(f"daemon-guard replay: {tmp}"), (how, err)
    else:
        assert set(json.loads(out)) >= {"route", "decision", "reason"}
    if must_fail:
        assert code == 2, (how, out)
    # AND a hostile identifier never yields an action on some other instance
    if code == 0 and how == "hostile-id":
        assert all(a.get("payload") is None or a["payload"]["instanceId"] in ("i-0b662ef9931388ba0", "i-f3a8506b")
                   for a in json.loads(out)["actions"]), out


def _state(**changes: Any) -> str:
    state = json.loads(STATE.read_text())
    for key, value in changes.items():
        state[key] = value
    return json.dumps(state)


def _first(key: str, **fields: Any) -> str:
    state = json.loads(STATE.read_text())
    entry = state[key][0]
    for name, value in fields.items():
        if value is MISSING:
            del entry[name]
        else:
            entry[name] = value
    return json.dumps(state)


MISSING = object()


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ('"x"', "expected a JSON object, got str"),
        ("[]", "expected a JSON object, got list"),
        (_first("taskDefinitions", taskDefinitionArn=MISSING), "taskDefinitions[0].taskDefinitionArn: required"),
        (_first("containerInstances", registeredAt="yesterday"),
         "containerInstances[0].registeredAt: expected an ISO 8601 time, got 'yesterday'"),
        (_first("containerInstances", version=0).replace('"version": 0', '"version": NaN'),
         "not JSON: NaN is not a JSON number"),
        (_state(taskDefinitions=[]),
         "tasks[0].taskDefinitionArn: arn:aws:ecs:us-east-1:111122223333:task-definition/log-router:1 is not in "
         "taskDefinitions"),
        (_first("services", taskDefinition=MISSING), "services[0].taskDefinition: required for a DAEMON service"),
        (_first("containerInstances", runningTasksCount="1"),
         "containerInstances[0].runningTasksCount: expected a whole number, got str"),
        (_first("containerInstances", version=2**63), "containerInstances[0].version: 9223372036854775808 is out "
                                                      "of range for an long"),
        (_first("containerInstances", ec2InstanceId="i-*"),
         "containerInstances[0].ec2InstanceId: expected an EC2 instance id (i- and 8 or 17 hex digits), got 'i-*'"),
        (_first("containerInstances", status="GONE"), "containerInstances[0].status: expected one of ACTIVE"),
        (_first("services", deploymentConfiguration=[]),
         "services[0].deploymentConfiguration: expected an object, got list"),
        (_state(containerInstances="x"), "containerInstances: expected a list, got str"),
        (_first("containerInstances", attributes=[{"value": "t2.medium"}]),
         "containerInstances[0].attributes[0].name: required"),
        (_first("services", tags=[{"value": "daemons"}]), "services[0].tags[0].key: required"),
        (_state(cluster="a b"), "cluster: expected a cluster name"),
        ("[" * 1000 + "]" * 1000, "expected a JSON object, got list"),
        ("\xff", "not UTF-8 text (byte 0)"),
    ],
    ids=["string", "list", "td-without-arn", "registered-yesterday", "version-nan", "task-def-missing",
         "daemon-without-td", "count-as-string", "version-overflow", "hostile-ec2-id", "bad-enum", "struct-as-list",
         "list-as-string", "attribute-without-name", "tag-without-key", "bad-cluster", "1000-deep", "latin-1"],
)
def test_a_malformed_state_exits_2_naming_the_file_and_field(text: str, field: str, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a snapshot broken in one of the ways that used to give a traceback
    args = replay_files(tmp_path, spot_warning("i-0b662ef9931388ba0"))
    (tmp_path / "state.json").write_text(text, encoding="latin-1" if text == "\xff" else "utf-8")
    args[-1] = str(tmp_path / "state.json")
    # WHEN replayed
    code = cli(args)
    out, err = capsys.readouterr()
    # THEN exit 2 and one line naming the file and the field, no traceback
    assert (code, out) == (2, "")
    assert len(messages(err)) == 1, err
    assert messages(err)[0].startswith(f"daemon-guard replay: {tmp_path / 'state.json'}: {field}"), err


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ('{"clusters": []}', "daemon-guard config: clusters: list at least one cluster"),
        ('{"context": 3}', "context: must be an object"),
        ("[" * 1000 + "]" * 1000, "expected a JSON object, got list"),
        ('{"clusters": [{"name": "default"}], "home": {"account": "x"}}', "daemon-guard config: home.account"),
    ],
)
def test_a_malformed_config_exits_2_naming_the_file_and_field(config: str, field: str, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    args = replay_files(tmp_path, spot_warning("i-0b662ef9931388ba0"))
    (tmp_path / "config.json").write_text(config)
    code = cli(args)
    out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    assert messages(err) and len(messages(err)) == 1, err
    assert messages(err)[0].startswith(f"daemon-guard replay: {tmp_path / 'config.json'}: {field}"), err


def test_a_1000_deep_event_exits_2_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = replay_files(tmp_path, {})
    (tmp_path / "event.json").write_text('{"detail":' * 1000 + "{}" + "}" * 1000)
    code = cli(args)
    _, err = capsys.readouterr()
    assert code == 2
    assert messages(err) == [f"daemon-guard replay: {tmp_path / 'event.json'}: "
                             "nested more than 64 levels deep"]


@pytest.mark.parametrize("argv", [["replay"], ["replay", "e.json", "--bogus"], ["nonsense"], []])
def test_a_bad_command_line_exits_2_in_one_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli(argv)
    _, err = capsys.readouterr()
    assert exited.value.code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("daemon-guard")


@pytest.mark.parametrize("debug", [False, True])
def test_an_unexpected_error_exits_1_asking_for_a_report_with_the_traceback_only_under_debug(
        debug: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a bug somewhere below the command (here: the replay itself raises)
    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr("daemon_guard_cli.replay.replay", broken)
    # WHEN the command runs, with or without --debug
    code = cli([*(["--debug"] if debug else []), *replay_files(tmp_path, spot_warning("i-0b662ef9931388ba0"))])
    _, err = capsys.readouterr()
    # THEN exit 1 with one line asking for a report; the traceback only with --debug
    lines = messages(err)
    assert code == 1
    assert lines[-1].startswith("daemon-guard replay: internal error (RuntimeError: boom second line); this is a bug")
    assert ("Traceback" in err) is debug
    if not debug:
        assert len(lines) == 1 and lines[0].endswith("(rerun with --debug for the traceback)")


def test_a_trigger_dated_hours_ahead_of_the_clock_is_malformed(guarded: Guarded) -> None:
    # GIVEN a Spot warning for a managed instance dated two hours after the deployment's clock
    event = carrier(guarded, "spot", guarded.spare_ec2_id)
    event["time"] = guarded.world.clock.iso(guarded.world.clock.now + 7200)
    # WHEN handled / THEN malformed (its deadline would be two hours away), and nothing is done
    result, writes = guarded.handle(event)
    assert result["decision"] == "malformed", result
    assert "after this deployment's clock" in result["reason"]
    assert writes == NO_WRITES


def test_a_spot_deadline_outside_the_bounds_is_refused_where_it_is_used(guarded: Guarded) -> None:
    # GIVEN a Spot warning value whose deadline is 1970 (built by hand: parsing never makes one)
    event = SpotInterruption(account=guarded.world.account, region=guarded.world.region,
                             ec2_instance_id=InstanceId(guarded.spare_ec2_id), action="terminate",
                             deadline=datetime(1970, 1, 1, 0, 2, tzinfo=UTC), event_id="by-hand",
                             time=datetime(1970, 1, 1, tzinfo=UTC))
    route = Route("drain", "Spot interruption warning", "prod", ec2_instance_id=event.ec2_instance_id,
                  trigger="spot")
    before = guarded.writes.snapshot()
    # WHEN a drain would start from it / THEN it does not
    result = start_drain(route, event, guarded.deployment.runtime)
    assert result.decision == "malformed"
    assert guarded.writes.snapshot() == before


@pytest.mark.parametrize(
    ("flags", "line"),
    [
        (["--account", "1111"], "--account: expected an AWS account id (12 digits), got '1111'"),
        (["--partition", "AWS"], "--partition: expected an AWS partition such as aws or aws-cn, got 'AWS'"),
        (["--region", "mars-1"], "--region: expected an AWS Region name such as us-east-1, got 'mars-1'"),
        (["--partition", "aws", "--region", "cn-north-1"], "--partition: aws does not hold region cn-north-1"),
    ],
)
def test_a_bad_home_flag_exits_2_naming_the_flag(flags: list[str], line: str, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    code = cli([*replay_files(tmp_path, spot_warning("i-0b662ef9931388ba0")), *flags])
    out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    assert len(messages(err)) == 1 and messages(err)[0].startswith(f"daemon-guard replay: {line}"), err
