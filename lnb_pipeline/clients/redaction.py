"""Keep secrets out of logs, exceptions and metadata.

Le New Black's token travels in the URL (``?access_token=...``), so any URL, ``requests``
exception message or response repr may carry it.
"""

from __future__ import annotations

import logging
import re

REDACTED = "***"
_TOKEN_IN_URL = re.compile(r"(access_token=)[^&\s'\"#]+", re.IGNORECASE)
_TOKEN_IN_JSON = re.compile(r'("(?:access_token|client_secret)"\s*:\s*")[^"]*(")', re.IGNORECASE)


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """``text`` with every ``access_token=`` value, JSON token/secret field and given secret masked."""
    text = _TOKEN_IN_URL.sub(rf"\g<1>{REDACTED}", text)
    text = _TOKEN_IN_JSON.sub(rf"\g<1>{REDACTED}\g<2>", text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text


class RedactingFilter(logging.Filter):
    """A logging filter that masks tokens in every record that passes through it."""

    def __init__(self, secrets: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg = redact(message, self.secrets)
        record.args = None
        return True
