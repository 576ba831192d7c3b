"""Scenarios: the data both sandbox servers start from.

A scenario is one JSON object (the format is documented in the README, section "Sandbox scenarios")::

    {
      "shop": {"name": "Demo Brand", "domain": "demo-brand.myshopify.com", "currency": "EUR"},
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
      "orders": [],
      "lnb": {"retailers": [...], "orders": [...], "inventory": [...]}
    }

Shopify objects use small integer ids that the sandbox turns into ``gid://shopify/<Type>/<id>``.
The ``lnb`` objects are stored and served as Le New Black's API returns them.
"""

from __future__ import annotations

import json
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


class ScenarioError(ValueError):
    """A scenario that cannot be loaded; the message says where and why."""


def load_scenario(spec: str) -> dict[str, Any]:
    """``demo``, ``scale:N`` or the path of a scenario JSON file, validated."""
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
    validate_scenario(scenario)
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


def validate_scenario(scenario: Any) -> None:
    """Raise ``ScenarioError`` naming the first problem; the servers trust what passes."""
    _require(isinstance(scenario, dict), "scenario", "must be a JSON object")
    shop = scenario.get("shop", {})
    _require(isinstance(shop, dict), "shop", "must be an object")
    location_ids = _check_ids(scenario.get("locations", []), "locations")
    _require(bool(location_ids), "locations", "at least one location is needed")
    _check_ids(scenario.get("products", []), "products")
    variant_ids: set[int] = set()
    for p_index, product in enumerate(scenario.get("products", [])):
        where = f"products[{p_index}]"
        status = product.get("status", "ACTIVE")
        _require(status in PRODUCT_STATUSES, where, f"status must be one of {PRODUCT_STATUSES}")
        variants = product.get("variants", [])
        ids = _check_ids(variants, f"{where}.variants")
        _require(not (ids & variant_ids), f"{where}.variants", "variant ids must be unique")
        variant_ids |= ids
        for v_index, variant in enumerate(variants):
            here = f"{where}.variants[{v_index}]"
            for text_field in ("sku", "barcode"):
                value = variant.get(text_field)
                _require(value is None or isinstance(value, str), here, f"{text_field} must be a string or null")
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
    unique_metafields: set[tuple[str, Any]] = set()
    for c_index, customer in enumerate(scenario.get("customers", [])):
        metafields = customer.get("metafields", {})
        where = f"customers[{c_index}].metafields"
        _require(isinstance(metafields, dict) and all("." in k for k in metafields),
                 where, 'must map "namespace.key" to a value')
        for key, value in metafields.items():
            _require((key, value) not in unique_metafields, where,
                     f"{key}={value!r} is already another customer's (Shopify keeps these unique)")
            unique_metafields.add((key, value))
    _check_ids(scenario.get("companies", []), "companies")
    company_location_ids: set[int] = set()
    contact_ids: set[int] = set()
    external_ids: set[str] = set()
    for c_index, company in enumerate(scenario.get("companies", [])):
        where = f"companies[{c_index}]"
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
    _check_ids(scenario.get("orders", []), "orders")
    lnb = scenario.get("lnb", {})
    _require(isinstance(lnb, dict), "lnb", "must be an object")
    for key in ("retailers", "orders", "inventory"):
        rows = lnb.get(key, [])
        _require(isinstance(rows, list) and all(isinstance(r, dict) for r in rows), f"lnb.{key}",
                 "must be a list of objects")
    order_refs = [o.get("reference") for o in lnb.get("orders", [])]
    _require(all(isinstance(r, str) and r for r in order_refs), "lnb.orders", "every order needs a reference")
    _require(len(set(order_refs)) == len(order_refs), "lnb.orders", "order references must be unique")
    for index, order in enumerate(lnb.get("orders", [])):
        _require(isinstance(order.get("items", []), list), f"lnb.orders[{index}].items", "must be a list")
