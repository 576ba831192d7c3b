"""The storage host Shopify's bulk results are downloaded from: signed links, on another host.

Shopify does not serve a bulk result itself. ``url`` and ``partialDataUrl`` are V2-signed Google
Cloud Storage links, valid seven days from the end of the operation::

    https://storage.googleapis.com/shopify-tiers-assets-prod-us-east1/bulk-operation-outputs/<key>-final
      ?GoogleAccessId=assets-us-prod%40shopify-tiers.iam.gserviceaccount.com&Expires=<unix time>
      &Signature=<base64>&response-content-disposition=attachment%3B+filename%3D%22bulk-<n>.jsonl%22%3B
      +filename%2A%3DUTF-8%27%27bulk-<n>.jsonl&response-content-type=application%2Fjsonl

This server hands out links of that shape on its own port and under another host name than the
shop's (``localhost`` where the shop answers on 127.0.0.1), so a client that edits a link or keeps
one past its expiry fails here as it would at Google. Stricter than Google, which would ignore it,
a request carrying the Shopify token (or any ``Authorization``) is refused: sending the shop's
credential to a third-party host must not go unnoticed. Links are signed with HMAC-SHA256 over the
method, expiry, path and every other query parameter (Google signs with RSA; the shape and the
checks are what matter). Refusals are Cloud Storage's XML errors: ``SignatureDoesNotMatch`` (403),
``ExpiredToken`` (400, as Cloud Storage answers an expired link), ``AccessDenied`` (403, unsigned),
``NoSuchKey`` (404), ``InvalidArgument`` (400, a Shopify credential sent). Results can be hundreds of
MB: files are streamed from disk, never read into memory.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import secrets
import string
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode
from xml.sax.saxutils import escape

from lnb_pipeline.sandbox.http import Request, Response, SandboxApi, SandboxServer

BUCKET = "shopify-tiers-assets-sandbox"
OBJECT_PREFIX = "bulk-operation-outputs/"
SERVICE_ACCOUNT = "assets-sandbox@shopify-tiers.iam.gserviceaccount.com"
RESULT_URL_TTL_SECONDS = 7 * 24 * 3600
"""Shopify: "url and partialDataUrl values expire after seven days"."""
SIGNING_PARAMETERS = ("GoogleAccessId", "Expires", "Signature")
SHOPIFY_CREDENTIAL_HEADERS = ("x-shopify-access-token", "authorization")
_KEY_ALPHABET = string.ascii_lowercase + string.digits


@dataclass
class _StoredObject:
    path: Path
    expired: bool = False
    """Set when the shop expires the operation: the link then answers ExpiredToken, as it would a week on."""


@dataclass(frozen=True)
class PublishedObject:
    """Where a result file can be downloaded: ``name`` identifies it to ``expire``."""

    name: str
    url: str


def _xml_error(status: int, code: str, message: str, **details: str) -> Response:
    """Cloud Storage's error answer: ``<Error><Code>…</Code><Message>…</Message>…</Error>``."""
    extra = "".join(f"<{tag}>{escape(text)}</{tag}>" for tag, text in details.items())
    body = (f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code><Message>{escape(message)}</Message>"
            f"{extra}</Error>")
    return Response(status, body.encode(), {"Content-Type": "application/xml; charset=UTF-8"})


class _StorageApi(SandboxApi):
    """Answers GETs of signed links; the shared HTTP layer adds faults, stats and the request log."""

    name = "shopify-storage"

    def __init__(self, signing_key: bytes) -> None:
        super().__init__()
        self._signing_key = signing_key
        self._lock = threading.Lock()
        self._objects: dict[str, _StoredObject] = {}

    def string_to_sign(self, method: str, path: str, params: dict[str, str]) -> str:
        """V2's ``VERB\\n\\n\\nExpires\\n/bucket/object``, followed here by every other query parameter,
        so that no part of the link can be changed without breaking the signature."""
        others = urlencode(sorted((k, v) for k, v in params.items() if k not in ("Signature", "Expires")),
                           quote_via=quote)
        return f"{method}\n\n\n{params.get('Expires', '')}\n{path}\n{others}"

    def sign(self, text: str) -> str:
        return base64.b64encode(hmac.new(self._signing_key, text.encode(), hashlib.sha256).digest()).decode()

    def add(self, name: str, path: Path) -> None:
        with self._lock:
            self._objects[name] = _StoredObject(path)

    def expire(self, name: str) -> None:
        with self._lock:
            stored = self._objects.get(name)
            if stored is not None:
                stored.expired = True

    def forget_all(self) -> None:
        with self._lock:
            self._objects.clear()

    def request_keys(self, request: Request) -> list[str]:
        return [f"{request.method} {request.path}"]

    def log_entry(self, request: Request) -> dict[str, Any]:
        """Header names, never values, so a test can tell that no Shopify credential came here."""
        return {"method": request.method, "path": request.path, "query": None, "variables": None,
                "headers": sorted(request.headers)}

    def throttled_response(self, request: Request) -> Response:
        return _xml_error(429, "SlowDown", "Please reduce your request rate.")

    def handle(self, request: Request) -> Response:
        sent = [name for name in SHOPIFY_CREDENTIAL_HEADERS if name in request.headers]
        if sent:
            return _xml_error(400, "InvalidArgument", "Invalid argument.",
                              Details=f"This storage host takes no Shopify credentials; the request carried "
                                      f"{', '.join(sent)}. The signed link is the only authorization.")
        params = request.params
        if not any(name in params for name in SIGNING_PARAMETERS):
            return _xml_error(403, "AccessDenied", "Access denied.",
                              Details="Anonymous caller does not have storage.objects.get access to the Google "
                                      "Cloud Storage object.")
        to_sign = self.string_to_sign(request.method, request.path, params)
        expires = params.get("Expires", "")
        if (not expires.isdigit() or params.get("GoogleAccessId") != SERVICE_ACCOUNT
                or not hmac.compare_digest(self.sign(to_sign), params.get("Signature", ""))):
            return _xml_error(403, "SignatureDoesNotMatch",
                              "The request signature we calculated does not match the signature you provided. "
                              "Check your Google secret key and signing method.", StringToSign=to_sign)
        name = request.path.removeprefix(f"/{BUCKET}/")
        with self._lock:
            stored = self._objects.get(name)
            expired = stored is not None and stored.expired
        if expired or time.time() >= int(expires):
            expired_at = datetime.fromtimestamp(int(expires), UTC).isoformat()
            return _xml_error(400, "ExpiredToken", "The provided token has expired.",
                              Details=f"Request signature expired at: {expired_at}")
        if stored is None or not stored.path.is_file():
            return _xml_error(404, "NoSuchKey", "The specified key does not exist.",
                              Details=f"No such object: {BUCKET}/{name}")
        headers = {"Content-Type": params.get("response-content-type", "application/octet-stream")}
        if "response-content-disposition" in params:
            headers["Content-Disposition"] = params["response-content-disposition"]
        return Response(200, headers=headers, file=stored.path)


class BulkStorage:
    """One shop's result bucket, served on its own port; ``close()`` stops it."""

    def __init__(self, host: str = "127.0.0.1", public_host: str = "localhost", port: int = 0) -> None:
        self._api = _StorageApi(secrets.token_bytes(32))
        self._server = SandboxServer(self._api, host, port).start()
        self.url = f"http://{public_host}:{self._server.port}"
        """Where links point: the public host name, which differs from the shop's."""

    def publish(self, path: Path, download_name: str, ttl_seconds: int) -> PublishedObject:
        """Store ``path`` under a fresh random key and sign a GET link valid ``ttl_seconds`` from now."""
        name = OBJECT_PREFIX + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(28)) + "-final"
        self._api.add(name, path)
        object_path = f"/{BUCKET}/{name}"
        params = {
            "GoogleAccessId": SERVICE_ACCOUNT,
            "Expires": str(math.ceil(time.time() + ttl_seconds)),
            "response-content-disposition":
                f"attachment; filename=\"{download_name}\"; filename*=UTF-8''{download_name}",
            "response-content-type": "application/jsonl",
        }
        params["Signature"] = self._api.sign(self._api.string_to_sign("GET", object_path, params))
        ordered = {key: params[key] for key in ("GoogleAccessId", "Expires", "Signature",
                                                "response-content-disposition", "response-content-type")}
        return PublishedObject(name, f"{self.url}{object_path}?{urlencode(ordered)}")

    def expire(self, name: str) -> None:
        """The link keeps its signature but answers ExpiredToken, as a week-old link does."""
        self._api.expire(name)

    def forget_all(self) -> None:
        """After a reset, old links answer NoSuchKey."""
        self._api.forget_all()
        self._api.reset({})

    def close(self) -> None:
        self._server.stop()
