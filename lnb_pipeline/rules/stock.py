"""Stock rules: Shopify inventory levels → the available-to-sell quantity LNB receives per key.

The flow is ``select_locations`` → ``compute_available_to_sell`` (one row per variant, exported or
excluded with a reason) → ``exported_stock`` (key, quantity) → ``build_preview`` beside LNB's
``GET /inventory`` → ``with_variant_names`` (titles and codes people know) → ``push_guard`` →
``push_rows``. Every reason and status is a module constant so asset checks, the task log and tests
match on the same strings.

Choices worth knowing:

- A negative ``available`` counts as 0 *per location* before summing: a location that oversold
  must not eat another location's stock, which is still physically there to sell.
- The safety buffer is subtracted once per key, after the sum, then floored at 0. It applies to
  Shopify's numbers (tracked, and untracked in ``as_reported`` mode), not to the ``fixed``
  quantity, which is already the merchant's chosen figure.
- A key is "duplicated" when two variants carry it after normalisation, untracked ones included:
  LNB could not tell which variant it means, so none of them is pushed.
- An excluded row keeps its key (when it has one) but no quantity: nothing is sent for it.
- ``product_status`` is carried for checks and logs but is not a rule here: issue 4 does not say
  that draft or archived products are withheld.
- Output order is by the numeric part of the variant gid, then the gid: stable across runs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal, get_args

import polars as pl

StockKey = Literal["ean13", "sku"]
UntrackedMode = Literal["skip", "as_reported", "fixed"]

LEVEL_SCHEMA: dict[str, pl.DataType] = {
    "variant_id": pl.String(),
    "sku": pl.String(),
    "barcode": pl.String(),
    "product_status": pl.String(),
    "tracked": pl.Boolean(),
    "location_id": pl.String(),
    "location_name": pl.String(),
    "available": pl.Int64(),
    "on_hand": pl.Int64(),
    "committed": pl.Int64(),
}
"""One row per variant × location as read from Shopify; ``location_id`` is null for a variant with no level."""

VARIANT_NAME_SCHEMA: dict[str, pl.DataType] = {"product_id": pl.String(), "title": pl.String()}
"""Optional level columns, carried through so people read names: the product's gid (for admin links)
and the variant's display name. Levels without them give nulls."""

AVAILABLE_SCHEMA: dict[str, pl.DataType] = {
    "variant_id": pl.String(),
    "product_id": pl.String(),
    "title": pl.String(),
    "sku": pl.String(),
    "barcode": pl.String(),
    "key": pl.String(),
    "quantity": pl.Int64(),
    "excluded_reason": pl.String(),
}
"""``compute_available_to_sell``'s output: one row per variant; quantity is null when excluded."""

REASON_MISSING_BARCODE = "missing barcode"
REASON_NOT_NUMERIC = "not numeric"
REASON_NOT_EAN13 = "not an EAN13"
"""Prefix: the full reason is ``not an EAN13 (8 digits)``."""
REASON_INVALID_CHECK_DIGIT = "invalid EAN13 check digit"
"""Also for a 12-digit UPC-A, which is checked as its 0-prefixed EAN13."""
REASON_MISSING_SKU = "missing SKU"
REASON_UNTRACKED_SKIPPED = "untracked (skipped by setting)"
REASON_DUPLICATE_KEY = "duplicate key"
"""Prefix: the full reason is ``duplicate key 0123…: shared by 2 variants (Shirt - Blue / M, Shirt - Blue / L)``."""

DUPLICATE_IDS_SHOWN = 5
"""Variant ids named in a duplicate reason; more are summarised, so one shared key cannot bloat every row."""

STATUS_UNCHANGED = "unchanged"
STATUS_CHANGED = "changed"
STATUS_NEW_TO_LNB = "new_to_lnb"
STATUS_MISSING_FROM_SHOPIFY = "missing_from_shopify"
STATUS_EXCLUDED = "excluded"
"""In LNB, and in Shopify but excluded there (duplicate key, untracked skipped): LNB is left as it is."""

_DIGITS_ONLY = r"^[0-9]+$"
"""ASCII digits: a polars ``\\d`` would also accept other scripts' digits, which no scanner prints."""


@dataclass(frozen=True)
class StockSettings:
    """How Shopify stock becomes LNB stock; validated up front so a bad setting fails before any call."""

    key: StockKey = "ean13"
    """Which product code LNB matches on."""
    locations: tuple[str, ...] = ()
    """Location names or gids to sum; empty means every active location."""
    safety_buffer: int = 0
    """Units held back per key, so wholesale cannot sell the last pieces retail also sells."""
    untracked: UntrackedMode = "skip"
    """Variants whose inventory Shopify does not track: skip them, trust Shopify's numbers, or push a fixed quantity."""
    untracked_quantity: int = 0
    """The quantity pushed for untracked variants when ``untracked == "fixed"``."""

    def __post_init__(self) -> None:
        if self.key not in get_args(StockKey):
            raise ValueError(f"stock key must be one of {get_args(StockKey)}, not {self.key!r}")
        if self.untracked not in get_args(UntrackedMode):
            raise ValueError(f"untracked must be one of {get_args(UntrackedMode)}, not {self.untracked!r}")
        if not isinstance(self.locations, tuple) or not all(
                isinstance(location, str) and location.strip() for location in self.locations):
            raise ValueError(f"locations must be a tuple of non-blank location names or gids, not {self.locations!r}")
        for name in ("safety_buffer", "untracked_quantity"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a whole number of units >= 0, not {value!r}")


def _gs1_check_digit_holds(number: pl.Expr) -> pl.Expr:
    """Whether the GS1 check digit of ``number`` (an EAN13 or a UPC-A read as an integer) holds; null for null.

    GS1 weights the digits 1, 3, 1, 3, … from the right (the check digit itself weighs 1) and the
    weighted sum must be a multiple of 10. Leading zeros add nothing, so a UPC-A and its 0-prefixed
    EAN13 are the same number. Integer arithmetic over the whole column: about 20 times faster than
    one python-stdnum call per code, which the property test in ``test_check_digits`` still uses as
    the oracle.
    """
    weighted = (number // 10**position % 10 * (3 if position % 2 else 1) for position in range(13))
    return sum(weighted) % 10 == 0


def normalise_barcodes(barcodes: pl.Series) -> pl.DataFrame:
    """``ean13`` (normalised or null) and ``barcode_reason`` (null when valid), aligned with ``barcodes``.

    Trims whitespace and turns a valid 12-digit UPC-A into its EAN13, so a UPC and its EAN13
    collide as the duplicate check needs. 8- and 14-digit GTINs are not EAN13s.
    """
    trimmed, digits, numeric, candidate = pl.col("trimmed"), pl.col("digits"), pl.col("numeric"), pl.col("candidate")
    valid = pl.col("valid")
    return (
        pl.DataFrame({"barcode": barcodes}, schema={"barcode": pl.String()})
        .lazy()
        .select(pl.col("barcode").str.strip_chars().alias("trimmed"))
        .with_columns(trimmed.str.len_chars().alias("digits"), trimmed.str.contains(_DIGITS_ONLY).alias("numeric"))
        .with_columns(pl.when(numeric & digits.is_in([12, 13])).then(trimmed.str.zfill(13)).alias("candidate"))
        .with_columns(candidate.str.to_integer().alias("number"))  # its own column, or polars parses the text 13 times
        .with_columns(_gs1_check_digit_holds(pl.col("number")).fill_null(False).alias("valid"))
        .select(
            pl.when(valid).then(candidate).alias("ean13"),
            pl.when(trimmed.is_null() | (trimmed == "")).then(pl.lit(REASON_MISSING_BARCODE))
            .when(~numeric).then(pl.lit(REASON_NOT_NUMERIC))
            .when(candidate.is_null()).then(pl.format(f"{REASON_NOT_EAN13} ({{}} digits)", digits))
            .when(~valid).then(pl.lit(REASON_INVALID_CHECK_DIGIT))
            .alias("barcode_reason"),
        )
        .collect()
    )


def select_locations(locations: pl.DataFrame, settings: StockSettings) -> list[str]:
    """The location gids to sum (``locations``: ``id``, ``name``, ``is_active``), in ``locations`` order.

    A configured name or gid that matches nothing is a typo that would silently drop stock, so it
    raises, listing the valid choices. An inactive location named explicitly is honoured. An empty
    selection raises too: it would push 0 for the whole catalogue.
    """
    ids: list[str] = locations.get_column("id").to_list()
    names: list[str] = locations.get_column("name").to_list()
    active: list[bool] = locations.get_column("is_active").to_list()
    if not settings.locations:
        chosen = {location_id for location_id, is_active in zip(ids, active) if is_active}
    else:
        unknown = [wanted for wanted in settings.locations if wanted not in ids and wanted not in names]
        if unknown:
            valid = ", ".join(f"{name!r} ({location_id})" for location_id, name in zip(ids, names))
            raise ValueError(f"unknown location(s) {', '.join(map(repr, unknown))}; valid locations: {valid or 'none'}")
        ambiguous = sorted({wanted for wanted in settings.locations if wanted not in ids and names.count(wanted) > 1})
        if ambiguous:
            raise ValueError(f"location name(s) {', '.join(map(repr, ambiguous))} match several locations; use their gids")
        chosen = {location_id for location_id, name in zip(ids, names)
                  if location_id in settings.locations or name in settings.locations}
    selected = [location_id for location_id in ids if location_id in chosen]
    if not selected:
        raise ValueError("no location to sum stock over: the shop has no active location")
    return selected


def _check_levels(levels: pl.DataFrame) -> None:
    """Fail on a frame that is not ``LEVEL_SCHEMA``-shaped, rather than compute from a wrong column."""
    missing = [name for name in LEVEL_SCHEMA if name not in levels.columns]
    if missing:
        raise ValueError(f"stock levels lack column(s) {', '.join(missing)}; expected LEVEL_SCHEMA")


def _variants(levels: pl.DataFrame, location_ids: list[str]) -> pl.DataFrame:
    """One row per variant: its names, SKU, barcode, tracked flag and ``summed`` stock over ``location_ids``."""
    absent = [pl.lit(None, dtype).alias(name) for name, dtype in VARIANT_NAME_SCHEMA.items() if name not in levels.columns]
    return (
        levels.lazy()
        .with_columns(absent)
        .group_by("variant_id")
        .agg(
            pl.col("product_id").first(),
            pl.col("title").first(),
            pl.col("sku").first(),
            pl.col("barcode").first(),
            pl.col("tracked").first(),
            pl.col("available").filter(pl.col("location_id").is_in(location_ids))
            .clip(lower_bound=0).sum().alias("summed"),
        )
        .with_columns(pl.col("variant_id").str.extract(r"(\d+)$").cast(pl.UInt64, strict=False).alias("order"))
        .sort("order", "variant_id", nulls_last=True)
        .collect()
    )


def _duplicate_reasons(variants: pl.DataFrame, key: pl.Series) -> pl.DataFrame:
    """``key`` and ``duplicate_reason`` for each non-null ``key`` that several ``variants`` rows carry,
    naming the variants by their display name (their gid when the read had none)."""
    return (
        variants.lazy()
        .with_columns(key.alias("key"))
        .filter(pl.col("key").is_not_null() & pl.col("key").is_duplicated())
        .group_by("key")
        .agg(pl.len().alias("sharing"),
             pl.coalesce("title", "variant_id").sort_by("order", "variant_id").head(DUPLICATE_IDS_SHOWN)
             .alias("named"))
        .select(
            "key",
            pl.format(
                f"{REASON_DUPLICATE_KEY} {{}}: shared by {{}} variants ({{}}{{}})",
                pl.col("key"),
                pl.col("sharing"),
                pl.col("named").list.join(", "),
                pl.when(pl.col("sharing") > DUPLICATE_IDS_SHOWN).then(pl.lit(", …")).otherwise(pl.lit("")),
            ).alias("duplicate_reason"),
        )
        .collect()
    )


def compute_available_to_sell(
        levels: pl.DataFrame, location_ids: list[str], settings: StockSettings) -> pl.DataFrame:
    """One row per variant (``AVAILABLE_SCHEMA``): its key and quantity, or why it is not exported.

    Exclusion precedence: missing/invalid key, then untracked skipped, then duplicate key. Rows
    are ordered by the numeric part of the variant gid, then the gid.
    """
    _check_levels(levels)
    variants = _variants(levels, location_ids)
    if settings.key == "ean13":
        keys = normalise_barcodes(variants.get_column("barcode"))
        keyed = variants.hstack(keys.rename({"ean13": "key", "barcode_reason": "key_reason"}))
    else:
        sku = pl.col("sku").str.strip_chars()
        keyed = variants.with_columns(
            pl.when(sku != "").then(sku).alias("key"),
            pl.when(sku.is_null() | (sku == "")).then(pl.lit(REASON_MISSING_SKU)).alias("key_reason"),
        )
    duplicates = _duplicate_reasons(variants, keyed.get_column("key"))
    untracked = pl.col("tracked").not_()
    quantity = (pl.col("summed") - settings.safety_buffer).clip(lower_bound=0)
    if settings.untracked == "fixed":
        quantity = pl.when(untracked).then(pl.lit(settings.untracked_quantity)).otherwise(quantity)
    reasons = [pl.col("key_reason"), pl.col("duplicate_reason")]
    if settings.untracked == "skip":
        reasons.insert(1, pl.when(untracked).then(pl.lit(REASON_UNTRACKED_SKIPPED)))
    return (
        keyed.lazy()
        .join(duplicates.lazy(), on="key", how="left", maintain_order="left")
        .with_columns(pl.coalesce(reasons).alias("excluded_reason"))
        .select(
            "variant_id",
            "product_id",
            "title",
            "sku",
            "barcode",
            "key",
            pl.when(pl.col("excluded_reason").is_null()).then(quantity).cast(pl.Int64).alias("quantity"),
            "excluded_reason",
        )
        .collect()
    )


def exported_stock(available: pl.DataFrame) -> pl.DataFrame:
    """``key, quantity`` of the rows LNB receives, sorted by key."""
    return available.filter(pl.col("excluded_reason").is_null()).select("key", "quantity").sort("key")


def lnb_inventory_frame(rows: list[dict[str, Any]], key: StockKey) -> pl.DataFrame:
    """LNB ``GET /inventory`` rows → ``key, in_stock, lnb_sku, lnb_ean13`` for the key mode, sorted by key.

    Rows without that code are dropped; for a code listed twice the first row wins, as LNB's own
    stock import rule says. ``lnb_sku`` and ``lnb_ean13`` are the row's codes as LNB holds them: the
    only names a key missing from Shopify still has.
    """
    if key not in get_args(StockKey):
        raise ValueError(f"stock key must be one of {get_args(StockKey)}, not {key!r}")
    schema = {"ean13": pl.String(), "sku": pl.String(), "in_stock": pl.Int64()}
    return (
        pl.from_dicts(rows, schema=schema, strict=False)
        .select(
            pl.col(key).str.strip_chars().alias("key"),
            "in_stock",
            pl.col("sku").str.strip_chars().alias("lnb_sku"),
            pl.col("ean13").str.strip_chars().alias("lnb_ean13"),
        )
        .filter(pl.col("key").is_not_null() & (pl.col("key") != ""))
        .unique("key", keep="first", maintain_order=True)
        .sort("key")
    )


def build_preview(new_stock: pl.DataFrame, lnb_inventory: pl.DataFrame,
                  excluded_keys: Iterable[str] = ()) -> pl.DataFrame:
    """Every key on either side: ``key, lnb_quantity, new_quantity, change, status``, sorted by key.

    ``change`` is new − LNB, null when one side is missing. A key LNB holds with a null ``in_stock``
    counts as changed, so the push sets it. A key LNB holds that Shopify has but excludes (e.g. a
    duplicate) is ``excluded``, not ``missing_from_shopify``: the product still exists.
    """
    lnb = lnb_inventory.lazy().select("key", pl.col("in_stock").alias("lnb_quantity"), pl.lit(True).alias("in_lnb"))
    new = new_stock.lazy().select("key", pl.col("quantity").alias("new_quantity"), pl.lit(True).alias("in_new"))
    excluded = pl.Series("excluded", list(excluded_keys), dtype=pl.String)
    return (
        lnb.join(new, on="key", how="full", coalesce=True)
        .select(
            "key",
            pl.col("lnb_quantity").cast(pl.Int64),
            pl.col("new_quantity").cast(pl.Int64),
            (pl.col("new_quantity") - pl.col("lnb_quantity")).cast(pl.Int64).alias("change"),
            pl.when(pl.col("in_lnb").is_null()).then(pl.lit(STATUS_NEW_TO_LNB))
            .when(pl.col("in_new").is_null() & pl.col("key").is_in(excluded.implode())).then(pl.lit(STATUS_EXCLUDED))
            .when(pl.col("in_new").is_null()).then(pl.lit(STATUS_MISSING_FROM_SHOPIFY))
            .when(pl.col("lnb_quantity").eq_missing(pl.col("new_quantity"))).then(pl.lit(STATUS_UNCHANGED))
            .otherwise(pl.lit(STATUS_CHANGED))
            .alias("status"),
        )
        .sort("key")
        .collect()
    )


def push_rows(preview: pl.DataFrame, full_refresh: bool) -> pl.DataFrame:
    """``key, quantity`` to send: the changed keys, or every exported key on a full refresh.

    A key LNB does not know is rejected item by item, so it is sent only on a full refresh (to
    surface the rejection); once the product exists in LNB it shows up there and is sent as changed.
    Keys missing from Shopify are never pushed: this flow does not know what LNB should hold for them.
    """
    statuses = [STATUS_CHANGED, STATUS_NEW_TO_LNB, STATUS_UNCHANGED] if full_refresh else [STATUS_CHANGED]
    return (
        preview.filter(pl.col("status").is_in(statuses))
        .select("key", pl.col("new_quantity").alias("quantity"))
        .sort("key")
    )


def with_variant_names(preview: pl.DataFrame, available: pl.DataFrame, lnb_inventory: pl.DataFrame) -> pl.DataFrame:
    """``build_preview``'s rows with what people know a key by: ``title, sku, barcode, variant_id, product_id``.

    A key takes the variant that carries it (the first, for a key shared by several). A key missing
    from Shopify has no variant: its SKU and barcode are then LNB's own codes for it.
    """
    variants = (
        available.lazy()
        .filter(pl.col("key").is_not_null())
        .unique("key", keep="first", maintain_order=True)
        .select("key", "title", "sku", "barcode", "variant_id", "product_id")
    )
    lnb_codes = lnb_inventory.lazy().select("key", "lnb_sku", "lnb_ean13")
    return (
        preview.lazy()
        .join(variants, on="key", how="left", maintain_order="left")
        .join(lnb_codes, on="key", how="left", maintain_order="left")
        .select(
            "key",
            "title",
            pl.coalesce("sku", "lnb_sku").alias("sku"),
            pl.coalesce("barcode", "lnb_ean13").alias("barcode"),
            "lnb_quantity",
            "new_quantity",
            "change",
            "status",
            "variant_id",
            "product_id",
        )
        .collect()
    )


def largest_changes(preview: pl.DataFrame) -> pl.DataFrame:
    """The changed keys by absolute change (a blank LNB quantity last), then key."""
    return (
        preview.filter(pl.col("status") == STATUS_CHANGED)
        .sort(pl.col("change").abs(), "key", descending=[True, False], nulls_last=True)
    )


def exclusions_by_reason(available: pl.DataFrame) -> pl.DataFrame:
    """``reason, variants``: excluded variants per reason, most first; every shared key counts as one
    ``duplicate key`` reason, whichever key it is."""
    reason = pl.col("excluded_reason")
    return (
        available.filter(reason.is_not_null())
        .group_by(pl.when(reason.str.starts_with(REASON_DUPLICATE_KEY)).then(pl.lit(REASON_DUPLICATE_KEY))
                  .otherwise(reason).alias("reason"))
        .agg(pl.len().cast(pl.Int64).alias("variants"))
        .sort("variants", "reason", descending=[True, False])
    )


@dataclass(frozen=True)
class PushGuard:
    """What a push would do to LNB, beside the limits it must stay within (``push_guard``)."""

    keys_in_lnb: int
    keys_changed: int
    """Keys LNB holds whose quantity the push would change."""
    units_in_lnb: int
    """LNB's total stock over its keys (a negative or blank quantity counts as 0)."""
    units_going_to_zero: int
    """LNB's units on keys the push would set to 0."""
    max_changed_percent: int
    max_zeroed_percent: int

    @property
    def changed_percent(self) -> float:
        return _percent(self.keys_changed, self.keys_in_lnb)

    @property
    def zeroed_percent(self) -> float:
        return _percent(self.units_going_to_zero, self.units_in_lnb)

    @property
    def too_many_changed(self) -> bool:
        return self.keys_changed * 100 > self.max_changed_percent * self.keys_in_lnb

    @property
    def too_many_zeroed(self) -> bool:
        return self.units_going_to_zero * 100 > self.max_zeroed_percent * self.units_in_lnb

    @property
    def within_limits(self) -> bool:
        return not (self.too_many_changed or self.too_many_zeroed)


def _percent(part: int, whole: int) -> float:
    return 100.0 * part / whole if whole else 0.0


def push_guard(preview: pl.DataFrame, max_changed_percent: int, max_zeroed_percent: int) -> PushGuard:
    """How much of LNB's stock the push of ``preview`` would change and zero, against the limits.

    Only keys LNB holds count: a key new to LNB changes nothing there, and a key missing from
    Shopify or of an excluded variant is left as it is. Integer comparisons, so a share exactly at
    its limit passes. With LNB empty nothing can be wiped, so both shares are 0.
    """
    in_lnb = pl.col("status") != STATUS_NEW_TO_LNB
    changed = pl.col("status") == STATUS_CHANGED
    units = pl.col("lnb_quantity").fill_null(0).clip(lower_bound=0)
    figures = preview.select(
        in_lnb.sum().alias("keys_in_lnb"),
        changed.sum().alias("keys_changed"),
        units.filter(in_lnb).sum().alias("units_in_lnb"),
        units.filter(changed & (pl.col("new_quantity") == 0)).sum().alias("units_going_to_zero"),
    ).row(0, named=True)
    return PushGuard(**{name: int(value) for name, value in figures.items()},
                     max_changed_percent=max_changed_percent, max_zeroed_percent=max_zeroed_percent)


def _markdown_cell(value: object) -> str:
    """A value as table text: null is blank; ``|`` and line breaks would break the row."""
    if value is None:
        return ""
    return str(value).replace("|", "\\|").replace("\r\n", " ").replace("\n", " ")


def markdown_table(frame: pl.DataFrame, limit: int = 20) -> str:
    """The first ``limit`` rows as a GitHub-Markdown table, for Dagster metadata; says how many were left out."""
    if limit < 0:
        raise ValueError(f"limit must be >= 0, not {limit}")
    lines = [
        "| " + " | ".join(_markdown_cell(name) for name in frame.columns) + " |",
        "| " + " | ".join("---" for _ in frame.columns) + " |",
    ]
    lines += ["| " + " | ".join(_markdown_cell(value) for value in row) + " |" for row in frame.head(limit).iter_rows()]
    left_out = frame.height - min(limit, frame.height)
    if left_out:
        lines.append(f"… {left_out} more row{'' if left_out == 1 else 's'}")
    return "\n".join(lines)
