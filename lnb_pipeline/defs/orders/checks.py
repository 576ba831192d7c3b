"""The order rules as asset checks: each blocked order is reported with its retailer and reasons.

They describe every order in the export status now, whatever the run selected. A blocked order fails
its checks with ERROR severity, so the asset shows red until it is fixed, but blocks nothing: it
keeps its LNB status and goes out by itself once fixed. A failed check's description
names how many orders are blocked and the first few by retailer; its table lists them all.
"""

import dagster as dg
import polars as pl

from lnb_pipeline.defs.orders.assets import (
    BLOCKED_ORDERS,
    OrderBatch,
    blocked_orders_frame,
    counted,
    listed,
    lnb_orders_for_export,
    orders_named,
)
from lnb_pipeline.rules.orders import (
    ORDER_BLOCKED,
    REASON_INVALID_EAN13,
    REASON_NO_CODE,
    REASON_NO_COMPANY,
    REASON_NO_CUSTOMER,
    REASON_NO_VARIANT,
    REASON_RETAILER_REFERENCE_MISSING,
    REASON_SEVERAL_VARIANTS,
)


def _lines_with(batch: OrderBatch, reasons: tuple[str, ...]) -> pl.DataFrame:
    """The lines of orders in the export status now with one of ``reasons``, with their retailer."""
    retailers = batch.state_validation.select("reference", pl.col("retailer_name").alias("retailer"),
                                              "retailer_reference")
    return batch.state_lines.filter(
        pl.any_horizontal([pl.col("reason").str.contains(r, literal=True) for r in reasons]),
    ).join(retailers, on="reference", how="left").sort("reference", "line")


def _lines_result(batch: OrderBatch, offending: pl.DataFrame, rule: str) -> dg.AssetCheckResult:
    orders = offending.unique("reference", keep="first", maintain_order=True)
    return dg.AssetCheckResult(
        passed=offending.is_empty(),
        severity=dg.AssetCheckSeverity.ERROR,
        description=(f"{counted(orders.height, 'order')} blocked now by {counted(offending.height, 'line')} "
                     f"{rule}: {orders_named(orders)}." if offending.height else
                     f"No line {rule} in the {batch.state_validation.height} orders in the export status."),
        metadata={"orders_blocked_now": orders.height, "lines_blocked_now": offending.height,
                  **listed("blocked_lines", offending.select("reference", "retailer", "line", "item", "ean13", "sku",
                                                             "reason"), batch.task_log)},
    )


def _orders_result(batch: OrderBatch, offending: pl.DataFrame, problem: str, clear: str) -> dg.AssetCheckResult:
    blocked = blocked_orders_frame(offending)
    return dg.AssetCheckResult(
        passed=blocked.is_empty(),
        severity=dg.AssetCheckSeverity.ERROR,
        description=f"{counted(blocked.height, 'order')} {problem}: {orders_named(blocked)}." if blocked.height
        else clear,
        metadata={"orders_blocked_now": blocked.height, **listed(BLOCKED_ORDERS, blocked, batch.task_log)},
    )


@dg.asset_check(asset=lnb_orders_for_export, description="Every order line has an EAN13 or a SKU.")
def order_lines_have_codes(lnb_orders_for_export: OrderBatch) -> dg.AssetCheckResult:
    return _lines_result(lnb_orders_for_export, _lines_with(lnb_orders_for_export, (REASON_NO_CODE,)),
                         "without EAN13 or SKU")


@dg.asset_check(asset=lnb_orders_for_export,
                description="Every order line matches exactly one Shopify variant by EAN13 or SKU.")
def order_lines_match_shopify_variants(lnb_orders_for_export: OrderBatch) -> dg.AssetCheckResult:
    return _lines_result(
        lnb_orders_for_export,
        _lines_with(lnb_orders_for_export, (REASON_NO_VARIANT, REASON_SEVERAL_VARIANTS, REASON_INVALID_EAN13)),
        "matching no, or several, Shopify variants")


@dg.asset_check(asset=lnb_orders_for_export,
                description="Every order's retailer has a reference that matches a Shopify customer (or company).")
def retailer_references_valid(lnb_orders_for_export: OrderBatch) -> dg.AssetCheckResult:
    reasons = (REASON_RETAILER_REFERENCE_MISSING, REASON_NO_CUSTOMER, REASON_NO_COMPANY)
    offending = lnb_orders_for_export.state_validation.filter(
        pl.col("reasons").list.eval(pl.any_horizontal([pl.element().str.starts_with(r) for r in reasons])).list.any())
    return _orders_result(lnb_orders_for_export, offending, "blocked now by their retailer reference",
                          f"Every retailer of the {lnb_orders_for_export.state_validation.height} orders in the "
                          "export status matches a Shopify customer.")


@dg.asset_check(asset=lnb_orders_for_export,
                description="No order in the export status is blocked now; each blocked one is listed with its "
                            "retailer and every reason.")
def no_order_blocked(lnb_orders_for_export: OrderBatch) -> dg.AssetCheckResult:
    blocked = lnb_orders_for_export.state_validation.filter(pl.col("status") == ORDER_BLOCKED)
    return _orders_result(lnb_orders_for_export, blocked, "blocked now, kept in their LNB status until fixed",
                          f"None of the {lnb_orders_for_export.state_validation.height} orders in the export status "
                          "is blocked.")
