"""The LNB sandbox over real HTTP: it must accept, reject, page, throttle and fail like LNB would.

One server serves a small generated scenario for the whole module and is reset before each test;
tests that need their own constructor settings or switch scenarios start a server of their own.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests

from lnb_pipeline.sandbox.http import SandboxServer
from lnb_pipeline.sandbox.lnb.api import LNB_BASE_PATH, LnbApi

CLIENT_ID = "sandbox-client"
CLIENT_SECRET = "sandbox-secret"
BASE_TIME = datetime(2024, 1, 1, tzinfo=UTC)
ORDER_COUNT = 1200
STATUS_CYCLE = ("confirmed", "open_for_brand", "confirmed", "closed", "canceled")
LATE_UPDATE = "2024-06-01T00:00:00Z"
EAN_SHIRT, EAN_DRESS, EAN_SCARF = "4006381333931", "4006381333948", "4006381333955"
UNKNOWN_EAN = "0000000000017"
DEFAULT_SETTINGS = {"rps": None, "token_ttl_seconds": 3600.0, "page_size": 500, "max_batch": 1000,
                    "pagination_headers": True, "timestamps": "iso", "timezone": "Europe/Paris",
                    "token_expiry": "expire_on", "list_changes": []}
PARIS = ZoneInfo("Europe/Paris")


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def make_order(i: int) -> dict[str, Any]:
    """Order i is created 2i minutes after BASE_TIME (so 720 on 2024-01-01); every 100th was
    updated on LATE_UPDATE, the others an hour after creation."""
    created = BASE_TIME + timedelta(minutes=2 * i)
    status = STATUS_CYCLE[i % len(STATUS_CYCLE)]
    confirmed = status in ("confirmed", "closed")
    return {
        "reference": f"ORD-{i:05d}",
        "create_time": iso(created),
        "update_time": LATE_UPDATE if i % 100 == 0 else iso(created + timedelta(hours=1)),
        "confirmation_time": iso(created + timedelta(minutes=30)) if confirmed else None,
        "cancellation_time": iso(created + timedelta(minutes=45)) if status == "canceled" else None,
        "status": status,
        "retailer_reference": f"R00{i % 2 + 1}",
        "currency": "EUR",
        "amount_total": 98.0,
        "comment": None,
        "items": [{"reference": "LS-BLU", "name": "Linen Shirt", "size": "M", "quantity": 2,
                   "unit_price": 49.0, "ean13": EAN_SHIRT, "sku": "LS-BLU-M", "sku_extra_1": None}],
    }


RETAILERS = [
    {"reference": "R002", "name": "Boutique Deux", "create_time": "2023-02-01T00:00:00Z", "buyers": []},
    {"reference": "R001", "name": "Shop SARL", "create_time": "2023-01-01T00:00:00Z",
     "buyers": [{"email": "buyer@shop.example", "first_name": "Ana", "last_name": "Lopes"}]},
    {"name": "No Reference Ltd", "create_time": "2023-03-01T00:00:00Z", "buyers": []},
]


def stock_row(ean13: str | None, sku: str, in_stock: int) -> dict[str, Any]:
    return {"ean13": ean13, "sku": sku, "extra_1": None, "in_stock": in_stock,
            "in_stock_update_time": "2024-01-01T00:00:00Z", "incoming_stock": 0,
            "incoming_stock_date": None, "is_blocked": False}


INVENTORY = [
    stock_row(EAN_SHIRT, "LS-BLU-M", 5),
    stock_row(EAN_DRESS, "DR-RED-S", 0),
    stock_row(EAN_SCARF, "SC-GRN", 11),
    stock_row(None, "NO-EAN-1", 2),
]
# Listed newest first: the server must sort by create_time itself.
SCENARIO = {
    "locations": [{"id": 1, "name": "Paris Warehouse", "active": True}],
    "lnb": {"retailers": RETAILERS, "orders": [make_order(i) for i in reversed(range(ORDER_COUNT))],
            "inventory": INVENTORY},
}


class Lnb:
    """Just enough client to talk to the sandbox; deliberately not the project's LNB client."""

    def __init__(self, server: SandboxServer) -> None:
        self.root = server.url
        self.api = server.url + LNB_BASE_PATH

    def new_token(self) -> str:
        response = self.post("/auth/token", token=None, json={
            "grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
        assert response.status_code == 200, response.text
        return response.json()["access_token"]

    def get(self, path: str, token: str | None, timeout: float = 5, **params: Any) -> requests.Response:
        if token is not None:
            params["access_token"] = token
        return requests.get(self.api + path, params=params, timeout=timeout)

    def post(self, path: str, token: str | None, timeout: float = 5, **kwargs: Any) -> requests.Response:
        params = {} if token is None else {"access_token": token}
        return requests.post(self.api + path, params=params, timeout=timeout, **kwargs)

    def control(self, method: str, route: str, body: Any = None) -> requests.Response:
        return requests.request(method, f"{self.root}/_sandbox/{route}", json=body, timeout=5)

    def arm(self, **fault: Any) -> None:
        assert self.control("POST", "faults", fault).status_code == 200

    def configure(self, **settings: Any) -> dict[str, Any]:
        response = self.control("POST", "config", settings)
        assert response.status_code == 200, response.text
        return response.json()

    def inventory(self, token: str) -> list[dict[str, Any]]:
        response = self.get("/inventory", token)
        assert response.status_code == 200
        return response.json()


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    running = SandboxServer(LnbApi(SCENARIO), port=0).start()
    yield running
    running.stop()


@pytest.fixture
def lnb(server: SandboxServer) -> Lnb:
    client = Lnb(server)
    assert client.control("POST", "reset", {}).status_code == 200
    return client


@pytest.fixture
def token(lnb: Lnb) -> str:
    return lnb.new_token()


@pytest.fixture
def start_server() -> Iterator[Callable[..., Lnb]]:
    """Servers of a test's own, for constructor settings or scenario switches; stopped afterwards."""
    started: list[SandboxServer] = []

    def start(scenario: dict[str, Any] = SCENARIO, **settings: Any) -> Lnb:
        started.append(SandboxServer(LnbApi(scenario, **settings), port=0).start())
        return Lnb(started[-1])

    yield start
    for running in started:
        running.stop()


def pagination(response: requests.Response) -> dict[str, str]:
    return {name: response.headers[f"X-Pagination-{name}"]
            for name in ("Current-Page", "Page-Size", "Has-More", "Total-Pages", "Total-Items")}


def references(response: requests.Response) -> list[str]:
    return [order["reference"] for order in response.json()]


def assert_recent(timestamp: str, before: datetime) -> None:
    """``timestamp`` is the sandbox's "now", taken between ``before`` and this call."""
    moment = datetime.fromisoformat(timestamp)
    assert timestamp.endswith("Z")
    assert before.replace(microsecond=0) <= moment <= datetime.now(UTC)


# --- auth -------------------------------------------------------------------------------------


def grant(lnb: Lnb) -> dict[str, Any]:
    response = lnb.post("/auth/token", None, json={
        "grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
    assert response.status_code == 200
    return response.json()


def test_token_response_shape(lnb: Lnb) -> None:
    """``expire_on`` alone by default, as the PHP SDK and the contract show it."""
    before = datetime.now(UTC)
    body = grant(lnb)
    assert set(body) == {"access_token", "expire_on"}
    assert len(body["access_token"]) >= 32
    assert body["access_token"] != lnb.new_token()
    expire_on = datetime.fromisoformat(body["expire_on"])
    assert body["expire_on"].endswith("Z")
    assert before.replace(microsecond=0) + timedelta(seconds=3600) <= expire_on
    assert expire_on <= datetime.now(UTC) + timedelta(seconds=3600)


def test_wrong_credentials_are_401(lnb: Lnb) -> None:
    response = lnb.post("/auth/token", None, json={
        "grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": "wrong"})
    assert response.status_code == 401
    assert response.json() == {"error": "invalid_client", "message": "Client authentication failed"}
    response = lnb.post("/auth/token", None, json={
        "grant_type": "client_credentials", "client_id": "someone-else", "client_secret": CLIENT_SECRET})
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}, {"grant_type"}),
        ({"grant_type": "password", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}, {"grant_type"}),
        ({"grant_type": "client_credentials"}, {"client_id", "client_secret"}),
        ({"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": 7}, {"client_secret"}),
        ([1, 2], {"body"}),
    ],
)
def test_malformed_token_requests_are_422(lnb: Lnb, body: Any, fields: set[str]) -> None:
    response = lnb.post("/auth/token", None, json=body)
    assert response.status_code == 422
    assert response.json()["message"] == "The given data was invalid."
    assert set(response.json()["errors"]) == fields


def test_non_json_token_request_is_422(lnb: Lnb) -> None:
    response = lnb.post("/auth/token", None, data="grant_type=client_credentials&client_id=x",
                        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 422
    assert response.json()["errors"] == {"body": ["the body must be a JSON object"]}


def test_missing_or_unknown_token_is_401(lnb: Lnb, token: str) -> None:
    missing = lnb.get("/orders", None)
    assert missing.status_code == 401
    assert missing.json() == {"message": "Missing access_token query parameter"}
    unknown = lnb.get("/orders", "not-a-token")
    assert unknown.status_code == 401
    assert unknown.json() == {"message": "Invalid access token"}
    as_header = requests.get(lnb.api + "/orders", headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert as_header.status_code == 401
    assert lnb.post("/multi/inventory/ean", None, json={"requests": [{"ean13": EAN_SHIRT, "in_stock": 1}]}
                    ).status_code == 401
    assert lnb.inventory(token)[0]["in_stock"] == 5


def test_token_expires_after_its_ttl(lnb: Lnb) -> None:
    lnb.configure(token_ttl_seconds=0.3)
    short_lived = lnb.new_token()
    assert lnb.get("/inventory", short_lived).status_code == 200
    time.sleep(0.35)
    expired = lnb.get("/inventory", short_lived)
    assert expired.status_code == 401
    assert expired.json() == {"message": "Token expired"}


def test_ttl_from_constructor_shows_in_token(start_server: Callable[..., Lnb]) -> None:
    own = start_server(token_ttl_seconds=120, client_id="id-2", client_secret="secret-2")
    own.configure(token_expiry="expires_in")
    response = own.post("/auth/token", None, json={
        "grant_type": "client_credentials", "client_id": "id-2", "client_secret": "secret-2"})
    assert response.status_code == 200
    assert response.json()["expires_in"] == 120


@pytest.mark.parametrize(("expiry", "fields"), [("expires_in", {"access_token", "expires_in"}),
                                                 ("both", {"access_token", "expire_on", "expires_in"})])
def test_token_expiry_fields_are_a_switch(lnb: Lnb, expiry: str, fields: set[str]) -> None:
    lnb.configure(token_expiry=expiry)
    body = grant(lnb)
    assert set(body) == fields
    assert body["expires_in"] == 3600


def test_naive_expire_on_is_lnb_local_time(lnb: Lnb) -> None:
    lnb.configure(timestamps="naive", timezone="America/New_York")
    before = datetime.now(UTC)
    expire_on = grant(lnb)["expire_on"]
    assert len(expire_on) == 19 and expire_on[10] == " "
    moment = datetime.strptime(expire_on, "%Y-%m-%d %H:%M:%S").replace(tzinfo=ZoneInfo("America/New_York"))
    assert before.replace(microsecond=0) + timedelta(seconds=3600) <= moment
    assert moment <= datetime.now(UTC) + timedelta(seconds=3600)


def test_expire_control_endpoint_expires_issued_tokens(lnb: Lnb, token: str) -> None:
    other = lnb.new_token()
    expire = lnb.control("POST", "tokens/expire")
    assert expire.status_code == 200
    assert expire.json()["expired"] >= 2
    for stale in (token, other):
        response = lnb.get("/orders/ORD-00001", stale)
        assert response.status_code == 401
        assert response.json() == {"message": "Token expired"}
    assert lnb.get("/orders/ORD-00001", lnb.new_token()).status_code == 200


def test_tokens_survive_reset(lnb: Lnb, token: str) -> None:
    assert lnb.control("POST", "reset", {}).status_code == 200
    assert lnb.get("/inventory", token).status_code == 200


# --- routing ----------------------------------------------------------------------------------


def test_unknown_paths_are_json_404_and_wrong_methods_405(lnb: Lnb, token: str) -> None:
    for url in (lnb.api + "/nowhere", lnb.root + "/apis/wholesale/v1/orders", lnb.root + "/"):
        response = requests.get(url, params={"access_token": token}, timeout=5)
        assert response.status_code == 404
        assert response.headers["Content-Type"].startswith("application/json")
        assert set(response.json()) == {"message"}
    delete = requests.delete(lnb.api + "/orders", params={"access_token": token}, timeout=5)
    assert delete.status_code == 405
    assert delete.json() == {"message": "Method Not Allowed"}
    assert delete.headers["Allow"] == "GET"
    assert lnb.get("/auth/token", None).headers["Allow"] == "POST"
    assert lnb.post("/orders/ORD-00001", token, json={}).status_code == 405


# --- orders -----------------------------------------------------------------------------------


def test_orders_are_paged_500_at_a_time_in_creation_order(lnb: Lnb, token: str) -> None:
    pages = [lnb.get("/orders", token, page=page) for page in (1, 2, 3)]
    assert [p.status_code for p in pages] == [200, 200, 200]
    assert [pagination(p) for p in pages] == [
        {"Current-Page": str(n), "Page-Size": "500", "Has-More": more, "Total-Pages": "3",
         "Total-Items": "1200"}
        for n, more in ((1, "true"), (2, "true"), (3, "false"))
    ]
    assert [len(p.json()) for p in pages] == [500, 500, 200]
    seen = [ref for p in pages for ref in references(p)]
    assert seen == [f"ORD-{i:05d}" for i in range(ORDER_COUNT)]
    assert pages[0].json()[7] == make_order(7)


def test_page_defaults_to_one(lnb: Lnb, token: str) -> None:
    response = lnb.get("/orders", token)
    assert pagination(response)["Current-Page"] == "1"
    assert references(response)[:2] == ["ORD-00000", "ORD-00001"]


def test_page_beyond_the_end_is_empty(lnb: Lnb, token: str) -> None:
    response = lnb.get("/orders", token, page=4)
    assert response.status_code == 200
    assert response.json() == []
    assert pagination(response) == {"Current-Page": "4", "Page-Size": "500", "Has-More": "false",
                                    "Total-Pages": "3", "Total-Items": "1200"}


@pytest.mark.parametrize("page", ["0", "-1", "two", "1.5", ""])
def test_bad_page_is_422(lnb: Lnb, token: str, page: str) -> None:
    response = lnb.get("/orders", token, page=page)
    assert response.status_code == 422
    assert set(response.json()["errors"]) == {"page"}


def test_empty_result(lnb: Lnb, token: str) -> None:
    response = lnb.get("/orders", token, status="invoicing")
    assert response.status_code == 200
    assert response.json() == []
    assert pagination(response) == {"Current-Page": "1", "Page-Size": "500", "Has-More": "false",
                                    "Total-Pages": "0", "Total-Items": "0"}


def test_exactly_one_full_page(lnb: Lnb, token: str) -> None:
    response = lnb.get("/orders", token, order_time_from=iso(BASE_TIME),
                       order_time_to=iso(BASE_TIME + timedelta(minutes=2 * 499)))
    assert len(response.json()) == 500
    assert pagination(response) == {"Current-Page": "1", "Page-Size": "500", "Has-More": "false",
                                    "Total-Pages": "1", "Total-Items": "500"}
    assert references(response)[-1] == "ORD-00499"


def test_status_filter(lnb: Lnb, token: str) -> None:
    confirmed = lnb.get("/orders", token, status="confirmed")
    assert pagination(confirmed)["Total-Items"] == "480"
    assert {order["status"] for order in confirmed.json()} == {"confirmed"}
    assert pagination(lnb.get("/orders", token, status="open_for_brand"))["Total-Items"] == "240"
    bogus = lnb.get("/orders", token, status="shipped")
    assert bogus.status_code == 422
    assert set(bogus.json()["errors"]) == {"status"}


def test_update_time_filter_is_inclusive(lnb: Lnb, token: str) -> None:
    late = [f"ORD-{i:05d}" for i in range(0, ORDER_COUNT, 100)]
    assert references(lnb.get("/orders", token, update_time_from="2024-05-01")) == late
    exact = lnb.get("/orders", token, update_time_from=LATE_UPDATE, update_time_to=LATE_UPDATE)
    assert references(exact) == late
    assert references(lnb.get("/orders", token, update_time_from="2024-06-01T00:00:01Z")) == []
    early = lnb.get("/orders", token, update_time_to="2024-05-31T23:59:59Z")
    assert pagination(early)["Total-Items"] == "1188"


def test_order_time_to_as_a_date_covers_that_day_in_lnb_time(lnb: Lnb, token: str) -> None:
    """2024-01-01 in Paris ends at 23:00 UTC: orders 0 to 689 (created every 2 minutes from 00:00 UTC)."""
    assert pagination(lnb.get("/orders", token, order_time_to="2024-01-01"))["Total-Items"] == "690"
    assert references(lnb.get("/orders", token, order_time_to="2024-01-01T00:00:00Z")) == ["ORD-00000"]
    assert references(lnb.get("/orders", token, order_time_to="2024-01-01T00:00:00+01:00")) == []
    lnb.configure(timezone="UTC")
    assert pagination(lnb.get("/orders", token, order_time_to="2024-01-01"))["Total-Items"] == "720"


def test_zone_less_filters_are_lnb_local_time(lnb: Lnb, token: str) -> None:
    assert references(lnb.get("/orders", token, order_time_to="2024-01-01 01:00:00")) == ["ORD-00000"]
    assert references(lnb.get("/orders", token, order_time_to="2024-01-01T00:59:59")) == []
    lnb.configure(timezone="America/New_York")
    assert references(lnb.get("/orders", token, order_time_to="2023-12-31 19:02:00")) == ["ORD-00000", "ORD-00001"]


def test_confirmation_time_filter_skips_unconfirmed_orders(lnb: Lnb, token: str) -> None:
    response = lnb.get("/orders", token, confirmation_time_from="2024-01-01")
    assert pagination(response)["Total-Items"] == "720"
    response = lnb.get("/orders", token, confirmation_time_from="2024-01-01T00:30:00Z",
                       confirmation_time_to="2024-01-01T00:34:00Z")
    assert references(response) == ["ORD-00000", "ORD-00002"]


@pytest.mark.parametrize("name", ["order_time_from", "confirmation_time_to", "update_time_from"])
def test_invalid_time_filter_is_422(lnb: Lnb, token: str, name: str) -> None:
    response = lnb.get("/orders", token, **{name: "yesterday"})
    assert response.status_code == 422
    assert set(response.json()["errors"]) == {name}


def test_get_one_order(lnb: Lnb, token: str) -> None:
    response = lnb.get("/orders/ORD-00042", token)
    assert response.status_code == 200
    assert response.json() == make_order(42)
    missing = lnb.get("/orders/ORD-99999", token)
    assert missing.status_code == 404
    assert missing.json() == {"message": "Order ORD-99999 not found"}


def test_confirming_an_order_sets_status_and_times(lnb: Lnb, token: str) -> None:
    before = datetime.now(UTC)
    response = lnb.post("/orders/status", token, json={"reference": "ORD-00001", "status": "confirmed"})
    assert response.status_code == 200
    order = response.json()
    assert order["status"] == "confirmed"
    assert_recent(order["update_time"], before)
    assert order["confirmation_time"] == order["update_time"]
    assert order["cancellation_time"] is None
    assert order == {**make_order(1), "status": "confirmed", "update_time": order["update_time"],
                     "confirmation_time": order["update_time"]}
    assert lnb.get("/orders/ORD-00001", token).json() == order
    bumped = lnb.get("/orders", token, update_time_from=iso(before))
    assert references(bumped) == ["ORD-00001"]


def test_canceling_keeps_the_confirmation_time(lnb: Lnb, token: str) -> None:
    before = datetime.now(UTC)
    order = lnb.post("/orders/status", token, json={"reference": "ORD-00000", "status": "canceled"}).json()
    assert order["status"] == "canceled"
    assert order["confirmation_time"] == make_order(0)["confirmation_time"]
    assert_recent(order["cancellation_time"], before)


def test_repeated_status_keeps_the_first_confirmation_and_cancellation(lnb: Lnb, token: str) -> None:
    confirmed = lnb.post("/orders/status", token,
                         json={"reference": "ORD-00000", "status": "confirmed"}).json()
    assert confirmed["confirmation_time"] == make_order(0)["confirmation_time"]
    canceled = lnb.post("/orders/status", token, json={"reference": "ORD-00004", "status": "canceled"}).json()
    assert canceled["cancellation_time"] == make_order(4)["cancellation_time"]
    assert canceled["update_time"] != make_order(4)["update_time"]


def test_status_change_errors(lnb: Lnb, token: str) -> None:
    unknown = lnb.post("/orders/status", token, json={"reference": "ORD-99999", "status": "closed"})
    assert unknown.status_code == 404
    assert unknown.json() == {"message": "Order ORD-99999 not found"}
    bad_status = lnb.post("/orders/status", token, json={"reference": "ORD-00001", "status": "Confirmed"})
    assert bad_status.status_code == 422
    assert set(bad_status.json()["errors"]) == {"status"}
    no_reference = lnb.post("/orders/status", token, json={"status": "closed"})
    assert no_reference.status_code == 422
    assert set(no_reference.json()["errors"]) == {"reference"}
    not_json = lnb.post("/orders/status", token, data="reference=ORD-00001")
    assert not_json.status_code == 422
    assert lnb.get("/orders/ORD-00001", token).json() == make_order(1)


def test_editing_an_order_in_lnb_bumps_update_time(lnb: Lnb, token: str) -> None:
    before = datetime.now(UTC)
    edited = lnb.control("POST", "orders/ORD-00002", {"comment": "Please ship Monday", "amount_total": 120.0})
    assert edited.status_code == 200
    order = lnb.get("/orders/ORD-00002", token).json()
    assert order == {**make_order(2), "comment": "Please ship Monday", "amount_total": 120.0,
                     "update_time": order["update_time"]}
    assert_recent(order["update_time"], before)
    assert references(lnb.get("/orders", token, update_time_from=iso(before))) == ["ORD-00002"]
    assert lnb.control("POST", "orders/ORD-99999", {"comment": "x"}).status_code == 404
    assert lnb.control("POST", "orders/ORD-00002", {"reference": "ORD-7"}).status_code == 400
    assert lnb.control("POST", "orders/ORD-00002", [1]).status_code == 400
    pinned = lnb.control("POST", "orders/ORD-00003", {"update_time": "2025-01-01T00:00:00Z"}).json()
    assert pinned["update_time"] == "2025-01-01T00:00:00Z"


# --- retailers --------------------------------------------------------------------------------


def test_retailers_list_and_one(lnb: Lnb, token: str) -> None:
    response = lnb.get("/retailers", token)
    assert response.json() == [RETAILERS[1], RETAILERS[0], RETAILERS[2]]
    assert pagination(response) == {"Current-Page": "1", "Page-Size": "500", "Has-More": "false",
                                    "Total-Pages": "1", "Total-Items": "3"}
    assert lnb.get("/retailers/R002", token).json() == RETAILERS[0]
    missing = lnb.get("/retailers/R404", token)
    assert missing.status_code == 404
    assert missing.json() == {"message": "Retailer R404 not found"}


def test_retailers_paginate_with_a_configured_page_size(lnb: Lnb, token: str) -> None:
    lnb.configure(page_size=2)
    first, second = lnb.get("/retailers", token, page=1), lnb.get("/retailers", token, page=2)
    assert [r["name"] for r in first.json()] == ["Shop SARL", "Boutique Deux"]
    assert pagination(first) == {"Current-Page": "1", "Page-Size": "2", "Has-More": "true",
                                 "Total-Pages": "2", "Total-Items": "3"}
    assert second.json() == [RETAILERS[2]]
    assert pagination(second)["Has-More"] == "false"


def test_page_size_from_constructor(start_server: Callable[..., Lnb]) -> None:
    own = start_server(page_size=1000)
    response = own.get("/orders", own.new_token(), page=2)
    assert len(response.json()) == 200
    assert pagination(response) == {"Current-Page": "2", "Page-Size": "1000", "Has-More": "false",
                                    "Total-Pages": "2", "Total-Items": "1200"}


# --- inventory --------------------------------------------------------------------------------


def test_inventory_lists_every_row(lnb: Lnb, token: str) -> None:
    response = lnb.get("/inventory", token)
    assert response.json() == INVENTORY
    assert "X-Pagination-Total-Items" not in response.headers


def test_single_stock_writes(lnb: Lnb, token: str) -> None:
    before = datetime.now(UTC)
    by_ean = lnb.post("/inventory/ean", token, json={"ean13": EAN_DRESS, "in_stock": 12})
    assert by_ean.status_code == 200
    row = by_ean.json()
    assert_recent(row["in_stock_update_time"], before)
    assert row == {**INVENTORY[1], "in_stock": 12, "in_stock_update_time": row["in_stock_update_time"]}
    by_sku = lnb.post("/inventory/sku", token, json={"sku": "NO-EAN-1", "in_stock": 0})
    assert by_sku.status_code == 200
    assert by_sku.json()["in_stock"] == 0
    assert [r["in_stock"] for r in lnb.inventory(token)] == [5, 12, 11, 0]


def test_single_stock_write_errors(lnb: Lnb, token: str) -> None:
    unknown = lnb.post("/inventory/ean", token, json={"ean13": UNKNOWN_EAN, "in_stock": 1})
    assert unknown.status_code == 404
    assert unknown.json()["message"] == f"Unknown EAN13 {UNKNOWN_EAN}"
    assert lnb.post("/inventory/sku", token, json={"sku": "NOPE", "in_stock": 1}).status_code == 404
    for body, field in (({"ean13": EAN_SHIRT, "in_stock": "3"}, "in_stock"),
                        ({"ean13": EAN_SHIRT, "in_stock": True}, "in_stock"),
                        ({"ean13": EAN_SHIRT, "in_stock": -1}, "in_stock"),
                        ({"in_stock": 3}, "ean13"),
                        ({"ean13": EAN_SHIRT, "in_stock": 3, "is_blocked": "no"}, "is_blocked")):
        response = lnb.post("/inventory/ean", token, json=body)
        assert response.status_code == 422, body
        assert set(response.json()["errors"]) == {field}
    assert lnb.post("/inventory/ean", token, data="in_stock=3").status_code == 422
    assert lnb.inventory(token) == INVENTORY


def test_batch_by_ean_reports_each_item(lnb: Lnb, token: str) -> None:
    requests_ = [
        {"ean13": EAN_SHIRT, "in_stock": 7},
        {"ean13": UNKNOWN_EAN, "in_stock": 1},
        {"ean13": EAN_DRESS, "in_stock": 0, "is_blocked": True,
         "in_stock_update_time": "2024-03-01T10:00:00Z", "incoming_stock": 20,
         "incoming_stock_date": "2024-04-01"},
        {"ean13": EAN_SCARF, "in_stock": "9"},
        {"in_stock": 1},
    ]
    response = lnb.post("/multi/inventory/ean", token, json={"requests": requests_})
    assert response.status_code == 200
    body = response.json()
    assert body["metadata"] == {"total_requests": 5, "total_successes": 2, "total_errors": 3}
    assert [entry["status"] for entry in body["data"]] == ["success", "error", "success", "error", "error"]
    assert body["data"][1] == {"status": "error", "result": None,
                               "errors": {"ean13": [f"No stock row with EAN13 {UNKNOWN_EAN}"]}}
    assert set(body["data"][3]["errors"]) == {"in_stock"}
    assert set(body["data"][4]["errors"]) == {"ean13"}
    assert body["data"][2] == {"status": "success", "errors": None, "result": {
        **INVENTORY[1], "in_stock": 0, "is_blocked": True, "in_stock_update_time": "2024-03-01T10:00:00Z",
        "incoming_stock": 20, "incoming_stock_date": "2024-04-01"}}
    assert body["data"][0]["result"]["in_stock"] == 7
    rows = lnb.inventory(token)
    assert rows[0] == body["data"][0]["result"]
    assert rows[1] == body["data"][2]["result"]
    assert rows[2:] == INVENTORY[2:]


def test_batch_by_sku(lnb: Lnb, token: str) -> None:
    response = lnb.post("/multi/inventory/sku", token, json={"requests": [
        {"sku": "NO-EAN-1", "in_stock": 40}, {"sku": EAN_SHIRT, "in_stock": 1}]})
    body = response.json()
    assert body["metadata"] == {"total_requests": 2, "total_successes": 1, "total_errors": 1}
    assert body["data"][1]["errors"] == {"sku": [f"No stock row with SKU {EAN_SHIRT}"]}
    assert [r["in_stock"] for r in lnb.inventory(token)] == [5, 0, 11, 40]


def test_batch_size_limit(lnb: Lnb, token: str) -> None:
    unknown = [{"ean13": f"{n:013d}", "in_stock": 1} for n in range(999)]
    at_limit = lnb.post("/multi/inventory/ean", token,
                        json={"requests": [{"ean13": EAN_SHIRT, "in_stock": 8}, *unknown]})
    assert at_limit.status_code == 200
    assert at_limit.json()["metadata"] == {"total_requests": 1000, "total_successes": 1, "total_errors": 999}
    too_many = lnb.post("/multi/inventory/ean", token,
                        json={"requests": [{"ean13": EAN_SHIRT, "in_stock": 9}, *unknown, unknown[0]]})
    assert too_many.status_code == 422
    assert too_many.json()["errors"] == {"requests": ["at most 1000 requests per call"]}
    assert lnb.inventory(token)[0]["in_stock"] == 8


def test_configured_batch_limit(lnb: Lnb, token: str) -> None:
    assert lnb.configure(max_batch=2) == {**DEFAULT_SETTINGS, "max_batch": 2}
    three = [{"ean13": EAN_SHIRT, "in_stock": 1}] * 3
    assert lnb.post("/multi/inventory/ean", token, json={"requests": three}).status_code == 422
    assert lnb.post("/multi/inventory/ean", token, json={"requests": three[:2]}).status_code == 200


@pytest.mark.parametrize("body", [{"requests": []}, {}, {"requests": {"ean13": EAN_SHIRT}}, [1]])
def test_batch_without_requests_is_422(lnb: Lnb, token: str, body: Any) -> None:
    response = lnb.post("/multi/inventory/ean", token, json=body)
    assert response.status_code == 422
    assert response.json()["message"] == "The given data was invalid."


# --- rate limit -------------------------------------------------------------------------------


def test_rate_limit_answers_429_until_retry_after(lnb: Lnb, token: str) -> None:
    lnb.configure(rps=2)
    statuses = [lnb.get("/inventory", token).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    limited = lnb.get("/inventory", token)
    assert limited.status_code == 429
    assert limited.json() == {"message": "Too Many Requests"}
    assert limited.headers["Retry-After"] == "1"
    assert lnb.control("GET", "stats").json()["rate_limited"] == 2
    time.sleep(int(limited.headers["Retry-After"]))
    assert lnb.get("/inventory", token).status_code == 200


def test_retry_after_is_whole_seconds_for_slow_budgets(lnb: Lnb, token: str) -> None:
    lnb.configure(rps=0.5)
    assert lnb.get("/inventory", token).status_code == 200
    limited = lnb.get("/inventory", token)
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "2"
    assert lnb.control("GET", "health").status_code == 200


def test_rate_limit_from_constructor_and_reset_restores_it(start_server: Callable[..., Lnb]) -> None:
    own = start_server(rps=1)
    own_token = own.new_token()
    assert own.get("/inventory", own_token).status_code == 429
    own.configure(rps=None)
    assert own.get("/inventory", own_token).status_code == 200
    assert own.control("POST", "reset", {}).status_code == 200
    assert own.get("/inventory", own_token).status_code == 200
    assert own.get("/inventory", own_token).status_code == 429


# --- faults -----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 503])
def test_http_error_faults(lnb: Lnb, token: str, status: int) -> None:
    lnb.arm(kind=f"http_{status}", match="/orders")
    failed = lnb.get("/orders", token)
    assert failed.status_code == status
    assert failed.json() == {"errors": f"Injected fault: HTTP {status}"}
    assert lnb.get("/orders", token).status_code == 200


def test_timeout_fault_applies_nothing(lnb: Lnb, token: str) -> None:
    lnb.arm(kind="timeout", seconds=0.5, match="/inventory/ean")
    with pytest.raises(requests.ReadTimeout):
        lnb.post("/inventory/ean", token, timeout=0.2, json={"ean13": EAN_SHIRT, "in_stock": 99})
    assert lnb.inventory(token) == INVENTORY


def test_drop_fault_applies_nothing(lnb: Lnb, token: str) -> None:
    lnb.arm(kind="drop", match="/multi/inventory")
    with pytest.raises(requests.ConnectionError):
        lnb.post("/multi/inventory/ean", token, json={"requests": [{"ean13": EAN_SHIRT, "in_stock": 99}]})
    assert lnb.inventory(token) == INVENTORY


def test_lost_ack_fault_applies_the_write(lnb: Lnb, token: str) -> None:
    lnb.arm(kind="lost_ack", match="/multi/inventory")
    with pytest.raises(requests.ConnectionError):
        lnb.post("/multi/inventory/ean", token, json={"requests": [{"ean13": EAN_SHIRT, "in_stock": 99}]})
    assert lnb.inventory(token)[0]["in_stock"] == 99


def test_throttle_fault(lnb: Lnb, token: str) -> None:
    lnb.arm(kind="throttle")
    throttled = lnb.get("/retailers", token)
    assert throttled.status_code == 429
    assert throttled.json() == {"message": "Too Many Requests"}
    assert throttled.headers["Retry-After"] == "1"
    assert lnb.get("/retailers", token).status_code == 200


def test_malformed_json_fault(lnb: Lnb, token: str) -> None:
    lnb.arm(kind="malformed_json", match="/orders")
    response = lnb.get("/orders", token)
    assert response.status_code == 200
    with pytest.raises(requests.JSONDecodeError):
        response.json()
    assert len(lnb.get("/orders", token).json()) == 500


def test_fault_count(lnb: Lnb, token: str) -> None:
    lnb.arm(kind="http_500", count=2)
    assert [lnb.get("/inventory", token).status_code for _ in range(3)] == [500, 500, 200]
    assert lnb.control("GET", "faults").json() == []


@pytest.mark.parametrize(("rate", "status"), [(0, 200), (1, 500)])
def test_fault_rate_extremes(lnb: Lnb, token: str, rate: float, status: int) -> None:
    lnb.arm(kind="http_500", rate=rate)
    assert {lnb.get("/inventory", token).status_code for _ in range(15)} == {status}
    assert [f["rate"] for f in lnb.control("GET", "faults").json()] == [float(rate)]


def test_fault_match_is_a_path_prefix(lnb: Lnb, token: str) -> None:
    lnb.arm(kind="http_503", match="/multi/inventory", count=1)
    assert lnb.get("/inventory", token).status_code == 200
    assert lnb.post("/inventory/sku", token, json={"sku": "SC-GRN", "in_stock": 3}).status_code == 200
    assert lnb.get("/orders/ORD-00001", token).status_code == 200
    assert lnb.post("/multi/inventory/sku", token, json={"requests": [{"sku": "SC-GRN", "in_stock": 4}]}
                    ).status_code == 503
    lnb.arm(kind="http_503", match="/inventory")
    assert lnb.post("/multi/inventory/ean", token, json={"requests": [{"ean13": EAN_SHIRT, "in_stock": 4}]}
                    ).status_code == 200
    assert lnb.get("/inventory", token).status_code == 503
    lnb.arm(kind="http_503", match="/orders/ORD-0000")
    assert lnb.get("/orders/ORD-00010", token).status_code == 200
    assert lnb.get("/orders/ORD-00003", token).status_code == 503


def test_faults_can_hit_the_token_endpoint(lnb: Lnb) -> None:
    lnb.arm(kind="http_503", match="/auth/token")
    response = lnb.post("/auth/token", None, json={
        "grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
    assert response.status_code == 503
    assert lnb.new_token()


# --- switches: pagination headers, naive timestamps, lists changing while read -----------------


def test_pagination_headers_can_be_switched_off(lnb: Lnb, token: str) -> None:
    lnb.configure(pagination_headers=False, page_size=37)
    first = lnb.get("/orders", token)
    assert not [name for name in first.headers if name.lower().startswith("x-pagination")]
    assert references(first) == [f"ORD-{i:05d}" for i in range(37)]
    assert len(lnb.get("/orders", token, page=33).json()) == ORDER_COUNT - 32 * 37
    assert lnb.get("/orders", token, page=34).json() == []
    assert not [name for name in lnb.get("/retailers", token).headers if name.lower().startswith("x-pagination")]


def test_naive_timestamps_are_lnb_local_time_everywhere(lnb: Lnb, token: str) -> None:
    lnb.configure(timestamps="naive")
    order = lnb.get("/orders/ORD-00000", token).json()
    assert order == {**make_order(0), "create_time": "2024-01-01 01:00:00", "update_time": "2024-06-01 02:00:00",
                     "confirmation_time": "2024-01-01 01:30:00"}
    assert lnb.get("/orders", token).json()[4]["cancellation_time"] == "2024-01-01 01:53:00"
    assert lnb.get("/retailers/R001", token).json()["create_time"] == "2023-01-01 01:00:00"
    assert lnb.get("/retailers", token).json()[0]["create_time"] == "2023-01-01 01:00:00"
    assert {row["in_stock_update_time"] for row in lnb.inventory(token)} == {"2024-01-01 01:00:00"}
    lnb.configure(timezone="America/New_York")
    assert lnb.get("/orders/ORD-00000", token).json()["create_time"] == "2023-12-31 19:00:00"


def test_naive_timestamps_of_writes(lnb: Lnb, token: str) -> None:
    lnb.configure(timestamps="naive")
    before = datetime.now(UTC).replace(microsecond=0)
    order = lnb.post("/orders/status", token, json={"reference": "ORD-00001", "status": "confirmed"}).json()
    confirmed = datetime.strptime(order["confirmation_time"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=PARIS)
    assert before <= confirmed <= datetime.now(UTC)
    assert order["update_time"] == order["confirmation_time"]
    row = lnb.post("/inventory/ean", token, json={"ean13": EAN_SHIRT, "in_stock": 3}).json()
    assert len(row["in_stock_update_time"]) == 19 and not row["in_stock_update_time"].endswith("Z")
    batch = lnb.post("/multi/inventory/ean", token, json={"requests": [
        {"ean13": EAN_DRESS, "in_stock": 1, "in_stock_update_time": "2024-03-01 10:00:00"},
        {"ean13": EAN_SCARF, "in_stock": 1, "in_stock_update_time": "2024-03-01T10:00:00Z"}]}).json()
    assert batch["data"][0]["result"]["in_stock_update_time"] == "2024-03-01 10:00:00"
    assert batch["data"][1]["errors"] == {
        "in_stock_update_time": ["in_stock_update_time must be a Y-m-d H:i:s time, without an offset"]}
    assert lnb.inventory(token)[1]["in_stock_update_time"] == "2024-03-01 10:00:00"


def test_naive_filters_are_lnb_local_time_and_refuse_an_offset(lnb: Lnb, token: str) -> None:
    lnb.configure(timestamps="naive")
    assert references(lnb.get("/orders", token, order_time_to="2024-01-01 01:02:00")) == ["ORD-00000", "ORD-00001"]
    late = [f"ORD-{i:05d}" for i in range(0, ORDER_COUNT, 100)]
    assert references(lnb.get("/orders", token, update_time_from="2024-06-01 02:00:00")) == late
    assert pagination(lnb.get("/orders", token, order_time_to="2024-01-01"))["Total-Items"] == "690"
    for value in ("2024-01-01T00:00:00Z", "2024-01-01T01:00:00", "2024-01-01 01:00:00+01:00", "2024-01-01 01:00"):
        refused = lnb.get("/orders", token, order_time_to=value)
        assert refused.status_code == 422, value
        assert refused.json()["errors"] == {"order_time_to": [
            "order_time_to must be a date (Y-m-d) or a time (Y-m-d H:i:s) in Europe/Paris, without an offset"]}


def confirm_early_order_after_page_1() -> dict[str, Any]:
    """ORD-00001 (open for brand, second in creation order) enters ``confirmed`` once page 1 is served."""
    return {"after_page": 1, "reference": "ORD-00001", "status": "confirmed"}


def test_list_change_shifts_the_pages_being_read(lnb: Lnb, token: str) -> None:
    lnb.configure(page_size=100, list_changes=[confirm_early_order_after_page_1()])
    first = lnb.get("/orders", token, status="confirmed")
    assert "ORD-00001" not in references(first)
    assert pagination(first)["Total-Items"] == "480"
    second = lnb.get("/orders", token, status="confirmed", page=2)
    assert pagination(second)["Total-Items"] == "481"
    assert references(second)[0] == references(first)[-1]  # the boundary order comes back
    assert lnb.get("/orders/ORD-00001", token).json()["status"] == "confirmed"
    assert lnb.control("GET", "stats").json()["list_changes_applied"] == 1
    assert lnb.configure()["list_changes"] == []
    assert references(lnb.get("/orders", token, status="confirmed"))[1] == "ORD-00001"


def test_list_change_waits_for_its_page_of_orders(lnb: Lnb, token: str) -> None:
    lnb.configure(list_changes=[{**confirm_early_order_after_page_1(), "after_page": 2}])
    lnb.get("/orders", token, status="confirmed")
    lnb.get("/retailers", token, page=2)
    assert lnb.get("/orders/ORD-00001", token).json()["status"] == "open_for_brand"
    lnb.get("/orders", token, page=2)
    assert lnb.get("/orders/ORD-00001", token).json()["status"] == "confirmed"


def test_scenario_sets_switches_at_every_reset(start_server: Callable[..., Lnb]) -> None:
    api = {"pagination_headers": False, "page_size": 37, "timestamps": "naive", "token_expiry": "both",
           "list_changes": [confirm_early_order_after_page_1()]}
    own = start_server({**SCENARIO, "lnb": {**SCENARIO["lnb"], "api": api}}, page_size=100)
    own_token = own.new_token()
    assert own.configure() == {**DEFAULT_SETTINGS, **api}
    first = own.get("/orders", own_token, status="confirmed")
    assert len(first.json()) == 37 and "X-Pagination-Has-More" not in first.headers
    assert first.json()[0]["create_time"] == "2024-01-01 01:00:00"
    assert own.configure(timestamps="iso")["list_changes"] == []
    assert own.control("POST", "reset", {}).status_code == 200
    assert own.configure() == {**DEFAULT_SETTINGS, **api}
    assert own.get("/orders/ORD-00001", own_token).json()["status"] == "open_for_brand"


@pytest.mark.parametrize(
    ("api", "error"),
    [
        ({"page_size": 0}, "lnb.api: page_size must be a positive integer"),
        ({"timestamps": "epoch"}, "lnb.api: timestamps must be one of iso, naive"),
        ({"list_changes": [{"after_page": 1, "reference": "ORD-99999", "status": "confirmed"}]},
         "lnb.api: list_changes[0].reference: no order 'ORD-99999' in the scenario"),
        ({"burst": 3}, "lnb.api: unknown settings: burst"),
        ([], "lnb.api: settings are a JSON object"),
    ],
)
def test_bad_scenario_switches_are_400_and_change_nothing(lnb: Lnb, token: str, api: Any, error: str) -> None:
    lnb.configure(page_size=7)
    response = lnb.control("POST", "reset", {"scenario": {**SCENARIO, "lnb": {**SCENARIO["lnb"], "api": api}}})
    assert response.status_code == 400
    assert response.json() == {"error": error}
    assert lnb.configure()["page_size"] == 7


def test_bad_scenario_switches_fail_the_constructor() -> None:
    with pytest.raises(ValueError, match="lnb.api: pagination_headers must be true or false"):
        LnbApi({**SCENARIO, "lnb": {"api": {"pagination_headers": 0}}})


# --- control endpoints ------------------------------------------------------------------------


def test_stats_count_per_endpoint_status_and_rate_limit(lnb: Lnb, token: str) -> None:
    assert lnb.control("POST", "reset", {}).status_code == 200
    lnb.configure(rps=1)
    assert lnb.get("/orders", token).status_code == 200
    assert lnb.get("/orders/ORD-00000", token).status_code == 429
    lnb.configure(rps=None)
    assert lnb.get("/orders/ORD-99999", token).status_code == 404
    lnb.arm(kind="http_503", match="/multi")
    assert lnb.post("/multi/inventory/ean", token, json={"requests": [{"ean13": EAN_SHIRT, "in_stock": 1}]}
                    ).status_code == 503
    assert requests.get(lnb.root + "/elsewhere", timeout=5).status_code == 404
    assert lnb.get("/orders", token, page="x").status_code == 422
    assert lnb.control("GET", "stats").json() == {
        "requests": {"GET /orders": 2, "GET /orders/{reference}": 2, "POST /multi/inventory/ean": 1,
                     "GET (unknown path)": 1},
        "total_requests": 6,
        "statuses": {"200": 1, "404": 2, "422": 1, "429": 1, "503": 1},
        "errors": 5,
        "faults_injected": {"http_503": 1},
        "rate_limited": 1,
    }


def test_requests_log_redacts_secrets(lnb: Lnb, token: str) -> None:
    assert lnb.control("POST", "reset", {}).status_code == 200
    lnb.get("/orders", token, status="closed", page=2)
    batch = {"requests": [{"ean13": EAN_SHIRT, "in_stock": 3}]}
    lnb.post("/multi/inventory/ean", token, json=batch)
    lnb.post("/auth/token", None, json={
        "grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
    log = lnb.control("GET", "requests").json()
    assert log == [
        {"method": "GET", "path": f"{LNB_BASE_PATH}/orders", "status": 200,
         "query": {"status": "closed", "page": "2", "access_token": "***"}, "variables": None},
        {"method": "POST", "path": f"{LNB_BASE_PATH}/multi/inventory/ean", "status": 200,
         "query": {"access_token": "***"}, "variables": batch},
        {"method": "POST", "path": f"{LNB_BASE_PATH}/auth/token", "status": 200, "query": {},
         "variables": {"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": "***"}},
    ]
    text = json.dumps(log)
    assert token not in text
    assert CLIENT_SECRET not in text


def test_dropped_requests_are_logged_with_status_0(lnb: Lnb, token: str) -> None:
    assert lnb.control("POST", "reset", {}).status_code == 200
    lnb.arm(kind="drop")
    with pytest.raises(requests.ConnectionError):
        lnb.get("/inventory", token)
    assert [(e["path"], e["status"]) for e in lnb.control("GET", "requests").json()] == [
        (f"{LNB_BASE_PATH}/inventory", 0)]


def test_health_counts_the_data(lnb: Lnb) -> None:
    health = lnb.control("GET", "health").json()
    assert {k: v for k, v in health.items() if k != "tokens"} == {
        "status": "ok", "api": "lnb", "orders": 1200, "retailers": 3, "inventory": 4}


BAD_SETTINGS = [
    ({"rps": 0}, "rps must be a positive number or null"),
    ({"rps": "5"}, "rps must be a positive number or null"),
    ({"page_size": 0}, "page_size must be a positive integer"),
    ({"max_batch": 1.5}, "max_batch must be a positive integer"),
    ({"token_ttl_seconds": -1}, "token_ttl_seconds must be a positive number"),
    ({"pagination_headers": "no"}, "pagination_headers must be true or false"),
    ({"timestamps": "local"}, "timestamps must be one of iso, naive"),
    ({"timezone": "Paris"}, "timezone must be an IANA time zone name such as Europe/Paris, got 'Paris'"),
    ({"timezone": None}, "timezone must be an IANA time zone name such as Europe/Paris, got None"),
    ({"token_expiry": "never"}, "token_expiry must be one of expire_on, expires_in, both"),
    ({"list_changes": {"after_page": 1}}, "list_changes must be a list of {after_page, reference, status} objects"),
    ({"list_changes": [{"after_page": 1, "reference": "ORD-00001"}]},
     "list_changes[0] must be an object with exactly after_page, reference and status"),
    ({"list_changes": [{"after_page": 0, "reference": "ORD-00001", "status": "confirmed"}]},
     "list_changes[0].after_page must be a page number from 1"),
    ({"list_changes": [{"after_page": 1, "reference": "ORD-00001", "status": "confirmed"},
                       {"after_page": 2, "reference": "ORD-99999", "status": "confirmed"}]},
     "list_changes[1].reference: no order 'ORD-99999' in the scenario"),
    ({"list_changes": [{"after_page": 1, "reference": "ORD-00001", "status": "Confirmed"}]},
     "list_changes[0].status must be one of draft, open_for_buyer, open_for_brand, confirmed, invoicing, "
     "closed, canceled"),
]


@pytest.mark.parametrize(("bad", "error"), BAD_SETTINGS)
def test_config_rejects_bad_settings_and_changes_nothing(lnb: Lnb, bad: dict[str, Any], error: str) -> None:
    response = lnb.control("POST", "config", {"page_size": 7, **bad})
    assert response.status_code == 400
    assert response.json() == {"error": error}
    assert lnb.configure() == DEFAULT_SETTINGS


def test_config_rejects_unknown_settings(lnb: Lnb) -> None:
    unknown = lnb.control("POST", "config", {"rps": 5, "burst": 3})
    assert unknown.json() == {"error": "unknown settings: burst"}
    assert lnb.configure() == DEFAULT_SETTINGS


def test_reset_restores_data_settings_and_faults(lnb: Lnb, token: str) -> None:
    lnb.post("/multi/inventory/ean", token, json={"requests": [{"ean13": EAN_SHIRT, "in_stock": 50}]})
    lnb.post("/orders/status", token, json={"reference": "ORD-00001", "status": "closed"})
    lnb.control("POST", "orders/ORD-00002", {"comment": "edited"})
    lnb.configure(page_size=10, rps=100, pagination_headers=False, timestamps="naive", timezone="UTC",
                  token_expiry="both", list_changes=[{"after_page": 3, "reference": "ORD-00003", "status": "closed"}])
    lnb.arm(kind="http_500", count=5)
    assert lnb.control("POST", "reset", {}).status_code == 200
    assert lnb.control("GET", "faults").json() == []
    assert lnb.inventory(token) == INVENTORY
    assert lnb.get("/orders/ORD-00001", token).json() == make_order(1)
    assert lnb.get("/orders/ORD-00002", token).json() == make_order(2)
    assert pagination(lnb.get("/orders", token))["Page-Size"] == "500"
    assert lnb.configure() == DEFAULT_SETTINGS
    assert SCENARIO["lnb"]["inventory"][0]["in_stock"] == 5


def test_reset_switches_to_an_inline_scenario(start_server: Callable[..., Lnb]) -> None:
    own = start_server()
    own_token = own.new_token()
    other = {"locations": [{"id": 1, "name": "Depot"}],
             "lnb": {"orders": [make_order(5000)], "inventory": [stock_row("5901234123457", "X-1", 4)]}}
    assert own.control("POST", "reset", {"scenario": other}).status_code == 200
    assert references(own.get("/orders", own_token)) == ["ORD-05000"]
    assert own.get("/retailers", own_token).json() == []
    own.post("/inventory/ean", own_token, json={"ean13": "5901234123457", "in_stock": 9})
    assert own.control("POST", "reset", {}).status_code == 200
    assert own.inventory(own_token) == [stock_row("5901234123457", "X-1", 4)]
    assert own.control("GET", "health").json()["orders"] == 1


def test_first_row_wins_for_a_duplicated_code(start_server: Callable[..., Lnb]) -> None:
    rows = [stock_row(EAN_SHIRT, "A", 1), stock_row(EAN_SHIRT, "B", 2)]
    own = start_server({"lnb": {"inventory": rows}})
    own_token = own.new_token()
    own.post("/inventory/ean", own_token, json={"ean13": EAN_SHIRT, "in_stock": 30})
    assert [r["in_stock"] for r in own.inventory(own_token)] == [30, 2]


def test_server_keeps_its_own_copy_of_the_scenario(start_server: Callable[..., Lnb]) -> None:
    scenario = {"lnb": {"inventory": [stock_row(EAN_SHIRT, "A", 1)]}}
    own = start_server(scenario)
    scenario["lnb"]["inventory"][0]["in_stock"] = 999
    assert own.control("POST", "reset", {}).status_code == 200
    assert own.inventory(own.new_token())[0]["in_stock"] == 1


def test_reset_switches_to_a_scenario_file(start_server: Callable[..., Lnb], tmp_path: Path) -> None:
    pytest.importorskip("lnb_pipeline.sandbox.generators", reason="load_scenario imports the generators")
    own = start_server()
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps({"locations": [{"id": 1, "name": "Depot"}],
                                "lnb": {"retailers": [RETAILERS[0]]}}))
    assert own.control("POST", "reset", {"scenario": str(path)}).status_code == 200
    assert own.get("/retailers", own.new_token()).json() == [RETAILERS[0]]


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        ({"scenario": {"locations": [{"id": 1}], "lnb": {"orders": [{"reference": ""}]}}},
         "lnb.orders: every order needs a reference"),
        ({"scenario": {"lnb": {}}}, "locations: at least one location is needed"),
        ({"scenario": 3}, "scenario must be a spec string (demo, scale:N, a file path) or an object"),
        ({"scenaro": "demo"}, 'reset takes a JSON object with at most a "scenario" key'),
    ],
)
def test_bad_reset_is_400_and_changes_nothing(lnb: Lnb, token: str, payload: Any, error: str) -> None:
    lnb.post("/inventory/ean", token, json={"ean13": EAN_SHIRT, "in_stock": 77})
    response = lnb.control("POST", "reset", payload)
    assert response.status_code == 400
    assert response.json() == {"error": error}
    assert lnb.inventory(token)[0]["in_stock"] == 77
