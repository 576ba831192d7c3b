"""The production deployment, tested as deployed: the daemon and the webserver on the PostgreSQL profile.

`lnb_pipeline/deploy/dagster.production.yaml` is copied to a fresh DAGSTER_HOME as `make run
DAGSTER_PROFILE=production` copies it, pointed at a database of its own on the PostgreSQL server
LNB_TEST_POSTGRES_URL names. Nobody launches anything: the daemon's scheduler fires the stock
schedule, whose run reads Shopify, which lets the order sensor fire its export. The test reads the
runs back as the UI shows them, finds them, their events and the ticks in PostgreSQL's own tables
(and no SQLite file in DAGSTER_HOME), and checks what Shopify and LNB hold afterwards.

`.ci/run` installs and starts PostgreSQL and sets LNB_TEST_POSTGRES_URL; elsewhere the test skips.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import dagster as dg
import psycopg2
import pytest
import requests
from dagster_postgres import (
    PostgresEventLogStorage,
    PostgresRunStorage,
    PostgresScheduleStorage,
)
from helpers import (
    DEMO_BLOCKED,
    DEMO_CONFIRMED,
    DEMO_EXPORTABLE,
    demo_lnb_statuses,
    demo_shopify_orders,
    lnb_get,
    shopify_data,
)

from lnb_pipeline.clients.shopify import ShopifyClient
from lnb_pipeline.defs.inventory.schedules import FLOW_TAG
from lnb_pipeline.sandbox import Sandbox
from lnb_pipeline.sandbox.generators import DEMO_CASES, demo_scenario, lnb_ean13
from lnb_pipeline.sandbox.shopify.api import DEFAULT_TOKEN

REPO = Path(__file__).resolve().parents[1]
POSTGRES_URL_VARIABLE = "LNB_TEST_POSTGRES_URL"
SKIP_MESSAGE = (f"needs {POSTGRES_URL_VARIABLE}: a postgresql://user:password@host:port/database URL of a running "
                "PostgreSQL server whose user may CREATE DATABASE (.ci/run installs PostgreSQL and sets it)")
EVERY_MINUTE = "* * * * *"
NEVER = "0 0 1 1 *"
"""Cron for the order schedule, so that only the sensor starts exports."""
SENSOR_SECONDS = 5
SCHEDULED_RUN_TIMEOUT_SECONDS = 150
"""The next minute's tick, after the daemon has loaded the code, plus the run itself."""
SENSOR_RUN_TIMEOUT_SECONDS = 90
STOCK_SCHEDULE = "inventory_sync_schedule"
ORDER_SENSOR = "lnb_orders_sensor"

REPOSITORY = {"repositoryLocationName": "lnb_pipeline", "repositoryName": "__repository__"}
LOCATION_QUERY = "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"
INSTIGATORS_QUERY = """
query Instigators($repository: RepositorySelector!) {
  schedulesOrError(repositorySelector: $repository) { ... on Schedules { results { name scheduleState { status } } } }
  sensorsOrError(repositorySelector: $repository) { ... on Sensors { results { name sensorState { status } } } }
}
"""
RUNS_QUERY = """
query Runs($tags: [ExecutionTag!]) {
  runsOrError(filter: {tags: $tags}) { ... on Runs { results { runId jobName status startTime endTime } } }
}
"""

DEMO = demo_scenario()
ALL_ORDERS_QUERY = "{ orders(first: 250) { nodes { name } } }"
VARIANT_LEVELS_QUERY = """
query($first: Int!, $after: String) {
  productVariants(first: $first, after: $after) {
    nodes { barcode inventoryItem { inventoryLevels(first: 3) {
      nodes { location { isActive } quantities(names: ["available"]) { quantity } } } } }
    pageInfo { hasNextPage endCursor }
  }
}
"""

Processes = list[subprocess.Popen[bytes]]


# --- PostgreSQL ---------------------------------------------------------------------------------

def _server_url() -> str:
    """LNB_TEST_POSTGRES_URL once its server answers; skips the test otherwise."""
    url = os.environ.get(POSTGRES_URL_VARIABLE)
    if not url:
        pytest.skip(SKIP_MESSAGE)
    try:
        psycopg2.connect(url, connect_timeout=5).close()
    except psycopg2.OperationalError as error:
        pytest.skip(f"{SKIP_MESSAGE}; the server did not answer: {str(error).strip()}")
    return url


def _with_database(url: str, database: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


@pytest.fixture
def postgres_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh database for this test, DAGSTER_PG_* pointing at it; dropped afterwards. Its URL."""
    server_url = _server_url()
    database = f"lnb_test_{secrets.token_hex(6)}"
    with closing(psycopg2.connect(server_url)) as admin:
        admin.autocommit = True
        with admin.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {database}")
        parts = urlsplit(server_url)
        for name, value in {"DAGSTER_PG_HOST": parts.hostname or "127.0.0.1",
                            "DAGSTER_PG_PORT": str(parts.port or 5432), "DAGSTER_PG_DB": database,
                            "DAGSTER_PG_USER": parts.username or "", "DAGSTER_PG_PASSWORD": parts.password or ""}.items():
            monkeypatch.setenv(name, value)
        try:
            yield _with_database(server_url, database)
        finally:
            with admin.cursor() as cursor:
                cursor.execute(f"DROP DATABASE {database} WITH (FORCE)")


def _query(url: str, sql: str) -> list[tuple[Any, ...]]:
    with closing(psycopg2.connect(url)) as connection, connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchall()


def _instigators(url: str) -> set[tuple[str, str]]:
    """(type, name) of each schedule and sensor state in the ``jobs`` table."""
    states = [dg.deserialize_value(body) for (body,) in _query(url, "SELECT job_body FROM jobs")]
    return {(state.instigator_type.value, state.instigator_name) for state in states}


def _ticks(url: str) -> dict[tuple[str, str, str], list[str]]:
    """Per (type, instigator name, status), the run ids of the ticks in the ``job_ticks`` table."""
    ticks: dict[tuple[str, str, str], list[str]] = {}
    for (body,) in _query(url, "SELECT tick_body FROM job_ticks"):
        tick = dg.deserialize_value(body)
        key = (tick.instigator_type.value, tick.instigator_name, tick.status.value)
        ticks.setdefault(key, []).extend(tick.run_ids)
    return ticks


# --- processes ----------------------------------------------------------------------------------

@pytest.fixture
def processes() -> Iterator[Processes]:
    """The daemon and webserver a test starts, each leading its own process group: stopped at teardown."""
    started: Processes = []
    yield started
    for process in started:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _start(processes: Processes, console: Path, script: str, *arguments: str) -> subprocess.Popen[bytes]:
    """A console script of the test's environment, from the repository root, its output in ``console``."""
    with console.open("wb") as log:
        process = subprocess.Popen([str(Path(sys.executable).with_name(script)), *arguments], cwd=REPO,
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    processes.append(process)
    return process


def _free_port() -> int:
    with closing(socket.socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for(find: Callable[[], Any], what: str, timeout: float, logs: list[Path]) -> Any:
    """Poll ``find`` until it returns something; fail naming ``what`` with the ends of ``logs``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = find()
        if found:
            return found
        time.sleep(1)
    tails = "\n".join(f"--- {log.name} ends:\n{log.read_text()[-3000:]}" for log in logs)
    pytest.fail(f"no {what} within {timeout} s\n{tails}")


# --- the webserver ------------------------------------------------------------------------------

def _ui_graphql(url: str, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    response = requests.post(f"{url}/graphql", json={"query": query, "variables": variables or {}}, timeout=60)
    body = response.json()
    assert response.status_code == 200 and "errors" not in body, body
    return body["data"]


def _location_loaded(url: str) -> bool:
    try:
        data = _ui_graphql(url, LOCATION_QUERY)
    except requests.ConnectionError:
        return False
    return [(entry["name"], entry["loadStatus"]) for entry in data["workspaceOrError"]["locationEntries"]] == [
        ("lnb_pipeline", "LOADED")]


def _ui_runs(url: str, tag: str, value: str) -> list[dict[str, Any]]:
    """The runs the UI lists with run tag ``tag`` = ``value``, newest first."""
    data = _ui_graphql(url, RUNS_QUERY, {"tags": [{"key": tag, "value": value}]})
    return data["runsOrError"]["results"]


def _finished_run(url: str, tag: str, value: str, started_after: float = 0.0) -> Callable[[], dict[str, Any] | None]:
    """A poll for the first run tagged ``tag`` = ``value`` (started after ``started_after``, a Unix
    time) once it has finished."""
    def find() -> dict[str, Any] | None:
        runs = [run for run in _ui_runs(url, tag, value) if (run["startTime"] or 0) > started_after]
        first = runs[-1] if runs else None
        return first if first and first["status"] in ("SUCCESS", "FAILURE", "CANCELED") else None
    return find


# --- the sandbox --------------------------------------------------------------------------------

def _lnb_stock(sandbox: Sandbox) -> dict[tuple[str | None, str | None], int]:
    """LNB's stock per (EAN13, SKU)."""
    return {(row.get("ean13"), row.get("sku")): row["in_stock"] for row in lnb_get(sandbox, "/inventory")}


def _shopify_available_by_ean13(sandbox: Sandbox) -> dict[str, int]:
    """What the sandbox Shopify has available at its active locations now (the export took the ordered
    units; a level the orders took below 0 counts as 0, as the stock rules count it), for each EAN13
    the demo set LNB equal to or apart from (unambiguous variants: tracked, nothing negative or at an
    inactive location to start with)."""
    compared = {*DEMO_CASES["inventory_equal_to_shopify"], *DEMO_CASES["inventory_different_from_shopify"]}
    client = ShopifyClient(sandbox.shopify_url, DEFAULT_TOKEN)
    try:
        return {ean13: sum(max(0, level["quantities"][0]["quantity"])
                           for level in variant["inventoryItem"]["inventoryLevels"]["nodes"]
                           if level["location"]["isActive"])
                for variant in client.paginate(VARIANT_LEVELS_QUERY, {}, ("productVariants",))
                if (ean13 := lnb_ean13(variant["barcode"])) in compared}
    finally:
        client.close()


def _push_metadata(instance: dg.DagsterInstance, run_id: str) -> dict[str, Any]:
    """The ``lnb_stock_push`` materialization's metadata in run ``run_id``."""
    [push] = [record.event_log_entry.asset_materialization for record in instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION).records
        if record.event_log_entry.asset_materialization.asset_key == dg.AssetKey("lnb_stock_push")]
    return {name: value.value for name, value in push.metadata.items()}


# --- the test -----------------------------------------------------------------------------------

@pytest.mark.timeout(420)
def test_daemon_and_webserver_on_postgres_run_the_schedule_and_the_sensor(
        postgres_url: str, sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        processes: Processes) -> None:
    """Deployed with the production profile and left alone: the sensor's run exports the demo's valid
    orders once and the stock schedule's runs push Shopify's stock to LNB (the one after the export
    with the ordered units gone); every run, event and tick is in PostgreSQL."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "lnb_pipeline" / "deploy" / "dagster.production.yaml", home / "dagster.yaml")
    for name, value in {"DAGSTER_HOME": str(home), "LNB_STOCK_CRON": EVERY_MINUTE, "LNB_ORDERS_CRON": NEVER,
                        "LNB_ORDERS_SENSOR_SECONDS": str(SENSOR_SECONDS),
                        "SHOPIFY_ORDER_LOOKUP_WAIT_SECONDS": "0"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("LNB_TASK_LOG_DIR", raising=False)
    stock_before = _lnb_stock(sandbox)
    logs = [tmp_path / "daemon.log", tmp_path / "webserver.log"]

    with dg.DagsterInstance.get() as instance:
        # Creates the schema before the daemon and the webserver start, rather than both racing to.
        assert (type(instance.run_storage), type(instance.event_log_storage), type(instance.schedule_storage)) == (
            PostgresRunStorage, PostgresEventLogStorage, PostgresScheduleStorage)
        concurrency = instance.get_concurrency_config()
        assert {(limit["key"], limit["value"], limit["limit"])
                for limit in concurrency.run_queue_config.tag_concurrency_limits} == {
            (FLOW_TAG, "inventory", 1), (FLOW_TAG, "orders", 1)}
        assert concurrency.pool_config.default_pool_limit == 1

        port = _free_port()
        _start(processes, logs[0], "dagster-daemon", "run", "-w", "workspace.yaml")
        _start(processes, logs[1], "dagster-webserver", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port))
        url = f"http://127.0.0.1:{port}"
        _wait_for(lambda: _location_loaded(url), "code location loaded in the UI", 120, logs)
        instigators = _ui_graphql(url, INSTIGATORS_QUERY, {"repository": REPOSITORY})
        statuses = {schedule["name"]: schedule["scheduleState"]["status"]
                    for schedule in instigators["schedulesOrError"]["results"]} | {
            sensor["name"]: sensor["sensorState"]["status"] for sensor in instigators["sensorsOrError"]["results"]}
        assert (statuses[STOCK_SCHEDULE], statuses[ORDER_SENSOR]) == ("RUNNING", "RUNNING"), "on from the start"

        scheduled = _wait_for(_finished_run(url, "dagster/schedule_name", STOCK_SCHEDULE),
                              "finished scheduled inventory_sync run", SCHEDULED_RUN_TIMEOUT_SECONDS, logs)
        sensed = _wait_for(_finished_run(url, "dagster/sensor_name", ORDER_SENSOR),
                           "finished orders_export run from the sensor", SENSOR_RUN_TIMEOUT_SECONDS, logs)

        after_export = _wait_for(_finished_run(url, "dagster/schedule_name", STOCK_SCHEDULE, sensed["endTime"]),
                                 "inventory_sync run started after the export", SCHEDULED_RUN_TIMEOUT_SECONDS, logs)

        assert [(run["jobName"], run["status"]) for run in (scheduled, after_export)] == [
            ("inventory_sync", "SUCCESS")] * 2
        assert (sensed["jobName"], sensed["status"]) == ("orders_export", "SUCCESS")
        assert [run["runId"] for run in _ui_runs(url, "dagster/sensor_name", ORDER_SENSOR)] == [sensed["runId"]]
        assert [instance.get_run_by_id(run["runId"]).status for run in (scheduled, sensed)] == [
            dg.DagsterRunStatus.SUCCESS] * 2
        pushes = [_push_metadata(instance, run["runId"]) for run in (scheduled, after_export)]

    run_ids = {scheduled["runId"], sensed["runId"]}
    assert {(run_id, status) for run_id, status in _query(postgres_url, "SELECT run_id, status FROM runs")
            if run_id in run_ids} == {(scheduled["runId"], "SUCCESS"), (sensed["runId"], "SUCCESS")}
    run_success = dg.DagsterEventType.RUN_SUCCESS.value
    assert sorted(run_id for (run_id,) in _query(
        postgres_url, f"SELECT run_id FROM event_logs WHERE dagster_event_type = '{run_success}'")
        if run_id in run_ids) == sorted(run_ids)
    assert {("SCHEDULE", STOCK_SCHEDULE), ("SENSOR", ORDER_SENSOR)} <= _instigators(postgres_url)
    ticks = _ticks(postgres_url)
    assert scheduled["runId"] in ticks[("SCHEDULE", STOCK_SCHEDULE, "SUCCESS")]
    assert ticks[("SENSOR", ORDER_SENSOR, "SUCCESS")] == [sensed["runId"]]
    assert ("SENSOR", ORDER_SENSOR, "SKIPPED") in ticks, "later ticks skip: no order entered the export status"
    assert [path.relative_to(home) for path in home.rglob("*.db")] == []
    assert not (home / "history").exists() and not (home / "schedules").exists()

    stock_after = _lnb_stock(sandbox)
    lnb_by_ean13 = {ean13: in_stock for (ean13, _), in_stock in stock_after.items()}
    shopify_available = _shopify_available_by_ean13(sandbox)
    assert {ean13: lnb_by_ean13[ean13] for ean13 in shopify_available} == shopify_available
    changed = [key for key, in_stock in stock_after.items() if stock_before.get(key) != in_stock]
    assert len(changed) >= len(DEMO_CASES["inventory_different_from_shopify"])
    assert pushes[0]["keys_pushed"] >= len(DEMO_CASES["inventory_different_from_shopify"])
    assert [push["keys_rejected"] for push in pushes] == [0, 0]

    assert demo_shopify_orders(sandbox) == {
        reference: [f"#{1001 + DEMO_EXPORTABLE.index(reference)}"] if reference in DEMO_EXPORTABLE else []
        for reference in DEMO_CONFIRMED}
    assert len(shopify_data(sandbox, ALL_ORDERS_QUERY)["orders"]["nodes"]) == len(DEMO_EXPORTABLE)
    assert demo_lnb_statuses(sandbox) == {**dict.fromkeys(DEMO_BLOCKED, "confirmed"),
                                      **dict.fromkeys(DEMO_EXPORTABLE, "invoicing")}
