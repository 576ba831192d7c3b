"""The Shopify sandbox is at least as strict as Shopify: custom scalars, custom ids, search syntax and
its lagging index, development stores, access scopes, presentment currencies and a throttle that
really empties the bucket. Over real HTTP, like test_sandbox_shopify.py, whose scenario and client
this module shares; each test starts from a reset of that scenario.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from test_sandbox_shopify import (
    FIVE_VARIANT_IDS,
    ORDERS_FOUND,
    SCENARIO,
    ShopClient,
    cost_of,
    found_orders,
    line,
    searched_variants,
    throttled_code,
    variant_gid,
)

from lnb_pipeline.sandbox.http import SandboxServer
from lnb_pipeline.sandbox.shopify.api import (
    DEFAULT_ORDER_SEARCH_LAG_SECONDS,
    SCALARS,
    ShopifyApi,
)
from lnb_pipeline.sandbox.shopify.state import format_timestamp, gid

ORDER_REFERENCE = {"namespace": "lenewblack", "key": "order_reference"}
CREATE = """
mutation Create($order: OrderCreateOrderInput!) {
  orderCreate(order: $order) {
    order {
      id processedAt currencyCode presentmentCurrencyCode
      totalPriceSet { shopMoney { amount currencyCode } presentmentMoney { amount currencyCode } }
      metafield(namespace: "lenewblack", key: "order_reference") { namespace key value type }
    }
    userErrors { field message code }
  }
}
"""
ORDER_BY_REFERENCE = """
query($value: String!) {
  orderByIdentifier(identifier: {customId: {namespace: "lenewblack", key: "order_reference", value: $value}}) { id }
}
"""
CUSTOMER_BY_REFERENCE = """
query($value: String!) {
  customerByIdentifier(identifier: {customId: {namespace: "lenewblack", key: "retailer_reference", value: $value}}) {
    id metafield(namespace: "lenewblack", key: "retailer_reference") { value type }
  }
}
"""
ORDER_BY_ID = "query($id: ID!) { order(id: $id) { id } }"
ALL_ORDERS = "{ orders(first: 50) { nodes { id } } }"
EUR_LINE = {**line(11, 2), "priceSet": {"shopMoney": {"amount": "45.00", "currencyCode": "EUR"}}}
USD_LINE = {**line(11, 2), "priceSet": {"shopMoney": {"amount": "45.00", "currencyCode": "EUR"},
                                        "presentmentMoney": {"amount": "49.50", "currencyCode": "USD"}}}


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    running = SandboxServer(ShopifyApi(SCENARIO), port=0).start()
    yield running
    running.stop()


@pytest.fixture
def shop(server: SandboxServer) -> ShopClient:
    """The scenario on the standard plan; searches see new orders at once unless a test sets a lag."""
    client = ShopClient(server.url)
    client.reset()
    client.configure(order_search_lag_seconds=0)
    return client


def scenario(**changes: Any) -> dict[str, Any]:
    """The shared scenario with top-level keys replaced; ``shop`` entries are merged into its shop."""
    shop = {**SCENARIO["shop"], **changes.pop("shop", {})}
    return {**SCENARIO, "shop": shop, **changes}


def create(shop: ShopClient, order: dict[str, Any]) -> dict[str, Any]:
    """The ``orderCreate`` payload of an answer without GraphQL errors."""
    return shop.data(CREATE, {"order": order})["orderCreate"]


def fields_and_codes(payload: dict[str, Any]) -> list[tuple[list[str], str]]:
    return [(error["field"], error["code"]) for error in payload["userErrors"]]


def only_error(body: dict[str, Any]) -> dict[str, Any]:
    (error,) = body["errors"]
    return error


def with_reference(value: str, **order: Any) -> dict[str, Any]:
    return {"lineItems": [line(21, 1)], "metafields": [{**ORDER_REFERENCE, "value": value}], **order}


def _line_priced(shop_money: dict[str, str], presentment_money: dict[str, str] | None = None) -> dict[str, Any]:
    price = {"shopMoney": shop_money, **({"presentmentMoney": presentment_money} if presentment_money else {})}
    return {**line(11, 1), "priceSet": price}


# --- custom scalars ------------------------------------------------------------------------------


@pytest.mark.parametrize("processed_at", ["2026-13-45T10:00:00Z", "yesterday", "2026-01-05 10:00:00",
                                          "2026-01-05T10:00:00", "2026-01-05", 1767607200])
def test_date_time_input_must_be_iso_8601_with_a_zone(shop: ShopClient, processed_at: Any) -> None:
    """A time without zone would be read in a zone the sender did not choose: refused like garbage."""
    body = shop.answer(CREATE, {"order": {"lineItems": [line(21, 1)], "processedAt": processed_at}})
    assert "Expected type 'DateTime'" in only_error(body)["message"]
    assert shop.health()["orders"] == 1


def test_date_time_literal_must_be_a_string(shop: ShopClient) -> None:
    body = shop.answer('mutation { orderCreate(order: {lineItems: [{variantId: "%s", quantity: 1}], '
                       "processedAt: 20260105}) { userErrors { code } } }" % variant_gid(21))
    assert "data" not in body
    assert "Expected value of type 'DateTime'" in only_error(body)["message"]


def test_processed_at_with_an_offset_comes_back_in_utc(shop: ShopClient) -> None:
    payload = create(shop, {"lineItems": [line(21, 1)], "processedAt": "2026-01-05T10:00:00+02:00"})
    assert payload["order"]["processedAt"] == "2026-01-05T08:00:00Z"


def test_future_processed_at_is_judged_by_the_moment_not_the_text(shop: ShopClient) -> None:
    """An hour ahead written at -10:00 sorts before now as text; an hour ago at +14:00 sorts after it."""
    now = datetime.now(UTC)
    future = (now + timedelta(hours=1)).astimezone(timezone(timedelta(hours=-10))).isoformat(timespec="seconds")
    past = (now - timedelta(hours=1)).astimezone(timezone(timedelta(hours=14))).isoformat(timespec="seconds")
    assert future < format_timestamp(now) < past
    refused = create(shop, {"lineItems": [line(21, 1)], "processedAt": future})
    assert fields_and_codes(refused) == [(["order", "processedAt"], "PROCESSED_AT_INVALID")]
    accepted = create(shop, {"lineItems": [line(21, 1)], "processedAt": past})
    assert accepted["userErrors"] == []


@pytest.mark.parametrize("amount", [45.0, 45, "45,00", "45.", "1e3", "EUR 45", ""])
def test_decimal_amount_must_be_a_decimal_number_in_a_string(shop: ShopClient, amount: Any) -> None:
    """Shopify's Decimal is "serialized as a string": the sandbox refuses JSON numbers too (strict)."""
    price = {"shopMoney": {"amount": amount, "currencyCode": "EUR"}}
    body = shop.answer(CREATE, {"order": {"lineItems": [{**line(21, 1), "priceSet": price}]}})
    assert "Expected type 'Decimal'" in only_error(body)["message"]
    assert shop.health()["orders"] == 1


def test_decimal_literal_must_be_a_string(shop: ShopClient) -> None:
    body = shop.answer('mutation { orderCreate(order: {lineItems: [{variantId: "%s", quantity: 1, priceSet: '
                       "{shopMoney: {amount: 45.00, currencyCode: EUR}}}]}) { userErrors { code } } }"
                       % variant_gid(21))
    assert only_error(body)["message"] == "Expected value of type 'Decimal!', found 45.00; a string is expected"


@pytest.mark.parametrize(("scalar", "accepted", "refused"), [
    ("DateTime", ["2019-09-07T15:50:00Z", "2019-09-07T15:50:00.123+02:00"],
     ["2019-09-07", "2019-09-07T15:50:00", "2026-13-45T00:00:00Z", "yesterday", 1567871400]),
    ("Decimal", ["29.99", "-1", "0.000"], ["29,99", "1e3", 29.99, "", " 1", "４5"]),
    ("Money", ["100.57"], ["$100.57", 100]),
    ("URL", ["https://example.myshopify.com", "http://127.0.0.1:8701/_sandbox/bulk/1.jsonl"],
     ["example.com", "/relative/path", "https://exa mple.com", "", 42]),
    ("UnsignedInt64", ["0", "50", str(2**64 - 1)], ["-1", str(2**64), "1.5", "５", -1]),
])
def test_custom_scalars_read_only_what_shopify_documents(scalar: str, accepted: list[Any], refused: list[Any]) -> None:
    """The whole rule of each scalar, also for those no sandbox input takes (URL and UnsignedInt64 are
    only written out): what is refused on input is refused on output too."""
    parse_value, serialize = SCALARS[scalar]
    for value in accepted:
        parse_value(value)
        serialize(value)
    for value in refused:
        with pytest.raises(ValueError):
            parse_value(value)
        with pytest.raises(ValueError):
            serialize(value)


def test_scalars_are_written_out_as_shopify_writes_them() -> None:
    """As strings, times in UTC; an UnsignedInt64 the sandbox holds as a number is written as a string,
    but a number is not read as one."""
    assert SCALARS["DateTime"][1]("2026-01-05T10:00:00+02:00") == "2026-01-05T08:00:00Z"
    assert SCALARS["Decimal"][1](Decimal("29.90")) == "29.90"
    assert SCALARS["UnsignedInt64"][1](7) == "7"
    with pytest.raises(ValueError):
        SCALARS["UnsignedInt64"][0](7)


@pytest.mark.parametrize("first", ["2147483648", "-2147483649"])
def test_int_is_32_bit(shop: ShopClient, first: str) -> None:
    literal = shop.answer("{ productVariants(first: %s) { nodes { id } } }" % first)
    assert "Int cannot represent non 32-bit signed integer value" in only_error(literal)["message"]
    variable = shop.answer("query($n: Int) { productVariants(first: $n) { nodes { id } } }", {"n": int(first)})
    assert "Int cannot represent non 32-bit signed integer value" in only_error(variable)["message"]


# --- custom ids ----------------------------------------------------------------------------------


def test_customer_by_custom_id_needs_an_id_definition(shop: ShopClient) -> None:
    """The same metafield without a definition, or under a definition of another type, is no custom id."""
    assert shop.data(CUSTOMER_BY_REFERENCE, {"value": "R001"})["customerByIdentifier"]["id"] == gid("Customer", 1)
    text_definition = {**SCENARIO["metafield_definitions"][0], "type": "single_line_text_field"}
    for definitions in ([], [text_definition]):
        shop.reset(scenario(metafield_definitions=definitions))
        error = only_error(shop.answer(CUSTOMER_BY_REFERENCE, {"value": "R001"}))
        assert error["message"] == ("lenewblack.retailer_reference is not a custom id of CUSTOMER: no metafield "
                                    "definition of type id covers it.")
        assert error["extensions"] == {"code": "BAD_REQUEST"}


def test_customer_metafield_reads_back_with_the_definitions_type(shop: ShopClient) -> None:
    customer = shop.data(CUSTOMER_BY_REFERENCE, {"value": "R002"})["customerByIdentifier"]
    assert customer == {"id": gid("Customer", 2), "metafield": {"value": "R002", "type": "id"}}
    assert shop.data(CUSTOMER_BY_REFERENCE, {"value": "R404"})["customerByIdentifier"] is None


def test_order_metafields_are_stored_and_the_custom_id_found_at_once(shop: ShopClient) -> None:
    """``orderByIdentifier`` reads the database: it finds the order while the search index still lags."""
    shop.configure(order_search_lag_seconds=30)
    payload = create(shop, with_reference("LNB-ORD-1", metafields=[
        {**ORDER_REFERENCE, "value": "LNB-ORD-1"},
        {"namespace": "custom", "key": "channel", "value": "wholesale", "type": "single_line_text_field"},
    ]))
    assert payload["userErrors"] == []
    order = payload["order"]
    assert order["metafield"] == {**ORDER_REFERENCE, "value": "LNB-ORD-1", "type": "id"}
    assert shop.data(ORDER_BY_REFERENCE, {"value": "LNB-ORD-1"})["orderByIdentifier"] == {"id": order["id"]}
    assert shop.data(ORDER_BY_REFERENCE, {"value": "LNB-ORD-2"})["orderByIdentifier"] is None
    channel = shop.data('query($id: ID!) { order(id: $id) { metafield(namespace: "custom", key: "channel") { value } } }',
                        {"id": order["id"]})
    assert channel == {"order": {"metafield": {"value": "wholesale"}}}


def test_order_by_identifier_takes_exactly_one_identifier(shop: ShopClient) -> None:
    query = "query($identifier: OrderIdentifierInput!) { orderByIdentifier(identifier: $identifier) { id } }"
    by_id = {"id": gid("Order", 900)}
    assert shop.data(query, {"identifier": by_id})["orderByIdentifier"] == by_id
    both = {**by_id, "customId": {**ORDER_REFERENCE, "value": "LNB-OLD-1"}}
    assert only_error(shop.answer(query, {"identifier": both}))["message"] == (
        "OrderIdentifierInput requires exactly one of id, customId.")


def test_order_by_custom_id_needs_an_id_definition(shop: ShopClient) -> None:
    shop.reset(scenario(metafield_definitions=SCENARIO["metafield_definitions"][:1]))
    error = only_error(shop.answer(ORDER_BY_REFERENCE, {"value": "LNB-ORD-1"}))
    assert error["message"].startswith("lenewblack.order_reference is not a custom id of ORDER")


def test_a_custom_id_already_taken_refuses_the_order(shop: ShopClient) -> None:
    """An id definition makes values unique, so a second order with the same reference is not created."""
    assert create(shop, with_reference("LNB-TWICE"))["userErrors"] == []
    again = create(shop, with_reference("LNB-TWICE"))
    assert again["order"] is None
    assert again["userErrors"] == [{"field": ["order", "metafields", "0", "value"], "message": "Value is already taken",
                                    "code": "INVALID"}]
    assert shop.health()["orders"] == 2


def test_a_scenario_orders_custom_id_is_taken_too(shop: ShopClient) -> None:
    shop.reset(scenario(orders=[{**SCENARIO["orders"][0], "metafields": {"lenewblack.order_reference": "LNB-OLD-1"}}]))
    assert fields_and_codes(create(shop, with_reference("LNB-OLD-1"))) == [
        (["order", "metafields", "0", "value"], "INVALID")]


def test_a_plain_metafield_may_repeat_across_orders(shop: ShopClient) -> None:
    """Only an id definition makes values unique: without one, the same value on two orders is fine."""
    plain = {"namespace": "custom", "key": "channel", "value": "wholesale", "type": "single_line_text_field"}
    for _ in range(2):
        assert create(shop, {"lineItems": [line(21, 1)], "metafields": [plain]})["userErrors"] == []


@pytest.mark.parametrize(("metafield", "field"), [
    ({**ORDER_REFERENCE, "value": "LNB-1", "type": "single_line_text_field"}, "type"),
    ({"namespace": "custom", "key": "channel", "value": "wholesale"}, "type"),
    ({"namespace": "custom", "key": "channel", "value": "wholesale", "type": "colour"}, "type"),
    ({"namespace": "ab", "key": "channel", "value": "x", "type": "single_line_text_field"}, "namespace"),
    ({"namespace": "n" * 256, "key": "channel", "value": "x", "type": "single_line_text_field"}, "namespace"),
    ({"key": "channel", "value": "x", "type": "single_line_text_field"}, "namespace"),
    ({"namespace": "custom", "key": "c", "value": "x", "type": "single_line_text_field"}, "key"),
    ({"namespace": "custom", "key": "k" * 65, "value": "x", "type": "single_line_text_field"}, "key"),
    ({"namespace": "custom", "key": "chan.nel", "value": "x", "type": "single_line_text_field"}, "key"),
    ({**ORDER_REFERENCE, "value": ""}, "value"),
    ({**ORDER_REFERENCE, "value": "LNB-1", "id": "gid://shopify/Metafield/1"}, "id"),
], ids=["type-differs-from-definition", "no-type-without-definition", "unknown-type", "namespace-2-chars",
        "namespace-256-chars", "namespace-missing", "key-1-char", "key-65-chars", "key-with-dot", "blank-value",
        "id-on-create"])
def test_metafield_input_is_checked_as_its_schema_describes(shop: ShopClient, metafield: dict[str, Any],
                                                            field: str) -> None:
    payload = create(shop, {"lineItems": [line(21, 1)], "metafields": [metafield]})
    assert fields_and_codes(payload) == [(["order", "metafields", "0", field], "INVALID")]
    assert shop.health()["orders"] == 1


def test_the_same_metafield_twice_in_one_order_is_refused(shop: ShopClient) -> None:
    payload = create(shop, {"lineItems": [line(21, 1)], "metafields": [{**ORDER_REFERENCE, "value": "A"},
                                                                       {**ORDER_REFERENCE, "value": "B"}]})
    assert fields_and_codes(payload) == [(["order", "metafields", "1", "key"], "INVALID")]


def test_metafield_definitions_list_by_owner_type_with_filters(shop: ShopClient) -> None:
    query = """query($owner: MetafieldOwnerType!, $key: String, $q: String) {
      metafieldDefinitions(ownerType: $owner, key: $key, first: 10, query: $q) {
        nodes { id name namespace key ownerType type { name category } } } }"""
    customer = shop.data(query, {"owner": "CUSTOMER"})["metafieldDefinitions"]["nodes"]
    assert customer == [{"id": "gid://shopify/MetafieldDefinition/1", "name": "LNB retailer reference",
                         "namespace": "lenewblack", "key": "retailer_reference", "ownerType": "CUSTOMER",
                         "type": {"name": "id", "category": "TEXT"}}]
    assert [d["key"] for d in shop.data(query, {"owner": "ORDER"})["metafieldDefinitions"]["nodes"]] == [
        "order_reference"]
    assert shop.data(query, {"owner": "ORDER", "key": "retailer_reference"})["metafieldDefinitions"]["nodes"] == []
    assert shop.data(query, {"owner": "ORDER", "q": "type:json"})["metafieldDefinitions"]["nodes"] == []


# --- metafield definitions created -------------------------------------------------------------

DEFINITION_CREATE = """
mutation($definition: MetafieldDefinitionInput!) {
  metafieldDefinitionCreate(definition: $definition) {
    createdDefinition { id name description namespace key ownerType type { name category } }
    userErrors { field message code }
  }
}
"""
DEFINITIONS = """query($owner: MetafieldOwnerType!) {
  metafieldDefinitions(ownerType: $owner, first: 10) { nodes { id namespace key type { name } } } }"""
RETAILER_DEFINITION = {"namespace": "lenewblack", "key": "retailer_reference", "name": "LNB retailer reference",
                       "ownerType": "CUSTOMER", "type": "id"}
ORDER_DEFINITION = {"namespace": "lenewblack", "key": "order_reference", "name": "LNB order reference",
                    "ownerType": "ORDER", "type": "id"}
SETUP_SCOPES = ["read_products", "read_customers", "write_customers", "write_orders", "read_all_orders"]


def create_definition(shop: ShopClient, definition: dict[str, Any]) -> dict[str, Any]:
    return shop.data(DEFINITION_CREATE, {"definition": definition})["metafieldDefinitionCreate"]


def without_definitions(scopes: list[str] = SETUP_SCOPES) -> dict[str, Any]:
    return scenario(metafield_definitions=[], shop={"scopes": scopes})


def with_plain_reference(value: str) -> dict[str, Any]:
    """An order carrying the reference in a metafield no definition covers yet (so its type is given)."""
    return {"lineItems": [line(21, 1)],
            "metafields": [{**ORDER_REFERENCE, "value": value, "type": "single_line_text_field"}]}


def test_a_definition_created_makes_the_stored_values_custom_ids(shop: ShopClient) -> None:
    """As Shopify does: the metafields already under the key take the definition's type; an id
    definition makes them custom ids, found by customerByIdentifier."""
    shop.reset(without_definitions())
    assert "is not a custom id" in only_error(shop.answer(CUSTOMER_BY_REFERENCE, {"value": "R001"}))["message"]
    payload = create_definition(shop, {**RETAILER_DEFINITION, "description": "LNB's retailer reference"})
    assert payload == {"userErrors": [], "createdDefinition": {
        "id": "gid://shopify/MetafieldDefinition/1", "name": "LNB retailer reference",
        "description": "LNB's retailer reference", "namespace": "lenewblack", "key": "retailer_reference",
        "ownerType": "CUSTOMER", "type": {"name": "id", "category": "TEXT"}}}
    customer = shop.data(CUSTOMER_BY_REFERENCE, {"value": "R001"})["customerByIdentifier"]
    assert customer == {"id": "gid://shopify/Customer/1", "metafield": {"value": "R001", "type": "id"}}
    assert shop.data(DEFINITIONS, {"owner": "CUSTOMER"})["metafieldDefinitions"]["nodes"] == [
        {"id": "gid://shopify/MetafieldDefinition/1", "namespace": "lenewblack", "key": "retailer_reference",
         "type": {"name": "id"}}]


def test_an_order_definition_makes_later_orders_unique_by_it(shop: ShopClient) -> None:
    shop.reset(without_definitions())
    assert create(shop, with_plain_reference("LNB-1"))["userErrors"] == []
    assert create(shop, with_plain_reference("LNB-1"))["userErrors"] == [], "no definition: the value may repeat"
    shop.reset(without_definitions())
    assert create(shop, with_plain_reference("LNB-1"))["userErrors"] == []
    assert create_definition(shop, ORDER_DEFINITION)["userErrors"] == []
    assert shop.data(ORDER_BY_REFERENCE, {"value": "LNB-1"})["orderByIdentifier"] is not None
    assert fields_and_codes(create(shop, with_reference("LNB-1"))) == [
        (["order", "metafields", "0", "value"], "INVALID")]


def test_values_that_repeat_refuse_an_id_definition(shop: ShopClient) -> None:
    shop.reset(without_definitions())
    assert [create(shop, with_plain_reference("LNB-1"))["userErrors"] for _ in range(2)] == [[], []]
    payload = create_definition(shop, ORDER_DEFINITION)
    assert (payload["createdDefinition"], fields_and_codes(payload)) == (
        None, [(["definition", "type"], "UNSTRUCTURED_ALREADY_EXISTS")])
    assert shop.data(DEFINITIONS, {"owner": "ORDER"})["metafieldDefinitions"]["nodes"] == []


def test_a_second_definition_under_the_key_is_taken_and_changes_nothing(shop: ShopClient) -> None:
    shop.reset(scenario(shop={"scopes": SETUP_SCOPES}))
    payload = create_definition(shop, {**RETAILER_DEFINITION, "type": "single_line_text_field"})
    assert fields_and_codes(payload) == [(["definition", "key"], "TAKEN")]
    assert shop.data(DEFINITIONS, {"owner": "CUSTOMER"})["metafieldDefinitions"]["nodes"][0]["type"] == {"name": "id"}


@pytest.mark.parametrize(("change", "field", "code"), [
    ({"key": "r"}, "key", "TOO_SHORT"),
    ({"key": "k" * 65}, "key", "TOO_LONG"),
    ({"key": "retailer.reference"}, "key", "INVALID_CHARACTER"),
    ({"namespace": "ln"}, "namespace", "TOO_SHORT"),
    ({"namespace": "lnb space"}, "namespace", "INVALID_CHARACTER"),
    ({"name": "  "}, "name", "BLANK"),
    ({"type": "identifier"}, "type", "INCLUSION"),
])
def test_definition_input_is_checked_as_shopify_documents_it(shop: ShopClient, change: dict[str, str], field: str,
                                                             code: str) -> None:
    shop.reset(without_definitions())
    payload = create_definition(shop, {**RETAILER_DEFINITION, **change})
    assert (payload["createdDefinition"], fields_and_codes(payload)) == (None, [(["definition", field], code)])


@pytest.mark.parametrize(("definition", "required"), [(RETAILER_DEFINITION, "write_customers"),
                                                      (ORDER_DEFINITION, "write_orders")])
def test_creating_a_definition_needs_the_write_scope_of_its_owner_type(shop: ShopClient, definition: dict[str, Any],
                                                                       required: str) -> None:
    granted = [scope for scope in SETUP_SCOPES if scope != required] + [required.replace("write_", "read_")]
    shop.reset(without_definitions(granted))
    error = only_error(shop.answer(DEFINITION_CREATE, {"definition": definition}))
    assert error["message"] == f"Access denied for metafieldDefinitionCreate field. Required access: `{required}` access scope."
    assert error["extensions"]["code"] == "ACCESS_DENIED"


def test_a_definition_create_costs_a_mutation(shop: ShopClient) -> None:
    shop.reset(without_definitions())
    body = shop.answer(DEFINITION_CREATE, {"definition": ORDER_DEFINITION})
    assert (cost_of(body)["requestedQueryCost"], cost_of(body)["actualQueryCost"]) == (10, 10)


# --- search syntax -------------------------------------------------------------------------------


@pytest.mark.parametrize(("source_identifier", "search"), [
    ('LNB "A" 1', r'source_identifier:"LNB \"A\" 1"'),
    ("O'Brien", r"source_identifier:'O\'Brien'"),
    ("O'Brien", "source_identifier:\"O'Brien\""),
    ("REF:1(a)", r"source_identifier:REF\:1\(a\)"),
    ("back\\slash", r'source_identifier:"back\\slash"'),
    ("two words", "source_identifier:'two words'"),
], ids=["escaped-double-quotes", "escaped-single-quote", "single-quote-in-double", "escaped-specials",
        "escaped-backslash", "quoted-space"])
def test_quoted_and_escaped_values_find_exactly_their_order(shop: ShopClient, source_identifier: str,
                                                            search: str) -> None:
    created = create(shop, {"lineItems": [line(21, 1)], "sourceIdentifier": source_identifier})["order"]
    create(shop, {"lineItems": [line(21, 1)], "sourceIdentifier": "unrelated"})
    assert [o["id"] for o in found_orders(shop, search)] == [created["id"]]


@pytest.mark.parametrize(("search", "expected"), [
    ("(sku:LS-BLU-M OR sku:WC-GRY-M) -barcode:4006381333931", [22]),
    ("NOT (sku:LS-BLU-M OR sku:LS-BLU-L)", [13, 21, 22]),
    ("-(sku:LS-BLU-M OR sku:LS-BLU-L)", [13, 21, 22]),
    ("sku:LS* AND (barcode:012345678905 OR sku:LS-BLU-L)", [12, 13]),
    ("sku:WC-GRY-S OR sku:LS-BLU-M sku:WC-GRY-M", [21]),
    ("sku:LS-BLU-M or sku:WC-GRY-M", []),
    ("barcode:*", [11, 13, 21, 22]),
], ids=["group-and-not", "not-group", "dash-group", "and-group", "and-binds-tighter-than-or",
        "lowercase-or-is-a-word", "exists"])
def test_connectives_modifiers_and_parentheses(shop: ShopClient, search: str, expected: list[int]) -> None:
    assert searched_variants(shop, search) == expected


@pytest.mark.parametrize("search", ['source_identifier:"LNB-1', "(tag:a OR tag:b", "tag:a)", "tag:a OR", "tag:a\\"],
                         ids=["unclosed-quote", "unclosed-parenthesis", "stray-parenthesis", "dangling-or",
                              "trailing-backslash"])
def test_query_that_does_not_parse_is_a_graphql_error(shop: ShopClient, search: str) -> None:
    error = only_error(shop.answer(ORDERS_FOUND, {"query": search}))
    assert error["message"].startswith(f"Invalid search query {search!r}")


# --- the lagging search index --------------------------------------------------------------------


def test_a_new_order_reaches_searches_only_after_the_index_lag(shop: ShopClient) -> None:
    """Listing without a query, ``order(id)`` and ``orderByIdentifier`` see it at once."""
    shop.configure(order_search_lag_seconds=0.5)
    order = create(shop, with_reference("LNB-LAG", sourceIdentifier="LNB-LAG"))["order"]
    assert found_orders(shop, "source_identifier:LNB-LAG") == []
    assert found_orders(shop, "tag:wholesale") == [
        {"id": "gid://shopify/Order/900", "name": "#900", "sourceIdentifier": "LNB-OLD-1"}]
    assert order["id"] in [o["id"] for o in shop.data(ALL_ORDERS)["orders"]["nodes"]]
    assert shop.data(ORDER_BY_ID, {"id": order["id"]})["order"] == {"id": order["id"]}
    assert shop.data(ORDER_BY_REFERENCE, {"value": "LNB-LAG"})["orderByIdentifier"] == {"id": order["id"]}
    time.sleep(0.6)
    assert [o["id"] for o in found_orders(shop, "source_identifier:LNB-LAG")] == [order["id"]]


def test_index_lag_is_on_by_default_and_a_setting(shop: ShopClient) -> None:
    shop.reset()
    assert shop.health()["order_search_lag_seconds"] == DEFAULT_ORDER_SEARCH_LAG_SECONDS == 3.0
    created = create(shop, {"lineItems": [line(21, 1)], "sourceIdentifier": "LNB-DEFAULT-LAG"})["order"]
    assert created is not None
    assert found_orders(shop, "source_identifier:LNB-DEFAULT-LAG") == []
    assert shop.control("POST", "config", {"order_search_lag_seconds": -1}).status_code == 400


# --- development stores --------------------------------------------------------------------------


def test_development_store_says_so_in_its_plan(shop: ShopClient) -> None:
    shop.reset(scenario(shop={"development": True}))
    assert shop.data("{ shop { plan { partnerDevelopment publicDisplayName shopifyPlus } } }")["shop"]["plan"] == {
        "partnerDevelopment": True, "publicDisplayName": "Development", "shopifyPlus": False}


def test_development_store_creates_at_most_its_quota_of_orders_per_window(shop: ShopClient) -> None:
    """Beyond the quota: HTTP 429 with Retry-After, nothing created; once the window moves on, it creates again."""
    shop.reset(scenario(shop={"development": True}))
    shop.configure(order_rate_window_seconds=2, orders_per_window=2)
    refused = create(shop, {"lineItems": [line(99, 1)]})
    assert refused["order"] is None, "an order refused with userErrors takes no place in the window"
    for _ in range(2):
        assert create(shop, {"lineItems": [line(21, 1)]})["userErrors"] == []
    response = shop.post(CREATE, {"order": {"lineItems": [line(21, 1)]}})
    assert response.status_code == 429
    wait = int(response.headers["Retry-After"])
    assert 1 <= wait <= 2
    (error,) = response.json()["errors"]
    assert error["extensions"] == {"code": "THROTTLED"}
    assert "at most 2 new orders a minute" in error["message"] and "development and trial stores" in error["message"]
    assert (shop.health()["orders"], shop.stats()["order_rate_limited"]) == (3, 1)
    assert shop.data("{ shop { name } }") == {"shop": {"name": "Test Brand"}}, "other requests go on"
    time.sleep(wait)
    assert create(shop, {"lineItems": [line(21, 1)]})["userErrors"] == []


def test_a_store_that_is_not_a_development_store_has_no_order_quota(shop: ShopClient) -> None:
    shop.configure(order_rate_window_seconds=60, orders_per_window=1)
    for _ in range(3):
        assert create(shop, {"lineItems": [line(21, 1)]})["userErrors"] == []


@pytest.mark.parametrize("settings", [{"orders_per_window": 0}, {"orders_per_window": 1.5},
                                      {"order_rate_window_seconds": 0}, {"order_rate_window_seconds": "60"}])
def test_invalid_order_quota_setting_is_refused(shop: ShopClient, settings: dict[str, Any]) -> None:
    assert shop.control("POST", "config", settings).status_code == 400
    assert (shop.health()["orders_per_window"], shop.health()["order_rate_window_seconds"]) == (5, 60.0)


# --- the injected throttle -----------------------------------------------------------------------


def test_throttle_fault_empties_the_bucket_and_prices_the_query(shop: ShopClient) -> None:
    """Shopify never throttles with a full bucket: after the fault the bucket is really empty."""
    shop.configure(restore_rate=0)
    shop.arm(kind="throttle", match="productVariants")
    body = shop.answer(FIVE_VARIANT_IDS)
    assert throttled_code(body) == "THROTTLED"
    cost = cost_of(body)
    assert (cost["requestedQueryCost"], cost["actualQueryCost"]) == (7, None)
    assert cost["throttleStatus"]["currentlyAvailable"] < cost["requestedQueryCost"]
    assert throttled_code(shop.answer(FIVE_VARIANT_IDS)) == "THROTTLED", "no fault armed now: the bucket is empty"


# --- access scopes -------------------------------------------------------------------------------


@pytest.mark.parametrize(("scopes", "query", "field", "required"), [
    (["read_products"], "{ orders(first: 1) { nodes { id } } }", "orders", "`read_orders` access scope"),
    (["read_products"], '{ order(id: "gid://shopify/Order/900") { id } }', "order", "`read_orders` access scope"),
    (["read_orders"], "{ productVariants(first: 1) { nodes { id } } }", "productVariants",
     "`read_products` access scope"),
    (["read_orders"], "{ productVariantsCount { count } }", "productVariantsCount", "`read_products` access scope"),
    (["read_products"], '{ inventoryItem(id: "gid://shopify/InventoryItem/11") { id } }', "inventoryItem",
     "`read_inventory` access scope"),
    (["read_products"], "{ productVariants(first: 1) { nodes { inventoryItem { inventoryLevels(first: 1) { "
                        "nodes { id } } } } } }", "inventoryLevels", "`read_inventory` access scope"),
    (["read_inventory"], "{ locations(first: 1) { nodes { id } } }", "locations", "`read_locations` access scope"),
    (["read_orders"], '{ customer(id: "gid://shopify/Customer/1") { id } }', "customer",
     "`read_customers` access scope"),
    (["read_orders"], '{ customerByIdentifier(identifier: {emailAddress: "buyer@boutique.example"}) { id } }',
     "customerByIdentifier", "`read_customers` access scope"),
    (["read_orders"], "{ companies(first: 1) { nodes { id } } }", "companies",
     "`read_customers` access scope or `read_companies` access scope"),
    (["read_customers"], "{ metafieldDefinitions(ownerType: ORDER, first: 1) { nodes { id } } }",
     "metafieldDefinitions", "`read_orders` access scope"),
    (["read_orders"], 'mutation { orderCreate(order: {lineItems: [{variantId: "gid://shopify/ProductVariant/21", '
                      "quantity: 1}]}) { order { id } } }", "orderCreate", "`write_orders` access scope"),
], ids=["orders", "order", "productVariants", "productVariantsCount", "inventoryItem", "nested-inventoryLevels",
        "locations", "customer", "customerByIdentifier", "companies", "metafieldDefinitions", "orderCreate"])
def test_field_without_its_access_scope_is_denied(shop: ShopClient, scopes: list[str], query: str, field: str,
                                                  required: str) -> None:
    shop.reset(scenario(shop={"scopes": scopes}))
    error = only_error(shop.answer(query))
    assert error["message"] == f"Access denied for {field} field. Required access: {required}."
    assert error["extensions"] == {"code": "ACCESS_DENIED", "documentation": "https://shopify.dev/api/usage/access-scopes",
                                   "requiredAccess": f"{required}."}
    assert shop.health()["orders"] == 1


def test_write_scope_grants_its_read_scope_and_companies_take_read_companies(shop: ShopClient) -> None:
    shop.reset(scenario(shop={"scopes": ["write_orders", "read_all_orders", "read_companies"]}))
    assert shop.data(ALL_ORDERS)["orders"]["nodes"] == [{"id": "gid://shopify/Order/900"}]
    assert shop.data("{ companies(first: 1) { nodes { id } } }")["companies"]["nodes"] == [{"id": gid("Company", 1)}]


def test_granted_scopes_are_listed_and_granted_to_issued_tokens(shop: ShopClient) -> None:
    scopes = ["read_products", "write_orders"]
    shop.reset(scenario(shop={"scopes": scopes}))
    installation = shop.data("{ currentAppInstallation { id accessScopes { handle } } }")["currentAppInstallation"]
    assert installation["accessScopes"] == [{"handle": handle} for handle in scopes]
    assert shop.grant().json()["scope"] == "read_products,write_orders"


def test_without_read_all_orders_orders_past_60_days_are_invisible(shop: ShopClient) -> None:
    """Counted from processedAt (an assumption): an order processed 61 days ago is gone, one of 59 days is not."""
    def days_ago(days: int) -> str:
        return format_timestamp(datetime.now(UTC) - timedelta(days=days))
    orders = [{"id": 901, "source_identifier": "OLD", "processed_at": days_ago(61), "created_at": days_ago(1),
               "metafields": {"lenewblack.order_reference": "OLD"}, "line_items": [{"variant_id": 21}]},
              {"id": 902, "source_identifier": "RECENT", "processed_at": days_ago(59),
               "metafields": {"lenewblack.order_reference": "RECENT"}, "line_items": [{"variant_id": 21}]}]
    shop.reset(scenario(shop={"scopes": ["write_orders"]}, orders=orders))
    assert shop.data(ALL_ORDERS)["orders"]["nodes"] == [{"id": gid("Order", 902)}]
    assert found_orders(shop, "source_identifier:OLD") == []
    assert shop.data(ORDER_BY_ID, {"id": gid("Order", 901)})["order"] is None
    assert shop.data(ORDER_BY_REFERENCE, {"value": "OLD"})["orderByIdentifier"] is None
    assert shop.data(ORDER_BY_REFERENCE, {"value": "RECENT"})["orderByIdentifier"] == {"id": gid("Order", 902)}
    assert fields_and_codes(create(shop, with_reference("OLD"))) == [
        (["order", "metafields", "0", "value"], "INVALID")], "invisible is not gone: the custom id is still taken"

    shop.reset(scenario(shop={"scopes": ["write_orders", "read_all_orders"]}, orders=orders))
    assert len(shop.data(ALL_ORDERS)["orders"]["nodes"]) == 2


# --- currencies ----------------------------------------------------------------------------------


def test_foreign_currency_order_carries_both_money_bags(shop: ShopClient) -> None:
    shop.reset(scenario(shop={"currencies": ["USD"]}))
    assert shop.data("{ shop { currencyCode enabledPresentmentCurrencies } }")["shop"] == {
        "currencyCode": "EUR", "enabledPresentmentCurrencies": ["EUR", "USD"]}
    payload = create(shop, {"lineItems": [USD_LINE, {**USD_LINE, "quantity": 1}], "presentmentCurrency": "USD",
                            "currency": "EUR"})
    assert payload["userErrors"] == []
    order = payload["order"]
    assert (order["currencyCode"], order["presentmentCurrencyCode"]) == ("EUR", "USD")
    assert order["totalPriceSet"] == {"shopMoney": {"amount": "135.00", "currencyCode": "EUR"},
                                      "presentmentMoney": {"amount": "148.50", "currencyCode": "USD"}}


def test_shop_currency_order_keeps_one_currency_in_both_bags(shop: ShopClient) -> None:
    order = create(shop, {"lineItems": [EUR_LINE]})["order"]
    assert (order["currencyCode"], order["presentmentCurrencyCode"]) == ("EUR", "EUR")
    assert order["totalPriceSet"]["presentmentMoney"] == {"amount": "90.00", "currencyCode": "EUR"}


@pytest.mark.parametrize(("order", "field"), [
    ({"lineItems": [EUR_LINE], "currency": "USD"}, ["order", "currency"]),
    ({"lineItems": [_line_priced({"amount": "45.00", "currencyCode": "EUR"}, {"amount": "39.00", "currencyCode": "GBP"})],
      "presentmentCurrency": "GBP"}, ["order", "presentmentCurrency"]),
    ({"lineItems": [USD_LINE]}, ["order", "lineItems", "0", "priceSet", "presentmentMoney", "currencyCode"]),
    ({"lineItems": [EUR_LINE], "presentmentCurrency": "USD"}, ["order", "lineItems", "0", "priceSet",
                                                                "presentmentMoney"]),
    ({"lineItems": [line(11, 1)], "presentmentCurrency": "USD"}, ["order", "lineItems", "0", "priceSet"]),
    ({"lineItems": [_line_priced({"amount": "49.50", "currencyCode": "USD"},
                                 {"amount": "49.50", "currencyCode": "USD"})], "presentmentCurrency": "USD"},
     ["order", "lineItems", "0", "priceSet", "shopMoney", "currencyCode"]),
], ids=["currency-not-the-shops", "presentment-not-enabled", "presentment-money-without-presentment-currency",
        "presentment-money-missing", "no-price-set-in-foreign-currency", "shop-money-in-presentment-currency"])
def test_currency_mismatch_is_refused(shop: ShopClient, order: dict[str, Any], field: list[str]) -> None:
    shop.reset(scenario(shop={"currencies": ["USD"]}))
    payload = create(shop, order)
    assert fields_and_codes(payload) == [(field, "INVALID")]
    assert shop.health()["orders"] == 1


def test_scenario_order_in_a_presentment_currency(shop: ShopClient) -> None:
    shop.reset(scenario(shop={"currencies": ["USD"]}, orders=[
        {"id": 903, "currency": "USD", "line_items": [{"variant_id": 21, "quantity": 2, "price": "180.00",
                                                       "presentment_price": "199.00"}]}]))
    order = shop.data("""{ order(id: "gid://shopify/Order/903") { currencyCode presentmentCurrencyCode
      totalPriceSet { shopMoney { amount } presentmentMoney { amount currencyCode } } } }""")["order"]
    assert order == {"currencyCode": "EUR", "presentmentCurrencyCode": "USD", "totalPriceSet": {
        "shopMoney": {"amount": "360.00"}, "presentmentMoney": {"amount": "398.00", "currencyCode": "USD"}}}


# --- command line --------------------------------------------------------------------------------


def test_cli_refuses_a_negative_order_search_lag() -> None:
    result = subprocess.run([sys.executable, "-m", "lnb_pipeline.sandbox.cli", "--order-search-lag", "-1"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "--order-search-lag: seconds cannot be negative" in result.stderr
