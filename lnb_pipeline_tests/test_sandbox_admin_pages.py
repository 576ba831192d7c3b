"""The Shopify admin links the Dagster UI shows, followed on the sandbox over HTTP as a browser would.

On a real shop they open Shopify's admin; the sandbox answers a small page about the record, with
no token, escaping whatever the shop's data holds.
"""

from __future__ import annotations

import html
from collections.abc import Iterator

import pytest
import requests

from lnb_pipeline.clients.shopify_admin import admin_url
from lnb_pipeline.sandbox import Sandbox
from lnb_pipeline.sandbox.http import SandboxServer
from lnb_pipeline.sandbox.shopify.admin import SANDBOX_NOTE
from lnb_pipeline.sandbox.shopify.api import DEFAULT_TOKEN, ShopifyApi

HOSTILE = "<script>alert(1)</script>"
SCENARIO = {
    "shop": {"name": "Maison <Test> & Co", "domain": "maison-test.myshopify.com", "currency": "EUR"},
    "locations": [{"id": 1, "name": "Entrepôt <Paris>"}, {"id": 2, "name": "Lyon"}],
    "products": [{"id": 7, "title": "Scarf <b>bold</b>", "vendor": "Maison", "variants": [
        {"id": 70, "title": "Red & Blue", "sku": "SC-<R>", "barcode": "3760000010016", "price": "39.00",
         "stock": {"1": {"available": 4, "committed": 1}, "2": {"available": 2}}},
        {"id": 71, "title": "Green", "sku": "SC-G", "barcode": "3760000010023", "price": "39.00",
         "stock": {"1": {"available": 0}}},
    ]}],
    "customers": [{"id": 3, "first_name": "Claire", "last_name": HOSTILE, "email": "claire@example.com",
                   "metafields": {"lenewblack.retailer_reference": "R1001"}}],
    "companies": [{"id": 5, "name": 'Boutique "Lumière"', "external_id": "R1001",
                   "locations": [{"id": 9, "name": "Paris"}], "contacts": [{"id": 1, "customer_id": 3}]}],
    "orders": [{"id": 11, "name": "#1001", "customer_id": 3, "source_name": "lenewblack",
                "source_identifier": "LNB-0001", "note": "<img src=x onerror=alert(1)>",
                "line_items": [{"variant_id": 70, "quantity": 2}]}],
}


CREATE_B2B_ORDER = """
mutation { orderCreate(order: {companyLocationId: "gid://shopify/CompanyLocation/9", sourceIdentifier: "LNB-0002",
  lineItems: [{variantId: "gid://shopify/ProductVariant/71", quantity: 1}]}) { order { id name } userErrors { message } } }
"""


@pytest.fixture(scope="module")
def shop_url() -> Iterator[str]:
    """A Shopify Plus sandbox shop (B2B orders need Plus) holding ``SCENARIO``."""
    server = SandboxServer(ShopifyApi(SCENARIO, plan="plus")).start()
    yield server.url
    server.stop()


def _page(url: str, status: int = 200) -> str:
    """The page a browser gets: no token, HTML."""
    response = requests.get(url, timeout=10)
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    return response.text


def test_an_order_page_shows_its_buyer_source_lines_and_the_sandbox_note(shop_url: str) -> None:
    page = _page(f"{shop_url}/admin/orders/11")

    assert "<h1>Order #1001</h1>" in page
    assert html.escape(SANDBOX_NOTE) in page
    assert "lenewblack LNB-0001" in page
    assert f'<a href="/admin/customers/3">Claire {html.escape(HOSTILE)}</a>' in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<td>Scarf &lt;b&gt;bold&lt;/b&gt; - Red &amp; Blue</td><td>SC-&lt;R&gt;</td><td>3760000010016</td><td>2</td><td>39.00 EUR</td>" in page
    assert '<a href="/admin/products/7/variants/70">open</a>' in page
    assert "<script>" not in page and "<img" not in page and "<b>" not in page


def test_a_b2b_order_page_links_its_company(shop_url: str) -> None:
    created = requests.post(f"{shop_url}/admin/api/2026-04/graphql.json", json={"query": CREATE_B2B_ORDER},
                            headers={"X-Shopify-Access-Token": DEFAULT_TOKEN}, timeout=10).json()
    order = created["data"]["orderCreate"]["order"]
    url = admin_url(shop_url, order["id"])
    assert url is not None

    page = _page(url)

    assert f"<h1>Order {order['name']}</h1>" in page
    assert '<tr><th>Company</th><td><a href="/admin/companies/5">Boutique &quot;Lumière&quot;</a> · Paris</td></tr>' in page
    assert f'<a href="/admin/customers/3">Claire {html.escape(HOSTILE)}</a>' in page


def test_customer_company_product_and_variant_pages_show_their_key_fields(shop_url: str) -> None:
    customer = _page(f"{shop_url}/admin/customers/3")
    company = _page(f"{shop_url}/admin/companies/5")
    product = _page(f"{shop_url}/admin/products/7")
    variant = _page(f"{shop_url}/admin/products/7/variants/70")

    assert f"<h1>Claire {html.escape(HOSTILE)}</h1>" in customer
    assert "<td>lenewblack.retailer_reference</td><td>R1001</td>" in customer
    assert '<a href="/admin/orders/11">#1001</a>' in customer
    assert "<h1>Boutique &quot;Lumière&quot;</h1>" in company
    assert "<tr><th>External id</th><td>R1001</td></tr>" in company
    assert f'<a href="/admin/customers/3">Claire {html.escape(HOSTILE)}</a>' in company
    assert "<h1>Scarf &lt;b&gt;bold&lt;/b&gt;</h1>" in product
    assert ('<a href="/admin/products/7/variants/70">Red &amp; Blue</a></td><td>SC-&lt;R&gt;</td>'
            "<td>3760000010016</td><td>39.00</td><td>6</td>") in product
    assert '<a href="/admin/products/7/variants/71">Green</a>' in product
    assert "<h1>Scarf &lt;b&gt;bold&lt;/b&gt; - Red &amp; Blue</h1>" in variant
    assert '<a href="/admin/products/7">Scarf &lt;b&gt;bold&lt;/b&gt;</a>' in variant
    assert "<tr><td>Entrepôt &lt;Paris&gt;</td><td>4</td><td>5</td><td>1</td></tr>" in variant
    assert "<tr><td>Lyon</td><td>2</td><td>2</td><td>0</td></tr>" in variant
    for page in (customer, company, product, variant):
        assert html.escape(SANDBOX_NOTE) in page and "<script>" not in page
        assert "<title>" in page and "Maison &lt;Test&gt; &amp; Co (sandbox)</title>" in page


@pytest.mark.parametrize("path", [
    "/admin/orders/12", "/admin/customers/4", "/admin/companies/6", "/admin/products/8",
    "/admin/products/8/variants/70", "/admin/products/7/variants/72",
])
def test_an_unknown_record_answers_a_404_page(shop_url: str, path: str) -> None:
    """A variant is found under its own product only, as in Shopify's admin."""
    page = _page(f"{shop_url}{path}", status=404)

    assert "<h1>Not found</h1>" in page
    assert f"The sandbox shop holds no record at {path}." in page


def test_the_links_the_pipeline_builds_open_their_record_on_the_demo_sandbox(sandbox: Sandbox) -> None:
    """Built by the same function as the links in the UI, from SHOPIFY_SHOP_URL, for demo records."""
    shop = sandbox.shopify_url
    variant = admin_url(shop, "gid://shopify/ProductVariant/1001", "gid://shopify/Product/1")
    customer = admin_url(shop, "gid://shopify/Customer/1")
    company = admin_url(shop, "gid://shopify/Company/1")
    assert variant is not None and customer is not None and company is not None

    assert "<h1>Linen Scarf - Black / One size</h1>" in _page(variant)
    assert "<h1>Claire Martin</h1>" in _page(customer)
    assert "<h1>Boutique Lumière</h1>" in _page(company)
