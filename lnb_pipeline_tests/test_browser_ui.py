"""The stock sync as an operator meets it: the Dagster UI in a real browser, on the demo sandbox.

The other tests drive Dagster through its Python API and CLI. This one starts the product as
``make run`` does (``dg dev`` on a DAGSTER_HOME holding the deployed ``dagster.yaml``), then, in
headless Chromium, does what the README tells a person to do: open the ``inventory`` assets, click
Materialize all, watch the run succeed, and read the check results and the push preview's metadata.
It asserts what the pages show for the demo data, and that LNB's stock really changed. Screenshots
of every step go to LNB_TEST_ARTIFACTS_DIR (default ``test-artifacts/browser``); on failure also a
screenshot of the last page and the ``dg dev`` console output.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import pytest
import requests
from helpers import REPO_ROOT, lnb_get

from lnb_pipeline.sandbox import Sandbox

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs Debian's Chromium at /usr/bin/chromium: apt-get install chromium; .ci/run installs it")
playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="needs the playwright package: pip install -e '.[dev]'")
expect = playwright_api.expect

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1400, "height": 900}
NEVER = "0 0 1 1 *"
"""A cron far enough away (1 January) that no schedule fires during the test."""
STARTUP_SECONDS = 180
RUN_SECONDS = 180
"""Generous: the demo's run takes seconds, but the first run also starts the run worker and loads the code."""
PAGE_SECONDS = 30
"""How long an action or a check of what a page shows may wait for the page to get there."""
STOP_SECONDS = 30
LOCATION_QUERY = "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"


class ShownCheck(NamedTuple):
    """How the Checks tab shows a check's latest result: the list entry's status word and icon, the
    "Evaluation result" word of its detail pane, and the description there (None: none shown)."""

    status: str
    icon: str
    result: str
    description: str | None = None


PASSED = ShownCheck("Succeeded", "check_circle", "Passed")


def warned(description: str) -> ShownCheck:
    """A failed WARN check: the UI words it "Failed", with the warning triangle, not the error icon."""
    return ShownCheck("Failed", "warning_outline", "Failed", description)


DEMO_CHECKS = {
    "shopify_inventory_levels": {"variant_count_matches_shopify": PASSED},
    "available_to_sell": {
        "ean13_check_digits_valid": warned("3 of 439 variants excluded: invalid EAN13."),
        "excluded_share_within_limit": PASSED,
        "keys_present": warned("5 of 439 variants excluded: no key."),
        "keys_unique": warned("6 of 439 variants excluded: key shared with another variant."),
    },
    "lnb_stock_push": {"every_push_item_accepted": PASSED},
}
"""What the demo scenario's first stock sync gives, per asset and check."""
DEMO_PREVIEW_COUNTS = {"keys_unchanged": "255", "keys_changed": "163", "keys_new_to_lnb": "4",
                       "keys_missing_from_shopify": "4", "keys_excluded": "6"}
DEMO_LARGEST_CHANGE = ["3760000014229", "11", "48", "37", "changed"]
"""The first row of the preview's ``largest_changes`` table: the key whose quantity moves most."""


@dataclass
class DagsterUi:
    """A running ``dg dev``: its UI's address and the file its console output goes to."""

    url: str
    console: Path


# --- the product --------------------------------------------------------------------------------

def _free_port() -> int:
    with closing(socket.socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until(condition: Callable[[], bool], what: str, process: subprocess.Popen[bytes],
                console: Path, timeout: float) -> None:
    """Poll ``condition``; fail naming ``what``, with the console's end, on timeout or if ``process`` ends."""
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None or time.monotonic() > deadline:
            ended = f"dagster dev ended (exit {process.returncode})" if process.poll() is not None \
                else f"{timeout} s passed"
            pytest.fail(f"{ended} before {what}; console ends:\n" + console.read_text(errors="replace")[-3000:])
        time.sleep(0.5)


def _ui_graphql(url: str, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The UI's GraphQL answer, or None while the webserver does not answer yet."""
    try:
        response = requests.post(f"{url}/graphql", json={"query": query, "variables": variables or {}}, timeout=30)
    except requests.ConnectionError:
        return None
    response.raise_for_status()
    return response.json()["data"]


def _location_loaded(url: str) -> bool:
    data = _ui_graphql(url, LOCATION_QUERY)
    return data is not None and [(entry["name"], entry["loadStatus"]) for entry in
                                 data["workspaceOrError"]["locationEntries"]] == [("lnb_pipeline", "LOADED")]


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM ``dg dev`` and everything it started; SIGKILL what is left after STOP_SECONDS."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=STOP_SECONDS)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@pytest.fixture
def dagster_ui(sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[DagsterUi]:
    """``make run``'s ``dg dev`` on a free port and a fresh DAGSTER_HOME, pointed at the sandbox,
    its code location loaded; schedules and the order sensor kept from starting runs."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "lnb_pipeline" / "deploy" / "dagster.local.yaml", home / "dagster.yaml")
    for name, value in {"DAGSTER_HOME": str(home), "LNB_TASK_LOG_DIR": str(tmp_path / "task_logs"),
                        "LNB_STOCK_CRON": NEVER, "LNB_ORDERS_CRON": NEVER,
                        "LNB_ORDERS_SENSOR_SECONDS": str(24 * 3600)}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("LNB_ALERT_WEBHOOK_URL", raising=False)
    # Stopped before the UI starts, so no order export joins the test and changes the demo's stock.
    subprocess.run([str(Path(sys.executable).with_name("dagster")), "sensor", "stop", "lnb_orders_sensor", "-w",
                    "workspace.yaml"], cwd=REPO_ROOT, check=True, capture_output=True, timeout=120)
    url = f"http://127.0.0.1:{_free_port()}"
    console = tmp_path / "dagster-dev.log"
    with console.open("wb") as output:
        venv_bin = Path(sys.executable).parent
        process = subprocess.Popen(
            [str(venv_bin / "dg"), "dev", "-h", "127.0.0.1", "-p", url.rsplit(":", 1)[1]],
            cwd=REPO_ROOT, stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "VIRTUAL_ENV": str(venv_bin.parent), "PATH": f"{venv_bin}:{os.environ['PATH']}"})
    try:
        _wait_until(lambda: _location_loaded(url), "the code location loaded", process, console, STARTUP_SECONDS)
        yield DagsterUi(url, console)
    finally:
        _stop_group(process)


# --- the browser --------------------------------------------------------------------------------

@pytest.fixture
def artifacts() -> Path:
    """Where screenshots go, emptied of this test's earlier ones."""
    directory = Path(os.environ.get("LNB_TEST_ARTIFACTS_DIR") or REPO_ROOT / "test-artifacts" / "browser")
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("ui-*"):
        old.unlink()
    return directory


@pytest.fixture
def browser_page() -> Iterator[Page]:
    """A page in headless Chromium (a fresh profile) that dismisses Dagster's first-visit
    "Join the Dagster community" dialog whenever it shows."""
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport=VIEWPORT).new_page()
            page.set_default_timeout(PAGE_SECONDS * 1000)
            expect.set_options(timeout=PAGE_SECONDS * 1000)
            page.add_locator_handler(page.get_by_role("button", name="Skip", exact=True),
                                     lambda skip: skip.click())
            yield page
        finally:
            browser.close()


def _screenshot(page: Page, artifacts: Path, step: str) -> None:
    path = artifacts / f"ui-{step}.png"
    page.screenshot(path=path, full_page=True)
    print(f"screenshot: {path}")


@contextmanager
def _evidence_on_failure(page: Page, ui: DagsterUi, artifacts: Path) -> Iterator[None]:
    """On failure, keep the ``dg dev`` console output and what the browser showed last."""
    try:
        yield
    except BaseException:
        shutil.copy(ui.console, artifacts / "ui-dagster-dev.log")
        print(f"dagster dev console: {artifacts / 'ui-dagster-dev.log'}")
        _screenshot(page, artifacts, "failure")
        raise


# --- what the pages show ------------------------------------------------------------------------

def _check_entry(page: Page, check: str) -> Locator:
    """The entry of ``check`` in the Checks tab's list (icon, name, latest status): the nearest
    ancestor of its name that also holds the status icon. The entries have no role or label."""
    return page.get_by_title(check, exact=True).locator("xpath=ancestor::div[.//*[@role='img']][1]")


def _expect_checks(page: Page, ui: DagsterUi, artifacts: Path, asset: str, checks: dict[str, ShownCheck]) -> None:
    """Open ``asset``'s Checks tab; each check's entry, then its detail pane, must show ``checks``."""
    page.goto(f"{ui.url}/assets/{asset}?view=checks")
    expect(page.get_by_text(f"Checks ({len(checks)})", exact=True)).to_be_visible()
    for check, shown in checks.items():
        entry = _check_entry(page, check)
        expect(entry).to_contain_text(shown.status)
        expect(entry.get_by_role("img", name=shown.icon, exact=True)).to_be_visible()
        entry.click()
        result = page.get_by_text("Evaluation result", exact=True).locator("xpath=..")
        expect(page.get_by_role("img", name="asset_check").locator("xpath=..")).to_have_text(check)
        expect(result).to_contain_text(shown.result)
        expect(result.get_by_role("img", name=shown.icon, exact=True)).to_be_visible()
        if shown.description is not None:
            expect(page.get_by_text(shown.description, exact=True)).to_be_visible()
        _screenshot(page, artifacts, f"4-checks-{asset}-{check}")


def _metadata_row(page: Page, key: str) -> Locator:
    """The row of the asset page's Metadata table whose key is ``key``."""
    return page.get_by_role("row").filter(has=page.get_by_role("cell", name=key, exact=True))


# --- the sandbox --------------------------------------------------------------------------------

def _lnb_stock(sandbox: Sandbox) -> dict[tuple[str | None, str | None], int]:
    """LNB's units per (EAN13, SKU), read as any API client would."""
    return {(row.get("ean13"), row.get("sku")): row["in_stock"] for row in lnb_get(sandbox, "/inventory")}


def _lnb_requests(sandbox: Sandbox) -> dict[str, int]:
    return requests.get(f"{sandbox.lnb.url}/_sandbox/stats", timeout=10).json()["requests"]


# --- the test -----------------------------------------------------------------------------------

def test_materialize_all_in_the_ui_pushes_the_stock_and_shows_the_demo_check_results(
        sandbox: Sandbox, dagster_ui: DagsterUi, browser_page: Page, artifacts: Path) -> None:
    """Materialize all on the ``inventory`` group succeeds; the Checks tabs show the demo's three
    warnings (keys excluded) and passes; the preview's metadata shows its counts and largest changes;
    LNB then holds the new quantities, pushed in one batch call."""
    page = browser_page
    stock_before = _lnb_stock(sandbox)
    with _evidence_on_failure(page, dagster_ui, artifacts):
        page.goto(f"{dagster_ui.url}/locations/lnb_pipeline/asset-groups/inventory")
        # The graph shortens the fifth, shopify_inventory_levels, to "shopify_in…_levels".
        for asset in ("shopify_locations", "available_to_sell", "lnb_stock_preview", "lnb_stock_push"):
            expect(page.get_by_text(asset, exact=True)).to_be_visible()
        _screenshot(page, artifacts, "1-asset-group")

        page.get_by_role("button", name="Materialize all").click()
        expect(page.get_by_text("Launched run")).to_be_visible()
        _screenshot(page, artifacts, "2-launched")
        page.get_by_role("link", name="View", exact=True).click()
        expect(page).to_have_url(re.compile(r"/runs/[0-9a-f-]{36}$"))
        expect(page.get_by_text("5 assets", exact=True)).to_be_visible()
        expect(page.get_by_text(re.compile(r"^(Success|Failure|Canceled)$"))).to_be_visible(
            timeout=RUN_SECONDS * 1000)
        _screenshot(page, artifacts, "3-run-finished")
        expect(page.get_by_text("Success", exact=True)).to_be_visible()

        for asset, checks in DEMO_CHECKS.items():
            _expect_checks(page, dagster_ui, artifacts, asset, checks)

        page.goto(f"{dagster_ui.url}/assets/lnb_stock_preview")
        for key, count in DEMO_PREVIEW_COUNTS.items():
            expect(_metadata_row(page, key).get_by_role("cell")).to_have_text([key, re.compile(r".+"), count])
        largest_changes = _metadata_row(page, "largest_changes").get_by_role("table")
        expect(largest_changes.get_by_role("columnheader")).to_have_text(
            ["key", "lnb_quantity", "new_quantity", "change", "status"])
        expect(largest_changes.get_by_role("row").nth(1).get_by_role("cell")).to_have_text(DEMO_LARGEST_CHANGE)
        _screenshot(page, artifacts, "5-preview-metadata")

    stock_after = _lnb_stock(sandbox)
    assert stock_after.keys() == stock_before.keys()
    assert sum(stock_after[key] != stock_before[key] for key in stock_before) == int(DEMO_PREVIEW_COUNTS["keys_changed"])
    assert _lnb_requests(sandbox).get("POST /multi/inventory/ean") == 1
