"""``orderCreate`` as Shopify performs it: validate everything, then create, or answer userErrors.

Like Shopify, there is no idempotency: the same input sent twice makes two orders, unless it carries
a custom id (a metafield an ``id`` definition covers), whose value no second order may take. ``test``
(default false; an explicit null counts as false, by assumption) is stored as given: a test order is an
order like any other, marked as a test, that Shopify never turns into a real one or back, and
``orders(query: "test:true")`` finds it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from lnb_pipeline.sandbox.scenario import (
    METAFIELD_KEY,
    METAFIELD_NAMESPACE,
    METAFIELD_TYPES,
)
from lnb_pipeline.sandbox.shopify.state import (
    MetafieldKey,
    ShopifyState,
    format_timestamp,
    gid,
    now_iso,
    stamp_level,
)

B2B_PLANS = ("plus", "enterprise")
FINANCIAL_TO_DISPLAY = {
    "PENDING": "PENDING", "AUTHORIZED": "AUTHORIZED", "PARTIALLY_PAID": "PARTIALLY_PAID", "PAID": "PAID",
    "PARTIALLY_REFUNDED": "PARTIALLY_REFUNDED", "REFUNDED": "REFUNDED", "VOIDED": "VOIDED", "EXPIRED": "EXPIRED",
}
TAKEN_MESSAGE = "Value is already taken"

Errors = list[dict[str, Any]]


@dataclass(frozen=True)
class _Line:
    variant: dict[str, Any] | None
    quantity: int
    price: Decimal
    presentment_price: Decimal
    title: str | None


def _error(field: list[str | int], message: str, code: str = "INVALID") -> dict[str, Any]:
    return {"field": [str(part) for part in field], "message": message, "code": code}


def _address(source: dict[str, Any] | None, number: int) -> dict[str, Any] | None:
    if not source:
        return None
    first, last = source.get("firstName"), source.get("lastName")
    return {
        "id": gid("MailingAddress", number),
        "address1": source.get("address1"), "address2": source.get("address2"), "city": source.get("city"),
        "company": source.get("company"), "countryCodeV2": source.get("countryCode"),
        "firstName": first, "lastName": last, "name": " ".join(p for p in (first, last) if p) or None,
        "phone": source.get("phone"), "provinceCode": source.get("provinceCode"), "zip": source.get("zip"),
    }


def create_order(state: ShopifyState, plan: str, order_input: dict[str, Any],
                 options: dict[str, Any] | None) -> dict[str, Any]:
    """The ``OrderCreatePayload``: ``{order, userErrors}``."""
    options = options or {}
    with state.lock:
        presentment = order_input.get("presentmentCurrency") or state.currency
        errors = _currency_errors(state, order_input, presentment)
        line_errors, lines = _lines(state, order_input.get("lineItems") or [], presentment)
        buyer_errors, buyer, company_location = _buyer(state, plan, order_input)
        metafield_errors, metafields = _metafields(state, order_input.get("metafields") or [])
        errors += line_errors + buyer_errors + metafield_errors
        processed_at: datetime | None = order_input.get("processedAt")
        if processed_at is not None and processed_at > datetime.now(UTC):
            errors.append(_error(["order", "processedAt"], "Processed at must not be in the future.",
                                 "PROCESSED_AT_INVALID"))
        if errors:
            return {"order": None, "userErrors": errors}
        behaviour = options.get("inventoryBehaviour") or "BYPASS"
        if behaviour != "BYPASS":
            claim_errors = _claim_inventory(state, lines, obey_policy=behaviour == "DECREMENT_OBEYING_POLICY")
            if claim_errors:
                return {"order": None, "userErrors": claim_errors}
        number = state.next_order_number
        created = now_iso()
        purchasing_entity: Any = buyer
        if company_location is not None:
            company = company_location["company"]
            purchasing_entity = {"__typename": "PurchasingCompany", "company": company,
                                 "location": company_location, "contact": company["mainContact"]}
            buyer = buyer or (company["mainContact"] or {}).get("customer")
        email = order_input.get("email") or ((buyer or {}).get("defaultEmailAddress") or {}).get("emailAddress")
        order = {
            "id": gid("Order", 5_000_000 + number),
            "name": None,
            "createdAt": created,
            "updatedAt": created,
            "processedAt": format_timestamp(processed_at) if processed_at else created,
            "cancelledAt": None,
            "closed": False,
            "test": order_input["test"] is True,
            "sourceName": order_input.get("sourceName"),
            "sourceIdentifier": order_input.get("sourceIdentifier"),
            "poNumber": order_input.get("poNumber"),
            "email": email,
            "note": order_input.get("note"),
            "tags": sorted({t.strip() for t in order_input.get("tags") or [] if t.strip()}),
            "currencyCode": state.currency,
            "presentmentCurrencyCode": presentment,
            "displayFinancialStatus": FINANCIAL_TO_DISPLAY.get(order_input.get("financialStatus") or "PENDING"),
            "customer": buyer,
            "purchasingEntity": purchasing_entity,
            "shippingAddress": _address(order_input.get("shippingAddress"), number * 10 + 1),
            "billingAddress": _address(order_input.get("billingAddress"), number * 10 + 2),
            "_lines": [state.line_item(number * 1000 + index, line.variant, line.quantity, line.price,
                                       line.presentment_price, presentment, line.title)
                       for index, line in enumerate(lines, start=1)],
            "_metafields": metafields,
        }
        return {"order": state.add_order(order, written_at=time.monotonic()), "userErrors": []}


def _currency_errors(state: ShopifyState, order_input: dict[str, Any], presentment: str) -> Errors:
    """``currency`` is the shop-facing currency, so only the shop's; what the customer pays in is
    ``presentmentCurrency``, one of the shop's enabled presentment currencies."""
    errors = []
    currency = order_input.get("currency")
    if currency is not None and currency != state.currency:
        errors.append(_error(["order", "currency"],
                             f"Currency {currency} is not the shop currency {state.currency}; the currency the "
                             "customer pays in is presentmentCurrency."))
    if presentment not in state.presentment_currencies:
        errors.append(_error(["order", "presentmentCurrency"],
                             f"Presentment currency {presentment} is not enabled for this shop "
                             f"(enabled: {', '.join(state.presentment_currencies)})."))
    return errors


def _lines(state: ShopifyState, line_inputs: list[dict[str, Any]], presentment: str) -> tuple[Errors, list[_Line]]:
    errors = []
    if not line_inputs:
        errors.append(_error(["order", "lineItems"], "Line items must have at least one line item."))
    lines = []
    for index, line in enumerate(line_inputs):
        where = ["order", "lineItems", index]
        variant = None
        if line.get("variantId"):
            variant = state.variants_by_id.get(line["variantId"])
            if variant is None:
                errors.append(_error([*where, "variantId"], f"Product variant {line['variantId']} does not exist."))
        elif not line.get("title"):
            errors.append(_error([*where, "title"], "A custom line item without variantId needs a title."))
        if line["quantity"] <= 0:
            errors.append(_error([*where, "quantity"], "Quantity must be greater than or equal to 1."))
        price_set = line.get("priceSet")
        if price_set is None:
            price = presentment_price = Decimal(variant["price"] if variant else "0.00")
            if presentment != state.currency:
                errors.append(_error([*where, "priceSet"], f"A line needs priceSet with presentmentMoney in "
                                                           f"{presentment}: the sandbox does not convert prices."))
        else:
            price_errors, price, presentment_price = _prices(state, where, price_set, presentment)
            errors += price_errors
        lines.append(_Line(variant, line["quantity"], price, presentment_price, line.get("title")))
    return errors, lines


def _prices(state: ShopifyState, where: list[str | int], price_set: dict[str, Any],
            presentment: str) -> tuple[Errors, Decimal, Decimal]:
    """A line's unit price in the shop currency and in the presentment currency."""
    errors = []
    shop_money, presentment_money = price_set["shopMoney"], price_set.get("presentmentMoney")
    if shop_money["currencyCode"] != state.currency:
        errors.append(_error([*where, "priceSet", "shopMoney", "currencyCode"],
                             f"Currency {shop_money['currencyCode']} of shopMoney is not the shop currency "
                             f"{state.currency}."))
    if presentment_money is None:
        if presentment != state.currency:
            errors.append(_error([*where, "priceSet", "presentmentMoney"],
                                 f"presentmentMoney in {presentment} is needed: the order's presentment currency "
                                 "is not the shop currency."))
        return errors, shop_money["amount"], shop_money["amount"]
    if presentment_money["currencyCode"] != presentment:
        errors.append(_error([*where, "priceSet", "presentmentMoney", "currencyCode"],
                             f"Currency {presentment_money['currencyCode']} of presentmentMoney is not the order's "
                             f"presentment currency {presentment} (set presentmentCurrency)."))
    return errors, shop_money["amount"], presentment_money["amount"]


def _buyer(state: ShopifyState, plan: str, order_input: dict[str, Any]) -> tuple[
        Errors, dict[str, Any] | None, dict[str, Any] | None]:
    errors = []
    buyer = None
    customer_input = order_input.get("customer") or {}
    if customer_input.get("toAssociate") and customer_input.get("toUpsert"):
        errors.append(_error(["order", "customer"], "Provide either toAssociate or toUpsert, not both.",
                             "REDUNDANT_CUSTOMER_FIELDS"))
    associate = customer_input.get("toAssociate") or {}
    if associate.get("id"):
        buyer = state.customers_by_id.get(associate["id"])
        if buyer is None:
            errors.append(_error(["order", "customer", "toAssociate", "id"],
                                 f"Customer {associate['id']} does not exist."))
    company_location = None
    if order_input.get("companyLocationId"):
        if plan not in B2B_PLANS:
            errors.append(_error(["order", "companyLocationId"],
                                 "B2B orders (companyLocationId) need Shopify Plus."))
        company_location = state.company_locations_by_id.get(order_input["companyLocationId"])
        if company_location is None:
            errors.append(_error(["order", "companyLocationId"],
                                 f"Company location {order_input['companyLocationId']} does not exist."))
    return errors, buyer, company_location


def _metafields(state: ShopifyState, inputs: list[dict[str, Any]]) -> tuple[Errors, dict[MetafieldKey, Any]]:
    """The order's metafields, checked as ``MetafieldInput`` describes them."""
    errors: Errors = []
    metafields: dict[MetafieldKey, Any] = {}
    for index, source in enumerate(inputs):
        problem = _metafield_problem(state, source, metafields)
        if problem is not None:
            errors.append(_error(["order", "metafields", index, problem[0]], problem[1]))
        else:
            metafields[(source["namespace"], source["key"])] = state.metafield(
                "ORDER", source["namespace"], source["key"], source["value"], source.get("type"))
    return errors, metafields


def _metafield_problem(state: ShopifyState, source: dict[str, Any],
                       earlier: dict[MetafieldKey, Any]) -> tuple[str, str] | None:
    """What is wrong with one ``MetafieldInput``, as ``(input field, message)``, or None.

    A key a definition covers takes the definition's type; any other needs a ``type``. A custom id
    (an ``id`` definition) must be a value no other order has.
    """
    namespace, key, value, type_name = (source.get(name) for name in ("namespace", "key", "value", "type"))
    if source.get("id") is not None:
        return "id", "A new order has no metafield to update: leave out id."
    if not isinstance(namespace, str) or not METAFIELD_NAMESPACE.fullmatch(namespace):
        return "namespace", ("Namespace is required and must be 3-255 characters long and contain only "
                             "alphanumeric, hyphen and underscore characters.")
    if not isinstance(key, str) or not METAFIELD_KEY.fullmatch(key):
        return "key", ("Key is required and must be 2-64 characters long and contain only alphanumeric, hyphen "
                       "and underscore characters.")
    if not value:
        return "value", "Value can't be blank."
    definition = state.definition("ORDER", namespace, key)
    if definition is not None and type_name not in (None, definition["type"]["name"]):
        return "type", f"Type must be {definition['type']['name']}, the type of the definition of {namespace}.{key}."
    if definition is None and type_name is None:
        return "type", f"Type is required: no metafield definition covers {namespace}.{key}."
    if definition is None and type_name not in METAFIELD_TYPES:
        return "type", f"Type {type_name!r} is not a metafield type."
    if (namespace, key) in earlier:
        return "key", f"{namespace}.{key} is given twice."
    if state.is_custom_id("ORDER", namespace, key) and ("ORDER", namespace, key, value) in state.custom_ids:
        return "value", TAKEN_MESSAGE
    return None


def _claim_inventory(state: ShopifyState, lines: list[_Line], obey_policy: bool) -> Errors:
    """Move ordered quantities from available to committed at the first active location holding the item.

    Lines of the same variant draw on the same stock, so each is checked against what earlier lines left.
    """
    claims: list[tuple[dict[str, Any], int]] = []
    for index, line in enumerate(lines):
        variant, quantity = line.variant, line.quantity
        if variant is None or not variant["inventoryItem"]["tracked"]:
            continue
        levels = variant["inventoryItem"]["_levels"]
        level = next((levels[loc["id"]] for loc in state.locations if loc["isActive"] and loc["id"] in levels), None)
        claimed = sum(amount for claimed_level, amount in claims if claimed_level is level)
        available = level["_q"]["available"] - claimed if level else 0
        if obey_policy and variant["inventoryPolicy"] == "DENY" and available < quantity:
            return [_error(["order", "lineItems", index, "quantity"],
                           f"Not enough inventory for {variant['displayName']}: {available} available, "
                           f"{quantity} ordered.", "INVENTORY_CLAIM_FAILED")]
        if level is not None:
            claims.append((level, quantity))
    stamp = now_iso()
    for level, quantity in claims:
        level["_q"]["available"] -= quantity
        level["_q"]["committed"] += quantity
        stamp_level(level, stamp)
    return []
