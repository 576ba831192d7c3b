"""Crash safety and secret hygiene, tested as deployed: `dg launch` processes on a DAGSTER_HOME.

The crash tests stall one request in the sandbox, SIGKILL the run's whole process group while it
waits, run the job again and read back, as any API client would, what Shopify and LNB hold. The
security test runs succeeding and failing jobs, then searches every byte Dagster stored, the task
logs, the processes' console output and what the UI serves for the secrets those runs used.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import pytest
import requests
import yaml
from conftest import Processes, kill_group, reset_sandbox
from helpers import (
    DEMO_BLOCKED,
    DEMO_CONFIRMED,
    DEMO_EXPORTABLE,
    demo_lnb_statuses,
    demo_shopify_orders,
    lnb_get,
    shopify_data,
)

from lnb_pipeline.definitions import defs
from lnb_pipeline.defs.inventory.assets import (
    shopify_inventory_levels,
    shopify_locations,
)
from lnb_pipeline.defs.inventory.settings import InventorySettings
from lnb_pipeline.defs.orders.assets import EXPORT_POOL
from lnb_pipeline.defs.shopify.resources import ShopifyResource
from lnb_pipeline.order_export import ALREADY_IN_SHOPIFY, CREATED
from lnb_pipeline.sandbox import Sandbox
from lnb_pipeline.sandbox.lnb.api import LnbApi
from lnb_pipeline.sandbox.shopify.api import (
    DEFAULT_CLIENT_ID,
    DEFAULT_TOKEN,
    ShopifyApi,
)

REPO = Path(__file__).resolve().parents[1]
JOB_TIMEOUT_SECONDS = 120
STALL_SECONDS = 8.0
"""How long the sandbox holds the stalled request: ample time to see the stall and kill the run,
short enough to wait out before the next test (a stalled handler records its request when it ends)."""
LNB_SECRET = "sandbox-secret"
"""The sandbox LNB's only valid client secret (fixed), so the successful runs use it."""
BATCH_SIZE = 100
"""Stock rows per LNB call in the stock crash test: the demo's changes then take two calls."""
NO_STEP_RETRIES = {"execution": {"config": {"retries": {"disabled": {}}}}}
"""For runs meant to fail: the same errors, without the assets' RetryPolicy pauses (15 s, 30 s)."""
ALL_ORDERS_QUERY = "{ orders(first: 250) { nodes { name } } }"


# --- processes ----------------------------------------------------------------------------------

def _venv_script(name: str) -> Path:
    return Path(sys.executable).with_name(name)


def _start(processes: Processes, console: Path, command: list[str],
           env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """``command`` from the repository root in a new session, its output in ``console``."""
    console.parent.mkdir(parents=True, exist_ok=True)
    with console.open("wb") as log:
        process = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True, env=env)
    processes.append(process)
    return process


def _start_job(processes: Processes, consoles: Path, job: str,
               run_config: dict[str, Any] | None = None,
               env: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], Path]:
    """``dg launch`` of ``job`` (one process, as ``dagster job execute``), configured by the environment
    as under ``make run``; the process and the file its console output goes to."""
    console = consoles / f"{len(processes)}-{job}.log"
    command = [str(_venv_script("dg")), "launch", "--job", job]
    venv = _venv_script("dg").parent
    env = {**(env if env is not None else os.environ), "VIRTUAL_ENV": str(venv.parent),
           "PATH": f"{venv}:{os.environ['PATH']}"}
    if run_config is not None:
        config_file = console.with_suffix(".yaml")
        config_file.parent.mkdir(parents=True, exist_ok=True)
        config_file.write_text(json.dumps(run_config))
        command += ["-c", str(config_file)]
    return _start(processes, console, command, env), console


def _run_job(processes: Processes, consoles: Path, job: str, *, succeeds: bool = True,
             run_config: dict[str, Any] | None = None, env: dict[str, str] | None = None) -> None:
    """Run ``job`` to its end; it must succeed (exit 0) or fail (exit 1) as ``succeeds`` says."""
    process, console = _start_job(processes, consoles, job, run_config, env)
    try:
        code = process.wait(timeout=JOB_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        code = None
    assert code == (0 if succeeds else 1), f"{job} ended with {code}; console ends:\n" + console.read_text()[-3000:]


def _wait_until(condition: Callable[[], bool], what: str, process: subprocess.Popen[bytes] | None = None,
                timeout: float = 60) -> None:
    """Poll ``condition``; fail naming ``what`` on timeout or when ``process`` ends first."""
    deadline = time.monotonic() + timeout
    while not condition():
        if process is not None and process.poll() is not None:
            pytest.fail(f"the process ended (exit {process.returncode}) before {what}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {timeout} s")
        time.sleep(0.05)


def _deploy_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra_config: str = "") -> Path:
    """A DAGSTER_HOME as ``make run`` sets it up (plus ``extra_config``), task logs in its default place."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "lnb_pipeline" / "deploy" / "dagster.local.yaml", home / "dagster.yaml")
    with (home / "dagster.yaml").open("a") as config:
        config.write(extra_config)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("SHOPIFY_ORDER_LOOKUP_WAIT_SECONDS", "0")
    monkeypatch.delenv("LNB_TASK_LOG_DIR", raising=False)
    return home


# --- the sandbox --------------------------------------------------------------------------------

def _stats(url: str) -> dict[str, Any]:
    return requests.get(f"{url}/_sandbox/stats", timeout=10).json()


def _arm_faults(url: str, faults: list[dict[str, Any]]) -> None:
    requests.post(f"{url}/_sandbox/faults", json=faults, timeout=10).raise_for_status()


def _disarm_faults(sandbox: Sandbox) -> None:
    for url in (sandbox.shopify.url, sandbox.lnb.url):
        requests.delete(f"{url}/_sandbox/faults", timeout=10).raise_for_status()


def _kill_during_stall(sandbox: Sandbox, run: subprocess.Popen[bytes], stalled_endpoint: str,
                       calls_when_done: int) -> None:
    """Kill ``run`` once LNB holds the stalled call, then wait until LNB has given up on it (its
    ``calls_when_done``-th call to ``stalled_endpoint``), so no late request spills into what follows."""
    _wait_until(lambda: _stats(sandbox.lnb.url)["faults_injected"].get("timeout") == 1,
                f"stalled call to {stalled_endpoint}", run)
    kill_group(run)
    _wait_until(lambda: _stats(sandbox.lnb.url)["requests"].get(stalled_endpoint) == calls_when_done,
                f"end of the stalled call to {stalled_endpoint}", timeout=STALL_SECONDS + 10)
    _disarm_faults(sandbox)


def _clear_dead_run(instance: dg.DagsterInstance, run: dg.DagsterRun) -> None:
    """What an operator does in the UI after a crash rather than wait for the daemon's run monitoring
    (which marks a dead run failed only past its maximum runtime, as the default run launcher has no
    health check): force-terminate the run, which marks it canceled, and free the concurrency slots
    it still holds. The UI's mutations call these methods. Until then the dead run counts against
    the run queue's flow limit and keeps its pool slot."""
    instance.report_run_canceled(run, message="run worker killed by the crash test")
    instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)


def _lnb_stock(sandbox: Sandbox) -> list[tuple[str | None, str | None, int]]:
    """LNB's stock rows as buyers see them: EAN13, SKU and units, in LNB's order."""
    return [(row.get("ean13"), row.get("sku"), row["in_stock"]) for row in lnb_get(sandbox, "/inventory")]


def _created_in_order(references: list[str]) -> dict[str, list[str]]:
    """What ``_shopify_orders`` gives once ``references`` were created, in that order, each once."""
    return {reference: [f"#{1001 + references.index(reference)}"] if reference in references else []
            for reference in DEMO_CONFIRMED}


def _shopify_order_count(sandbox: Sandbox) -> int:
    return len(shopify_data(sandbox, ALL_ORDERS_QUERY)["orders"]["nodes"])


# --- crash during an order export ---------------------------------------------------------------

def _export_outcomes(home: Path, run_id: str) -> dict[str, tuple[str, str]]:
    """Outcome and Shopify order name of each order a run sent, from its task log (blocked ones left out)."""
    log = pl.read_csv(home / "task_logs" / run_id / "shopify_orders_from_lnb.csv", infer_schema=False)
    return {row["reference"]: (row["outcome"], row["shopify_order"])
            for row in log.filter(pl.col("line").is_null() & (pl.col("outcome") != "blocked")).iter_rows(named=True)}


def _read_stock_and_stall_the_third_status_change(sandbox: Sandbox, instance: dg.DagsterInstance) -> None:
    """The stock read an export needs, then LNB set to apply the first two status changes but lose
    their answers (``lost_ack``: the exporter re-reads those orders and carries on) and to stall the
    third: an export killed during that stall has the third order in Shopify, still "confirmed" in LNB."""
    assert dg.materialize([shopify_locations, shopify_inventory_levels], instance=instance, resources={
        "shopify": ShopifyResource(shop_url=sandbox.shopify_url, access_token=DEFAULT_TOKEN),
        "inventory_settings": InventorySettings()}).success
    _arm_faults(sandbox.lnb.url, [
        {"kind": "lost_ack", "match": "/orders/status", "count": 2},
        {"kind": "timeout", "match": "/orders/status", "count": 1, "seconds": STALL_SECONDS}])


def test_order_export_killed_between_shopify_create_and_lnb_update_resumes_without_duplicates(
        sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        processes: Processes) -> None:
    """The worst moment to die: the third order is in Shopify but LNB still says "confirmed". The
    next run must find that order by its reference instead of creating it again, and finish the rest."""
    home = _deploy_home(tmp_path, monkeypatch)
    consoles = tmp_path / "console"
    with dg.DagsterInstance.get() as instance:
        _read_stock_and_stall_the_third_status_change(sandbox, instance)

        crashed, _ = _start_job(processes, consoles, "orders_export")
        _kill_during_stall(sandbox, crashed, "POST /orders/status", calls_when_done=3)

        assert demo_shopify_orders(sandbox) == _created_in_order(DEMO_EXPORTABLE[:3])
        assert demo_lnb_statuses(sandbox) == {**dict.fromkeys(DEMO_CONFIRMED, "confirmed"),
                                          **dict.fromkeys(DEMO_EXPORTABLE[:2], "invoicing")}
        [killed_run] = instance.get_runs(dg.RunsFilter(job_name="orders_export"))
        assert killed_run.status == dg.DagsterRunStatus.STARTED
        assert instance.event_log_storage.get_concurrency_info(EXPORT_POOL).active_run_ids == {killed_run.run_id}
        _clear_dead_run(instance, killed_run)

        _run_job(processes, consoles, "orders_export")

        [rerun, killed_run] = instance.get_runs(dg.RunsFilter(job_name="orders_export"))
    assert (rerun.status, killed_run.status) == (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.CANCELED)
    assert demo_shopify_orders(sandbox) == _created_in_order(DEMO_EXPORTABLE)
    assert _shopify_order_count(sandbox) == len(DEMO_EXPORTABLE)
    assert _stats(sandbox.shopify.url)["requests"]["orderCreate"] == len(DEMO_EXPORTABLE)
    assert demo_lnb_statuses(sandbox) == {**dict.fromkeys(DEMO_BLOCKED, "confirmed"),
                                      **dict.fromkeys(DEMO_EXPORTABLE, "invoicing")}
    assert _export_outcomes(home, rerun.run_id) == {
        DEMO_EXPORTABLE[2]: (ALREADY_IN_SHOPIFY, "#1003"),
        DEMO_EXPORTABLE[3]: (CREATED, "#1004"),
        DEMO_EXPORTABLE[4]: (CREATED, "#1005"),
    }


# --- a crash the daemon recovers from by itself --------------------------------------------------

MONITORING_SECONDS = 2
"""The test's run-monitoring poll interval and delay before a finished run's pool slots are freed
(production: 60 s and 60 s), so the retry starts within seconds."""


def _monitored_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``_deploy_home``, with run monitoring that frees a dead run's pool slot after ``MONITORING_SECONDS``."""
    home = _deploy_home(tmp_path, monkeypatch)
    config = yaml.safe_load((home / "dagster.yaml").read_text())
    config["run_monitoring"].update(poll_interval_seconds=MONITORING_SECONDS,
                                    free_slots_after_run_end_seconds=MONITORING_SECONDS)
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    for schedule in ("LNB_STOCK_CRON", "LNB_ORDERS_CRON"):
        monkeypatch.setenv(schedule, "0 0 1 1 *")
    return home


def _run_worker_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    """The pid of a daemon-launched run's process, from the run's "Started process for run" event."""
    for record in instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT).records:
        event = record.event_log_entry.dagster_event
        pid = event.engine_event_data.metadata.get("pid") if event and event.engine_event_data else None
        if pid is not None:
            return int(pid.value)
    return None


def test_daemon_fails_and_retries_an_export_whose_run_worker_died(
        sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        processes: Processes) -> None:
    """Deployed as ``make run`` deploys it, nobody at the console: the export's run worker is killed
    with the third order in Shopify but not yet marked in LNB. The code server sees its run process
    die and fails the run, run monitoring frees the pool slot the dead step held, and run retries
    start the export again; the retry finds the third order by its reference and exports the rest."""
    _monitored_home(tmp_path, monkeypatch)
    consoles = tmp_path / "console"
    command = [str(_venv_script("dagster")), "sensor", "stop", "lnb_orders_sensor", "-w", "workspace.yaml"]
    subprocess.run(command, cwd=REPO, check=True, capture_output=True, timeout=120)
    with dg.DagsterInstance.get() as instance:
        _read_stock_and_stall_the_third_status_change(sandbox, instance)
        launch = [str(_venv_script("dagster")), "job", "launch", "-w", "workspace.yaml", "-j", "orders_export"]
        subprocess.run(launch, cwd=REPO, check=True, capture_output=True, timeout=120)
        [queued] = instance.get_runs(dg.RunsFilter(job_name="orders_export"))
        daemon = _start(processes, consoles / "daemon.log",
                        [str(_venv_script("dagster-daemon")), "run", "-w", "workspace.yaml"])

        _wait_until(lambda: _stats(sandbox.lnb.url)["faults_injected"].get("timeout") == 1,
                    "stalled call to POST /orders/status", daemon, timeout=120)
        pid = _run_worker_pid(instance, queued.run_id)
        assert pid is not None, "the run's process must be known to kill it"
        os.kill(pid, signal.SIGKILL)
        # At least 3: the daemon may start the retry, whose own status calls count too, before the stall ends.
        _wait_until(lambda: _stats(sandbox.lnb.url)["requests"].get("POST /orders/status", 0) >= 3,
                    "end of the stalled call to POST /orders/status", timeout=STALL_SECONDS + 10)
        _disarm_faults(sandbox)

        def retried() -> bool:
            runs = instance.get_runs(dg.RunsFilter(job_name="orders_export"))
            return len(runs) == 2 and all(run.is_finished for run in runs)

        _wait_until(retried, "failed run and finished retry", daemon, timeout=120)
        [retry, killed] = instance.get_runs(dg.RunsFilter(job_name="orders_export"))
        killed_events = [record.event_log_entry.dagster_event.message for record in instance.get_records_for_run(
            killed.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT).records if record.event_log_entry.dagster_event]

    assert (killed.run_id, killed.status, retry.status) == (
        queued.run_id, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.SUCCESS)
    assert any("was terminated by signal 9 (SIGKILL)" in (message or "") for message in killed_events), killed_events
    assert (retry.tags["dagster/parent_run_id"], retry.tags["dagster/retry_number"]) == (killed.run_id, "1")
    assert demo_shopify_orders(sandbox) == _created_in_order(DEMO_EXPORTABLE)
    assert _stats(sandbox.shopify.url)["requests"]["orderCreate"] == len(DEMO_EXPORTABLE)
    assert demo_lnb_statuses(sandbox) == {**dict.fromkeys(DEMO_BLOCKED, "confirmed"),
                                      **dict.fromkeys(DEMO_EXPORTABLE, "invoicing")}


# --- crash during a stock push ------------------------------------------------------------------

SMALL_BATCHES = {"resources": {"lenewblack": {"config": {
    "batch_size": BATCH_SIZE,
    # Run config replaces the resource's configuration: the settings bound to the environment are restated.
    "base_url": {"env": "LNB_BASE_URL"}, "client_id": {"env": "LNB_CLIENT_ID"},
    "client_secret": {"env": "LNB_CLIENT_SECRET"},
}}}}


def test_stock_push_killed_between_batches_converges_on_the_next_run(
        sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        processes: Processes) -> None:
    """A push killed with one batch written leaves LNB half updated; the next run must push exactly
    the rest, so LNB ends up as a clean run leaves it.

    LNB applies the first batch but loses its answer (``lost_ack``), then stalls the client's resend
    of it: the kill lands with batch 1 of 2 written."""
    _deploy_home(tmp_path, monkeypatch)
    consoles = tmp_path / "console"
    original = _lnb_stock(sandbox)
    with dg.DagsterInstance.ephemeral() as reference_instance:
        assert defs().resolve_job_def("inventory_sync").execute_in_process(instance=reference_instance).success
    expected = _lnb_stock(sandbox)
    changed = sum(1 for before, after in zip(original, expected) if before != after)
    assert changed > BATCH_SIZE, "the demo's stock changes must need more than one batch"
    reset_sandbox(sandbox, "demo")
    _arm_faults(sandbox.lnb.url, [
        {"kind": "lost_ack", "match": "/multi/inventory", "count": 1},
        {"kind": "timeout", "match": "/multi/inventory", "count": 1, "seconds": STALL_SECONDS}])

    crashed, _ = _start_job(processes, consoles, "inventory_sync", SMALL_BATCHES)
    _kill_during_stall(sandbox, crashed, "POST /multi/inventory/ean", calls_when_done=2)

    half_pushed = _lnb_stock(sandbox)
    assert sum(1 for before, now in zip(original, half_pushed) if before != now) == BATCH_SIZE
    assert all(now in (before, after) for before, now, after in zip(original, half_pushed, expected))

    with dg.DagsterInstance.get() as instance:
        [killed_run] = instance.get_runs(dg.RunsFilter(job_name="inventory_sync"))
        assert killed_run.status == dg.DagsterRunStatus.STARTED
        _clear_dead_run(instance, killed_run)

        _run_job(processes, consoles, "inventory_sync", run_config=SMALL_BATCHES)

        [rerun, killed_run] = instance.get_runs(dg.RunsFilter(job_name="inventory_sync"))
        push = instance.get_latest_materialization_event(dg.AssetKey("lnb_stock_push"))
    assert _lnb_stock(sandbox) == expected
    assert (rerun.status, killed_run.status) == (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.CANCELED)
    assert push is not None and push.run_id == rerun.run_id
    metadata = {name: value.value for name, value in push.asset_materialization.metadata.items()}
    assert (metadata["keys_pushed"], metadata["keys_rejected"], metadata["batch_calls"]) == (
        changed - BATCH_SIZE, 0, -(-(changed - BATCH_SIZE) // BATCH_SIZE))


# --- secrets ------------------------------------------------------------------------------------

DEBUG_HTTP_LOGS = """
# Added by the security test: what an operator turns on to troubleshoot; urllib3 logs every URL.
python_logs:
  python_log_level: DEBUG
  managed_python_loggers:
    - urllib3
"""
REPOSITORY = {"repositoryLocationName": "lnb_pipeline", "repositoryName": "__repository__"}
LOCATION_QUERY = "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"
RUNS_QUERY = "{ runsOrError { ... on Runs { results { runId jobName status runConfigYaml tags { key value } } } } }"
ERROR_FRAGMENT = """
fragment error on PythonError {
  message className stack
  cause { message className stack } causes { message className stack } errorChain { error { message stack } }
}
"""
METADATA_FRAGMENT = """
fragment metadata on MetadataEntry {
  label description
  ... on TextMetadataEntry { text }
  ... on MarkdownMetadataEntry { mdStr }
  ... on PathMetadataEntry { path }
  ... on JsonMetadataEntry { jsonString }
  ... on UrlMetadataEntry { url }
  ... on IntMetadataEntry { intRepr }
  ... on FloatMetadataEntry { floatValue }
  ... on BoolMetadataEntry { boolValue }
  ... on TableMetadataEntry { table { records } }
}
"""
RUN_EVENTS_QUERY = """
query RunEvents($runId: ID!) {
  logsForRun(runId: $runId, limit: 100000) {
    __typename
    ... on EventConnection {
      hasMore
      events {
        __typename
        ... on MessageEvent { message level stepKey }
        ... on ErrorEvent { error { ...error } }
        ... on ExecutionStepFailureEvent { failureMetadata { metadataEntries { ...metadata } } }
        ... on DisplayableEvent { label description metadataEntries { ...metadata } }
        ... on AssetCheckEvaluationEvent { evaluation { checkName description metadataEntries { ...metadata } } }
        ... on LogsCapturedEvent { fileKey }
      }
    }
  }
}
""" + ERROR_FRAGMENT + METADATA_FRAGMENT
CAPTURED_LOGS_QUERY = """
query CapturedLogs($runId: ID!, $fileKey: String!) {
  runOrError(runId: $runId) { ... on Run { capturedLogs(fileKey: $fileKey) { stdout stderr } } }
}
"""
DEPLOYMENT_QUERY = """
query Deployment($repository: RepositorySelector!) {
  instance { info }
  allTopLevelResourceDetailsOrError(repositorySelector: $repository) {
    ... on ResourceDetailsList { results { name description configuredValues { key value type } } }
  }
  utilizedEnvVarsOrError(repositorySelector: $repository) { ... on EnvVarWithConsumersList { results { envVarName } } }
  assetsOrError {
    ... on AssetConnection {
      nodes {
        key { path }
        definition { description metadataEntries { ...metadata } }
        assetMaterializations(limit: 20) { runId metadataEntries { ...metadata } }
      }
    }
  }
}
""" + METADATA_FRAGMENT
DEPLOYMENT_PAGE = "assets, resources, environment variables, instance"


def _free_port() -> int:
    with closing(socket.socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _ui_graphql(url: str, query: str, variables: dict[str, Any] | None = None) -> tuple[dict[str, Any], str]:
    """The UI's GraphQL answer: parsed, and as the raw text the browser receives (what is searched)."""
    response = requests.post(f"{url}/graphql", json={"query": query, "variables": variables or {}}, timeout=60)
    body = response.json()
    assert response.status_code == 200 and "errors" not in body, body
    return body["data"], response.text


def _location_loaded(url: str) -> bool:
    try:
        data, _ = _ui_graphql(url, LOCATION_QUERY)
    except requests.ConnectionError:
        return False
    return [(e["name"], e["loadStatus"]) for e in data["workspaceOrError"]["locationEntries"]] == [
        ("lnb_pipeline", "LOADED")]


def _ui_pages(url: str) -> dict[str, str]:
    """What the UI serves, by page: the data behind the runs list, each run's page (events, errors,
    metadata, check results, captured stdout/stderr) and its HTML, the assets, resources and
    environment-variable pages, and the instance configuration."""
    pages: dict[str, str] = {}
    runs, pages["runs"] = _ui_graphql(url, RUNS_QUERY)
    for run in runs["runsOrError"]["results"]:
        run_id = run["runId"]
        events, pages[f"run {run_id} events"] = _ui_graphql(url, RUN_EVENTS_QUERY, {"runId": run_id})
        assert events["logsForRun"]["hasMore"] is False
        for event in events["logsForRun"]["events"]:
            if event["__typename"] == "LogsCapturedEvent":
                _, pages[f"run {run_id} captured logs {event['fileKey']}"] = _ui_graphql(
                    url, CAPTURED_LOGS_QUERY, {"runId": run_id, "fileKey": event["fileKey"]})
        html = requests.get(f"{url}/runs/{run_id}", timeout=30)
        html.raise_for_status()
        pages[f"run {run_id} html"] = html.text
    _, pages[DEPLOYMENT_PAGE] = _ui_graphql(url, DEPLOYMENT_QUERY, {"repository": REPOSITORY})
    return pages


def _issued_lnb_tokens(sandbox: Sandbox) -> set[str]:
    """Every access token the LNB sandbox has issued. Its API never lists them (as LNB's would not),
    so they are read from the in-process server's own state."""
    api = sandbox.lnb.api
    assert isinstance(api, LnbApi)
    return set(api._tokens)


def _issued_shopify_tokens(sandbox: Sandbox) -> set[str]:
    """Every token the Shopify sandbox's client credentials grant has issued, from its own state."""
    api = sandbox.shopify.api
    assert isinstance(api, ShopifyApi)
    return set(api._issued_tokens)


def _leaks(blobs: dict[str, bytes], secrets_by_name: dict[str, str]) -> dict[str, list[str]]:
    """Per blob (file or page) the names of the secrets found in its raw bytes."""
    found = {where: [name for name, secret in secrets_by_name.items() if secret.encode() in blob]
             for where, blob in blobs.items()}
    return {where: names for where, names in found.items() if names}


def test_no_secret_reaches_dagster_storage_task_logs_consoles_or_the_ui(
        sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        processes: Processes) -> None:
    """After a successful stock sync and order export, a run with a wrong LNB client secret, one
    whose LNB reads fail until the client gives up (HTTP debug logging on) and a stock sync on
    Shopify client credentials, no Shopify token (fixed or issued), Shopify or LNB client secret
    (right or wrong) or LNB access token is anywhere an operator or the UI can read."""
    shopify_token = "shpat_" + secrets.token_hex(16)
    shopify_secret = "shopify-secret-" + secrets.token_hex(16)
    wrong_secret = "lnb-wrong-" + secrets.token_hex(16)
    requests.post(f"{sandbox.shopify.url}/_sandbox/config", json={"token": shopify_token, "client_secret": shopify_secret},
                  timeout=10).raise_for_status()
    monkeypatch.setenv("SHOPIFY_ACCESS_TOKEN", shopify_token)
    home = _deploy_home(tmp_path, monkeypatch, DEBUG_HTTP_LOGS)
    consoles = tmp_path / "console"
    tokens_before = _issued_lnb_tokens(sandbox)

    _run_job(processes, consoles, "inventory_sync")
    port = _free_port()
    webserver = _start(processes, consoles / "webserver.log", [
        str(_venv_script("dagster-webserver")), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)])
    _run_job(processes, consoles, "orders_export")
    _run_job(processes, consoles, "inventory_sync", succeeds=False, run_config=NO_STEP_RETRIES,
             env={**os.environ, "LNB_CLIENT_SECRET": wrong_secret})
    _arm_faults(sandbox.lnb.url, [{"kind": "drop", "match": "/inventory", "count": 1},
                                  {"kind": "http_500", "match": "/inventory", "rate": 1}])
    _run_job(processes, consoles, "inventory_sync", succeeds=False, run_config=NO_STEP_RETRIES)
    _disarm_faults(sandbox)
    client_credentials = {name: value for name, value in os.environ.items() if name != "SHOPIFY_ACCESS_TOKEN"}
    _run_job(processes, consoles, "inventory_sync",
             env={**client_credentials, "SHOPIFY_CLIENT_ID": DEFAULT_CLIENT_ID, "SHOPIFY_CLIENT_SECRET": shopify_secret})
    url = f"http://127.0.0.1:{port}"
    _wait_until(lambda: _location_loaded(url), "code location loaded in the UI", webserver)
    pages = _ui_pages(url)

    tokens = _issued_lnb_tokens(sandbox) - tokens_before
    shopify_tokens = _issued_shopify_tokens(sandbox)
    assert tokens and shopify_tokens, "the runs must have obtained access tokens for the search to mean anything"
    secrets_by_name = {"Shopify access token": shopify_token, "Shopify client secret": shopify_secret,
                       "LNB client secret": LNB_SECRET, "wrong LNB client secret": wrong_secret,
                       **{f"LNB access token {n}": token for n, token in enumerate(sorted(tokens), 1)},
                       **{f"issued Shopify token {n}": token for n, token in enumerate(sorted(shopify_tokens), 1)}}
    control = tmp_path / "control.db"
    with closing(sqlite3.connect(control)) as db:
        db.execute("CREATE TABLE event_logs (event TEXT)")
        db.execute("INSERT INTO event_logs VALUES (?)", (f"GET /inventory?access_token={min(tokens)} -> 200",))
        db.commit()
    assert _leaks({"control.db": control.read_bytes()}, secrets_by_name) == {"control.db": ["LNB access token 1"]}

    shown = "\n".join(pages.values())
    assert "LNB refused the client credentials for client id 'sandbox-client': HTTP 401" in shown
    assert "LNB GET /inventory: HTTP 500: Injected fault: HTTP 500 (gave up after 4 attempts)" in shown
    assert "/inventory?access_token=*** HTTP/1.1" in shown, "urllib3's debug lines, token masked"
    assert "lnb_stock_push.csv" in shown and "shopify_orders_from_lnb.csv" in shown
    [lenewblack] = [resource for resource in json.loads(pages[DEPLOYMENT_PAGE])["data"][
        "allTopLevelResourceDetailsOrError"]["results"] if resource["name"] == "lenewblack"]
    assert {"key": "client_secret", "value": "LNB_CLIENT_SECRET", "type": "ENV_VAR"} in lenewblack["configuredValues"]
    files = [path for directory in (home, consoles) for path in directory.rglob("*") if path.is_file()]
    names = {path.name for path in files}
    assert {"runs.db", "index.db", "lnb_stock_push.csv", "shopify_orders_from_lnb.csv"} <= names
    assert any(name.endswith(".err") for name in names), "compute logs"
    assert _leaks({str(path): path.read_bytes() for path in files}
                  | {f"UI: {page}": text.encode() for page, text in pages.items()}, secrets_by_name) == {}
