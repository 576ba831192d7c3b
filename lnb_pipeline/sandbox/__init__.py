"""Local stand-ins for Shopify's Admin GraphQL API and Le New Black's Wholesale API v2."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lnb_pipeline.sandbox.http import SandboxServer
from lnb_pipeline.sandbox.lnb.api import LNB_BASE_PATH, LnbApi
from lnb_pipeline.sandbox.scenario import load_scenario
from lnb_pipeline.sandbox.shopify.api import DEFAULT_TOKEN, ShopifyApi


@dataclass
class Sandbox:
    """Both servers, running; ``stop()`` when done."""

    shopify: SandboxServer
    lnb: SandboxServer

    @property
    def shopify_url(self) -> str:
        """What ``SHOPIFY_SHOP_URL`` should be to reach this sandbox."""
        return self.shopify.url

    @property
    def lnb_base_url(self) -> str:
        """What ``LNB_BASE_URL`` should be to reach this sandbox."""
        return self.lnb.url + LNB_BASE_PATH

    def environment(self) -> dict[str, str]:
        """The settings that point the pipeline at this sandbox."""
        return {
            "SHOPIFY_SHOP_URL": self.shopify_url,
            "SHOPIFY_ACCESS_TOKEN": DEFAULT_TOKEN,
            "LNB_BASE_URL": self.lnb_base_url,
            "LNB_CLIENT_ID": "sandbox-client",
            "LNB_CLIENT_SECRET": "sandbox-secret",
        }

    def stop(self) -> None:
        self.shopify.stop()
        self.lnb.stop()


def start_sandbox(scenario: str | dict[str, Any] = "demo", *, host: str = "127.0.0.1", shopify_port: int = 0,
                  lnb_port: int = 0, plan: str = "standard", lnb_rps: float | None = None) -> Sandbox:
    """Start both servers on a scenario (``demo``, ``scale:N``, a file path, or a loaded dict)."""
    data = load_scenario(scenario) if isinstance(scenario, str) else scenario
    shopify = SandboxServer(ShopifyApi(data, plan=plan), host, shopify_port)
    try:
        lnb = SandboxServer(LnbApi(data, rps=lnb_rps), host, lnb_port)
    except OSError:
        shopify.stop()
        raise
    return Sandbox(shopify.start(), lnb.start())
