"""Shopify access tokens from the client credentials grant, for apps made in the Dev Dashboard.

Since 2026-01-01 no one can create a custom app with a permanent ``shpat_`` token in the Shopify
admin. An app of the shop's own organisation, made in the Dev Dashboard, exchanges its client id and
secret for a token (``POST /admin/oauth/access_token``, ``grant_type=client_credentials``) that
expires after 24 hours (``expires_in`` 86399). ``ClientCredentialsToken`` fetches one when first
needed, has concurrent callers wait for that one fetch, renews it shortly before it expires and
again when Shopify rejects it (``ShopifyClient`` asks for that on a 401).

Neither the client secret nor a token appears in a log line or an exception: messages are redacted
and no ``requests`` exception is chained. The client id is not a secret and names the app in errors.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import requests

from lnb_pipeline.clients.redaction import redact
from lnb_pipeline.clients.retry import RetryPolicy
from lnb_pipeline.clients.shopify import ShopifyAuthError, ShopifyServerError

TOKEN_PATH = "/admin/oauth/access_token"
RENEWAL_MARGIN_SECONDS = 300.0
RENEWAL_MARGIN_SHARE = 0.1
"""A token is renewed 5 minutes before it expires, or a tenth of its lifetime before when that is
sooner, so that no request goes out with a token about to lapse in flight."""
ERROR_EXCERPT_CHARS = 200


@dataclass(frozen=True)
class _IssuedToken:
    value: str = field(repr=False)
    renew_at: float
    """Clock reading from which the next caller fetches a new token."""


@dataclass(frozen=True)
class _TransientFailure:
    """A token request worth repeating: no answer, 429, 5xx or an answer without a token."""

    reason: str
    retry_after: float | None = None


class ClientCredentialsToken:
    """One shop's access tokens, from its app's client id and secret. Thread-safe: share one between
    the clients of a run, so that they all use one token.

    Shopify documents a form-encoded request and answers ``{"access_token", "scope", "expires_in"}``.
    Refusals are taken in any shape: RFC 6749 §5.2's ``{"error", "error_description"}`` (which
    Shopify's own examples do not document for wrong credentials; the sandbox follows the RFC),
    Shopify's ``{"errors": ...}`` or plain text such as ``Oauth error shop_not_permitted: ...``.
    """

    def __init__(self, shop_url: str, client_id: str, client_secret: str, *,
                 timeout: tuple[float, float] = (5.0, 30.0), retry: RetryPolicy | None = None,
                 logger: logging.Logger | None = None, session: requests.Session | None = None,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        self.token_url = f"{shop_url.rstrip('/')}{TOKEN_PATH}"
        self.client_id = client_id
        self._client_secret = client_secret
        self._timeout = timeout
        self._retry = retry or RetryPolicy()
        self._log = logger or logging.getLogger(__name__)
        self._session = session or requests.Session()
        self._clock = clock
        self._sleep = sleep
        self._issued: _IssuedToken | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ClientCredentialsToken(token_url={self.token_url!r}, client_id={self.client_id!r})"

    @property
    def rejection_hint(self) -> str:
        return (f"check that the app with SHOPIFY_CLIENT_ID {self.client_id!r} is installed on the shop "
                "with the access scopes it needs")

    def current(self) -> str:
        """The cached token, fetched first when there is none or it is due for renewal. The lock
        makes concurrent callers wait for one fetch instead of each fetching their own."""
        with self._lock:
            if self._issued is None or self._clock() >= self._issued.renew_at:
                self._issued = self._fetch()
            return self._issued.value

    def renew_after_rejection(self, rejected: str) -> bool:
        """Forget ``rejected`` unless another thread already replaced it; the next token is new."""
        with self._lock:
            if self._issued is not None and self._issued.value == rejected:
                self._issued = None
        return True

    def close(self) -> None:
        self._session.close()

    def _fetch(self) -> _IssuedToken:
        """A new token; transient failures are retried under the retry policy, refusals raised at once."""
        attempt = 0
        while True:
            attempt += 1
            outcome = self._request_token()
            if isinstance(outcome, _IssuedToken):
                return outcome
            if attempt >= self._retry.attempts:
                raise ShopifyServerError(f"Shopify's token endpoint failed after {attempt} attempt(s): "
                                         f"{outcome.reason}")
            delay = self._retry.delay(attempt, outcome.retry_after)
            self._emit(logging.WARNING, f"Shopify token endpoint: {outcome.reason}; retry {attempt}/"
                                        f"{self._retry.attempts - 1} in {delay:.2f} s")
            self._sleep(delay)

    def _request_token(self) -> _IssuedToken | _TransientFailure:
        requested_at = self._clock()
        try:
            response = self._session.post(
                self.token_url,
                data={"grant_type": "client_credentials", "client_id": self.client_id,
                      "client_secret": self._client_secret},
                headers={"Accept": "application/json"},
                timeout=self._timeout,
            )
        except (requests.ConnectionError, requests.Timeout) as error:
            return _TransientFailure(self._redact(f"no answer ({type(error).__name__}: {error})"))
        status = response.status_code
        if status == 429:
            return _TransientFailure("HTTP 429", _retry_after_seconds(response.headers.get("Retry-After")))
        if status >= 500:
            return _TransientFailure(f"HTTP {status}")
        if status == 404:
            raise ShopifyAuthError(f"Shopify has no token endpoint at {self.token_url} (HTTP 404): SHOPIFY_SHOP_URL "
                                   "must be the shop's https://<shop>.myshopify.com address")
        if status >= 400:
            raise ShopifyAuthError(f"Shopify refused the client credentials of SHOPIFY_CLIENT_ID {self.client_id!r} "
                                   f"(HTTP {status}): {self._error_text(response)}")
        try:
            body = response.json()
        except ValueError:
            return _TransientFailure(f"answer is not JSON (HTTP {status}, {len(response.content)} bytes)")
        value = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(value, str) or not value:
            return _TransientFailure(f"answer without an access_token (HTTP {status})")
        return self._issue(value, body.get("expires_in"), body.get("scope"), requested_at)

    def _issue(self, value: str, expires_in: object, scope: object, requested_at: float) -> _IssuedToken:
        """The token, due for renewal a margin before it expires (counted from when it was asked for)."""
        if not isinstance(expires_in, (int, float)) or isinstance(expires_in, bool) or expires_in <= 0:
            self._emit(logging.WARNING, "Shopify gave an access token without expires_in; it is kept until "
                                        "Shopify rejects it")
            return _IssuedToken(value, math.inf)
        margin = min(RENEWAL_MARGIN_SECONDS, expires_in * RENEWAL_MARGIN_SHARE)
        self._emit(logging.INFO, f"Shopify access token obtained for SHOPIFY_CLIENT_ID {self.client_id!r} "
                                 f"(scopes: {scope or 'not stated'}), valid for {expires_in:g} s, renewed "
                                 f"{margin:g} s before it expires", value)
        return _IssuedToken(value, requested_at + expires_in - margin)

    def _error_text(self, response: requests.Response) -> str:
        """Shopify's reason for a refusal, in whichever shape it came, redacted."""
        try:
            payload = response.json()
        except ValueError:
            payload = None
        text = ""
        if isinstance(payload, dict):
            error, description = payload.get("error"), payload.get("error_description")
            if isinstance(error, str) and error:
                text = f"{error}: {description}" if isinstance(description, str) and description else error
            elif payload.get("errors"):
                text = str(payload["errors"])
        text = text or response.text.strip()[:ERROR_EXCERPT_CHARS] or response.reason or "no reason given"
        return self._redact(text)

    def _redact(self, text: str, new_token: str = "") -> str:
        """``text`` without the client secret, the cached token or one just issued."""
        cached = self._issued
        return redact(text, (self._client_secret, new_token, cached.value if cached else ""))

    def _emit(self, level: int, message: str, new_token: str = "") -> None:
        self._log.log(level, self._redact(message, new_token))


def _retry_after_seconds(header: str | None) -> float | None:
    """``Retry-After`` as seconds; None when absent or not a number."""
    try:
        return max(0.0, float(header)) if header else None
    except ValueError:
        return None
