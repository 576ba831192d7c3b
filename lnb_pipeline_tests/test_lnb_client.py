"""``LnbClient`` against the LNB sandbox over real HTTP: paging (with and without LNB's pagination
headers, and lists moving while read), tokens and their expiry in every form, every injected fault,
batched stock writes, the guarded status change, and that the token never leaks.

One LNB sandbox serves the demo scenario (with 1200 stock rows instead of its own) for the module
and is reset before each test; faults and settings are armed through its ``/_sandbox/`` endpoints.
Variants the sandbox has no switch for (a proxy stripping headers, a server ignoring ``page``, a
garbled token answer) come from a subclass of it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

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
CONFIRMED = [order["reference"] for order in ORDERS if order["status"] == "confirmed"]
"""LNB-0001 to LNB-0015, the first orders created."""
MANY_ORDERS = 250
MANY = {**SCENARIO, "lnb": {"orders": [
    {**ORDERS[0], "reference": f"MANY-{n:04d}",
     "create_time": (datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=n)).strftime("%Y-%m-%dT%H:%M:%SZ")}
    for n in range(MANY_ORDERS)]}}


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
def server() -> Iterator[SandboxServer]:
    running = SandboxServer(LnbApi(SCENARIO)).start()
    yield running
    running.stop()


@pytest.fixture
def base_url(server: SandboxServer) -> str:
    return server.url + LNB_BASE_PATH


@pytest.fixture
def control(server: SandboxServer) -> Control:
    control = Control(server.url)
    control.post("reset")
    return control


def make_client(base_url: str, **options: Any) -> LnbClient:
    settings: dict[str, Any] = {"retry": FAST_RETRY, **options}
    return LnbClient(base_url, settings.pop("client_id", CLIENT_ID), settings.pop("client_secret", CLIENT_SECRET),
                     **settings)


@pytest.fixture
def client(base_url: str, control: Control) -> Iterator[LnbClient]:
    with make_client(base_url) as lnb:
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
    assert confirmed == CONFIRMED
    since = datetime(2026, 1, 7, 12, tzinfo=UTC)
    recent = [o["reference"] for o in client.iter_orders(order_time_from=since, status="canceled")]
    assert recent == ["LNB-0021", "LNB-0027"]
    sent = control.logged("GET", "/orders")[-1]["query"]
    assert sent["order_time_from"] == "2026-01-07 13:00:00" and sent["status"] == "canceled"


@pytest.mark.parametrize("timestamps", ["iso", "naive"])
def test_datetime_filters_are_lnb_local_time_whatever_lnb_serves(
    client: LnbClient, control: Control, timestamps: str
) -> None:
    """A zone-less LNB refuses an offset: datetimes go as ``Y-m-d H:i:s`` in LNB's zone, a date as is."""
    control.configure(timestamps=timestamps)
    since = datetime(2026, 1, 7, 7, tzinfo=ZoneInfo("America/New_York"))  # 12:00 UTC, 13:00 in Paris
    recent = client.iter_orders(order_time_from=since, order_time_to=datetime(2026, 1, 9).date(), status="canceled")
    assert [o["reference"] for o in recent] == ["LNB-0021", "LNB-0027"]
    with make_client(client.base_url, timezone=ZoneInfo("UTC")) as utc_client:
        list(utc_client.iter_orders(order_time_from=since))
    sent = [entry["query"]["order_time_from"] for entry in control.logged("GET", "/orders")]
    assert sent == ["2026-01-07 13:00:00", "2026-01-07 12:00:00"]


def test_zone_less_datetime_filter_is_refused_before_any_call(client: LnbClient, control: Control) -> None:
    with pytest.raises(ValueError, match="aware datetime"):
        client.iter_orders(update_time_from=datetime(2026, 1, 7, 12))
    assert control.stats()["total_requests"] == 0


def test_unknown_filter_is_refused_before_any_call(client: LnbClient, control: Control) -> None:
    with pytest.raises(ValueError, match="order_status"):
        client.iter_orders(order_status="confirmed")
    assert control.stats()["total_requests"] == 0


def test_invalid_filter_value_is_a_validation_error(client: LnbClient) -> None:
    with pytest.raises(LnbValidationError) as raised:
        list(client.iter_orders(status="shipped"))
    assert "status" in raised.value.errors


DROP = object()
"""In ``BentLnbApi.token_fields``: leave this field out of the token answer."""
ECHO = object()
"""In ``BentLnbApi.token_fields``: repeat the access token in this field."""


class BentLnbApi(LnbApi):
    """The sandbox bent where a proxy or another LNB version might bend it: some ``X-Pagination-*``
    headers stripped, ``page`` ignored (answering 400 after ``MAX_LIST_CALLS`` so that a client
    looping on it fails instead of hanging), or token answer fields replaced."""

    MAX_LIST_CALLS = 30

    def bend(self, *, dropped: tuple[str, ...] = (), ignore_page: bool = False,
             token_fields: dict[str, Any] | None = None) -> None:
        self.dropped, self.ignore_page, self.token_fields = dropped, ignore_page, token_fields or {}
        self.list_calls = 0

    def handle(self, request: Request) -> Response:
        if self.ignore_page and request.path.endswith("/orders"):
            self.list_calls += 1
            if self.list_calls > self.MAX_LIST_CALLS:
                return Response.json({"message": "too many list calls"}, 400)
            request.params.pop("page", None)
        response = super().handle(request)
        for header in self.dropped:
            response.headers.pop(header, None)
        if self.token_fields and request.path.endswith("/auth/token") and response.status == 200:
            answer = json.loads(response.body)
            answer.update({name: answer["access_token"] if value is ECHO else value
                           for name, value in self.token_fields.items()})
            response = Response.json({name: value for name, value in answer.items() if value is not DROP})
        return response


@pytest.fixture(scope="module")
def bent_server() -> Iterator[SandboxServer]:
    server = SandboxServer(BentLnbApi(SCENARIO)).start()
    yield server
    server.stop()


@pytest.fixture
def bent(bent_server: SandboxServer) -> BentLnbApi:
    api = bent_server.api
    assert isinstance(api, BentLnbApi)
    api.reset({})
    api.bend()
    return api


@pytest.mark.parametrize(
    ("dropped", "page_size", "expected_calls"),
    [
        (("X-Pagination-Has-More",), 5, 7),  # 5+5+5+5+5+2: the short page is not trusted as the end
        (("X-Pagination-Has-More",), 9, 4),  # 9+9+9, then an empty page ends it
        (("X-Pagination-Has-More", "X-Pagination-Page-Size"), 500, 2),  # 27, then an empty page
    ],
)
def test_without_has_more_a_list_is_read_until_an_empty_page(
    bent_server: SandboxServer, bent: BentLnbApi, dropped: tuple[str, ...], page_size: int, expected_calls: int
) -> None:
    bent.configure({"page_size": page_size})
    bent.bend(dropped=dropped)
    with make_client(bent_server.url + LNB_BASE_PATH) as lnb:
        references = [order["reference"] for order in lnb.iter_orders()]
    assert references == [order["reference"] for order in ORDERS]
    assert bent.stats.snapshot()["requests"]["GET /orders"] == expected_calls


def test_a_server_ignoring_page_is_an_error_not_an_endless_loop(bent_server: SandboxServer, bent: BentLnbApi) -> None:
    bent.configure({"page_size": 5, "pagination_headers": False})
    bent.bend(ignore_page=True)
    with make_client(bent_server.url + LNB_BASE_PATH) as lnb:
        with pytest.raises(LnbResponseError, match="page 2 with the rows of page 1: it seems to ignore the page"):
            list(lnb.iter_orders())
    assert bent.list_calls == 2


@pytest.fixture(scope="module")
def many_server() -> Iterator[SandboxServer]:
    server = SandboxServer(LnbApi(MANY)).start()
    yield server
    server.stop()


@pytest.mark.parametrize(
    ("headers", "page_size", "expected_calls"),
    [
        (False, 37, 8),  # 6 x 37 + 28, then an empty page
        (False, 100, 4),
        (False, 125, 3),  # the last page full: only the empty page tells
        (False, 500, 2),
        (True, 37, 7),  # Has-More: false on the 7th page
        (True, 125, 2),
    ],
)
def test_any_page_size_with_or_without_headers_reads_every_order_once(
    many_server: SandboxServer, headers: bool, page_size: int, expected_calls: int
) -> None:
    control = Control(many_server.url)
    control.post("reset")
    control.configure(pagination_headers=headers, page_size=page_size)
    with make_client(many_server.url + LNB_BASE_PATH) as lnb:
        references = [order["reference"] for order in lnb.iter_orders()]
    assert references == [f"MANY-{n:04d}" for n in range(MANY_ORDERS)]
    assert control.calls("GET /orders") == expected_calls


# --- lists changing while they are read -----------------------------------------------------


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]


@pytest.mark.parametrize("headers", [True, False])
def test_an_order_entering_the_list_while_it_is_read_is_neither_doubled_nor_missed(
    client: LnbClient, control: Control, caplog: pytest.LogCaptureFixture, headers: bool
) -> None:
    """LNB-0003 enters ``confirmed`` after page 1: page 2 repeats LNB-0006, and only a second read
    finds LNB-0003 (in page 1, already read)."""
    control.post("orders/LNB-0003", {"status": "open_for_brand"})
    control.configure(page_size=5, pagination_headers=headers,
                      list_changes=[{"after_page": 1, "reference": "LNB-0003", "status": "confirmed"}])
    references = [order["reference"] for order in client.iter_orders(status="confirmed")]
    assert references == [ref for ref in CONFIRMED if ref != "LNB-0003"] + ["LNB-0003"]
    assert control.stats()["list_changes_applied"] == 1
    [warning] = warnings_of(caplog)
    assert "LNB /orders changed while it was read" in warning
    assert "1 duplicate(s) dropped; reading it again from page 1" in warning
    assert ("X-Pagination-Total-Items went 14 -> 15" in warning) is headers


def test_an_order_leaving_the_list_while_it_is_read_skips_nothing_when_lnb_sends_totals(
    client: LnbClient, control: Control, caplog: pytest.LogCaptureFixture
) -> None:
    """LNB-0002 leaves after page 1: page 2 starts at LNB-0007, and the re-read finds LNB-0006."""
    control.configure(page_size=5, list_changes=[{"after_page": 1, "reference": "LNB-0002", "status": "invoicing"}])
    references = [order["reference"] for order in client.iter_orders(status="confirmed")]
    assert references == [ref for ref in CONFIRMED if ref != "LNB-0006"] + ["LNB-0006"]
    [warning] = warnings_of(caplog)
    assert "X-Pagination-Total-Items went 15 -> 14" in warning and "0 duplicate(s) dropped" in warning


def test_a_list_still_moving_during_the_re_read_is_reported(
    client: LnbClient, control: Control, caplog: pytest.LogCaptureFixture
) -> None:
    for reference in ("LNB-0003", "LNB-0004"):
        control.post(f"orders/{reference}", {"status": "open_for_brand"})
    control.configure(page_size=5, list_changes=[{"after_page": 1, "reference": "LNB-0003", "status": "confirmed"}])
    orders = client.iter_orders(status="confirmed")
    first_read = [next(orders)["reference"] for _ in range(len(CONFIRMED) - 2)]
    control.configure(list_changes=[{"after_page": 1, "reference": "LNB-0004", "status": "confirmed"}])
    rest = [order["reference"] for order in orders]
    assert first_read == [ref for ref in CONFIRMED if ref not in ("LNB-0003", "LNB-0004")]
    assert rest == ["LNB-0003"]  # LNB-0004 entered during the re-read: left to the next run
    first, second = warnings_of(caplog)
    assert "changed while it was read" in first
    assert "changed again while it was re-read" in second and "1 duplicate(s) dropped" in second
    assert control.calls("GET /orders") == 6


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
    control.configure(token_ttl_seconds=1, token_expiry="expires_in")
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
    control.configure(token_ttl_seconds=1e-6)
    with pytest.raises(LnbAuthError, match="freshly issued access token"):
        client.get_inventory()
    assert control.calls("POST /auth/token") == 2
    assert control.calls("GET /inventory") == 2


def three_calls(lnb: LnbClient) -> None:
    for _ in range(3):
        lnb.get_order("LNB-0001")


@pytest.mark.parametrize(("timestamps", "expiry"), [("iso", "expire_on"), ("naive", "expire_on"),
                                                    ("naive", "expires_in"), ("naive", "both")])
def test_every_expiry_form_keeps_the_token(
    base_url: str, control: Control, caplog: pytest.LogCaptureFixture, timestamps: str, expiry: str
) -> None:
    """``expire_on`` with a zone, or zone-less in LNB's zone (New York here, which read as UTC would be
    hours in the past), or ``expires_in``: one token serves every call."""
    control.configure(timestamps=timestamps, timezone="America/New_York", token_expiry=expiry)
    with make_client(base_url, timezone=ZoneInfo("America/New_York")) as lnb:
        three_calls(lnb)
    assert control.calls("POST /auth/token") == 1
    assert warnings_of(caplog) == []


def test_expire_on_in_the_past_means_a_zone_mistake_not_a_refresh_before_every_call(
    base_url: str, control: Control, caplog: pytest.LogCaptureFixture
) -> None:
    control.configure(timestamps="naive", timezone="America/New_York")
    with make_client(base_url) as lnb:  # reads zone-less times in Paris, six hours ahead
        three_calls(lnb)
    assert control.calls("POST /auth/token") == 1
    past, fallback = warnings_of(caplog)
    assert "s in the past when read in Europe/Paris: is LNB_API_TIMEZONE LNB's time zone?" in past
    assert "kept 300s, or until LNB rejects it" in fallback


@pytest.mark.parametrize(
    ("token_fields", "warning"),
    [
        ({"expire_on": "tomorrow"}, "unreadable expire_on (unreadable LNB time 'tomorrow'"),
        ({"expire_on": 1.5e9}, "unreadable expire_on (unreadable LNB time 1500000000.0"),
        ({"expire_on": " "}, "blank expire_on"),
        ({"expire_on": DROP, "expires_in": 0}, "expires_in 0, not a positive number of seconds"),
        ({"expire_on": DROP, "expires_in": "3600"}, "expires_in '3600', not a positive number of seconds"),
    ],
)
def test_an_unusable_expiry_is_ignored_with_a_warning_and_a_short_lifetime(
    bent_server: SandboxServer, bent: BentLnbApi, caplog: pytest.LogCaptureFixture,
    token_fields: dict[str, Any], warning: str
) -> None:
    bent.bend(token_fields=token_fields)
    with make_client(bent_server.url + LNB_BASE_PATH) as lnb:
        three_calls(lnb)
    assert bent.stats.snapshot()["requests"]["POST /auth/token"] == 1
    specific, fallback = warnings_of(caplog)
    assert warning in specific
    assert "kept 300s" in fallback


def test_a_token_echoed_in_its_expiry_stays_out_of_the_warnings(
    bent_server: SandboxServer, bent: BentLnbApi, caplog: pytest.LogCaptureFixture
) -> None:
    bent.bend(token_fields={"expire_on": ECHO, "expires_in": ECHO})
    session = TokenRecordingSession()
    with make_client(bent_server.url + LNB_BASE_PATH, session=session) as lnb:
        lnb.get_order("LNB-0001")
    [token] = session.tokens_sent
    warnings = warnings_of(caplog)
    assert len(warnings) == 3 and all("***" in warning for warning in warnings[:2])
    assert not [warning for warning in warnings if token in warning]


def test_a_usable_expires_in_beats_an_unusable_expire_on(
    bent_server: SandboxServer, bent: BentLnbApi, caplog: pytest.LogCaptureFixture
) -> None:
    bent.bend(token_fields={"expire_on": "2000-01-01 00:00:00", "expires_in": 3600})
    with make_client(bent_server.url + LNB_BASE_PATH) as lnb:
        three_calls(lnb)
    assert bent.stats.snapshot()["requests"]["POST /auth/token"] == 1
    [warning] = warnings_of(caplog)
    assert "expire_on '2000-01-01 00:00:00' is" in warning and "in the past" in warning


def test_bad_credentials_fail_without_retries(base_url: str, control: Control) -> None:
    with make_client(base_url, client_secret="not-the-secret") as lnb:
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


def test_read_timeout_is_retried(base_url: str, control: Control) -> None:
    control.fault("timeout", "/inventory", count=1, seconds=STALL_SECONDS)
    with make_client(base_url, timeout=SHORT_TIMEOUT) as lnb:
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


def test_push_is_batched_and_applied(base_url: str, control: Control) -> None:
    with make_client(base_url, batch_size=500) as lnb:
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


def test_push_timeout_is_retried(base_url: str, control: Control) -> None:
    control.fault("timeout", "/multi/inventory", count=1, seconds=STALL_SECONDS)
    with make_client(base_url, timeout=SHORT_TIMEOUT) as lnb:
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


def test_oversized_batch_is_a_typed_validation_error(base_url: str, control: Control) -> None:
    control.configure(max_batch=3)
    with make_client(base_url, batch_size=5) as lnb:
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
    base_url: str, control: Control, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    session = TokenRecordingSession()
    failures: list[LnbError] = []
    with make_client(base_url, timeout=SHORT_TIMEOUT, session=session) as lnb:
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
        control.configure(token_ttl_seconds=1e-6)
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
