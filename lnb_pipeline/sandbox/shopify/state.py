"""The Shopify store the sandbox serves, built from a scenario and kept in GraphQL shape.

Objects are dicts keyed by their GraphQL field names, so graphql-core's default resolver reads
most fields directly; keys starting with ``_`` are internal (numeric ids, quantities, metafields,
when an order was written). Amounts and timestamps are kept as the strings Shopify sends.
"""

from __future__ import annotations

import re
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from lnb_pipeline.sandbox.scenario import (
    DEFAULT_CURRENCY,
    DEFAULT_SCOPES,
    DEFAULT_TIMESTAMP,
    METAFIELD_TYPES,
    STORED_QUANTITY_NAMES,
    split_metafield_key,
)

ON_HAND_PARTS = ("available", "committed", "reserved", "damaged", "safety_stock", "quality_control")
DEFAULT_SHOP = {"name": "Sandbox Shop", "domain": "sandbox-shop.myshopify.com", "currency": DEFAULT_CURRENCY}
APP_NAMESPACE = "$app"
"""The app-reserved namespace, where Shopify looks when a metafield's namespace is omitted."""
UNDEFINED_METAFIELD_TYPE = "single_line_text_field"
"""The type of a scenario metafield that no definition covers."""
DEFINITION_CHARACTERS = re.compile(r"[A-Za-z0-9_-]+")
"""What a definition's namespace and key may hold: letters, digits, hyphens and underscores."""
NEVER = float("-inf")
"""``_written_at`` of what the scenario starts with: written long before any request."""

MetafieldKey = tuple[str, str]
CustomIdKey = tuple[str, str, str, str]
"""Owner type, namespace, key and value of a metafield an ``id`` definition covers."""


def gid(kind: str, number: int) -> str:
    return f"gid://shopify/{kind}/{number}"


def gid_number(value: str, kind: str) -> int | None:
    """The numeric id of a ``gid://shopify/<kind>/<n>``, or None when it is not one."""
    prefix = f"gid://shopify/{kind}/"
    if not isinstance(value, str) or not value.startswith(prefix):
        return None
    tail = value.removeprefix(prefix).split("?", 1)[0]
    return int(tail) if tail.isdigit() else None


def _definition_error(field: str, message: str, code: str) -> dict[str, Any]:
    return {"field": ["definition", field], "message": message, "code": code}


def _length_error(field: str, value: str, shortest: int, longest: int) -> dict[str, Any] | None:
    """Shopify's length and character rules for a definition's namespace and key."""
    label = field.capitalize()
    if len(value) < shortest:
        return _definition_error(field, f"{label} is too short (minimum is {shortest} characters)", "TOO_SHORT")
    if len(value) > longest:
        return _definition_error(field, f"{label} is too long (maximum is {longest} characters)", "TOO_LONG")
    if not DEFINITION_CHARACTERS.fullmatch(value):
        return _definition_error(field, f"{label} contains one or more invalid characters.", "INVALID_CHARACTER")
    return None


def _definition_input_error(source: dict[str, Any], namespace: str) -> dict[str, Any] | None:
    """The first thing wrong with a ``MetafieldDefinitionInput``, as a user error, or None."""
    if namespace != APP_NAMESPACE and (error := _length_error("namespace", namespace, 3, 255)):
        return error
    if error := _length_error("key", source["key"], 2, 64):
        return error
    if not source["name"].strip():
        return _definition_error("name", "Name can't be blank.", "BLANK")
    if len(source["name"]) > 255:
        return _definition_error("name", "Name is too long (maximum is 255 characters)", "TOO_LONG")
    if source["type"] not in METAFIELD_TYPES:
        return _definition_error("type", f"Type {source['type']!r} is not included in the list of metafield "
                                         "types.", "INCLUSION")
    return None


def format_timestamp(moment: datetime) -> str:
    """A moment as Shopify writes a ``DateTime``: UTC, whole seconds, ``Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_iso() -> str:
    return format_timestamp(datetime.now(UTC))


def stamp_level(level: dict[str, Any], stamp: str) -> None:
    """Record that ``level`` changed at ``stamp``: its ``updatedAt``, its item's and variant's, and
    the moment it was written, which a lagging search index compares with (see ``level_indexed``)."""
    item = level["item"]
    level["updatedAt"] = item["updatedAt"] = item["_variant"]["updatedAt"] = stamp
    level["_written_at"] = time.monotonic()


def level_indexed(level: dict[str, Any], indexed_before: float) -> bool:
    """Whether the search index already holds ``level``'s latest change; scenario levels always are."""
    return level.get("_written_at", float("-inf")) <= indexed_before


def money_bag(shop_amount: Decimal, shop_currency: str, presentment_amount: Decimal,
              presentment_currency: str) -> dict[str, Any]:
    """A ``MoneyBag``: the amount in the shop currency and in the currency the customer saw."""
    return {"shopMoney": {"amount": str(shop_amount), "currencyCode": shop_currency},
            "presentmentMoney": {"amount": str(presentment_amount), "currencyCode": presentment_currency}}


class ShopifyState:
    """Everything one sandbox shop holds; ``lock`` guards every change."""

    def __init__(self, scenario: dict[str, Any]) -> None:
        self.lock = threading.RLock()
        shop = {**DEFAULT_SHOP, **scenario.get("shop", {})}
        self.currency: str = shop["currency"]
        self.presentment_currencies: list[str] = list(dict.fromkeys([self.currency, *shop.get("currencies", [])]))
        """The shop currency first, then the other enabled presentment currencies."""
        self.development: bool = shop.get("development", False)
        self.scopes: tuple[str, ...] = tuple(shop.get("scopes", DEFAULT_SCOPES))
        self.shop = {
            "id": gid("Shop", 1),
            "name": shop["name"],
            "myshopifyDomain": shop["domain"],
            "currencyCode": self.currency,
            "enabledPresentmentCurrencies": self.presentment_currencies,
        }
        self.definitions = [self._definition(number, source) for number, source
                            in enumerate(scenario.get("metafield_definitions", []), start=1)]
        self._definitions_by_key = {(d["ownerType"], d["namespace"], d["key"]): d for d in self.definitions}
        self.custom_ids: dict[CustomIdKey, dict[str, Any]] = {}
        """Every metafield an ``id`` definition covers, to its owner: what makes those values unique."""
        self._next_metafield = 1
        self.locations = [
            {"id": gid("Location", loc["id"]), "_num": loc["id"], "name": loc.get("name", f"Location {loc['id']}"),
             "isActive": loc.get("active", True)}
            for loc in sorted(scenario["locations"], key=lambda loc: loc["id"])
        ]
        self.locations_by_id = {loc["id"]: loc for loc in self.locations}
        self.variants: list[dict[str, Any]] = []
        self.variants_by_id: dict[str, dict[str, Any]] = {}
        self.items_by_id: dict[str, dict[str, Any]] = {}
        for product in scenario.get("products", []):
            self._add_product(product)
        self.variants.sort(key=lambda v: v["_num"])
        self._levels_by_location: dict[str, list[dict[str, Any]]] = {loc["id"]: [] for loc in self.locations}
        for variant in self.variants:
            for location_id, level in variant["inventoryItem"]["_levels"].items():
                self._levels_by_location[location_id].append(level)
        self.customers = [self._customer(c) for c in scenario.get("customers", [])]
        self.customers_by_id = {c["id"]: c for c in self.customers}
        self.companies = [self._company(c) for c in scenario.get("companies", [])]
        self.company_locations_by_id = {
            loc["id"]: loc for company in self.companies for loc in company["_locations"]
        }
        self.orders: list[dict[str, Any]] = []
        self.orders_by_id: dict[str, dict[str, Any]] = {}
        self.next_order_number = 1
        for order in scenario.get("orders", []):
            self.add_order(self._scenario_order(order))

    @staticmethod
    def _definition(number: int, source: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": gid("MetafieldDefinition", number),
            "name": source["name"],
            "description": source.get("description"),
            "namespace": source["namespace"],
            "key": source["key"],
            "ownerType": source["owner_type"],
            "type": {"name": source["type"], "category": METAFIELD_TYPES[source["type"]]},
        }

    def create_definition(self, source: dict[str, Any]) -> dict[str, Any]:
        """``metafieldDefinitionCreate``: the ``MetafieldDefinitionCreatePayload`` for one
        ``MetafieldDefinitionInput`` (scopes are checked by the caller).

        As Shopify does, the metafields already stored under that owner type, namespace and key take
        the definition's type; an ``id`` definition makes them custom ids, so their values must
        already be unique, else the definition is refused (``UNSTRUCTURED_ALREADY_EXISTS``).
        """
        owner_type, key, name = source["ownerType"], source["key"], source["name"]
        namespace = source.get("namespace") or APP_NAMESPACE
        with self.lock:
            error = _definition_input_error(source, namespace)
            if error is None and self.definition(owner_type, namespace, key) is not None:
                error = _definition_error("key", f"Key is in use for {owner_type.lower()} metafields on the "
                                                 f"'{namespace}' namespace.", "TAKEN")
            owners = self._owners(owner_type)
            if error is None and source["type"] == "id":
                values = [owner["_metafields"][(namespace, key)]["value"] for owner in owners
                          if (namespace, key) in owner["_metafields"]]
                if len(values) != len(set(values)):
                    error = _definition_error(
                        "type", f"Existing {owner_type.lower()} metafields {namespace}.{key} repeat a value; a "
                                "definition of type id needs unique values.", "UNSTRUCTURED_ALREADY_EXISTS")
            if error is not None:
                return {"createdDefinition": None, "userErrors": [error]}
            definition = self._definition(len(self.definitions) + 1, {
                "name": name.strip(), "description": source.get("description"), "namespace": namespace,
                "key": key, "owner_type": owner_type, "type": source["type"]})
            self.definitions.append(definition)
            self._definitions_by_key[(owner_type, namespace, key)] = definition
            for owner in owners:
                metafield = owner["_metafields"].get((namespace, key))
                if metafield is not None:
                    metafield["type"] = source["type"]
                    self._index_custom_ids(owner_type, owner)
            return {"createdDefinition": definition, "userErrors": []}

    def _owners(self, owner_type: str) -> list[dict[str, Any]]:
        return self.customers if owner_type == "CUSTOMER" else self.orders

    def definition(self, owner_type: str, namespace: str, key: str) -> dict[str, Any] | None:
        return self._definitions_by_key.get((owner_type, namespace, key))

    def is_custom_id(self, owner_type: str, namespace: str, key: str) -> bool:
        """Whether an ``id`` definition covers the key: only then is it a custom id, unique and looked up by."""
        definition = self.definition(owner_type, namespace, key)
        return definition is not None and definition["type"]["name"] == "id"

    def metafield(self, owner_type: str, namespace: str, key: str, value: str,
                  type_name: str | None = None) -> dict[str, Any]:
        """A new ``Metafield``; its type is the definition's when one covers the key."""
        definition = self.definition(owner_type, namespace, key)
        with self.lock:
            number = self._next_metafield
            self._next_metafield += 1
        return {"id": gid("Metafield", number), "namespace": namespace, "key": key, "value": value,
                "type": definition["type"]["name"] if definition else type_name or UNDEFINED_METAFIELD_TYPE}

    def _scenario_metafields(self, owner_type: str, source: dict[str, Any]) -> dict[MetafieldKey, dict[str, Any]]:
        metafields = {}
        for name, value in source.get("metafields", {}).items():
            key = split_metafield_key(name)
            assert key is not None, "validate_scenario refuses malformed metafield keys"
            metafields[key] = self.metafield(owner_type, *key, value)
        return metafields

    def _index_custom_ids(self, owner_type: str, owner: dict[str, Any]) -> None:
        for (namespace, key), metafield in owner["_metafields"].items():
            if self.is_custom_id(owner_type, namespace, key):
                self.custom_ids[(owner_type, namespace, key, metafield["value"])] = owner

    def _add_product(self, source: dict[str, Any]) -> None:
        number = source["id"]
        updated = source.get("updated_at", DEFAULT_TIMESTAMP)
        product = {
            "id": gid("Product", number),
            "title": source.get("title", f"Product {number}"),
            "handle": source.get("handle") or source.get("title", f"product-{number}").lower().replace(" ", "-"),
            "status": source.get("status", "ACTIVE"),
            "vendor": source.get("vendor", "Sandbox"),
            "updatedAt": updated,
        }
        for variant_source in source.get("variants", []):
            self._add_variant(product, variant_source)

    def _add_variant(self, product: dict[str, Any], source: dict[str, Any]) -> None:
        number = source["id"]
        updated = source.get("updated_at", product["updatedAt"])
        title = source.get("title", "Default Title")
        variant: dict[str, Any] = {
            "id": gid("ProductVariant", number),
            "_num": number,
            "title": title,
            "displayName": f"{product['title']} - {title}",
            "sku": source.get("sku"),
            "barcode": source.get("barcode"),
            "price": source.get("price", "0.00"),
            "createdAt": source.get("created_at", DEFAULT_TIMESTAMP),
            "updatedAt": updated,
            "inventoryPolicy": source.get("inventory_policy", "DENY"),
            "product": product,
        }
        item: dict[str, Any] = {
            "id": gid("InventoryItem", number),
            "_num": number,
            "sku": variant["sku"],
            "tracked": source.get("tracked", True),
            "createdAt": variant["createdAt"],
            "updatedAt": updated,
            "_variant": variant,
            "_levels": {},
        }
        for location_key, quantities in source.get("stock", {}).items():
            location = self.locations_by_id[gid("Location", int(location_key))]
            item["_levels"][location["id"]] = {
                "id": f"gid://shopify/InventoryLevel/{number}{location['_num']:03d}?inventory_item_id={number}",
                "updatedAt": updated,
                "location": location,
                "item": item,
                "_q": {name: int(quantities.get(name, 0)) for name in STORED_QUANTITY_NAMES},
            }
        variant["inventoryItem"] = item
        self.variants.append(variant)
        self.variants_by_id[variant["id"]] = variant
        self.items_by_id[item["id"]] = item

    def _customer(self, source: dict[str, Any]) -> dict[str, Any]:
        first, last = source.get("first_name"), source.get("last_name")
        email = source.get("email")
        customer = {
            "__typename": "Customer",
            "id": gid("Customer", source["id"]),
            "firstName": first,
            "lastName": last,
            "displayName": " ".join(p for p in (first, last) if p) or email or f"Customer {source['id']}",
            "defaultEmailAddress": {"emailAddress": email} if email else None,
            "defaultPhoneNumber": {"phoneNumber": source["phone"]} if source.get("phone") else None,
            "tags": source.get("tags", []),
            "createdAt": source.get("created_at", DEFAULT_TIMESTAMP),
            "updatedAt": source.get("updated_at", DEFAULT_TIMESTAMP),
            "_metafields": self._scenario_metafields("CUSTOMER", source),
        }
        self._index_custom_ids("CUSTOMER", customer)
        return customer

    def _company(self, source: dict[str, Any]) -> dict[str, Any]:
        company: dict[str, Any] = {
            "id": gid("Company", source["id"]),
            "name": source.get("name", f"Company {source['id']}"),
            "externalId": source.get("external_id"),
            "createdAt": source.get("created_at", DEFAULT_TIMESTAMP),
            "updatedAt": source.get("updated_at", DEFAULT_TIMESTAMP),
        }
        company["_locations"] = [
            {"id": gid("CompanyLocation", loc["id"]), "name": loc.get("name", company["name"]),
             "externalId": loc.get("external_id"), "currency": loc.get("currency", self.currency),
             "company": company}
            for loc in source.get("locations", [])
        ]
        company["_contacts"] = [
            {"id": gid("CompanyContact", contact["id"]), "company": company,
             "customer": self.customers_by_id[gid("Customer", contact["customer_id"])],
             "isMainContact": index == 0}
            for index, contact in enumerate(source.get("contacts", []))
        ]
        company["mainContact"] = company["_contacts"][0] if company["_contacts"] else None
        return company

    def _scenario_order(self, source: dict[str, Any]) -> dict[str, Any]:
        """An order a scenario starts with (e.g. one exported before), in stored shape."""
        created = source.get("created_at", DEFAULT_TIMESTAMP)
        presentment = source.get("currency", self.currency)
        lines = []
        for index, line in enumerate(source.get("line_items", []), start=1):
            variant = self.variants_by_id.get(gid("ProductVariant", line.get("variant_id", 0)))
            price = Decimal(line.get("price", variant["price"] if variant else "0.00"))
            lines.append(self.line_item(source["id"] * 1000 + index, variant, line.get("quantity", 1), price,
                                        Decimal(line.get("presentment_price", price)), presentment,
                                        line.get("title")))
        customer = self.customers_by_id.get(gid("Customer", source.get("customer_id", 0)))
        return {
            "id": gid("Order", source["id"]),
            "name": source.get("name"),
            "createdAt": created,
            "updatedAt": source.get("updated_at", created),
            "processedAt": source.get("processed_at", created),
            "cancelledAt": None,
            "closed": False,
            "test": False,
            "sourceName": source.get("source_name"),
            "sourceIdentifier": source.get("source_identifier"),
            "poNumber": source.get("po_number"),
            "email": source.get("email"),
            "note": source.get("note"),
            "tags": source.get("tags", []),
            "currencyCode": self.currency,
            "presentmentCurrencyCode": presentment,
            "displayFinancialStatus": "PENDING",
            "customer": customer,
            "purchasingEntity": customer,
            "shippingAddress": None,
            "billingAddress": None,
            "_lines": lines,
            "_metafields": self._scenario_metafields("ORDER", source),
        }

    def line_item(self, number: int, variant: dict[str, Any] | None, quantity: int, price: Decimal,
                  presentment_price: Decimal, presentment_currency: str, title: str | None) -> dict[str, Any]:
        return {
            "id": gid("LineItem", number),
            "name": title or (variant["displayName"] if variant else "Custom item"),
            "sku": variant["sku"] if variant else None,
            "quantity": quantity,
            "variant": variant,
            "originalUnitPriceSet": money_bag(price, self.currency, presentment_price, presentment_currency),
        }

    def add_order(self, order: dict[str, Any], written_at: float = NEVER) -> dict[str, Any]:
        """Store an order; ``written_at`` (``time.monotonic()``) is when the search index starts to lag behind it."""
        with self.lock:
            if order["name"] is None:
                order["name"] = f"#{1000 + self.next_order_number}"
            self.next_order_number += 1
            totals = {
                side: sum((Decimal(line["originalUnitPriceSet"][side]["amount"]) * line["quantity"]
                           for line in order["_lines"]), Decimal(0))
                for side in ("shopMoney", "presentmentMoney")
            }
            order["totalPriceSet"] = money_bag(totals["shopMoney"], order["currencyCode"],
                                               totals["presentmentMoney"], order["presentmentCurrencyCode"])
            order["_written_at"] = written_at
            self.orders.append(order)
            self.orders_by_id[order["id"]] = order
            self._index_custom_ids("ORDER", order)
            return order

    def levels_at(self, location_id: str) -> list[dict[str, Any]]:
        """Inventory levels at a location in item order (precomputed: scanning 100 000 items per page is too slow)."""
        return self._levels_by_location.get(location_id, [])

    def quantity(self, level: dict[str, Any], name: str) -> int:
        stored = level["_q"]
        if name == "on_hand":
            return sum(stored[part] for part in ON_HAND_PARTS)
        return stored.get(name, 0)
