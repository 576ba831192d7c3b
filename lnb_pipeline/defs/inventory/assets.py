"""Stock flow: Shopify available-to-sell quantities pushed to Le New Black, keyed by EAN13 or SKU."""

import time
from collections.abc import Iterator

import dagster as dg
import polars as pl

from lnb_pipeline.clients.redaction import redact
from lnb_pipeline.defs.inventory.settings import InventorySettings
from lnb_pipeline.defs.lenewblack.resources import LeNewBlackResource
from lnb_pipeline.defs.shopify.resources import ShopifyResource
from lnb_pipeline.defs.retries import API_RETRY, fail_fast_on_permanent_errors
from lnb_pipeline.defs.task_logs import write_task_log
from lnb_pipeline.rules.plots import change_histogram_svg, svg_markdown_image
from lnb_pipeline.rules.stock import (
    STATUS_CHANGED,
    STATUS_EXCLUDED,
    STATUS_MISSING_FROM_SHOPIFY,
    STATUS_NEW_TO_LNB,
    STATUS_UNCHANGED,
    build_preview,
    compute_available_to_sell,
    exported_stock,
    largest_changes,
    lnb_inventory_frame,
    markdown_table,
    push_rows,
    select_locations,
)
from lnb_pipeline.stock_source import read_locations, read_stock

GROUP = "inventory"
VARIANT_COUNT_CHECK = "variant_count_matches_shopify"
PUSH_ACCEPTED_CHECK = "every_push_item_accepted"
PUSH_POOL = "lnb_stock_push"
"""Held by the push step whatever launched it (job, schedule, Materialize button): one push at a time."""
SAMPLE_ROWS = 20


class StockPushConfig(dg.Config):
    """Run config of the push."""

    full_refresh: bool = False
    """Send every key's quantity, not only the ones that differ from LNB."""


@dg.asset(group_name=GROUP, kinds={"shopify", "polars"}, retry_policy=API_RETRY)
@fail_fast_on_permanent_errors
def shopify_locations(context: dg.AssetExecutionContext, shopify: ShopifyResource) -> dg.MaterializeResult[pl.DataFrame]:
    """Shopify locations (id, name, active). Stock is summed over the active ones unless LNB_STOCK_LOCATIONS names others."""
    client = shopify.get_client(context.log)
    locations = read_locations(client)
    return dg.MaterializeResult(value=locations, metadata={
        "locations": len(locations),
        "active": int(locations["is_active"].sum()),
        "preview": dg.MetadataValue.md(markdown_table(locations)),
    })


@dg.asset(
    group_name=GROUP, kinds={"shopify", "polars"}, retry_policy=API_RETRY,
    check_specs=[dg.AssetCheckSpec(VARIANT_COUNT_CHECK, asset="shopify_inventory_levels", blocking=True,
                                   description="Every variant Shopify counts was read: a shortfall blocks the push.")],
)
@fail_fast_on_permanent_errors
def shopify_inventory_levels(context: dg.AssetExecutionContext, shopify: ShopifyResource,
                             inventory_settings: InventorySettings,
                             shopify_locations: pl.DataFrame) -> Iterator[dg.Output[pl.DataFrame] | dg.AssetCheckResult]:
    """Shopify stock per variant x location: SKU, barcode, product status, tracked flag, available, on_hand, committed.

    Read by pages for small shops and by a bulk operation for large ones (SHOPIFY_STOCK_READ_MODE);
    the number of variants read is checked against Shopify's productVariantsCount.
    """
    client = shopify.get_client(context.log)
    started = time.monotonic()
    read = read_stock(client, mode=inventory_settings.read_mode,  # type: ignore[arg-type]
                      bulk_threshold=inventory_settings.bulk_threshold, location_count=len(shopify_locations),
                      log=context.log)
    variants_read = read.levels["variant_id"].n_unique()
    shortfall = read.expected_variants - variants_read
    yield dg.Output(read.levels, metadata={
        "rows": len(read.levels),
        "variants_read": variants_read,
        "variants_expected": read.expected_variants,
        "read_mode": read.mode,
        "seconds": round(time.monotonic() - started, 2),
        "shopify_points_spent": client.stats.points_spent,
        "throttled_answers": client.stats.throttled,
    })
    yield dg.AssetCheckResult(
        check_name=VARIANT_COUNT_CHECK,
        passed=shortfall <= 0,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"variants_read": variants_read, "variants_expected": read.expected_variants,
                  "shortfall": max(shortfall, 0)},
        description=None if shortfall <= 0 else
        f"Read {variants_read} variants but Shopify counts {read.expected_variants}: not pushing a partial picture.",
    )


@dg.asset(group_name=GROUP, kinds={"polars"})
def available_to_sell(context: dg.AssetExecutionContext, inventory_settings: InventorySettings,
                      shopify_inventory_levels: pl.DataFrame, shopify_locations: pl.DataFrame) -> dg.MaterializeResult[pl.DataFrame]:
    """Available-to-sell per LNB key (EAN13 or SKU, LNB_STOCK_KEY), one row per variant.

    `available` summed over the selected locations (a negative level counts as 0), less the safety
    buffer, floored at 0. Variants without a key, with an invalid EAN13 or sharing their key with
    another variant are excluded, each with its reason; they are never pushed.
    """
    settings = inventory_settings.stock_settings()
    location_ids = select_locations(shopify_locations, settings)
    stock = compute_available_to_sell(shopify_inventory_levels, location_ids, settings)
    excluded = stock.filter(pl.col("excluded_reason").is_not_null())
    reasons = excluded.group_by("excluded_reason").len().sort("len", descending=True)
    return dg.MaterializeResult(value=stock, metadata={
        "variants": len(stock),
        "keys_exported": len(stock) - len(excluded),
        "variants_excluded": len(excluded),
        "key": settings.key,
        "locations": dg.MetadataValue.md(", ".join(
            shopify_locations.filter(pl.col("id").is_in(location_ids))["name"].to_list()) or "(none)"),
        "exclusions_by_reason": dg.MetadataValue.md(markdown_table(reasons)),
        "units_exported": int(exported_stock(stock)["quantity"].sum()),
    })


@dg.asset(group_name=GROUP, kinds={"lenewblack", "polars"}, retry_policy=API_RETRY)
@fail_fast_on_permanent_errors
def lnb_stock_preview(context: dg.AssetExecutionContext, lenewblack: LeNewBlackResource,
                      inventory_settings: InventorySettings, available_to_sell: pl.DataFrame) -> dg.MaterializeResult[pl.DataFrame]:
    """Preview of the push: LNB's current stock beside the new quantity for every key.

    Each key is unchanged, changed, new to LNB, in LNB but no longer in Shopify, or excluded in
    Shopify (left as it is in LNB).
    Materialise up to here to see what a push would do without doing it.
    """
    key = inventory_settings.stock_settings().key
    current = lnb_inventory_frame(lenewblack.get_client(context.log).get_inventory(), key)
    excluded_keys = available_to_sell.filter(pl.col("excluded_reason").is_not_null())["key"].drop_nulls()
    preview = build_preview(exported_stock(available_to_sell), current, excluded_keys)
    counts = dict(preview.group_by("status").len().iter_rows())
    return dg.MaterializeResult(value=preview, metadata={
        **{f"keys_{status}": int(counts.get(status, 0))
           for status in (STATUS_UNCHANGED, STATUS_CHANGED, STATUS_NEW_TO_LNB, STATUS_MISSING_FROM_SHOPIFY,
                          STATUS_EXCLUDED)},
        "largest_changes": dg.MetadataValue.md(markdown_table(largest_changes(preview, SAMPLE_ROWS))),
        "changes_by_magnitude": dg.MetadataValue.md(
            svg_markdown_image(change_histogram_svg(preview), "Stock changes by magnitude")),
    })


@dg.asset(
    group_name=GROUP, kinds={"lenewblack"}, retry_policy=API_RETRY, pool=PUSH_POOL,
    check_specs=[dg.AssetCheckSpec(PUSH_ACCEPTED_CHECK, asset="lnb_stock_push",
                                   description="LNB accepted every pushed item (unknown EAN13/SKU are rejected per item).")],
)
@fail_fast_on_permanent_errors
def lnb_stock_push(context: dg.AssetExecutionContext, config: StockPushConfig, lenewblack: LeNewBlackResource,
                   inventory_settings: InventorySettings, lnb_stock_preview: pl.DataFrame,
                   available_to_sell: pl.DataFrame) -> dg.MaterializeResult:
    """Stock pushed to LNB through its batch endpoint: only changed keys, or every key with `full_refresh`.

    Item-level rejections (e.g. a key LNB does not know) are recorded, not fatal. Every key's outcome
    goes to the run's task log file.
    """
    key = inventory_settings.stock_settings().key
    to_push = push_rows(lnb_stock_preview, config.full_refresh)
    client = lenewblack.get_client(context.log)
    result = client.push_inventory(
        ({key: row_key, "in_stock": quantity} for row_key, quantity in to_push.select("key", "quantity").iter_rows()),
        key=key,  # type: ignore[arg-type]
    )
    outcomes = pl.DataFrame(
        {"key": [item.key for item in result.items],
         "pushed_status": [item.status for item in result.items],
         "lnb_error": [redact(item.error) if item.error else None for item in result.items]},
        schema={"key": pl.Utf8, "pushed_status": pl.Utf8, "lnb_error": pl.Utf8},
    )
    task_log = _stock_task_log(available_to_sell, lnb_stock_preview, outcomes)
    path = write_task_log(inventory_settings.task_log_dir, context.run.run_id, "lnb_stock_push", task_log)
    rejected = task_log.filter(pl.col("outcome") == "rejected by LNB")
    return dg.MaterializeResult(
        metadata={
            "keys_pushed": result.successes,
            "keys_rejected": result.errors,
            "batch_calls": result.batches,
            "full_refresh": config.full_refresh,
            "task_log": dg.MetadataValue.path(str(path)),
        },
        check_results=[dg.AssetCheckResult(
            check_name=PUSH_ACCEPTED_CHECK,
            passed=result.errors == 0,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"rejected": result.errors,
                      "sample": dg.MetadataValue.md(markdown_table(rejected.select("key", "quantity", "detail"),
                                                                   SAMPLE_ROWS))},
        )],
    )


def _stock_task_log(available: pl.DataFrame, preview: pl.DataFrame, pushed: pl.DataFrame) -> pl.DataFrame:
    """One line per key (or per excluded variant): pushed, unchanged, excluded, rejected or LNB-only."""
    excluded = available.filter(pl.col("excluded_reason").is_not_null()).select(
        pl.col("key"), pl.col("variant_id"), pl.lit("excluded").alias("outcome"),
        pl.col("quantity"), pl.col("excluded_reason").alias("detail"))
    exported = available.filter(pl.col("excluded_reason").is_null()).select("key", "variant_id")
    per_key = (
        preview.join(excluded.select("key").drop_nulls(), on="key", how="anti")
        .join(pushed, on="key", how="left")
        .join(exported, on="key", how="left")
        .select(
            pl.col("key"),
            pl.col("variant_id"),
            pl.when(pl.col("pushed_status") == "success").then(pl.lit("pushed"))
            .when(pl.col("pushed_status") == "error").then(pl.lit("rejected by LNB"))
            .when(pl.col("status") == STATUS_MISSING_FROM_SHOPIFY).then(pl.lit("in LNB only, left unchanged"))
            .when(pl.col("status") == STATUS_NEW_TO_LNB).then(pl.lit("not in LNB, sent only on full refresh"))
            .otherwise(pl.lit("unchanged")).alias("outcome"),
            pl.coalesce("new_quantity", "lnb_quantity").alias("quantity"),
            pl.when(pl.col("pushed_status") == "error").then(pl.col("lnb_error"))
            .when(pl.col("status") == STATUS_CHANGED).then(
                pl.format("LNB had {}", pl.col("lnb_quantity")))
            .otherwise(pl.lit(None, dtype=pl.Utf8)).alias("detail"),
        )
    )
    return pl.concat([per_key, excluded], how="vertical_relaxed").sort("outcome", "key", "variant_id", nulls_last=True)
