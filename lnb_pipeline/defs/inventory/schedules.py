"""When the stock flow runs: the `inventory_sync` job and its schedule (LNB_STOCK_CRON, LNB_TIMEZONE)."""

from __future__ import annotations

import dagster as dg

from lnb_pipeline.defs.env import described
from lnb_pipeline.defs.pool_waits import in_process_executor_naming_pool_holders
from lnb_pipeline.settings import raise_problems, read_setting

FLOW_TAG = "lnb_pipeline/flow"
"""Run tag the run queue limits on (one run per flow at a time; see dagster.yaml)."""
STOCK_CRON = read_setting("LNB_STOCK_CRON", str)
TIMEZONE = read_setting("LNB_TIMEZONE", str)

inventory_sync = dg.define_asset_job(
    name="inventory_sync",
    selection=dg.AssetSelection.groups("inventory"),
    description="Read Shopify stock, compute available-to-sell per key, preview and push it to LNB.",
    executor_def=in_process_executor_naming_pool_holders,
    # A run retried after a crash reads Shopify and LNB again rather than reuse what the dead run read.
    tags={FLOW_TAG: "inventory", "dagster/retry_strategy": "ALL_STEPS"},
)


@dg.schedule(
    name="inventory_sync_schedule",
    job=inventory_sync,
    cron_schedule=STOCK_CRON.value,
    execution_timezone=TIMEZONE.value,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description=described("Pushes Shopify stock to LNB on LNB_STOCK_CRON (default every 30 minutes) in LNB_TIMEZONE.",
                          STOCK_CRON, TIMEZONE),
)
def inventory_sync_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """A malformed timing setting fails each tick, naming the variable, rather than the code location."""
    raise_problems(STOCK_CRON, TIMEZONE)
    return dg.RunRequest()
