"""The stock flow end to end: real Dagster runs against the sandbox over HTTP.

Each test loads a scenario small enough that LNB's resulting stock can be worked out by hand, runs
the flow (``dg.materialize`` with explicit resources, or the ``inventory_sync`` job configured by
environment variables) and asserts LNB's stock exactly through LNB's own ``GET /inventory``: what
the buyers see is the only result that matters.
"""

from __future__ import annotations

import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import pytest
import requests
from conftest import reset_sandbox
from helpers import (
    REPO_ROOT,
    asset_metadata,
    check_evaluation,
    check_metadata,
    lnb_get,
    reloaded_under,
)

from lnb_pipeline.definitions import defs
from lnb_pipeline.defs.inventory import schedules
from lnb_pipeline.defs.inventory.assets import (
    PUSH_POOL,
    available_to_sell,
    lnb_stock_preview,
    lnb_stock_push,
    shopify_inventory_levels,
    shopify_locations,
)
from lnb_pipeline.defs.inventory.checks import (
    ean13_check_digits_valid,
    excluded_share_within_limit,
    keys_present,
    keys_unique,
)
from lnb_pipeline.defs.inventory.settings import InventorySettings
from lnb_pipeline.defs.lenewblack.resources import LeNewBlackResource
from lnb_pipeline.defs.shopify.resources import ShopifyResource
from lnb_pipeline.sandbox import Sandbox
from lnb_pipeline.sandbox.lnb.api import LNB_BASE_PATH

PARIS, AMSTERDAM, OLD_DEPOT = 1, 2, 3
LOCATIONS = [
    {"id": PARIS, "name": "Paris Warehouse", "active": True},
    {"id": AMSTERDAM, "name": "Amsterdam Store", "active": True},
    {"id": OLD_DEPOT, "name": "Old Depot", "active": False},
]
EAN_1, EAN_2, EAN_3, EAN_4, EAN_9 = "3760000000017", "3760000000024", "3760000000031", "3760000000048", "3760000000093"
BAD_CHECK_DIGIT = "3760000000025"
"""EAN_2 with its check digit off by one."""
UPC_A, UPC_AS_EAN13 = "840012345672", "0840012345672"

PREVIEW_ASSETS = [shopify_locations, shopify_inventory_levels, available_to_sell, lnb_stock_preview]
STOCK_CHECKS = [keys_present, ean13_check_digits_valid, keys_unique, excluded_share_within_limit]
FULL_REFRESH = {"ops": {"lnb_stock_push": {"config": {"full_refresh": True}}}}
PUSH_PREFIX = f"{LNB_BASE_PATH}/multi/inventory/"
LOG_COLUMNS = ("key", "variant_id", "title", "outcome", "quantity", "detail")
NO_SHARE_LIMIT = 100
"""LNB_STOCK_MAX_INVALID_PERCENT for tests of one row's rule, whose tiny scenarios are mostly bad rows."""
NO_GUARD = {"guard_max_changed_percent": 100, "guard_max_zeroed_percent": 100}
"""The push guard's limits in ``_materialize``: these scenarios are small enough that a push changes
most of LNB. The guard has its own tests (test_push_guard.py)."""


# --- scenarios ----------------------------------------------------------------------------------

def _variant(variant_id: int, barcode: str | None, stock: dict[int, int], *, sku: str | None = None,
             tracked: bool = True) -> dict[str, Any]:
    """A Shopify variant whose ``available`` per location id is ``stock``."""
    return {"id": variant_id, "title": f"Variant {variant_id}", "sku": sku, "barcode": barcode, "price": "10.00",
            "tracked": tracked,
            "stock": {str(location): {"available": available} for location, available in stock.items()}}


def _load(sandbox: Sandbox, variants: list[dict[str, Any]], lnb_stock: dict[str, int], key: str = "ean13") -> None:
    """Both servers on one product with ``variants``, and LNB holding ``lnb_stock`` by ``key``."""
    other = "sku" if key == "ean13" else "ean13"
    reset_sandbox(sandbox, {
        "shop": {"name": "Flow Test", "domain": "flow-test.myshopify.com", "currency": "EUR"},
        "locations": LOCATIONS,
        "products": [{"id": 1, "title": "Test Shirt", "status": "ACTIVE", "variants": variants}],
        "lnb": {"inventory": [{key: code, other: None, "in_stock": quantity}
                              for code, quantity in lnb_stock.items()]},
    })


def _gid(variant_id: int) -> str:
    return f"gid://shopify/ProductVariant/{variant_id}"


def _title(variant_id: int) -> str:
    """The variant's display name as Shopify gives it: product title, then variant title."""
    return f"Test Shirt - Variant {variant_id}"


def _admin(sandbox: Sandbox, variant_id: int) -> str:
    """The variant's page in the (sandbox) Shopify admin; all test variants belong to product 1."""
    return f"{sandbox.shopify_url}/admin/products/1/variants/{variant_id}"


# --- running the flow ---------------------------------------------------------------------------

def _materialize(sandbox: Sandbox, tmp_path: Path, *, push: bool = True, full_refresh: bool = False,
                 batch_size: int = 500, instance: dg.DagsterInstance | None = None,
                 **settings: Any) -> dg.ExecuteInProcessResult:
    """The stock assets and checks (the push too unless ``push=False``), resources built explicitly,
    on ``instance`` (default: an ephemeral one); the push guard off unless ``settings`` set its limits."""
    resources = {
        "shopify": ShopifyResource(shop_url=sandbox.shopify_url, access_token="sandbox-token"),
        "lenewblack": LeNewBlackResource(base_url=sandbox.lnb_base_url, client_id="sandbox-client",
                                         client_secret="sandbox-secret", batch_size=batch_size),
        "inventory_settings": InventorySettings(task_log_dir=str(tmp_path), state_dir=str(tmp_path / "stock_mirror"),
                                                **{**NO_GUARD, **settings}),
    }
    return dg.materialize(
        [*PREVIEW_ASSETS, *([lnb_stock_push] if push else []), *STOCK_CHECKS],
        resources=resources,
        run_config=FULL_REFRESH if full_refresh else None,
        instance=instance or dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def _run_job(run_config: dict[str, Any] | None = None) -> dg.ExecuteInProcessResult:
    """The deployed ``inventory_sync`` job, configured by the environment as in production."""
    job = defs().resolve_job_def("inventory_sync")
    return job.execute_in_process(run_config=run_config, instance=dg.DagsterInstance.ephemeral(),
                                  raise_on_error=False)


# --- reading results ----------------------------------------------------------------------------

def _lnb_stock(sandbox: Sandbox, key: str = "ean13") -> dict[str, int]:
    """LNB's stock per code, read as any API client would."""
    return {row[key]: row["in_stock"] for row in lnb_get(sandbox, "/inventory")}


def _push_calls(sandbox: Sandbox) -> list[tuple[str, list[dict[str, Any]]]]:
    """Every ``POST /multi/inventory/*`` LNB received (retries included): endpoint and items sent."""
    recent = requests.get(f"{sandbox.lnb.url}/_sandbox/requests", timeout=10).json()
    return [(entry["path"].removeprefix(PUSH_PREFIX), entry["variables"]["requests"])
            for entry in recent if entry["method"] == "POST" and entry["path"].startswith(PUSH_PREFIX)]


def _materialized(result: dg.ExecuteInProcessResult) -> list[str]:
    return [event.asset_key.to_user_string() for event in result.get_asset_materialization_events()]


def _records(value: dg.TableMetadataValue) -> list[dict[str, Any]]:
    """A table metadata value's rows, as the UI shows them."""
    return [record.data for record in value.records]


def _task_log(result: dg.ExecuteInProcessResult, tmp_path: Path) -> list[tuple[str | None, ...]]:
    """The push's task log rows; the file must be where the metadata says, under the run's id."""
    path = Path(asset_metadata(result, "lnb_stock_push")["task_log"])
    assert path == tmp_path / result.run_id / "lnb_stock_push.csv"
    log = pl.read_csv(path, infer_schema=False)
    assert tuple(log.columns) == LOG_COLUMNS
    return log.rows()


def _errors(result: dg.ExecuteInProcessResult) -> str:
    """Every error the run's events carry, causes included: what a user reads in the UI."""
    return "\n".join(event.event_specific_data.error.to_string() for event in result.all_events
                     if getattr(event.event_specific_data, "error", None) is not None)


# --- the rules, as LNB ends up seeing them ------------------------------------------------------

def test_stock_is_summed_over_active_locations_with_negative_levels_counting_zero(
        sandbox: Sandbox, tmp_path: Path) -> None:
    """An oversold location must not eat another one's stock, which is still there to sell."""
    _load(sandbox, [
        _variant(1, EAN_1, {PARIS: 5, AMSTERDAM: -3}),
        _variant(2, EAN_2, {PARIS: 4, AMSTERDAM: 6}),
        _variant(3, EAN_3, {PARIS: -2, AMSTERDAM: -1}),
    ], {EAN_1: 1, EAN_2: 0, EAN_3: 4})

    result = _materialize(sandbox, tmp_path)

    assert result.success
    assert _lnb_stock(sandbox) == {EAN_1: 5, EAN_2: 10, EAN_3: 0}
    assert asset_metadata(result, "available_to_sell")["units_available_to_sell"] == 15


@pytest.mark.parametrize(("locations", "expected", "summed_over"), [
    ("", {EAN_1: 7, EAN_2: 6}, "Paris Warehouse, Amsterdam Store"),
    ("Paris Warehouse", {EAN_1: 3, EAN_2: 0}, "Paris Warehouse"),
    ("gid://shopify/Location/2", {EAN_1: 4, EAN_2: 6}, "Amsterdam Store"),
])
def test_locations_are_chosen_by_name_or_id_and_default_to_the_active_ones(
        sandbox: Sandbox, tmp_path: Path, locations: str, expected: dict[str, int], summed_over: str) -> None:
    """Stock at the inactive Old Depot is never counted by default."""
    _load(sandbox, [
        _variant(1, EAN_1, {PARIS: 3, AMSTERDAM: 4, OLD_DEPOT: 20}),
        _variant(2, EAN_2, {AMSTERDAM: 6}),
    ], {EAN_1: 99, EAN_2: 99})

    result = _materialize(sandbox, tmp_path, locations=locations)

    assert result.success
    assert _lnb_stock(sandbox) == expected
    assert asset_metadata(result, "available_to_sell")["locations_summed"] == summed_over


def test_variants_sharing_a_key_are_all_excluded_and_lnb_keeps_its_quantity(sandbox: Sandbox, tmp_path: Path) -> None:
    """LNB could not tell which variant a shared key means; a UPC and its EAN13 are the same key."""
    _load(sandbox, [
        _variant(1, EAN_1, {PARIS: 5}),
        _variant(2, EAN_1, {PARIS: 8}),
        _variant(3, UPC_A, {PARIS: 2}),
        _variant(4, UPC_AS_EAN13, {PARIS: 3}),
        _variant(5, EAN_2, {PARIS: 6}),
    ], {EAN_1: 4, UPC_AS_EAN13: 1, EAN_2: 0})

    result = _materialize(sandbox, tmp_path, max_invalid_percent=NO_SHARE_LIMIT)

    assert result.success
    assert _lnb_stock(sandbox) == {EAN_1: 4, UPC_AS_EAN13: 1, EAN_2: 6}
    evaluation = check_evaluation(result, "keys_unique")
    assert (evaluation.passed, evaluation.severity) == (False, dg.AssetCheckSeverity.ERROR)
    assert check_metadata(result, "keys_unique")["variants_excluded"] == 4
    shared_upc = f"duplicate key {UPC_AS_EAN13}: shared by 2 variants ({_title(3)}, {_title(4)})"
    shared_ean = f"duplicate key {EAN_1}: shared by 2 variants ({_title(1)}, {_title(2)})"
    assert _task_log(result, tmp_path) == [
        (UPC_AS_EAN13, _gid(3), _title(3), "excluded", None, shared_upc),
        (UPC_AS_EAN13, _gid(4), _title(4), "excluded", None, shared_upc),
        (EAN_1, _gid(1), _title(1), "excluded", None, shared_ean),
        (EAN_1, _gid(2), _title(2), "excluded", None, shared_ean),
        (EAN_2, _gid(5), _title(5), "pushed", "6", "LNB had 0"),
    ]


def test_barcodes_are_trimmed_upc_becomes_ean13_and_invalid_ones_are_excluded(
        sandbox: Sandbox, tmp_path: Path) -> None:
    """A bad check digit is a typo that would set another product's stock: it must never reach LNB."""
    _load(sandbox, [
        _variant(1, f"  {EAN_1} ", {PARIS: 5}),
        _variant(2, BAD_CHECK_DIGIT, {PARIS: 7}),
        _variant(3, UPC_A, {PARIS: 4}),
        _variant(4, None, {PARIS: 2}),
        _variant(5, "12345670", {PARIS: 1}),
    ], {EAN_1: 0, BAD_CHECK_DIGIT: 3, UPC_AS_EAN13: 1})

    result = _materialize(sandbox, tmp_path, max_invalid_percent=NO_SHARE_LIMIT)

    assert result.success
    assert _lnb_stock(sandbox) == {EAN_1: 5, BAD_CHECK_DIGIT: 3, UPC_AS_EAN13: 4}
    assert _push_calls(sandbox) == [("ean", [{"ean13": UPC_AS_EAN13, "in_stock": 4}, {"ean13": EAN_1, "in_stock": 5}])]


def test_asset_checks_list_every_offending_variant_by_name_with_its_admin_link(sandbox: Sandbox, tmp_path: Path) -> None:
    """The check reports are where a merchandiser finds which variants to fix in Shopify."""
    _load(sandbox, [
        _variant(1, EAN_1, {PARIS: 5}, sku="OK-1"),
        _variant(2, BAD_CHECK_DIGIT, {PARIS: 7}, sku="TYPO-2"),
        _variant(3, None, {PARIS: 2}, sku="NOBAR-3"),
        _variant(4, "12345670", {PARIS: 1}, sku="EAN8-4"),
    ], {EAN_1: 0})

    result = _materialize(sandbox, tmp_path, max_invalid_percent=NO_SHARE_LIMIT)

    def excluded(variant_id: int, sku: str, barcode: str | None, reason: str) -> dict[str, Any]:
        return {"variant": _title(variant_id), "SKU": sku, "barcode": barcode, "reason": reason,
                "Shopify admin": _admin(sandbox, variant_id)}

    invalid = check_metadata(result, "ean13_check_digits_valid")
    assert invalid["variants_excluded"] == 2
    assert _records(invalid["variants_excluded_list"]) == [
        excluded(2, "TYPO-2", BAD_CHECK_DIGIT, "invalid EAN13 check digit"),
        excluded(4, "EAN8-4", "12345670", "not an EAN13 (8 digits)")]
    assert [(column.name, column.type) for column in invalid["variants_excluded_list"].schema.columns] == [
        ("variant", "string"), ("SKU", "string"), ("barcode", "string"), ("reason", "string"),
        ("Shopify admin", "url")]
    missing = check_metadata(result, "keys_present")
    assert (missing["variants_excluded"], _records(missing["variants_excluded_list"])) == (
        1, [excluded(3, "NOBAR-3", None, "missing barcode")])
    unique = check_metadata(result, "keys_unique")
    assert (unique["variants_excluded"], _records(unique["variants_excluded_list"])) == (0, [])
    assert [check_evaluation(result, name).passed for name in ("ean13_check_digits_valid", "keys_present", "keys_unique")] \
        == [False, False, True]
    assert check_metadata(result, "excluded_share_within_limit") == {
        "variants_with_bad_keys": 3, "variants_read": 4, "bad_keys_percent": 75.0,
        "max_bad_keys_percent": NO_SHARE_LIMIT}
    assert check_metadata(result, "variant_count_matches_shopify") == {
        "variants_read": 4, "variants_counted_by_shopify": 4, "variants_not_read": 0}
    stock = asset_metadata(result, "available_to_sell")
    assert (stock["variants_read"], stock["variants_excluded"], stock["keys_with_quantity"]) == (4, 3, 1)
    assert _records(stock["variants_excluded_list"]) == [
        excluded(2, "TYPO-2", BAD_CHECK_DIGIT, "invalid EAN13 check digit"),
        excluded(3, "NOBAR-3", None, "missing barcode"),
        excluded(4, "EAN8-4", "12345670", "not an EAN13 (8 digits)")]
    assert _records(stock["variants_excluded_by_reason"]) == [
        {"reason": "invalid EAN13 check digit", "variants": 1}, {"reason": "missing barcode", "variants": 1},
        {"reason": "not an EAN13 (8 digits)", "variants": 1}]
    assert "variants_excluded_not_listed" not in stock


def test_sku_key_mode_pushes_by_sku(sandbox: Sandbox, tmp_path: Path) -> None:
    """Brands whose LNB catalogue has no EAN13 match on SKU; barcodes then play no part."""
    _load(sandbox, [
        _variant(1, BAD_CHECK_DIGIT, {PARIS: 5}, sku="LS-BLU-M"),
        _variant(2, None, {PARIS: 2, AMSTERDAM: 1}, sku=" WC-CML-L "),
        _variant(3, EAN_3, {PARIS: 4}, sku=None),
    ], {"LS-BLU-M": 0, "WC-CML-L": 9}, key="sku")

    result = _materialize(sandbox, tmp_path, stock_key="sku", max_invalid_percent=NO_SHARE_LIMIT)

    assert result.success
    assert _lnb_stock(sandbox, "sku") == {"LS-BLU-M": 5, "WC-CML-L": 3}
    assert _push_calls(sandbox) == [("sku", [{"sku": "LS-BLU-M", "in_stock": 5}, {"sku": "WC-CML-L", "in_stock": 3}])]
    assert check_metadata(result, "keys_present")["variants_excluded"] == 1


def test_safety_buffer_is_held_back_once_per_key_and_never_goes_below_zero(sandbox: Sandbox, tmp_path: Path) -> None:
    """Wholesale must not sell the last pieces retail also sells; a per-location buffer would hold back more."""
    _load(sandbox, [
        _variant(1, EAN_1, {PARIS: 5}),
        _variant(2, EAN_2, {PARIS: 1}),
        _variant(3, EAN_3, {PARIS: 3, AMSTERDAM: 4}),
    ], {EAN_1: 9, EAN_2: 9, EAN_3: 9})

    result = _materialize(sandbox, tmp_path, safety_buffer=2)

    assert result.success
    assert _lnb_stock(sandbox) == {EAN_1: 3, EAN_2: 0, EAN_3: 5}


@pytest.mark.parametrize(("settings", "untracked_in_lnb"), [
    ({"untracked": "skip"}, 1),
    ({"untracked": "fixed", "untracked_quantity": 9}, 9),
    ({"untracked": "as_reported"}, 7),
])
def test_untracked_variants_follow_the_setting(sandbox: Sandbox, tmp_path: Path, settings: dict[str, Any],
                                               untracked_in_lnb: int) -> None:
    """Shopify's numbers for untracked items mean nothing unless the merchant says they do."""
    _load(sandbox, [
        _variant(1, EAN_1, {PARIS: 5}),
        _variant(2, EAN_2, {PARIS: 4, AMSTERDAM: 3}, tracked=False),
    ], {EAN_1: 0, EAN_2: 1})

    result = _materialize(sandbox, tmp_path, **settings)

    assert result.success
    assert _lnb_stock(sandbox) == {EAN_1: 5, EAN_2: untracked_in_lnb}


def test_untracked_skipped_is_in_the_task_log(sandbox: Sandbox, tmp_path: Path) -> None:
    """A skipped variant must be findable when a buyer asks why its stock never moves."""
    _load(sandbox, [_variant(1, EAN_1, {PARIS: 5}), _variant(2, EAN_2, {PARIS: 4}, tracked=False)], {EAN_1: 0, EAN_2: 1})

    result = _materialize(sandbox, tmp_path)

    assert _task_log(result, tmp_path) == [
        (EAN_2, _gid(2), _title(2), "excluded", None, "untracked (skipped by setting)"),
        (EAN_1, _gid(1), _title(1), "pushed", "5", "LNB had 0"),
    ]


# --- what is pushed, and how --------------------------------------------------------------------

def _delta_scenario(sandbox: Sandbox) -> None:
    """One key of each preview status: EAN_1 unchanged, EAN_2 changed, EAN_3 new to LNB, EAN_9 LNB-only."""
    _load(sandbox, [
        _variant(1, EAN_1, {PARIS: 5}),
        _variant(2, EAN_2, {PARIS: 3}),
        _variant(3, EAN_3, {PARIS: 4}),
    ], {EAN_1: 5, EAN_2: 8, EAN_9: 7})


def test_job_pushes_only_changed_keys_and_everything_on_full_refresh(
        sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The scheduled run must stay cheap; a full refresh repairs LNB whatever it holds."""
    _delta_scenario(sandbox)
    monkeypatch.setenv("LNB_TASK_LOG_DIR", str(tmp_path))

    delta = _run_job()

    assert delta.success
    assert _push_calls(sandbox) == [("ean", [{"ean13": EAN_2, "in_stock": 3}])]
    assert _lnb_stock(sandbox) == {EAN_1: 5, EAN_2: 3, EAN_9: 7}
    assert {name: asset_metadata(delta, "lnb_stock_push")[name]
            for name in ("keys_pushed", "keys_rejected", "batch_calls", "full_refresh")} \
        == {"keys_pushed": 1, "keys_rejected": 0, "batch_calls": 1, "full_refresh": False}
    assert check_evaluation(delta, "every_push_item_accepted").passed

    full = _run_job(FULL_REFRESH)

    assert full.success
    assert _push_calls(sandbox)[1:] == [("ean", [{"ean13": EAN_1, "in_stock": 5}, {"ean13": EAN_2, "in_stock": 3},
                                                 {"ean13": EAN_3, "in_stock": 4}])]
    assert _lnb_stock(sandbox) == {EAN_1: 5, EAN_2: 3, EAN_9: 7}
    assert asset_metadata(full, "lnb_stock_push")["full_refresh"] is True


def test_a_push_waits_while_another_run_holds_the_push_pool(sandbox: Sandbox, tmp_path: Path) -> None:
    """Two pushes must never interleave, whatever launched them: a run from the UI's Materialize
    button carries no flow tag for the run queue, so the push step itself holds the pool."""
    _delta_scenario(sandbox)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "lnb_pipeline" / "deploy" / "dagster.local.yaml", home / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(home)) as instance, ThreadPoolExecutor(max_workers=1) as runner:
        storage = instance.event_log_storage
        assert storage.initialize_concurrency_limit_to_default(PUSH_POOL)
        assert storage.claim_concurrency_slot(PUSH_POOL, "another-run", "lnb_stock_push").is_claimed
        running = runner.submit(_materialize, sandbox, tmp_path, instance=instance)
        deadline = time.monotonic() + 60
        while storage.get_concurrency_info(PUSH_POOL).pending_step_count == 0 and not running.done():
            assert time.monotonic() < deadline, "the push step never asked for the pool"
            time.sleep(0.1)

        assert not running.done()
        assert _push_calls(sandbox) == []

        storage.free_concurrency_slot_for_step("another-run", "lnb_stock_push")
        result = running.result(timeout=60)

    assert result.success
    assert _push_calls(sandbox) == [("ean", [{"ean13": EAN_2, "in_stock": 3}])]


def test_task_log_has_one_line_per_key_with_its_outcome(sandbox: Sandbox, tmp_path: Path) -> None:
    """The file users open to troubleshoot: every key, and why it was or was not pushed."""
    _load(sandbox, [
        _variant(1, EAN_1, {PARIS: 5}),
        _variant(2, EAN_2, {PARIS: 3}),
        _variant(3, EAN_3, {PARIS: 4}),
        _variant(4, BAD_CHECK_DIGIT, {PARIS: 6}),
        _variant(5, EAN_4, {PARIS: 1}),
    ], {EAN_1: 5, EAN_2: 8, EAN_4: 2, EAN_9: 7})

    result = _materialize(sandbox, tmp_path)

    assert result.success
    assert _task_log(result, tmp_path) == [
        (None, _gid(4), _title(4), "excluded", None, "invalid EAN13 check digit"),
        (EAN_9, None, None, "in LNB only, left unchanged", "7", None),
        (EAN_3, _gid(3), _title(3), "not in LNB, sent only on full refresh", "4", None),
        (EAN_2, _gid(2), _title(2), "pushed", "3", "LNB had 8"),
        (EAN_4, _gid(5), _title(5), "pushed", "1", "LNB had 2"),
        (EAN_1, _gid(1), _title(1), "unchanged", "5", None),
    ]


def test_keys_lnb_rejects_are_recorded_and_the_run_still_succeeds(sandbox: Sandbox, tmp_path: Path) -> None:
    """One product missing in LNB must not stop the stock of all the others."""
    _delta_scenario(sandbox)

    result = _materialize(sandbox, tmp_path, full_refresh=True)

    assert result.success
    assert _lnb_stock(sandbox) == {EAN_1: 5, EAN_2: 3, EAN_9: 7}
    evaluation = check_evaluation(result, "every_push_item_accepted")
    assert (evaluation.passed, evaluation.severity) == (False, dg.AssetCheckSeverity.ERROR)
    rejection = f"ean13: No stock row with EAN13 {EAN_3}"
    rejected = check_metadata(result, "every_push_item_accepted")
    assert rejected["keys_rejected"] == 1
    assert _records(rejected["keys_rejected_list"]) == [
        {"key": EAN_3, "variant": _title(3), "SKU": None, "barcode": EAN_3, "quantity sent": 4,
         "LNB's answer": rejection, "Shopify admin": _admin(sandbox, 3)}]
    assert evaluation.description == "LNB rejected 1 of the 3 keys sent and kept its quantity for them."
    assert (asset_metadata(result, "lnb_stock_push")["keys_pushed"], asset_metadata(result, "lnb_stock_push")["keys_rejected"]) \
        == (2, 1)
    assert _task_log(result, tmp_path) == [
        (EAN_9, None, None, "in LNB only, left unchanged", "7", None),
        (EAN_1, _gid(1), _title(1), "pushed", "5", None),
        (EAN_2, _gid(2), _title(2), "pushed", "3", "LNB had 8"),
        (EAN_3, _gid(3), _title(3), "rejected by LNB", "4", rejection),
    ]


def test_a_503_during_the_push_is_retried_and_nothing_is_lost(sandbox: Sandbox, tmp_path: Path) -> None:
    """Each row sets an absolute quantity, so resending a failed batch is safe and must happen."""
    _load(sandbox, [
        _variant(1, EAN_1, {PARIS: 1}),
        _variant(2, EAN_2, {PARIS: 2}),
        _variant(3, EAN_3, {PARIS: 3}),
    ], {EAN_1: 0, EAN_2: 0, EAN_3: 0})
    requests.post(f"{sandbox.lnb.url}/_sandbox/faults", timeout=10,
                  json={"kind": "http_503", "match": "/multi/inventory", "count": 1}).raise_for_status()

    result = _materialize(sandbox, tmp_path, batch_size=2)

    assert result.success
    assert _lnb_stock(sandbox) == {EAN_1: 1, EAN_2: 2, EAN_3: 3}
    first_batch = [{"ean13": EAN_1, "in_stock": 1}, {"ean13": EAN_2, "in_stock": 2}]
    assert _push_calls(sandbox) == [("ean", first_batch), ("ean", first_batch), ("ean", [{"ean13": EAN_3, "in_stock": 3}])]
    stats = requests.get(f"{sandbox.lnb.url}/_sandbox/stats", timeout=10).json()
    assert stats["faults_injected"] == {"http_503": 1}
    assert stats["requests"]["POST /multi/inventory/ean"] == 3
    assert stats["statuses"]["503"] == 1
    assert {name: asset_metadata(result, "lnb_stock_push")[name] for name in ("keys_pushed", "keys_rejected", "batch_calls")} \
        == {"keys_pushed": 3, "keys_rejected": 0, "batch_calls": 2}


@pytest.mark.parametrize("read_mode", ["paginated", "bulk"])
def test_paginated_and_bulk_reads_give_the_same_stock(sandbox: Sandbox, tmp_path: Path, read_mode: str) -> None:
    """Small shops read by pages and large ones by bulk operation: the choice must not change LNB's stock."""
    variants = [_variant(n, None, {PARIS: n % 7, AMSTERDAM: n % 5 - 2}, sku=f"GEN-{n:03d}") for n in range(1, 301)]
    _load(sandbox, variants, {f"GEN-{n:03d}": 0 for n in range(1, 301)}, key="sku")
    requests.post(f"{sandbox.shopify.url}/_sandbox/config", json={"plan": "plus"}, timeout=10).raise_for_status()

    result = _materialize(sandbox, tmp_path, stock_key="sku", read_mode=read_mode)

    assert result.success
    assert _lnb_stock(sandbox, "sku") == {f"GEN-{n:03d}": n % 7 + max(n % 5 - 2, 0) for n in range(1, 301)}
    levels = asset_metadata(result, "shopify_inventory_levels")
    assert (levels["read_mode"], levels["variants_read"], levels["levels_read"]) == (read_mode, 300, 600)
    shopify_calls = requests.get(f"{sandbox.shopify.url}/_sandbox/stats", timeout=10).json()["requests"]
    if read_mode == "paginated":
        assert shopify_calls.get("productVariants", 0) > 1
        assert "bulkOperationRunQuery" not in shopify_calls
    else:
        assert shopify_calls["bulkOperationRunQuery"] == 1
        assert "productVariants" not in shopify_calls


def test_preview_alone_shows_what_would_change_and_pushes_nothing(sandbox: Sandbox, tmp_path: Path) -> None:
    """Materialising up to the preview is how a merchant checks a change before LNB sees it."""
    _load(sandbox, [
        _variant(1, EAN_1, {PARIS: 5}),
        _variant(2, EAN_2, {PARIS: 3}),
        _variant(3, EAN_3, {PARIS: 4}),
        _variant(4, EAN_4, {PARIS: 10}),
    ], {EAN_1: 5, EAN_2: 8, EAN_4: 0, EAN_9: 7})

    result = _materialize(sandbox, tmp_path, push=False)

    assert result.success
    assert "lnb_stock_push" not in _materialized(result)
    assert _push_calls(sandbox) == []
    assert _lnb_stock(sandbox) == {EAN_1: 5, EAN_2: 8, EAN_4: 0, EAN_9: 7}
    preview = asset_metadata(result, "lnb_stock_preview")
    assert {name: value for name, value in preview.items() if name.startswith(("keys_", "units_"))
            and not name.endswith("_list")} == {
        "keys_in_lnb": 4, "units_in_lnb": 20, "keys_changed": 2, "units_going_to_zero": 0, "keys_unchanged": 1,
        "keys_new_to_lnb": 1, "keys_missing_from_shopify": 1, "keys_of_excluded_variants": 0}

    def key_row(variant_id: int, key: str) -> dict[str, Any]:
        return {"key": key, "variant": _title(variant_id), "SKU": None, "barcode": key}

    admin = {n: {"Shopify admin": _admin(sandbox, n)} for n in (2, 3, 4)}
    assert _records(preview["keys_changed_list"]) == [
        key_row(4, EAN_4) | {"LNB quantity": 0, "new quantity": 10, "change": 10} | admin[4],
        key_row(2, EAN_2) | {"LNB quantity": 8, "new quantity": 3, "change": -5} | admin[2]]
    assert _records(preview["keys_new_to_lnb_list"]) == [key_row(3, EAN_3) | {"new quantity": 4} | admin[3]]
    assert _records(preview["keys_missing_from_shopify_list"]) == [
        {"key": EAN_9, "SKU in LNB": None, "barcode in LNB": EAN_9, "LNB quantity": 7}]


# --- what stops the push ------------------------------------------------------------------------

@pytest.mark.parametrize(("invalid", "blocked", "expected"), [
    (1, False, {EAN_1: 0, EAN_2: 6, EAN_3: 6, EAN_4: 6, EAN_9: 6}),
    (2, True, {EAN_1: 0, EAN_2: 0, EAN_3: 0, EAN_4: 0, EAN_9: 0}),
])
def test_more_than_the_allowed_share_of_invalid_variants_blocks_the_push(
        sandbox: Sandbox, tmp_path: Path, invalid: int, blocked: bool, expected: dict[str, int]) -> None:
    """Beyond LNB_STOCK_MAX_INVALID_PERCENT (20 % by default) the picture itself is wrong: push nothing."""
    codes = (EAN_1, EAN_2, EAN_3, EAN_4, EAN_9)
    _load(sandbox, [_variant(n, BAD_CHECK_DIGIT if n <= invalid else code, {PARIS: 6})
                    for n, code in enumerate(codes, start=1)], dict.fromkeys(codes, 0))

    result = _materialize(sandbox, tmp_path)

    evaluation = check_evaluation(result, "excluded_share_within_limit")
    assert (evaluation.passed, evaluation.severity) == (not blocked, dg.AssetCheckSeverity.ERROR)
    assert check_metadata(result, "excluded_share_within_limit") == {
        "variants_with_bad_keys": invalid, "variants_read": 5, "bad_keys_percent": 20.0 * invalid,
        "max_bad_keys_percent": 20}
    assert result.success is not blocked
    assert ("lnb_stock_push" in _materialized(result)) is not blocked
    assert len(_push_calls(sandbox)) == (0 if blocked else 1)
    assert _lnb_stock(sandbox) == expected


# --- settings -----------------------------------------------------------------------------------

def test_an_unknown_stock_key_fails_the_job_naming_the_variable(
        sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A typo in a setting must stop the run before any call, telling the operator what to fix."""
    _delta_scenario(sandbox)
    monkeypatch.setenv("LNB_TASK_LOG_DIR", str(tmp_path))
    monkeypatch.setenv("LNB_STOCK_KEY", "upc")

    result = _run_job()

    assert not result.success
    assert "LNB_STOCK_KEY: stock key must be one of ('ean13', 'sku'), not 'upc'" in _errors(result)
    assert _push_calls(sandbox) == []
    assert _lnb_stock(sandbox) == {EAN_1: 5, EAN_2: 8, EAN_9: 7}


def test_refused_credentials_fail_the_step_at_once_instead_of_retrying(
        sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A wrong secret gets the same answer 15 and 30 s later: the step fails without its RetryPolicy."""
    _delta_scenario(sandbox)
    monkeypatch.setenv("LNB_TASK_LOG_DIR", str(tmp_path))
    monkeypatch.setenv("LNB_CLIENT_SECRET", "not-the-secret")

    result = _run_job()

    assert not result.success
    assert "LNB refused the client credentials for client id 'sandbox-client': HTTP 401" in _errors(result)
    assert [event.step_key for event in result.all_events if event.is_step_failure] == ["lnb_stock_preview"]
    assert [event for event in result.all_events if event.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY] == []
    assert "not-the-secret" not in _errors(result)
    assert _push_calls(sandbox) == []


def test_an_unknown_location_fails_the_run_naming_it(sandbox: Sandbox, tmp_path: Path) -> None:
    """A misspelt location would silently drop its stock from every key."""
    _delta_scenario(sandbox)

    result = _materialize(sandbox, tmp_path, locations="Paris Warehouse, Lyon Store")

    assert not result.success
    assert "unknown location(s) 'Lyon Store'" in _errors(result)
    assert _materialized(result) == ["shopify_locations", "shopify_inventory_levels"]
    assert _push_calls(sandbox) == []
    assert _lnb_stock(sandbox) == {EAN_1: 5, EAN_2: 8, EAN_9: 7}


def _schedule_under(environment: dict[str, str | None]) -> dg.ScheduleDefinition:
    """The schedule as its module builds it when imported with ``environment`` (None: unset)."""
    return reloaded_under(schedules, environment, lambda module: module.inventory_sync_schedule)


def test_schedule_takes_cron_and_timezone_from_the_environment() -> None:
    """Brands push at their own rhythm, in their own time zone."""
    schedule = _schedule_under({"LNB_STOCK_CRON": "15 6-20 * * 1-5", "LNB_TIMEZONE": "Europe/Paris"})

    assert (schedule.cron_schedule, schedule.execution_timezone) == ("15 6-20 * * 1-5", "Europe/Paris")
    assert schedule.job_name == "inventory_sync"


def test_schedule_defaults_to_every_30_minutes_in_utc() -> None:
    """Without settings, LNB is at most half an hour behind Shopify."""
    schedule = _schedule_under({"LNB_STOCK_CRON": None, "LNB_TIMEZONE": None})

    assert (schedule.cron_schedule, schedule.execution_timezone) == ("0 3 * * *", "UTC")
