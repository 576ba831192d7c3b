"""The incremental stock path: stock changed in Shopify reaches LNB within minutes, between full syncs.

A sensor asks Shopify cheaply whether any level changed since the mirror's cursor; if so it launches
`inventory_changes_sync`, which reads only the changed levels, recomputes available-to-sell with the
full flow's rules over the mirror (``stock_mirror.py``) and sends the keys whose quantity differs
from what LNB was last sent. The full `inventory_sync` stays, nightly, as the reconciliation.
"""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import polars as pl

from lnb_pipeline.clients.redaction import redact
from lnb_pipeline.defs.env import described
from lnb_pipeline.defs.inventory.assets import PUSH_POOL
from lnb_pipeline.defs.inventory.schedules import FLOW_TAG
from lnb_pipeline.defs.inventory.settings import InventorySettings
from lnb_pipeline.defs.lenewblack.resources import LeNewBlackResource
from lnb_pipeline.defs.pool_waits import in_process_executor_naming_pool_holders
from lnb_pipeline.defs.retries import API_RETRY, fail_fast_on_permanent_errors
from lnb_pipeline.defs.shopify.resources import ShopifyResource
from lnb_pipeline.defs.task_logs import write_task_log
from lnb_pipeline.rules.stock import compute_available_to_sell, exported_stock
from lnb_pipeline.rules.stock_changes import (
    apply_level_changes,
    keys_to_send,
    record_sent,
)
from lnb_pipeline.settings import raise_problems, read_setting
from lnb_pipeline.stock_changes import anything_changed, read_changed_levels
from lnb_pipeline.stock_mirror import (
    StockMirror,
    load_mirror,
    mirror_cursor,
    save_mirror,
)

GROUP = "inventory_changes"
JOB = "inventory_changes_sync"
CHANGES_SECONDS = read_setting("LNB_STOCK_CHANGES_SECONDS", int)
NO_MIRROR = "No full stock sync has finished yet: run inventory_sync once, and stock changes follow from then on."
ACTIVE_STATUSES = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
                   dg.DagsterRunStatus.STARTED]


def _window_start(mirror_read_at: datetime, inventory_settings: InventorySettings) -> datetime:
    return mirror_read_at - timedelta(seconds=inventory_settings.changes_overlap_seconds)


@dg.asset(group_name=GROUP, kinds={"shopify", "lenewblack", "polars"}, retry_policy=API_RETRY, pool=PUSH_POOL)
@fail_fast_on_permanent_errors
def lnb_stock_changes_push(context: dg.AssetExecutionContext, shopify: ShopifyResource,
                           lenewblack: LeNewBlackResource, inventory_settings: InventorySettings) -> dg.MaterializeResult:
    """Stock changed in Shopify since the last push, sent to LNB: only the changed levels are read,
    and only keys whose quantity differs from what LNB was last sent are pushed.

    Uses the same rules as the full sync. Changes it cannot see (a barcode edited, a new variant, a
    location switched off) wait for the next full inventory_sync, which corrects them.
    """
    directory = Path(inventory_settings.state_dir)
    mirror = load_mirror(directory)
    if mirror is None:
        raise dg.Failure(description=NO_MIRROR, allow_retries=False)
    settings = inventory_settings.stock_settings()
    started = datetime.now(UTC)
    since = _window_start(mirror.read_at, inventory_settings)
    shopify_client = shopify.get_client(context.log)
    changes = read_changed_levels(shopify_client, mirror.location_ids, since)
    applied = apply_level_changes(mirror.levels, changes.levels)
    stock = compute_available_to_sell(applied.levels, list(mirror.location_ids), settings)
    to_send = keys_to_send(exported_stock(stock), mirror.sent)
    changed_at = (
        applied.levels.join(changes.levels.select("inventory_item_id", "location_id", "updated_at"),
                            on=["inventory_item_id", "location_id"])
        .join(stock.select("variant_id", "key"), on="variant_id")
        .group_by("key").agg(pl.col("updated_at").min().alias("changed_at"))
    )
    outcomes = to_send.join(changed_at, on="key", how="left").with_columns(
        pl.lit("pushed").alias("outcome"), pl.lit(None, pl.String).alias("lnb_error"))
    rejected = 0
    if not to_send.is_empty():
        result = lenewblack.get_client(context.log).push_inventory(
            ({settings.key: key, "in_stock": quantity} for key, quantity in to_send.iter_rows()),
            key=settings.key)
        rejected = result.errors
        failures = pl.DataFrame({"key": [item.key for item in result.items if item.status != "success"],
                                 "rejection": [redact(item.error or "") for item in result.items
                                               if item.status != "success"]},
                                schema={"key": pl.String, "rejection": pl.String})
        outcomes = outcomes.join(failures, on="key", how="left").with_columns(
            pl.when(pl.col("rejection").is_not_null()).then(pl.lit("rejected by LNB"))
            .otherwise(pl.col("outcome")).alias("outcome"),
            pl.col("rejection").alias("lnb_error")).drop("rejection")
    pushed_at = datetime.now(UTC)
    # Rejected keys are recorded as sent too: LNB would refuse them again every minute; the full sync reports them.
    save_mirror(directory, StockMirror(applied.levels, record_sent(mirror.sent, to_send), started, mirror.location_ids,
                                       pushed_changes=mirror.pushed_changes or not to_send.is_empty()))
    oldest = outcomes["changed_at"].min()
    path = write_task_log(inventory_settings.task_log_dir, context.run.run_id, "lnb_stock_changes_push",
                          outcomes.with_columns(pl.lit(pushed_at).alias("pushed_at")))
    if applied.unknown_items:
        context.log.warning(f"{applied.unknown_items} changed level(s) belong to variants created since the last full "
                            "sync: the next inventory_sync adds them.")
    context.log.info(f"{changes.levels.height} changed level(s) read since {since.isoformat()}; "
                     f"{to_send.height} key(s) sent to LNB, {rejected} rejected")
    return dg.MaterializeResult(metadata={
        "levels_changed": changes.levels.height,
        "keys_pushed": to_send.height - rejected,
        "keys_rejected": rejected,
        "variants_not_yet_synced": applied.unknown_items,
        "window_start": dg.MetadataValue.timestamp(since),
        "window_end": dg.MetadataValue.timestamp(started),
        "delay_seconds": round((pushed_at - oldest).total_seconds(), 1) if isinstance(oldest, datetime) else None,
        "shopify_points_spent": shopify_client.stats.points_spent,
        "task_log": dg.MetadataValue.path(str(path)),
    })


inventory_changes_sync = dg.define_asset_job(
    name=JOB,
    selection=dg.AssetSelection.assets(lnb_stock_changes_push),
    description="Push the stock changed in Shopify since the last push (launched by shopify_stock_changes_sensor).",
    executor_def=in_process_executor_naming_pool_holders,
    # One inventory run at a time (see dagster.yaml): the incremental and the full push never overlap.
    tags={FLOW_TAG: "inventory"},
)


@dg.sensor(
    job=inventory_changes_sync,
    minimum_interval_seconds=CHANGES_SECONDS.value,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=described("Launches inventory_changes_sync when Shopify stock changed since the last push (asks "
                          "Shopify every LNB_STOCK_CHANGES_SECONDS, for a few cost points).", CHANGES_SECONDS),
)
def shopify_stock_changes_sensor(context: dg.SensorEvaluationContext, shopify: ShopifyResource,
                                 inventory_settings: InventorySettings) -> dg.RunRequest | dg.SkipReason:
    """One run at a time; a run that failed is simply followed by the next, from the same cursor."""
    raise_problems(CHANGES_SECONDS)
    cursor = mirror_cursor(Path(inventory_settings.state_dir))
    if cursor is None:
        return dg.SkipReason(NO_MIRROR)
    read_at, location_ids, _ = cursor
    active = context.instance.get_runs(dg.RunsFilter(job_name=JOB, statuses=ACTIVE_STATUSES), limit=1)
    if active:
        return dg.SkipReason(f"Run {active[0].run_id} is still pushing stock changes.")
    since = _window_start(read_at, inventory_settings)
    if not anything_changed(shopify.get_client(context.log), location_ids, since):
        return dg.SkipReason(f"No stock change in Shopify since {since.isoformat()}.")
    now = datetime.now(UTC)
    return dg.RunRequest(run_key=f"stock changes {since.isoformat()} / {now.isoformat()}",
                         tags={"lnb_pipeline/window_start": since.isoformat()})
