"""``orderCreate`` as Shopify performs it: validate everything, then create, or answer userErrors.

Like Shopify, there is no idempotency: the same input sent twice makes two orders.
"""

from __future__ import annotations

from typing import Any

from lnb_pipeline.sandbox.shopify.state import ShopifyState, gid, now_iso

B2B_PLANS = ("plus", "enterprise")
FINANCIAL_TO_DISPLAY = {
    "PENDING": "PENDING", "AUTHORIZED": "AUTHORIZED", "PARTIALLY_PAID": "PARTIALLY_PAID", "PAID": "PAID",
    "PARTIALLY_REFUNDED": "PARTIALLY_REFUNDED", "REFUNDED": "REFUNDED", "VOIDED": "VOIDED", "EXPIRED": "EXPIRED",
}


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
        errors, lines, buyer, company_location = _validate(state, plan, order_input, options)
        if errors:
            return {"order": None, "userErrors": errors}
        behaviour = options.get("inventoryBehaviour") or "BYPASS"
        if behaviour != "BYPASS":
            claim_errors = _claim_inventory(state, lines, obey_policy=behaviour == "DECREMENT_OBEYING_POLICY")
            if claim_errors:
                return {"order": None, "userErrors": claim_errors}
        number = state.next_order_number
        created = now_iso()
        currency = order_input.get("currency") or state.currency
        order_lines = [
            state.line_item(number * 1000 + index, variant, quantity, price, title, currency)
            for index, (variant, quantity, price, title) in enumerate(lines, start=1)
        ]
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
            "processedAt": order_input.get("processedAt") or created,
            "cancelledAt": None,
            "closed": False,
            "sourceName": order_input.get("sourceName"),
            "sourceIdentifier": order_input.get("sourceIdentifier"),
            "poNumber": order_input.get("poNumber"),
            "email": email,
            "note": order_input.get("note"),
            "tags": sorted({t.strip() for t in order_input.get("tags") or [] if t.strip()}),
            "currencyCode": currency,
            "displayFinancialStatus": FINANCIAL_TO_DISPLAY.get(order_input.get("financialStatus") or "PENDING"),
            "customer": buyer,
            "purchasingEntity": purchasing_entity,
            "shippingAddress": _address(order_input.get("shippingAddress"), number * 10 + 1),
            "billingAddress": _address(order_input.get("billingAddress"), number * 10 + 2),
            "_lines": order_lines,
        }
        return {"order": state.add_order(order), "userErrors": []}


def _validate(state: ShopifyState, plan: str, order_input: dict[str, Any], options: dict[str, Any]) -> tuple[
        list[dict[str, Any]], list[tuple[dict[str, Any] | None, int, str, str | None]],
        dict[str, Any] | None, dict[str, Any] | None]:
    errors: list[dict[str, Any]] = []
    currency = order_input.get("currency") or state.currency
    if currency not in state.accepted_currencies:
        errors.append(_error(["order", "currency"],
                             f"Currency {currency} is not enabled for this shop "
                             f"(accepted: {', '.join(sorted(state.accepted_currencies))})."))
    line_inputs = order_input.get("lineItems") or []
    if not line_inputs:
        errors.append(_error(["order", "lineItems"], "Line items must have at least one line item."))
    lines: list[tuple[dict[str, Any] | None, int, str, str | None]] = []
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
        price_set = (line.get("priceSet") or {}).get("shopMoney")
        if price_set is not None and price_set["currencyCode"] != currency:
            errors.append(_error([*where, "priceSet", "shopMoney", "currencyCode"],
                                 f"Currency {price_set['currencyCode']} does not match the order currency {currency}."))
        price = price_set["amount"] if price_set else (variant["price"] if variant else "0.00")
        lines.append((variant, line["quantity"], str(price), line.get("title")))
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
    processed_at = order_input.get("processedAt")
    if processed_at and processed_at > now_iso():
        errors.append(_error(["order", "processedAt"], "Processed at must not be in the future.",
                             "PROCESSED_AT_INVALID"))
    return errors, lines, buyer, company_location


def _claim_inventory(state: ShopifyState, lines: list[tuple[dict[str, Any] | None, int, str, str | None]],
                     obey_policy: bool) -> list[dict[str, Any]]:
    """Move ordered quantities from available to committed at the first active location holding the item.

    Lines of the same variant draw on the same stock, so each is checked against what earlier lines left.
    """
    claims: list[tuple[dict[str, Any], int]] = []
    for index, (variant, quantity, _, _) in enumerate(lines):
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
    for level, quantity in claims:
        level["_q"]["available"] -= quantity
        level["_q"]["committed"] += quantity
        level["updatedAt"] = now_iso()
    return []
