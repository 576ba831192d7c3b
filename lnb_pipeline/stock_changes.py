"""The incremental stock path's Shopify side: which inventory levels changed since a moment.

Shopify filters a location's inventory levels by ``updated_at``; a changed level names its item in
its own gid (``…/InventoryLevel/…?inventory_item_id=N``), so one cheap query per selected location
gives every changed (item, location) with its new ``available``: about 2 points per change, where
re-reading the variants would cost 10 or more. ``StockMirror`` (``stock_mirror.py``) holds everything
else the sum needs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import polars as pl

from lnb_pipeline.clients.shopify import ShopifyClient
from lnb_pipeline.clients.shopify_queries import CHANGED_LEVELS_QUERY

CHANGE_SCHEMA: dict[str, pl.DataType] = {
    "inventory_item_id": pl.String(),
    "location_id": pl.String(),
    "available": pl.Int64(),
    "updated_at": pl.Datetime("us", "UTC"),
}
"""One row per changed (inventory item, location), its latest ``available`` and when it changed."""
CHECK_PAGE_SIZE = 1
"""The trigger only asks whether anything changed: one level is enough, and costs 4 points."""


@dataclass(frozen=True)
class ChangedLevels:
    levels: pl.DataFrame
    """``CHANGE_SCHEMA``; a level changed twice in the window appears once, with its latest value."""
    since: datetime
    """The window read: levels updated after this moment."""


def shopify_time(moment: datetime) -> str:
    """A moment as Shopify's search syntax takes it: UTC, whole seconds, quoted."""
    return "'" + moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") + "'"


def _item_gid(level_gid: str) -> str | None:
    _, _, query = level_gid.partition("?")
    for part in query.split("&"):
        name, _, value = part.partition("=")
        if name == "inventory_item_id" and value.isdigit():
            return f"gid://shopify/InventoryItem/{value}"
    return None


def _available(level: dict[str, object]) -> int | None:
    for quantity in level.get("quantities") or []:  # type: ignore[union-attr]
        if quantity.get("name") == "available":  # type: ignore[union-attr]
            return quantity.get("quantity")  # type: ignore[union-attr,no-any-return]
    return None


def read_changed_levels(client: ShopifyClient, location_ids: Iterable[str], since: datetime) -> ChangedLevels:
    """Every level at ``location_ids`` updated after ``since`` (Shopify's clock)."""
    rows: dict[tuple[str, str], tuple[int | None, datetime]] = {}
    query = f"updated_at:>{shopify_time(since)}"
    for location_id in location_ids:
        for level in client.paginate(CHANGED_LEVELS_QUERY, {"location": location_id, "query": query},
                                     ("location", "inventoryLevels"), label="changed inventory levels"):
            item = _item_gid(level["id"])
            if item is None:
                raise ValueError(f"Shopify answered an inventory level gid without its item: {level['id']!r}")
            updated = datetime.fromisoformat(level["updatedAt"].replace("Z", "+00:00"))
            known = rows.get((item, location_id))
            if known is None or updated >= known[1]:
                rows[(item, location_id)] = (_available(level), updated)
    frame = pl.DataFrame(
        [(item, location, available, updated) for (item, location), (available, updated) in rows.items()],
        schema=CHANGE_SCHEMA, orient="row")
    return ChangedLevels(frame.sort("inventory_item_id", "location_id"), since)


def anything_changed(client: ShopifyClient, location_ids: Iterable[str], since: datetime) -> bool:
    """Whether any level at ``location_ids`` changed after ``since``: one tiny query per location."""
    query = f"updated_at:>{shopify_time(since)}"
    for location_id in location_ids:
        data = client.execute(CHANGED_LEVELS_QUERY, {"location": location_id, "query": query,
                                                     "first": CHECK_PAGE_SIZE, "after": None})
        if ((data.get("location") or {}).get("inventoryLevels") or {}).get("nodes"):
            return True
    return False
