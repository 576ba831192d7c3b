"""Going live: the readiness report of the shop and the LNB account. It reads; it never writes."""

from typing import Any, cast

import dagster as dg
import polars as pl

from lnb_pipeline.defs.inventory.settings import InventorySettings
from lnb_pipeline.defs.lenewblack.resources import LeNewBlackResource
from lnb_pipeline.defs.orders.settings import OrderFlowSettings
from lnb_pipeline.defs.readiness.survey import Readiness, SurveySettings, survey
from lnb_pipeline.defs.shopify.resources import ShopifyResource
from lnb_pipeline.rules.readiness import (
    GO,
    NO_GO,
    POINTS,
    RETAILER_MATCHED,
    STATUSES,
    WARN,
    verdict,
)
from lnb_pipeline.rules.stock import markdown_table
from lnb_pipeline.settings import SETTINGS
from lnb_pipeline.stock_source import ReadMode

GROUP = "readiness"
ASSET = "go_live_readiness"
SAMPLE_ROWS = 20
REPORT_TABLE = dg.TableSchema(columns=[
    dg.TableColumn("point", "string", "What is checked"),
    dg.TableColumn("status", "string", "go: nothing to do; warn: some records are left out until fixed; no-go: "
                                       "going live now would fail",
                   constraints=dg.TableColumnConstraints(nullable=False, other=[f"one of {', '.join(STATUSES)}"])),
    dg.TableColumn("found", "string", "What Shopify and LNB hold"),
    dg.TableColumn("fix", "string", "The setting or Shopify admin action that fixes it"),
])


def _settings(inventory_settings: InventorySettings, order_flow_settings: OrderFlowSettings,
              lenewblack: LeNewBlackResource) -> SurveySettings:
    stock = inventory_settings.stock_settings()  # refuses a read mode not in READ_MODES
    default_version = SETTINGS["SHOPIFY_API_VERSION"].default
    assert isinstance(default_version, str)
    return SurveySettings(
        orders=order_flow_settings.order_settings(), stock=stock,
        read_mode=cast(ReadMode, inventory_settings.read_mode),
        bulk_threshold=inventory_settings.bulk_threshold, max_invalid_percent=inventory_settings.max_invalid_percent,
        lnb_timezone=lenewblack.timezone(), checked_api_version=default_version)


def _metadata(readiness: Readiness, report: pl.DataFrame) -> dict[str, Any]:
    counts = dict(report.group_by("status").len().iter_rows())
    to_fix = readiness.retailers.filter(pl.col("status") != RETAILER_MATCHED)
    return {
        "verdict": verdict(report),
        "readiness": dg.MetadataValue.table(
            records=[dg.TableRecord(row) for row in report.to_dicts()], schema=REPORT_TABLE),
        "points_go": int(counts.get(GO, 0)),
        "points_warn": int(counts.get(WARN, 0)),
        "points_no_go": int(counts.get(NO_GO, 0)),
        "retailers_to_fix": dg.MetadataValue.md(markdown_table(to_fix, SAMPLE_ROWS)),
        "orders_blocked_by_reason": dg.MetadataValue.md(markdown_table(readiness.blocked_reasons, SAMPLE_ROWS)),
        "orders_blocked": dg.MetadataValue.md(markdown_table(readiness.blocked_orders, SAMPLE_ROWS)),
        "stock_keys_in_lnb_only": dg.MetadataValue.md(markdown_table(
            readiness.lnb_only_keys.to_frame(), SAMPLE_ROWS)),
        "stock_keys_in_shopify_only": dg.MetadataValue.md(markdown_table(
            readiness.shopify_only_keys.to_frame(), SAMPLE_ROWS)),
        "seconds_by_part": dg.MetadataValue.json(readiness.seconds),
    }


@dg.asset(
    name=ASSET, group_name=GROUP, kinds={"shopify", "lenewblack", "polars"},
    check_specs=[dg.AssetCheckSpec(point.check, asset=ASSET, description=point.description) for point in POINTS],
)
def go_live_readiness(context: dg.AssetExecutionContext, shopify: ShopifyResource, lenewblack: LeNewBlackResource,
                      inventory_settings: InventorySettings,
                      order_flow_settings: OrderFlowSettings) -> dg.MaterializeResult:
    """Can this shop and this LNB account go live? One row per point: go, warn or no-go, what was found,
    and the setting or Shopify admin action that fixes it.

    Shopify: credentials, API version served, access scopes, store type, currency, B2B; the two custom
    ids (run the shopify_setup job to create them); the catalogue's codes, the share of variants the
    stock push would leave out, the locations summed. LNB: credentials, order statuses, the stock keys
    both sides know. Every LNB retailer checked against Shopify, and every order waiting for export
    checked by the order rules, as an export would now. It reads and never writes; each no-go point
    fails its check with ERROR severity, each warning with WARN.
    """
    settings = _settings(inventory_settings, order_flow_settings, lenewblack)
    readiness = survey(shopify.get_client(context.log), lenewblack.get_client(context.log), settings, context.log)
    report = readiness.report
    context.log.info("Readiness: %s", verdict(report))
    statuses = dict(zip(report["point"], report["status"], strict=True))
    rows = {row.point.check: row for row in readiness.rows}
    return dg.MaterializeResult(
        metadata=_metadata(readiness, report),
        check_results=[
            dg.AssetCheckResult(
                check_name=point.check, passed=statuses[point.label] == GO,
                severity=dg.AssetCheckSeverity.ERROR if statuses[point.label] == NO_GO else dg.AssetCheckSeverity.WARN,
                description=rows[point.check].found,
                metadata={"status": statuses[point.label], "fix": rows[point.check].fix or "nothing to do"},
            )
            for point in POINTS
        ],
    )
