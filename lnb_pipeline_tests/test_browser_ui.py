"""The README's operator's tour, walked in a real browser on the demo sandbox.

The other tests drive Dagster through its Python API and CLI. This one starts the product as
``make run`` does (``dg dev`` on a DAGSTER_HOME holding the deployed ``dagster.yaml``) and, in headless
Chromium, clicks what the README's tour tells a person to click, then reads what the pages show:

- stock: **Jobs → inventory_preview → Materialize all** writes nothing to LNB and lists every change by
  name; **Jobs → inventory_sync → Materialize all** then sets exactly the quantities the preview listed;
  a Shopify read that lost most of the stock is stopped by ``push_within_guard_limits``, until the run
  config its description gives is entered in the launchpad;
- orders: ``orders_export`` holds back the demo's blocked orders, each listed with its retailer's name
  and reason; an order fixed in LNB goes out on the next run, and ``blocked_orders`` and
  ``no_order_blocked`` then show exactly the orders still blocked, after a run for one listed
  reference too; the runs list carries each run's ``problems`` tag;
- the alert sensors read OFF while LNB_ALERT_WEBHOOK_URL is unset.

What the pages say was written is checked in LNB's stock and Shopify's orders, read through the
sandbox's APIs. The schedules never fire and the order sensor is stopped, so only the clicks start
runs. One ``dg dev`` serves the whole module; each test starts from the demo scenario. Screenshots of
the pages go to LNB_TEST_ARTIFACTS_DIR (default ``test-artifacts/browser``); on failure also the last
page and the ``dg dev`` console output.
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
from typing import TYPE_CHECKING, Any

import pytest
import requests
from helpers import (
    DEMO_BLOCKED,
    DEMO_EXPORTABLE,
    REPO_ROOT,
    demo_shopify_orders,
    lnb_get,
)

from lnb_pipeline.sandbox import Sandbox
from lnb_pipeline.sandbox.generators import demo_scenario

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Locator, Page

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs Debian's Chromium at /usr/bin/chromium: apt-get install chromium; .ci/run installs it")
playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="needs the playwright package: pip install -e '.[dev]'")
expect = playwright_api.expect

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1600, "height": 1000}
"""A laptop-to-desktop screen: what an operations person reads the tables on."""
MAX_SCREENSHOT_HEIGHT = 6000
NEVER = "0 0 1 1 *"
"""A cron far enough away (1 January) that no schedule fires during the test."""
A_DAY = str(24 * 3600)
STARTUP_SECONDS = 180
RUN_SECONDS = 180
"""Generous: a demo run takes seconds, but each one starts a run worker that loads the code on 2 busy cores."""
PAGE_SECONDS = 30
"""How long an action or a check of what a page shows may wait for the page to get there."""
TAG_SECONDS = 120
"""How long the daemon's lnb_run_problems sensor (every 15 s) may take to tag the finished runs."""
STOP_SECONDS = 30
LOCATION_QUERY = "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"
RUN_PATH = re.compile(r"/runs/([0-9a-f-]{36})$")
FINISHED = re.compile(r"^(Success|Failure|Canceled)$")
LNB_WRITES = ("POST /multi/inventory", "POST /inventory")
ERROR_ICON = "cancel"
"""The icon of a failed ERROR check (a WARN one shows a triangle)."""

# --- what the demo scenario gives ----------------------------------------------------------------

DEMO_KEYS_IN_LNB = 428
DEMO_KEYS_CHANGED = 163
"""Keys whose quantity the demo's first push changes (docs/reading-the-ui-stock.md quotes it)."""
CHANGED_COLUMNS = ["key", "variant", "SKU", "barcode", "LNB quantity", "new quantity", "change", "Shopify admin"]
DEMO_LARGEST_CHANGE = ["3760000014229", "Velvet Shorts - Olive / 32", "VS4-OLV-32", "3760000014229", "11", "48",
                       "37", "/admin/products/98/variants/1422"]
"""The first row of ``keys_changed_list``: the key whose quantity moves most (its admin link after the shop's URL)."""
DEMO_EXCLUDED_BY_REASON = [["reason", "variants"], ["duplicate key", "6"], ["missing barcode", "5"],
                           ["invalid EAN13 check digit", "3"], ["untracked (skipped by setting)", "3"]]
DEMO_EXCLUDED_FIRST = ["Linen Sweater - Beige / XL", "", "", "missing barcode", "/admin/products/2/variants/1007"]
BLOCKED_COLUMNS = ["order_reference", "retailer", "retailer_reference", "reasons", "shopify_customer"]
SENT_COLUMNS = ["order_reference", "retailer", "outcome", "shopify_order", "shopify_order_link", "shopify_customer",
                "detail"]
NO_CUSTOMER = ["LNB-0006", "Zürich Atelier", "R1013", "no Shopify customer with lenewblack.retailer_reference = R1013",
               ""]
"""A blocked order as ``blocked_orders`` lists it: the retailer by name, and the reason to fix in Shopify."""
ZERO_QUANTITY = "LNB-0013"
"""Utrecht Uniform's order, blocked by a line of quantity 0: fixed in LNB by the test, sent by the next run."""
NO_LINES = "LNB-0014"
"""Concept Store Noord's order without lines: given one in LNB, then sent by a run for that reference alone."""
FIRST_NEW_ORDER = 1001 + len(DEMO_EXPORTABLE)
"""Shopify's name number of the first order created after the demo's exportable ones (#1001 to #1005)."""


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
            ended = f"dg dev ended (exit {process.returncode})" if process.poll() is not None \
                else f"{timeout} s passed"
            pytest.fail(f"{ended} before {what}; console ends:\n" + console.read_text(errors="replace")[-3000:])
        time.sleep(0.5)


def _location_loaded(url: str) -> bool:
    """Whether the UI answers and has loaded the code location."""
    try:
        response = requests.post(f"{url}/graphql", json={"query": LOCATION_QUERY}, timeout=30)
    except requests.ConnectionError:
        return False
    response.raise_for_status()
    entries = response.json()["data"]["workspaceOrError"]["locationEntries"]
    return [(entry["name"], entry["loadStatus"]) for entry in entries] == [("lnb_pipeline", "LOADED")]


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    """Ctrl-C to ``dg dev`` and everything it started, as in ``make run``'s terminal (``dg dev`` stops
    its webserver and daemon on SIGINT, not on SIGTERM); SIGKILL what is left after STOP_SECONDS."""
    try:
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=STOP_SECONDS)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@pytest.fixture(scope="module")
def dagster_ui(sandbox_session: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DagsterUi]:
    """``make run``'s ``dg dev`` on a free port and a fresh DAGSTER_HOME, pointed at the sandbox, its code
    location loaded. The schedules never fire, the stock changes sensor ticks once (before any push, so it
    skips) and the order sensor is stopped before the daemon starts: only the test's clicks start runs."""
    root = tmp_path_factory.mktemp("browser_ui")
    home = root / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "lnb_pipeline" / "deploy" / "dagster.local.yaml", home / "dagster.yaml")
    venv_bin = Path(sys.executable).parent
    environment = {
        **os.environ, **sandbox_session.environment(),
        "DAGSTER_HOME": str(home), "LNB_TASK_LOG_DIR": str(root / "task_logs"),
        "LNB_STOCK_STATE_DIR": str(root / "stock_mirror"),
        "LNB_STOCK_CRON": NEVER, "LNB_ORDERS_CRON": NEVER,
        "LNB_ORDERS_SENSOR_SECONDS": A_DAY, "LNB_STOCK_CHANGES_SECONDS": A_DAY,
        "VIRTUAL_ENV": str(venv_bin.parent), "PATH": f"{venv_bin}:{os.environ['PATH']}",
    }
    for name in ("LNB_ALERT_WEBHOOK_URL", "SHOPIFY_CLIENT_ID", "SHOPIFY_CLIENT_SECRET"):
        environment.pop(name, None)
    subprocess.run([str(venv_bin / "dagster"), "sensor", "stop", "lnb_orders_sensor", "-w", "workspace.yaml"],
                   cwd=REPO_ROOT, env=environment, check=True, capture_output=True, timeout=120)
    url = f"http://127.0.0.1:{_free_port()}"
    console = root / "dg-dev.log"
    with console.open("wb") as output:
        process = subprocess.Popen(
            [str(venv_bin / "dg"), "dev", "--no-check-yaml", "--log-level", "warning",
             "-h", "127.0.0.1", "-p", url.rsplit(":", 1)[1]],
            cwd=REPO_ROOT, stdout=output, stderr=subprocess.STDOUT, start_new_session=True, env=environment)
    try:
        _wait_until(lambda: _location_loaded(url), "the code location loaded", process, console, STARTUP_SECONDS)
        yield DagsterUi(url, console)
    finally:
        _stop_group(process)


# --- the browser --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def artifacts() -> Path:
    """Where screenshots go, emptied of this module's earlier ones."""
    directory = Path(os.environ.get("LNB_TEST_ARTIFACTS_DIR") or REPO_ROOT / "test-artifacts" / "browser")
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("ui-*"):
        old.unlink()
    return directory


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A page in a fresh profile that dismisses Dagster's first-visit "Join the Dagster community"
    dialog whenever it shows."""
    context = browser.new_context(viewport=VIEWPORT)
    try:
        opened = context.new_page()
        opened.set_default_timeout(PAGE_SECONDS * 1000)
        expect.set_options(timeout=PAGE_SECONDS * 1000)
        opened.add_locator_handler(opened.get_by_role("button", name="Skip", exact=True), lambda skip: skip.click())
        yield opened
    finally:
        context.close()


SCROLLED_HEIGHT = """() => Math.max(document.documentElement.scrollHeight, ...Array.from(
    document.querySelectorAll('*'), element => {
        const overflow = getComputedStyle(element).overflowY;
        return (overflow === 'auto' || overflow === 'scroll') && element.scrollHeight > element.clientHeight
            ? element.getBoundingClientRect().top + element.scrollHeight : 0;
    }))"""
"""The height the page would need to show everything: Dagster scrolls its panels, not the document."""
NEXT_FRAMES = "() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))"


def _screenshot(page: Page, artifacts: Path, name: str) -> None:
    """The whole page: the window is made as tall as its scrolled panels for the shot (up to a bound)."""
    height = min(max(page.evaluate(SCROLLED_HEIGHT), VIEWPORT["height"]), MAX_SCREENSHOT_HEIGHT)
    page.set_viewport_size({"width": VIEWPORT["width"], "height": int(height)})
    try:
        page.evaluate(NEXT_FRAMES)
        path = artifacts / f"ui-{name}.png"
        page.screenshot(path=path, full_page=True)
        print(f"screenshot: {path}")
    finally:
        page.set_viewport_size(VIEWPORT)


@contextmanager
def _evidence_on_failure(page: Page, ui: DagsterUi, artifacts: Path, test: str) -> Iterator[None]:
    """On failure, keep the ``dg dev`` console output and what the browser showed last."""
    try:
        yield
    except BaseException:
        shutil.copy(ui.console, artifacts / "ui-dg-dev.log")
        print(f"dg dev console: {artifacts / 'ui-dg-dev.log'}")
        _screenshot(page, artifacts, f"{test}-failure")
        raise


# --- what the pages show ------------------------------------------------------------------------

def _open_job(page: Page, ui: DagsterUi, job: str) -> Locator:
    """Jobs → ``job``: its Materialize all button. The Jobs page is opened afresh when its list does
    not show the job in time: on a loaded machine it has once stayed without it for 30 s."""
    for attempt in range(3):
        page.goto(f"{ui.url}/jobs")
        try:
            page.get_by_role("link", name=f"job {job}", exact=True).click(timeout=PAGE_SECONDS * 1000)
            break
        except playwright_api.TimeoutError:
            if attempt == 2:
                raise
    materialize_all = page.get_by_role("button", name="materialization Materialize all", exact=True)
    expect(materialize_all).to_be_visible()
    return materialize_all


def _materialize_all(page: Page, ui: DagsterUi, job: str) -> tuple[str, str]:
    """Jobs → ``job`` → Materialize all, then the run's page until it finishes: its id and status."""
    _open_job(page, ui, job).click()
    expect(page.get_by_text("Launched run")).to_be_visible()
    page.get_by_role("link", name="View", exact=True).click()
    return _finished_run(page, job)


def _launch_with_config(page: Page, ui: DagsterUi, artifacts: Path, job: str, run_config: str,
                        shot: str) -> tuple[str, str]:
    """Jobs → ``job`` → ▾ beside Materialize all → Open launchpad, the config replaced by ``run_config``,
    then Materialize: the run's id and status once it finished."""
    _open_job(page, ui, job)
    page.get_by_role("button", name="arrow_drop_down", exact=True).click()
    page.get_by_role("menuitem", name="open_in_new Open launchpad").click()
    launchpad = page.get_by_role("dialog").filter(has_text="Launchpad")
    launchpad.locator(".CodeMirror").click()
    page.keyboard.press("Control+A")
    page.keyboard.insert_text(run_config)
    expect(launchpad.locator(".CodeMirror-code .CodeMirror-line")).to_have_text([run_config])
    expect(launchpad.get_by_text("No errors", exact=True)).to_be_visible()
    _screenshot(page, artifacts, shot)
    launchpad.get_by_role("button", name="open_in_new Materialize", exact=True).click()
    return _finished_run(page, job)


def _finished_run(page: Page, job: str) -> tuple[str, str]:
    """On a run's page: it must be a run of ``job``; waits for it to finish. Its id and status."""
    expect(page).to_have_url(RUN_PATH)
    match = RUN_PATH.search(page.url)
    assert match is not None
    expect(page.get_by_role("link", name=job, exact=True).first).to_be_visible()
    status = page.get_by_text(FINISHED).first
    expect(status).to_be_visible(timeout=RUN_SECONDS * 1000)
    return match.group(1), status.inner_text()


def _metadata_row(page: Page, key: str) -> Locator:
    """The row of a Metadata table (an asset's, or a check result's) whose key is ``key``."""
    return page.get_by_role("row").filter(has=page.get_by_role("cell", name=key, exact=True))


def _expect_value(page: Page, key: str, value: str) -> None:
    """The metadata entry ``key`` shows ``value`` (its last cell: after the timestamp on an asset's page)."""
    expect(_metadata_row(page, key).get_by_role("cell").last).to_have_text(value)


def _table(page: Page, key: str) -> list[list[str]]:
    """The table metadata ``key`` as shown: its header, then each row's cells."""
    table = _metadata_row(page, key).get_by_role("table")
    expect(table.get_by_role("columnheader").first).to_be_visible()
    return table.evaluate("table => Array.from(table.rows, row => Array.from(row.cells, cell => cell.innerText))")


def _open_check(page: Page, ui: DagsterUi, asset: str, check: str, result: str) -> Locator:
    """``asset``'s Checks tab with ``check`` open: its latest result must read ``result`` (Passed,
    Failed). The detail pane, for reading the description and metadata."""
    page.goto(f"{ui.url}/assets/{asset}?view=checks&checkDetail={check}")
    expect(page.get_by_role("img", name="asset_check").locator("xpath=..")).to_have_text(check)
    expect(page.get_by_text("Evaluation result", exact=True).locator("xpath=..")).to_contain_text(result)
    return page.get_by_text("Evaluation result", exact=True).locator(
        "xpath=ancestor::*[contains(normalize-space(.), 'asset check.')][1]")


def _check_entry(page: Page, check: str) -> Locator:
    """The entry of ``check`` in the Checks tab's list (icon, name, latest status): the nearest
    ancestor of its name that also holds the status icon. The entries have no role or label."""
    return page.get_by_title(check, exact=True).locator("xpath=ancestor::div[.//*[@role='img']][1]")


def _description(pane: Locator, pattern: str) -> str:
    """The check result's description, which must match ``pattern`` from its start."""
    text = pane.get_by_text(re.compile("^" + pattern))
    expect(text).to_be_visible()
    return text.inner_text()


def _run_tags(page: Page, run_id: str) -> Locator:
    """The runs list's cell of one run: its id, then its tags."""
    return page.get_by_role("link", name=f"run {run_id[:8]}", exact=True).locator(
        "xpath=ancestor::*[.//button[starts-with(normalize-space(.), 'View all tags')]][1]")


# --- the sandbox, read and changed as the services' users would ---------------------------------

def _lnb_stock(sandbox: Sandbox) -> dict[str, int]:
    """LNB's units per key (EAN13, else SKU), read through LNB's API."""
    return {row.get("ean13") or row["sku"]: row["in_stock"] for row in lnb_get(sandbox, "/inventory")}


def _lnb_writes(sandbox: Sandbox) -> dict[str, int]:
    """LNB's stock writes since the sandbox was last reset, by endpoint."""
    requests_by_endpoint = requests.get(f"{sandbox.lnb.url}/_sandbox/stats", timeout=10).json()["requests"]
    return {endpoint: count for endpoint, count in requests_by_endpoint.items() if endpoint.startswith(LNB_WRITES)}


def _zero_shopify_stock(sandbox: Sandbox) -> None:
    """A broken Shopify read as the guard must catch it: every demo variant's stock at 0 at every location."""
    changes = [{"variant_id": variant["id"], "location_id": int(location), "available": 0}
               for product in demo_scenario()["products"] for variant in product["variants"]
               for location in variant["stock"]]
    requests.post(f"{sandbox.shopify.url}/_sandbox/inventory", json={"changes": changes},
                  timeout=30).raise_for_status()


def _lnb_lines(sandbox: Sandbox, reference: str) -> list[dict[str, Any]]:
    return lnb_get(sandbox, f"/orders/{reference}")["items"]


def _set_lnb_lines(sandbox: Sandbox, reference: str, lines: list[dict[str, Any]]) -> None:
    """An order's lines edited in LNB's back office (the sandbox's control endpoint for a sales rep's edit)."""
    requests.post(f"{sandbox.lnb.url}/_sandbox/orders/{reference}", json={"items": lines},
                  timeout=10).raise_for_status()


def _fix_zero_quantities(sandbox: Sandbox, reference: str) -> None:
    """README's fix for ``invalid quantity 0``: the line's quantity, in LNB."""
    _set_lnb_lines(sandbox, reference, [{**line, "quantity": line["quantity"] or 2}
                                        for line in _lnb_lines(sandbox, reference)])


def _add_a_line(sandbox: Sandbox, reference: str, like: str) -> None:
    """README's fix for ``order has no lines``: a line added in LNB, here the first product of order ``like``."""
    _set_lnb_lines(sandbox, reference, [*_lnb_lines(sandbox, reference),
                                        {**_lnb_lines(sandbox, like)[0], "quantity": 1}])


def _blocked_now(*fixed: str) -> list[str]:
    """The demo's blocked orders but ``fixed``, by reference: what the lists must show."""
    return [reference for reference in DEMO_BLOCKED if reference not in fixed]


def _expect_blocked(page: Page, ui: DagsterUi, artifacts: Path, blocked: list[str], shot: str) -> list[list[str]]:
    """``lnb_orders_for_export`` and its check ``no_order_blocked`` list exactly ``blocked``, and count them.
    The asset's ``blocked_orders`` rows."""
    page.goto(f"{ui.url}/assets/lnb_orders_for_export")
    _expect_value(page, "orders_blocked_now", str(len(blocked)))
    table = _table(page, "blocked_orders")
    assert table[0] == BLOCKED_COLUMNS
    assert [row[0] for row in table[1:]] == blocked
    _screenshot(page, artifacts, f"{shot}-lnb_orders_for_export")

    pane = _open_check(page, ui, "lnb_orders_for_export", "no_order_blocked", "Failed")
    expect(_check_entry(page, "no_order_blocked").get_by_role("img", name=ERROR_ICON, exact=True)).to_be_visible()
    expect(pane).to_contain_text("non-blocking")
    _description(pane, f"{len(blocked)} orders blocked now, kept in their LNB status until fixed: ")
    _expect_value(page, "orders_blocked_now", str(len(blocked)))
    assert _table(page, "blocked_orders") == table
    _screenshot(page, artifacts, f"{shot}-no_order_blocked")
    return table


def _expect_sent(page: Page, ui: DagsterUi, artifacts: Path, sandbox: Sandbox, sent: dict[str, str],
                 shot: str) -> None:
    """``shopify_orders_from_lnb`` lists ``sent`` (reference → Shopify order name), created in Shopify
    with the admin link of each order, and Shopify holds each of them exactly once under that name."""
    page.goto(f"{ui.url}/assets/shopify_orders_from_lnb")
    _expect_value(page, "orders_created", str(len(sent)))
    table = _table(page, "sent_to_shopify")
    assert table[0] == SENT_COLUMNS
    assert {row[0]: (row[2], row[3]) for row in table[1:]} == {
        reference: ("created in Shopify", name) for reference, name in sent.items()}
    assert all(row[4].startswith(f"{sandbox.shopify_url}/admin/orders/") for row in table[1:])
    in_shopify = demo_shopify_orders(sandbox)
    assert {reference: in_shopify[reference] for reference in sent} == {
        reference: [name] for reference, name in sent.items()}
    _screenshot(page, artifacts, f"{shot}-shopify_orders_from_lnb")


# --- the tour -----------------------------------------------------------------------------------

def test_preview_writes_nothing_the_push_sets_what_it_listed_and_the_guard_stops_a_lost_read(
        sandbox: Sandbox, dagster_ui: DagsterUi, page: Page, artifacts: Path) -> None:
    """Tour steps 1 to 3: the preview, the push, and the push guard with its override."""
    ui = dagster_ui
    stock_before = _lnb_stock(sandbox)
    with _evidence_on_failure(page, ui, artifacts, "stock"):
        page.goto(f"{ui.url}/jobs")
        expect(page.get_by_role("link", name="job inventory_preview", exact=True)).to_be_visible()
        _screenshot(page, artifacts, "stock-1-jobs")

        _, status = _materialize_all(page, ui, "inventory_preview")
        _screenshot(page, artifacts, "stock-1-run-inventory_preview")
        assert status == "Success"
        assert _lnb_stock(sandbox) == stock_before
        assert _lnb_writes(sandbox) == {}

        page.goto(f"{ui.url}/assets/lnb_stock_preview")
        _expect_value(page, "keys_changed", str(DEMO_KEYS_CHANGED))
        changed = _table(page, "keys_changed_list")
        assert changed[0] == CHANGED_COLUMNS
        assert len(changed) - 1 == DEMO_KEYS_CHANGED
        assert changed[1] == [*DEMO_LARGEST_CHANGE[:-1], sandbox.shopify_url + DEMO_LARGEST_CHANGE[-1]]
        for listed in ("keys_new_to_lnb", "keys_missing_from_shopify"):
            _expect_value(page, listed, "4")
            assert len(_table(page, f"{listed}_list")) - 1 == 4
        _screenshot(page, artifacts, "stock-1-lnb_stock_preview")
        pane = _open_check(page, ui, "lnb_stock_preview", "push_within_guard_limits", "Passed")
        _description(pane, f"Within the push guard's limits: {DEMO_KEYS_CHANGED} of LNB's {DEMO_KEYS_IN_LNB} "
                           "keys would change ")
        _screenshot(page, artifacts, "stock-1-push_within_guard_limits-passed")

        page.goto(f"{ui.url}/assets/available_to_sell")
        _expect_value(page, "variants_excluded", "17")
        assert _table(page, "variants_excluded_by_reason") == DEMO_EXCLUDED_BY_REASON
        excluded = _table(page, "variants_excluded_list")
        assert len(excluded) - 1 == 17
        assert [*DEMO_EXCLUDED_FIRST[:-1], sandbox.shopify_url + DEMO_EXCLUDED_FIRST[-1]] in excluded
        _screenshot(page, artifacts, "stock-1-available_to_sell")

        _, status = _materialize_all(page, ui, "inventory_sync")
        _screenshot(page, artifacts, "stock-2-run-inventory_sync")
        assert status == "Success"
        pushed = _lnb_stock(sandbox)
        assert {key: units for key, units in pushed.items() if stock_before[key] != units} == {
            row[0]: int(row[5]) for row in changed[1:]}
        page.goto(f"{ui.url}/assets/lnb_stock_push")
        _expect_value(page, "keys_pushed", str(DEMO_KEYS_CHANGED))
        _screenshot(page, artifacts, "stock-2-lnb_stock_push")

        _zero_shopify_stock(sandbox)
        _, status = _materialize_all(page, ui, "inventory_sync")
        _screenshot(page, artifacts, "stock-3-run-inventory_sync-blocked")
        assert status == "Failure"
        assert _lnb_stock(sandbox) == pushed
        pane = _open_check(page, ui, "lnb_stock_preview", "push_within_guard_limits", "Failed")
        expect(pane).to_contain_text("This is a blocking asset check.")
        blocked = _description(pane, rf"Push blocked: \d+ of LNB's {DEMO_KEYS_IN_LNB} keys would change ")
        _screenshot(page, artifacts, "stock-3-push_within_guard_limits-blocked")
        figures = re.match(r"Push blocked: (\d+) of LNB's \d+ keys would change \([\d.]+%, limit 50%\); \d+ of LNB's "
                           r"\d+ units would go to zero \([\d.]+%, limit 10%\)\. .* run config (ops: .+)\.$", blocked)
        assert figures is not None, blocked
        keys_to_change, run_config = int(figures.group(1)), figures.group(2)
        assert keys_to_change > DEMO_KEYS_IN_LNB / 2
        page.goto(f"{ui.url}/assets/lnb_stock_preview")
        _expect_value(page, "keys_changed", str(keys_to_change))

        _, status = _launch_with_config(page, ui, artifacts, "inventory_sync", run_config,
                                        "stock-3-launchpad-confirm_push_guard")
        _screenshot(page, artifacts, "stock-3-run-inventory_sync-confirmed")
        assert status == "Success"
        pane = _open_check(page, ui, "lnb_stock_preview", "push_within_guard_limits", "Passed")
        _description(pane, "Beyond the push guard's limits, pushed as confirmed by run config")
        _screenshot(page, artifacts, "stock-3-push_within_guard_limits-confirmed")
        confirmed = _lnb_stock(sandbox)
        zeroed = {key for key, units in confirmed.items() if pushed[key] != units}
        assert len(zeroed) == keys_to_change
        assert {confirmed[key] for key in zeroed} == {0}


def test_a_blocked_order_is_named_fixed_and_sent_and_the_report_stays_whole(
        sandbox: Sandbox, dagster_ui: DagsterUi, page: Page, artifacts: Path) -> None:
    """Tour steps 4 to 6: blocked orders by retailer name and reason; one fixed in LNB and sent by the
    next run; one more fixed and sent by a run for its reference alone, the others still listed; each
    run's problems tag on the runs list."""
    ui = dagster_ui
    with _evidence_on_failure(page, ui, artifacts, "orders"):
        first_run, status = _materialize_all(page, ui, "orders_export")
        _screenshot(page, artifacts, "orders-1-run-orders_export")
        assert status == "Success"
        blocked = _expect_blocked(page, ui, artifacts, _blocked_now(), "orders-1")
        assert NO_CUSTOMER in blocked
        assert [ZERO_QUANTITY, "Utrecht Uniform", "R1011", "line 3: invalid quantity 0: must be a whole number >= 1",
                f"{sandbox.shopify_url}/admin/customers/11"] in blocked
        _expect_sent(page, ui, artifacts, sandbox,
                     {reference: f"#{1001 + number}" for number, reference in enumerate(DEMO_EXPORTABLE)}, "orders-1")

        _fix_zero_quantities(sandbox, ZERO_QUANTITY)
        second_run, status = _materialize_all(page, ui, "orders_export")
        assert status == "Success"
        _expect_sent(page, ui, artifacts, sandbox, {ZERO_QUANTITY: f"#{FIRST_NEW_ORDER}"}, "orders-2")
        _expect_blocked(page, ui, artifacts, _blocked_now(ZERO_QUANTITY), "orders-2")

        _add_a_line(sandbox, NO_LINES, like=ZERO_QUANTITY)
        one_order = f"ops: {{lnb_orders_for_export: {{config: {{references: [{NO_LINES}]}}}}}}"
        third_run, status = _launch_with_config(page, ui, artifacts, "orders_export", one_order,
                                                "orders-3-launchpad-one-reference")
        assert status == "Success"
        _expect_sent(page, ui, artifacts, sandbox, {NO_LINES: f"#{FIRST_NEW_ORDER + 1}"}, "orders-3")
        _expect_blocked(page, ui, artifacts, _blocked_now(ZERO_QUANTITY, NO_LINES), "orders-3")
        page.goto(f"{ui.url}/assets/lnb_orders_for_export")
        _expect_value(page, "selection", "the 1 order a person listed in the run config")
        _expect_value(page, "orders_selected", "1")

        page.goto(f"{ui.url}/runs")
        for run_id, blocked_count in ((first_run, 10), (second_run, 9), (third_run, 8)):
            expect(_run_tags(page, run_id)).to_contain_text(
                f"problems: {blocked_count} orders blocked", timeout=TAG_SECONDS * 1000)
        _screenshot(page, artifacts, "orders-4-runs-with-problems-tags")
        page.goto(f"{ui.url}/overview")
        expect(page.get_by_role("link", name="orders_export orders_export", exact=True)).to_be_visible()
        _screenshot(page, artifacts, "orders-4-overview")
        page.goto(f"{ui.url}/assets")
        expect(page.get_by_text("shopify_locations", exact=True).first).to_be_visible()
        expect(page.get_by_text(re.compile(r"^Loading"))).to_have_count(0)
        _screenshot(page, artifacts, "orders-4-catalog")


def test_alerts_read_off_without_a_webhook(dagster_ui: DagsterUi, page: Page, artifacts: Path) -> None:
    """Tour step 6: with LNB_ALERT_WEBHOOK_URL unset, both alert sensors are stopped and say why; the
    sensor that tags runs with their problems runs."""
    ui = dagster_ui
    with _evidence_on_failure(page, ui, artifacts, "alerts"):
        page.goto(f"{ui.url}/automation")
        expect(page.get_by_role("link", name=re.compile(r"^sensors lnb_run_failure_alert"))).to_be_visible()
        _screenshot(page, artifacts, "alerts-1-automation")
        for sensor, running in (("lnb_run_failure_alert", False), ("lnb_blocked_orders_alert", False),
                                ("lnb_run_problems", True)):
            page.goto(f"{ui.url}/locations/lnb_pipeline/sensors/{sensor}")
            toggle = page.get_by_role("row", name="Running", exact=True).get_by_role("checkbox")
            expect(toggle).to_be_checked(checked=running)
            description = _metadata_row(page, "Description").get_by_role("cell").last
            if running:
                expect(description).not_to_contain_text("OFF")
            else:
                expect(description).to_have_text(re.compile(r"^OFF: LNB_ALERT_WEBHOOK_URL is not set, so this alert is "
                                                             r"stopped and nobody is told\."))
            _screenshot(page, artifacts, f"alerts-2-{sensor}")
