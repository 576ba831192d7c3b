"""The readiness rules without Dagster: facts in, one go / warn / no-go row per point out.

Facts are built by hand (small levels frames, retailer lists, validation frames) so every count in a
row's text can be worked out here; the Dagster runs against the sandbox are in test_readiness.py.
"""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest

from lnb_pipeline.rules import readiness as rules
from lnb_pipeline.rules.orders import ORDER_BLOCKED, ORDER_EXPORTABLE
from lnb_pipeline.rules.stock import (
    LEVEL_SCHEMA,
    StockSettings,
    compute_available_to_sell,
)

SHOP = rules.ShopFacts("Maison Test", "maison-test.myshopify.com", "EUR", "Standard", False, False)
NEEDED = ["read_products", "read_inventory", "read_locations", "read_customers", "write_orders"]


def levels(*variants: tuple[Any, ...], locations: tuple[str, ...] = ("gid://shopify/Location/1",)) -> pl.DataFrame:
    """One level row per variant and location: ``(number, barcode, sku)`` or ``(number, barcode, sku, tracked)``."""
    rows = []
    for variant in variants:
        number, barcode, sku, tracked = (*variant, True)[:4]
        for location in locations:
            rows.append((f"gid://shopify/ProductVariant/{number}", sku, barcode, "ACTIVE", tracked, location,
                         "Paris", 5, 5, 0))
    return pl.DataFrame(rows, schema=LEVEL_SCHEMA, orient="row")


# --- Shopify connection ------------------------------------------------------------------------


def test_a_write_scope_grants_its_read_scope() -> None:
    assert rules.granted_scopes(["write_orders", "read_products"]) == {"write_orders", "read_orders", "read_products"}


def test_every_needed_scope_granted_is_go() -> None:
    row = rules.scopes_row([*NEEDED, "read_all_orders"], "metafield")
    assert (row.status, row.found) == (rules.GO, "granted: " + ", ".join(sorted([*NEEDED, "read_all_orders"])))


def test_a_missing_scope_is_no_go_naming_it_and_where_to_add_it() -> None:
    row = rules.scopes_row([scope for scope in NEEDED if scope not in ("write_orders", "read_inventory")], "metafield")
    assert row.status == rules.NO_GO
    assert row.found.startswith("missing read_inventory, write_orders (granted: ")
    assert row.fix.startswith("add read_inventory, write_orders to the app's access scopes")


def test_companies_take_read_companies_instead_of_read_customers() -> None:
    scopes = [scope for scope in NEEDED if scope != "read_customers"] + ["read_companies"]
    assert rules.scopes_row(scopes, "company").status == rules.GO
    row = rules.scopes_row(scopes, "metafield")
    assert (row.status, row.found.split(" (")[0]) == (rules.NO_GO, "missing read_customers")
    assert rules.scopes_row(scopes[:-1], "company").found.startswith("missing read_customers (or read_companies)")


def test_read_all_orders_missing_is_a_warning() -> None:
    assert rules.read_all_orders_row(["read_all_orders"]).status == rules.GO
    row = rules.read_all_orders_row(NEEDED)
    assert row.status == rules.WARN and "60 days" in row.found and row.fix.startswith("ask Shopify for read_all_orders")


@pytest.mark.parametrize(("asked", "served", "status", "found"), [
    ("2026-04", "2026-04", rules.GO, "2026-04 asked and served"),
    ("2025-01", "2026-04", rules.WARN, "asked for 2025-01, Shopify served 2026-04: it no longer supports 2025-01"),
    ("2026-04", None, rules.WARN, "asked for 2026-04; Shopify did not say which version it served"),
    ("2026-07", "2026-07", rules.WARN, "2026-07 asked and served, but the project's queries are checked against 2026-04"),
])
def test_api_version_served_against_asked(asked: str, served: str | None, status: str, found: str) -> None:
    row = rules.api_version_row(asked, served, "2026-04")
    assert (row.status, row.found[:len(found)]) == (status, found)
    assert row.fix == "" if status == rules.GO else row.fix.startswith("SHOPIFY_API_VERSION")


def test_development_store_is_a_warning() -> None:
    assert rules.store_row(SHOP) == rules.Row(rules.SHOPIFY_STORE, rules.GO, "Standard plan")
    row = rules.store_row(rules.ShopFacts("Dev", "dev.myshopify.com", "EUR", "Development", True, False))
    assert row.status == rules.WARN and "5 new orders a minute" in row.found


def test_b2b_matters_only_for_company_match() -> None:
    assert rules.b2b_row("metafield", SHOP).status == rules.GO
    row = rules.b2b_row("company", SHOP)
    assert row.status == rules.NO_GO and row.fix.startswith("SHOPIFY_CUSTOMER_MATCH=metafield")
    plus = rules.ShopFacts("Plus", "plus.myshopify.com", "EUR", "Plus", False, True)
    assert rules.b2b_row("company", plus).status == rules.GO


def test_currency_of_waiting_orders_against_the_accepted_ones() -> None:
    assert rules.currency_row("EUR", {}, ["EUR", "eur "]) == rules.Row(rules.SHOPIFY_CURRENCY, rules.GO, "EUR")
    row = rules.currency_row("EUR", {}, ["EUR", "USD", "USD", None])
    assert row.status == rules.WARN
    assert row.found == "EUR; LNB orders waiting: 1 order in (none), 2 orders in USD, which the export blocks"
    accepted = rules.currency_row("EUR", {"USD": True, "GBP": False}, ["USD", "GBP"])
    assert accepted.found == ("EUR; also accepted: USD, GBP (no rate) (SHOPIFY_ORDER_CURRENCIES); LNB orders "
                              "waiting: 1 order in GBP, which the export blocks")


# --- custom ids --------------------------------------------------------------------------------


def definition(owner: str, *types: str) -> rules.DefinitionFacts:
    metafield = "lenewblack.retailer_reference" if owner == "CUSTOMER" else "lenewblack.order_reference"
    setting = "SHOPIFY_CUSTOMER_METAFIELD" if owner == "CUSTOMER" else "SHOPIFY_ORDER_METAFIELD"
    return rules.DefinitionFacts(owner, metafield, setting, types)  # type: ignore[arg-type]


def test_an_id_definition_is_go() -> None:
    row = rules.definition_row(rules.ORDER_CUSTOM_ID, definition("ORDER", "id"), NEEDED)
    assert (row.status, row.found) == (rules.GO, "lenewblack.order_reference: a definition of type id on orders")


def test_a_missing_definition_is_no_go_and_names_the_setup_and_its_scope() -> None:
    order = rules.definition_row(rules.ORDER_CUSTOM_ID, definition("ORDER"), NEEDED)
    assert order.status == rules.NO_GO and "searching" in order.found
    assert order.fix.startswith("run the shopify_setup job (it needs the write_orders scope), or Shopify admin")
    customer = rules.definition_row(rules.CUSTOMER_CUSTOM_ID, definition("CUSTOMER"), NEEDED)
    assert customer.fix.startswith("run the shopify_setup job (it needs the write_customers scope, which the app "
                                   "lacks: add it to the app's access scopes")
    granted = rules.definition_row(rules.CUSTOMER_CUSTOM_ID, definition("CUSTOMER"), [*NEEDED, "write_customers"])
    assert granted.fix.startswith("run the shopify_setup job (it needs the write_customers scope), or")


def test_a_definition_of_another_type_is_no_go_and_left_to_the_brand() -> None:
    row = rules.definition_row(rules.CUSTOMER_CUSTOM_ID, definition("CUSTOMER", "single_line_text_field"), NEEDED)
    assert row.status == rules.NO_GO
    assert "with type single_line_text_field, not id" in row.found and "shopify_setup does not change it" in row.found
    assert row.fix.startswith("point SHOPIFY_CUSTOMER_METAFIELD at another namespace.key")


def test_the_customer_definition_is_not_needed_for_companies() -> None:
    row = rules.definition_row(rules.CUSTOMER_CUSTOM_ID, definition("CUSTOMER"), NEEDED, needed=False)
    assert row.status == rules.GO and row.found.startswith("not used")


# --- catalogue ---------------------------------------------------------------------------------

CATALOGUE = levels(
    (1, "4006381333931", "A-1"),  # valid EAN13
    (2, " 4006381333931 ", "A-2"),  # the same EAN13, padded: a duplicate
    (3, "036000291452", "A-3"),  # valid UPC-A
    (4, "4006381333932", "A-4"),  # invalid check digit, a SKU: only a SKU
    (5, None, "A-5"),  # only a SKU
    (6, "", None),  # neither
    (7, "12345678", "A-5"),  # not an EAN13, a SKU shared with 5
    locations=("gid://shopify/Location/1", "gid://shopify/Location/2"),
)


def test_code_counts_count_each_variant_once_whatever_its_locations() -> None:
    assert rules.code_counts(CATALOGUE) == rules.CodeCounts(
        variants=7, valid_ean13=3, from_upc=1, invalid_barcode=2, sku_only=3, neither=1, duplicate_ean13=2,
        duplicate_sku=2)


def test_product_codes_row() -> None:
    row = rules.product_codes_row(rules.code_counts(CATALOGUE))
    assert row.status == rules.WARN
    assert row.found == ("7 variants: 3 with a valid EAN13 (1 of them 12-digit UPC-A), 3 with only a SKU, 1 with "
                         "neither, 2 with an invalid barcode, 2 sharing an EAN13, 2 sharing a SKU")
    clean = rules.product_codes_row(rules.code_counts(levels((1, "4006381333931", "A-1"), (2, "036000291452", None))))
    assert (clean.status, clean.found) == (rules.GO, "2 variants: 2 with a valid EAN13 (1 of them 12-digit UPC-A), "
                                                     "0 with only a SKU, 0 with neither")
    assert rules.product_codes_row(rules.code_counts(levels())).status == rules.NO_GO


def coverage(frame: pl.DataFrame, key: str) -> rules.KeyCoverage:
    settings = StockSettings(key=key)  # type: ignore[arg-type]
    return rules.key_coverage(compute_available_to_sell(frame, ["gid://shopify/Location/1"], settings), settings.key)


def test_key_coverage_counts_bad_keys_but_not_untracked_variants() -> None:
    frame = levels((1, "4006381333931", "A-1"), (2, None, "A-2"), (3, "036000291452", "A-3", False),
                   (4, "4006381333932", "A-4"))
    assert coverage(frame, "ean13") == rules.KeyCoverage("ean13", 4, 2, 1)
    assert coverage(frame, "sku") == rules.KeyCoverage("sku", 4, 0, 1)


def test_stock_key_row_against_the_limit() -> None:
    frame = levels((1, "4006381333931", "A-1"), (2, None, "A-2"), (3, None, "A-3"), (4, "036000291452", "A-4"))
    blocked = rules.stock_key_row(coverage(frame, "ean13"), coverage(frame, "sku"), 20)
    assert blocked.status == rules.NO_GO
    assert blocked.found == ("with LNB_STOCK_KEY=ean13, 2 of 4 variants (50.0%) have a missing, invalid or "
                             "duplicate key (with sku: 0.0%): above LNB_STOCK_MAX_INVALID_PERCENT (20%), the stock "
                             "push is blocked")
    assert blocked.fix == "fix the codes (see Product codes), or LNB_STOCK_KEY=sku if LNB knows the products by it"
    assert rules.stock_key_row(coverage(frame, "ean13"), coverage(frame, "sku"), 50).status == rules.WARN
    clean = rules.stock_key_row(coverage(frame, "sku"), coverage(frame, "ean13"), 20)
    assert (clean.status, clean.fix) == (rules.GO, "")


def test_locations_row() -> None:
    locations = pl.DataFrame({"id": ["L1", "L2", "L3"], "name": ["Paris", "Lyon", "Old"],
                              "is_active": [True, True, False]})
    row = rules.locations_row(locations, ["L1"], None)
    assert (row.status, row.found) == (rules.GO, "3 locations: Paris (summed), Lyon (not summed), Old (inactive, "
                                                 "not summed)")
    refused = rules.locations_row(locations, None, "unknown location(s) 'Nice'")
    assert (refused.status, refused.found) == (rules.NO_GO, "unknown location(s) 'Nice'")
    assert refused.fix.startswith("LNB_STOCK_LOCATIONS")


# --- LNB ---------------------------------------------------------------------------------------


def test_lnb_rows() -> None:
    assert rules.lnb_connection_row(None).status == rules.GO
    assert rules.lnb_connection_row("LNB refused the client credentials").status == rules.NO_GO
    assert rules.lnb_statuses_row("confirmed", "invoicing", {}).status == rules.GO
    row = rules.lnb_statuses_row("confirmed", "invoicing", {"invoicing": "HTTP 422"})
    assert (row.status, row.found) == (rules.NO_GO, "LNB refused 'invoicing': HTTP 422")


def keys(*values: str | None) -> pl.Series:
    return pl.Series("key", list(values), dtype=pl.String)


def test_key_overlap() -> None:
    row = rules.key_overlap_row("ean13", keys("1", "2", "3", None), keys("2", "3", "4", "5", "6", "7"))
    assert row.status == rules.WARN
    assert row.found.startswith("2 ean13 keys in both; 4 in LNB only (4, 5, 6, …); 1 in Shopify only (1)")
    assert rules.key_overlap_row("sku", keys("1", "2"), keys("1")).status == rules.GO
    disjoint = rules.key_overlap_row("ean13", keys("1"), keys("2"))
    assert disjoint.status == rules.NO_GO and disjoint.fix.startswith("LNB_STOCK_KEY")
    assert rules.key_overlap_row("ean13", keys("1"), keys()).status == rules.GO


# --- retailers and orders ----------------------------------------------------------------------

RETAILERS = [{"name": "Lumière", "reference": " R1 "}, {"name": "Noord", "reference": "R2"},
             {"name": "Pop-up", "reference": None}, {"name": "Gent", "reference": "  "},
             {"name": "Wien", "reference": "R9"}]


def test_retailer_frame_trims_references_as_the_order_rules_do() -> None:
    frame = rules.retailer_frame(RETAILERS, {"R1": True, "R2": True, "R9": False})
    assert frame.rows() == [("Lumière", "R1", rules.RETAILER_MATCHED), ("Noord", "R2", rules.RETAILER_MATCHED),
                            ("Pop-up", None, rules.RETAILER_NO_REFERENCE), ("Gent", None, rules.RETAILER_NO_REFERENCE),
                            ("Wien", "R9", rules.RETAILER_UNMATCHED)]


def test_retailers_row() -> None:
    some = rules.retailers_row(rules.retailer_frame(RETAILERS, {"R1": True, "R2": True}), "metafield", "ns.key")
    assert some.status == rules.WARN
    assert some.found == ("2 of 5 retailers matched; 2 without a reference (Pop-up, Gent); 1 whose reference matches "
                          "nobody (Wien R9): no Shopify customer carries it in ns.key: their orders will be blocked")
    assert "the Shopify customer's metafield ns.key" in some.fix
    none = rules.retailers_row(rules.retailer_frame(RETAILERS, {}), "company", "ns.key")
    assert none.status == rules.NO_GO and "no Shopify company has that External ID" in none.found
    assert none.fix.endswith("check SHOPIFY_CUSTOMER_MATCH and SHOPIFY_CUSTOMER_METAFIELD")
    every = rules.retailers_row(rules.retailer_frame(RETAILERS[:2], {"R1": True, "R2": True}), "metafield", "ns.key")
    assert (every.status, every.found) == (rules.GO, "2 of 2 retailers matched")
    assert rules.retailers_row(rules.retailer_frame([], {}), "metafield", "ns.key").status == rules.WARN


def validation(*orders: tuple[str, list[str]]) -> pl.DataFrame:
    return pl.DataFrame([(reference, ORDER_BLOCKED if reasons else ORDER_EXPORTABLE, reasons)
                         for reference, reasons in orders],
                        schema={"reference": pl.String(), "status": pl.String(), "reasons": pl.List(pl.String())},
                        orient="row")


def test_blocked_orders_are_counted_by_kind_of_reason() -> None:
    frame = validation(
        ("LNB-1", ["no Shopify customer with ns.key = R9", "line 2: no EAN13 and no SKU",
                   "line 3: no EAN13 and no SKU"]),
        ("LNB-2", ["retailer reference missing", "line 1: no Shopify variant for EAN13 4006381333931"]),
        ("LNB-3", ["line 1: something new"]),
        ("LNB-4", []),
    )
    assert rules.blocked_reason_counts(frame).rows() == [
        ("no EAN13 and no SKU", 1), ("no Shopify customer", 1), ("no Shopify variant", 1),
        ("retailer reference missing", 1), ("something new", 1)]
    row = rules.orders_row("confirmed", frame)
    assert row.status == rules.WARN
    assert row.found == ("4 orders in LNB status confirmed; 3 would be blocked today (1 no EAN13 and no SKU, 1 no "
                         "Shopify customer, 1 no Shopify variant, 1 retailer reference missing, 1 something new)")


def test_orders_row_without_blocked_orders() -> None:
    assert rules.orders_row("confirmed", validation()).found == "no LNB order in status confirmed now"
    row = rules.orders_row("confirmed", validation(("LNB-1", [])))
    assert (row.status, row.found) == (rules.GO, "1 order in LNB status confirmed, all exportable")


# --- the report --------------------------------------------------------------------------------


def every_point(status: rules.Status) -> list[rules.Row]:
    return [rules.Row(point, status, f"{point.label} found") for point in rules.POINTS]


def test_report_frame_is_in_points_order_with_every_point_once() -> None:
    rows = every_point(rules.GO)
    report = rules.report_frame(reversed(rows))
    assert report["point"].to_list() == [point.label for point in rules.POINTS]
    assert report.schema == rules.REPORT_SCHEMA
    with pytest.raises(ValueError, match="two rows for Shopify connection"):
        rules.report_frame([*rows, rows[0]])
    with pytest.raises(ValueError, match="no row for Orders waiting for export"):
        rules.report_frame(rows[:-1])


def test_points_have_distinct_checks_and_labels() -> None:
    assert len({point.check for point in rules.POINTS}) == len({point.label for point in rules.POINTS}) == 17


def test_verdict() -> None:
    assert rules.verdict(rules.report_frame(every_point(rules.GO))) == "GO: nothing to fix"
    rows = every_point(rules.GO)
    rows[3] = rules.Row(rows[3].point, rules.WARN, "")
    assert rules.verdict(rules.report_frame(rows)) == "GO, with 1 warning: some records are left out until fixed"
    rows[0] = rules.not_checked(rules.SHOPIFY_CONNECTION, "timeout", "retry")
    assert rules.verdict(rules.report_frame(rows)) == "NO-GO: 1 point blocks going live (Shopify connection)"
    assert rows[0] == rules.Row(rules.SHOPIFY_CONNECTION, rules.NO_GO, "not checked: timeout", "retry")
