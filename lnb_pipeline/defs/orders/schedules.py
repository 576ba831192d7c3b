"""When the order flow runs: the `orders_export` job, its schedule and the LNB sensor."""

from __future__ import annotations

import hashlib
import json

import dagster as dg

from lnb_pipeline.defs.env import described
from lnb_pipeline.defs.inventory.assets import (
    shopify_inventory_levels,
    shopify_locations,
)
from lnb_pipeline.defs.inventory.schedules import FLOW_TAG
from lnb_pipeline.defs.lenewblack.resources import LeNewBlackResource
from lnb_pipeline.defs.orders.settings import OrderFlowSettings
from lnb_pipeline.defs.pool_waits import in_process_executor_naming_pool_holders
from lnb_pipeline.settings import raise_problems, read_setting

ORDERS_CRON = read_setting("LNB_ORDERS_CRON", str)
TIMEZONE = read_setting("LNB_TIMEZONE", str)
SENSOR_SECONDS = read_setting("LNB_ORDERS_SENSOR_SECONDS", int)
SHOPIFY_READ = (shopify_locations, shopify_inventory_levels)
"""The stock flow's Shopify read, whose variants the order lines are matched to."""

orders_export = dg.define_asset_job(
    name="orders_export",
    # The Shopify read runs in every export, so the variants orders are matched to are never older
    # than the orders, and the first export of a fresh install needs nothing run before it.
    selection=dg.AssetSelection.groups("orders") | dg.AssetSelection.assets(*SHOPIFY_READ),
    description="Read Shopify's variants, check the LNB orders selected for export, create them in Shopify "
                "exactly once, mark them in LNB.",
    executor_def=in_process_executor_naming_pool_holders,
    # A run retried after a crash reads Shopify and LNB again rather than reuse what the dead run read.
    tags={FLOW_TAG: "orders", "dagster/retry_strategy": "ALL_STEPS"},
)


@dg.schedule(
    name="orders_export_schedule",
    job=orders_export,
    cron_schedule=ORDERS_CRON.value,
    execution_timezone=TIMEZONE.value,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description=described("Exports every order in LNB_ORDER_EXPORT_STATUS on LNB_ORDERS_CRON (default hourly) in "
                          "LNB_TIMEZONE, blocked ones included once fixed.", ORDERS_CRON, TIMEZONE),
)
def orders_export_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """A malformed timing setting fails each tick, naming the variable, rather than the code location."""
    raise_problems(ORDERS_CRON, TIMEZONE)
    return dg.RunRequest()


@dg.sensor(
    job=orders_export,
    minimum_interval_seconds=SENSOR_SECONDS.value,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=described("Starts an export when orders enter LNB_ORDER_EXPORT_STATUS (polls LNB every "
                          "LNB_ORDERS_SENSOR_SECONDS).", SENSOR_SECONDS),
)
def lnb_orders_sensor(context: dg.SensorEvaluationContext, lenewblack: LeNewBlackResource,
                      order_flow_settings: OrderFlowSettings) -> dg.SensorResult | dg.SkipReason:
    """Cursor: the newest ``update_time`` seen and the references seen at that instant (LNB filters are inclusive)."""
    raise_problems(SENSOR_SECONDS)
    cursor = json.loads(context.cursor) if context.cursor else {"update_time": None, "references": []}
    status = order_flow_settings.order_settings().export_status
    orders = lenewblack.get_client(context.log).iter_orders(status=status, update_time_from=cursor["update_time"])
    new = [o for o in orders
           if not (o.get("update_time") == cursor["update_time"] and o["reference"] in cursor["references"])]
    if not new:
        return dg.SkipReason(f"No order entered LNB status {status} since {cursor['update_time'] or 'ever'}")
    newest = max(o["update_time"] for o in new)
    at_newest = sorted({o["reference"] for o in new if o["update_time"] == newest}
                       | (set(cursor["references"]) if newest == cursor["update_time"] else set()))
    changes = sorted(f"{o['reference']}@{o['update_time']}" for o in new)
    return dg.SensorResult(
        run_requests=[dg.RunRequest(
            run_key="lnb-orders-" + hashlib.sha256("\n".join(changes).encode()).hexdigest()[:16],
            run_config={"ops": {"lnb_orders_for_export": {"config": {"references": sorted(o["reference"] for o in new)}}}},
            tags={"lnb_pipeline/orders": str(len(new))},
        )],
        cursor=json.dumps({"update_time": newest, "references": at_newest}),
    )
