"""``lnb_time``: every timestamp form LNB's SDKs show, read in LNB's zone, and nothing else."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from lnb_pipeline.clients.lnb_time import (
    DEFAULT_LNB_TIMEZONE,
    LnbTimeError,
    clamp_to_now,
    format_lnb_time,
    lnb_timezone,
    parse_lnb_time,
)

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-03-02T13:05:00Z", utc(2026, 3, 2, 13, 5)),
        ("2026-03-02T14:05:00+01:00", utc(2026, 3, 2, 13, 5)),
        ("2026-03-02T08:05:00-0500", utc(2026, 3, 2, 13, 5)),
        ("2026-03-02T13:05:00.250Z", utc(2026, 3, 2, 13, 5) + timedelta(milliseconds=250)),
        ("2026-03-02 14:05:00", utc(2026, 3, 2, 13, 5)),  # the PHP fixtures' form, Paris winter time
        ("2026-07-02 14:05:00", utc(2026, 7, 2, 12, 5)),  # Paris summer time
        ("2026-03-02T14:05:00", utc(2026, 3, 2, 13, 5)),
        ("2026-03-02 14:05", utc(2026, 3, 2, 13, 5)),
        ("  2026-03-02 14:05:00\n", utc(2026, 3, 2, 13, 5)),
        (1772456700, utc(2026, 3, 2, 13, 5)),  # epoch seconds, as the Java SDK accepts
        (0, utc(1970, 1, 1)),
        (None, None),
        ("", None),
        ("   ", None),
    ],
)
def test_accepted_forms(value: Any, expected: datetime | None) -> None:
    parsed = parse_lnb_time(value, PARIS)
    assert parsed == expected
    if parsed is not None:
        assert parsed.tzinfo is UTC


def test_zone_less_times_are_read_in_the_given_zone_not_utc() -> None:
    assert parse_lnb_time("2026-03-02 14:05:00", NEW_YORK) == utc(2026, 3, 2, 19, 5)
    assert parse_lnb_time("2026-03-02 14:05:00", ZoneInfo("UTC")) == utc(2026, 3, 2, 14, 5)
    assert parse_lnb_time("2026-03-02T14:05:00Z", NEW_YORK) == utc(2026, 3, 2, 14, 5)  # a zone wins


@pytest.mark.parametrize(
    ("local", "earliest"),
    [
        ("2026-10-25 02:30:00", utc(2026, 10, 25, 0, 30)),  # happens twice (02:30 CEST, then CET)
        ("2026-03-29 02:30:00", utc(2026, 3, 29, 0, 30)),  # skipped by the change to summer time
    ],
)
def test_daylight_saving_gaps_and_repeats_read_as_the_earliest_instant(local: str, earliest: datetime) -> None:
    assert parse_lnb_time(local, PARIS) == earliest


@pytest.mark.parametrize(
    "value",
    ["yesterday", "2026-03-02", "20260302T140500", "2026-03-02T14:05:00 CET", "2026-02-30 10:00:00",
     "1772456700", 1772456700.0, True, ["2026-03-02 14:05:00"], {"date": "2026-03-02"},
     date(2026, 3, 2), 1772456700000],
)
def test_anything_else_is_refused_naming_the_value(value: Any) -> None:
    with pytest.raises(LnbTimeError) as raised:
        parse_lnb_time(value, PARIS)
    assert isinstance(raised.value, ValueError)
    assert repr(value) in str(raised.value)


def test_format_is_zone_less_local_time_and_refuses_a_zone_less_datetime() -> None:
    assert format_lnb_time(utc(2026, 3, 2, 13, 5, 7, 999), PARIS) == "2026-03-02 14:05:07"
    assert format_lnb_time(datetime(2026, 7, 2, 9, 5, tzinfo=timezone(timedelta(hours=-3))), PARIS) == \
        "2026-07-02 14:05:00"
    with pytest.raises(ValueError, match="aware datetime"):
        format_lnb_time(datetime(2026, 3, 2, 14, 5), PARIS)
    moment = utc(2026, 1, 15, 8)
    assert parse_lnb_time(format_lnb_time(moment, NEW_YORK), NEW_YORK) == moment


def test_clamp_to_now_keeps_past_times_and_caps_future_ones() -> None:
    now = utc(2026, 3, 2, 12)
    assert clamp_to_now(utc(2026, 3, 2, 11), now) == utc(2026, 3, 2, 11)
    assert clamp_to_now(utc(2026, 3, 2, 13), now) == now
    before = datetime.now(UTC)
    capped = clamp_to_now(datetime.now(UTC) + timedelta(hours=1))
    assert before <= capped <= datetime.now(UTC)


@pytest.mark.parametrize("name", ["Europe/Paris", "UTC", "America/New_York", " Europe/Paris\n"])
def test_time_zone_names(name: str) -> None:
    assert lnb_timezone(name) == ZoneInfo(name.strip())


@pytest.mark.parametrize("name", ["", "Paris", "europe/paris", "CET+1", "Europe", "/etc/passwd", "../zoneinfo",
                                  "localtime"])
def test_bad_time_zone_names_the_variable_and_the_accepted_values(name: str) -> None:
    with pytest.raises(ValueError) as raised:
        lnb_timezone(name)
    message = str(raised.value)
    assert "LNB_API_TIMEZONE" in message and "IANA time zone name such as Europe/Paris" in message
    assert repr(name) in message


def test_the_default_zone_is_paris_not_utc() -> None:
    assert DEFAULT_LNB_TIMEZONE == "Europe/Paris"
