"""`daemon-guard drain --dry-run --cluster C i-...`: a live instance's drain, step by step, changing nothing.

It reads the container instance, its tasks and the daemon services through the same adapter the
drain workflow uses (ListContainerInstances, DescribeContainerInstances, ListTasks, DescribeTasks,
ListServices, DescribeServices, ListTagsForResource; no write), then prints the steps the ordered
drain would take: the tasks each phase would stop, the tiers, the time limits and the lifecycle
action. Tiers and limits come from ``--config`` (a daemon-guard document or a cdk.json), else
./cdk.json, else the defaults for the named cluster. ``--cluster`` is a name or an ARN; the region
follows the live commands' one rule (`daemon_guard_cli.live.resolve_region`).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, TextIO

from botocore.exceptions import BotoCoreError
from daemon_guard import bootstrap
from daemon_guard.adapters.errors import AwsError
from daemon_guard.core.config import Config, ConfigError, cluster_name_from_arn, parse_config
from daemon_guard.core.drain import DrainRequest
from daemon_guard.core.drain_preview import render_preview
from daemon_guard.core.identifiers import InstanceId
from daemon_guard.services.drain_preview import preview

from daemon_guard_cli.inputs import MAX_CONFIG_BYTES, read_json
from daemon_guard_cli.live import CliError, Clock, _client, _utc_now, explain, resolve_region, stated_region


class _NoMetrics:
    """A dry run emits no metric."""

    def emit(self, spec: Any, value: float, cluster: str, **dimensions: str) -> None:
        """Drop it."""


def load_drain_config(path: str | None, cluster: str) -> Config:
    """--config, else ./cdk.json, else the defaults; the cluster must be one it manages."""
    candidate = Path(path) if path else Path("cdk.json")
    doc: Any = read_json(str(candidate), MAX_CONFIG_BYTES, "a configuration may take", expect="object") \
        if path or candidate.exists() else {"clusters": [{"name": cluster}]}
    if isinstance(doc, dict) and "context" in doc:
        doc = doc["context"].get("daemon-guard", {})
    config = parse_config(doc)
    if cluster not in config.cluster_names:
        raise ConfigError(f"daemon-guard config: clusters: {cluster} is not a managed cluster "
                          f"({', '.join(sorted(config.cluster_names))})")
    return config


def dry_run_drain(cluster: str, instance_id: str, region: str | None, *, config_path: str | None = None,
                  ecs_client: Any = None, autoscaling_client: Any = None, clock: Clock = _utc_now,
                  out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """Print the planned steps of draining `instance_id`; 0 when printed, 2 on an error (one line on `err`)."""
    name = cluster_name_from_arn(cluster)
    try:
        config = load_drain_config(config_path, name)
        injected = ecs_client is not None and autoscaling_client is not None
        region = stated_region(region, cluster) if injected else resolve_region(region, cluster)
        rt = bootstrap.build(config, ecs_client=ecs_client or _client("ecs", region),
                             autoscaling_client=autoscaling_client or _client("autoscaling", region),
                             metrics=_NoMetrics(), clock=clock, dry_run=True)
        request = DrainRequest(instance_id=InstanceId(instance_id), cluster=name, trigger="operator")
        steps = preview(rt, request)
    except CliError as exc:
        print(f"daemon-guard drain --dry-run: {exc}", file=err)
        return 2
    except (OSError, ValueError) as exc:
        print(f"daemon-guard drain --dry-run: {exc}".splitlines()[0], file=err)
        return 2
    except (AwsError, BotoCoreError) as exc:  # BotoCoreError: building a client (no region, say)
        print(f"daemon-guard drain --dry-run: {explain(exc, cluster, region)}", file=err)
        return 2
    if steps and steps[0].kind == "nothing-to-drain":
        print(f"daemon-guard drain --dry-run: {steps[0].detail}", file=err)
        return 2
    print("\n".join(render_preview(request, steps)), file=out)
    return 0
