"""Test orders end to end: real runs of the `test_orders_export` job (and of `orders_export` after it)
against the sandbox over HTTP.

What counts is read back as any API client would: the orders Shopify holds (every order listed without
a search, so the index lag cannot hide one), with their ``test`` flag, tags and mapping; each order's
status in LNB; the stock Shopify keeps; and how many calls reached each server.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import pytest
import requests
from conftest import reset_sandbox
from helpers import (
    asset_metadata,
    check_evaluation,
    check_metadata,
    lnb_get,
    shopify_data,
)

from lnb_pipeline.definitions import defs
from lnb_pipeline.rules.orders import (
    Buyer,
    OrderSettings,
    as_test_order,
    key_for_test_order,
    options_for_test_order,
    order_create_input,
)
from lnb_pipeline.sandbox import Sandbox

TEST_TAG = "lnb-test-order"
METAFIELD = "lenewblack.retailer_reference"
EAN_1, EAN_2, EAN_UNKNOWN = "3760000000017", "3760000000024", "3760000000048"
CLAIRE = "gid://shopify/Customer/1"
ADMIN_PATHS = {"Order": "orders", "Customer": "customers"}
ADDRESS = {"reference": "ADR-1", "company": "Boutique Lumière", "country": "FR", "contact_name": "Claire Martin",
           "contact_email": "claire@boutique-lumiere.example", "tel": "+33 142000001",
           "address_1": "12 rue de Bretagne", "address_2": None, "zipcode": "75003", "city": "Paris",
           "vat_number": None}
ID_DEFINITIONS = [
    {"owner_type": "CUSTOMER", "namespace": "lenewblack", "key": "retailer_reference", "type": "id",
     "name": "LNB retailer reference"},
    {"owner_type": "ORDER", "namespace": "lenewblack", "key": "order_reference", "type": "id",
     "name": "LNB order reference"},
]
ORDERS_QUERY = """
query Orders($after: String) {
  orders(first: 15, after: $after) {
    pageInfo { hasNextPage endCursor }
    nodes {
      id name test sourceIdentifier sourceName poNumber note tags email currencyCode presentmentCurrencyCode
      displayFinancialStatus processedAt metafield(namespace: "lenewblack", key: "order_reference") { value }
      customer { id }
      shippingAddress { address1 address2 city company countryCodeV2 firstName lastName phone zip }
      billingAddress { address1 address2 city company countryCodeV2 firstName lastName phone zip }
      lineItems(first: 10) {
        nodes { quantity variant { id } originalUnitPriceSet { shopMoney { amount currencyCode } } }
      }
    }
  }
}
"""
STOCK_QUERY = """
query Stock($id: ID!) {
  inventoryItem(id: $id) {
    inventoryLevel(locationId: "gid://shopify/Location/1") { quantities(names: ["available", "committed"]) {
      name quantity } }
  }
}
"""
MAPPING = ("sourceName", "poNumber", "note", "email", "currencyCode", "presentmentCurrencyCode",
           "displayFinancialStatus", "processedAt", "customer", "shippingAddress", "billingAddress", "lineItems")
"""What the brand checks on a test order: all of it must be what the real export creates."""


# --- scenario -----------------------------------------------------------------------------------

def _lnb_order(reference: str, **fields: Any) -> dict[str, Any]:
    """A confirmed order of Boutique Lumière (R001, Claire's customer): two blue M shirts and a blue L."""
    created = "2026-01-02T09:00:00Z"
    return {
        "reference": reference, "create_time": created, "update_time": created, "confirmation_time": created,
        "status": "confirmed", "purchase_order_reference": f"PO-{reference}",
        "retailer_reference": "R001", "retailer_name": "Boutique Lumière",
        "buyer_email": "claire@boutique-lumiere.example", "currency": "EUR",
        "comment": "Livraison le matin uniquement.", "billing_address": ADDRESS, "delivery_address": ADDRESS,
        "items": [{"reference": "TS", "name": "Test Shirt", "quantity": 2, "unit_price": 26.82, "ean13": EAN_1,
                   "sku": "TS-BLU-M"},
                  {"reference": "TS", "name": "Test Shirt", "quantity": 1, "unit_price": 27.5, "ean13": None,
                   "sku": "TS-BLU-L"}],
        **fields,
    }


def _load(sandbox: Sandbox, lnb_orders: list[dict[str, Any]], *, order_custom_id: bool = True,
          shopify_orders: list[dict[str, Any]] | None = None) -> None:
    """Two shirts with 20 units each at the Paris warehouse; Claire, the customer of R001; LNB holding
    ``lnb_orders``. Without ``order_custom_id`` the shop lacks the order custom id (search fallback)."""
    reset_sandbox(sandbox, {
        "shop": {"name": "Test Orders", "domain": "test-orders.myshopify.com", "currency": "EUR"},
        "metafield_definitions": ID_DEFINITIONS if order_custom_id else ID_DEFINITIONS[:1],
        "locations": [{"id": 1, "name": "Paris Warehouse", "active": True}],
        "products": [{"id": 1, "title": "Test Shirt", "status": "ACTIVE", "variants": [
            {"id": 11, "title": "Blue M", "sku": "TS-BLU-M", "barcode": EAN_1, "price": "59.00",
             "stock": {"1": {"available": 20}}},
            {"id": 12, "title": "Blue L", "sku": "TS-BLU-L", "barcode": EAN_2, "price": "59.00",
             "stock": {"1": {"available": 20}}},
        ]}],
        "customers": [{"id": 1, "email": "claire@boutique-lumiere.example", "first_name": "Claire",
                       "last_name": "Martin", "metafields": {METAFIELD: "R001"}}],
        "orders": shopify_orders or [],
        "lnb": {"orders": lnb_orders},
    })


def _search_index_caught_up(sandbox: Sandbox) -> None:
    """Shopify's search sees every order at once: the search fallback then finds whatever carries a
    reference, so a test order carrying one would be found, and a test of it could fail."""
    requests.post(f"{sandbox.shopify.url}/_sandbox/config", json={"order_search_lag_seconds": 0},
                  timeout=10).raise_for_status()


@pytest.fixture
def environment(sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The deployed jobs' settings: task logs under the test's directory, no wait before a look-up."""
    monkeypatch.setenv("LNB_TASK_LOG_DIR", str(tmp_path))
    monkeypatch.setenv("SHOPIFY_ORDER_LOOKUP_WAIT_SECONDS", "0")
    return tmp_path


# --- running the jobs ---------------------------------------------------------------------------

def _test_orders(references: list[str] | None) -> dg.ExecuteInProcessResult:
    """One run of `test_orders_export` as the launchpad starts it, with ``references`` in its run config."""
    config = None if references is None else {"ops": {"shopify_test_orders": {"config": {"references": references}}}}
    return defs().resolve_job_def("test_orders_export").execute_in_process(
        run_config=config, instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)


def _real_export() -> dg.ExecuteInProcessResult:
    """One run of `orders_export`, the real export, as its schedule starts it."""
    return defs().resolve_job_def("orders_export").execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)


# --- reading results ----------------------------------------------------------------------------

def _shopify_orders(sandbox: Sandbox) -> list[dict[str, Any]]:
    """Every order Shopify holds, page by page, without a search."""
    found, after = [], None
    while True:
        page = shopify_data(sandbox, ORDERS_QUERY, {"after": after})["orders"]
        found += page["nodes"]
        if not page["pageInfo"]["hasNextPage"]:
            return found
        after = page["pageInfo"]["endCursor"]


def _test_and_real(sandbox: Sandbox) -> tuple[dict[str, list[dict[str, Any]]], dict[str, list[dict[str, Any]]]]:
    """Shopify's test orders and real orders, each under the LNB reference their key starts with."""
    tests: dict[str, list[dict[str, Any]]] = {}
    real: dict[str, list[dict[str, Any]]] = {}
    for order in _shopify_orders(sandbox):
        reference = order["sourceIdentifier"].split(" test ")[0]
        (tests if order["test"] else real).setdefault(reference, []).append(order)
    return tests, real


def _lnb_statuses(references: list[str], sandbox: Sandbox) -> dict[str, str]:
    return {reference: lnb_get(sandbox, f"/orders/{reference}")["status"] for reference in references}


def _stats(url: str) -> dict[str, Any]:
    return requests.get(f"{url}/_sandbox/stats", timeout=10).json()


def _creates(sandbox: Sandbox) -> int:
    return _stats(sandbox.shopify.url)["requests"].get("orderCreate", 0)


def _stock(sandbox: Sandbox, variant_id: int) -> dict[str, int]:
    level = shopify_data(sandbox, STOCK_QUERY, {"id": f"gid://shopify/InventoryItem/{variant_id}"})["inventoryItem"]
    return {q["name"]: q["quantity"] for q in level["inventoryLevel"]["quantities"]}


def _table(result: dg.ExecuteInProcessResult, name: str = "test_orders") -> list[dict[str, Any]]:
    return [record.data for record in asset_metadata(result, "shopify_test_orders")[name].records]


def _admin(sandbox: Sandbox, gid: str) -> str:
    """The sandbox shop's admin page of an order or customer, as Shopify's admin addresses it."""
    kind, number = gid.split("/")[-2:]
    return f"{sandbox.shopify_url}/admin/{ADMIN_PATHS[kind]}/{number}"


def _row(sandbox: Sandbox, reference: str, outcome: str, order: dict[str, Any] | None = None,
         detail: str | None = None) -> dict[str, Any]:
    """A ``test_orders`` row of a Boutique Lumière order in LNB status confirmed."""
    return {"order_reference": reference, "retailer": "Boutique Lumière", "lnb_status": "confirmed",
            "outcome": outcome, "shopify_order": order["name"] if order else None,
            "shopify_order_link": _admin(sandbox, order["id"]) if order else None,
            "shopify_customer": _admin(sandbox, CLAIRE), "detail": detail}


def _mapping(order: dict[str, Any]) -> dict[str, Any]:
    return {field: order[field] for field in MAPPING}


# --- the rules, without Dagster ------------------------------------------------------------------

def test_a_test_order_differs_from_the_real_one_only_where_exactly_once_looks() -> None:
    settings = OrderSettings()
    real = order_create_input(_lnb_order("LNB-0001"), Buyer("R001", CLAIRE, None, None),
                              [("gid://shopify/ProductVariant/11", 2, "26.82")], settings, shop_currency="EUR",
                              processed_at="2026-01-02T09:00:00Z", custom_id=False)
    key = key_for_test_order(real)
    by_custom_id, by_search = (as_test_order(real, settings, custom_id=custom_id) for custom_id in (True, False))

    assert key.startswith("LNB-0001 test ") and len(key) == len("LNB-0001 test ") + 8
    assert by_custom_id == {**real, "test": True, "sourceIdentifier": key, "tags": [*real["tags"], TEST_TAG],
                            "metafields": [{"namespace": "lenewblack", "key": "order_reference", "type": "id",
                                            "value": key}]}
    assert by_search == {name: value for name, value in by_custom_id.items() if name != "metafields"}
    assert key_for_test_order({**real, "processedAt": "2026-11-30T18:00:00Z"}) == key
    assert len({key, key_for_test_order({**real, "note": "Livraison l'après-midi."}),
                key_for_test_order({**real, "financialStatus": "PAID"}),
                key_for_test_order({**real, "sourceIdentifier": "LNB-0002"})}) == 4
    assert options_for_test_order(settings) == {"inventoryBehaviour": "BYPASS", "sendReceipt": False,
                                                "sendFulfillmentReceipt": False}


# --- the jobs -----------------------------------------------------------------------------------

@pytest.mark.parametrize("custom_id", [True, False], ids=["custom-id", "search-fallback"])
def test_test_orders_show_the_real_mapping_and_the_real_export_still_creates_each_order_once(
        sandbox: Sandbox, environment: Path, custom_id: bool) -> None:
    """The brand checks test orders in its Shopify admin: each must be what the real export will create,
    marked as a test, with LNB and the stock left as they were. The real export afterwards neither finds
    nor counts them: it creates exactly one real order per reference, and its uniqueness check passes."""
    _load(sandbox, [_lnb_order("LNB-0001"), _lnb_order("LNB-0002", comment=None)], order_custom_id=custom_id)
    _search_index_caught_up(sandbox)

    result = _test_orders(["LNB-0001", "LNB-0002"])

    assert result.success
    tests, real = _test_and_real(sandbox)
    assert real == {}
    assert {ref: [order["name"] for order in orders] for ref, orders in tests.items()} == {
        "LNB-0001": ["#1001"], "LNB-0002": ["#1002"]}
    for reference, [order] in tests.items():
        assert TEST_TAG in order["tags"]
        assert order["sourceIdentifier"].startswith(f"{reference} test ")
        assert order["metafield"] == ({"value": order["sourceIdentifier"]} if custom_id else None)
        assert (order["poNumber"], order["customer"], order["note"]) == (
            f"PO-{reference}", {"id": CLAIRE}, "Livraison le matin uniquement." if reference == "LNB-0001" else None)
        assert [(line["variant"]["id"], line["quantity"], Decimal(line["originalUnitPriceSet"]["shopMoney"]["amount"]))
                for line in order["lineItems"]["nodes"]] == [
            ("gid://shopify/ProductVariant/11", 2, Decimal("26.82")), ("gid://shopify/ProductVariant/12", 1,
                                                                       Decimal("27.5"))]
        assert (order["shippingAddress"]["address1"], order["shippingAddress"]["lastName"]) == (
            "12 rue de Bretagne", "Martin")
    assert _lnb_statuses(["LNB-0001", "LNB-0002"], sandbox) == {"LNB-0001": "confirmed", "LNB-0002": "confirmed"}
    assert _stock(sandbox, 11) == {"available": 20, "committed": 0}
    assert _table(result) == [_row(sandbox, "LNB-0001", "test order created", tests["LNB-0001"][0]),
                              _row(sandbox, "LNB-0002", "test order created", tests["LNB-0002"][0])]
    assert check_evaluation(result, "every_listed_order_is_a_test_order").passed

    export = _real_export()

    assert export.success
    tests_after, real = _test_and_real(sandbox)
    assert tests_after == tests
    assert {ref: [order["name"] for order in orders] for ref, orders in real.items()} == {
        "LNB-0001": ["#1003"], "LNB-0002": ["#1004"]}
    for reference, [real_order] in real.items():
        [test_order] = tests[reference]
        assert real_order["sourceIdentifier"] == reference
        assert _mapping(test_order) == _mapping(real_order)
        assert sorted([*real_order["tags"], TEST_TAG]) == test_order["tags"]
    assert check_evaluation(export, "every_exported_order_unique_in_shopify").passed
    assert check_metadata(export, "every_exported_order_unique_in_shopify")["orders_checked"] == 2
    assert _lnb_statuses(["LNB-0001", "LNB-0002"], sandbox) == {"LNB-0001": "invoicing", "LNB-0002": "invoicing"}
    assert _stock(sandbox, 11) == {"available": 16, "committed": 4}


def test_the_task_log_names_the_shopify_test_order_of_each_lnb_order(sandbox: Sandbox, environment: Path) -> None:
    _load(sandbox, [_lnb_order("LNB-0001"), _lnb_order("LNB-0002", items=[
        {"reference": "TS", "name": "Test Shirt", "quantity": 1, "unit_price": 26.82, "ean13": EAN_UNKNOWN,
         "sku": None}])])

    result = _test_orders(["LNB-0001", "LNB-0002"])

    assert result.success
    metadata = asset_metadata(result, "shopify_test_orders")
    assert metadata["task_log"] == str(environment / result.run_id / "shopify_test_orders.csv")
    log = pl.read_csv(metadata["task_log"], infer_schema=False)
    [order] = _test_and_real(sandbox)[0]["LNB-0001"]
    assert log.rows() == [
        ("LNB-0001", "Boutique Lumière", "confirmed", None, "test order created", "#1001", _admin(sandbox, order["id"]),
         None),
        ("LNB-0002", "Boutique Lumière", "confirmed", None, "blocked", None, None,
         f"line 1: no Shopify variant for EAN13 {EAN_UNKNOWN}"),
        ("LNB-0002", "Boutique Lumière", "confirmed", "1", "line blocked", None, None,
         f"no Shopify variant for EAN13 {EAN_UNKNOWN}"),
    ]


def test_blocked_and_unknown_orders_are_not_sent_and_are_listed_with_their_reasons(
        sandbox: Sandbox, environment: Path) -> None:
    """The rules of the real export apply: a blocked order is not sent as a test order either, and an
    order LNB does not know is named; the others go, and the check says which ones did not."""
    _load(sandbox, [_lnb_order("LNB-0001"), _lnb_order("LNB-0002", retailer_reference="R404"),
                    _lnb_order("LNB-0003", status="invoicing")])

    result = _test_orders(["LNB-0002", "LNB-9999", "LNB-0003", "LNB-0001"])

    assert result.success
    tests, real = _test_and_real(sandbox)
    assert ({ref: [o["name"] for o in orders] for ref, orders in tests.items()}, real) == (
        {"LNB-0003": ["#1001"], "LNB-0001": ["#1002"]}, {})
    assert _creates(sandbox) == 2
    reason = "no Shopify customer with lenewblack.retailer_reference = R404"
    assert _table(result) == [
        _row(sandbox, "LNB-0001", "test order created", tests["LNB-0001"][0]),
        {**_row(sandbox, "LNB-0002", "blocked", detail=reason), "shopify_customer": None},
        {**_row(sandbox, "LNB-0003", "test order created", tests["LNB-0003"][0]), "lnb_status": "invoicing"},
        {"order_reference": "LNB-9999", "retailer": None, "lnb_status": None, "outcome": "not in LNB",
         "shopify_order": None, "shopify_order_link": None, "shopify_customer": None,
         "detail": "no such order in LNB: check the reference"},
    ]
    assert _table(result, "blocked_orders") == [
        {"order_reference": "LNB-0002", "retailer": "Boutique Lumière", "retailer_reference": "R404",
         "reasons": reason, "shopify_customer": None}]
    metadata = asset_metadata(result, "shopify_test_orders")
    assert {name: metadata[name] for name in ("orders_listed", "test_orders_created", "test_orders_found_again",
                                              "orders_blocked", "orders_not_in_lnb", "orders_not_sent")} == {
        "orders_listed": 4, "test_orders_created": 2, "test_orders_found_again": 0, "orders_blocked": 1,
        "orders_not_in_lnb": 1, "orders_not_sent": 2}
    evaluation = check_evaluation(result, "every_listed_order_is_a_test_order")
    assert (evaluation.passed, evaluation.severity, evaluation.description) == (
        False, dg.AssetCheckSeverity.ERROR,
        "2 listed orders not in Shopify as a test order: Boutique Lumière (LNB-0002), no retailer (LNB-9999).")
    assert _lnb_statuses(["LNB-0001", "LNB-0002", "LNB-0003"], sandbox) == {
        "LNB-0001": "confirmed", "LNB-0002": "confirmed", "LNB-0003": "invoicing"}


@pytest.mark.parametrize("references", [None, [], ["  ", ""]], ids=["no-config", "empty", "blank"])
def test_a_run_without_references_fails_clearly_before_any_call(
        sandbox: Sandbox, environment: Path, references: list[str] | None) -> None:
    _load(sandbox, [_lnb_order("LNB-0001")])

    if references is None:
        with pytest.raises(dg.DagsterInvalidConfigError, match='Missing required config entry "ops"'):
            _test_orders(references)
    else:
        result = _test_orders(references)
        assert not result.success
        [failure] = [event for event in result.all_events if event.event_type == dg.DagsterEventType.STEP_FAILURE]
        assert failure.step_failure_data.user_failure_data.description.startswith(
            "No LNB order listed. Give the references to send as test orders in the run config")

    assert _stats(sandbox.shopify.url)["total_requests"] == _stats(sandbox.lnb.url)["total_requests"] == 0


@pytest.mark.parametrize("custom_id", [True, False], ids=["custom-id", "search-fallback"])
def test_a_second_run_finds_its_test_order_and_a_change_in_lnb_makes_a_new_one(
        sandbox: Sandbox, environment: Path, custom_id: bool) -> None:
    """Listed again unchanged, an order has its test order already: no second one (searching, once the
    index has caught up, the weaker mode's known limit). Once LNB's order changes, what Shopify would
    get changes, and a new test order shows it."""
    _load(sandbox, [_lnb_order("LNB-0001")], order_custom_id=custom_id)
    _search_index_caught_up(sandbox)
    first = _test_orders(["LNB-0001"])
    [created] = _test_and_real(sandbox)[0]["LNB-0001"]

    second = _test_orders([" LNB-0001", "LNB-0001"])

    assert first.success and second.success
    assert _test_and_real(sandbox) == ({"LNB-0001": [created]}, {})
    assert _creates(sandbox) == 1
    assert _table(second) == [_row(sandbox, "LNB-0001", "test order already in Shopify", created,
                                   "made by an earlier run from the same LNB order and settings; check that one")]
    assert check_evaluation(second, "every_listed_order_is_a_test_order").passed

    requests.post(f"{sandbox.lnb.url}/_sandbox/orders/LNB-0001", json={"comment": "Livraison l'après-midi."},
                  timeout=10).raise_for_status()
    third = _test_orders(["LNB-0001"])

    assert third.success
    [first_test, new_test] = _test_and_real(sandbox)[0]["LNB-0001"]
    assert (first_test, new_test["name"], new_test["note"]) == (created, "#1002", "Livraison l'après-midi.")
    assert new_test["sourceIdentifier"] != created["sourceIdentifier"]
    assert _table(third) == [_row(sandbox, "LNB-0001", "test order created", new_test)]


def test_an_order_shopify_holds_as_real_under_the_test_key_is_reported_not_taken_for_a_test(
        sandbox: Sandbox, environment: Path) -> None:
    """Should Shopify ever hold a real order under a test order's key, it is said loudly: the real
    export would make a second real order beside it."""
    _load(sandbox, [_lnb_order("LNB-0001")])
    assert _test_orders(["LNB-0001"]).success
    [test_order] = _test_and_real(sandbox)[0]["LNB-0001"]
    key = test_order["sourceIdentifier"]
    _load(sandbox, [_lnb_order("LNB-0001")], shopify_orders=[{
        "id": 9001, "name": "#9001", "customer_id": 1, "source_identifier": key,
        "line_items": [{"variant_id": 11, "quantity": 2}], "metafields": {"lenewblack.order_reference": key}}])

    result = _test_orders(["LNB-0001"])

    assert result.success
    assert _creates(sandbox) == 0
    [row] = _table(result)
    assert (row["outcome"], row["shopify_order"], row["detail"]) == (
        "NOT a test order in Shopify", "#9001",
        "Shopify holds it as a real order: cancel it in Shopify, or the real export will make a second real order")
    assert not check_evaluation(result, "every_listed_order_is_a_test_order").passed


def test_the_demo_sends_two_orders_from_the_launchpad_and_the_export_then_sends_each_once(
        sandbox: Sandbox, environment: Path) -> None:
    """What a person does on `make run`: two demo references in the launchpad, then the real export."""
    result = _test_orders(["LNB-0001", "LNB-0004"])

    assert result.success
    assert [(row["order_reference"], row["outcome"], row["shopify_order"]) for row in _table(result)] == [
        ("LNB-0001", "test order created", "#1001"), ("LNB-0004", "test order created", "#1002")]

    assert _real_export().success
    tests, real = _test_and_real(sandbox)
    assert {ref: len(orders) for ref, orders in tests.items()} == {"LNB-0001": 1, "LNB-0004": 1}
    assert {ref: len(orders) for ref, orders in real.items()} == dict.fromkeys(
        ["LNB-0001", "LNB-0002", "LNB-0003", "LNB-0004", "LNB-0005"], 1)


def test_the_sandbox_keeps_the_test_flag_and_searches_it(sandbox: Sandbox) -> None:
    """``orderCreate``'s ``test`` (default false) is stored, read back as ``Order.test`` and searchable."""
    create = """mutation($test: Boolean) { orderCreate(order: {test: $test, sourceIdentifier: "S",
      lineItems: [{variantId: "gid://shopify/ProductVariant/11", quantity: 1}]}) { order { name test } userErrors {
      message } } }"""
    _load(sandbox, [])
    _search_index_caught_up(sandbox)
    made = [shopify_data(sandbox, create, variables)["orderCreate"]["order"]
            for variables in ({"test": True}, {}, {"test": False}, {"test": None})]

    assert made == [{"name": "#1001", "test": True}, {"name": "#1002", "test": False},
                    {"name": "#1003", "test": False}, {"name": "#1004", "test": False}]
    search = "query($q: String) { orders(first: 10, query: $q) { nodes { name } } }"
    assert [o["name"] for o in shopify_data(sandbox, search, {"q": "test:true"})["orders"]["nodes"]] == ["#1001"]
    assert [o["name"] for o in shopify_data(sandbox, search, {"q": "-test:true"})["orders"]["nodes"]] == [
        "#1002", "#1003", "#1004"]
