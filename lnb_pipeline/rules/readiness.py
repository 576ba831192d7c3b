"""Readiness rules: what was found in Shopify and LNB → one go / warn / no-go row per point to check
before going live, each saying what was found and what fixes it.

The report's asset gathers the facts (reads only) and hands them here; every function turns the
facts of one point into its ``Row``. ``not_checked`` is the row of a point whose facts could not be
read (a refused scope, an unreachable API): it is no-go, since nothing says it is ready.

Statuses:

- ``no-go``: going live now would fail or do harm (orders refused or created twice, the stock push
  blocked, credentials refused). Its asset check fails with ERROR severity.
- ``warn``: it works, but some records will be left out until someone fixes them (a retailer without
  a reference, variants without a barcode), or it works more slowly (a development store).
- ``go``: nothing to do.

Choices worth knowing:

- Scopes: a ``write_`` scope grants its ``read_`` scope, as Shopify does. ``read_all_orders`` is
  reported apart, as a warning: without it the flow works but blocks orders confirmed more than 60
  days ago.
- The order custom id is no-go when missing: the export then falls back to searching orders, whose
  index lags, and a lost answer could create an order twice; ``shopify_setup`` creates it.
- Retailers: no-go only when none of those with a reference is found (the matching itself is wrong:
  metafield, match mode); otherwise each unmatched retailer is a warning, as its orders alone block.
- Inventory keys: no-go when LNB and Shopify share no key at all (the stock key is wrong); LNB keys
  without a Shopify variant are a warning (their stock is never updated).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import polars as pl

from lnb_pipeline.rules.orders import (
    LINE_REASON_PREFIX,
    ORDER_BLOCKED,
    REASON_CURRENCY_MISSING,
    REASON_CURRENCY_NOT_ACCEPTED,
    REASON_INVALID_CONFIRMATION_TIME,
    REASON_INVALID_COUNTRY,
    REASON_INVALID_EAN13,
    REASON_INVALID_QUANTITY,
    REASON_INVALID_UNIT_PRICE,
    REASON_NO_CODE,
    REASON_NO_COMPANY,
    REASON_NO_CUSTOMER,
    REASON_NO_EXCHANGE_RATE,
    REASON_NO_LINES,
    REASON_NO_VARIANT,
    REASON_REFERENCE_TOO_LONG,
    REASON_RETAILER_REFERENCE_MISSING,
    REASON_SEVERAL_VARIANTS,
    REASON_TOO_OLD_FOR_SCOPES,
    SCOPE_READ_ALL_ORDERS,
    CustomerMatch,
)
from lnb_pipeline.rules.stock import (
    REASON_DUPLICATE_KEY,
    REASON_INVALID_CHECK_DIGIT,
    REASON_MISSING_BARCODE,
    REASON_MISSING_SKU,
    REASON_NOT_EAN13,
    REASON_NOT_NUMERIC,
    REASON_UNTRACKED_SKIPPED,
    StockKey,
    normalise_barcodes,
)

Status = Literal["go", "warn", "no-go"]
OwnerType = Literal["CUSTOMER", "ORDER"]
GO: Status = "go"
WARN: Status = "warn"
NO_GO: Status = "no-go"
STATUSES: tuple[Status, ...] = (GO, WARN, NO_GO)

REPORT_SCHEMA: dict[str, pl.DataType] = {
    "point": pl.String(), "status": pl.String(), "found": pl.String(), "fix": pl.String()}
"""The report: one row per point, in ``POINTS`` order."""

SCOPES_NEEDED = ("read_products", "read_inventory", "read_locations", "write_orders")
"""What the flows send needs these whatever the settings (``write_orders`` grants ``read_orders``);
the customer look-up adds ``read_customers`` (or ``read_companies`` for companies)."""
SCOPE_SETUP = {"CUSTOMER": "write_customers", "ORDER": "write_orders"}
"""The scope ``shopify_setup`` needs to create a definition on each owner type."""
ID_TYPE = "id"
EXAMPLES_SHOWN = 3
"""Records named in a row's text; the report's detail tables list more."""

RETAILER_MATCHED = "matched"
RETAILER_NO_REFERENCE = "no reference"
RETAILER_UNMATCHED = "reference matching nobody"
RETAILER_SCHEMA: dict[str, pl.DataType] = {"name": pl.String(), "reference": pl.String(), "status": pl.String()}

SCOPES_WHERE = ("the app's access scopes (Dev Dashboard → the app → Versions → Access scopes, then install the new "
                "version on the shop; a custom app made in the Shopify admin: Configuration → Admin API access "
                "scopes)")
ORDER_REASON_KINDS = (
    REASON_RETAILER_REFERENCE_MISSING, REASON_NO_CUSTOMER, REASON_NO_COMPANY, REASON_CURRENCY_MISSING,
    REASON_CURRENCY_NOT_ACCEPTED, REASON_NO_EXCHANGE_RATE, REASON_NO_LINES, REASON_INVALID_CONFIRMATION_TIME,
    REASON_TOO_OLD_FOR_SCOPES, REASON_REFERENCE_TOO_LONG, REASON_INVALID_COUNTRY, REASON_NO_CODE,
    REASON_INVALID_EAN13, REASON_NO_VARIANT, REASON_SEVERAL_VARIANTS, REASON_INVALID_QUANTITY,
    REASON_INVALID_UNIT_PRICE,
)
"""The order rules' reasons by kind: a blocked order's reasons are counted by the kind they start with."""
BAD_KEY_REASONS = (REASON_MISSING_BARCODE, REASON_MISSING_SKU, REASON_INVALID_CHECK_DIGIT, REASON_NOT_EAN13,
                   REASON_NOT_NUMERIC, REASON_DUPLICATE_KEY)
"""The stock exclusions LNB_STOCK_MAX_INVALID_PERCENT counts (an untracked variant skipped is not bad data)."""


@dataclass(frozen=True)
class Point:
    """One thing checked before going live: its asset check's name, its label in the table, and what
    the check verifies."""

    check: str
    label: str
    description: str


SHOPIFY_CONNECTION = Point("shopify_connection", "Shopify connection",
                           "Shopify accepts the credentials (SHOPIFY_SHOP_URL, token or client id and secret).")
SHOPIFY_API_VERSION = Point("shopify_api_version", "Shopify API version",
                            "Shopify serves the API version asked for (SHOPIFY_API_VERSION), the one the project "
                            "is checked against.")
SHOPIFY_SCOPES = Point("shopify_access_scopes", "Shopify access scopes",
                       "The app holds every access scope the flows need.")
SHOPIFY_ALL_ORDERS = Point("shopify_read_all_orders", "Access to all orders (read_all_orders)",
                           "The app may see orders older than 60 days.")
SHOPIFY_STORE = Point("shopify_store_type", "Store type",
                      "A store on a paid plan (development and trial stores take 5 new orders a minute).")
SHOPIFY_CURRENCY = Point("shopify_currency", "Shop currency",
                         "The LNB orders waiting are in a currency the export accepts.")
SHOPIFY_B2B = Point("shopify_b2b", "B2B companies (Shopify Plus)",
                    "Shopify Plus when retailers are matched to B2B companies (SHOPIFY_CUSTOMER_MATCH=company).")
CUSTOMER_CUSTOM_ID = Point("customer_custom_id", "Customer custom id (retailer reference)",
                           "The customer metafield SHOPIFY_CUSTOMER_METAFIELD has a definition of type id.")
ORDER_CUSTOM_ID = Point("order_custom_id", "Order custom id (exactly-once)",
                        "The order metafield SHOPIFY_ORDER_METAFIELD has a definition of type id.")
PRODUCT_CODES = Point("product_codes", "Product codes",
                      "Every Shopify variant has a valid, unique EAN13 barcode or SKU.")
STOCK_KEY = Point("stock_key_coverage", "Stock key coverage",
                  "With LNB_STOCK_KEY, the variants without a usable key stay within LNB_STOCK_MAX_INVALID_PERCENT.")
STOCK_LOCATIONS = Point("stock_locations", "Stock locations",
                        "LNB_STOCK_LOCATIONS names existing locations (empty: every active one).")
LNB_CONNECTION = Point("lnb_connection", "LNB connection",
                       "Le New Black accepts the credentials (LNB_BASE_URL, LNB_CLIENT_ID, LNB_CLIENT_SECRET).")
LNB_STATUSES = Point("lnb_order_statuses", "LNB order statuses",
                     "LNB's API accepts LNB_ORDER_EXPORT_STATUS and LNB_ORDER_EXPORTED_STATUS.")
KEY_OVERLAP = Point("stock_keys_in_both", "Stock keys in LNB and Shopify",
                    "LNB's inventory keys have a Shopify variant, and the reverse.")
RETAILERS = Point("retailers_matched", "Retailers matched in Shopify",
                  "Every LNB retailer has a reference that finds its Shopify customer (or company).")
ORDERS = Point("orders_waiting", "Orders waiting for export",
               "No LNB order in the export status would be blocked today.")
POINTS = (SHOPIFY_CONNECTION, SHOPIFY_API_VERSION, SHOPIFY_SCOPES, SHOPIFY_ALL_ORDERS, SHOPIFY_STORE,
          SHOPIFY_CURRENCY, SHOPIFY_B2B, CUSTOMER_CUSTOM_ID, ORDER_CUSTOM_ID, PRODUCT_CODES, STOCK_KEY,
          STOCK_LOCATIONS, LNB_CONNECTION, LNB_STATUSES, KEY_OVERLAP, RETAILERS, ORDERS)
"""Every point, in the report's order."""


@dataclass(frozen=True)
class Row:
    point: Point
    status: Status
    found: str
    fix: str = ""


@dataclass(frozen=True)
class ShopFacts:
    """What ``shop`` answered."""

    name: str
    domain: str
    currency: str
    plan: str
    development: bool
    plus: bool


@dataclass(frozen=True)
class DefinitionFacts:
    """The metafield definitions Shopify holds under one owner type and ``namespace.key``."""

    owner_type: OwnerType
    metafield: str
    setting: str
    """The setting naming ``metafield``."""
    types: tuple[str, ...]
    """The type of each definition found; empty when there is none."""


@dataclass(frozen=True)
class CodeCounts:
    """Every Shopify variant counted by its codes, as the stock and order flows read them."""

    variants: int
    valid_ean13: int
    from_upc: int
    """Valid EAN13s that are 12-digit UPC-A barcodes, zero-padded."""
    invalid_barcode: int
    """A barcode is there but is no valid EAN13 (or UPC-A)."""
    sku_only: int
    """No valid EAN13, but a SKU."""
    neither: int
    duplicate_ean13: int
    """Variants whose EAN13 another variant carries too."""
    duplicate_sku: int


@dataclass(frozen=True)
class KeyCoverage:
    """Variants excluded from the stock push for a bad key, with one stock key."""

    key: StockKey
    variants: int
    bad_key: int
    untracked_skipped: int

    @property
    def percent(self) -> float:
        return 100.0 * self.bad_key / self.variants if self.variants else 0.0


def _plural(count: int, word: str, plural: str | None = None) -> str:
    return f"{count} {word if count == 1 else plural or word + 's'}"


def _examples(values: Iterable[Any]) -> str:
    """The first few values, ``…`` when there are more."""
    listed = list(values)
    shown = ", ".join(str(value) for value in listed[:EXAMPLES_SHOWN])
    return shown + (", …" if len(listed) > EXAMPLES_SHOWN else "")


def granted_scopes(scopes: Iterable[str]) -> frozenset[str]:
    """The scopes an app holds, with the ``read_`` scope each ``write_`` scope grants."""
    held = set(scopes)
    return frozenset({*held, *(f"read_{scope.removeprefix('write_')}" for scope in held if scope.startswith("write_"))})


def not_checked(point: Point, because: str, fix: str) -> Row:
    """The row of a point whose facts could not be read: nothing says it is ready."""
    return Row(point, NO_GO, f"not checked: {because}", fix)


# --- Shopify connection ------------------------------------------------------------------------


def shopify_connection_row(shop: ShopFacts | None, problem: str | None) -> Row:
    if problem is not None or shop is None:
        return Row(SHOPIFY_CONNECTION, NO_GO, problem or "Shopify did not answer",
                   "SHOPIFY_SHOP_URL (https://<shop>.myshopify.com) and either SHOPIFY_ACCESS_TOKEN or "
                   "SHOPIFY_CLIENT_ID and SHOPIFY_CLIENT_SECRET of an app installed on the shop")
    return Row(SHOPIFY_CONNECTION, GO, f"connected to {shop.name} ({shop.domain})")


def api_version_row(asked: str, served: str | None, checked_version: str) -> Row:
    """``served`` is Shopify's ``X-Shopify-API-Version``: it falls forward, silently, from a version it
    no longer supports. ``checked_version`` is the version the project's documents are validated against."""
    fix = (f"SHOPIFY_API_VERSION: a version Shopify still supports; the project's queries are checked against "
           f"{checked_version}")
    if served is None:
        return Row(SHOPIFY_API_VERSION, WARN, f"asked for {asked}; Shopify did not say which version it served "
                                              "(no X-Shopify-API-Version header)", fix)
    if served != asked:
        return Row(SHOPIFY_API_VERSION, WARN, f"asked for {asked}, Shopify served {served}: it no longer "
                                              f"supports {asked} and falls forward without an error", fix)
    if asked != checked_version:
        return Row(SHOPIFY_API_VERSION, WARN, f"{asked} asked and served, but the project's queries are checked "
                                              f"against {checked_version}", fix)
    return Row(SHOPIFY_API_VERSION, GO, f"{asked} asked and served")


def scopes_row(scopes: Iterable[str], customer_match: CustomerMatch) -> Row:
    granted = granted_scopes(scopes)
    missing = [scope for scope in SCOPES_NEEDED if scope not in granted]
    if customer_match == "company":
        if granted.isdisjoint({"read_customers", "read_companies"}):
            missing.append("read_customers (or read_companies)")
    elif "read_customers" not in granted:
        missing.append("read_customers")
    listed = ", ".join(sorted(set(scopes))) or "none"
    if missing:
        return Row(SHOPIFY_SCOPES, NO_GO, f"missing {', '.join(missing)} (granted: {listed})",
                   f"add {', '.join(missing)} to {SCOPES_WHERE}")
    return Row(SHOPIFY_SCOPES, GO, f"granted: {listed}")


def read_all_orders_row(scopes: Iterable[str]) -> Row:
    if SCOPE_READ_ALL_ORDERS in set(scopes):
        return Row(SHOPIFY_ALL_ORDERS, GO, f"{SCOPE_READ_ALL_ORDERS} granted")
    return Row(SHOPIFY_ALL_ORDERS, WARN,
               f"{SCOPE_READ_ALL_ORDERS} not granted: Shopify hides orders processed more than 60 days ago from "
               "the app, so LNB orders confirmed that long ago are blocked (the export could not find them again)",
               f"ask Shopify for {SCOPE_READ_ALL_ORDERS}, then add it to {SCOPES_WHERE}")


def store_row(shop: ShopFacts) -> Row:
    if shop.development:
        return Row(SHOPIFY_STORE, WARN,
                   f"a development or trial store ({shop.plan}): Shopify creates at most 5 new orders a minute, "
                   "so the export paces itself",
                   "nothing for a trial run; go live on a shop with a paid plan")
    return Row(SHOPIFY_STORE, GO, f"{shop.plan} plan")


def currency_row(shop_currency: str, accepted: Mapping[str, bool], waiting_currencies: Iterable[str | None]) -> Row:
    """``accepted``: the currencies of SHOPIFY_ORDER_CURRENCIES, each with whether it has an exchange rate;
    ``waiting_currencies``: the currency of each LNB order in the export status."""
    counts: dict[str, int] = {}
    for currency in waiting_currencies:
        code = (currency or "").strip().upper() or "(none)"
        counts[code] = counts.get(code, 0) + 1
    others = ", ".join(f"{code}{'' if rate else ' (no rate)'}" for code, rate in accepted.items())
    found = f"{shop_currency}" + (f"; also accepted: {others} (SHOPIFY_ORDER_CURRENCIES)" if others else "")
    refused = {code: n for code, n in counts.items() if code != shop_currency and not accepted.get(code)}
    if refused:
        waiting = ", ".join(f"{_plural(n, 'order')} in {code}" for code, n in sorted(refused.items()))
        return Row(SHOPIFY_CURRENCY, WARN, f"{found}; LNB orders waiting: {waiting}, which the export blocks",
                   "SHOPIFY_ORDER_CURRENCIES=CODE:rate (shop-currency units for one unit) for each currency the "
                   "shop has enabled as a presentment currency, e.g. USD:0.92")
    return Row(SHOPIFY_CURRENCY, GO, found)


def b2b_row(customer_match: CustomerMatch, shop: ShopFacts) -> Row:
    if customer_match == "metafield":
        return Row(SHOPIFY_B2B, GO, "not used: SHOPIFY_CUSTOMER_MATCH=metafield finds customers by their retailer "
                                    "reference")
    if shop.plus:
        return Row(SHOPIFY_B2B, GO, f"Shopify Plus ({shop.plan}): B2B companies available")
    return Row(SHOPIFY_B2B, NO_GO, f"SHOPIFY_CUSTOMER_MATCH=company needs B2B companies, a Shopify Plus feature; "
                                   f"this shop is on {shop.plan}",
               "SHOPIFY_CUSTOMER_MATCH=metafield (customers found by a metafield), or move the shop to Shopify Plus")


# --- custom ids --------------------------------------------------------------------------------


def definition_row(point: Point, definition: DefinitionFacts, scopes: Iterable[str] | None,
                   needed: bool = True) -> Row:
    """One custom id: a definition of type ``id`` on its owner type, which ``shopify_setup`` creates
    when it is missing (never when the key is taken by another type). ``scopes``: those granted, None
    when unknown."""
    owners = "customers" if definition.owner_type == "CUSTOMER" else "orders"
    if not needed:
        return Row(point, GO, "not used: SHOPIFY_CUSTOMER_MATCH=company (retailers are found as B2B companies)")
    if ID_TYPE in definition.types:
        return Row(point, GO, f"{definition.metafield}: a definition of type id on {owners}")
    admin = (f"Shopify admin → Settings → Custom data → {owners.capitalize()} → Add definition, namespace and key "
             f"{definition.metafield}, type ID")
    if definition.types:
        return Row(point, NO_GO,
                   f"{definition.metafield} is defined on {owners} with type {', '.join(definition.types)}, not id: "
                   "its values are not unique custom ids, and shopify_setup does not change it",
                   f"point {definition.setting} at another namespace.key and run shopify_setup, or delete that "
                   f"definition and add one of type ID ({admin})")
    scope = SCOPE_SETUP[definition.owner_type]
    lacking = "" if scopes is None or scope in granted_scopes(scopes) else (
        f", which the app lacks: add it to {SCOPES_WHERE}")
    weaker = ("; without it the export finds orders by searching, whose index lags, so a lost answer could "
              "create an order twice") if definition.owner_type == "ORDER" else (
              "; without it no retailer reference finds its customer")
    return Row(point, NO_GO, f"no definition {definition.metafield} on {owners}{weaker}",
               f"run the shopify_setup job (it needs the {scope} scope{lacking}), or {admin}")


# --- catalogue ---------------------------------------------------------------------------------


def _variant_codes(levels: pl.DataFrame) -> pl.DataFrame:
    """One row per variant: its barcode and SKU as the stock read gave them."""
    return levels.group_by("variant_id").agg(pl.col("barcode").first(), pl.col("sku").first())


def code_counts(levels: pl.DataFrame) -> CodeCounts:
    """Every variant of the stock read's levels frame (``LEVEL_SCHEMA``) counted by its codes; barcodes
    are normalised as the stock flow does (trimmed, a valid UPC-A made its EAN13)."""
    variants = _variant_codes(levels)
    codes = variants.hstack(normalise_barcodes(variants.get_column("barcode"))).with_columns(
        pl.col("sku").str.strip_chars().replace("", None).alias("sku"),
        pl.col("barcode").str.strip_chars().replace("", None).alias("barcode"))
    ean13, sku = pl.col("ean13"), pl.col("sku")
    counted = codes.select(
        pl.len().alias("variants"),
        ean13.is_not_null().sum().alias("valid_ean13"),
        (ean13.is_not_null() & (pl.col("barcode").str.len_chars() == 12)).sum().alias("from_upc"),
        (pl.col("barcode").is_not_null() & ean13.is_null()).sum().alias("invalid_barcode"),
        (ean13.is_null() & sku.is_not_null()).sum().alias("sku_only"),
        (ean13.is_null() & sku.is_null()).sum().alias("neither"),
        (ean13.is_not_null() & ean13.is_duplicated()).sum().alias("duplicate_ean13"),
        (sku.is_not_null() & sku.is_duplicated()).sum().alias("duplicate_sku"),
    ).row(0, named=True)
    return CodeCounts(**{name: int(value) for name, value in counted.items()})


def product_codes_row(counts: CodeCounts) -> Row:
    if counts.variants == 0:
        return Row(PRODUCT_CODES, NO_GO, "Shopify lists no product variant", "add the products to Shopify")
    parts = [f"{_plural(counts.variants, 'variant')}: {counts.valid_ean13} with a valid EAN13"
             + (f" ({counts.from_upc} of them 12-digit UPC-A)" if counts.from_upc else ""),
             f"{counts.sku_only} with only a SKU", f"{counts.neither} with neither"]
    parts += [text for count, text in ((counts.invalid_barcode, f"{counts.invalid_barcode} with an invalid barcode"),
                                       (counts.duplicate_ean13, f"{counts.duplicate_ean13} sharing an EAN13"),
                                       (counts.duplicate_sku, f"{counts.duplicate_sku} sharing a SKU")) if count]
    found = ", ".join(parts)
    if counts.neither or counts.invalid_barcode or counts.duplicate_ean13 or counts.duplicate_sku:
        return Row(PRODUCT_CODES, WARN, found,
                   "in Shopify, give each variant a unique EAN13 barcode and SKU (Products → the product → the "
                   "variant → Barcode, SKU); the checks of the asset available_to_sell list each variant")
    return Row(PRODUCT_CODES, GO, found)


def key_coverage(stock: pl.DataFrame, key: StockKey) -> KeyCoverage:
    """``stock``: ``compute_available_to_sell``'s frame for ``key``."""
    reason = pl.col("excluded_reason")
    bad = pl.any_horizontal([reason.str.starts_with(prefix) for prefix in BAD_KEY_REASONS]).fill_null(False)
    counted = stock.select(bad.sum().alias("bad"), (reason == REASON_UNTRACKED_SKIPPED).sum().alias("untracked"))
    return KeyCoverage(key, stock.height, int(counted["bad"][0]), int(counted["untracked"][0]))


def stock_key_row(chosen: KeyCoverage, other: KeyCoverage, limit_percent: int) -> Row:
    found = (f"with LNB_STOCK_KEY={chosen.key}, {chosen.bad_key} of {_plural(chosen.variants, 'variant')} "
             f"({chosen.percent:.1f}%) have a missing, invalid or duplicate key (with {other.key}: "
             f"{other.percent:.1f}%)")
    if chosen.untracked_skipped:
        found += f"; {chosen.untracked_skipped} untracked skipped by LNB_STOCK_UNTRACKED"
    fix = (f"fix the codes (see {PRODUCT_CODES.label})" + (
        f", or LNB_STOCK_KEY={other.key} if LNB knows the products by it" if other.percent < chosen.percent else ""))
    if chosen.percent > limit_percent:
        return Row(STOCK_KEY, NO_GO, f"{found}: above LNB_STOCK_MAX_INVALID_PERCENT ({limit_percent}%), the stock "
                                     "push is blocked", fix)
    if chosen.bad_key:
        return Row(STOCK_KEY, WARN, f"{found}: they are not sent to LNB (limit {limit_percent}%)", fix)
    return Row(STOCK_KEY, GO, found)


def locations_row(locations: pl.DataFrame, selected: list[str] | None, problem: str | None) -> Row:
    """``locations``: ``id``, ``name``, ``is_active``; ``selected``: the gids ``select_locations`` chose,
    or None with its ``problem``."""
    fix = ("LNB_STOCK_LOCATIONS: comma-separated names or ids of Shopify locations (empty: every active one)")
    if problem is not None or selected is None:
        return Row(STOCK_LOCATIONS, NO_GO, problem or "no location selected", fix)

    def role(location_id: str, active: bool) -> str:
        if location_id in selected:
            return "summed"
        return "inactive, not summed" if not active else "not summed"

    listed = ", ".join(f"{name} ({role(location_id, active)})"
                       for location_id, name, active in locations.select("id", "name", "is_active").iter_rows())
    return Row(STOCK_LOCATIONS, GO, f"{_plural(locations.height, 'location')}: {listed}")


# --- LNB ---------------------------------------------------------------------------------------


def lnb_connection_row(problem: str | None) -> Row:
    if problem is not None:
        return Row(LNB_CONNECTION, NO_GO, problem,
                   "LNB_CLIENT_ID and LNB_CLIENT_SECRET as Le New Black issued them; LNB_BASE_URL unset for LNB's "
                   "production API")
    return Row(LNB_CONNECTION, GO, "credentials accepted")


def lnb_statuses_row(export_status: str, exported_status: str, refused: Mapping[str, str]) -> Row:
    """``refused``: each status LNB's API refused as an order filter, with LNB's answer."""
    if refused:
        answers = "; ".join(f"{status!r}: {answer}" for status, answer in refused.items())
        return Row(LNB_STATUSES, NO_GO, f"LNB refused {answers}",
                   "LNB_ORDER_EXPORT_STATUS and LNB_ORDER_EXPORTED_STATUS: status codes LNB's API accepts (its "
                   "answer lists them); LNB documents none, so ask LNB when the one you need is missing")
    return Row(LNB_STATUSES, GO, f"{export_status} (export) and {exported_status} (exported) accepted by LNB's API")


def key_overlap_row(key: StockKey, shopify_keys: pl.Series, lnb_keys: pl.Series) -> Row:
    """``shopify_keys``: every key a Shopify variant carries (``key``); ``lnb_keys``: LNB's inventory keys."""
    shopify = shopify_keys.drop_nulls().unique().sort()
    lnb = lnb_keys.drop_nulls().unique().sort()
    lnb_only = lnb.filter(~lnb.is_in(shopify.implode()))
    shopify_only = shopify.filter(~shopify.is_in(lnb.implode()))
    shared = lnb.len() - lnb_only.len()
    found = (f"{shared} {key} keys in both; {lnb_only.len()} in LNB only" + (
        f" ({_examples(lnb_only)})" if lnb_only.len() else "") + f"; {shopify_only.len()} in Shopify only" + (
        f" ({_examples(shopify_only)})" if shopify_only.len() else ""))
    if lnb.len() and shopify.len() and not shared:
        return Row(KEY_OVERLAP, NO_GO, f"LNB and Shopify share no {key}: {found}",
                   "LNB_STOCK_KEY (ean13 or sku): the code LNB's catalogue knows the products by")
    if lnb_only.len():
        return Row(KEY_OVERLAP, WARN, f"{found}: the stock of the LNB-only keys is never updated",
                   "give those Shopify variants the codes LNB has, or retire the products in LNB; keys in Shopify "
                   "only are products LNB does not sell")
    return Row(KEY_OVERLAP, GO, found)


# --- retailers and orders ----------------------------------------------------------------------


def retailer_reference_of(retailer: Mapping[str, Any]) -> str | None:
    """A retailer's reference, trimmed as the order rules trim an order's ``retailer_reference``."""
    reference = retailer.get("reference")
    text = str(reference).strip() if reference is not None else ""
    return text or None


def retailer_frame(retailers: Iterable[Mapping[str, Any]], found: Mapping[str, bool]) -> pl.DataFrame:
    """Each LNB retailer (``RETAILER_SCHEMA``): matched, no reference, or reference matching nobody.
    ``found``: trimmed reference → whether Shopify has its customer (or company)."""
    rows = []
    for retailer in retailers:
        reference = retailer_reference_of(retailer)
        status = (RETAILER_NO_REFERENCE if reference is None
                  else RETAILER_MATCHED if found.get(reference) else RETAILER_UNMATCHED)
        rows.append((retailer.get("name"), reference, status))
    return pl.DataFrame(rows, schema=RETAILER_SCHEMA, orient="row")


def retailers_row(retailers: pl.DataFrame, customer_match: CustomerMatch, metafield: str) -> Row:
    counts = dict(retailers.group_by("status").len().iter_rows())
    matched, missing, unmatched = (int(counts.get(status, 0)) for status in
                                   (RETAILER_MATCHED, RETAILER_NO_REFERENCE, RETAILER_UNMATCHED))
    if customer_match == "company":
        where = "the Shopify company's External ID (Customers → Companies → the company → Edit)"
        nobody = "no Shopify company has that External ID"
    else:
        where = f"the Shopify customer's metafield {metafield} (Customers → the customer → Metafields)"
        nobody = f"no Shopify customer carries it in {metafield}"
    fix = f"in LNB, give each retailer its reference; in Shopify, put the same value in {where}"
    if retailers.is_empty():
        return Row(RETAILERS, WARN, "LNB lists no retailer", "add the retailers in LNB")

    def names(status: str) -> str:
        rows = retailers.filter(pl.col("status") == status)
        return _examples(f"{name} {reference}" if reference else f"{name}"
                         for name, reference in rows.select("name", "reference").iter_rows())

    parts = [f"{matched} of {_plural(retailers.height, 'retailer')} matched"]
    if missing:
        parts.append(f"{missing} without a reference ({names(RETAILER_NO_REFERENCE)})")
    if unmatched:
        parts.append(f"{unmatched} whose reference matches nobody ({names(RETAILER_UNMATCHED)}): {nobody}")
    found = "; ".join(parts)
    if not matched and unmatched:
        return Row(RETAILERS, NO_GO, f"{found}: is the matching set up right?",
                   f"{fix}; check SHOPIFY_CUSTOMER_MATCH and SHOPIFY_CUSTOMER_METAFIELD")
    if missing or unmatched:
        return Row(RETAILERS, WARN, f"{found}: their orders will be blocked", fix)
    return Row(RETAILERS, GO, found)


def reason_kind(reason: str) -> str:
    """The kind of one blocked-order reason: the order rule's reason it starts with (a line's
    ``line 3: `` dropped), or the reason itself for one the rules do not name."""
    text = reason
    if text.startswith(LINE_REASON_PREFIX) and ": " in text:
        text = text.split(": ", 1)[1]
    return next((kind for kind in ORDER_REASON_KINDS if text.startswith(kind)), text)


def blocked_reason_counts(validation: pl.DataFrame) -> pl.DataFrame:
    """``reason, orders``: how many blocked orders each kind of reason blocks, most first (an order
    with two line reasons of one kind counts once)."""
    blocked = validation.filter(pl.col("status") == ORDER_BLOCKED)
    kinds = [(reference, reason_kind(reason)) for reference, reasons in blocked.select("reference", "reasons").iter_rows()
             for reason in reasons]
    frame = pl.DataFrame(kinds, schema={"reference": pl.String(), "reason": pl.String()}, orient="row")
    return (frame.unique().group_by("reason").agg(pl.len().alias("orders"))
            .sort(["orders", "reason"], descending=[True, False]))


def orders_row(export_status: str, validation: pl.DataFrame) -> Row:
    """``validation``: ``validate_orders``' order frame for every LNB order in the export status."""
    waiting = validation.height
    if not waiting:
        return Row(ORDERS, GO, f"no LNB order in status {export_status} now")
    reasons = blocked_reason_counts(validation)
    blocked = validation.filter(pl.col("status") == ORDER_BLOCKED).height
    if not blocked:
        return Row(ORDERS, GO, f"{_plural(waiting, 'order')} in LNB status {export_status}, all exportable")
    by_reason = ", ".join(f"{orders} {reason}" for reason, orders in reasons.iter_rows())
    return Row(ORDERS, WARN, f"{_plural(waiting, 'order')} in LNB status {export_status}; {blocked} would be "
                             f"blocked today ({by_reason})",
               "fix each reason (the report's blocked orders list them); a blocked order keeps its LNB status and "
               "goes out by itself once fixed")


# --- the report --------------------------------------------------------------------------------


def report_frame(rows: Iterable[Row]) -> pl.DataFrame:
    """The rows (``REPORT_SCHEMA``) in ``POINTS`` order; every point must have exactly one row."""
    by_point = {}
    for row in rows:
        if row.point in by_point:
            raise ValueError(f"two rows for {row.point.label}")
        by_point[row.point] = row
    missing = [point.label for point in POINTS if point not in by_point]
    if missing:
        raise ValueError(f"no row for {', '.join(missing)}")
    return pl.DataFrame([(row.point.label, row.status, row.found, row.fix) for row in
                         (by_point[point] for point in POINTS)], schema=REPORT_SCHEMA, orient="row")


def verdict(report: pl.DataFrame) -> str:
    """One line: go, go with warnings, or no-go naming the blocking points."""
    blocking = report.filter(pl.col("status") == NO_GO)["point"].to_list()
    warnings = report.filter(pl.col("status") == WARN).height
    if blocking:
        verb = "blocks" if len(blocking) == 1 else "block"
        return f"NO-GO: {_plural(len(blocking), 'point')} {verb} going live ({', '.join(blocking)})"
    if warnings:
        return f"GO, with {_plural(warnings, 'warning')}: some records are left out until fixed"
    return "GO: nothing to fix"
