"""A run that succeeded but left something wrong says so in the runs list: the tags ``lnb_run_problems`` adds.

The runs are the deployed jobs on the demo sandbox, on a real instance; the sensor is evaluated as
the daemon would on each finished run, and once by the daemon itself on a ``make run`` instance.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from conftest import Processes
from helpers import DEMO_BLOCKED

from lnb_pipeline.definitions import defs
from lnb_pipeline.defs.run_problems import (
    FAILED_CHECKS_TAG,
    PROBLEMS_TAG,
    lnb_run_problems,
    problems,
)
from lnb_pipeline.sandbox import Sandbox
from lnb_pipeline.sandbox.generators import DEMO_CASES

REPO = Path(__file__).resolve().parents[1]
ORDER_CHECKS_FAILED_ON_DEMO = ("no_order_blocked, order_lines_have_codes, order_lines_match_shopify_variants, "
                               "retailer_references_valid")
DEMO_BAD_KEYS = sum(len(DEMO_CASES[case]) for case in (
    "variant_without_barcode", "variant_without_barcode_and_sku", "invalid_ean13", "duplicate_barcode"))
"""Variants the demo excludes for their EAN13: none, an invalid one, or one shared (every sharer)."""


@pytest.fixture
def instance(sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("LNB_TASK_LOG_DIR", str(tmp_path / "task_logs"))
    monkeypatch.setenv("SHOPIFY_ORDER_LOOKUP_WAIT_SECONDS", "0")
    with dg.instance_for_test() as test_instance:
        yield test_instance


def _run(instance: dg.DagsterInstance, job: str, assets: list[str] | None = None) -> str:
    """A successful run of a deployed job (of ``assets`` only when given), configured by the environment."""
    result = defs().resolve_job_def(job).execute_in_process(
        instance=instance, asset_selection=[dg.AssetKey(asset) for asset in assets] if assets else None)
    assert result.success
    return result.run_id


def _evaluate_sensor(instance: dg.DagsterInstance, run_id: str) -> dg.SkipReason:
    """``lnb_run_problems`` on a run that succeeded, as the daemon evaluates it."""
    run = instance.get_run_by_id(run_id)
    assert run is not None
    [success] = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.RUN_SUCCESS).records
    context = dg.build_run_status_sensor_context(
        sensor_name="lnb_run_problems", dagster_event=success.event_log_entry.dagster_event,
        dagster_instance=instance, dagster_run=run)
    return lnb_run_problems(context)


def _problem_tags(instance: dg.DagsterInstance, run_id: str) -> dict[str, str]:
    run = instance.get_run_by_id(run_id)
    assert run is not None
    return {key: value for key, value in run.tags.items() if key in (PROBLEMS_TAG, FAILED_CHECKS_TAG)}


def test_an_export_that_left_orders_blocked_is_tagged_with_their_count(instance: dg.DagsterInstance) -> None:
    """The demo's hourly export: its exportable orders go out, the others stay blocked, the run succeeds."""
    run_id = _run(instance, "orders_export")

    assert _evaluate_sensor(instance, run_id) == dg.SkipReason(
        f"Tagged run {run_id} (orders_export): {len(DEMO_BLOCKED)} orders blocked")

    assert _problem_tags(instance, run_id) == {
        PROBLEMS_TAG: f"{len(DEMO_BLOCKED)} orders blocked",
        FAILED_CHECKS_TAG: ORDER_CHECKS_FAILED_ON_DEMO,
    }


def test_a_stock_sync_that_excluded_variants_is_tagged_with_their_count(instance: dg.DagsterInstance) -> None:
    run_id = _run(instance, "inventory_sync")

    assert _evaluate_sensor(instance, run_id) == dg.SkipReason(
        f"Tagged run {run_id} (inventory_sync): {DEMO_BAD_KEYS} variants with a bad key")

    assert _problem_tags(instance, run_id) == {
        PROBLEMS_TAG: f"{DEMO_BAD_KEYS} variants with a bad key",
        FAILED_CHECKS_TAG: "ean13_check_digits_valid, keys_present, keys_unique",
    }


def test_a_run_whose_checks_all_passed_gets_no_tag(instance: dg.DagsterInstance) -> None:
    run_id = _run(instance, "inventory_sync", ["shopify_locations", "shopify_inventory_levels"])

    skipped = _evaluate_sensor(instance, run_id)

    assert skipped == dg.SkipReason(f"Run {run_id} (inventory_sync): every check passed")
    assert _problem_tags(instance, run_id) == {}


def _failed(check: str, description: str | None) -> dg.AssetCheckEvaluation:
    return dg.AssetCheckEvaluation(asset_key=dg.AssetKey("lnb_orders_for_export"), check_name=check, passed=False,
                                   severity=dg.AssetCheckSeverity.WARN, description=description)


def test_the_summary_counts_each_problem_once_and_names_what_it_cannot_count() -> None:
    """Breakdowns by reason are not counted again; a check without a count, or unknown here, shows by name."""
    assert problems([_failed("no_order_blocked", "1 order blocked now: Boutique Lumière (LNB-0006)."),
                     _failed("retailer_references_valid", "1 order blocked now by their retailer reference."),
                     _failed("every_push_item_accepted", "LNB rejected 2 of the 40 keys sent."),
                     _failed("no_export_failures", None),
                     _failed("stock_push_guard", "Blocked: 90 of 100 keys would change.")]) == \
        "1 order blocked · 2 items rejected by LNB · no_export_failures failed · stock_push_guard failed"
    assert problems([_failed("order_lines_have_codes", "3 orders blocked now by 3 lines without EAN13 or SKU.")]) == \
        "order_lines_have_codes failed"
    assert problems([_failed("keys_present", "5 of 439 variants excluded: no key."),
                     _failed("keys_unique", "6 of 439 variants excluded: key shared.")]) == \
        "11 variants with a bad key"


# --- the daemon ---------------------------------------------------------------------------------

def _start(processes: Processes, console: Path, command: list[str]) -> subprocess.Popen[bytes]:
    with console.open("wb") as log:
        process = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    processes.append(process)
    return process


def _wait_for(condition: Any, what: str, process: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, f"the daemon ended (exit {process.returncode}) before {what}"
        assert time.monotonic() < deadline, f"no {what} within {timeout} s"
        time.sleep(0.5)


def test_the_daemon_tags_a_run_launched_from_the_ui_queue(
        sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, processes: Processes) -> None:
    """Deployed as ``make run`` deploys it: the sensor runs by default and tags the queued export once it succeeds."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "lnb_pipeline" / "deploy" / "dagster.local.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("SHOPIFY_ORDER_LOOKUP_WAIT_SECONDS", "0")
    monkeypatch.delenv("LNB_TASK_LOG_DIR", raising=False)
    scripts = Path(sys.executable).parent
    subprocess.run([str(scripts / "dagster"), "sensor", "stop", "lnb_orders_sensor", "-w", "workspace.yaml"],
                   cwd=REPO, check=True, capture_output=True, timeout=120)
    console = tmp_path / "daemon.log"
    daemon = _start(processes, console, [str(scripts / "dagster-daemon"), "run", "-w", "workspace.yaml"])
    _wait_for(lambda: "Initiating lnb_run_problems" in console.read_text(errors="replace"),
              "first tick of lnb_run_problems", daemon)

    subprocess.run([str(scripts / "dagster"), "job", "launch", "-w", "workspace.yaml", "-j", "orders_export"],
                   cwd=REPO, check=True, capture_output=True, timeout=120)
    with dg.DagsterInstance.get() as instance:
        [queued] = instance.get_runs(dg.RunsFilter(job_name="orders_export"))
        _wait_for(lambda: PROBLEMS_TAG in _problem_tags(instance, queued.run_id), "problems tag", daemon)
        run = instance.get_run_by_id(queued.run_id)
        tags = _problem_tags(instance, queued.run_id)

    assert run is not None and run.status == dg.DagsterRunStatus.SUCCESS
    assert tags == {PROBLEMS_TAG: f"{len(DEMO_BLOCKED)} orders blocked", FAILED_CHECKS_TAG: ORDER_CHECKS_FAILED_ON_DEMO}
