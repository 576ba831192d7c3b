"""The stock rules as asset checks: each excluded variant is listed with its name and reason.

Per-row problems fail with ERROR severity but block nothing (the row is excluded, the rest is
pushed), so the asset shows red until they are fixed; too many of them means the picture itself is
wrong, so that check also blocks the push.
"""

from __future__ import annotations

import dagster as dg
import polars as pl

from lnb_pipeline.defs.inventory.assets import (
    EXCLUDED_COLUMNS,
    available_to_sell,
    list_entries,
    with_admin_links,
)
from lnb_pipeline.defs.inventory.settings import InventorySettings
from lnb_pipeline.defs.shopify.resources import ShopifyResource
from lnb_pipeline.rules.stock import (
    REASON_DUPLICATE_KEY,
    REASON_INVALID_CHECK_DIGIT,
    REASON_MISSING_BARCODE,
    REASON_MISSING_SKU,
    REASON_NOT_EAN13,
    REASON_NOT_NUMERIC,
)

MISSING_KEY_REASONS = (REASON_MISSING_BARCODE, REASON_MISSING_SKU)
INVALID_EAN13_REASONS = (REASON_INVALID_CHECK_DIGIT, REASON_NOT_EAN13, REASON_NOT_NUMERIC)
BAD_KEY_REASONS = (*MISSING_KEY_REASONS, *INVALID_EAN13_REASONS, REASON_DUPLICATE_KEY)


def _with_reason(stock: pl.DataFrame, prefixes: tuple[str, ...]) -> pl.DataFrame:
    reason = pl.col("excluded_reason")
    return stock.filter(pl.any_horizontal([reason.str.starts_with(prefix) for prefix in prefixes]))


def _rule_result(offending: pl.DataFrame, total: int, rule: str, shop_url: str) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=offending.is_empty(),
        severity=dg.AssetCheckSeverity.ERROR,
        description=f"{len(offending)} of {total} variants excluded: {rule}." if len(offending) else None,
        metadata=list_entries("variants_excluded", with_admin_links(offending, shop_url), EXCLUDED_COLUMNS,
                              "of available_to_sell (its task_log entry)"),
    )


@dg.asset_check(asset=available_to_sell, description="Every variant has its key (EAN13 barcode or SKU); the others are not exported.")
def keys_present(shopify: ShopifyResource, available_to_sell: pl.DataFrame) -> dg.AssetCheckResult:
    return _rule_result(_with_reason(available_to_sell, MISSING_KEY_REASONS), len(available_to_sell), "no key",
                        shopify.shop_url)


@dg.asset_check(asset=available_to_sell, description="Every barcode is a valid EAN13 (or UPC-A) with a correct check digit.")
def ean13_check_digits_valid(shopify: ShopifyResource, available_to_sell: pl.DataFrame) -> dg.AssetCheckResult:
    return _rule_result(_with_reason(available_to_sell, INVALID_EAN13_REASONS), len(available_to_sell),
                        "invalid EAN13", shopify.shop_url)


@dg.asset_check(asset=available_to_sell, description="No key is shared by two variants; all sharers are excluded.")
def keys_unique(shopify: ShopifyResource, available_to_sell: pl.DataFrame) -> dg.AssetCheckResult:
    return _rule_result(_with_reason(available_to_sell, (REASON_DUPLICATE_KEY,)), len(available_to_sell),
                        "key shared with another variant", shopify.shop_url)


@dg.asset_check(
    asset=available_to_sell, blocking=True,
    description="At most LNB_STOCK_MAX_INVALID_PERCENT of variants have a missing, invalid or duplicate key; beyond "
                "that the picture itself is wrong and the push is blocked. Untracked variants skipped by setting "
                "do not count.",
)
def excluded_share_within_limit(inventory_settings: InventorySettings,
                                available_to_sell: pl.DataFrame) -> dg.AssetCheckResult:
    bad = _with_reason(available_to_sell, BAD_KEY_REASONS)
    total = len(available_to_sell)
    percent = 100.0 * len(bad) / total if total else 0.0
    limit = inventory_settings.max_invalid_percent
    return dg.AssetCheckResult(
        passed=percent <= limit,
        severity=dg.AssetCheckSeverity.ERROR,
        description=None if percent <= limit else
        f"{percent:.1f}% of variants have a missing, invalid or duplicate key (limit {limit}%): push blocked.",
        metadata={"variants_with_bad_keys": len(bad), "variants_read": total, "bad_keys_percent": round(percent, 2),
                  "max_bad_keys_percent": limit},
    )
