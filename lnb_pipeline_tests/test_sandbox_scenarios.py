"""Sandbox scenarios: the generated ones validate, are deterministic and hold what they promise.

``DEMO_CASES`` is what other tests use to find the deliberate anomalies of the demo, so every entry
is checked against the data here. Barcodes are checked with python-stdnum, not with the generator's
own check-digit code, so a bug there cannot hide itself.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from stdnum import ean

from lnb_pipeline.sandbox.generators import (
    DEMO_CASES,
    demo_scenario,
    scale_anomalies,
    scale_scenario,
)
from lnb_pipeline.sandbox.scenario import (
    DEFAULT_SCOPES,
    ScenarioError,
    load_scenario,
    validate_scenario,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_PATH = REPO_ROOT / "lnb_pipeline" / "sandbox" / "scenarios" / "example.json"
RETAILER_REFERENCE_METAFIELD = "lenewblack.retailer_reference"
CUSTOM_IDS = {("CUSTOMER", "lenewblack", "retailer_reference", "id"), ("ORDER", "lenewblack", "order_reference", "id")}
"""The metafield definitions every shipped scenario declares: the retailer and order references as custom ids."""

# Field lists from shared/api/lenewblack-wholesale-v2.md: the sandbox serves LNB objects as they are.
LNB_ORDER_FIELDS = {
    "reference", "create_time", "update_time", "confirmation_time", "cancellation_time", "status",
    "purchase_order_reference", "retailer_reference", "retailer_name", "buyer_name", "buyer_first_name",
    "buyer_email", "sales_person_email", "currency", "amount_total", "amount_total_tax_inclusive",
    "amount_shipping", "amount_discount", "discount_rate", "comment", "terms_of_payment", "terms_of_delivery",
    "delivery_start_on", "delivery_end_on", "order_type", "billing_address", "delivery_address", "items",
}
LNB_ADDRESS_FIELDS = {
    "reference", "company", "country", "contact_name", "contact_email", "tel", "address_1", "address_2",
    "zipcode", "city", "vat_number",
}
LNB_ORDER_ITEM_FIELDS = {
    "reference", "name", "collection_name", "color", "size", "quantity", "unit_price",
    "recommended_retail_price", "discount_rate", "discount_amount", "ean13", "sku", "sku_extra_1",
}
LNB_RETAILER_FIELDS = {
    "reference", "name", "price_list_code", "terms_of_payment", "terms_of_delivery", "sales_rep_email",
    "billing_address", "store_address", "delivery_addresses", "buyers", "create_time", "update_time",
    *(f"extra_{n}" for n in range(1, 10)),
}
LNB_BUYER_FIELDS = {"email", "first_name", "last_name"}
LNB_INVENTORY_FIELDS = {
    "ean13", "sku", "extra_1", "in_stock", "in_stock_update_time", "incoming_stock", "incoming_stock_date",
    "is_blocked",
}
LNB_ORDER_STATUSES = {
    "draft", "open_for_buyer", "open_for_brand", "confirmed", "invoicing", "closed", "canceled",
}


@cache
def demo() -> dict[str, Any]:
    """One demo scenario shared by the read-only checks below."""
    return demo_scenario()


def blank(value: str | None) -> bool:
    return not (value or "").strip()


def gtin13(barcode: str | None) -> str | None:
    """The EAN13 of a barcode as LNB keys it (trimmed, UPC-A zero-padded), or None; checked by stdnum."""
    code = (barcode or "").strip()
    if not code.isdigit() or len(code) not in (12, 13) or not ean.is_valid(code):
        return None
    return code.zfill(13)


def variants(scenario: dict[str, Any]) -> list[dict[str, Any]]:
    return [variant for product in scenario["products"] for variant in product["variants"]]


def retailer_references(scenario: dict[str, Any]) -> tuple[set[str], set[str]]:
    """References carried by Shopify customers (metafield) and by companies (external id)."""
    customers = {c["metafields"][RETAILER_REFERENCE_METAFIELD] for c in scenario["customers"]
                 if RETAILER_REFERENCE_METAFIELD in c["metafields"]}
    companies = {c["external_id"] for c in scenario["companies"] if c.get("external_id")}
    return customers, companies


def inactive_location_keys(scenario: dict[str, Any]) -> set[str]:
    return {str(location["id"]) for location in scenario["locations"] if not location["active"]}


def active_available(scenario: dict[str, Any], variant: dict[str, Any]) -> int:
    inactive = inactive_location_keys(scenario)
    return sum(level.get("available", 0) for key, level in variant["stock"].items() if key not in inactive)


def assert_lnb_shapes(scenario: dict[str, Any]) -> None:
    """Every LNB object carries exactly the documented fields, as LNB's API returns them."""
    lnb = scenario["lnb"]
    for retailer in lnb["retailers"]:
        assert set(retailer) == LNB_RETAILER_FIELDS, retailer["name"]
        addresses = [retailer["billing_address"], retailer["store_address"], *retailer["delivery_addresses"]]
        for address in addresses:
            assert address is None or set(address) == LNB_ADDRESS_FIELDS, retailer["name"]
        assert all(set(buyer) == LNB_BUYER_FIELDS for buyer in retailer["buyers"]), retailer["name"]
    for order in lnb["orders"]:
        assert set(order) == LNB_ORDER_FIELDS, order["reference"]
        assert order["status"] in LNB_ORDER_STATUSES, order["reference"]
        assert set(order["billing_address"]) == LNB_ADDRESS_FIELDS, order["reference"]
        assert set(order["delivery_address"]) == LNB_ADDRESS_FIELDS, order["reference"]
        assert all(set(item) == LNB_ORDER_ITEM_FIELDS for item in order["items"]), order["reference"]
    for row in lnb["inventory"]:
        assert set(row) == LNB_INVENTORY_FIELDS, row
        assert isinstance(row["in_stock"], int) and row["incoming_stock"] == 0 and row["is_blocked"] is False


# --------------------------------------------------------------------------------------------
# demo
# --------------------------------------------------------------------------------------------


def custom_ids(scenario: dict[str, Any]) -> set[tuple[str, str, str, str]]:
    return {(d["owner_type"], d["namespace"], d["key"], d["type"]) for d in scenario["metafield_definitions"]}


@pytest.mark.parametrize("spec", ["demo", "scale:10", str(EXAMPLE_PATH)], ids=["demo", "scale", "example"])
def test_shipped_scenarios_declare_the_references_as_custom_ids(spec: str) -> None:
    """customerByIdentifier / orderByIdentifier work only through a metafield definition of type id."""
    assert custom_ids(load_scenario(spec)) == CUSTOM_IDS


def test_demo_validates_and_is_deterministic() -> None:
    validate_scenario(demo())
    assert demo_scenario() == demo_scenario()
    assert load_scenario("demo") == demo()


def test_demo_is_a_small_fashion_brand() -> None:
    scenario = demo()
    assert scenario["shop"] == {
        "name": "Maison Demo", "domain": "maison-demo.myshopify.com", "currency": "EUR"}
    assert [(loc["name"], loc["active"]) for loc in scenario["locations"]] == [
        ("Paris Warehouse", True), ("Amsterdam Store", True), ("Old Depot", False)]
    products = scenario["products"]
    assert 90 <= len(products) <= 110
    assert all(2 <= len(product["variants"]) <= 8 for product in products)
    statuses = Counter(product["status"] for product in products)
    assert statuses["ACTIVE"] > 0.8 * len(products) and statuses["DRAFT"] and statuses["ARCHIVED"]
    assert all(re.fullmatch(r"\d+\.\d\d", variant["price"]) for variant in variants(scenario))
    customer_references, company_references = retailer_references(scenario)
    assert len(customer_references) >= 12 and len(company_references) >= 4
    for company in scenario["companies"]:
        assert company["locations"] and company["contacts"]
    lnb = scenario["lnb"]
    assert len(lnb["retailers"]) >= 12 and len(lnb["orders"]) >= 24
    assert len({order["reference"] for order in lnb["orders"]}) == len(lnb["orders"])
    order_statuses = Counter(order["status"] for order in lnb["orders"])
    assert set(order_statuses) == LNB_ORDER_STATUSES
    assert order_statuses["confirmed"] > len(lnb["orders"]) / 2
    assert Counter(order["currency"] for order in lnb["orders"]) == {"EUR": len(lnb["orders"]) - 1, "USD": 1}
    assert all(len(order["items"]) <= 6 for order in lnb["orders"])
    assert_lnb_shapes(scenario)


def test_demo_company_and_location_ids_are_unique_shop_wide() -> None:
    """They become gid://shopify/CompanyLocation/<id> and gid://shopify/CompanyContact/<id>."""
    companies = demo()["companies"]
    for part in ("locations", "contacts"):
        ids = [item["id"] for company in companies for item in company[part]]
        assert len(ids) == len(set(ids)), part


@cache
def _case_checks() -> dict[str, Callable[[Any], bool]]:
    """For each DEMO_CASES name: is the case true of this listed item (id, name, reference, code)?"""
    scenario = demo()
    variant_by_id = {variant["id"]: variant for variant in variants(scenario)}
    product_by_id = {product["id"]: product for product in scenario["products"]}
    retailer_by_name = {retailer["name"]: retailer for retailer in scenario["lnb"]["retailers"]}
    order_by_reference = {order["reference"]: order for order in scenario["lnb"]["orders"]}
    customer_by_id = {customer["id"]: customer for customer in scenario["customers"]}
    rows = scenario["lnb"]["inventory"]
    row_by_ean13 = {row["ean13"]: row for row in rows if row["ean13"]}
    all_variants = list(variant_by_id.values())
    barcode_counts = Counter(v["barcode"] for v in all_variants if not blank(v["barcode"]))
    sku_counts = Counter(v["sku"] for v in all_variants if not blank(v["sku"]))
    shopify_gtins = {gtin13(v["barcode"]) for v in all_variants} - {None}
    upc_barcodes = {v["barcode"] for v in all_variants if len(v["barcode"] or "") == 12}
    variant_by_gtin = {gtin13(v["barcode"]): v for v in all_variants}
    customer_references, company_references = retailer_references(scenario)
    inactive = inactive_location_keys(scenario)

    def variant(check: Callable[[dict[str, Any]], bool]) -> Callable[[Any], bool]:
        return lambda variant_id: check(variant_by_id[variant_id])

    def retailer(check: Callable[[str | None], bool]) -> Callable[[Any], bool]:
        return lambda name: check(retailer_by_name[name]["reference"])

    def confirmed_order(check: Callable[[dict[str, Any]], bool]) -> Callable[[Any], bool]:
        return lambda reference: (order_by_reference[reference]["status"] == "confirmed"
                                     and check(order_by_reference[reference]))

    def any_item(check: Callable[[dict[str, Any]], bool]) -> Callable[[Any], bool]:
        return confirmed_order(lambda order: any(check(item) for item in order["items"]))

    def unambiguous_stock(variant_: dict[str, Any]) -> bool:
        return (variant_["tracked"] and not (set(variant_["stock"]) & inactive)
                and all(level.get("available", 0) >= 0 for level in variant_["stock"].values()))

    def inventory_compared(equal: bool) -> Callable[[Any], bool]:
        def check(code: str) -> bool:
            variant_ = variant_by_gtin[code]
            return (unambiguous_stock(variant_) and barcode_counts[variant_["barcode"]] == 1
                    and (row_by_ean13[code]["in_stock"] == active_available(scenario, variant_)) == equal)
        return check

    def is_valid_item(item: dict[str, Any]) -> bool:
        code = item["ean13"]
        return item["quantity"] > 0 and gtin13(code) == code and barcode_counts[code] == 1

    def is_valid_order(order: dict[str, Any]) -> bool:
        return (order["currency"] == "EUR" and order["retailer_reference"] in customer_references
                and bool(order["items"]) and all(is_valid_item(item) for item in order["items"]))

    checks: dict[str, Callable[[Any], bool]] = {
        "product_draft": lambda product_id: product_by_id[product_id]["status"] == "DRAFT",
        "product_archived": lambda product_id: product_by_id[product_id]["status"] == "ARCHIVED",
        "variant_without_barcode": variant(lambda v: blank(v["barcode"]) and not blank(v["sku"])),
        "variant_without_sku": variant(lambda v: blank(v["sku"]) and gtin13(v["barcode"]) is not None),
        "variant_without_barcode_and_sku": variant(lambda v: blank(v["barcode"]) and blank(v["sku"])),
        "invalid_ean13": variant(
            lambda v: len(v["barcode"]) == 13 and v["barcode"].isdigit() and not ean.is_valid(v["barcode"])),
        "upc_barcode": variant(
            lambda v: len(v["barcode"]) == 12 and v["barcode"].isdigit() and ean.is_valid(v["barcode"])
            and ean.is_valid("0" + v["barcode"])),
        "barcode_with_whitespace": variant(
            lambda v: v["barcode"] != v["barcode"].strip()
            and len(v["barcode"].strip()) == 13 and ean.is_valid(v["barcode"].strip())),
        "duplicate_barcode": variant(lambda v: barcode_counts[v["barcode"]] >= 2),
        "duplicate_sku": variant(lambda v: sku_counts[v["sku"]] >= 2),
        "negative_available": variant(lambda v: any(level["available"] < 0 for level in v["stock"].values())),
        "untracked": variant(lambda v: v["tracked"] is False),
        "stock_at_inactive_location": variant(lambda v: bool(set(v["stock"]) & inactive)),
        "stock_at_several_locations": variant(lambda v: len(v["stock"]) >= 2),
        "retailer_matched_by_customer": retailer(lambda ref: ref in customer_references),
        "retailer_matched_by_company": retailer(lambda ref: ref in company_references),
        "retailer_matched_by_company_only": retailer(
            lambda ref: ref in company_references - customer_references),
        "retailer_without_reference": retailer(blank),
        "retailer_reference_unmatched": retailer(
            lambda ref: not blank(ref) and ref not in customer_references | company_references),
        "customer_without_retailer_reference": lambda customer_id: (
            RETAILER_REFERENCE_METAFIELD not in customer_by_id[customer_id]["metafields"]),
        "order_valid": confirmed_order(is_valid_order),
        "order_not_confirmed": lambda reference: order_by_reference[reference]["status"] != "confirmed",
        "order_retailer_company": confirmed_order(lambda o: o["retailer_reference"] in company_references),
        "order_retailer_company_only": confirmed_order(
            lambda o: o["retailer_reference"] in company_references - customer_references),
        "order_retailer_without_reference": confirmed_order(lambda o: blank(o["retailer_reference"])),
        "order_retailer_reference_unmatched": confirmed_order(
            lambda o: not blank(o["retailer_reference"])
            and o["retailer_reference"] not in customer_references | company_references),
        "order_without_items": confirmed_order(lambda o: o["items"] == []),
        "order_currency_usd": confirmed_order(lambda o: o["currency"] == "USD"),
        "order_line_without_code": any_item(lambda item: blank(item["ean13"]) and blank(item["sku"])),
        "order_line_sku_only": any_item(lambda item: blank(item["ean13"]) and sku_counts[item["sku"]] == 1),
        "order_line_unknown_code": any_item(
            lambda item: gtin13(item["ean13"]) is not None and item["ean13"] not in shopify_gtins
            and item["sku"] not in sku_counts),
        "order_line_duplicate_barcode": any_item(lambda item: barcode_counts[item["ean13"]] >= 2),
        "order_line_upc_barcode": any_item(
            lambda item: (item["ean13"] or "").startswith("0") and item["ean13"][1:] in upc_barcodes),
        "order_line_quantity_zero": any_item(lambda item: item["quantity"] == 0),
        "variant_missing_from_lnb_inventory": variant(
            lambda v: gtin13(v["barcode"]) == v["barcode"] and barcode_counts[v["barcode"]] == 1
            and v["barcode"] not in row_by_ean13),
        "inventory_equal_to_shopify": inventory_compared(equal=True),
        "inventory_different_from_shopify": inventory_compared(equal=False),
        "inventory_upc_row": lambda code: (
            code in row_by_ean13 and code[0] == "0" and code[1:] in upc_barcodes),
        "inventory_row_without_ean13": lambda sku: (
            sku in sku_counts and any(blank(row["ean13"]) and row["sku"] == sku for row in rows)),
        "inventory_lnb_only": lambda code: (
            code in row_by_ean13 and ean.is_valid(code) and code not in shopify_gtins),
    }
    for name in ("committed", "reserved", "damaged", "safety_stock", "quality_control", "incoming"):
        checks[f"nonzero_{name}"] = variant(
            lambda v, name=name: any(level.get(name, 0) for level in v["stock"].values()))
    return checks


def test_every_demo_case_has_a_check_and_every_check_a_case() -> None:
    assert set(DEMO_CASES) == set(_case_checks())


@pytest.mark.parametrize("case", sorted(DEMO_CASES))
def test_demo_case_is_true_of_the_data(case: str) -> None:
    listed = DEMO_CASES[case]
    assert listed, f"{case} lists nothing"
    check = _case_checks()[case]
    wrong = [item for item in listed if not check(item)]
    assert not wrong, f"{case} is not true of {wrong}"


@pytest.mark.parametrize("case", [
    "variant_without_barcode", "variant_without_sku", "invalid_ean13", "upc_barcode",
    "barcode_with_whitespace", "duplicate_barcode", "duplicate_sku", "negative_available", "untracked",
    "stock_at_inactive_location", "retailer_without_reference", "retailer_reference_unmatched",
])
def test_demo_has_several_of_each_business_rule_case(case: str) -> None:
    assert len(DEMO_CASES[case]) >= 2


def test_demo_inventory_covers_most_shopify_ean13s() -> None:
    scenario = demo()
    shopify_gtins = {gtin13(variant["barcode"]) for variant in variants(scenario)} - {None}
    lnb_ean13s = {row["ean13"] for row in scenario["lnb"]["inventory"] if row["ean13"]}
    assert len(shopify_gtins & lnb_ean13s) >= 0.9 * len(shopify_gtins)
    assert shopify_gtins - lnb_ean13s and lnb_ean13s - shopify_gtins
    assert all(ean.is_valid(code) and len(code) == 13 for code in lnb_ean13s)


# --------------------------------------------------------------------------------------------
# scale:N
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [1, 7, 8, 9, 12_345])
def test_scale_has_exactly_n_variants_in_products_of_eight(count: int) -> None:
    scenario = scale_scenario(count)
    validate_scenario(scenario)
    assert len(variants(scenario)) == count
    sizes = [len(product["variants"]) for product in scenario["products"]]
    assert all(size == 8 for size in sizes[:-1]) and 1 <= sizes[-1] <= 8
    assert [location["active"] for location in scenario["locations"]] == [True, True, True]
    location_keys = {str(location["id"]) for location in scenario["locations"]}
    assert all(set(variant["stock"]) == location_keys for variant in variants(scenario))


def test_scale_is_deterministic() -> None:
    assert scale_scenario(3_000) == scale_scenario(3_000)


@pytest.mark.parametrize("count", [12_345, 100_000])
def test_scale_barcodes_and_skus_are_unique_but_for_the_deliberate_anomalies(count: int) -> None:
    scenario = scale_scenario(count)
    anomalies = scale_anomalies(count)
    anomaly_count = sum(len(ids) for ids in anomalies.values())
    assert 0.004 * count <= anomaly_count <= 0.006 * count
    assert all(anomalies.values())
    all_variants = variants(scenario)
    barcodes = [variant["barcode"] for variant in all_variants]
    skus = [variant["sku"] for variant in all_variants]
    assert barcodes.count(None) == len(anomalies["missing_barcode"])
    assert sum(1 for code in barcodes if code and not ean.is_valid(code)) == len(anomalies["invalid_ean13"])
    barcode_counts = Counter(code for code in barcodes if code)
    assert sum(1 for n in barcode_counts.values() if n > 1) == len(anomalies["duplicate_barcode"])
    assert max(barcode_counts.values()) == 2
    assert skus.count(None) == len(anomalies["missing_sku"])
    sku_counts = Counter(sku for sku in skus if sku)
    assert sum(1 for n in sku_counts.values() if n > 1) == len(anomalies["duplicate_sku"])
    negative = [v["id"] for v in all_variants if any(level["available"] < 0 for level in v["stock"].values())]
    assert negative == anomalies["negative_available"]
    assert [v["id"] for v in all_variants if not v["tracked"]] == anomalies["untracked"]


def test_scale_parties_orders_and_inventory_are_proportionate() -> None:
    count = 12_345
    scenario = scale_scenario(count)
    lnb = scenario["lnb"]
    customer_references, _ = retailer_references(scenario)
    assert len(scenario["customers"]) == len(lnb["retailers"]) == 12
    assert {retailer["reference"] for retailer in lnb["retailers"]} == customer_references
    assert len(lnb["orders"]) == count // 100
    assert all(len(order["items"]) == 5 for order in lnb["orders"])
    assert sum(order["status"] == "confirmed" for order in lnb["orders"]) > 0.8 * len(lnb["orders"])
    barcode_counts = Counter(variant["barcode"] for variant in variants(scenario))
    assert all(barcode_counts[item["ean13"]] == 1 and ean.is_valid(item["ean13"])
               for order in lnb["orders"] for item in order["items"])
    valid_unique = {code for code, n in barcode_counts.items() if n == 1 and code and ean.is_valid(code)}
    inventory_codes = {row["ean13"] for row in lnb["inventory"]}
    assert inventory_codes <= valid_unique | {code for code, n in barcode_counts.items() if n > 1}
    assert 0.98 <= len(inventory_codes & valid_unique) / len(valid_unique) < 1
    assert_lnb_shapes(scenario)


def test_small_scale_still_has_minimum_parties_and_orders() -> None:
    scenario = scale_scenario(10)
    assert len(scenario["customers"]) == len(scenario["lnb"]["retailers"]) == 10
    assert len(scenario["lnb"]["orders"]) == 20


# --------------------------------------------------------------------------------------------
# load_scenario
# --------------------------------------------------------------------------------------------


def test_example_file_loads_and_documents_the_format() -> None:
    scenario = load_scenario(str(EXAMPLE_PATH))
    assert len(scenario["locations"]) == 2 and len(scenario["products"]) == 3
    assert len(variants(scenario)) == 6
    assert len(scenario["customers"]) == 2 and len(scenario["companies"]) == 1
    assert len(scenario["lnb"]["retailers"]) == 2 and len(scenario["lnb"]["orders"]) == 2
    assert scenario["lnb"]["inventory"]
    barcodes = [variant["barcode"] for variant in variants(scenario)]
    assert all(barcode is None or ean.is_valid(barcode) for barcode in barcodes)
    assert_lnb_shapes(scenario)


def test_load_scale_spec() -> None:
    assert len(variants(load_scenario("scale:50"))) == 50


@pytest.mark.parametrize(("spec", "message"), [
    ("scale:abc", "whole number"),
    ("scale:0", "at least one variant"),
    ("scale:-3", "at least one variant"),
])
def test_bad_scale_spec_is_refused(spec: str, message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        load_scenario(spec)


def test_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="neither demo, scale:N nor an existing file"):
        load_scenario(str(tmp_path / "absent.json"))


def test_file_that_is_not_json_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"locations": [', encoding="utf-8")
    with pytest.raises(ScenarioError, match="not valid JSON"):
        load_scenario(str(path))


def _broken_example(tmp_path: Path, spoil: Callable[[dict[str, Any]], None]) -> str:
    scenario = json.loads(EXAMPLE_PATH.read_text(encoding="utf-8"))
    spoil(scenario)
    path = tmp_path / "spoiled.json"
    path.write_text(json.dumps(scenario), encoding="utf-8")
    return str(path)


def _stock_at_unknown_location(scenario: dict[str, Any]) -> None:
    scenario["products"][0]["variants"][0]["stock"]["9"] = {"available": 1}


def _duplicate_variant_id(scenario: dict[str, Any]) -> None:
    scenario["products"][1]["variants"][0]["id"] = scenario["products"][1]["variants"][1]["id"]


def _variant_id_reused_across_products(scenario: dict[str, Any]) -> None:
    scenario["products"][2]["variants"][0]["id"] = scenario["products"][0]["variants"][0]["id"]


def _duplicate_lnb_order_reference(scenario: dict[str, Any]) -> None:
    scenario["lnb"]["orders"][1]["reference"] = scenario["lnb"]["orders"][0]["reference"]


def _contact_of_unknown_customer(scenario: dict[str, Any]) -> None:
    scenario["companies"][0]["contacts"][0]["customer_id"] = 99


def _on_hand_given(scenario: dict[str, Any]) -> None:
    scenario["products"][0]["variants"][0]["stock"]["1"]["on_hand"] = 14


def _definition_for_products(scenario: dict[str, Any]) -> None:
    scenario["metafield_definitions"][0]["owner_type"] = "PRODUCT"


def _definition_namespace_too_short(scenario: dict[str, Any]) -> None:
    scenario["metafield_definitions"][0]["namespace"] = "ln"


def _definition_of_unknown_type(scenario: dict[str, Any]) -> None:
    scenario["metafield_definitions"][0]["type"] = "colour"


def _definition_twice(scenario: dict[str, Any]) -> None:
    scenario["metafield_definitions"].append(dict(scenario["metafield_definitions"][1], name="again"))


def _customer_metafield_without_namespace(scenario: dict[str, Any]) -> None:
    scenario["customers"][0]["metafields"] = {"retailer_reference": "R001"}


def _orders_sharing_a_custom_id(scenario: dict[str, Any]) -> None:
    scenario["orders"] = [{"id": n, "metafields": {"lenewblack.order_reference": "LNB-1"}} for n in (1, 2)]


def _order_in_a_currency_not_enabled(scenario: dict[str, Any]) -> None:
    scenario["orders"] = [{"id": 1, "currency": "USD", "line_items": [{"variant_id": 11, "presentment_price": "9.00"}]}]


def _foreign_order_line_without_presentment_price(scenario: dict[str, Any]) -> None:
    scenario["shop"]["currencies"] = ["USD"]
    scenario["orders"] = [{"id": 1, "currency": "USD", "line_items": [{"variant_id": 11, "price": "9.00"}]}]


def _impossible_timestamp(scenario: dict[str, Any]) -> None:
    scenario["products"][0]["updated_at"] = "2026-13-45T00:00:00Z"


def _timestamp_without_zone(scenario: dict[str, Any]) -> None:
    scenario["customers"][0]["created_at"] = "2026-01-05 10:00:00"


def _price_as_a_number(scenario: dict[str, Any]) -> None:
    scenario["products"][0]["variants"][0]["price"] = 59.0


def _development_as_text(scenario: dict[str, Any]) -> None:
    scenario["shop"]["development"] = "yes"


def _currency_not_an_iso_code(scenario: dict[str, Any]) -> None:
    scenario["shop"]["currencies"] = ["euro"]


def _scopes_as_text(scenario: dict[str, Any]) -> None:
    scenario["shop"]["scopes"] = "read_orders,write_orders"


@pytest.mark.parametrize(("spoil", "message"), [
    (_stock_at_unknown_location, r"products\[0\]\.variants\[0\]\.stock: unknown location '9'"),
    (_duplicate_variant_id, r"products\[1\]\.variants\[1\]: duplicate id 22"),
    (_variant_id_reused_across_products, r"products\[2\]\.variants: variant ids must be unique"),
    (_duplicate_lnb_order_reference, r"lnb\.orders: order references must be unique"),
    (_contact_of_unknown_customer, r"customer_id 99 is not a customer"),
    (_on_hand_given, r"unknown quantity 'on_hand'"),
    (_definition_for_products, r"metafield_definitions\[0\]: owner_type must be one of"),
    (_definition_namespace_too_short, r"metafield_definitions\[0\]: namespace must be 3-255"),
    (_definition_of_unknown_type, r"metafield_definitions\[0\]: type must be one of"),
    (_definition_twice, r"metafield_definitions\[2\]: ORDER lenewblack.order_reference is defined twice"),
    (_customer_metafield_without_namespace, r"customers\[0\]\.metafields: 'retailer_reference' is not"),
    (_orders_sharing_a_custom_id, r"orders\[1\]\.metafields: lenewblack.order_reference='LNB-1' is already"),
    (_order_in_a_currency_not_enabled, r"orders\[0\]: currency 'USD' is not one the shop has enabled"),
    (_foreign_order_line_without_presentment_price, r"orders\[0\]\.line_items\[0\]: needs presentment_price"),
    (_impossible_timestamp, r"products\[0\]\.updated_at: '2026-13-45T00:00:00Z' is not a real date and time"),
    (_timestamp_without_zone, r"customers\[0\]\.created_at: .* is not an ISO-8601 date and time with a zone"),
    (_price_as_a_number, r"products\[0\]\.variants\[0\]\.price: must be a decimal number in a string"),
    (_development_as_text, r"shop\.development: must be true or false"),
    (_scopes_as_text, r"shop\.scopes: must be a list"),
    (_currency_not_an_iso_code, r"shop: currency and currencies must be ISO 4217 codes"),
])
def test_badly_structured_file_is_refused(
    tmp_path: Path, spoil: Callable[[dict[str, Any]], None], message: str,
) -> None:
    with pytest.raises(ScenarioError, match=message):
        load_scenario(_broken_example(tmp_path, spoil))


def _statuses_as_text(scenario: dict[str, Any]) -> None:
    scenario["lnb"]["order_statuses"] = "confirmed,invoicing"


def test_lnb_order_statuses_must_be_a_list_of_codes(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"lnb\.order_statuses: must be a non-empty list of status codes"):
        load_scenario(_broken_example(tmp_path, _statuses_as_text))


# --------------------------------------------------------------------------------------------
# readiness switches: spec+switch
# --------------------------------------------------------------------------------------------


def _without(scenario: dict[str, Any], *paths: tuple[str, ...]) -> dict[str, Any]:
    """``scenario`` as JSON text-equal data with the given top-level keys (or ``(key, subkey)``) dropped."""
    copy = json.loads(json.dumps(scenario))
    for path in paths:
        target = copy
        for key in path[:-1]:
            target = target[key]
        target.pop(path[-1], None)
    return copy


def test_scopes_missing_takes_the_export_scope_and_read_all_orders_away() -> None:
    switched = load_scenario("demo+scopes_missing")
    assert switched["shop"]["scopes"] == [scope for scope in DEFAULT_SCOPES
                                          if scope not in ("write_orders", "read_all_orders")]
    assert _without(switched, ("shop", "scopes")) == _without(demo(), ("shop", "scopes"))


def test_definitions_missing_removes_both_custom_ids_and_grants_the_setup_scope() -> None:
    switched = load_scenario("demo+definitions_missing")
    assert switched["metafield_definitions"] == []
    assert switched["shop"]["scopes"] == [*DEFAULT_SCOPES, "write_customers"]
    assert _without(switched, ("metafield_definitions",), ("shop", "scopes")) == _without(
        demo(), ("metafield_definitions",), ("shop", "scopes"))


def test_development_store_switch() -> None:
    switched = load_scenario("demo+development_store")
    assert switched["shop"]["development"] is True
    assert _without(switched, ("shop", "development")) == _without(demo(), ("shop", "development"))


def test_retailers_unmatched_takes_every_reference_off_shopify() -> None:
    switched = load_scenario("demo+retailers_unmatched")
    assert retailer_references(switched) == (set(), set())
    assert retailer_references(demo()) != (set(), set())
    assert switched["lnb"] == demo()["lnb"] and switched["products"] == demo()["products"]


def test_low_barcode_coverage_blanks_two_barcodes_in_five() -> None:
    switched, original = variants(load_scenario("demo+low_barcode_coverage")), variants(demo())
    blanked = [index for index, variant in enumerate(switched) if variant["barcode"] is None
               and original[index]["barcode"] is not None]
    assert blanked == [index for index in range(len(original)) if index % 5 in (0, 2)
                       and original[index]["barcode"] is not None]
    assert all(variant["barcode"] == original[index]["barcode"] for index, variant in enumerate(switched)
               if index % 5 not in (0, 2))
    assert len(blanked) / len(original) > 0.38


def test_lnb_statuses_differ_renames_invoicing_in_the_api_and_the_data() -> None:
    switched = load_scenario("demo+lnb_statuses_differ")
    assert switched["lnb"]["order_statuses"] == [
        "draft", "open_for_buyer", "open_for_brand", "confirmed", "invoiced", "closed", "canceled"]
    statuses = Counter(order["status"] for order in switched["lnb"]["orders"])
    before = Counter(order["status"] for order in demo()["lnb"]["orders"])
    assert statuses["invoicing"] == 0 and statuses["invoiced"] == before["invoicing"] > 0


def test_switches_combine_and_apply_to_scale_and_files() -> None:
    switched = load_scenario("scale:20+development_store+low_barcode_coverage")
    assert switched["shop"]["development"] is True
    assert sum(variant["barcode"] is None for variant in variants(switched)) == 8
    assert load_scenario(f"{EXAMPLE_PATH}+scopes_missing")["shop"]["scopes"] == [
        "read_products", "read_inventory", "read_locations", "read_customers"]


def test_an_unknown_switch_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(ScenarioError, match=r"'demo\+scope_missing': unknown switch\(es\) 'scope_missing'; "
                                            r"switches: scopes_missing, definitions_missing"):
        load_scenario("demo+scope_missing")


def test_scale_takes_a_retailer_count() -> None:
    scenario = scale_scenario(50, retailers=7)
    assert len(scenario["customers"]) == len(scenario["lnb"]["retailers"]) == 7
    assert {order["retailer_reference"] for order in scenario["lnb"]["orders"]} <= {
        retailer["reference"] for retailer in scenario["lnb"]["retailers"]}
