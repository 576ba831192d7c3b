"""Rules of the incremental stock path: changed levels applied to the last known picture, and the
keys whose quantity differs from what LNB was last sent.

The quantities themselves come from ``rules.stock.compute_available_to_sell`` over the whole updated
picture, so the incremental path follows exactly the full flow's rules (locations, negative levels,
buffer, untracked items, duplicate keys) and can never disagree with it on the same levels.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

SENT_SCHEMA: dict[str, pl.DataType] = {"key": pl.String(), "quantity": pl.Int64()}
"""What LNB was last sent (or was found to hold) per key."""
_PAIR = ["inventory_item_id", "location_id"]


@dataclass(frozen=True)
class AppliedChanges:
    levels: pl.DataFrame
    """The picture with every change applied (same columns as before)."""
    applied: int
    """Changed levels of known items: updated in place, or added for a location newly stocking them."""
    unknown_items: int
    """Changed levels of items the picture does not have (variants created since the last full
    read): left to the next full sync, which adds them."""


def apply_level_changes(levels: pl.DataFrame, changes: pl.DataFrame) -> AppliedChanges:
    """``levels`` (the stock read's frame, with ``inventory_item_id``) with each changed level's
    ``available`` replaced; a known item newly stocked at a location gets a row for it.

    ``on_hand`` and ``committed`` of a changed level are left as last read: only ``available``
    is read for changes, and only it counts.
    """
    new_values = changes.select(*_PAIR, pl.col("available").alias("changed_available"))
    updated = (
        levels.join(new_values, on=_PAIR, how="left", maintain_order="left")
        .with_columns(pl.coalesce("changed_available", "available").alias("available"))
        .drop("changed_available")
    )
    new_pairs = new_values.join(levels.select(_PAIR).unique(), on=_PAIR, how="anti")
    variant_columns = [name for name in levels.columns if name not in {"location_id", "location_name", "available",
                                                                        "on_hand", "committed"}]
    variants = levels.select(variant_columns).unique("inventory_item_id", keep="first", maintain_order=True)
    location_names = levels.select("location_id", "location_name").drop_nulls("location_id").unique("location_id")
    added = (
        new_pairs.join(variants, on="inventory_item_id", how="inner")
        .join(location_names, on="location_id", how="left")
        .with_columns(pl.col("changed_available").alias("available"), pl.lit(None, pl.Int64).alias("on_hand"),
                      pl.lit(None, pl.Int64).alias("committed"))
        .select(levels.columns)
        .cast(dict(levels.schema))
    )
    unknown = new_pairs.join(variants.select("inventory_item_id"), on="inventory_item_id", how="anti").height
    return AppliedChanges(pl.concat([updated, added]), new_values.height - unknown, unknown)


def keys_to_send(exported: pl.DataFrame, sent: pl.DataFrame) -> pl.DataFrame:
    """``key, quantity`` of the exported keys (``rules.stock.exported_stock``) whose quantity differs
    from what LNB was last sent; sorted by key.

    Only keys LNB holds are in ``sent``; as in the full flow, a key new to LNB is not sent (LNB
    would reject it), nor a key no longer exported (this path does not know what LNB should hold).
    """
    return (
        exported.join(sent.rename({"quantity": "sent_quantity"}), on="key", how="inner")
        .filter(pl.col("sent_quantity") != pl.col("quantity"))
        .select("key", "quantity")
        .sort("key")
    )


def record_sent(sent: pl.DataFrame, pushed: pl.DataFrame) -> pl.DataFrame:
    """``sent`` with ``pushed`` (``key, quantity``) written over it."""
    return (
        pl.concat([sent.join(pushed.select("key"), on="key", how="anti"), pushed.select(sent.columns)])
        .cast(SENT_SCHEMA)
        .sort("key")
    )
