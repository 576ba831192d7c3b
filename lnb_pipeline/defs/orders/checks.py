"""The order rules as asset checks: each blocked order is reported with its reasons.

They describe every order in the export status now, whatever the run selected. Blocked orders are
WARN: they keep their LNB status and go out by themselves once fixed.
"""

import dagster as dg
import polars as pl

from lnb_pipeline.defs.orders.assets import (
    SAMPLE_ROWS,
    OrderBatch,
    lnb_orders_for_export,
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
from lnb_pipeline.rules.stock import markdown_table


def _lines_with(batch: OrderBatch, reasons: tuple[str, ...]) -> pl.DataFrame:
    return batch.state_lines.filter(
        pl.any_horizontal([pl.col("reason").str.contains(r, literal=True) for r in reasons]))


def _lines_result(offending: pl.DataFrame, rule: str) -> dg.AssetCheckResult:
    orders = offending["reference"].n_unique()
    return dg.AssetCheckResult(
        passed=offending.is_empty(),
        severity=dg.AssetCheckSeverity.WARN,
        description=f"{orders} orders blocked: {len(offending)} lines {rule}." if len(offending) else None,
        metadata={"blocked_orders": orders, "blocked_lines": len(offending),
                  "sample": dg.MetadataValue.md(markdown_table(
                      offending.select("reference", "line", "ean13", "sku", "reason"), SAMPLE_ROWS))},
    )


def _orders_result(offending: pl.DataFrame, rule: str) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=offending.is_empty(),
        severity=dg.AssetCheckSeverity.WARN,
        description=f"{len(offending)} orders {rule}." if len(offending) else None,
        metadata={"blocked_orders": len(offending),
                  "sample": dg.MetadataValue.md(markdown_table(
                      offending.select("reference", "retailer_reference", pl.col("reasons").list.join("; ")),
                      SAMPLE_ROWS))},
    )


@dg.asset_check(asset=lnb_orders_for_export, description="Every order line has an EAN13 or a SKU.")
def order_lines_have_codes(lnb_orders_for_export: OrderBatch) -> dg.AssetCheckResult:
    return _lines_result(_lines_with(lnb_orders_for_export, (REASON_NO_CODE,)), "without EAN13 or SKU")


@dg.asset_check(asset=lnb_orders_for_export,
                description="Every order line matches exactly one Shopify variant by EAN13 or SKU.")
def order_lines_match_shopify_variants(lnb_orders_for_export: OrderBatch) -> dg.AssetCheckResult:
    return _lines_result(
        _lines_with(lnb_orders_for_export, (REASON_NO_VARIANT, REASON_SEVERAL_VARIANTS, REASON_INVALID_EAN13)),
        "matching no, or several, Shopify variants")


@dg.asset_check(asset=lnb_orders_for_export,
                description="Every order's retailer has a reference that matches a Shopify customer (or company).")
def retailer_references_valid(lnb_orders_for_export: OrderBatch) -> dg.AssetCheckResult:
    reasons = (REASON_RETAILER_REFERENCE_MISSING, REASON_NO_CUSTOMER, REASON_NO_COMPANY)
    offending = lnb_orders_for_export.state_validation.filter(
        pl.col("reasons").list.eval(pl.any_horizontal([pl.element().str.starts_with(r) for r in reasons])).list.any())
    return _orders_result(offending, "blocked by their retailer reference")


@dg.asset_check(asset=lnb_orders_for_export,
                description="No order in the export status is blocked now; each blocked one is listed with every reason.")
def no_order_blocked(lnb_orders_for_export: OrderBatch) -> dg.AssetCheckResult:
    blocked = lnb_orders_for_export.state_validation.filter(pl.col("status") == ORDER_BLOCKED)
    return _orders_result(blocked, "blocked: they keep their LNB status until fixed")
