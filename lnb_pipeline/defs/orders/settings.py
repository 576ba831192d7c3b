"""Order flow settings, from the environment (documented in the README)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

import dagster as dg
from pydantic import Field

from lnb_pipeline.defs.env import fields_from_env
from lnb_pipeline.defs.task_logs import default_task_log_dir
from lnb_pipeline.rules.orders import OrderSettings


class OrderFlowSettings(dg.ConfigurableResource):
    """Which LNB orders go to Shopify, how their buyer is found and how they are created there."""

    export_status: str = Field(default="confirmed", description="LNB_ORDER_EXPORT_STATUS: LNB status of orders to export.")
    exported_status: str = Field(default="invoicing", description="LNB_ORDER_EXPORTED_STATUS: LNB status set after export.")
    customer_match: str = Field(default="metafield", description="SHOPIFY_CUSTOMER_MATCH: metafield or company (Shopify Plus B2B).")
    customer_metafield: str = Field(default="lenewblack.retailer_reference",
                                    description="SHOPIFY_CUSTOMER_METAFIELD: namespace.key of the unique customer metafield.")
    order_metafield: str = Field(default="lenewblack.order_reference",
                                 description="SHOPIFY_ORDER_METAFIELD: namespace.key of the order metafield definition of "
                                             "type id that carries the LNB reference (exactly-once look-up).")
    extra_currencies: str = Field(default="", description="SHOPIFY_ORDER_CURRENCIES: currencies accepted besides the "
                                  "shop's, comma-separated, each with its rate to the shop currency: USD:0.92,GBP:1.17.")
    financial_status: str = Field(default="PENDING", description="SHOPIFY_ORDER_FINANCIAL_STATUS: financialStatus of created orders.")
    inventory_behaviour: str = Field(default="DECREMENT_IGNORING_POLICY",
                                     description="SHOPIFY_ORDER_INVENTORY_BEHAVIOUR: BYPASS, DECREMENT_IGNORING_POLICY or DECREMENT_OBEYING_POLICY.")
    tags: str = Field(default="lenewblack,wholesale", description="SHOPIFY_ORDER_TAGS: tags put on created orders, comma-separated.")
    lookup_wait_seconds: int = Field(default=5, description="SHOPIFY_ORDER_LOOKUP_WAIT_SECONDS: wait before looking up creates whose answer was lost (Shopify's search index lags).")
    change_lookback_days: int = Field(default=30, description="LNB_ORDER_CHANGE_LOOKBACK_DAYS: how far back exported orders are checked for later edits.")
    task_log_dir: str = Field(default_factory=default_task_log_dir, description="LNB_TASK_LOG_DIR: where task log files go.")

    def order_settings(self) -> OrderSettings:
        """The rule settings; raises ``ValueError`` naming the variable family when one is malformed."""
        try:
            currencies = _currencies(self.extra_currencies)
            return OrderSettings(
                export_status=self.export_status,
                exported_status=self.exported_status,
                customer_match=self.customer_match,  # type: ignore[arg-type]
                metafield=self.customer_metafield,
                order_metafield=self.order_metafield,
                extra_currencies=tuple(code for code, _ in currencies),
                exchange_rates=tuple((code, rate) for code, rate in currencies if rate is not None),
                financial_status=self.financial_status,
                inventory_behaviour=self.inventory_behaviour,
                tags=_split(self.tags),
            )
        except ValueError as error:
            raise ValueError(f"Order settings (LNB_ORDER_* / SHOPIFY_ORDER_* / SHOPIFY_CUSTOMER_*): {error}") from None

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self.order_settings()
        if self.lookup_wait_seconds < 0:
            raise ValueError("SHOPIFY_ORDER_LOOKUP_WAIT_SECONDS must not be negative")
        if self.change_lookback_days < 1:
            raise ValueError("LNB_ORDER_CHANGE_LOOKBACK_DAYS must be at least 1")


def _split(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _currencies(text: str) -> list[tuple[str, Decimal | None]]:
    """``USD:0.92, GBP`` as ``[("USD", Decimal("0.92")), ("GBP", None)]``."""
    parsed = []
    for part in _split(text.upper()):
        code, _, rate = part.partition(":")
        try:
            parsed.append((code.strip(), Decimal(rate.strip()) if rate.strip() else None))
        except InvalidOperation:
            raise ValueError(f"SHOPIFY_ORDER_CURRENCIES: {part!r} is not CODE:rate (e.g. USD:0.92)") from None
    return parsed


_FIELDS = {
    "export_status": ("LNB_ORDER_EXPORT_STATUS", str),
    "exported_status": ("LNB_ORDER_EXPORTED_STATUS", str),
    "customer_match": ("SHOPIFY_CUSTOMER_MATCH", str),
    "customer_metafield": ("SHOPIFY_CUSTOMER_METAFIELD", str),
    "order_metafield": ("SHOPIFY_ORDER_METAFIELD", str),
    "extra_currencies": ("SHOPIFY_ORDER_CURRENCIES", str),
    "financial_status": ("SHOPIFY_ORDER_FINANCIAL_STATUS", str),
    "inventory_behaviour": ("SHOPIFY_ORDER_INVENTORY_BEHAVIOUR", str),
    "tags": ("SHOPIFY_ORDER_TAGS", str),
    "lookup_wait_seconds": ("SHOPIFY_ORDER_LOOKUP_WAIT_SECONDS", int),
    "change_lookback_days": ("LNB_ORDER_CHANGE_LOOKBACK_DAYS", int),
    "task_log_dir": ("LNB_TASK_LOG_DIR", str),
}


def order_flow_settings_from_env() -> OrderFlowSettings:
    """Settings bound to their environment variables where set, defaults elsewhere."""
    return OrderFlowSettings(**fields_from_env(_FIELDS))
