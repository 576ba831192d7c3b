"""``LeNewBlackResource`` in real ``dg.materialize`` runs against the LNB sandbox: settings come from
the environment (LNB's time zone included) and are checked before any call, and no event of a
failed run carries the token."""

from collections.abc import Callable, Iterator
from typing import Any

import dagster as dg
import pytest
import requests

from lnb_pipeline.clients.lenewblack import DEFAULT_BASE_URL
from lnb_pipeline.defs.env import from_environment
from lnb_pipeline.defs.lenewblack.resources import LeNewBlackResource, LnbSettingsError
from lnb_pipeline.sandbox import Sandbox, start_sandbox

LNB_VARIABLES = ("LNB_BASE_URL", "LNB_CLIENT_ID", "LNB_CLIENT_SECRET")
TIMEZONE_VARIABLE = "LNB_API_TIMEZONE"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    running = start_sandbox("demo")
    yield running
    running.stop()


def control(sandbox: Sandbox, route: str, payload: dict[str, Any] | None = None) -> Any:
    response = requests.post(f"{sandbox.lnb.url}/_sandbox/{route}", json=payload or {}, timeout=5)
    response.raise_for_status()
    return response.json()


def api_requests(sandbox: Sandbox) -> int:
    return requests.get(f"{sandbox.lnb.url}/_sandbox/stats", timeout=5).json()["total_requests"]


@pytest.fixture
def lnb_env(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    """The LNB_* variables pointing at a freshly reset sandbox."""
    control(sandbox, "reset")
    for name, value in sandbox.environment().items():
        if name in LNB_VARIABLES:
            monkeypatch.setenv(name, value)
    monkeypatch.delenv(TIMEZONE_VARIABLE, raising=False)
    return sandbox


@pytest.fixture
def tokens_sent(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """Every access token any ``requests.Session`` in this process sends during the test."""
    sent: set[str] = set()
    original: Callable[..., requests.Response] = requests.Session.request

    def recording_request(session: requests.Session, method: str, url: str, params: Any = None,
                          **kwargs: Any) -> requests.Response:
        if isinstance(params, dict) and params.get("access_token"):
            sent.add(params["access_token"])
        return original(session, method, url, params=params, **kwargs)

    monkeypatch.setattr(requests.Session, "request", recording_request)
    return sent


@dg.asset
def lnb_retailer_count(context: dg.AssetExecutionContext, lnb: LeNewBlackResource) -> int:
    with lnb.get_client(context.log) as client:
        return sum(1 for _ in client.iter_retailers())


@dg.asset
def lnb_inventory_size(lnb: LeNewBlackResource) -> int:
    """Uses the client's default logger: the run's, handed over at resource setup."""
    with lnb.get_client() as client:
        return len(client.get_inventory())


@dg.asset
def lnb_time_zones(lnb: LeNewBlackResource) -> tuple[str | None, str | None]:
    """The zone the resource gives callers, and the one its client reads LNB's times in."""
    with lnb.get_client() as client:
        return lnb.timezone().key, client.timezone.key


@pytest.mark.parametrize(("value", "expected"), [(None, "Europe/Paris"), ("America/New_York", "America/New_York"),
                                                 ("UTC", "UTC")])
def test_lnb_time_zone_comes_from_lnb_api_timezone_and_defaults_to_paris(
    lnb_env: Sandbox, monkeypatch: pytest.MonkeyPatch, value: str | None, expected: str
) -> None:
    if value is not None:
        monkeypatch.setenv(TIMEZONE_VARIABLE, value)
    result = dg.materialize([lnb_time_zones], resources={"lnb": from_environment(LeNewBlackResource)})
    assert result.output_for_node("lnb_time_zones") == (expected, expected)


def test_bad_time_zone_is_refused_naming_the_variable() -> None:
    resource = LeNewBlackResource(client_id="id", client_secret="secret", api_timezone="Paris")
    with pytest.raises(LnbSettingsError, match="LNB_API_TIMEZONE must be an IANA time zone name such as Europe/Paris"):
        resource.timezone()
    with pytest.raises(LnbSettingsError, match="got 'Paris'"):
        resource.get_client()


def test_resource_from_env_reads_lnb(lnb_env: Sandbox) -> None:
    result = dg.materialize([lnb_retailer_count], resources={"lnb": from_environment(LeNewBlackResource)})
    assert result.success
    assert result.output_for_node("lnb_retailer_count") == 18


def test_base_url_defaults_to_lnb_when_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LNB_BASE_URL", raising=False)
    assert from_environment(LeNewBlackResource).base_url == DEFAULT_BASE_URL


def test_missing_client_id_fails_before_any_call(lnb_env: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LNB_CLIENT_ID")
    with pytest.raises(dg.DagsterInvalidConfigError, match='environment variable "LNB_CLIENT_ID" which is not set'):
        dg.materialize([lnb_retailer_count], resources={"lnb": from_environment(LeNewBlackResource)})
    assert api_requests(lnb_env) == 0


@pytest.mark.parametrize(
    ("variable", "value", "complaint"),
    [
        ("LNB_CLIENT_ID", "", "LNB_CLIENT_ID (client_id) is empty"),
        ("LNB_CLIENT_SECRET", "  ", "LNB_CLIENT_SECRET (client_secret) is empty"),
        ("LNB_BASE_URL", "ftp://lnb.example/apis", "LNB_BASE_URL (base_url) must be an http(s) URL"),
        ("LNB_BASE_URL", "www.lenewblack.com/apis/wholesale/v2", "LNB_BASE_URL (base_url) must be an http(s) URL"),
        ("LNB_API_TIMEZONE", "CET+1", "LNB_API_TIMEZONE must be an IANA time zone name such as Europe/Paris"),
    ],
)
def test_malformed_setting_fails_at_setup_naming_the_variable(
    lnb_env: Sandbox, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, complaint: str
) -> None:
    monkeypatch.setenv(variable, value)
    result = dg.materialize(
        [lnb_retailer_count], resources={"lnb": from_environment(LeNewBlackResource)}, raise_on_error=False
    )
    assert not result.success
    init_failures = [e for e in result.all_events if e.event_type_value == "RESOURCE_INIT_FAILURE"]
    assert len(init_failures) == 1
    assert complaint in dg.serialize_value(init_failures[0])
    assert api_requests(lnb_env) == 0


@pytest.mark.parametrize("failure", ["http_500", "timeout", "token_rejected"])
def test_failed_run_events_never_carry_the_token(
    lnb_env: Sandbox, tokens_sent: set[str], failure: str
) -> None:
    if failure == "token_rejected":
        control(lnb_env, "config", {"token_ttl_seconds": 1e-6})
    else:
        control(lnb_env, "faults", {"kind": failure, "match": "/inventory", "count": 50, "seconds": 0.5})
    resource = LeNewBlackResource(
        base_url=dg.EnvVar("LNB_BASE_URL"),
        client_id=dg.EnvVar("LNB_CLIENT_ID"),
        client_secret=dg.EnvVar("LNB_CLIENT_SECRET"),
        timeout_seconds=0.2,
        max_retries=1,
    )
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([lnb_inventory_size], resources={"lnb": resource}, instance=instance,
                            raise_on_error=False)

    assert not result.success
    assert tokens_sent, "the run should have sent a token"
    stored = instance.all_logs(result.run_id)
    texts = [dg.serialize_value(entry) for entry in stored]
    texts += [dg.serialize_value(event) for event in result.all_events]
    assert any("LNB GET /inventory" in text for text in texts), "the client's messages should be in the log"
    for token in tokens_sent:
        assert not [text for text in texts if token in text]
