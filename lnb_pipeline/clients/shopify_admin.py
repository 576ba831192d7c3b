"""Links into the Shopify admin for the records people read about in the UI.

``https://<shop>.myshopify.com/admin/orders/<id>`` is Shopify's own admin address form (it forwards
to admin.shopify.com), so links are built from ``SHOPIFY_SHOP_URL`` alone; on the sandbox the same
paths serve a small page about the record.
"""

from __future__ import annotations

_ADMIN_PATHS = {
    "Order": "orders",
    "Customer": "customers",
    "Company": "companies",
    "Product": "products",
    "DraftOrder": "draft_orders",
}


def numeric_id(gid: str | None) -> str | None:
    """``gid://shopify/Order/123`` → ``123``; None for anything that is not a Shopify gid."""
    if not gid or not gid.startswith("gid://shopify/"):
        return None
    tail = gid.rsplit("/", 1)[-1].split("?", 1)[0]
    return tail if tail.isdigit() else None


def admin_url(shop_url: str, gid: str | None, product_gid: str | None = None) -> str | None:
    """The admin page of ``gid`` (an order, customer, company, product, or a variant with its
    ``product_gid``), or None when there is none to link to."""
    number = numeric_id(gid)
    if number is None or gid is None:
        return None
    base = f"{shop_url.rstrip('/')}/admin"
    kind = gid.split("/")[3]
    if kind == "ProductVariant":
        product = numeric_id(product_gid)
        return f"{base}/products/{product}/variants/{number}" if product else None
    path = _ADMIN_PATHS.get(kind)
    return f"{base}/{path}/{number}" if path else None
