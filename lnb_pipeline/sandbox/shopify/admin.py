"""The sandbox's stand-in for the Shopify admin pages the Dagster UI links to.

The pipeline links orders, customers, companies, products and variants to
``{SHOPIFY_SHOP_URL}/admin/orders/<n>`` and the like (``lnb_pipeline/clients/shopify_admin.py``). On a
real shop those open the record in Shopify's admin; on the sandbox they answer a small HTML page
about the record, read from the shop's state, and a 404 page for an id it does not hold. A browser
follows these links, so no token is asked for. Every value is HTML-escaped.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from typing import Any

from lnb_pipeline.sandbox.http import Response
from lnb_pipeline.sandbox.shopify.state import ShopifyState, gid, gid_number

ADMIN_PAGE_PATH = re.compile(
    r"/admin/(?:(?P<kind>orders|customers|companies|products)/(?P<number>\d+)"
    r"|products/(?P<product>\d+)/variants/(?P<variant>\d+))/?")
SANDBOX_NOTE = ("This is the sandbox's stand-in for the Shopify admin: on a real shop, this link opens the record in "
                "Shopify's admin.")
STOCK_SHOWN = ("available", "on_hand", "committed")
STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; padding: 0 1rem; color: #1a1a1a; }
.note { background: #fff4d6; border: 1px solid #e8c66a; border-radius: 6px; padding: .5rem .75rem; }
table { border-collapse: collapse; margin: .5rem 0 1.5rem; }
th, td { border-bottom: 1px solid #ddd; padding: .3rem .75rem .3rem 0; text-align: left; vertical-align: top; }
.fields th { color: #555; font-weight: normal; }
"""
NONE = "—"

Cell = str
"""HTML, already escaped."""


def admin_page(state: ShopifyState, path: str) -> Response | None:
    """The page answering ``path``, or None when ``path`` is not an admin record page."""
    match = ADMIN_PAGE_PATH.fullmatch(path)
    if match is None:
        return None
    with state.lock:
        if match["variant"] is not None:
            page = _variant_page(state, int(match["product"]), int(match["variant"]))
        else:
            page = PAGES[match["kind"]](state, int(match["number"]))
    if page is None:
        return _response(404, state, "Not found", f"<p>The sandbox shop holds no record at {_text(path)}.</p>")
    title, body = page
    return _response(200, state, title, body)


def _response(status: int, state: ShopifyState, title: str, body: str) -> Response:
    document = (f"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{_text(title)} · "
                f"{_text(state.shop['name'])} (sandbox)</title><style>{STYLE}</style></head><body>"
                f"<p class=\"note\">{_text(SANDBOX_NOTE)}</p><h1>{_text(title)}</h1>{body}</body></html>\n")
    return Response(status, document.encode(), {"Content-Type": "text/html; charset=utf-8"})


def _text(value: Any) -> Cell:
    return NONE if value is None or value == "" else html.escape(str(value))


def _link(path: str, label: Any) -> Cell:
    return f"<a href=\"{html.escape(path)}\">{_text(label)}</a>"


def _fields(rows: Iterable[tuple[str, Cell]]) -> str:
    return "<table class=\"fields\">" + "".join(f"<tr><th>{_text(label)}</th><td>{cell}</td></tr>"
                                                for label, cell in rows) + "</table>"


def _table(title: str, headers: Sequence[str], rows: Sequence[Sequence[Cell]]) -> str:
    if not rows:
        return f"<h2>{_text(title)}</h2><p>None.</p>"
    head = "".join(f"<th>{_text(header)}</th>" for header in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<h2>{_text(title)}</h2><table><tr>{head}</tr>{body}</table>"


def _money(bag: dict[str, Any] | None) -> Cell:
    """The amount in the shop's currency, and in the buyer's when that differs."""
    if not bag:
        return NONE
    shop, presentment = bag["shopMoney"], bag["presentmentMoney"]
    amount = f"{shop['amount']} {shop['currencyCode']}"
    if presentment["currencyCode"] != shop["currencyCode"]:
        amount += f" ({presentment['amount']} {presentment['currencyCode']})"
    return _text(amount)


def _customer_link(customer: dict[str, Any] | None) -> Cell:
    if customer is None:
        return NONE
    return _link(f"/admin/customers/{gid_number(customer['id'], 'Customer')}", customer["displayName"])


def _variant_link(variant: dict[str, Any] | None, label: Any = None) -> Cell:
    if variant is None:
        return NONE
    product = gid_number(variant["product"]["id"], "Product")
    return _link(f"/admin/products/{product}/variants/{variant['_num']}", label or variant["displayName"])


def _order_page(state: ShopifyState, number: int) -> tuple[str, str] | None:
    order = state.orders_by_id.get(gid("Order", number))
    if order is None:
        return None
    entity = order.get("purchasingEntity") or {}
    company = entity.get("company") if entity.get("__typename") == "PurchasingCompany" else None
    company_cell = NONE if company is None else (
        _link(f"/admin/companies/{gid_number(company['id'], 'Company')}", company["name"])
        + f" · {_text(entity['location']['name'])}")
    source = " ".join(part for part in (order.get("sourceName"), order.get("sourceIdentifier")) if part)
    fields = _fields([
        ("Created", _text(order["createdAt"])),
        ("Test order", _text("yes: not a real sale" if order.get("test") else "no")),
        ("Source", _text(source)),
        ("PO number", _text(order.get("poNumber"))),
        ("Customer", _customer_link(order.get("customer"))),
        ("Company", company_cell),
        ("Email", _text(order.get("email"))),
        ("Payment", _text(order.get("displayFinancialStatus"))),
        ("Total", _money(order.get("totalPriceSet"))),
        ("Tags", _text(", ".join(order.get("tags") or []))),
        ("Note", _text(order.get("note"))),
        ("Cancelled", _text(order.get("cancelledAt"))),
    ])
    lines = [[_text(line["name"]), _text(line["sku"]),
              _text(line["variant"]["barcode"] if line["variant"] else None), _text(line["quantity"]),
              _money(line["originalUnitPriceSet"]), _variant_link(line["variant"], "open")]
             for line in order["_lines"]]
    return f"Order {order['name']}", fields + _table(
        "Items", ("Item", "SKU", "Barcode", "Quantity", "Unit price", "Variant"), lines)


def _customer_page(state: ShopifyState, number: int) -> tuple[str, str] | None:
    customer = state.customers_by_id.get(gid("Customer", number))
    if customer is None:
        return None
    fields = _fields([
        ("Email", _text((customer.get("defaultEmailAddress") or {}).get("emailAddress"))),
        ("Phone", _text((customer.get("defaultPhoneNumber") or {}).get("phoneNumber"))),
        ("Tags", _text(", ".join(customer.get("tags") or []))),
        ("Created", _text(customer["createdAt"])),
    ])
    metafields = [[_text(f"{namespace}.{key}"), _text(metafield["value"])]
                  for (namespace, key), metafield in sorted(customer["_metafields"].items())]
    orders = [[_link(f"/admin/orders/{gid_number(order['id'], 'Order')}", order["name"]), _text(order["createdAt"]),
               _text(order.get("sourceIdentifier")), _money(order.get("totalPriceSet"))]
              for order in state.orders if order.get("customer") is customer]
    return customer["displayName"], (fields + _table("Metafields", ("Metafield", "Value"), metafields)
                                     + _table("Orders", ("Order", "Created", "Source reference", "Total"), orders))


def _company_page(state: ShopifyState, number: int) -> tuple[str, str] | None:
    company = next((company for company in state.companies if company["id"] == gid("Company", number)), None)
    if company is None:
        return None
    fields = _fields([("External id", _text(company.get("externalId"))), ("Created", _text(company["createdAt"]))])
    locations = [[_text(location["name"]), _text(location.get("externalId")), _text(location["currency"])]
                 for location in company["_locations"]]
    contacts = [[_customer_link(contact["customer"]), _text("main contact" if contact["isMainContact"] else "")]
                for contact in company["_contacts"]]
    return company["name"], (fields + _table("Locations", ("Location", "External id", "Currency"), locations)
                             + _table("Contacts", ("Customer", "Role"), contacts))


def _stock(state: ShopifyState, variant: dict[str, Any], name: str) -> int:
    return sum(state.quantity(level, name) for level in variant["inventoryItem"]["_levels"].values())


def _product_page(state: ShopifyState, number: int) -> tuple[str, str] | None:
    variants = [variant for variant in state.variants if variant["product"]["id"] == gid("Product", number)]
    if not variants:
        return None
    product = variants[0]["product"]
    fields = _fields([("Status", _text(product["status"])), ("Vendor", _text(product["vendor"])),
                      ("Handle", _text(product["handle"])), ("Updated", _text(product["updatedAt"]))])
    rows = [[_variant_link(variant, variant["title"]), _text(variant["sku"]), _text(variant["barcode"]),
             _text(variant["price"]), _text(_stock(state, variant, "available"))] for variant in variants]
    return product["title"], fields + _table(
        "Variants", ("Variant", "SKU", "Barcode", "Price", "Available (all locations)"), rows)


def _variant_page(state: ShopifyState, product_number: int, number: int) -> tuple[str, str] | None:
    variant = state.variants_by_id.get(gid("ProductVariant", number))
    if variant is None or variant["product"]["id"] != gid("Product", product_number):
        return None
    item = variant["inventoryItem"]
    fields = _fields([
        ("Product", _link(f"/admin/products/{product_number}", variant["product"]["title"])),
        ("Variant", _text(variant["title"])),
        ("SKU", _text(variant["sku"])),
        ("Barcode", _text(variant["barcode"])),
        ("Price", _text(variant["price"])),
        ("Inventory tracked", _text("yes" if item["tracked"] else "no")),
        ("Sells when out of stock", _text("yes" if variant["inventoryPolicy"] == "CONTINUE" else "no")),
    ])
    stock = [[_text(level["location"]["name"]), *(_text(state.quantity(level, name)) for name in STOCK_SHOWN)]
             for level in item["_levels"].values()]
    return variant["displayName"], fields + _table("Stock", ("Location", "Available", "On hand", "Committed"), stock)


PAGES = {"orders": _order_page, "customers": _customer_page, "companies": _company_page, "products": _product_page}
