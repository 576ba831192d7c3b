"""``LnbClient`` against the LNB sandbox over real HTTP: paging, tokens, every injected fault,
batched stock writes, the guarded status change, and that the token never leaks.

One sandbox serves the demo scenario (with 1200 stock rows instead of its own) for the module and
is reset before each test; faults and settings are armed through its ``/_sandbox/`` endpoints.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from lnb_pipeline.clients.lenewblack import (
    LnbAuthError,
    LnbClient,
    LnbError,
    LnbNetworkError,
    LnbNotFound,
    LnbResponseError,
    LnbServerError,
    LnbValidationError,
)
from lnb_pipeline.clients.retry import RetryPolicy
from lnb_pipeline.sandbox import Sandbox, start_sandbox
from lnb_pipeline.sandbox.generators import demo_scenario
from lnb_pipeline.sandbox.http import Request, Response, SandboxServer
from lnb_pipeline.sandbox.lnb.api import LNB_BASE_PATH, LnbApi

CLIENT_ID = "sandbox-client"
CLIENT_SECRET = "sandbox-secret"
FAST_RETRY = RetryPolicy(base_seconds=0.01)
STOCK_ROWS = 1200
UNKNOWN_EAN = "0000000000017"
SHORT_TIMEOUT = (1.0, 0.3)
"""Connect and read timeouts for tests whose server stalls for STALL_SECONDS."""
STALL_SECONDS = 0.6


def ean13(number: int) -> str:
    """A valid EAN13 built from ``number`` (GS1 check digit)."""
    digits = f"376{number:09d}"
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(digits))
    return digits + str((10 - total % 10) % 10)


def stock_row(number: int) -> dict[str, Any]:
    return {"ean13": ean13(number), "sku": f"SKU-{number:05d}", "extra_1": None, "in_stock": 1,
            "in_stock_update_time": "2026-01-01T06:00:00Z", "incoming_stock": 0,
            "incoming_stock_date": None, "is_blocked": False}


SCENARIO = demo_scenario()
SCENARIO["lnb"]["inventory"] = [stock_row(n) for n in range(STOCK_ROWS)]
ORDERS = SCENARIO["lnb"]["orders"]
RETAILERS = SCENARIO["lnb"]["retailers"]


@dataclass
class Control:
    """The sandbox's ``/_sandbox/`` endpoints."""

    url: str

    def post(self, route: str, payload: Any = None) -> Any:
        response = requests.post(f"{self.url}/_sandbox/{route}", json=payload or {}, timeout=5)
        response.raise_for_status()
        return response.json()

    def fault(self, kind: str, match: str, **options: Any) -> None:
        self.post("faults", {"kind": kind, "match": match, **options})

    def configure(self, **settings: Any) -> None:
        self.post("config", settings)

    def stats(self) -> dict[str, Any]:
        return requests.get(f"{self.url}/_sandbox/stats", timeout=5).json()

    def calls(self, label: str) -> int:
        """How many requests reached the route, e.g. ``GET /inventory``."""
        return self.stats()["requests"].get(label, 0)

    def settled_calls(self, label: str, expected: int) -> int:
        """``calls(label)`` once it reaches ``expected`` or 3 s have passed: a request the sandbox
        stalls (the timeout fault) is only counted when its stall ends."""
        deadline = time.monotonic() + 3
        while self.calls(label) < expected and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.calls(label)

    def logged(self, method: str, path: str) -> list[dict[str, Any]]:
        """The sandbox's request log entries for one method and path below the base path."""
        entries = requests.get(f"{self.url}/_sandbox/requests", timeout=5).json()
        return [e for e in entries if e["method"] == method and e["path"] == LNB_BASE_PATH + path]


class TokenRecordingSession(requests.Session):
    """A session remembering every token the client sent, so tests know what must never leak."""

    def __init__(self) -> None:
        super().__init__()
        self.tokens_sent: set[str] = set()

    def request(self, method: str, url: str, params: Any = None, **kwargs: Any) -> requests.Response:
        if isinstance(params, dict) and params.get("access_token"):
            self.tokens_sent.add(params["access_token"])
        return super().request(method, url, params=params, **kwargs)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    running = start_sandbox(SCENARIO)
    yield running
    running.stop()


@pytest.fixture
def control(sandbox: Sandbox) -> Control:
    control = Control(sandbox.lnb.url)
    control.post("reset")
    return control


def make_client(base_url: str, **options: Any) -> LnbClient:
    settings: dict[str, Any] = {"retry": FAST_RETRY, **options}
    return LnbClient(base_url, settings.pop("client_id", CLIENT_ID), settings.pop("client_secret", CLIENT_SECRET),
                     **settings)


@pytest.fixture
def client(sandbox: Sandbox, control: Control) -> Iterator[LnbClient]:
    with make_client(sandbox.lnb_base_url) as lnb:
        yield lnb


def stock_by_ean(lnb: LnbClient) -> dict[str, int]:
    return {row["ean13"]: row["in_stock"] for row in lnb.get_inventory()}


# --- pagination and filters -----------------------------------------------------------------


def test_many_pages_return_every_order_once_in_order(client: LnbClient, control: Control) -> None:
    control.configure(page_size=5)
    references = [order["reference"] for order in client.iter_orders()]
    assert references == [order["reference"] for order in ORDERS]
    assert control.calls("GET /orders") == 6


@pytest.mark.parametrize("page_size", [len(ORDERS), 500])
def test_exactly_one_page_makes_one_call(client: LnbClient, control: Control, page_size: int) -> None:
    control.configure(page_size=page_size)
    assert len(list(client.iter_orders())) == len(ORDERS)
    assert control.calls("GET /orders") == 1


def test_last_page_exactly_full_needs_no_extra_call(client: LnbClient, control: Control) -> None:
    control.configure(page_size=6)
    assert len(list(client.iter_retailers())) == len(RETAILERS) == 18
    assert control.calls("GET /retailers") == 3


def test_empty_result_is_one_call_and_no_rows(client: LnbClient, control: Control) -> None:
    assert list(client.iter_orders(order_time_from="2030-01-01")) == []
    assert control.calls("GET /orders") == 1


def test_filters_are_sent_as_parameters(client: LnbClient, control: Control) -> None:
    control.configure(page_size=4)
    confirmed = [o["reference"] for o in client.iter_orders(status="confirmed")]
    assert confirmed == [o["reference"] for o in ORDERS if o["status"] == "confirmed"]
    since = datetime(2026, 1, 7, 12, tzinfo=UTC)
    recent = [o["reference"] for o in client.iter_orders(order_time_from=since, status="canceled")]
    assert recent == ["LNB-0021", "LNB-0027"]
    sent = control.logged("GET", "/orders")[-1]["query"]
    assert sent["order_time_from"] == since.isoformat() and sent["status"] == "canceled"


def test_unknown_filter_is_refused_before_any_call(client: LnbClient, control: Control) -> None:
    with pytest.raises(ValueError, match="order_status"):
        client.iter_orders(order_status="confirmed")
    assert control.stats()["total_requests"] == 0


def test_invalid_filter_value_is_a_validation_error(client: LnbClient) -> None:
    with pytest.raises(LnbValidationError) as raised:
        list(client.iter_orders(status="shipped"))
    assert "status" in raised.value.errors


class LnbApiWithoutPaginationHeaders(LnbApi):
    """The sandbox with some ``X-Pagination-*`` headers removed, as a proxy might strip them."""

    dropped: tuple[str, ...] = ()

    def handle(self, request: Request) -> Response:
        response = super().handle(request)
        for header in self.dropped:
            response.headers.pop(header, None)
        return response


@pytest.fixture(scope="module")
def header_stripping_server() -> Iterator[SandboxServer]:
    server = SandboxServer(LnbApiWithoutPaginationHeaders(SCENARIO)).start()
    yield server
    server.stop()


@pytest.mark.parametrize(
    ("dropped", "page_size", "expected_calls"),
    [
        (("X-Pagination-Has-More",), 5, 6),  # 5+5+5+5+5+2: the short page ends it
        (("X-Pagination-Has-More",), 9, 4),  # 9+9+9, then an empty page ends it
        (("X-Pagination-Has-More", "X-Pagination-Page-Size"), 500, 1),  # 27 < the default 500
    ],
)
def test_pagination_falls_back_to_page_size_without_has_more(
    header_stripping_server: SandboxServer, dropped: tuple[str, ...], page_size: int, expected_calls: int
) -> None:
    api = header_stripping_server.api
    assert isinstance(api, LnbApiWithoutPaginationHeaders)
    api.reset({})
    api.configure({"page_size": page_size})
    api.dropped = dropped
    with make_client(header_stripping_server.url + LNB_BASE_PATH) as lnb:
        references = [order["reference"] for order in lnb.iter_orders()]
    assert references == [order["reference"] for order in ORDERS]
    assert api.stats.snapshot()["requests"]["GET /orders"] == expected_calls


def test_a_failed_page_is_retried_not_skipped(client: LnbClient, control: Control) -> None:
    control.configure(page_size=5)
    orders = client.iter_orders()
    first_page = [next(orders) for _ in range(5)]
    control.fault("http_503", "/orders", count=2)
    references = [o["reference"] for o in first_page] + [o["reference"] for o in orders]
    assert references == [order["reference"] for order in ORDERS]
    assert control.calls("GET /orders") == 8


def test_single_objects_and_not_found(client: LnbClient) -> None:
    assert client.get_order("LNB-0003")["reference"] == "LNB-0003"
    assert client.get_retailer("R1002")["reference"] == "R1002"
    assert [r.get("reference") for r in client.iter_retailers()] == [r.get("reference") for r in RETAILERS]
    with pytest.raises(LnbNotFound, match="404"):
        client.get_order("LNB-9999")
    with pytest.raises(LnbNotFound):
        client.get_retailer("R/does not exist")


# --- token --------------------------------------------------------------------------------


def test_token_is_fetched_once_and_reused(client: LnbClient, control: Control) -> None:
    control.configure(page_size=5)
    client.get_inventory()
    list(client.iter_orders())
    client.get_order("LNB-0001")
    assert control.calls("POST /auth/token") == 1
    assert control.stats()["total_requests"] == 9


def test_concurrent_first_calls_share_one_token(client: LnbClient, control: Control) -> None:
    threads = [threading.Thread(target=client.get_order, args=("LNB-0001",)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert control.calls("GET /orders/{reference}") == 8
    assert control.calls("POST /auth/token") == 1


def test_token_is_refreshed_before_it_expires(client: LnbClient, control: Control) -> None:
    control.configure(token_ttl_seconds=1)
    client.get_order("LNB-0001")
    time.sleep(0.6)  # past half the lifetime (the refresh margin of a short-lived token), before its end
    client.get_order("LNB-0001")
    assert control.calls("POST /auth/token") == 2
    assert "401" not in control.stats()["statuses"]


def test_token_expiring_mid_run_costs_one_refresh(client: LnbClient, control: Control) -> None:
    control.configure(page_size=5)
    orders = client.iter_orders()
    first = next(orders)
    control.post("tokens/expire")
    references = [first["reference"]] + [order["reference"] for order in orders]
    assert references == [order["reference"] for order in ORDERS]
    assert control.calls("POST /auth/token") == 2
    assert control.stats()["statuses"]["401"] == 1


def test_token_rejected_after_refresh_fails_clearly(client: LnbClient, control: Control) -> None:
    control.configure(token_ttl_seconds=0.001)
    with pytest.raises(LnbAuthError, match="freshly issued access token"):
        client.get_inventory()
    assert control.calls("POST /auth/token") == 2
    assert control.calls("GET /inventory") == 2


def test_bad_credentials_fail_without_retries(sandbox: Sandbox, control: Control) -> None:
    with make_client(sandbox.lnb_base_url, client_secret="not-the-secret") as lnb:
        with pytest.raises(LnbAuthError, match="refused the client credentials") as raised:
            lnb.get_inventory()
    assert "not-the-secret" not in str(raised.value)
    assert control.calls("POST /auth/token") == 1
    assert control.calls("GET /inventory") == 0


# --- faults on reads ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["http_500", "http_503", "drop", "malformed_json"])
def test_transient_read_failures_are_retried(client: LnbClient, control: Control, kind: str) -> None:
    control.fault(kind, "/inventory", count=2)
    assert len(client.get_inventory()) == STOCK_ROWS
    assert control.calls("GET /inventory") == 3


def test_throttled_read_waits_for_retry_after(client: LnbClient, control: Control) -> None:
    control.fault("throttle", "/inventory", count=1)
    started = time.monotonic()
    assert len(client.get_inventory()) == STOCK_ROWS
    assert time.monotonic() - started >= 1.0  # the sandbox answers Retry-After: 1
    assert control.calls("GET /inventory") == 2


def test_read_timeout_is_retried(sandbox: Sandbox, control: Control) -> None:
    control.fault("timeout", "/inventory", count=1, seconds=STALL_SECONDS)
    with make_client(sandbox.lnb_base_url, timeout=SHORT_TIMEOUT) as lnb:
        assert len(lnb.get_inventory()) == STOCK_ROWS
    assert control.settled_calls("GET /inventory", 2) == 2


@pytest.mark.parametrize(
    ("kind", "error", "message"),
    [
        ("http_503", LnbServerError, "HTTP 503: Injected fault"),
        ("drop", LnbNetworkError, "without an answer"),
        ("malformed_json", LnbResponseError, "malformed JSON"),
    ],
)
def test_persistent_read_failure_gives_up_after_every_attempt(
    client: LnbClient, control: Control, kind: str, error: type[LnbError], message: str
) -> None:
    control.fault(kind, "/inventory", count=50)
    with pytest.raises(error, match=message) as raised:
        client.get_inventory()
    assert "gave up after 4 attempts" in str(raised.value)
    assert control.calls("GET /inventory") == FAST_RETRY.attempts


# --- inventory writes ---------------------------------------------------------------------


def pushed_rows(quantity_offset: int = 7) -> list[dict[str, Any]]:
    return [{"ean13": ean13(n), "in_stock": n + quantity_offset} for n in range(STOCK_ROWS)]


def test_push_is_batched_and_applied(sandbox: Sandbox, control: Control) -> None:
    with make_client(sandbox.lnb_base_url, batch_size=500) as lnb:
        result = lnb.push_inventory(pushed_rows())
        stock = stock_by_ean(lnb)
    assert (result.batches, result.requests, result.successes, result.errors) == (3, 1200, 1200, 0)
    sizes = [len(entry["variables"]["requests"]) for entry in control.logged("POST", "/multi/inventory/ean")]
    assert sizes == [500, 500, 200]
    assert stock == {row["ean13"]: row["in_stock"] for row in pushed_rows()}


@pytest.mark.parametrize("kind", ["http_503", "drop", "lost_ack"])
def test_transient_push_failure_is_retried_and_loses_nothing(
    client: LnbClient, control: Control, kind: str
) -> None:
    control.fault(kind, "/multi/inventory", count=2)
    result = client.push_inventory(pushed_rows())
    assert (result.batches, result.successes, result.errors) == (3, STOCK_ROWS, 0)
    assert control.calls("POST /multi/inventory/ean") == 5
    assert stock_by_ean(client) == {row["ean13"]: row["in_stock"] for row in pushed_rows()}


def test_push_timeout_is_retried(sandbox: Sandbox, control: Control) -> None:
    control.fault("timeout", "/multi/inventory", count=1, seconds=STALL_SECONDS)
    with make_client(sandbox.lnb_base_url, timeout=SHORT_TIMEOUT) as lnb:
        assert lnb.push_inventory(pushed_rows()).successes == STOCK_ROWS
    assert control.settled_calls("POST /multi/inventory/ean", 4) == 4


@pytest.mark.parametrize(
    ("kind", "error"), [("http_500", LnbServerError), ("malformed_json", LnbResponseError)]
)
def test_push_is_not_repeated_after_an_ambiguous_failure(
    client: LnbClient, control: Control, kind: str, error: type[LnbError]
) -> None:
    control.fault(kind, "/multi/inventory", count=1)
    with pytest.raises(error):
        client.push_inventory(pushed_rows())
    assert control.calls("POST /multi/inventory/ean") == 1


def test_item_errors_are_results(client: LnbClient, control: Control) -> None:
    rows = [{"ean13": ean13(1), "in_stock": 4}, {"ean13": UNKNOWN_EAN, "in_stock": 2},
            {"ean13": ean13(2), "in_stock": -1}]
    result = client.push_inventory(rows)
    assert (result.requests, result.successes, result.errors, result.batches) == (3, 1, 2, 1)
    ok, unknown, negative = result.items
    assert (ok.key, ok.quantity, ok.status, ok.error) == (ean13(1), 4, "success", None)
    assert (unknown.key, unknown.status) == (UNKNOWN_EAN, "error")
    assert unknown.error == f"ean13: No stock row with EAN13 {UNKNOWN_EAN}"
    assert negative.error == "in_stock: in_stock is required and must be a non-negative integer"


def test_push_by_sku(client: LnbClient, control: Control) -> None:
    result = client.push_inventory([{"sku": "SKU-00003", "in_stock": 42}], key="sku")
    assert result.successes == 1
    assert control.calls("POST /multi/inventory/sku") == 1
    assert stock_by_ean(client)[ean13(3)] == 42


def test_nothing_to_push_makes_no_call(client: LnbClient, control: Control) -> None:
    result = client.push_inventory([])
    assert (result.requests, result.batches) == (0, 0)
    assert control.stats()["total_requests"] == 0


def test_oversized_batch_is_a_typed_validation_error(sandbox: Sandbox, control: Control) -> None:
    control.configure(max_batch=3)
    with make_client(sandbox.lnb_base_url, batch_size=5) as lnb:
        with pytest.raises(LnbValidationError) as raised:
            lnb.push_inventory(pushed_rows())
    assert raised.value.status == 422
    assert "requests" in raised.value.errors
    assert control.calls("POST /multi/inventory/ean") == 1


# --- order status -------------------------------------------------------------------------


def test_status_change(client: LnbClient, control: Control) -> None:
    order = client.set_order_status("LNB-0018", "confirmed")
    assert order["status"] == "confirmed"
    assert len(control.logged("POST", "/orders/status")) == 1


def test_lost_ack_is_resolved_by_re_reading_not_by_resending(client: LnbClient, control: Control) -> None:
    control.fault("lost_ack", "/orders/status", count=1)
    order = client.set_order_status("LNB-0018", "confirmed")
    assert order["status"] == "confirmed"
    assert len(control.logged("POST", "/orders/status")) == 1
    assert len(control.logged("GET", "/orders/LNB-0018")) == 1


def test_status_change_not_applied_is_retried_after_re_reading(client: LnbClient, control: Control) -> None:
    control.fault("http_503", "/orders/status", count=1)
    assert client.set_order_status("LNB-0018", "confirmed")["status"] == "confirmed"
    assert len(control.logged("POST", "/orders/status")) == 2
    assert len(control.logged("GET", "/orders/LNB-0018")) == 1


def test_status_change_500_is_checked_then_raised(client: LnbClient, control: Control) -> None:
    control.fault("http_500", "/orders/status", count=1)
    with pytest.raises(LnbServerError, match="HTTP 500"):
        client.set_order_status("LNB-0018", "confirmed")
    assert len(control.logged("POST", "/orders/status")) == 1
    assert client.get_order("LNB-0018")["status"] == "open_for_brand"


def test_status_change_rejections_are_typed_and_not_retried(client: LnbClient, control: Control) -> None:
    with pytest.raises(LnbValidationError) as raised:
        client.set_order_status("LNB-0018", "shipped")
    assert "status" in raised.value.errors
    with pytest.raises(LnbNotFound):
        client.set_order_status("LNB-9999", "confirmed")
    assert len(control.logged("POST", "/orders/status")) == 2


# --- redaction ----------------------------------------------------------------------------


def test_token_never_leaks_into_logs_errors_or_tracebacks(
    sandbox: Sandbox, control: Control, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    session = TokenRecordingSession()
    failures: list[LnbError] = []
    with make_client(sandbox.lnb_base_url, timeout=SHORT_TIMEOUT, session=session) as lnb:
        control.fault("http_500", "/inventory", count=50)
        with pytest.raises(LnbServerError) as server_error:
            lnb.get_inventory()
        failures.append(server_error.value)
        control.post("reset")
        control.fault("timeout", "/orders", count=50, seconds=STALL_SECONDS)
        with pytest.raises(LnbNetworkError) as timeout_error:
            list(lnb.iter_orders())
        failures.append(timeout_error.value)
        control.post("reset")
        control.configure(token_ttl_seconds=0.001)
        control.post("tokens/expire")
        with pytest.raises(LnbAuthError) as auth_error:
            lnb.get_order("LNB-0001")
        failures.append(auth_error.value)
        client_repr = repr(lnb)

    assert len(session.tokens_sent) == 2  # the first token, then a short-lived one
    assert any(record.name.startswith("urllib3") for record in caplog.records)
    captured = [client_repr]
    captured += [record.getMessage() for record in caplog.records]
    captured += [text for error in failures
                 for text in (str(error), repr(error), "".join(traceback.format_exception(error)))]
    for token in session.tokens_sent:
        leaks = [text for text in captured if token in text]
        assert not leaks, f"token found in {leaks[:3]}"
    assert all(error.__cause__ is None and error.__context__ is None for error in failures)
