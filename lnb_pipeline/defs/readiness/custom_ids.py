"""The one-time Shopify setup: the two custom id definitions the flows rely on, created when missing.

A definition already there is never changed or deleted: one of type ``id`` is what is wanted, one of
another type under the same key is reported and left alone (it may hold the brand's own data).
Creating is therefore safe to repeat: a second run finds both and changes nothing. A create whose
answer was lost, or that races another run, is refused with ``TAKEN`` and read back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from lnb_pipeline.clients.shopify import ShopifyClient, ShopifyGraphQLError
from lnb_pipeline.clients.shopify_queries import (
    METAFIELD_DEFINITION_CREATE_MUTATION,
    METAFIELD_DEFINITIONS_QUERY,
)
from lnb_pipeline.rules.readiness import ID_TYPE, OwnerType

CREATED = "created"
ALREADY_THERE = "already there, unchanged"
OTHER_TYPE = "another type under that key: not changed"
REFUSED = "refused by Shopify"
NOT_NEEDED = "not needed"
PROBLEMS = (OTHER_TYPE, REFUSED)
"""Outcomes that leave a custom id missing: the setup run fails, naming them."""


@dataclass(frozen=True)
class WantedDefinition:
    """A custom id the flows need: an ``id`` definition of ``metafield`` on ``owner_type``."""

    owner_type: OwnerType
    metafield: str
    setting: str
    name: str
    description: str
    needed: bool = True
    why_not_needed: str = ""


@dataclass(frozen=True)
class SetupOutcome:
    owner_type: OwnerType
    metafield: str
    outcome: str
    detail: str


def wanted_definitions(customer_metafield: str, order_metafield: str, customer_needed: bool) -> list[WantedDefinition]:
    """The customer custom id (retailer references; not needed when retailers are B2B companies) and the
    order custom id (exactly-once)."""
    return [
        WantedDefinition("CUSTOMER", customer_metafield, "SHOPIFY_CUSTOMER_METAFIELD", "LNB retailer reference",
                         "Le New Black's reference of the retailer this customer is: how lnb_pipeline finds the "
                         "buyer of an LNB order.", customer_needed,
                         "SHOPIFY_CUSTOMER_MATCH=company: retailers are found as B2B companies"),
        WantedDefinition("ORDER", order_metafield, "SHOPIFY_ORDER_METAFIELD", "LNB order reference",
                         "Le New Black's reference of the order this one was created from: how lnb_pipeline finds "
                         "it again, so that each LNB order is created once."),
    ]


def _types_under(client: ShopifyClient, wanted: WantedDefinition) -> list[str]:
    namespace, key = wanted.metafield.split(".")
    nodes = client.execute(METAFIELD_DEFINITIONS_QUERY, {
        "ownerType": wanted.owner_type, "namespace": namespace, "key": key})["metafieldDefinitions"]["nodes"]
    return [node["type"]["name"] for node in nodes if (node["namespace"], node["key"]) == (namespace, key)]


def _existing(wanted: WantedDefinition, types: list[str]) -> SetupOutcome | None:
    if ID_TYPE in types:
        return SetupOutcome(wanted.owner_type, wanted.metafield, ALREADY_THERE, "a definition of type id")
    if types:
        return SetupOutcome(wanted.owner_type, wanted.metafield, OTHER_TYPE,
                            f"defined with type {', '.join(types)}: point {wanted.setting} at another "
                            "namespace.key, or replace that definition in the Shopify admin yourself")
    return None


def ensure_definition(client: ShopifyClient, wanted: WantedDefinition, log: logging.Logger) -> SetupOutcome:
    """``wanted`` created when Shopify has no definition under its key; anything there is left as it is."""
    owners = "customers" if wanted.owner_type == "CUSTOMER" else "orders"
    if not wanted.needed:
        return SetupOutcome(wanted.owner_type, wanted.metafield, NOT_NEEDED, wanted.why_not_needed)
    try:
        existing = _existing(wanted, _types_under(client, wanted))
        if existing is not None:
            log.info("Custom id %s on %s: %s (%s)", wanted.metafield, owners, existing.outcome, existing.detail)
            return existing
        namespace, key = wanted.metafield.split(".")
        payload = client.execute(METAFIELD_DEFINITION_CREATE_MUTATION, {"definition": {
            "namespace": namespace, "key": key, "name": wanted.name, "description": wanted.description,
            "ownerType": wanted.owner_type, "type": ID_TYPE}}, idempotent=True)["metafieldDefinitionCreate"]
    except ShopifyGraphQLError as error:
        log.error("Custom id %s on %s: Shopify refused: %s", wanted.metafield, owners, error)
        return SetupOutcome(wanted.owner_type, wanted.metafield, REFUSED, str(error))
    errors = payload["userErrors"]
    if any(error.get("code") == "TAKEN" for error in errors):
        existing = _existing(wanted, _types_under(client, wanted))
        if existing is not None:
            return existing
    if errors:
        detail = "; ".join(f"{error['message']} ({error.get('code')})" for error in errors)
        log.error("Custom id %s on %s: Shopify refused: %s", wanted.metafield, owners, detail)
        return SetupOutcome(wanted.owner_type, wanted.metafield, REFUSED, detail)
    created = payload["createdDefinition"]
    log.info("Custom id %s on %s: created (%s)", wanted.metafield, owners, created["id"])
    return SetupOutcome(wanted.owner_type, wanted.metafield, CREATED, f"definition {created['id']}, type id")
