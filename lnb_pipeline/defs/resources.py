"""The resources the assets share, configured from the environment."""

from __future__ import annotations

import dagster as dg

from lnb_pipeline.defs.inventory.settings import inventory_settings_from_env
from lnb_pipeline.defs.lenewblack.resources import lenewblack_resource_from_env
from lnb_pipeline.defs.orders.settings import order_flow_settings_from_env
from lnb_pipeline.defs.shopify.resources import shopify_resource_from_env


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(
        resources={
            "shopify": shopify_resource_from_env(),
            "lenewblack": lenewblack_resource_from_env(),
            "inventory_settings": inventory_settings_from_env(),
            "order_flow_settings": order_flow_settings_from_env(),
        }
    )
