"""Going live: LNB orders a person lists, created in Shopify as test orders (job `test_orders_export`).

The brand checks the mapping (customer, lines, prices, addresses, PO number) in its own Shopify admin
before real orders flow. A test order is built by the real export's own rules and input
(``check_orders``, ``order_inputs``), then ``as_test_order`` marks it: Shopify's ``test`` flag, the tag
``lnb-test-order``, its own key in place of the LNB reference, no stock taken. It goes through the
real ``OrderExporter``, without the LNB status change, so a run sent again finds its test order
instead of making a second one. The real export never looks for that key: a test order neither
counts as exported nor blocks, deduplicates or fails the uniqueness check of the real one.
"""

from typing import Any, cast

import dagster as dg
import polars as pl
from pydantic import Field

from lnb_pipeline.clients.lenewblack import LnbNotFound
from lnb_pipeline.clients.shopify_admin import admin_url
from lnb_pipeline.defs.inventory.settings import InventorySettings
from lnb_pipeline.defs.lenewblack.resources import LeNewBlackResource
from lnb_pipeline.defs.orders.assets import (
    BLOCKED_ORDERS,
    blocked_orders_frame,
    counted,
    customer_links,
    listed,
    orders_named,
)
from lnb_pipeline.defs.orders.settings import OrderFlowSettings
from lnb_pipeline.defs.pool_waits import in_process_executor_naming_pool_holders
from lnb_pipeline.defs.shopify.resources import ShopifyResource
from lnb_pipeline.defs.task_logs import write_task_log
from lnb_pipeline.order_export import (
    ALREADY_IN_SHOPIFY,
    CREATED,
    DUPLICATE_IN_SHOPIFY,
    CreatePace,
    OrderExporter,
    OrderLookup,
    PendingOrder,
    check_orders,
    marked_as_test,
)
from lnb_pipeline.rules.orders import (
    ORDER_BLOCKED,
    TEST_ORDER_TAG,
    as_test_order,
    options_for_test_order,
    order_inputs,
)
from lnb_pipeline.stock_source import ReadMode, read_locations, read_stock

GROUP = "test_orders"
"""Its own group: `integration_readiness` runs the whole `readiness` group, which must never create orders."""
ASSET = "shopify_test_orders"
EVERY_ORDER_SENT_CHECK = "every_listed_order_is_a_test_order"

TEST_ORDER_CREATED = "test order created"
TEST_ORDER_FOUND = "test order already in Shopify"
NOT_A_TEST_ORDER = "NOT a test order in Shopify"
BLOCKED = "blocked"
NOT_IN_LNB = "not in LNB"
IN_SHOPIFY_AS_TEST = (TEST_ORDER_CREATED, TEST_ORDER_FOUND)
OUTCOMES = {CREATED: TEST_ORDER_CREATED, ALREADY_IN_SHOPIFY: TEST_ORDER_FOUND,
            DUPLICATE_IN_SHOPIFY: "more than one Shopify test order"}
"""The exporter's outcomes in this job's words; the others (rejected by Shopify, failed) keep theirs."""
FOUND_DETAIL = "made by an earlier run from the same LNB order and settings; check that one"
NOT_A_TEST_DETAIL = ("Shopify holds it as a real order: cancel it in Shopify, or the real export will make a "
                     "second real order")
NO_REFERENCES = ("No LNB order listed. Give the references to send as test orders in the run config: ops: "
                 f"{ASSET}: config: references: [\"LNB-0001\", \"LNB-0002\"]. Nothing was sent to Shopify or LNB.")

TABLE_SCHEMA = {"reference": pl.String, "retailer": pl.String, "lnb_status": pl.String, "outcome": pl.String,
                "shopify_order": pl.String, "shopify_order_link": pl.String, "shopify_customer": pl.String,
                "detail": pl.String}


class ListedOrdersConfig(dg.Config):
    """Run config of `shopify_test_orders`: which LNB orders become Shopify test orders."""

    references: list[str] = Field(description="The LNB order references to send to Shopify as test orders, "
                                              "such as [\"LNB-0001\", \"LNB-0002\"]; at least one.")

    def listed(self) -> list[str]:
        """The references trimmed, blank ones dropped, each once in the order given."""
        return list(dict.fromkeys(reference.strip() for reference in self.references if reference.strip()))


@dg.asset(
    name=ASSET, group_name=GROUP, kinds={"lenewblack", "shopify"},
    check_specs=[dg.AssetCheckSpec(EVERY_ORDER_SENT_CHECK, asset=ASSET,
                                   description="Every listed LNB order is in Shopify as a test order (none blocked "
                                               "by the rules, unknown to LNB or refused by Shopify).")],
)
def shopify_test_orders(context: dg.AssetExecutionContext, config: ListedOrdersConfig,
                        lenewblack: LeNewBlackResource, shopify: ShopifyResource,
                        inventory_settings: InventorySettings,
                        order_flow_settings: OrderFlowSettings) -> dg.MaterializeResult:
    """The LNB orders listed in the run config, created in Shopify as test orders, so you check in your own
    Shopify admin what the real export will make of them: the customer (or company), the lines and their
    prices, the addresses, the PO number, the note and the tags.

    They pass the same rules and get the same mapping as in the real export. Shopify marks them as test
    orders; they also carry the tag lnb-test-order and take no stock. LNB is not changed, whatever the
    order's status, and a test order never counts as exported: the real export later creates the real
    order. An order the rules block is not sent; it is listed with every reason. Listed again unchanged,
    an order finds its earlier test order instead of making another; after a fix in LNB or in a setting it
    gets a new one. Each listed order is shown with its Shopify test order and a link to it.
    """
    references = config.listed()
    if not references:
        raise dg.Failure(description=NO_REFERENCES, allow_retries=False)
    settings = order_flow_settings.order_settings()
    lnb = lenewblack.get_client(context.log)
    client = shopify.get_client(context.log)
    orders: dict[str, dict[str, Any]] = {}
    not_in_lnb: list[str] = []
    for reference in references:
        try:
            order = lnb.get_order(reference)
        except LnbNotFound:
            not_in_lnb.append(reference)
        else:
            orders[order["reference"]] = order
    locations = read_locations(client)
    levels = read_stock(client, mode=cast(ReadMode, inventory_settings.read_mode),
                        bulk_threshold=inventory_settings.bulk_threshold, location_count=max(1, locations.height),
                        log=context.log).levels
    checked = check_orders(client, list(orders.values()), levels, settings, lenewblack.timezone())
    validation = checked.validation.with_columns(customer_links(checked.buyers, shopify.shop_url))
    lookup = OrderLookup.for_shop(client, settings.order_metafield, context.log)
    test_inputs = {reference: as_test_order(order_input, settings, custom_id=lookup.by_custom_id)
                   for reference, order_input in order_inputs(
                       orders, validation, checked.lines, checked.buyers, settings,
                       shop_currency=checked.shop["currencyCode"], custom_id=False).items()}
    references_by_key = {order_input["sourceIdentifier"]: reference for reference, order_input in test_inputs.items()}
    existing = lookup.find(client, references_by_key)
    development_store = checked.shop["plan"]["partnerDevelopment"]
    exporter = OrderExporter(client, None, settings, context.log, options_for_test_order(settings), lookup,
                             settle_seconds=order_flow_settings.lookup_wait_seconds,
                             pace=CreatePace(context.log) if development_store else None)
    outcomes = exporter.export_all([PendingOrder(key, existing[key], test_inputs[reference])
                                    for key, reference in references_by_key.items()])
    flags = marked_as_test(client, [o.shopify_order_id for o in outcomes if o.shopify_order_id is not None])

    sent = []
    for outcome in outcomes:
        outcome_name, detail = OUTCOMES.get(outcome.outcome, outcome.outcome), outcome.detail
        if outcome_name == TEST_ORDER_FOUND:
            detail = detail or FOUND_DETAIL
        if outcome_name in IN_SHOPIFY_AS_TEST and flags.get(outcome.shopify_order_id or "") is not True:
            outcome_name, detail = NOT_A_TEST_ORDER, NOT_A_TEST_DETAIL
        sent.append((references_by_key[outcome.reference], outcome_name, outcome.shopify_order_name,
                     admin_url(shopify.shop_url, outcome.shopify_order_id), detail))
    table = _listed_orders(orders, validation, sent, not_in_lnb)
    task_log = write_task_log(order_flow_settings.task_log_dir, context.run.run_id, ASSET,
                              _task_log(table, checked.lines))
    for reference, retailer, _, outcome_name, name, link, _, detail in table.rows():
        if outcome_name in IN_SHOPIFY_AS_TEST:
            context.log.info("LNB order %s (%s) → Shopify test order %s: %s", reference, retailer, name, link)
        else:
            context.log.warning("LNB order %s (%s): %s, %s", reference, retailer, outcome_name, detail)
    created = table.filter(pl.col("outcome").is_in(IN_SHOPIFY_AS_TEST))
    if created.height:
        context.log.info("Check the %s in the Shopify admin (Orders, tag %s): customer, lines, prices, addresses, "
                         "PO number. LNB was not changed.", counted(created.height, "test order"), TEST_ORDER_TAG)
    not_sent = table.filter(~pl.col("outcome").is_in(IN_SHOPIFY_AS_TEST))
    return dg.MaterializeResult(
        metadata={
            "orders_listed": table.height,
            "test_orders_created": _count(table, TEST_ORDER_CREATED),
            "test_orders_found_again": _count(table, TEST_ORDER_FOUND),
            "orders_blocked": _count(table, BLOCKED),
            "orders_not_in_lnb": _count(table, NOT_IN_LNB),
            "orders_not_sent": not_sent.height,
            **listed("test_orders", table, task_log),
            **listed(BLOCKED_ORDERS, blocked_orders_frame(validation), task_log),
            "exactly_once_by": lookup.description,
            "development_store": development_store,
            "task_log": dg.MetadataValue.path(str(task_log)),
        },
        check_results=[dg.AssetCheckResult(
            check_name=EVERY_ORDER_SENT_CHECK, passed=not_sent.is_empty(), severity=dg.AssetCheckSeverity.ERROR,
            description=f"{counted(not_sent.height, 'listed order')} not in Shopify as a test order: "
                        f"{orders_named(not_sent)}." if not_sent.height else None,
            metadata={"orders_not_sent": not_sent.height, **listed("orders_not_sent", not_sent, task_log)},
        )],
    )


def _count(table: pl.DataFrame, outcome: str) -> int:
    return table.filter(pl.col("outcome") == outcome).height


def _listed_orders(orders: dict[str, dict[str, Any]], validation: pl.DataFrame,
                   sent: list[tuple[str, str, str | None, str | None, str | None]],
                   not_in_lnb: list[str]) -> pl.DataFrame:
    """One row per listed order, by reference: its Shopify test order and link, or why it has none."""
    known = validation.select(
        "reference", pl.col("retailer_name").alias("retailer"),
        pl.col("reference").replace_strict({ref: order.get("status") for ref, order in orders.items()},
                                           default=None, return_dtype=pl.String).alias("lnb_status"),
        "shopify_customer",
        pl.when(pl.col("status") == ORDER_BLOCKED).then(pl.col("reasons").list.join("; ")).alias("reasons"))
    outcomes = pl.DataFrame(sent, schema={"reference": pl.String, "outcome": pl.String, "shopify_order": pl.String,
                                          "shopify_order_link": pl.String, "detail": pl.String}, orient="row")
    rows = known.join(outcomes, on="reference", how="left").select(
        "reference", "retailer", "lnb_status",
        pl.when(pl.col("reasons").is_not_null()).then(pl.lit(BLOCKED)).otherwise(pl.col("outcome")).alias("outcome"),
        "shopify_order", "shopify_order_link", "shopify_customer",
        pl.coalesce("reasons", "detail").alias("detail"))
    unknown = pl.DataFrame({"reference": not_in_lnb, "outcome": [NOT_IN_LNB] * len(not_in_lnb),
                            "detail": ["no such order in LNB: check the reference"] * len(not_in_lnb)})
    return pl.concat([rows.cast(TABLE_SCHEMA), unknown.cast({name: TABLE_SCHEMA[name] for name in unknown.columns})],
                     how="diagonal").select(list(TABLE_SCHEMA)).sort("reference")


def _task_log(table: pl.DataFrame, lines: pl.DataFrame) -> pl.DataFrame:
    """The listed orders' rows, and one row per line that blocks its order."""
    blocked_lines = lines.filter(pl.col("reason").is_not_null()).join(
        table.select("reference", "retailer", "lnb_status"), on="reference", how="left").select(
        "reference", "retailer", "lnb_status", pl.col("line").cast(pl.Int64), pl.lit("line blocked").alias("outcome"),
        pl.col("reason").alias("detail"))
    return pl.concat([table.with_columns(pl.lit(None, pl.Int64).alias("line")), blocked_lines], how="diagonal").select(
        "reference", "retailer", "lnb_status", "line", "outcome", "shopify_order", "shopify_order_link", "detail",
    ).sort("reference", "line", nulls_last=False)


test_orders_export = dg.define_asset_job(
    name="test_orders_export",
    selection=dg.AssetSelection.assets(shopify_test_orders),
    description="Going live: send the LNB orders you list to Shopify as test orders, to check the customer, "
                "lines, prices, addresses and PO number in the Shopify admin before real orders flow. In the "
                "launchpad: ops: shopify_test_orders: config: references: [\"LNB-0001\", \"LNB-0002\"]. LNB is not "
                "changed, and the real export later creates the real orders.",
    executor_def=in_process_executor_naming_pool_holders,
)
