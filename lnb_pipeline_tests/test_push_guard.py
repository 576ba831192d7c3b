"""Preview, then push: the push guard and the `inventory_preview` job.

The guard's arithmetic is tested on hand-made preview frames, without Dagster. Then real runs of the
deployed jobs against the sandbox: a Shopify read that lost most of the stock is blocked and LNB
keeps its stock, until a run confirms it with the run config the check's description gives (parsed
from that very text); the demo passes the guard on its first push and on the schedule afterwards; the
preview job never writes to LNB; and the lists the UI shows carry names and links, cut at
``LIST_ROWS_SHOWN`` with the total beside them and the rest in the task log.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import pytest
import requests
import yaml
from conftest import reset_sandbox
from helpers import asset_metadata, check_evaluation, check_metadata, lnb_get

from lnb_pipeline.definitions import defs
from lnb_pipeline.defs.inventory import schedules
from lnb_pipeline.defs.inventory.assets import (
    CONFIRM_PUSH_RUN_CONFIG,
    LIST_ROWS_SHOWN,
    PUSH_GUARD_CHECK,
)
from lnb_pipeline.rules.stock import PushGuard, build_preview, push_guard
from lnb_pipeline.sandbox import Sandbox
from lnb_pipeline.sandbox.generators import with_check_digit
from lnb_pipeline.settings import SETTINGS

WRITES_TO_LNB_PREFIX = "POST /multi/inventory"
LNB_READS = {"POST /auth/token", "GET /inventory"}
"""Every LNB request a stock preview makes: a token, then LNB's stock."""


# --- the arithmetic -----------------------------------------------------------------------------

def _preview(lnb: dict[str, int | None], new: dict[str, int], excluded: tuple[str, ...] = ()) -> pl.DataFrame:
    return build_preview(
        pl.DataFrame({"key": list(new), "quantity": list(new.values())}, schema={"key": pl.String, "quantity": pl.Int64}),
        pl.DataFrame({"key": list(lnb), "in_stock": list(lnb.values())}, schema={"key": pl.String, "in_stock": pl.Int64}),
        excluded_keys=excluded)


def test_guard_counts_only_what_lnb_holds_and_the_push_would_change() -> None:
    """A key new to LNB changes nothing there; LNB keeps a key missing from Shopify or of an excluded variant."""
    preview = _preview(
        {"SAME": 4, "DOWN": 10, "WIPED": 6, "GONE": 9, "DUP": 5, "BLANK": None, "NEGATIVE": -3},
        {"SAME": 4, "DOWN": 7, "WIPED": 0, "NEW": 50, "BLANK": 0, "NEGATIVE": 0},
        excluded=("DUP",))

    guard = push_guard(preview, max_changed_percent=50, max_zeroed_percent=10)

    assert guard == PushGuard(keys_in_lnb=7, keys_changed=4, units_in_lnb=34, units_going_to_zero=6,
                              max_changed_percent=50, max_zeroed_percent=10)
    assert (round(guard.changed_percent, 2), round(guard.zeroed_percent, 2)) == (57.14, 17.65)
    assert (guard.too_many_changed, guard.too_many_zeroed, guard.within_limits) == (True, True, False)


@pytest.mark.parametrize(("max_changed", "max_zeroed", "changed_blocks", "zeroed_blocks"), [
    (50, 25, False, False),
    (49, 25, True, False),
    (50, 24, False, True),
    (0, 0, True, True),
])
def test_a_share_exactly_at_its_limit_passes(max_changed: int, max_zeroed: int, changed_blocks: bool,
                                             zeroed_blocks: bool) -> None:
    """2 of 4 keys change (50 %) and 5 of 20 units go to zero (25 %)."""
    guard = push_guard(_preview({"A": 5, "B": 5, "C": 5, "D": 5}, {"A": 0, "B": 7, "C": 5, "D": 5}),
                       max_changed, max_zeroed)
    assert (guard.keys_changed, guard.keys_in_lnb, guard.units_going_to_zero, guard.units_in_lnb) == (2, 4, 5, 20)
    assert (guard.too_many_changed, guard.too_many_zeroed) == (changed_blocks, zeroed_blocks)
    assert guard.within_limits is not (changed_blocks or zeroed_blocks)


def test_nothing_to_wipe_in_an_empty_lnb_passes_any_limit() -> None:
    """A first push into an LNB without stock rows: every key is new, no share of nothing can be lost."""
    guard = push_guard(_preview({}, {"A": 3, "B": 0}), max_changed_percent=0, max_zeroed_percent=0)
    assert (guard.keys_in_lnb, guard.units_in_lnb, guard.changed_percent, guard.zeroed_percent) == (0, 0, 0.0, 0.0)
    assert guard.within_limits


def test_the_defaults_are_strict_enough_to_catch_a_wipe() -> None:
    """The demo's first push changes 38 % of LNB's keys and zeroes 0.4 % of its units; a lost read zeroes most."""
    assert (SETTINGS["LNB_STOCK_GUARD_MAX_CHANGED_PERCENT"].default,
            SETTINGS["LNB_STOCK_GUARD_MAX_ZEROED_PERCENT"].default) == (50, 10)


# --- real runs against the sandbox --------------------------------------------------------------

PARIS, LYON, CLOSED = 1, 2, 3
SIZES = ("XS", "S", "M", "L", "XL", "XXL", "3XL", "4XL", "5XL", "6XL")
HEALTHY = {size: 4 + index for index, size in enumerate(SIZES)}
"""What each size really has in Shopify (summed over Paris and Lyon), and what LNB holds."""


def _ean(index: int) -> str:
    return with_check_digit(f"37600{index:07d}")


def _stock_scenario(available: dict[str, dict[int, int] | None], lnb: dict[str, int]) -> dict[str, Any]:
    """One sweater in ``SIZES``, each with its ``available`` per location id (None: the variant is gone
    from Shopify), and LNB holding ``lnb`` units per size."""
    variants = [{"id": 100 + index, "title": size, "sku": f"SW-{size}", "barcode": _ean(index), "price": "90.00",
                 "tracked": True, "stock": {str(location): {"available": units} for location, units in levels.items()}}
                for index, (size, levels) in enumerate(available.items()) if levels is not None]
    return {
        "shop": {"name": "Guard Test", "domain": "guard-test.myshopify.com", "currency": "EUR"},
        "locations": [{"id": PARIS, "name": "Paris", "active": True}, {"id": LYON, "name": "Lyon", "active": True},
                      {"id": CLOSED, "name": "Closed Depot", "active": False}],
        "products": [{"id": 7, "title": "Merino Sweater", "status": "ACTIVE", "variants": variants}],
        "lnb": {"inventory": [{"ean13": _ean(SIZES.index(size)), "sku": f"SW-{size}", "in_stock": units}
                              for size, units in lnb.items()]},
    }


def _healthy_levels(size: str) -> dict[int, int]:
    return {PARIS: HEALTHY[size] - 1, LYON: 1}


LOST_READS = {
    "most levels read as 0": {size: ({PARIS: 0, LYON: 0} if index >= 2 else _healthy_levels(size))
                              for index, size in enumerate(SIZES)},
    "most levels gone": {size: ({CLOSED: HEALTHY[size]} if index >= 2 else _healthy_levels(size))
                         for index, size in enumerate(SIZES)},
}
"""Shopify reads that lost 8 sizes' stock of 10: zero everywhere, or left only at an inactive location."""


def _run(job: str, run_config: dict[str, Any] | None = None) -> dg.ExecuteInProcessResult:
    """The deployed job, configured by the environment as in production."""
    return defs().resolve_job_def(job).execute_in_process(run_config=run_config, instance=dg.DagsterInstance.ephemeral(),
                                                          raise_on_error=False)


def _lnb_stock(sandbox: Sandbox) -> dict[str, int]:
    return {row["ean13"]: row["in_stock"] for row in lnb_get(sandbox, "/inventory")}


def _lnb_requests(sandbox: Sandbox) -> dict[str, int]:
    """LNB's requests since the last reset, by method and path."""
    return requests.get(f"{sandbox.lnb.url}/_sandbox/stats", timeout=10).json()["requests"]


def _materialized(result: dg.ExecuteInProcessResult) -> list[str]:
    return [event.asset_key.to_user_string() for event in result.get_asset_materialization_events()]


@pytest.fixture
def defaults(sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    """The sandbox, task logs in ``tmp_path``, and the guard's limits at their defaults."""
    monkeypatch.setenv("LNB_TASK_LOG_DIR", str(tmp_path))
    for name in ("LNB_STOCK_GUARD_MAX_CHANGED_PERCENT", "LNB_STOCK_GUARD_MAX_ZEROED_PERCENT"):
        monkeypatch.delenv(name, raising=False)
    return sandbox


@pytest.mark.parametrize("lost", LOST_READS.values(), ids=LOST_READS.keys())
def test_a_read_that_lost_most_stock_is_blocked_until_a_run_confirms_it(defaults: Sandbox,
                                                                         lost: dict[str, dict[int, int]]) -> None:
    """A broken Shopify read must never wipe LNB's stock: the preview shows it, the push does not run,
    and only a run whose config confirms it (the description's own text) writes the change."""
    sandbox = defaults
    reset_sandbox(sandbox, _stock_scenario(lost, HEALTHY))
    before = _lnb_stock(sandbox)

    blocked = _run("inventory_sync")

    assert not blocked.success
    evaluation = check_evaluation(blocked, PUSH_GUARD_CHECK)
    assert (evaluation.passed, evaluation.severity, evaluation.blocking) == (False, dg.AssetCheckSeverity.ERROR, True)
    assert "lnb_stock_push" not in _materialized(blocked)
    assert "lnb_stock_push" not in {event.step_key for event in blocked.all_events if event.is_step_start}
    assert _lnb_stock(sandbox) == before
    assert not [call for call in _lnb_requests(sandbox) if call.startswith(WRITES_TO_LNB_PREFIX)]
    wiped = sum(units for size, units in HEALTHY.items() if SIZES.index(size) >= 2)
    total = sum(HEALTHY.values())
    assert evaluation.description == (
        f"Push blocked: 8 of LNB's 10 keys would change (80.0%, limit 50%); {wiped} of LNB's {total} units would "
        f"go to zero ({100 * wiped / total:.1f}%, limit 10%). Read the preview; if this change is right, launch "
        f"inventory_sync again with the run config `{CONFIRM_PUSH_RUN_CONFIG}`.")
    assert check_metadata(blocked, PUSH_GUARD_CHECK) == {
        "keys_changed": 8, "keys_in_lnb": 10, "keys_changed_percent": 80.0, "max_keys_changed_percent": 50,
        "units_going_to_zero": wiped, "units_in_lnb": total, "units_going_to_zero_percent": round(100 * wiped / total, 1),
        "max_units_going_to_zero_percent": 10, "confirmed_in_run_config": False}
    preview = asset_metadata(blocked, "lnb_stock_preview")
    assert (preview["keys_changed"], preview["units_going_to_zero"]) == (8, wiped)

    confirmed = _run("inventory_sync", yaml.safe_load(CONFIRM_PUSH_RUN_CONFIG))

    assert confirmed.success
    assert _lnb_stock(sandbox) == {**before, **{_ean(index): 0 for index in range(2, len(SIZES))}}
    passed = check_evaluation(confirmed, PUSH_GUARD_CHECK)
    assert passed.passed
    assert passed.description.startswith("Beyond the push guard's limits, pushed as confirmed by run config")
    assert check_metadata(confirmed, PUSH_GUARD_CHECK)["confirmed_in_run_config"] is True
    assert asset_metadata(confirmed, "lnb_stock_push")["keys_pushed"] == 8

    afterwards = _run("inventory_sync")

    assert afterwards.success
    assert check_metadata(afterwards, PUSH_GUARD_CHECK)["keys_changed"] == 0


def test_most_quantities_moving_at_once_is_blocked_even_without_zeros(defaults: Sandbox) -> None:
    """A location counted twice, a buffer dropped: a wall of changes deserves a look too."""
    sandbox = defaults
    doubled = {size: {PARIS: 2 * HEALTHY[size] - 1, LYON: 1} for size in SIZES}
    reset_sandbox(sandbox, _stock_scenario(doubled, HEALTHY))

    blocked = _run("inventory_sync")

    assert not blocked.success
    figures = check_metadata(blocked, PUSH_GUARD_CHECK)
    assert (figures["keys_changed_percent"], figures["units_going_to_zero"]) == (100.0, 0)
    assert _lnb_stock(sandbox) == {_ean(index): units for index, units in enumerate(HEALTHY.values())}


def test_a_read_that_lost_most_variants_leaves_their_stock_in_lnb(defaults: Sandbox) -> None:
    """Keys missing from Shopify are never pushed, so losing variants cannot wipe LNB either."""
    sandbox = defaults
    gone = {size: (_healthy_levels(size) if index < 2 else None) for index, size in enumerate(SIZES)}
    reset_sandbox(sandbox, _stock_scenario(gone, HEALTHY))

    result = _run("inventory_sync")

    assert result.success
    assert asset_metadata(result, "lnb_stock_preview")["keys_missing_from_shopify"] == 8
    assert _lnb_stock(sandbox) == {_ean(index): units for index, units in enumerate(HEALTHY.values())}


def test_the_demo_passes_the_guard_on_its_first_push_and_on_the_schedule_afterwards(defaults: Sandbox) -> None:
    """``make run``'s first click and the 30-minute schedule after it must not need a confirmation."""
    sandbox = defaults
    before = _lnb_stock(sandbox)

    first = _run("inventory_sync")

    assert first.success
    figures = check_metadata(first, PUSH_GUARD_CHECK)
    assert check_evaluation(first, PUSH_GUARD_CHECK).passed
    assert figures["keys_changed"] > 100 and figures["keys_changed_percent"] < 50
    assert sum(_lnb_stock(sandbox)[key] != units for key, units in before.items()) == figures["keys_changed"]

    request = schedules.inventory_sync_schedule(dg.build_schedule_context())
    assert isinstance(request, dg.RunRequest)
    scheduled = _run("inventory_sync", request.run_config or None)

    assert scheduled.success
    assert check_evaluation(scheduled, PUSH_GUARD_CHECK).passed
    assert check_metadata(scheduled, PUSH_GUARD_CHECK)["keys_changed"] == 0


def test_inventory_preview_reads_and_compares_but_never_writes_to_lnb(defaults: Sandbox) -> None:
    """The preview of the demo shows 160-odd changes; LNB sees two reads and keeps its stock."""
    sandbox = defaults
    before = _lnb_stock(sandbox)
    job = defs().resolve_job_def("inventory_preview")
    assert "lnb_stock_push" not in {node.name for node in job.graph.node_defs}
    assert "without doing it" in (job.description or "")

    result = _run("inventory_preview")

    assert result.success
    assert set(_materialized(result)) == {"shopify_locations", "shopify_inventory_levels", "available_to_sell",
                                          "lnb_stock_preview"}
    assert asset_metadata(result, "lnb_stock_preview")["keys_changed"] > 100
    assert check_evaluation(result, PUSH_GUARD_CHECK).passed
    assert set(_lnb_requests(sandbox)) == LNB_READS
    assert _lnb_stock(sandbox) == before


def test_inventory_preview_of_a_blocked_push_writes_nothing_even_when_confirmed(defaults: Sandbox) -> None:
    """The guard fails the preview too, saying the push would be blocked; confirming it lets the
    preview's check pass, and still nothing is written: the preview job has no push."""
    sandbox = defaults
    reset_sandbox(sandbox, _stock_scenario(LOST_READS["most levels read as 0"], HEALTHY))
    before = _lnb_stock(sandbox)

    blocked = _run("inventory_preview")
    confirmed = _run("inventory_preview", yaml.safe_load(CONFIRM_PUSH_RUN_CONFIG))

    assert (blocked.success, confirmed.success) == (False, True)
    assert not check_evaluation(blocked, PUSH_GUARD_CHECK).passed
    assert check_evaluation(confirmed, PUSH_GUARD_CHECK).passed
    assert set(_lnb_requests(sandbox)) == LNB_READS
    assert _lnb_stock(sandbox) == before


def test_lists_name_every_key_up_to_the_bound_with_the_total_beside_them_and_all_in_the_task_log(
        defaults: Sandbox, tmp_path: Path) -> None:
    """A brand launching a collection of 1 001 variants LNB does not know yet: the UI lists the first
    ``LIST_ROWS_SHOWN`` by name, says so, and the preview's task log has every one."""
    sandbox = defaults
    count = LIST_ROWS_SHOWN + 1
    products = [{"id": product, "title": f"Style {product}", "status": "ACTIVE", "variants": [
        {"id": 1000 * product + number, "title": f"Size {number}", "sku": f"ST{product}-{number}",
         "barcode": _ean(1000 * product + number), "price": "50.00", "tracked": True,
         "stock": {str(PARIS): {"available": number}}} for number in range(1, 92)]} for product in range(1, 12)]
    assert sum(len(product["variants"]) for product in products) == count
    reset_sandbox(sandbox, {**_stock_scenario({}, {}), "products": products})

    result = _run("inventory_preview")

    assert result.success
    preview = asset_metadata(result, "lnb_stock_preview")
    assert preview["keys_new_to_lnb"] == count
    listed = [record.data for record in preview["keys_new_to_lnb_list"].records]
    assert len(listed) == LIST_ROWS_SHOWN
    assert listed[0] == {"key": _ean(1001), "variant": "Style 1 - Size 1", "SKU": "ST1-1", "barcode": _ean(1001),
                         "new quantity": 1, "Shopify admin": f"{sandbox.shopify_url}/admin/products/1/variants/1001"}
    assert preview["keys_new_to_lnb_not_listed"] == f"1 more row, in the task log {preview['task_log']}"
    assert (preview["keys_changed"], preview["keys_changed_list"].records) == (0, [])
    assert "keys_changed_not_listed" not in preview
    task_log = pl.read_csv(preview["task_log"], infer_schema=False)
    assert Path(preview["task_log"]) == tmp_path / result.run_id / "lnb_stock_preview.csv"
    assert task_log.height == count
    assert task_log.filter(pl.col("key") == _ean(11091)).select("title", "sku", "status").row(0) == (
        "Style 11 - Size 91", "ST11-91", "new_to_lnb")
