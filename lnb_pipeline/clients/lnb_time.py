"""Le New Black's timestamps, read the same way everywhere (contract: "Uncertainties", Timestamps).

LNB's SDKs disagree on the form: ISO-8601 with a zone (``2026-03-02T13:05:00Z``), the PHP SDK
fixtures' zone-less ``Y-m-d H:i:s`` (``2026-03-02 14:05:00``) and, in the Java SDK, epoch seconds.
A zone-less time is LNB's local time, which is a setting (``LNB_API_TIMEZONE``). Its default is
``Europe/Paris``, LNB being a French company; it is *assumed*, and deliberately not UTC: Paris
times read as UTC would land one or two hours late, possibly in the future.

``parse_lnb_time`` never clamps, since some times are rightly in the future (a token's
``expire_on``). Times of past events (``create_time``, ``update_time``, ``confirmation_time``) go
through ``clamp_to_now``; a caller that wants to warn compares the two.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_LNB_TIMEZONE = "Europe/Paris"
TIMEZONE_VARIABLE = "LNB_API_TIMEZONE"
LNB_LOCAL_FORMAT = "%Y-%m-%d %H:%M:%S"
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)?")
"""ISO-8601's extended date and time, with or without a zone; ``Y-m-d H:i:s`` is one of its forms."""
_ACCEPTED = ("an ISO-8601 date and time with or without a zone (2026-03-02T13:05:00Z, "
             "2026-03-02 14:05:00) or whole epoch seconds")


class LnbTimeError(ValueError):
    """A value that is not any of LNB's timestamp forms; the message quotes it."""


def lnb_timezone(name: str) -> ZoneInfo:
    """The zone named by ``LNB_API_TIMEZONE``; a ``ValueError`` naming the variable when it is not one.

    ``localtime`` is refused: it would make the meaning of LNB's times depend on the host.
    """
    key = name.strip()
    if key and key != "localtime":
        try:
            return ZoneInfo(key)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            pass
    raise ValueError(f"{TIMEZONE_VARIABLE} must be an IANA time zone name such as Europe/Paris, UTC or "
                     f"America/New_York (the zone of LNB's zone-less timestamps), got {name!r}")


def parse_lnb_time(value: Any, timezone: ZoneInfo) -> datetime | None:
    """``value`` as an aware UTC datetime, a zone-less one read in ``timezone``; None for null or blank.

    A zone-less local time that a daylight-saving change makes ambiguous or skips is read as the
    earliest instant it can mean, so reading never moves a time later than it could be. A date
    alone, a float, a digit string or any other type raises ``LnbTimeError``.
    """
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            raise LnbTimeError(f"LNB time {value!r} is out of range as epoch seconds (milliseconds?)") from None
    if not isinstance(value, str):
        raise LnbTimeError(f"unreadable LNB time {value!r}: expected {_ACCEPTED}")
    text = value.strip()
    if not text:
        return None
    moment = _iso_datetime(text)
    if moment is None:
        raise LnbTimeError(f"unreadable LNB time {value!r}: expected {_ACCEPTED}")
    if moment.tzinfo is not None:
        return moment.astimezone(UTC)
    return min(moment.replace(tzinfo=timezone, fold=fold).astimezone(UTC) for fold in (0, 1))


def _iso_datetime(text: str) -> datetime | None:
    """``text`` read as ISO-8601's extended date and time, else None."""
    if not _TIMESTAMP.fullmatch(text):
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def format_lnb_time(moment: datetime, timezone: ZoneInfo) -> str:
    """``moment`` as LNB's zone-less ``Y-m-d H:i:s`` in ``timezone`` (seconds truncated).

    A zone-less ``datetime`` is refused: which instant it means is exactly what is unknown.
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"an LNB time must be an aware datetime, got the zone-less {moment.isoformat()!r}")
    return moment.astimezone(timezone).strftime(LNB_LOCAL_FORMAT)


def clamp_to_now(moment: datetime, now: datetime | None = None) -> datetime:
    """``moment``, or ``now`` (default: the current time) when it is later.

    For the times of past events: one in the future can only come from a zone mistake or a skewed
    clock, and must not be passed on (as a Shopify order's ``processedAt``, say).
    """
    current = datetime.now(UTC) if now is None else now
    return min(moment, current)
