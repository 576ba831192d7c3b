"""Create LNB orders in Shopify exactly once, and mark them exported in LNB.

Shopify's ``orderCreate`` has no idempotency key, so the LNB reference goes into the order's
``sourceIdentifier`` and is looked up before every create. That makes every failure point safe:

- the process dies after the create, before the LNB update: the next run finds the Shopify order
  and only finishes the LNB status change;
- Shopify applies a create but the answer is lost: the exporter looks the reference up (after a
  pause, since Shopify's search index can lag) before it tries again, and finds the order.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from lnb_pipeline.clients.lenewblack import LnbClient, LnbError
from lnb_pipeline.clients.shopify import (
    ShopifyClient,
    ShopifyGraphQLError,
    ShopifyServerError,
)
from lnb_pipeline.clients.shopify_queries import (
    COMPANY_BY_EXTERNAL_ID_QUERY,
    CUSTOMER_BY_METAFIELD_QUERY,
    ORDER_CREATE_MUTATION,
    ORDERS_BY_SOURCE_QUERY,
)
from lnb_pipeline.rules.orders import Buyer, OrderSettings

REFERENCES_PER_LOOKUP = 50
CREATE_ATTEMPTS = 3
"""Rounds of look-up-then-create for creates whose answer was lost."""
SETTLE_SECONDS = 5.0
"""Wait before looking up unanswered creates: a new order can take seconds to become searchable."""

CREATED = "created in Shopify"
ALREADY_IN_SHOPIFY = "already in Shopify, LNB status finished"
DUPLICATE_IN_SHOPIFY = "more than one Shopify order"
REJECTED_BY_SHOPIFY = "rejected by Shopify"
FAILED = "failed"
ANSWER_LOST = "Shopify's answer to the create was lost; found by its reference"


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
        for order in shopify.paginate(ORDERS_BY_SOURCE_QUERY, {"query": query}, ("orders",), label="orders by source",
                                      max_page_size=2 * REFERENCES_PER_LOOKUP):
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


@dataclass(frozen=True)
class PendingOrder:
    """One order to export: its reference, the Shopify orders already carrying it, and its input."""

    reference: str
    existing: list[dict[str, Any]]
    order_input: dict[str, Any]


class OrderExporter:
    """Exports orders one by one and returns every outcome; failures are outcomes, not exceptions.

    A create whose answer never came is not retried on the spot: the order is set aside and, once
    the others are done and ``settle_seconds`` have passed (Shopify's search index can lag), looked up
    again in one query. Only the ones really missing are created again.
    """

    def __init__(self, shopify: ShopifyClient, lnb: LnbClient, settings: OrderSettings, log: logging.Logger,
                 options: dict[str, Any], *, settle_seconds: float = SETTLE_SECONDS,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._shopify = shopify
        self._lnb = lnb
        self._settings = settings
        self._log = log
        self._options = options
        self._settle_seconds = settle_seconds
        self._sleep = sleep

    def export_all(self, orders: Iterable[PendingOrder], progress: Callable[[int], None] | None = None) -> list[ExportOutcome]:
        outcomes: list[ExportOutcome] = []
        unanswered = self._export_each(orders, outcomes, progress)
        for round_number in range(1, CREATE_ATTEMPTS + 1):
            if not unanswered:
                break
            self._log.warning("%d order creates got no answer; looking them up (round %d of %d)",
                              len(unanswered), round_number, CREATE_ATTEMPTS)
            self._sleep(self._settle_seconds)
            found = find_shopify_orders(self._shopify, [p.reference for p in unanswered])
            unanswered = self._export_each(
                (PendingOrder(p.reference, found[p.reference], p.order_input) for p in unanswered), outcomes,
                answer_was_lost=True)
        outcomes.extend(ExportOutcome(p.reference, FAILED, detail=f"no answer to {CREATE_ATTEMPTS + 1} creates and "
                                      "not found in Shopify; the next run looks it up again before creating")
                        for p in unanswered)
        return outcomes

    def _export_each(self, orders: Iterable[PendingOrder], outcomes: list[ExportOutcome],
                     progress: Callable[[int], None] | None = None,
                     answer_was_lost: bool = False) -> list[PendingOrder]:
        """Export ``orders`` into ``outcomes``; return those whose create went unanswered."""
        unanswered: list[PendingOrder] = []
        for pending in orders:
            outcome = self._export(pending)
            if outcome is None:
                unanswered.append(pending)
            elif answer_was_lost and outcome.outcome == ALREADY_IN_SHOPIFY:
                # Not in Shopify before this run's unanswered create: that create made it.
                outcomes.append(replace(outcome, outcome=CREATED, detail=ANSWER_LOST))
            else:
                outcomes.append(outcome)
            if progress:
                progress(len(outcomes) + len(unanswered))
        return unanswered

    def _export(self, pending: PendingOrder) -> ExportOutcome | None:
        """The outcome, or None when the create went unanswered and must be looked up later."""
        reference, existing = pending.reference, pending.existing
        if len(existing) > 1:
            names = ", ".join(o["name"] for o in existing)
            return ExportOutcome(reference, DUPLICATE_IN_SHOPIFY, detail=f"{len(existing)} Shopify orders ({names}) "
                                 "carry this reference: resolve in Shopify; LNB status left unchanged")
        outcome_name = ALREADY_IN_SHOPIFY
        shopify_order = existing[0] if existing else None
        if shopify_order is None:
            outcome_name = CREATED
            try:
                payload = self._shopify.execute(ORDER_CREATE_MUTATION,
                                                {"order": pending.order_input, "options": self._options},
                                                idempotent=False)["orderCreate"]
            except ShopifyServerError as error:
                self._log.warning("Order %s: create got no answer (%s); it is looked up before any retry",
                                  reference, error)
                return None
            except ShopifyGraphQLError as error:
                return ExportOutcome(reference, REJECTED_BY_SHOPIFY, detail=f"Shopify refused the input: {error}")
            if payload["userErrors"]:
                return ExportOutcome(reference, REJECTED_BY_SHOPIFY, detail="; ".join(
                    f"{'.'.join(e.get('field') or [])}: {e['message']} ({e.get('code')})" for e in payload["userErrors"]))
            shopify_order = payload["order"]
        try:
            self._lnb.set_order_status(reference, self._settings.exported_status)
        except LnbError as error:
            return ExportOutcome(reference, FAILED, shopify_order["id"], shopify_order["name"],
                                 f"in Shopify but the LNB status change failed ({error}); "
                                 "the next run finishes it without creating again")
        return ExportOutcome(reference, outcome_name, shopify_order["id"], shopify_order["name"])
