"""``ShopifyResource`` in real ``dg.materialize`` runs against the Shopify sandbox.

Settings come from the environment, as ``shopify_resource_from_env()`` reads them, and a missing or
malformed one must stop the run at resource setup with a message naming the variable, before any
request reaches Shopify.
"""

from collections.abc import Iterator

import dagster as dg
import pytest
import requests

from lnb_pipeline.clients.shopify_queries import SHOP_QUERY
from lnb_pipeline.defs.shopify.resources import (
    ShopifyResource,
    shopify_resource_from_env,
)
from lnb_pipeline.sandbox import Sandbox, start_sandbox

SHOPIFY_VARIABLES = ("SHOPIFY_SHOP_URL", "SHOPIFY_ACCESS_TOKEN")


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    running = start_sandbox("demo")
    yield running
    running.stop()


def sandbox_requests(sandbox: Sandbox) -> int:
    return requests.get(f"{sandbox.shopify_url}/_sandbox/stats", timeout=5).json()["total_requests"]


@pytest.fixture
def shopify_env(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    """The SHOPIFY_* variables pointing at a freshly reset sandbox, the API version left to its default."""
    requests.post(f"{sandbox.shopify_url}/_sandbox/reset", json={}, timeout=5).raise_for_status()
    for name, value in sandbox.environment().items():
        if name in SHOPIFY_VARIABLES:
            monkeypatch.setenv(name, value)
    monkeypatch.delenv("SHOPIFY_API_VERSION", raising=False)
    return sandbox


@dg.asset
def shop_name(context: dg.AssetExecutionContext, shopify: ShopifyResource) -> str:
    client = shopify.get_client(context.log)
    try:
        return client.execute(SHOP_QUERY)["shop"]["name"]
    finally:
        client.close()


def materialize_shop_name() -> dg.ExecuteInProcessResult:
    return dg.materialize([shop_name], resources={"shopify": shopify_resource_from_env()}, raise_on_error=False)


@pytest.mark.parametrize(("api_version", "path"), [
    (None, "/admin/api/2026-04/graphql.json"),
    ("2026-01", "/admin/api/2026-01/graphql.json"),
])
def test_resource_from_env_reads_the_shop_at_the_configured_version(
    shopify_env: Sandbox, monkeypatch: pytest.MonkeyPatch, api_version: str | None, path: str
) -> None:
    if api_version is not None:
        monkeypatch.setenv("SHOPIFY_API_VERSION", api_version)
    result = materialize_shop_name()
    assert result.success
    assert result.output_for_node("shop_name") == "Maison Demo"
    sent = requests.get(f"{shopify_env.shopify_url}/_sandbox/requests", timeout=5).json()
    assert [entry["path"] for entry in sent] == [path]


def test_missing_access_token_fails_naming_the_variable(shopify_env: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    """An unset ``dg.EnvVar`` fails config resolution, which Dagster raises even with ``raise_on_error=False``."""
    monkeypatch.delenv("SHOPIFY_ACCESS_TOKEN")
    with pytest.raises(dg.DagsterInvalidConfigError,
                       match='environment variable "SHOPIFY_ACCESS_TOKEN" which is not set'):
        materialize_shop_name()
    assert sandbox_requests(shopify_env) == 0


@pytest.mark.parametrize(
    ("variable", "value", "complaint"),
    [
        ("SHOPIFY_SHOP_URL", "brand.myshopify.com",
         "SHOPIFY_SHOP_URL must be an http(s) URL such as https://brand.myshopify.com, got 'brand.myshopify.com'"),
        ("SHOPIFY_ACCESS_TOKEN", " ", "SHOPIFY_ACCESS_TOKEN is empty"),
        ("SHOPIFY_API_VERSION", "2026-05",
         "SHOPIFY_API_VERSION must look like 2026-04 (a quarterly release), got '2026-05'"),
    ],
)
def test_malformed_setting_fails_at_setup_before_any_request(
    shopify_env: Sandbox, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, complaint: str
) -> None:
    monkeypatch.setenv(variable, value)
    result = materialize_shop_name()
    assert not result.success
    init_failures = [e for e in result.all_events if e.event_type_value == "RESOURCE_INIT_FAILURE"]
    assert len(init_failures) == 1
    assert complaint in dg.serialize_value(init_failures[0])
    assert sandbox_requests(shopify_env) == 0
