"""The Shopify sandbox, exercised over real HTTP the way the pipeline's client talks to Shopify.

The pipeline is developed and tested against this sandbox, so every place where Shopify rejects,
throttles or misbehaves has to be reproduced here: a sandbox that is kinder than Shopify lets bugs
through to production. One server runs for the module; each test starts from a reset of the
scenario below and the standard plan.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from lnb_pipeline.sandbox.http import SandboxServer
from lnb_pipeline.sandbox.shopify.api import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_TOKEN,
    GRANTED_SCOPES,
    SCHEMA_VERSION,
    ShopifyApi,
)
from lnb_pipeline.sandbox.shopify.state import gid

GRAPHQL_PATH = f"/admin/api/{SCHEMA_VERSION}/graphql.json"
TOKEN_PATH = "/admin/oauth/access_token"
GRANT = {"grant_type": "client_credentials", "client_id": DEFAULT_CLIENT_ID, "client_secret": DEFAULT_CLIENT_SECRET}
CHANGED_SINCE = "2025-12-01T00:00:00Z"
"""After every timestamp in ``SCENARIO`` and before any change made while a test runs."""

SCENARIO: dict[str, Any] = {
    "shop": {"name": "Test Brand", "domain": "test-brand.myshopify.com", "currency": "EUR"},
    "metafield_definitions": [
        {"owner_type": "CUSTOMER", "namespace": "lenewblack", "key": "retailer_reference", "type": "id",
         "name": "LNB retailer reference"},
        {"owner_type": "ORDER", "namespace": "lenewblack", "key": "order_reference", "type": "id",
         "name": "LNB order reference"},
    ],
    "locations": [
        {"id": 1, "name": "Paris Warehouse", "active": True},
        {"id": 2, "name": "Lyon Store", "active": True},
        {"id": 3, "name": "Old Depot", "active": False},
    ],
    "products": [
        {"id": 1, "title": "Linen Shirt", "updated_at": "2025-01-01T00:00:00Z", "variants": [
            {"id": 11, "title": "Blue / M", "sku": "LS-BLU-M", "barcode": "4006381333931", "price": "49.00",
             "stock": {"1": {"available": 5, "committed": 1, "reserved": 2, "damaged": 3, "safety_stock": 4,
                             "quality_control": 6, "incoming": 7},
                       "2": {"available": -2},
                       "3": {"available": 9}}},
            {"id": 12, "title": "Blue / L", "sku": "LS-BLU-L", "barcode": None, "price": "49.00",
             "stock": {"1": {"available": 0}}},
            {"id": 13, "title": "Gift Wrap", "sku": "LS-WRAP", "barcode": "012345678905", "price": "5.00",
             "tracked": False, "stock": {"1": {"available": 0}}},
        ]},
        {"id": 2, "title": "Wool Coat", "updated_at": "2025-09-01T00:00:00Z", "variants": [
            {"id": 21, "title": "Grey / S", "sku": "WC-GRY-S", "barcode": "4006381333948", "price": "199.00",
             "stock": {"1": {"available": 1}, "2": {"available": 4}}},
            {"id": 22, "title": "Grey / M", "sku": "WC-GRY-M", "barcode": "4006381333955", "price": "199.00",
             "inventory_policy": "CONTINUE", "stock": {"2": {"available": 2}}},
        ]},
    ],
    "customers": [
        {"id": 1, "email": "buyer@boutique.example", "first_name": "Ana", "last_name": "Lopez",
         "metafields": {"lenewblack.retailer_reference": "R001"}},
        {"id": 2, "email": "orders@concept.example", "metafields": {"lenewblack.retailer_reference": "R002"}},
    ],
    "companies": [
        {"id": 1, "name": "Boutique SARL", "external_id": "R001",
         "locations": [{"id": 1, "name": "Boutique HQ", "external_id": "R001-HQ"}],
         "contacts": [{"id": 1, "customer_id": 1}]},
    ],
    "orders": [
        {"id": 900, "name": "#900", "source_name": "lenewblack", "source_identifier": "LNB-OLD-1",
         "tags": ["lenewblack", "wholesale"], "customer_id": 2, "line_items": [{"variant_id": 21, "quantity": 1}]},
    ],
}
VARIANT_NUMBERS = [11, 12, 13, 21, 22]
ALL_QUANTITY_NAMES = ["available", "on_hand", "committed", "reserved", "damaged", "safety_stock",
                      "quality_control", "incoming"]

ORDER_CREATE = """
mutation Create($order: OrderCreateOrderInput!, $options: OrderCreateOptionsInput) {
  orderCreate(order: $order, options: $options) {
    order {
      id name sourceName sourceIdentifier poNumber tags email currencyCode displayFinancialStatus
      customer { id }
      purchasingEntity { __typename ... on PurchasingCompany { company { id } location { id } } }
      totalPriceSet { shopMoney { amount currencyCode } }
      lineItems(first: 5) { nodes { sku quantity variant { id } originalUnitPriceSet { shopMoney { amount } } } }
    }
    userErrors { field message code }
  }
}
"""
ORDERS_FOUND = """
query Find($query: String!) { orders(first: 10, query: $query) { nodes { id name sourceIdentifier } } }
"""
LEVEL_QUANTITIES = """
query Level($item: ID!, $location: ID!, $names: [String!]!) {
  inventoryItem(id: $item) { inventoryLevel(locationId: $location) { quantities(names: $names) { name quantity } } }
}
"""
BULK_RUN = """
mutation Run($query: String!) {
  bulkOperationRunQuery(query: $query, groupObjects: true) {
    bulkOperation { id status } userErrors { field message code }
  }
}
"""
BULK_STATUS = """
query Status($id: ID!) {
  bulkOperation(id: $id) { id status errorCode objectCount rootObjectCount fileSize url partialDataUrl }
}
"""
BULK_CANCEL = """
mutation Cancel($id: ID!) { bulkOperationCancel(id: $id) { bulkOperation { id status } userErrors { field message } } }
"""
VARIANT_STOCK_BULK = """
{ productVariants { edges { node { id sku barcode inventoryItem { id tracked inventoryLevels { edges { node {
  location { id } quantities(names: ["available", "on_hand"]) { name quantity } } } } } } } } }
"""
SHOP_NAME = "{ shop { name } }"
FIVE_VARIANT_IDS = "{ productVariants(first: 5) { nodes { id } } }"
"""Costs 2 + 5 x 1 = 7 points and returns all five variants, so nothing is refunded."""


@dataclass
class ShopClient:
    """What a test needs to talk to one sandbox shop: GraphQL calls and the ``/_sandbox/`` controls."""

    url: str

    def post(self, query: str, variables: dict[str, Any] | None = None, *, token: str | None = DEFAULT_TOKEN,
             timeout: float = 10.0) -> requests.Response:
        headers = {"X-Shopify-Access-Token": token} if token is not None else {}
        return requests.post(self.url + GRAPHQL_PATH, json={"query": query, "variables": variables},
                             headers=headers, timeout=timeout)

    def grant(self, **overrides: str | None) -> requests.Response:
        """A form-encoded client credentials grant, as Shopify documents it; None leaves a parameter out."""
        form = {name: value for name, value in {**GRANT, **overrides}.items() if value is not None}
        return requests.post(self.url + TOKEN_PATH, data=form, timeout=10)

    def issued_token(self) -> str:
        response = self.grant()
        assert response.status_code == 200, response.text
        return response.json()["access_token"]

    def answer(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The whole JSON answer of a request Shopify answers with HTTP 200 (errors included)."""
        response = self.post(query, variables)
        assert response.status_code == 200, response.text
        return response.json()

    def data(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The ``data`` of an answer that must carry no GraphQL error."""
        body = self.answer(query, variables)
        assert "errors" not in body, body["errors"]
        return body["data"]

    def control(self, method: str, route: str, payload: Any = None) -> requests.Response:
        return requests.request(method, f"{self.url}/_sandbox/{route}", json=payload, timeout=10)

    def configure(self, **settings: Any) -> dict[str, Any]:
        response = self.control("POST", "config", settings)
        assert response.status_code == 200, response.text
        return response.json()

    def arm(self, **fault: Any) -> None:
        response = self.control("POST", "faults", fault)
        assert response.status_code == 200, response.text

    def reset(self, scenario: dict[str, Any] | str = SCENARIO) -> None:
        response = self.control("POST", "reset", {"scenario": scenario})
        assert response.status_code == 200, response.text

    def stats(self) -> dict[str, Any]:
        return self.control("GET", "stats").json()

    def health(self) -> dict[str, Any]:
        return self.control("GET", "health").json()


@pytest.fixture(scope="module")
def standard_server() -> Iterator[SandboxServer]:
    server = SandboxServer(ShopifyApi(SCENARIO, plan="standard"), port=0).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def plus_server() -> Iterator[SandboxServer]:
    server = SandboxServer(ShopifyApi(SCENARIO, plan="plus"), port=0).start()
    yield server
    server.stop()


@pytest.fixture
def shop(standard_server: SandboxServer) -> ShopClient:
    """The standard-plan shop with the scenario's data, a full bucket and no faults or bulk settings.
    Searches see orders at once: the index lag has tests of its own (test_sandbox_shopify_strict.py)."""
    client = ShopClient(standard_server.url)
    client.reset()
    client.configure(plan="standard", order_search_lag_seconds=0)
    return client


@pytest.fixture
def plus_shop(plus_server: SandboxServer) -> ShopClient:
    """A Shopify Plus shop, for what Shopify reserves to Plus (B2B company locations)."""
    client = ShopClient(plus_server.url)
    client.reset()
    client.configure(order_search_lag_seconds=0)
    return client


@pytest.fixture
def frozen_bucket(shop: ShopClient) -> ShopClient:
    """A bucket that does not refill, so point balances can be asserted exactly."""
    shop.configure(restore_rate=0)
    return shop


# --- helpers -------------------------------------------------------------------------------------


def variant_gid(number: int) -> str:
    return gid("ProductVariant", number)


def line(variant: int, quantity: int) -> dict[str, Any]:
    return {"variantId": variant_gid(variant), "quantity": quantity}


def create_order(shop: ShopClient, order: dict[str, Any], options: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``orderCreate`` payload: ``{order, userErrors}``."""
    return shop.data(ORDER_CREATE, {"order": order, "options": options})["orderCreate"]


def found_orders(shop: ShopClient, search: str) -> list[dict[str, Any]]:
    return shop.data(ORDERS_FOUND, {"query": search})["orders"]["nodes"]


def quantities(shop: ShopClient, variant: int, location: int,
               names: tuple[str, ...] = ("available", "committed", "on_hand")) -> dict[str, int]:
    data = shop.data(LEVEL_QUANTITIES, {"item": gid("InventoryItem", variant), "location": gid("Location", location),
                                        "names": list(names)})
    return {q["name"]: q["quantity"] for q in data["inventoryItem"]["inventoryLevel"]["quantities"]}


def variant_numbers(nodes: list[dict[str, Any]]) -> list[int]:
    return [int(node["id"].rsplit("/", 1)[-1]) for node in nodes]


def searched_variants(shop: ShopClient, search: str) -> list[int]:
    data = shop.data("query($q: String) { productVariants(first: 50, query: $q) { nodes { id } } }", {"q": search})
    return variant_numbers(data["productVariants"]["nodes"])


def cost_of(body: dict[str, Any]) -> dict[str, Any]:
    return body["extensions"]["cost"]


def run_bulk(shop: ShopClient, query: str) -> dict[str, Any]:
    """The ``bulkOperationRunQuery`` payload for a bulk query."""
    return shop.data(BULK_RUN, {"query": query})["bulkOperationRunQuery"]


def start_bulk(shop: ShopClient, query: str = VARIANT_STOCK_BULK) -> str:
    payload = run_bulk(shop, query)
    assert payload["userErrors"] == []
    return payload["bulkOperation"]["id"]


def wait_for_bulk(shop: ShopClient, operation_id: str, timeout: float = 10.0) -> dict[str, Any]:
    """Poll as a client would until the operation reaches a final status."""
    deadline = time.monotonic() + timeout
    while True:
        operation = shop.data(BULK_STATUS, {"id": operation_id})["bulkOperation"]
        if operation["status"] in ("COMPLETED", "FAILED", "CANCELED", "EXPIRED"):
            return operation
        assert time.monotonic() < deadline, f"bulk operation still {operation['status']}"
        time.sleep(0.05)


def jsonl(url: str) -> list[dict[str, Any]]:
    response = requests.get(url, timeout=10)
    assert response.status_code == 200, response.text
    return [json.loads(text) for text in response.text.splitlines()]


def wait_for_logged_status(shop: ShopClient, status: int, timeout: float = 5.0) -> dict[str, Any]:
    """The first logged request with that status (0: closed unanswered), once the server has finished it.

    A request the client gave up on is still being served; waiting keeps it out of the next test's stats.
    """
    deadline = time.monotonic() + timeout
    while True:
        entries = [e for e in shop.control("GET", "requests").json() if e["status"] == status]
        if entries:
            return entries[0]
        assert time.monotonic() < deadline, f"no request logged with status {status}"
        time.sleep(0.05)


def throttled_code(body: dict[str, Any]) -> str | None:
    errors = body.get("errors") or [{}]
    return errors[0].get("extensions", {}).get("code")


# --- transport and auth --------------------------------------------------------------------------


@pytest.mark.parametrize("token", ["wrong-token", None], ids=["wrong", "missing"])
def test_request_without_the_right_access_token_is_refused_with_401(shop: ShopClient, token: str | None) -> None:
    """Shopify answers a bad token at the HTTP level, before any GraphQL work."""
    response = shop.post(SHOP_NAME, token=token)
    assert response.status_code == 401
    assert response.json() == {
        "errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}


@pytest.mark.parametrize("path", ["/admin/api/2026-04/products.json", "/admin/api/2026-05/graphql.json", "/nope"])
def test_unknown_path_is_404(shop: ShopClient, path: str) -> None:
    """REST endpoints, versions Shopify never releases (only Jan/Apr/Jul/Oct) and other paths do not exist."""
    response = requests.post(shop.url + path, json={"query": SHOP_NAME},
                             headers={"X-Shopify-Access-Token": DEFAULT_TOKEN}, timeout=10)
    assert response.status_code == 404


@pytest.mark.parametrize("body", [
    b"not json", b'{"variables": {}}', b'{"query": "{ shop { name } }", "variables": [1]}', b'{"query": "   "}',
], ids=["not-json", "no-query", "variables-not-object", "blank-query"])
def test_body_that_is_not_a_graphql_request_is_400(shop: ShopClient, body: bytes) -> None:
    response = requests.post(shop.url + GRAPHQL_PATH, data=body, timeout=10, headers={
        "X-Shopify-Access-Token": DEFAULT_TOKEN, "Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json() == {"errors": {"query": "Required parameter missing or invalid"}}


# --- client credentials grant --------------------------------------------------------------------


def test_client_credentials_grant_issues_a_fresh_expiring_shpat_token(shop: ShopClient) -> None:
    response = shop.grant()
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "scope", "expires_in"}
    assert re.fullmatch(r"shpat_[0-9a-f]{32}", body["access_token"])
    assert (body["scope"], body["expires_in"]) == (GRANTED_SCOPES, 86399)
    assert shop.post(SHOP_NAME, token=body["access_token"]).json()["data"] == {"shop": {"name": "Test Brand"}}
    assert shop.issued_token() != body["access_token"]
    assert shop.post(SHOP_NAME).status_code == 200, "the static token keeps working beside issued ones"


def test_client_credentials_grant_also_takes_a_json_body(shop: ShopClient) -> None:
    """Shopify's own Node library (@shopify/shopify-api) sends the grant as JSON."""
    response = requests.post(shop.url + TOKEN_PATH, json=GRANT, timeout=10)
    assert response.status_code == 200
    assert shop.post(SHOP_NAME, token=response.json()["access_token"]).status_code == 200


@pytest.mark.parametrize(("overrides", "error", "description"), [
    ({"client_secret": "wrong-secret"}, "invalid_client",
     "Client authentication failed: unknown client_id or wrong client_secret"),
    ({"client_id": "another-app"}, "invalid_client",
     "Client authentication failed: unknown client_id or wrong client_secret"),
    ({"grant_type": "authorization_code"}, "unsupported_grant_type",
     "grant_type 'authorization_code' is not supported: use client_credentials"),
    ({"client_secret": None}, "invalid_request", "Missing required parameter: client_secret"),
    ({"grant_type": None, "client_id": ""}, "invalid_request", "Missing required parameter: grant_type, client_id"),
], ids=["wrong-secret", "unknown-client", "wrong-grant-type", "no-secret", "no-grant-type-empty-id"])
def test_refused_grant_is_an_rfc_6749_error_and_issues_nothing(
    shop: ShopClient, overrides: dict[str, str | None], error: str, description: str
) -> None:
    response = shop.grant(**overrides)
    assert response.status_code == 400
    assert response.json() == {"error": error, "error_description": description}
    assert "tokens_issued" not in shop.stats()


@pytest.mark.parametrize("body", [b"", b"grant_type=client_credentials&client_id=x&client_secret=y"],
                         ids=["empty", "form-labelled-json"])
def test_grant_body_neither_form_nor_json_has_no_parameters(shop: ShopClient, body: bytes) -> None:
    response = requests.post(shop.url + TOKEN_PATH, data=body, headers={"Content-Type": "application/json"},
                             timeout=10)
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_request",
                               "error_description": "Missing required parameter: grant_type, client_id, client_secret"}


def test_token_endpoint_only_takes_post(shop: ShopClient) -> None:
    assert requests.get(shop.url + TOKEN_PATH, params=GRANT, timeout=10).status_code == 405


def test_issued_token_past_its_lifetime_gets_the_wrong_token_401(shop: ShopClient) -> None:
    assert shop.configure(token_lifetime_seconds=1)["token_lifetime_seconds"] == 1
    response = shop.grant()
    assert response.json()["expires_in"] == 1
    token = response.json()["access_token"]
    assert shop.post(SHOP_NAME, token=token).status_code == 200
    time.sleep(1.05)
    expired = shop.post(SHOP_NAME, token=token)
    assert expired.status_code == 401
    assert expired.json() == {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}


def test_expire_control_ends_every_live_token(shop: ShopClient) -> None:
    tokens = [shop.issued_token(), shop.issued_token()]
    assert shop.health()["live_tokens"] == 2
    assert shop.control("POST", "tokens/expire").json() == {"expired": 2}
    assert [shop.post(SHOP_NAME, token=token).status_code for token in tokens] == [401, 401]
    assert shop.health()["live_tokens"] == 0
    assert shop.post(SHOP_NAME).status_code == 200


def test_credentials_and_lifetime_are_settings_that_reset_restores(shop: ShopClient) -> None:
    settings = shop.configure(client_id="other-app", client_secret="other-secret", token_lifetime_seconds=60)
    assert (settings["client_id"], settings["token_lifetime_seconds"]) == ("other-app", 60)
    assert "client_secret" not in settings
    assert shop.grant().status_code == 400
    response = shop.grant(client_id="other-app", client_secret="other-secret")
    assert response.json()["expires_in"] == 60
    token = response.json()["access_token"]

    shop.reset()
    assert shop.grant(client_id="other-app", client_secret="other-secret").status_code == 400
    assert shop.grant().json()["expires_in"] == 86399
    assert shop.post(SHOP_NAME, token=token).status_code == 401, "a reset forgets issued tokens"


@pytest.mark.parametrize("settings", [
    {"token_lifetime_seconds": 0}, {"token_lifetime_seconds": 1.5}, {"token_lifetime_seconds": "60"},
    {"token_lifetime_seconds": True}, {"client_id": ""}, {"client_secret": None},
])
def test_invalid_credential_setting_is_refused_and_changes_nothing(shop: ShopClient, settings: dict[str, Any]) -> None:
    response = shop.control("POST", "config", settings)
    assert response.status_code == 400
    assert shop.grant().json()["expires_in"] == 86399


def test_grants_are_counted_and_logged_without_the_secret(shop: ShopClient) -> None:
    shop.grant()
    shop.grant(client_secret="wrong-secret")
    stats = shop.stats()
    assert stats["requests"] == {f"POST {TOKEN_PATH}": 2}
    assert (stats["statuses"], stats["tokens_issued"]) == ({"200": 1, "400": 1}, 1)
    logged = shop.control("GET", "requests").json()
    assert [entry["variables"] for entry in logged] == [{**GRANT, "client_secret": "***"}] * 2
    assert DEFAULT_CLIENT_SECRET not in json.dumps(logged) and "wrong-secret" not in json.dumps(logged)


def test_faults_can_target_the_token_endpoint(shop: ShopClient) -> None:
    """``throttle`` there is HTTP 429 with Retry-After, as outside GraphQL Shopify has no THROTTLED body."""
    shop.arm(kind="throttle", match=f"POST {TOKEN_PATH}", count=1)
    throttled = shop.grant()
    assert (throttled.status_code, throttled.headers["Retry-After"]) == (429, "1")
    assert shop.grant().status_code == 200
    assert shop.post(SHOP_NAME).status_code == 200
    assert shop.stats()["faults_injected"] == {"throttle": 1}


# --- queries -------------------------------------------------------------------------------------


def test_shop_query_reports_scenario_shop_on_the_standard_plan(shop: ShopClient) -> None:
    data = shop.data("{ shop { id name myshopifyDomain currencyCode plan { shopifyPlus publicDisplayName } } }")
    assert data == {"shop": {"id": "gid://shopify/Shop/1", "name": "Test Brand",
                             "myshopifyDomain": "test-brand.myshopify.com", "currencyCode": "EUR",
                             "plan": {"shopifyPlus": False, "publicDisplayName": "Standard"}}}


def test_plus_server_reports_shopify_plus(plus_shop: ShopClient) -> None:
    assert plus_shop.data("{ shop { plan { shopifyPlus } } }") == {"shop": {"plan": {"shopifyPlus": True}}}


def test_locations_hide_the_inactive_one_unless_include_inactive(shop: ShopClient) -> None:
    query = "query($all: Boolean) { locations(first: 10, includeInactive: $all) { nodes { id name isActive } } }"
    active = shop.data(query, {"all": False})["locations"]["nodes"]
    every = shop.data(query, {"all": True})["locations"]["nodes"]
    assert active == [
        {"id": "gid://shopify/Location/1", "name": "Paris Warehouse", "isActive": True},
        {"id": "gid://shopify/Location/2", "name": "Lyon Store", "isActive": True},
    ]
    assert every == [*active, {"id": "gid://shopify/Location/3", "name": "Old Depot", "isActive": False}]


@pytest.mark.parametrize(("search", "expected"), [
    ("sku:LS-BLU-M", [11]),
    ("sku:LS-BLU*", [11, 12]),
    ("barcode:4006381333948", [21]),
    ("barcode:012345678905", [13]),
    ("-sku:LS-BLU-M", [12, 13, 21, 22]),
    ("sku:LS-BLU-M OR sku:WC-GRY-M", [11, 22]),
    (f"updated_at:>'{CHANGED_SINCE}'", []),
    ("updated_at:>'2025-06-01T00:00:00Z'", [21, 22]),
    ("updated_at:<='2025-06-01'", [11, 12, 13]),
])
def test_product_variants_filter_by_search_syntax(shop: ShopClient, search: str, expected: list[int]) -> None:
    assert searched_variants(shop, search) == expected


def test_variant_fields_keep_null_barcode_and_product(shop: ShopClient) -> None:
    data = shop.data('{ productVariants(first: 1, query: "sku:LS-BLU-L") { nodes { id sku barcode updatedAt '
                     "inventoryPolicy product { id status } } } }")
    assert data["productVariants"]["nodes"] == [{
        "id": "gid://shopify/ProductVariant/12", "sku": "LS-BLU-L", "barcode": None,
        "updatedAt": "2025-01-01T00:00:00Z", "inventoryPolicy": "DENY",
        "product": {"id": "gid://shopify/Product/1", "status": "ACTIVE"}}]


def test_product_variants_count_is_exact_and_follows_the_query(shop: ShopClient) -> None:
    data = shop.data('{ all: productVariantsCount { count precision } '
                     'coats: productVariantsCount(query: "sku:WC-*") { count precision } '
                     "capped: productVariantsCount(limit: 3) { count precision } }")
    assert data == {"all": {"count": 5, "precision": "EXACT"}, "coats": {"count": 2, "precision": "EXACT"},
                    "capped": {"count": 3, "precision": "AT_LEAST"}}


def test_quantities_report_all_eight_names_with_on_hand_the_sum_of_its_parts(shop: ShopClient) -> None:
    """on_hand = available + committed + reserved + damaged + safety_stock + quality_control (not incoming)."""
    assert quantities(shop, 11, 1, tuple(ALL_QUANTITY_NAMES)) == {
        "available": 5, "on_hand": 21, "committed": 1, "reserved": 2, "damaged": 3, "safety_stock": 4,
        "quality_control": 6, "incoming": 7}


def test_available_can_be_negative_and_untracked_items_say_so(shop: ShopClient) -> None:
    data = shop.data('{ productVariants(first: 10, query: "sku:LS-BLU-M OR sku:LS-WRAP") { nodes { sku '
                     "inventoryItem { tracked inventoryLevels(first: 5) { nodes { location { id } "
                     'quantities(names: ["available", "on_hand"]) { name quantity } } } } } } }')
    shirt, wrap = data["productVariants"]["nodes"]
    lyon = shirt["inventoryItem"]["inventoryLevels"]["nodes"][1]
    assert lyon == {"location": {"id": "gid://shopify/Location/2"},
                    "quantities": [{"name": "available", "quantity": -2}, {"name": "on_hand", "quantity": -2}]}
    assert (shirt["inventoryItem"]["tracked"], wrap["inventoryItem"]["tracked"]) == (True, False)


def test_unknown_quantity_name_is_an_error(shop: ShopClient) -> None:
    body = shop.answer('{ inventoryItem(id: "gid://shopify/InventoryItem/11") { inventoryLevel(locationId: '
                       '"gid://shopify/Location/1") { quantities(names: ["sellable"]) { name quantity } } } }')
    assert body["errors"][0]["message"].startswith("Invalid quantity name(s): sellable.")


def test_location_levels_updated_since_show_only_stock_changed_afterwards(shop: ShopClient) -> None:
    """The incremental stock read: levels touched after a timestamp, per location."""
    query = """query($loc: ID!, $q: String) { location(id: $loc) { inventoryLevels(first: 50, query: $q) { nodes {
      updatedAt quantities(names: ["available"]) { name quantity }
      item { id sku tracked variants(first: 1) { nodes { id barcode sku } } } } } } }"""
    since = {"loc": gid("Location", 1), "q": f"updated_at:>'{CHANGED_SINCE}'"}
    assert shop.data(query, since)["location"]["inventoryLevels"]["nodes"] == []

    response = shop.control("POST", "inventory", {"changes": [{"variant_id": 11, "location_id": 1, "available": 8}]})
    assert response.json() == {"updated": 1}

    (level,) = shop.data(query, since)["location"]["inventoryLevels"]["nodes"]
    assert level["updatedAt"] > CHANGED_SINCE
    assert level["quantities"] == [{"name": "available", "quantity": 8}]
    assert level["item"] == {"id": "gid://shopify/InventoryItem/11", "sku": "LS-BLU-M", "tracked": True, "variants": {
        "nodes": [{"id": "gid://shopify/ProductVariant/11", "barcode": "4006381333931", "sku": "LS-BLU-M"}]}}
    all_levels = shop.data(query, {"loc": gid("Location", 1)})["location"]["inventoryLevels"]["nodes"]
    assert len(all_levels) == 4
    assert searched_variants(shop, f"updated_at:>'{CHANGED_SINCE}'") == [11]


@pytest.mark.parametrize("change", [{"variant_id": 99, "location_id": 1}, {"variant_id": 22, "location_id": 1}],
                         ids=["unknown-variant", "not-stocked-there"])
def test_inventory_control_refuses_levels_that_do_not_exist(shop: ShopClient, change: dict[str, int]) -> None:
    response = shop.control("POST", "inventory", {"changes": [{**change, "available": 1}]})
    assert response.status_code == 400


def test_customer_found_by_retailer_reference_metafield(shop: ShopClient) -> None:
    query = """query($ref: String!) { customerByIdentifier(identifier: {customId: {namespace: "lenewblack",
      key: "retailer_reference", value: $ref}}) { id displayName defaultEmailAddress { emailAddress } } }"""
    assert shop.data(query, {"ref": "R001"})["customerByIdentifier"] == {
        "id": "gid://shopify/Customer/1", "displayName": "Ana Lopez",
        "defaultEmailAddress": {"emailAddress": "buyer@boutique.example"}}
    assert shop.data(query, {"ref": "R404"})["customerByIdentifier"] is None


def test_company_found_by_external_id_with_its_locations_and_contacts(shop: ShopClient) -> None:
    query = """query($q: String) { companies(first: 5, query: $q) { nodes { id name externalId
      locations(first: 5) { nodes { id name externalId currency } }
      contacts(first: 5) { nodes { id isMainContact customer { id } } } } } }"""
    assert shop.data(query, {"q": "external_id:R001"})["companies"]["nodes"] == [{
        "id": "gid://shopify/Company/1", "name": "Boutique SARL", "externalId": "R001",
        "locations": {"nodes": [{"id": "gid://shopify/CompanyLocation/1", "name": "Boutique HQ",
                                 "externalId": "R001-HQ", "currency": "EUR"}]},
        "contacts": {"nodes": [{"id": "gid://shopify/CompanyContact/1", "isMainContact": True,
                                "customer": {"id": "gid://shopify/Customer/1"}}]}}]
    assert shop.data(query, {"q": "external_id:R002"})["companies"]["nodes"] == []


@pytest.mark.parametrize(("search", "expected"), [
    ("source_identifier:LNB-OLD-1", ["gid://shopify/Order/900"]),
    ("source_identifier:LNB-OLD-2", []),
    ("tag:wholesale", ["gid://shopify/Order/900"]),
    ("tag:retail", []),
])
def test_orders_searchable_by_source_identifier_and_tag(shop: ShopClient, search: str, expected: list[str]) -> None:
    assert [o["id"] for o in found_orders(shop, search)] == expected


def test_order_by_id_returns_its_lines_and_customer(shop: ShopClient) -> None:
    query = """query($id: ID!) { order(id: $id) { name sourceIdentifier customer { id }
      lineItems(first: 5) { nodes { sku quantity } } totalPriceSet { shopMoney { amount currencyCode } } } }"""
    assert shop.data(query, {"id": "gid://shopify/Order/900"})["order"] == {
        "name": "#900", "sourceIdentifier": "LNB-OLD-1", "customer": {"id": "gid://shopify/Customer/2"},
        "lineItems": {"nodes": [{"sku": "WC-GRY-S", "quantity": 1}]},
        "totalPriceSet": {"shopMoney": {"amount": "199.00", "currencyCode": "EUR"}}}
    assert shop.data(query, {"id": "gid://shopify/Order/1"})["order"] is None


def test_unknown_search_field_is_ignored_with_a_warning_not_an_error(shop: ShopClient) -> None:
    """Shopify ignores a field it does not know and says so in extensions: all variants come back."""
    body = shop.answer('{ productVariants(first: 10, query: "colour:blue") { nodes { id } } }')
    assert "errors" not in body
    assert variant_numbers(body["data"]["productVariants"]["nodes"]) == VARIANT_NUMBERS
    assert body["extensions"]["search"] == [
        {"warnings": [{"field": "colour", "message": "Invalid search field for this query."}]}]


# --- pagination ----------------------------------------------------------------------------------


def test_cursor_pagination_walks_every_variant_exactly_once(shop: ShopClient) -> None:
    query = """query($after: String) { productVariants(first: 2, after: $after) {
      nodes { id } pageInfo { hasNextPage hasPreviousPage endCursor } } }"""
    seen: list[int] = []
    pages: list[tuple[bool, bool]] = []
    after = None
    while True:
        connection = shop.data(query, {"after": after})["productVariants"]
        seen += variant_numbers(connection["nodes"])
        info = connection["pageInfo"]
        pages.append((info["hasNextPage"], info["hasPreviousPage"]))
        if not info["hasNextPage"]:
            break
        after = info["endCursor"]
    assert seen == VARIANT_NUMBERS
    assert pages == [(True, False), (True, True), (False, True)]


@pytest.mark.parametrize(("query", "message"), [
    ("{ productVariants { nodes { id } } }", "you must provide one of first or last"),
    ("{ productVariants(first: 251) { nodes { id } } }", "The first argument must be between 0 and 250, got 251."),
], ids=["missing", "251"])
def test_page_size_missing_or_above_250_is_a_graphql_error(shop: ShopClient, query: str, message: str) -> None:
    body = shop.answer(query)
    assert [e["message"] for e in body["errors"]] == [message]
    assert body["data"] is None


def test_garbage_cursor_is_a_graphql_error(shop: ShopClient) -> None:
    body = shop.answer('{ productVariants(first: 2, after: "not-a-cursor") { nodes { id } } }')
    assert body["errors"][0]["message"] == "Invalid cursor for current pagination sort: 'not-a-cursor'"


# --- GraphQL validation --------------------------------------------------------------------------


def test_field_outside_the_schema_subset_fails_validation_without_data(shop: ShopClient) -> None:
    """Shop.billingAddress exists in Shopify but not in the subset the project may rely on."""
    body = shop.answer("{ shop { name billingAddress { city } } }")
    assert "data" not in body
    assert [e["message"] for e in body["errors"]] == ["Cannot query field 'billingAddress' on type 'Shop'."]


def test_syntax_error_is_reported_as_graphql_error(shop: ShopClient) -> None:
    body = shop.answer("{ shop { name }")
    assert body["errors"][0]["message"].startswith("Syntax Error")


def test_introspection_lists_the_schema_types(shop: ShopClient) -> None:
    names = {t["name"] for t in shop.data("{ __schema { types { name } } }")["__schema"]["types"]}
    assert {"QueryRoot", "Mutation", "ProductVariant", "InventoryLevel", "OrderCreateUserErrorCode"} <= names
    assert "DraftOrder" not in names


# --- query cost ----------------------------------------------------------------------------------


def test_every_executed_answer_carries_the_cost_extension(shop: ShopClient) -> None:
    answers = [
        shop.answer(SHOP_NAME),
        shop.answer("mutation($o: OrderCreateOrderInput!) { orderCreate(order: $o) { userErrors { code } } }",
                    {"o": {"lineItems": []}}),
        shop.answer("{ productVariants { nodes { id } } }"),
    ]
    for body in answers:
        assert set(cost_of(body)) == {"requestedQueryCost", "actualQueryCost", "throttleStatus"}
        assert set(cost_of(body)["throttleStatus"]) == {"maximumAvailable", "currentlyAvailable", "restoreRate"}
    assert [cost_of(body)["requestedQueryCost"] for body in answers] == [1, 10, 2]


def test_requested_cost_follows_the_published_model(frozen_bucket: ShopClient) -> None:
    """Objects 1, connections 2 + first x node cost; the client sizes its pages from this number."""
    query = """{ shop { name } productVariants(first: 3) { nodes { id sku inventoryItem { tracked
      inventoryLevels(first: 2) { nodes { location { id } quantities(names: ["available"]) { name quantity } } }
    } } } }"""
    level = 1 + 1 + 1  # the level, its location, its quantities
    variant = 1 + 1 + (2 + 2 * level)  # the variant, its inventoryItem, the levels connection
    requested = 1 + (2 + 3 * variant)
    returned_levels = 2 + 1 + 1  # variants 11, 12 and 13: 11 is stocked at more than two locations
    actual = 1 + 2 + 3 * (1 + 1 + 2) + returned_levels * level
    body = frozen_bucket.answer(query)
    assert cost_of(body) == {"requestedQueryCost": requested, "actualQueryCost": actual, "throttleStatus": {
        "maximumAvailable": 2000.0, "currentlyAvailable": 2000 - actual, "restoreRate": 0.0}}
    assert (requested, actual) == (33, 27)


def test_mutation_costs_ten(frozen_bucket: ShopClient) -> None:
    body = frozen_bucket.answer(BULK_CANCEL, {"id": "gid://shopify/BulkOperation/999"})
    assert (cost_of(body)["requestedQueryCost"], cost_of(body)["actualQueryCost"]) == (10, 10)
    assert cost_of(body)["throttleStatus"]["currentlyAvailable"] == 1990


def test_fewer_nodes_returned_cost_less_and_the_difference_is_refunded(frozen_bucket: ShopClient) -> None:
    query = "query($q: String) { productVariants(first: 10, query: $q) { nodes { id } } }"
    one = frozen_bucket.answer(query, {"q": "sku:LS-BLU-M"})
    assert (cost_of(one)["requestedQueryCost"], cost_of(one)["actualQueryCost"]) == (12, 3)
    assert cost_of(one)["throttleStatus"]["currentlyAvailable"] == 1997
    none = frozen_bucket.answer(query, {"q": "sku:NOTHING"})
    assert (cost_of(none)["requestedQueryCost"], cost_of(none)["actualQueryCost"]) == (12, 2)
    assert cost_of(none)["throttleStatus"]["currentlyAvailable"] == 1995
    assert frozen_bucket.stats()["points_spent"] == 5


def test_query_above_1000_points_is_refused_and_charges_nothing(frozen_bucket: ShopClient) -> None:
    """The trap from the contract: 250 variants x inventoryLevels(first: 10)."""
    query = """{ productVariants(first: 250) { nodes { id
      inventoryItem { inventoryLevels(first: 10) { nodes { id } } } } } }"""
    cost = 2 + 250 * (1 + 1 + (2 + 10 * 1))
    body = frozen_bucket.answer(query)
    assert "data" not in body
    assert body["errors"][0]["extensions"] == {"code": "MAX_COST_EXCEEDED", "cost": cost, "maxCost": 1000}
    assert cost_of(body) == {"requestedQueryCost": cost, "actualQueryCost": None, "throttleStatus": {
        "maximumAvailable": 2000.0, "currentlyAvailable": 2000, "restoreRate": 0.0}}
    assert cost_of(frozen_bucket.answer(SHOP_NAME))["throttleStatus"]["currentlyAvailable"] == 1999


# --- throttling ----------------------------------------------------------------------------------


def test_empty_bucket_throttles_until_the_restore_rate_refills_it(shop: ShopClient) -> None:
    """THROTTLED comes as HTTP 200; waiting (cost - available) / restore rate is enough to go on."""
    assert shop.configure(bucket_size=50, restore_rate=10)["bucket_size"] == 50
    for attempt in range(1, 12):
        body = shop.answer(FIVE_VARIANT_IDS)
        if throttled_code(body) == "THROTTLED":
            break
    else:
        pytest.fail("a 50-point bucket was never exhausted by 7-point queries")
    assert attempt == 8  # 7 queries of 7 points leave 1 point
    assert body["errors"][0]["message"] == "Throttled"
    assert "data" not in body
    status = cost_of(body)["throttleStatus"]
    assert (cost_of(body)["requestedQueryCost"], cost_of(body)["actualQueryCost"]) == (7, None)
    assert (status["maximumAvailable"], status["restoreRate"]) == (50.0, 10.0)
    assert status["currentlyAvailable"] < 7

    time.sleep((7 - status["currentlyAvailable"]) / 10 + 0.1)
    retried = shop.answer(FIVE_VARIANT_IDS)
    assert variant_numbers(retried["data"]["productVariants"]["nodes"]) == VARIANT_NUMBERS
    assert shop.stats()["throttled"] == 1


def test_plan_setting_changes_bucket_and_restore_rate(shop: ShopClient) -> None:
    assert shop.configure(plan="plus") == {"plan": "plus", "restore_rate": 1000.0, "bucket_size": 20000.0,
                                           "bulk_delay_seconds": 0.0, "bulk_fail_with": None,
                                           "bulk_url_ttl_seconds": 604800,
                                           "client_id": DEFAULT_CLIENT_ID, "token_lifetime_seconds": 86399,
                                           "order_search_lag_seconds": 0, "order_rate_window_seconds": 60.0,
                                           "orders_per_window": 5}
    status = cost_of(shop.answer(SHOP_NAME))["throttleStatus"]
    assert (status["maximumAvailable"], status["restoreRate"]) == (20000.0, 1000.0)


# --- orderCreate ---------------------------------------------------------------------------------


def test_order_create_makes_an_order_findable_by_source_identifier(shop: ShopClient) -> None:
    payload = create_order(shop, {
        "lineItems": [{**line(11, 2), "priceSet": {"shopMoney": {"amount": "45.00", "currencyCode": "EUR"}}},
                      line(21, 1)],
        "customer": {"toAssociate": {"id": gid("Customer", 1)}},
        "sourceName": "lenewblack", "sourceIdentifier": "LNB-ORD-1", "poNumber": "PO-77",
        "tags": ["lenewblack", "wholesale"], "financialStatus": "PENDING",
    })
    assert payload["userErrors"] == []
    order = payload["order"]
    assert order == {
        "id": order["id"], "name": "#1002", "sourceName": "lenewblack", "sourceIdentifier": "LNB-ORD-1",
        "poNumber": "PO-77", "tags": ["lenewblack", "wholesale"], "email": "buyer@boutique.example",
        "currencyCode": "EUR", "displayFinancialStatus": "PENDING", "customer": {"id": "gid://shopify/Customer/1"},
        "purchasingEntity": {"__typename": "Customer"},
        "totalPriceSet": {"shopMoney": {"amount": "289.00", "currencyCode": "EUR"}},
        "lineItems": {"nodes": [
            {"sku": "LS-BLU-M", "quantity": 2, "variant": {"id": variant_gid(11)},
             "originalUnitPriceSet": {"shopMoney": {"amount": "45.00"}}},
            {"sku": "WC-GRY-S", "quantity": 1, "variant": {"id": variant_gid(21)},
             "originalUnitPriceSet": {"shopMoney": {"amount": "199.00"}}},
        ]},
    }
    assert found_orders(shop, "source_identifier:LNB-ORD-1") == [
        {"id": order["id"], "name": "#1002", "sourceIdentifier": "LNB-ORD-1"}]
    assert shop.data("query($id: ID!) { order(id: $id) { poNumber } }", {"id": order["id"]}) == {
        "order": {"poNumber": "PO-77"}}


@pytest.mark.parametrize(("order", "expected"), [
    ({"lineItems": [line(99, 1)]}, [(["order", "lineItems", "0", "variantId"], "INVALID")]),
    ({"lineItems": [line(11, 0)]}, [(["order", "lineItems", "0", "quantity"], "INVALID")]),
    ({"lineItems": []}, [(["order", "lineItems"], "INVALID")]),
    ({"lineItems": [line(11, 1)], "customer": {"toAssociate": {"id": gid("Customer", 99)}}},
     [(["order", "customer", "toAssociate", "id"], "INVALID")]),
    ({"lineItems": [line(11, 1)], "companyLocationId": gid("CompanyLocation", 1)},
     [(["order", "companyLocationId"], "INVALID")]),
    ({"lineItems": [line(11, 1)], "currency": "USD"}, [(["order", "currency"], "INVALID")]),
    ({"lineItems": [{**line(11, 1), "priceSet": {"shopMoney": {"amount": "10.00", "currencyCode": "GBP"}}}]},
     [(["order", "lineItems", "0", "priceSet", "shopMoney", "currencyCode"], "INVALID")]),
    ({"lineItems": [line(11, 1)], "customer": {"toAssociate": {"id": gid("Customer", 1)},
                                                "toUpsert": {"email": "new@shop.example"}}},
     [(["order", "customer"], "REDUNDANT_CUSTOMER_FIELDS")]),
    ({"lineItems": [line(11, 1)], "processedAt": "2999-01-01T00:00:00Z"},
     [(["order", "processedAt"], "PROCESSED_AT_INVALID")]),
], ids=["unknown-variant", "quantity-0", "no-lines", "unknown-customer", "b2b-on-standard", "usd-not-enabled",
        "price-currency-mismatch", "associate-and-upsert", "processed-in-future"])
def test_order_create_refuses_bad_input_with_user_errors_and_creates_nothing(
        shop: ShopClient, order: dict[str, Any], expected: list[tuple[list[str], str]]) -> None:
    payload = create_order(shop, order)
    assert payload["order"] is None
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == expected
    assert all(e["message"] for e in payload["userErrors"])
    assert shop.health()["orders"] == 1


def test_company_location_order_is_accepted_on_plus(plus_shop: ShopClient) -> None:
    payload = create_order(plus_shop, {"lineItems": [line(11, 1)], "companyLocationId": gid("CompanyLocation", 1),
                                       "sourceIdentifier": "LNB-B2B-1"})
    assert payload["userErrors"] == []
    assert payload["order"]["purchasingEntity"] == {
        "__typename": "PurchasingCompany", "company": {"id": "gid://shopify/Company/1"},
        "location": {"id": "gid://shopify/CompanyLocation/1"}}
    assert payload["order"]["customer"] == {"id": "gid://shopify/Customer/1"}


def test_unknown_company_location_is_refused_on_plus(plus_shop: ShopClient) -> None:
    payload = create_order(plus_shop, {"lineItems": [line(11, 1)], "companyLocationId": gid("CompanyLocation", 99)})
    assert payload["order"] is None
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [(["order", "companyLocationId"], "INVALID")]


def test_presentment_currency_is_accepted_once_the_shop_enables_it(shop: ShopClient) -> None:
    """``currency`` stays the shop's; what the customer pays in is ``presentmentCurrency``."""
    usd_line = {**line(11, 1), "priceSet": {"shopMoney": {"amount": "45.00", "currencyCode": "EUR"},
                                            "presentmentMoney": {"amount": "49.50", "currencyCode": "USD"}}}
    refused = create_order(shop, {"lineItems": [usd_line], "presentmentCurrency": "USD"})
    assert [(e["field"], e["code"]) for e in refused["userErrors"]] == [(["order", "presentmentCurrency"], "INVALID")]

    shop.reset({**SCENARIO, "shop": {**SCENARIO["shop"], "currencies": ["USD"]}})
    payload = create_order(shop, {"lineItems": [usd_line], "presentmentCurrency": "USD"})
    assert payload["userErrors"] == []
    assert payload["order"]["currencyCode"] == "EUR"


@pytest.mark.parametrize(("options", "available", "committed"), [
    (None, 5, 1),
    ({"inventoryBehaviour": "BYPASS"}, 5, 1),
    ({"inventoryBehaviour": "DECREMENT_IGNORING_POLICY"}, -2, 8),
    ({"inventoryBehaviour": "DECREMENT_OBEYING_POLICY"}, None, None),
], ids=["default", "bypass", "decrement-ignoring", "decrement-obeying"])
def test_inventory_behaviour_when_ordering_more_than_available(
        shop: ShopClient, options: dict[str, str] | None, available: int | None, committed: int | None) -> None:
    """7 ordered, 5 available at the first active location: only OBEYING refuses (DENY policy)."""
    payload = create_order(shop, {"lineItems": [line(11, 7)], "sourceIdentifier": "LNB-STOCK"}, options)
    if available is None:
        assert payload["order"] is None
        assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [
            (["order", "lineItems", "0", "quantity"], "INVENTORY_CLAIM_FAILED")]
        assert found_orders(shop, "source_identifier:LNB-STOCK") == []
        available, committed = 5, 1
    else:
        assert payload["userErrors"] == []
    assert quantities(shop, 11, 1) == {"available": available, "committed": committed, "on_hand": 21}
    assert quantities(shop, 11, 2) == {"available": -2, "committed": 0, "on_hand": -2}


def test_decrement_obeying_policy_claims_what_is_there(shop: ShopClient) -> None:
    """Enough stock, a CONTINUE-policy variant and an untracked one: all pass; tracked stock moves to committed."""
    payload = create_order(shop, {"lineItems": [line(11, 5), line(22, 5), line(13, 3)]},
                           {"inventoryBehaviour": "DECREMENT_OBEYING_POLICY"})
    assert payload["userErrors"] == []
    assert quantities(shop, 11, 1) == {"available": 0, "committed": 6, "on_hand": 21}
    assert quantities(shop, 22, 2) == {"available": -3, "committed": 5, "on_hand": 2}
    assert quantities(shop, 13, 1) == {"available": 0, "committed": 0, "on_hand": 0}


def test_decrement_obeying_policy_adds_up_lines_of_the_same_variant(shop: ShopClient) -> None:
    """Two lines of 3 against 5 available is 6 claimed: Shopify refuses it as one order of 6."""
    payload = create_order(shop, {"lineItems": [line(11, 3), line(11, 3)], "sourceIdentifier": "LNB-SPLIT"},
                           {"inventoryBehaviour": "DECREMENT_OBEYING_POLICY"})
    assert payload["order"] is None
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [
        (["order", "lineItems", "1", "quantity"], "INVENTORY_CLAIM_FAILED")]
    assert quantities(shop, 11, 1) == {"available": 5, "committed": 1, "on_hand": 21}


def test_same_order_input_twice_creates_two_orders(shop: ShopClient) -> None:
    """No idempotency in orderCreate: the pipeline must look up sourceIdentifier itself."""
    order = {"lineItems": [line(21, 1)], "sourceIdentifier": "LNB-TWICE"}
    first, second = create_order(shop, order)["order"], create_order(shop, order)["order"]
    assert first["id"] != second["id"]
    assert (first["name"], second["name"]) == ("#1002", "#1003")
    assert [o["id"] for o in found_orders(shop, "source_identifier:LNB-TWICE")] == [first["id"], second["id"]]


# --- bulk operations -----------------------------------------------------------------------------


def test_bulk_query_completes_with_child_lines_after_their_parent(shop: ShopClient) -> None:
    operation = wait_for_bulk(shop, start_bulk(shop))
    assert operation["status"] == "COMPLETED"
    assert (operation["errorCode"], operation["partialDataUrl"]) == (None, None)
    download = requests.get(operation["url"], timeout=10)
    lines = [json.loads(text) for text in download.text.splitlines()]
    assert operation["fileSize"] == str(len(download.content))
    assert operation["objectCount"] == str(len(lines))
    assert operation["rootObjectCount"] == str(sum("__parentId" not in entry for entry in lines))

    stocked: list[tuple[int, list[int]]] = []
    for entry in lines:
        if "__parentId" not in entry:
            stocked.append((int(entry["id"].rsplit("/", 1)[-1]), []))
        else:
            assert entry["__parentId"] == variant_gid(stocked[-1][0])
            stocked[-1][1].append(int(entry["location"]["id"].rsplit("/", 1)[-1]))
    active = {location["id"] for location in SCENARIO["locations"] if location["active"]}
    expected = [(v["id"], sorted(int(key) for key in v["stock"] if int(key) in active))
                for p in SCENARIO["products"] for v in p["variants"]]
    assert any(3 in map(int, v["stock"]) for p in SCENARIO["products"] for v in p["variants"])
    assert stocked == expected
    assert lines[0] == {"id": variant_gid(11), "sku": "LS-BLU-M", "barcode": "4006381333931",
                        "inventoryItem": {"id": "gid://shopify/InventoryItem/11", "tracked": True}}
    assert lines[1] == {"location": {"id": "gid://shopify/Location/1"},
                        "quantities": [{"name": "available", "quantity": 5}, {"name": "on_hand", "quantity": 21}],
                        "__parentId": variant_gid(11)}
    assert [entry["barcode"] for entry in lines if entry.get("sku") == "LS-BLU-L"] == [None]


@pytest.mark.parametrize(("query", "reason"), [
    ("{ shop { name } }", "at least one connection"),
    ("""{ companies { edges { node { id locations { edges { node { id } } } contacts { edges { node { id } } } } } }
          orders { edges { node { id lineItems { edges { node { id } } } } } }
          locations { edges { node { id } } } }""", "more than 5 connections"),
    ("""{ locations { edges { node { id inventoryLevels { edges { node { id
          item { id variants { edges { node { id } } } } } } } } } } }""", "nesting depth greater than 2"),
    ("{ productVariants { edges { node { sku inventoryItem { inventoryLevels { edges { node { id } } } } } } } }",
     "must select 'id'"),
    ("{ productVariants { edges { node { nope } } } }", "Invalid bulk query"),
], ids=["no-connection", "six-connections", "depth-3", "parent-without-id", "invalid-field"])
def test_invalid_bulk_query_gives_user_errors(shop: ShopClient, query: str, reason: str) -> None:
    payload = run_bulk(shop, query)
    assert payload["bulkOperation"] is None
    (error,) = payload["userErrors"]
    assert (error["field"], error["code"]) == (["query"], "INVALID")
    assert reason in error["message"]


def test_bulk_failure_reports_error_code_and_partial_data(shop: ShopClient) -> None:
    """300 variants at 3 locations make 1 200 objects; the injected failure strikes at the 500th."""
    shop.reset("scale:300")
    shop.configure(bulk_fail_with="INTERNAL_SERVER_ERROR")
    operation = wait_for_bulk(shop, start_bulk(shop))
    assert {k: operation[k] for k in ("status", "errorCode", "objectCount", "rootObjectCount", "url")} == {
        "status": "FAILED", "errorCode": "INTERNAL_SERVER_ERROR", "objectCount": "500", "rootObjectCount": "125",
        "url": None}
    partial = jsonl(operation["partialDataUrl"])
    assert len(partial) == 500
    assert sum("__parentId" not in entry for entry in partial) == 125


def test_bulk_cancel_goes_through_canceling_to_canceled(shop: ShopClient) -> None:
    shop.configure(bulk_delay_seconds=5)
    operation_id = start_bulk(shop)
    canceled = shop.data(BULK_CANCEL, {"id": operation_id})["bulkOperationCancel"]
    assert canceled == {"bulkOperation": {"id": operation_id, "status": "CANCELING"}, "userErrors": []}
    operation = wait_for_bulk(shop, operation_id)
    assert (operation["status"], operation["url"], operation["objectCount"]) == ("CANCELED", None, "0")
    again = shop.data(BULK_CANCEL, {"id": operation_id})["bulkOperationCancel"]
    assert again["bulkOperation"]["status"] == "CANCELED"
    assert [e["field"] for e in again["userErrors"]] == [["id"]]


def test_expired_bulk_operation_loses_its_result(shop: ShopClient) -> None:
    """After 7 days Shopify's result URL stops working and the status turns EXPIRED."""
    operation = wait_for_bulk(shop, start_bulk(shop))
    number = operation["id"].rsplit("/", 1)[-1]
    assert shop.control("POST", f"bulk/{number}/expire").json() == {"expired": True}
    expired = shop.data(BULK_STATUS, {"id": operation["id"]})["bulkOperation"]
    assert (expired["status"], expired["url"]) == ("EXPIRED", None)
    refused = requests.get(operation["url"], timeout=10)
    assert (refused.status_code, "<Code>ExpiredToken</Code>" in refused.text) == (400, True)
    assert shop.control("POST", f"bulk/{number}/expire").status_code == 409


def test_bulk_operations_filter_by_status_newest_first(shop: ShopClient) -> None:
    query = "query($q: String) { bulkOperations(first: 10, query: $q) { nodes { id status } } }"
    older = wait_for_bulk(shop, start_bulk(shop))["id"]
    newer = wait_for_bulk(shop, start_bulk(shop))["id"]
    shop.control("POST", f"bulk/{older.rsplit('/', 1)[-1]}/expire")
    assert shop.data(query, {"q": "status:COMPLETED"})["bulkOperations"]["nodes"] == [
        {"id": newer, "status": "COMPLETED"}]
    assert shop.data(query, {"q": None})["bulkOperations"]["nodes"] == [
        {"id": newer, "status": "COMPLETED"}, {"id": older, "status": "EXPIRED"}]


def test_bulk_operation_is_charged_as_one_mutation(frozen_bucket: ShopClient) -> None:
    """Reading the whole catalogue costs the mutation and the 1-point polls, nothing per object."""
    body = frozen_bucket.answer(BULK_RUN, {"query": VARIANT_STOCK_BULK})
    assert cost_of(body)["actualQueryCost"] == 10
    wait_for_bulk(frozen_bucket, body["data"]["bulkOperationRunQuery"]["bulkOperation"]["id"])
    polls = frozen_bucket.stats()["requests"]["bulkOperation"]
    after = cost_of(frozen_bucket.answer(SHOP_NAME))["throttleStatus"]["currentlyAvailable"]
    assert after == 2000 - 10 - polls - 1


# --- injected faults -----------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 503])
def test_http_error_fault_answers_that_status(shop: ShopClient, status: int) -> None:
    shop.arm(kind=f"http_{status}", match="shop")
    response = shop.post(SHOP_NAME)
    assert response.status_code == status
    assert response.json() == {"errors": f"Injected fault: HTTP {status}"}
    assert shop.post(SHOP_NAME).status_code == 200


def test_timeout_fault_makes_the_client_time_out_and_applies_nothing(shop: ShopClient) -> None:
    shop.arm(kind="timeout", match="orderCreate", seconds=0.5)
    with pytest.raises(requests.Timeout):
        shop.post(ORDER_CREATE, {"order": {"lineItems": [line(21, 1)], "sourceIdentifier": "LNB-SLOW"}}, timeout=0.2)
    assert wait_for_logged_status(shop, 0)["variables"]["order"]["sourceIdentifier"] == "LNB-SLOW"
    assert found_orders(shop, "source_identifier:LNB-SLOW") == []


def test_drop_fault_closes_the_connection_without_applying_the_order(shop: ShopClient) -> None:
    shop.arm(kind="drop", match="orderCreate")
    with pytest.raises(requests.ConnectionError):
        shop.post(ORDER_CREATE, {"order": {"lineItems": [line(21, 1)], "sourceIdentifier": "LNB-DROP"}})
    assert found_orders(shop, "source_identifier:LNB-DROP") == []


def test_lost_ack_fault_applies_the_order_but_loses_the_answer(shop: ShopClient) -> None:
    """The reason the pipeline looks an order up before re-sending it."""
    shop.arm(kind="lost_ack", match="orderCreate")
    with pytest.raises(requests.ConnectionError):
        shop.post(ORDER_CREATE, {"order": {"lineItems": [line(21, 1)], "sourceIdentifier": "LNB-LOST"}})
    assert [o["sourceIdentifier"] for o in found_orders(shop, "source_identifier:LNB-LOST")] == ["LNB-LOST"]


def test_throttle_fault_answers_a_throttled_body(shop: ShopClient) -> None:
    shop.arm(kind="throttle", match="shop")
    response = shop.post(SHOP_NAME)
    assert response.status_code == 200
    body = response.json()
    assert throttled_code(body) == "THROTTLED"
    assert cost_of(body)["actualQueryCost"] is None
    assert shop.stats()["throttled"] == 1


def test_malformed_json_fault_sends_a_truncated_body(shop: ShopClient) -> None:
    shop.arm(kind="malformed_json", match="shop")
    response = shop.post(SHOP_NAME)
    assert response.status_code == 200
    with pytest.raises(ValueError):
        response.json()


def test_fault_count_is_consumed_exactly(shop: ShopClient) -> None:
    shop.arm(kind="http_503", match="shop", count=2)
    assert [shop.post(SHOP_NAME).status_code for _ in range(3)] == [503, 503, 200]
    assert shop.control("GET", "faults").json() == []
    assert shop.stats()["faults_injected"] == {"http_503": 2}


def test_fault_rate_one_always_fires_and_zero_never(shop: ShopClient) -> None:
    shop.arm(kind="http_500", match="shop", rate=1.0)
    assert [shop.post(SHOP_NAME).status_code for _ in range(3)] == [500, 500, 500]
    shop.control("DELETE", "faults")
    shop.arm(kind="http_500", match="shop", rate=0.0)
    assert [shop.post(SHOP_NAME).status_code for _ in range(3)] == [200, 200, 200]
    assert [f["rate"] for f in shop.control("GET", "faults").json()] == [0.0]


def test_fault_matched_to_order_create_spares_other_root_fields(shop: ShopClient) -> None:
    shop.arm(kind="http_500", match="orderCreate")
    assert shop.post(SHOP_NAME).status_code == 200
    assert [f["count"] for f in shop.control("GET", "faults").json()] == [1]
    response = shop.post(ORDER_CREATE, {"order": {"lineItems": [line(21, 1)], "sourceIdentifier": "LNB-500"}})
    assert response.status_code == 500
    assert found_orders(shop, "source_identifier:LNB-500") == []


@pytest.mark.parametrize("fault", [{"kind": "explode"}, {"kind": "drop", "count": 0},
                                   {"kind": "drop", "rate": 2}, {"kind": "drop", "count": 1, "rate": 0.5}],
                         ids=["unknown-kind", "count-0", "rate-2", "count-and-rate"])
def test_invalid_fault_is_refused(shop: ShopClient, fault: dict[str, Any]) -> None:
    assert shop.control("POST", "faults", fault).status_code == 400
    assert shop.control("GET", "faults").json() == []


# --- control endpoints ---------------------------------------------------------------------------


def test_stats_count_requests_by_root_field_and_points_spent(shop: ShopClient) -> None:
    shop.answer(SHOP_NAME)
    shop.answer("{ shop { name } productVariants(first: 5) { nodes { id } } }")
    shop.post(SHOP_NAME, token="wrong-token")
    stats = shop.stats()
    assert stats["requests"] == {"shop": 3, "productVariants": 1}
    assert (stats["total_requests"], stats["statuses"], stats["errors"]) == (3, {"200": 2, "401": 1}, 1)
    assert (stats["points_requested"], stats["points_spent"]) == (9, 9)


def test_requests_log_records_method_path_status_document_and_variables(shop: ShopClient) -> None:
    query = "query($q: String) { productVariants(first: 1, query: $q) { nodes { id } } }"
    shop.answer(query, {"q": "sku:LS-BLU-M"})
    assert shop.control("GET", "requests").json() == [{
        "method": "POST", "path": GRAPHQL_PATH, "query": query, "variables": {"q": "sku:LS-BLU-M"}, "status": 200}]


def test_reset_restores_data_and_forgets_created_orders(shop: ShopClient) -> None:
    create_order(shop, {"lineItems": [line(11, 2)], "sourceIdentifier": "LNB-GONE"},
                 {"inventoryBehaviour": "DECREMENT_IGNORING_POLICY"})
    shop.arm(kind="drop", match="shop", count=5)
    assert shop.health()["orders"] == 2
    shop.control("POST", "reset", {})
    assert found_orders(shop, "source_identifier:LNB-GONE") == []
    assert quantities(shop, 11, 1)["available"] == 5
    assert shop.control("GET", "faults").json() == []
    assert shop.stats()["requests"] == {"orders": 1, "inventoryItem": 1}


def test_reset_can_switch_scenario(shop: ShopClient) -> None:
    other = {"shop": {"name": "Other Brand"}, "locations": [{"id": 7, "name": "Berlin"}],
             "products": [{"id": 5, "variants": [{"id": 51, "sku": "B-1", "stock": {"7": {"available": 3}}}]}]}
    shop.reset(other)
    assert shop.data("{ shop { name } productVariantsCount { count } }") == {
        "shop": {"name": "Other Brand"}, "productVariantsCount": {"count": 1}}
    assert (shop.health()["variants"], shop.health()["orders"]) == (1, 0)


def test_reset_refuses_an_invalid_scenario_and_keeps_the_current_one(shop: ShopClient) -> None:
    response = shop.control("POST", "reset", {"scenario": {"locations": []}})
    assert response.status_code == 400
    assert "at least one location" in response.json()["error"]
    assert shop.health()["variants"] == 5


def test_health_describes_the_shop(shop: ShopClient) -> None:
    health = shop.health()
    assert {k: health[k] for k in ("status", "api", "plan", "variants", "orders")} == {
        "status": "ok", "api": "shopify", "plan": "standard", "variants": 5, "orders": 1}


def test_unknown_setting_is_refused(shop: ShopClient) -> None:
    response = shop.control("POST", "config", {"bucket": 10})
    assert response.status_code == 400
    assert shop.control("GET", "nothing-here").status_code == 404
