"""The Lambda asset as Lambda sees it: build it, size it, and import its handlers in a clean interpreter.

A handler runs with only the asset (``/var/task``) and the Powertools layer on ``sys.path``. The
checks here reproduce that: `layer_equivalent` copies the Powertools layer's packages from this
environment into a folder, and `probe` / `cold_import_ms` run ``python -I -S`` (no site-packages,
no user site, no PYTHON* variables) with exactly the asset and that folder on ``sys.path``.
"""

from __future__ import annotations

import compileall
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HANDLER_MODULES = ("daemon_guard.entrypoints.intake", "daemon_guard.entrypoints.reconciler",
                   "daemon_guard.entrypoints.drain", "daemon_guard.entrypoints.launch_gate")
LAYER_PACKAGES = ("aws_lambda_powertools", "pydantic", "pydantic_core", "annotated_types",
                  "typing_extensions", "typing_inspection")
"""What the AWS Powertools layer provides that the functions import (Powertools with its parser extra)."""

_PROBE = """
import json, os, sys, time
sys.path[:0] = [{asset!r}, {layer!r}]
started = time.perf_counter()
import {module}
imported = (time.perf_counter() - started) * 1000
from daemon_guard.bootstrap import from_environment
from aws_durable_execution_sdk_python.lambda_service import LambdaClient
import botocore, boto3
assert callable({module}.handler) and callable({module}.build_handler)
runtime = from_environment()
clients = [runtime.ecs.client, runtime.autoscaling.client, runtime.workflows.client, runtime.events.client,
           runtime.ledger.client, LambdaClient.initialize_client().client]
print(json.dumps({{
    "import_ms": imported,
    "botocore": botocore.__file__, "boto3": boto3.__file__,
    "services": [c.meta.service_model.service_name for c in clients if c is not None],
    "lambda_operations": sorted(runtime.workflows.client.meta.service_model.operation_names),
}}))
"""
_PROBE_ENV = {
    "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "example-secret",
    "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "DAEMON_GUARD_CONFIG": json.dumps({"clusters": [{"name": "prod", "autoScalingGroups": ["prod-asg"]}]}),
    "STATE_TABLE": "daemon-guard-state", "ECS_MAX_ATTEMPTS": "3",
    "ECS_RETRY": "deadline",  # the intake's: the deadline retry hooks botocore's retries from the asset's botocore
    "DRAIN_FUNCTION": "arn:aws:lambda:us-east-1:123456789012:function:dg-drain:live",
    "LAUNCH_GATE_FUNCTION": "arn:aws:lambda:us-east-1:123456789012:function:dg-launch-gate:live",
    "PYTHONDONTWRITEBYTECODE": "1",
}


def layer_equivalent(folder: Path) -> Path:
    """Copy the Powertools layer's packages (from this environment) into ``folder``, byte-compiled as the
    published layer ships them; return it."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in LAYER_PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise RuntimeError(f"{name} is not installed here; run `make install`")
        origin = Path(spec.origin)
        if origin.name == "__init__.py":
            shutil.copytree(origin.parent, folder / origin.parent.name, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(origin, folder / origin.name)
    compileall.compile_dir(folder, quiet=2)
    return folder


def build_measured_asset(folder: Path) -> Path:
    """Build the real asset (pip step included) into ``folder``, as `cdk synth` would."""
    from infra.bundling import build_asset, default_package_dir

    build_asset(folder, default_package_dir())
    return folder


def probe(asset: Path, layer: Path, module: str) -> dict[str, Any]:
    """Import ``module`` from the asset in a clean interpreter, check it has ``handler`` and ``build_handler``,
    then build the runtime's clients as the handler's first invocation does."""
    script = _PROBE.format(asset=str(asset), layer=str(layer), module=module)
    env = {"PATH": os.environ.get("PATH", ""), **_PROBE_ENV}
    result = subprocess.run([sys.executable, "-I", "-S", "-c", script], capture_output=True, text=True,
                            check=False, env=env, cwd=tempfile.gettempdir())
    if result.returncode != 0:
        raise RuntimeError(f"{module} does not import from the asset: {result.stderr.strip()[-2000:]}")
    data: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return data


def cold_import_ms(asset: Path, layer: Path, module: str, runs: int = 7) -> float:
    """Median time to import ``module`` in a fresh interpreter that sees only the asset and the layer."""
    script = (f"import sys; sys.path[:0] = [{str(asset)!r}, {str(layer)!r}]; import time; "
              f"t = time.perf_counter(); import {module}; print((time.perf_counter() - t) * 1000)")
    env = {"PATH": os.environ.get("PATH", ""), **_PROBE_ENV}
    samples = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-I", "-S", "-c", script], capture_output=True, text=True,
                             check=True, env=env, cwd=tempfile.gettempdir())
        samples.append(float(out.stdout.strip().splitlines()[-1]))
    return round(statistics.median(samples), 1)
