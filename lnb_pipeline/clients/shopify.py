"""Shopify Admin GraphQL client: pacing by query cost, retries, pagination and bulk operations.

Shopify meters every app with a leaky bucket of cost points. Rather than running into
``THROTTLED`` and backing off, this client tracks ``throttleStatus`` from each answer and waits
just long enough before a request whose cost the bucket cannot cover yet, so long reads run at
the plan's restore rate. Throttled answers, 5xx and network failures are still retried, with
bounded jittered backoff, but only for reads and writes the caller marks idempotent.

The access token comes from an ``AccessTokenSource``: a fixed token (a legacy custom app's), or
``ClientCredentialsToken`` (``shopify_auth``), which fetches 24-hour tokens and renews them. A 401
gets one renewal and one resend, which is safe even for a mutation: Shopify applied nothing.

A bulk operation is followed by id until it ends. Its result is a pre-signed storage link on
another host, valid seven days: it is fetched without the token, never logged or shown in an
exception (it is a credential), parsed by polars in chunks, and its lines, which come in no
particular order (``groupObjects: false``), are joined by ``__parentId``.
"""

from __future__ import annotations

import io
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol

import polars as pl
import requests
from graphql import FieldNode, OperationDefinitionNode, SelectionSetNode, parse
from graphql.utilities import value_from_ast_untyped

from lnb_pipeline.clients.redaction import REDACTED
from lnb_pipeline.clients.retry import RetryPolicy
from lnb_pipeline.clients.shopify_queries import (
    BULK_CANCEL_MUTATION,
    BULK_OPERATION_QUERY,
    BULK_RUN_QUERY_MUTATION,
)

MAX_QUERY_COST = 1000
MAX_PAGE_SIZE = 250
MAX_THROTTLED_RETRIES = 20
PROGRESS_LOG_SECONDS = 10.0
RETRYABLE_STATUSES = (500, 502, 503, 504)
BULK_ACTIVE_STATUSES = ("CREATED", "RUNNING", "CANCELING")
BULK_PARENT_ID = "__parentId"
BULK_CHUNK_BYTES = 4 << 20
"""The result is parsed this much at a time, cut at a line end (larger chunks cost memory, smaller ones time)."""
BULK_EXPIRED_HINT = "run the read again: a new bulk operation gives a fresh link"
_SIGNED_QUERY = re.compile(r"\?[^\s'\"<>()]*Signature=[^\s'\"<>()]*")
_STORAGE_ERROR_CODE = re.compile(r"<Code>([^<]{1,100})</Code>")
_URLLIB3_LOGGERS_WITH_URLS = ("urllib3.connectionpool", "urllib3.connection", "urllib3.poolmanager",
                              "urllib3.response", "urllib3.util.retry")


class ShopifyError(Exception):
    """Base of every Shopify failure the client reports."""


class ShopifyAuthError(ShopifyError):
    """Wrong or revoked access token (HTTP 401/403) or client credentials: retrying cannot help."""


class ShopifyGraphQLError(ShopifyError):
    """The document was refused or failed: ``errors`` holds Shopify's entries."""

    def __init__(self, message: str, errors: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.errors = errors


class ShopifyMaxCostExceeded(ShopifyGraphQLError):
    """One query asked for more than the 1000-point ceiling."""

    def __init__(self, message: str, errors: list[dict[str, Any]], cost: int) -> None:
        super().__init__(message, errors)
        self.cost = cost


class ShopifyThrottled(ShopifyError):
    """Still throttled after every paced retry."""


class ShopifyServerError(ShopifyError):
    """5xx, network failure or malformed answer, after the retries allowed for this call."""


class ShopifyUserError(ShopifyError):
    """A mutation answered ``userErrors``."""

    def __init__(self, message: str, user_errors: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.user_errors = user_errors


class ShopifyBulkError(ShopifyError):
    """A bulk operation ended FAILED, CANCELED or EXPIRED, ran past its timeout, or its result link was
    refused (expired, most often). ``operation`` carries its result links with their signatures masked."""

    def __init__(self, message: str, operation: dict[str, Any]) -> None:
        super().__init__(redact_signed_links(message))
        self.operation = {key: redact_signed_links(value) if isinstance(value, str) else value
                          for key, value in operation.items()}


class AccessTokenSource(Protocol):
    """Where the client gets the ``X-Shopify-Access-Token`` it sends."""

    @property
    def rejection_hint(self) -> str:
        """What to check when Shopify refuses the token, naming the variables; never the secret."""
        ...

    def current(self) -> str:
        """The token to send now."""
        ...

    def renew_after_rejection(self, rejected: str) -> bool:
        """Drop ``rejected``; True when ``current()`` may now give a token worth one more try."""
        ...


@dataclass(frozen=True)
class StaticAccessToken:
    """A fixed token (``SHOPIFY_ACCESS_TOKEN``): nothing to renew, so a rejection is final."""

    value: str = field(repr=False)
    rejection_hint: str = "check SHOPIFY_ACCESS_TOKEN and the app's access scopes"

    def current(self) -> str:
        return self.value

    def renew_after_rejection(self, rejected: str) -> bool:
        return False


@dataclass
class ThrottleStatus:
    maximum: float
    available: float
    restore_rate: float
    observed_at: float

    def predicted(self, now: float) -> float:
        return min(self.maximum, self.available + (now - self.observed_at) * self.restore_rate)


@dataclass
class CallStats:
    """What the client spent, for progress logs and benchmarks."""

    requests: int = 0
    points_spent: int = 0
    throttled: int = 0
    retries: int = 0
    waited_seconds: float = 0.0


def estimate_cost(document: str, variables: dict[str, Any] | None = None) -> int:
    """Shopify's cost model applied to a document without its schema.

    A field with a selection set and a ``first``/``last`` argument is a connection
    (2 + first x node cost), any other field with a selection set an object (1), leaves 0,
    a mutation 10. Good enough to size pages and pace before the first answer arrives.
    """
    parsed = parse(document)
    operation = next(d for d in parsed.definitions if isinstance(d, OperationDefinitionNode))
    if operation.operation.value == "mutation":
        return 10 * len(operation.selection_set.selections)
    return _selection_cost(operation.selection_set, variables or {})


def _selection_cost(selection_set: SelectionSetNode | None, variables: dict[str, Any]) -> int:
    total = 0
    for node in selection_set.selections if selection_set else ():
        if not isinstance(node, FieldNode) or node.selection_set is None or node.name.value.startswith("__"):
            continue
        size = next((value_from_ast_untyped(a.value, variables) for a in node.arguments or ()
                     if a.name.value in ("first", "last")), None)
        if size is None:
            total += 1 + _selection_cost(node.selection_set, variables)
            continue
        per_node = 0
        for child in node.selection_set.selections:
            if isinstance(child, FieldNode) and child.name.value == "nodes":
                per_node += 1 + _selection_cost(child.selection_set, variables)
            elif isinstance(child, FieldNode) and child.name.value == "edges":
                for inner in child.selection_set.selections if child.selection_set else ():
                    if isinstance(inner, FieldNode) and inner.name.value == "node":
                        per_node += 1 + _selection_cost(inner.selection_set, variables)
        total += 2 + int(size) * per_node
    return total


def page_size_for(document: str, variables: dict[str, Any], size_variable: str = "first") -> int:
    """The largest page (at most 250) whose estimated cost stays within the 1000-point ceiling."""
    empty = estimate_cost(document, {**variables, size_variable: 0})
    one = estimate_cost(document, {**variables, size_variable: 1})
    per_node = max(1, one - empty)
    return max(1, min(MAX_PAGE_SIZE, (MAX_QUERY_COST - empty) // per_node))


class ShopifyClient:
    """One shop's Admin GraphQL endpoint. Thread-safe; share one per run."""

    def __init__(self, shop_url: str, access_token: str | AccessTokenSource, api_version: str = "2026-04", *,
                 timeout: tuple[float, float] = (5.0, 60.0), retry: RetryPolicy | None = None,
                 logger: logging.Logger | None = None, session: requests.Session | None = None,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        self.endpoint = f"{shop_url.rstrip('/')}/admin/api/{api_version}/graphql.json"
        self.api_version = api_version
        self.served_api_version: str | None = None
        """``X-Shopify-API-Version`` of the last answer: Shopify falls forward, silently, from a version
        it no longer supports."""
        self._tokens = StaticAccessToken(access_token) if isinstance(access_token, str) else access_token
        self._timeout = timeout
        self._retry = retry or RetryPolicy()
        self._log = logger or logging.getLogger(__name__)
        self._session = session or requests.Session()
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._bucket = _bucket_view(shop_url.rstrip("/"), clock)
        self._known_costs: dict[str, int] = {}
        self.stats = CallStats()

    def close(self) -> None:
        self._session.close()

    def execute(self, document: str, variables: dict[str, Any] | None = None, *, idempotent: bool | None = None) -> dict[str, Any]:
        """Send one document and return its ``data``.

        Queries are retried on transient failures; a mutation only when ``idempotent`` is True,
        because a lost answer may hide an applied change (orderCreate has no idempotency key).
        """
        variables = variables or {}
        retry_allowed = (not _is_mutation(document)) if idempotent is None else idempotent
        cost_key = _cost_key(document, variables)
        throttled_retries = 0
        attempt = 0
        while True:
            attempt += 1
            self._wait_for_bucket(self._known_costs.get(cost_key) or _estimate_for_key(cost_key))
            try:
                body = self._post(document, variables)
            except (requests.ConnectionError, requests.Timeout, _TransientHttpError, _MalformedAnswer) as error:
                if not retry_allowed or attempt >= self._retry.attempts:
                    raise ShopifyServerError(f"Shopify call failed after {attempt} attempt(s): {error}") from None
                self._pause(self._retry.delay(attempt), f"retrying after {error}")
                continue
            except _HttpThrottled as throttled:
                throttled_retries += 1
                self.stats.throttled += 1
                if throttled_retries > MAX_THROTTLED_RETRIES:
                    raise ShopifyThrottled("Shopify kept answering 429 Too Many Requests") from None
                self._pause(throttled.retry_after or self._retry.delay(min(throttled_retries, 6)), "HTTP 429")
                attempt -= 1
                continue
            cost = (body.get("extensions") or {}).get("cost") or {}
            self._observe(cost)
            errors = body.get("errors")
            if errors and _error_code(errors) == "THROTTLED":
                throttled_retries += 1
                self.stats.throttled += 1
                if throttled_retries > MAX_THROTTLED_RETRIES:
                    raise ShopifyThrottled(f"Shopify kept answering THROTTLED for a query of cost "
                                           f"{cost.get('requestedQueryCost')}")
                if cost.get("requestedQueryCost"):
                    self._known_costs[cost_key] = int(cost["requestedQueryCost"])
                self._wait_for_bucket(int(cost.get("requestedQueryCost") or 1))
                attempt -= 1
                continue
            if cost.get("requestedQueryCost") is not None:
                self._known_costs[cost_key] = int(cost["requestedQueryCost"])
            if errors:
                message = "; ".join(str(e.get("message")) for e in errors)
                if _error_code(errors) == "MAX_COST_EXCEEDED":
                    extensions = errors[0].get("extensions") or {}
                    raise ShopifyMaxCostExceeded(message, errors, int(extensions.get("cost") or 0))
                raise ShopifyGraphQLError(f"Shopify GraphQL error: {message}", errors)
            data = body.get("data")
            if not isinstance(data, dict):
                raise ShopifyServerError("Shopify answered without data or errors")
            return data

    def _send(self, document: str, variables: dict[str, Any], token: str) -> requests.Response:
        response = self._session.post(
            self.endpoint,
            json={"query": document, "variables": variables},
            headers={"X-Shopify-Access-Token": token, "Content-Type": "application/json",
                     "Accept": "application/json"},
            timeout=self._timeout,
        )
        self.stats.requests += 1
        self.served_api_version = response.headers.get("X-Shopify-API-Version")
        return response

    def _post(self, document: str, variables: dict[str, Any]) -> dict[str, Any]:
        """One request and its classified answer; a 401 gets one token renewal and one resend."""
        token = self._tokens.current()
        response = self._send(document, variables, token)
        renewed = False
        if response.status_code == 401 and self._tokens.renew_after_rejection(token):
            self._log.info("Shopify refused the access token (HTTP 401); sending again with a new one")
            response = self._send(document, variables, self._tokens.current())
            renewed = True
        if response.status_code in (401, 403):
            refused = "a freshly issued access token" if renewed else "the access token"
            raise ShopifyAuthError(f"Shopify refused {refused} (HTTP {response.status_code}): "
                                   f"{self._tokens.rejection_hint}")
        if response.status_code == 429:
            retry_after = response.headers.get("Retry-After")
            raise _HttpThrottled(float(retry_after) if retry_after and _is_number(retry_after) else None)
        if response.status_code in RETRYABLE_STATUSES:
            raise _TransientHttpError(f"HTTP {response.status_code}")
        if response.status_code >= 400:
            raise ShopifyError(f"Shopify answered HTTP {response.status_code}: {response.text[:300]}")
        try:
            body = response.json()
        except ValueError:
            raise _MalformedAnswer(f"answer is not JSON (HTTP {response.status_code}, "
                                   f"{len(response.content)} bytes)") from None
        if not isinstance(body, dict):
            raise _MalformedAnswer("answer is not a JSON object")
        return body

    def _observe(self, cost: dict[str, Any]) -> None:
        status = cost.get("throttleStatus")
        with self._lock:
            if cost.get("actualQueryCost") is not None:
                self.stats.points_spent += int(cost["actualQueryCost"])
        if status:
            with self._bucket.lock:
                self._bucket.status = ThrottleStatus(float(status["maximumAvailable"]),
                                                     float(status["currentlyAvailable"]),
                                                     float(status["restoreRate"]), self._clock())

    def _wait_for_bucket(self, cost: int) -> None:
        """Sleep until the bucket, as last reported and refilled since, covers ``cost``, then book it.

        Booking the cost before sending keeps the prediction right when an answer never comes
        (Shopify charged it anyway) and for other clients of the same shop in this process.
        """
        with self._bucket.lock:
            throttle = self._bucket.status
            if throttle is None or cost <= 0:
                return
            cost = min(cost, int(throttle.maximum))
            missing = cost - throttle.predicted(self._clock())
        if missing > 0:
            self._pause(missing / throttle.restore_rate, None)
        with self._bucket.lock:
            now = self._clock()
            throttle.available = throttle.predicted(now) - cost
            throttle.observed_at = now

    def _pause(self, seconds: float, reason: str | None) -> None:
        if reason:
            self.stats.retries += 1
            self._log.warning("Shopify: %s; waiting %.2f s", reason, seconds)
        self.stats.waited_seconds += seconds
        self._sleep(seconds)

    def paginate(self, document: str, variables: dict[str, Any], connection_path: tuple[str, ...],
                 label: str | None = None, max_page_size: int = MAX_PAGE_SIZE) -> Iterator[dict[str, Any]]:
        """Every node of the connection at ``connection_path``, page after page.

        The page size (``$first``) is the largest whose cost fits the 1000-point ceiling, or
        ``max_page_size`` when the caller expects few nodes (a page reserves its full cost up front);
        if Shopify still prices a page above the ceiling, it shrinks and is asked again (refusals are free).
        """
        label = label or ".".join(connection_path)
        page_size = min(max_page_size, page_size_for(document, variables))
        after: str | None = None
        pages = nodes = 0
        started = last_log = self._clock()
        points_at_start = self.stats.points_spent
        while True:
            try:
                data = self.execute(document, {**variables, "first": page_size, "after": after})
            except ShopifyMaxCostExceeded as error:
                if page_size == 1 or error.cost <= MAX_QUERY_COST:
                    raise
                page_size = max(1, page_size * MAX_QUERY_COST // error.cost)
                continue
            connection: Any = data
            for key in connection_path:
                connection = connection.get(key) if isinstance(connection, dict) else None
            if connection is None:
                return
            page_nodes = connection.get("nodes")
            if page_nodes is None:
                page_nodes = [edge["node"] for edge in connection.get("edges", [])]
            pages += 1
            nodes += len(page_nodes)
            yield from page_nodes
            now = self._clock()
            if now - last_log >= PROGRESS_LOG_SECONDS:
                last_log = now
                elapsed = now - started
                self._log.info("Shopify %s: %d pages, %d nodes in %.0f s (%.0f points/s, %.1f s waiting for the "
                               "cost bucket so far)", label, pages, nodes, elapsed,
                               (self.stats.points_spent - points_at_start) / max(elapsed, 1e-9),
                               self.stats.waited_seconds)
            info = connection.get("pageInfo") or {}
            if not info.get("hasNextPage"):
                self._log.info("Shopify %s: done, %d pages, %d nodes in %.1f s", label, pages, nodes,
                               self._clock() - started)
                return
            after = info.get("endCursor")
            if not after:
                raise ShopifyServerError(f"Shopify {label}: hasNextPage without an endCursor after {nodes} nodes")

    def run_bulk_query(self, query: str, *, timeout_seconds: float = 3600.0, first_poll_seconds: float = 0.5,
                       max_poll_seconds: float = 10.0) -> dict[str, Any]:
        """Run a bulk query to completion and return the finished ``BulkOperation``.

        The start answers only ``{id status}`` (CREATED), so the operation is always followed by id
        until it ends, whatever status the start reported: only a poll carries ``url``. Polls with
        growing intervals; cancels the operation on timeout or interruption so it does not keep
        running in the shop, and fails loudly on FAILED, CANCELED or EXPIRED.
        """
        started = self.execute(BULK_RUN_QUERY_MUTATION, {"query": query}, idempotent=False)["bulkOperationRunQuery"]
        if started["userErrors"]:
            raise ShopifyUserError("Shopify refused the bulk query: " + "; ".join(
                e["message"] for e in started["userErrors"]), started["userErrors"])
        operation = started["bulkOperation"]
        operation_id = operation["id"]
        self._log.info("Shopify bulk operation %s started (%s)", operation_id, operation["status"])
        deadline = self._clock() + timeout_seconds
        interval = first_poll_seconds
        last_log = self._clock()
        try:
            while True:
                if self._clock() >= deadline:
                    self._cancel_bulk(operation_id)
                    raise ShopifyBulkError(f"Bulk operation {operation_id} did not finish within {timeout_seconds:g} s "
                                           f"({operation.get('objectCount')} objects so far); it was canceled", operation)
                self._sleep(min(interval, max(0.0, deadline - self._clock())))
                interval = min(max_poll_seconds, interval * 1.5)
                polled = self.execute(BULK_OPERATION_QUERY, {"id": operation_id})["bulkOperation"]
                if polled is None:
                    raise ShopifyBulkError(f"Shopify no longer knows bulk operation {operation_id}", operation)
                operation = polled
                if operation["status"] not in BULK_ACTIVE_STATUSES:
                    break
                if self._clock() - last_log >= PROGRESS_LOG_SECONDS:
                    last_log = self._clock()
                    self._log.info("Shopify bulk operation %s: %s, %s objects", operation_id, operation["status"],
                                   operation.get("objectCount"))
        except (KeyboardInterrupt, SystemExit):
            self._cancel_bulk(operation_id)
            raise
        if operation["status"] != "COMPLETED":
            detail = f"errorCode {operation.get('errorCode')}" if operation.get("errorCode") else "no error code"
            partial = f"; partial data: {operation['partialDataUrl']}" if operation.get("partialDataUrl") else ""
            raise ShopifyBulkError(f"Bulk operation {operation_id} ended {operation['status']} ({detail}{partial})",
                                   operation)
        self._log.info("Shopify bulk operation %s completed: %s objects, %s bytes", operation_id,
                       operation.get("objectCount"), operation.get("fileSize"))
        return operation

    def _cancel_bulk(self, operation_id: str) -> None:
        try:
            self.execute(BULK_CANCEL_MUTATION, {"id": operation_id}, idempotent=True)
            self._log.warning("Shopify bulk operation %s canceled", operation_id)
        except ShopifyError as error:
            self._log.error("Shopify bulk operation %s could not be canceled: %s", operation_id, error)

    def read_bulk_lines(self, operation: dict[str, Any], schema: Mapping[str, pl.DataType],
                        parent_columns: Sequence[str | pl.Expr],
                        child_columns: Sequence[str | pl.Expr]) -> tuple[pl.DataFrame, pl.DataFrame]:
        """A finished operation's result as two frames: its parent lines (no ``__parentId``) with
        ``parent_columns``, which must include ``id``, and its child lines with ``__parentId`` and
        ``child_columns``; ``join_bulk_children`` puts them together.

        The JSONL comes from the operation's pre-signed link, on another host: it gets no Shopify
        token. Polars parses it ``BULK_CHUNK_BYTES`` at a time against ``schema`` (a field missing
        from a line is null, one not in ``schema`` is dropped) and keeps only the columns asked for,
        so memory follows the two frames, not the file (hundreds of MB for a large shop). Network
        failures and 5xx are retried as reads are, from the start of the file; a refused link raises
        ``ShopifyBulkError`` (expired: ``BULK_EXPIRED_HINT``). Signed links never reach a log line or
        an exception: they are credentials.
        """
        columns: dict[str, pl.DataType] = {**schema, BULK_PARENT_ID: pl.String()}
        projection = _BulkProjection(parent_columns, child_columns)
        url = operation.get("url")
        if url is None:  # COMPLETED without a single object: Shopify writes no file
            return projection.frames(pl.DataFrame(schema=columns))
        _mask_signed_links_in_urllib3_logs()
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._download_lines(operation, url, columns, projection)
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
                    _TransientHttpError) as error:
                reason = redact_signed_links(str(error))
                if attempt >= self._retry.attempts:
                    raise ShopifyServerError(f"Downloading the result of bulk operation {operation['id']} failed "
                                             f"after {attempt} attempt(s): {reason}") from None
                self._pause(self._retry.delay(attempt), f"bulk result download failed ({reason}); starting again")

    def _download_lines(self, operation: dict[str, Any], url: str, columns: dict[str, pl.DataType],
                        projection: _BulkProjection) -> tuple[pl.DataFrame, pl.DataFrame]:
        parents: list[pl.DataFrame] = []
        children: list[pl.DataFrame] = []
        with requests.get(url, stream=True, timeout=self._timeout) as response:
            if response.status_code in (429, *RETRYABLE_STATUSES):
                raise _TransientHttpError(f"HTTP {response.status_code}")
            if response.status_code != 200:
                raise _refused_download(operation, response)
            pending = b""
            for block in response.iter_content(chunk_size=BULK_CHUNK_BYTES):
                cut = block.rfind(b"\n") + 1
                text, pending = (pending + block[:cut], block[cut:]) if cut else (b"", pending + block)
                if text:
                    projection.add(_parse_jsonl(text, columns, operation["id"]), parents, children)
            if pending.strip():
                projection.add(_parse_jsonl(pending, columns, operation["id"]), parents, children)
        if not parents:
            return projection.frames(pl.DataFrame(schema=columns))
        return pl.concat(parents, rechunk=True), pl.concat(children, rechunk=True)


@dataclass(frozen=True)
class _BulkProjection:
    """Splits each parsed chunk into parent and child lines, keeping only the columns asked for."""

    parent_columns: Sequence[str | pl.Expr]
    child_columns: Sequence[str | pl.Expr]

    def frames(self, lines: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        is_child = pl.col(BULK_PARENT_ID).is_not_null()
        return (lines.filter(~is_child).select(self.parent_columns),
                lines.filter(is_child).select(BULK_PARENT_ID, *self.child_columns))

    def add(self, lines: pl.DataFrame, parents: list[pl.DataFrame], children: list[pl.DataFrame]) -> None:
        parent_lines, child_lines = self.frames(lines)
        parents.append(parent_lines)
        children.append(child_lines)


def join_bulk_children(parents: pl.DataFrame, children: pl.DataFrame) -> pl.DataFrame:
    """Each child line beside its parent's columns, one row per child, whatever order the lines came in.

    The project reads with ``groupObjects: false`` (grouping slows operations and raises the chance
    of timeouts), where a child may come before its parent or long after it: children are matched
    by ``__parentId`` to the parent's ``id``, never by position. A parent without children keeps
    one row, its child columns null. Rows follow the parents' order in the file, and each parent's
    children theirs. A child whose parent never appears, or a parent listed twice, raises
    ``ShopifyServerError``: dropping or doubling lines would change stock silently.
    """
    if parents.get_column("id").n_unique() != parents.height:
        doubled = parents.filter(pl.col("id").is_duplicated()).get_column("id")[0]
        raise ShopifyServerError(f"bulk result lists parent {doubled} more than once")
    joined = parents.join(children.with_row_index("__child_row"), left_on="id", right_on=BULK_PARENT_ID,
                          how="left", maintain_order="left_right")
    if joined.get_column("__child_row").count() != children.height:
        orphans = children.join(parents, left_on=BULK_PARENT_ID, right_on="id", how="anti")[BULK_PARENT_ID]
        raise ShopifyServerError(f"bulk result has {orphans.len()} child line(s) whose parent never appears "
                                 f"(the first names {orphans[0]})")
    return joined.drop("__child_row")


def redact_signed_links(text: str) -> str:
    """``text`` with the query string of every signed link masked: a pre-signed URL is a credential."""
    return _SIGNED_QUERY.sub(f"?{REDACTED}", text)


class _SignedLinkFilter(logging.Filter):
    """Masks signed links in urllib3's debug lines, which print each request's full URL."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "Signature=" in message:
            record.msg, record.args = redact_signed_links(message), None
        return True


def _mask_signed_links_in_urllib3_logs() -> None:
    for name in _URLLIB3_LOGGERS_WITH_URLS:
        target = logging.getLogger(name)
        if not any(isinstance(existing, _SignedLinkFilter) for existing in target.filters):
            target.addFilter(_SignedLinkFilter())


def _refused_download(operation: dict[str, Any], response: requests.Response) -> ShopifyBulkError:
    """The storage host's refusal, named by its XML error code (Google Cloud Storage answers an expired
    link 400 ExpiredToken; other refusals are 403)."""
    found = _STORAGE_ERROR_CODE.search(next(response.iter_content(4096), b"").decode("utf-8", "replace"))
    code = found.group(1) if found else "no error code"
    if code == "ExpiredToken":
        return ShopifyBulkError(f"The result link of bulk operation {operation['id']} has expired (Shopify's links "
                                f"last 7 days from the end of the operation); {BULK_EXPIRED_HINT}", operation)
    return ShopifyBulkError(f"The storage host refused the result of bulk operation {operation['id']}: "
                            f"HTTP {response.status_code} {code}", operation)


def _parse_jsonl(data: bytes, columns: dict[str, pl.DataType], operation_id: str) -> pl.DataFrame:
    """Lines read against ``columns``. A list field is read as JSON text and then decoded: polars
    (2.1) reads a list of objects inside NDJSON about five times slower than it decodes the text."""
    lists = {name: dtype for name, dtype in columns.items() if isinstance(dtype, pl.List)}
    try:
        lines = pl.read_ndjson(io.BytesIO(data), schema={**columns, **dict.fromkeys(lists, pl.String())})
        return lines.with_columns(pl.col(name).str.json_decode(dtype) for name, dtype in lists.items())
    except pl.exceptions.PolarsError as error:
        raise ShopifyServerError(f"The result of bulk operation {operation_id} is not the JSONL expected: "
                                 f"{str(error)[:300]}") from None


class _TransientHttpError(Exception):
    pass


class _MalformedAnswer(Exception):
    pass


class _HttpThrottled(Exception):
    def __init__(self, retry_after: float | None) -> None:
        super().__init__("HTTP 429")
        self.retry_after = retry_after


def _cost_key(document: str, variables: dict[str, Any]) -> str:
    """Pages of one read cost the same (the cursor does not enter the key); a mutation's cost never
    depends on its input."""
    if _is_mutation(document):
        return f"{document}|{{}}"
    shape = {k: v for k, v in variables.items() if k != "after"}
    return f"{document}|{json.dumps(shape, sort_keys=True, default=str)}"


@dataclass
class _BucketView:
    """What this process knows of one shop's cost bucket, shared by every client of that shop."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    status: ThrottleStatus | None = None


_BUCKET_VIEWS: dict[tuple[str, Callable[[], float]], _BucketView] = {}
_BUCKET_VIEWS_LOCK = threading.Lock()


def _bucket_view(shop_url: str, clock: Callable[[], float]) -> _BucketView:
    """One view per shop (and clock, since a view's times are that clock's): each Dagster step
    makes its own client, and none should start blind."""
    with _BUCKET_VIEWS_LOCK:
        return _BUCKET_VIEWS.setdefault((shop_url, clock), _BucketView())


@lru_cache(maxsize=256)
def _is_mutation(document: str) -> bool:
    """From the parsed operation: a comment or fragment may come before the ``mutation`` keyword."""
    return any(isinstance(d, OperationDefinitionNode) and d.operation.value == "mutation"
               for d in parse(document).definitions)


@lru_cache(maxsize=256)
def _estimate_for_key(cost_key: str) -> int:
    document, _, shape = cost_key.partition("|")
    return estimate_cost(document, json.loads(shape))


def _error_code(errors: list[dict[str, Any]]) -> str | None:
    first = errors[0] if errors else {}
    return (first.get("extensions") or {}).get("code") if isinstance(first, dict) else None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
