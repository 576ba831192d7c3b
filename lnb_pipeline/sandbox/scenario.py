"""Scenarios: the data both sandbox servers start from.

A scenario is one JSON object (the format is documented in the README, section "Sandbox scenarios")::

    {
      "shop": {"name": "Demo Brand", "domain": "demo-brand.myshopify.com", "currency": "EUR",
               "currencies": ["USD"], "development": false,
               "scopes": ["read_products", "read_inventory", "read_locations", "read_customers",
                          "write_orders", "read_all_orders"]},
      "metafield_definitions": [{"owner_type": "CUSTOMER", "namespace": "lenewblack",
                                 "key": "retailer_reference", "type": "id", "name": "Retailer reference"}],
      "locations": [{"id": 1, "name": "Paris Warehouse", "active": true}],
      "products": [{"id": 1, "title": "Linen Shirt", "status": "ACTIVE",
                    "variants": [{"id": 11, "title": "Blue / M", "sku": "LS-BLU-M",
                                  "barcode": "4006381333931", "price": "49.00", "tracked": true,
                                  "stock": {"1": {"available": 5, "committed": 1}}}]}],
      "customers": [{"id": 1, "email": "buyer@shop.example",
                     "metafields": {"lenewblack.retailer_reference": "R001"}}],
      "companies": [{"id": 1, "name": "Shop SARL", "external_id": "R001",
                     "locations": [{"id": 1, "name": "Shop SARL HQ"}],
                     "contacts": [{"id": 1, "customer_id": 1}]}],
      "orders": [{"id": 900, "source_identifier": "LNB-1", "customer_id": 1, "currency": "USD",
                  "processed_at": "2026-01-02T10:00:00Z",
                  "metafields": {"lenewblack.order_reference": "LNB-1"},
                  "line_items": [{"variant_id": 11, "quantity": 2, "price": "45.00",
                                  "presentment_price": "49.50"}]}],
      "lnb": {"retailers": [...], "orders": [...], "inventory": [...]}
    }

``shop``: ``currency`` is the shop currency (default EUR); ``currencies`` the other enabled
presentment currencies; ``development: true`` makes a development (or trial) store, which
``orderCreate`` limits to 5 new orders a minute; ``scopes`` are the access scopes the app was
granted (default ``DEFAULT_SCOPES``).

``metafield_definitions``: ``owner_type`` ``CUSTOMER`` or ``ORDER``; ``namespace`` (3-255) and
``key`` (2-64) of letters, digits, ``-`` and ``_``; ``type`` one of ``METAFIELD_TYPES``; ``name``.
A definition of type ``id`` makes the metafield a custom id: unique per owner type, and the key
``customerByIdentifier`` / ``orderByIdentifier`` look up by.

``metafields`` of customers and orders map ``"namespace.key"`` to a value. A customer's are unique
per key; an order's are unique per key when an ``id`` definition covers the key, as Shopify
enforces. Orders: ``currency`` is the presentment currency (default the shop's, else one of
``currencies``); a line's ``price`` is in the shop currency and ``presentment_price`` (needed when
the currency is not the shop's) in the presentment currency; ``processed_at`` defaults to
``created_at``.

Shopify objects use small integer ids that the sandbox turns into ``gid://shopify/<Type>/<id>``.
Timestamps are ISO-8601 with a zone (``2026-01-01T00:00:00Z``), as Shopify's ``DateTime``.
The ``lnb`` objects are stored and served as Le New Black's API returns them.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

QUANTITY_NAMES = (
    "available",
    "on_hand",
    "committed",
    "reserved",
    "damaged",
    "safety_stock",
    "quality_control",
    "incoming",
)
STORED_QUANTITY_NAMES = tuple(n for n in QUANTITY_NAMES if n != "on_hand")
PRODUCT_STATUSES = ("ACTIVE", "ARCHIVED", "DRAFT", "UNLISTED")
DEFAULT_TIMESTAMP = "2026-01-01T00:00:00Z"
DEFAULT_CURRENCY = "EUR"
DEFAULT_SCOPES = ("read_products", "read_inventory", "read_locations", "read_customers", "write_orders",
                  "read_all_orders")
"""The access scopes the project needs (``write_orders`` implies ``read_orders``)."""
METAFIELD_OWNER_TYPES = ("CUSTOMER", "ORDER")
METAFIELD_TYPES = {
    "id": "TEXT", "single_line_text_field": "TEXT", "multi_line_text_field": "TEXT", "number_integer": "NUMBER",
    "number_decimal": "NUMBER", "boolean": "TRUE_FALSE", "date": "DATE_TIME", "date_time": "DATE_TIME",
    "url": "URL", "json": "JSON",
}
"""Metafield types the sandbox knows, with the ``category`` Shopify files each under."""
METAFIELD_NAMESPACE = re.compile(r"[A-Za-z0-9_-]{3,255}")
"""What Shopify's ``MetafieldInput.namespace`` allows: 3-255 alphanumeric, hyphen and underscore characters."""
METAFIELD_KEY = re.compile(r"[A-Za-z0-9_-]{2,64}")
"""What Shopify's ``MetafieldInput.key`` allows: 2-64 alphanumeric, hyphen and underscore characters."""
CURRENCY_CODE = re.compile(r"[A-Z]{3}")
DECIMAL_AMOUNT = re.compile(r"-?\d+(?:\.\d+)?", re.ASCII)
"""Shopify's ``Decimal`` and ``Money``: a decimal number written as a string (``"29.99"``)."""
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:\d{2})", re.ASCII)
TIMESTAMP_KEYS = ("created_at", "updated_at", "processed_at")


class ScenarioError(ValueError):
    """A scenario that cannot be loaded; the message says where and why."""


def parse_timestamp(value: Any) -> datetime:
    """An ISO-8601 date and time with its zone, as an aware UTC datetime; ``ValueError`` otherwise.

    Shopify's ``DateTime`` is ISO-8601 (``2019-09-07T15:50:00Z``). A time without a zone is refused:
    Shopify would read it in a zone the sender did not choose.
    """
    if not isinstance(value, str) or not _TIMESTAMP.fullmatch(value):
        raise ValueError(f"{value!r} is not an ISO-8601 date and time with a zone, like 2019-09-07T15:50:00Z")
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        raise ValueError(f"{value!r} is not a real date and time") from None


def split_metafield_key(name: str) -> tuple[str, str] | None:
    """``"namespace.key"`` as ``(namespace, key)`` when both parts are valid, else None."""
    namespace, dot, key = name.partition(".")
    if not dot or not METAFIELD_NAMESPACE.fullmatch(namespace) or not METAFIELD_KEY.fullmatch(key):
        return None
    return namespace, key


def load_scenario(spec: str) -> dict[str, Any]:
    """``demo``, ``scale:N`` or the path of a scenario JSON file, validated; each ``+switch`` after it
    (``demo+scopes_missing+development_store``) makes one point of the readiness report fail (the
    switches are ``generators.READINESS_SWITCHES``)."""
    base, *switches = [spec] if Path(spec).is_file() else spec.split("+")
    scenario = _load_base(base)
    if switches:
        from lnb_pipeline.sandbox.generators import with_switches

        try:
            with_switches(scenario, switches)
        except ValueError as error:
            raise ScenarioError(f"{spec!r}: {error}") from None
    validate_scenario(scenario)
    return scenario


def _load_base(spec: str) -> dict[str, Any]:
    """The scenario a spec without switches names, not yet validated."""
    if spec == "demo":
        from lnb_pipeline.sandbox.generators import demo_scenario

        scenario = demo_scenario()
    elif spec.startswith("scale:"):
        try:
            variants = int(spec.removeprefix("scale:"))
        except ValueError:
            raise ScenarioError(f"scale:N needs a whole number of variants, got {spec!r}") from None
        if variants < 1:
            raise ScenarioError("scale:N needs at least one variant")
        from lnb_pipeline.sandbox.generators import scale_scenario

        scenario = scale_scenario(variants)
    else:
        path = Path(spec)
        if not path.is_file():
            raise ScenarioError(f"scenario {spec!r} is neither demo, scale:N nor an existing file")
        try:
            scenario = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ScenarioError(f"{path}: not valid JSON (UTF-8 expected): {error}") from None
    return scenario


def _require(condition: bool, where: str, message: str) -> None:
    if not condition:
        raise ScenarioError(f"{where}: {message}")


def _check_ids(items: Any, where: str) -> set[int]:
    _require(isinstance(items, list), where, "must be a list")
    seen: set[int] = set()
    for index, item in enumerate(items):
        here = f"{where}[{index}]"
        _require(isinstance(item, dict), here, "must be an object")
        item_id = item.get("id")
        _require(isinstance(item_id, int) and not isinstance(item_id, bool) and item_id > 0,
                 here, "needs a positive integer id")
        _require(item_id not in seen, here, f"duplicate id {item_id}")
        seen.add(item_id)
    return seen


def _check_timestamps(item: dict[str, Any], where: str) -> None:
    for key in TIMESTAMP_KEYS:
        if key in item:
            try:
                parse_timestamp(item[key])
            except ValueError as error:
                raise ScenarioError(f"{where}.{key}: {error}") from None


def _check_amount(item: dict[str, Any], key: str, where: str) -> None:
    if key in item:
        _require(isinstance(item[key], str) and bool(DECIMAL_AMOUNT.fullmatch(item[key])), f"{where}.{key}",
                 'must be a decimal number in a string, like "49.00"')


def _check_shop(shop: Any) -> None:
    _require(isinstance(shop, dict), "shop", "must be an object")
    currencies = [shop.get("currency", DEFAULT_CURRENCY), *shop.get("currencies", [])]
    _require(all(isinstance(code, str) and CURRENCY_CODE.fullmatch(code) for code in currencies), "shop",
             "currency and currencies must be ISO 4217 codes such as EUR")
    _require(isinstance(shop.get("development", False), bool), "shop.development", "must be true or false")
    scopes = shop.get("scopes", list(DEFAULT_SCOPES))
    _require(isinstance(scopes, list) and all(isinstance(s, str) and s for s in scopes), "shop.scopes",
             "must be a list of access scope handles such as read_orders")


def _check_definitions(definitions: Any) -> dict[tuple[str, str, str], str]:
    """``(owner type, namespace, key)`` to the type of each metafield definition."""
    _require(isinstance(definitions, list), "metafield_definitions", "must be a list")
    types: dict[tuple[str, str, str], str] = {}
    for index, definition in enumerate(definitions):
        where = f"metafield_definitions[{index}]"
        _require(isinstance(definition, dict), where, "must be an object")
        owner, namespace, key = definition.get("owner_type"), definition.get("namespace"), definition.get("key")
        _require(owner in METAFIELD_OWNER_TYPES, where, f"owner_type must be one of {METAFIELD_OWNER_TYPES}")
        _require(isinstance(namespace, str) and bool(METAFIELD_NAMESPACE.fullmatch(namespace)), where,
                 "namespace must be 3-255 letters, digits, - or _")
        _require(isinstance(key, str) and bool(METAFIELD_KEY.fullmatch(key)), where,
                 "key must be 2-64 letters, digits, - or _")
        _require(definition.get("type") in METAFIELD_TYPES, where, f"type must be one of {sorted(METAFIELD_TYPES)}")
        _require(isinstance(definition.get("name"), str) and bool(definition["name"].strip()), where,
                 "needs a name")
        _require((owner, namespace, key) not in types, where, f"{owner} {namespace}.{key} is defined twice")
        types[(owner, namespace, key)] = definition["type"]
    return types


def _check_metafields(item: dict[str, Any], where: str) -> dict[tuple[str, str], str]:
    metafields = item.get("metafields", {})
    _require(isinstance(metafields, dict), f"{where}.metafields", 'must map "namespace.key" to a value')
    parsed: dict[tuple[str, str], str] = {}
    for name, value in metafields.items():
        split = split_metafield_key(name)
        _require(split is not None, f"{where}.metafields", f'{name!r} is not "namespace.key" (3-255 and 2-64 '
                                                            "letters, digits, - or _)")
        _require(isinstance(value, str) and bool(value), f"{where}.metafields.{name}", "must be a non-empty string")
        assert split is not None
        parsed[split] = value
    return parsed


def _check_orders(orders: Any, currencies: set[str], shop_currency: str,
                  definitions: dict[tuple[str, str, str], str]) -> None:
    _check_ids(orders, "orders")
    custom_ids: set[tuple[str, str, str]] = set()
    for index, order in enumerate(orders):
        where = f"orders[{index}]"
        _check_timestamps(order, where)
        currency = order.get("currency", shop_currency)
        _require(currency in currencies, where, f"currency {currency!r} is not one the shop has enabled")
        for l_index, line in enumerate(order.get("line_items", [])):
            here = f"{where}.line_items[{l_index}]"
            _check_amount(line, "price", here)
            _check_amount(line, "presentment_price", here)
            _require(currency == shop_currency or "presentment_price" in line, here,
                     f"needs presentment_price in {currency} (price is in the shop currency {shop_currency})")
        for (namespace, key), value in _check_metafields(order, where).items():
            if definitions.get(("ORDER", namespace, key)) == "id":
                _require((namespace, key, value) not in custom_ids, f"{where}.metafields",
                         f"{namespace}.{key}={value!r} is already another order's (an id metafield is unique)")
                custom_ids.add((namespace, key, value))


def validate_scenario(scenario: Any) -> None:
    """Raise ``ScenarioError`` naming the first problem; the servers trust what passes."""
    _require(isinstance(scenario, dict), "scenario", "must be a JSON object")
    shop = scenario.get("shop", {})
    _check_shop(shop)
    definitions = _check_definitions(scenario.get("metafield_definitions", []))
    location_ids = _check_ids(scenario.get("locations", []), "locations")
    _require(bool(location_ids), "locations", "at least one location is needed")
    _check_ids(scenario.get("products", []), "products")
    variant_ids: set[int] = set()
    for p_index, product in enumerate(scenario.get("products", [])):
        where = f"products[{p_index}]"
        _check_timestamps(product, where)
        status = product.get("status", "ACTIVE")
        _require(status in PRODUCT_STATUSES, where, f"status must be one of {PRODUCT_STATUSES}")
        variants = product.get("variants", [])
        ids = _check_ids(variants, f"{where}.variants")
        _require(not (ids & variant_ids), f"{where}.variants", "variant ids must be unique")
        variant_ids |= ids
        for v_index, variant in enumerate(variants):
            here = f"{where}.variants[{v_index}]"
            _check_timestamps(variant, here)
            for text_field in ("sku", "barcode"):
                value = variant.get(text_field)
                _require(value is None or isinstance(value, str), here, f"{text_field} must be a string or null")
            _check_amount(variant, "price", here)
            stock = variant.get("stock", {})
            _require(isinstance(stock, dict), here, "stock must be an object keyed by location id")
            for location_key, quantities in stock.items():
                _require(str(location_key).isascii() and str(location_key).isdigit()
                         and int(location_key) in location_ids,
                         f"{here}.stock", f"unknown location {location_key!r}")
                _require(isinstance(quantities, dict), f"{here}.stock.{location_key}", "must be an object")
                for name, value in quantities.items():
                    _require(name in STORED_QUANTITY_NAMES, f"{here}.stock.{location_key}",
                             f"unknown quantity {name!r} (on_hand is computed)")
                    _require(isinstance(value, int) and not isinstance(value, bool),
                             f"{here}.stock.{location_key}.{name}", "must be an integer")
    customer_ids = _check_ids(scenario.get("customers", []), "customers")
    unique_metafields: set[tuple[tuple[str, str], str]] = set()
    for c_index, customer in enumerate(scenario.get("customers", [])):
        where = f"customers[{c_index}]"
        _check_timestamps(customer, where)
        for key, value in _check_metafields(customer, where).items():
            _require((key, value) not in unique_metafields, f"{where}.metafields",
                     f"{'.'.join(key)}={value!r} is already another customer's (Shopify keeps these unique)")
            unique_metafields.add((key, value))
    _check_ids(scenario.get("companies", []), "companies")
    company_location_ids: set[int] = set()
    contact_ids: set[int] = set()
    external_ids: set[str] = set()
    for c_index, company in enumerate(scenario.get("companies", [])):
        where = f"companies[{c_index}]"
        _check_timestamps(company, where)
        external_id = company.get("external_id")
        _require(external_id is None or external_id not in external_ids, where,
                 f"external_id {external_id!r} is already another company's (Shopify keeps it unique)")
        if external_id is not None:
            external_ids.add(external_id)
        locations = _check_ids(company.get("locations", []), f"{where}.locations")
        contacts = _check_ids(company.get("contacts", []), f"{where}.contacts")
        _require(not (locations & company_location_ids), f"{where}.locations", "ids must be unique across companies")
        _require(not (contacts & contact_ids), f"{where}.contacts", "ids must be unique across companies")
        company_location_ids |= locations
        contact_ids |= contacts
        for contact in company.get("contacts", []):
            _require(contact.get("customer_id") in customer_ids, f"{where}.contacts",
                     f"customer_id {contact.get('customer_id')!r} is not a customer")
    shop_currency = shop.get("currency", DEFAULT_CURRENCY)
    _check_orders(scenario.get("orders", []), {shop_currency, *shop.get("currencies", [])}, shop_currency,
                  definitions)
    lnb = scenario.get("lnb", {})
    _require(isinstance(lnb, dict), "lnb", "must be an object")
    for key in ("retailers", "orders", "inventory"):
        rows = lnb.get(key, [])
        _require(isinstance(rows, list) and all(isinstance(r, dict) for r in rows), f"lnb.{key}",
                 "must be a list of objects")
    statuses = lnb.get("order_statuses", ["confirmed"])
    _require(isinstance(statuses, list) and bool(statuses) and all(isinstance(s, str) and s for s in statuses),
             "lnb.order_statuses", "must be a non-empty list of status codes")
    order_refs = [o.get("reference") for o in lnb.get("orders", [])]
    _require(all(isinstance(r, str) and r for r in order_refs), "lnb.orders", "every order needs a reference")
    _require(len(set(order_refs)) == len(order_refs), "lnb.orders", "order references must be unique")
    for index, order in enumerate(lnb.get("orders", [])):
        _require(isinstance(order.get("items", []), list), f"lnb.orders[{index}].items", "must be a list")
