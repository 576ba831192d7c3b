"""The incremental stock path's rules and its on-disk mirror, without Dagster or HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

from lnb_pipeline.rules.stock import (
    StockSettings,
    compute_available_to_sell,
    exported_stock,
)
from lnb_pipeline.rules.stock_changes import (
    SENT_SCHEMA,
    apply_level_changes,
    keys_to_send,
    record_sent,
)
from lnb_pipeline.stock_changes import CHANGE_SCHEMA
from lnb_pipeline.stock_mirror import (
    StockMirror,
    load_mirror,
    mirror_cursor,
    save_mirror,
)
from lnb_pipeline.stock_source import READ_SCHEMA

PARIS, AMSTERDAM, OUTLET = "gid://shopify/Location/1", "gid://shopify/Location/2", "gid://shopify/Location/3"
T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _level(variant: int, location: str, available: int, barcode: str) -> dict[str, object]:
    return {"variant_id": f"gid://shopify/ProductVariant/{variant}", "sku": f"SKU-{variant}", "barcode": barcode,
            "product_status": "ACTIVE", "tracked": True, "location_id": location, "location_name": location[-1],
            "available": available, "on_hand": available, "committed": 0,
            "product_id": "gid://shopify/Product/1", "title": f"Shirt - {variant}",
            "inventory_item_id": f"gid://shopify/InventoryItem/{variant}"}


LEVELS = pl.DataFrame([
    _level(1, PARIS, 5, "4006381333931"), _level(1, AMSTERDAM, 2, "4006381333931"),
    _level(2, PARIS, 7, "5901234123457"),
], schema=READ_SCHEMA)


def _changes(*rows: tuple[int, str, int]) -> pl.DataFrame:
    return pl.DataFrame([(f"gid://shopify/InventoryItem/{item}", location, available, T0)
                         for item, location, available in rows], schema=CHANGE_SCHEMA, orient="row")


def _quantities(levels: pl.DataFrame) -> dict[str, int]:
    stock = compute_available_to_sell(levels, [PARIS, AMSTERDAM], StockSettings())
    return dict(exported_stock(stock).iter_rows())


def test_a_changed_level_replaces_its_available_and_the_sum_follows() -> None:
    result = apply_level_changes(LEVELS, _changes((1, AMSTERDAM, 9)))
    assert (result.applied, result.unknown_items) == (1, 0)
    assert _quantities(result.levels) == {"4006381333931": 14, "5901234123457": 7}


def test_a_known_item_newly_stocked_somewhere_gets_a_level_there() -> None:
    result = apply_level_changes(LEVELS, _changes((2, AMSTERDAM, 4)))
    assert result.applied == 1
    assert result.levels.height == LEVELS.height + 1
    added = result.levels.filter(pl.col("location_id") == AMSTERDAM, pl.col("variant_id").str.ends_with("/2"))
    assert added.select("sku", "barcode", "title", "location_name", "available").row(0) == (
        "SKU-2", "5901234123457", "Shirt - 2", "2", 4)
    assert _quantities(result.levels)["5901234123457"] == 11


def test_an_item_never_read_is_counted_and_left_to_the_full_sync() -> None:
    result = apply_level_changes(LEVELS, _changes((99, PARIS, 3)))
    assert (result.applied, result.unknown_items) == (0, 1)
    assert result.levels.equals(LEVELS)


def test_only_keys_lnb_holds_whose_quantity_differs_from_what_it_was_sent_are_sent() -> None:
    sent = pl.DataFrame({"key": ["4006381333931", "5901234123457"], "quantity": [7, 6]}, schema=SENT_SCHEMA)
    exported = pl.DataFrame({"key": ["4006381333931", "5901234123457", "0012345678905"], "quantity": [7, 7, 1]})
    assert keys_to_send(exported, sent).rows() == [("5901234123457", 7)]
    assert record_sent(sent, keys_to_send(exported, sent)).rows() == [("4006381333931", 7), ("5901234123457", 7)]


def test_the_mirror_is_read_back_as_written_and_old_states_are_removed(tmp_path: Path) -> None:
    assert load_mirror(tmp_path) is None and mirror_cursor(tmp_path) is None
    sent = pl.DataFrame({"key": ["4006381333931"], "quantity": [7]}, schema=SENT_SCHEMA)
    for minutes in range(4):
        save_mirror(tmp_path, StockMirror(LEVELS, sent, T0 + timedelta(minutes=minutes), (PARIS, AMSTERDAM)))
    mirror = load_mirror(tmp_path)
    assert mirror is not None
    assert (mirror.read_at, mirror.location_ids) == (T0 + timedelta(minutes=3), (PARIS, AMSTERDAM))
    assert mirror.levels.equals(LEVELS) and mirror.sent.equals(sent)
    assert mirror_cursor(tmp_path) == (T0 + timedelta(minutes=3), (PARIS, AMSTERDAM), False)
    assert len([path for path in tmp_path.iterdir() if path.name.startswith("state-")]) == 2
