"""``ShopifyClient`` against the Shopify sandbox over real HTTP.

What makes Shopify connectors fail in production is what these tests provoke: pages silently lost
or repeated, pages priced above the 1000-point ceiling, a client that waits to be THROTTLED instead
of pacing itself, a non-idempotent orderCreate sent twice after a lost answer, bulk operations that
never finish or end FAILED while the sync reports success. One sandbox runs for the module; each
test starts from a reset with a bucket too large to matter, unless the test shrinks it.
"""

from __future__ import annotations

import itertools
import logging
import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import polars as pl
import pytest
import requests

from lnb_pipeline import stock_source
from lnb_pipeline.clients.retry import RetryPolicy
from lnb_pipeline.clients.shopify import (
    BULK_PARENT_ID,
    PROGRESS_LOG_SECONDS,
    AccessTokenSource,
    ShopifyAuthError,
    ShopifyBulkError,
    ShopifyClient,
    ShopifyGraphQLError,
    ShopifyServerError,
    ShopifyUserError,
    estimate_cost,
    join_bulk_children,
    page_size_for,
)
from lnb_pipeline.clients.shopify_auth import ClientCredentialsToken
from lnb_pipeline.clients.shopify_queries import (
    ALL_DOCUMENTS,
    BULK_CANCEL_MUTATION,
    BULK_OPERATION_QUERY,
    SHOP_QUERY,
    VARIANT_STOCK_BULK_QUERY,
    VARIANT_STOCK_PAGE_QUERY,
    VARIANTS_COUNT_QUERY,
)
from lnb_pipeline.sandbox import Sandbox, start_sandbox
from lnb_pipeline.sandbox.http import Request, Response, SandboxApi, SandboxServer
from lnb_pipeline.sandbox.shopify.api import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_TOKEN,
    SCHEMA_VERSION,
)

VARIANTS = 300
"""scale:300 writes 4 bulk lines a variant (itself and 3 levels): 1 200 objects, enough for the
sandbox's injected bulk failure, which strikes after 500."""
STOCK = {"query": None, "levels": 5}
STOCK_PAGE_SIZE = 49
"""(1000 - 2) // (1 + product 1 + inventoryItem 1 + levels 2 + 5 x 3) for ``STOCK``."""
STOCK_PAGES = 7
"""300 variants in pages of 49: six full pages and one of 6."""
ROOMY_BUCKET = {"bucket_size": 10_000_000, "restore_rate": 10_000_000}
MISSING_BULK_OPERATION = "gid://shopify/BulkOperation/999999"
TOKEN_REQUEST = "POST /admin/oauth/access_token"
"""How the sandbox counts (and faults match) client credentials grants."""
WRONG_SECRET = "wrong-shopify-secret-0123456789"

EXPENSIVE_VARIANTS_QUERY = """
query ExpensiveVariants($first: Int!, $after: String) {
  productVariants(first: $first, after: $after) {
    nodes { id ...Levels }
    pageInfo { hasNextPage endCursor }
  }
}
fragment Levels on ProductVariant {
  inventoryItem { inventoryLevels(first: 20) { nodes { location { id } } } }
}
"""
"""The client's estimate does not see into fragments (1 point a node, so pages of 250); the sandbox
prices a node at 44 points, so the first page costs 2 + 250 x 44 = 11 002 and must shrink to 22."""
EXPENSIVE_SHRUNK_PAGE = 22

ORDER_CREATE = """
mutation Create($order: OrderCreateOrderInput!) {
  orderCreate(order: $order) { order { id } userErrors { field message } }
}
"""
ORDERS_FOUND = """
query Find { orders(first: 50) { nodes { id sourceIdentifier } } }
"""
"""Every order, read without a search: Shopify's search index lags a new order."""
ORDER = {"sourceIdentifier": "LNB-TEST-1",
         "lineItems": [{"variantId": "gid://shopify/ProductVariant/1", "quantity": 1}]}

COST_VARIABLES: dict[str, dict[str, Any]] = {
    "SHOP_QUERY": {},
    "LOCATIONS_QUERY": {"first": 250},
    "VARIANTS_COUNT_QUERY": {"query": None},
    "VARIANT_STOCK_PAGE_QUERY": {**STOCK, "first": STOCK_PAGE_SIZE},
    "BULK_RUN_QUERY_MUTATION": {"query": VARIANT_STOCK_BULK_QUERY},
    "BULK_OPERATION_QUERY": {"id": MISSING_BULK_OPERATION},
    "BULK_CANCEL_MUTATION": {"id": MISSING_BULK_OPERATION},
    "ORDERS_BY_SOURCE_QUERY": {"query": 'source_identifier:"LNB-NONE"', "first": 250},
    "ORDER_CREATE_MUTATION": {"order": {"lineItems": []}, "options": None},
    "CUSTOMER_BY_METAFIELD_QUERY": {"identifier": {"customId": {"namespace": "lenewblack", "key": "retailer_reference",
                                                                "value": "R-NONE"}}},
    "COMPANY_BY_EXTERNAL_ID_QUERY": {"query": "external_id:R-NONE"},
    "METAFIELD_DEFINITIONS_QUERY": {"ownerType": "ORDER", "namespace": "lenewblack", "key": "order_reference"},
    "ACCESS_SCOPES_QUERY": {},
    "CHANGED_LEVELS_QUERY": {"location": "gid://shopify/Location/1", "query": "updated_at:>'2026-01-01T00:00:00Z'",
                             "first": 250},
    "CUSTOMERS_BY_CUSTOM_ID_QUERY": {"namespace": "lenewblack", "key": "retailer_reference",
                                     **{f"v{i}": f"R-NONE-{i}" for i in range(50)}},
    "COMPANIES_BY_EXTERNAL_IDS_QUERY": {"query": "external_id:R-NONE", "first": 100},
    "METAFIELD_DEFINITION_CREATE_MUTATION": {"definition": {
        "namespace": "lenewblack", "key": "order_reference", "name": "LNB order reference", "ownerType": "ORDER",
        "type": "id"}},
    **{f"orders_by_custom_id_query({count})": {"namespace": "lenewblack", "key": "order_reference",
                                               **{f"v{i}": f"LNB-NONE-{i}" for i in range(count)}}
       for count in (1, 50)},
    "ORDERS_TEST_FLAG_QUERY": {f"v{i}": f"gid://shopify/Order/{9_000_000 + i}" for i in range(50)},
}
"""Variables to send each document with; the bulk inner query is never sent as an operation."""


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    running = start_sandbox(f"scale:{VARIANTS}")
    yield running
    running.stop()


def control(sandbox: Sandbox, route: str, payload: Any = None) -> Any:
    response = requests.post(f"{sandbox.shopify_url}/_sandbox/{route}", json=payload or {}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def sandbox_stats(sandbox: Sandbox) -> dict[str, Any]:
    return requests.get(f"{sandbox.shopify_url}/_sandbox/stats", timeout=10).json()


def logged_requests(sandbox: Sandbox, root_field: str, at_least: int = 0) -> list[dict[str, Any]]:
    """The requests the sandbox saw that call ``root_field``.

    Waits (up to 5 s) for ``at_least`` of them: the sandbox logs a request once it has answered, which
    for a ``timeout`` fault is after the client gave up.
    """
    deadline = time.monotonic() + 5
    while True:
        entries = requests.get(f"{sandbox.shopify_url}/_sandbox/requests", timeout=10).json()
        found = [entry for entry in entries if f"{root_field}(" in (entry["query"] or "")]
        if len(found) >= at_least or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def arm(sandbox: Sandbox, kind: str, match: str, count: int, seconds: float = 0.6) -> None:
    """``seconds`` only matters to ``timeout``: just past the client's 0.5 s read timeout."""
    control(sandbox, "faults", {"kind": kind, "match": match, "count": count, "seconds": seconds})


@pytest.fixture
def shop(sandbox: Sandbox) -> Sandbox:
    """Fresh data, no faults, and a bucket so large that pacing never waits unless a test shrinks it."""
    control(sandbox, "reset")
    control(sandbox, "config", ROOMY_BUCKET)
    return sandbox


def make_client(sandbox: Sandbox, token: str = DEFAULT_TOKEN, **options: Any) -> ShopifyClient:
    """Fast retries and a short read timeout, so a ``timeout`` fault costs half a second."""
    return ShopifyClient(sandbox.shopify_url, token, SCHEMA_VERSION, timeout=(2.0, 0.5),
                         retry=RetryPolicy(base_seconds=0.01), **options)


@pytest.fixture
def client(shop: Sandbox) -> Iterator[ShopifyClient]:
    shopify = make_client(shop)
    yield shopify
    shopify.close()


def read_stock(client: ShopifyClient, query: str | None = None, levels: int = 5) -> list[dict[str, Any]]:
    return list(client.paginate(VARIANT_STOCK_PAGE_QUERY, {"query": query, "levels": levels}, ("productVariants",)))


def all_variant_ids() -> list[str]:
    return [f"gid://shopify/ProductVariant/{number}" for number in range(1, VARIANTS + 1)]


def test_filter_matching_nothing_is_one_empty_page(shop: Sandbox, client: ShopifyClient) -> None:
    assert read_stock(client, "sku:NO-SUCH-SKU") == []
    assert sandbox_stats(shop)["requests"] == {"productVariants": 1}


def test_result_filling_exactly_one_page_takes_one_request(shop: Sandbox, client: ShopifyClient) -> None:
    """38 levels price a variant at 119 points, so a page holds 8: exactly one product's variants."""
    assert page_size_for(VARIANT_STOCK_PAGE_QUERY, {"query": "product_id:1", "levels": 38}) == 8
    rows = read_stock(client, "product_id:1", levels=38)
    assert [row["id"] for row in rows] == all_variant_ids()[:8]
    assert sandbox_stats(shop)["requests"] == {"productVariants": 1}


def test_many_pages_return_every_variant_once_as_many_as_counted(shop: Sandbox, client: ShopifyClient) -> None:
    rows = read_stock(client)
    counted = client.execute(VARIANTS_COUNT_QUERY, {"query": None})["productVariantsCount"]
    assert counted == {"count": VARIANTS, "precision": "EXACT"}
    assert [row["id"] for row in rows] == all_variant_ids()
    assert sandbox_stats(shop)["requests"] == {"productVariants": STOCK_PAGES, "productVariantsCount": 1}


@pytest.mark.parametrize(("levels", "size"), [(1, 124), (5, STOCK_PAGE_SIZE), (38, 8), (200, 1)])
def test_page_size_is_the_largest_within_the_cost_ceiling(client: ShopifyClient, levels: int, size: int) -> None:
    variables = {"query": None, "levels": levels}
    assert page_size_for(VARIANT_STOCK_PAGE_QUERY, variables) == size
    assert estimate_cost(VARIANT_STOCK_PAGE_QUERY, {**variables, "first": size}) <= 1000
    assert estimate_cost(VARIANT_STOCK_PAGE_QUERY, {**variables, "first": size + 1}) > 1000
    data = client.execute(VARIANT_STOCK_PAGE_QUERY, {**variables, "first": size, "after": None})
    assert len(data["productVariants"]["nodes"]) == size


def test_paginated_stock_read_never_exceeds_the_cost_ceiling(shop: Sandbox, client: ShopifyClient) -> None:
    read_stock(client)
    pages = logged_requests(shop, "productVariants")
    assert {page["variables"]["first"] for page in pages} == {STOCK_PAGE_SIZE}
    # A page asked again (a retry on a loaded machine) asks for the same cursor: count distinct pages.
    assert len({page["variables"].get("after") for page in pages}) == STOCK_PAGES
    assert "max_cost_exceeded" not in sandbox_stats(shop)


def test_page_priced_above_the_ceiling_shrinks_and_still_returns_everything(
    shop: Sandbox, client: ShopifyClient
) -> None:
    rows = list(client.paginate(EXPENSIVE_VARIANTS_QUERY, {}, ("productVariants",)))
    assert [row["id"] for row in rows] == all_variant_ids()
    sizes = [page["variables"]["first"] for page in logged_requests(shop, "productVariants")]
    assert sizes == [250] + [EXPENSIVE_SHRUNK_PAGE] * -(-VARIANTS // EXPENSIVE_SHRUNK_PAGE)
    assert sandbox_stats(shop)["max_cost_exceeded"] == 1


@pytest.mark.parametrize("name", sorted(COST_VARIABLES))
def test_estimated_cost_equals_the_sandbox_requested_cost(shop: Sandbox, name: str) -> None:
    document, variables = ALL_DOCUMENTS[name], COST_VARIABLES[name]
    answer = requests.post(f"{shop.shopify_url}/admin/api/{SCHEMA_VERSION}/graphql.json",
                           json={"query": document, "variables": variables},
                           headers={"X-Shopify-Access-Token": DEFAULT_TOKEN}, timeout=10).json()
    assert "errors" not in answer, answer
    assert estimate_cost(document, variables) == answer["extensions"]["cost"]["requestedQueryCost"]


def test_cost_table_covers_every_document_sent() -> None:
    """A new document must be priced here too."""
    assert set(COST_VARIABLES) == set(ALL_DOCUMENTS) - {"VARIANT_STOCK_BULK_QUERY"}


def test_small_bucket_is_paced_without_a_single_throttled_answer(shop: Sandbox, client: ShopifyClient) -> None:
    """A bucket of one full page (1000 points) restoring 10 000/s: every page after the first must wait."""
    control(shop, "config", {"bucket_size": 1000, "restore_rate": 10_000})
    rows = read_stock(client)
    assert len(rows) == VARIANTS
    assert "throttled" not in sandbox_stats(shop)
    assert client.stats.throttled == 0
    assert client.stats.waited_seconds > 0


def test_throttled_answers_are_waited_out(shop: Sandbox, client: ShopifyClient) -> None:
    arm(shop, "throttle", "productVariants", 2)
    rows = read_stock(client)
    assert [row["id"] for row in rows] == all_variant_ids()
    assert client.stats.throttled == 2
    assert sandbox_stats(shop)["throttled"] == 2


@pytest.mark.parametrize("kind", ["http_500", "http_503", "drop", "timeout", "malformed_json", "lost_ack"])
def test_transient_failures_of_a_read_are_retried(shop: Sandbox, client: ShopifyClient, kind: str) -> None:
    arm(shop, kind, "productVariants", 2)
    rows = read_stock(client)
    assert [row["id"] for row in rows] == all_variant_ids()
    assert client.stats.retries == 2
    assert len(logged_requests(shop, "productVariants", at_least=STOCK_PAGES + 2)) == STOCK_PAGES + 2
    assert sandbox_stats(shop)["faults_injected"] == {kind: 2}


@pytest.mark.parametrize("kind", ["http_500", "http_503", "drop", "timeout", "malformed_json", "lost_ack"])
def test_failed_non_idempotent_mutation_is_never_resent(shop: Sandbox, client: ShopifyClient, kind: str) -> None:
    """orderCreate has no idempotency key: after a lost answer only a read can tell what happened."""
    arm(shop, kind, "orderCreate", 1)
    with pytest.raises(ShopifyServerError, match=r"^Shopify call failed after 1 attempt\(s\): "):
        client.execute(ORDER_CREATE, {"order": ORDER})
    assert len(logged_requests(shop, "orderCreate", at_least=1)) == 1
    created = [{"id": order["id"]} for order in client.execute(ORDERS_FOUND)["orders"]["nodes"]
               if order["sourceIdentifier"] == "LNB-TEST-1"]
    assert len(created) == (1 if kind == "lost_ack" else 0)


@pytest.mark.parametrize("document", [
    "# Creates one order; never resend.\n" + ORDER_CREATE,
    "fragment Made on Order { id }\n" + ORDER_CREATE.replace("order { id }", "order { ...Made }"),
])
def test_mutation_is_never_resent_however_its_document_begins(shop: Sandbox, client: ShopifyClient,
                                                               document: str) -> None:
    """A comment or a fragment ahead of the operation must not pass a mutation off as a read."""
    arm(shop, "http_500", "orderCreate", 1)
    with pytest.raises(ShopifyServerError, match=r"^Shopify call failed after 1 attempt\(s\): HTTP 500$"):
        client.execute(document, {"order": ORDER})
    assert len(logged_requests(shop, "orderCreate")) == 1


def test_mutation_marked_idempotent_is_retried(shop: Sandbox, client: ShopifyClient) -> None:
    arm(shop, "http_503", "bulkOperationCancel", 1)
    data = client.execute(BULK_CANCEL_MUTATION, {"id": MISSING_BULK_OPERATION}, idempotent=True)
    assert data["bulkOperationCancel"]["userErrors"] == [{"field": ["id"], "message": "Bulk operation does not exist"}]
    assert len(logged_requests(shop, "bulkOperationCancel")) == 2


@pytest.mark.parametrize(("kind", "reason"), [
    ("http_503", "HTTP 503"),
    ("malformed_json", "answer is not JSON (HTTP 200, 20 bytes)"),
])
def test_exhausted_retries_fail_with_the_last_reason(shop: Sandbox, client: ShopifyClient, kind: str,
                                                      reason: str) -> None:
    arm(shop, kind, "shop", 10)
    with pytest.raises(ShopifyServerError) as raised:
        client.execute(SHOP_QUERY)
    assert str(raised.value) == f"Shopify call failed after 4 attempt(s): {reason}"
    assert sandbox_stats(shop)["requests"] == {"shop": 4}


def test_wrong_token_fails_at_once_without_echoing_it(shop: Sandbox) -> None:
    with pytest.raises(ShopifyAuthError) as raised:
        make_client(shop, "wrong-token").execute(SHOP_QUERY)
    assert str(raised.value) == ("Shopify refused the access token (HTTP 401): check SHOPIFY_ACCESS_TOKEN "
                                 "and the app's access scopes")
    assert "wrong-token" not in str(raised.value)
    assert sandbox_stats(shop)["total_requests"] == 1


def test_invalid_document_raises_graphql_error_with_shopify_errors(shop: Sandbox, client: ShopifyClient) -> None:
    refusal = "Cannot query field 'nope' on type 'Shop'. Did you mean 'name'?"
    with pytest.raises(ShopifyGraphQLError) as raised:
        client.execute("query { shop { nope } }")
    assert str(raised.value) == f"Shopify GraphQL error: {refusal}"
    assert [error["message"] for error in raised.value.errors] == [refusal]
    assert sandbox_stats(shop)["total_requests"] == 1


def test_bulk_read_gives_the_levels_frame_pagination_gives(client: ShopifyClient) -> None:
    """The bulk result is ungrouped (children before their parent, after other parents): joined by
    ``__parentId``, it must still give exactly the paginated frame, row for row."""
    read = {mode: stock_source.read_stock(client, mode=mode, bulk_threshold=1, location_count=5,
                                          log=logging.getLogger("test")) for mode in ("bulk", "paginated")}
    bulk, paged = read["bulk"].levels, read["paginated"].levels
    assert (read["bulk"].mode, bulk.height, bulk["variant_id"].n_unique()) == ("bulk", 3 * VARIANTS, VARIANTS)
    assert bulk.equals(paged)
    assert bulk.schema == paged.schema


@pytest.mark.parametrize("start_status", ["COMPLETED", "FAILED"])
def test_bulk_operation_is_followed_by_id_whatever_the_start_answers(shop: Sandbox, start_status: str) -> None:
    """The start carries no ``url``: a client that trusts a COMPLETED (or FAILED) start returns an
    operation without its result, and the stock read then reads nothing."""
    relay = SandboxServer(_StartStatusRelay(shop.shopify_url, start_status)).start()
    client = ShopifyClient(relay.url, DEFAULT_TOKEN, SCHEMA_VERSION, retry=RetryPolicy(base_seconds=0.01))
    try:
        operation = client.run_bulk_query(VARIANT_STOCK_BULK_QUERY, first_poll_seconds=0.05)
    finally:
        client.close()
        relay.stop()
    assert (operation["status"], operation["objectCount"], operation["rootObjectCount"]) == (
        "COMPLETED", str(4 * VARIANTS), str(VARIANTS))
    assert operation["url"]
    assert len(logged_requests(shop, "bulkOperation")) >= 1


class _StartStatusRelay(SandboxApi):
    """A proxy in front of the shop that rewrites the status ``bulkOperationRunQuery`` answers."""

    name = "start-status-relay"

    def __init__(self, shop_url: str, status: str) -> None:
        super().__init__()
        self._shop_url = shop_url
        self._status = status

    def request_keys(self, request: Request) -> list[str]:
        return [request.path]

    def handle(self, request: Request) -> Response:
        answer = requests.post(self._shop_url + request.path, data=request.body, timeout=10, headers={
            name: request.headers[name] for name in ("content-type", "x-shopify-access-token")})
        body = answer.json()
        started = (body.get("data") or {}).get("bulkOperationRunQuery") or {}
        if started.get("bulkOperation"):
            started["bulkOperation"]["status"] = self._status
        return Response.json(body, answer.status_code)


def test_failed_bulk_operation_names_its_error_code_and_partial_data(shop: Sandbox, client: ShopifyClient) -> None:
    """The partial data link is named without its signature: a pre-signed link is a credential."""
    control(shop, "config", {"bulk_fail_with": "INTERNAL_SERVER_ERROR"})
    with pytest.raises(ShopifyBulkError) as raised:
        client.run_bulk_query(VARIANT_STOCK_BULK_QUERY, first_poll_seconds=0.05)
    operation_id = raised.value.operation["id"]
    signed = client.execute(BULK_OPERATION_QUERY, {"id": operation_id})["bulkOperation"]["partialDataUrl"]
    unsigned = signed.split("?")[0] + "?***"
    assert "Signature=" in signed
    assert str(raised.value) == (f"Bulk operation {operation_id} ended FAILED "
                                 f"(errorCode INTERNAL_SERVER_ERROR; partial data: {unsigned})")
    assert raised.value.operation["partialDataUrl"] == unsigned


def test_bulk_operation_past_its_timeout_fails_and_is_canceled(shop: Sandbox, client: ShopifyClient) -> None:
    control(shop, "config", {"bulk_delay_seconds": 30})
    with pytest.raises(ShopifyBulkError) as raised:
        client.run_bulk_query(VARIANT_STOCK_BULK_QUERY, timeout_seconds=0.5, first_poll_seconds=0.05)
    operation_id = raised.value.operation["id"]
    assert str(raised.value) == (f"Bulk operation {operation_id} did not finish within 0.5 s (0 objects so far); "
                                 "it was canceled")
    status = client.execute(BULK_OPERATION_QUERY, {"id": operation_id})["bulkOperation"]["status"]
    assert status in ("CANCELING", "CANCELED")
    assert len(logged_requests(shop, "bulkOperationCancel")) == 1


def test_bulk_operation_the_shop_forgets_while_followed_is_an_error(shop: Sandbox) -> None:
    """A reset stands for a shop that no longer knows the id: the poll answers null, not an operation."""
    client = make_client(shop, sleep=lambda _: control(shop, "reset"))
    with pytest.raises(ShopifyBulkError) as raised:
        client.run_bulk_query(VARIANT_STOCK_BULK_QUERY)
    client.close()
    assert str(raised.value) == f"Shopify no longer knows bulk operation {raised.value.operation['id']}"


def test_refused_bulk_query_raises_user_error(client: ShopifyClient) -> None:
    with pytest.raises(ShopifyUserError) as raised:
        client.run_bulk_query("{ shop { name } }")
    assert str(raised.value) == "Shopify refused the bulk query: Bulk queries must contain at least one connection."
    assert [error["code"] for error in raised.value.user_errors] == ["INVALID"]


def test_bulk_result_is_downloaded_without_the_shopify_token_or_a_signed_link_in_the_logs(
        shop: Sandbox, client: ShopifyClient, caplog: pytest.LogCaptureFixture) -> None:
    """The link is on another host: the token must not travel there, and urllib3's debug lines, which
    print whole URLs, must not print the signature."""
    caplog.set_level(logging.DEBUG)
    operation = client.run_bulk_query(VARIANT_STOCK_BULK_QUERY, first_poll_seconds=0.05)
    parents, children = client.read_bulk_lines(operation, {"id": pl.String()}, ["id"], [])
    assert (parents.height, children.height) == (VARIANTS, 3 * VARIANTS)
    [download] = storage_requests(operation["url"])
    assert download["status"] == 200
    assert "x-shopify-access-token" not in download["headers"]
    assert any(urlsplit(operation["url"]).path in record.getMessage() for record in caplog.records)
    assert not [record.getMessage() for record in caplog.records if "Signature=" in record.getMessage()]


def test_expired_result_link_fails_clearly_without_showing_the_link(shop: Sandbox, client: ShopifyClient) -> None:
    """Storage answers an expired link 400 ExpiredToken; the read must say so, and what to do."""
    operation = client.run_bulk_query(VARIANT_STOCK_BULK_QUERY, first_poll_seconds=0.05)
    control(shop, f"bulk/{operation['id'].rsplit('/', 1)[-1]}/expire")
    with pytest.raises(ShopifyBulkError) as raised:
        client.read_bulk_lines(operation, {"id": pl.String()}, ["id"], [])
    assert str(raised.value) == (f"The result link of bulk operation {operation['id']} has expired (Shopify's links "
                                 "last 7 days from the end of the operation); run the read again: a new bulk "
                                 "operation gives a fresh link")
    assert raised.value.operation["url"] == operation["url"].split("?")[0] + "?***"


def test_altered_result_link_is_refused_by_its_storage_error_code(shop: Sandbox, client: ShopifyClient) -> None:
    operation = client.run_bulk_query(VARIANT_STOCK_BULK_QUERY, first_poll_seconds=0.05)
    altered = {**operation, "url": operation["url"].replace("Expires=", "Expires=1")}
    with pytest.raises(ShopifyBulkError) as raised:
        client.read_bulk_lines(altered, {"id": pl.String()}, ["id"], [])
    assert str(raised.value) == (f"The storage host refused the result of bulk operation {operation['id']}: "
                                 "HTTP 403 SignatureDoesNotMatch")


def test_dropped_result_download_is_started_again(shop: Sandbox, client: ShopifyClient) -> None:
    operation = client.run_bulk_query(VARIANT_STOCK_BULK_QUERY, first_poll_seconds=0.05)
    storage = storage_url(operation["url"])
    requests.post(f"{storage}/_sandbox/faults", json={"kind": "drop", "count": 1}, timeout=10).raise_for_status()
    parents, children = client.read_bulk_lines(operation, {"id": pl.String()}, ["id"], [])
    assert (parents.height, children.height) == (VARIANTS, 3 * VARIANTS)
    assert [entry["status"] for entry in storage_requests(operation["url"])] == [0, 200]


def storage_url(link: str) -> str:
    """The storage host a result link points at."""
    parts = urlsplit(link)
    return f"{parts.scheme}://{parts.netloc}"


def storage_requests(link: str) -> list[dict[str, Any]]:
    """What the storage host logged for that link's object (header names only)."""
    entries = requests.get(f"{storage_url(link)}/_sandbox/requests", timeout=10).json()
    return [entry for entry in entries if entry["path"] == urlsplit(link).path]


def _frames(*rows: dict[str, Any]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Parent rows (``id``, ``name``) and child rows (``__parentId``, ``qty``), in the order given."""
    parents = pl.DataFrame([row for row in rows if BULK_PARENT_ID not in row],
                           schema={"id": pl.String, "name": pl.String})
    children = pl.DataFrame([row for row in rows if BULK_PARENT_ID in row],
                            schema={BULK_PARENT_ID: pl.String, "qty": pl.Int64})
    return parents, children


def test_child_lines_are_joined_to_their_parent_in_any_order() -> None:
    """Children first, interleaved, or long after: rows follow the parents' order, each parent's
    children theirs; a parent without children keeps one row."""
    joined = join_bulk_children(*_frames(
        {BULK_PARENT_ID: "B", "qty": 2}, {"id": "A", "name": "a"}, {BULK_PARENT_ID: "B", "qty": 3},
        {"id": "B", "name": "b"}, {"id": "C", "name": "c"}, {BULK_PARENT_ID: "A", "qty": 1}))
    assert joined.rows() == [("A", "a", 1), ("B", "b", 2), ("B", "b", 3), ("C", "c", None)]
    assert joined.columns == ["id", "name", "qty"]


@pytest.mark.parametrize(("rows", "complaint"), [
    ([{"id": "A"}, {BULK_PARENT_ID: "A", "qty": 1}, {BULK_PARENT_ID: "Z", "qty": 2}],
     "bulk result has 1 child line(s) whose parent never appears (the first names Z)"),
    ([{"id": "A"}, {BULK_PARENT_ID: "A", "qty": 1}, {"id": "A"}], "bulk result lists parent A more than once"),
], ids=["orphan", "parent-twice"])
def test_bulk_lines_that_cannot_be_joined_are_refused_not_dropped(rows: list[dict[str, Any]],
                                                                   complaint: str) -> None:
    with pytest.raises(ShopifyServerError) as raised:
        join_bulk_children(*_frames(*rows))
    assert str(raised.value) == complaint


def test_bulk_result_that_is_not_jsonl_is_an_error(shop: Sandbox, client: ShopifyClient) -> None:
    """A line polars cannot read as the expected shape must not become a row of nulls."""
    operation = client.run_bulk_query(VARIANT_STOCK_BULK_QUERY, first_poll_seconds=0.05)
    with pytest.raises(ShopifyServerError, match=f"^The result of bulk operation {operation['id']} is not the JSONL "
                                                 "expected: "):
        client.read_bulk_lines(operation, {"sku": pl.Int64()}, ["sku"], [])


def test_paginated_read_logs_progress_and_completion(shop: Sandbox, caplog: pytest.LogCaptureFixture) -> None:
    """A clock advancing the progress interval on every reading makes each page log its progress."""
    caplog.set_level(logging.INFO, logger="lnb_pipeline.clients.shopify")
    fast_clock = itertools.count(0.0, PROGRESS_LOG_SECONDS).__next__
    client = make_client(shop, clock=fast_clock)
    read_stock(client)
    client.close()
    messages = [record.getMessage() for record in caplog.records if record.levelno == logging.INFO]
    progress = re.compile(r"Shopify productVariants: (\d+) pages, (\d+) nodes in \d+ s \(\d+ points/s, "
                          r"0\.0 s waiting for the cost bucket so far\)")
    assert [match.groups() for message in messages if (match := progress.fullmatch(message))] == [
        (str(page), str(min(page * STOCK_PAGE_SIZE, VARIANTS))) for page in range(1, STOCK_PAGES + 1)]
    assert re.fullmatch(rf"Shopify productVariants: done, {STOCK_PAGES} pages, {VARIANTS} nodes in \d+\.\d s",
                        messages[-1])


def test_a_new_client_of_the_same_shop_starts_from_what_the_first_learnt(shop: Sandbox) -> None:
    """Each Dagster step makes its own client; the second must not spend blind and be throttled."""
    control(shop, "config", {"bucket_size": 1000, "restore_rate": 500})
    variables = {**STOCK, "first": STOCK_PAGE_SIZE, "after": None}
    make_client(shop).execute(VARIANT_STOCK_PAGE_QUERY, variables)
    second = make_client(shop)
    second.execute(VARIANT_STOCK_PAGE_QUERY, variables)
    assert sandbox_stats(shop).get("throttled", 0) == 0
    assert second.stats.throttled == 0
    assert second.stats.waited_seconds > 0


# --- client credentials (Dev Dashboard apps) --------------------------------------------------


class TokenRecordingSession(requests.Session):
    """A session that remembers every ``X-Shopify-Access-Token`` it sends."""

    def __init__(self) -> None:
        super().__init__()
        self.tokens_sent: list[str] = []

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        token = (kwargs.get("headers") or {}).get("X-Shopify-Access-Token")
        if token:
            self.tokens_sent.append(token)
        return super().request(method, url, *args, **kwargs)


def make_credentials(sandbox: Sandbox, client_secret: str = DEFAULT_CLIENT_SECRET,
                     **options: Any) -> ClientCredentialsToken:
    """The sandbox app's credentials, with fast retries and the same short read timeout as ``make_client``."""
    return ClientCredentialsToken(sandbox.shopify_url, DEFAULT_CLIENT_ID, client_secret, timeout=(2.0, 0.5),
                                  retry=RetryPolicy(base_seconds=0.01), **options)


def token_requests(sandbox: Sandbox) -> int:
    return sandbox_stats(sandbox)["requests"].get(TOKEN_REQUEST, 0)


def logged_text(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(record.getMessage() for record in caplog.records)


def test_client_credentials_token_is_fetched_once_and_reused(shop: Sandbox, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    session = TokenRecordingSession()
    client = make_client(shop, make_credentials(shop), session=session)
    names = [client.execute(SHOP_QUERY)["shop"]["name"] for _ in range(3)]
    assert len(set(names)) == 1
    assert token_requests(shop) == 1
    assert len(set(session.tokens_sent)) == 1 and session.tokens_sent[0].startswith("shpat_")
    token_call = requests.get(f"{shop.shopify_url}/_sandbox/requests", timeout=10).json()[0]
    assert token_call["variables"] == {"grant_type": "client_credentials", "client_id": DEFAULT_CLIENT_ID,
                                       "client_secret": "***"}
    assert "Shopify access token obtained for SHOPIFY_CLIENT_ID 'sandbox-shopify-client'" in logged_text(caplog)
    for secret in (DEFAULT_CLIENT_SECRET, *session.tokens_sent):
        assert secret not in logged_text(caplog)


@pytest.mark.parametrize(("lifetime", "renewed_at"), [(86399, 86399 - 300), (100, 90)],
                         ids=["day-long: 5 minutes early", "short: a tenth of its lifetime early"])
def test_token_is_renewed_a_margin_before_it_expires(shop: Sandbox, lifetime: int, renewed_at: float) -> None:
    """Read on a clock the test moves: the token is kept until just before the margin, not after."""
    control(shop, "config", {"token_lifetime_seconds": lifetime})
    now = [0.0]
    tokens = make_credentials(shop, clock=lambda: now[0])
    first = tokens.current()
    now[0] = renewed_at - 0.01
    assert tokens.current() == first
    assert token_requests(shop) == 1
    now[0] = renewed_at
    assert tokens.current() != first
    assert token_requests(shop) == 2


def test_short_lived_token_is_renewed_before_the_server_expires_it(shop: Sandbox) -> None:
    """A 2 s token is renewed from 1.8 s: the call at 1.9 s gets a new one, and no request is refused."""
    control(shop, "config", {"token_lifetime_seconds": 2})
    session = TokenRecordingSession()
    client = make_client(shop, make_credentials(shop), session=session)
    client.execute(SHOP_QUERY)
    time.sleep(1.9)
    client.execute(SHOP_QUERY)
    assert token_requests(shop) == 2
    assert len(set(session.tokens_sent)) == 2
    assert "401" not in sandbox_stats(shop)["statuses"]


def test_token_the_server_no_longer_accepts_is_renewed_once_and_the_call_resent(
    shop: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="lnb_pipeline.clients.shopify")
    client = make_client(shop, make_credentials(shop))
    client.execute(SHOP_QUERY)
    assert control(shop, "tokens/expire") == {"expired": 1}
    assert client.execute(SHOP_QUERY)["shop"]["name"]
    stats = sandbox_stats(shop)
    assert stats["requests"] == {TOKEN_REQUEST: 2, "shop": 3}
    assert stats["statuses"] == {"200": 4, "401": 1}
    assert "Shopify refused the access token (HTTP 401); sending again with a new one" in logged_text(caplog)


def test_order_refused_for_its_token_is_sent_once_more_and_created_once(shop: Sandbox) -> None:
    """A 401 means Shopify applied nothing, so even a non-idempotent mutation may be resent once."""
    client = make_client(shop, make_credentials(shop))
    client.execute(SHOP_QUERY)
    control(shop, "tokens/expire")
    payload = client.execute(ORDER_CREATE, {"order": ORDER})["orderCreate"]
    assert payload["userErrors"] == []
    assert len(logged_requests(shop, "orderCreate")) == 2
    created = [{"id": order["id"]} for order in client.execute(ORDERS_FOUND)["orders"]["nodes"]
               if order["sourceIdentifier"] == "LNB-TEST-1"]
    assert created == [payload["order"]]


def test_fresh_token_refused_again_is_final(shop: Sandbox) -> None:
    """Every token is expired at the sandbox as soon as it is issued: one renewal, then the error."""
    def expire_every_token(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        control(shop, "tokens/expire")

    expiring = requests.Session()
    expiring.hooks["response"].append(expire_every_token)
    client = make_client(shop, make_credentials(shop, session=expiring))
    with pytest.raises(ShopifyAuthError) as raised:
        client.execute(SHOP_QUERY)
    assert str(raised.value) == (
        "Shopify refused a freshly issued access token (HTTP 401): check that the app with SHOPIFY_CLIENT_ID "
        "'sandbox-shopify-client' is installed on the shop with the access scopes it needs")
    assert sandbox_stats(shop)["requests"] == {TOKEN_REQUEST: 2, "shop": 2}


def test_fixed_token_refused_is_not_renewed(shop: Sandbox) -> None:
    """A source that cannot renew (the fixed SHOPIFY_ACCESS_TOKEN) is not asked twice."""
    asked: list[str] = []

    class OneToken:
        rejection_hint = "check the one token"

        def current(self) -> str:
            return "revoked-token"

        def renew_after_rejection(self, rejected: str) -> bool:
            asked.append(rejected)
            return False

    source: AccessTokenSource = OneToken()
    with pytest.raises(ShopifyAuthError, match=r"^Shopify refused the access token \(HTTP 401\): check the one token$"):
        make_client(shop, source).execute(SHOP_QUERY)
    assert asked == ["revoked-token"]
    assert sandbox_stats(shop)["total_requests"] == 1


def test_wrong_client_secret_fails_naming_the_client_id_but_not_the_secret(
    shop: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ShopifyAuthError) as raised:
        make_client(shop, make_credentials(shop, WRONG_SECRET)).execute(SHOP_QUERY)
    assert str(raised.value) == (
        "Shopify refused the client credentials of SHOPIFY_CLIENT_ID 'sandbox-shopify-client' (HTTP 400): "
        "invalid_client: Client authentication failed: unknown client_id or wrong client_secret")
    assert raised.value.__cause__ is None and raised.value.__context__ is None
    assert WRONG_SECRET not in logged_text(caplog)
    assert sandbox_stats(shop)["requests"] == {TOKEN_REQUEST: 1}


def test_shop_url_without_a_token_endpoint_says_which_setting_to_fix(shop: Sandbox) -> None:
    tokens = ClientCredentialsToken(f"{shop.shopify_url}/store/brand", DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)
    with pytest.raises(ShopifyAuthError) as raised:
        tokens.current()
    assert str(raised.value) == (
        f"Shopify has no token endpoint at {shop.shopify_url}/store/brand/admin/oauth/access_token (HTTP 404): "
        "SHOPIFY_SHOP_URL must be the shop's https://<shop>.myshopify.com address")


@pytest.mark.parametrize("kind", ["http_500", "http_503", "drop", "malformed_json", "throttle"])
def test_transient_token_endpoint_failure_is_retried(shop: Sandbox, kind: str,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    """``throttle`` is HTTP 429 with Retry-After: 1 there, so that case waits a second."""
    caplog.set_level(logging.WARNING, logger="lnb_pipeline.clients.shopify_auth")
    arm(shop, kind, TOKEN_REQUEST, 1)
    assert make_client(shop, make_credentials(shop)).execute(SHOP_QUERY)["shop"]["name"]
    assert token_requests(shop) == 2
    assert re.fullmatch(r"Shopify token endpoint: .+; retry 1/3 in \d+\.\d\d s", logged_text(caplog))
    assert DEFAULT_CLIENT_SECRET not in logged_text(caplog)


def test_token_endpoint_failing_every_time_gives_up_after_the_retry_policy(shop: Sandbox) -> None:
    arm(shop, "http_503", TOKEN_REQUEST, 10)
    with pytest.raises(ShopifyServerError, match=r"^Shopify's token endpoint failed after 4 attempt\(s\): HTTP 503$"):
        make_client(shop, make_credentials(shop)).execute(SHOP_QUERY)
    assert sandbox_stats(shop)["requests"] == {TOKEN_REQUEST: 4}


def test_concurrent_first_calls_share_one_token(shop: Sandbox) -> None:
    """Eight threads needing a token at the same moment wait for one fetch instead of making eight."""
    tokens = make_credentials(shop)
    clients = [make_client(shop, tokens) for _ in range(8)]
    start = threading.Barrier(len(clients))

    def shop_name(client: ShopifyClient) -> str:
        start.wait()
        return client.execute(SHOP_QUERY)["shop"]["name"]

    with ThreadPoolExecutor(max_workers=len(clients)) as pool:
        names = list(pool.map(shop_name, clients))
    assert len(names) == 8 and len(set(names)) == 1
    assert sandbox_stats(shop)["requests"] == {TOKEN_REQUEST: 1, "shop": 8}
