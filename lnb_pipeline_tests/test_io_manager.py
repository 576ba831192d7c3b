"""Where asset values live between runs: the deployed jobs, one asset per run, on a persistent instance.

Each run must find what the one before stored, and no materialization may carry the storage's
``path`` (Dagster's default IO manager adds one to every asset, which the UI then shows).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import dagster as dg
import polars as pl

from lnb_pipeline.definitions import defs
from lnb_pipeline.defs.resources import asset_value_store
from lnb_pipeline.sandbox import Sandbox

DEMO_VARIANTS = 439


def _materialize_alone(instance: dg.DagsterInstance, asset: str) -> dict[str, dg.MetadataValue]:
    """A run of ``inventory_sync`` for ``asset`` only, its inputs loaded from earlier runs; its metadata."""
    result = defs().resolve_job_def("inventory_sync").execute_in_process(
        instance=instance, asset_selection=[dg.AssetKey(asset)])
    assert result.success
    [materialization] = result.asset_materializations_for_node(asset)
    return dict(materialization.metadata)


def test_each_run_reads_what_the_previous_run_stored_and_no_asset_shows_a_path(sandbox: Sandbox) -> None:
    with dg.instance_for_test() as instance:
        metadata = {asset: _materialize_alone(instance, asset)
                    for asset in ("shopify_locations", "shopify_inventory_levels", "available_to_sell")}
        storage = Path(instance.storage_directory())

        assert {asset: "path" in entries for asset, entries in metadata.items()} == dict.fromkeys(metadata, False)
        with (storage / "available_to_sell").open("rb") as stream:
            stock = pickle.load(stream)
        assert isinstance(stock, pl.DataFrame) and stock["variant_id"].n_unique() == DEMO_VARIANTS
        assert sorted(path.name for path in storage.iterdir() if path.is_file()) == [
            "available_to_sell", "shopify_inventory_levels", "shopify_locations"]


def test_a_value_that_cannot_be_stored_leaves_the_previous_one_whole(tmp_path: Path) -> None:
    """A failed write must not leave a half-written file for the next run to load, nor litter the directory."""
    @dg.asset
    def stock() -> object:
        return {"units": 5}

    @dg.asset(name="stock")
    def unpicklable_stock() -> object:
        return lambda: None

    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        store = asset_value_store
        assert dg.materialize([stock], instance=instance, resources={"io_manager": store}).success
        failed = dg.materialize([unpicklable_stock], instance=instance, resources={"io_manager": store},
                                raise_on_error=False)

        assert not failed.success
        storage = Path(instance.storage_directory())
        assert [path.name for path in storage.iterdir() if path.is_file()] == ["stock"]
        with (storage / "stock").open("rb") as stream:
            assert pickle.load(stream) == {"units": 5}
