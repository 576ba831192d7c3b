"""Create LNB orders in Shopify exactly once, and mark them exported in LNB.

Shopify's ``orderCreate`` has no idempotency key, so the LNB reference goes into the order's
``sourceIdentifier`` and is looked up before every create. That makes every failure point safe:

- the process dies after the create, before the LNB update: the next run finds the Shopify order
  and only finishes the LNB status change;
- Shopify applies a create but the answer is lost: the exporter looks the reference up (a few
  times, since Shopify's search index can lag) before it tries again, and finds the order.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from lnb_pipeline.clients.lenewblack import LnbClient, LnbError
from lnb_pipeline.clients.shopify import ShopifyClient, ShopifyGraphQLError, ShopifyServerError
from lnb_pipeline.clients.shopify_queries import (
    COMPANY_BY_EXTERNAL_ID_QUERY,
    CUSTOMER_BY_METAFIELD_QUERY,
    ORDER_CREATE_MUTATION,
    ORDERS_BY_SOURCE_QUERY,
)
from lnb_pipeline.rules.orders import Buyer, OrderSettings

REFERENCES_PER_LOOKUP = 50
CREATE_ATTEMPTS = 3
LOOKUP_DELAYS_SECONDS = (0.0, 2.0, 5.0)
"""Waits before each look-up after an unanswered create: the order may take seconds to be searchable."""

CREATED = "created in Shopify"
ALREADY_IN_SHOPIFY = "already in Shopify, LNB status finished"
DUPLICATE_IN_SHOPIFY = "more than one Shopify order"
REJECTED_BY_SHOPIFY = "rejected by Shopify"
FAILED = "failed"


@dataclass(frozen=True)
class ExportOutcome:
    reference: str
    outcome: str
    shopify_order_id: str | None = None
    shopify_order_name: str | None = None
    detail: str | None = None

    @property
    def exported(self) -> bool:
        return self.outcome in (CREATED, ALREADY_IN_SHOPIFY)


def _search_value(reference: str) -> str:
    return '"' + reference.replace("\\", "\\\\").replace('"', '\\"') + '"'


def find_shopify_orders(shopify: ShopifyClient, references: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
    """Shopify orders by LNB reference (``sourceIdentifier``), looked up 50 references a query."""
    wanted = list(dict.fromkeys(references))
    found: dict[str, list[dict[str, Any]]] = {reference: [] for reference in wanted}
    for start in range(0, len(wanted), REFERENCES_PER_LOOKUP):
        chunk = wanted[start:start + REFERENCES_PER_LOOKUP]
        query = " OR ".join(f"source_identifier:{_search_value(reference)}" for reference in chunk)
        for order in shopify.paginate(ORDERS_BY_SOURCE_QUERY, {"query": query}, ("orders",), label="orders by source"):
            if order.get("sourceIdentifier") in found:
                found[order["sourceIdentifier"]].append(order)
    return found


def find_buyers(shopify: ShopifyClient, references: Iterable[str], settings: OrderSettings) -> dict[str, Buyer | None]:
    """The Shopify customer (or B2B company location) of each retailer reference, one query per reference."""
    namespace, key = settings.metafield.split(".")
    buyers: dict[str, Buyer | None] = {}
    for reference in dict.fromkeys(references):
        if settings.customer_match == "company":
            companies = shopify.execute(COMPANY_BY_EXTERNAL_ID_QUERY,
                                        {"query": f"external_id:{_search_value(reference)}"})["companies"]["nodes"]
            exact = [c for c in companies if c.get("externalId") == reference]
            locations = exact[0]["locations"]["nodes"] if len(exact) == 1 else []
            contact = ((exact[0].get("mainContact") or {}).get("customer") or {}) if exact else {}
            buyers[reference] = Buyer(reference, None, locations[0]["id"],
                                      (contact.get("defaultEmailAddress") or {}).get("emailAddress")) if locations else None
        else:
            customer = shopify.execute(CUSTOMER_BY_METAFIELD_QUERY, {
                "identifier": {"customId": {"namespace": namespace, "key": key, "value": reference}},
            })["customerByIdentifier"]
            buyers[reference] = Buyer(reference, customer["id"], None,
                                      (customer.get("defaultEmailAddress") or {}).get("emailAddress")) if customer else None
    return buyers


class OrderExporter:
    """Exports validated orders one by one; every outcome is returned, none raised."""

    def __init__(self, shopify: ShopifyClient, lnb: LnbClient, settings: OrderSettings, log: logging.Logger,
                 sleep: Callable[[float], None] = time.sleep,
                 lookup_delays: tuple[float, ...] = LOOKUP_DELAYS_SECONDS) -> None:
        self._shopify = shopify
        self._lnb = lnb
        self._settings = settings
        self._log = log
        self._sleep = sleep
        self._lookup_delays = lookup_delays

    def export(self, reference: str, existing: list[dict[str, Any]], order_input: dict[str, Any],
               options: dict[str, Any]) -> ExportOutcome:
        """Create the order unless ``existing`` (looked up just before) already holds it, then mark it in LNB."""
        if len(existing) > 1:
            names = ", ".join(o["name"] for o in existing)
            return ExportOutcome(reference, DUPLICATE_IN_SHOPIFY, detail=f"{len(existing)} Shopify orders ({names}) "
                                 "carry this reference: resolve in Shopify; LNB status left unchanged")
        outcome_name = ALREADY_IN_SHOPIFY
        shopify_order = existing[0] if existing else None
        if shopify_order is None:
            outcome_name = CREATED
            try:
                shopify_order = self._create(reference, order_input, options)
            except _Rejected as rejected:
                return ExportOutcome(reference, REJECTED_BY_SHOPIFY, detail=str(rejected))
            except ShopifyGraphQLError as error:
                return ExportOutcome(reference, REJECTED_BY_SHOPIFY, detail=f"Shopify refused the input: {error}")
            except ShopifyServerError as error:
                return ExportOutcome(reference, FAILED, detail=f"Shopify did not confirm the create: {error}")
        try:
            self._lnb.set_order_status(reference, self._settings.exported_status)
        except LnbError as error:
            return ExportOutcome(reference, FAILED, shopify_order["id"], shopify_order["name"],
                                 f"created in Shopify but the LNB status change failed ({error}); "
                                 "the next run finishes it without creating again")
        return ExportOutcome(reference, outcome_name, shopify_order["id"], shopify_order["name"])

    def _create(self, reference: str, order_input: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
        last_error: ShopifyServerError | None = None
        for attempt in range(1, CREATE_ATTEMPTS + 1):
            try:
                payload = self._shopify.execute(ORDER_CREATE_MUTATION, {"order": order_input, "options": options},
                                                idempotent=False)["orderCreate"]
            except ShopifyServerError as error:
                last_error = error
                self._log.warning("Order %s: create attempt %d got no answer (%s); looking it up before retrying",
                                  reference, attempt, error)
                found = self._look_up_after_lost_answer(reference)
                if found is not None:
                    return found
                continue
            if payload["userErrors"]:
                raise _Rejected("; ".join(f"{'.'.join(e.get('field') or [])}: {e['message']} ({e.get('code')})"
                                          for e in payload["userErrors"]))
            return payload["order"]
        assert last_error is not None
        raise last_error

    def _look_up_after_lost_answer(self, reference: str) -> dict[str, Any] | None:
        for delay in self._lookup_delays:
            self._sleep(delay)
            orders = find_shopify_orders(self._shopify, [reference])[reference]
            if orders:
                self._log.info("Order %s: the unanswered create was applied (%s)", reference, orders[0]["name"])
                return orders[0]
        return None


class _Rejected(Exception):
    """Shopify answered userErrors: nothing was created."""
