"""When the stock flow runs: the `inventory_preview` and `inventory_sync` jobs, and the schedule of the
second (LNB_STOCK_CRON, LNB_TIMEZONE)."""

from __future__ import annotations

import dagster as dg

from lnb_pipeline.defs.env import described
from lnb_pipeline.defs.inventory.assets import CONFIRM_PUSH_RUN_CONFIG
from lnb_pipeline.defs.pool_waits import in_process_executor_naming_pool_holders
from lnb_pipeline.settings import raise_problems, read_setting

FLOW_TAG = "lnb_pipeline/flow"
"""Run tag the run queue limits on (one run per flow at a time; see dagster.yaml)."""
STOCK_CRON = read_setting("LNB_STOCK_CRON", str)
TIMEZONE = read_setting("LNB_TIMEZONE", str)
FLOW_TAGS = {FLOW_TAG: "inventory", "dagster/retry_strategy": "ALL_STEPS"}
"""The preview shares the flow's tag, so it never reads LNB halfway through a push. A run retried
after a crash reads Shopify and LNB again rather than reuse what the dead run read."""

inventory_preview = dg.define_asset_job(
    name="inventory_preview",
    selection=dg.AssetSelection.groups("inventory") - dg.AssetSelection.assets("lnb_stock_push"),
    description=(
        "Shows what a stock push would do, without doing it: reads Shopify's stock, computes what LNB would "
        "receive per key and compares it with LNB's stock. Nothing is written to LNB. Read the results on "
        "the asset lnb_stock_preview (keys that would change, keys new to LNB, keys missing from Shopify) and "
        "available_to_sell (excluded variants, with their reasons). If its push guard check fails, "
        "inventory_sync would not push until confirmed."),
    executor_def=in_process_executor_naming_pool_holders,
    tags=FLOW_TAGS,
)

inventory_sync = dg.define_asset_job(
    name="inventory_sync",
    selection=dg.AssetSelection.groups("inventory"),
    description=(
        "Reads Shopify's stock, computes what LNB receives per key, previews it and pushes it to LNB. The "
        "push guard stops a push that would change or zero too much of LNB's stock; after checking the "
        f"preview, launch again with `{CONFIRM_PUSH_RUN_CONFIG}` to let it through. Run inventory_preview "
        "to look first without writing."),
    executor_def=in_process_executor_naming_pool_holders,
    tags=FLOW_TAGS,
)


@dg.schedule(
    name="inventory_sync_schedule",
    job=inventory_sync,
    cron_schedule=STOCK_CRON.value,
    execution_timezone=TIMEZONE.value,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description=described("The full stock sync, nightly by default (LNB_STOCK_CRON, in LNB_TIMEZONE): it corrects whatever "
                          "the stock changes pushed between syncs could not carry. "
                          "A push beyond the push guard's limits is blocked until someone confirms it.",
                          STOCK_CRON, TIMEZONE),
)
def inventory_sync_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """A malformed timing setting fails each tick, naming the variable, rather than the code location."""
    raise_problems(STOCK_CRON, TIMEZONE)
    return dg.RunRequest()
