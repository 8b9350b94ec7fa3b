"""One Lambda asset for every handler, bundled locally (no Docker).

The asset is the ``lambdas/`` folder's ``daemon_guard`` package plus the durable execution SDK,
installed by ``pip install --target`` as manylinux aarch64 / CPython 3.13 wheels (the Lambda
runtime is python3.13 on arm64, whatever Python runs the synth). Powertools is not bundled: it
comes from the AWS-published layer.

Tests can skip the pip step (the asset then holds only ``daemon_guard``) with the context flag
``daemon-guard:skip-bundling-install`` or the environment variable
``DAEMON_GUARD_SKIP_BUNDLING_INSTALL=1``. The default is the real thing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import jsii
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

DURABLE_SDK_REQUIREMENT = "aws-durable-execution-sdk-python==3.0.0"
SKIP_INSTALL_CONTEXT = "daemon-guard:skip-bundling-install"
SKIP_INSTALL_ENV = "DAEMON_GUARD_SKIP_BUNDLING_INSTALL"
DEFAULT_LAMBDAS_DIR = Path(__file__).resolve().parent.parent / "lambdas"
_PIP_PLATFORM = ("--platform", "manylinux2014_aarch64", "--only-binary=:all:",
                 "--python-version", "3.13", "--implementation", "cp")
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".mypy_cache", ".pytest_cache", "*.egg-info")


class BundlingError(RuntimeError):
    """The asset could not be built locally; the message says what to do."""


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() in ("1", "true", "yes"))


def skip_install_requested(scope: Construct) -> bool:
    """True when the context flag or the environment variable asks to skip the pip step."""
    return _truthy(scope.node.try_get_context(SKIP_INSTALL_CONTEXT)) or _truthy(os.environ.get(SKIP_INSTALL_ENV))


@jsii.implements(cdk.ILocalBundling)
class LocalPythonBundler:
    """Copy the ``daemon_guard`` package and pip-install the pinned requirements for Lambda arm64."""

    def __init__(self, source_dir: Path, requirements: Sequence[str], install: bool) -> None:
        self._source_dir = source_dir
        self._requirements = tuple(requirements)
        self._install = install

    def try_bundle(self, output_dir: str, *_options: Any, **_kw_options: Any) -> bool:
        """Build the asset into ``output_dir``; raise rather than fall back to Docker."""
        package = self._source_dir / "daemon_guard"
        if not package.is_dir():
            raise BundlingError(f"daemon-guard bundling: no package at {package}; run synth from the repository")
        out = Path(output_dir)
        shutil.copytree(package, out / "daemon_guard", ignore=_IGNORED, dirs_exist_ok=True)
        if self._install and self._requirements:
            self._pip_install(out)
        return True

    def _pip_install(self, out: Path) -> None:
        command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-compile",
                   "--disable-pip-version-check", "--target", str(out), *_PIP_PLATFORM, *self._requirements]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()[-5:]
            raise BundlingError(
                "daemon-guard bundling: pip could not install "
                f"{' '.join(self._requirements)} as manylinux2014_aarch64 / cp313 wheels "
                f"(exit {result.returncode}): {' | '.join(detail)}. Make a package index reachable "
                f"(pip config / PIP_INDEX_URL), or for tests only set the context flag "
                f"{SKIP_INSTALL_CONTEXT}=true or {SKIP_INSTALL_ENV}=1 (that asset lacks the durable SDK)."
            )
        shutil.rmtree(out / "bin", ignore_errors=True)


def lambda_asset(
    scope: Construct,
    *,
    source_dir: Path = DEFAULT_LAMBDAS_DIR,
    requirements: Sequence[str] = (DURABLE_SDK_REQUIREMENT,),
    install: bool | None = None,
    environment: Mapping[str, str] | None = None,
) -> lambda_.Code:
    """The one asset shared by every daemon-guard function.

    Parameters
    ----------
    install
        Run the pip step. Default: yes, unless `skip_install_requested`.
    """
    do_install = (not skip_install_requested(scope)) if install is None else install
    bundler = LocalPythonBundler(source_dir, requirements, do_install)
    return lambda_.Code.from_asset(
        str(source_dir),
        asset_hash_type=cdk.AssetHashType.OUTPUT,
        bundling=cdk.BundlingOptions(
            # Never pulled: the local bundler always succeeds or raises.
            image=cdk.DockerImage.from_registry("public.ecr.aws/sam/build-python3.13"),
            local=bundler,
            environment=dict(environment or {}),
        ),
    )
