"""The order flow end to end: real Dagster runs against the sandbox over HTTP.

Each test loads a scenario (the demo, or a handful of orders small enough to work out by hand), runs
the flow (``dg.materialize`` with explicit resources, the ``orders_export`` job, the sensor, or the
daemon) and asserts the only results that matter, read back as any API client would: the orders
Shopify holds (every order, listed without a search so the sandbox's index lag cannot hide one) and
each order's status in LNB (``GET /orders/{reference}``).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import pytest
import requests
from conftest import reset_sandbox
from helpers import asset_metadata, check_evaluation, check_metadata, reloaded_under

from lnb_pipeline.definitions import defs
from lnb_pipeline.defs.inventory.assets import (
    shopify_inventory_levels,
    shopify_locations,
)
from lnb_pipeline.defs.inventory.schedules import FLOW_TAG
from lnb_pipeline.defs.inventory.settings import InventorySettings
from lnb_pipeline.defs.lenewblack.resources import LeNewBlackResource
from lnb_pipeline.defs.orders import schedules
from lnb_pipeline.defs.orders.assets import (
    TABLE_ROWS,
    blocked_orders_in,
    lnb_orders_changed_after_export,
    lnb_orders_for_export,
    shopify_orders_from_lnb,
)
from lnb_pipeline.defs.orders.checks import (
    no_order_blocked,
    order_lines_have_codes,
    order_lines_match_shopify_variants,
    retailer_references_valid,
)
from lnb_pipeline.defs.orders.schedules import (
    lnb_orders_sensor,
    orders_export_schedule,
)
from lnb_pipeline.defs.orders.settings import OrderFlowSettings
from lnb_pipeline.defs.shopify.resources import ShopifyResource
from lnb_pipeline.order_export import (
    CUSTOM_ID_TAKEN,
    OrderExporter,
    OrderLookup,
    PendingOrder,
)
from lnb_pipeline.rules.orders import OrderSettings, order_content_hash
from lnb_pipeline.sandbox import Sandbox
from lnb_pipeline.sandbox.generators import DEMO_CASES, demo_scenario, lnb_ean13

REPO = Path(__file__).resolve().parents[1]
ORDER_ASSETS = [shopify_locations, shopify_inventory_levels, lnb_orders_for_export, shopify_orders_from_lnb,
                lnb_orders_changed_after_export]
"""The order assets plus the stock flow's Shopify read they take their variant index from."""
ORDER_CHECKS = [order_lines_have_codes, order_lines_match_shopify_variants, retailer_references_valid, no_order_blocked]
LOG_COLUMNS = ("reference", "retailer", "line", "outcome", "shopify_order", "shopify_order_link", "detail")
METAFIELD = "lenewblack.retailer_reference"

CREATED = "created in Shopify"
ALREADY = "already in Shopify, LNB status finished"
REJECTED = "rejected by Shopify"
FAILED = "failed"
DUPLICATE = "more than one Shopify order"
CHANGED = "changed after export: apply the change in Shopify"

EAN_1, EAN_2, EAN_SHARED, EAN_UNKNOWN = "3760000000017", "3760000000024", "3760000000031", "3760000000048"
SHARED_VARIANTS = "gid://shopify/ProductVariant/13, gid://shopify/ProductVariant/14"
ZURICH_LOCATION = "gid://shopify/CompanyLocation/7"
ADDRESS = {"reference": "ADR-1", "company": "Boutique Lumière", "country": "FR", "contact_name": "Claire Martin",
           "contact_email": "claire@boutique-lumiere.example", "tel": "+33 142000001",
           "address_1": "12 rue de Bretagne", "address_2": None, "zipcode": "75003", "city": "Paris",
           "vat_number": None}

ORDERS_QUERY = """
query Orders($after: String) {
  orders(first: 15, after: $after) {
    pageInfo { hasNextPage endCursor }
    nodes {
      id name sourceIdentifier sourceName poNumber note tags email currencyCode presentmentCurrencyCode
      displayFinancialStatus processedAt metafield(namespace: "lenewblack", key: "order_reference") { value }
      customer { id }
      purchasingEntity {
        __typename
        ... on Customer { id }
        ... on PurchasingCompany { company { id } location { id } }
      }
      shippingAddress { address1 address2 city company countryCodeV2 firstName lastName phone zip }
      billingAddress { address1 address2 city company countryCodeV2 firstName lastName phone zip }
      lineItems(first: 10) {
        nodes {
          quantity variant { id }
          originalUnitPriceSet { shopMoney { amount currencyCode } presentmentMoney { amount currencyCode } }
        }
      }
    }
  }
}
"""
ALL_ORDERS_QUERY = "{ orders(first: 250) { nodes { name sourceIdentifier } } }"
STOCK_QUERY = """
query Stock($id: ID!) {
  inventoryItem(id: $id) {
    inventoryLevel(locationId: "gid://shopify/Location/1") {
      quantities(names: ["available", "committed"]) { name quantity }
    }
  }
}
"""


# --- scenarios ----------------------------------------------------------------------------------

def _item(ean13: str | None, sku: str | None, quantity: Any) -> dict[str, Any]:
    """An LNB order line with the fields the flow reads, at 26.82 a piece."""
    return {"reference": "TS", "name": "Test Shirt", "quantity": quantity, "unit_price": 26.82,
            "ean13": ean13, "sku": sku}


CLEAN_LINE = _item(EAN_1, "TS-BLU-M", 2)


def _lnb_order(reference: str, **fields: Any) -> dict[str, Any]:
    """A confirmed LNB order of Claire's (R001, Boutique Lumière) for two blue M shirts, ``fields``
    overriding. LNB lists orders of one creation time by reference."""
    created = "2026-01-02T09:00:00Z"
    return {
        "reference": reference, "create_time": created, "update_time": created, "confirmation_time": created,
        "status": "confirmed", "purchase_order_reference": f"PO-{reference}",
        "retailer_reference": "R001", "retailer_name": "Boutique Lumière",
        "buyer_email": "claire@boutique-lumiere.example", "currency": "EUR",
        "comment": "Livraison le matin uniquement.", "billing_address": ADDRESS, "delivery_address": ADDRESS,
        "items": [CLEAN_LINE], **fields,
    }


def _variant(variant_id: int, barcode: str, sku: str) -> dict[str, Any]:
    return {"id": variant_id, "title": sku, "sku": sku, "barcode": barcode, "price": "59.00",
            "stock": {"1": {"available": 20}}}


ID_DEFINITIONS = [
    {"owner_type": "CUSTOMER", "namespace": "lenewblack", "key": "retailer_reference", "type": "id",
     "name": "LNB retailer reference"},
    {"owner_type": "ORDER", "namespace": "lenewblack", "key": "order_reference", "type": "id",
     "name": "LNB order reference"},
]
"""The shop's custom id definitions: retailers' customers and exported orders, found exactly."""


def _load(sandbox: Sandbox, lnb_orders: list[dict[str, Any]], *, shopify_orders: Sequence[dict[str, Any]] = (),
          currencies: Sequence[str] = (), order_custom_id: bool = True, **shop: Any) -> None:
    """One shirt in four variants (13 and 14 share a barcode); Claire, customer of R001; the Zürich
    Atelier, a B2B company R002 (location 7) with no customer metafield; LNB holding ``lnb_orders``.
    Without ``order_custom_id`` the shop lacks the order metafield definition (the weaker search mode)."""
    reset_sandbox(sandbox, {
        "shop": {"name": "Order Test", "domain": "order-test.myshopify.com", "currency": "EUR",
                 "currencies": list(currencies), **shop},
        "metafield_definitions": ID_DEFINITIONS if order_custom_id else ID_DEFINITIONS[:1],
        "locations": [{"id": 1, "name": "Paris Warehouse", "active": True}],
        "products": [{"id": 1, "title": "Test Shirt", "status": "ACTIVE", "variants": [
            _variant(11, EAN_1, "TS-BLU-M"), _variant(12, EAN_2, "TS-BLU-L"),
            _variant(13, EAN_SHARED, "TS-WHT-M"), _variant(14, EAN_SHARED, "TS-WHT-L"),
        ]}],
        "customers": [
            {"id": 1, "email": "claire@boutique-lumiere.example", "first_name": "Claire", "last_name": "Martin",
             "metafields": {METAFIELD: "R001"}},
            {"id": 2, "email": "noah@zurich-atelier.example", "first_name": "Noah", "last_name": "Keller",
             "metafields": {}},
        ],
        "companies": [{"id": 1, "name": "Zürich Atelier", "external_id": "R002",
                       "locations": [{"id": 7, "name": "Zürich Atelier – Zurich"}],
                       "contacts": [{"id": 3, "customer_id": 2}]}],
        "orders": list(shopify_orders),
        "lnb": {"orders": lnb_orders},
    })


# --- running the flow ---------------------------------------------------------------------------

def _lenewblack(sandbox: Sandbox, retries: int = 3) -> LeNewBlackResource:
    return LeNewBlackResource(base_url=sandbox.lnb_base_url, client_id="sandbox-client",
                              client_secret="sandbox-secret", max_retries=retries)


def _resources(sandbox: Sandbox, tmp_path: Path, *, lnb_retries: int = 3, **settings: Any) -> dict[str, Any]:
    """Every resource the order run needs, built explicitly; ``settings`` go to ``OrderFlowSettings``."""
    return {
        "shopify": ShopifyResource(shop_url=sandbox.shopify_url, access_token="sandbox-token"),
        "lenewblack": _lenewblack(sandbox, lnb_retries),
        "inventory_settings": InventorySettings(task_log_dir=str(tmp_path)),
        "order_flow_settings": OrderFlowSettings(task_log_dir=str(tmp_path), **{"lookup_wait_seconds": 0, **settings}),
    }


def _selection(references: list[str]) -> dict[str, Any]:
    return {"ops": {"lnb_orders_for_export": {"config": {"references": references}}}}


def _export(sandbox: Sandbox, tmp_path: Path, references: list[str] | None = None, *, lnb_retries: int = 3,
            **settings: Any) -> dg.ExecuteInProcessResult:
    """One export run (with the Shopify variant read it depends on), orders from LNB's status or ``references``."""
    with dg.DagsterInstance.ephemeral() as instance:
        return dg.materialize(
            [*ORDER_ASSETS, *ORDER_CHECKS],
            resources=_resources(sandbox, tmp_path, lnb_retries=lnb_retries, **settings),
            run_config=_selection(references) if references is not None else None,
            instance=instance,
            raise_on_error=False,
        )


# --- reading results ----------------------------------------------------------------------------

def _graphql(sandbox: Sandbox, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    """Shopify's ``data``, asked as any API client would."""
    response = requests.post(f"{sandbox.shopify_url}/admin/api/2026-04/graphql.json", timeout=10,
                             headers={"X-Shopify-Access-Token": "sandbox-token"},
                             json={"query": query, "variables": variables or {}})
    response.raise_for_status()
    body = response.json()
    assert "errors" not in body, body["errors"]
    return body["data"]


def _in_shopify(sandbox: Sandbox, reference: str) -> list[dict[str, Any]]:
    """The Shopify orders carrying an LNB reference (``sourceIdentifier``), from the list of all orders."""
    found, after = [], None
    while True:
        page = _graphql(sandbox, ORDERS_QUERY, {"after": after})["orders"]
        found += [order for order in page["nodes"] if order["sourceIdentifier"] == reference]
        if not page["pageInfo"]["hasNextPage"]:
            return found
        after = page["pageInfo"]["endCursor"]


def _names_by_reference(sandbox: Sandbox) -> dict[str, list[str]]:
    """Every Shopify order's name under its LNB reference: what "exactly once" is asserted on."""
    names: dict[str, list[str]] = {}
    for order in _graphql(sandbox, ALL_ORDERS_QUERY)["orders"]["nodes"]:
        names.setdefault(order["sourceIdentifier"], []).append(order["name"])
    return names


def _lines(order: dict[str, Any]) -> list[tuple[str, int, Decimal, str]]:
    return [(line["variant"]["id"], line["quantity"], Decimal(line["originalUnitPriceSet"]["shopMoney"]["amount"]),
             line["originalUnitPriceSet"]["shopMoney"]["currencyCode"]) for line in order["lineItems"]["nodes"]]


def _stock(sandbox: Sandbox, variant_id: int) -> dict[str, int]:
    """A variant's available and committed units at the Paris warehouse."""
    level = _graphql(sandbox, STOCK_QUERY, {"id": f"gid://shopify/InventoryItem/{variant_id}"})["inventoryItem"]
    return {q["name"]: q["quantity"] for q in level["inventoryLevel"]["quantities"]}


def _lnb_token(sandbox: Sandbox) -> str:
    return requests.post(f"{sandbox.lnb_base_url}/auth/token", timeout=10, json={
        "grant_type": "client_credentials", "client_id": "sandbox-client", "client_secret": "sandbox-secret",
    }).json()["access_token"]


def _lnb_order_now(sandbox: Sandbox, reference: str) -> dict[str, Any]:
    response = requests.get(f"{sandbox.lnb_base_url}/orders/{reference}", timeout=10,
                            params={"access_token": _lnb_token(sandbox)})
    response.raise_for_status()
    return response.json()


def _lnb_statuses(sandbox: Sandbox, references: list[str]) -> dict[str, str]:
    """Each order's status as LNB's API gives it."""
    return {reference: _lnb_order_now(sandbox, reference)["status"] for reference in references}


def _set_lnb_status(sandbox: Sandbox, reference: str, status: str) -> None:
    """A status change made through LNB's API (as a sales rep's action would)."""
    requests.post(f"{sandbox.lnb_base_url}/orders/status", params={"access_token": _lnb_token(sandbox)},
                  json={"reference": reference, "status": status}, timeout=10).raise_for_status()


def _edit_lnb_order(sandbox: Sandbox, reference: str, changes: dict[str, Any]) -> None:
    """An edit made in LNB's back office: fields merged, ``update_time`` bumped."""
    requests.post(f"{sandbox.lnb.url}/_sandbox/orders/{reference}", json=changes, timeout=10).raise_for_status()


def _arm_fault(url: str, kind: str, match: str, count: int, **options: Any) -> None:
    requests.post(f"{url}/_sandbox/faults", json={"kind": kind, "match": match, "count": count, **options},
                  timeout=10).raise_for_status()


def _clear_faults(url: str) -> None:
    requests.delete(f"{url}/_sandbox/faults", timeout=10).raise_for_status()


def _stats(url: str) -> dict[str, Any]:
    return requests.get(f"{url}/_sandbox/stats", timeout=10).json()


def _failed_checks(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckSeverity]:
    return {e.check_name: e.severity for e in result.get_asset_check_evaluations() if not e.passed}


def _read_task_log(log_dir: Path, run_id: str) -> list[tuple[str | None, ...]]:
    """A run's export task log rows, from ``<task log dir>/<run id>/shopify_orders_from_lnb.csv``."""
    log = pl.read_csv(log_dir / run_id / "shopify_orders_from_lnb.csv", infer_schema=False)
    assert tuple(log.columns) == LOG_COLUMNS
    return log.rows()


def _task_log(result: dg.ExecuteInProcessResult, tmp_path: Path) -> list[tuple[str | None, ...]]:
    """The export's task log rows; the file must be where the metadata says, under the run's id."""
    assert asset_metadata(result, "shopify_orders_from_lnb")["task_log"] == \
        str(tmp_path / result.run_id / "shopify_orders_from_lnb.csv")
    return _read_task_log(tmp_path, result.run_id)


def _order_rows(rows: list[tuple[str | None, ...]]) -> dict[str, tuple[str | None, ...]]:
    """Per order: its task log outcome, Shopify order name and detail (order lines, not line rows)."""
    return {row[0]: (row[3], row[4], row[6]) for row in rows if row[2] is None}


def _outcomes(result: dg.ExecuteInProcessResult, tmp_path: Path) -> dict[str, tuple[str | None, ...]]:
    return _order_rows(_task_log(result, tmp_path))


def _rows(table: dg.TableMetadataValue) -> list[dict[str, Any]]:
    """A table's rows as the UI lists them."""
    return [record.data for record in table.records]


def _asset_table(result: dg.ExecuteInProcessResult, asset: str, name: str) -> list[dict[str, Any]]:
    return _rows(asset_metadata(result, asset)[name])


def _check_table(result: dg.ExecuteInProcessResult, check: str, name: str) -> list[dict[str, Any]]:
    return _rows(check_metadata(result, check)[name])


def _selection_materialization(result: dg.ExecuteInProcessResult) -> dg.AssetMaterialization:
    [materialization] = result.asset_materializations_for_node("lnb_orders_for_export")
    return materialization


ADMIN_PATHS = {"Order": "orders", "Customer": "customers", "Company": "companies"}


def _admin(sandbox: Sandbox, gid: str) -> str:
    """The sandbox shop's admin page of a Shopify record, as Shopify's admin addresses it."""
    kind, number = gid.split("/")[-2:]
    return f"{sandbox.shopify_url}/admin/{ADMIN_PATHS[kind]}/{number}"


CLAIRE = "gid://shopify/Customer/1"
"""Claire's customer: R001, Boutique Lumière."""


def _blocked_row(sandbox: Sandbox, reference: str, reasons: list[str], *, retailer: str | None = "Boutique Lumière",
                 retailer_reference: str | None = "R001", customer: str | None = CLAIRE) -> dict[str, Any]:
    """A ``blocked_orders`` row: reasons one per line (the UI shows ``a; b``), the matched customer's admin link."""
    return {"order_reference": reference, "retailer": retailer, "retailer_reference": retailer_reference,
            "reasons": ";\n".join(reasons), "shopify_customer": _admin(sandbox, customer) if customer else None}


# --- the demo -----------------------------------------------------------------------------------

DEMO = demo_scenario()
DEMO_ORDERS = {order["reference"]: order for order in DEMO["lnb"]["orders"]}
DEMO_CONFIRMED = [ref for ref, order in DEMO_ORDERS.items() if order["status"] == "confirmed"]
DEMO_EXPORTABLE = [*DEMO_CASES["order_valid"], *DEMO_CASES["order_line_sku_only"],
                   *DEMO_CASES["order_line_upc_barcode"]]
DEMO_BLOCKED = {
    "LNB-0006": ["no Shopify customer with lenewblack.retailer_reference = R1013"],
    "LNB-0007": ["line 2: no EAN13 and no SKU"],
    "LNB-0008": ["line 5: no Shopify variant for EAN13 3760900000001 or SKU VB24-BLK-M"],
    "LNB-0009": ["line 4: more than one Shopify variant for EAN13 3760000010337 "
                 "(gid://shopify/ProductVariant/1033, gid://shopify/ProductVariant/1217)"],
    "LNB-0010": ["retailer reference missing"],
    "LNB-0011": ["retailer reference missing"],
    "LNB-0012": ["no Shopify customer with lenewblack.retailer_reference = R9001"],
    "LNB-0013": ["line 3: invalid quantity 0: must be a whole number >= 1"],
    "LNB-0014": ["order has no lines"],
    "LNB-0015": ["currency not accepted: USD (accepted: EUR)"],
}
"""Every demo order the rules block, with its reasons (DEMO_CASES says which case each one is)."""
DEMO_BLOCKED_LINES = [
    {"order_reference": "LNB-0007", "retailer": "Stockholm Edit", "line": 2, "item": "Denim Trousers (Pink, 36)",
     "ean13": None, "sku": None, "reason": "no EAN13 and no SKU"},
    {"order_reference": "LNB-0008", "retailer": "Marylebone Goods", "line": 5, "item": "Velvet Blazer FW24 (Black, M)",
     "ean13": "3760900000001", "sku": "VB24-BLK-M",
     "reason": "no Shopify variant for EAN13 3760900000001 or SKU VB24-BLK-M"},
    {"order_reference": "LNB-0009", "retailer": "Le Comptoir Lyonnais", "line": 4, "item": "Silk Cardigan (Ecru, XXL)",
     "ean13": "3760000010337", "sku": "SC-ECR-XXL", "reason": DEMO_BLOCKED["LNB-0009"][0].removeprefix("line 4: ")},
]
"""The demo's blocked lines as the line checks list them: the retailer and LNB's item name beside each."""
DEMO_CHECK_TABLES = {
    ("order_lines_have_codes", "blocked_lines"): ["LNB-0007"],
    ("order_lines_match_shopify_variants", "blocked_lines"): ["LNB-0008", "LNB-0009"],
    ("retailer_references_valid", "blocked_orders"): ["LNB-0006", "LNB-0010", "LNB-0011", "LNB-0012"],
    ("no_order_blocked", "blocked_orders"): list(DEMO_BLOCKED),
}
"""What the rule checks list of the demo (blocked orders by reference). Quantity, empty-order and currency
reasons have no check of their own: they are in ``no_order_blocked``, the selection's ``blocked_orders``
and the task log."""
DEMO_CHECK_DESCRIPTIONS = {
    "order_lines_have_codes": "1 order blocked now by 1 line without EAN13 or SKU: Stockholm Edit (LNB-0007).",
    "order_lines_match_shopify_variants": "2 orders blocked now by 2 lines matching no, or several, Shopify "
                                          "variants: Marylebone Goods (LNB-0008), Le Comptoir Lyonnais (LNB-0009).",
    "retailer_references_valid": "4 orders blocked now by their retailer reference: Zürich Atelier (LNB-0006), "
                                 "Pop-up Marais (LNB-0010), Porto Linho (LNB-0011) and 1 more.",
    "no_order_blocked": "10 orders blocked now, kept in their LNB status until fixed: Zürich Atelier (LNB-0006), "
                        "Stockholm Edit (LNB-0007), Marylebone Goods (LNB-0008) and 7 more.",
}
"""A failed check says how many orders and names the first few by retailer, where the UI shows it."""


def _demo_variant(item: dict[str, Any]) -> str:
    """The demo variant an LNB line names: its EAN13 as Shopify's barcode would read, else its SKU."""
    variants = [variant for product in DEMO["products"] for variant in product["variants"]]
    matches = [v for v in variants if item["ean13"] and lnb_ean13(v["barcode"]) == item["ean13"]] \
        or [v for v in variants if v["sku"] == item["sku"]]
    [variant] = matches
    return f"gid://shopify/ProductVariant/{variant['id']}"


def _demo_customer(retailer_reference: str) -> str:
    [customer] = [c for c in DEMO["customers"] if c["metafields"].get(METAFIELD) == retailer_reference]
    return f"gid://shopify/Customer/{customer['id']}"


def _demo_blocked_row(sandbox: Sandbox, reference: str) -> dict[str, Any]:
    """A blocked demo order as ``blocked_orders`` lists it: its retailer by LNB's name, the admin link of
    the customer its reference matched (none for an unknown or missing reference)."""
    order = DEMO_ORDERS[reference]
    retailer_reference = (order["retailer_reference"] or "").strip() or None
    customers = [c for c in DEMO["customers"]
                 if retailer_reference and c["metafields"].get(METAFIELD) == retailer_reference]
    return _blocked_row(sandbox, reference, DEMO_BLOCKED[reference], retailer=order["retailer_name"],
                        retailer_reference=retailer_reference,
                        customer=f"gid://shopify/Customer/{customers[0]['id']}" if customers else None)


def test_demo_exports_each_exportable_order_once_and_blocks_the_rest_with_every_reason(
        sandbox: Sandbox, tmp_path: Path) -> None:
    """The demo holds every case the rules are about: five orders go out, ten wait with their reasons."""
    assert sorted(DEMO_EXPORTABLE + list(DEMO_BLOCKED)) == DEMO_CONFIRMED

    result = _export(sandbox, tmp_path)

    assert result.success
    assert _names_by_reference(sandbox) == {ref: [f"#{1001 + n}"] for n, ref in enumerate(DEMO_EXPORTABLE)}
    shopify_ids = {}
    for reference in DEMO_EXPORTABLE:
        lnb = DEMO_ORDERS[reference]
        [order] = _in_shopify(sandbox, reference)
        shopify_ids[reference] = order["id"]
        assert {name: order[name] for name in ("sourceIdentifier", "poNumber", "sourceName", "tags", "note",
                                               "email", "currencyCode", "displayFinancialStatus")} == {
            "sourceIdentifier": reference, "poNumber": lnb["purchase_order_reference"], "sourceName": "lenewblack",
            "tags": sorted(["lenewblack", "wholesale", f"lnb-hash:{order_content_hash(lnb)}"]),
            "note": lnb["comment"], "email": lnb["buyer_email"], "currencyCode": "EUR",
            "displayFinancialStatus": "PENDING",
        }
        assert order["customer"] == {"id": _demo_customer(lnb["retailer_reference"])}
        assert _lines(order) == [(_demo_variant(item), item["quantity"], Decimal(str(item["unit_price"])), "EUR")
                                 for item in lnb["items"]]
    [first] = _in_shopify(sandbox, "LNB-0001")
    assert first["shippingAddress"] == first["billingAddress"] == {
        "address1": "12 rue de Bretagne", "address2": None, "city": "Paris", "company": "Boutique Lumière",
        "countryCodeV2": "FR", "firstName": "Claire", "lastName": "Martin", "phone": "+33 100007919",
        "zip": "75003"}
    assert _lnb_statuses(sandbox, DEMO_CONFIRMED) == {
        **dict.fromkeys(DEMO_EXPORTABLE, "invoicing"), **dict.fromkeys(DEMO_BLOCKED, "confirmed")}

    selection = asset_metadata(result, "lnb_orders_for_export")
    assert {name: selection[name] for name in ("selection", "orders_in_export_status", "orders_blocked_now",
                                               "orders_selected", "orders_exportable", "orders_skipped")} == {
        "selection": "every order in LNB status confirmed", "orders_in_export_status": 15, "orders_blocked_now": 10,
        "orders_selected": 15, "orders_exportable": 5, "orders_skipped": 0}
    blocked_rows = [_demo_blocked_row(sandbox, reference) for reference in DEMO_BLOCKED]
    assert _rows(selection["blocked_orders"]) == blocked_rows
    assert [(row["order_reference"], row["retailer"]) for row in blocked_rows[:2]] == [
        ("LNB-0006", "Zürich Atelier"), ("LNB-0007", "Stockholm Edit")]
    assert [column.type for column in selection["blocked_orders"].schema.columns] == ["string"] * 5
    assert "blocked_orders_not_listed" not in selection
    assert selection["task_log"] == str(tmp_path / result.run_id / "lnb_orders_for_export.csv")
    assert not [name for name, value in selection.items() if isinstance(value, list | dict)], "no raw JSON"
    assert _outcomes(result, tmp_path) == {
        **{ref: (CREATED, f"#{1001 + n}", None) for n, ref in enumerate(DEMO_EXPORTABLE)},
        **{ref: ("blocked", None, "; ".join(reasons)) for ref, reasons in DEMO_BLOCKED.items()}}
    assert _failed_checks(result) == dict.fromkeys(DEMO_CHECK_DESCRIPTIONS, dg.AssetCheckSeverity.ERROR)
    assert {name: check_evaluation(result, name).description for name in DEMO_CHECK_DESCRIPTIONS} == \
        DEMO_CHECK_DESCRIPTIONS
    assert {key: [row["order_reference"] for row in _check_table(result, *key)] for key in DEMO_CHECK_TABLES} == \
        DEMO_CHECK_TABLES
    assert _check_table(result, "order_lines_have_codes", "blocked_lines") + _check_table(
        result, "order_lines_match_shopify_variants", "blocked_lines") == DEMO_BLOCKED_LINES
    assert _check_table(result, "no_order_blocked", "blocked_orders") == blocked_rows
    assert check_metadata(result, "no_order_blocked")["orders_blocked_now"] == 10
    export = asset_metadata(result, "shopify_orders_from_lnb")
    assert {name: export[name] for name in ("orders_to_export", "orders_exported", "orders_created",
                                            "orders_found_again", "orders_rejected", "orders_failed",
                                            "orders_duplicated_in_shopify")} == {
        "orders_to_export": 5, "orders_exported": 5, "orders_created": 5, "orders_found_again": 0,
        "orders_rejected": 0, "orders_failed": 0, "orders_duplicated_in_shopify": 0}
    assert _rows(export["sent_to_shopify"]) == [
        {"order_reference": ref, "retailer": DEMO_ORDERS[ref]["retailer_name"], "outcome": CREATED,
         "shopify_order": f"#{1001 + n}", "shopify_order_link": _admin(sandbox, shopify_ids[ref]),
         "shopify_customer": _admin(sandbox, _demo_customer(DEMO_ORDERS[ref]["retailer_reference"])), "detail": None}
        for n, ref in enumerate(DEMO_EXPORTABLE)]

    again = _export(sandbox, tmp_path)

    assert again.success
    assert _names_by_reference(sandbox) == {ref: [f"#{1001 + n}"] for n, ref in enumerate(DEMO_EXPORTABLE)}
    assert _stats(sandbox.shopify.url)["requests"]["orderCreate"] == 5
    assert {ref: outcome for ref, (outcome, _, _) in _outcomes(again, tmp_path).items()} == \
        dict.fromkeys(DEMO_BLOCKED, "blocked")


# --- each rule, through a real run --------------------------------------------------------------

@pytest.mark.parametrize(("changes", "reasons", "failing_checks"), [
    pytest.param({"retailer_reference": None}, ["retailer reference missing"], ("retailer_references_valid",),
                 id="retailer-reference-missing"),
    pytest.param({"retailer_reference": ""}, ["retailer reference missing"], ("retailer_references_valid",),
                 id="retailer-reference-empty"),
    pytest.param({"retailer_reference": "   "}, ["retailer reference missing"], ("retailer_references_valid",),
                 id="retailer-reference-blank"),
    pytest.param({"retailer_reference": "R9001"}, ["no Shopify customer with lenewblack.retailer_reference = R9001"],
                 ("retailer_references_valid",), id="retailer-reference-unmatched"),
    pytest.param({"items": [CLEAN_LINE, _item(None, " ", 1)]}, ["line 2: no EAN13 and no SKU"],
                 ("order_lines_have_codes",), id="line-without-codes"),
    pytest.param({"items": [_item(EAN_UNKNOWN, "TS-GRN-M", 1)]},
                 [f"line 1: no Shopify variant for EAN13 {EAN_UNKNOWN} or SKU TS-GRN-M"],
                 ("order_lines_match_shopify_variants",), id="unknown-code"),
    pytest.param({"items": [_item(EAN_SHARED, None, 1)]},
                 [f"line 1: more than one Shopify variant for EAN13 {EAN_SHARED} ({SHARED_VARIANTS})"],
                 ("order_lines_match_shopify_variants",), id="code-of-two-variants"),
    pytest.param({"items": [_item(EAN_2, "TS-BLU-L", 0)]}, ["line 1: invalid quantity 0: must be a whole number >= 1"],
                 (), id="quantity-zero"),
    pytest.param({"items": []}, ["order has no lines"], (), id="no-lines"),
    pytest.param({"currency": "USD"}, ["currency not accepted: USD (accepted: EUR)"], (), id="usd"),
    pytest.param({"retailer_reference": None, "currency": "USD",
                  "items": [_item(EAN_1, None, 0), _item(None, None, 1)]},
                 ["retailer reference missing", "currency not accepted: USD (accepted: EUR)",
                  "line 1: invalid quantity 0: must be a whole number >= 1", "line 2: no EAN13 and no SKU"],
                 ("order_lines_have_codes", "retailer_references_valid"), id="every-reason-at-once"),
])
def test_each_rule_blocks_its_order_in_lnb_and_lets_the_others_go(
        sandbox: Sandbox, tmp_path: Path, changes: dict[str, Any], reasons: list[str],
        failing_checks: tuple[str, ...]) -> None:
    """A blocked order must reach neither Shopify nor the exported status, and must not hold up the others."""
    _load(sandbox, [_lnb_order("LNB-0001"), _lnb_order("LNB-0002", **changes)])

    result = _export(sandbox, tmp_path)

    assert result.success
    assert _names_by_reference(sandbox) == {"LNB-0001": ["#1001"]}
    assert _lnb_statuses(sandbox, ["LNB-0001", "LNB-0002"]) == {"LNB-0001": "invoicing", "LNB-0002": "confirmed"}
    assert _outcomes(result, tmp_path) == {"LNB-0001": (CREATED, "#1001", None),
                                           "LNB-0002": ("blocked", None, "; ".join(reasons))}
    retailer_reference = (changes.get("retailer_reference", "R001") or "").strip() or None
    row = _blocked_row(sandbox, "LNB-0002", reasons, retailer_reference=retailer_reference,
                       customer=CLAIRE if retailer_reference == "R001" else None)
    assert _asset_table(result, "lnb_orders_for_export", "blocked_orders") == [row]
    assert blocked_orders_in(_selection_materialization(result)) == [
        {"reference": "LNB-0002", "retailer": "Boutique Lumière", "reasons": reasons}]
    assert _failed_checks(result) == dict.fromkeys((*failing_checks, "no_order_blocked"), dg.AssetCheckSeverity.ERROR)
    assert _check_table(result, "no_order_blocked", "blocked_orders") == [row]
    for name in failing_checks:
        table = "blocked_lines" if name.startswith("order_lines") else "blocked_orders"
        assert check_metadata(result, name)["orders_blocked_now"] == 1
        assert [line["order_reference"] for line in _check_table(result, name, table)] == ["LNB-0002"]
        assert check_evaluation(result, name).description.endswith(": Boutique Lumière (LNB-0002).")


@pytest.mark.parametrize(("extra_currencies", "outcome"), [
    ("", "currency not accepted: USD (accepted: EUR)"),
    ("USD", "no exchange rate for USD: Shopify needs each price in the shop currency EUR too; give one in "
            "SHOPIFY_ORDER_CURRENCIES as USD:<rate>"),
    ("USD:0.92", CREATED),
])
def test_a_currency_besides_the_shops_goes_out_only_when_the_brand_accepts_it(
        sandbox: Sandbox, tmp_path: Path, extra_currencies: str, outcome: str) -> None:
    """The shop taking USD is not enough: the brand declares which currencies it sells wholesale in, and
    at which rate, since Shopify keeps the shop currency as the order's and USD as its presentment currency."""
    _load(sandbox, [_lnb_order("LNB-0001", currency="USD")], currencies=["USD"])

    result = _export(sandbox, tmp_path, extra_currencies=extra_currencies)

    assert result.success
    if outcome == CREATED:
        assert _outcomes(result, tmp_path)["LNB-0001"][0] == CREATED
        [order] = _in_shopify(sandbox, "LNB-0001")
        assert (order["currencyCode"], order["presentmentCurrencyCode"]) == ("EUR", "USD")
        [line] = order["lineItems"]["nodes"]
        assert line["originalUnitPriceSet"] == {"shopMoney": {"amount": "24.67", "currencyCode": "EUR"},
                                                "presentmentMoney": {"amount": "26.82", "currencyCode": "USD"}}
        assert _lnb_statuses(sandbox, ["LNB-0001"]) == {"LNB-0001": "invoicing"}
    else:
        assert _outcomes(result, tmp_path)["LNB-0001"] == ("blocked", None, outcome)
        assert blocked_orders_in(_selection_materialization(result)) == [
            {"reference": "LNB-0001", "retailer": "Boutique Lumière", "reasons": [outcome]}]
        assert _names_by_reference(sandbox) == {}
        assert _lnb_statuses(sandbox, ["LNB-0001"]) == {"LNB-0001": "confirmed"}


def test_a_blocked_order_goes_out_by_itself_once_fixed_in_lnb(sandbox: Sandbox, tmp_path: Path) -> None:
    """Keeping the export status is what lets a fixed order leave on the next run, with nobody re-selecting it."""
    _load(sandbox, [_lnb_order("LNB-0001"), _lnb_order("LNB-0002", items=[_item(EAN_2, "TS-BLU-L", 0)])])
    blocked = _export(sandbox, tmp_path)
    assert _outcomes(blocked, tmp_path)["LNB-0002"][0] == "blocked"

    _edit_lnb_order(sandbox, "LNB-0002", {"items": [_item(EAN_2, "TS-BLU-L", 3)]})
    fixed = _export(sandbox, tmp_path)

    assert fixed.success
    assert _outcomes(fixed, tmp_path) == {"LNB-0002": (CREATED, "#1002", None)}
    assert _names_by_reference(sandbox) == {"LNB-0001": ["#1001"], "LNB-0002": ["#1002"]}
    [order] = _in_shopify(sandbox, "LNB-0002")
    assert _lines(order) == [("gid://shopify/ProductVariant/12", 3, Decimal("26.82"), "EUR")]
    assert _lnb_statuses(sandbox, ["LNB-0001", "LNB-0002"]) == {"LNB-0001": "invoicing", "LNB-0002": "invoicing"}


@pytest.mark.parametrize(("inventory_behaviour", "stock"), [
    ("BYPASS", {"available": 20, "committed": 0}),
    (None, {"available": 18, "committed": 2}),
])
def test_the_deployed_job_follows_the_settings_from_the_environment(
        sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, inventory_behaviour: str | None,
        stock: dict[str, int]) -> None:
    """How a deployment configures the flow: statuses, tags and financial status by variable; by
    default the ordered units leave Shopify's available stock, with BYPASS they stay."""
    lnb_orders = [_lnb_order("LNB-0001", status="open_for_brand"), _lnb_order("LNB-0002")]
    _load(sandbox, lnb_orders)
    settings = {"LNB_TASK_LOG_DIR": str(tmp_path), "SHOPIFY_ORDER_LOOKUP_WAIT_SECONDS": "0",
                "LNB_ORDER_EXPORT_STATUS": "open_for_brand", "LNB_ORDER_EXPORTED_STATUS": "confirmed",
                "SHOPIFY_ORDER_TAGS": "wholesale, SS26", "SHOPIFY_ORDER_FINANCIAL_STATUS": "PAID"}
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    if inventory_behaviour:
        monkeypatch.setenv("SHOPIFY_ORDER_INVENTORY_BEHAVIOUR", inventory_behaviour)
    else:
        monkeypatch.delenv("SHOPIFY_ORDER_INVENTORY_BEHAVIOUR", raising=False)

    with dg.DagsterInstance.ephemeral() as instance:
        assert dg.materialize([shopify_locations, shopify_inventory_levels], instance=instance,
                              resources=_resources(sandbox, tmp_path)).success
        result = defs().resolve_job_def("orders_export").execute_in_process(instance=instance, raise_on_error=False)

    assert result.success
    assert _names_by_reference(sandbox) == {"LNB-0001": ["#1001"]}
    [order] = _in_shopify(sandbox, "LNB-0001")
    assert (order["tags"], order["displayFinancialStatus"]) == (
        sorted(["SS26", "wholesale", f"lnb-hash:{order_content_hash(lnb_orders[0])}"]), "PAID")
    assert _lnb_statuses(sandbox, ["LNB-0001", "LNB-0002"]) == {"LNB-0001": "confirmed", "LNB-0002": "confirmed"}
    assert _stock(sandbox, 11) == stock


# --- selection, buyers --------------------------------------------------------------------------

def test_explicit_selection_exports_only_the_listed_orders_and_never_canceled_or_exported_ones(
        sandbox: Sandbox, tmp_path: Path) -> None:
    """The launchpad's "export these orders": a listed order goes whatever its open status, but
    a canceled or already exported one never does, and an unknown reference is reported."""
    _load(sandbox, [
        _lnb_order("LNB-0001"),
        _lnb_order("LNB-0002"),
        _lnb_order("LNB-0003", status="canceled"),
        _lnb_order("LNB-0004", status="invoicing"),
        _lnb_order("LNB-0005", status="open_for_brand"),
    ])

    result = _export(sandbox, tmp_path, ["LNB-0005", "LNB-0003", "LNB-0004", "LNB-9999", "LNB-0001", "LNB-0005"])

    assert result.success
    assert _names_by_reference(sandbox) == {"LNB-0005": ["#1001"], "LNB-0001": ["#1002"]}
    assert _lnb_statuses(sandbox, ["LNB-0001", "LNB-0002", "LNB-0003", "LNB-0004", "LNB-0005"]) == {
        "LNB-0001": "invoicing", "LNB-0002": "confirmed", "LNB-0003": "canceled", "LNB-0004": "invoicing",
        "LNB-0005": "invoicing"}
    assert _outcomes(result, tmp_path) == {
        "LNB-0001": (CREATED, "#1002", None),
        "LNB-0003": ("skipped", None, "canceled"),
        "LNB-0004": ("skipped", None, "already exported (status invoicing)"),
        "LNB-0005": (CREATED, "#1001", None),
        "LNB-9999": ("skipped", None, "no such order in LNB"),
    }
    selection = asset_metadata(result, "lnb_orders_for_export")
    assert {name: selection[name] for name in ("selection", "orders_selected", "orders_skipped")} == {
        "selection": "the 5 orders a person listed in the run config", "orders_selected": 2, "orders_skipped": 3}
    assert _rows(selection["skipped_orders"]) == [
        {"order_reference": "LNB-0003", "retailer": "Boutique Lumière", "reason": "canceled"},
        {"order_reference": "LNB-0004", "retailer": "Boutique Lumière",
         "reason": "already exported (status invoicing)"},
        {"order_reference": "LNB-9999", "retailer": None, "reason": "no such order in LNB"}]


def test_a_run_for_one_listed_order_still_reports_every_order_blocked_now(sandbox: Sandbox, tmp_path: Path) -> None:
    """State, not runs: a run for one fixed order must not make the report say "all clear" while
    others are stuck in the export status; once one is fixed, exactly the others remain."""
    bad_line = [_item(EAN_2, "TS-BLU-L", 0)]
    _load(sandbox, [_lnb_order("LNB-0001"), _lnb_order("LNB-0002", items=bad_line),
                    _lnb_order("LNB-0003", retailer_reference="R9001")])

    one = _export(sandbox, tmp_path, ["LNB-0001"])

    assert one.success
    assert _names_by_reference(sandbox) == {"LNB-0001": ["#1001"]}
    assert not check_evaluation(one, "no_order_blocked").passed
    assert check_evaluation(one, "no_order_blocked").description == (
        "2 orders blocked now, kept in their LNB status until fixed: Boutique Lumière (LNB-0002), "
        "Boutique Lumière (LNB-0003).")
    assert check_metadata(one, "no_order_blocked")["orders_blocked_now"] == 2
    assert check_metadata(one, "retailer_references_valid")["orders_blocked_now"] == 1
    selection = asset_metadata(one, "lnb_orders_for_export")
    assert (selection["selection"], selection["orders_selected"], selection["orders_in_export_status"],
            selection["orders_blocked_now"]) == ("the 1 order a person listed in the run config", 1, 3, 2)
    assert _rows(selection["blocked_orders"]) == [
        _blocked_row(sandbox, "LNB-0002", ["line 1: invalid quantity 0: must be a whole number >= 1"]),
        _blocked_row(sandbox, "LNB-0003", ["no Shopify customer with lenewblack.retailer_reference = R9001"],
                     retailer_reference="R9001", customer=None)]
    assert [order["reference"] for order in blocked_orders_in(_selection_materialization(one))] == [
        "LNB-0002", "LNB-0003"]
    assert selection["task_log"] == str(tmp_path / one.run_id / "lnb_orders_for_export.csv")
    assert pl.read_csv(selection["task_log"], infer_schema=False).rows() == [
        ("LNB-0001", "Boutique Lumière", "R001", "true", None, "exportable", None),
        ("LNB-0002", "Boutique Lumière", "R001", "false", None, "blocked",
         "line 1: invalid quantity 0: must be a whole number >= 1"),
        ("LNB-0002", "Boutique Lumière", "R001", "false", "1", "line blocked",
         "invalid quantity 0: must be a whole number >= 1"),
        ("LNB-0003", "Boutique Lumière", "R9001", "false", None, "blocked",
         "no Shopify customer with lenewblack.retailer_reference = R9001")]

    _edit_lnb_order(sandbox, "LNB-0002", {"items": [_item(EAN_2, "TS-BLU-L", 1)]})
    fixed = _export(sandbox, tmp_path, ["LNB-0002"])

    assert _names_by_reference(sandbox) == {"LNB-0001": ["#1001"], "LNB-0002": ["#1002"]}
    assert check_metadata(fixed, "no_order_blocked")["orders_blocked_now"] == 1
    assert [row["order_reference"] for row in _asset_table(fixed, "lnb_orders_for_export", "blocked_orders")] == [
        "LNB-0003"]


def test_more_blocked_orders_than_the_ui_lists_keep_their_count_and_the_rest_is_in_the_task_log(
        sandbox: Sandbox, tmp_path: Path) -> None:
    """Past the bound, the table lists the first orders by reference, the count beside it stays whole,
    and the metadata says where the others are."""
    total = TABLE_ROWS + 3
    references = [f"LNB-{n:04d}" for n in range(1, total + 1)]
    _load(sandbox, [_lnb_order(reference, items=[_item(EAN_2, "TS-BLU-L", 0)]) for reference in references])

    result = _export(sandbox, tmp_path)

    assert result.success
    selection = asset_metadata(result, "lnb_orders_for_export")
    task_log = str(tmp_path / result.run_id / "lnb_orders_for_export.csv")
    assert (selection["orders_in_export_status"], selection["orders_blocked_now"]) == (total, total)
    assert [row["order_reference"] for row in _rows(selection["blocked_orders"])] == references[:TABLE_ROWS]
    assert selection["blocked_orders_not_listed"] == f"3 more rows, in the task log {task_log}"
    logged = pl.read_csv(task_log, infer_schema=False).filter(pl.col("outcome") == "blocked")
    assert logged["reference"].to_list() == references
    assert check_metadata(result, "no_order_blocked")["orders_blocked_now"] == total
    assert len(_check_table(result, "no_order_blocked", "blocked_orders")) == TABLE_ROWS
    assert check_evaluation(result, "no_order_blocked").description.endswith(
        f"Boutique Lumière (LNB-0003) and {total - 3} more.")


@pytest.mark.parametrize("plan", ["plus", "standard"])
def test_company_match_orders_for_the_company_location_where_shopify_allows_b2b(
        sandbox: Sandbox, tmp_path: Path, plan: str) -> None:
    """B2B retailers are companies, not customers; only Shopify Plus takes orders for a company location."""
    _load(sandbox, [_lnb_order("LNB-0001", retailer_reference="R002", retailer_name="Zürich Atelier"),
                    _lnb_order("LNB-0002")])
    requests.post(f"{sandbox.shopify.url}/_sandbox/config", json={"plan": plan}, timeout=10).raise_for_status()

    result = _export(sandbox, tmp_path, customer_match="company")

    assert result.success
    outcomes = _outcomes(result, tmp_path)
    assert outcomes["LNB-0002"] == ("blocked", None, "no Shopify company with external ID R001")
    if plan == "plus":
        assert outcomes["LNB-0001"] == (CREATED, "#1001", None)
        [order] = _in_shopify(sandbox, "LNB-0001")
        assert order["purchasingEntity"] == {"__typename": "PurchasingCompany",
                                             "company": {"id": "gid://shopify/Company/1"},
                                             "location": {"id": ZURICH_LOCATION}}
        assert order["customer"] == {"id": "gid://shopify/Customer/2"}
        [sent] = _asset_table(result, "shopify_orders_from_lnb", "sent_to_shopify")
        assert (sent["retailer"], sent["shopify_order_link"], sent["shopify_customer"]) == (
            "Zürich Atelier", _admin(sandbox, order["id"]), _admin(sandbox, "gid://shopify/Company/1"))
        assert _lnb_statuses(sandbox, ["LNB-0001", "LNB-0002"]) == {"LNB-0001": "invoicing", "LNB-0002": "confirmed"}
    else:
        assert outcomes["LNB-0001"] == (
            REJECTED, None, "order.companyLocationId: B2B orders (companyLocationId) need Shopify Plus. (INVALID)")
        assert asset_metadata(result, "shopify_orders_from_lnb")["orders_rejected"] == 1
        assert _failed_checks(result)["no_order_rejected_by_shopify"] == dg.AssetCheckSeverity.ERROR
        assert check_evaluation(result, "no_order_rejected_by_shopify").description == (
            "1 order rejected by Shopify (kept in their LNB status): Zürich Atelier (LNB-0001).")
        assert _check_table(result, "no_order_rejected_by_shopify", "rejected_orders") == [
            {"order_reference": "LNB-0001", "retailer": "Zürich Atelier",
             "detail": "order.companyLocationId: B2B orders (companyLocationId) need Shopify Plus. (INVALID)"}]
        assert _names_by_reference(sandbox) == {}
        assert _lnb_statuses(sandbox, ["LNB-0001", "LNB-0002"]) == {"LNB-0001": "confirmed", "LNB-0002": "confirmed"}


# --- exactly once -------------------------------------------------------------------------------

@pytest.mark.parametrize(("kind", "attempts"), [("http_500", 1), ("drop", 2)])
def test_a_crash_between_the_shopify_create_and_the_lnb_update_never_creates_a_second_order(
        sandbox: Sandbox, tmp_path: Path, kind: str, attempts: int) -> None:
    """LNB's status change fails after Shopify created the orders (a 500 is not repeated; a dropped
    connection is, until the client's two attempts are spent): the next run only finishes LNB."""
    _load(sandbox, [_lnb_order("LNB-0001"), _lnb_order("LNB-0002")])
    _arm_fault(sandbox.lnb.url, kind, "/orders/status", 10)

    crashed = _export(sandbox, tmp_path, lnb_retries=1)

    assert _names_by_reference(sandbox) == {"LNB-0001": ["#1001"], "LNB-0002": ["#1002"]}
    assert _lnb_statuses(sandbox, ["LNB-0001", "LNB-0002"]) == {"LNB-0001": "confirmed", "LNB-0002": "confirmed"}
    assert _stats(sandbox.lnb.url)["requests"]["POST /orders/status"] == 2 * attempts
    outcomes = _outcomes(crashed, tmp_path)
    assert {ref: outcome[:2] for ref, outcome in outcomes.items()} == {"LNB-0001": (FAILED, "#1001"),
                                                                       "LNB-0002": (FAILED, "#1002")}
    assert outcomes["LNB-0001"][2].startswith("in Shopify but the LNB status change failed (")
    assert outcomes["LNB-0001"][2].endswith("); the next run finishes it without creating again")
    assert _failed_checks(crashed) == {"no_export_failures": dg.AssetCheckSeverity.ERROR}
    assert check_metadata(crashed, "no_export_failures")["orders_failed"] == 2
    assert [(row["order_reference"], row["retailer"], row["shopify_order_link"])
            for row in _check_table(crashed, "no_export_failures", "failed_orders")] == [
        (ref, "Boutique Lumière", _admin(sandbox, _in_shopify(sandbox, ref)[0]["id"]))
        for ref in ("LNB-0001", "LNB-0002")]

    _clear_faults(sandbox.lnb.url)
    recovered = _export(sandbox, tmp_path)

    assert recovered.success
    assert _names_by_reference(sandbox) == {"LNB-0001": ["#1001"], "LNB-0002": ["#1002"]}
    assert _stats(sandbox.shopify.url)["requests"]["orderCreate"] == 2
    assert _outcomes(recovered, tmp_path) == {"LNB-0001": (ALREADY, "#1001", None),
                                              "LNB-0002": (ALREADY, "#1002", None)}
    export = asset_metadata(recovered, "shopify_orders_from_lnb")
    assert (export["orders_exported"], export["orders_created"], export["orders_found_again"]) == (2, 0, 2)
    assert _lnb_statuses(sandbox, ["LNB-0001", "LNB-0002"]) == {"LNB-0001": "invoicing", "LNB-0002": "invoicing"}
    assert _failed_checks(recovered) == {}


@pytest.mark.parametrize(("kind", "creates", "first_name", "first_detail"), [
    pytest.param("lost_ack", 2, "#1001", "Shopify's answer to the create was lost; found by its reference",
                 id="lost_ack"),
    pytest.param("http_503", 3, "#1002", None, id="http_503"),
    pytest.param("drop", 3, "#1002", None, id="drop"),
])
def test_a_create_without_an_answer_is_looked_up_before_it_is_sent_again(
        sandbox: Sandbox, tmp_path: Path, kind: str, creates: int, first_name: str, first_detail: str | None) -> None:
    """Whether Shopify applied LNB-0001's create (lost acknowledgement: found by the look-up) or not
    (503, dropped connection: created again after LNB-0002), each order is in Shopify exactly once."""
    _load(sandbox, [_lnb_order("LNB-0001"), _lnb_order("LNB-0002")])
    _arm_fault(sandbox.shopify.url, kind, "orderCreate", 1)

    result = _export(sandbox, tmp_path)

    assert result.success
    second_name = "#1002" if first_name == "#1001" else "#1001"
    assert _names_by_reference(sandbox) == {"LNB-0001": [first_name], "LNB-0002": [second_name]}
    assert _outcomes(result, tmp_path) == {"LNB-0001": (CREATED, first_name, first_detail),
                                           "LNB-0002": (CREATED, second_name, None)}
    stats = _stats(sandbox.shopify.url)
    assert (stats["requests"]["orderCreate"], stats["faults_injected"]) == (creates, {kind: 1})
    assert _lnb_statuses(sandbox, ["LNB-0001", "LNB-0002"]) == {"LNB-0001": "invoicing", "LNB-0002": "invoicing"}
    assert _failed_checks(result) == {}


def test_two_shopify_orders_with_one_reference_are_an_error_and_lnb_is_left_alone(
        sandbox: Sandbox, tmp_path: Path) -> None:
    """Someone duplicated the order in Shopify: which one ships is a human decision, so nothing moves."""
    duplicates = [{"id": number, "name": f"#{number}", "source_identifier": "LNB-0001", "source_name": "lenewblack",
                   "customer_id": 1, "line_items": [{"variant_id": 11, "quantity": 2}]} for number in (9001, 9002)]
    _load(sandbox, [_lnb_order("LNB-0001"), _lnb_order("LNB-0002")], shopify_orders=duplicates)

    result = _export(sandbox, tmp_path)

    assert _names_by_reference(sandbox) == {"LNB-0001": ["#9001", "#9002"], "LNB-0002": ["#1003"]}
    assert _lnb_statuses(sandbox, ["LNB-0001", "LNB-0002"]) == {"LNB-0001": "confirmed", "LNB-0002": "invoicing"}
    assert _outcomes(result, tmp_path)["LNB-0001"] == (
        DUPLICATE, None,
        "2 Shopify orders (#9001, #9002) carry this reference: resolve in Shopify; LNB status left unchanged")
    assert _failed_checks(result) == {"every_exported_order_unique_in_shopify": dg.AssetCheckSeverity.ERROR}
    metadata = check_metadata(result, "every_exported_order_unique_in_shopify")
    assert {name: metadata[name] for name in ("orders_checked", "orders_not_unique", "checked_by")} == {
        "orders_checked": 2, "orders_not_unique": 1, "checked_by": "custom id lenewblack.order_reference (exact)"}
    assert _rows(metadata["not_unique_orders"]) == [
        {"order_reference": "LNB-0001", "retailer": "Boutique Lumière", "shopify_orders": 2, "names": "#9001, #9002",
         "problem": "several Shopify orders carry this reference"}]
    assert [column.type for column in metadata["not_unique_orders"].schema.columns] == [
        "string", "string", "int", "string", "string"]
    assert check_evaluation(result, "every_exported_order_unique_in_shopify").description == (
        "1 order not in Shopify exactly once (resolve in Shopify): Boutique Lumière (LNB-0001).")
    assert not result.success, "a duplicate in Shopify fails the run, so the failure alert goes out"


QUOTED_REFERENCES = ["'LNB-0007'", 'LNB "0008"', "LNB\\0009"]
"""References Shopify's search syntax must escape: wrapped in single quotes, a double quote, a backslash
(in LNB's list order)."""
WEAKER_MODE = "search on sourceIdentifier (weaker: no id definition lenewblack.order_reference)"


def _set_search_lag(sandbox: Sandbox, seconds: float) -> None:
    requests.post(f"{sandbox.shopify.url}/_sandbox/config", json={"order_search_lag_seconds": seconds},
                  timeout=10).raise_for_status()


@pytest.mark.parametrize("custom_id", [True, False], ids=["custom-id", "search-fallback"])
def test_references_with_quotes_and_backslashes_are_found_again_and_never_created_twice(
        sandbox: Sandbox, tmp_path: Path, custom_id: bool) -> None:
    """LNB's status change fails after the creates, so the next run must find each order by its
    reference, quotes and backslashes included, and only finish LNB. By custom id the next run may
    come at once; searching, it comes once the index has caught up (the weaker mode's known limit)."""
    _load(sandbox, [_lnb_order(reference) for reference in QUOTED_REFERENCES], order_custom_id=custom_id)
    _set_search_lag(sandbox, 1)
    _arm_fault(sandbox.lnb.url, "http_500", "/orders/status", 10)

    crashed = _export(sandbox, tmp_path, lnb_retries=0)

    assert {ref: outcome for ref, (outcome, _, _) in _outcomes(crashed, tmp_path).items()} == dict.fromkeys(
        QUOTED_REFERENCES, FAILED)
    assert asset_metadata(crashed, "shopify_orders_from_lnb")["exactly_once_by"] == (
        "custom id lenewblack.order_reference (exact)" if custom_id else WEAKER_MODE)
    _clear_faults(sandbox.lnb.url)
    if not custom_id:
        time.sleep(1.5)
    recovered = _export(sandbox, tmp_path)

    assert recovered.success
    assert {ref: outcome for ref, (outcome, _, _) in _outcomes(recovered, tmp_path).items()} == dict.fromkeys(
        QUOTED_REFERENCES, ALREADY)
    assert _names_by_reference(sandbox) == {ref: [f"#{1001 + n}"] for n, ref in enumerate(QUOTED_REFERENCES)}
    assert _stats(sandbox.shopify.url)["requests"]["orderCreate"] == 3
    assert _lnb_statuses(sandbox, QUOTED_REFERENCES) == dict.fromkeys(QUOTED_REFERENCES, "invoicing")


@pytest.mark.parametrize("custom_id", [True, False], ids=["custom-id", "search-fallback"])
def test_lost_acknowledgements_create_each_order_once_whatever_its_reference(
        sandbox: Sandbox, tmp_path: Path, custom_id: bool) -> None:
    """Shopify applies every create but each answer is lost: each order is found by its reference
    (searching, after the index caught up) and never sent a second time."""
    _load(sandbox, [_lnb_order(reference) for reference in QUOTED_REFERENCES], order_custom_id=custom_id)
    _set_search_lag(sandbox, 1)
    _arm_fault(sandbox.shopify.url, "lost_ack", "orderCreate", 3)

    result = _export(sandbox, tmp_path, lookup_wait_seconds=2)

    assert result.success
    assert _outcomes(result, tmp_path) == {
        ref: (CREATED, f"#{1001 + n}", "Shopify's answer to the create was lost; found by its reference")
        for n, ref in enumerate(QUOTED_REFERENCES)}
    assert _names_by_reference(sandbox) == {ref: [f"#{1001 + n}"] for n, ref in enumerate(QUOTED_REFERENCES)}
    assert _stats(sandbox.shopify.url)["requests"]["orderCreate"] == 3
    assert check_evaluation(result, "every_exported_order_unique_in_shopify").passed


def test_an_order_carrying_the_custom_id_is_found_and_not_created_again(sandbox: Sandbox, tmp_path: Path) -> None:
    """An order that already carries the reference as custom id (no sourceIdentifier: made by another
    tool) counts as exported; only LNB's status is finished."""
    _load(sandbox, [_lnb_order("LNB-0001")], shopify_orders=[{
        "id": 9001, "name": "#9001", "customer_id": 1, "line_items": [{"variant_id": 11, "quantity": 2}],
        "metafields": {"lenewblack.order_reference": "LNB-0001"},
    }])

    result = _export(sandbox, tmp_path)

    assert result.success
    assert _outcomes(result, tmp_path) == {"LNB-0001": (ALREADY, "#9001", None)}
    assert _stats(sandbox.shopify.url)["requests"].get("orderCreate", 0) == 0
    assert _lnb_statuses(sandbox, ["LNB-0001"]) == {"LNB-0001": "invoicing"}


def test_a_create_whose_custom_id_is_taken_finds_the_first_order_instead(sandbox: Sandbox, tmp_path: Path) -> None:
    """Between the look-up and the create another run made the order: Shopify refuses the second one
    (the custom id is unique), and the exporter finds the first instead of reporting a rejection."""
    _load(sandbox, [_lnb_order("LNB-0001")])
    exported = _export(sandbox, tmp_path)
    [first] = _in_shopify(sandbox, "LNB-0001")
    _set_lnb_status(sandbox, "LNB-0001", "confirmed")
    shopify = ShopifyResource(shop_url=sandbox.shopify_url, access_token="sandbox-token").get_client()
    lookup = OrderLookup.for_shop(shopify, "lenewblack.order_reference", logging.getLogger(__name__))
    assert exported.success
    stale = PendingOrder("LNB-0001", [], {
        "lineItems": [{"variantId": "gid://shopify/ProductVariant/11", "quantity": 2}],
        "customer": {"toAssociate": {"id": "gid://shopify/Customer/1"}}, "sourceIdentifier": "LNB-0001",
        "metafields": [{"namespace": "lenewblack", "key": "order_reference", "type": "id", "value": "LNB-0001"}]})
    exporter = OrderExporter(shopify, _lenewblack(sandbox).get_client(), OrderSettings(),
                             logging.getLogger(__name__), {}, lookup)

    [outcome] = exporter.export_all([stale])

    assert (outcome.outcome, outcome.shopify_order_name, outcome.detail) == (
        ALREADY, first["name"], CUSTOM_ID_TAKEN)
    assert _names_by_reference(sandbox) == {"LNB-0001": [first["name"]]}
    assert _stats(sandbox.shopify.url)["requests"]["orderCreate"] == 2
    assert _lnb_statuses(sandbox, ["LNB-0001"]) == {"LNB-0001": "invoicing"}


def test_an_order_entering_the_export_status_while_the_list_is_read_is_exported_once(
        sandbox: Sandbox, tmp_path: Path) -> None:
    """LNB's list is paged; an order confirmed after page 1 was served shifts the pages, so page 2
    repeats page 1's last order. The selection stays unique by reference and the newcomer is not
    skipped: every order goes out exactly once, in this very run."""
    early = "2026-01-01T09:00:00Z"
    orders = [_lnb_order("LNB-0000", status="draft", create_time=early, update_time=early),
              *(_lnb_order(f"LNB-{n:04d}") for n in range(1, 6))]
    _load(sandbox, orders)
    requests.post(f"{sandbox.lnb.url}/_sandbox/config", timeout=10, json={
        "page_size": 2, "list_changes": [{"after_page": 1, "reference": "LNB-0000", "status": "confirmed"}],
    }).raise_for_status()

    result = _export(sandbox, tmp_path)

    assert result.success
    references = [order["reference"] for order in orders]
    assert _names_by_reference(sandbox) == {
        **{f"LNB-{n:04d}": [f"#{1000 + n}"] for n in range(1, 6)}, "LNB-0000": ["#1006"]}
    assert _stats(sandbox.shopify.url)["requests"]["orderCreate"] == 6
    assert _lnb_statuses(sandbox, references) == dict.fromkeys(references, "invoicing")
    assert asset_metadata(result, "lnb_orders_for_export")["orders_selected"] == 6


def test_values_shopify_cannot_take_block_their_order_and_the_others_go_out(sandbox: Sandbox, tmp_path: Path) -> None:
    """One absurd number or date from LNB used to crash the whole selection (Int64 overflow), retried
    into the same crash; now only that order waits, with the reason a person can fix in LNB."""
    _load(sandbox, [
        _lnb_order("LNB-0001"),
        _lnb_order("LNB-0002", items=[_item(EAN_1, "TS-BLU-M", 1e20)]),
        _lnb_order("LNB-0003", items=[_item(EAN_1, "TS-BLU-M", 2**31)]),
        _lnb_order("LNB-0004", items=[{**CLEAN_LINE, "unit_price": 1e12}]),
        _lnb_order("LNB-0005", confirmation_time="yesterday"),
        _lnb_order("LNB-0006", confirmation_time="2026-01-02 10:00:00"),
    ])

    result = _export(sandbox, tmp_path)

    assert result.success
    outcomes = _outcomes(result, tmp_path)
    assert {ref: outcome[0] for ref, outcome in outcomes.items()} == {
        "LNB-0001": CREATED, "LNB-0002": "blocked", "LNB-0003": "blocked", "LNB-0004": "blocked",
        "LNB-0005": "blocked", "LNB-0006": CREATED}
    assert outcomes["LNB-0002"][2] == "line 1: invalid quantity 1e+20: more than Shopify takes (2147483647)"
    assert outcomes["LNB-0003"][2] == "line 1: invalid quantity 2147483648: more than Shopify takes (2147483647)"
    assert outcomes["LNB-0004"][2] == ("line 1: invalid unit price 1000000000000.0: more than Shopify takes "
                                       "(999999999.99)")
    assert outcomes["LNB-0005"][2].startswith('invalid confirmation time "yesterday": ')
    [zone_less] = _in_shopify(sandbox, "LNB-0006")
    assert zone_less["processedAt"] == "2026-01-02T09:00:00Z", "LNB's zone-less times are Paris time"
    assert _lnb_statuses(sandbox, ["LNB-0001", "LNB-0002", "LNB-0006"]) == {
        "LNB-0001": "invoicing", "LNB-0002": "confirmed", "LNB-0006": "invoicing"}


@pytest.mark.parametrize("custom_id", [True, False], ids=["custom-id", "search-fallback"])
def test_the_uniqueness_check_passes_while_the_search_index_lags(
        sandbox: Sandbox, tmp_path: Path, custom_id: bool) -> None:
    """Seconds after creating, Shopify's search does not see the new orders yet: the check must
    not call that a failure (it would on every real run); by custom id it checks each one exactly."""
    _load(sandbox, [_lnb_order("LNB-0001"), _lnb_order("LNB-0002")], order_custom_id=custom_id)
    _set_search_lag(sandbox, 60)

    result = _export(sandbox, tmp_path)

    assert result.success
    assert check_evaluation(result, "every_exported_order_unique_in_shopify").passed
    assert check_metadata(result, "every_exported_order_unique_in_shopify")["checked_by"] == (
        "custom id lenewblack.order_reference (exact)" if custom_id else WEAKER_MODE)
    assert _names_by_reference(sandbox) == {"LNB-0001": ["#1001"], "LNB-0002": ["#1002"]}


def test_without_read_all_orders_an_old_order_waits_for_the_scope(sandbox: Sandbox, tmp_path: Path) -> None:
    """Shopify hides orders processed over 60 days ago from an app without read_all_orders: such an
    order, once created, could not be found again, so it is blocked with the fix to make."""
    scopes = ["read_products", "read_inventory", "read_locations", "read_customers", "read_orders", "write_orders"]
    _load(sandbox, [_lnb_order("LNB-0001", confirmation_time="2025-06-01T10:00:00Z"), _lnb_order("LNB-0002",
          confirmation_time=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))], scopes=scopes)

    result = _export(sandbox, tmp_path)

    assert result.success
    outcomes = _outcomes(result, tmp_path)
    assert outcomes["LNB-0001"][:2] == ("blocked", None)
    assert "without the read_all_orders scope" in outcomes["LNB-0001"][2]
    assert outcomes["LNB-0002"][0] == CREATED


def test_a_development_store_backlog_goes_out_at_five_orders_a_minute(sandbox: Sandbox, tmp_path: Path) -> None:
    """Shopify takes 5 new orders a minute on development and trial stores: a backlog of 6 finishes
    in one run without a refusal, paced, and the run says why it is slow."""
    references = [f"LNB-{n:04d}" for n in range(1, 7)]
    _load(sandbox, [_lnb_order(reference) for reference in references], development=True)
    started = time.monotonic()

    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize([*ORDER_ASSETS, *ORDER_CHECKS], resources=_resources(sandbox, tmp_path),
                                instance=instance)
        messages = [entry.user_message for entry in instance.all_logs(result.run_id)]

    elapsed = time.monotonic() - started
    assert result.success
    assert {ref: outcome[0] for ref, outcome in _outcomes(result, tmp_path).items()} == dict.fromkeys(
        references, CREATED)
    assert 60 <= elapsed < 90
    stats = _stats(sandbox.shopify.url)
    assert (stats["requests"]["orderCreate"], stats["statuses"].get("429", 0)) == (6, 0)
    assert asset_metadata(result, "shopify_orders_from_lnb")["development_store"] is True
    assert any("Development store: Shopify takes 5 new orders a minute; waiting" in m for m in messages)


# --- after export -------------------------------------------------------------------------------

def test_an_order_edited_after_export_is_reported_not_sent_again(sandbox: Sandbox, tmp_path: Path) -> None:
    """As LNB's own connector promises: Shopify keeps what it got; the edit is listed for a human to apply."""
    _load(sandbox, [_lnb_order("LNB-0001"), _lnb_order("LNB-0002")])
    exported = _export(sandbox, tmp_path)
    assert check_evaluation(exported, "no_order_changed_after_export").passed
    assert asset_metadata(exported, "lnb_orders_changed_after_export")["exported_orders_checked"] == 2

    _edit_lnb_order(sandbox, "LNB-0001", {"items": [_item(EAN_1, "TS-BLU-M", 5)]})
    _set_lnb_status(sandbox, "LNB-0002", "invoicing")
    result = _export(sandbox, tmp_path)

    assert result.success
    assert _stats(sandbox.shopify.url)["requests"]["orderCreate"] == 2
    assert _names_by_reference(sandbox) == {"LNB-0001": ["#1001"], "LNB-0002": ["#1002"]}
    [order] = _in_shopify(sandbox, "LNB-0001")
    assert _lines(order) == [("gid://shopify/ProductVariant/11", 2, Decimal("26.82"), "EUR")]
    changed = [{"order_reference": "LNB-0001", "retailer": "Boutique Lumière", "shopify_order": "#1001",
                "shopify_order_link": _admin(sandbox, order["id"]),
                "lnb_update_time": _lnb_order_now(sandbox, "LNB-0001")["update_time"], "action": CHANGED}]
    metadata = asset_metadata(result, "lnb_orders_changed_after_export")
    assert {name: metadata[name] for name in ("exported_orders_checked", "orders_changed_after_export")} == {
        "exported_orders_checked": 2, "orders_changed_after_export": 1}
    assert _rows(metadata["changed_orders"]) == changed
    evaluation = check_evaluation(result, "no_order_changed_after_export")
    assert (evaluation.passed, evaluation.severity, evaluation.description) == (
        False, dg.AssetCheckSeverity.ERROR,
        "1 order changed in LNB after export (apply the changes in Shopify): Boutique Lumière (LNB-0001).")
    assert check_metadata(result, "no_order_changed_after_export")["orders_changed_after_export"] == 1
    assert _check_table(result, "no_order_changed_after_export", "changed_orders") == changed


# --- task log -----------------------------------------------------------------------------------

def test_task_log_has_a_line_per_order_and_per_blocked_line(sandbox: Sandbox, tmp_path: Path) -> None:
    """The file users open to find out what happened to an order, and which line to fix in LNB."""
    _load(sandbox, [
        _lnb_order("LNB-0001"),
        _lnb_order("LNB-0002", currency="USD", items=[_item(EAN_1, "TS-BLU-M", 0), _item(None, None, 1)]),
        _lnb_order("LNB-0003", status="canceled"),
    ])

    result = _export(sandbox, tmp_path, ["LNB-0001", "LNB-0002", "LNB-0003"])

    quantity, no_code = "invalid quantity 0: must be a whole number >= 1", "no EAN13 and no SKU"
    [order] = _in_shopify(sandbox, "LNB-0001")
    retailer = "Boutique Lumière"
    assert _task_log(result, tmp_path) == [
        ("LNB-0001", retailer, None, CREATED, "#1001", _admin(sandbox, order["id"]), None),
        ("LNB-0002", retailer, None, "blocked", None, None,
         f"currency not accepted: USD (accepted: EUR); line 1: {quantity}; line 2: {no_code}"),
        ("LNB-0002", retailer, "1", "line blocked", None, None, quantity),
        ("LNB-0002", retailer, "2", "line blocked", None, None, no_code),
        ("LNB-0003", retailer, None, "skipped", None, None, "canceled"),
    ]


# --- the sensor ---------------------------------------------------------------------------------

def _tick(sandbox: Sandbox, tmp_path: Path, cursor: str | None) -> dg.SensorResult | dg.SkipReason:
    """One evaluation of ``lnb_orders_sensor`` from ``cursor``, as the daemon would run it, on a fresh instance."""
    with dg.DagsterInstance.ephemeral() as instance:
        context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={
            "lenewblack": _lenewblack(sandbox),
            "order_flow_settings": OrderFlowSettings(task_log_dir=str(tmp_path)),
        })
        return lnb_orders_sensor(context)


def test_orders_export_is_the_first_job_of_a_fresh_instance(
        sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing needs to run before the order flow: it reads Shopify's variants itself, in the same run
    (so they are never older than the orders), and the schedule and the sensor start it on a fresh install."""
    _load(sandbox, [_lnb_order("LNB-0001")])
    monkeypatch.setenv("LNB_TASK_LOG_DIR", str(tmp_path))
    with dg.instance_for_test() as instance:
        assert orders_export_schedule(dg.build_schedule_context(instance=instance)) == dg.RunRequest()
        assert _tick(sandbox, tmp_path, None).run_requests
        result = defs().resolve_job_def("orders_export").execute_in_process(instance=instance, raise_on_error=False)

    assert result.success
    assert _names_by_reference(sandbox) == {"LNB-0001": ["#1001"]}
    assert {event.asset_key.path[-1] for event in result.get_asset_materialization_events()} >= {
        "shopify_locations", "shopify_inventory_levels", "lnb_orders_for_export", "shopify_orders_from_lnb"}


def test_sensor_requests_one_run_per_set_of_orders_entering_the_export_status(
        sandbox: Sandbox, tmp_path: Path) -> None:
    """The cursor keeps the sensor from asking twice; the run key keeps Dagster from running twice."""
    first = _tick(sandbox, tmp_path, None)

    [request] = first.run_requests
    assert request.run_config == _selection(DEMO_CONFIRMED)
    assert request.tags == {"lnb_pipeline/orders": "15"}
    assert request.run_key.startswith("lnb-orders-")
    assert json.loads(first.cursor) == {"update_time": DEMO_ORDERS["LNB-0015"]["update_time"],
                                        "references": ["LNB-0015"]}
    assert _tick(sandbox, tmp_path, None).run_requests[0].run_key == request.run_key

    unchanged = _tick(sandbox, tmp_path, first.cursor)

    assert unchanged == dg.SkipReason("No order entered LNB status confirmed since 2026-01-05T21:00:00Z")

    _set_lnb_status(sandbox, "LNB-0016", "confirmed")
    entered = _tick(sandbox, tmp_path, first.cursor)

    [new_request] = entered.run_requests
    assert new_request.run_config == _selection(["LNB-0016"])
    assert new_request.run_key != request.run_key
    assert _tick(sandbox, tmp_path, first.cursor).run_requests[0].run_key == new_request.run_key
    assert json.loads(entered.cursor) == {"update_time": _lnb_order_now(sandbox, "LNB-0016")["update_time"],
                                          "references": ["LNB-0016"]}
    assert isinstance(_tick(sandbox, tmp_path, entered.cursor), dg.SkipReason)


# --- triggers and concurrency -------------------------------------------------------------------

def _schedules_under(environment: dict[str, str | None]) -> tuple[dg.ScheduleDefinition, dg.SensorDefinition]:
    """The schedule and sensor as their module builds them when imported with ``environment`` (None: unset)."""
    return reloaded_under(schedules, environment,
                          lambda module: (module.orders_export_schedule, module.lnb_orders_sensor))


def test_schedule_and_sensor_take_their_timing_from_the_environment() -> None:
    """Brands export at their own rhythm, in their own time zone."""
    schedule, sensor = _schedules_under({"LNB_ORDERS_CRON": "*/15 8-18 * * 1-5", "LNB_TIMEZONE": "Europe/Paris",
                                         "LNB_ORDERS_SENSOR_SECONDS": "30"})

    assert (schedule.cron_schedule, schedule.execution_timezone, schedule.job_name) == (
        "*/15 8-18 * * 1-5", "Europe/Paris", "orders_export")
    assert sensor.minimum_interval_seconds == 30


def test_schedule_defaults_to_hourly_in_utc_and_the_sensor_to_every_minute() -> None:
    """Without settings, a confirmed order reaches Shopify within the hour, or the minute with the sensor on."""
    schedule, sensor = _schedules_under({"LNB_ORDERS_CRON": None, "LNB_TIMEZONE": None,
                                         "LNB_ORDERS_SENSOR_SECONDS": None})

    assert (schedule.cron_schedule, schedule.execution_timezone) == ("0 * * * *", "UTC")
    assert sensor.minimum_interval_seconds == 60


def test_order_exports_are_limited_to_one_at_a_time_by_run_tag_and_pool(tmp_path: Path) -> None:
    """Two exports at once would both miss each other's orders in the look-up and create them twice."""
    definitions = defs()
    assert definitions.resolve_job_def("orders_export").tags == {FLOW_TAG: "orders",
                                                                 "dagster/retry_strategy": "ALL_STEPS"}
    assert definitions.resolve_assets_def("shopify_orders_from_lnb").op.pool == "lnb_orders_export"
    shutil.copy(REPO / "lnb_pipeline" / "deploy" / "dagster.local.yaml", tmp_path / "dagster.yaml")

    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        concurrency = instance.get_concurrency_config()

    assert {"key": FLOW_TAG, "value": "orders", "limit": 1} in concurrency.run_queue_config.tag_concurrency_limits
    assert concurrency.pool_config.default_pool_limit == 1


# --- through the daemon -------------------------------------------------------------------------

DAEMON_TIMEOUT_SECONDS = 90
NO_SCHEDULED_TICK = "0 0 1 1 *"
"""Cron for both schedules while the daemon runs, so that only the sensor and the test start runs."""
STALL_SECONDS = 5
"""How long Shopify leaves each manual export's first call unanswered: longer than the daemon takes
to launch the next queued run, so two exports would overlap unless the queue holds one back."""


def _venv_script(name: str) -> Path:
    """A console script of the environment running the tests (``dagster``, ``dagster-daemon``)."""
    return Path(sys.executable).with_name(name)


@contextmanager
def _running_daemon(home: Path) -> Iterator[None]:
    """``dagster-daemon run`` on the repository's workspace; stopped on exit with its code server and runs."""
    with (home / "daemon.log").open("w") as log:
        daemon = subprocess.Popen([str(_venv_script("dagster-daemon")), "run", "-w", "workspace.yaml"],
                                  cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            yield
        finally:
            os.killpg(daemon.pid, signal.SIGTERM)
            try:
                daemon.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(daemon.pid, signal.SIGKILL)
                daemon.wait()


def _queue_orders_exports(references: list[str], runs: int) -> None:
    """``runs`` × ``dagster job launch`` at once: runs submitted as from the launchpad, queued for the daemon."""
    command = [str(_venv_script("dagster")), "job", "launch", "-w", "workspace.yaml", "-j", "orders_export",
               "--config-json", json.dumps(_selection(references))]
    launches = [subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                for _ in range(runs)]
    try:
        outputs = [launch.communicate(timeout=60)[0] for launch in launches]
    finally:
        for launch in launches:
            launch.kill()
    assert [launch.returncode for launch in launches] == [0] * runs, outputs


def _finished_exports(instance: dg.DagsterInstance, count: int, home: Path) -> list[dg.RunRecord]:
    """The ``orders_export`` run records once ``count`` of them have finished, oldest start first."""
    deadline = time.monotonic() + DAEMON_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        records = instance.get_run_records(filters=dg.RunsFilter(job_name="orders_export"))
        if len(records) >= count and all(record.dagster_run.is_finished for record in records):
            return sorted(records, key=lambda record: record.start_time)
        time.sleep(1)
    pytest.fail(f"{count} orders_export runs did not finish within {DAEMON_TIMEOUT_SECONDS} s; daemon log ends:\n"
                + (home / "daemon.log").read_text()[-3000:])


def test_daemon_runs_the_sensor_export_and_queues_exports_one_at_a_time(
        sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Deployed as under ``make run``: the sensor's run exports the confirmed orders, and two exports
    queued at once for the same order (LNB-0016, listed from the launchpad twice) run one after the other,
    so it is created once."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "lnb_pipeline" / "deploy" / "dagster.local.yaml", home / "dagster.yaml")
    log_dir = tmp_path / "task_logs"
    for name, value in {"DAGSTER_HOME": str(home), "LNB_TASK_LOG_DIR": str(log_dir),
                        "SHOPIFY_ORDER_LOOKUP_WAIT_SECONDS": "0", "LNB_ORDERS_SENSOR_SECONDS": "5",
                        "LNB_STOCK_CRON": NO_SCHEDULED_TICK, "LNB_ORDERS_CRON": NO_SCHEDULED_TICK}.items():
        monkeypatch.setenv(name, value)
    _arm_fault(sandbox.shopify.url, "timeout", "customerByIdentifier", 2, seconds=STALL_SECONDS)

    sensor_run_key = _tick(sandbox, tmp_path, None).run_requests[0].run_key

    with dg.DagsterInstance.get() as instance:
        assert dg.materialize([shopify_locations, shopify_inventory_levels], instance=instance,
                              resources=_resources(sandbox, tmp_path)).success
        _queue_orders_exports(["LNB-0016"], runs=2)
        with _running_daemon(home):
            records = _finished_exports(instance, 3, home)
        selections = {record.run_id: record.asset_materialization.metadata["selection"].value for record in
                      instance.fetch_materializations(lnb_orders_for_export.key, limit=10).records}

    assert [record.dagster_run.status for record in records] == [dg.DagsterRunStatus.SUCCESS] * 3
    assert _stats(sandbox.shopify.url)["faults_injected"] == {"timeout": 2}
    for earlier, later in zip(records, records[1:]):
        assert later.start_time >= earlier.end_time, "two orders_export runs overlapped"
    [sensor_run] = [record.dagster_run for record in records
                    if record.dagster_run.tags.get("dagster/sensor_name") == "lnb_orders_sensor"]
    assert sensor_run.run_config == _selection(DEMO_CONFIRMED)
    assert sensor_run.tags["dagster/run_key"] == sensor_run_key
    assert selections == {record.dagster_run.run_id: "the 1 order a person listed in the run config"
                          for record in records if record.dagster_run.run_id != sensor_run.run_id} | {
        sensor_run.run_id: "the 15 orders that entered LNB status confirmed, found by lnb_orders_sensor"}
    names = _names_by_reference(sandbox)
    assert sorted(names) == sorted([*DEMO_EXPORTABLE, "LNB-0016"])
    assert all(len(found) == 1 for found in names.values())
    sensor_outcomes = _order_rows(_read_task_log(log_dir, sensor_run.run_id))
    assert {ref: outcome for ref, outcome in sensor_outcomes.items() if outcome[0] != "blocked"} == {
        ref: (CREATED, names[ref][0], None) for ref in DEMO_EXPORTABLE}
    manual_outcomes = sorted(_order_rows(_read_task_log(log_dir, record.dagster_run.run_id))["LNB-0016"]
                             for record in records if record.dagster_run.run_id != sensor_run.run_id)
    assert manual_outcomes == [(CREATED, names["LNB-0016"][0], None),
                               ("skipped", None, "already exported (status invoicing)")]
    assert _lnb_statuses(sandbox, [*DEMO_CONFIRMED, "LNB-0016"]) == {
        **dict.fromkeys(DEMO_EXPORTABLE, "invoicing"), **dict.fromkeys(DEMO_BLOCKED, "confirmed"),
        "LNB-0016": "invoicing"}
