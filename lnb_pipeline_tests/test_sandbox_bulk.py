"""The sandbox's bulk operations, over HTTP, held to what real Shopify does or the stricter choice.

A bulk query starts CREATED; its result comes ungrouped unless ``groupObjects: true``; the result
is a V2-signed storage link on another host, which refuses an altered, unsigned or expired link and
never takes the Shopify token. Where a setting has no HTTP knob yet (``groupObjects``, which api.py
does not pass on, and the link lifetime) the test reaches the sandbox in process.
"""

from __future__ import annotations

import bisect
import dataclasses
import json
import re
import time
import xml.etree.ElementTree as ElementTree
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from lnb_pipeline.sandbox import Sandbox
from lnb_pipeline.sandbox.scenario import load_scenario
from lnb_pipeline.sandbox.shopify.api import DEFAULT_TOKEN, ShopifyApi
from lnb_pipeline.sandbox.shopify.bulk import FINAL_STATUSES
from lnb_pipeline.sandbox.shopify.storage import RESULT_URL_TTL_SECONDS

BULK_RUN = """
mutation Run($query: String!) {
  bulkOperationRunQuery(query: $query) { bulkOperation { id status } userErrors { field message code } }
}
"""
"""``groupObjects`` left out: its schema default, false."""
BULK_STATUS = """
query Status($id: ID!) {
  bulkOperation(id: $id) { id status errorCode objectCount rootObjectCount fileSize url partialDataUrl }
}
"""
STOCK_BULK = """
{ productVariants { edges { node { id sku inventoryItem { id inventoryLevels { edges { node {
  location { id } quantities(names: ["available"]) { name quantity } } } } } } } } }
"""
LINK_PARAMETERS = ["GoogleAccessId", "Expires", "Signature", "response-content-disposition", "response-content-type"]
"""In the order Shopify's links give them."""
OBJECT_PATH = re.compile(r"^/shopify-tiers-assets-sandbox/bulk-operation-outputs/[a-z0-9]{28}-final$")


def shop_data(sandbox: Sandbox, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    response = requests.post(f"{sandbox.shopify_url}/admin/api/2026-04/graphql.json", timeout=10,
                             headers={"X-Shopify-Access-Token": DEFAULT_TOKEN},
                             json={"query": query, "variables": variables})
    response.raise_for_status()
    body = response.json()
    assert "errors" not in body, body["errors"]
    return body["data"]


def start(sandbox: Sandbox) -> dict[str, Any]:
    """The operation as ``bulkOperationRunQuery`` answers it."""
    started = shop_data(sandbox, BULK_RUN, {"query": STOCK_BULK})["bulkOperationRunQuery"]
    assert started["userErrors"] == []
    return started["bulkOperation"]


def finished(sandbox: Sandbox, operation_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:
        operation = shop_data(sandbox, BULK_STATUS, {"id": operation_id})["bulkOperation"]
        if operation["status"] in FINAL_STATUSES:
            return operation
        assert time.monotonic() < deadline, f"bulk operation still {operation['status']}"
        time.sleep(0.02)


def completed(sandbox: Sandbox) -> dict[str, Any]:
    operation = finished(sandbox, start(sandbox)["id"])
    assert operation["status"] == "COMPLETED"
    return operation


def jsonl(url: str) -> list[dict[str, Any]]:
    response = requests.get(url, timeout=10)
    assert response.status_code == 200, response.text
    return [json.loads(text) for text in response.text.splitlines()]


def storage_error(response: requests.Response) -> dict[str, str]:
    """A Cloud Storage XML error as ``{tag: text}``."""
    assert response.headers["Content-Type"] == "application/xml; charset=UTF-8"
    root = ElementTree.fromstring(response.content)
    assert root.tag == "Error"
    return {child.tag: child.text or "" for child in root}


def children_grouped(lines: list[dict[str, Any]]) -> bool:
    """True when every child line comes right after its parent or a sibling."""
    parent = None
    for line in lines:
        if "__parentId" not in line:
            parent = line["id"]
        elif line["__parentId"] != parent:
            return False
    return True


def test_start_answers_created_however_fast_the_operation_runs(sandbox: Sandbox) -> None:
    """Shopify answers CREATED; the sandbox used to copy the operation after starting its thread, and
    a fast run made it answer RUNNING or COMPLETED instead."""
    statuses = []
    for _ in range(10):
        operation = start(sandbox)
        statuses.append(operation["status"])
        finished(sandbox, operation["id"])
    assert statuses == ["CREATED"] * 10


def test_ungrouped_result_puts_children_before_their_parent_or_after_others(sandbox: Sandbox) -> None:
    """``groupObjects`` defaults to false, where Shopify promises no order: a client relying on
    children following their parent, or on any other order, must fail here. Joined by
    ``__parentId``, nothing is lost."""
    operation = completed(sandbox)
    lines = jsonl(operation["url"])
    position = {line["id"]: index for index, line in enumerate(lines) if "__parentId" not in line}
    children = [(index, line["__parentId"]) for index, line in enumerate(lines) if "__parentId" in line]
    roots = sorted(position.values())
    assert any(index < position[parent] for index, parent in children)
    assert any(bisect.bisect(roots, index) - bisect.bisect(roots, position[parent]) > 1
               for index, parent in children if index > position[parent])
    assert not children_grouped(lines)
    assert {parent for _, parent in children} <= set(position)
    assert (len(lines), len(position)) == (int(operation["objectCount"]), int(operation["rootObjectCount"]))

    grouped_id = sandbox.shopify.api.bulk.start(STOCK_BULK, group_objects=True)["id"]
    grouped = jsonl(finished(sandbox, grouped_id)["url"])
    assert children_grouped(grouped)
    assert sorted(map(json.dumps, grouped)) == sorted(map(json.dumps, lines))
    assert [line["id"] for line in grouped if "__parentId" not in line] == list(position)


def test_result_is_a_signed_link_on_another_host(sandbox: Sandbox) -> None:
    """Shaped like Shopify's Cloud Storage links, valid seven days, served by its own server."""
    operation = completed(sandbox)
    link, shop = urlsplit(operation["url"]), urlsplit(sandbox.shopify_url)
    assert (shop.hostname, link.hostname) == ("127.0.0.1", "localhost")
    assert link.port != shop.port
    assert OBJECT_PATH.match(link.path)
    parameters = dict(parse_qsl(link.query))
    assert list(parameters) == LINK_PARAMETERS
    assert parameters["GoogleAccessId"].endswith(".iam.gserviceaccount.com")
    assert abs(int(parameters["Expires"]) - time.time() - RESULT_URL_TTL_SECONDS) < 60
    number = operation["id"].rsplit("/", 1)[-1]
    assert f"response-content-disposition=attachment%3B+filename%3D%22bulk-{number}.jsonl%22%3B+filename%2A%3DUTF-8" \
           f"%27%27bulk-{number}.jsonl&response-content-type=application%2Fjsonl" in link.query

    download = requests.get(operation["url"], timeout=10)
    assert download.status_code == 200
    assert download.headers["Content-Type"] == "application/jsonl"
    assert download.headers["Content-Disposition"] == (f"attachment; filename=\"bulk-{number}.jsonl\"; "
                                                       f"filename*=UTF-8''bulk-{number}.jsonl")
    assert download.headers["Content-Length"] == operation["fileSize"]
    assert requests.get(f"{sandbox.shopify_url}{link.path}?{link.query}", timeout=10).status_code == 404


def _altered(url: str, change: str) -> tuple[str, str]:
    """The method and link of ``url`` with one part changed."""
    link = urlsplit(url)
    parameters = dict(parse_qsl(link.query))
    path = link.path
    method = "GET"
    if change == "later-expiry":
        parameters["Expires"] = str(int(parameters["Expires"]) + 1)
    elif change == "signature":
        parameters["Signature"] = parameters["Signature"][::-1]
    elif change == "content-type":
        parameters["response-content-type"] = "text/html"
    elif change == "extra-parameter":
        parameters["generation"] = "1"
    elif change == "other-object":
        path = path.replace("-final", "-other")
    elif change == "method":
        method = "POST"
    query = "&".join(f"{key}={requests.utils.quote(value, safe='')}" for key, value in parameters.items())
    return method, f"{link.scheme}://{link.netloc}{path}?{query}"


@pytest.mark.parametrize("change", ["later-expiry", "signature", "content-type", "extra-parameter", "other-object",
                                    "method"])
def test_altered_link_is_refused_as_signature_does_not_match(sandbox: Sandbox, change: str) -> None:
    """The signature covers the method, the object and every parameter: a link cannot be edited."""
    method, url = _altered(completed(sandbox)["url"], change)
    refused = requests.request(method, url, timeout=10)
    assert refused.status_code == 403
    error = storage_error(refused)
    assert error["Code"] == "SignatureDoesNotMatch"
    assert error["StringToSign"].startswith(f"{method}\n\n\n")


def test_unsigned_link_is_denied(sandbox: Sandbox) -> None:
    link = urlsplit(completed(sandbox)["url"])
    refused = requests.get(f"{link.scheme}://{link.netloc}{link.path}", timeout=10)
    assert refused.status_code == 403
    assert storage_error(refused)["Code"] == "AccessDenied"


@pytest.mark.parametrize(("header", "value"), [("X-Shopify-Access-Token", DEFAULT_TOKEN),
                                               ("Authorization", f"Bearer {DEFAULT_TOKEN}")])
@pytest.mark.parametrize("signed", [True, False], ids=["signed", "unsigned"])
def test_storage_host_never_takes_the_shopify_token(sandbox: Sandbox, header: str, value: str, signed: bool) -> None:
    """The token is the shop's credential: a client that sends it to the storage host fails here,
    with or without a valid link, instead of leaking it to a third party unnoticed."""
    url = completed(sandbox)["url"]
    refused = requests.get(url if signed else url.split("?")[0], headers={header: value}, timeout=10)
    assert refused.status_code == 400
    error = storage_error(refused)
    assert error["Code"] == "InvalidArgument"
    assert DEFAULT_TOKEN not in refused.text


def test_link_expires_after_its_lifetime(sandbox: Sandbox) -> None:
    """Cloud Storage answers an expired link 400 ExpiredToken."""
    bulk = sandbox.shopify.api.bulk
    bulk.settings = dataclasses.replace(bulk.settings, url_ttl_seconds=1)
    url = completed(sandbox)["url"]
    assert requests.get(url, timeout=10).status_code == 200
    expires = int(dict(parse_qsl(urlsplit(url).query))["Expires"])
    time.sleep(max(0.0, expires - time.time()) + 0.05)
    refused = requests.get(url, timeout=10)
    assert refused.status_code == 400
    assert storage_error(refused) == {
        "Code": "ExpiredToken", "Message": "The provided token has expired.",
        "Details": f"Request signature expired at: {time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(expires))}+00:00"}


def test_expired_operation_takes_its_link_with_it(sandbox: Sandbox) -> None:
    """``/_sandbox/bulk/<n>/expire`` stands for seven days passing: the link answers ExpiredToken."""
    operation = completed(sandbox)
    number = operation["id"].rsplit("/", 1)[-1]
    requests.post(f"{sandbox.shopify_url}/_sandbox/bulk/{number}/expire", timeout=10).raise_for_status()
    refused = requests.get(operation["url"], timeout=10)
    assert (refused.status_code, storage_error(refused)["Code"]) == (400, "ExpiredToken")


def test_reset_deletes_results_and_their_links(sandbox: Sandbox) -> None:
    """Results can be hundreds of MB: a reset must not leave them on disk."""
    operation = completed(sandbox)
    requests.post(f"{sandbox.shopify_url}/_sandbox/reset", json={}, timeout=60).raise_for_status()
    refused = requests.get(operation["url"], timeout=10)
    assert (refused.status_code, storage_error(refused)["Code"]) == (404, "NoSuchKey")
    assert sandbox.shopify.api.bulk.result_file(operation["id"]) is None


def test_closing_the_bulk_operations_stops_their_storage_server() -> None:
    bulk = ShopifyApi(load_scenario("demo")).bulk
    health = f"{bulk.storage.url}/_sandbox/health"
    assert requests.get(health, timeout=10).json()["api"] == "shopify-storage"
    bulk.close()
    with pytest.raises(requests.ConnectionError):
        requests.get(health, timeout=10)
