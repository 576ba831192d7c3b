"""Dagster resource for the Shopify Admin GraphQL API."""

from __future__ import annotations

import logging
import os
import re
from urllib.parse import urlsplit

import dagster as dg
from pydantic import Field

from lnb_pipeline.clients.retry import RetryPolicy
from lnb_pipeline.clients.shopify import ShopifyClient

DEFAULT_API_VERSION = "2026-04"
_API_VERSION = re.compile(r"^\d{4}-(01|04|07|10)$|^unstable$")


class ShopifyResource(dg.ConfigurableResource):
    """One Shopify shop, reached through the Admin GraphQL API with an app access token."""

    shop_url: str = Field(description="SHOPIFY_SHOP_URL: https://<shop>.myshopify.com, or the sandbox's URL.")
    access_token: str = Field(description="SHOPIFY_ACCESS_TOKEN: the app's Admin API access token.")
    api_version: str = Field(default=DEFAULT_API_VERSION, description="SHOPIFY_API_VERSION, e.g. 2026-04.")
    timeout_seconds: float = Field(default=60.0, description="Read timeout of one request, in seconds.")
    max_attempts: int = Field(default=4, description="Tries per request on transient failures, the first included.")

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """Refuse a malformed setting before any API call, naming the variable to fix."""
        url = urlsplit(self.shop_url)
        if url.scheme not in ("http", "https") or not url.netloc:
            raise ValueError(f"SHOPIFY_SHOP_URL must be an http(s) URL such as https://brand.myshopify.com, "
                             f"got {self.shop_url!r}")
        if not self.access_token.strip():
            raise ValueError("SHOPIFY_ACCESS_TOKEN is empty")
        if not _API_VERSION.match(self.api_version):
            raise ValueError(f"SHOPIFY_API_VERSION must look like 2026-04 (a quarterly release), "
                             f"got {self.api_version!r}")
        if self.timeout_seconds <= 0 or self.max_attempts < 1:
            raise ValueError("Shopify timeout_seconds must be positive and max_attempts at least 1")

    def get_client(self, logger: logging.Logger | None = None) -> ShopifyClient:
        """A client that logs progress through ``logger`` (pass ``context.log``)."""
        return ShopifyClient(self.shop_url, self.access_token, self.api_version,
                             timeout=(10.0, self.timeout_seconds), retry=RetryPolicy(attempts=self.max_attempts),
                             logger=logger)


def shopify_resource_from_env() -> ShopifyResource:
    """The resource as configured by environment variables (the token is read only at run time)."""
    return ShopifyResource(
        shop_url=dg.EnvVar("SHOPIFY_SHOP_URL"),
        access_token=dg.EnvVar("SHOPIFY_ACCESS_TOKEN"),
        api_version=dg.EnvVar("SHOPIFY_API_VERSION") if "SHOPIFY_API_VERSION" in os.environ else DEFAULT_API_VERSION,
    )
