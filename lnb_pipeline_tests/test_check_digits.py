"""``normalise_barcodes`` against python-stdnum on over a million seeded random and edge-case codes.

``rules/stock.py`` computes GS1 check digits as a polars expression; python-stdnum is the oracle
here. The format rules around the check digit are the module's own and are restated in plain Python
in ``expected``: trim Unicode whitespace, then ASCII digits only, and only 12 (UPC-A, 0-prefixed) or
13 of them. The codes come from a seeded ``random.Random``, so every run checks the same ones.
"""

from __future__ import annotations

import random
from collections import Counter

import polars as pl
from stdnum import ean
from stdnum.exceptions import InvalidChecksum

from lnb_pipeline.rules.stock import (
    REASON_INVALID_CHECK_DIGIT,
    REASON_MISSING_BARCODE,
    REASON_NOT_EAN13,
    REASON_NOT_NUMERIC,
    normalise_barcodes,
)

SEED = 11
TRIMMED = ("\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
           "\u2028\u2029\u202f\u205f\u3000")
"""Unicode White_Space: what polars' ``str.strip_chars()`` (Rust's ``str::trim``) removes around a barcode."""
NOT_TRIMMED = "\x00\x1c\x1d\x1e\x1f\u180e\u200b\u2060\ufeff"
"""Invisible, but kept (so the barcode is not numeric); Python's ``str.strip`` would remove ``\\x1c``–``\\x1f``."""
FOREIGN = (
    "abcxyzABCXYZOoIl"
    "０１２３４５６７８９"  # full-width
    "٠١٢٣٤٥٦٧٨٩"  # Arabic-Indic
    "۰۱۲۳۴۵۶۷۸۹"  # extended Arabic-Indic
    "०१२३४५६७८९"  # Devanagari
    "𝟎𝟏𝟐𝟑𝟒𝟓𝟔𝟕𝟖𝟗"  # mathematical bold, which python-stdnum's compact() turns into ASCII
    "¹²³⁰₀₁½①Ⅷ"
    "+-−.,_/:#*'\"e"
    " \t\xa0\u3000\u0301🙂"
) + NOT_TRIMMED
"""Characters that make a code not numeric wherever they stand inside it."""
OTHER_SCRIPTS = ["０１２３４５６７８９", "٠١٢٣٤٥٦٧٨٩", "۰۱۲۳۴۵۶۷۸۹", "०१२३४५६७८९", "𝟎𝟏𝟐𝟑𝟒𝟓𝟔𝟕𝟖𝟗"]
EDGE_CASES: list[str | None] = [
    None, "", " ", "\t\n", "\u3000", "\x1c", "0", "0000000000000", "000000000000", "0000000000001",
    "9999999999999", "999999999999", "99999999999999999999", "4006381333931", "4006381333932", "036000291452",
    "0036000291452", "36000291452", "73513537", "98412345678908", "４００６３８１３３３９３１", "٤٠٠٦٣٨١٣٣٣٩٣١",
    "+4006381333931", "-4006381333931", "4006381333931-", "4006381-333931", "4006381 333931", " 4006381333931 ",
    "\u30004006381333931\u3000", "\x1c4006381333931", "4006381333931\u200b", "\ufeff4006381333931",
    "4006381333931.0", "4.006381333931e12", "4006_381333931", "0x4006381333931", "4006381333931\x00",
]


def digits(rng: random.Random, length: int) -> str:
    return f"{rng.randrange(10 ** length):0{length}d}" if length else ""


def valid_code(rng: random.Random, length: int) -> str:
    body = digits(rng, length - 1)
    return body + ean.calc_check_digit(body)


def random_codes(seed: int = SEED) -> list[str | None]:
    """1 030 037 codes: ASCII digits of every length, EAN13/UPC-A lengths above all, and their corruptions."""
    rng = random.Random(seed)
    codes: list[str | None] = list(EDGE_CASES)
    # ASCII digits, every length 0..20; then 12 and 13 digits, about one in ten with a valid check digit.
    codes += [digits(rng, length) for length in range(21) for _ in range(10_000)]
    codes += [digits(rng, rng.choice((12, 13))) for _ in range(300_000)]
    # Valid codes, and the same with two neighbouring digits swapped (GS1 misses a swap of digits 5 apart).
    valid = [valid_code(rng, rng.choice((12, 13))) for _ in range(60_000)]
    codes += valid
    for code in valid:
        at = rng.randrange(len(code) - 1)
        codes.append(code[:at] + code[at + 1] + code[at] + code[at + 2:])
    # One foreign character replacing or added to a code of 11..14 digits, valid or not.
    for _ in range(200_000):
        code = valid_code(rng, rng.randint(11, 14)) if rng.random() < 0.5 else digits(rng, rng.randint(11, 14))
        at = rng.randrange(len(code) + 1)
        codes.append(code[:at] + rng.choice(FOREIGN) + code[at + rng.randrange(2):])
    # Valid codes written in other scripts' digits, wholly or in part.
    for _ in range(40_000):
        script = rng.choice(OTHER_SCRIPTS)
        code = valid_code(rng, rng.choice((12, 13)))
        codes.append("".join(script[int(digit)] if rng.random() < 0.7 else digit for digit in code))
    # Whitespace and invisible characters around codes of 10..15 digits (valid for 12 and 13), and blanks.
    wrapping = TRIMMED * 3 + NOT_TRIMMED
    for _ in range(120_000):
        length = rng.randint(10, 15)
        code = valid_code(rng, length) if length in (12, 13) and rng.random() < 0.5 else digits(rng, length)
        codes.append("".join(rng.choices(wrapping, k=rng.randrange(4))) + code
                     + "".join(rng.choices(wrapping, k=rng.randrange(4))))
    codes += ["".join(rng.choices(wrapping, k=rng.randrange(6))) for _ in range(9_000)] + [None] * 1_000
    # Signs and number syntax around valid codes.
    for _ in range(30_000):
        code = valid_code(rng, rng.choice((12, 13)))
        codes.append(rng.choice(("+{}", "-{}", "{}-", "{}.0", "0x{}", "{}e0", " +{} ")).format(code))
    return codes


def expected(code: str | None) -> tuple[str | None, str | None]:
    """``(ean13, barcode_reason)`` for one code: the module's format rules, python-stdnum's check digit."""
    trimmed = None if code is None else code.strip(TRIMMED)
    if not trimmed:
        return None, REASON_MISSING_BARCODE
    if not (trimmed.isascii() and trimmed.isdigit()):
        return None, REASON_NOT_NUMERIC
    if len(trimmed) not in (12, 13):
        return None, f"{REASON_NOT_EAN13} ({len(trimmed)} digits)"
    try:
        return ean.validate(trimmed).zfill(13), None
    except InvalidChecksum:
        return None, REASON_INVALID_CHECK_DIGIT


def test_check_digits_and_normalisation_agree_with_python_stdnum_on_a_million_codes() -> None:
    codes = random_codes()
    assert len(codes) >= 1_000_000
    oracle = [expected(code) for code in codes]
    wanted = pl.DataFrame(oracle, schema={"ean13": pl.String, "barcode_reason": pl.String}, orient="row")

    result = normalise_barcodes(pl.Series(codes, dtype=pl.String))

    assert result.schema == wanted.schema and result.height == len(codes)
    differs = (result.get_column("ean13").ne_missing(wanted.get_column("ean13"))
               | result.get_column("barcode_reason").ne_missing(wanted.get_column("barcode_reason")))
    mismatches = [(codes[index], result.row(index), oracle[index]) for index in differs.arg_true().head(20)]
    assert not mismatches, f"{differs.sum()} codes differ from python-stdnum (code, got, expected): {mismatches}"

    # The sample must keep exercising every outcome, valid UPC-As and every length of ASCII digits.
    outcomes = Counter(reason.split(" (")[0] if reason else "valid" for _, reason in oracle)
    assert len(outcomes) == 5 and min(outcomes.values()) >= 5_000, outcomes
    upc_a = sum(1 for code, (ean13, _) in zip(codes, oracle) if ean13 and len(code.strip(TRIMMED)) == 12)
    assert upc_a >= 10_000
    assert {len(code) for code in codes if code and code.isascii() and code.isdigit()} == set(range(1, 21))


def test_barcodes_are_taken_as_typed_where_python_stdnum_would_clean_them() -> None:
    """python-stdnum's ``compact`` maps full-width digits to ASCII and drops inner spaces and hyphens.

    The module only trims: these stay not numeric, as in ``expected``.
    """
    for code in ("４００６３８１３３３９３１", "4006381 333931", "4006381-333931", "\x1c4006381333931"):
        assert ean.is_valid(code)
        assert normalise_barcodes(pl.Series([code])).row(0) == (None, REASON_NOT_NUMERIC)
