"""Helpers several test modules share: the Shopify schemas, run results, modules built from the
environment, and the demo scenario read back from the sandbox."""

from __future__ import annotations

import gzip
import importlib
import json
import os
from collections.abc import Callable
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar
from unittest import mock

import dagster as dg
import requests
from graphql import GraphQLSchema, build_client_schema, build_schema

from lnb_pipeline.sandbox import Sandbox
from lnb_pipeline.sandbox.generators import DEMO_CASES, demo_scenario
from lnb_pipeline.sandbox.shopify.api import DEFAULT_TOKEN

REPO_ROOT = Path(__file__).resolve().parent.parent
REAL_SCHEMA_PATH = REPO_ROOT.parent / "shared" / "shopify-schema" / "admin_2026-04.json.gz"
"""Shopify's real Admin 2026-04 schema, beside the project; tests that need it skip without it."""
SANDBOX_SDL_PATH = REPO_ROOT / "lnb_pipeline" / "sandbox" / "shopify" / "schema.graphql"

T = TypeVar("T")


@cache
def real_schema() -> GraphQLSchema:
    """The real Shopify Admin 2026-04 schema, built from its introspection JSON."""
    with gzip.open(REAL_SCHEMA_PATH, "rt", encoding="utf-8") as stream:
        return build_client_schema(json.load(stream)["data"])


@cache
def sandbox_schema() -> GraphQLSchema:
    """The sandbox's SDL subset, built the way the sandbox builds it."""
    return build_schema(SANDBOX_SDL_PATH.read_text(encoding="utf-8"))


def asset_metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict[str, Any]:
    [materialization] = result.asset_materializations_for_node(asset)
    return {name: value.value for name, value in materialization.metadata.items()}


def check_evaluation(result: dg.ExecuteInProcessResult, name: str) -> dg.AssetCheckEvaluation:
    [evaluation] = [e for e in result.get_asset_check_evaluations() if e.check_name == name]
    return evaluation


def check_metadata(result: dg.ExecuteInProcessResult, name: str) -> dict[str, Any]:
    return {key: value.value for key, value in check_evaluation(result, name).metadata.items()}


def reloaded_under(module: ModuleType, environment: dict[str, str | None], pick: Callable[[ModuleType], T]) -> T:
    """What ``pick`` finds in ``module`` re-imported with ``environment`` (None: unset); the module is
    restored afterwards. For definitions that read settings at import, such as schedules."""
    try:
        with mock.patch.dict(os.environ):
            for name, value in environment.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            return pick(importlib.reload(module))
    finally:
        importlib.reload(module)


# --- the demo scenario, read back as any API client would ---------------------------------------

DEMO_CONFIRMED = [order["reference"] for order in demo_scenario()["lnb"]["orders"] if order["status"] == "confirmed"]
DEMO_EXPORTABLE = [*DEMO_CASES["order_valid"], *DEMO_CASES["order_line_sku_only"],
                   *DEMO_CASES["order_line_upc_barcode"]]
"""In export order, so the n-th is created in Shopify as #100n."""
DEMO_BLOCKED = [reference for reference in DEMO_CONFIRMED if reference not in DEMO_EXPORTABLE]
ALL_ORDERS_QUERY = "{ orders(first: 250) { nodes { name sourceIdentifier } } }"


def lnb_get(sandbox: Sandbox, path: str) -> Any:
    """An LNB read with the sandbox's client credentials."""
    token = requests.post(f"{sandbox.lnb_base_url}/auth/token", timeout=10, json={
        "grant_type": "client_credentials", "client_id": "sandbox-client", "client_secret": "sandbox-secret",
    }).json()["access_token"]
    response = requests.get(f"{sandbox.lnb_base_url}{path}", params={"access_token": token}, timeout=10)
    response.raise_for_status()
    return response.json()


def shopify_data(sandbox: Sandbox, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    """A Shopify Admin GraphQL call with the sandbox's default token; its ``data``."""
    response = requests.post(f"{sandbox.shopify_url}/admin/api/2026-04/graphql.json", timeout=10,
                             headers={"X-Shopify-Access-Token": DEFAULT_TOKEN},
                             json={"query": query, "variables": variables or {}})
    response.raise_for_status()
    return response.json()["data"]


def demo_lnb_statuses(sandbox: Sandbox) -> dict[str, str]:
    """The LNB status of every order the demo has confirmed."""
    return {order["reference"]: order["status"] for order in lnb_get(sandbox, "/orders")
            if order["reference"] in DEMO_CONFIRMED}


def demo_shopify_orders(sandbox: Sandbox) -> dict[str, list[str]]:
    """Per confirmed demo order, the names of the Shopify orders carrying its reference
    (``sourceIdentifier``), from the list of all orders: a search could miss one, its index lagging."""
    orders = shopify_data(sandbox, ALL_ORDERS_QUERY)["orders"]["nodes"]
    return {reference: [order["name"] for order in orders if order["sourceIdentifier"] == reference]
            for reference in DEMO_CONFIRMED}
