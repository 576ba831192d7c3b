"""Dagster resource for the Shopify Admin GraphQL API."""

from __future__ import annotations

import logging
import re
import threading
from urllib.parse import urlsplit

import dagster as dg
from pydantic import PrivateAttr

from lnb_pipeline.clients.retry import RetryPolicy
from lnb_pipeline.clients.shopify import ShopifyClient
from lnb_pipeline.clients.shopify_auth import ClientCredentialsToken
from lnb_pipeline.settings import setting_field

CONNECT_TIMEOUT_SECONDS = 10.0
CREDENTIALS_CHOICE = "set either SHOPIFY_ACCESS_TOKEN, or SHOPIFY_CLIENT_ID and SHOPIFY_CLIENT_SECRET"
_API_VERSION = re.compile(r"^\d{4}-(01|04|07|10)$|^unstable$")


class ShopifyResource(dg.ConfigurableResource):
    """One Shopify shop, reached through the Admin GraphQL API.

    Authenticated either by a fixed access token (a legacy custom app's) or by a Dev Dashboard app's
    client id and secret, whose 24-hour tokens are fetched and renewed by the client credentials grant;
    every client of a run shares one such token.
    """

    shop_url: str = setting_field("SHOPIFY_SHOP_URL")
    access_token: str | None = setting_field("SHOPIFY_ACCESS_TOKEN")
    client_id: str | None = setting_field("SHOPIFY_CLIENT_ID")
    client_secret: str | None = setting_field("SHOPIFY_CLIENT_SECRET")
    api_version: str = setting_field("SHOPIFY_API_VERSION")
    timeout_seconds: float = setting_field("shopify.timeout_seconds")
    max_attempts: int = setting_field("shopify.max_attempts")

    _logger: logging.Logger | None = PrivateAttr(default=None)
    _client_credentials: ClientCredentialsToken | None = PrivateAttr(default=None)
    _client_credentials_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """Refuse a missing, conflicting or malformed setting before any API call, naming the variable to fix."""
        url = urlsplit(self.shop_url)
        if url.scheme not in ("http", "https") or not url.netloc:
            raise ValueError(f"SHOPIFY_SHOP_URL must be an http(s) URL such as https://brand.myshopify.com, "
                             f"got {self.shop_url!r}")
        self._check_credentials()
        if not _API_VERSION.match(self.api_version):
            raise ValueError(f"SHOPIFY_API_VERSION must look like 2026-04 (a quarterly release), "
                             f"got {self.api_version!r}")
        if self.timeout_seconds <= 0 or self.max_attempts < 1:
            raise ValueError("Shopify timeout_seconds must be positive and max_attempts at least 1")
        self._logger = context.log

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._client_credentials is not None:
            self._client_credentials.close()

    def _check_credentials(self) -> None:
        """Exactly one way in: the fixed token, or both halves of the client credentials."""
        has_token = self.access_token is not None
        has_id, has_secret = self.client_id is not None, self.client_secret is not None
        if not (has_token or has_id or has_secret):
            raise ValueError(f"Shopify credentials are missing: {CREDENTIALS_CHOICE}")
        if has_token and (has_id or has_secret):
            raise ValueError(f"Shopify credentials conflict: {CREDENTIALS_CHOICE}, not both")
        if has_id != has_secret:
            given, missing = ("SHOPIFY_CLIENT_ID", "SHOPIFY_CLIENT_SECRET") if has_id else (
                "SHOPIFY_CLIENT_SECRET", "SHOPIFY_CLIENT_ID")
            raise ValueError(f"{given} is set but {missing} is not: the client credentials grant needs both")
        for variable, value in (("SHOPIFY_ACCESS_TOKEN", self.access_token), ("SHOPIFY_CLIENT_ID", self.client_id),
                                ("SHOPIFY_CLIENT_SECRET", self.client_secret)):
            if value is not None and not value.strip():
                raise ValueError(f"{variable} is empty")
            if value is not None and value != "".join(value.split()):
                # A trailing newline (a secret file) would put the value into an HTTP header error.
                raise ValueError(f"{variable} contains whitespace (a trailing newline?); its value is not shown")

    def get_client(self, logger: logging.Logger | None = None) -> ShopifyClient:
        """A client that logs progress through ``logger`` (pass ``context.log``)."""
        self._check_credentials()
        tokens = self.access_token if self.access_token is not None else self._shared_client_credentials()
        return ShopifyClient(self.shop_url, tokens, self.api_version,
                             timeout=(CONNECT_TIMEOUT_SECONDS, self.timeout_seconds),
                             retry=RetryPolicy(attempts=self.max_attempts), logger=logger)

    def _shared_client_credentials(self) -> ClientCredentialsToken:
        """One token source for every client this resource hands out, so a run fetches one token."""
        assert self.client_id is not None and self.client_secret is not None, "checked by _check_credentials"
        with self._client_credentials_lock:
            if self._client_credentials is None:
                self._client_credentials = ClientCredentialsToken(
                    self.shop_url, self.client_id, self.client_secret,
                    timeout=(CONNECT_TIMEOUT_SECONDS, self.timeout_seconds),
                    retry=RetryPolicy(attempts=self.max_attempts), logger=self._logger)
            return self._client_credentials

