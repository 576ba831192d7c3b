"""Alerts end to end: real runs on a real Dagster instance, the alert sensors evaluated as the daemon
would, and a local webhook receiver recording exactly what arrives.

The runs are the deployed jobs configured by the environment (the sandbox's), failing for real
reasons: a blocking stock check, Shopify answering 500, or a test job raising an error that carries
secrets. What is asserted is the JSON the receiver got, byte for byte where secrets are concerned.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import requests
from helpers import DEMO_BLOCKED

from lnb_pipeline.definitions import defs
from lnb_pipeline.defs.alerts import ALERTS_OFF, AlertSettings, alert_sensors
from lnb_pipeline.defs.env import from_environment
from lnb_pipeline.sandbox import Sandbox

REPO = Path(__file__).resolve().parents[1]
HOOK_PATH = "/hooks/T0001/B0002/S3CR3T-K3Y"
"""A chat-style webhook path: the key is in the URL, so it must not leak into logs either."""
SELECTION = {"ops": {"lnb_orders_for_export": {"config": {"references": ["LNB-0001", "LNB-0006", "LNB-0010"]}}}}
"""An exportable demo order and the two blocked ones the ``deployed`` demo keeps in the export status."""
NO_CUSTOMER = {"reference": "LNB-0006", "retailer": "Zürich Atelier",
               "reasons": ["no Shopify customer with lenewblack.retailer_reference = R1013"]}
NO_REFERENCE = {"reference": "LNB-0010", "retailer": "Pop-up Marais", "reasons": ["retailer reference missing"]}
SHOPIFY_TOKEN, LNB_SECRET, LNB_TOKEN = "shpat_0123456789abcdef", "lnb-client-secret-4242", "eyJ.lnb-access.token"
lnb_run_failure_alert, lnb_blocked_orders_alert = alert_sensors(enabled=True)
"""The sensors as deployed with alerts on; evaluated directly, as the daemon would."""


# --- the webhook receiver -----------------------------------------------------------------------

@dataclass
class Receiver:
    """A local webhook: records every body POSTed, answers the queued statuses first, then 200."""

    url: str
    bodies: list[bytes]
    statuses: list[int]

    def payloads(self) -> list[Any]:
        return [json.loads(body) for body in self.bodies]


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    """The receiver, running, and ``LNB_ALERT_WEBHOOK_URL`` pointing at it."""
    bodies: list[bytes] = []
    statuses: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(statuses.pop(0) if statuses else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the test reads the bodies."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}{HOOK_PATH}"
    monkeypatch.setenv("LNB_ALERT_WEBHOOK_URL", url)
    yield Receiver(url, bodies, statuses)
    server.shutdown()
    server.server_close()


@pytest.fixture
def deployed(sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dg.DagsterInstance]:
    """A persistent Dagster instance, the pipeline's settings pointing at the sandbox, no UI address set;
    of the demo's blocked orders only LNB-0006 and LNB-0010 stay in the export status (the alerts
    report every order blocked there), the others back to draft."""
    token = requests.post(f"{sandbox.lnb_base_url}/auth/token", timeout=10, json={
        "grant_type": "client_credentials", "client_id": "sandbox-client", "client_secret": "sandbox-secret",
    }).json()["access_token"]
    for reference in DEMO_BLOCKED:
        if reference not in ("LNB-0006", "LNB-0010"):
            requests.post(f"{sandbox.lnb_base_url}/orders/status", params={"access_token": token}, timeout=10,
                          json={"reference": reference, "status": "draft"}).raise_for_status()
    monkeypatch.setenv("LNB_TASK_LOG_DIR", str(tmp_path / "task_logs"))
    monkeypatch.setenv("SHOPIFY_ORDER_LOOKUP_WAIT_SECONDS", "0")
    monkeypatch.delenv("LNB_DAGSTER_URL", raising=False)
    with dg.instance_for_test() as instance:
        yield instance


# --- runs and sensors ---------------------------------------------------------------------------

def _run(instance: dg.DagsterInstance, job: str, run_config: dict[str, Any] | None = None) -> dg.ExecuteInProcessResult:
    """A run of a deployed job, configured by the environment as in production."""
    return defs().resolve_job_def(job).execute_in_process(run_config=run_config, instance=instance,
                                                          raise_on_error=False)


def _read_stock(instance: dg.DagsterInstance) -> None:
    """The stock flow's Shopify read, which the order flow matches lines against."""
    assert defs().resolve_job_def("inventory_sync").execute_in_process(
        instance=instance, asset_selection=[dg.AssetKey("shopify_locations"), dg.AssetKey("shopify_inventory_levels")],
    ).success


@dg.op
def leak() -> None:
    """Fails as a careless library would: secrets in the error message."""
    raise RuntimeError(f"GET https://www.lenewblack.com/apis/wholesale/v2/orders?access_token={LNB_TOKEN}&page=2 "
                       f"failed; sent token {os.environ.get('SHOPIFY_ACCESS_TOKEN')} "
                       f"and secret {os.environ.get('LNB_CLIENT_SECRET')}")


@dg.job(executor_def=dg.in_process_executor)
def leaky_job() -> None:
    leak()


LEAK_ERROR = ("leak: RuntimeError: GET https://www.lenewblack.com/apis/wholesale/v2/orders?access_token=***&page=2 "
              "failed; sent token *** and secret ***")


class _Messages(logging.Handler):
    """Collects what a sensor logged."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _failure_alert(instance: dg.DagsterInstance, run_id: str,
                   log: _Messages | None = None) -> dg.SkipReason | None:
    """``lnb_run_failure_alert`` on a failed run, as the daemon evaluates it, settings from the environment."""
    run = instance.get_run_by_id(run_id)
    assert run is not None and run.status == dg.DagsterRunStatus.FAILURE
    [failure] = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.RUN_FAILURE).records
    context = dg.build_run_status_sensor_context(
        sensor_name="lnb_run_failure_alert", dagster_event=failure.event_log_entry.dagster_event,
        dagster_instance=instance, dagster_run=run, resources={"alert_settings": from_environment(AlertSettings)})
    if log is not None:
        context.log.addHandler(log)  # the failure context the sensor receives keeps this logger
    return lnb_run_failure_alert(context)


def _blocked_tick(instance: dg.DagsterInstance, cursor: str | None) -> dg.SensorResult | dg.SkipReason:
    """One tick of ``lnb_blocked_orders_alert`` from ``cursor``, settings from the environment."""
    context = dg.build_sensor_context(instance=instance, cursor=cursor,
                                      resources={"alert_settings": from_environment(AlertSettings)})
    return lnb_blocked_orders_alert(context)


def _alerted(result: dg.SensorResult | dg.SkipReason) -> dict[str, list[Any]]:
    assert isinstance(result, dg.SensorResult) and result.cursor is not None
    return json.loads(result.cursor)["alerted"]


# --- failed runs --------------------------------------------------------------------------------

def test_a_failed_stock_run_alerts_with_its_error_its_failed_error_checks_and_a_link(
        deployed: dg.DagsterInstance, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    """The blocking check stops the push: the operator gets what failed, every failed check, and where to look."""
    monkeypatch.setenv("LNB_STOCK_MAX_INVALID_PERCENT", "0")
    monkeypatch.setenv("LNB_DAGSTER_URL", "https://dagster.brand.example/")
    result = _run(deployed, "inventory_sync")
    assert not result.success
    assert {e.check_name for e in result.get_asset_check_evaluations() if not e.passed} == {
        "keys_present", "ean13_check_digits_valid", "keys_unique", "excluded_share_within_limit"}

    assert _failure_alert(deployed, result.run_id) is None

    assert receiver.payloads() == [{
        "kind": "run_failed", "job": "inventory_sync", "run_id": result.run_id,
        "run_url": f"https://dagster.brand.example/runs/{result.run_id}",
        "error": "available_to_sell_excluded_share_within_limit: dagster._core.errors.DagsterAssetCheckFailedError: "
                 "1 blocking asset check failed with ERROR severity:\navailable_to_sell: excluded_share_within_limit",
        "failed_checks": ["ean13_check_digits_valid", "excluded_share_within_limit", "keys_present", "keys_unique"],
        "blocked_orders": [],
    }]


def test_a_failed_order_run_alerts_with_the_orders_it_blocked(
        sandbox: Sandbox, deployed: dg.DagsterInstance, receiver: Receiver) -> None:
    """Shopify keeps answering 500 during the export: the alert names the cause and the orders waiting for a person."""
    _read_stock(deployed)
    requests.post(f"{sandbox.shopify.url}/_sandbox/faults", json={"kind": "http_500", "match": "orders", "count": 4},
                  timeout=10).raise_for_status()
    result = _run(deployed, "orders_export", SELECTION)
    assert not result.success

    assert _failure_alert(deployed, result.run_id) is None

    assert receiver.payloads() == [{
        "kind": "run_failed", "job": "orders_export", "run_id": result.run_id,
        "run_url": f"http://127.0.0.1:3000/runs/{result.run_id}",
        "error": "shopify_orders_from_lnb: lnb_pipeline.clients.shopify.ShopifyServerError: "
                 "Shopify call failed after 4 attempt(s): HTTP 500",
        "failed_checks": ["no_order_blocked", "retailer_references_valid"],
        "blocked_orders": [NO_CUSTOMER, NO_REFERENCE],
    }]


def test_secrets_in_an_error_never_reach_the_webhook(
        receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Shopify token, the LNB client secret and LNB's access token are masked, whatever carried them."""
    monkeypatch.setenv("SHOPIFY_ACCESS_TOKEN", SHOPIFY_TOKEN)
    monkeypatch.setenv("LNB_CLIENT_SECRET", LNB_SECRET)
    with dg.instance_for_test() as instance:
        result = leaky_job.execute_in_process(instance=instance, raise_on_error=False)

        assert _failure_alert(instance, result.run_id) is None

    [body] = receiver.bodies
    for secret in (SHOPIFY_TOKEN, LNB_SECRET, LNB_TOKEN):
        assert secret.encode() not in body
    assert json.loads(body)["error"] == LEAK_ERROR


def _retry_tags(run_id: str) -> dict[str, str]:
    """The tags the daemon's run retries give the retry of ``run_id``: Dagster counts attempts by them."""
    return {"dagster/parent_run_id": run_id, "dagster/root_run_id": run_id, "dagster/retry_number": "1"}


def test_a_run_dagster_retries_alerts_only_when_its_last_attempt_fails(receiver: Receiver) -> None:
    """With run retries on, the first failure is retried by Dagster: one alert, for the attempt that stays failed."""
    with dg.instance_for_test(overrides={"run_retries": {"enabled": True, "max_retries": 1}}) as instance:
        first = dg.execute_job(dg.reconstructable(leaky_job), instance=instance)
        retry = dg.execute_job(dg.reconstructable(leaky_job), instance=instance,
                               reexecution_options=dg.ReexecutionOptions.from_failure(first.run_id, instance),
                               tags=_retry_tags(first.run_id))

        assert _failure_alert(instance, first.run_id) == dg.SkipReason(
            f"Run {first.run_id} will be retried: only a failed last attempt alerts")
        assert receiver.bodies == []
        assert _failure_alert(instance, retry.run_id) is None

    assert [(p["job"], p["run_id"]) for p in receiver.payloads()] == [("leaky_job", retry.run_id)]


def test_a_failing_webhook_is_retried_then_logged_never_raised(receiver: Receiver,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A webhook outage must not turn one failure into two: tries three times on 5xx, once on 4xx, then warns."""
    with dg.instance_for_test() as instance:
        run_id = leaky_job.execute_in_process(instance=instance, raise_on_error=False).run_id

        receiver.statuses[:] = [503]
        assert _failure_alert(instance, run_id) is None
        assert len(receiver.bodies) == 2

        receiver.statuses[:] = [503, 502, 500]
        log = _Messages()
        assert _failure_alert(instance, run_id, log) == dg.SkipReason(
            f"The alert webhook failed: run {run_id} not alerted (see the log)")
        assert len(receiver.bodies) == 5
        host = receiver.url.split("/")[2]
        assert log.messages == [f"Alert webhook on {host} failed after 3 tries (HTTP 500): run_failed alert not sent"]

        receiver.statuses[:] = [404]
        assert isinstance(_failure_alert(instance, run_id), dg.SkipReason)
        assert len(receiver.bodies) == 6

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            closed = f"http://127.0.0.1:{probe.getsockname()[1]}{HOOK_PATH}"
        monkeypatch.setenv("LNB_ALERT_WEBHOOK_URL", closed)
        log = _Messages()
        assert isinstance(_failure_alert(instance, run_id, log), dg.SkipReason)

    [warning] = log.messages
    assert warning.startswith(f"Alert webhook on {closed.split('/')[2]} failed after 3 tries (ConnectionError: ")
    assert "S3CR3T-K3Y" not in warning


# --- blocked orders -----------------------------------------------------------------------------

def test_blocked_orders_alert_once_each_until_their_reasons_change(
        sandbox: Sandbox, deployed: dg.DagsterInstance, receiver: Receiver) -> None:
    """Hourly exports find the same blocked orders again: a person hears of each once, and again when it changes."""
    _read_stock(deployed)
    first = _run(deployed, "orders_export", SELECTION)
    assert first.success

    alerted = _blocked_tick(deployed, None)

    assert receiver.payloads() == [{"kind": "orders_blocked", "orders": [NO_CUSTOMER, NO_REFERENCE],
                                    "run_url": f"http://127.0.0.1:3000/runs/{first.run_id}"}]
    assert isinstance(alerted, dg.SensorResult)
    assert _blocked_tick(deployed, alerted.cursor) == dg.SkipReason("No order selection since the last tick")

    assert _run(deployed, "orders_export", SELECTION).success
    unchanged = _blocked_tick(deployed, alerted.cursor)

    assert len(receiver.bodies) == 1
    assert isinstance(unchanged, dg.SensorResult)
    assert unchanged.skip_reason == dg.SkipReason("No newly blocked order alerted from 1 order selections")

    requests.post(f"{sandbox.lnb.url}/_sandbox/orders/LNB-0010", json={"currency": "USD"},
                  timeout=10).raise_for_status()
    changed = _run(deployed, "orders_export", SELECTION)
    assert changed.success
    _blocked_tick(deployed, unchanged.cursor)

    assert receiver.payloads()[1:] == [{
        "kind": "orders_blocked",
        "orders": [{**NO_REFERENCE,
                    "reasons": ["retailer reference missing", "currency not accepted: USD (accepted: EUR)"]}],
        "run_url": f"http://127.0.0.1:3000/runs/{changed.run_id}"}]


def test_a_refused_alert_is_not_remembered_and_goes_out_with_the_next_export(
        deployed: dg.DagsterInstance, receiver: Receiver) -> None:
    """An order whose alert never arrived must not be taken as alerted."""
    _read_stock(deployed)
    assert _run(deployed, "orders_export", SELECTION).success
    receiver.statuses[:] = [500, 500, 500]

    refused = _blocked_tick(deployed, None)

    assert len(receiver.bodies) == 3
    assert _alerted(refused) == {}
    second = _run(deployed, "orders_export", SELECTION)
    _blocked_tick(deployed, refused.cursor)
    assert receiver.payloads()[3:] == [{"kind": "orders_blocked", "orders": [NO_CUSTOMER, NO_REFERENCE],
                                        "run_url": f"http://127.0.0.1:3000/runs/{second.run_id}"}]


def test_the_cursor_forgets_orders_unseen_for_30_days_and_keeps_the_latest_5000(
        deployed: dg.DagsterInstance, receiver: Receiver) -> None:
    """The cursor lives in Dagster's storage for years: it must stay bounded."""
    _read_stock(deployed)
    assert _run(deployed, "orders_export", SELECTION).success
    first = _blocked_tick(deployed, None)
    known = _alerted(first)
    assert sorted(known) == ["LNB-0006", "LNB-0010"]
    day = 24 * 3600
    now = int(time.time())
    crowded = {**known, "LNB-STALE": ["0" * 16, now - 31 * day],
               **{f"LNB-F{n:04}": ["0" * 16, now - day - n] for n in range(5000)}}

    again = _blocked_tick(deployed, json.dumps({"after": 0, "alerted": crowded}))

    assert len(receiver.bodies) == 1
    remembered = _alerted(again)
    assert sorted(remembered) == sorted(["LNB-0006", "LNB-0010", *(f"LNB-F{n:04}" for n in range(4998))])
    assert {reference: remembered[reference] for reference in known} == known


# --- alerts off ---------------------------------------------------------------------------------

def test_without_a_webhook_alerts_are_off_said_once_and_history_is_not_replayed_later(
        deployed: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch, receiver: Receiver) -> None:
    """Alerts are optional; turning them on later must not flood the webhook with last month's orders."""
    monkeypatch.delenv("LNB_ALERT_WEBHOOK_URL")
    loads = subprocess.run(
        [sys.executable, "-c", ("import logging; logging.basicConfig(level=logging.INFO); "
                                "from lnb_pipeline.definitions import defs; defs(); defs()")],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=True)
    assert loads.stderr.count(ALERTS_OFF) == 1, loads.stderr
    run_id = leaky_job.execute_in_process(instance=deployed, raise_on_error=False).run_id
    _read_stock(deployed)
    assert _run(deployed, "orders_export", SELECTION).success

    assert _failure_alert(deployed, run_id) == dg.SkipReason(ALERTS_OFF)
    off = _blocked_tick(deployed, None)
    assert isinstance(off, dg.SensorResult) and off.skip_reason == dg.SkipReason(ALERTS_OFF)
    assert _alerted(off) == {}

    monkeypatch.setenv("LNB_ALERT_WEBHOOK_URL", receiver.url)
    assert _blocked_tick(deployed, off.cursor) == dg.SkipReason("No order selection since the last tick")
    assert receiver.bodies == []

    _blocked_tick(deployed, None)  # what the cursor kept while off prevents: the selection holds blocked orders

    assert [payload["orders"] for payload in receiver.payloads()] == [[NO_CUSTOMER, NO_REFERENCE]]


def test_a_malformed_webhook_url_fails_the_tick_naming_the_variable_not_its_value(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A typo must show on the sensor's tick rather than silently drop every alert; the URL may hold a key."""
    monkeypatch.setenv("LNB_ALERT_WEBHOOK_URL", "hooks.example.com/T0001/S3CR3T-K3Y")
    with dg.instance_for_test() as instance, pytest.raises(dg.DagsterResourceFunctionError) as raised:
        _blocked_tick(instance, None)

    assert str(raised.value.__cause__) == \
        "LNB_ALERT_WEBHOOK_URL must be an http(s) URL (value not shown: it may hold a key)"


def _sensor_list(home: Path, webhook_url: str | None) -> str:
    """What ``dagster sensor list`` prints for the deployed code location: each sensor and its status."""
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    environment = {**os.environ, "DAGSTER_HOME": str(home)}
    environment.pop("LNB_ALERT_WEBHOOK_URL", None)
    if webhook_url is not None:
        environment["LNB_ALERT_WEBHOOK_URL"] = webhook_url
    listed = subprocess.run([str(Path(sys.executable).with_name("dagster")), "sensor", "list", "-w", "workspace.yaml"],
                            cwd=REPO, env=environment, capture_output=True, text=True, timeout=120, check=True)
    return listed.stdout


def test_alerts_off_show_as_stopped_sensors_whose_description_says_off(tmp_path: Path) -> None:
    """A sensor shown "Running" while nobody receives its alerts misleads: off, both alerts are stopped and say why."""
    off = _sensor_list(tmp_path / "off", None)
    on = _sensor_list(tmp_path / "on", f"https://hooks.example.com{HOOK_PATH}")

    for sensor in ("lnb_run_failure_alert", "lnb_blocked_orders_alert"):
        assert f"Sensor: {sensor} [STOPPED]" in off
        assert f"Sensor: {sensor} [RUNNING]" in on
    assert "Sensor: lnb_orders_sensor [RUNNING]" in off
    for enabled in (False, True):
        descriptions = [sensor.description or "" for sensor in alert_sensors(enabled)]
        assert [description.startswith("OFF: LNB_ALERT_WEBHOOK_URL is not set") for description in descriptions] == \
            [not enabled] * 2
