"""The construct as a library: the built wheel, installed into a clean environment, synthesizes the README example.

Offline and quick: the wheel is built without build isolation (setuptools is pinned in
requirements-dev.txt), installed with ``--no-deps --no-index`` into a fresh venv, and that venv
reaches the project's already-installed dependencies (aws-cdk-lib, constructs, ...) through one
``.pth`` line naming a folder of links to this environment's site-packages, less what the wheel does
not depend on (cdk-nag, an optional extra; the development checkout's own install). A ``.pth`` inside
that folder is not processed from there. The synth skips the asset's pip step.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import aws_cdk as cdk
import pytest

from infra.app import SynthError, build_app

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "library" / "app.py"
SOURCES = ("pyproject.toml", "README.md", "lambdas", "infra", "daemon_guard_cli")
# Installed here for development, but not dependencies of the wheel: the clean venv must not see them.
NOT_DEPENDENCIES = ("cdk_nag", "daemon_guard", "__editable__", "_daemon_guard")


def dependencies_only(folder: Path) -> Path:
    """A folder of links to this environment's site-packages, without the optional cdk-nag or our own install."""
    folder.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if entry.name.replace("-", "_").lower().startswith(NOT_DEPENDENCIES) or entry.suffix == ".pth":
            continue
        (folder / entry.name).symlink_to(entry)
    return folder


def _run(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = tmp_path_factory.mktemp("source")
    for name in SOURCES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(path, source / name)
    dist = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
          "--disable-pip-version-check", "-q", "-w", str(dist), str(source)], cwd=source)
    (built,) = dist.glob("daemon_guard-*.whl")
    return built


def test_the_wheel_installs_only_daemon_guard_packages(wheel: Path) -> None:
    # GIVEN the built wheel
    # WHEN its top-level names are listed
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    top = {n.split("/", 1)[0] for n in names if not n.split("/", 1)[0].endswith(".dist-info")}

    # THEN it installs the Lambda code, the constructs and the command, and no generic `infra` or `sim`
    assert top == {"daemon_guard", "daemon_guard_cdk", "daemon_guard_cli"}
    assert "daemon_guard/entrypoints/intake.py" in names
    assert "daemon_guard_cdk/construct.py" in names


def test_the_wheels_command_carries_no_harness(wheel: Path) -> None:
    # GIVEN the built wheel's command package
    with zipfile.ZipFile(wheel) as archive:
        modules = {n: archive.read(n).decode() for n in archive.namelist()
                   if n.startswith("daemon_guard_cli/") and n.endswith(".py")}
    # THEN only the entry point names the simulator or the benchmark (its development commands, which say they need
    # a clone); no production command imports them
    harness = re.compile(r"^\s*(from|import) (sim|bench)\b", re.MULTILINE)
    assert {n for n, text in modules.items() if harness.search(text)} <= {"daemon_guard_cli/main.py"}
    assert "daemon_guard_cli/main.py" in modules


def test_the_readme_shows_the_example_that_is_synthesized() -> None:
    # GIVEN the example app the wheel test synthesizes
    body = EXAMPLE.read_text().split('"""', 2)[2].strip()
    # THEN the README shows it as it is
    assert body in (REPO / "README.md").read_text()


@pytest.mark.slow
def test_the_readme_example_synthesizes_from_the_installed_wheel(wheel: Path, tmp_path: Path) -> None:
    # GIVEN a clean venv with only the wheel installed (its dependencies reached through one .pth line; not
    # cdk-nag, which the wheel does not depend on)
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp_path)
    python = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index",
          "--disable-pip-version-check", "-q", str(wheel)], cwd=tmp_path)
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                     cwd=tmp_path).stdout.strip())
    (site / "project_dependencies.pth").write_text(str(dependencies_only(tmp_path / "deps")) + "\n")
    # ... and the README's example app, in a folder of its own
    app = tmp_path / "my-app"
    app.mkdir()
    shutil.copy2(EXAMPLE, app / "app.py")
    env = {**os.environ, "CDK_OUTDIR": str(app / "cdk.out"), "DAEMON_GUARD_SKIP_BUNDLING_INSTALL": "1",
           "PYTHONPATH": "", "PYTHONDONTWRITEBYTECODE": "1"}

    # WHEN the app is synthesized with the venv's Python
    probe = subprocess.run([str(python), "-c", "import infra"], cwd=app, env=env, capture_output=True, check=False)
    nag = subprocess.run([str(python), "-c", "import cdk_nag"], cwd=app, env=env, capture_output=True, check=False)
    _run([str(python), "app.py"], cwd=app, env=env)

    # THEN no repository package leaked in, the stack has the four functions,
    # and their asset is the daemon_guard package the wheel installed
    assert probe.returncode != 0
    assert nag.returncode != 0
    template = json.loads((app / "cdk.out" / "Platform.template.json").read_text())
    functions = [r for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::Function"]
    assert len(functions) == 4
    assets = [p for p in (app / "cdk.out").glob("asset.*") if p.is_dir()]
    assert len(assets) == 1
    assert (assets[0] / "daemon_guard" / "entrypoints" / "intake.py").read_text() == \
        (REPO / "lambdas" / "daemon_guard" / "entrypoints" / "intake.py").read_text()
    assert "autoScalingGroupName/prod-asg" in json.dumps(template)


def test_checks_asked_for_without_cdk_nag_fail_the_synth_naming_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN cdk-nag is not installed (an import of it fails)
    monkeypatch.setitem(sys.modules, "cdk_nag", None)
    app = cdk.App(context={"daemon-guard": {"clusters": [{"name": "prod"}]},
                           "daemon-guard:skip-bundling-install": True})
    # WHEN the app is built with the checks on (the default) / THEN one line says how to install them or turn them off
    with pytest.raises(SynthError) as refused:
        build_app(app)
    assert "[nag]" in refused.value.message and "daemon-guard:nag=false" in refused.value.message
