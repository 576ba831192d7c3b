"""When the stock flow runs: the `inventory_sync` job and its schedule (LNB_STOCK_CRON, LNB_TIMEZONE)."""

from __future__ import annotations

import os

import dagster as dg

DEFAULT_STOCK_CRON = "*/30 * * * *"
DEFAULT_TIMEZONE = "UTC"
FLOW_TAG = "lnb_pipeline/flow"
"""Run tag the run queue limits on (one run per flow at a time; see dagster.yaml)."""

inventory_sync = dg.define_asset_job(
    name="inventory_sync",
    selection=dg.AssetSelection.groups("inventory"),
    description="Read Shopify stock, compute available-to-sell per key, preview and push it to LNB.",
    executor_def=dg.in_process_executor,
    # A run retried after a crash reads Shopify and LNB again rather than reuse what the dead run read.
    tags={FLOW_TAG: "inventory", "dagster/retry_strategy": "ALL_STEPS"},
)

inventory_sync_schedule = dg.ScheduleDefinition(
    name="inventory_sync_schedule",
    job=inventory_sync,
    cron_schedule=os.environ.get("LNB_STOCK_CRON", DEFAULT_STOCK_CRON),
    execution_timezone=os.environ.get("LNB_TIMEZONE", DEFAULT_TIMEZONE),
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Pushes Shopify stock to LNB on LNB_STOCK_CRON (default every 30 minutes) in LNB_TIMEZONE.",
)
