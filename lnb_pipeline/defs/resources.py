"""The resources the assets share, configured from the environment."""

from __future__ import annotations

import dagster as dg

from lnb_pipeline.defs.env import for_definitions
from lnb_pipeline.defs.inventory.settings import InventorySettings
from lnb_pipeline.defs.lenewblack.resources import LeNewBlackResource
from lnb_pipeline.defs.orders.settings import OrderFlowSettings
from lnb_pipeline.defs.shopify.resources import ShopifyResource


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(
        resources={
            "shopify": for_definitions(ShopifyResource),
            "lenewblack": for_definitions(LeNewBlackResource),
            "inventory_settings": for_definitions(InventorySettings),
            "order_flow_settings": for_definitions(OrderFlowSettings),
        }
    )
