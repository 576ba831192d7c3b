"""The Le New Black Wholesale API v2 sandbox (contract: ``shared/api/lenewblack-wholesale-v2.md``).

It serves the ``lnb`` part of a scenario exactly as LNB's API returns it, and rejects, throttles
and expires tokens where the real API would, so that a client passing against the sandbox is not
surprised in production. Where LNB publishes nothing (status codes, rate limit, batch size) the
contract's *assumed* values are used; where LNB's SDKs disagree, each variant is a switch.

Settings and switches are changed by ``POST /_sandbox/config`` or set by a scenario's
``"lnb": {"api": {...}}``, applied over the constructor's settings at each reset; a bad value is a
``ValueError`` (400 from the control endpoints):

- ``rps`` (null), ``token_ttl_seconds`` (3600), ``page_size`` (500), ``max_batch`` (1000).
- ``pagination_headers`` (true): false drops every ``X-Pagination-*`` header, the case the PHP SDK
  falls back for "while headers aren't yet sent by the API".
- ``timestamps`` ("iso": ``2026-03-02T13:05:00Z``): "naive" serves every timestamp (``create_time``,
  ``update_time``, ``confirmation_time``, ``cancellation_time``, ``in_stock_update_time``, a token's
  ``expire_on``) as the PHP SDK fixtures' ``Y-m-d H:i:s`` in ``timezone``, and then takes time
  filters and ``in_stock_update_time`` only in that form (or ``Y-m-d`` for a filter): an offset is
  a 422, as a PHP validation of that format would answer.
- ``timezone`` ("Europe/Paris"): LNB's local time. Zone-less times sent to the sandbox (filters, a
  bare date included, and writes) are read in it whatever ``timestamps`` says.
- ``token_expiry`` ("expire_on"): what the token answer carries besides the token: "expire_on" (the
  PHP SDK and the contract), "expires_in" (some SDK tests) or "both".
- ``list_changes`` ([]): ``[{"after_page": N, "reference": "...", "status": "..."}]``, each applied
  once, right after page N of any ``GET /orders`` is served, as a status change made in LNB's back
  office (``update_time`` bumped), so that a list read page by page moves under its reader. Stats
  count them as ``list_changes_applied``; a reset re-arms a scenario's.
"""

from __future__ import annotations

import copy
import math
import re
import secrets
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any
from urllib.parse import unquote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from lnb_pipeline.sandbox.http import Request, Response, SandboxApi
from lnb_pipeline.sandbox.scenario import load_scenario, validate_scenario

LNB_BASE_PATH = "/apis/wholesale/v2"
DEFAULT_PAGE_SIZE = 500
DEFAULT_MAX_BATCH = 1000
ORDER_STATUSES = (
    "draft",
    "open_for_buyer",
    "open_for_brand",
    "confirmed",
    "invoicing",
    "closed",
    "canceled",
)
ORDER_TIME_FILTERS = {
    "order_time": "create_time",
    "confirmation_time": "confirmation_time",
    "update_time": "update_time",
}
CODE_LABELS = {"ean13": "EAN13", "sku": "SKU"}
INVALID_DATA = "The given data was invalid."
REDACTED = "***"
TIMESTAMP_FORMS = ("iso", "naive")
TOKEN_EXPIRY_FIELDS = ("expire_on", "expires_in", "both")
DEFAULT_TIMEZONE = "Europe/Paris"
TIMESTAMP_FIELDS = ("create_time", "update_time", "confirmation_time", "cancellation_time", "in_stock_update_time")
"""The timestamps of orders, retailers and stock rows: what ``timestamps: naive`` rewrites."""
NAIVE_FORMAT = "%Y-%m-%d %H:%M:%S"
LIST_CHANGE_KEYS = {"after_page", "reference", "status"}
_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")
_NAIVE_TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")


class _ApiError(Exception):
    """An error answer; raised from deep inside a handler and turned into a response by ``handle``."""

    def __init__(self, status: int, payload: dict[str, Any]) -> None:
        super().__init__(payload)
        self.payload = payload
        self.response = Response.json(payload, status)


def _unprocessable(errors: dict[str, list[str]], message: str = INVALID_DATA) -> _ApiError:
    return _ApiError(422, {"message": message, "errors": errors})


def _not_found(message: str) -> _ApiError:
    return _ApiError(404, {"message": message})


def _iso(moment: datetime) -> str:
    """LNB's timestamp format: ISO-8601 UTC to the second."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _now() -> str:
    return _iso(datetime.now(UTC))


def _parse_datetime(value: str, zone: ZoneInfo) -> datetime:
    """An ISO-8601 date or datetime; a zone-less one is LNB's local time, ``zone``. Raises ``ValueError``."""
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)


def _stored_time(value: Any, zone: ZoneInfo) -> datetime | None:
    """A scenario timestamp, or None when it is absent or unreadable (such rows match no filter)."""
    if not isinstance(value, str):
        return None
    try:
        return _parse_datetime(value, zone)
    except ValueError:
        return None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_iso_time(value: Any) -> bool:
    try:
        datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return False
    return True


def _time_filter(name: str, value: str, field_name: str, settings: _Settings) -> Callable[[dict[str, Any]], bool]:
    """The predicate for one ``*_from``/``*_to`` parameter; both ends are inclusive, so a bare date
    as ``_to`` covers that whole day (in LNB's zone)."""
    upper, zone = name.endswith("_to"), settings.zone
    if settings.timestamps == "naive" and not (_DATE_ONLY.fullmatch(value) or _NAIVE_TIME.fullmatch(value)):
        raise _unprocessable({name: [f"{name} must be a date (Y-m-d) or a time (Y-m-d H:i:s) in "
                                     f"{settings.timezone}, without an offset"]})
    try:
        bound = _parse_datetime(value, zone)
    except ValueError:
        raise _unprocessable({name: [f"{name} must be an ISO-8601 date or datetime"]}) from None
    if upper and _DATE_ONLY.fullmatch(value):
        next_day = bound + timedelta(days=1)
        return lambda row: (t := _stored_time(row.get(field_name), zone)) is not None and t < next_day
    if upper:
        return lambda row: (t := _stored_time(row.get(field_name), zone)) is not None and t <= bound
    return lambda row: (t := _stored_time(row.get(field_name), zone)) is not None and t >= bound


def _order_filters(params: dict[str, str], settings: _Settings,
                   statuses: tuple[str, ...]) -> list[Callable[[dict[str, Any]], bool]]:
    filters: list[Callable[[dict[str, Any]], bool]] = []
    status = params.get("status")
    if status is not None:
        if status not in statuses:
            raise _unprocessable({"status": [f"status must be one of {', '.join(statuses)}"]})
        filters.append(lambda order: order.get("status") == status)
    for prefix, field_name in ORDER_TIME_FILTERS.items():
        for name in (f"{prefix}_from", f"{prefix}_to"):
            if name in params:
                filters.append(_time_filter(name, params[name], field_name, settings))
    return filters


def _page_number(params: dict[str, str]) -> int:
    raw = params.get("page", "1")
    if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
        raise _unprocessable({"page": ["page must be a whole number from 1"]})
    return int(raw)


def _json_object(request: Request) -> dict[str, Any]:
    """The body of a POST, which LNB expects to be a JSON object."""
    try:
        body = request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise _unprocessable({"body": ["the body must be a JSON object"]})
    return body


def _inventory_changes(item: Any, code_field: str, naive: bool) -> tuple[str, dict[str, Any]]:
    """Validate one stock write: the EAN13/SKU it targets and the row fields it sets (with ``naive``,
    ``in_stock_update_time`` must be ``Y-m-d H:i:s``).

    Raises ``_ApiError`` (422) whose ``errors`` are also what a batch reports for the item.
    """
    if not isinstance(item, dict):
        raise _unprocessable({"request": ["each request must be a JSON object"]})
    errors: dict[str, list[str]] = {}
    code = item.get(code_field)
    if not isinstance(code, str) or not code:
        errors[code_field] = [f"{code_field} is required and must be a non-empty string"]
    if not _is_int(item.get("in_stock")) or item["in_stock"] < 0:
        errors["in_stock"] = ["in_stock is required and must be a non-negative integer"]
    changes = {"in_stock": item.get("in_stock"), "in_stock_update_time": _now()}
    if "is_blocked" in item:
        if not isinstance(item["is_blocked"], bool):
            errors["is_blocked"] = ["is_blocked must be a boolean"]
        changes["is_blocked"] = item["is_blocked"]
    if "in_stock_update_time" in item:
        value = item["in_stock_update_time"]
        if naive and not (isinstance(value, str) and _NAIVE_TIME.fullmatch(value)):
            errors["in_stock_update_time"] = ["in_stock_update_time must be a Y-m-d H:i:s time, without an offset"]
        elif not _is_iso_time(value):
            errors["in_stock_update_time"] = ["in_stock_update_time must be an ISO-8601 datetime"]
        changes["in_stock_update_time"] = value
    if "incoming_stock" in item:
        value = item["incoming_stock"]
        if value is not None and (not _is_int(value) or value < 0):
            errors["incoming_stock"] = ["incoming_stock must be a non-negative integer or null"]
        changes["incoming_stock"] = value
    if "incoming_stock_date" in item:
        value = item["incoming_stock_date"]
        if value is not None and not _is_iso_time(value):
            errors["incoming_stock_date"] = ["incoming_stock_date must be an ISO-8601 date or null"]
        changes["incoming_stock_date"] = value
    if errors:
        raise _unprocessable(errors)
    return code, changes


def _index(rows: list[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    """Rows by a non-empty key; like LNB's stock import, the first row with a key wins."""
    index: dict[str, dict[str, Any]] = {}
    for row in rows:
        value = row.get(key)
        if isinstance(value, str) and value:
            index.setdefault(value, row)
    return index


def _creation_order(zone: ZoneInfo, row: dict[str, Any]) -> tuple[datetime, str]:
    """Lists are served by create_time then reference, so pages stay stable while rows change
    (an order entering a filtered list still shifts the rows after it)."""
    created = _stored_time(row.get("create_time"), zone) or datetime.min.replace(tzinfo=UTC)
    return created, str(row.get("reference") or "")


def _change_status(order: dict[str, Any], status: str) -> None:
    """What LNB does on a status change: bump ``update_time``, stamp a first confirmation/cancellation."""
    now = _now()
    order["status"] = status
    order["update_time"] = now
    if status == "confirmed" and not order.get("confirmation_time"):
        order["confirmation_time"] = now
    if status == "canceled" and not order.get("cancellation_time"):
        order["cancellation_time"] = now


class _TokenBucket:
    """The requests-per-second budget: bursts up to ``max(1, rps)``, refilled continuously."""

    def __init__(self, rps: float) -> None:
        self.rps = rps
        self.capacity = max(1.0, rps)
        self._tokens = self.capacity
        self._updated = time.monotonic()

    def take(self) -> int:
        """0 when a request may go ahead, else the whole seconds after which one will."""
        now = time.monotonic()
        self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rps)
        self._updated = now
        if self._tokens >= 1:
            self._tokens -= 1
            return 0
        return max(1, math.ceil((1 - self._tokens) / self.rps))


class _Route:
    """One endpoint: ``template`` is a path below the base path, ``{name}`` standing for a segment."""

    def __init__(self, method: str, template: str, handler: Callable[[Request, dict[str, str]], Response],
                 *, needs_token: bool = True) -> None:
        self.method = method
        self.template = template
        self.label = f"{method} {template}"
        self.handler = handler
        self.needs_token = needs_token
        self._pattern = re.compile(re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template)))

    def match(self, relative_path: str) -> dict[str, str] | None:
        """The path parameters when the path fits the template, else None."""
        found = self._pattern.fullmatch(relative_path)
        return None if found is None else {k: unquote(v) for k, v in found.groupdict().items()}


@dataclass(frozen=True)
class _ListChange:
    after_page: int
    reference: str
    status: str


@dataclass
class _Settings:
    rps: float | None
    token_ttl_seconds: float
    page_size: int
    max_batch: int
    pagination_headers: bool = True
    timestamps: str = "iso"
    timezone: str = DEFAULT_TIMEZONE
    token_expiry: str = "expire_on"
    list_changes: tuple[_ListChange, ...] = ()
    """Still to apply; consumed as pages are served."""

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "list_changes": [asdict(change) for change in self.list_changes]}


def _list_changes(value: Any, references: Collection[str]) -> tuple[_ListChange, ...]:
    """``list_changes`` checked against the orders it may change; raises ``ValueError``."""
    if not isinstance(value, list):
        raise ValueError("list_changes must be a list of {after_page, reference, status} objects")
    changes = []
    for index, entry in enumerate(value):
        where = f"list_changes[{index}]"
        if not isinstance(entry, dict) or set(entry) != LIST_CHANGE_KEYS:
            raise ValueError(f"{where} must be an object with exactly after_page, reference and status")
        if not _is_int(entry["after_page"]) or entry["after_page"] < 1:
            raise ValueError(f"{where}.after_page must be a page number from 1")
        if entry["reference"] not in references:
            raise ValueError(f"{where}.reference: no order {entry['reference']!r} in the scenario")
        if entry["status"] not in ORDER_STATUSES:
            raise ValueError(f"{where}.status must be one of {', '.join(ORDER_STATUSES)}")
        changes.append(_ListChange(entry["after_page"], entry["reference"], entry["status"]))
    return tuple(changes)


def _checked_settings(current: _Settings, payload: Any, references: Collection[str]) -> _Settings:
    """``current`` with the changes in ``payload`` applied; raises ``ValueError`` on a bad one.
    ``references`` are the orders a list change may name."""
    if not isinstance(payload, dict):
        raise ValueError("settings are a JSON object")
    unknown = set(payload) - set(vars(current))
    if unknown:
        raise ValueError(f"unknown settings: {', '.join(sorted(unknown))}")
    updated = replace(current)
    if "rps" in payload:
        rps = payload["rps"]
        if rps is not None and (not isinstance(rps, (int, float)) or isinstance(rps, bool) or rps <= 0):
            raise ValueError("rps must be a positive number or null")
        updated.rps = None if rps is None else float(rps)
    if "token_ttl_seconds" in payload:
        ttl = payload["token_ttl_seconds"]
        if not isinstance(ttl, (int, float)) or isinstance(ttl, bool) or ttl <= 0:
            raise ValueError("token_ttl_seconds must be a positive number")
        updated.token_ttl_seconds = float(ttl)
    for name in ("page_size", "max_batch"):
        if name in payload:
            if not _is_int(payload[name]) or payload[name] < 1:
                raise ValueError(f"{name} must be a positive integer")
            setattr(updated, name, payload[name])
    if "pagination_headers" in payload:
        if not isinstance(payload["pagination_headers"], bool):
            raise ValueError("pagination_headers must be true or false")
        updated.pagination_headers = payload["pagination_headers"]
    for name, choices in (("timestamps", TIMESTAMP_FORMS), ("token_expiry", TOKEN_EXPIRY_FIELDS)):
        if name in payload:
            if payload[name] not in choices:
                raise ValueError(f"{name} must be one of {', '.join(choices)}")
            setattr(updated, name, payload[name])
    if "timezone" in payload:
        updated.timezone = _checked_timezone(payload["timezone"])
    if "list_changes" in payload:
        updated.list_changes = _list_changes(payload["list_changes"], references)
    return updated


def _checked_timezone(name: Any) -> str:
    try:
        if isinstance(name, str) and name:
            ZoneInfo(name)
            return name
    except (ZoneInfoNotFoundError, ValueError, OSError):
        pass
    raise ValueError(f"timezone must be an IANA time zone name such as Europe/Paris, got {name!r}")


class LnbApi(SandboxApi):
    """LNB's Wholesale API v2 over one scenario's ``lnb`` data: retailers, orders and inventory.

    ``POST /_sandbox/reset`` brings back the data and the constructor's settings (issued tokens stay
    valid, since test clients keep theirs across resets); with ``{"scenario": ...}`` it switches to
    that scenario, which later resets then restore.
    """

    name = "lnb"

    def __init__(
        self,
        scenario: dict[str, Any],
        *,
        client_id: str = "sandbox-client",
        client_secret: str = "sandbox-secret",
        rps: float | None = None,
        token_ttl_seconds: float = 3600,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> None:
        super().__init__()
        self._client_id = client_id
        self._client_secret = client_secret
        self._initial_settings = _checked_settings(
            _Settings(None, 3600.0, DEFAULT_PAGE_SIZE, DEFAULT_MAX_BATCH),
            {"rps": rps, "token_ttl_seconds": token_ttl_seconds, "page_size": page_size}, (),
        )
        self._lock = threading.Lock()
        self._tokens: dict[str, float] = {}
        self._routes = self._build_routes()
        with self._lock:
            self._load(scenario, self._scenario_settings(scenario))

    def _build_routes(self) -> list[_Route]:
        return [
            _Route("POST", "/auth/token", self._issue_token, needs_token=False),
            _Route("GET", "/orders", self._list_orders),
            _Route("POST", "/orders/status", self._set_order_status),
            _Route("GET", "/orders/{reference}", self._get_order),
            _Route("GET", "/retailers", self._list_retailers),
            _Route("GET", "/retailers/{reference}", self._get_retailer),
            _Route("GET", "/inventory", self._list_inventory),
            _Route("POST", "/inventory/ean", partial(self._write_stock, "ean13")),
            _Route("POST", "/inventory/sku", partial(self._write_stock, "sku")),
            _Route("POST", "/multi/inventory/ean", partial(self._write_stock_batch, "ean13")),
            _Route("POST", "/multi/inventory/sku", partial(self._write_stock_batch, "sku")),
        ]

    def _scenario_settings(self, scenario: dict[str, Any]) -> _Settings:
        """The constructor's settings with the scenario's ``lnb.api`` applied; raises ``ValueError``."""
        lnb = scenario.get("lnb", {})
        references = {order.get("reference") for order in lnb.get("orders", [])}
        try:
            return _checked_settings(self._initial_settings, lnb.get("api", {}), references)
        except ValueError as error:
            raise ValueError(f"lnb.api: {error}") from None

    def _load(self, scenario: dict[str, Any], settings: _Settings) -> None:
        """Make ``scenario`` the baseline and serve a fresh copy of it; the caller holds the lock."""
        self._scenario = copy.deepcopy(scenario)
        self._settings = settings
        self._bucket = None if settings.rps is None else _TokenBucket(settings.rps)
        lnb = copy.deepcopy(self._scenario.get("lnb", {}))
        by_creation = partial(_creation_order, settings.zone)
        self._orders: list[dict[str, Any]] = sorted(lnb.get("orders", []), key=by_creation)
        self._retailers: list[dict[str, Any]] = sorted(lnb.get("retailers", []), key=by_creation)
        self._inventory: list[dict[str, Any]] = lnb.get("inventory", [])
        self._order_statuses: tuple[str, ...] = tuple(lnb.get("order_statuses", ORDER_STATUSES))
        self._orders_by_reference = _index(self._orders, "reference")
        self._retailers_by_reference = _index(self._retailers, "reference")
        self._stock_by_code = {code: _index(self._inventory, code) for code in CODE_LABELS}

    # --- SandboxApi hooks -------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        retry_after = self._spend_rate_budget()
        if retry_after:
            self.stats.count("rate_limited")
            return Response.json({"message": "Too Many Requests"}, 429, {"Retry-After": str(retry_after)})
        route, path_params, allowed = self._resolve(request)
        if route is None and allowed:
            return Response.json({"message": "Method Not Allowed"}, 405, {"Allow": ", ".join(allowed)})
        if route is None:
            return Response.json({"message": f"Not found: {request.method} {request.path}"}, 404)
        try:
            if route.needs_token:
                self._check_token(request.params.get("access_token"))
            return route.handler(request, path_params)
        except _ApiError as error:
            return error.response

    def request_keys(self, request: Request) -> list[str]:
        route, _, _ = self._resolve(request)
        return [route.label if route else f"{request.method} (unknown path)"]

    def fault_targets(self, request: Request) -> list[str]:
        return [_relative_path(request.path) or request.path]

    def fault_matches(self, match: str, target: str) -> bool:
        return target.startswith(match)

    def log_entry(self, request: Request) -> dict[str, Any]:
        query = {k: REDACTED if k == "access_token" else v for k, v in request.params.items()}
        try:
            variables = request.json()
        except ValueError:
            variables = None
        if isinstance(variables, dict) and "client_secret" in variables:
            variables = {**variables, "client_secret": REDACTED}
        return {"method": request.method, "path": request.path, "query": query, "variables": variables}

    def throttled_response(self, request: Request) -> Response:
        return Response.json({"message": "Too Many Requests"}, 429, {"Retry-After": "1"})

    def reset(self, payload: Any) -> None:
        if not isinstance(payload, dict) or set(payload) - {"scenario"}:
            raise ValueError('reset takes a JSON object with at most a "scenario" key')
        spec = payload.get("scenario")
        if isinstance(spec, str):
            scenario = load_scenario(spec)
        elif isinstance(spec, dict):
            validate_scenario(spec)
            scenario = spec
        elif spec is None:
            scenario = self._scenario
        else:
            raise ValueError("scenario must be a spec string (demo, scale:N, a file path) or an object")
        settings = self._scenario_settings(scenario)
        with self._lock:
            self._load(scenario, settings)
        super().reset(payload)

    def configure(self, payload: Any) -> dict[str, Any]:
        with self._lock:
            updated = _checked_settings(self._settings, payload, self._orders_by_reference)
            if updated.rps != self._settings.rps:
                self._bucket = None if updated.rps is None else _TokenBucket(updated.rps)
            self._settings = updated
            return updated.to_json()

    def health(self) -> dict[str, Any]:
        with self._lock:
            counts = {"orders": len(self._orders), "retailers": len(self._retailers),
                      "inventory": len(self._inventory), "tokens": len(self._tokens)}
        return {**super().health(), **counts}

    def extra_control(self, request: Request, route: str) -> Response | None:
        if (request.method, route) == ("POST", "tokens/expire"):
            with self._lock:
                for token in self._tokens:
                    self._tokens[token] = float("-inf")
                return Response.json({"expired": len(self._tokens)})
        if request.method == "POST" and route.startswith("orders/"):
            return self._edit_order(unquote(route.removeprefix("orders/")), request)
        return None

    # --- plumbing ---------------------------------------------------------------------------

    def _resolve(self, request: Request) -> tuple[_Route | None, dict[str, str], list[str]]:
        """The route for this method and path with its path parameters, else the methods the
        path does allow (none: 404, some: 405)."""
        relative = _relative_path(request.path)
        if relative is None:
            return None, {}, []
        allowed: list[str] = []
        for route in self._routes:
            params = route.match(relative)
            if params is None:
                continue
            if route.method == request.method:
                return route, params, []
            allowed.append(route.method)
        return None, {}, allowed

    def _spend_rate_budget(self) -> int:
        with self._lock:
            return 0 if self._bucket is None else self._bucket.take()

    def _check_token(self, token: str | None) -> None:
        if not token:
            raise _ApiError(401, {"message": "Missing access_token query parameter"})
        with self._lock:
            expiry = self._tokens.get(token)
        if expiry is None:
            raise _ApiError(401, {"message": "Invalid access token"})
        if time.monotonic() >= expiry:
            raise _ApiError(401, {"message": "Token expired"})

    def _paginated(self, rows: list[dict[str, Any]], page: int) -> Response:
        """One page of ``rows`` as a bare array, the pagination metadata in headers unless switched
        off; the caller holds the lock."""
        size = self._settings.page_size
        start = (page - 1) * size
        headers = {
            "X-Pagination-Current-Page": str(page),
            "X-Pagination-Page-Size": str(size),
            "X-Pagination-Has-More": "true" if start + size < len(rows) else "false",
            "X-Pagination-Total-Pages": str(math.ceil(len(rows) / size)),
            "X-Pagination-Total-Items": str(len(rows)),
        } if self._settings.pagination_headers else {}
        return Response.json([self._shown(row) for row in rows[start:start + size]], headers=headers)

    def _shown(self, row: dict[str, Any]) -> dict[str, Any]:
        """``row`` as served: as stored, or with ``timestamps: naive`` its timestamps as ``Y-m-d H:i:s``
        in the sandbox's zone; the caller holds the lock."""
        if self._settings.timestamps == "iso":
            return row
        shown, zone = dict(row), self._settings.zone
        for name in TIMESTAMP_FIELDS:
            moment = _stored_time(row.get(name), zone)
            if moment is not None:
                shown[name] = moment.astimezone(zone).strftime(NAIVE_FORMAT)
        return shown

    def _timestamp(self, moment: datetime) -> str:
        """``moment`` in the served form; the caller holds the lock."""
        if self._settings.timestamps == "iso":
            return _iso(moment)
        return moment.astimezone(self._settings.zone).strftime(NAIVE_FORMAT)

    def _apply_list_changes(self, page: int) -> None:
        """The ``list_changes`` due once page ``page`` of ``/orders`` is served; the caller holds the lock."""
        due = [change for change in self._settings.list_changes if change.after_page == page]
        if not due:
            return
        pending = tuple(change for change in self._settings.list_changes if change.after_page != page)
        self._settings = replace(self._settings, list_changes=pending)
        for change in due:
            _change_status(self._orders_by_reference[change.reference], change.status)
        self.stats.count("list_changes_applied", len(due))

    # --- endpoints --------------------------------------------------------------------------

    def _issue_token(self, request: Request, _: dict[str, str]) -> Response:
        body = _json_object(request)
        errors = {
            name: [f"{name} is required"]
            for name in ("grant_type", "client_id", "client_secret")
            if not isinstance(body.get(name), str) or not body[name]
        }
        if "grant_type" not in errors and body["grant_type"] != "client_credentials":
            errors["grant_type"] = ["grant_type must be client_credentials"]
        if errors:
            raise _unprocessable(errors)
        if (body["client_id"], body["client_secret"]) != (self._client_id, self._client_secret):
            raise _ApiError(401, {"error": "invalid_client", "message": "Client authentication failed"})
        token = secrets.token_urlsafe(32)
        with self._lock:
            ttl, expiry = self._settings.token_ttl_seconds, self._settings.token_expiry
            self._tokens[token] = time.monotonic() + ttl
            answer: dict[str, Any] = {"access_token": token}
            if expiry in ("expire_on", "both"):
                answer["expire_on"] = self._timestamp(datetime.now(UTC) + timedelta(seconds=ttl))
            if expiry in ("expires_in", "both"):
                answer["expires_in"] = int(ttl)
        return Response.json(answer)

    def _list_orders(self, request: Request, _: dict[str, str]) -> Response:
        page = _page_number(request.params)
        with self._lock:
            filters = _order_filters(request.params, self._settings, self._order_statuses)
            orders = [o for o in self._orders if all(keep(o) for keep in filters)]
            response = self._paginated(orders, page)
            self._apply_list_changes(page)
            return response

    def _get_order(self, _: Request, path: dict[str, str]) -> Response:
        with self._lock:
            return Response.json(self._shown(self._order(path["reference"])))

    def _order(self, reference: str) -> dict[str, Any]:
        order = self._orders_by_reference.get(reference)
        if order is None:
            raise _not_found(f"Order {reference} not found")
        return order

    def _set_order_status(self, request: Request, _: dict[str, str]) -> Response:
        body = _json_object(request)
        reference, status = body.get("reference"), body.get("status")
        errors: dict[str, list[str]] = {}
        if not isinstance(reference, str) or not reference:
            errors["reference"] = ["reference is required"]
        with self._lock:
            statuses = self._order_statuses
        if status not in statuses:
            errors["status"] = [f"status must be one of {', '.join(statuses)}"]
        if errors:
            raise _unprocessable(errors)
        with self._lock:
            order = self._order(reference)
            _change_status(order, status)
            return Response.json(self._shown(order))

    def _list_retailers(self, request: Request, _: dict[str, str]) -> Response:
        page = _page_number(request.params)
        with self._lock:
            return self._paginated(self._retailers, page)

    def _get_retailer(self, _: Request, path: dict[str, str]) -> Response:
        with self._lock:
            retailer = self._retailers_by_reference.get(path["reference"])
            if retailer is None:
                raise _not_found(f"Retailer {path['reference']} not found")
            return Response.json(self._shown(retailer))

    def _list_inventory(self, _: Request, __: dict[str, str]) -> Response:
        with self._lock:
            return Response.json([self._shown(row) for row in self._inventory])

    def _write_stock(self, code_field: str, request: Request, _: dict[str, str]) -> Response:
        with self._lock:
            code, changes = _inventory_changes(_json_object(request), code_field, self._naive())
            return Response.json(self._shown(self._apply_stock(code_field, code, changes)))

    def _write_stock_batch(self, code_field: str, request: Request, _: dict[str, str]) -> Response:
        items = _json_object(request).get("requests")
        if not isinstance(items, list) or not items:
            raise _unprocessable({"requests": ["requests must be a non-empty list"]})
        with self._lock:
            if len(items) > self._settings.max_batch:
                raise _unprocessable(
                    {"requests": [f"at most {self._settings.max_batch} requests per call"]})
            data = [self._batch_item(code_field, item) for item in items]
        successes = sum(1 for entry in data if entry["status"] == "success")
        metadata = {"total_requests": len(data), "total_successes": successes,
                    "total_errors": len(data) - successes}
        return Response.json({"metadata": metadata, "data": data})

    def _batch_item(self, code_field: str, item: Any) -> dict[str, Any]:
        """One batch entry: a bad or unknown item is reported in place, never fails the call."""
        try:
            code, changes = _inventory_changes(item, code_field, self._naive())
            row = self._apply_stock(code_field, code, changes)
        except _ApiError as error:
            errors = error.payload.get("errors", error.payload["message"])
            return {"status": "error", "errors": errors, "result": None}
        return {"status": "success", "errors": None, "result": dict(self._shown(row))}

    def _naive(self) -> bool:
        return self._settings.timestamps == "naive"

    def _apply_stock(self, code_field: str, code: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Update the row with this EAN13/SKU; the caller holds the lock."""
        row = self._stock_by_code[code_field].get(code)
        if row is None:
            label = CODE_LABELS[code_field]
            raise _ApiError(404, {"message": f"Unknown {label} {code}",
                                  "errors": {code_field: [f"No stock row with {label} {code}"]}})
        row.update(changes)
        return row

    def _edit_order(self, reference: str, request: Request) -> Response:
        """Simulate an order edited in LNB's back office: merge the fields, bump update_time."""
        changes = request.json()
        if not isinstance(changes, dict):
            return Response.json({"error": "the body must be a JSON object of order fields"}, 400)
        if changes.get("reference", reference) != reference:
            return Response.json({"error": "an order's reference cannot change"}, 400)
        with self._lock:
            order = self._orders_by_reference.get(reference)
            if order is None:
                return Response.json({"error": f"no order {reference}"}, 404)
            order.update({"update_time": _now(), **changes})
            self._orders.sort(key=partial(_creation_order, self._settings.zone))
            return Response.json(order)


def _relative_path(path: str) -> str | None:
    """The path below ``LNB_BASE_PATH``, or None for a path outside it."""
    if path == LNB_BASE_PATH or path.startswith(LNB_BASE_PATH + "/"):
        return path.removeprefix(LNB_BASE_PATH) or "/"
    return None
