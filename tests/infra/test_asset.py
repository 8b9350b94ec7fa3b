"""The Lambda asset: pruned to what the functions import, and still importing and working as Lambda runs it."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.asset import HANDLER_MODULES, build_measured_asset, layer_equivalent, probe
from infra.bundling import BOTOCORE_SERVICES, asset_size, prune_asset

SIX_MIB = 6 * 2**20


def _touch(path: Path, text: str = "x") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_pruning_keeps_the_used_services_latest_models_and_botocore_data_files(tmp_path: Path) -> None:
    # GIVEN an installed tree with models of used and unused services, metadata, scripts, stubs and caches
    data = tmp_path / "botocore" / "data"
    for name in ("endpoints.json", "partitions.json", "_retry.json", "sdk-default-configuration.json"):
        _touch(data / name)
    _touch(data / "lambda" / "2014-11-11" / "service-2.json.gz")
    _touch(data / "lambda" / "2015-03-31" / "service-2.json.gz")
    _touch(data / "lambda" / "2015-03-31" / "examples-1.json")
    _touch(data / "ecs" / "2014-11-13" / "service-2.json.gz")
    _touch(data / "s3" / "2006-03-01" / "service-2.json.gz")
    _touch(tmp_path / "botocore" / "__pycache__" / "client.cpython-313.pyc")
    _touch(tmp_path / "botocore" / "client.py")
    _touch(tmp_path / "boto3" / "data" / "s3" / "2006-03-01" / "resources-1.json")
    _touch(tmp_path / "boto3-1.0.dist-info" / "METADATA")
    _touch(tmp_path / "bin" / "jp.py")
    _touch(tmp_path / "dateutil" / "tz.pyi")
    _touch(tmp_path / "urllib3" / "tests" / "test_x.py")

    # WHEN the asset is pruned
    prune_asset(tmp_path)

    # THEN what a client needs stays, and nothing else
    kept = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()}
    assert kept == {
        "botocore/data/endpoints.json", "botocore/data/partitions.json", "botocore/data/_retry.json",
        "botocore/data/sdk-default-configuration.json", "botocore/data/lambda/2015-03-31/service-2.json.gz",
        "botocore/data/ecs/2014-11-13/service-2.json.gz", "botocore/client.py",
    }


@pytest.fixture(scope="module")
def built_asset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_measured_asset(tmp_path_factory.mktemp("asset") / "asset")


@pytest.mark.slow
def test_the_built_asset_fits_in_six_mib_zipped(built_asset: Path) -> None:
    # GIVEN the asset exactly as synth builds it (pip step and pruning)
    # WHEN it is zipped as CDK zips it
    zipped, unpacked, files = asset_size(built_asset)

    # THEN it is lean: no other service's models, no metadata
    assert zipped <= SIX_MIB, f"{zipped} bytes zipped ({unpacked} unpacked, {files} files)"
    assert sorted(p.name for p in (built_asset / "botocore" / "data").iterdir() if p.is_dir()) == \
        sorted(BOTOCORE_SERVICES)
    assert not list(built_asset.glob("*.dist-info"))


@pytest.mark.slow
@pytest.mark.parametrize("module", HANDLER_MODULES)
def test_each_handler_imports_from_the_asset_alone_and_builds_its_clients(
        built_asset: Path, tmp_path: Path, module: str) -> None:
    # GIVEN a clean interpreter that sees only the asset and the Powertools layer's packages
    layer = layer_equivalent(tmp_path / "layer")

    # WHEN the handler module is imported and the runtime builds its clients (and the durable SDK its own)
    found = probe(built_asset, layer, module)

    # THEN boto3 and botocore are the asset's, every service the code calls has its model,
    # and the Lambda model knows the durable execution API
    assert Path(found["botocore"]).is_relative_to(built_asset)
    assert Path(found["boto3"]).is_relative_to(built_asset)
    assert sorted(set(found["services"])) == sorted(BOTOCORE_SERVICES)
    assert "CheckpointDurableExecution" in found["lambda_operations"]
