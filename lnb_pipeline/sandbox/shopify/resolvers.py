"""Field resolvers of the Shopify sandbox, shared by ordinary queries and bulk operations.

Connections are defined once as *sources* (every matching item, in order); a query pages through
a source with ``first``/``after``, a bulk operation walks all of it.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from graphql import GraphQLError

from lnb_pipeline.sandbox.scenario import QUANTITY_NAMES
from lnb_pipeline.sandbox.shopify.search import Getter, search
from lnb_pipeline.sandbox.shopify.state import ShopifyState

if TYPE_CHECKING:
    from lnb_pipeline.sandbox.shopify.bulk import BulkOperations

MAX_PAGE_SIZE = 250

Source = Callable[["Context", Any, dict[str, Any]], list[Any]]
Resolver = Callable[["Context", Any, dict[str, Any]], Any]


@dataclass
class Context:
    state: ShopifyState
    bulk: BulkOperations
    plan: dict[str, Any]
    search_warnings: list[dict[str, Any]] = field(default_factory=list)


def encode_cursor(position: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"last": position}).encode()).decode()


def decode_cursor(cursor: str) -> int:
    try:
        position = json.loads(base64.urlsafe_b64decode(cursor.encode()))["last"]
    except (ValueError, KeyError, TypeError):
        raise GraphQLError(f"Invalid cursor for current pagination sort: {cursor!r}") from None
    if not isinstance(position, int) or position < 0:
        raise GraphQLError(f"Invalid cursor for current pagination sort: {cursor!r}")
    return position


def page(items: list[Any], args: dict[str, Any]) -> dict[str, Any]:
    """One page of a connection, as Shopify answers it."""
    first = args.get("first")
    if first is None:
        raise GraphQLError("you must provide one of first or last")
    if first < 0 or first > MAX_PAGE_SIZE:
        raise GraphQLError(f"The first argument must be between 0 and {MAX_PAGE_SIZE}, got {first}.")
    start = decode_cursor(args["after"]) + 1 if args.get("after") else 0
    selected = items[start:start + first]
    edges = [{"cursor": encode_cursor(start + i), "node": node} for i, node in enumerate(selected)]
    return {
        "nodes": selected,
        "edges": edges,
        "pageInfo": {
            "hasNextPage": start + first < len(items),
            "hasPreviousPage": start > 0,
            "startCursor": edges[0]["cursor"] if edges else None,
            "endCursor": edges[-1]["cursor"] if edges else None,
        },
    }


def _searched(ctx: Context, items: list[Any], query: str | None, fields: dict[str, Getter]) -> list[Any]:
    return search(items, query, fields, ctx.search_warnings) if query else items


def _number(value: Any) -> str:
    return str(value).rsplit("/", 1)[-1]


VARIANT_SEARCH: dict[str, Getter] = {
    "sku": lambda v: v["sku"],
    "barcode": lambda v: v["barcode"],
    "updated_at": lambda v: v["updatedAt"],
    "created_at": lambda v: v["createdAt"],
    "product_status": lambda v: v["product"]["status"],
    "product_id": lambda v: _number(v["product"]["id"]),
    "id": lambda v: str(v["_num"]),
    "title": lambda v: v["title"],
    "default": lambda v: [v["sku"], v["title"], v["barcode"]],
}
LEVEL_SEARCH: dict[str, Getter] = {
    "updated_at": lambda lv: lv["updatedAt"],
    "inventory_item_id": lambda lv: str(lv["item"]["_num"]),
}
LOCATION_SEARCH: dict[str, Getter] = {
    "name": lambda loc: loc["name"],
    "active": lambda loc: loc["isActive"],
    "id": lambda loc: str(loc["_num"]),
}
COMPANY_SEARCH: dict[str, Getter] = {
    "external_id": lambda c: c["externalId"],
    "name": lambda c: c["name"],
    "id": lambda c: _number(c["id"]),
}
COMPANY_LOCATION_SEARCH: dict[str, Getter] = {
    "external_id": lambda c: c["externalId"],
    "name": lambda c: c["name"],
}
ORDER_SEARCH: dict[str, Getter] = {
    "source_identifier": lambda o: o["sourceIdentifier"],
    "source_name": lambda o: o["sourceName"],
    "tag": lambda o: o["tags"],
    "name": lambda o: [o["name"], o["name"].lstrip("#")],
    "email": lambda o: o["email"],
    "po_number": lambda o: o["poNumber"],
    "created_at": lambda o: o["createdAt"],
    "updated_at": lambda o: o["updatedAt"],
    "id": lambda o: _number(o["id"]),
    "default": lambda o: [o["name"], o["sourceIdentifier"], o["poNumber"]],
}
BULK_SEARCH: dict[str, Getter] = {
    "status": lambda b: b["status"],
    "operation_type": lambda b: b["type"],
    "created_at": lambda b: b["createdAt"],
}


def _locations(ctx: Context, _: Any, args: dict[str, Any]) -> list[Any]:
    locations = ctx.state.locations if args.get("includeInactive") else [
        loc for loc in ctx.state.locations if loc["isActive"]
    ]
    return _searched(ctx, locations, args.get("query"), LOCATION_SEARCH)


def _variants(ctx: Context, _: Any, args: dict[str, Any]) -> list[Any]:
    return _searched(ctx, ctx.state.variants, args.get("query"), VARIANT_SEARCH)


def _location_levels(ctx: Context, location: dict[str, Any], args: dict[str, Any]) -> list[Any]:
    return _searched(ctx, ctx.state.levels_at(location["id"]), args.get("query"), LEVEL_SEARCH)


def _item_levels(ctx: Context, item: dict[str, Any], args: dict[str, Any]) -> list[Any]:
    """Levels at active locations only, as Shopify answers by default (``includeInactive: false``)."""
    levels = sorted((lv for lv in item["_levels"].values() if lv["location"]["isActive"]),
                    key=lambda lv: lv["location"]["_num"])
    return _searched(ctx, levels, args.get("query"), LEVEL_SEARCH)


def _companies(ctx: Context, _: Any, args: dict[str, Any]) -> list[Any]:
    return _searched(ctx, ctx.state.companies, args.get("query"), COMPANY_SEARCH)


def _orders(ctx: Context, _: Any, args: dict[str, Any]) -> list[Any]:
    with ctx.state.lock:
        orders = list(ctx.state.orders)
    return _searched(ctx, orders, args.get("query"), ORDER_SEARCH)


def _bulk_operations(ctx: Context, _: Any, args: dict[str, Any]) -> list[Any]:
    """Newest first: Shopify's default sort for ``bulkOperations``."""
    return _searched(ctx, ctx.bulk.all()[::-1], args.get("query"), BULK_SEARCH)


SOURCES: dict[tuple[str, str], Source] = {
    ("QueryRoot", "locations"): _locations,
    ("QueryRoot", "productVariants"): _variants,
    ("QueryRoot", "companies"): _companies,
    ("QueryRoot", "orders"): _orders,
    ("QueryRoot", "bulkOperations"): _bulk_operations,
    ("Location", "inventoryLevels"): _location_levels,
    ("InventoryItem", "inventoryLevels"): _item_levels,
    ("InventoryItem", "variants"): lambda ctx, item, args: [item["_variant"]],
    ("Company", "locations"): lambda ctx, company, args: _searched(
        ctx, company["_locations"], args.get("query"), COMPANY_LOCATION_SEARCH),
    ("Company", "contacts"): lambda ctx, company, args: company["_contacts"],
    ("Order", "lineItems"): lambda ctx, order, args: order["_lines"],
}


def _shop(ctx: Context, _: Any, args: dict[str, Any]) -> dict[str, Any]:
    return {**ctx.state.shop, "plan": ctx.plan}


def _location(ctx: Context, _: Any, args: dict[str, Any]) -> dict[str, Any] | None:
    if args.get("id") is None:
        return ctx.state.locations[0]
    return ctx.state.locations_by_id.get(args["id"])


def _variants_count(ctx: Context, _: Any, args: dict[str, Any]) -> dict[str, Any]:
    total = len(_variants(ctx, None, args))
    limit = args.get("limit")
    if limit is not None and total > limit:
        return {"count": limit, "precision": "AT_LEAST"}
    return {"count": total, "precision": "EXACT"}


def _customer_by_identifier(ctx: Context, _: Any, args: dict[str, Any]) -> dict[str, Any] | None:
    identifier = {k: v for k, v in args["identifier"].items() if v is not None}
    if len(identifier) != 1:
        raise GraphQLError("CustomerIdentifierInput requires exactly one of id, customId, emailAddress, phoneNumber.")
    (kind, value), = identifier.items()
    customers = ctx.state.customers
    if kind == "id":
        return ctx.state.customers_by_id.get(value)
    if kind == "customId":
        key = f"{value['namespace']}.{value['key']}"
        matches = [c for c in customers if c["_metafields"].get(key) == value["value"]]
    elif kind == "emailAddress":
        matches = [c for c in customers if (c["defaultEmailAddress"] or {}).get("emailAddress") == value]
    else:
        matches = [c for c in customers if (c["defaultPhoneNumber"] or {}).get("phoneNumber") == value]
    return matches[0] if matches else None


def _quantities(ctx: Context, level: dict[str, Any], args: dict[str, Any]) -> list[dict[str, Any]]:
    unknown = [name for name in args["names"] if name not in QUANTITY_NAMES]
    if unknown:
        raise GraphQLError(f"Invalid quantity name(s): {', '.join(unknown)}. Valid: {', '.join(QUANTITY_NAMES)}.")
    return [
        {"id": f"gid://shopify/InventoryQuantity/{level['item']['_num']}?name={name}", "name": name,
         "quantity": ctx.state.quantity(level, name), "updatedAt": level["updatedAt"]}
        for name in args["names"]
    ]


def _inventory_quantity(ctx: Context, variant: dict[str, Any], args: dict[str, Any]) -> int:
    return sum(level["_q"]["available"] for level in variant["inventoryItem"]["_levels"].values())


RESOLVERS: dict[tuple[str, str], Resolver] = {
    ("QueryRoot", "shop"): _shop,
    ("QueryRoot", "location"): _location,
    ("QueryRoot", "productVariantsCount"): _variants_count,
    ("QueryRoot", "inventoryItem"): lambda ctx, _, args: ctx.state.items_by_id.get(args["id"]),
    ("QueryRoot", "customerByIdentifier"): _customer_by_identifier,
    ("QueryRoot", "customer"): lambda ctx, _, args: ctx.state.customers_by_id.get(args["id"]),
    ("QueryRoot", "order"): lambda ctx, _, args: ctx.state.orders_by_id.get(args["id"]),
    ("QueryRoot", "bulkOperation"): lambda ctx, _, args: ctx.bulk.get(args["id"]),
    ("InventoryItem", "inventoryLevel"): lambda ctx, item, args: item["_levels"].get(args["locationId"]),
    ("InventoryLevel", "quantities"): _quantities,
    ("ProductVariant", "inventoryQuantity"): _inventory_quantity,
}
