"""A client for Le New Black's Wholesale API v2 (contract: ``shared/api/lenewblack-wholesale-v2.md``).

Plain Python on ``requests`` so it can be used and tested without Dagster; ``LeNewBlackResource``
wraps it. Three properties matter more than anything else here:

- **The token is a query parameter**, so every URL is a secret. Nothing this module logs or raises
  carries a URL unredacted, exceptions from ``requests`` are never chained, and urllib3's own debug
  logs are filtered.
- **Retries are bounded and only where repeating is harmless**: reads and the inventory writes
  (which set absolute quantities) are retried; an order status change whose outcome is unknown is
  first checked by re-reading the order.
- **Item-level inventory errors are results**: one unknown EAN13 must not stop a 20 000-row push.

Retried answers (``RetryPolicy``, full-jitter backoff, ``Retry-After`` honoured):

=====================  ==========================  ===========================  ===============
answer                 reads (GET, token)          inventory writes             status change
=====================  ==========================  ===========================  ===============
429                    retried                     retried                      retried
502, 503, 504          retried                     retried                      re-read, then retried
500                    retried                     raised                       re-read, then raised
network / timeout      retried                     retried                      re-read, then retried
malformed JSON/shape   retried                     raised                       re-read, then raised
401                    one token refresh, then ``LnbAuthError`` (all calls)
other 4xx              raised at once (404 ``LnbNotFound``, 422 ``LnbValidationError``)
=====================  ==========================  ===========================  ===============

LNB's SDKs retry 429/502/503/504 and network errors. A 500 is added for reads because a read cannot
do harm and LNB's 500s are mostly transient; it is left out for writes because a 500 there may be a
deterministic rejection of the payload, which repeating only makes worse. A malformed answer to a
write is not retried for the same reason: the write may well have been applied.

Paginated lists are read page after page (``page=1, 2, ...``) **until a page comes back empty**,
or until ``X-Pagination-Has-More`` says ``false``: the only header trusted, since LNB's SDKs
disagree on whether the headers are sent at all and on the page size. A page shorter than any
expected size is not taken as the end, which costs one call for the empty page but cannot lose
rows if LNB's page size is not 500 or a page comes back short. A page repeating the previous one
raises ``LnbResponseError`` instead of looping forever on a server that ignores ``page``.

The order list can move while it is read (see ``iter_orders``): each order is yielded once, and a
list that moved is read once more from page 1.

Times: a zone-less timestamp from LNB is LNB's local time, ``timezone`` (``LNB_API_TIMEZONE``,
default Europe/Paris); see ``lnb_time``. Datetime filters are sent in that form too.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal
from urllib.parse import quote
from zoneinfo import ZoneInfo

import requests
from requests.structures import CaseInsensitiveDict

from lnb_pipeline.clients.lnb_time import (
    DEFAULT_LNB_TIMEZONE,
    TIMEZONE_VARIABLE,
    LnbTimeError,
    format_lnb_time,
    parse_lnb_time,
)
from lnb_pipeline.clients.redaction import RedactingFilter, redact
from lnb_pipeline.clients.retry import RetryPolicy

DEFAULT_BASE_URL = "https://www.lenewblack.com/apis/wholesale/v2"
DEFAULT_BATCH_SIZE = 500
TOKEN_PATH = "/auth/token"
TOKEN_REFRESH_MARGIN_SECONDS = 60.0
FALLBACK_TOKEN_LIFETIME_SECONDS = 300.0
"""How long a token is kept when LNB's expiry for it is unreadable or already past: short enough
to refresh soon, long enough not to fetch a token before every call."""
LIST_READS = 2
"""Reads of the order list at most: the first, and one more when the list moved while it was read."""
ORDER_FILTERS = frozenset({
    "status",
    "order_time_from",
    "order_time_to",
    "confirmation_time_from",
    "confirmation_time_to",
    "update_time_from",
    "update_time_to",
})
INVENTORY_BATCH_PATHS = {"ean13": "/multi/inventory/ean", "sku": "/multi/inventory/sku"}
URLLIB3_LOGGERS_WITH_URLS = (
    "urllib3.connectionpool",
    "urllib3.connection",
    "urllib3.poolmanager",
    "urllib3.response",
    "urllib3.util.retry",
)
ERROR_BODY_EXCERPT_CHARS = 200

FilterValue = str | date | datetime | None


class LnbError(Exception):
    """Any failure talking to LNB. The message is always redacted: it never carries a token."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        self.message = redact(message)
        self.status = status
        self.attempts = 1
        super().__init__(self.message)

    def gave_up_after(self, attempts: int) -> LnbError:
        """This error, its message noting how many tries were made before giving up."""
        self.attempts = attempts
        if attempts > 1:
            self.args = (f"{self.message} (gave up after {attempts} attempts)",)
        return self


class LnbAuthError(LnbError):
    """Bad client credentials, or a token rejected again right after a refresh."""


class LnbNotFound(LnbError):
    """404: the order or retailer reference is unknown to LNB."""


class LnbValidationError(LnbError):
    """422: LNB rejected the request's data; ``errors`` is LNB's ``{field: [messages]}`` (or text)."""

    def __init__(self, message: str, *, status: int | None = 422, errors: Any = None) -> None:
        super().__init__(message, status=status)
        self.errors = errors


class LnbRateLimited(LnbError):
    """429 still answered after every retry."""

    def __init__(self, message: str, *, status: int | None = 429, retry_after: float | None = None) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class LnbServerError(LnbError):
    """5xx still answered after every retry (or at once, for a 500 to a write)."""


class LnbNetworkError(LnbError):
    """No answer: connection refused or dropped, or a connect/read timeout, after every retry."""


class LnbResponseError(LnbError):
    """An answer that is not JSON or not shaped as documented."""


@dataclass(frozen=True)
class InventoryItemResult:
    """What LNB did with one requested stock row."""

    key: str | None
    """The row's EAN13 or SKU, as sent."""
    quantity: Any
    """The ``in_stock`` sent."""
    status: Literal["success", "error"]
    error: str | None = None
    """LNB's item errors as one line, e.g. ``ean13: No stock row with EAN13 ...``."""


@dataclass
class InventoryPushResult:
    """Every item's outcome of ``push_inventory``, in the order the rows were given."""

    items: list[InventoryItemResult] = field(default_factory=list)
    batches: int = 0
    """Batch calls that succeeded (retries of the same batch are not counted)."""

    @property
    def requests(self) -> int:
        return len(self.items)

    @property
    def successes(self) -> int:
        return sum(1 for item in self.items if item.status == "success")

    @property
    def errors(self) -> int:
        return self.requests - self.successes


@dataclass(frozen=True)
class _RetryRule:
    """Which failures a kind of call may repeat."""

    statuses: frozenset[int]
    network: bool
    malformed: bool

    def allows(self, error: LnbError) -> bool:
        if isinstance(error, LnbNetworkError):
            return self.network
        if isinstance(error, LnbResponseError):
            return self.malformed
        if isinstance(error, (LnbRateLimited, LnbServerError)):
            return error.status in self.statuses
        return False


READ = _RetryRule(frozenset({429, 500, 502, 503, 504}), network=True, malformed=True)
IDEMPOTENT_WRITE = _RetryRule(frozenset({429, 502, 503, 504}), network=True, malformed=False)
STATUS_CHANGE = IDEMPOTENT_WRITE
"""Applied only after a re-read showed the change did not happen (429: it never was)."""


@dataclass(frozen=True)
class _Answer:
    """A successful answer, parsed; no response object is kept, since its URL holds the token."""

    body: Any
    headers: Mapping[str, str]
    """Case-insensitive, as proxies may lower-case header names."""


@dataclass(frozen=True)
class _Page:
    rows: list[dict[str, Any]]
    total_items: int | None
    """``X-Pagination-Total-Items`` when sent and readable."""


@dataclass(frozen=True)
class _Token:
    value: str = field(repr=False)
    refresh_at: float
    """``time.monotonic()`` after which a new token is fetched before the next call."""


def _guard_urllib3_logs() -> None:
    """Mask tokens in urllib3's debug lines, which print the full request URL."""
    for name in URLLIB3_LOGGERS_WITH_URLS:
        target = logging.getLogger(name)
        if not any(isinstance(existing, RedactingFilter) for existing in target.filters):
            target.addFilter(RedactingFilter())


def _has_more(headers: Mapping[str, str]) -> bool | None:
    """``X-Pagination-Has-More`` as a boolean; None when absent or unreadable."""
    word = headers.get("X-Pagination-Has-More", "").strip().lower()
    return {"true": True, "1": True, "false": False, "0": False}.get(word)


def _total_items(headers: Mapping[str, str]) -> int | None:
    value = headers.get("X-Pagination-Total-Items", "").strip()
    return int(value) if value.isascii() and value.isdigit() else None


def _retry_after_seconds(header: str | None) -> float | None:
    """``Retry-After`` as seconds (delta-seconds or an HTTP date); None when absent or unreadable."""
    if not header:
        return None
    try:
        return max(0.0, float(header))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


def _error_text(payload: Any) -> str | None:
    """The message in any of LNB's error shapes: ``{"message"}``, ``{"error": "..."}``,
    ``{"error": {"message"}}``, or a bare ``{"errors": ...}``."""
    if not isinstance(payload, dict):
        return None
    message = payload.get("message")
    if isinstance(message, str) and message:
        return message
    error = payload.get("error")
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return error["message"]
    if isinstance(error, str) and error:
        return error
    if payload.get("errors"):
        return describe_item_errors(payload["errors"])
    return None


def describe_item_errors(errors: Any) -> str:
    """LNB's item errors (a string, ``{field: [messages]}`` or a list) as one readable line."""
    if isinstance(errors, str):
        return errors
    if isinstance(errors, Mapping):
        parts = []
        for name, messages in errors.items():
            text = "; ".join(map(str, messages)) if isinstance(messages, list) else str(messages)
            parts.append(f"{name}: {text}")
        return " | ".join(parts)
    if isinstance(errors, list):
        return "; ".join(describe_item_errors(entry) for entry in errors)
    return "unspecified error" if errors is None else str(errors)


class LnbClient:
    """Le New Black's Wholesale API v2: orders, retailers, inventory. Thread-safe token handling.

    Use as a context manager (or call ``close()``) to release pooled connections.
    """

    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str,
        *,
        timeout: float | tuple[float, float] = (5, 60),
        retry: RetryPolicy = RetryPolicy(),
        batch_size: int = DEFAULT_BATCH_SIZE,
        timezone: ZoneInfo = ZoneInfo(DEFAULT_LNB_TIMEZONE),
        logger: logging.Logger | None = None,
        session: requests.Session | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.base_url = base_url.rstrip("/")
        self.timezone = timezone
        """LNB's local time zone: what its zone-less timestamps mean."""
        self.client_id = client_id
        self._client_secret = client_secret
        self._timeout = timeout
        self._retry = retry
        self.batch_size = batch_size
        self._log = logger or logging.getLogger(__name__)
        self._session = session or requests.Session()
        self._session.headers.update({"Accept": "application/json", "Content-Type": "application/json"})
        self._token: _Token | None = None
        self._token_lock = threading.Lock()
        _guard_urllib3_logs()

    def __repr__(self) -> str:
        return f"LnbClient(base_url={self.base_url!r}, client_id={self.client_id!r})"

    def __enter__(self) -> LnbClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._session.close()

    # --- orders -------------------------------------------------------------------------------

    def iter_orders(self, **filters: FilterValue) -> Iterator[dict[str, Any]]:
        """Every order matching ``filters`` (``status``, ``order_time_from``, ``update_time_to``, ...),
        page by page, each reference once.

        A datetime must be aware and is sent as LNB's zone-less ``Y-m-d H:i:s`` in ``timezone``, the
        form of LNB's own timestamps, right whether LNB reads or ignores an offset; a date is sent as
        ``Y-m-d``, a string as given. An unknown filter name raises ``ValueError``: LNB would silently
        ignore it and return all orders.

        The list can move while it is read, pages being positions in it: an order entering the
        filter before the page being read pushes the rest one place on, so the boundary order comes
        back on the next page while the new one is never seen; one leaving pulls them back, so one is
        skipped. A reference seen twice, or ``X-Pagination-Total-Items`` changing between pages, shows
        the list moved: it is then read once more from page 1 and orders not yet yielded are yielded
        then, with a warning. The first copy of an order wins, since it has already been handed on;
        a caller acting on an order re-reads it. Left to the next run: an order leaving the list when
        LNB sends no Total-Items (nothing shows it), and a list moving again during the re-read
        (a warning says so).
        """
        unknown = set(filters) - ORDER_FILTERS
        if unknown:
            raise ValueError(f"unknown order filters {sorted(unknown)}; LNB supports {sorted(ORDER_FILTERS)}")
        params = {name: self._filter_value(value) for name, value in filters.items() if value is not None}
        return self._orders_once_each(params)

    def get_order(self, reference: str) -> dict[str, Any]:
        return self._request("GET", f"/orders/{quote(reference, safe='')}", rule=READ, expect=dict).body

    def set_order_status(self, reference: str, status: str) -> dict[str, Any]:
        """Change an order's status and return the order as LNB now has it.

        When the outcome is unknown (no answer, a 5xx, a garbled answer) the change may have been
        applied, so the order is re-read first: already at ``status`` counts as success; otherwise the
        change is retried when the failure was transient, else raised.
        """
        body = {"reference": reference, "status": status}
        attempt = 0
        while True:
            attempt += 1
            outcome = self._call("POST", "/orders/status", {}, body, expect=dict)
            if isinstance(outcome, _Answer):
                return outcome.body
            if isinstance(outcome, (LnbNetworkError, LnbServerError, LnbResponseError)):
                order = self.get_order(reference)
                if order.get("status") == status:
                    self._emit(logging.WARNING, f"LNB status change of order {reference} to {status!r} got no "
                                                f"clear answer ({outcome}); re-reading shows it was applied")
                    return order
            if not STATUS_CHANGE.allows(outcome) or attempt >= self._retry.attempts:
                raise outcome.gave_up_after(attempt)
            self._pause(attempt, outcome, "POST", "/orders/status")

    # --- retailers ----------------------------------------------------------------------------

    def iter_retailers(self) -> Iterator[dict[str, Any]]:
        for page in self._pages("/retailers", {}):
            yield from page.rows

    def get_retailer(self, reference: str) -> dict[str, Any]:
        return self._request("GET", f"/retailers/{quote(reference, safe='')}", rule=READ, expect=dict).body

    # --- inventory ----------------------------------------------------------------------------

    def get_inventory(self) -> list[dict[str, Any]]:
        """Every stock row (LNB answers them all at once)."""
        started = time.monotonic()
        rows = self._request("GET", "/inventory", rule=READ, expect=list).body
        self._emit(logging.INFO, f"LNB /inventory: {len(rows)} rows read in {time.monotonic() - started:.1f}s")
        return rows

    def push_inventory(
        self, rows: Iterable[Mapping[str, Any]], key: Literal["ean13", "sku"] = "ean13"
    ) -> InventoryPushResult:
        """Set stock for ``rows`` (each ``{key: ..., "in_stock": n}`` plus LNB's optional row fields)
        through the batch endpoint, ``batch_size`` rows a call.

        Unknown or invalid rows come back as error items, not exceptions. Batches are retried on
        transient failures, which is safe because each row sets an absolute quantity.
        """
        if key not in INVENTORY_BATCH_PATHS:
            raise ValueError(f"key must be one of {sorted(INVENTORY_BATCH_PATHS)}, got {key!r}")
        path = INVENTORY_BATCH_PATHS[key]
        pending = [dict(row) for row in rows]
        total_batches = -(-len(pending) // self.batch_size)
        result = InventoryPushResult()
        started = time.monotonic()
        for start in range(0, len(pending), self.batch_size):
            batch = pending[start:start + self.batch_size]
            answer = self._request("POST", path, body={"requests": batch}, rule=IDEMPOTENT_WRITE, expect=dict)
            result.items.extend(self._batch_outcomes(path, batch, key, answer.body))
            result.batches += 1
            self._emit(logging.INFO, f"LNB {path}: batch {result.batches}/{total_batches} done, "
                                     f"{result.requests}/{len(pending)} rows sent, {result.errors} item errors, "
                                     f"{time.monotonic() - started:.1f}s")
        return result

    def _batch_outcomes(
        self, path: str, batch: list[dict[str, Any]], key: str, body: dict[str, Any]
    ) -> list[InventoryItemResult]:
        data = body.get("data")
        if not isinstance(data, list) or len(data) != len(batch) or not all(isinstance(e, dict) for e in data):
            raise LnbResponseError(f"LNB answered POST {path} without one data entry per request "
                                   f"({len(batch)} sent); the batch may or may not have been applied")
        return [
            InventoryItemResult(
                key=row.get(key),
                quantity=row.get("in_stock"),
                status="success" if entry.get("status") == "success" else "error",
                error=None if entry.get("status") == "success" else describe_item_errors(entry.get("errors")),
            )
            for row, entry in zip(batch, data)
        ]

    # --- plumbing -----------------------------------------------------------------------------

    def _filter_value(self, value: str | date | datetime) -> str:
        if isinstance(value, datetime):
            return format_lnb_time(value, self.timezone)
        return value.isoformat() if isinstance(value, date) else value

    def _orders_once_each(self, params: dict[str, str]) -> Iterator[dict[str, Any]]:
        """``/orders`` read as ``iter_orders`` describes: each reference once, re-read once if it moved."""
        yielded: set[Any] = set()
        for read in range(1, LIST_READS + 1):
            seen: set[Any] = set()
            totals: list[int] = []
            duplicates = added = 0
            for page in self._pages("/orders", params):
                if page.total_items is not None:
                    totals.append(page.total_items)
                for order in page.rows:
                    reference = order.get("reference")
                    if reference in seen:
                        duplicates += 1
                    else:
                        seen.add(reference)
                        if reference not in yielded:
                            yielded.add(reference)
                            added += 1
                            yield order
            moves = ["a reference came back on a later page"] if duplicates else []
            if len(set(totals)) > 1:
                moves.append("X-Pagination-Total-Items went " + " -> ".join(map(str, dict.fromkeys(totals))))
            if read > 1:
                self._emit(logging.INFO, f"LNB /orders read again from page 1: {added} order(s) added that the "
                                         f"first read missed")
            if not moves:
                return
            if read < LIST_READS:
                self._emit(logging.WARNING, f"LNB /orders changed while it was read ({'; '.join(moves)}): "
                                            f"{duplicates} duplicate(s) dropped; reading it again from page 1 "
                                            f"so that no order entering meanwhile is missed")
            else:
                self._emit(logging.WARNING, f"LNB /orders changed again while it was re-read ({'; '.join(moves)}): "
                                            f"{duplicates} duplicate(s) dropped; an order this skipped is left "
                                            f"to the next run")

    def _pages(self, path: str, params: dict[str, str]) -> Iterator[_Page]:
        """Every page of a list, as the module docstring says: until an empty page or Has-More false."""
        page, rows_read, started = 1, 0, time.monotonic()
        previous: list[dict[str, Any]] = []
        while True:
            answer = self._request("GET", path, params={**params, "page": str(page)}, rule=READ, expect=list)
            rows: list[dict[str, Any]] = answer.body
            if rows and rows == previous:
                raise LnbResponseError(f"LNB answered GET {path} page {page} with the rows of page {page - 1}: "
                                       f"it seems to ignore the page parameter")
            rows_read += len(rows)
            total_pages = answer.headers.get("X-Pagination-Total-Pages")
            self._emit(logging.INFO, f"LNB {path}: page {page}{f'/{total_pages}' if total_pages else ''} read, "
                                     f"{rows_read} rows so far, {time.monotonic() - started:.1f}s")
            yield _Page(rows, _total_items(answer.headers))
            if not rows or _has_more(answer.headers) is False:
                return
            previous, page = rows, page + 1

    def _request(
        self,
        method: str,
        path: str,
        *,
        rule: _RetryRule,
        params: dict[str, str] | None = None,
        body: Any = None,
        expect: type = dict,
        authenticated: bool = True,
    ) -> _Answer:
        """One call, repeated under ``rule`` with backoff; raises the last failure."""
        attempt = 0
        while True:
            attempt += 1
            outcome = self._call(method, path, params or {}, body, expect=expect, authenticated=authenticated)
            if isinstance(outcome, _Answer):
                return outcome
            if not rule.allows(outcome) or attempt >= self._retry.attempts:
                raise outcome.gave_up_after(attempt)
            self._pause(attempt, outcome, method, path)

    def _call(
        self, method: str, path: str, params: dict[str, str], body: Any, *, expect: type,
        authenticated: bool = True,
    ) -> _Answer | LnbError:
        """One attempt; a 401 gets one token refresh and one resend, and a second 401 is final."""
        if not authenticated:
            return self._exchange(method, path, params, body, None, expect)
        token = self._current_token()
        outcome = self._exchange(method, path, params, body, token, expect)
        if not (isinstance(outcome, LnbAuthError) and outcome.status == 401):
            return outcome
        self._emit(logging.INFO, f"LNB rejected the access token on {method} {path} ({outcome}); refreshing it")
        self._forget_token(token)
        outcome = self._exchange(method, path, params, body, self._current_token(), expect)
        if isinstance(outcome, LnbAuthError) and outcome.status == 401:
            return LnbAuthError(f"LNB rejected a freshly issued access token on {method} {path}: {outcome}",
                                status=401)
        return outcome

    def _exchange(
        self, method: str, path: str, params: dict[str, str], body: Any, token: str | None, expect: type
    ) -> _Answer | LnbError:
        """Send once and classify the answer. Failures are returned, not raised, so that no
        ``requests`` exception (whose text holds the URL) is ever chained to what we raise."""
        query = {**params, "access_token": token} if token else params
        started = time.monotonic()
        try:
            response = self._session.request(
                method, self.base_url + path, params=query, json=body, timeout=self._timeout
            )
        except requests.Timeout as error:
            return LnbNetworkError(self._redact(f"LNB {method} {path} timed out: {error}", token))
        except requests.RequestException as error:
            return LnbNetworkError(self._redact(f"LNB {method} {path} failed without an answer: {error}", token))
        elapsed = time.monotonic() - started
        shown_params = f" {params}" if params else ""
        self._emit(logging.DEBUG, f"LNB {method} {path}{shown_params} -> HTTP {response.status_code} in {elapsed:.2f}s")
        if 200 <= response.status_code < 300:
            return self._parse(method, path, response, expect)
        return self._failure(method, path, response, token)

    def _parse(self, method: str, path: str, response: requests.Response, expect: type) -> _Answer | LnbError:
        try:
            payload = json.loads(response.content)
        except ValueError as error:
            return LnbResponseError(self._redact(
                f"LNB answered {method} {path} (HTTP {response.status_code}) with malformed JSON "
                f"({len(response.content)} bytes): {error}"))
        if not isinstance(payload, expect):
            return LnbResponseError(
                f"LNB answered {method} {path} with a JSON {type(payload).__name__}, expected {expect.__name__}")
        return _Answer(payload, CaseInsensitiveDict(response.headers))

    def _failure(self, method: str, path: str, response: requests.Response, token: str | None) -> LnbError:
        """The typed error for a non-2xx answer, its message taken from any of LNB's error shapes."""
        status = response.status_code
        try:
            payload = json.loads(response.content)
        except ValueError:
            payload = None
        detail = _error_text(payload) or response.text[:ERROR_BODY_EXCERPT_CHARS].strip() or response.reason
        detail = self._redact(detail, token)
        message = f"LNB {method} {path}: HTTP {status}: {detail}"
        if path == TOKEN_PATH and 400 <= status < 500 and status != 429:
            return LnbAuthError(f"LNB refused the client credentials for client id {self.client_id!r}: "
                                f"HTTP {status}: {detail}", status=status)
        if status in (401, 403):
            return LnbAuthError(message, status=status)
        if status == 404:
            return LnbNotFound(message, status=status)
        if status == 422:
            errors = payload.get("errors") if isinstance(payload, dict) else None
            return LnbValidationError(message, status=status, errors=self._redacted_json(errors, token))
        if status == 429:
            return LnbRateLimited(message, retry_after=_retry_after_seconds(response.headers.get("Retry-After")))
        if status >= 500:
            return LnbServerError(message, status=status)
        return LnbError(message, status=status)

    def _pause(self, attempt: int, error: LnbError, method: str, path: str) -> None:
        retry_after = error.retry_after if isinstance(error, LnbRateLimited) else None
        delay = self._retry.delay(attempt, retry_after)
        self._emit(logging.WARNING, f"LNB {method} {path} failed ({error}); retry {attempt}/"
                                    f"{self._retry.attempts - 1} in {delay:.2f}s")
        time.sleep(delay)

    def _current_token(self) -> str:
        """The cached token, fetched first when missing or about to expire. The lock makes
        concurrent callers wait for one fetch instead of each fetching their own."""
        with self._token_lock:
            if self._token is None or time.monotonic() >= self._token.refresh_at:
                self._token = self._fetch_token()
            return self._token.value

    def _forget_token(self, rejected: str) -> None:
        """Drop the cached token if it is the one rejected (another thread may have replaced it)."""
        with self._token_lock:
            if self._token is not None and self._token.value == rejected:
                self._token = None

    def _fetch_token(self) -> _Token:
        body = {"grant_type": "client_credentials", "client_id": self.client_id,
                "client_secret": self._client_secret}
        answer = self._request("POST", TOKEN_PATH, body=body, rule=READ, expect=dict, authenticated=False)
        value = answer.body.get("access_token")
        if not isinstance(value, str) or not value:
            raise LnbResponseError(f"LNB answered POST {TOKEN_PATH} without an access_token")
        lifetime = self._token_lifetime(answer.body, value)
        if lifetime is None:
            self._emit(logging.WARNING, "LNB gave a token without expire_on/expires_in; "
                                        "it will be refreshed when LNB rejects it")
            return _Token(value, float("inf"))
        margin = min(TOKEN_REFRESH_MARGIN_SECONDS, lifetime / 2)
        self._emit(logging.DEBUG, f"LNB access token obtained, valid for {lifetime:.0f}s")
        return _Token(value, time.monotonic() + lifetime - margin)

    def _token_lifetime(self, body: Mapping[str, Any], token: str) -> float | None:
        """Seconds ``token`` stays valid, from ``expires_in`` and ``expire_on`` (the sooner when both);
        None when LNB gives neither. Warnings quote LNB's values, ``token`` masked (it is not cached yet).

        A value that is unreadable or not in the future (a token expired when issued: most likely a
        zone-less ``expire_on`` read in the wrong zone) is ignored with a warning; with nothing else
        left the token is kept ``FALLBACK_TOKEN_LIFETIME_SECONDS`` rather than fetched anew before
        every call. A lifetime too long does no harm: LNB's 401 makes the client refresh.
        """
        expires_in, expire_on = body.get("expires_in"), body.get("expire_on")
        if expires_in is None and expire_on is None:
            return None
        lifetimes: list[float] = []
        if expires_in is not None:
            if isinstance(expires_in, (int, float)) and not isinstance(expires_in, bool) and 0 < expires_in < math.inf:
                lifetimes.append(float(expires_in))
            else:
                self._emit(logging.WARNING, f"LNB gave a token with expires_in {expires_in!r}, not a positive "
                                            f"number of seconds; it is ignored", token)
        if expire_on is not None and (until_expiry := self._seconds_until(expire_on, token)) is not None:
            lifetimes.append(until_expiry)
        if lifetimes:
            return min(lifetimes)
        self._emit(logging.WARNING, f"LNB gave a token without a usable expiry; it is kept "
                                    f"{FALLBACK_TOKEN_LIFETIME_SECONDS:.0f}s, or until LNB rejects it")
        return FALLBACK_TOKEN_LIFETIME_SECONDS

    def _seconds_until(self, expire_on: Any, token: str) -> float | None:
        """The seconds until ``token``'s ``expire_on``; None, with a warning, unless readable and future."""
        try:
            moment = parse_lnb_time(expire_on, self.timezone)
        except LnbTimeError as error:
            self._emit(logging.WARNING, f"LNB gave a token with an unreadable expire_on ({error}); it is ignored",
                       token)
            return None
        if moment is None:
            self._emit(logging.WARNING, "LNB gave a token with a blank expire_on; it is ignored")
            return None
        seconds = (moment - datetime.now(UTC)).total_seconds()
        if seconds <= 0:
            self._emit(logging.WARNING, f"LNB gave a token whose expire_on {expire_on!r} is {-seconds:.0f}s in the "
                                        f"past when read in {self.timezone.key}: is {TIMEZONE_VARIABLE} LNB's time "
                                        f"zone? It is ignored", token)
            return None
        return seconds

    def _redact(self, text: str, token_sent: str | None = None) -> str:
        """``text`` without the client secret, the cached token or the token a request carried."""
        cached = self._token
        secrets = (self._client_secret, token_sent or "", cached.value if cached else "")
        return redact(text, secrets)

    def _redacted_json(self, value: Any, token_sent: str | None) -> Any:
        return None if value is None else json.loads(self._redact(json.dumps(value), token_sent))

    def _emit(self, level: int, message: str, token_sent: str | None = None) -> None:
        self._log.log(level, self._redact(message, token_sent))
