"""Stock that moves on its own, as a live shop's does: sales, returns and restocks at random levels.

Started by ``POST /_sandbox/stock_movement`` (or ``lnb-sandbox --stock-movement N``) at N level
changes a minute; every change stamps the level's ``updatedAt`` (and its item's and variant's), so
``inventoryLevels(query: "updated_at:>…")`` finds it. Each change is logged with its moment, for
measuring how long it takes to reach LNB.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from lnb_pipeline.sandbox.shopify.state import (
    ShopifyState,
    format_timestamp,
    stamp_level,
)

SEVERAL_LOCATIONS_SHARE = 0.2
"""Share of movements that touch every location stocking the item at once (a transfer, a recount)."""


@dataclass(frozen=True)
class LevelChange:
    at: datetime
    inventory_item_id: str
    location_id: str
    previous_available: int
    available: int

    def as_json(self) -> dict[str, Any]:
        return {"at": format_timestamp(self.at), "at_epoch": self.at.timestamp(),
                "inventory_item_id": self.inventory_item_id, "location_id": self.location_id,
                "previous_available": self.previous_available, "available": self.available}


class StockMovement:
    """A background thread making ``per_minute`` level changes a minute until stopped (a movement at
several locations counts one change per level)."""

    def __init__(self, state: ShopifyState, per_minute: float, seed: int | None = None) -> None:
        if not per_minute > 0:
            raise ValueError("per_minute must be a positive number of level changes a minute")
        self._state = state
        self._interval = 60.0 / per_minute
        self._random = random.Random(seed)
        self._stop = threading.Event()
        self._log: list[LevelChange] = []
        self._log_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="sandbox-stock-movement", daemon=True)
        self.per_minute = per_minute

    def start(self) -> StockMovement:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def changes(self) -> list[LevelChange]:
        with self._log_lock:
            return list(self._log)

    def _run(self) -> None:
        due = time.monotonic()
        stocked = [variant["inventoryItem"] for variant in self._state.variants if variant["inventoryItem"]["_levels"]]
        while stocked and not self._stop.is_set():
            due += self._interval * self._move(self._random.choice(stocked))
            self._stop.wait(max(0.0, due - time.monotonic()))

    def _move(self, item: dict[str, Any]) -> int:
        """One movement of ``item``'s stock; the number of levels it changed (the pace counts levels)."""
        levels = list(item["_levels"].values())
        if len(levels) > 1 and self._random.random() < SEVERAL_LOCATIONS_SHARE:
            chosen = levels
        else:
            chosen = [self._random.choice(levels)]
        with self._state.lock:
            moment = datetime.now(UTC).replace(microsecond=0)
            stamp = format_timestamp(moment)
            for level in chosen:
                kind = self._random.random()  # 60% sales, 15% returns, 25% restocks
                step = -self._random.randint(1, 3) if kind < 0.6 else (1 if kind < 0.75 else self._random.randint(5, 20))
                previous = level["_q"]["available"]
                level["_q"]["available"] = max(0, previous + step)
                stamp_level(level, stamp)
                with self._log_lock:
                    self._log.append(LevelChange(moment, item["id"], level["location"]["id"], previous,
                                                 level["_q"]["available"]))
        return len(chosen)
