"""The one-time Shopify setup end to end: real runs of the `shopify_setup` job against the sandbox.

What counts is read back from Shopify as any client would: the metafield definitions there (and
their ids, to show that nothing was replaced), the custom id look-ups they enable, and how many
``metafieldDefinitionCreate`` calls reached the shop.
"""

from __future__ import annotations

from typing import Any

import dagster as dg
import pytest
import requests
from conftest import reset_sandbox
from helpers import shopify_data

from lnb_pipeline.definitions import defs
from lnb_pipeline.sandbox import Sandbox
from lnb_pipeline.sandbox.generators import demo_scenario

DEFINITIONS = """query($owner: MetafieldOwnerType!) {
  metafieldDefinitions(ownerType: $owner, first: 10) { nodes { id namespace key name type { name } } } }"""
CUSTOMER_BY_REFERENCE = """{ customerByIdentifier(identifier: {customId: {namespace: "lenewblack",
  key: "retailer_reference", value: "R1001"}}) { id } }"""
SETUP_SCOPES = ["read_products", "read_inventory", "read_locations", "read_customers", "write_customers",
                "write_orders", "read_all_orders"]


def run_setup() -> tuple[dg.ExecuteInProcessResult, list[dict[str, Any]]]:
    """One run of the job, as launched from the UI; the outcome table it leaves (on success or failure)."""
    result = defs().resolve_job_def("shopify_setup").execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
    events = [event for event in result.all_events if event.step_key == "create_custom_id_definitions"]
    [output] = [event for event in events if event.event_type_value in ("STEP_OUTPUT", "STEP_FAILURE")]
    if output.event_type_value == "STEP_OUTPUT":
        metadata = output.step_output_data.metadata
    else:
        failure = output.step_failure_data.user_failure_data
        assert failure is not None, output.step_failure_data.error
        metadata = failure.metadata
    return result, [record.data for record in metadata["definitions"].value.records]


def definitions(sandbox: Sandbox, owner: str) -> list[dict[str, Any]]:
    return shopify_data(sandbox, DEFINITIONS, {"owner": owner})["metafieldDefinitions"]["nodes"]


def definition_creates(sandbox: Sandbox) -> int:
    stats = requests.get(f"{sandbox.shopify.url}/_sandbox/stats", timeout=10).json()["requests"]
    return stats.get("metafieldDefinitionCreate", 0)


def outcome(outcomes: list[dict[str, Any]], owner: str) -> tuple[str, str]:
    [row] = [row for row in outcomes if row["owner"] == owner]
    return row["outcome"], row["detail"]


def test_setup_creates_both_custom_ids_and_a_second_run_changes_nothing(sandbox: Sandbox) -> None:
    reset_sandbox(sandbox, "demo+definitions_missing")
    assert definitions(sandbox, "CUSTOMER") == definitions(sandbox, "ORDER") == []
    first, outcomes = run_setup()
    assert first.success
    assert [(row["owner"], row["metafield"], row["outcome"]) for row in outcomes] == [
        ("customers", "lenewblack.retailer_reference", "created"), ("orders", "lenewblack.order_reference", "created")]
    created = {owner: definitions(sandbox, owner) for owner in ("CUSTOMER", "ORDER")}
    assert [(d["namespace"], d["key"], d["name"], d["type"]["name"]) for d in created["CUSTOMER"]] == [
        ("lenewblack", "retailer_reference", "LNB retailer reference", "id")]
    assert [(d["key"], d["type"]["name"]) for d in created["ORDER"]] == [("order_reference", "id")]
    assert shopify_data(sandbox, CUSTOMER_BY_REFERENCE)["customerByIdentifier"] == {"id": "gid://shopify/Customer/1"}

    second, outcomes = run_setup()
    assert second.success
    assert [row["outcome"] for row in outcomes] == ["already there, unchanged"] * 2
    assert {owner: definitions(sandbox, owner) for owner in ("CUSTOMER", "ORDER")} == created
    assert definition_creates(sandbox) == 2


def test_setup_on_a_ready_shop_sends_no_create(sandbox: Sandbox) -> None:
    before = {owner: definitions(sandbox, owner) for owner in ("CUSTOMER", "ORDER")}
    result, outcomes = run_setup()
    assert result.success
    assert [row["outcome"] for row in outcomes] == ["already there, unchanged"] * 2
    assert {owner: definitions(sandbox, owner) for owner in ("CUSTOMER", "ORDER")} == before
    assert definition_creates(sandbox) == 0


def test_a_definition_of_another_type_is_reported_and_left_alone(sandbox: Sandbox) -> None:
    scenario = demo_scenario()
    scenario["shop"]["scopes"] = SETUP_SCOPES
    scenario["metafield_definitions"] = [
        {"owner_type": "CUSTOMER", "namespace": "lenewblack", "key": "retailer_reference",
         "type": "single_line_text_field", "name": "Retailer (text)"}]
    reset_sandbox(sandbox, scenario)
    before = definitions(sandbox, "CUSTOMER")
    result, outcomes = run_setup()
    assert not result.success
    assert outcome(outcomes, "customers") == (
        "another type under that key: not changed",
        "defined with type single_line_text_field: point SHOPIFY_CUSTOMER_METAFIELD at another namespace.key, or "
        "replace that definition in the Shopify admin yourself")
    assert outcome(outcomes, "orders")[0] == "created"
    assert definitions(sandbox, "CUSTOMER") == before
    assert [d["type"]["name"] for d in definitions(sandbox, "ORDER")] == ["id"]
    [failure] = [event for event in result.all_events if event.event_type_value == "STEP_FAILURE"]
    assert "lenewblack.retailer_reference on customers: another type under that key" in (
        failure.step_failure_data.user_failure_data.description)
    assert definition_creates(sandbox) == 1


def test_without_write_customers_the_customer_custom_id_is_refused_naming_the_scope(sandbox: Sandbox) -> None:
    scenario = demo_scenario()
    scenario["metafield_definitions"] = []
    reset_sandbox(sandbox, scenario)
    result, outcomes = run_setup()
    assert not result.success
    assert outcome(outcomes, "customers") == (
        "refused by Shopify", "Shopify GraphQL error: Access denied for metafieldDefinitionCreate field. Required "
                              "access: `write_customers` access scope.")
    assert outcome(outcomes, "orders")[0] == "created"
    assert definitions(sandbox, "CUSTOMER") == []


def test_companies_need_no_customer_custom_id(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOPIFY_CUSTOMER_MATCH", "company")
    reset_sandbox(sandbox, "demo+definitions_missing")
    result, outcomes = run_setup()
    assert result.success
    assert outcome(outcomes, "customers") == ("not needed", "SHOPIFY_CUSTOMER_MATCH=company: retailers are found as "
                                                            "B2B companies")
    assert definitions(sandbox, "CUSTOMER") == []
    assert [d["type"]["name"] for d in definitions(sandbox, "ORDER")] == ["id"]


def test_other_metafield_settings_are_honoured(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOPIFY_ORDER_METAFIELD", "brand.lnb_order")
    result, outcomes = run_setup()
    assert result.success
    assert outcome(outcomes, "orders")[0] == "created"
    assert sorted((d["namespace"], d["key"]) for d in definitions(sandbox, "ORDER")) == [
        ("brand", "lnb_order"), ("lenewblack", "order_reference")]
