"""Stock flow: Shopify available-to-sell quantities pushed to Le New Black, keyed by EAN13 or SKU.

The words of the metadata (variants read, keys changed, units going to zero…) are defined once, in
docs/reading-the-ui-stock.md; the same concept has the same name on every asset and check.
"""

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import polars as pl

from lnb_pipeline.clients.redaction import redact
from lnb_pipeline.clients.shopify_admin import admin_url
from lnb_pipeline.defs.inventory.settings import InventorySettings
from lnb_pipeline.defs.lenewblack.resources import LeNewBlackResource
from lnb_pipeline.defs.retries import API_RETRY, fail_fast_on_permanent_errors
from lnb_pipeline.defs.shopify.resources import ShopifyResource
from lnb_pipeline.defs.task_logs import write_task_log
from lnb_pipeline.rules.plots import change_histogram_svg, svg_markdown_image
from lnb_pipeline.rules.stock import (
    STATUS_CHANGED,
    STATUS_EXCLUDED,
    STATUS_MISSING_FROM_SHOPIFY,
    STATUS_NEW_TO_LNB,
    STATUS_UNCHANGED,
    PushGuard,
    build_preview,
    compute_available_to_sell,
    exclusions_by_reason,
    exported_stock,
    largest_changes,
    lnb_inventory_frame,
    push_guard,
    push_rows,
    select_locations,
    with_variant_names,
)
from lnb_pipeline.stock_mirror import StockMirror, mirror_cursor, save_mirror
from lnb_pipeline.stock_source import read_locations, read_stock

GROUP = "inventory"
VARIANT_COUNT_CHECK = "variant_count_matches_shopify"
PUSH_GUARD_CHECK = "push_within_guard_limits"
PUSH_ACCEPTED_CHECK = "every_push_item_accepted"
NOTHING_TO_CORRECT_CHECK = "full_sync_found_nothing_to_correct"
READ_STARTED_AT = "read_started_at"
PUSH_POOL = "lnb_stock_push"
"""Held by the push step whatever launched it (job, schedule, Materialize button): one push at a time."""
CONFIRM_PUSH_RUN_CONFIG = "ops: {lnb_stock_preview: {config: {confirm_push_guard: true}}}"
"""The run config that lets one run's push through the push guard, as typed in the Launchpad."""
LIST_ROWS_SHOWN = 1000
"""Rows of each list the UI shows. A normal day's list fits whole: a push changes a few
dozen keys, the demo's first push about 160, a first push on a catalogue of a few thousand variants
some hundreds. 1 000 rows keep the asset page quick to open; the count beside each list is always
the total, and the asset's task log file holds every row."""


@dataclass(frozen=True)
class ListColumn:
    """One column of a list shown in the UI: its header, the frame column it shows, its type."""

    header: str
    source: str
    type: str = "string"


VARIANT = ListColumn("variant", "title")
SKU = ListColumn("SKU", "sku")
BARCODE = ListColumn("barcode", "barcode")
KEY = ListColumn("key", "key")
SHOPIFY_ADMIN = ListColumn("Shopify admin", "shopify_admin", "url")
"""The variant's page in the Shopify admin. Dagster 1.13 shows table cells as plain text, so the
link is copied into the browser, not clicked."""
LNB_QUANTITY = ListColumn("LNB quantity", "lnb_quantity", "int")
NEW_QUANTITY = ListColumn("new quantity", "new_quantity", "int")
KEY_COLUMNS = (KEY, VARIANT, SKU, BARCODE)
EXCLUDED_COLUMNS = (VARIANT, SKU, BARCODE, ListColumn("reason", "excluded_reason"), SHOPIFY_ADMIN)


class StockPreviewConfig(dg.Config):
    """Run config of the preview: confirm_push_guard lets this run's push through the push guard."""

    confirm_push_guard: bool = False
    """Let this run's push through the push guard: set it once you have checked a preview the guard blocked."""


class StockPushConfig(dg.Config):
    """Run config of the push."""

    full_refresh: bool = False
    """Send every key's quantity, not only the ones that differ from LNB."""


def with_admin_links(frame: pl.DataFrame, shop_url: str) -> pl.DataFrame:
    """``frame`` (with ``variant_id`` and ``product_id``) and a ``shopify_admin`` column: each variant's admin page."""
    links = [admin_url(shop_url, variant, product)
             for variant, product in frame.select("variant_id", "product_id").iter_rows()]
    return frame.with_columns(pl.Series("shopify_admin", links, dtype=pl.String))


def list_entries(name: str, frame: pl.DataFrame, columns: Sequence[ListColumn],
                 task_log: str) -> dict[str, dg.MetadataValue]:
    """``name``: how many rows ``frame`` has, then ``{name}_list``: a table of its first ``LIST_ROWS_SHOWN``
    rows; when it has more, ``{name}_not_listed`` says how many more, in the task log ``task_log``."""
    schema = dg.TableSchema(columns=[dg.TableColumn(column.header, column.type) for column in columns])
    records = [dg.TableRecord({column.header: row[column.source] for column in columns})
               for row in frame.head(LIST_ROWS_SHOWN).iter_rows(named=True)]
    entries: dict[str, dg.MetadataValue] = {
        name: dg.MetadataValue.int(frame.height),
        f"{name}_list": dg.MetadataValue.table(records, schema),
    }
    rest = frame.height - LIST_ROWS_SHOWN
    if rest > 0:
        entries[f"{name}_not_listed"] = dg.MetadataValue.text(
            f"{rest} more row{'' if rest == 1 else 's'}, in the task log {task_log}")
    return entries


def _write_task_log(settings: InventorySettings, context: dg.AssetExecutionContext, rows: pl.DataFrame) -> Path:
    """Every row of this asset's lists, in a file named after the run and the asset."""
    return write_task_log(settings.task_log_dir, context.run.run_id, context.asset_key.to_user_string(), rows)


@dg.asset(group_name=GROUP, kinds={"shopify", "polars"}, retry_policy=API_RETRY)
@fail_fast_on_permanent_errors
def shopify_locations(context: dg.AssetExecutionContext, shopify: ShopifyResource) -> dg.MaterializeResult[pl.DataFrame]:
    """The shop's locations. Stock is summed over the active ones, unless LNB_STOCK_LOCATIONS names others
    (by the name or the gid shown here)."""
    client = shopify.get_client(context.log)
    locations = read_locations(client)
    table = locations.select(pl.col("name"), pl.col("is_active").alias("active"), pl.col("id").alias("gid"))
    return dg.MaterializeResult(value=locations, metadata={
        "locations_in_shopify": len(locations),
        "active_locations": int(locations["is_active"].sum()),
        "locations": dg.MetadataValue.table(
            [dg.TableRecord(row) for row in table.iter_rows(named=True)],
            dg.TableSchema(columns=[dg.TableColumn("name"), dg.TableColumn("active", "bool"),
                                    dg.TableColumn("gid")])),
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
    """Shopify's stock of every variant at every location, with the variant's name, SKU, barcode and
    whether Shopify tracks its inventory.

    Read by pages for small shops and by a bulk operation for large ones (SHOPIFY_STOCK_READ_MODE);
    the number of variants read is checked against the number Shopify counts.
    """
    client = shopify.get_client(context.log)
    started = time.monotonic()
    read_started_at = datetime.now(UTC)
    read = read_stock(client, mode=inventory_settings.read_mode,  # type: ignore[arg-type]
                      bulk_threshold=inventory_settings.bulk_threshold, location_count=len(shopify_locations),
                      log=context.log)
    variants_read = read.levels["variant_id"].n_unique()
    shortfall = read.expected_variants - variants_read
    yield dg.Output(read.levels, metadata={
        "variants_read": variants_read,
        "variants_counted_by_shopify": read.expected_variants,
        "levels_read": len(read.levels),
        "read_mode": read.mode,
        READ_STARTED_AT: dg.MetadataValue.timestamp(read_started_at),
        "read_seconds": round(time.monotonic() - started, 2),
        "shopify_points_spent": client.stats.points_spent,
        "throttled_answers": client.stats.throttled,
    })
    yield dg.AssetCheckResult(
        check_name=VARIANT_COUNT_CHECK,
        passed=shortfall <= 0,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"variants_read": variants_read, "variants_counted_by_shopify": read.expected_variants,
                  "variants_not_read": max(shortfall, 0)},
        description=None if shortfall <= 0 else
        f"Read {variants_read} variants but Shopify counts {read.expected_variants}: not pushing a partial picture.",
    )


@dg.asset(group_name=GROUP, kinds={"polars"})
def available_to_sell(context: dg.AssetExecutionContext, shopify: ShopifyResource,
                      inventory_settings: InventorySettings, shopify_inventory_levels: pl.DataFrame,
                      shopify_locations: pl.DataFrame) -> dg.MaterializeResult[pl.DataFrame]:
    """The quantity LNB would receive for each variant, under the code LNB knows it by (its key: the
    EAN13 barcode or the SKU, LNB_STOCK_KEY).

    Stock available in Shopify, summed over the selected locations (a negative level counts as 0),
    less the safety buffer, never below 0. Variants without a key, with an invalid EAN13, sharing
    their key with another variant, or untracked (by default) are excluded, each with its reason:
    they are never pushed, and LNB keeps what it has for them.
    """
    settings = inventory_settings.stock_settings()
    location_ids = select_locations(shopify_locations, settings)
    stock = compute_available_to_sell(shopify_inventory_levels, location_ids, settings)
    named = with_admin_links(stock, shopify.shop_url)
    excluded = named.filter(pl.col("excluded_reason").is_not_null())
    reasons = exclusions_by_reason(stock)
    task_log = _write_task_log(inventory_settings, context, named)
    return dg.MaterializeResult(value=stock, metadata={
        "variants_read": len(stock),
        "keys_with_quantity": len(stock) - len(excluded),
        "units_available_to_sell": int(exported_stock(stock)["quantity"].sum()),
        **list_entries("variants_excluded", excluded, EXCLUDED_COLUMNS, str(task_log)),
        "variants_excluded_by_reason": dg.MetadataValue.table(
            [dg.TableRecord(row) for row in reasons.iter_rows(named=True)],
            dg.TableSchema(columns=[dg.TableColumn("reason"), dg.TableColumn("variants", "int")])),
        "stock_key": settings.key,
        "locations_summed": ", ".join(shopify_locations.filter(pl.col("id").is_in(location_ids))["name"].to_list()),
        "task_log": dg.MetadataValue.path(str(task_log)),
    })


@dg.asset(
    group_name=GROUP, kinds={"lenewblack", "polars"}, retry_policy=API_RETRY,
    check_specs=[dg.AssetCheckSpec(
        PUSH_GUARD_CHECK, asset="lnb_stock_preview", blocking=True,
        description=(
            "Stops the push when it would change more than LNB_STOCK_GUARD_MAX_CHANGED_PERCENT of LNB's keys, or "
            "set to 0 more than LNB_STOCK_GUARD_MAX_ZEROED_PERCENT of LNB's units: a broken Shopify read must never "
            "wipe LNB's stock. Read the preview; if the change is right, launch inventory_sync again from the "
            f"Launchpad with the run config `{CONFIRM_PUSH_RUN_CONFIG}`: that run's push goes through."))],
)
@fail_fast_on_permanent_errors
def lnb_stock_preview(context: dg.AssetExecutionContext, config: StockPreviewConfig, shopify: ShopifyResource,
                      lenewblack: LeNewBlackResource, inventory_settings: InventorySettings,
                      available_to_sell: pl.DataFrame) -> Iterator[dg.Output[pl.DataFrame] | dg.AssetCheckResult]:
    """What a push would do: LNB's current stock beside the new quantity, for every key on either side.

    Lists the keys whose quantity would change (largest first), the keys new to LNB (LNB has no such
    product yet: they are not pushed) and the keys missing from Shopify (LNB keeps its quantity).
    The push guard check stops a push that would change or zero too much of LNB's stock.
    The job inventory_preview runs up to here and never writes to LNB.
    """
    key = inventory_settings.stock_settings().key
    current = lnb_inventory_frame(lenewblack.get_client(context.log).get_inventory(), key)
    excluded_keys = available_to_sell.filter(pl.col("excluded_reason").is_not_null())["key"].drop_nulls()
    preview = with_variant_names(build_preview(exported_stock(available_to_sell), current, excluded_keys),
                                 available_to_sell, current)
    named = with_admin_links(preview, shopify.shop_url)
    guard = push_guard(preview, inventory_settings.guard_max_changed_percent,
                       inventory_settings.guard_max_zeroed_percent)
    counts = dict(preview.group_by("status").len().iter_rows())
    task_log = str(_write_task_log(inventory_settings, context, named))
    yield dg.Output(
        preview,
        metadata={
            "keys_in_lnb": guard.keys_in_lnb,
            "units_in_lnb": guard.units_in_lnb,
            **list_entries("keys_changed", largest_changes(named),
                           (*KEY_COLUMNS, LNB_QUANTITY, NEW_QUANTITY, ListColumn("change", "change", "int"),
                            SHOPIFY_ADMIN), task_log),
            "units_going_to_zero": guard.units_going_to_zero,
            "keys_unchanged": int(counts.get(STATUS_UNCHANGED, 0)),
            **list_entries("keys_new_to_lnb", named.filter(pl.col("status") == STATUS_NEW_TO_LNB),
                           (*KEY_COLUMNS, NEW_QUANTITY, SHOPIFY_ADMIN), task_log),
            **list_entries("keys_missing_from_shopify", named.filter(pl.col("status") == STATUS_MISSING_FROM_SHOPIFY),
                           (KEY, ListColumn("SKU in LNB", "sku"), ListColumn("barcode in LNB", "barcode"),
                            LNB_QUANTITY), task_log),
            "keys_of_excluded_variants": int(counts.get(STATUS_EXCLUDED, 0)),
            "changes_by_magnitude": dg.MetadataValue.md(
                svg_markdown_image(change_histogram_svg(preview), "Stock changes by magnitude")),
            "task_log": dg.MetadataValue.path(task_log),
        },
    )
    yield _push_guard_result(guard, config.confirm_push_guard)


def _push_guard_result(guard: PushGuard, confirmed: bool) -> dg.AssetCheckResult:
    """ERROR and blocking beyond a limit, unless this run's config confirms the push."""
    figures = (f"{guard.keys_changed} of LNB's {guard.keys_in_lnb} keys would change "
               f"({guard.changed_percent:.1f}%, limit {guard.max_changed_percent}%); "
               f"{guard.units_going_to_zero} of LNB's {guard.units_in_lnb} units would go to zero "
               f"({guard.zeroed_percent:.1f}%, limit {guard.max_zeroed_percent}%).")
    if guard.within_limits:
        description = f"Within the push guard's limits: {figures}"
    elif confirmed:
        description = f"Beyond the push guard's limits, pushed as confirmed by run config (confirm_push_guard): {figures}"
    else:
        description = (f"Push blocked: {figures} Read the preview; if this change is right, launch inventory_sync "
                       f"again with the run config `{CONFIRM_PUSH_RUN_CONFIG}`.")
    return dg.AssetCheckResult(
        check_name=PUSH_GUARD_CHECK,
        passed=guard.within_limits or confirmed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=description,
        metadata={
            "keys_changed": guard.keys_changed,
            "keys_in_lnb": guard.keys_in_lnb,
            "keys_changed_percent": round(guard.changed_percent, 1),
            "max_keys_changed_percent": guard.max_changed_percent,
            "units_going_to_zero": guard.units_going_to_zero,
            "units_in_lnb": guard.units_in_lnb,
            "units_going_to_zero_percent": round(guard.zeroed_percent, 1),
            "max_units_going_to_zero_percent": guard.max_zeroed_percent,
            "confirmed_in_run_config": confirmed,
        },
    )


@dg.asset(
    group_name=GROUP, kinds={"lenewblack"}, retry_policy=API_RETRY, pool=PUSH_POOL,
    check_specs=[dg.AssetCheckSpec(PUSH_ACCEPTED_CHECK, asset="lnb_stock_push",
                                   description="LNB accepted every pushed item (unknown EAN13/SKU are rejected per item)."),
                 dg.AssetCheckSpec(NOTHING_TO_CORRECT_CHECK, asset="lnb_stock_push",
                                   description="With stock changes flowing between full syncs, a full sync finds "
                                               "nothing left to correct in LNB.")],
)
@fail_fast_on_permanent_errors
def lnb_stock_push(context: dg.AssetExecutionContext, config: StockPushConfig, shopify: ShopifyResource,
                   lenewblack: LeNewBlackResource, inventory_settings: InventorySettings,
                   lnb_stock_preview: pl.DataFrame, available_to_sell: pl.DataFrame,
                   shopify_inventory_levels: pl.DataFrame, shopify_locations: pl.DataFrame) -> dg.MaterializeResult:
    """Sets LNB's stock: the keys whose quantity changed, or every key with `full_refresh`.

    A key LNB rejects (e.g. a product it does not know) is reported, not fatal. Every key's outcome
    goes to the run's task log file. The read it pushed becomes the starting point of the stock
    changes that follow (inventory_changes_sync); keys it had to change although those changes were
    flowing are reported as corrections.
    """
    settings = inventory_settings.stock_settings()
    key = settings.key
    mirror_dir = Path(inventory_settings.state_dir)
    previous = mirror_cursor(mirror_dir)
    changes_were_flowing = previous is not None and previous.pushed_changes
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
    task_log = str(_write_task_log(inventory_settings, context,
                                   _stock_task_log(available_to_sell, lnb_stock_preview, outcomes)))
    rejected = with_admin_links(
        lnb_stock_preview.join(outcomes.filter(pl.col("pushed_status") == "error"), on="key", how="inner"),
        shopify.shop_url)
    save_mirror(mirror_dir, StockMirror(
        levels=shopify_inventory_levels,
        sent=lnb_stock_preview.filter(pl.col("status").is_in([STATUS_CHANGED, STATUS_UNCHANGED]))
        .select("key", pl.col("new_quantity").alias("quantity")),
        read_at=_read_started_at(context),
        location_ids=tuple(select_locations(shopify_locations, settings)),
    ))
    corrected = result.successes if changes_were_flowing else 0
    return dg.MaterializeResult(
        metadata={
            "keys_pushed": result.successes,
            "keys_rejected": result.errors,
            "batch_calls": result.batches,
            "full_refresh": config.full_refresh,
            "task_log": dg.MetadataValue.path(task_log),
        },
        check_results=[dg.AssetCheckResult(
            check_name=PUSH_ACCEPTED_CHECK,
            passed=result.errors == 0,
            severity=dg.AssetCheckSeverity.ERROR,
            description=None if result.errors == 0 else
            f"LNB rejected {result.errors} of the {len(to_push)} keys sent and kept its quantity for them.",
            metadata=list_entries("keys_rejected", rejected,
                                  (*KEY_COLUMNS, ListColumn("quantity sent", "new_quantity", "int"),
                                   ListColumn("LNB's answer", "lnb_error"), SHOPIFY_ADMIN), task_log),
        ), dg.AssetCheckResult(
            check_name=NOTHING_TO_CORRECT_CHECK,
            passed=corrected == 0,
            severity=dg.AssetCheckSeverity.ERROR,
            description=None if corrected == 0 else
            f"{corrected} key(s) in LNB differed from Shopify although stock changes were pushed since the last full "
            "sync: changes the incremental path cannot see (a barcode edited, a new variant, a location switched "
            "off) or stock edited in LNB. The task log lists them.",
            metadata={"keys_corrected": corrected, "stock_changes_pushed_since_last_full_sync": changes_were_flowing},
        )],
    )


def _read_started_at(context: dg.AssetExecutionContext) -> datetime:
    """When the pushed Shopify read started: stock changes after it are the incremental path's."""
    event = context.instance.get_latest_materialization_event(dg.AssetKey("shopify_inventory_levels"))
    value = event.asset_materialization.metadata[READ_STARTED_AT].value if event and event.asset_materialization else None
    if not isinstance(value, float):
        raise dg.Failure(description="The Shopify stock read that was pushed did not record when it started.")
    return datetime.fromtimestamp(value, UTC)


def _stock_task_log(available: pl.DataFrame, preview: pl.DataFrame, pushed: pl.DataFrame) -> pl.DataFrame:
    """One line per key (or per excluded variant): pushed, unchanged, excluded, rejected or LNB-only."""
    excluded = available.filter(pl.col("excluded_reason").is_not_null()).select(
        "key", "variant_id", "title", pl.lit("excluded").alias("outcome"),
        "quantity", pl.col("excluded_reason").alias("detail"))
    per_key = (
        preview.filter(pl.col("status") != STATUS_EXCLUDED)
        .join(pushed, on="key", how="left")
        .select(
            "key",
            "variant_id",
            "title",
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
