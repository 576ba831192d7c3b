"""The Dagster resource for Le New Black: settings from the environment, checked before any call."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import dagster as dg
from pydantic import PrivateAttr

from lnb_pipeline.clients.lenewblack import DEFAULT_BASE_URL, LnbClient
from lnb_pipeline.clients.lnb_time import lnb_timezone
from lnb_pipeline.clients.retry import RetryPolicy
from lnb_pipeline.settings import setting_field

CONNECT_TIMEOUT_SECONDS = 5.0


class LnbSettingsError(ValueError):
    """A missing or malformed Le New Black setting; the message names the environment variable."""


class LeNewBlackResource(dg.ConfigurableResource):
    """Le New Black's Wholesale API v2. Hands out ``LnbClient``s that log through Dagster."""

    base_url: str = setting_field("LNB_BASE_URL")
    client_id: str = setting_field("LNB_CLIENT_ID")
    client_secret: str = setting_field("LNB_CLIENT_SECRET")
    batch_size: int = setting_field("lenewblack.batch_size")
    timeout_seconds: float = setting_field("lenewblack.timeout_seconds")
    max_retries: int = setting_field("lenewblack.max_retries")
    api_timezone: str = setting_field("LNB_API_TIMEZONE")

    _logger: logging.Logger | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """Fail the run at setup, naming the variable, rather than on the first API call."""
        self.check_settings()
        self._logger = context.log

    def check_settings(self) -> None:
        """Raise ``LnbSettingsError`` listing every bad setting."""
        problems: list[str] = []
        url = urlsplit(self.base_url.strip())
        if url.scheme not in ("http", "https") or not url.netloc:
            problems.append(f"LNB_BASE_URL (base_url) must be an http(s) URL such as {DEFAULT_BASE_URL}, "
                            f"got {self.base_url!r}")
        if not self.client_id.strip():
            problems.append("LNB_CLIENT_ID (client_id) is empty: set it to the client id LNB issued")
        if not self.client_secret.strip():
            problems.append("LNB_CLIENT_SECRET (client_secret) is empty: set it to the client secret LNB issued")
        if self.batch_size < 1:
            problems.append(f"batch_size must be at least 1, got {self.batch_size}")
        if self.timeout_seconds <= 0:
            problems.append(f"timeout_seconds must be positive, got {self.timeout_seconds}")
        if self.max_retries < 0:
            problems.append(f"max_retries must be 0 or more, got {self.max_retries}")
        try:
            lnb_timezone(self.api_timezone)
        except ValueError as error:
            problems.append(str(error))
        if problems:
            raise LnbSettingsError("Le New Black settings are invalid: " + "; ".join(problems))

    def timezone(self) -> ZoneInfo:
        """``LNB_API_TIMEZONE``: what LNB's zone-less times mean, for ``parse_lnb_time``; raises
        ``LnbSettingsError`` naming the variable when it is not a time zone."""
        try:
            return lnb_timezone(self.api_timezone)
        except ValueError as error:
            raise LnbSettingsError(f"Le New Black settings are invalid: {error}") from None

    def get_client(self, logger: logging.Logger | None = None) -> LnbClient:
        """A client; it logs through ``logger``, else through the run's Dagster logger."""
        self.check_settings()
        return LnbClient(
            self.base_url.strip(),
            self.client_id,
            self.client_secret,
            timeout=(min(CONNECT_TIMEOUT_SECONDS, self.timeout_seconds), self.timeout_seconds),
            retry=RetryPolicy(attempts=self.max_retries + 1),
            batch_size=self.batch_size,
            timezone=self.timezone(),
            logger=logger or self._logger,
        )

