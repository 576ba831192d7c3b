"""The incremental stock path end to end: real runs of `inventory_sync` and `inventory_changes_sync`
on the demo sandbox, stock changed through the sandbox as a merchant would, LNB read through its API."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

import dagster as dg
import polars as pl
import pytest
import requests
from conftest import Processes
from helpers import REPO_ROOT, asset_metadata, check_evaluation, lnb_get

from lnb_pipeline.definitions import defs
from lnb_pipeline.defs.inventory.changes import NO_MIRROR, shopify_stock_changes_sensor
from lnb_pipeline.defs.inventory.settings import InventorySettings
from lnb_pipeline.defs.shopify.resources import ShopifyResource
from lnb_pipeline.sandbox import Sandbox
from lnb_pipeline.sandbox.lnb.api import LNB_BASE_PATH
from lnb_pipeline.stock_mirror import load_mirror

PARIS, AMSTERDAM = 1, 2
BIN = Path(sys.executable).parent
PUSH_PATH = f"{LNB_BASE_PATH}/multi/inventory/"
STALL_SECONDS = 4.0


@pytest.fixture
def deployed(sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    """The demo sandbox, task logs in ``tmp_path``, Shopify's search index without lag unless a test sets one."""
    monkeypatch.setenv("LNB_TASK_LOG_DIR", str(tmp_path / "task_logs"))
    _configure(sandbox, order_search_lag_seconds=0)
    return sandbox


def _configure(sandbox: Sandbox, **settings: Any) -> None:
    requests.post(f"{sandbox.shopify.url}/_sandbox/config", json=settings, timeout=10).raise_for_status()


def _run(job: str, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    return defs().resolve_job_def(job).execute_in_process(instance=instance, raise_on_error=False)


def _full_sync(instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    result = _run("inventory_sync", instance)
    assert result.success
    return result


class Stocked(NamedTuple):
    number: int
    key: str
    quantity: int
    """Available-to-sell: the sum of the two levels."""
    paris: int
    amsterdam: int


def _stocked_at_both(result: dg.ExecuteInProcessResult) -> list[Stocked]:
    """The full sync's exported variants stocked at Paris and Amsterdam, with both levels' ``available``."""
    stock = result.output_for_node("available_to_sell").filter(pl.col("excluded_reason").is_null())
    levels = result.output_for_node("shopify_inventory_levels")

    def at(location: int, name: str) -> pl.DataFrame:
        return (levels.filter(pl.col("location_id") == f"gid://shopify/Location/{location}")
                .select("variant_id", pl.col("available").alias(name)))

    rows = (stock.join(at(PARIS, "paris"), on="variant_id").join(at(AMSTERDAM, "amsterdam"), on="variant_id")
            .filter((pl.col("paris") >= 0) & (pl.col("amsterdam") >= 0))
            .select(pl.col("variant_id").str.extract(r"(\d+)$").cast(pl.Int64), "key", "quantity", "paris",
                    "amsterdam").rows())
    return [Stocked(*row) for row in rows]


def _set_available(sandbox: Sandbox, variant: int, location: int, available: int) -> None:
    requests.post(f"{sandbox.shopify.url}/_sandbox/inventory", timeout=10,
                  json={"changes": [{"variant_id": variant, "location_id": location, "available": available}]},
                  ).raise_for_status()


def _lnb_stock(sandbox: Sandbox) -> dict[str, int]:
    return {row["ean13"]: row["in_stock"] for row in lnb_get(sandbox, "/inventory") if row.get("ean13")}


def _pushes(sandbox: Sandbox) -> list[list[dict[str, Any]]]:
    recent = requests.get(f"{sandbox.lnb.url}/_sandbox/requests", timeout=10).json()
    return [entry["variables"]["requests"] for entry in recent
            if entry["method"] == "POST" and entry["path"].startswith(PUSH_PATH)]


def _pushed_since(sandbox: Sandbox, before: int) -> list[dict[str, Any]]:
    return [item for batch in _pushes(sandbox)[before:] for item in batch]


def test_a_stock_change_is_pushed_alone_and_then_nothing_more(deployed: Sandbox) -> None:
    with dg.DagsterInstance.ephemeral() as instance:
        variant, key, quantity, paris, amsterdam = _stocked_at_both(_full_sync(instance))[0]
        _set_available(deployed, variant, PARIS, paris + 7)
        before = len(_pushes(deployed))
        changed = _run("inventory_changes_sync", instance)
        assert changed.success
        assert _pushed_since(deployed, before) == [{"ean13": key, "in_stock": quantity + 7}]
        assert _lnb_stock(deployed)[key] == quantity + 7
        metadata = asset_metadata(changed, "lnb_stock_changes_push")
        assert (metadata["levels_changed"], metadata["keys_pushed"], metadata["keys_rejected"]) == (1, 1, 0)
        assert metadata["delay_seconds"] is not None and 0 <= metadata["delay_seconds"] < 60
        assert metadata["window_end"] > metadata["window_start"]
        task_log = pl.read_csv(metadata["task_log"], infer_schema=False)
        assert task_log.select("key", "quantity", "outcome").rows() == [(key, str(quantity + 7), "pushed")]

        again = len(_pushes(deployed))
        quiet = _run("inventory_changes_sync", instance)
        assert quiet.success
        assert _pushed_since(deployed, again) == []
        assert asset_metadata(quiet, "lnb_stock_changes_push")["keys_pushed"] == 0


def test_two_changes_of_one_level_in_a_window_push_the_latest_value_once(deployed: Sandbox) -> None:
    with dg.DagsterInstance.ephemeral() as instance:
        variant, key, quantity, paris, amsterdam = _stocked_at_both(_full_sync(instance))[0]
        _set_available(deployed, variant, PARIS, paris + 3)
        _set_available(deployed, variant, PARIS, paris + 11)
        _set_available(deployed, variant, AMSTERDAM, amsterdam + 1)
        before = len(_pushes(deployed))
        assert _run("inventory_changes_sync", instance).success
        assert _pushed_since(deployed, before) == [{"ean13": key, "in_stock": quantity + 12}]


def test_a_change_at_a_location_not_summed_is_not_pushed(deployed: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LNB_STOCK_LOCATIONS", "Paris Warehouse")
    monkeypatch.setenv("LNB_STOCK_GUARD_MAX_CHANGED_PERCENT", "100")  # Amsterdam's stock leaves LNB at the first push
    with dg.DagsterInstance.ephemeral() as instance:
        variant, key, _, _, amsterdam = _stocked_at_both(_full_sync(instance))[0]
        _set_available(deployed, variant, AMSTERDAM, amsterdam + 50)
        before, held = len(_pushes(deployed)), _lnb_stock(deployed)[key]
        changed = _run("inventory_changes_sync", instance)
        assert changed.success
        assert asset_metadata(changed, "lnb_stock_changes_push")["levels_changed"] == 0
        assert _pushed_since(deployed, before) == []
        assert _lnb_stock(deployed)[key] == held


def test_a_change_made_while_a_push_is_under_way_is_pushed_by_the_next_run(deployed: Sandbox) -> None:
    with dg.DagsterInstance.ephemeral() as instance:
        stocked = _stocked_at_both(_full_sync(instance))
        (first, first_key, first_quantity, first_paris, _), (second, second_key, second_quantity, second_paris, _) = (
            stocked[:2])
        _set_available(deployed, first, PARIS, first_paris + 2)
        requests.post(f"{deployed.lnb.url}/_sandbox/faults", timeout=10, json=[
            {"kind": "timeout", "match": "/multi/inventory", "count": 1, "seconds": STALL_SECONDS}]).raise_for_status()
        runs: list[dg.ExecuteInProcessResult] = []
        running = threading.Thread(target=lambda: runs.append(_run("inventory_changes_sync", instance)))
        running.start()
        deadline = time.monotonic() + 60
        while requests.get(f"{deployed.lnb.url}/_sandbox/stats", timeout=10).json()["faults_injected"].get(
                "timeout") != 1:
            assert time.monotonic() < deadline, "the push never reached LNB"
            time.sleep(0.05)
        _set_available(deployed, second, PARIS, second_paris + 5)
        running.join(timeout=120)
        assert runs and runs[0].success
        assert _lnb_stock(deployed)[first_key] == first_quantity + 2
        assert _lnb_stock(deployed)[second_key] == second_quantity

        assert _run("inventory_changes_sync", instance).success
        assert _lnb_stock(deployed)[second_key] == second_quantity + 5


def test_a_failed_push_leaves_the_cursor_and_the_next_run_pushes_the_change(
        deployed: Sandbox, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with dg.DagsterInstance.ephemeral() as instance:
        variant, key, quantity, paris, amsterdam = _stocked_at_both(_full_sync(instance))[0]
        cursor = load_mirror(tmp_path / "stock_mirror")
        assert cursor is not None
        _set_available(deployed, variant, PARIS, paris + 4)
        monkeypatch.setenv("LNB_CLIENT_SECRET", "not-the-secret")
        assert not _run("inventory_changes_sync", instance).success
        after_failure = load_mirror(tmp_path / "stock_mirror")
        assert after_failure is not None and after_failure.read_at == cursor.read_at
        assert _lnb_stock(deployed)[key] == quantity

        monkeypatch.setenv("LNB_CLIENT_SECRET", "sandbox-secret")
        assert _run("inventory_changes_sync", instance).success
        assert _lnb_stock(deployed)[key] == quantity + 4


def test_the_overlap_reads_a_change_the_search_index_showed_late(
        deployed: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    lag = 3
    with dg.DagsterInstance.ephemeral() as instance:
        variant, key, quantity, paris, amsterdam = _stocked_at_both(_full_sync(instance))[0]
        _configure(deployed, order_search_lag_seconds=lag)
        _set_available(deployed, variant, PARIS, paris + 6)
        hidden = _run("inventory_changes_sync", instance)
        assert hidden.success
        assert asset_metadata(hidden, "lnb_stock_changes_push")["levels_changed"] == 0
        assert _lnb_stock(deployed)[key] == quantity
        time.sleep(lag + 1)
        assert _run("inventory_changes_sync", instance).success
        assert _lnb_stock(deployed)[key] == quantity + 6


def test_a_full_sync_after_stock_changes_finds_nothing_to_correct_and_resets_the_cursor(
        deployed: Sandbox, tmp_path: Path) -> None:
    with dg.DagsterInstance.ephemeral() as instance:
        variant, key, quantity, paris, amsterdam = _stocked_at_both(_full_sync(instance))[0]
        _set_available(deployed, variant, AMSTERDAM, amsterdam + 9)
        assert _run("inventory_changes_sync", instance).success
        before = len(_pushes(deployed))
        reconciliation = _full_sync(instance)
        assert _pushed_since(deployed, before) == []
        assert check_evaluation(reconciliation, "full_sync_found_nothing_to_correct").passed
        mirror = load_mirror(tmp_path / "stock_mirror")
        read_started = asset_metadata(reconciliation, "shopify_inventory_levels")["read_started_at"]
        assert mirror is not None and mirror.read_at.timestamp() == read_started
        assert _lnb_stock(deployed)[key] == quantity + 9


def _set_in_lnb(sandbox: Sandbox, key: str, quantity: int) -> None:
    """Stock edited in LNB by hand: something only a full sync sees."""
    token = requests.post(f"{sandbox.lnb_base_url}/auth/token", timeout=10, json={
        "grant_type": "client_credentials", "client_id": "sandbox-client", "client_secret": "sandbox-secret",
    }).json()["access_token"]
    requests.post(f"{sandbox.lnb_base_url}/inventory/ean", params={"access_token": token}, timeout=10,
                  json={"ean13": key, "in_stock": quantity}).raise_for_status()


def test_a_full_sync_reports_keys_it_had_to_correct_while_changes_were_flowing(deployed: Sandbox) -> None:
    with dg.DagsterInstance.ephemeral() as instance:
        (variant, _, _, paris, _), (_, key, quantity, _, _) = _stocked_at_both(_full_sync(instance))[:2]
        _set_available(deployed, variant, PARIS, paris + 1)
        assert _run("inventory_changes_sync", instance).success
        _set_in_lnb(deployed, key, quantity + 100)
        reconciliation = _full_sync(instance)
        evaluation = check_evaluation(reconciliation, "full_sync_found_nothing_to_correct")
        assert not evaluation.passed
        assert evaluation.metadata["keys_corrected"].value == 1
        assert _lnb_stock(deployed)[key] == quantity


def test_full_syncs_without_stock_changes_between_them_report_no_correction(deployed: Sandbox) -> None:
    """With the stock changes sensor off, the full sync is the only path: what it pushes is not a miss."""
    with dg.DagsterInstance.ephemeral() as instance:
        _, key, quantity, _, _ = _stocked_at_both(_full_sync(instance))[0]
        _set_in_lnb(deployed, key, quantity + 100)
        evaluation = check_evaluation(_full_sync(instance), "full_sync_found_nothing_to_correct")
        assert evaluation.passed and evaluation.metadata["keys_corrected"].value == 0
        assert _lnb_stock(deployed)[key] == quantity


def test_the_sensor_asks_shopify_only_after_a_full_sync_and_launches_on_a_change(
        deployed: Sandbox, tmp_path: Path) -> None:
    resources = {"shopify": ShopifyResource(shop_url=deployed.shopify_url, access_token="sandbox-token"),
                 "inventory_settings": InventorySettings(state_dir=str(tmp_path / "stock_mirror"))}
    with dg.DagsterInstance.ephemeral() as instance:
        def tick() -> dg.RunRequest | dg.SkipReason:
            with dg.build_sensor_context(instance=instance, resources=resources) as context:
                return shopify_stock_changes_sensor(context)

        first = tick()
        assert isinstance(first, dg.SkipReason) and first.skip_message == NO_MIRROR
        variant, _, _, paris, _ = _stocked_at_both(_full_sync(instance))[0]
        time.sleep(1)
        quiet = tick()
        # The overlap re-reads the last seconds before the full read, which held no change here.
        assert isinstance(quiet, dg.SkipReason) and quiet.skip_message.startswith("No stock change")
        _set_available(deployed, variant, PARIS, paris + 1)
        launch = tick()
        assert isinstance(launch, dg.RunRequest) and launch.run_key


def _launch(processes: Processes, job: str, console: Path) -> subprocess.Popen[bytes]:
    """``dg launch --job`` in a new session, as an operator runs it: the run queue is not involved,
    so only the pool keeps the two pushes apart."""
    env = {**os.environ, "VIRTUAL_ENV": str(BIN.parent), "PATH": f"{BIN}:{os.environ['PATH']}"}
    with console.open("wb") as log:
        process = subprocess.Popen([str(BIN / "dg"), "launch", "--job", job], cwd=REPO_ROOT, env=env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    processes.append(process)
    return process


def _step_interval(instance: dg.DagsterInstance, job: str, step: str) -> tuple[datetime, datetime]:
    """When ``step`` of ``job``'s latest successful run started and ended."""
    run = instance.get_runs(dg.RunsFilter(job_name=job, statuses=[dg.DagsterRunStatus.SUCCESS]), limit=1)[0]
    moments = {record.event_log_entry.dagster_event_type: datetime.fromtimestamp(record.event_log_entry.timestamp)
               for record in instance.get_records_for_run(run.run_id).records
               if record.event_log_entry.step_key == step and record.event_log_entry.dagster_event_type in (
                   dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS)}
    return moments[dg.DagsterEventType.STEP_START], moments[dg.DagsterEventType.STEP_SUCCESS]


def test_a_full_sync_and_stock_changes_launched_together_push_one_after_the_other_and_once(
        deployed: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, processes: Processes) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "lnb_pipeline" / "deploy" / "dagster.local.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.get() as instance:
        variant, key, quantity, paris, _ = _stocked_at_both(_full_sync(instance))[0]
        _set_available(deployed, variant, PARIS, paris + 5)
        before = len(_pushes(deployed))
        launched = [_launch(processes, job, tmp_path / f"{job}.log")
                    for job in ("inventory_changes_sync", "inventory_sync")]
        for process in launched:
            assert process.wait(timeout=300) == 0, (tmp_path / "inventory_sync.log").read_text()[-3000:]
        changes = _step_interval(instance, "inventory_changes_sync", "lnb_stock_changes_push")
        full = _step_interval(instance, "inventory_sync", "lnb_stock_push")
    assert changes[1] <= full[0] or full[1] <= changes[0], (changes, full)
    assert [item for item in _pushed_since(deployed, before) if item["ean13"] == key] == [
        {"ean13": key, "in_stock": quantity + 5}]
    assert _lnb_stock(deployed)[key] == quantity + 5
