"""Stock flow settings, from the environment (documented in the README)."""

from __future__ import annotations

from typing import Any

import dagster as dg
from pydantic import Field

from lnb_pipeline.defs.env import fields_from_env
from lnb_pipeline.defs.task_logs import default_task_log_dir
from lnb_pipeline.rules.stock import StockSettings
from lnb_pipeline.stock_source import READ_MODES

_RULE_VARIABLES = {
    "key": "LNB_STOCK_KEY",
    "locations": "LNB_STOCK_LOCATIONS",
    "safety_buffer": "LNB_STOCK_SAFETY_BUFFER",
    "untracked": "LNB_STOCK_UNTRACKED",
    "untracked_quantity": "LNB_STOCK_UNTRACKED_QUANTITY",
}
"""Each rule setting's environment variable: checked one at a time, so an error names the right one."""


class InventorySettings(dg.ConfigurableResource):
    """How Shopify stock becomes LNB stock: key, locations, buffer, untracked items, read mode."""

    stock_key: str = Field(default="ean13", description="LNB_STOCK_KEY: ean13 or sku.")
    locations: str = Field(default="", description="LNB_STOCK_LOCATIONS: comma-separated names or ids; empty = all active.")
    safety_buffer: int = Field(default=0, description="LNB_STOCK_SAFETY_BUFFER: units held back per key.")
    untracked: str = Field(default="skip", description="LNB_STOCK_UNTRACKED: skip, as_reported or fixed.")
    untracked_quantity: int = Field(default=0, description="LNB_STOCK_UNTRACKED_QUANTITY: quantity sent for untracked items when fixed.")
    read_mode: str = Field(default="auto", description="SHOPIFY_STOCK_READ_MODE: auto, paginated or bulk.")
    bulk_threshold: int = Field(default=250, description="SHOPIFY_BULK_THRESHOLD: variant count from which auto uses a bulk operation (above one page, a bulk operation is cheaper in cost points).")
    max_invalid_percent: int = Field(default=20, description="LNB_STOCK_MAX_INVALID_PERCENT: above this share of excluded variants the push is blocked.")
    task_log_dir: str = Field(default_factory=default_task_log_dir, description="LNB_TASK_LOG_DIR: where task log files go.")

    def stock_settings(self) -> StockSettings:
        """The rule settings; raises ``ValueError`` naming the variable when one is malformed."""
        if self.read_mode not in READ_MODES:
            raise ValueError(f"SHOPIFY_STOCK_READ_MODE must be one of {', '.join(READ_MODES)}, got {self.read_mode!r}")
        if not 0 <= self.max_invalid_percent <= 100:
            raise ValueError(f"LNB_STOCK_MAX_INVALID_PERCENT must be from 0 to 100, got {self.max_invalid_percent}")
        values: dict[str, Any] = {
            "key": self.stock_key,
            "locations": tuple(part.strip() for part in self.locations.split(",") if part.strip()),
            "safety_buffer": self.safety_buffer,
            "untracked": self.untracked,
            "untracked_quantity": self.untracked_quantity,
        }
        for name, variable in _RULE_VARIABLES.items():
            try:
                StockSettings(**{name: values[name]})
            except ValueError as error:
                raise ValueError(f"{variable}: {error}") from None
        return StockSettings(**values)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self.stock_settings()


_FIELDS = {
    "stock_key": ("LNB_STOCK_KEY", str),
    "locations": ("LNB_STOCK_LOCATIONS", str),
    "safety_buffer": ("LNB_STOCK_SAFETY_BUFFER", int),
    "untracked": ("LNB_STOCK_UNTRACKED", str),
    "untracked_quantity": ("LNB_STOCK_UNTRACKED_QUANTITY", int),
    "read_mode": ("SHOPIFY_STOCK_READ_MODE", str),
    "bulk_threshold": ("SHOPIFY_BULK_THRESHOLD", int),
    "max_invalid_percent": ("LNB_STOCK_MAX_INVALID_PERCENT", int),
    "task_log_dir": ("LNB_TASK_LOG_DIR", str),
}


def inventory_settings_from_env() -> InventorySettings:
    """Settings bound to their environment variables where set, defaults elsewhere."""
    return InventorySettings(**fields_from_env(_FIELDS))
