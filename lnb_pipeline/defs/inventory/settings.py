"""Stock flow settings (declared in ``lnb_pipeline.settings``)."""

from __future__ import annotations

import dagster as dg

from lnb_pipeline.rules.stock import StockSettings
from lnb_pipeline.settings import SettingError, check_values, setting_field, settings_of
from lnb_pipeline.stock_source import READ_MODES


class InventorySettings(dg.ConfigurableResource):
    """How Shopify stock becomes LNB stock (key, locations, buffer, untracked items, read mode) and the
    limits that stop a push: bad keys, and the push guard."""

    stock_key: str = setting_field("LNB_STOCK_KEY")
    locations: str = setting_field("LNB_STOCK_LOCATIONS")
    safety_buffer: int = setting_field("LNB_STOCK_SAFETY_BUFFER")
    untracked: str = setting_field("LNB_STOCK_UNTRACKED")
    untracked_quantity: int = setting_field("LNB_STOCK_UNTRACKED_QUANTITY")
    read_mode: str = setting_field("SHOPIFY_STOCK_READ_MODE")
    bulk_threshold: int = setting_field("SHOPIFY_BULK_THRESHOLD")
    max_invalid_percent: int = setting_field("LNB_STOCK_MAX_INVALID_PERCENT")
    guard_max_changed_percent: int = setting_field("LNB_STOCK_GUARD_MAX_CHANGED_PERCENT")
    guard_max_zeroed_percent: int = setting_field("LNB_STOCK_GUARD_MAX_ZEROED_PERCENT")
    changes_overlap_seconds: int = setting_field("LNB_STOCK_CHANGES_OVERLAP_SECONDS")
    state_dir: str = setting_field("LNB_STOCK_STATE_DIR")
    task_log_dir: str = setting_field("LNB_TASK_LOG_DIR")

    def stock_settings(self) -> StockSettings:
        """The rule settings; raises ``SettingError`` naming the variable when one is malformed."""
        variables = {field: setting.name for field, setting in settings_of(InventorySettings).items()}
        if self.read_mode not in READ_MODES:
            raise SettingError(f"{variables['read_mode']} must be one of {', '.join(READ_MODES)}, "
                               f"got {self.read_mode!r}")
        rules = (  # (field, rule, value): each checked alone, so an error names the right variable
            ("stock_key", "key", self.stock_key),
            ("locations", "locations", tuple(part.strip() for part in self.locations.split(",") if part.strip())),
            ("safety_buffer", "safety_buffer", self.safety_buffer),
            ("untracked", "untracked", self.untracked),
            ("untracked_quantity", "untracked_quantity", self.untracked_quantity),
        )
        for field, rule, value in rules:
            try:
                StockSettings(**{rule: value})
            except ValueError as error:
                raise SettingError(f"{variables[field]}: {error}") from None
        return StockSettings(**{rule: value for _, rule, value in rules})

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        check_values(self)
        self.stock_settings()
