"""Order flow settings (declared in ``lnb_pipeline.settings``)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

import dagster as dg

from lnb_pipeline.rules.orders import OrderSettings
from lnb_pipeline.settings import check_values, setting_field


class OrderFlowSettings(dg.ConfigurableResource):
    """Which LNB orders go to Shopify, how their buyer is found and how they are created there."""

    export_status: str = setting_field("LNB_ORDER_EXPORT_STATUS")
    exported_status: str = setting_field("LNB_ORDER_EXPORTED_STATUS")
    customer_match: str = setting_field("SHOPIFY_CUSTOMER_MATCH")
    customer_metafield: str = setting_field("SHOPIFY_CUSTOMER_METAFIELD")
    order_metafield: str = setting_field("SHOPIFY_ORDER_METAFIELD")
    extra_currencies: str = setting_field("SHOPIFY_ORDER_CURRENCIES")
    financial_status: str = setting_field("SHOPIFY_ORDER_FINANCIAL_STATUS")
    inventory_behaviour: str = setting_field("SHOPIFY_ORDER_INVENTORY_BEHAVIOUR")
    tags: str = setting_field("SHOPIFY_ORDER_TAGS")
    lookup_wait_seconds: int = setting_field("SHOPIFY_ORDER_LOOKUP_WAIT_SECONDS")
    change_lookback_days: int = setting_field("LNB_ORDER_CHANGE_LOOKBACK_DAYS")
    task_log_dir: str = setting_field("LNB_TASK_LOG_DIR")

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
        check_values(self)
        self.order_settings()


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

