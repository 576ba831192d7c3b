"""What the readiness report reads from Shopify and LNB, and the rows it makes of it. Reads only.

Each part is read on its own: a part that fails (a refused scope, an unreachable API) makes its
points ``not checked``, and the others are still reported. The catalogue is the stock flow's own
read (``read_stock``: a bulk operation for a large shop); retailer references are looked up 50 a
query, by custom id or by company external id, as the order flow matches them one by one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import polars as pl

from lnb_pipeline.clients.lenewblack import (
    LnbClient,
    LnbError,
    LnbValidationError,
    describe_item_errors,
)
from lnb_pipeline.clients.shopify import (
    ShopifyBulkError,
    ShopifyClient,
    ShopifyError,
    ShopifyGraphQLError,
)
from lnb_pipeline.clients.shopify_queries import (
    ACCESS_SCOPES_QUERY,
    COMPANIES_BY_EXTERNAL_IDS_QUERY,
    CUSTOMERS_BY_CUSTOM_ID_QUERY,
    METAFIELD_DEFINITIONS_QUERY,
    RETAILER_LOOKUP_BATCH,
    SHOP_QUERY,
)
from lnb_pipeline.order_export import search_value
from lnb_pipeline.rules import readiness as rules
from lnb_pipeline.rules.orders import (
    ORDER_BLOCKED,
    SCOPE_READ_ALL_ORDERS,
    Buyer,
    ExportMoment,
    OrderSettings,
    retailer_reference,
    validate_orders,
    variant_index,
)
from lnb_pipeline.rules.stock import (
    StockSettings,
    compute_available_to_sell,
    lnb_inventory_frame,
    select_locations,
)
from lnb_pipeline.stock_source import ReadMode, read_locations, read_stock

SHOPIFY_FIRST = "fix the Shopify connection first"
LNB_FIRST = "fix the LNB connection first"
OTHER_KEY = {"ean13": "sku", "sku": "ean13"}
T = TypeVar("T")


@dataclass(frozen=True)
class SurveySettings:
    """The settings the report judges the shop and LNB account by."""

    orders: OrderSettings
    stock: StockSettings
    read_mode: ReadMode
    bulk_threshold: int
    max_invalid_percent: int
    lnb_timezone: ZoneInfo
    checked_api_version: str
    """The Shopify API version the project's queries are validated against."""


@dataclass
class Readiness:
    """The report's rows and the records behind them, for the detail tables."""

    rows: list[rules.Row] = field(default_factory=list)
    retailers: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=rules.RETAILER_SCHEMA))
    blocked_orders: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(
        schema={"reference": pl.String(), "retailer_reference": pl.String(), "reasons": pl.String()}))
    blocked_reasons: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(
        schema={"reason": pl.String(), "orders": pl.UInt32()}))
    lnb_only_keys: pl.Series = field(default_factory=lambda: pl.Series("key", [], dtype=pl.String))
    shopify_only_keys: pl.Series = field(default_factory=lambda: pl.Series("key", [], dtype=pl.String))
    seconds: dict[str, float] = field(default_factory=dict)
    """How long each part took to read."""

    @property
    def report(self) -> pl.DataFrame:
        return rules.report_frame(self.rows)


@dataclass
class _Shopify:
    shop: rules.ShopFacts | None = None
    scopes: frozenset[str] | None = None
    customer_definition: rules.DefinitionFacts | None = None
    levels: pl.DataFrame | None = None
    stock: pl.DataFrame | None = None
    """``compute_available_to_sell`` with the chosen key: each variant's key and why it is excluded."""


@dataclass
class _Lnb:
    connected: bool = False
    waiting: list[dict[str, Any]] | None = None
    """Orders in the export status now; None when LNB refused the status."""
    inventory: list[dict[str, Any]] | None = None
    retailers: list[dict[str, Any]] | None = None


def survey(shopify: ShopifyClient, lnb: LnbClient, settings: SurveySettings, log: logging.Logger) -> Readiness:
    """Every point of the report, read from Shopify and LNB."""
    result = Readiness()
    shop = _timed(result, "shopify", lambda: _shopify_points(shopify, settings, result, log))
    account = _timed(result, "lnb", lambda: _lnb_points(lnb, settings, result, log))
    _timed(result, "stock keys", lambda: _key_overlap(shop, account, settings, result))
    buyers = _timed(result, "retailers", lambda: _retailer_points(shopify, shop, account, settings, result, log))
    _timed(result, "orders", lambda: _order_points(shop, account, buyers, settings, result))
    return result


def _timed(result: Readiness, part: str, read: Callable[[], T]) -> T:
    started = time.monotonic()
    try:
        return read()
    finally:
        result.seconds[part] = round(time.monotonic() - started, 2)


def _refusal(error: LnbValidationError) -> str:
    """LNB's 422, with the field errors that say which values it accepts."""
    return f"{error} ({describe_item_errors(error.errors)})" if error.errors else str(error)


def _fix_for(error: ShopifyError) -> str:
    """What to do about a part Shopify refused to read."""
    denied = (isinstance(error, ShopifyGraphQLError) and any(
        (entry.get("extensions") or {}).get("code") == "ACCESS_DENIED" for entry in error.errors)) or (
        isinstance(error, ShopifyBulkError) and error.operation.get("errorCode") == "ACCESS_DENIED")
    if denied:
        return f"add the scope it names to {rules.SCOPES_WHERE}"
    return "fix what the error says, then run the report again"


# --- Shopify -----------------------------------------------------------------------------------


def _shopify_points(client: ShopifyClient, settings: SurveySettings, result: Readiness,
                    log: logging.Logger) -> _Shopify:
    found = _Shopify()
    rows = result.rows
    try:
        answer = client.execute(SHOP_QUERY)["shop"]
    except ShopifyError as error:
        rows.append(rules.shopify_connection_row(None, str(error)))
        rows += [rules.not_checked(point, "Shopify did not answer", SHOPIFY_FIRST) for point in (
            rules.SHOPIFY_API_VERSION, rules.SHOPIFY_SCOPES, rules.SHOPIFY_ALL_ORDERS, rules.SHOPIFY_STORE,
            rules.SHOPIFY_CURRENCY, rules.SHOPIFY_B2B, rules.CUSTOMER_CUSTOM_ID, rules.ORDER_CUSTOM_ID,
            rules.PRODUCT_CODES, rules.STOCK_KEY, rules.STOCK_LOCATIONS)]
        return found
    plan = answer["plan"]
    shop = found.shop = rules.ShopFacts(answer["name"], answer["myshopifyDomain"], answer["currencyCode"],
                                        plan["publicDisplayName"], plan["partnerDevelopment"], plan["shopifyPlus"])
    log.info("Readiness: connected to Shopify shop %s (%s)", shop.name, shop.domain)
    rows += [rules.shopify_connection_row(shop, None),
             rules.api_version_row(client.api_version, client.served_api_version, settings.checked_api_version),
             rules.store_row(shop), rules.b2b_row(settings.orders.customer_match, shop)]
    handles: list[str] | None = None
    try:
        handles = [scope["handle"] for scope in
                   client.execute(ACCESS_SCOPES_QUERY)["currentAppInstallation"]["accessScopes"]]
    except ShopifyError as error:
        rows += [rules.not_checked(point, str(error), _fix_for(error)) for point in
                 (rules.SHOPIFY_SCOPES, rules.SHOPIFY_ALL_ORDERS)]
    else:
        found.scopes = frozenset(handles)
        rows += [rules.scopes_row(handles, settings.orders.customer_match), rules.read_all_orders_row(handles)]
    customer = _definition_point(client, rules.CUSTOMER_CUSTOM_ID, "CUSTOMER", settings.orders.metafield,
                                 "SHOPIFY_CUSTOMER_METAFIELD", handles, rows,
                                 needed=settings.orders.customer_match == "metafield")
    found.customer_definition = customer
    _definition_point(client, rules.ORDER_CUSTOM_ID, "ORDER", settings.orders.order_metafield,
                      "SHOPIFY_ORDER_METAFIELD", handles, rows)
    _catalogue_points(client, settings, found, rows, log)
    return found


def _definition_point(client: ShopifyClient, point: rules.Point, owner_type: rules.OwnerType, metafield: str,
                      setting: str, scopes: list[str] | None, rows: list[rules.Row],
                      needed: bool = True) -> rules.DefinitionFacts | None:
    if not needed:
        rows.append(rules.definition_row(point, rules.DefinitionFacts(owner_type, metafield, setting, ()), scopes,
                                         needed=False))
        return None
    namespace, key = metafield.split(".")
    try:
        nodes = client.execute(METAFIELD_DEFINITIONS_QUERY, {
            "ownerType": owner_type, "namespace": namespace, "key": key})["metafieldDefinitions"]["nodes"]
    except ShopifyError as error:
        rows.append(rules.not_checked(point, str(error), _fix_for(error)))
        return None
    types = tuple(node["type"]["name"] for node in nodes if (node["namespace"], node["key"]) == (namespace, key))
    definition = rules.DefinitionFacts(owner_type, metafield, setting, types)
    rows.append(rules.definition_row(point, definition, scopes))
    return definition


def _catalogue_points(client: ShopifyClient, settings: SurveySettings, found: _Shopify, rows: list[rules.Row],
                      log: logging.Logger) -> None:
    """Product codes, stock key coverage and locations, from the stock flow's own read."""
    try:
        locations = read_locations(client)
        read = read_stock(client, mode=settings.read_mode, bulk_threshold=settings.bulk_threshold,
                          location_count=max(1, locations.height), log=log)
    except ShopifyError as error:
        rows += [rules.not_checked(point, f"the stock read failed: {error}", _fix_for(error))
                 for point in (rules.PRODUCT_CODES, rules.STOCK_KEY, rules.STOCK_LOCATIONS)]
        return
    found.levels = read.levels
    try:
        selected: list[str] | None = select_locations(locations, settings.stock)
        problem = None
    except ValueError as error:
        selected, problem = None, str(error)
    location_ids = selected or []
    found.stock = compute_available_to_sell(read.levels, location_ids, settings.stock)
    other_key = OTHER_KEY[settings.stock.key]
    other = compute_available_to_sell(read.levels, location_ids, replace(settings.stock, key=other_key))
    rows += [
        rules.product_codes_row(rules.code_counts(read.levels)),
        rules.stock_key_row(rules.key_coverage(found.stock, settings.stock.key), rules.key_coverage(other, other_key),
                            settings.max_invalid_percent),
        rules.locations_row(locations, selected, problem),
    ]


# --- LNB ---------------------------------------------------------------------------------------


def _lnb_points(client: LnbClient, settings: SurveySettings, result: Readiness, log: logging.Logger) -> _Lnb:
    account = _Lnb()
    export_status, exported_status = settings.orders.export_status, settings.orders.exported_status
    refused: dict[str, str] = {}
    try:
        try:
            account.waiting = list(client.iter_orders(status=export_status))
        except LnbValidationError as error:
            refused[export_status] = _refusal(error)
        try:
            next(iter(client.iter_orders(status=exported_status)), None)
        except LnbValidationError as error:
            refused[exported_status] = _refusal(error)
        account.inventory = client.get_inventory()
        account.retailers = list(client.iter_retailers())
    except LnbError as error:
        result.rows.append(rules.lnb_connection_row(str(error)))
        result.rows += [rules.not_checked(point, "LNB did not answer", LNB_FIRST)
                        for point in (rules.LNB_STATUSES, rules.KEY_OVERLAP, rules.RETAILERS, rules.ORDERS)]
        return account
    account.connected = True
    log.info("Readiness: LNB answered: %d orders in status %s, %d stock rows, %d retailers",
             len(account.waiting or []), export_status, len(account.inventory), len(account.retailers))
    result.rows += [rules.lnb_connection_row(None), rules.lnb_statuses_row(export_status, exported_status, refused)]
    return account


def _key_overlap(shop: _Shopify, account: _Lnb, settings: SurveySettings, result: Readiness) -> None:
    if not account.connected:
        return
    if shop.stock is None:
        result.rows.append(rules.not_checked(rules.KEY_OVERLAP, "Shopify's catalogue could not be read",
                                             SHOPIFY_FIRST))
        return
    key = settings.stock.key
    shopify_keys = shop.stock.get_column("key")
    lnb_keys = lnb_inventory_frame(account.inventory or [], key).get_column("key")
    result.rows.append(rules.key_overlap_row(key, shopify_keys, lnb_keys))
    shopify_unique, lnb_unique = shopify_keys.drop_nulls().unique().sort(), lnb_keys.unique().sort()
    result.lnb_only_keys = lnb_unique.filter(~lnb_unique.is_in(shopify_unique.implode()))
    result.shopify_only_keys = shopify_unique.filter(~shopify_unique.is_in(lnb_unique.implode()))


# --- retailers and orders ----------------------------------------------------------------------


def _retailer_points(client: ShopifyClient, shop: _Shopify, account: _Lnb, settings: SurveySettings,
                     result: Readiness, log: logging.Logger) -> dict[str, Buyer | None] | None:
    """Every retailer's (and waiting order's) reference looked up in Shopify; None when it could not be."""
    if not account.connected:
        return None
    orders = settings.orders
    blocker = None
    if shop.shop is None:
        blocker = ("Shopify did not answer", SHOPIFY_FIRST)
    elif orders.customer_match == "metafield" and (
            shop.customer_definition is None or rules.ID_TYPE not in shop.customer_definition.types):
        blocker = (f"customers are found by the custom id {orders.metafield}, which has no definition of type id",
                   f"fix {rules.CUSTOMER_CUSTOM_ID.label} first")
    if blocker is not None:
        result.rows.append(rules.not_checked(rules.RETAILERS, *blocker))
        return None
    retailers = account.retailers or []
    references = [*(rules.retailer_reference_of(retailer) for retailer in retailers),
                  *(retailer_reference(order) for order in account.waiting or [])]
    try:
        buyers = find_buyers_batched(client, [ref for ref in references if ref is not None], orders)
    except ShopifyError as error:
        result.rows.append(rules.not_checked(rules.RETAILERS, str(error), _fix_for(error)))
        return None
    log.info("Readiness: %d retailer references looked up in Shopify, %d found", len(buyers),
             sum(buyer is not None for buyer in buyers.values()))
    result.retailers = rules.retailer_frame(retailers, {ref: buyer is not None for ref, buyer in buyers.items()})
    result.rows.append(rules.retailers_row(result.retailers, orders.customer_match, orders.metafield))
    return buyers


def find_buyers_batched(client: ShopifyClient, references: Iterable[str],
                        settings: OrderSettings) -> dict[str, Buyer | None]:
    """What the order flow's ``find_buyers`` finds for each reference, ``RETAILER_LOOKUP_BATCH`` references a
    query: the customer whose custom id it is, or (``company``) the company whose external id it is
    exactly, by its first location, when it has one."""
    wanted = list(dict.fromkeys(references))
    buyers: dict[str, Buyer | None] = {}
    for start in range(0, len(wanted), RETAILER_LOOKUP_BATCH):
        chunk = wanted[start:start + RETAILER_LOOKUP_BATCH]
        if settings.customer_match == "company":
            buyers.update(_companies(client, chunk))
        else:
            buyers.update(_customers(client, chunk, settings.metafield))
    return buyers


def _customers(client: ShopifyClient, chunk: list[str], metafield: str) -> dict[str, Buyer | None]:
    namespace, key = metafield.split(".")
    padded = chunk + [chunk[0]] * (RETAILER_LOOKUP_BATCH - len(chunk))
    data = client.execute(CUSTOMERS_BY_CUSTOM_ID_QUERY, {
        "namespace": namespace, "key": key, **{f"v{i}": reference for i, reference in enumerate(padded)}})
    return {reference: Buyer(reference, customer["id"], None, None) if (customer := data[f"c{i}"]) else None
            for i, reference in enumerate(chunk)}


def _companies(client: ShopifyClient, chunk: list[str]) -> dict[str, Buyer | None]:
    query = " OR ".join(f"external_id:{search_value(reference)}" for reference in chunk)
    found: dict[str, Buyer | None] = dict.fromkeys(chunk)
    for company in client.paginate(COMPANIES_BY_EXTERNAL_IDS_QUERY, {"query": query}, ("companies",),
                                   label="companies by external id", max_page_size=RETAILER_LOOKUP_BATCH):
        locations = company["locations"]["nodes"]
        if company.get("externalId") in found and locations:
            found[company["externalId"]] = Buyer(company["externalId"], None, locations[0]["id"], None)
    return found


def _order_points(shop: _Shopify, account: _Lnb, buyers: dict[str, Buyer | None] | None,
                  settings: SurveySettings, result: Readiness) -> None:
    """The orders waiting in LNB checked by the order rules, as the export would check them now."""
    rows = result.rows
    if shop.shop is not None:
        accepted = {code: code in dict(settings.orders.exchange_rates) for code in settings.orders.extra_currencies}
        waiting = (order.get("currency") for order in account.waiting or [])
        rows.append(rules.currency_row(shop.shop.currency, accepted, waiting))
    if not account.connected:
        return
    blocker = None
    if account.waiting is None:
        blocker = (f"LNB refused the status {settings.orders.export_status}", f"fix {rules.LNB_STATUSES.label} first")
    elif shop.shop is None or shop.levels is None:
        blocker = ("Shopify's catalogue could not be read", SHOPIFY_FIRST)
    elif buyers is None:
        blocker = ("the retailers could not be looked up in Shopify", f"fix {rules.RETAILERS.label} first")
    if blocker is not None:
        rows.append(rules.not_checked(rules.ORDERS, *blocker))
        return
    assert account.waiting is not None and shop.levels is not None and shop.shop is not None and buyers is not None
    moment = ExportMoment(settings.lnb_timezone, datetime.now(UTC), SCOPE_READ_ALL_ORDERS in (shop.scopes or ()))
    validation, _ = validate_orders(account.waiting, buyers, variant_index(shop.levels), shop.shop.currency,
                                    settings.orders, moment)
    rows.append(rules.orders_row(settings.orders.export_status, validation))
    result.blocked_reasons = rules.blocked_reason_counts(validation)
    result.blocked_orders = validation.filter(pl.col("status") == ORDER_BLOCKED).select(
        "reference", "retailer_reference", pl.col("reasons").list.join("; "))
