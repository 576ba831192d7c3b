"""Field resolvers of the Shopify sandbox, shared by ordinary queries and bulk operations.

Connections are defined once as *sources* (every matching item, in order); a query pages through
a source with ``first``/``after``, a bulk operation walks all of it. Fields that need an access
scope check it here, so bulk operations are held to the same scopes.
"""

from __future__ import annotations

import base64
import functools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar, cast

from graphql import GraphQLError

from lnb_pipeline.sandbox.scenario import QUANTITY_NAMES, parse_timestamp
from lnb_pipeline.sandbox.shopify.search import Getter, SearchSyntaxError, search
from lnb_pipeline.sandbox.shopify.state import (
    APP_NAMESPACE,
    ShopifyState,
    gid,
    level_indexed,
)

if TYPE_CHECKING:
    from lnb_pipeline.sandbox.shopify.bulk import BulkOperations

MAX_PAGE_SIZE = 250
ACCESS_SCOPES_DOCUMENTATION = "https://shopify.dev/api/usage/access-scopes"
RECENT_ORDERS = timedelta(days=60)
"""How far back orders are visible without ``read_all_orders``."""

Source = Callable[["Context", Any, dict[str, Any]], list[Any]]
Resolver = Callable[["Context", Any, dict[str, Any]], Any]
R = TypeVar("R", bound=Resolver)
FieldKey = tuple[str, str]
"""A field as ``(type name, field name)``."""


@dataclass
class Context:
    state: ShopifyState
    bulk: BulkOperations
    plan: dict[str, Any]
    order_search_lag_seconds: float = 0.0
    """How long a written order stays out of ``orders(query:)`` results: Shopify's search index lags."""
    search_warnings: list[dict[str, Any]] = field(default_factory=list)

    @property
    def granted(self) -> frozenset[str]:
        """The shop's scopes, with the ``read_`` scope each ``write_`` scope implies."""
        scopes = self.state.scopes
        return frozenset({*scopes, *(f"read_{s.removeprefix('write_')}" for s in scopes if s.startswith("write_"))})


REQUIRED_SCOPES: dict[FieldKey, tuple[str, ...]] = {
    ("QueryRoot", "productVariants"): ("read_products",),
    ("QueryRoot", "productVariantsCount"): ("read_products",),
    ("QueryRoot", "inventoryItem"): ("read_inventory",),
    ("InventoryItem", "inventoryLevel"): ("read_inventory",),
    ("InventoryItem", "inventoryLevels"): ("read_inventory",),
    ("Location", "inventoryLevels"): ("read_inventory",),
    ("QueryRoot", "locations"): ("read_locations",),
    ("QueryRoot", "location"): ("read_locations",),
    ("QueryRoot", "customer"): ("read_customers",),
    ("QueryRoot", "customerByIdentifier"): ("read_customers",),
    ("QueryRoot", "companies"): ("read_customers", "read_companies"),
    ("QueryRoot", "orders"): ("read_orders",),
    ("QueryRoot", "order"): ("read_orders",),
    ("QueryRoot", "orderByIdentifier"): ("read_orders",),
    ("Mutation", "orderCreate"): ("write_orders",),
}
"""Fields and the access scopes of which each needs one (a ``write_`` scope grants its ``read_``)."""
DEFINITION_SCOPES = {"CUSTOMER": ("read_customers",), "ORDER": ("read_orders",)}
"""``metafieldDefinitions`` needs the read scope of the owner type asked for."""
DEFINITION_WRITE_SCOPES = {"CUSTOMER": ("write_customers",), "ORDER": ("write_orders",)}
"""``metafieldDefinitionCreate`` needs "access to the resource type" of the definition (Shopify's words);
the sandbox reads that as its write scope, the stricter plausible rule."""


def require_scope(ctx: Context, field_name: str, scopes: tuple[str, ...]) -> None:
    """Refuse as Shopify does when the app holds none of ``scopes``: a GraphQL error on the field."""
    if ctx.granted.isdisjoint(scopes):
        required = " or ".join(f"`{scope}` access scope" for scope in scopes)
        raise GraphQLError(f"Access denied for {field_name} field. Required access: {required}.", extensions={
            "code": "ACCESS_DENIED", "documentation": ACCESS_SCOPES_DOCUMENTATION, "requiredAccess": f"{required}.",
        })


def _scoped(table: dict[FieldKey, R]) -> dict[FieldKey, R]:
    """``table`` with each field listed in ``REQUIRED_SCOPES`` checking its scopes first."""
    def guarded(key: FieldKey, resolve: R) -> R:
        @functools.wraps(resolve)
        def resolve_in_scope(ctx: Context, obj: Any, args: dict[str, Any]) -> Any:
            require_scope(ctx, key[1], REQUIRED_SCOPES[key])
            return resolve(ctx, obj, args)
        return cast(R, resolve_in_scope)
    return {key: guarded(key, resolve) if key in REQUIRED_SCOPES else resolve for key, resolve in table.items()}


def order_visible(ctx: Context, order: dict[str, Any]) -> bool:
    """Without ``read_all_orders`` Shopify shows only the last 60 days of orders (counted, by assumption,
    from ``processedAt``)."""
    return ("read_all_orders" in ctx.granted
            or parse_timestamp(order["processedAt"]) >= datetime.now(UTC) - RECENT_ORDERS)


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
    if not query:
        return items
    try:
        return search(items, query, fields, ctx.search_warnings)
    except SearchSyntaxError as error:
        raise GraphQLError(f"Invalid search query {query!r}: {error}.") from None


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
    "test": lambda o: o["test"],
    "created_at": lambda o: o["createdAt"],
    "updated_at": lambda o: o["updatedAt"],
    "id": lambda o: _number(o["id"]),
    "default": lambda o: [o["name"], o["sourceIdentifier"], o["poNumber"]],
}
DEFINITION_SEARCH: dict[str, Getter] = {
    "namespace": lambda d: d["namespace"],
    "key": lambda d: d["key"],
    "type": lambda d: d["type"]["name"],
    "owner_type": lambda d: d["ownerType"],
    "id": lambda d: _number(d["id"]),
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


def _searched_levels(ctx: Context, levels: list[dict[str, Any]], query: str | None) -> list[Any]:
    """A search sees a changed level only once the lagging index holds its change, as for orders."""
    if query:
        indexed_before = time.monotonic() - ctx.order_search_lag_seconds
        with ctx.state.lock:
            levels = [level for level in levels if level_indexed(level, indexed_before)]
    return _searched(ctx, levels, query, LEVEL_SEARCH)


def _location_levels(ctx: Context, location: dict[str, Any], args: dict[str, Any]) -> list[Any]:
    return _searched_levels(ctx, ctx.state.levels_at(location["id"]), args.get("query"))


def _item_levels(ctx: Context, item: dict[str, Any], args: dict[str, Any]) -> list[Any]:
    """Levels at active locations only, as Shopify answers by default (``includeInactive: false``)."""
    levels = sorted((lv for lv in item["_levels"].values() if lv["location"]["isActive"]),
                    key=lambda lv: lv["location"]["_num"])
    return _searched_levels(ctx, levels, args.get("query"))


def _companies(ctx: Context, _: Any, args: dict[str, Any]) -> list[Any]:
    return _searched(ctx, ctx.state.companies, args.get("query"), COMPANY_SEARCH)


def _orders(ctx: Context, _: Any, args: dict[str, Any]) -> list[Any]:
    """Without a query, the orders as stored; a search sees only what the lagging index holds."""
    query = args.get("query")
    indexed_before = time.monotonic() - ctx.order_search_lag_seconds
    with ctx.state.lock:
        orders = [order for order in ctx.state.orders
                  if order_visible(ctx, order) and (not query or order["_written_at"] <= indexed_before)]
    return _searched(ctx, orders, query, ORDER_SEARCH)


def _metafield_definitions(ctx: Context, _: Any, args: dict[str, Any]) -> list[Any]:
    owner_type = args["ownerType"]
    require_scope(ctx, "metafieldDefinitions", DEFINITION_SCOPES[owner_type])
    definitions = [d for d in ctx.state.definitions if d["ownerType"] == owner_type
                   and args.get("namespace") in (None, d["namespace"]) and args.get("key") in (None, d["key"])]
    return _searched(ctx, definitions, args.get("query"), DEFINITION_SEARCH)


def _bulk_operations(ctx: Context, _: Any, args: dict[str, Any]) -> list[Any]:
    """Newest first: Shopify's default sort for ``bulkOperations``."""
    return _searched(ctx, ctx.bulk.all()[::-1], args.get("query"), BULK_SEARCH)


SOURCES: dict[FieldKey, Source] = _scoped({
    ("QueryRoot", "locations"): _locations,
    ("QueryRoot", "productVariants"): _variants,
    ("QueryRoot", "companies"): _companies,
    ("QueryRoot", "orders"): _orders,
    ("QueryRoot", "metafieldDefinitions"): _metafield_definitions,
    ("QueryRoot", "bulkOperations"): _bulk_operations,
    ("Location", "inventoryLevels"): _location_levels,
    ("InventoryItem", "inventoryLevels"): _item_levels,
    ("InventoryItem", "variants"): lambda ctx, item, args: [item["_variant"]],
    ("Company", "locations"): lambda ctx, company, args: _searched(
        ctx, company["_locations"], args.get("query"), COMPANY_LOCATION_SEARCH),
    ("Company", "contacts"): lambda ctx, company, args: company["_contacts"],
    ("Order", "lineItems"): lambda ctx, order, args: order["_lines"],
})


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


def _current_app_installation(ctx: Context, _: Any, args: dict[str, Any]) -> dict[str, Any]:
    return {"id": gid("AppInstallation", 1), "accessScopes": [{"handle": scope} for scope in ctx.state.scopes]}


def _single_identifier(identifier: dict[str, Any], input_name: str, kinds: tuple[str, ...]) -> tuple[str, Any]:
    given = {k: v for k, v in identifier.items() if v is not None}
    if len(given) != 1:
        raise GraphQLError(f"{input_name} requires exactly one of {', '.join(kinds)}.")
    (kind, value), = given.items()
    return kind, value


def _by_custom_id(ctx: Context, owner_type: str, custom_id: dict[str, Any]) -> dict[str, Any] | None:
    """The owner of a custom id. Only a metafield definition of type ``id`` makes one: without it
    there is nothing to look up by, which the sandbox refuses instead of answering null."""
    namespace, key = custom_id.get("namespace") or APP_NAMESPACE, custom_id["key"]
    if not ctx.state.is_custom_id(owner_type, namespace, key):
        raise GraphQLError(
            f"{namespace}.{key} is not a custom id of {owner_type}: no metafield definition of type id "
            "covers it.", extensions={"code": "BAD_REQUEST"})
    return ctx.state.custom_ids.get((owner_type, namespace, key, custom_id["value"]))


def _customer_by_identifier(ctx: Context, _: Any, args: dict[str, Any]) -> dict[str, Any] | None:
    kind, value = _single_identifier(args["identifier"], "CustomerIdentifierInput",
                                     ("id", "customId", "emailAddress", "phoneNumber"))
    if kind == "id":
        return ctx.state.customers_by_id.get(value)
    if kind == "customId":
        return _by_custom_id(ctx, "CUSTOMER", value)
    if kind == "emailAddress":
        matches = [c for c in ctx.state.customers if (c["defaultEmailAddress"] or {}).get("emailAddress") == value]
    else:
        matches = [c for c in ctx.state.customers if (c["defaultPhoneNumber"] or {}).get("phoneNumber") == value]
    return matches[0] if matches else None


def _order(ctx: Context, _: Any, args: dict[str, Any]) -> dict[str, Any] | None:
    order = ctx.state.orders_by_id.get(args["id"])
    return order if order is not None and order_visible(ctx, order) else None


def _order_by_identifier(ctx: Context, _: Any, args: dict[str, Any]) -> dict[str, Any] | None:
    """Read-your-writes, like ``order(id)``: no search index in between."""
    kind, value = _single_identifier(args["identifier"], "OrderIdentifierInput", ("id", "customId"))
    order = ctx.state.orders_by_id.get(value) if kind == "id" else _by_custom_id(ctx, "ORDER", value)
    return order if order is not None and order_visible(ctx, order) else None


def _create_metafield_definition(ctx: Context, _: Any, args: dict[str, Any]) -> dict[str, Any]:
    definition = args["definition"]
    require_scope(ctx, "metafieldDefinitionCreate", DEFINITION_WRITE_SCOPES[definition["ownerType"]])
    return ctx.state.create_definition(definition)


def _metafield(ctx: Context, owner: dict[str, Any], args: dict[str, Any]) -> dict[str, Any] | None:
    return owner["_metafields"].get((args.get("namespace") or APP_NAMESPACE, args["key"]))


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


RESOLVERS: dict[FieldKey, Resolver] = _scoped({
    ("QueryRoot", "shop"): _shop,
    ("QueryRoot", "currentAppInstallation"): _current_app_installation,
    ("QueryRoot", "location"): _location,
    ("QueryRoot", "productVariantsCount"): _variants_count,
    ("QueryRoot", "inventoryItem"): lambda ctx, _, args: ctx.state.items_by_id.get(args["id"]),
    ("QueryRoot", "customerByIdentifier"): _customer_by_identifier,
    ("QueryRoot", "customer"): lambda ctx, _, args: ctx.state.customers_by_id.get(args["id"]),
    ("QueryRoot", "order"): _order,
    ("QueryRoot", "orderByIdentifier"): _order_by_identifier,
    ("QueryRoot", "bulkOperation"): lambda ctx, _, args: ctx.bulk.get(args["id"]),
    ("InventoryItem", "inventoryLevel"): lambda ctx, item, args: item["_levels"].get(args["locationId"]),
    ("InventoryLevel", "quantities"): _quantities,
    ("ProductVariant", "inventoryQuantity"): _inventory_quantity,
    ("Customer", "metafield"): _metafield,
    ("Order", "metafield"): _metafield,
    ("Mutation", "metafieldDefinitionCreate"): _create_metafield_definition,
})
