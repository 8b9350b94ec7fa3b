"""`replay --state`: the state must be a STATE.json, and of the event's cluster, account and region.

A state read from another cluster, another account or another region (or a file that is no state at
all, such as a cdk.json) would give a plausible decision about the wrong cluster ("container instance
no longer registered"). `load_state` refuses such a state in one line (`InputError`, exit 2).

What is compared: the state's ``cluster`` and the cluster, account and region its ECS ARNs name,
against the event's envelope (``account``, ``region``) and cluster (``detail.clusterArn``, or the
configured cluster of ``detail.AutoScalingGroupName``). What either side does not say is not judged.
An event from outside the home (another account, region or partition than the configuration's or the
flags') is not judged either: the Lambda ignores it, and so does replay, whatever the state.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from daemon_guard.core.config import Config, Home, cluster_name_from_arn

from daemon_guard_cli.errors import InputError
from daemon_guard_cli.replay import STATE_LISTS, Snapshot, validate_state

STATE_KEYS = ("cluster", *STATE_LISTS)
# ECS resources whose ARN (new format) carries the cluster's name: <kind>/<cluster>/<id>.
_IN_CLUSTER = ("container-instance", "task")


@dataclass(frozen=True)
class Scope:
    """Which clusters, accounts and regions one side names (empty: it does not say)."""

    clusters: frozenset[str] = frozenset()
    accounts: frozenset[str] = frozenset()
    regions: frozenset[str] = frozenset()


def load_state(doc: Any, path: str, event: Any, config: Config, home: Home | None = None) -> Snapshot:
    """The validated state of `path`, refused (InputError) unless it is a state of the event's scope
    (or the event is from outside `home`, which replay ignores as the Lambda does)."""
    if isinstance(doc, dict) and not any(key in doc for key in STATE_KEYS):
        raise InputError(path, f"not a STATE.json: it has none of {', '.join(STATE_KEYS)} (`daemon-guard snapshot` "
                               "writes one; schema: docs/replay.md)")
    state = validate_state(doc, path)
    scope = event_scope(event, config)
    if home is not None and scope_mismatch(home_scope(home), scope):
        return state
    problem = scope_mismatch(state_scope(state), scope)
    if problem:
        raise InputError(path, f"{problem}: snapshot the event's cluster (`daemon-guard snapshot --cluster ...`)")
    return state


def _arns(state: Snapshot) -> Iterator[str]:
    for inst in state.container_instances:
        yield str(inst.get("containerInstanceArn", ""))
    for task in state.tasks:
        yield from (str(task.get(k, "")) for k in ("taskArn", "clusterArn", "containerInstanceArn"))
    for svc in state.services:
        yield from (str(svc.get(k, "")) for k in ("serviceArn", "clusterArn"))


def state_scope(state: Snapshot) -> Scope:
    """The clusters, accounts and regions a state names: its ``cluster`` and its ECS ARNs."""
    clusters, accounts, regions = set(), set(), set()
    if state.cluster:
        clusters.add(state.cluster)
    for arn in _arns(state):
        parts = arn.split(":", 5)
        if len(parts) < 6 or parts[0] != "arn" or parts[2] != "ecs":
            continue
        regions.add(parts[3])
        accounts.add(parts[4])
        kind, _, rest = parts[5].partition("/")
        if kind == "cluster":
            clusters.add(rest)
        elif kind in _IN_CLUSTER and rest.count("/") == 1:
            clusters.add(rest.split("/", 1)[0])
    return Scope(frozenset(clusters), frozenset(a for a in accounts if a), frozenset(r for r in regions if r))


def event_scope(event: Any, config: Config) -> Scope:
    """The cluster, account and region an EventBridge event names (what it does not say stays empty)."""
    if not isinstance(event, Mapping):
        return Scope()
    detail = event.get("detail")
    detail = detail if isinstance(detail, Mapping) else {}
    cluster: str | None = None
    if isinstance(detail.get("clusterArn"), str):
        cluster = cluster_name_from_arn(detail["clusterArn"])
    elif isinstance(detail.get("AutoScalingGroupName"), str):
        managed = config.cluster_of_group(detail["AutoScalingGroupName"])
        cluster = managed.name if managed else None
    account, region = event.get("account"), event.get("region")
    return Scope(frozenset([cluster] if cluster else ()),
                 frozenset([account] if isinstance(account, str) and account else ()),
                 frozenset([region] if isinstance(region, str) and region else ()))


def home_scope(home: Home) -> Scope:
    """The account and region the deployment's home names (a partition alone names neither)."""
    return Scope(accounts=frozenset([home.account] if home.account else ()),
                 regions=frozenset([home.region] if home.region else ()))


def scope_mismatch(state: Scope, event: Scope) -> str | None:
    """One line saying where the state and the event part ways, or None when nothing said differs."""
    for what, theirs, ours in (("cluster", state.clusters, event.clusters), ("account", state.accounts,
                                                                             event.accounts),
                               ("region", state.regions, event.regions)):
        if theirs and ours and theirs != ours:
            return (f"the state is of {what} {', '.join(sorted(theirs))} but the event is of {what} "
                    f"{', '.join(sorted(ours))}")
    return None
