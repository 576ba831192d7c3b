"""The readiness report end to end: real runs of the `integration_readiness` job against the sandbox.

Each test loads the demo or the demo with a readiness switch (``demo+scopes_missing``, …), runs the
job as `make run` would (resources from the environment, settings changed through their
variables), and reads back what the UI shows: the table's rows and the checks. Each switch makes its
row fail, and the row passes again after the fix the row names: ``shopify_setup``, another setting,
or the shop as it should be.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import dagster as dg
import pytest
import requests
from conftest import reset_sandbox
from helpers import DEMO_BLOCKED, DEMO_CONFIRMED

from lnb_pipeline.definitions import defs
from lnb_pipeline.rules.readiness import GO, NO_GO, POINTS, WARN
from lnb_pipeline.sandbox import Sandbox
from lnb_pipeline.sandbox.generators import DEMO_CASES, demo_scenario

ASSET = "go_live_readiness"
SHOPIFY_POINTS = ["Shopify API version", "Shopify access scopes", "Access to all orders (read_all_orders)",
                  "Store type", "Shop currency", "B2B companies (Shopify Plus)",
                  "Customer custom id (retailer reference)", "Order custom id (exactly-once)", "Product codes",
                  "Stock key coverage", "Stock locations"]
LNB_POINTS = ["LNB order statuses", "Stock keys in LNB and Shopify", "Retailers matched in Shopify",
              "Orders waiting for export"]
DEMO_STATUSES = {
    "Shopify connection": GO, "Shopify API version": GO, "Shopify access scopes": GO,
    "Access to all orders (read_all_orders)": GO, "Store type": GO, "Shop currency": WARN,
    "B2B companies (Shopify Plus)": GO, "Customer custom id (retailer reference)": GO,
    "Order custom id (exactly-once)": GO, "Product codes": WARN, "Stock key coverage": WARN,
    "Stock locations": GO, "LNB connection": GO, "LNB order statuses": GO, "Stock keys in LNB and Shopify": WARN,
    "Retailers matched in Shopify": WARN, "Orders waiting for export": WARN,
}
"""The demo as shipped: ready, but for the records its deliberate cases leave out."""


@dataclass(frozen=True)
class Report:
    rows: dict[str, dict[str, str]]
    """Point label → ``status``, ``found``, ``fix``, as the table on the asset's page shows them."""
    checks: dict[str, dg.AssetCheckEvaluation]
    """Point label → its check's evaluation."""
    metadata: dict[str, Any]

    def status(self, point: str) -> str:
        return self.rows[point]["status"]

    def found(self, point: str) -> str:
        return self.rows[point]["found"]

    def statuses(self) -> dict[str, str]:
        return {point: row["status"] for point, row in self.rows.items()}


def run_report() -> Report:
    """One run of the `integration_readiness` job, as launched from the UI, with the current environment."""
    result = defs().resolve_job_def("integration_readiness").execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
    assert result.success, "the report reports problems; its run must not fail on them"
    [materialization] = result.asset_materializations_for_node(ASSET)
    metadata = {name: value.value for name, value in materialization.metadata.items()}
    rows = {record.data["point"]: record.data for record in metadata["readiness"].records}
    by_check = {evaluation.check_name: evaluation for evaluation in result.get_asset_check_evaluations()}
    checks = {point.label: by_check[point.check] for point in POINTS}
    report = Report(rows, checks, metadata)
    assert_checks_follow_rows(report)
    return report


def assert_checks_follow_rows(report: Report) -> None:
    """Every row has its check: passed when go, failed WARN when warn, failed ERROR when no-go."""
    assert list(report.rows) == [point.label for point in POINTS]
    for point, row in report.rows.items():
        check = report.checks[point]
        assert check.passed == (row["status"] == GO), point
        expected = dg.AssetCheckSeverity.ERROR if row["status"] == NO_GO else dg.AssetCheckSeverity.WARN
        assert check.severity == expected, point
        assert check.description == row["found"], point
        assert check.metadata["fix"].value == (row["fix"] or "nothing to do"), point


def reload(sandbox: Sandbox, spec: str | dict[str, Any]) -> None:
    reset_sandbox(sandbox, spec)


def failing_then_fixed(sandbox: Sandbox, spec: str, fix: Callable[[], None]) -> tuple[Report, Report]:
    """The report on ``spec``, then again after ``fix``."""
    reload(sandbox, spec)
    before = run_report()
    fix()
    return before, run_report()


# --- the demo ----------------------------------------------------------------------------------


def test_the_demo_is_ready_but_for_the_records_its_cases_leave_out(sandbox: Sandbox) -> None:
    report = run_report()
    assert report.statuses() == DEMO_STATUSES
    assert report.metadata["verdict"] == "GO, with 6 warnings: some records are left out until fixed"
    assert (report.metadata["points_go"], report.metadata["points_warn"], report.metadata["points_no_go"]) == (11, 6, 0)
    variants = sum(len(product["variants"]) for product in demo_scenario()["products"])
    bad_ean13 = sum(len(DEMO_CASES[case]) for case in (
        "variant_without_barcode", "variant_without_barcode_and_sku", "invalid_ean13", "duplicate_barcode"))
    assert report.found("Stock key coverage").startswith(
        f"with LNB_STOCK_KEY=ean13, {bad_ean13} of {variants} variants ({100 * bad_ean13 / variants:.1f}%)")
    assert report.found("Product codes").startswith(f"{variants} variants: ")
    assert f"{len(DEMO_CASES['duplicate_barcode'])} sharing an EAN13" in report.found("Product codes")
    assert report.found("Stock locations") == ("3 locations: Paris Warehouse (summed), Amsterdam Store (summed), "
                                               "Old Depot (inactive, not summed)")


def test_the_demo_retailers_and_orders_are_each_accounted_for(sandbox: Sandbox) -> None:
    report = run_report()
    retailers = report.found("Retailers matched in Shopify")
    matched = len(DEMO_CASES["retailer_matched_by_customer"])
    total = matched + len(DEMO_CASES["retailer_matched_by_company_only"]) + len(
        DEMO_CASES["retailer_without_reference"]) + len(DEMO_CASES["retailer_reference_unmatched"])
    assert retailers.startswith(f"{matched} of {total} retailers matched; 3 without a reference")
    for name in [*DEMO_CASES["retailer_without_reference"], *DEMO_CASES["retailer_reference_unmatched"],
                 *DEMO_CASES["retailer_matched_by_company_only"]]:
        assert name in report.metadata["retailers_to_fix"], name
    for name in DEMO_CASES["retailer_matched_by_customer"]:
        assert name not in report.metadata["retailers_to_fix"], name
    assert report.found("Orders waiting for export").startswith(
        f"{len(DEMO_CONFIRMED)} orders in LNB status confirmed; {len(DEMO_BLOCKED)} would be blocked today")
    blocked_table = report.metadata["orders_blocked"]
    assert all(reference in blocked_table for reference in DEMO_BLOCKED)
    assert not any(f"| {reference} |" in blocked_table for reference in DEMO_CONFIRMED if reference not in DEMO_BLOCKED)
    assert "| retailer reference missing | 2 |" in report.metadata["orders_blocked_by_reason"]
    assert report.found("Shop currency") == "EUR; LNB orders waiting: 1 order in USD, which the export blocks"


def test_the_demo_stock_keys_lnb_has_and_shopify_lacks_are_listed(sandbox: Sandbox) -> None:
    report = run_report()
    lnb_only = DEMO_CASES["inventory_lnb_only"]
    assert f"; {len(lnb_only)} in LNB only" in report.found("Stock keys in LNB and Shopify")
    assert all(key in report.metadata["stock_keys_in_lnb_only"] for key in lnb_only)


def test_the_report_only_reads(sandbox: Sandbox) -> None:
    """Nothing written: only queries (and the bulk operation the stock read starts) go to Shopify, only
    reads (and the token) to LNB."""
    run_report()
    shopify = requests.get(f"{sandbox.shopify.url}/_sandbox/stats", timeout=10).json()["requests"]
    lnb = requests.get(f"{sandbox.lnb.url}/_sandbox/stats", timeout=10).json()["requests"]
    assert set(shopify) == {"shop", "currentAppInstallation", "metafieldDefinitions", "locations",
                            "productVariantsCount", "bulkOperationRunQuery", "bulkOperation", "customerByIdentifier"}
    assert set(lnb) == {"POST /auth/token", "GET /orders", "GET /inventory", "GET /retailers"}
    assert demo_lnb_unchanged(sandbox)


def demo_lnb_unchanged(sandbox: Sandbox) -> bool:
    token = requests.post(f"{sandbox.lnb_base_url}/auth/token", timeout=10, json={
        "grant_type": "client_credentials", "client_id": "sandbox-client", "client_secret": "sandbox-secret",
    }).json()["access_token"]
    orders = requests.get(f"{sandbox.lnb_base_url}/orders", params={"access_token": token}, timeout=10).json()
    return {o["reference"]: o["status"] for o in orders} == {
        o["reference"]: o["status"] for o in demo_scenario()["lnb"]["orders"]}


# --- each switch, failing then passing ---------------------------------------------------------


def test_missing_scopes_block_until_granted(sandbox: Sandbox) -> None:
    before, after = failing_then_fixed(sandbox, "demo+scopes_missing", lambda: reload(sandbox, "demo"))
    assert before.status("Shopify access scopes") == NO_GO
    assert before.found("Shopify access scopes").startswith("missing write_orders (granted: read_customers, ")
    assert before.rows["Shopify access scopes"]["fix"].startswith("add write_orders to the app's access scopes")
    assert before.status("Access to all orders (read_all_orders)") == WARN
    assert before.found("Order custom id (exactly-once)") == (
        "not checked: Shopify GraphQL error: Access denied for metafieldDefinitions field. Required access: "
        "`read_orders` access scope.")
    assert before.rows["Order custom id (exactly-once)"]["fix"].startswith("add the scope it names to the app's")
    assert before.metadata["verdict"] == ("NO-GO: 2 points block going live (Shopify access scopes, Order custom id "
                                          "(exactly-once))")
    assert after.statuses() == DEMO_STATUSES


def test_missing_custom_ids_block_until_shopify_setup_creates_them(sandbox: Sandbox) -> None:
    def setup() -> None:
        result = defs().resolve_job_def("shopify_setup").execute_in_process(instance=dg.DagsterInstance.ephemeral())
        assert result.success

    before, after = failing_then_fixed(sandbox, "demo+definitions_missing", setup)
    for point, metafield, owners in (("Customer custom id (retailer reference)", "lenewblack.retailer_reference",
                                      "customers"),
                                     ("Order custom id (exactly-once)", "lenewblack.order_reference", "orders")):
        assert before.status(point) == NO_GO
        assert before.found(point).startswith(f"no definition {metafield} on {owners}")
        assert before.rows[point]["fix"].startswith("run the shopify_setup job")
        assert after.found(point) == f"{metafield}: a definition of type id on {owners}"
    assert before.found("Retailers matched in Shopify") == (
        "not checked: customers are found by the custom id lenewblack.retailer_reference, which has no definition of "
        "type id")
    assert before.found("Orders waiting for export") == "not checked: the retailers could not be looked up in Shopify"
    assert after.statuses() == DEMO_STATUSES
    assert after.found("Retailers matched in Shopify") == run_report().found("Retailers matched in Shopify")


def test_a_development_store_is_a_warning_and_a_paid_plan_clears_it(sandbox: Sandbox) -> None:
    before, after = failing_then_fixed(sandbox, "demo+development_store", lambda: reload(sandbox, "demo"))
    assert before.statuses() == {**DEMO_STATUSES, "Store type": WARN}
    assert before.found("Store type").startswith("a development or trial store (Development): Shopify creates at "
                                                 "most 5 new orders a minute")
    assert after.status("Store type") == GO


def test_retailers_matching_nobody_block_until_shopify_carries_their_references(sandbox: Sandbox) -> None:
    before, after = failing_then_fixed(sandbox, "demo+retailers_unmatched", lambda: reload(sandbox, "demo"))
    assert before.status("Retailers matched in Shopify") == NO_GO
    assert before.found("Retailers matched in Shopify").startswith("0 of 18 retailers matched; 3 without a reference")
    assert "13 no Shopify customer" in before.found("Orders waiting for export")
    assert after.status("Retailers matched in Shopify") == WARN


def test_every_retailer_matched_is_go(sandbox: Sandbox) -> None:
    """The demo without its deliberately unmatched retailers (and their orders)."""
    scenario = demo_scenario()
    fixable = {*DEMO_CASES["retailer_without_reference"], *DEMO_CASES["retailer_reference_unmatched"],
               *DEMO_CASES["retailer_matched_by_company_only"]}
    lnb = scenario["lnb"]
    lnb["retailers"] = [r for r in lnb["retailers"] if r["name"] not in fixable]
    lnb["orders"] = [o for o in lnb["orders"] if o["retailer_name"] not in fixable]
    reload(sandbox, scenario)
    report = run_report()
    assert (report.status("Retailers matched in Shopify"), report.found("Retailers matched in Shopify")) == (
        GO, "12 of 12 retailers matched")
    assert "retailer reference missing" not in report.found("Orders waiting for export")


def test_low_barcode_coverage_blocks_the_push_until_the_sku_is_the_key(sandbox: Sandbox,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    before, after = failing_then_fixed(sandbox, "demo+low_barcode_coverage",
                                       lambda: monkeypatch.setenv("LNB_STOCK_KEY", "sku"))
    assert before.status("Stock key coverage") == NO_GO
    assert "above LNB_STOCK_MAX_INVALID_PERCENT (20%), the stock push is blocked" in before.found("Stock key coverage")
    assert before.rows["Stock key coverage"]["fix"].endswith("or LNB_STOCK_KEY=sku if LNB knows the products by it")
    assert before.found("Product codes").startswith("439 variants: 258 with a valid EAN13")
    assert after.status("Stock key coverage") == WARN
    assert after.found("Stock key coverage").startswith("with LNB_STOCK_KEY=sku, 9 of 439 variants (2.1%)")
    retired = len(DEMO_CASES["inventory_lnb_only"])
    assert f" sku keys in both; {retired} in LNB only" in after.found("Stock keys in LNB and Shopify")


def test_lnb_status_codes_it_does_not_know_block_until_the_setting_names_one_it_does(
        sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    before, after = failing_then_fixed(sandbox, "demo+lnb_statuses_differ",
                                       lambda: monkeypatch.setenv("LNB_ORDER_EXPORTED_STATUS", "closed"))
    assert before.status("LNB order statuses") == NO_GO
    assert before.found("LNB order statuses") == (
        "LNB refused 'invoicing': LNB GET /orders: HTTP 422: The given data was invalid. (status: status must be one "
        "of draft, open_for_buyer, open_for_brand, confirmed, invoiced, closed, canceled)")
    assert (after.status("LNB order statuses"), after.found("LNB order statuses")) == (
        GO, "confirmed (export) and closed (exported) accepted by LNB's API")


# --- settings and connections ------------------------------------------------------------------


def test_matching_companies_needs_shopify_plus(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOPIFY_CUSTOMER_MATCH", "company")

    def plus() -> None:
        requests.post(f"{sandbox.shopify.url}/_sandbox/config", json={"plan": "plus"}, timeout=10).raise_for_status()

    before, after = failing_then_fixed(sandbox, "demo", plus)
    assert before.status("B2B companies (Shopify Plus)") == NO_GO
    assert before.found("B2B companies (Shopify Plus)").endswith("this shop is on Standard")
    assert before.found("Customer custom id (retailer reference)").startswith("not used")
    companies = len(DEMO_CASES["retailer_matched_by_company"])
    assert before.found("Retailers matched in Shopify").startswith(f"{companies} of 18 retailers matched")
    assert "no Shopify company has that External ID" in before.found("Retailers matched in Shopify")
    assert after.status("B2B companies (Shopify Plus)") == GO


def test_an_api_version_shopify_falls_forward_from_is_a_warning(sandbox: Sandbox,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOPIFY_API_VERSION", "2025-07")
    report = run_report()
    assert report.status("Shopify API version") == WARN
    assert report.found("Shopify API version").startswith("asked for 2025-07, Shopify served 2026-04")


def test_unknown_locations_are_no_go_and_named_ones_are_summed(sandbox: Sandbox,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LNB_STOCK_LOCATIONS", "Nowhere")
    unknown = run_report()
    assert unknown.status("Stock locations") == NO_GO
    assert unknown.found("Stock locations").startswith("unknown location(s) 'Nowhere'; valid locations: ")
    monkeypatch.setenv("LNB_STOCK_LOCATIONS", "Old Depot")
    assert run_report().found("Stock locations") == ("3 locations: Paris Warehouse (not summed), Amsterdam Store "
                                                     "(not summed), Old Depot (summed)")


def test_refused_shopify_credentials_leave_the_lnb_points_checked(sandbox: Sandbox,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOPIFY_ACCESS_TOKEN", "shpat_wrong")
    report = run_report()
    assert report.status("Shopify connection") == NO_GO
    assert report.found("Shopify connection").startswith("Shopify refused the access token (HTTP 401)")
    assert all(report.found(point) == "not checked: Shopify did not answer" for point in SHOPIFY_POINTS)
    assert (report.status("LNB connection"), report.status("LNB order statuses")) == (GO, GO)
    assert report.found("Stock keys in LNB and Shopify") == "not checked: Shopify's catalogue could not be read"
    assert report.found("Retailers matched in Shopify") == "not checked: Shopify did not answer"
    assert "shpat_wrong" not in str(report.rows)


def test_refused_lnb_credentials_leave_the_shopify_points_checked(sandbox: Sandbox,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LNB_CLIENT_SECRET", "wrong-secret")
    report = run_report()
    assert report.status("LNB connection") == NO_GO
    assert report.found("LNB connection").startswith("LNB refused the client credentials for client id "
                                                     "'sandbox-client'")
    assert all(report.found(point) == "not checked: LNB did not answer" for point in LNB_POINTS)
    assert {point: report.status(point) for point in ("Shopify connection", "Product codes")} == {
        "Shopify connection": GO, "Product codes": WARN}
    assert "wrong-secret" not in str(report.rows)


def test_a_paged_read_finds_what_the_bulk_read_finds(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    bulk = run_report()
    monkeypatch.setenv("SHOPIFY_STOCK_READ_MODE", "paginated")
    paged = run_report()
    assert paged.rows == bulk.rows
    stats = requests.get(f"{sandbox.shopify.url}/_sandbox/stats", timeout=10).json()["requests"]
    assert stats["bulkOperationRunQuery"] == 1 and stats["productVariants"] >= 2
