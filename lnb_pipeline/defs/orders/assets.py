"""Order flow: the LNB orders selected for export, created in Shopify exactly once, then marked in LNB.

What each metadata entry, count and table means is in docs/reading-the-ui-orders.md.
"""

import logging
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl

from lnb_pipeline.clients.lenewblack import LnbNotFound
from lnb_pipeline.clients.shopify_admin import admin_url
from lnb_pipeline.defs.lenewblack.resources import LeNewBlackResource
from lnb_pipeline.defs.orders.settings import OrderFlowSettings
from lnb_pipeline.defs.retries import API_RETRY, fail_fast_on_permanent_errors
from lnb_pipeline.defs.shopify.resources import ShopifyResource
from lnb_pipeline.defs.task_logs import write_task_log
from lnb_pipeline.order_export import (
    ALREADY_IN_SHOPIFY,
    CREATED,
    DUPLICATE_IN_SHOPIFY,
    FAILED,
    REJECTED_BY_SHOPIFY,
    CreatePace,
    OrderExporter,
    OrderLookup,
    PendingOrder,
    check_orders,
)
from lnb_pipeline.rules.orders import (
    ORDER_BLOCKED,
    ORDER_EXPORTABLE,
    Buyer,
    changed_after_export,
    order_create_options,
    order_inputs,
    retailer_name,
    selection_reason,
)

GROUP = "orders"
EXPORT_POOL = "lnb_orders_export"
UNIQUE_CHECK = "every_exported_order_unique_in_shopify"
FAILURES_CHECK = "no_export_failures"
REJECTED_CHECK = "no_order_rejected_by_shopify"
CHANGED_CHECK = "no_order_changed_after_export"
SELECTION_TASK = "lnb_orders_for_export"
EXPORT_TASK = "shopify_orders_from_lnb"
PROGRESS_EVERY_SECONDS = 10.0

TABLE_ROWS = 250
"""Rows a table in the UI lists. A brand confirms a few dozen wholesale orders on LNB on a normal day and a
few hundred at the peak of a selling season, so every blocked order and every order of a run is listed
(a first export of a long backlog excepted); 250 rows keep one table under about 100 kB in Dagster's event log.
The count beside each table is always whole, and the task log lists every row."""
BLOCKED_ORDERS = "blocked_orders"
"""Table of ``lnb_orders_for_export`` (and of ``no_order_blocked``): every order blocked now; the alerts
read it through ``blocked_orders_in``."""
REASONS_SEPARATOR = ";\n"
"""Joins an order's reasons in a table cell. The UI shows the line break as a space (``a; b``); the
alerts split on it exactly, as no reason holds a line break (they are replaced by spaces)."""

ORDER_REFERENCE = "order_reference"
"""The order reference's column in every table. Dagster's tables never wrap a header, so this name keeps
the column wide enough for a reference of about 12 characters on one line (``reference`` let
``LNB-0006`` wrap after its hyphen); the text stays as LNB has it, to copy into LNB's search."""

COLUMNS: dict[str, str] = {
    ORDER_REFERENCE: "The LNB order reference.",
    "retailer": "The retailer's name in LNB.",
    "retailer_reference": "The retailer's reference in LNB: how its Shopify customer (or company) is found.",
    "reasons": "Every reason the order is blocked; docs/reading-the-ui-orders.md says what to change for each.",
    "shopify_customer": "Admin page of the Shopify customer (or B2B company) the retailer matched; empty: none.",
    "reason": "Why the order is not sent (listed orders), or why the line blocks its order.",
    "line": "The line's number in the LNB order.",
    "item": "The item as LNB names it: product (colour, size).",
    "ean13": "The line's EAN13 as LNB sent it.",
    "sku": "The line's SKU as LNB sent it.",
    "outcome": "What happened to the order in this run.",
    "shopify_order": "The Shopify order's name.",
    "shopify_order_link": "Admin page of the Shopify order.",
    "detail": "Why, for an order that did not go through.",
    "lnb_status": "The order's status in LNB, which a test order leaves as it is.",
    "shopify_orders": "How many Shopify orders carry the LNB reference.",
    "names": "Their names in Shopify.",
    "problem": "What is wrong.",
    "lnb_update_time": "When the order was last changed in LNB.",
    "action": "What to do.",
}
"""Every table column shown in the UI, with what it means (the table's "Show schema")."""


class OrderSelectionConfig(dg.Config):
    """Run config of the selection (the launchpad's "select these orders")."""

    references: list[str] = []
    """LNB order references to export; empty means every order in LNB_ORDER_EXPORT_STATUS."""


@dataclass(frozen=True)
class OrderBatch:
    """What one run selected and how each order fared in validation, and the state of every order in
    the export status now (what the checks and the blocked-orders alert report, whatever was selected)."""

    orders: dict[str, dict[str, Any]]
    """Selected LNB orders by reference (exportable and blocked)."""
    validation: pl.DataFrame
    """One row per selected order: status exportable/blocked, every reason, and the admin link of the
    Shopify customer or company its retailer matched (``shopify_customer``)."""
    lines: pl.DataFrame
    """One row per order line with its Shopify variant or its reason."""
    state_validation: pl.DataFrame
    """``validation``'s rows for every order in LNB_ORDER_EXPORT_STATUS now, selected or not."""
    state_lines: pl.DataFrame
    """``lines``' rows of those orders."""
    skipped: pl.DataFrame
    """Listed or fetched orders never sent (canceled, already exported, unknown): reference, reason."""
    buyers: dict[str, Buyer | None]
    shop_url: str
    """Where the Shopify admin links point (SHOPIFY_SHOP_URL)."""
    shop_currency: str
    development_store: bool
    """Shopify takes 5 new orders a minute there: the export paces itself."""
    task_log: Path
    """The selection's task log: every order in the export status or selected, with every reason."""


def metadata_table(frame: pl.DataFrame) -> dg.TableMetadataValue:
    """The first ``TABLE_ROWS`` rows of ``frame`` as a typed table, ``reference`` shown as ``ORDER_REFERENCE``;
    its other columns must be in ``COLUMNS``."""
    shown = frame.head(TABLE_ROWS).rename({"reference": ORDER_REFERENCE}, strict=False)
    columns = [dg.TableColumn(name, _column_type(dtype), description=COLUMNS[name])
               for name, dtype in shown.schema.items()]
    return dg.MetadataValue.table([dg.TableRecord(row) for row in shown.iter_rows(named=True)],
                                  dg.TableSchema(columns=columns))


def _column_type(dtype: pl.DataType) -> str:
    if dtype.is_integer():
        return "int"
    if dtype.is_float():
        return "float"
    return "bool" if dtype == pl.Boolean else "string"


def listed(name: str, frame: pl.DataFrame, task_log: Path) -> dict[str, Any]:
    """``name`` as a table and, when it holds more rows than the UI lists, ``<name>_not_listed`` saying
    how many more and where they are."""
    rest = frame.height - TABLE_ROWS
    note = {f"{name}_not_listed": f"{rest} more rows, in the task log {task_log}"} if rest > 0 else {}
    return {name: metadata_table(frame), **note}


def reasons_text(reasons: pl.Expr) -> pl.Expr:
    """An order's reasons (a list column) as one table cell, joined by ``REASONS_SEPARATOR``."""
    return reasons.list.eval(pl.element().str.replace_all("\n", " ", literal=True)).list.join(REASONS_SEPARATOR)


def blocked_orders_frame(validation: pl.DataFrame) -> pl.DataFrame:
    """The ``blocked_orders`` table's rows: each blocked order of a ``validation`` frame, by reference."""
    return validation.filter(pl.col("status") == ORDER_BLOCKED).sort("reference").select(
        "reference", pl.col("retailer_name").alias("retailer"), "retailer_reference",
        reasons_text(pl.col("reasons")).alias("reasons"), "shopify_customer")


def blocked_orders_in(materialization: dg.AssetMaterialization | None) -> list[dict[str, Any]]:
    """``[{"reference", "retailer", "reasons"}]`` from a selection's ``blocked_orders`` table (empty when it
    has none): what the alerts send, the first ``TABLE_ROWS`` blocked orders."""
    entry = materialization.metadata.get(BLOCKED_ORDERS) if materialization else None
    if not isinstance(entry, dg.TableMetadataValue):
        return []
    return [{"reference": record.data[ORDER_REFERENCE], "retailer": record.data["retailer"],
             "reasons": str(record.data["reasons"]).split(REASONS_SEPARATOR)} for record in entry.records]


def _selection_text(context: dg.AssetExecutionContext, listed_count: int, export_status: str) -> str:
    """Which orders this run sends, in words: the sensor lists new orders in run config nobody typed."""
    if not listed_count:
        return f"every order in LNB status {export_status}"
    sensor = context.run.tags.get("dagster/sensor_name")
    if sensor:
        return f"the {counted(listed_count, 'order')} that entered LNB status {export_status}, found by {sensor}"
    return f"the {counted(listed_count, 'order')} a person listed in the run config"


def customer_links(buyers: dict[str, Buyer | None], shop_url: str) -> pl.Expr:
    """``shopify_customer``: each retailer reference's Shopify customer (or company) admin page."""
    links = {reference: admin_url(shop_url, buyer.shopify_id) for reference, buyer in buyers.items() if buyer}
    return pl.col("retailer_reference").replace_strict(links, default=None, return_dtype=pl.String).alias(
        "shopify_customer")


def _selection_task_log(orders: pl.DataFrame, lines: pl.DataFrame, selected: set[str],
                        skipped: pl.DataFrame) -> pl.DataFrame:
    """One row per order checked (each order in the export status now, and each one selected), per
    blocked line and per order not sent, by reference."""
    schema = {"reference": pl.String, "retailer": pl.String, "retailer_reference": pl.String,
              "selected": pl.Boolean, "line": pl.Int64, "outcome": pl.String, "detail": pl.String}
    order_rows = orders.select(
        "reference", pl.col("retailer_name").alias("retailer"), "retailer_reference",
        pl.col("reference").is_in(sorted(selected)).alias("selected"), pl.lit(None, pl.Int64).alias("line"),
        pl.col("status").alias("outcome"),
        pl.when(pl.col("reasons").list.len() > 0).then(pl.col("reasons").list.join("; ")).alias("detail"))
    line_rows = lines.filter(pl.col("reason").is_not_null()).join(
        order_rows.select("reference", "retailer", "retailer_reference", "selected"), on="reference", how="left",
    ).select("reference", "retailer", "retailer_reference", "selected", "line",
             pl.lit("line blocked").alias("outcome"), pl.col("reason").alias("detail"))
    skipped_rows = skipped.select(
        "reference", "retailer", pl.lit(None, pl.String).alias("retailer_reference"), pl.lit(False).alias("selected"),
        pl.lit(None, pl.Int64).alias("line"), pl.lit("skipped").alias("outcome"), pl.col("reason").alias("detail"))
    return pl.concat([frame.cast(schema) for frame in (order_rows, line_rows, skipped_rows)]).sort(
        "reference", "line", nulls_last=False)


@dg.asset(group_name=GROUP, kinds={"lenewblack", "shopify", "polars"}, retry_policy=API_RETRY)
@fail_fast_on_permanent_errors
def lnb_orders_for_export(context: dg.AssetExecutionContext, config: OrderSelectionConfig,
                          lenewblack: LeNewBlackResource, shopify: ShopifyResource,
                          order_flow_settings: OrderFlowSettings,
                          shopify_inventory_levels: pl.DataFrame) -> dg.MaterializeResult[OrderBatch]:
    """LNB orders selected for export, checked against the rules; and every order blocked now.

    A run sends every order in LNB_ORDER_EXPORT_STATUS, or only the references listed in its run
    config. The blocked orders listed here (and by the checks and the alert) are all those in the
    export status now, with their retailer's name and every reason, so a run for a few listed orders
    never makes the others look fixed. Canceled and already-exported orders are never sent, even if
    listed. An order is blocked when its retailer reference is missing or matches no Shopify
    customer, a line has no EAN13/SKU or matches no (or several) Shopify variants, a quantity is not
    positive, it has no lines, or its currency is not accepted. docs/reading-the-ui-orders.md says
    what to change for each reason.
    """
    settings = order_flow_settings.order_settings()
    lnb = lenewblack.get_client(context.log)
    client = shopify.get_client(context.log)
    listed_refs = list(dict.fromkeys(config.references))
    skipped: list[tuple[str, str | None, str]] = []
    in_export_status = {order["reference"]: order for order in lnb.iter_orders(status=settings.export_status)}
    if listed_refs:
        fetched = []
        for reference in listed_refs:
            try:
                fetched.append(lnb.get_order(reference))
            except LnbNotFound:
                skipped.append((reference, None, "no such order in LNB"))
    else:
        fetched = list(in_export_status.values())
    selected = []
    for order in fetched:
        reason = selection_reason(order, settings, bool(listed_refs))
        if reason is None:
            selected.append(order)
        else:
            skipped.append((order["reference"], retailer_name(order), reason))
    to_check = list({**{o["reference"]: o for o in selected}, **in_export_status}.values())
    check = check_orders(client, to_check, shopify_inventory_levels, settings, lenewblack.timezone())
    buyers, shop, checked_lines = check.buyers, check.shop, check.lines
    checked = check.validation.with_columns(customer_links(buyers, shopify.shop_url))
    skipped_frame = pl.DataFrame(skipped, schema={"reference": pl.String, "retailer": pl.String, "reason": pl.String},
                                 orient="row")
    task_log = write_task_log(order_flow_settings.task_log_dir, context.run.run_id, SELECTION_TASK,
                              _selection_task_log(checked, checked_lines, {o["reference"] for o in selected},
                                                  skipped_frame))
    selected_refs = [o["reference"] for o in selected]
    state_refs = list(in_export_status)
    batch = OrderBatch(
        {o["reference"]: o for o in selected},
        checked.filter(pl.col("reference").is_in(selected_refs)),
        checked_lines.filter(pl.col("reference").is_in(selected_refs)),
        checked.filter(pl.col("reference").is_in(state_refs)),
        checked_lines.filter(pl.col("reference").is_in(state_refs)),
        skipped_frame, buyers, shopify.shop_url, shop["currencyCode"], shop["plan"]["partnerDevelopment"], task_log)
    exportable = batch.validation.filter(pl.col("status") == ORDER_EXPORTABLE).height
    blocked = blocked_orders_frame(batch.state_validation)
    context.log.info("%d orders selected, %d exportable, %d skipped; %d of the %d orders in LNB status %s are "
                     "blocked now", len(selected), exportable, len(skipped), blocked.height, len(in_export_status),
                     settings.export_status)
    return dg.MaterializeResult(value=batch, metadata={
        "selection": _selection_text(context, len(listed_refs), settings.export_status),
        "orders_in_export_status": len(in_export_status),
        "orders_blocked_now": blocked.height,
        **listed(BLOCKED_ORDERS, blocked, task_log),
        "orders_selected": len(selected),
        "orders_exportable": exportable,
        "orders_skipped": len(skipped),
        **listed("skipped_orders", skipped_frame.sort("reference"), task_log),
        "task_log": dg.MetadataValue.path(str(task_log)),
    })


@dg.asset(
    group_name=GROUP, kinds={"shopify", "lenewblack"}, pool=EXPORT_POOL,
    check_specs=[
        dg.AssetCheckSpec(UNIQUE_CHECK, asset="shopify_orders_from_lnb", blocking=True,
                          description="Every exported LNB reference maps to exactly one Shopify order (checked in "
                                      "Shopify); a duplicate fails the run."),
        dg.AssetCheckSpec(FAILURES_CHECK, asset="shopify_orders_from_lnb",
                          description="No order export failed for a transient reason (they are retried on the next run)."),
        dg.AssetCheckSpec(REJECTED_CHECK, asset="shopify_orders_from_lnb",
                          description="Shopify accepted every order sent (a refused one keeps its LNB status)."),
    ],
)
def shopify_orders_from_lnb(context: dg.AssetExecutionContext, lenewblack: LeNewBlackResource,
                            shopify: ShopifyResource, order_flow_settings: OrderFlowSettings,
                            lnb_orders_for_export: OrderBatch) -> dg.MaterializeResult:
    """Exportable LNB orders created in Shopify exactly once, then set to LNB_ORDER_EXPORTED_STATUS in LNB.

    Each order carries its LNB reference as a custom id (SHOPIFY_ORDER_METAFIELD, a metafield
    definition of type id) and is looked up by it before it is created, so a crash or a lost
    answer never creates a second order. Without that definition it falls back to searching
    sourceIdentifier, and says so. Blocked orders keep their LNB status and go out by themselves
    on a later run once fixed. Every order sent is listed with its Shopify order and a link to it
    in the Shopify admin; the task log has them all.
    """
    settings = order_flow_settings.order_settings()
    batch = lnb_orders_for_export
    client = shopify.get_client(context.log)
    lookup = OrderLookup.for_shop(client, settings.order_metafield, context.log)
    development_store = batch.development_store
    exportable = batch.validation.filter(pl.col("status") == ORDER_EXPORTABLE)
    references = exportable["reference"].to_list()
    if development_store and len(references) > CreatePace.LIMIT:
        context.log.warning("Development store: Shopify takes at most %d new orders a minute, so %d orders take "
                            "about %.0f minutes", CreatePace.LIMIT, len(references), len(references) / CreatePace.LIMIT)
    existing = lookup.find(client, references)
    exporter = OrderExporter(client, lenewblack.get_client(context.log), settings, context.log,
                             order_create_options(settings), lookup,
                             settle_seconds=order_flow_settings.lookup_wait_seconds,
                             pace=CreatePace(context.log) if development_store else None)

    inputs = order_inputs(batch.orders, batch.validation, batch.lines, batch.buyers, settings,
                          shop_currency=batch.shop_currency, custom_id=lookup.by_custom_id)
    started = time.monotonic()
    progress = _ProgressLog(context.log, len(references), started)
    outcomes = exporter.export_all(
        [PendingOrder(ref, existing[ref], order_input) for ref, order_input in inputs.items()], progress.update)
    sent = pl.DataFrame(
        [(o.reference, o.outcome, o.shopify_order_name, admin_url(batch.shop_url, o.shopify_order_id), o.detail)
         for o in outcomes],
        schema={"reference": pl.String, "outcome": pl.String, "shopify_order": pl.String,
                "shopify_order_link": pl.String, "detail": pl.String}, orient="row",
    ).join(_retailers(batch), on="reference", how="left", maintain_order="left").select(
        "reference", "retailer", "outcome", "shopify_order", "shopify_order_link", "shopify_customer", "detail",
    ).sort("reference")
    path = write_task_log(order_flow_settings.task_log_dir, context.run.run_id, EXPORT_TASK,
                          _export_task_log(batch, sent))
    exported = {o.reference: o.shopify_order_id for o in outcomes if o.exported or o.outcome == DUPLICATE_IN_SHOPIFY}
    not_unique = pl.DataFrame(lookup.verify(client, exported), schema={
        "reference": pl.String, "shopify_orders": pl.Int64, "names": pl.String, "problem": pl.String}, orient="row",
    ).join(_retailers(batch).select("reference", "retailer"), on="reference", how="left", maintain_order="left").select(
        "reference", "retailer", "shopify_orders", "names", "problem")
    if not not_unique.is_empty():
        context.log.error("%d exported references are not in Shopify exactly once: %s", len(not_unique),
                          "; ".join(f"{ref} of {retailer} ({problem}: {names})"
                                    for ref, retailer, _, names, problem in not_unique.rows()))
    failures = sent.filter(pl.col("outcome") == FAILED).select("reference", "retailer", "shopify_order_link", "detail")
    rejected = sent.filter(pl.col("outcome") == REJECTED_BY_SHOPIFY).select("reference", "retailer", "detail")
    counts = Counter(o.outcome for o in outcomes)
    context.log.info("Order export done: %s", ", ".join(f"{n} {name}" for name, n in sorted(counts.items()))
                     or "nothing to do")
    return dg.MaterializeResult(
        metadata={
            "orders_to_export": len(references),
            "orders_exported": counts[CREATED] + counts[ALREADY_IN_SHOPIFY],
            "orders_created": counts[CREATED],
            "orders_found_again": counts[ALREADY_IN_SHOPIFY],
            "orders_rejected": counts[REJECTED_BY_SHOPIFY],
            "orders_failed": counts[FAILED],
            "orders_duplicated_in_shopify": counts[DUPLICATE_IN_SHOPIFY],
            **listed("sent_to_shopify", sent, path),
            "exactly_once_by": lookup.description,
            "development_store": development_store,
            "seconds": round(time.monotonic() - started, 2),
            "shopify_points_spent": client.stats.points_spent,
            "throttled_answers": client.stats.throttled,
            "task_log": dg.MetadataValue.path(str(path)),
        },
        check_results=[
            dg.AssetCheckResult(check_name=UNIQUE_CHECK, passed=not_unique.is_empty(),
                                severity=dg.AssetCheckSeverity.ERROR,
                                description=_orders_problem(not_unique,
                                                            "not in Shopify exactly once (resolve in Shopify)"),
                                metadata={"orders_checked": len(exported), "orders_not_unique": len(not_unique),
                                          "checked_by": lookup.description,
                                          **listed("not_unique_orders", not_unique, path)}),
            dg.AssetCheckResult(check_name=FAILURES_CHECK, passed=failures.is_empty(),
                                severity=dg.AssetCheckSeverity.ERROR,
                                description=_orders_problem(failures, "failed (the next run tries again)"),
                                metadata={"orders_failed": len(failures), **listed("failed_orders", failures, path)}),
            dg.AssetCheckResult(check_name=REJECTED_CHECK, passed=rejected.is_empty(),
                                severity=dg.AssetCheckSeverity.ERROR,
                                description=_orders_problem(rejected, "rejected by Shopify (kept in their LNB status)"),
                                metadata={"orders_rejected": len(rejected),
                                          **listed("rejected_orders", rejected, path)}),
        ],
    )


DESCRIBED_ORDERS = 3
"""How many orders a failed check's description names, by retailer; its table lists them all."""


def orders_named(orders: pl.DataFrame) -> str:
    """``Boutique Lumière (LNB-0006), R9001 (LNB-0012) and 4 more``: the first orders of a frame with
    ``reference`` and ``retailer`` columns by retailer name, else by retailer reference when it has one."""
    reference = pl.col("retailer_reference") if "retailer_reference" in orders.columns else pl.lit(None, pl.String)
    who = pl.coalesce(pl.col("retailer"), reference, pl.lit("no retailer"))
    shown = orders.head(DESCRIBED_ORDERS).select(pl.format("{} ({})", who, pl.col("reference"))).to_series().to_list()
    more = orders.height - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def counted(count: int, noun: str) -> str:
    """``1 order``, ``2 orders``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _orders_problem(orders: pl.DataFrame, problem: str) -> str | None:
    """A failed check's description: how many orders, what is wrong, the first few by retailer."""
    return f"{counted(orders.height, 'order')} {problem}: {orders_named(orders)}." if orders.height else None


def _retailers(batch: OrderBatch) -> pl.DataFrame:
    """reference → retailer (name) and shopify_customer (link) of every selected order."""
    return batch.validation.select("reference", pl.col("retailer_name").alias("retailer"), "shopify_customer")


class _ProgressLog:
    """Logs export progress at most every ten seconds."""

    def __init__(self, log: logging.Logger, total: int, started: float) -> None:
        self._log, self._total, self._started, self._last = log, total, started, started

    def update(self, done: int) -> None:
        now = time.monotonic()
        if now - self._last >= PROGRESS_EVERY_SECONDS:
            self._last = now
            self._log.info("Exported %d/%d orders in %.0f s", done, self._total, now - self._started)


def _export_task_log(batch: OrderBatch, sent: pl.DataFrame) -> pl.DataFrame:
    """One line per selected order (sent with its outcome, blocked with every reason, skipped) and per blocked line."""
    schema = {"reference": pl.String, "retailer": pl.String, "line": pl.Int64, "outcome": pl.String,
              "shopify_order": pl.String, "shopify_order_link": pl.String, "detail": pl.String}
    retailers = _retailers(batch).select("reference", "retailer")
    exported = sent.select("reference", "retailer", pl.lit(None, pl.Int64).alias("line"), "outcome", "shopify_order",
                           "shopify_order_link", "detail")
    blocked = batch.validation.filter(pl.col("status") == ORDER_BLOCKED).select(
        "reference", pl.col("retailer_name").alias("retailer"), pl.lit(None, pl.Int64).alias("line"),
        pl.lit("blocked").alias("outcome"), pl.lit(None, pl.String).alias("shopify_order"),
        pl.lit(None, pl.String).alias("shopify_order_link"), pl.col("reasons").list.join("; ").alias("detail"))
    blocked_lines = batch.lines.filter(pl.col("reason").is_not_null()).join(
        retailers, on="reference", how="left").select(
        "reference", "retailer", pl.col("line").cast(pl.Int64), pl.lit("line blocked").alias("outcome"),
        pl.lit(None, pl.String).alias("shopify_order"), pl.lit(None, pl.String).alias("shopify_order_link"),
        pl.col("reason").alias("detail"))
    skipped = batch.skipped.select(
        "reference", "retailer", pl.lit(None, pl.Int64).alias("line"), pl.lit("skipped").alias("outcome"),
        pl.lit(None, pl.String).alias("shopify_order"), pl.lit(None, pl.String).alias("shopify_order_link"),
        pl.col("reason").alias("detail"))
    return pl.concat([frame.cast(schema) for frame in (exported, blocked, blocked_lines, skipped)]).sort(
        "reference", "line", nulls_last=False)


@dg.asset(
    group_name=GROUP, kinds={"lenewblack", "shopify", "polars"}, retry_policy=API_RETRY,
    deps=[shopify_orders_from_lnb],
    check_specs=[dg.AssetCheckSpec(CHANGED_CHECK, asset="lnb_orders_changed_after_export",
                                   description="No exported order was edited in LNB afterwards (edits are not re-sent).")],
)
@fail_fast_on_permanent_errors
def lnb_orders_changed_after_export(context: dg.AssetExecutionContext, lenewblack: LeNewBlackResource,
                                    shopify: ShopifyResource,
                                    order_flow_settings: OrderFlowSettings) -> Iterator[dg.Output[pl.DataFrame] | dg.AssetCheckResult]:
    """Exported orders edited in LNB afterwards: they are not re-sent; apply the change in Shopify.

    An order's content (lines, addresses, comment) is fingerprinted into a tag of its Shopify order
    at export; an exported LNB order whose fingerprint no longer matches was changed after export.
    Each is listed with its retailer and a link to its Shopify order.
    """
    settings = order_flow_settings.order_settings()
    since = datetime.now(UTC) - timedelta(days=order_flow_settings.change_lookback_days)
    exported = list(lenewblack.get_client(context.log).iter_orders(status=settings.exported_status,
                                                                   update_time_from=since))
    client = shopify.get_client(context.log)
    lookup = OrderLookup.for_shop(client, settings.order_metafield, context.log)
    in_shopify = lookup.find(client, [o["reference"] for o in exported])
    changed = [
        (order["reference"], retailer_name(order), found[0]["name"], admin_url(shopify.shop_url, found[0]["id"]),
         order.get("update_time"), "changed after export: apply the change in Shopify")
        for order in exported
        if len(found := in_shopify[order["reference"]]) == 1 and changed_after_export(order, found[0]["tags"])
    ]
    report = pl.DataFrame(changed, schema={"reference": pl.String, "retailer": pl.String, "shopify_order": pl.String,
                                           "shopify_order_link": pl.String, "lnb_update_time": pl.String,
                                           "action": pl.String}, orient="row").sort("reference")
    path = write_task_log(order_flow_settings.task_log_dir, context.run.run_id, "lnb_orders_changed_after_export",
                          report)
    yield dg.Output(report, metadata={"exported_orders_checked": len(exported),
                                      "orders_changed_after_export": len(report),
                                      **listed("changed_orders", report, path),
                                      "task_log": dg.MetadataValue.path(str(path))})
    yield dg.AssetCheckResult(check_name=CHANGED_CHECK, passed=report.is_empty(), severity=dg.AssetCheckSeverity.ERROR,
                              description=_orders_problem(report, "changed in LNB after export (apply the changes "
                                                                  "in Shopify)"),
                              metadata={"orders_changed_after_export": len(report),
                                        **listed("changed_orders", report, path)})
