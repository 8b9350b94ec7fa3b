"""One Lambda asset for every handler, bundled locally (no Docker).

The asset is the ``daemon_guard`` package (found wherever it is importable from: the repository's
``lambdas/`` folder, or the installed wheel) plus the durable execution SDK, installed by
``pip install --target`` as manylinux aarch64 / CPython 3.13 wheels (the Lambda runtime is
python3.13 on arm64, whatever Python runs the synth). Powertools (and pydantic) are not bundled:
they come from the AWS-published layer.

The asset is then pruned to what the functions import (`prune_asset`): botocore keeps the
service models of the services the code calls (`BOTOCORE_SERVICES`, latest API version only,
no examples) and its own data files; boto3 keeps no resource models; package metadata, scripts,
type stubs, tests and caches go. That takes the asset from ~30 MB to ~6 MB unpacked.

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
BOTOCORE_SERVICES = ("ecs", "autoscaling", "lambda", "dynamodb", "events")
"""The AWS services the functions call (runtime clients and the durable SDK's Lambda client)."""
_PIP_PLATFORM = ("--platform", "manylinux2014_aarch64", "--only-binary=:all:",
                 "--python-version", "3.13", "--implementation", "cp")
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".mypy_cache", ".pytest_cache", "*.egg-info")
_PRUNED_DIRS = ("__pycache__", "tests", "test")
_PRUNED_SUFFIXES = (".pyc", ".pyi")


def default_package_dir() -> Path:
    """The ``daemon_guard`` package this construct ships with (repository checkout or installed wheel)."""
    import daemon_guard

    return Path(daemon_guard.__file__).resolve().parent


class BundlingError(RuntimeError):
    """The asset could not be built locally; the message says what to do."""


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() in ("1", "true", "yes"))


def skip_install_requested(scope: Construct) -> bool:
    """True when the context flag or the environment variable asks to skip the pip step."""
    return _truthy(scope.node.try_get_context(SKIP_INSTALL_CONTEXT)) or _truthy(os.environ.get(SKIP_INSTALL_ENV))


@jsii.implements(cdk.ILocalBundling)
class LocalPythonBundler:
    """Copy the ``daemon_guard`` package, pip-install the pinned requirements for Lambda arm64, prune."""

    def __init__(self, package_dir: Path, requirements: Sequence[str], install: bool) -> None:
        self._package_dir = package_dir
        self._requirements = tuple(requirements)
        self._install = install

    def try_bundle(self, output_dir: str, *_options: Any, **_kw_options: Any) -> bool:
        """Build the asset into ``output_dir``; raise rather than fall back to Docker."""
        build_asset(Path(output_dir), self._package_dir, self._requirements, install=self._install)
        return True


def build_asset(out: Path, package_dir: Path, requirements: Sequence[str] = (DURABLE_SDK_REQUIREMENT,), *,
                install: bool = True) -> None:
    """Build the Lambda asset into ``out``: the package, the pip-installed requirements, pruned."""
    if not (package_dir / "__init__.py").is_file():
        raise BundlingError(f"daemon-guard bundling: no daemon_guard package at {package_dir}")
    shutil.copytree(package_dir, out / "daemon_guard", ignore=_IGNORED, dirs_exist_ok=True)
    if install and requirements:
        _pip_install(out, tuple(requirements))
    prune_asset(out)


def prune_asset(out: Path, services: Sequence[str] = BOTOCORE_SERVICES) -> None:
    """Drop what the functions never import: other services' models, metadata, scripts, stubs, tests, caches."""
    for name in ("bin", "share"):
        shutil.rmtree(out / name, ignore_errors=True)
    for path in sorted(out.glob("*.dist-info")):
        shutil.rmtree(path)
    data = out / "botocore" / "data"
    if data.is_dir():
        for service in data.iterdir():
            if not service.is_dir():
                continue  # endpoints.json, partitions.json, _retry.json, sdk-default-configuration.json
            if service.name not in services:
                shutil.rmtree(service)
                continue
            # The loader reads the latest API version only; examples feed docs, never a client.
            versions = sorted(v for v in service.iterdir() if v.is_dir())
            for old in versions[:-1]:
                shutil.rmtree(old)
            for example in service.glob("*/examples-1.json"):
                example.unlink()
    # Resource models serve boto3.resource(), which the functions do not use.
    shutil.rmtree(out / "boto3" / "data", ignore_errors=True)
    shutil.rmtree(out / "boto3" / "examples", ignore_errors=True)
    for path in sorted(out.rglob("*"), reverse=True):
        if path.is_dir() and path.name in _PRUNED_DIRS and path.parent != out:
            shutil.rmtree(path, ignore_errors=True)
        elif path.is_file() and path.suffix in _PRUNED_SUFFIXES:
            path.unlink()


def _pip_install(out: Path, requirements: tuple[str, ...]) -> None:
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-compile",
               "--disable-pip-version-check", "--target", str(out), *_PIP_PLATFORM, *requirements]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()[-5:]
        raise BundlingError(
            "daemon-guard bundling: pip could not install "
            f"{' '.join(requirements)} as manylinux2014_aarch64 / cp313 wheels "
            f"(exit {result.returncode}): {' | '.join(detail)}. Make a package index reachable "
            f"(pip config / PIP_INDEX_URL), or for tests only set the context flag "
            f"{SKIP_INSTALL_CONTEXT}=true or {SKIP_INSTALL_ENV}=1 (that asset lacks the durable SDK)."
        )


def asset_size(out: Path) -> tuple[int, int, int]:
    """(zipped bytes, unpacked bytes, files) of a built asset, zipped as CDK does (deflate)."""
    import io
    import zipfile

    files = sorted(p for p in out.rglob("*") if p.is_file())
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            archive.write(path, path.relative_to(out).as_posix())
    return len(buffer.getvalue()), sum(p.stat().st_size for p in files), len(files)


def lambda_asset(
    scope: Construct,
    *,
    package_dir: Path | None = None,
    requirements: Sequence[str] = (DURABLE_SDK_REQUIREMENT,),
    install: bool | None = None,
    environment: Mapping[str, str] | None = None,
) -> lambda_.Code:
    """The one asset shared by every daemon-guard function.

    Parameters
    ----------
    package_dir
        The ``daemon_guard`` package folder. Default: `default_package_dir` (where it is imported from).
    install
        Run the pip step. Default: yes, unless `skip_install_requested`.
    """
    package = package_dir or default_package_dir()
    do_install = (not skip_install_requested(scope)) if install is None else install
    bundler = LocalPythonBundler(package, requirements, do_install)
    return lambda_.Code.from_asset(
        str(package),
        asset_hash_type=cdk.AssetHashType.OUTPUT,
        bundling=cdk.BundlingOptions(
            # Never pulled: the local bundler always succeeds or raises.
            image=cdk.DockerImage.from_registry("public.ecr.aws/sam/build-python3.13"),
            local=bundler,
            environment=dict(environment or {}),
        ),
    )
