"""Regenerate examples/state.json and examples/events/*.json from a simulated cluster (run from the repository).

The cluster is the demo's: three daemons (xray-daemon, cwagent, fluent-bit) and replica services
under a backlog, on the Auto Scaling group ``prod-asg``. Four instances run; then one more
launches, and another, until the replica backlog fills a new one before the daemon scheduler's cycle
comes round so that a daemon no longer fits. The snapshot is taken with `daemon-guard snapshot`'s own
capture, through botocore, at the first moment `replay` plans evictions for that instance.

- ``events/instance-registered.json``: the ECS Container Instance State Change of the new instance
  (replay: the placement decision, with the evictions that make room for the missing daemons);
- ``events/instance-terminating.json``: the Auto Scaling terminate lifecycle action of an older
  instance (replay: a drain workflow started for it).
"""

from __future__ import annotations

import json
import sys
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.scenarios import DAEMONS, ClusterSpec, build_cluster, keep_backlog
from daemon_guard_cli.live import _json_value, capture
from daemon_guard_cli.replay import load_config, replay
from sim.autoscaling import InstanceType
from sim.ecs import profile_params
from sim.world import World, WorldOptions

DAEMON_NAMES = tuple(d[0] for d in DAEMONS)
HERE = Path(__file__).resolve().parent
SEED = 5
# The snapshot's behaviour profile: placement as users report it (no daemon reservation), which is what the
# committed snapshot was written with.
PROFILE = "as-reported"


def _write(path: Path, doc: Any) -> None:
    path.write_text(json.dumps(doc, indent=1, default=_json_value) + "\n")
    print(f"wrote {path.relative_to(HERE.parent)}", file=sys.stderr)


def main() -> int:
    """Build the story, write the snapshot and the two events."""
    world = World(WorldOptions(seed=SEED, ecs=profile_params(PROFILE)))
    spec = ClusterSpec(replica_services=6, desired_per_service=3, instance_type=InstanceType("m5.large", 2048, 7600))
    build_cluster(world, spec)
    world.bus.add_rule("tap", {"source": ["aws.ecs"]}, lambda _event: None)
    keep_backlog(world, spec.name, backlog=4, period_s=5.0, until=20_000.0)
    world.asg.scale_out(spec.asg, 4, 5.0)
    world.clock.run_until(600.0)
    before = set(world.ecs.instances)
    config = load_config(str(HERE.parent / "cdk.json"), {})
    found = None
    for _attempt in range(60):
        known = set(world.ecs.instances)
        world.asg.scale_out(spec.asg, 1, 0.0)
        deadline = world.clock.now + 120.0
        while found is None and world.clock.now < deadline:
            world.clock.run_until(world.clock.now + 1.0)
            for arn in set(world.ecs.instances) - known:
                groups = {t.group for t in world.ecs.live_tasks(world.ecs.instances[arn])}
                if all(f"service:{name}" in groups for name in DAEMON_NAMES):
                    continue  # every daemon placed (or starting): nothing to decide
                event = json.loads(json.dumps(world.instance_event(world.ecs.instances[arn]), default=_json_value))
                state = json.loads(json.dumps(capture(world.client("ecs"), spec.name), default=_json_value))
                if replay(event, config, state)["actions"]:
                    found = (event, state)
        if found is not None:
            break
    if found is None:
        raise SystemExit("no launch needed evictions in 60 tries; change SEED")
    registered, state = found
    _write(HERE / "state.json", state)
    _write(HERE / "events" / "instance-registered.json", registered)
    oldest = min((world.ecs.instances[a] for a in before), key=lambda i: i.registered_at)
    when = world.clock.datetime() + timedelta(seconds=5)
    _write(HERE / "events" / "instance-terminating.json", {
        "version": "0", "id": str(uuid.UUID(int=world.ecs.rng.getrandbits(128))),
        "detail-type": "EC2 Instance-terminate Lifecycle Action", "source": "aws.autoscaling",
        "account": world.account, "time": when, "region": world.region,
        "resources": [f"arn:aws:autoscaling:{world.region}:{world.account}:autoScalingGroup:"
                      f"{uuid.UUID(int=world.ecs.rng.getrandbits(128))}:autoScalingGroupName/{spec.asg}"],
        "detail": {"LifecycleActionToken": str(uuid.UUID(int=world.ecs.rng.getrandbits(128))),
                   "AutoScalingGroupName": spec.asg, "LifecycleHookName": "daemon-guard-terminate",
                   "EC2InstanceId": oldest.ec2_instance_id,
                   "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING",
                   "Origin": "AutoScalingGroup", "Destination": "EC2"},
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
