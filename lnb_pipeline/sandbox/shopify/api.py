"""The Shopify Admin GraphQL sandbox: ``POST /admin/api/{version}/graphql.json``.

Real GraphQL (graphql-core) over an SDL subset of Shopify's 2026-04 Admin schema, with Shopify's
auth, access scopes, custom scalars, cost calculation, leaky-bucket throttling, search syntax (and
its lagging index) and bulk operations, the order limit of development stores, and the client
credentials grant (``POST /admin/oauth/access_token``) that Dev Dashboard apps get their expiring
tokens from. ``GET /admin/orders/<n>`` and the other admin record pages the Dagster UI links to answer
a small HTML page about the record (``admin.py``).
"""

from __future__ import annotations

import contextlib
import copy
import math
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from dataclasses import fields as dataclass_fields
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from importlib.resources import files
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLError,
    GraphQLScalarType,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    StringValueNode,
    ValueNode,
    build_schema,
    execute,
    parse,
    validate,
)
from graphql.execution.values import get_variable_values

from lnb_pipeline.sandbox.http import Request, Response, SandboxApi
from lnb_pipeline.sandbox.scenario import (
    DECIMAL_AMOUNT,
    DEFAULT_SCOPES,
    STORED_QUANTITY_NAMES,
    load_scenario,
    parse_timestamp,
    validate_scenario,
)
from lnb_pipeline.sandbox.shopify.admin import admin_page
from lnb_pipeline.sandbox.shopify.bulk import (
    BULK_ERROR_CODES,
    BulkOperations,
    BulkQueryError,
)
from lnb_pipeline.sandbox.shopify.cost import (
    MAX_QUERY_COST,
    PLANS,
    LeakyBucket,
    Plan,
    QueryCost,
)
from lnb_pipeline.sandbox.shopify.movement import LevelChange, StockMovement
from lnb_pipeline.sandbox.shopify.orders import B2B_PLANS, create_order
from lnb_pipeline.sandbox.shopify.resolvers import (
    REQUIRED_SCOPES,
    RESOLVERS,
    SOURCES,
    Context,
    page,
    require_scope,
)
from lnb_pipeline.sandbox.shopify.state import (
    ShopifyState,
    format_timestamp,
    gid,
    now_iso,
    stamp_level,
)

SCHEMA_VERSION = "2026-04"
GRAPHQL_PATH = re.compile(r"^/admin/api/(?P<version>\d{4}-(?:01|04|07|10)|unstable)/graphql\.json$")
BULK_EXPIRE_PATH = re.compile(r"^bulk/(?P<number>\d+)/expire$")
DEFAULT_TOKEN = "sandbox-token"
INVALID_TOKEN_MESSAGE = "[API] Invalid API key or access token (unrecognized login or wrong password)"
TOKEN_PATH = "/admin/oauth/access_token"
DEFAULT_CLIENT_ID = "sandbox-shopify-client"
DEFAULT_CLIENT_SECRET = "sandbox-shopify-secret"
DEFAULT_TOKEN_LIFETIME_SECONDS = 86399
"""What Shopify's client credentials grant gives: 24 hours less a second."""
GRANTED_SCOPES = ",".join(DEFAULT_SCOPES)
"""The scopes docs/production.md asks for, as the grant's ``scope`` lists them (a scenario's ``shop.scopes`` changes them)."""
TOKEN_PARAMETERS = ("grant_type", "client_id", "client_secret")
REDACTED = "***"
DEFAULT_ORDER_SEARCH_LAG_SECONDS = 3.0
"""Shopify's search index lags writes by an undocumented time; a few seconds is what reports describe."""
DEVELOPMENT_ORDERS_MESSAGE = ("Too many orders: development and trial stores can create at most {limit} new orders "
                              "a minute with orderCreate (sandbox window: {window:g} s). Retry after {wait} s.")
URL_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
UNSIGNED_INT64_MAX = 2**64 - 1


def _parse_decimal(value: Any) -> Decimal:
    """``Decimal`` and ``Money``: a decimal number in a string (``"29.99"``); a JSON number is refused."""
    if not isinstance(value, str) or not DECIMAL_AMOUNT.fullmatch(value):
        raise ValueError(f'{value!r} is not a decimal number in a string, like "29.99"')
    return Decimal(value)


def _serialize_decimal(value: Any) -> str:
    return str(value if isinstance(value, Decimal) and value.is_finite() else _parse_decimal(value))


def _serialize_datetime(value: Any) -> str:
    return format_timestamp(value if isinstance(value, datetime) else parse_timestamp(value))


def _parse_url(value: Any) -> str:
    """An absolute URL (RFC 3986): a scheme and a host, no whitespace."""
    if not isinstance(value, str) or any(char.isspace() for char in value):
        raise ValueError(f"{value!r} is not a URL")
    parts = urlsplit(value)
    if not URL_SCHEME.fullmatch(parts.scheme) or not parts.netloc:
        raise ValueError(f"{value!r} is not an absolute URL with a scheme and a host, like https://example.com")
    return value


def _parse_unsigned_int64(value: Any) -> int:
    """``UnsignedInt64``: base-10 digits in a string (``"50"``), at most 2^64 - 1; a JSON number is refused."""
    if not isinstance(value, str) or not value.isascii() or not value.isdigit() or int(value) > UNSIGNED_INT64_MAX:
        raise ValueError(f'{value!r} is not an unsigned 64-bit integer in a string, like "50"')
    return int(value)


def _serialize_unsigned_int64(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= UNSIGNED_INT64_MAX:
        return str(value)
    return str(_parse_unsigned_int64(value))


SCALARS: dict[str, tuple[Callable[[Any], Any], Callable[[Any], str]]] = {
    "DateTime": (parse_timestamp, _serialize_datetime),
    "Decimal": (_parse_decimal, _serialize_decimal),
    "Money": (_parse_decimal, _serialize_decimal),
    "URL": (_parse_url, _parse_url),
    "UnsignedInt64": (_parse_unsigned_int64, _serialize_unsigned_int64),
}
"""Shopify's custom scalars: how an input value is read (JSON variable or string literal) and how a
value is written out. ``build_schema`` leaves custom scalars accepting anything."""


def _string_literal(parse_value: Callable[[Any], Any]) -> Callable[..., Any]:
    def parse_literal(node: ValueNode, _variables: dict[str, Any] | None = None) -> Any:
        if not isinstance(node, StringValueNode):
            raise ValueError("a string is expected")
        return parse_value(node.value)
    return parse_literal


def _bind_scalars(schema: GraphQLSchema) -> None:
    for name, (parse_value, serialize) in SCALARS.items():
        scalar = schema.type_map[name]
        assert isinstance(scalar, GraphQLScalarType)
        scalar.parse_value = parse_value  # type: ignore[method-assign]
        scalar.parse_literal = _string_literal(parse_value)  # type: ignore[method-assign]
        scalar.serialize = serialize  # type: ignore[method-assign]


@dataclass(frozen=True)
class StoreRules:
    """Shopify behaviours whose numbers Shopify leaves undocumented, or that tests need shorter."""

    order_search_lag_seconds: float = DEFAULT_ORDER_SEARCH_LAG_SECONDS
    """An order written less than this ago is not yet found by ``orders(query:)``."""
    order_rate_window_seconds: float = 60.0
    """The rolling window of a development store's order limit (Shopify: a minute)."""
    orders_per_window: int = 5
    """New orders a development store accepts in that window (Shopify: five)."""

    def changed(self, payload: dict[str, Any]) -> StoreRules:
        """These rules with the settings of ``payload`` that name one; ``ValueError`` if a value does not fit."""
        changes = {f.name: payload[f.name] for f in dataclass_fields(self) if f.name in payload}
        for name, value in changes.items():
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if name == "orders_per_window" and not (number and isinstance(value, int) and value >= 1):
                raise ValueError("orders_per_window must be a positive integer")
            if name == "order_rate_window_seconds" and not (number and value > 0):
                raise ValueError("order_rate_window_seconds must be a positive number")
            if name == "order_search_lag_seconds" and not (number and value >= 0):
                raise ValueError("order_search_lag_seconds must be a non-negative number")
        return replace(self, **changes)


@lru_cache(maxsize=512)
def _parse(query: str) -> DocumentNode | GraphQLError:
    """Parsed documents are shared read-only between threads; a syntax error is returned, not raised."""
    try:
        return parse(query)
    except GraphQLError as error:
        return error


def _operation(document: DocumentNode, name: str | None) -> OperationDefinitionNode | None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name:
        return next((op for op in operations if op.name and op.name.value == name), None)
    return operations[0] if len(operations) == 1 else None


@dataclass(frozen=True)
class _InstalledApp:
    """The Dev Dashboard app the sandbox shop has installed, and how long its tokens last."""

    client_id: str
    client_secret: str = field(repr=False)
    token_lifetime_seconds: int


def _lifetime(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError("token_lifetime_seconds must be a positive integer (Shopify's expires_in is whole seconds)")
    return value


def _credential(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string")
    return value


def _token_parameters(request: Request) -> dict[str, str]:
    """The grant's parameters: form-encoded as Shopify documents, or JSON as Shopify's own Node library
    (``@shopify/shopify-api``) sends them. A body of neither kind has no parameters."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        try:
            body = request.json()
        except ValueError:
            return {}
        return {k: v for k, v in body.items() if isinstance(v, str)} if isinstance(body, dict) else {}
    return dict(parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True))


def _oauth_error(error: str, description: str) -> Response:
    """An RFC 6749 §5.2 error answer. Shopify documents no error answer for this grant; the refusals
    reported in practice (``shop_not_permitted``) are HTTP 400, so the sandbox uses 400 and the RFC's body."""
    return Response.json({"error": error, "error_description": description}, 400)


def _order_creates(operation: OperationDefinitionNode) -> int:
    """How many ``orderCreate`` fields a mutation holds."""
    if operation.operation != OperationType.MUTATION:
        return 0
    return sum(isinstance(s, FieldNode) and s.name.value == "orderCreate" for s in operation.selection_set.selections)


def _create_order(api: ShopifyApi, context: Context, args: dict[str, Any]) -> dict[str, Any]:
    require_scope(context, "orderCreate", REQUIRED_SCOPES[("Mutation", "orderCreate")])
    return create_order(context.state, api.plan.name, args["order"], args.get("options"))


def _bind_resolvers(schema: GraphQLSchema, api: ShopifyApi) -> None:
    """Point each custom field of the schema at the sandbox's resolvers."""
    for (type_name, field_name), source in SOURCES.items():
        schema.type_map[type_name].fields[field_name].resolve = (  # type: ignore[attr-defined]
            lambda obj, info, _source=source, **args: page(_source(info.context, obj, args), args))
    for (type_name, field_name), resolver in RESOLVERS.items():
        schema.type_map[type_name].fields[field_name].resolve = (  # type: ignore[attr-defined]
            lambda obj, info, _resolver=resolver, **args: _resolver(info.context, obj, args))
    mutations = schema.type_map["Mutation"].fields  # type: ignore[attr-defined]
    mutations["orderCreate"].resolve = lambda _, info, **args: _create_order(api, info.context, args)
    mutations["bulkOperationRunQuery"].resolve = lambda _, info, **args: api.run_bulk_query(
        args["query"], args["groupObjects"])
    mutations["bulkOperationCancel"].resolve = lambda _, info, **args: api.cancel_bulk(args["id"])


class ShopifyApi(SandboxApi):
    """One sandbox shop: its data, token, plan and cost bucket."""

    name = "shopify"

    def __init__(self, scenario: dict[str, Any], *, token: str = DEFAULT_TOKEN, plan: str = "standard",
                 client_id: str = DEFAULT_CLIENT_ID, client_secret: str = DEFAULT_CLIENT_SECRET,
                 token_lifetime_seconds: int = DEFAULT_TOKEN_LIFETIME_SECONDS,
                 rules: StoreRules = StoreRules()) -> None:
        super().__init__()
        if plan not in PLANS:
            raise ValueError(f"unknown plan {plan!r}; choose one of {', '.join(PLANS)}")
        self.schema = build_schema(files("lnb_pipeline.sandbox.shopify").joinpath("schema.graphql").read_text())
        _bind_scalars(self.schema)
        _bind_resolvers(self.schema, self)
        self.rules = self._initial_rules = rules
        self._initial = scenario
        self.state = ShopifyState(copy.deepcopy(scenario))
        self.token = self._initial_token = token
        self.app = self._initial_app = _InstalledApp(client_id, client_secret,
                                                                _lifetime(token_lifetime_seconds))
        self._issued_tokens: dict[str, float] = {}
        """Token -> ``time.monotonic()`` at which it expires."""
        self._tokens_lock = threading.Lock()
        self.plan = self._initial_plan = PLANS[plan]
        self.bucket = LeakyBucket(self.plan)
        self.bulk = BulkOperations(self.schema, self._context)
        self.movement: StockMovement | None = None

    def start_with(self, rules: StoreRules) -> None:
        """Make ``rules`` what the shop runs with now and what a reset restores."""
        self.rules = self._initial_rules = rules

    def _context(self) -> Context:
        development = self.state.development
        return Context(state=self.state, bulk=self.bulk, order_search_lag_seconds=self.rules.order_search_lag_seconds,
                       plan={
                           "partnerDevelopment": development,
                           "shopifyPlus": self.plan.name in B2B_PLANS,
                           "publicDisplayName": "Development" if development else self.plan.name.capitalize(),
                       })

    def run_bulk_query(self, query: str, group_objects: bool) -> dict[str, Any]:
        try:
            return {"bulkOperation": self.bulk.start(query, group_objects), "userErrors": []}
        except BulkQueryError as error:
            return {"bulkOperation": None, "userErrors": [{"field": ["query"], "message": str(error), "code": error.code}]}

    def cancel_bulk(self, operation_id: str) -> dict[str, Any]:
        try:
            return {"bulkOperation": self.bulk.cancel(operation_id), "userErrors": []}
        except BulkQueryError as error:
            return {"bulkOperation": self.bulk.get(operation_id), "userErrors": [{"field": ["id"], "message": str(error)}]}

    def request_keys(self, request: Request) -> list[str]:
        if not GRAPHQL_PATH.match(request.path):
            return [f"{request.method} {request.path}"]
        document = _parse(self._query_text(request))
        if isinstance(document, GraphQLError):
            return ["(unparsable query)"]
        fields = [
            selection.name.value
            for definition in document.definitions if isinstance(definition, OperationDefinitionNode)
            for selection in definition.selection_set.selections if hasattr(selection, "name")
        ]
        return fields or ["(no fields)"]

    def log_entry(self, request: Request) -> dict[str, Any]:
        if request.path == TOKEN_PATH:
            parameters = _token_parameters(request)
            return {"method": request.method, "path": request.path, "query": None,
                    "variables": {k: REDACTED if k == "client_secret" else v for k, v in parameters.items()}}
        body = self._body(request)
        return {"method": request.method, "path": request.path, "query": body.get("query"),
                "variables": body.get("variables")}

    @staticmethod
    def _body(request: Request) -> dict[str, Any]:
        try:
            body = request.json()
        except ValueError:
            return {}
        return body if isinstance(body, dict) else {}

    def _query_text(self, request: Request) -> str:
        query = self._body(request).get("query")
        return query if isinstance(query, str) else ""

    def _cost_extension(self, requested: int, actual: int | None) -> dict[str, Any]:
        return {"cost": {"requestedQueryCost": requested, "actualQueryCost": actual,
                         "throttleStatus": self.bucket.status()}}

    def throttled_response(self, request: Request) -> Response:
        """The injected ``throttle`` fault: THROTTLED in a GraphQL answer, with the bucket emptied and the
        query priced, since Shopify only throttles a query that costs more than the bucket holds. The token
        endpoint, outside GraphQL, answers HTTP 429."""
        if request.path == TOKEN_PATH:
            self.stats.count("throttled")
            return Response.json({"errors": "Too Many Requests"}, 429, {"Retry-After": "1"})
        self.bucket.empty()
        return self._throttled(self._requested_cost(request))

    def _requested_cost(self, request: Request) -> int:
        """What the request's query would cost, 0 if it is no executable query."""
        body = self._body(request)
        document = _parse(self._query_text(request))
        variables = body.get("variables") or {}
        if isinstance(document, GraphQLError) or not isinstance(variables, dict):
            return 0
        operation = _operation(document, body.get("operationName"))
        if operation is None or validate(self.schema, document):
            return 0
        coerced = get_variable_values(self.schema, operation.variable_definitions or [], variables)
        if isinstance(coerced, list):
            return 0
        fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
        return QueryCost(self.schema, fragments, coerced).requested(operation)

    def _throttled(self, requested: int) -> Response:
        self.stats.count("throttled")
        return Response.json({
            "errors": [{"message": "Throttled", "extensions": {
                "code": "THROTTLED",
                "documentation": "https://shopify.dev/api/usage/rate-limits",
            }}],
            "extensions": self._cost_extension(requested, None),
        }, headers=self._headers())

    @staticmethod
    def _headers() -> dict[str, str]:
        return {"X-Shopify-API-Version": SCHEMA_VERSION}

    def handle(self, request: Request) -> Response:
        if request.path == TOKEN_PATH:
            if request.method != "POST":
                return Response.json({"errors": "Method Not Allowed: use POST"}, 405)
            return self._issue_token(request)
        if request.method == "GET" and (record_page := admin_page(self.state, request.path)) is not None:
            return record_page
        if not GRAPHQL_PATH.match(request.path):
            return Response.json({"errors": "Not Found"}, 404)
        if request.method != "POST":
            return Response.json({"errors": "Method Not Allowed: use POST"}, 405)
        if not self._accepts(request.headers.get("x-shopify-access-token")):
            return Response.json({"errors": INVALID_TOKEN_MESSAGE}, 401)
        body = self._body(request)
        query, variables = body.get("query"), body.get("variables") or {}
        if not isinstance(query, str) or not query.strip() or not isinstance(variables, dict):
            return Response.json({"errors": {"query": "Required parameter missing or invalid"}}, 400)
        document = _parse(query)
        if isinstance(document, GraphQLError):
            return self._errors([document.formatted])
        validation_errors = validate(self.schema, document)
        if validation_errors:
            return self._errors([e.formatted for e in validation_errors])
        operation = _operation(document, body.get("operationName"))
        if operation is None:
            return self._errors([{"message": "An operation name is required when a document holds several."}])
        coerced = get_variable_values(self.schema, operation.variable_definitions or [], variables)
        if isinstance(coerced, list):
            return self._errors([error.formatted for error in coerced])
        fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
        pricing = QueryCost(self.schema, fragments, coerced)
        requested = pricing.requested(operation)
        if requested > MAX_QUERY_COST:
            self.stats.count("max_cost_exceeded")
            return self._errors([{
                "message": f"Query cost is {requested}, which exceeds the single query max cost limit "
                           f"({MAX_QUERY_COST}).",
                "extensions": {"code": "MAX_COST_EXCEEDED", "cost": requested, "maxCost": MAX_QUERY_COST},
            }], self._cost_extension(requested, None))
        creates = _order_creates(operation)
        state = self.state
        # orderCreate runs under the shop's lock, so a development store's quota is checked and used at once.
        with state.lock if creates else contextlib.nullcontext():
            if creates and state.development:
                wait = self._order_slot_wait(state, creates)
                if wait:
                    return self._orders_limited(wait)
            if not self.bucket.try_take(requested):
                return self._throttled(requested)
            context = self._context()
            result = execute(self.schema, document, variable_values=variables,
                             operation_name=body.get("operationName"), context_value=context)
        actual = pricing.actual(operation, result.data) if result.data is not None else 0
        self.bucket.refund(max(0, requested - actual))
        self.stats.count("points_requested", requested)
        self.stats.count("points_spent", actual)
        payload: dict[str, Any] = {}
        if result.errors:
            payload["errors"] = [e.formatted for e in result.errors]
        payload["data"] = result.data
        extensions = self._cost_extension(requested, actual)
        if context.search_warnings:
            extensions["search"] = [{"warnings": context.search_warnings}]
        payload["extensions"] = extensions
        return Response.json(payload, headers=self._headers())

    def _order_slot_wait(self, state: ShopifyState, wanted: int) -> int:
        """Whole seconds until a development store's rolling window has room for ``wanted`` new orders;
        0 when it has room now."""
        window, limit = self.rules.order_rate_window_seconds, self.rules.orders_per_window
        now = time.monotonic()
        recent = sorted(order["_written_at"] for order in state.orders if order["_written_at"] > now - window)
        excess = len(recent) + wanted - limit
        if excess <= 0:
            return 0
        if excess > len(recent):
            return math.ceil(window)
        return max(1, math.ceil(recent[excess - 1] + window - now))

    def _orders_limited(self, wait: int) -> Response:
        """A development store past its order limit. Shopify documents the limit, not the refusal: the
        sandbox answers as a throttle outside GraphQL does, HTTP 429 with ``Retry-After``."""
        self.stats.count("order_rate_limited")
        message = DEVELOPMENT_ORDERS_MESSAGE.format(limit=self.rules.orders_per_window,
                                                    window=self.rules.order_rate_window_seconds, wait=wait)
        return Response.json({"errors": [{"message": message, "extensions": {"code": "THROTTLED"}}]}, 429,
                             {"Retry-After": str(wait), **self._headers()})

    def _accepts(self, token: str | None) -> bool:
        """The static token, or one the grant issued that has not expired: an expired token is
        refused exactly as a wrong one is."""
        if token is None:
            return False
        if token == self.token:
            return True
        with self._tokens_lock:
            expires_at = self._issued_tokens.get(token)
        return expires_at is not None and time.monotonic() < expires_at

    def _issue_token(self, request: Request) -> Response:
        """The client credentials grant: a fresh ``shpat_`` token for the installed app's id and secret."""
        parameters = _token_parameters(request)
        missing = [name for name in TOKEN_PARAMETERS if not parameters.get(name)]
        if missing:
            return _oauth_error("invalid_request", f"Missing required parameter: {', '.join(missing)}")
        if parameters["grant_type"] != "client_credentials":
            return _oauth_error("unsupported_grant_type",
                                f"grant_type {parameters['grant_type']!r} is not supported: use client_credentials")
        app = self.app
        if (parameters["client_id"], parameters["client_secret"]) != (app.client_id, app.client_secret):
            return _oauth_error("invalid_client", "Client authentication failed: unknown client_id or wrong "
                                                  "client_secret")
        token = "shpat_" + secrets.token_hex(16)
        with self._tokens_lock:
            self._issued_tokens[token] = time.monotonic() + app.token_lifetime_seconds
        self.stats.count("tokens_issued")
        return Response.json({"access_token": token, "scope": ",".join(self.state.scopes),
                              "expires_in": app.token_lifetime_seconds})

    def _errors(self, errors: list[Any], extensions: dict[str, Any] | None = None) -> Response:
        payload: dict[str, Any] = {"errors": errors}
        if extensions:
            payload["extensions"] = extensions
        return Response.json(payload, headers=self._headers())

    def reset(self, payload: Any) -> None:
        scenario = payload.get("scenario") if isinstance(payload, dict) else None
        if isinstance(scenario, str):
            self._initial = load_scenario(scenario)
        elif isinstance(scenario, dict):
            validate_scenario(scenario)
            self._initial = scenario
        super().reset(payload)
        self.stop_stock_movement()
        self.bulk.clear()
        self.state = ShopifyState(copy.deepcopy(self._initial))
        self.token, self.plan, self.app = self._initial_token, self._initial_plan, self._initial_app
        self.rules = self._initial_rules
        with self._tokens_lock:
            self._issued_tokens.clear()
        self.bucket.set_plan(self.plan)

    def configure(self, payload: Any) -> dict[str, Any]:
        if not isinstance(payload, dict):
            raise ValueError("config is a JSON object")
        known = {"plan", "bucket_size", "restore_rate", "token", "bulk_delay_seconds", "bulk_fail_with",
                 "bulk_url_ttl_seconds",
                 "client_id", "client_secret", "token_lifetime_seconds", *(f.name for f in dataclass_fields(StoreRules))}
        unknown = set(payload) - known
        if unknown:
            raise ValueError(f"unknown settings {sorted(unknown)}; known: {sorted(known)}")
        plan = self.plan
        if "plan" in payload:
            if payload["plan"] not in PLANS:
                raise ValueError(f"plan must be one of {', '.join(PLANS)}")
            plan = PLANS[payload["plan"]]
        plan = Plan(plan.name, float(payload.get("restore_rate", plan.restore_rate)),
                    float(payload.get("bucket_size", plan.bucket_size)))
        if "bulk_fail_with" in payload and payload["bulk_fail_with"] not in (None, *BULK_ERROR_CODES):
            raise ValueError(f"bulk_fail_with must be null or one of {', '.join(BULK_ERROR_CODES)}")
        ttl = payload.get("bulk_url_ttl_seconds", self.bulk.settings.url_ttl_seconds)
        if not isinstance(ttl, int) or isinstance(ttl, bool) or ttl < 1:
            raise ValueError("bulk_url_ttl_seconds must be a positive integer (result links expire in whole seconds)")
        app = _InstalledApp(
            _credential("client_id", payload.get("client_id", self.app.client_id)),
            _credential("client_secret", payload.get("client_secret", self.app.client_secret)),
            _lifetime(payload.get("token_lifetime_seconds", self.app.token_lifetime_seconds)),
        )
        rules = self.rules.changed(payload)
        if set(payload) & {"plan", "bucket_size", "restore_rate"}:
            self.plan = plan
            self.bucket.set_plan(plan)
        self.token, self.app, self.rules = payload.get("token", self.token), app, rules
        self.bulk.settings = replace(
            self.bulk.settings,
            delay_seconds=float(payload.get("bulk_delay_seconds", self.bulk.settings.delay_seconds)),
            fail_with=payload.get("bulk_fail_with", self.bulk.settings.fail_with),
            url_ttl_seconds=ttl,
        )
        return self.settings()

    def settings(self) -> dict[str, Any]:
        return {"plan": self.plan.name, "restore_rate": self.plan.restore_rate, "bucket_size": self.plan.bucket_size,
                "bulk_delay_seconds": self.bulk.settings.delay_seconds, "bulk_fail_with": self.bulk.settings.fail_with,
                "bulk_url_ttl_seconds": self.bulk.settings.url_ttl_seconds,
                "client_id": self.app.client_id, "token_lifetime_seconds": self.app.token_lifetime_seconds,
                **{f.name: getattr(self.rules, f.name) for f in dataclass_fields(StoreRules)}}

    def close(self) -> None:
        self.bulk.close()

    def health(self) -> dict[str, Any]:
        with self._tokens_lock:
            now = time.monotonic()
            live_tokens = sum(1 for expires_at in self._issued_tokens.values() if now < expires_at)
        return {**super().health(), **self.settings(), "bucket": self.bucket.status(),
                "variants": len(self.state.variants), "orders": len(self.state.orders), "live_tokens": live_tokens}

    def extra_control(self, request: Request, route: str) -> Response | None:
        if (request.method, route) == ("POST", "tokens/expire"):
            with self._tokens_lock:
                now = time.monotonic()
                live = [token for token, expires_at in self._issued_tokens.items() if now < expires_at]
                for token in live:
                    self._issued_tokens[token] = float("-inf")
            return Response.json({"expired": len(live)})
        if request.method == "POST" and (match := BULK_EXPIRE_PATH.match(route)):
            expired = self.bulk.expire(gid("BulkOperation", int(match["number"])))
            return Response.json({"expired": expired}, 200 if expired else 409)
        if (request.method, route) == ("POST", "inventory"):
            return self._set_inventory(request)
        if route == "stock_movement":
            return self._stock_movement(request)
        return None

    def start_stock_movement(self, per_minute: float, seed: int | None = None) -> None:
        """Levels change on their own from now on (replacing a movement already running)."""
        self.stop_stock_movement()
        self.movement = StockMovement(self.state, per_minute, seed).start()

    def stop_stock_movement(self) -> list[LevelChange]:
        """Stop the movement, if any; the changes it made."""
        movement, self.movement = self.movement, None
        if movement is None:
            return []
        movement.stop()
        return movement.changes()

    def _stock_movement(self, request: Request) -> Response:
        """``POST {"per_minute": N, "seed": S}`` starts, ``GET`` lists the changes so far, ``DELETE`` stops."""
        if request.method == "POST":
            body = request.json() or {}
            try:
                self.start_stock_movement(float(body.get("per_minute", 0)), body.get("seed"))
            except (TypeError, ValueError) as error:
                return Response.json({"error": str(error)}, 400)
            return Response.json({"per_minute": self.movement.per_minute if self.movement else 0})
        if request.method == "GET":
            changes = self.movement.changes() if self.movement else []
        elif request.method == "DELETE":
            changes = self.stop_stock_movement()
        else:
            return Response.json({"error": "POST, GET or DELETE"}, 405)
        return Response.json({"changes": [change.as_json() for change in changes]})

    def _set_inventory(self, request: Request) -> Response:
        """Change stock as a merchant would in Shopify's admin: ``{"changes": [{variant_id, location_id, ...}]}``."""
        try:
            changes = (request.json() or {})["changes"]
        except (ValueError, KeyError, TypeError):
            return Response.json({"error": 'body must be {"changes": [...]}'}, 400)
        updated = 0
        stamp = now_iso()
        with self.state.lock:
            for change in changes:
                variant = self.state.variants_by_id.get(gid("ProductVariant", int(change.get("variant_id", 0))))
                location_id = gid("Location", int(change.get("location_id", 0)))
                if variant is None or location_id not in self.state.locations_by_id:
                    return Response.json({"error": f"unknown variant or location in {change}"}, 400)
                item = variant["inventoryItem"]
                level = item["_levels"].get(location_id)
                if level is None:
                    return Response.json({"error": f"variant {change['variant_id']} is not stocked there"}, 400)
                for name in STORED_QUANTITY_NAMES:
                    if name in change:
                        level["_q"][name] = int(change[name])
                stamp_level(level, stamp)
                updated += 1
        return Response.json({"updated": updated})
