"""What the incremental stock path knows between runs, kept on disk: the last known Shopify
picture, what LNB was last sent per key, and the cursor (the Shopify moment the picture is known up to).

The three are written together, atomically, and only after a successful push: a cursor that moved
without its picture, or before its push, would lose changes. That is why the cursor lives here rather
than in a sensor cursor (a sensor cannot know whether the run it launched pushed) or in run tags.
A full ``inventory_sync`` replaces the whole mirror with its own read, which resets the cursor to the
moment that read started. Each state is a directory of its own; ``current.json`` names the live one
and is swapped with ``os.replace``, so a reader never sees half a state.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

import polars as pl

from lnb_pipeline.rules.stock_changes import SENT_SCHEMA

CURRENT = "current.json"
STATES_KEPT = 2
"""The live state and the one before it (for a look after a surprise); older ones are removed."""


@dataclass(frozen=True)
class StockMirror:
    levels: pl.DataFrame
    """The stock read's frame (``stock_source.READ_SCHEMA``), changes applied."""
    sent: pl.DataFrame
    """``SENT_SCHEMA``: what LNB was last sent, or found to hold, per exported key."""
    read_at: datetime
    """Changes up to this moment are in ``levels``; the next read starts here, less the overlap."""
    location_ids: tuple[str, ...]
    """The locations summed when the mirror was made; a change of selection waits for the next full sync."""
    pushed_changes: bool = False
    """Whether stock changes have been pushed since the last full sync: only then is a key the next
    full sync corrects one the incremental path missed."""


def default_mirror_dir() -> str:
    """``$DAGSTER_HOME/stock_mirror`` when Dagster has a home, else ``./stock_mirror``."""
    home = os.environ.get("DAGSTER_HOME")
    return str(Path(home) / "stock_mirror") if home else "stock_mirror"


def load_mirror(directory: Path) -> StockMirror | None:
    """The live state, or None before the first full sync."""
    try:
        current = json.loads((directory / CURRENT).read_text())
    except FileNotFoundError:
        return None
    state = directory / current["state"]
    return StockMirror(
        levels=pl.read_parquet(state / "levels.parquet"),
        sent=pl.read_parquet(state / "sent.parquet").cast(SENT_SCHEMA),
        read_at=datetime.fromisoformat(current["read_at"]),
        location_ids=tuple(current["location_ids"]),
        pushed_changes=current.get("pushed_changes", False),
    )


class MirrorCursor(NamedTuple):
    """What the trigger and the full sync need to know of the live state, without reading its frames."""

    read_at: datetime
    location_ids: tuple[str, ...]
    pushed_changes: bool


def mirror_cursor(directory: Path) -> MirrorCursor | None:
    try:
        current = json.loads((directory / CURRENT).read_text())
    except FileNotFoundError:
        return None
    return MirrorCursor(datetime.fromisoformat(current["read_at"]), tuple(current["location_ids"]),
                        current.get("pushed_changes", False))


def save_mirror(directory: Path, mirror: StockMirror) -> None:
    """Write ``mirror`` as the live state; the previous live state is kept, older ones removed."""
    if mirror.read_at.tzinfo is None:
        raise ValueError("the mirror's read_at must carry a time zone")
    directory.mkdir(parents=True, exist_ok=True)
    name = f"state-{mirror.read_at.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
    staging = directory / f".{name}"
    staging.mkdir()
    mirror.levels.write_parquet(staging / "levels.parquet")
    mirror.sent.cast(SENT_SCHEMA).write_parquet(staging / "sent.parquet")
    staging.rename(directory / name)
    pointer = directory / f".{CURRENT}.{uuid.uuid4().hex[:8]}"
    pointer.write_text(json.dumps({"state": name, "read_at": mirror.read_at.isoformat(),
                                   "location_ids": list(mirror.location_ids),
                                   "pushed_changes": mirror.pushed_changes}))
    os.replace(pointer, directory / CURRENT)
    states = sorted((path for path in directory.glob("state-*") if path.is_dir()), key=lambda path: path.stat().st_mtime)
    for old in states[:-STATES_KEPT]:
        if old.name != name:
            shutil.rmtree(old, ignore_errors=True)
