"""Order rules: an LNB wholesale order → whether it may go to Shopify, and the ``orderCreate`` input.

The flow is ``selection_reason`` (which fetched orders are candidates) → ``variant_index`` (Shopify
codes → variants, from the stock flow's levels frame) → ``validate_orders`` (per order ``exportable``
or ``blocked`` with every reason, per line the matched variant) → ``order_create_input`` and
``order_create_options`` for each exportable order (``order_inputs`` for all of them). ``as_test_order``
turns such an input into a Shopify test order, for checking the mapping before going live.
``order_content_hash`` is tagged on the Shopify order so ``changed_after_export`` can later tell that LNB
edited an order Shopify already has. Every
reason, prefix and status is a module constant so asset checks, the task log and tests match on the
same strings.

Choices worth knowing:

- Line matching uses the EAN13 first, normalised like Shopify barcodes in the stock flow (trimmed,
  a valid 12-digit UPC-A becomes its 0-prefixed EAN13). An EAN13 that is present but invalid blocks
  the line on its own ("invalid EAN13"): it is a typo in LNB's catalogue, and matching such a line by
  its SKU would hide it. A valid EAN13 that no variant carries falls back to the SKU when the line
  has one, because many shops keep no barcodes in Shopify; a valid EAN13 carried by several variants
  does *not* fall back: the code is ambiguous, and guessing through the SKU could pick the wrong one.
- A code carried by several variants blocks the line (which variant would ship?), as in the stock
  flow's duplicate rule.
- Quantities must be whole numbers from 1 to 2 147 483 647 (Shopify's ``Int`` is 32-bit); a JSON
  number such as ``3.0`` counts as 3, a string does not.
- The LNB unit price is sent as the Shopify line price (not the variant's retail price); a line
  whose unit price is missing, not a number, negative or above ``MAX_UNIT_PRICE`` is blocked, since
  the order could not be priced. A price of 0 is accepted (free samples are common in wholesale).
- Anything Shopify would refuse blocks that order alone, with its reason, before anything is sent:
  an out-of-range number, an unreadable confirmation time, a country that is not an ISO code.
- The confirmation time becomes Shopify's ``processedAt``. LNB may send it without a zone; it is
  then read in LNB's timezone (LNB_API_TIMEZONE), and a time that lands in the future (a wrong
  zone, clock skew) becomes now, since Shopify refuses a future ``processedAt``.
- An order in another currency than the shop's is created in the shop currency with the order's
  currency as presentment currency: Shopify needs every price in both, so such a currency is
  accepted only with an exchange rate (SHOPIFY_ORDER_CURRENCIES, ``USD:0.92``).
- Retailer references, SKUs, EAN13s and currencies are trimmed; blank counts as missing.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Literal, get_args

import polars as pl

from lnb_pipeline.clients.lnb_time import LnbTimeError, parse_lnb_time
from lnb_pipeline.rules.stock import DUPLICATE_IDS_SHOWN, normalise_barcodes

CustomerMatch = Literal["metafield", "company"]

LNB_STATUSES = ("draft", "open_for_buyer", "open_for_brand", "confirmed", "invoicing", "closed", "canceled")
"""LNB's order status codes (API codes assumed from the UI's labels, see the API notes)."""
LNB_STATUS_CLOSED = "closed"
LNB_STATUS_CANCELED = "canceled"
FINANCIAL_STATUSES = (
    "PENDING", "AUTHORIZED", "PARTIALLY_PAID", "PAID", "PARTIALLY_REFUNDED", "REFUNDED", "VOIDED", "EXPIRED")
"""Shopify's ``OrderCreateFinancialStatus`` values."""
INVENTORY_BEHAVIOURS = ("BYPASS", "DECREMENT_IGNORING_POLICY", "DECREMENT_OBEYING_POLICY")
"""Shopify's ``OrderCreateInputsInventoryBehavior`` values."""

CODE_KIND_EAN13 = "ean13"
CODE_KIND_SKU = "sku"

ORDER_EXPORTABLE = "exportable"
ORDER_BLOCKED = "blocked"

MAX_QUANTITY = 2**31 - 1
"""The largest quantity Shopify's 32-bit ``Int`` carries."""
MAX_UNIT_PRICE = Decimal("999999999.99")
"""Shopify documents no bound for ``Decimal`` amounts; prices above this are refused (sandbox assumption)."""
ORDERS_VISIBLE_DAYS = 60
"""Without the ``read_all_orders`` scope, Shopify shows an app only orders processed in the last 60 days."""
SCOPE_READ_ALL_ORDERS = "read_all_orders"
MAX_CUSTOM_ID_BYTES = 2048
"""Shopify's size limit of an ``id`` metafield value, the order's custom id."""

TEST_ORDER_TAG = "lnb-test-order"
"""The tag of every test order, besides the real order's own tags: it finds them in Shopify's order list."""
TEST_KEY_DIGITS = 8
"""Hex digits of the mapping fingerprint in a test order's key (``LNB-0001 test 1a2b3c4d``)."""

HASH_TAG_PREFIX = "lnb-hash:"
"""The Shopify tag carrying ``order_content_hash`` at export: ``lnb-hash:0123456789abcdef``."""
HASH_LENGTH = 16

# -- selection reasons (``selection_reason``) ---------------------------------------------------
REASON_CANCELED = "canceled"
REASON_ALREADY_EXPORTED = "already exported"
"""Prefix: the full reason is ``already exported (status invoicing)``."""
REASON_NOT_SELECTED = "not selected for export"
"""Suffix: the full reason is ``status draft: not selected for export``."""

# -- order reasons (``validate_orders``) --------------------------------------------------------
REASON_RETAILER_REFERENCE_MISSING = "retailer reference missing"
REASON_NO_CUSTOMER = "no Shopify customer"
"""Prefix: ``no Shopify customer with lenewblack.retailer_reference = R9001`` (metafield match)."""
REASON_NO_COMPANY = "no Shopify company"
"""Prefix: ``no Shopify company with external ID R9001`` (company match)."""
REASON_CURRENCY_MISSING = "currency missing"
REASON_CURRENCY_NOT_ACCEPTED = "currency not accepted"
"""Prefix: ``currency not accepted: USD (accepted: EUR)``."""
REASON_NO_LINES = "order has no lines"
REASON_NO_EXCHANGE_RATE = "no exchange rate"
"""Prefix: ``no exchange rate for USD: …``."""
REASON_INVALID_CONFIRMATION_TIME = "invalid confirmation time"
"""Prefix: ``invalid confirmation time "yesterday": …``."""
REASON_TOO_OLD_FOR_SCOPES = "confirmed more than 60 days ago"
"""Prefix: Shopify would hide the created order from this app without ``read_all_orders``."""
REASON_REFERENCE_TOO_LONG = "order reference too long"
REASON_INVALID_COUNTRY = "invalid country"
"""Prefix: ``invalid country "France" in delivery_address: …``."""
LINE_REASON_PREFIX = "line "
"""An order lists each line reason as ``line 3: <reason>``."""

# -- line reasons -------------------------------------------------------------------------------
REASON_NO_CODE = "no EAN13 and no SKU"
REASON_INVALID_EAN13 = "invalid EAN13"
"""Prefix: ``invalid EAN13 3760000010010 (invalid EAN13 check digit)``; the bracket is the stock flow's
barcode reason."""
REASON_NO_VARIANT = "no Shopify variant"
"""Prefix: ``no Shopify variant for EAN13 X``, ``… for SKU Y`` or ``… for EAN13 X or SKU Y``."""
REASON_SEVERAL_VARIANTS = "more than one Shopify variant"
"""Prefix: ``more than one Shopify variant for EAN13 X (gid…, gid…)``."""
REASON_INVALID_QUANTITY = "invalid quantity"
"""Prefix: ``invalid quantity 0: must be a whole number >= 1``; the value is shown as LNB's JSON."""
REASON_INVALID_UNIT_PRICE = "invalid unit price"
"""Prefix: ``invalid unit price null: must be a number >= 0``."""
LINE_REASON_SEPARATOR = "; "
"""Joins several reasons of one line in the lines frame's ``reason``."""

INDEX_SCHEMA: dict[str, pl.DataType] = {"code_kind": pl.String(), "code": pl.String(), "variant_id": pl.String()}
"""``variant_index``'s output: one row per code a variant carries."""
ORDER_SCHEMA: dict[str, pl.DataType] = {
    "reference": pl.String(),
    "retailer_name": pl.String(),
    "retailer_reference": pl.String(),
    "currency": pl.String(),
    "lines": pl.Int64(),
    "processed_at": pl.String(),
    "status": pl.String(),
    "reasons": pl.List(pl.String()),
}
"""``validate_orders``' per-order frame, in input order; ``retailer_name`` is LNB's (what people know the
retailer by), ``processed_at`` is Shopify's ``processedAt`` (UTC)."""
LINE_SCHEMA: dict[str, pl.DataType] = {
    "reference": pl.String(),
    "line": pl.Int64(),
    "item": pl.String(),
    "ean13": pl.String(),
    "sku": pl.String(),
    "quantity": pl.Int64(),
    "unit_price": pl.String(),
    "variant_id": pl.String(),
    "reason": pl.String(),
}
"""``validate_orders``' per-line frame: the item as LNB names it (``item_label``), codes as LNB gave them
(trimmed), quantity null when not a whole number, unit price as a decimal string (null when invalid),
variant null unless exactly one matched."""

ADDRESS_FIELDS = {"address_1": "address1", "address_2": "address2", "city": "city", "company": "company",
                  "zipcode": "zip", "tel": "phone"}
"""LNB address field → ``MailingAddressInput`` field, for the fields copied as they are."""
HASHED_ORDER_FIELDS = ("retailer_reference", "currency", "purchase_order_reference", "comment", "buyer_email")
HASHED_ITEM_FIELDS = ("ean13", "sku", "quantity", "unit_price")
HASHED_ADDRESS_FIELDS = (*ADDRESS_FIELDS, "country", "contact_name")

_CURRENCY_CODE = re.compile(r"^[A-Z]{3}$")
_COUNTRY_CODE = re.compile(r"^[A-Z]{2}$")
_METAFIELD_NAMESPACE = re.compile(r"^[A-Za-z0-9_-]{3,255}$")
_METAFIELD_KEY = re.compile(r"^[A-Za-z0-9_-]{2,64}$")
_LINES_FRAME_SCHEMA: dict[str, pl.DataType] = {
    "_order": pl.Int64(), "reference": pl.String(), "line": pl.Int64(), "item": pl.String(),
    "_ean13_raw": pl.String(),
    "sku": pl.String(), "quantity": pl.Int64(), "_quantity_reason": pl.String(), "unit_price": pl.String(),
    "_price_reason": pl.String(),
}
"""The lines frame before matching: ``_order`` joins it back to its order."""


@dataclass(frozen=True)
class OrderSettings:
    """How LNB orders become Shopify orders; validated up front so a bad setting fails before any call.

    Defaults and why: ``PENDING`` because wholesale is paid on terms (LNB's ``terms_of_payment``),
    not at checkout; ``DECREMENT_IGNORING_POLICY`` so the ordered units leave Shopify's available
    stock (retail and the next LNB stock push must not sell them again) without a stock shortage
    refusing an order the brand already confirmed (pre-orders ship later).
    """

    export_status: str = "confirmed"
    """The LNB status that selects an order for export."""
    exported_status: str = "invoicing"
    """The LNB status an order is moved to once Shopify has it."""
    customer_match: CustomerMatch = "metafield"
    """``metafield``: a Shopify customer by a unique metafield; ``company``: a B2B company by external ID."""
    metafield: str = "lenewblack.retailer_reference"
    """``namespace.key`` of the customer metafield holding the LNB retailer reference."""
    order_metafield: str = "lenewblack.order_reference"
    """``namespace.key`` of the order metafield (type ``id``) carrying the LNB reference: exactly-once."""
    extra_currencies: tuple[str, ...] = ()
    """ISO codes accepted besides the shop currency (the shop's enabled presentment currencies the brand wants)."""
    exchange_rates: tuple[tuple[str, Decimal], ...] = ()
    """``(code, rate)``: shop-currency units for one unit of an accepted currency, to price it in the shop currency."""
    financial_status: str = "PENDING"
    inventory_behaviour: str = "DECREMENT_IGNORING_POLICY"
    tags: tuple[str, ...] = ("lenewblack", "wholesale")
    """Tags every created order gets, besides its ``lnb-hash:`` tag."""
    source_name: str = "lenewblack"

    def __post_init__(self) -> None:
        for name in ("export_status", "exported_status"):
            if getattr(self, name) not in LNB_STATUSES:
                raise ValueError(f"{name} must be one of {LNB_STATUSES}, not {getattr(self, name)!r}")
        if self.export_status == self.exported_status:
            raise ValueError(f"export_status and exported_status must differ, both are {self.export_status!r}: "
                             "an exported order would be selected again")
        if self.export_status in (LNB_STATUS_CANCELED, LNB_STATUS_CLOSED):
            raise ValueError(f"export_status {self.export_status!r} selects orders that are never sent")
        if self.exported_status == LNB_STATUS_CANCELED:
            raise ValueError("exported_status 'canceled' would cancel in LNB every order sent to Shopify")
        if self.customer_match not in get_args(CustomerMatch):
            raise ValueError(f"customer_match must be one of {get_args(CustomerMatch)}, not {self.customer_match!r}")
        _check_metafield_name("metafield", self.metafield)
        _check_metafield_name("order_metafield", self.order_metafield)
        if not isinstance(self.extra_currencies, tuple) or not all(
                isinstance(code, str) and _CURRENCY_CODE.match(code) for code in self.extra_currencies):
            raise ValueError(
                f"extra_currencies must be a tuple of upper-case ISO 4217 codes, not {self.extra_currencies!r}")
        for code, rate in self.exchange_rates:
            if code not in self.extra_currencies or not isinstance(rate, Decimal) or not rate.is_finite() or rate <= 0:
                raise ValueError(f"exchange_rates must pair an accepted currency with a positive rate, not {code}:{rate}")
        if self.financial_status not in FINANCIAL_STATUSES:
            raise ValueError(f"financial_status must be one of {FINANCIAL_STATUSES}, not {self.financial_status!r}")
        if self.inventory_behaviour not in INVENTORY_BEHAVIOURS:
            raise ValueError(
                f"inventory_behaviour must be one of {INVENTORY_BEHAVIOURS}, not {self.inventory_behaviour!r}")
        if not isinstance(self.tags, tuple) or not all(
                isinstance(tag, str) and tag.strip() and "," not in tag and not tag.startswith(HASH_TAG_PREFIX)
                for tag in self.tags):
            raise ValueError(f"tags must be a tuple of non-blank tags without commas or the {HASH_TAG_PREFIX!r} "
                             f"prefix, not {self.tags!r}")
        if not self.source_name.strip():
            raise ValueError("source_name must not be blank: it is how Shopify orders from LNB are recognised")


def _check_metafield_name(name: str, value: str) -> None:
    """Shopify's rules for a metafield's namespace (3-255) and key (2-64): letters, digits, ``-`` and ``_``."""
    parts = value.split(".")
    if len(parts) != 2 or not all(part.strip() for part in parts):
        raise ValueError(f"{name} must be 'namespace.key' (one dot, both parts non-empty), not {value!r}")
    namespace, key = parts
    if not _METAFIELD_NAMESPACE.match(namespace) or not _METAFIELD_KEY.match(key):
        raise ValueError(f"{name} {value!r}: Shopify takes a namespace of 3-255 and a key of 2-64 letters, "
                         "digits, '-' or '_'")


@dataclass(frozen=True)
class Buyer:
    """What the Shopify lookup found for a retailer reference: a customer, or a company location (B2B)."""

    retailer_reference: str
    customer_id: str | None
    company_location_id: str | None
    email: str | None
    company_id: str | None = None
    """The company of ``company_location_id``: its admin page is where a person checks the match."""

    @property
    def shopify_id(self) -> str | None:
        """The Shopify record the retailer was matched to: the company (B2B), else the customer."""
        return self.company_id or self.customer_id


def _text(value: Any) -> str | None:
    """A trimmed string, or None for null/blank: LNB sends both null and empty for "none"."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def retailer_reference(order: dict[str, Any]) -> str | None:
    """The order's retailer reference, trimmed; None when missing or blank. The key of the buyers lookup."""
    return _text(order.get("retailer_reference"))


def retailer_name(order: dict[str, Any]) -> str | None:
    """The retailer's name as LNB sends it on the order, trimmed; None when missing or blank."""
    return _text(order.get("retailer_name"))


def item_label(item: dict[str, Any]) -> str | None:
    """An order line's item as LNB names it, ``Linen Shirt (Blue, M)``: what a person recognises."""
    name = _text(item.get("name"))
    variant = ", ".join(part for part in (_text(item.get("color")), _text(item.get("size"))) if part)
    if name and variant:
        return f"{name} ({variant})"
    return name or variant or None


def _currency(order: dict[str, Any]) -> str | None:
    code = _text(order.get("currency"))
    return code.upper() if code else None


def selection_reason(order: dict[str, Any], settings: OrderSettings, listed: bool) -> str | None:
    """Why a fetched order must not be sent (None: go on). Cancelled and already exported orders are
    refused even when the user listed them; an unlisted order must be in the export status."""
    status = order.get("status")
    if status == LNB_STATUS_CANCELED:
        return REASON_CANCELED
    if status in (settings.exported_status, LNB_STATUS_CLOSED):
        return f"{REASON_ALREADY_EXPORTED} (status {status})"
    if not listed and status != settings.export_status:
        return f"status {status}: {REASON_NOT_SELECTED}"
    return None


def variant_index(levels: pl.DataFrame) -> pl.DataFrame:
    """``INDEX_SCHEMA`` rows from the stock flow's levels frame (``LEVEL_SCHEMA``, several rows a variant).

    Barcodes are normalised exactly as the stock flow does, so an order line matches the code LNB
    received from the stock push; an invalid barcode is not indexed. A variant's location rows
    collapse into one row per code, while two variants sharing a code give two rows, which is how a
    line learns that its code is ambiguous.
    """
    ean13 = normalise_barcodes(levels.get_column("barcode")).get_column("ean13")
    sku = pl.col("sku").str.strip_chars()
    return (
        pl.concat([
            levels.select(pl.lit(CODE_KIND_EAN13).alias("code_kind"), ean13.alias("code"), "variant_id"),
            levels.select(pl.lit(CODE_KIND_SKU).alias("code_kind"), sku.alias("code"), "variant_id"),
        ])
        .filter(pl.col("code").is_not_null() & (pl.col("code") != ""))
        .unique()
        .sort("code_kind", "code", "variant_id")
        .cast(INDEX_SCHEMA)
    )


def _json(value: Any) -> str:
    """A value as LNB sent it, for reasons: ``null``, ``"3"``, ``2.5``."""
    return json.dumps(value, ensure_ascii=False, default=str)


def _whole_number(value: Any) -> int | None:
    """An integer (an integral JSON float such as ``3.0`` counts), else None; the range is checked apart."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not value.is_integer():
        return None
    return int(value)


def _quantity_reason(raw: Any, quantity: int | None) -> str | None:
    if quantity is None or quantity < 1:
        return f"{REASON_INVALID_QUANTITY} {_json(raw)}: must be a whole number >= 1"
    if quantity > MAX_QUANTITY:
        return f"{REASON_INVALID_QUANTITY} {_json(raw)}: more than Shopify takes ({MAX_QUANTITY})"
    return None


def _unit_price(value: Any) -> tuple[str | None, str | None]:
    """``(price, None)``: a number from 0 to ``MAX_UNIT_PRICE`` as a plain decimal string (Shopify's
    ``Decimal``); ``(None, reason)`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        return None, f"{REASON_INVALID_UNIT_PRICE} {_json(value)}: must be a number >= 0"
    price = Decimal(str(value))
    if price > MAX_UNIT_PRICE:
        return None, f"{REASON_INVALID_UNIT_PRICE} {_json(value)}: more than Shopify takes ({MAX_UNIT_PRICE})"
    return format(price, "f"), None


@dataclass(frozen=True)
class ExportMoment:
    """What order times are read against: LNB's timezone for zone-less times, now, and whether the
    app may see orders processed more than 60 days ago (``read_all_orders``)."""

    lnb_timezone: tzinfo
    now: datetime
    can_read_all_orders: bool = True


def processed_at(order: dict[str, Any], moment: ExportMoment) -> tuple[str | None, str | None]:
    """``(processedAt, None)`` from the confirmation time (None when LNB has none), or ``(None, reason)``.

    A time in the future (a wrong LNB_API_TIMEZONE, clock skew) becomes now: the order was confirmed
    before it could be listed, and Shopify refuses a future ``processedAt``.
    """
    raw = order.get("confirmation_time")
    try:
        confirmed = parse_lnb_time(raw, moment.lnb_timezone)
    except LnbTimeError as error:
        return None, f"{REASON_INVALID_CONFIRMATION_TIME} {_json(raw)}: {error}"
    if confirmed is None:
        return None, None
    confirmed = min(confirmed, moment.now)
    if not moment.can_read_all_orders and confirmed < moment.now - timedelta(days=ORDERS_VISIBLE_DAYS):
        return None, (f"{REASON_TOO_OLD_FOR_SCOPES} ({confirmed:%Y-%m-%d}): without the {SCOPE_READ_ALL_ORDERS} "
                      "scope Shopify hides such an order from this app, which could then not find it again; "
                      f"grant {SCOPE_READ_ALL_ORDERS}")
    return confirmed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), None


def _country_reasons(order: dict[str, Any]) -> list[str]:
    reasons = []
    for field in ("billing_address", "delivery_address"):
        country = _text((order.get(field) or {}).get("country"))
        if country is not None and not _COUNTRY_CODE.match(country.upper()):
            reasons.append(f"{REASON_INVALID_COUNTRY} {_json(country)} in {field}: must be an ISO 3166 code such as FR")
    return reasons


def _order_reasons(order: dict[str, Any], buyers: dict[str, Buyer | None], accepted: tuple[str, ...],
                   settings: OrderSettings, time_reason: str | None) -> list[str]:
    """The reasons that concern the order as a whole, in the order the task log shows them."""
    reasons = []
    if len(str(order.get("reference") or "").encode()) > MAX_CUSTOM_ID_BYTES:
        reasons.append(f"{REASON_REFERENCE_TOO_LONG}: Shopify keeps custom ids of at most {MAX_CUSTOM_ID_BYTES} bytes")
    reference = retailer_reference(order)
    if reference is None:
        reasons.append(REASON_RETAILER_REFERENCE_MISSING)
    elif buyers.get(reference) is None:
        reasons.append(f"{REASON_NO_CUSTOMER} with {settings.metafield} = {reference}"
                       if settings.customer_match == "metafield"
                       else f"{REASON_NO_COMPANY} with external ID {reference}")
    currency = _currency(order)
    if currency is None:
        reasons.append(REASON_CURRENCY_MISSING)
    elif currency not in accepted:
        reasons.append(f"{REASON_CURRENCY_NOT_ACCEPTED}: {currency} (accepted: {', '.join(accepted)})")
    elif currency != accepted[0] and currency not in dict(settings.exchange_rates):
        reasons.append(f"{REASON_NO_EXCHANGE_RATE} for {currency}: Shopify needs each price in the shop currency "
                       f"{accepted[0]} too; give one in SHOPIFY_ORDER_CURRENCIES as {currency}:<rate>")
    if not order.get("items"):
        reasons.append(REASON_NO_LINES)
    if time_reason:
        reasons.append(time_reason)
    reasons.extend(_country_reasons(order))
    return reasons


def _lines_frame(orders: list[dict[str, Any]]) -> pl.DataFrame:
    """Every item of every order as a row; ``_order`` is the order's position (references could repeat).

    Quantity and price are checked here, per value, because LNB's JSON may carry any type there;
    the reasons quote the value as LNB sent it.
    """
    columns: dict[str, list[Any]] = {name: [] for name in _LINES_FRAME_SCHEMA}
    for position, order in enumerate(orders):
        for line, item in enumerate(order.get("items") or [], start=1):
            raw_quantity = item.get("quantity")
            quantity = _whole_number(raw_quantity)
            unit_price, price_reason = _unit_price(item.get("unit_price"))
            columns["_order"].append(position)
            columns["reference"].append(order.get("reference"))
            columns["line"].append(line)
            columns["item"].append(item_label(item))
            columns["_ean13_raw"].append(_text(item.get("ean13")))
            columns["sku"].append(_text(item.get("sku")))
            columns["quantity"].append(quantity if quantity is not None and abs(quantity) <= MAX_QUANTITY else None)
            columns["_quantity_reason"].append(_quantity_reason(raw_quantity, quantity))
            columns["unit_price"].append(unit_price)
            columns["_price_reason"].append(price_reason)
    return pl.DataFrame(columns, schema=_LINES_FRAME_SCHEMA)


def _matches(index: pl.DataFrame, kind: str, code: str, ids: str) -> pl.LazyFrame:
    """``code → ids`` (sorted variant ids) for one code kind of the index."""
    return (
        index.lazy()
        .filter(pl.col("code_kind") == kind)
        .group_by("code")
        .agg(pl.col("variant_id").sort().alias(ids))
        .rename({"code": code})
    )


def _ids_text(ids: str) -> pl.Expr:
    """The first variant ids of a match list, ``…`` when there are more."""
    return pl.concat_str(
        pl.col(ids).list.head(DUPLICATE_IDS_SHOWN).list.join(", "),
        pl.when(pl.col(ids).list.len() > DUPLICATE_IDS_SHOWN).then(pl.lit(", …")).otherwise(pl.lit("")))


def _match_lines(lines: pl.DataFrame, index: pl.DataFrame) -> pl.DataFrame:
    """Adds ``variant_id`` and ``_reasons`` (the line's reasons, possibly empty) to the lines frame."""
    barcodes = normalise_barcodes(lines.get_column("_ean13_raw"))
    ean = pl.col("_ean13")
    sku = pl.col("sku")
    ean_count = pl.col("_ean_ids").list.len().fill_null(0)
    sku_count = pl.col("_sku_ids").list.len().fill_null(0)
    has_ean = pl.col("_ean13_raw").is_not_null()
    invalid_ean = has_ean & ean.is_null()
    code = (
        pl.when(~has_ean & sku.is_null()).then(pl.lit(REASON_NO_CODE))
        .when(invalid_ean).then(pl.format(f"{REASON_INVALID_EAN13} {{}} ({{}})", "_ean13_raw", "_barcode_reason"))
        .when(ean_count > 1)
        .then(pl.format(f"{REASON_SEVERAL_VARIANTS} for EAN13 {{}} ({{}})", ean, _ids_text("_ean_ids")))
        .when(ean_count == 1).then(None)
        .when(sku_count > 1)
        .then(pl.format(f"{REASON_SEVERAL_VARIANTS} for SKU {{}} ({{}})", sku, _ids_text("_sku_ids")))
        .when(sku_count == 1).then(None)
        .when(has_ean & sku.is_not_null()).then(pl.format(f"{REASON_NO_VARIANT} for EAN13 {{}} or SKU {{}}", ean, sku))
        .when(has_ean).then(pl.format(f"{REASON_NO_VARIANT} for EAN13 {{}}", ean))
        .otherwise(pl.format(f"{REASON_NO_VARIANT} for SKU {{}}", sku))
    )
    return (
        lines.hstack(barcodes.rename({"ean13": "_ean13", "barcode_reason": "_barcode_reason"}))
        .lazy()
        .join(_matches(index, CODE_KIND_EAN13, "_ean13", "_ean_ids"), on="_ean13", how="left", maintain_order="left")
        .join(_matches(index, CODE_KIND_SKU, "sku", "_sku_ids"), on="sku", how="left", maintain_order="left")
        .with_columns(code.alias("_code_reason"))
        .with_columns(
            pl.when(pl.col("_code_reason").is_null())
            .then(pl.when(ean_count == 1).then(pl.col("_ean_ids").list.first())
                  .otherwise(pl.col("_sku_ids").list.first()))
            .alias("variant_id"),
            pl.concat_list("_code_reason", "_quantity_reason", "_price_reason").list.drop_nulls().alias("_reasons"),
        )
        .collect()
    )


def validate_orders(orders: list[dict[str, Any]], buyers: dict[str, Buyer | None], index: pl.DataFrame,
                    shop_currency: str, settings: OrderSettings,
                    moment: ExportMoment) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``(ORDER_SCHEMA frame, LINE_SCHEMA frame)``: every order exportable or blocked with all its reasons.

    ``buyers`` maps trimmed retailer references (``retailer_reference``) to what Shopify holds; a
    missing key or None means nothing was found. ``index`` is ``variant_index``'s frame.

    Currency: Shopify's ``orderCreate`` takes the shop currency or one of the shop's enabled
    presentment currencies. Only the shop currency and the brand's declared ``extra_currencies``
    are sent; any other currency blocks the order, since Shopify would refuse it or, worse, the
    totals could end up silently converted from what the retailer agreed to pay.
    """
    accepted = tuple(dict.fromkeys((shop_currency.strip().upper(), *settings.extra_currencies)))
    lines = _match_lines(_lines_frame(orders), index)
    line_reasons = (
        lines.lazy()
        .select("_order", "line", "_reasons")
        .explode("_reasons")
        .drop_nulls("_reasons")
        .group_by("_order", maintain_order=True)
        .agg(pl.format(f"{LINE_REASON_PREFIX}{{}}: {{}}", "line", "_reasons").alias("_line_reasons"))
    )
    times = [processed_at(order, moment) for order in orders]
    order_frame = pl.DataFrame({
        "_order": list(range(len(orders))),
        "reference": [order.get("reference") for order in orders],
        "retailer_name": [retailer_name(order) for order in orders],
        "retailer_reference": [retailer_reference(order) for order in orders],
        "currency": [_currency(order) for order in orders],
        "lines": [len(order.get("items") or []) for order in orders],
        "processed_at": [time for time, _ in times],
        "_order_reasons": [_order_reasons(order, buyers, accepted, settings, reason)
                           for order, (_, reason) in zip(orders, times, strict=True)],
    }, schema={"_order": pl.Int64(), "reference": pl.String(), "retailer_name": pl.String(),
               "retailer_reference": pl.String(),
               "currency": pl.String(), "lines": pl.Int64(), "processed_at": pl.String(),
               "_order_reasons": pl.List(pl.String())})
    reasons = pl.concat_list("_order_reasons", pl.col("_line_reasons").fill_null(pl.lit([], pl.List(pl.String()))))
    order_result = (
        order_frame.lazy()
        .join(line_reasons, on="_order", how="left", maintain_order="left")
        .with_columns(reasons.alias("reasons"))
        .with_columns(pl.when(pl.col("reasons").list.len() == 0).then(pl.lit(ORDER_EXPORTABLE))
                      .otherwise(pl.lit(ORDER_BLOCKED)).alias("status"))
        .select(list(ORDER_SCHEMA))
        .collect()
    )
    line_result = lines.with_columns(
        pl.col("_ean13_raw").alias("ean13"),
        pl.when(pl.col("_reasons").list.len() > 0)
        .then(pl.col("_reasons").list.join(LINE_REASON_SEPARATOR)).alias("reason"),
    ).select(list(LINE_SCHEMA))
    return order_result, line_result


def _without_nulls(fields: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in fields.items() if value is not None}


def _mailing_address(address: dict[str, Any] | None) -> dict[str, Any] | None:
    """An LNB address as ``MailingAddressInput``, blank fields left out; None when nothing is left.

    ``contact_name`` splits on its first space; a single word becomes the last name, the name field
    Shopify's addresses require.
    """
    if not address:
        return None
    fields = {shopify: _text(address.get(lnb)) for lnb, shopify in ADDRESS_FIELDS.items()}
    country = _text(address.get("country"))
    fields["countryCode"] = country.upper() if country else None
    name = _text(address.get("contact_name"))
    if name:
        first, _, last = name.partition(" ")
        fields["firstName"], fields["lastName"] = (first, last.strip()) if last.strip() else (None, first)
    return _without_nulls(fields) or None


def _price_set(unit_price: str, currency: str, shop_currency: str, settings: OrderSettings) -> dict[str, Any]:
    """``MoneyBagInput``: the shop-currency amount, and the order's own when it is another currency."""
    if currency == shop_currency:
        return {"shopMoney": {"amount": unit_price, "currencyCode": currency}}
    rate = dict(settings.exchange_rates)[currency]
    in_shop_currency = (Decimal(unit_price) * rate).quantize(Decimal("0.01"), ROUND_HALF_EVEN)
    return {"shopMoney": {"amount": format(in_shop_currency, "f"), "currencyCode": shop_currency},
            "presentmentMoney": {"amount": unit_price, "currencyCode": currency}}


def order_create_input(order: dict[str, Any], buyer: Buyer, line_variants: list[tuple[str, int, str]],
                       settings: OrderSettings, *, shop_currency: str, processed_at: str | None,
                       custom_id: bool) -> dict[str, Any]:
    """The ``OrderCreateOrderInput`` for an exportable order; null and blank fields are left out.

    ``line_variants`` are ``(variant_id, quantity, unit_price)`` and ``processed_at`` the order's
    ``processed_at``, from ``validate_orders``. A company location (B2B) takes the place of the
    customer: Shopify derives the buyer from the location's contact. The LNB reference goes into the
    ``order_metafield`` custom id when the shop has its ``id`` definition (``custom_id``), which is
    how a retry finds an order Shopify already created, and into ``sourceIdentifier``, which
    merchants see; the ``lnb-hash:`` tag records what was sent.
    """
    currency = _currency(order) or shop_currency
    namespace, key = settings.order_metafield.split(".")
    fields: dict[str, Any] = {
        "lineItems": [
            {"variantId": variant_id, "quantity": quantity, "requiresShipping": True,
             "priceSet": _price_set(unit_price, currency, shop_currency, settings)}
            for variant_id, quantity, unit_price in line_variants
        ],
        "email": _text(order.get("buyer_email")) or _text(buyer.email),
        "poNumber": _text(order.get("purchase_order_reference")),
        "sourceName": settings.source_name,
        "sourceIdentifier": order["reference"],
        "tags": [*settings.tags, f"{HASH_TAG_PREFIX}{order_content_hash(order)}"],
        "note": _text(order.get("comment")),
        "currency": shop_currency,
        "presentmentCurrency": currency if currency != shop_currency else None,
        "financialStatus": settings.financial_status,
        "shippingAddress": _mailing_address(order.get("delivery_address")),
        "billingAddress": _mailing_address(order.get("billing_address")),
        "processedAt": processed_at,
        "metafields": [{"namespace": namespace, "key": key, "type": "id", "value": order["reference"]}]
        if custom_id else None,
    }
    if buyer.company_location_id:
        fields["companyLocationId"] = buyer.company_location_id
    elif buyer.customer_id:
        fields["customer"] = {"toAssociate": {"id": buyer.customer_id}}
    else:
        raise ValueError(f"buyer for {buyer.retailer_reference!r} has neither a customer nor a company location")
    return _without_nulls(fields)


def order_inputs(orders: dict[str, dict[str, Any]], validation: pl.DataFrame, lines: pl.DataFrame,
                 buyers: dict[str, Buyer | None], settings: OrderSettings, *, shop_currency: str,
                 custom_id: bool) -> dict[str, dict[str, Any]]:
    """The ``order_create_input`` of every exportable order of ``validate_orders``' frames, by reference.

    ``orders`` are LNB's orders by reference; ``buyers`` as for ``validate_orders``.
    """
    lines_by_order = lines.sort("line").partition_by("reference", as_dict=True)
    inputs: dict[str, dict[str, Any]] = {}
    for reference, processed in validation.filter(pl.col("status") == ORDER_EXPORTABLE).select(
            "reference", "processed_at").rows():
        order = orders[reference]
        buyer = buyers.get(retailer_reference(order) or "")
        if buyer is None:
            raise ValueError(f"order {reference} is exportable without a buyer: validate_orders lets none through")
        line_variants = [(row["variant_id"], row["quantity"], row["unit_price"])
                         for row in lines_by_order[(reference,)].iter_rows(named=True)]
        inputs[reference] = order_create_input(order, buyer, line_variants, settings, shop_currency=shop_currency,
                                               processed_at=processed, custom_id=custom_id)
    return inputs


def key_for_test_order(order_input: dict[str, Any]) -> str:
    """``LNB-0001 test 1a2b3c4d``: what identifies the test order of a real order's input (``custom_id=False``).

    The hex digits fingerprint the input, confirmation time left out (one in the future becomes
    "now", which moves). Sent twice unchanged, an order keeps its key, so its earlier test order is
    found instead of a second one made; once LNB's order or a setting changes what Shopify would
    get, the key changes and a new test order shows the new mapping. The key is never the bare LNB
    reference, which is what the real export and its uniqueness check look for.
    """
    content = {name: value for name, value in order_input.items() if name not in ("processedAt", "metafields")}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return f"{order_input['sourceIdentifier']} test {hashlib.sha256(canonical.encode()).hexdigest()[:TEST_KEY_DIGITS]}"


def as_test_order(order_input: dict[str, Any], settings: OrderSettings, *, custom_id: bool) -> dict[str, Any]:
    """A real order's ``OrderCreateOrderInput`` (made with ``custom_id=False``) as a Shopify test order.

    Everything the brand checks stays as the real order will have it: customer, lines, prices,
    addresses, PO number, note, tags. What differs is what exactly-once looks at: ``test`` is true,
    the ``TEST_ORDER_TAG`` is added, and ``sourceIdentifier`` (with the custom id when the shop has
    its definition) is the ``key_for_test_order``, never the LNB reference. So the real export neither
    finds a test order nor counts it as a duplicate, and a run sent again finds its test order.
    """
    key = key_for_test_order(order_input)
    namespace, metafield_key = settings.order_metafield.split(".")
    return _without_nulls({
        **order_input,
        "test": True,
        "sourceIdentifier": key,
        "tags": [*order_input["tags"], TEST_ORDER_TAG],
        "metafields": [{"namespace": namespace, "key": metafield_key, "type": "id", "value": key}]
        if custom_id else None,
    })


def options_for_test_order(settings: OrderSettings) -> dict[str, Any]:
    """``order_create_options`` for a test order: its units stay in Shopify's available stock (``BYPASS``),
    so the next stock push still offers them to LNB's retailers."""
    return {**order_create_options(settings), "inventoryBehaviour": "BYPASS"}


def order_create_options(settings: OrderSettings) -> dict[str, Any]:
    """``OrderCreateOptionsInput``: no Shopify receipts, since the retailer already has LNB's confirmation."""
    return {"inventoryBehaviour": settings.inventory_behaviour, "sendReceipt": False, "sendFulfillmentReceipt": False}


def order_content_hash(order: dict[str, Any]) -> str:
    """16 hex digits of SHA-256 over what the Shopify order is built from, as LNB sent it.

    Status, update and confirmation times are left out: moving the order to the exported status
    must not look like an edit, while a changed item, address, comment or currency does.
    """
    def address(value: dict[str, Any] | None) -> dict[str, Any] | None:
        return {name: value.get(name) for name in HASHED_ADDRESS_FIELDS} if value else None

    content = {
        **{name: order.get(name) for name in HASHED_ORDER_FIELDS},
        "billing_address": address(order.get("billing_address")),
        "delivery_address": address(order.get("delivery_address")),
        "items": [{name: item.get(name) for name in HASHED_ITEM_FIELDS} for item in order.get("items") or []],
    }
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:HASH_LENGTH]


def hash_from_tags(tags: Iterable[str]) -> str | None:
    """The content hash a Shopify order was tagged with at export, or None (not exported by this flow)."""
    for tag in tags:
        text = tag.strip()
        if text.startswith(HASH_TAG_PREFIX):
            return text.removeprefix(HASH_TAG_PREFIX)
    return None


def changed_after_export(order: dict[str, Any], shopify_tags: list[str]) -> bool:
    """Whether LNB's order differs from what was sent to Shopify.

    An order without a hash tag (created by hand or by another tool) is not reported: there is no
    record of what it was built from, so no change can be claimed.
    """
    exported = hash_from_tags(shopify_tags)
    return exported is not None and exported != order_content_hash(order)
