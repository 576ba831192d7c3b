"""Order flow: the LNB orders selected for export, created in Shopify exactly once, then marked in LNB."""

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
import polars as pl

from lnb_pipeline.clients.lenewblack import LnbNotFound
from lnb_pipeline.clients.shopify_queries import ACCESS_SCOPES_QUERY, SHOP_QUERY
from lnb_pipeline.defs.lenewblack.resources import LeNewBlackResource
from lnb_pipeline.defs.orders.settings import OrderFlowSettings
from lnb_pipeline.defs.shopify.resources import ShopifyResource
from lnb_pipeline.defs.retries import API_RETRY, fail_fast_on_permanent_errors
from lnb_pipeline.defs.task_logs import write_task_log
from lnb_pipeline.order_export import (
    DUPLICATE_IN_SHOPIFY,
    FAILED,
    REJECTED_BY_SHOPIFY,
    CreatePace,
    OrderExporter,
    OrderLookup,
    PendingOrder,
    find_buyers,
)
from lnb_pipeline.rules.orders import (
    ORDER_BLOCKED,
    ORDER_EXPORTABLE,
    SCOPE_READ_ALL_ORDERS,
    Buyer,
    ExportMoment,
    changed_after_export,
    order_create_input,
    order_create_options,
    retailer_reference,
    selection_reason,
    validate_orders,
    variant_index,
)
from lnb_pipeline.rules.stock import markdown_table

GROUP = "orders"
EXPORT_POOL = "lnb_orders_export"
UNIQUE_CHECK = "every_exported_order_unique_in_shopify"
FAILURES_CHECK = "no_export_failures"
REJECTED_CHECK = "no_order_rejected_by_shopify"
CHANGED_CHECK = "no_order_changed_after_export"
BLOCKED_REASONS = "blocked_reasons"
"""Metadata of `lnb_orders_for_export`: every blocked order as ``{"reference", "reasons"}`` (read by the alerts)."""
SAMPLE_ROWS = 20
PROGRESS_EVERY_SECONDS = 10.0


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
    """One row per selected order: status exportable/blocked and every reason."""
    lines: pl.DataFrame
    """One row per order line with its Shopify variant or its reason."""
    state_validation: pl.DataFrame
    """``validation``'s rows for every order in LNB_ORDER_EXPORT_STATUS now, selected or not."""
    state_lines: pl.DataFrame
    """``lines``' rows of those orders."""
    skipped: pl.DataFrame
    """Listed or fetched orders never sent (canceled, already exported, unknown): reference, reason."""
    buyers: dict[str, Buyer | None]
    shop_currency: str
    development_store: bool
    """Shopify takes 5 new orders a minute there: the export paces itself."""


def _skipped_frame(rows: list[tuple[str, str]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={"reference": pl.Utf8, "reason": pl.Utf8}, orient="row")


def _selection_text(context: dg.AssetExecutionContext, listed: bool, count: int, export_status: str) -> str:
    """Who chose the orders, in words: the sensor names new orders in run config nobody typed."""
    if not listed:
        return f"every order in LNB status {export_status}"
    sensor = context.run.tags.get("dagster/sensor_name")
    return f"{count} orders new in LNB status {export_status}, named by {sensor}" if sensor \
        else f"{count} orders named in the launchpad's run config"


@dg.asset(group_name=GROUP, kinds={"lenewblack", "shopify", "polars"}, retry_policy=API_RETRY)
@fail_fast_on_permanent_errors
def lnb_orders_for_export(context: dg.AssetExecutionContext, config: OrderSelectionConfig,
                          lenewblack: LeNewBlackResource, shopify: ShopifyResource,
                          order_flow_settings: OrderFlowSettings,
                          shopify_inventory_levels: pl.DataFrame) -> dg.MaterializeResult[OrderBatch]:
    """LNB orders selected for export, checked against the rules; and every order in the export status now.

    Orders in LNB_ORDER_EXPORT_STATUS, or the references listed in run config. The blocked orders
    reported (here, by the checks and by the alert) are all those in the export status now, so a run
    for a few listed orders never makes the others look fixed. Canceled and
    already-exported orders are never sent, even if listed. Each order is blocked, with every
    reason, when its retailer reference is missing or matches no Shopify customer, a line has no
    EAN13/SKU or matches no (or several) Shopify variants, a quantity is not positive, it has no
    lines, or its currency is not accepted. Variants come from the Shopify read of the same run.
    """
    settings = order_flow_settings.order_settings()
    lnb = lenewblack.get_client(context.log)
    client = shopify.get_client(context.log)
    listed = bool(config.references)
    skipped: list[tuple[str, str]] = []
    in_export_status = {order["reference"]: order for order in lnb.iter_orders(status=settings.export_status)}
    if listed:
        fetched = []
        for reference in dict.fromkeys(config.references):
            try:
                fetched.append(lnb.get_order(reference))
            except LnbNotFound:
                skipped.append((reference, "no such order in LNB"))
    else:
        fetched = list(in_export_status.values())
    selected = []
    for order in fetched:
        reason = selection_reason(order, settings, listed)
        if reason is None:
            selected.append(order)
        else:
            skipped.append((order["reference"], reason))
    to_check = list({**{o["reference"]: o for o in selected}, **in_export_status}.values())
    buyers = find_buyers(client, [ref for order in to_check if (ref := retailer_reference(order))], settings)
    shop = client.execute(SHOP_QUERY)["shop"]
    shop_currency = shop["currencyCode"]
    scopes = {scope["handle"] for scope in client.execute(ACCESS_SCOPES_QUERY)["currentAppInstallation"]["accessScopes"]}
    moment = ExportMoment(lenewblack.timezone(), datetime.now(UTC), SCOPE_READ_ALL_ORDERS in scopes)
    checked, checked_lines = validate_orders(to_check, buyers, variant_index(shopify_inventory_levels), shop_currency,
                                             settings, moment)
    selected_refs = pl.Series([o["reference"] for o in selected], dtype=pl.String)
    state_refs = pl.Series(list(in_export_status), dtype=pl.String)
    batch = OrderBatch(
        {o["reference"]: o for o in selected},
        checked.filter(pl.col("reference").is_in(selected_refs)),
        checked_lines.filter(pl.col("reference").is_in(selected_refs)),
        checked.filter(pl.col("reference").is_in(state_refs)),
        checked_lines.filter(pl.col("reference").is_in(state_refs)),
        _skipped_frame(skipped), buyers, shop_currency, shop["plan"]["partnerDevelopment"])
    exportable = batch.validation.filter(pl.col("status") == ORDER_EXPORTABLE).height
    blocked = batch.state_validation.filter(pl.col("status") == ORDER_BLOCKED)
    context.log.info("%d orders selected, %d exportable, %d skipped; %d of the %d orders in LNB status %s are blocked",
                     len(selected), exportable, len(skipped), len(blocked), len(in_export_status),
                     settings.export_status)
    return dg.MaterializeResult(value=batch, metadata={
        "orders_selected": len(selected),
        "orders_exportable": exportable,
        "orders_in_export_status": len(in_export_status),
        "orders_blocked": len(blocked),
        "orders_skipped": len(skipped),
        "selection": _selection_text(context, listed, len(selected), settings.export_status),
        "blocked": dg.MetadataValue.md(markdown_table(
            blocked.select("reference", "retailer_reference", pl.col("reasons").list.join("; ")), SAMPLE_ROWS)),
        "skipped": dg.MetadataValue.md(markdown_table(batch.skipped, SAMPLE_ROWS)),
        BLOCKED_REASONS: dg.MetadataValue.json(blocked.select("reference", "reasons").to_dicts()),
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
    on a later run once fixed. Every order's outcome goes to the task log.
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
    lines_by_order = batch.lines.sort("line").partition_by("reference", as_dict=True)
    existing = lookup.find(client, references)
    exporter = OrderExporter(client, lenewblack.get_client(context.log), settings, context.log,
                             order_create_options(settings), lookup,
                             settle_seconds=order_flow_settings.lookup_wait_seconds,
                             pace=CreatePace(context.log) if development_store else None)

    def pending_order(reference: str, processed_at: str | None) -> PendingOrder:
        order = batch.orders[reference]
        buyer = batch.buyers[retailer_reference(order) or ""]
        assert buyer is not None, "validation lets no order through without a buyer"
        line_variants = [(row["variant_id"], row["quantity"], row["unit_price"])
                         for row in lines_by_order[(reference,)].iter_rows(named=True)]
        return PendingOrder(reference, existing[reference], order_create_input(
            order, buyer, line_variants, settings, shop_currency=batch.shop_currency, processed_at=processed_at,
            custom_id=lookup.by_custom_id))

    started = time.monotonic()
    progress = _ProgressLog(context.log, len(references), started)
    outcomes = exporter.export_all(
        [pending_order(ref, processed) for ref, processed in exportable.select("reference", "processed_at").rows()],
        progress.update)
    outcome_frame = pl.DataFrame(
        [(o.reference, o.outcome, o.shopify_order_name, o.shopify_order_id, o.detail) for o in outcomes],
        schema={"reference": pl.Utf8, "outcome": pl.Utf8, "shopify_order": pl.Utf8, "shopify_order_id": pl.Utf8,
                "detail": pl.Utf8}, orient="row")
    path = write_task_log(order_flow_settings.task_log_dir, context.run.run_id, "shopify_orders_from_lnb",
                          _order_task_log(batch, outcome_frame))
    exported = {o.reference: o.shopify_order_id for o in outcomes if o.exported or o.outcome == DUPLICATE_IN_SHOPIFY}
    not_unique = pl.DataFrame(lookup.verify(client, exported), schema={
        "reference": pl.Utf8, "shopify_orders": pl.Int64, "names": pl.Utf8, "problem": pl.Utf8}, orient="row")
    if not not_unique.is_empty():
        context.log.error("%d exported references are not in Shopify exactly once: %s", len(not_unique),
                          "; ".join(f"{ref} ({problem}: {names})" for ref, _, names, problem in not_unique.rows()))
    failures = outcome_frame.filter(pl.col("outcome") == FAILED)
    rejected = outcome_frame.filter(pl.col("outcome") == REJECTED_BY_SHOPIFY)
    counts = dict(outcome_frame.group_by("outcome").len().iter_rows())
    context.log.info("Order export done: %s", ", ".join(f"{n} {name}" for name, n in sorted(counts.items())) or "nothing to do")
    return dg.MaterializeResult(
        metadata={
            **{f"orders: {name}": int(n) for name, n in sorted(counts.items())},
            "orders_blocked": len(batch.validation) - len(references),
            "orders_skipped": len(batch.skipped),
            "exactly_once_by": lookup.description,
            "development_store": development_store,
            "seconds": round(time.monotonic() - started, 2),
            "shopify_points_spent": client.stats.points_spent,
            "throttled_answers": client.stats.throttled,
            "outcomes": dg.MetadataValue.md(markdown_table(outcome_frame, SAMPLE_ROWS)),
            "task_log": dg.MetadataValue.path(str(path)),
        },
        check_results=[
            dg.AssetCheckResult(check_name=UNIQUE_CHECK, passed=not_unique.is_empty(),
                                severity=dg.AssetCheckSeverity.ERROR,
                                metadata={"references_checked": len(exported), "not_unique": len(not_unique),
                                          "checked_by": lookup.description,
                                          "offending": dg.MetadataValue.md(markdown_table(not_unique, SAMPLE_ROWS))}),
            dg.AssetCheckResult(check_name=FAILURES_CHECK, passed=failures.is_empty(),
                                severity=dg.AssetCheckSeverity.ERROR,
                                metadata={"failed": len(failures),
                                          "offending": dg.MetadataValue.md(markdown_table(
                                              failures.select("reference", "detail"), SAMPLE_ROWS))}),
            dg.AssetCheckResult(check_name=REJECTED_CHECK, passed=rejected.is_empty(),
                                severity=dg.AssetCheckSeverity.WARN,
                                metadata={"rejected": len(rejected),
                                          "orders": dg.MetadataValue.md(markdown_table(
                                              rejected.select("reference", "detail"), SAMPLE_ROWS))}),
        ],
    )


class _ProgressLog:
    """Logs export progress at most every ten seconds."""

    def __init__(self, log: logging.Logger, total: int, started: float) -> None:
        self._log, self._total, self._started, self._last = log, total, started, started

    def update(self, done: int) -> None:
        now = time.monotonic()
        if now - self._last >= PROGRESS_EVERY_SECONDS:
            self._last = now
            self._log.info("Exported %d/%d orders in %.0f s", done, self._total, now - self._started)


def _order_task_log(batch: OrderBatch, outcomes: pl.DataFrame) -> pl.DataFrame:
    """One line per order (exported, blocked with every reason, skipped) and per blocked line."""
    schema = {"reference": pl.Utf8, "line": pl.Int64, "outcome": pl.Utf8, "shopify_order": pl.Utf8,
              "shopify_order_id": pl.Utf8, "detail": pl.Utf8}
    exported = outcomes.select("reference", pl.lit(None, pl.Int64).alias("line"), "outcome", "shopify_order",
                               "shopify_order_id", "detail")
    blocked = batch.validation.filter(pl.col("status") == ORDER_BLOCKED).select(
        "reference", pl.lit(None, pl.Int64).alias("line"), pl.lit("blocked").alias("outcome"),
        pl.lit(None, pl.Utf8).alias("shopify_order"), pl.lit(None, pl.Utf8).alias("shopify_order_id"),
        pl.col("reasons").list.join("; ").alias("detail"))
    blocked_lines = batch.lines.filter(pl.col("reason").is_not_null()).select(
        "reference", pl.col("line").cast(pl.Int64), pl.lit("line blocked").alias("outcome"),
        pl.lit(None, pl.Utf8).alias("shopify_order"), pl.lit(None, pl.Utf8).alias("shopify_order_id"),
        pl.col("reason").alias("detail"))
    skipped = batch.skipped.select(
        "reference", pl.lit(None, pl.Int64).alias("line"), pl.lit("skipped").alias("outcome"),
        pl.lit(None, pl.Utf8).alias("shopify_order"), pl.lit(None, pl.Utf8).alias("shopify_order_id"),
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
    """
    settings = order_flow_settings.order_settings()
    since = datetime.now(UTC) - timedelta(days=order_flow_settings.change_lookback_days)
    exported = list(lenewblack.get_client(context.log).iter_orders(status=settings.exported_status,
                                                                   update_time_from=since))
    client = shopify.get_client(context.log)
    lookup = OrderLookup.for_shop(client, settings.order_metafield, context.log)
    in_shopify = lookup.find(client, [o["reference"] for o in exported])
    changed = [
        (order["reference"], found[0]["name"], order.get("update_time"),
         "changed after export: apply the change in Shopify")
        for order in exported
        if len(found := in_shopify[order["reference"]]) == 1 and changed_after_export(order, found[0]["tags"])
    ]
    report = pl.DataFrame(changed, schema={"reference": pl.Utf8, "shopify_order": pl.Utf8, "lnb_update_time": pl.Utf8,
                                           "action": pl.Utf8}, orient="row")
    yield dg.Output(report, metadata={"exported_orders_checked": len(exported), "changed_after_export": len(report),
                                      "changed": dg.MetadataValue.md(markdown_table(report, SAMPLE_ROWS))})
    yield dg.AssetCheckResult(check_name=CHANGED_CHECK, passed=report.is_empty(), severity=dg.AssetCheckSeverity.WARN,
                              metadata={"changed_after_export": len(report),
                                        "orders": dg.MetadataValue.md(markdown_table(report, SAMPLE_ROWS))})
