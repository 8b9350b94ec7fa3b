"""The Lambda code's layers, read from its source: ports only past the composition root, imports only downwards.

Layers, lowest first: ``core`` (pure decisions) → ``adapters`` and ``observability`` (the AWS edges) →
``bootstrap`` (the composition root) → ``services`` → ``workflows`` → ``entrypoints``. A module may import
from its own layer and those below it, never from one above; and only ``adapters/`` and ``bootstrap.py``
hold a boto3 client (everything else reaches AWS through a port or the executor).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "lambdas" / "daemon_guard"

LAYERS = {"core": 0, "adapters": 1, "observability": 1, "bootstrap": 2, "services": 3, "workflows": 4,
          "entrypoints": 5}
CLIENT_HOLDERS = ("adapters", "bootstrap")


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py")


def _layer_of(path: Path) -> str:
    relative = path.relative_to(PACKAGE)
    return relative.parts[0].removesuffix(".py")


def _imported_layers(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """(line, layer) of every import of our own package, at module level or inside a function."""
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "daemon_guard" and len(parts) > 1:
                yield node.lineno, parts[1]


def upward_imports(source: str, layer: str) -> list[str]:
    """The imports in `source` (a module of `layer`) that reach a layer above it."""
    return [f"line {line} imports daemon_guard.{imported}" for line, imported in _imported_layers(ast.parse(source))
            if LAYERS.get(imported, -1) > LAYERS[layer]]


def client_uses(source: str) -> list[int]:
    """Lines touching a boto3 client: an attribute named ``client`` or ``*_client``, a name or parameter
    ``*_client``, or an import of boto3/botocore."""
    lines: list[int] = []
    for node in ast.walk(ast.parse(source)):
        name = (node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name)
                else node.arg if isinstance(node, ast.arg) else None)
        if name is not None and (name.endswith("_client") or (name == "client" and isinstance(node, ast.Attribute))):
            lines.append(node.lineno)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            modules = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            if any(m.split(".")[0] in ("boto3", "botocore") for m in modules):
                lines.append(node.lineno)
    return sorted(set(lines))


def test_every_module_of_the_package_belongs_to_a_layer() -> None:
    # GIVEN the Lambda package / WHEN each module's layer is read from its path
    unknown = sorted({_layer_of(p) for p in _modules()} - LAYERS.keys())
    # THEN none is outside the layer map (a new top-level module must be placed in it)
    assert unknown == []


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_import_runs_up_the_layers(path: Path) -> None:
    # GIVEN a module of the Lambda package / WHEN its imports of our own package are read
    # THEN each reaches its own layer or one below (entrypoints → workflows → services → adapters → core)
    assert upward_imports(path.read_text(), _layer_of(path)) == []


@pytest.mark.parametrize("path", [p for p in _modules() if _layer_of(p) not in CLIENT_HOLDERS],
                         ids=lambda p: str(p.relative_to(PACKAGE)))
def test_only_the_adapters_and_the_composition_root_touch_a_boto3_client(path: Path) -> None:
    # GIVEN a module outside adapters/ and bootstrap.py / WHEN its source is scanned
    # THEN it reads no client: AWS is reached through the Runtime's ports and the executor
    assert client_uses(path.read_text()) == []


@pytest.mark.parametrize(("source", "flagged"), [
    ("rt.autoscaling_client.describe_auto_scaling_groups(AutoScalingGroupNames=[])", [1]),
    ("rt.events_client.put_events(Entries=[])", [1]),
    ("stop_durations(rt.ecs_client, 'prod', [])", [1]),
    ("durable_execution(fn, boto3_client=rt.durable_client)", [1]),
    ("ecs.client.describe_tasks(cluster='prod', tasks=[])", [1]),
    ("import boto3", [1]),
    ("def f(ecs_client): ...", [1]),
    ("rt.autoscaling.instance('i-1')\nrt.executor.run('', action)", []),
    ("rt.complete.remember(['arn'])", []),
])
def test_the_client_scan_flags_what_the_old_code_did(source: str, flagged: list[int]) -> None:
    # GIVEN the raw client uses the services and workflows made before the ports (and their replacements)
    # WHEN scanned / THEN each old use is flagged and each port call is not
    assert client_uses(source) == flagged


@pytest.mark.parametrize(("layer", "source", "flagged"), [
    ("services", "def preview():\n    from daemon_guard.workflows.drain import observe\n",
     ["line 2 imports daemon_guard.workflows"]),
    ("core", "from daemon_guard.adapters.ecs import EcsCluster", ["line 1 imports daemon_guard.adapters"]),
    ("adapters", "from daemon_guard.bootstrap import Runtime", ["line 1 imports daemon_guard.bootstrap"]),
    ("workflows", "from daemon_guard.services.notify import announce\nfrom daemon_guard.core import metrics", []),
])
def test_the_import_scan_flags_an_upward_import(layer: str, source: str, flagged: list[str]) -> None:
    # GIVEN a module's imports (the drain preview's import of the drain workflow, before it moved)
    # WHEN read for its layer / THEN only the imports reaching a layer above it are flagged
    assert upward_imports(source, layer) == flagged
