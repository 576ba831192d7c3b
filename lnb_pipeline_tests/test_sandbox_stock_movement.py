"""The sandbox's moving stock over HTTP: levels change on their own, stamped, and a search for
changed levels finds them once the search index has caught up."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from lnb_pipeline.sandbox import Sandbox, start_sandbox
from lnb_pipeline.sandbox.shopify.api import DEFAULT_TOKEN

LAG_SECONDS = 1.0
CHANGED = """
query($location: ID!, $query: String!) {
  location(id: $location) {
    inventoryLevels(first: 250, query: $query) { nodes { id updatedAt quantities(names: ["available"]) { quantity } } }
  }
}
"""


@pytest.fixture(scope="module")
def shop() -> Iterator[Sandbox]:
    running = start_sandbox("scale:400")
    requests.post(f"{running.shopify.url}/_sandbox/config", json={"order_search_lag_seconds": LAG_SECONDS},
                  timeout=10).raise_for_status()
    yield running
    running.stop()


def _changed_levels(shop: Sandbox, location: int, since: str) -> list[dict[str, Any]]:
    answer = requests.post(f"{shop.shopify_url}/admin/api/2026-04/graphql.json", timeout=30,
                           headers={"X-Shopify-Access-Token": DEFAULT_TOKEN},
                           json={"query": CHANGED, "variables": {"location": f"gid://shopify/Location/{location}",
                                                                 "query": f"updated_at:>'{since}'"}}).json()
    return answer["data"]["location"]["inventoryLevels"]["nodes"]


def test_moving_stock_changes_levels_that_a_search_finds_after_the_index_lag(shop: Sandbox) -> None:
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1))
    started = requests.post(f"{shop.shopify.url}/_sandbox/stock_movement", json={"per_minute": 1200, "seed": 3},
                            timeout=10)
    assert started.json() == {"per_minute": 1200.0}
    time.sleep(1.5)
    changes = requests.delete(f"{shop.shopify.url}/_sandbox/stock_movement", timeout=10).json()["changes"]
    assert len(changes) >= 10
    assert all(change["available"] >= 0 for change in changes)
    assert any(change["available"] != change["previous_available"] for change in changes)
    latest: dict[tuple[str, str], int] = {}
    for change in changes:
        latest[(change["inventory_item_id"].rsplit("/", 1)[1], change["location_id"])] = change["available"]
    time.sleep(LAG_SECONDS + 0.5)
    found: dict[tuple[str, str], int] = {}
    for location in (1, 2, 3):
        for level in _changed_levels(shop, location, since):
            item = level["id"].split("inventory_item_id=")[1]
            found[(item, f"gid://shopify/Location/{location}")] = level["quantities"][0]["quantity"]
    assert found == latest
    assert requests.get(f"{shop.shopify.url}/_sandbox/stock_movement", timeout=10).json() == {"changes": []}


def test_a_changed_level_stays_out_of_searches_while_the_index_lags(shop: Sandbox) -> None:
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1))
    requests.post(f"{shop.shopify.url}/_sandbox/inventory", timeout=10,
                  json={"changes": [{"variant_id": 7, "location_id": 1, "available": 123}]}).raise_for_status()
    assert _changed_levels(shop, 1, since) == []
    time.sleep(LAG_SECONDS + 0.5)
    assert [level["quantities"][0]["quantity"] for level in _changed_levels(shop, 1, since)] == [123]


def test_a_movement_needs_a_positive_rate(shop: Sandbox) -> None:
    refused = requests.post(f"{shop.shopify.url}/_sandbox/stock_movement", json={"per_minute": 0}, timeout=10)
    assert refused.status_code == 400 and "per_minute" in refused.json()["error"]
