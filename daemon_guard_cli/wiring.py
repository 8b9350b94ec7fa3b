"""`daemon-guard constraints` and `daemon-guard doctor`: the constraints a cluster's services need, and the
guarantees it has.

`constraints` reads every service of the cluster (ListServices, DescribeServices in batches of 10,
DescribeTaskDefinition for the constraints a task definition already holds) and prints which service lacks
which constraint (`core.wiring.plan_service`); with ``--apply`` it sets each service's list with
UpdateService, one service at a time (its own constraints kept, ours made right, ECS's limit of 10 per task
respected; a service already wired is not touched); with ``--remove`` it takes daemon-guard's constraints
off (the uninstall step). Services tagged ``daemon-guard:ignore=true`` are left alone.

`doctor` also reads the capacity providers (DescribeClusters, DescribeCapacityProviders), the managed
groups' lifecycle hooks (DescribeLifecycleHooks) and the container instances, and prints each guarantee
(`core.doctor.diagnose`): claimed or not, what it rests on, what is missing. It writes nothing.

Exit codes: 0 everything wired (or applied / removed), 1 something missing (or a service refused), 2 an error.
Every AWS call goes through `LiveCluster`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO

from botocore.exceptions import BotoCoreError, ClientError
from daemon_guard.adapters.ecs import EcsCluster
from daemon_guard.adapters.errors import AwsError
from daemon_guard.core.config import Config, cluster_name_from_arn
from daemon_guard.core.doctor import (
    CapacityProviderFacts,
    ClusterFacts,
    Guarantee,
    InstanceFacts,
    diagnose,
    wired,
)
from daemon_guard.core.eligibility import eligible_daemons
from daemon_guard.core.model import ServiceView
from daemon_guard.core.placement import daemons_cannot_fit
from daemon_guard.core.wiring import ServiceWiring, api_shape, ignored, plan_service, runs_on_instances, without_ours

from daemon_guard_cli.drain_dry_run import load_drain_config
from daemon_guard_cli.errors import InputError
from daemon_guard_cli.live import CliError, Clock, _client, _utc_now, explain, resolve_region


class LiveCluster:
    """The one door of `constraints` and `doctor` to AWS: ECS through the Lambda code's own port, plus the few
    reads and the one write only these commands make."""

    def __init__(self, ecs_client: Any, autoscaling_client: Any, cluster: str, clock: Clock = _utc_now) -> None:
        self.ecs = EcsCluster(ecs_client, cluster, lambda: clock().timestamp())
        self.ecs_client = ecs_client
        self.autoscaling = autoscaling_client
        self.cluster = cluster

    def services(self) -> list[ServiceView]:
        """Every ACTIVE service of the cluster, tags included."""
        return [s for s in self.ecs.services(self.ecs.service_arns()) if s.status == "ACTIVE"]

    def task_definition_constraints(self, service: ServiceView) -> int:
        """How many placement constraints the service's task definition holds (ECS counts them in the 10)."""
        return len(self.ecs.task_definition(service.task_definition_arn).constraints)

    def set_constraints(self, service: ServiceView, constraints: Sequence[Mapping[str, str]]) -> None:
        """UpdateService: the service's whole list of placement constraints."""
        self.ecs.set_service_constraints(service.arn, constraints)

    def capacity_providers(self) -> tuple[CapacityProviderFacts, ...]:
        """The cluster's Auto Scaling group capacity providers (DescribeClusters, DescribeCapacityProviders)."""
        clusters = self.ecs_client.describe_clusters(clusters=[self.cluster]).get("clusters", [])
        names = [n for c in clusters for n in c.get("capacityProviders", []) if n not in ("FARGATE", "FARGATE_SPOT")]
        if not names:
            return ()
        out = []
        for raw in self.ecs_client.describe_capacity_providers(capacityProviders=names).get("capacityProviders", []):
            group = raw.get("autoScalingGroupProvider")
            if group:
                out.append(CapacityProviderFacts(raw["name"], str(group["autoScalingGroupArn"]).rsplit("/", 1)[-1],
                                                 group.get("managedDraining") == "ENABLED"))
        return tuple(out)

    def hooks(self, groups: Sequence[str]) -> dict[str, frozenset[str] | None]:
        """Each group's lifecycle hook names (DescribeLifecycleHooks); None for a group Auto Scaling does not know."""
        out: dict[str, frozenset[str] | None] = {}
        for name in groups:
            try:
                hooks = self.autoscaling.describe_lifecycle_hooks(AutoScalingGroupName=name)["LifecycleHooks"]
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ValidationError":
                    raise
                out[name] = None
                continue
            out[name] = frozenset(h["LifecycleHookName"] for h in hooks)
        return out

    def instances(self, daemons: Sequence[ServiceView]) -> tuple[InstanceFacts, ...]:
        """The ACTIVE container instances: agent version, and the eligible daemons they cannot hold even when empty
        (eligibility judged without task groups: a ``task:group`` constraint is not evaluated here)."""
        for svc in daemons:
            self.ecs.task_definition(svc.task_definition_arn)
        out = []
        for inst in self.ecs.instances(self.ecs.instance_arns(status="ACTIVE")):
            eligible = eligible_daemons(inst, daemons, self.ecs.known_task_definitions, set()).eligible
            out.append(InstanceFacts(inst.ec2_instance_id, inst.agent_version,
                                     daemons_cannot_fit(inst, eligible, self.ecs.known_task_definitions)))
        return tuple(out)


def _show(constraint: Mapping[str, str]) -> str:
    return f"{constraint['type']}({constraint['expression']})" if constraint.get("expression") else constraint["type"]


def _managed(services: Sequence[ServiceView]) -> list[ServiceView]:
    return sorted((s for s in services if runs_on_instances(s.launch_type, s.capacity_providers) is not False),
                  key=lambda s: s.name)


def plan_cluster(config: Config, live: LiveCluster) -> list[tuple[ServiceView, ServiceWiring]]:
    """Every service on container instances, not opted out, with its plan."""
    plans = []
    for svc in _managed(live.services()):
        if ignored(svc.tags):
            continue
        plans.append((svc, plan_service(config, service=svc.name, strategy=svc.strategy, tags=svc.tags,
                                        constraints=api_shape(svc.constraints),
                                        task_definition_constraints=live.task_definition_constraints(svc))))
    return plans


def _report_plans(plans: Sequence[tuple[ServiceView, ServiceWiring]], out: TextIO) -> int:
    short = [(s, p) for s, p in plans if not p.wired]
    for svc, plan in short:
        wrong = "".join(f"; remove {_show(c)}" for c in plan.stale)
        print(f"{svc.name} ({svc.strategy.lower()}): " + (f"missing {', '.join(_show(c) for c in plan.missing)}"
                                                          if plan.missing else "nothing missing") + wrong, file=out)
        if plan.problem:
            print(f"  cannot add it: {plan.problem}", file=out)
    print(f"{len(plans)} service(s) checked: {len(plans) - len(short)} wired, {len(short)} not"
          + (" (run with --apply to wire them)" if short else ""), file=out)
    return 1 if short else 0


def _apply(plans: Sequence[tuple[ServiceView, ServiceWiring]], live: LiveCluster, out: TextIO) -> int:
    changed = refused = 0
    for svc, plan in plans:
        if plan.wired:
            continue
        if plan.problem:
            refused += 1
            print(f"{svc.name}: not changed: {plan.problem}", file=out)
            continue
        live.set_constraints(svc, plan.desired)
        changed += 1
        print(f"{svc.name}: " + "; ".join([*(f"added {_show(c)}" for c in plan.missing),
                                           *(f"removed {_show(c)}" for c in plan.stale)]), file=out)
    print(f"{changed} service(s) updated, {len(plans) - changed - refused} already wired, {refused} refused",
          file=out)
    return 1 if refused else 0


def _remove(config: Config, live: LiveCluster, out: TextIO) -> int:
    changed = 0
    services = [s for s in _managed(live.services()) if not ignored(s.tags)]
    for svc in services:
        kept = without_ours(api_shape(svc.constraints), config.gate_attribute)
        if len(kept) == len(svc.constraints):
            continue
        live.set_constraints(svc, kept)
        changed += 1
        print(f"{svc.name}: removed daemon-guard's constraint(s)", file=out)
    print(f"{changed} service(s) updated, {len(services) - changed} carried none of daemon-guard's constraints",
          file=out)
    return 0


def _run(command: str, cluster: str, region: str | None, config_path: str | None,
         work: Callable[[Config, LiveCluster], int], *, ecs_client: Any, autoscaling_client: Any,
         err: TextIO) -> int:
    """Resolve the region, load the configuration and build the one adapter; any error is one line, exit 2."""
    try:
        config = load_drain_config(config_path, cluster_name_from_arn(cluster))
        if ecs_client is None or autoscaling_client is None:
            region = resolve_region(region, cluster)
        live = LiveCluster(ecs_client if ecs_client is not None else _client("ecs", region),
                           autoscaling_client if autoscaling_client is not None else _client("autoscaling", region),
                           cluster)
        return work(config, live)
    except InputError as exc:  # the configuration file, refused before it was read (daemon_guard_cli.inputs)
        print(f"daemon-guard {command}: {exc.line()}", file=err)
        return 2
    except (OSError, ValueError) as exc:  # the configuration document (ConfigError is a ValueError)
        print(f"daemon-guard {command}: {exc}".splitlines()[0], file=err)
        return 2
    except (CliError, AwsError, BotoCoreError, ClientError) as exc:
        print(f"daemon-guard {command}: {explain(exc, cluster, region)}", file=err)
        return 2


def constraints(cluster: str, region: str | None, *, config_path: str | None = None, apply: bool = False,
                remove: bool = False, ecs_client: Any = None, autoscaling_client: Any = None,
                out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Report (default), add (`apply`) or take off (`remove`) the constraints the configuration needs."""
    out, err = out or sys.stdout, err or sys.stderr
    if apply and remove:
        print("daemon-guard constraints: --apply and --remove are opposites: pass one", file=err)
        return 2

    def work(config: Config, live: LiveCluster) -> int:
        print(f"cluster {cluster}: placementMode {config.placement_mode.value}, drainOrder "
              f"{config.drain_order.value}", file=out)
        if remove:
            return _remove(config, live, out)
        plans = plan_cluster(config, live)
        return _apply(plans, live, out) if apply else _report_plans(plans, out)

    return _run("constraints", cluster, region, config_path, work, ecs_client=ecs_client,
                autoscaling_client=autoscaling_client, err=err)


def render_guarantees(guarantees: Sequence[Guarantee]) -> list[str]:
    """Each guarantee on a line (ok / MISSING / not claimed), its findings under it."""
    lines = []
    for g in guarantees:
        mark = "ok" if g.holds else "MISSING" if g.claimed or g.findings else "not claimed"
        lines.append(f"[{mark}] {g.name}: {g.rests_on}")
        lines += [f"    {f.subject}: {f.problem}" for f in g.findings]
    return lines


def doctor(cluster: str, region: str | None, *, config_path: str | None = None, ecs_client: Any = None,
           autoscaling_client: Any = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Print which guarantees the cluster has with the configuration; 0 all claimed ones wired, 1 not, 2 error."""
    out, err = out or sys.stdout, err or sys.stderr

    def work(config: Config, live: LiveCluster) -> int:
        name = cluster_name_from_arn(cluster)
        managed = next(c for c in config.clusters if c.name == name)
        services = live.services()
        daemons = [s for s in services if s.strategy == "DAEMON"]
        facts = ClusterFacts(cluster=name, services=tuple(services), capacity_providers=live.capacity_providers(),
                             hooks=live.hooks([g.name for g in managed.groups]), instances=live.instances(daemons))
        guarantees = diagnose(config, facts)
        print(f"cluster {cluster}: placementMode {config.placement_mode.value}, drainOrder "
              f"{config.drain_order.value}; {len(services)} service(s), {len(facts.instances)} ACTIVE instance(s)",
              file=out)
        print("\n".join(render_guarantees(guarantees)), file=out)
        missing = [g.name for g in guarantees if g.findings]
        print("every claimed guarantee is wired" if wired(guarantees) else
              f"not wired: {', '.join(missing)}", file=out)
        return 0 if wired(guarantees) else 1

    return _run("doctor", cluster, region, config_path, work, ecs_client=ecs_client,
                autoscaling_client=autoscaling_client, err=err)
