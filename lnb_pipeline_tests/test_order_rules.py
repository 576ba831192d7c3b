"""The order rules on small hand-made orders and frames, without Dagster or HTTP: every rule, exact values."""

from __future__ import annotations

import copy
import hashlib
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from lnb_pipeline.rules.orders import (
    CODE_KIND_EAN13,
    CODE_KIND_SKU,
    HASH_TAG_PREFIX,
    INDEX_SCHEMA,
    LINE_SCHEMA,
    ORDER_BLOCKED,
    ORDER_EXPORTABLE,
    ORDER_SCHEMA,
    REASON_ALREADY_EXPORTED,
    REASON_CANCELED,
    REASON_CURRENCY_MISSING,
    REASON_CURRENCY_NOT_ACCEPTED,
    REASON_INVALID_EAN13,
    REASON_INVALID_QUANTITY,
    REASON_INVALID_UNIT_PRICE,
    REASON_NO_CODE,
    REASON_NO_COMPANY,
    REASON_NO_CUSTOMER,
    REASON_NO_LINES,
    REASON_NO_VARIANT,
    REASON_NOT_SELECTED,
    REASON_RETAILER_REFERENCE_MISSING,
    REASON_SEVERAL_VARIANTS,
    Buyer,
    ExportMoment,
    OrderSettings,
    changed_after_export,
    hash_from_tags,
    item_label,
    order_content_hash,
    order_create_input,
    order_create_options,
    processed_at,
    retailer_name,
    retailer_reference,
    selection_reason,
    validate_orders,
    variant_index,
)
from lnb_pipeline.rules.stock import LEVEL_SCHEMA

EAN_A = "4006381333931"
EAN_B = "5901234123457"
EAN_C = "9780471117094"
EAN_BAD_CHECK = "4006381333932"
UPC = "036000291452"
UPC_AS_EAN = "0036000291452"
WAREHOUSE = "gid://shopify/Location/1"
SHOP = "gid://shopify/Location/2"
CUSTOMER = "gid://shopify/Customer/7"
COMPANY_LOCATION = "gid://shopify/CompanyLocation/3"


def gid(number: int) -> str:
    return f"gid://shopify/ProductVariant/{number}"


def level_rows(number: int, barcode: str | None, sku: str | None, locations: tuple[str, ...] = (WAREHOUSE, SHOP)
               ) -> list[dict[str, Any]]:
    """A variant's rows in the stock flow's levels frame: one per location."""
    return [{"variant_id": gid(number), "sku": sku, "barcode": barcode, "product_status": "ACTIVE", "tracked": True,
             "location_id": location, "location_name": location, "available": 1, "on_hand": 1, "committed": 0}
            for location in locations]


def levels(*variants: list[dict[str, Any]]) -> pl.DataFrame:
    return pl.DataFrame([row for rows in variants for row in rows], schema=LEVEL_SCHEMA)


CATALOGUE = levels(
    level_rows(1, EAN_A, "SKU-1"),
    level_rows(2, UPC, "SKU-2"),
    level_rows(3, EAN_C, "TWIN"),
    level_rows(4, EAN_C, "TWIN"),
    level_rows(5, None, "SKU-5"),
    level_rows(6, EAN_BAD_CHECK, "SKU-6"),
)
INDEX = variant_index(CATALOGUE)
BUYERS: dict[str, Buyer | None] = {
    "R1": Buyer("R1", CUSTOMER, None, "buyer@shop.example"),
    "R2": None,
}


def item(ean13: str | None = EAN_A, sku: str | None = None, quantity: Any = 2, unit_price: Any = 10.5
         ) -> dict[str, Any]:
    return {"reference": "STYLE", "name": "Linen Shirt", "collection_name": "SS26", "color": "Blue", "size": "M",
            "quantity": quantity, "unit_price": unit_price, "recommended_retail_price": 25.0, "discount_rate": 0.0,
            "discount_amount": 0.0, "ean13": ean13, "sku": sku, "sku_extra_1": None}


def address(**changes: Any) -> dict[str, Any]:
    return {"reference": "ADR-1", "company": "Concept Store Noord", "country": "NL",
            "contact_name": "Sanne de Vries", "contact_email": "sanne@noord.example", "tel": "+31 20 123 4567",
            "address_1": "Haarlemmerstraat 45", "address_2": "2nd floor", "zipcode": "1013 EK",
            "city": "Amsterdam", "vat_number": "NL123456789B01", **changes}


def order(reference: str = "LNB-1", items: Any = None, **changes: Any) -> dict[str, Any]:
    return {
        "reference": reference, "create_time": "2026-01-02T09:00:00Z", "update_time": "2026-01-02T12:00:00Z",
        "confirmation_time": "2026-01-02T11:00:00Z", "cancellation_time": None, "status": "confirmed",
        "purchase_order_reference": "PO-77", "retailer_reference": "R1", "retailer_name": "Concept Store Noord",
        "buyer_name": "de Vries", "buyer_first_name": "Sanne", "buyer_email": "sanne@noord.example",
        "sales_person_email": "sales@brand.example", "currency": "EUR", "amount_total": 21.0,
        "amount_total_tax_inclusive": 25.2, "amount_shipping": 0.0, "amount_discount": 0.0, "discount_rate": 0.0,
        "comment": "Back entrance please.", "terms_of_payment": "30 days", "terms_of_delivery": "DAP",
        "delivery_start_on": "2026-02-15", "delivery_end_on": "2026-03-31", "order_type": "preorder",
        "billing_address": address(reference="ADR-1-B"), "delivery_address": address(),
        "items": [item()] if items is None else items, **changes,
    }


NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
MOMENT = ExportMoment(ZoneInfo("Europe/Paris"), NOW)
"""Orders are read on 1 March 2026 in LNB's Paris time, by an app that may see all orders."""


def validate(*orders: dict[str, Any], settings: OrderSettings = OrderSettings(), shop_currency: str = "EUR",
             buyers: dict[str, Buyer | None] = BUYERS,
             moment: ExportMoment = MOMENT) -> tuple[pl.DataFrame, pl.DataFrame]:
    return validate_orders(list(orders), buyers, INDEX, shop_currency, settings, moment)


def order_outcome(*orders: dict[str, Any], **options: Any) -> dict[str, tuple[str, list[str]]]:
    """``reference -> (status, reasons)``."""
    result, _ = validate(*orders, **options)
    return {row["reference"]: (row["status"], row["reasons"]) for row in result.iter_rows(named=True)}


def line_outcome(*items: dict[str, Any]) -> list[tuple[str | None, str | None]]:
    """``(variant_id, reason)`` of each line of one order."""
    _, lines = validate(order(items=list(items)))
    return list(zip(lines.get_column("variant_id").to_list(), lines.get_column("reason").to_list()))


# --- settings ------------------------------------------------------------------------------------

def test_settings_defaults() -> None:
    assert OrderSettings() == OrderSettings(
        export_status="confirmed", exported_status="invoicing", customer_match="metafield",
        metafield="lenewblack.retailer_reference", order_metafield="lenewblack.order_reference",
        extra_currencies=(), exchange_rates=(), financial_status="PENDING",
        inventory_behaviour="DECREMENT_IGNORING_POLICY", tags=("lenewblack", "wholesale"), source_name="lenewblack")


@pytest.mark.parametrize(("arguments", "message"), [
    ({"export_status": "shipped"}, "export_status must be one of ('draft', 'open_for_buyer', 'open_for_brand', "
                                   "'confirmed', 'invoicing', 'closed', 'canceled'), not 'shipped'"),
    ({"exported_status": "Invoicing"}, "exported_status must be one of ("),
    ({"exported_status": "confirmed"}, "export_status and exported_status must differ, both are 'confirmed'"),
    ({"export_status": "canceled"}, "export_status 'canceled' selects orders that are never sent"),
    ({"export_status": "closed"}, "export_status 'closed' selects orders that are never sent"),
    ({"exported_status": "canceled"}, "exported_status 'canceled' would cancel in LNB every order sent to Shopify"),
    ({"customer_match": "email"}, "customer_match must be one of ('metafield', 'company'), not 'email'"),
    ({"metafield": "retailer_reference"},
     "metafield must be 'namespace.key' (one dot, both parts non-empty), not 'retailer_reference'"),
    ({"metafield": "a.b.c"}, "metafield must be 'namespace.key' (one dot, both parts non-empty), not 'a.b.c'"),
    ({"metafield": ".key"}, "metafield must be 'namespace.key'"),
    ({"metafield": "lenewblack. "}, "metafield must be 'namespace.key'"),
    ({"extra_currencies": ["USD"]}, "extra_currencies must be a tuple of upper-case ISO 4217 codes, not ['USD']"),
    ({"extra_currencies": ("usd",)}, "extra_currencies must be a tuple of upper-case ISO 4217 codes, not ('usd',)"),
    ({"extra_currencies": ("USD",), "exchange_rates": (("USD", Decimal("-1")),)},
     "exchange_rates must pair an accepted currency with a positive rate, not USD:-1"),
    ({"exchange_rates": (("USD", Decimal("0.9")),)},
     "exchange_rates must pair an accepted currency with a positive rate, not USD:0.9"),
    ({"order_metafield": "ln.order_reference"},
     "order_metafield 'ln.order_reference': Shopify takes a namespace of 3-255 and a key of 2-64"),
    ({"metafield": "lenewblack.retailer reference"},
     "metafield 'lenewblack.retailer reference': Shopify takes a namespace of 3-255"),
    ({"financial_status": "paid"}, "financial_status must be one of ('PENDING', 'AUTHORIZED', 'PARTIALLY_PAID', "
                                   "'PAID', 'PARTIALLY_REFUNDED', 'REFUNDED', 'VOIDED', 'EXPIRED'), not 'paid'"),
    ({"inventory_behaviour": "DECREMENT"}, "inventory_behaviour must be one of ('BYPASS', "
                                           "'DECREMENT_IGNORING_POLICY', 'DECREMENT_OBEYING_POLICY'), not 'DECREMENT'"),
    ({"tags": ("a,b",)}, "tags must be a tuple of non-blank tags without commas or the 'lnb-hash:' prefix"),
    ({"tags": ("lnb-hash:x",)}, "tags must be a tuple of non-blank tags"),
    ({"tags": (" ",)}, "tags must be a tuple of non-blank tags"),
    ({"tags": ["wholesale"]}, "tags must be a tuple of non-blank tags"),
    ({"source_name": " "}, "source_name must not be blank"),
])
def test_settings_reject_invalid_values(arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as error:
        OrderSettings(**arguments)
    assert str(error.value).startswith(message)


def test_settings_accept_other_valid_choices() -> None:
    settings = OrderSettings(export_status="open_for_brand", exported_status="confirmed", customer_match="company",
                             metafield="custom.lnb_ref", extra_currencies=("USD", "GBP"), financial_status="PAID",
                             inventory_behaviour="BYPASS", tags=(), source_name="lnb")
    assert (settings.customer_match, settings.extra_currencies, settings.tags) == ("company", ("USD", "GBP"), ())


# --- selection -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("status", "listed", "reason"), [
    ("canceled", True, "canceled"),
    ("canceled", False, "canceled"),
    ("invoicing", True, "already exported (status invoicing)"),
    ("closed", True, "already exported (status closed)"),
    ("closed", False, "already exported (status closed)"),
    ("draft", False, "status draft: not selected for export"),
    ("open_for_brand", False, "status open_for_brand: not selected for export"),
    ("draft", True, None),
    ("open_for_buyer", True, None),
    ("confirmed", False, None),
    ("confirmed", True, None),
])
def test_selection_reason(status: str, listed: bool, reason: str | None) -> None:
    assert selection_reason(order(status=status), OrderSettings(), listed) == reason


def test_selection_follows_the_configured_statuses() -> None:
    settings = OrderSettings(export_status="open_for_brand", exported_status="confirmed")
    assert selection_reason(order(status="open_for_brand"), settings, listed=False) is None
    assert selection_reason(order(status="confirmed"), settings, listed=True) == "already exported (status confirmed)"
    assert selection_reason(order(status="invoicing"), settings, listed=False) == (
        "status invoicing: not selected for export")
    assert selection_reason(order(status="invoicing"), settings, listed=True) is None


def test_selection_reason_constants() -> None:
    assert (REASON_CANCELED, REASON_ALREADY_EXPORTED, REASON_NOT_SELECTED) == (
        "canceled", "already exported", "not selected for export")


# --- variant index -------------------------------------------------------------------------------

def test_variant_index_normalises_barcodes_and_trims_skus_over_distinct_variants() -> None:
    frame = levels(
        level_rows(1, f" {EAN_A}\t", " SKU-1 "),
        level_rows(2, UPC, "SKU-2", locations=(WAREHOUSE,)),
        level_rows(3, EAN_BAD_CHECK, "SKU-3"),
        level_rows(4, "ABC", "   "),
        level_rows(5, None, None),
        level_rows(6, "", "SKU-6"),
        level_rows(7, "12345678", "SKU-7"),
    )
    index = variant_index(frame)
    assert index.schema == pl.Schema(INDEX_SCHEMA)
    assert index.rows() == [
        (CODE_KIND_EAN13, UPC_AS_EAN, gid(2)),
        (CODE_KIND_EAN13, EAN_A, gid(1)),
        (CODE_KIND_SKU, "SKU-1", gid(1)),
        (CODE_KIND_SKU, "SKU-2", gid(2)),
        (CODE_KIND_SKU, "SKU-3", gid(3)),
        (CODE_KIND_SKU, "SKU-6", gid(6)),
        (CODE_KIND_SKU, "SKU-7", gid(7)),
    ]


def test_variant_index_keeps_one_row_per_variant_sharing_a_code() -> None:
    assert INDEX.filter(pl.col("code").is_in([EAN_C, "TWIN"])).rows() == [
        (CODE_KIND_EAN13, EAN_C, gid(3)),
        (CODE_KIND_EAN13, EAN_C, gid(4)),
        (CODE_KIND_SKU, "TWIN", gid(3)),
        (CODE_KIND_SKU, "TWIN", gid(4)),
    ]


def test_variant_index_of_no_levels_is_empty() -> None:
    index = variant_index(pl.DataFrame(schema=LEVEL_SCHEMA))
    assert (index.height, index.schema) == (0, pl.Schema(INDEX_SCHEMA))


# --- validation: a clean order -------------------------------------------------------------------

def test_clean_order_is_exportable_with_its_lines_matched() -> None:
    orders, lines = validate(order(items=[item(EAN_A, "SKU-1", 2, 10.5), item(None, "SKU-5", 3.0, 30)]))
    assert orders.schema == pl.Schema(ORDER_SCHEMA)
    assert lines.schema == pl.Schema(LINE_SCHEMA)
    assert orders.rows() == [
        ("LNB-1", "Concept Store Noord", "R1", "EUR", 2, "2026-01-02T11:00:00Z", ORDER_EXPORTABLE, [])]
    assert lines.rows() == [
        ("LNB-1", 1, "Linen Shirt (Blue, M)", EAN_A, "SKU-1", 2, "10.5", gid(1), None),
        ("LNB-1", 2, "Linen Shirt (Blue, M)", None, "SKU-5", 3, "30", gid(5), None),
    ]


def test_orders_and_lines_keep_the_input_order() -> None:
    orders, lines = validate(order("LNB-9", items=[item(EAN_A)]), order("LNB-3", items=[item(UPC), item(EAN_A)]))
    assert orders.get_column("reference").to_list() == ["LNB-9", "LNB-3"]
    assert lines.select("reference", "line", "variant_id").rows() == [
        ("LNB-9", 1, gid(1)), ("LNB-3", 1, gid(2)), ("LNB-3", 2, gid(1))]


# --- validation: matching ------------------------------------------------------------------------

def test_ean13_is_normalised_like_shopify_barcodes() -> None:
    assert line_outcome(item(UPC), item(UPC_AS_EAN), item(f"  {EAN_A} ")) == [
        (gid(2), None), (gid(2), None), (gid(1), None)]
    _, lines = validate(order(items=[item(f"  {EAN_A} ")]))
    assert lines.get_column("ean13").to_list() == [EAN_A]


def test_ean13_wins_over_the_sku() -> None:
    assert line_outcome(item(EAN_A, "SKU-5")) == [(gid(1), None)]


def test_unknown_ean13_falls_back_to_the_sku() -> None:
    assert line_outcome(item(EAN_B, "SKU-5"), item(EAN_B, " SKU-2 ")) == [(gid(5), None), (gid(2), None)]


def test_sku_only_line_matches_by_sku() -> None:
    assert line_outcome(item(None, "SKU-5"), item("", "SKU-1"), item("  ", "SKU-2")) == [
        (gid(5), None), (gid(1), None), (gid(2), None)]


def test_code_matching_no_variant() -> None:
    assert line_outcome(item(EAN_B), item(EAN_B, "NOPE"), item(None, "NOPE"), item("012345678905")) == [
        (None, f"no Shopify variant for EAN13 {EAN_B}"),
        (None, f"no Shopify variant for EAN13 {EAN_B} or SKU NOPE"),
        (None, "no Shopify variant for SKU NOPE"),
        (None, "no Shopify variant for EAN13 0012345678905"),
    ]
    assert REASON_NO_VARIANT == "no Shopify variant"


def test_barcode_invalid_in_shopify_is_not_matched() -> None:
    """Variant 6 carries a barcode with a wrong check digit, so it is only reachable by its SKU."""
    assert line_outcome(item(None, "SKU-6")) == [(gid(6), None)]


def test_invalid_ean13_blocks_the_line_even_with_a_matching_sku() -> None:
    assert line_outcome(item(EAN_BAD_CHECK, "SKU-1"), item("ABC123"), item("12345678", "SKU-1")) == [
        (None, f"invalid EAN13 {EAN_BAD_CHECK} (invalid EAN13 check digit)"),
        (None, "invalid EAN13 ABC123 (not numeric)"),
        (None, "invalid EAN13 12345678 (not an EAN13 (8 digits))"),
    ]
    assert REASON_INVALID_EAN13 == "invalid EAN13"


def test_code_matching_several_variants() -> None:
    assert line_outcome(item(EAN_C), item(None, "TWIN"), item(EAN_B, "TWIN")) == [
        (None, f"more than one Shopify variant for EAN13 {EAN_C} ({gid(3)}, {gid(4)})"),
        (None, f"more than one Shopify variant for SKU TWIN ({gid(3)}, {gid(4)})"),
        (None, f"more than one Shopify variant for SKU TWIN ({gid(3)}, {gid(4)})"),
    ]
    assert REASON_SEVERAL_VARIANTS == "more than one Shopify variant"


def test_ambiguous_ean13_does_not_fall_back_to_a_unique_sku() -> None:
    assert line_outcome(item(EAN_C, "SKU-1")) == [
        (None, f"more than one Shopify variant for EAN13 {EAN_C} ({gid(3)}, {gid(4)})")]


def test_a_code_shared_by_many_variants_names_the_first_five() -> None:
    index = variant_index(levels(*(level_rows(number, EAN_A, f"S{number}") for number in range(10, 17))))
    _, lines = validate_orders([order()], BUYERS, index, "EUR", OrderSettings(), MOMENT)
    assert lines.get_column("reason").to_list() == [
        f"more than one Shopify variant for EAN13 {EAN_A} "
        f"({gid(10)}, {gid(11)}, {gid(12)}, {gid(13)}, {gid(14)}, …)"]


def test_line_without_any_code() -> None:
    assert line_outcome(item(None, None), item("", ""), item(" ", "  ")) == [
        (None, "no EAN13 and no SKU"), (None, "no EAN13 and no SKU"), (None, "no EAN13 and no SKU")]
    assert REASON_NO_CODE == "no EAN13 and no SKU"


# --- validation: quantities and prices -----------------------------------------------------------

def test_quantities_must_be_whole_numbers_of_at_least_one() -> None:
    _, lines = validate(order(items=[item(quantity=quantity) for quantity in (0, -3, 2.5, "3", None, True, 3.0, 1)]))
    assert lines.select("quantity", "variant_id", "reason").rows() == [
        (0, gid(1), "invalid quantity 0: must be a whole number >= 1"),
        (-3, gid(1), "invalid quantity -3: must be a whole number >= 1"),
        (None, gid(1), "invalid quantity 2.5: must be a whole number >= 1"),
        (None, gid(1), 'invalid quantity "3": must be a whole number >= 1'),
        (None, gid(1), "invalid quantity null: must be a whole number >= 1"),
        (None, gid(1), "invalid quantity true: must be a whole number >= 1"),
        (3, gid(1), None),
        (1, gid(1), None),
    ]
    assert REASON_INVALID_QUANTITY == "invalid quantity"


def test_quantity_zero_and_negative_block_the_order() -> None:
    assert order_outcome(order(items=[item(quantity=0), item(quantity=4)]), order("LNB-2", items=[item(quantity=-1)])
                         ) == {
        "LNB-1": (ORDER_BLOCKED, ["line 1: invalid quantity 0: must be a whole number >= 1"]),
        "LNB-2": (ORDER_BLOCKED, ["line 1: invalid quantity -1: must be a whole number >= 1"]),
    }


def test_unit_prices_become_decimal_strings_or_block_the_line() -> None:
    prices = (26.82, 30, 0, 1e-7, None, "10", -1, float("nan"), float("inf"), False)
    _, lines = validate(order(items=[item(unit_price=price) for price in prices]))
    assert lines.select("unit_price", "reason").rows() == [
        ("26.82", None),
        ("30", None),
        ("0", None),
        ("0.0000001", None),
        (None, "invalid unit price null: must be a number >= 0"),
        (None, 'invalid unit price "10": must be a number >= 0'),
        (None, "invalid unit price -1: must be a number >= 0"),
        (None, "invalid unit price NaN: must be a number >= 0"),
        (None, "invalid unit price Infinity: must be a number >= 0"),
        (None, "invalid unit price false: must be a number >= 0"),
    ]
    assert REASON_INVALID_UNIT_PRICE == "invalid unit price"


def test_numbers_shopify_cannot_take_block_only_their_order() -> None:
    """LNB's JSON can carry 1e20 or 2^31: that order is blocked with its reason, never the batch crashed."""
    result = order_outcome(
        order("LNB-1", items=[item(quantity=1e20)]), order("LNB-2", items=[item(quantity=2**31)]),
        order("LNB-3", items=[item(quantity=2**31 - 1, unit_price=1e12)]), order("LNB-4", items=[item(quantity=-1e20)]),
        order("LNB-5"))
    assert result == {
        "LNB-1": (ORDER_BLOCKED, ["line 1: invalid quantity 1e+20: more than Shopify takes (2147483647)"]),
        "LNB-2": (ORDER_BLOCKED, ["line 1: invalid quantity 2147483648: more than Shopify takes (2147483647)"]),
        "LNB-3": (ORDER_BLOCKED, ["line 1: invalid unit price 1000000000000.0: more than Shopify takes "
                                  "(999999999.99)"]),
        "LNB-4": (ORDER_BLOCKED, ["line 1: invalid quantity -1e+20: must be a whole number >= 1"]),
        "LNB-5": (ORDER_EXPORTABLE, []),
    }


@pytest.mark.parametrize(("confirmation_time", "expected"), [
    ("2026-01-02T11:00:00Z", ("2026-01-02T11:00:00Z", None)),
    ("2026-01-02T11:00:00+01:00", ("2026-01-02T10:00:00Z", None)),
    ("2026-01-02 11:00:00", ("2026-01-02T10:00:00Z", None)),
    ("2026-07-02 11:00:00", ("2026-03-01T12:00:00Z", None)),
    ("2026-03-01 13:30:00", ("2026-03-01T12:00:00Z", None)),
    (None, (None, None)),
    ("yesterday", (None, 'invalid confirmation time "yesterday": ')),
    ("2026-13-45 10:00:00", (None, 'invalid confirmation time "2026-13-45 10:00:00": ')),
])
def test_confirmation_time_becomes_processed_at_in_utc_never_in_the_future(
        confirmation_time: str | None, expected: tuple[str | None, str | None]) -> None:
    """A zone-less LNB time is Paris time (LNB_API_TIMEZONE); a future one (13:30 Paris is 12:30 UTC,
    after now) becomes now, since Shopify refuses a future processedAt."""
    time_, reason = processed_at(order(confirmation_time=confirmation_time), MOMENT)
    assert time_ == expected[0]
    assert (reason or "").startswith(expected[1] or "") and (reason is None) == (expected[1] is None)


def test_an_unreadable_confirmation_time_or_country_blocks_only_its_order() -> None:
    result = order_outcome(order("LNB-1", confirmation_time="02/01/2026"),
                           order("LNB-2", delivery_address=address(country="France")), order("LNB-3"))
    assert result["LNB-1"][0] == result["LNB-2"][0] == ORDER_BLOCKED
    assert result["LNB-1"][1][0].startswith('invalid confirmation time "02/01/2026": ')
    assert result["LNB-2"][1] == ['invalid country "France" in delivery_address: must be an ISO 3166 code such as FR']
    assert result["LNB-3"] == (ORDER_EXPORTABLE, [])


def test_without_read_all_orders_an_order_confirmed_over_60_days_ago_is_blocked() -> None:
    """Shopify would hide the created order from the app, which then could not find it again: a duplicate risk."""
    limited = ExportMoment(ZoneInfo("Europe/Paris"), NOW, can_read_all_orders=False)
    old, recent = order("LNB-1", confirmation_time="2025-12-01T10:00:00Z"), order("LNB-2")
    assert order_outcome(old, recent, moment=limited) == {
        "LNB-1": (ORDER_BLOCKED, ["confirmed more than 60 days ago (2025-12-01): without the read_all_orders scope "
                                  "Shopify hides such an order from this app, which could then not find it again; "
                                  "grant read_all_orders"]),
        "LNB-2": (ORDER_EXPORTABLE, [])}
    assert order_outcome(old) == {"LNB-1": (ORDER_EXPORTABLE, [])}


def test_a_reference_too_long_for_a_custom_id_blocks_the_order() -> None:
    assert order_outcome(order("L" * 2049)) == {"L" * 2049: (ORDER_BLOCKED, [
        "order reference too long: Shopify keeps custom ids of at most 2048 bytes"])}


def test_every_reason_of_a_line_is_kept() -> None:
    orders, lines = validate(order(items=[item(EAN_B, quantity=0, unit_price=None), item()]))
    assert lines.get_column("reason").to_list() == [
        f"no Shopify variant for EAN13 {EAN_B}; invalid quantity 0: must be a whole number >= 1; "
        "invalid unit price null: must be a number >= 0",
        None,
    ]
    assert orders.get_column("reasons").to_list() == [[
        f"line 1: no Shopify variant for EAN13 {EAN_B}",
        "line 1: invalid quantity 0: must be a whole number >= 1",
        "line 1: invalid unit price null: must be a number >= 0",
    ]]


# --- validation: retailer, buyer, currency, lines ------------------------------------------------

@pytest.mark.parametrize("reference", [None, "", "   "])
def test_missing_retailer_reference_blocks_the_order(reference: str | None) -> None:
    orders, _ = validate(order(retailer_reference=reference))
    assert orders.select("retailer_reference", "status", "reasons").rows() == [
        (None, ORDER_BLOCKED, ["retailer reference missing"])]
    assert REASON_RETAILER_REFERENCE_MISSING == "retailer reference missing"


@pytest.mark.parametrize(("name", "expected"), [
    ("Concept Store Noord", "Concept Store Noord"), ("  Wiener Mode ", "Wiener Mode"), ("", None), (None, None)])
def test_the_retailer_name_comes_from_lnb_trimmed_and_never_blocks(name: str | None, expected: str | None) -> None:
    """The name is what people know a retailer by; a blank one shows as none and blocks nothing."""
    assert retailer_name(order(retailer_name=name)) == expected
    orders, _ = validate(order(retailer_name=name))
    assert orders.select("retailer_name", "status").rows() == [(expected, ORDER_EXPORTABLE)]


def test_an_order_without_the_retailer_name_field_has_none() -> None:
    source = order()
    del source["retailer_name"]
    assert retailer_name(source) is None


@pytest.mark.parametrize(("fields", "label"), [
    ({}, "Linen Shirt (Blue, M)"),
    ({"size": " "}, "Linen Shirt (Blue)"),
    ({"color": None, "size": None}, "Linen Shirt"),
    ({"name": None}, "Blue, M"),
    ({"name": "", "color": "", "size": None}, None),
])
def test_a_line_is_named_as_lnb_names_the_item(fields: dict[str, Any], label: str | None) -> None:
    """The item's name, colour and size tell a person which line of the order to fix."""
    assert item_label({**item(), **fields}) == label
    _, lines = validate(order(items=[{**item(), **fields}]))
    assert lines.get_column("item").to_list() == [label]


def test_a_buyer_is_checked_on_its_company_when_it_has_one() -> None:
    """The admin page that shows a B2B match is the company's, not its location's."""
    assert Buyer("R1", CUSTOMER, None, None).shopify_id == CUSTOMER
    assert Buyer("R1", None, COMPANY_LOCATION, None, "gid://shopify/Company/3").shopify_id == "gid://shopify/Company/3"


def test_retailer_reference_is_trimmed_for_the_buyer_lookup() -> None:
    assert retailer_reference(order(retailer_reference=" R1 ")) == "R1"
    assert order_outcome(order(retailer_reference=" R1 ")) == {"LNB-1": (ORDER_EXPORTABLE, [])}


def test_reference_without_shopify_customer_blocks_the_order() -> None:
    assert order_outcome(order("LNB-1", retailer_reference="R9"), order("LNB-2", retailer_reference="R2")) == {
        "LNB-1": (ORDER_BLOCKED, ["no Shopify customer with lenewblack.retailer_reference = R9"]),
        "LNB-2": (ORDER_BLOCKED, ["no Shopify customer with lenewblack.retailer_reference = R2"]),
    }
    assert order_outcome(order(retailer_reference="R9"), settings=OrderSettings(metafield="custom.lnb")) == {
        "LNB-1": (ORDER_BLOCKED, ["no Shopify customer with custom.lnb = R9"])}
    assert REASON_NO_CUSTOMER == "no Shopify customer"


def test_reference_without_shopify_company_blocks_the_order_in_company_mode() -> None:
    company = OrderSettings(customer_match="company")
    assert order_outcome(order(retailer_reference="R9"), settings=company) == {
        "LNB-1": (ORDER_BLOCKED, ["no Shopify company with external ID R9"])}
    assert REASON_NO_COMPANY == "no Shopify company"


def test_currency_must_be_the_shop_currency_or_an_accepted_extra_one() -> None:
    usd = order(currency="USD")
    assert order_outcome(usd) == {"LNB-1": (ORDER_BLOCKED, ["currency not accepted: USD (accepted: EUR)"])}
    with_rate = OrderSettings(extra_currencies=("USD",), exchange_rates=(("USD", Decimal("0.92")),))
    assert order_outcome(usd, settings=with_rate) == {"LNB-1": (ORDER_EXPORTABLE, [])}
    assert order_outcome(usd, settings=OrderSettings(extra_currencies=("USD",))) == {"LNB-1": (ORDER_BLOCKED, [
        "no exchange rate for USD: Shopify needs each price in the shop currency EUR too; give one in "
        "SHOPIFY_ORDER_CURRENCIES as USD:<rate>"])}
    assert order_outcome(order(currency="GBP"), settings=OrderSettings(extra_currencies=("USD", "EUR"))) == {
        "LNB-1": (ORDER_BLOCKED, ["currency not accepted: GBP (accepted: EUR, USD)"])}
    assert order_outcome(usd, shop_currency="USD") == {"LNB-1": (ORDER_EXPORTABLE, [])}
    assert REASON_CURRENCY_NOT_ACCEPTED == "currency not accepted"


def test_currency_is_trimmed_and_upper_cased_and_required() -> None:
    orders, _ = validate(order("LNB-1", currency=" eur "), order("LNB-2", currency=None), order("LNB-3", currency=""))
    assert orders.select("reference", "currency", "status", "reasons").rows() == [
        ("LNB-1", "EUR", ORDER_EXPORTABLE, []),
        ("LNB-2", None, ORDER_BLOCKED, ["currency missing"]),
        ("LNB-3", None, ORDER_BLOCKED, ["currency missing"]),
    ]
    assert REASON_CURRENCY_MISSING == "currency missing"


@pytest.mark.parametrize("items", [[], None])
def test_order_without_lines_is_blocked(items: list[Any] | None) -> None:
    orders, lines = validate({**order(), "items": items})
    assert orders.select("lines", "status", "reasons").rows() == [(0, ORDER_BLOCKED, ["order has no lines"])]
    assert lines.height == 0
    assert REASON_NO_LINES == "order has no lines"


def test_an_order_lists_every_reason_order_first_then_lines() -> None:
    broken = order(retailer_reference="R9", currency="CHF", items=[item(None, None), item(), item(EAN_C, quantity=-2)])
    assert order_outcome(broken) == {"LNB-1": (ORDER_BLOCKED, [
        "no Shopify customer with lenewblack.retailer_reference = R9",
        "currency not accepted: CHF (accepted: EUR)",
        "line 1: no EAN13 and no SKU",
        f"line 3: more than one Shopify variant for EAN13 {EAN_C} ({gid(3)}, {gid(4)})",
        "line 3: invalid quantity -2: must be a whole number >= 1",
    ])}


def test_no_orders_give_empty_frames() -> None:
    orders, lines = validate()
    assert (orders.height, orders.schema, lines.height, lines.schema) == (
        0, pl.Schema(ORDER_SCHEMA), 0, pl.Schema(LINE_SCHEMA))


def test_a_thousand_orders_of_five_lines_each_match_their_own_variants() -> None:
    codes = [f"376{number:09d}" + _check_digit(f"376{number:09d}") for number in range(5000)]
    index = variant_index(levels(*(level_rows(number, code, f"SKU-{number}") for number, code in enumerate(codes))))
    orders = [order(f"SCL-{number:04d}", items=[item(codes[number * 5 + line]) for line in range(5)])
              for number in range(1000)]
    result, lines = validate_orders(orders, BUYERS, index, "EUR", OrderSettings(), MOMENT)
    assert result.get_column("status").value_counts().rows() == [(ORDER_EXPORTABLE, 1000)]
    assert lines.get_column("variant_id").to_list() == [gid(number) for number in range(5000)]


def _check_digit(data: str) -> str:
    digits = data[::-1]
    return str(-(3 * sum(map(int, digits[0::2])) + sum(map(int, digits[1::2]))) % 10)


# --- orderCreate input ---------------------------------------------------------------------------

LINE_VARIANTS = [(gid(1), 2, "10.5"), (gid(5), 3, "30")]
EXPECTED_ADDRESS = {"address1": "Haarlemmerstraat 45", "address2": "2nd floor", "city": "Amsterdam",
                    "company": "Concept Store Noord", "zip": "1013 EK", "phone": "+31 20 123 4567",
                    "countryCode": "NL", "firstName": "Sanne", "lastName": "de Vries"}


def create_input(source: dict[str, Any], buyer: Buyer, line_variants: list[tuple[str, int, str]],
                 settings: OrderSettings) -> dict[str, Any]:
    """The input for an order validated at ``MOMENT`` in a EUR shop with the order custom id."""
    return order_create_input(source, buyer, line_variants, settings, shop_currency="EUR",
                              processed_at=processed_at(source, MOMENT)[0], custom_id=True)


CUSTOM_ID = [{"namespace": "lenewblack", "key": "order_reference", "type": "id", "value": "LNB-1"}]


def expected_input(source: dict[str, Any], **buyer_fields: Any) -> dict[str, Any]:
    return {
        "lineItems": [
            {"variantId": gid(1), "quantity": 2, "requiresShipping": True, "priceSet": {"shopMoney": {"amount": "10.5", "currencyCode": "EUR"}}},
            {"variantId": gid(5), "quantity": 3, "requiresShipping": True, "priceSet": {"shopMoney": {"amount": "30", "currencyCode": "EUR"}}},
        ],
        "email": "sanne@noord.example",
        "poNumber": "PO-77",
        "sourceName": "lenewblack",
        "sourceIdentifier": "LNB-1",
        "tags": ["lenewblack", "wholesale", f"lnb-hash:{order_content_hash(source)}"],
        "note": "Back entrance please.",
        "currency": "EUR",
        "financialStatus": "PENDING",
        "shippingAddress": EXPECTED_ADDRESS,
        "billingAddress": EXPECTED_ADDRESS,
        "processedAt": "2026-01-02T11:00:00Z",
        "metafields": CUSTOM_ID,
        **buyer_fields,
    }


def test_order_create_input_for_a_customer() -> None:
    source = order()
    buyer = Buyer("R1", CUSTOMER, None, "other@shop.example")
    assert create_input(source, buyer, LINE_VARIANTS, OrderSettings()) == expected_input(
        source, customer={"toAssociate": {"id": CUSTOMER}})


def test_order_create_input_for_a_company_location_has_no_customer() -> None:
    source = order()
    buyer = Buyer("R1", CUSTOMER, COMPANY_LOCATION, None)
    result = create_input(source, buyer, LINE_VARIANTS, OrderSettings(customer_match="company"))
    assert result == expected_input(source, companyLocationId=COMPANY_LOCATION)
    assert "customer" not in result


def test_order_create_input_needs_a_customer_or_a_company_location() -> None:
    with pytest.raises(ValueError, match="buyer for 'R1' has neither a customer nor a company location"):
        create_input(order(), Buyer("R1", None, None, "b@shop.example"), LINE_VARIANTS, OrderSettings())


def test_order_create_input_follows_the_settings_and_prices_another_currency_in_both() -> None:
    """The shop's currency stays the order's; USD is the presentment currency, each price in both."""
    settings = OrderSettings(extra_currencies=("USD",), exchange_rates=(("USD", Decimal("0.9215")),),
                             financial_status="PAID", tags=("b2b",), source_name="lnb")
    source = order(currency=" usd ")
    result = create_input(source, BUYERS["R1"], [(gid(2), 1, "12.00")], settings)
    assert (result["lineItems"], result["currency"], result["presentmentCurrency"], result["financialStatus"],
            result["tags"], result["sourceName"]) == (
        [{"variantId": gid(2), "quantity": 1, "requiresShipping": True,
          "priceSet": {"shopMoney": {"amount": "11.06", "currencyCode": "EUR"},
                       "presentmentMoney": {"amount": "12.00", "currencyCode": "USD"}}}],
        "EUR", "USD", "PAID", ["b2b", f"{HASH_TAG_PREFIX}{order_content_hash(source)}"], "lnb")


def test_order_create_input_without_the_custom_id_definition_sends_no_metafield() -> None:
    result = order_create_input(order(), BUYERS["R1"], LINE_VARIANTS, OrderSettings(), shop_currency="EUR",
                                processed_at=None, custom_id=False)
    assert "metafields" not in result and "processedAt" not in result


def test_order_create_input_leaves_out_null_and_blank_fields() -> None:
    bare = order(buyer_email=None, purchase_order_reference=None, comment="  ", confirmation_time=None,
                 billing_address=None, delivery_address={"reference": "ADR", "company": None, "country": None})
    result = create_input(bare, Buyer("R1", CUSTOMER, None, None), LINE_VARIANTS, OrderSettings())
    assert result == {
        "lineItems": expected_input(bare)["lineItems"],
        "sourceName": "lenewblack",
        "sourceIdentifier": "LNB-1",
        "tags": ["lenewblack", "wholesale", f"lnb-hash:{order_content_hash(bare)}"],
        "currency": "EUR",
        "financialStatus": "PENDING",
        "metafields": CUSTOM_ID,
        "customer": {"toAssociate": {"id": CUSTOMER}},
    }


def test_email_falls_back_to_the_shopify_buyer() -> None:
    buyer = Buyer("R1", CUSTOMER, None, "owner@noord.example")
    assert create_input(order(buyer_email=" "), buyer, LINE_VARIANTS, OrderSettings())["email"] == (
        "owner@noord.example")


@pytest.mark.parametrize(("changes", "expected"), [
    ({"contact_name": "Sanne  Maria de Vries"}, {"firstName": "Sanne", "lastName": "Maria de Vries"}),
    ({"contact_name": " Madonna "}, {"lastName": "Madonna"}),
    ({"contact_name": "   "}, {}),
    ({"contact_name": None}, {}),
])
def test_contact_name_splits_on_the_first_space(changes: dict[str, Any], expected: dict[str, str]) -> None:
    result = create_input(order(delivery_address=address(**changes)), BUYERS["R1"], LINE_VARIANTS,
                                OrderSettings())
    names = {key: value for key, value in result["shippingAddress"].items() if key in ("firstName", "lastName")}
    assert names == expected


def test_address_fields_are_trimmed_country_upper_cased_and_blanks_left_out() -> None:
    messy = address(country=" be ", address_2="", tel=None, city=" Ghent ", zipcode="9000")
    result = create_input(order(delivery_address=messy), BUYERS["R1"], LINE_VARIANTS, OrderSettings())
    assert result["shippingAddress"] == {
        "address1": "Haarlemmerstraat 45", "city": "Ghent", "company": "Concept Store Noord", "zip": "9000",
        "countryCode": "BE", "firstName": "Sanne", "lastName": "de Vries"}


def test_order_create_options() -> None:
    assert order_create_options(OrderSettings()) == {
        "inventoryBehaviour": "DECREMENT_IGNORING_POLICY", "sendReceipt": False, "sendFulfillmentReceipt": False}
    assert order_create_options(OrderSettings(inventory_behaviour="BYPASS"))["inventoryBehaviour"] == "BYPASS"


# --- content hash and changes after export -------------------------------------------------------

def test_content_hash_is_16_hex_digits_of_the_canonical_content() -> None:
    source = order()
    hashed_address = {"address_1": "Haarlemmerstraat 45", "address_2": "2nd floor", "city": "Amsterdam",
                      "company": "Concept Store Noord", "contact_name": "Sanne de Vries", "country": "NL",
                      "tel": "+31 20 123 4567", "zipcode": "1013 EK"}
    canonical = {
        "billing_address": hashed_address, "buyer_email": "sanne@noord.example", "comment": "Back entrance please.",
        "currency": "EUR", "delivery_address": hashed_address,
        "items": [{"ean13": EAN_A, "quantity": 2, "sku": None, "unit_price": 10.5}],
        "purchase_order_reference": "PO-77", "retailer_reference": "R1",
    }
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert order_content_hash(source) == hashlib.sha256(text.encode()).hexdigest()[:16]


def test_content_hash_ignores_status_and_times() -> None:
    source = order()
    moved = order(status="invoicing", update_time="2026-03-01T00:00:00Z", confirmation_time="2026-03-01T00:00:00Z",
                  amount_total=99.0, retailer_name="Renamed", billing_address=address(reference="ADR-1-B",
                                                                                        vat_number="NL0"))
    assert order_content_hash(moved) == order_content_hash(source)


@pytest.mark.parametrize("edit", [
    lambda o: o["items"][0].update(quantity=3),
    lambda o: o["items"][0].update(unit_price=11.0),
    lambda o: o["items"][0].update(ean13=EAN_B),
    lambda o: o["items"][0].update(sku="SKU-1"),
    lambda o: o["items"].append(item()),
    lambda o: o["delivery_address"].update(city="Utrecht"),
    lambda o: o["billing_address"].update(contact_name="Daan Jansen"),
    lambda o: o.update(comment="Front door."),
    lambda o: o.update(currency="USD"),
    lambda o: o.update(purchase_order_reference="PO-78"),
    lambda o: o.update(retailer_reference="R2"),
    lambda o: o.update(buyer_email="daan@noord.example"),
])
def test_content_hash_changes_with_an_edit(edit: Any) -> None:
    source = order()
    edited = copy.deepcopy(source)
    edit(edited)
    assert order_content_hash(edited) != order_content_hash(source)


def test_hash_from_tags() -> None:
    assert hash_from_tags(["lenewblack", " lnb-hash:0123456789abcdef ", "wholesale"]) == "0123456789abcdef"
    assert hash_from_tags(["lenewblack", "wholesale"]) is None
    assert hash_from_tags([]) is None
    assert HASH_TAG_PREFIX == "lnb-hash:"


def test_changed_after_export() -> None:
    source = order()
    tags = create_input(source, BUYERS["R1"], LINE_VARIANTS, OrderSettings())["tags"]
    assert changed_after_export(source, tags) is False
    assert changed_after_export(order(status="invoicing", update_time="2026-04-01T00:00:00Z"), tags) is False
    edited = copy.deepcopy(source)
    edited["items"][0]["quantity"] = 5
    assert changed_after_export(edited, tags) is True


def test_order_without_a_hash_tag_is_not_reported_as_changed() -> None:
    assert changed_after_export(order(), ["lenewblack", "wholesale"]) is False
