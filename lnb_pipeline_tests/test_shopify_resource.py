"""``ShopifyResource`` in real ``dg.materialize`` runs against the Shopify sandbox.

Settings come from the environment, as ``from_environment(ShopifyResource)`` reads them, and a missing,
conflicting or malformed one must stop the run at resource setup with a message naming the variable,
before any request reaches Shopify. With a Dev Dashboard app's client credentials, a run fetches one
token for all its clients, and neither the secret nor that token reaches Dagster's logs.
"""

from collections.abc import Callable, Iterator
from typing import Any

import dagster as dg
import pytest
import requests

from lnb_pipeline.clients.shopify_queries import SHOP_QUERY
from lnb_pipeline.defs.inventory.assets import shopify_locations
from lnb_pipeline.defs.env import from_environment
from lnb_pipeline.defs.shopify.resources import ShopifyResource
from lnb_pipeline.sandbox import Sandbox, start_sandbox
from lnb_pipeline.sandbox.shopify.api import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET

SHOPIFY_VARIABLES = ("SHOPIFY_SHOP_URL", "SHOPIFY_ACCESS_TOKEN")
CLIENT_CREDENTIAL_VARIABLES = ("SHOPIFY_CLIENT_ID", "SHOPIFY_CLIENT_SECRET")
TOKEN_REQUEST = "POST /admin/oauth/access_token"
CHOICE = "set either SHOPIFY_ACCESS_TOKEN, or SHOPIFY_CLIENT_ID and SHOPIFY_CLIENT_SECRET"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    running = start_sandbox("demo")
    yield running
    running.stop()


def sandbox_requests(sandbox: Sandbox) -> int:
    return requests.get(f"{sandbox.shopify_url}/_sandbox/stats", timeout=5).json()["total_requests"]


def sandbox_stats(sandbox: Sandbox) -> dict[str, Any]:
    return requests.get(f"{sandbox.shopify_url}/_sandbox/stats", timeout=5).json()


@pytest.fixture
def shopify_env(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    """The SHOPIFY_* variables pointing at a freshly reset sandbox, the API version left to its default."""
    requests.post(f"{sandbox.shopify_url}/_sandbox/reset", json={}, timeout=5).raise_for_status()
    for name, value in sandbox.environment().items():
        if name in SHOPIFY_VARIABLES:
            monkeypatch.setenv(name, value)
    for name in ("SHOPIFY_API_VERSION", *CLIENT_CREDENTIAL_VARIABLES):
        monkeypatch.delenv(name, raising=False)
    return sandbox


@pytest.fixture
def client_credentials_env(shopify_env: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    """The sandbox app's client id and secret in place of SHOPIFY_ACCESS_TOKEN, as a Dev Dashboard app has."""
    monkeypatch.delenv("SHOPIFY_ACCESS_TOKEN")
    monkeypatch.setenv("SHOPIFY_CLIENT_ID", DEFAULT_CLIENT_ID)
    monkeypatch.setenv("SHOPIFY_CLIENT_SECRET", DEFAULT_CLIENT_SECRET)
    return shopify_env


@pytest.fixture
def tokens_sent(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """Every ``X-Shopify-Access-Token`` any ``requests.Session`` in this process sends during the test."""
    sent: set[str] = set()
    original: Callable[..., requests.Response] = requests.Session.request

    def recording_request(session: requests.Session, method: str, url: str, *args: Any,
                          **kwargs: Any) -> requests.Response:
        token = (kwargs.get("headers") or {}).get("X-Shopify-Access-Token")
        if token:
            sent.add(token)
        return original(session, method, url, *args, **kwargs)

    monkeypatch.setattr(requests.Session, "request", recording_request)
    return sent


@dg.asset
def shop_name(context: dg.AssetExecutionContext, shopify: ShopifyResource) -> str:
    client = shopify.get_client(context.log)
    try:
        return client.execute(SHOP_QUERY)["shop"]["name"]
    finally:
        client.close()


def materialize_shop_name() -> dg.ExecuteInProcessResult:
    return dg.materialize([shop_name], resources={"shopify": from_environment(ShopifyResource)}, raise_on_error=False)


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


def init_failure_text(result: dg.ExecuteInProcessResult) -> str:
    """The one RESOURCE_INIT_FAILURE event of a failed run, serialized."""
    assert not result.success
    init_failures = [e for e in result.all_events if e.event_type_value == "RESOURCE_INIT_FAILURE"]
    assert len(init_failures) == 1
    return dg.serialize_value(init_failures[0])


def run_texts(result: dg.ExecuteInProcessResult, instance: dg.DagsterInstance) -> list[str]:
    """Everything the run stored or reported: its event log (log lines included) and its events."""
    texts = [dg.serialize_value(entry) for entry in instance.all_logs(result.run_id)]
    return texts + [dg.serialize_value(event) for event in result.all_events]


@pytest.mark.parametrize(("variables", "complaint"), [
    ({}, f"Shopify credentials are missing: {CHOICE}"),
    ({"SHOPIFY_ACCESS_TOKEN": "sandbox-token", "SHOPIFY_CLIENT_ID": "id", "SHOPIFY_CLIENT_SECRET": "secret"},
     f"Shopify credentials conflict: {CHOICE}, not both"),
    ({"SHOPIFY_ACCESS_TOKEN": "sandbox-token", "SHOPIFY_CLIENT_SECRET": "secret"},
     f"Shopify credentials conflict: {CHOICE}, not both"),
    ({"SHOPIFY_CLIENT_ID": "id"},
     "SHOPIFY_CLIENT_ID is set but SHOPIFY_CLIENT_SECRET is not: the client credentials grant needs both"),
    ({"SHOPIFY_CLIENT_SECRET": "secret"},
     "SHOPIFY_CLIENT_SECRET is set but SHOPIFY_CLIENT_ID is not: the client credentials grant needs both"),
    ({"SHOPIFY_CLIENT_ID": " ", "SHOPIFY_CLIENT_SECRET": "secret"}, "SHOPIFY_CLIENT_ID is empty"),
    ({"SHOPIFY_CLIENT_ID": "id", "SHOPIFY_CLIENT_SECRET": ""}, "SHOPIFY_CLIENT_SECRET is empty"),
], ids=["none", "all-three", "token-and-secret", "id-only", "secret-only", "blank-id", "blank-secret"])
def test_credentials_other_than_one_complete_way_fail_at_setup_naming_the_variables(
    shopify_env: Sandbox, monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], complaint: str
) -> None:
    monkeypatch.delenv("SHOPIFY_ACCESS_TOKEN")
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    assert complaint in init_failure_text(materialize_shop_name())
    assert sandbox_requests(shopify_env) == 0


def test_variable_unset_after_load_fails_naming_it(shopify_env: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    """A variable bound when the definitions loaded must still be set when the run starts; an unset
    ``dg.EnvVar`` fails config resolution, which Dagster raises even with ``raise_on_error=False``."""
    resource = from_environment(ShopifyResource)
    monkeypatch.delenv("SHOPIFY_ACCESS_TOKEN")
    with pytest.raises(dg.DagsterInvalidConfigError,
                       match='environment variable "SHOPIFY_ACCESS_TOKEN" which is not set'):
        dg.materialize([shop_name], resources={"shopify": resource}, raise_on_error=False)
    assert sandbox_requests(shopify_env) == 0


def test_client_credentials_from_env_read_the_shop(client_credentials_env: Sandbox) -> None:
    result = materialize_shop_name()
    assert result.success
    assert result.output_for_node("shop_name") == "Maison Demo"
    sent = requests.get(f"{client_credentials_env.shopify_url}/_sandbox/requests", timeout=5).json()
    assert [entry["path"] for entry in sent] == ["/admin/oauth/access_token", "/admin/api/2026-04/graphql.json"]


def test_run_with_client_credentials_shares_one_token_and_logs_neither_secret_nor_token(
    client_credentials_env: Sandbox, tokens_sent: set[str]
) -> None:
    """The stock flow's first asset and another Shopify asset, in one run: one token between them."""
    resource = ShopifyResource(shop_url=client_credentials_env.shopify_url, client_id=dg.EnvVar("SHOPIFY_CLIENT_ID"),
                               client_secret=dg.EnvVar("SHOPIFY_CLIENT_SECRET"))
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([shopify_locations, shop_name], resources={"shopify": resource}, instance=instance)
    assert result.success
    assert len(result.output_for_node("shopify_locations")) == 3
    assert sandbox_stats(client_credentials_env)["requests"] == {TOKEN_REQUEST: 1, "locations": 1, "shop": 1}
    assert len(tokens_sent) == 1
    texts = run_texts(result, instance)
    assert any("Shopify access token obtained for SHOPIFY_CLIENT_ID 'sandbox-shopify-client'" in text
               for text in texts), "the token source's messages should be in the run's log"
    for secret in (DEFAULT_CLIENT_SECRET, *tokens_sent):
        assert not [text for text in texts if secret in text]


def test_wrong_client_secret_fails_the_run_naming_the_client_id_only(
    client_credentials_env: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On ``shop_name``: refused credentials fail the run at once, naming the client id and never the secret."""
    wrong_secret = "shopify-wrong-secret-5f0c2a"
    monkeypatch.setenv("SHOPIFY_CLIENT_SECRET", wrong_secret)
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([shop_name], resources={"shopify": from_environment(ShopifyResource)},
                            instance=instance, raise_on_error=False)
    assert not result.success
    texts = run_texts(result, instance)
    assert any("Shopify refused the client credentials of SHOPIFY_CLIENT_ID 'sandbox-shopify-client' (HTTP 400): "
               "invalid_client" in text for text in texts)
    assert not [text for text in texts if wrong_secret in text]
    assert sandbox_stats(client_credentials_env)["requests"] == {TOKEN_REQUEST: 1}


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
    assert complaint in init_failure_text(materialize_shop_name())
    assert sandbox_requests(shopify_env) == 0


@pytest.mark.parametrize("variable", ["SHOPIFY_ACCESS_TOKEN", "SHOPIFY_CLIENT_SECRET"])
def test_a_credential_with_whitespace_is_refused_without_showing_it(variable: str) -> None:
    """A secret file's trailing newline would otherwise reach an HTTP header error, value and all."""
    credentials = ({"access_token": "shpat_secret-value\n"} if variable == "SHOPIFY_ACCESS_TOKEN"
                   else {"client_id": "app", "client_secret": "secret-value\n"})
    resource = ShopifyResource(shop_url="https://brand.myshopify.com", **credentials)

    with pytest.raises(ValueError, match=f"^{variable} contains whitespace") as refused:
        resource.setup_for_execution(dg.build_init_resource_context())
    assert "secret-value" not in str(refused.value)
