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
from pathlib import Path
from typing import Any

import pytest
from daemon_guard.core.query import validate
from daemon_guard.handlers import intake
from daemon_guard.handlers.runtime import logger
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daemon_guard_cli.main import main as cli
from sim.deployment import GuardDeployment
from sim.scenarios import ClusterSpec, build_cluster
from sim.world import World, WorldOptions
from tests.integration.conftest import WriteCounter, config_for

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "events"
SAMPLES = sorted(FIXTURES.glob("*.json"))
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
NO_WRITES = {"StopTask": 0, "PutAttributes": 0, "DeleteAttributes": 0, "UpdateContainerInstancesState": 0,
             "RunTask": 0, "StartTask": 0, "CompleteLifecycleAction": 0, "RecordLifecycleActionHeartbeat": 0,
             "Invoke": 0, "SendDurableExecutionCallbackSuccess": 0}


class Guarded:
    """A managed cluster with one registered instance, daemon-guard deployed, clock at rest."""

    def __init__(self) -> None:
        self.world = World(WorldOptions(seed=11))
        spec = ClusterSpec(replica_services=2, desired_per_service=2)
        build_cluster(self.world, spec)
        self.asg = spec.asg
        self.world.asg.scale_out(spec.asg, 2, 1.0)
        self.world.clock.run_until(120.0)
        self.deployment = GuardDeployment(self.world, config_for([spec.asg], launch_hook=True), reconcile=False)
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
        result = intake.handle(event, rt)
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
                                "foreign-cluster", "foreign-asg", "bad-time"]))
    detail = event.get("detail", {})
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
    # GIVEN a real sample (with a real time in place of a documentation placeholder)
    event = json.loads(path.read_text())
    if event.get("time") == "yyyy-mm-ddThh:mm:ssZ":
        event["time"] = "2024-05-01T12:00:00Z"
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
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
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
