"""The stock rules as asset checks: each blocked variant is reported with its reason.

Per-row problems are WARN (the row is excluded, the rest is pushed); too many of them means the
picture itself is wrong, so that check is ERROR and blocks the push.
"""

from __future__ import annotations

import dagster as dg
import polars as pl

from lnb_pipeline.defs.inventory.assets import SAMPLE_ROWS, available_to_sell
from lnb_pipeline.defs.inventory.settings import InventorySettings
from lnb_pipeline.rules.stock import (
    REASON_DUPLICATE_KEY,
    REASON_INVALID_CHECK_DIGIT,
    REASON_MISSING_BARCODE,
    REASON_MISSING_SKU,
    REASON_NOT_EAN13,
    REASON_NOT_NUMERIC,
    markdown_table,
)

MISSING_KEY_REASONS = (REASON_MISSING_BARCODE, REASON_MISSING_SKU)
INVALID_EAN13_REASONS = (REASON_INVALID_CHECK_DIGIT, REASON_NOT_EAN13, REASON_NOT_NUMERIC)
INVALID_DATA_REASONS = (*MISSING_KEY_REASONS, *INVALID_EAN13_REASONS, REASON_DUPLICATE_KEY)


def _with_reason(stock: pl.DataFrame, prefixes: tuple[str, ...]) -> pl.DataFrame:
    reason = pl.col("excluded_reason")
    return stock.filter(pl.any_horizontal([reason.str.starts_with(prefix) for prefix in prefixes]))


def _rule_result(offending: pl.DataFrame, total: int, rule: str) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=offending.is_empty(),
        severity=dg.AssetCheckSeverity.WARN,
        description=f"{len(offending)} of {total} variants excluded: {rule}." if len(offending) else None,
        metadata={
            "excluded_variants": len(offending),
            "sample": dg.MetadataValue.md(markdown_table(
                offending.select("variant_id", "sku", "barcode", "excluded_reason"), SAMPLE_ROWS)),
        },
    )


@dg.asset_check(asset=available_to_sell, description="Every variant has its key (EAN13 barcode or SKU); the others are not exported.")
def keys_present(available_to_sell: pl.DataFrame) -> dg.AssetCheckResult:
    return _rule_result(_with_reason(available_to_sell, MISSING_KEY_REASONS), len(available_to_sell), "no key")


@dg.asset_check(asset=available_to_sell, description="Every barcode is a valid EAN13 (or UPC-A) with a correct check digit.")
def ean13_check_digits_valid(available_to_sell: pl.DataFrame) -> dg.AssetCheckResult:
    return _rule_result(_with_reason(available_to_sell, INVALID_EAN13_REASONS), len(available_to_sell),
                        "invalid EAN13")


@dg.asset_check(asset=available_to_sell, description="No key is shared by two variants; all sharers are excluded.")
def keys_unique(available_to_sell: pl.DataFrame) -> dg.AssetCheckResult:
    return _rule_result(_with_reason(available_to_sell, (REASON_DUPLICATE_KEY,)), len(available_to_sell),
                        "key shared with another variant")


@dg.asset_check(
    asset=available_to_sell, blocking=True,
    description="At most LNB_STOCK_MAX_INVALID_PERCENT of variants have bad keys; beyond that the push is blocked.",
)
def excluded_share_within_limit(inventory_settings: InventorySettings,
                                available_to_sell: pl.DataFrame) -> dg.AssetCheckResult:
    invalid = _with_reason(available_to_sell, INVALID_DATA_REASONS)
    total = len(available_to_sell)
    percent = 100.0 * len(invalid) / total if total else 0.0
    limit = inventory_settings.max_invalid_percent
    return dg.AssetCheckResult(
        passed=percent <= limit,
        severity=dg.AssetCheckSeverity.ERROR,
        description=None if percent <= limit else
        f"{percent:.1f}% of variants have a missing, invalid or duplicate key (limit {limit}%): push blocked.",
        metadata={"invalid_variants": len(invalid), "variants": total, "invalid_percent": round(percent, 2),
                  "limit_percent": limit},
    )
