"""Create LNB orders in Shopify exactly once, and mark them exported in LNB.

Shopify's ``orderCreate`` has no idempotency key. Each order therefore carries its LNB reference
in an order metafield whose definition has type ``id`` (SHOPIFY_ORDER_METAFIELD): Shopify keeps
such values unique and finds them at once with ``orderByIdentifier``, with no search index in
between. The reference is looked up that way before every create, which makes every failure safe:

- the process dies after the create, before the LNB update: the next run finds the Shopify order
  and only finishes the LNB status change;
- Shopify applies a create but the answer is lost: the exporter looks the reference up and finds
  it; a create sent again would be refused anyway, the custom id being taken.

The reference also goes into ``sourceIdentifier``, which merchants see. Without the definition the
exporter falls back to searching ``source_identifier``. Shopify's search index lags writes, so that
mode waits before it looks up a lost answer, and every run says loudly that it is the weaker one.

Test orders (``as_test_order``) go through the same exporter under their own key instead of the
reference, and without the LNB status change: exactly once per key, invisible to the real export.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, tzinfo
from typing import Any

import polars as pl

from lnb_pipeline.clients.lenewblack import LnbClient, LnbError
from lnb_pipeline.clients.shopify import (
    ShopifyClient,
    ShopifyGraphQLError,
    ShopifyServerError,
)
from lnb_pipeline.clients.shopify_queries import (
    ACCESS_SCOPES_QUERY,
    COMPANY_BY_EXTERNAL_ID_QUERY,
    CUSTOMER_BY_METAFIELD_QUERY,
    METAFIELD_DEFINITIONS_QUERY,
    ORDER_CREATE_MUTATION,
    ORDER_TEST_FLAG_BATCH,
    ORDERS_BY_SOURCE_QUERY,
    ORDERS_TEST_FLAG_QUERY,
    SHOP_QUERY,
    orders_by_custom_id_query,
)
from lnb_pipeline.rules.orders import (
    SCOPE_READ_ALL_ORDERS,
    Buyer,
    ExportMoment,
    OrderSettings,
    retailer_reference,
    validate_orders,
    variant_index,
)

REFERENCES_PER_LOOKUP = 50
CREATE_ATTEMPTS = 3
"""Rounds of look-up-then-create for creates whose answer was lost."""
SETTLE_SECONDS = 5.0
"""Search mode only: wait before looking up unanswered creates, as a new order takes seconds to become searchable."""
DEVELOPMENT_STORE_ORDERS_PER_MINUTE = 5
"""``orderCreate``'s own limit on development and trial stores."""
CUSTOM_ID_TYPE = "id"

CREATED = "created in Shopify"
ALREADY_IN_SHOPIFY = "already in Shopify, LNB status finished"
DUPLICATE_IN_SHOPIFY = "more than one Shopify order"
REJECTED_BY_SHOPIFY = "rejected by Shopify"
FAILED = "failed"
ANSWER_LOST = "Shopify's answer to the create was lost; found by its reference"
CUSTOM_ID_TAKEN = "Shopify refused a second create, the custom id being taken; the first order found by it"


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


def search_value(reference: str) -> str:
    """A search term value in Shopify's syntax: double-quoted, ``\\`` and ``"`` escaped with a backslash."""
    return '"' + reference.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _chunks(items: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(items), REFERENCES_PER_LOOKUP):
        yield items[start:start + REFERENCES_PER_LOOKUP]


def search_orders(shopify: ShopifyClient, references: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
    """Shopify orders by ``sourceIdentifier``, 50 references a search. Search lags writes: an order
    created seconds ago may be missing."""
    wanted = list(dict.fromkeys(references))
    found: dict[str, list[dict[str, Any]]] = {reference: [] for reference in wanted}
    for chunk in _chunks(wanted):
        query = " OR ".join(f"source_identifier:{search_value(reference)}" for reference in chunk)
        for order in shopify.paginate(ORDERS_BY_SOURCE_QUERY, {"query": query}, ("orders",), label="orders by source",
                                      max_page_size=2 * REFERENCES_PER_LOOKUP):
            if order.get("sourceIdentifier") in found:
                found[order["sourceIdentifier"]].append(order)
    return found


@dataclass(frozen=True)
class OrderLookup:
    """How the Shopify orders of LNB references are found: by custom id (exact), else by search."""

    namespace: str
    key: str
    by_custom_id: bool

    @classmethod
    def for_shop(cls, shopify: ShopifyClient, metafield: str, log: logging.Logger) -> OrderLookup:
        """Custom ids when the shop has an order metafield definition ``metafield`` of type ``id``."""
        namespace, key = metafield.split(".")
        definitions = shopify.execute(METAFIELD_DEFINITIONS_QUERY, {
            "ownerType": "ORDER", "namespace": namespace, "key": key})["metafieldDefinitions"]["nodes"]
        types = [d["type"]["name"] for d in definitions if (d["namespace"], d["key"]) == (namespace, key)]
        if CUSTOM_ID_TYPE in types:
            return cls(namespace, key, by_custom_id=True)
        found = f"exists with type {types[0]}, not id" if types else "does not exist"
        log.warning("WEAKER EXACTLY-ONCE MODE: the order metafield definition %s %s, so orders are found by "
                    "searching source_identifier, and Shopify's search index lags new orders. Create the "
                    "definition (type id, owner Order) or set SHOPIFY_ORDER_METAFIELD to one.", metafield, found)
        return cls(namespace, key, by_custom_id=False)

    @property
    def description(self) -> str:
        if self.by_custom_id:
            return f"custom id {self.namespace}.{self.key} (exact)"
        return f"search on sourceIdentifier (weaker: no id definition {self.namespace}.{self.key})"

    def by_id(self, shopify: ShopifyClient, references: Iterable[str]) -> dict[str, dict[str, Any] | None]:
        """The order carrying each reference as its custom id, 50 look-ups a query."""
        wanted = list(dict.fromkeys(references))
        found: dict[str, dict[str, Any] | None] = {}
        for chunk in _chunks(wanted):
            data = shopify.execute(orders_by_custom_id_query(len(chunk)), {
                "namespace": self.namespace, "key": self.key, **{f"v{i}": ref for i, ref in enumerate(chunk)}})
            found.update((ref, data[f"o{i}"]) for i, ref in enumerate(chunk))
        return found

    def find(self, shopify: ShopifyClient, references: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
        """Every Shopify order known to carry each reference.

        By custom id first; the references it does not find are also searched, for orders made
        without the custom id (by hand, or before the definition existed), which would otherwise
        be created a second time.
        """
        wanted = list(dict.fromkeys(references))
        if not self.by_custom_id:
            return search_orders(shopify, wanted)
        by_id = self.by_id(shopify, wanted)
        searched = search_orders(shopify, [ref for ref, order in by_id.items() if order is None])
        return {ref: [order] if (order := by_id[ref]) is not None else searched[ref] for ref in wanted}

    def verify(self, shopify: ShopifyClient, exported: dict[str, str | None]) -> list[tuple[str, int, str, str]]:
        """``(reference, orders found, names, problem)`` for each exported reference not in Shopify exactly once.

        ``exported`` maps references to the Shopify order id the run created or found. A reference
        on two orders in search is a duplicate in either mode. By custom id, the look-up must find
        that very order. Search finding nothing is not a problem: its index lags.
        """
        references = list(exported)
        searched = search_orders(shopify, references)
        by_id = self.by_id(shopify, references) if self.by_custom_id else {}
        problems = []
        for ref in references:
            orders = {order["id"]: order for order in searched[ref]}
            if (id_order := by_id.get(ref)) is not None:
                orders[id_order["id"]] = id_order
            names = ", ".join(sorted(order["name"] for order in orders.values()))
            if len(orders) > 1:
                problems.append((ref, len(orders), names, "several Shopify orders carry this reference"))
            elif self.by_custom_id and id_order is None:
                problems.append((ref, len(orders), names, "not found by its custom id"))
            elif self.by_custom_id and exported[ref] is not None and id_order is not None \
                    and id_order["id"] != exported[ref]:
                problems.append((ref, len(orders), names, f"its custom id is on {id_order['name']}, not the exported order"))
        return problems


def find_buyers(shopify: ShopifyClient, references: Iterable[str], settings: OrderSettings) -> dict[str, Buyer | None]:
    """The Shopify customer (or B2B company location) of each retailer reference, one query per reference."""
    namespace, key = settings.metafield.split(".")
    buyers: dict[str, Buyer | None] = {}
    for reference in dict.fromkeys(references):
        if settings.customer_match == "company":
            companies = shopify.execute(COMPANY_BY_EXTERNAL_ID_QUERY,
                                        {"query": f"external_id:{search_value(reference)}"})["companies"]["nodes"]
            exact = [c for c in companies if c.get("externalId") == reference]
            locations = exact[0]["locations"]["nodes"] if len(exact) == 1 else []
            contact = ((exact[0].get("mainContact") or {}).get("customer") or {}) if exact else {}
            buyers[reference] = Buyer(reference, None, locations[0]["id"],
                                      (contact.get("defaultEmailAddress") or {}).get("emailAddress"),
                                      exact[0]["id"]) if locations else None
        else:
            customer = shopify.execute(CUSTOMER_BY_METAFIELD_QUERY, {
                "identifier": {"customId": {"namespace": namespace, "key": key, "value": reference}},
            })["customerByIdentifier"]
            buyers[reference] = Buyer(reference, customer["id"], None,
                                      (customer.get("defaultEmailAddress") or {}).get("emailAddress")) if customer else None
    return buyers


@dataclass(frozen=True)
class CheckedOrders:
    """LNB orders checked against the shop by the order rules, as an export would check them now."""

    validation: pl.DataFrame
    """``validate_orders``' order frame: each order exportable or blocked with every reason."""
    lines: pl.DataFrame
    """``validate_orders``' line frame: each line's Shopify variant or its reason."""
    buyers: dict[str, Buyer | None]
    """What Shopify holds for each retailer reference."""
    shop: dict[str, Any]
    """``SHOP_QUERY``'s shop: its currency, and whether it is a development store."""


def check_orders(shopify: ShopifyClient, orders: list[dict[str, Any]], levels: pl.DataFrame,
                 settings: OrderSettings, lnb_timezone: tzinfo) -> CheckedOrders:
    """The order rules applied to ``orders`` against the shop: its customers (or companies), its
    variants (``levels``, the stock flow's read), its currency and the app's access scopes."""
    buyers = find_buyers(shopify, [ref for order in orders if (ref := retailer_reference(order))], settings)
    shop = shopify.execute(SHOP_QUERY)["shop"]
    scopes = {scope["handle"] for scope in shopify.execute(ACCESS_SCOPES_QUERY)["currentAppInstallation"]["accessScopes"]}
    moment = ExportMoment(lnb_timezone, datetime.now(UTC), SCOPE_READ_ALL_ORDERS in scopes)
    validation, lines = validate_orders(orders, buyers, variant_index(levels), shop["currencyCode"], settings, moment)
    return CheckedOrders(validation, lines, buyers, shop)


def marked_as_test(shopify: ShopifyClient, order_ids: Iterable[str]) -> dict[str, bool]:
    """Each Shopify order's ``test`` flag as Shopify holds it, ``ORDER_TEST_FLAG_BATCH`` orders a query; an
    order Shopify does not show is left out."""
    wanted = list(dict.fromkeys(order_ids))
    flags: dict[str, bool] = {}
    for start in range(0, len(wanted), ORDER_TEST_FLAG_BATCH):
        chunk = wanted[start:start + ORDER_TEST_FLAG_BATCH]
        padded = chunk + [chunk[-1]] * (ORDER_TEST_FLAG_BATCH - len(chunk))
        data = shopify.execute(ORDERS_TEST_FLAG_QUERY, {f"v{i}": order_id for i, order_id in enumerate(padded)})
        flags.update((order["id"], order["test"]) for order in data.values() if order is not None)
    return flags


class CreatePace:
    """At most ``limit`` creates in any ``window_seconds``: development and trial stores take 5 new orders a minute.

    A create counts from its answer, which comes after Shopify counted it, so waiting out the window
    from there never runs into the limit.
    """

    LIMIT = DEVELOPMENT_STORE_ORDERS_PER_MINUTE

    def __init__(self, log: logging.Logger, window_seconds: float = 60.0, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._log, self._limit, self._window = log, self.LIMIT, window_seconds
        self._clock, self._sleep = clock, sleep
        self._recent: deque[float] = deque(maxlen=self._limit)

    def wait_turn(self, done: int, total: int) -> None:
        if len(self._recent) < self._limit:
            return
        wait = self._recent[0] + self._window - self._clock()
        if wait >= 1:
            self._log.info("Development store: Shopify takes %d new orders a minute; waiting %.0f s (%d of %d "
                           "orders done)", self._limit, wait, done, total)
        if wait > 0:
            self._sleep(wait)

    def record(self) -> None:
        self._recent.append(self._clock())


@dataclass(frozen=True)
class PendingOrder:
    """One order to export: its reference, the Shopify orders already carrying it, and its input."""

    reference: str
    existing: list[dict[str, Any]]
    order_input: dict[str, Any]


class OrderExporter:
    """Exports orders one by one and returns every outcome; failures are outcomes, not exceptions.

    A create whose answer never came (or that Shopify refused because its custom id is taken) is
    not sent again on the spot: the order is set aside and, once the others are done, looked up
    again (in search mode after ``settle_seconds``, as the index lags). Only the ones really
    missing are created again. Without ``lnb`` (test orders) LNB is left as it is.
    """

    def __init__(self, shopify: ShopifyClient, lnb: LnbClient | None, settings: OrderSettings, log: logging.Logger,
                 options: dict[str, Any], lookup: OrderLookup, *, settle_seconds: float = SETTLE_SECONDS,
                 pace: CreatePace | None = None, sleep: Callable[[float], None] = time.sleep) -> None:
        self._shopify = shopify
        self._lnb = lnb
        self._settings = settings
        self._log = log
        self._options = options
        self._lookup = lookup
        self._settle_seconds = settle_seconds
        self._pace = pace
        self._sleep = sleep
        self._total = 0
        self._taken: set[str] = set()
        """References whose create Shopify refused because their custom id is on an order already."""

    def export_all(self, orders: list[PendingOrder], progress: Callable[[int], None] | None = None) -> list[ExportOutcome]:
        outcomes: list[ExportOutcome] = []
        self._total = len(orders)
        unanswered = self._export_each(orders, outcomes, progress)
        for round_number in range(1, CREATE_ATTEMPTS + 1):
            if not unanswered:
                break
            self._log.warning("%d order creates got no answer; looking them up (round %d of %d)",
                              len(unanswered), round_number, CREATE_ATTEMPTS)
            if not self._lookup.by_custom_id:
                self._sleep(self._settle_seconds)
            found = self._lookup.find(self._shopify, [p.reference for p in unanswered])
            unanswered = self._export_each(
                [PendingOrder(p.reference, found[p.reference], p.order_input) for p in unanswered], outcomes,
                answer_was_lost=True)
        outcomes.extend(ExportOutcome(p.reference, FAILED, detail=f"no answer to {CREATE_ATTEMPTS + 1} creates and "
                                      "not found in Shopify; the next run looks it up again before creating")
                        for p in unanswered)
        return outcomes

    def _export_each(self, orders: list[PendingOrder], outcomes: list[ExportOutcome],
                     progress: Callable[[int], None] | None = None,
                     answer_was_lost: bool = False) -> list[PendingOrder]:
        """Export ``orders`` into ``outcomes``; return those whose create went unanswered."""
        unanswered: list[PendingOrder] = []
        for pending in orders:
            outcome = self._export(pending, len(outcomes) + len(unanswered))
            if outcome is None:
                unanswered.append(pending)
            elif answer_was_lost and outcome.outcome == ALREADY_IN_SHOPIFY and pending.reference in self._taken:
                outcomes.append(replace(outcome, detail=CUSTOM_ID_TAKEN))
            elif answer_was_lost and outcome.outcome == ALREADY_IN_SHOPIFY:
                # Not in Shopify before this run's unanswered create: that create made it.
                outcomes.append(replace(outcome, outcome=CREATED, detail=ANSWER_LOST))
            else:
                outcomes.append(outcome)
            if progress:
                progress(len(outcomes) + len(unanswered))
        return unanswered

    def _create(self, pending: PendingOrder, done: int) -> dict[str, Any]:
        if self._pace:
            self._pace.wait_turn(done, self._total)
        try:
            return self._shopify.execute(ORDER_CREATE_MUTATION, {"order": pending.order_input, "options": self._options},
                                         idempotent=False)["orderCreate"]
        finally:
            if self._pace:
                self._pace.record()

    def _export(self, pending: PendingOrder, done: int) -> ExportOutcome | None:
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
                payload = self._create(pending, done)
            except ShopifyServerError as error:
                self._log.warning("Order %s: create got no answer (%s); it is looked up before any retry",
                                  reference, error)
                return None
            except ShopifyGraphQLError as error:
                return ExportOutcome(reference, REJECTED_BY_SHOPIFY, detail=f"Shopify refused the input: {error}")
            errors = payload["userErrors"]
            if self._lookup.by_custom_id and any("metafields" in (e.get("field") or []) for e in errors):
                self._log.warning("Order %s: Shopify refused the create, its custom id being taken (%s); "
                                  "it is looked up", reference, "; ".join(e["message"] for e in errors))
                self._taken.add(reference)
                return None
            if errors:
                return ExportOutcome(reference, REJECTED_BY_SHOPIFY, detail="; ".join(
                    f"{'.'.join(e.get('field') or [])}: {e['message']} ({e.get('code')})" for e in errors))
            shopify_order = payload["order"]
        if self._lnb is None:
            return ExportOutcome(reference, outcome_name, shopify_order["id"], shopify_order["name"])
        try:
            self._lnb.set_order_status(reference, self._settings.exported_status)
        except LnbError as error:
            return ExportOutcome(reference, FAILED, shopify_order["id"], shopify_order["name"],
                                 f"in Shopify but the LNB status change failed ({error}); "
                                 "the next run finishes it without creating again")
        return ExportOutcome(reference, outcome_name, shopify_order["id"], shopify_order["name"])
