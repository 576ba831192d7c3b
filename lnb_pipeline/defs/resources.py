"""The resources the assets share, configured from the environment, and where asset values are kept between runs."""

from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

import dagster as dg

from lnb_pipeline.defs.env import for_definitions
from lnb_pipeline.defs.inventory.settings import InventorySettings
from lnb_pipeline.defs.lenewblack.resources import LeNewBlackResource
from lnb_pipeline.defs.orders.settings import OrderFlowSettings
from lnb_pipeline.defs.shopify.resources import ShopifyResource


class AssetValueStore(dg.IOManager):
    """Keeps each asset's value as a pickle under the Dagster instance's storage directory
    (``$DAGSTER_HOME/storage/<asset>``, where Dagster's default IO manager keeps it too), so a later
    run reads its inputs from there. Unlike the default, it adds no ``path`` entry to every
    materialization: a file on the server means nothing to the person reading the asset's page.
    The assets are not partitioned: one file per asset."""

    def __init__(self, root: Path) -> None:
        self._root = root

    def _path(self, context: dg.OutputContext | dg.InputContext) -> Path:
        """The asset's key as a path under the storage directory (every output here is an asset's)."""
        return self._root.joinpath(*context.asset_key.path)

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        """Written beside its final place and renamed: a run killed mid-write leaves the previous value whole."""
        path = self._path(context)
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False) as stream:
            try:
                pickle.dump(obj, stream, protocol=pickle.HIGHEST_PROTOCOL)
            except BaseException:
                os.unlink(stream.name)
                raise
        os.replace(stream.name, path)

    def load_input(self, context: dg.InputContext) -> Any:
        with self._path(context).open("rb") as stream:
            return pickle.load(stream)


@dg.io_manager(description=AssetValueStore.__doc__)
def asset_value_store(context: dg.InitResourceContext) -> AssetValueStore:
    """A plain IO manager: it has no setting, and a pydantic one without fields warns on every run."""
    return AssetValueStore(Path(context.instance.storage_directory()))  # type: ignore[union-attr]


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(
        resources={
            "io_manager": asset_value_store,
            "shopify": for_definitions(ShopifyResource),
            "lenewblack": for_definitions(LeNewBlackResource),
            "inventory_settings": for_definitions(InventorySettings),
            "order_flow_settings": for_definitions(OrderFlowSettings),
        }
    )
