"""The stock rules on small hand-made frames, without Dagster or HTTP: every rule, exact values."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from lnb_pipeline.rules.stock import (
    AVAILABLE_SCHEMA,
    LEVEL_SCHEMA,
    REASON_DUPLICATE_KEY,
    REASON_INVALID_CHECK_DIGIT,
    REASON_MISSING_BARCODE,
    REASON_MISSING_SKU,
    REASON_NOT_EAN13,
    REASON_NOT_NUMERIC,
    REASON_UNTRACKED_SKIPPED,
    STATUS_CHANGED,
    STATUS_EXCLUDED,
    STATUS_MISSING_FROM_SHOPIFY,
    STATUS_NEW_TO_LNB,
    STATUS_UNCHANGED,
    StockSettings,
    build_preview,
    compute_available_to_sell,
    exclusions_by_reason,
    exported_stock,
    largest_changes,
    lnb_inventory_frame,
    markdown_table,
    normalise_barcodes,
    push_rows,
    select_locations,
    with_variant_names,
)

WAREHOUSE = "gid://shopify/Location/1"
SHOP = "gid://shopify/Location/2"
POPUP = "gid://shopify/Location/3"
LOCATIONS = pl.DataFrame({
    "id": [WAREHOUSE, SHOP, POPUP],
    "name": ["Warehouse", "Paris shop", "Pop-up"],
    "is_active": [True, True, False],
})
ACTIVE = [WAREHOUSE, SHOP]
LOCATION_NAMES = {WAREHOUSE: "Warehouse", SHOP: "Paris shop", POPUP: "Pop-up"}

EAN_A = "4006381333931"
EAN_B = "5901234123457"
EAN_C = "9780471117094"
UPC = "036000291452"
UPC_AS_EAN = "0036000291452"


def gid(number: int) -> str:
    return f"gid://shopify/ProductVariant/{number}"


def variant(number: int, available: dict[str, int | None], *, barcode: str | None = EAN_A,
            sku: str | None = None, tracked: bool = True) -> list[dict[str, Any]]:
    """One variant's level rows; no levels gives the single row Shopify's read yields with a null location."""
    base = {"variant_id": gid(number), "sku": sku if sku is not None else f"SKU-{number}", "barcode": barcode,
            "product_status": "ACTIVE", "tracked": tracked}
    if not available:
        return [base | {"location_id": None, "location_name": None, "available": None, "on_hand": None,
                        "committed": None}]
    return [base | {"location_id": location, "location_name": LOCATION_NAMES[location], "available": quantity,
                    "on_hand": quantity, "committed": 0}
            for location, quantity in available.items()]


def levels(*variants: list[dict[str, Any]]) -> pl.DataFrame:
    return pl.DataFrame([row for rows in variants for row in rows], schema=LEVEL_SCHEMA)


def outcome(frame: pl.DataFrame, settings: StockSettings = StockSettings(),
            location_ids: list[str] = ACTIVE) -> dict[str, tuple[str | None, int | None, str | None]]:
    """``variant_id -> (key, quantity, excluded_reason)``."""
    result = compute_available_to_sell(frame, location_ids, settings)
    return {row["variant_id"]: (row["key"], row["quantity"], row["excluded_reason"])
            for row in result.iter_rows(named=True)}


# --- settings ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("arguments", "message"), [
    ({"key": "upc"}, "stock key must be one of ('ean13', 'sku'), not 'upc'"),
    ({"untracked": "zero"}, "untracked must be one of ('skip', 'as_reported', 'fixed'), not 'zero'"),
    ({"safety_buffer": -1}, "safety_buffer must be a whole number of units >= 0, not -1"),
    ({"safety_buffer": True}, "safety_buffer must be a whole number of units >= 0, not True"),
    ({"untracked_quantity": 2.5}, "untracked_quantity must be a whole number of units >= 0, not 2.5"),
    ({"locations": ["Warehouse"]}, "locations must be a tuple of non-blank location names or gids, not ['Warehouse']"),
    ({"locations": ("Warehouse", " ")}, "locations must be a tuple of non-blank location names or gids"),
])
def test_settings_reject_invalid_values(arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as error:
        StockSettings(**arguments)
    assert str(error.value).startswith(message)


def test_settings_defaults() -> None:
    assert StockSettings() == StockSettings(key="ean13", locations=(), safety_buffer=0, untracked="skip",
                                            untracked_quantity=0)


# --- locations -----------------------------------------------------------------------------------

def test_locations_default_to_all_active_ones() -> None:
    assert select_locations(LOCATIONS, StockSettings()) == [WAREHOUSE, SHOP]


def test_locations_by_name_and_gid_keep_the_shop_order() -> None:
    settings = StockSettings(locations=(SHOP, "Warehouse", "Paris shop"))
    assert select_locations(LOCATIONS, settings) == [WAREHOUSE, SHOP]


def test_inactive_location_named_explicitly_is_used() -> None:
    assert select_locations(LOCATIONS, StockSettings(locations=("Pop-up",))) == [POPUP]


def test_unknown_locations_raise_naming_them_and_the_valid_ones() -> None:
    with pytest.raises(ValueError) as error:
        select_locations(LOCATIONS, StockSettings(locations=("Warehouse", "Lyon", "gid://shopify/Location/9")))
    assert str(error.value) == (
        "unknown location(s) 'Lyon', 'gid://shopify/Location/9'; valid locations: "
        f"'Warehouse' ({WAREHOUSE}), 'Paris shop' ({SHOP}), 'Pop-up' ({POPUP})")


def test_ambiguous_location_name_raises() -> None:
    twins = pl.DataFrame({"id": [WAREHOUSE, SHOP], "name": ["Store", "Store"], "is_active": [True, True]})
    with pytest.raises(ValueError, match="location name\\(s\\) 'Store' match several locations; use their gids"):
        select_locations(twins, StockSettings(locations=("Store",)))
    assert select_locations(twins, StockSettings(locations=(SHOP,))) == [SHOP]


def test_no_active_location_raises_rather_than_pushing_zeros() -> None:
    inactive = LOCATIONS.with_columns(pl.lit(False).alias("is_active"))
    with pytest.raises(ValueError, match="no location to sum stock over"):
        select_locations(inactive, StockSettings())


def test_only_selected_locations_are_summed() -> None:
    frame = levels(variant(1, {WAREHOUSE: 4, SHOP: 3, POPUP: 20}))
    assert outcome(frame) == {gid(1): (EAN_A, 7, None)}
    assert outcome(frame, location_ids=[POPUP]) == {gid(1): (EAN_A, 20, None)}
    assert outcome(frame, location_ids=[SHOP, POPUP]) == {gid(1): (EAN_A, 23, None)}


# --- quantities ----------------------------------------------------------------------------------

def test_multi_location_sum() -> None:
    frame = levels(variant(1, {WAREHOUSE: 10, SHOP: 5}, barcode=EAN_A),
                   variant(2, {WAREHOUSE: 0, SHOP: 2}, barcode=EAN_B))
    assert outcome(frame) == {gid(1): (EAN_A, 15, None), gid(2): (EAN_B, 2, None)}


def test_negative_level_counts_as_zero_not_against_other_locations() -> None:
    frame = levels(variant(1, {WAREHOUSE: -3, SHOP: 5}, barcode=EAN_A),
                   variant(2, {WAREHOUSE: -3, SHOP: -1}, barcode=EAN_B))
    assert outcome(frame) == {gid(1): (EAN_A, 5, None), gid(2): (EAN_B, 0, None)}


def test_variant_without_levels_or_null_available_exports_zero() -> None:
    frame = levels(variant(1, {}, barcode=EAN_A), variant(2, {WAREHOUSE: None, SHOP: 4}, barcode=EAN_B),
                   variant(3, {POPUP: 8}, barcode=EAN_C))
    assert outcome(frame) == {gid(1): (EAN_A, 0, None), gid(2): (EAN_B, 4, None), gid(3): (EAN_C, 0, None)}


def test_safety_buffer_is_subtracted_per_key_and_floored_at_zero() -> None:
    frame = levels(variant(1, {WAREHOUSE: 4, SHOP: 3}, barcode=EAN_A),
                   variant(2, {WAREHOUSE: 1, SHOP: 1}, barcode=EAN_B),
                   variant(3, {WAREHOUSE: -5, SHOP: 0}, barcode=EAN_C))
    assert outcome(frame, StockSettings(safety_buffer=3)) == {
        gid(1): (EAN_A, 4, None), gid(2): (EAN_B, 0, None), gid(3): (EAN_C, 0, None)}


def untracked_catalogue() -> pl.DataFrame:
    return levels(variant(1, {WAREHOUSE: 6, SHOP: 1}, barcode=EAN_A),
                  variant(2, {WAREHOUSE: 4, SHOP: -2}, barcode=EAN_B, tracked=False))


def test_untracked_skipped_by_default() -> None:
    assert outcome(untracked_catalogue()) == {
        gid(1): (EAN_A, 7, None), gid(2): (EAN_B, None, REASON_UNTRACKED_SKIPPED)}
    assert REASON_UNTRACKED_SKIPPED == "untracked (skipped by setting)"


def test_untracked_as_reported_uses_shopify_numbers_like_tracked() -> None:
    settings = StockSettings(untracked="as_reported", safety_buffer=1)
    assert outcome(untracked_catalogue(), settings) == {gid(1): (EAN_A, 6, None), gid(2): (EAN_B, 3, None)}


def test_untracked_fixed_quantity_ignores_levels_and_buffer() -> None:
    settings = StockSettings(untracked="fixed", untracked_quantity=50, safety_buffer=2)
    assert outcome(untracked_catalogue(), settings) == {gid(1): (EAN_A, 5, None), gid(2): (EAN_B, 50, None)}


# --- barcodes and keys ---------------------------------------------------------------------------

def test_normalise_barcodes_per_value() -> None:
    barcodes = pl.Series([f" {EAN_A}\t", UPC, "036000291453", UPC_AS_EAN, None, "  ", "ABC-123", "73513537",
                          "98412345678908", "4006381333932", EAN_A, "４００６３８１３３３９３１"])
    result = normalise_barcodes(barcodes)
    assert result.columns == ["ean13", "barcode_reason"]
    assert result.rows() == [
        (EAN_A, None),
        (UPC_AS_EAN, None),
        (None, REASON_INVALID_CHECK_DIGIT),
        (UPC_AS_EAN, None),
        (None, REASON_MISSING_BARCODE),
        (None, REASON_MISSING_BARCODE),
        (None, REASON_NOT_NUMERIC),
        (None, f"{REASON_NOT_EAN13} (8 digits)"),
        (None, f"{REASON_NOT_EAN13} (14 digits)"),
        (None, REASON_INVALID_CHECK_DIGIT),
        (EAN_A, None),
        (None, REASON_NOT_NUMERIC),
    ]
    assert (REASON_MISSING_BARCODE, REASON_NOT_NUMERIC, REASON_INVALID_CHECK_DIGIT) == (
        "missing barcode", "not numeric", "invalid EAN13 check digit")
    assert f"{REASON_NOT_EAN13} (8 digits)" == "not an EAN13 (8 digits)"


def test_normalise_barcodes_empty_series() -> None:
    result = normalise_barcodes(pl.Series([], dtype=pl.String))
    assert result.height == 0 and result.schema == pl.Schema({"ean13": pl.String, "barcode_reason": pl.String})


def test_missing_barcode_is_excluded() -> None:
    frame = levels(variant(1, {WAREHOUSE: 3}, barcode=None), variant(2, {WAREHOUSE: 3}, barcode=" "),
                   variant(3, {WAREHOUSE: 3}, barcode=EAN_A))
    assert outcome(frame) == {gid(1): (None, None, "missing barcode"), gid(2): (None, None, "missing barcode"),
                              gid(3): (EAN_A, 3, None)}


def test_barcode_whitespace_is_trimmed() -> None:
    frame = levels(variant(1, {WAREHOUSE: 2}, barcode=f"  {EAN_A} \n"))
    assert outcome(frame) == {gid(1): (EAN_A, 2, None)}


def test_invalid_check_digit_is_excluded() -> None:
    frame = levels(variant(1, {WAREHOUSE: 2}, barcode="4006381333932"),
                   variant(2, {WAREHOUSE: 2}, barcode="036000291453"))
    assert outcome(frame) == {gid(1): (None, None, "invalid EAN13 check digit"),
                              gid(2): (None, None, "invalid EAN13 check digit")}


def test_upc_a_becomes_its_zero_prefixed_ean13() -> None:
    frame = levels(variant(1, {WAREHOUSE: 2, SHOP: 1}, barcode=UPC))
    assert outcome(frame) == {gid(1): (UPC_AS_EAN, 3, None)}


def test_ean8_gtin14_and_text_are_excluded() -> None:
    frame = levels(variant(1, {WAREHOUSE: 2}, barcode="73513537"),
                   variant(2, {WAREHOUSE: 2}, barcode="98412345678908"),
                   variant(3, {WAREHOUSE: 2}, barcode="4006381-333931"))
    assert outcome(frame) == {gid(1): (None, None, "not an EAN13 (8 digits)"),
                              gid(2): (None, None, "not an EAN13 (14 digits)"),
                              gid(3): (None, None, "not numeric")}


def test_upc_colliding_with_its_ean13_excludes_both() -> None:
    frame = levels(variant(7, {WAREHOUSE: 2}, barcode=UPC), variant(12, {WAREHOUSE: 5}, barcode=UPC_AS_EAN),
                   variant(3, {WAREHOUSE: 1}, barcode=EAN_A))
    reason = f"duplicate key {UPC_AS_EAN}: shared by 2 variants ({gid(7)}, {gid(12)})"
    assert outcome(frame) == {gid(3): (EAN_A, 1, None), gid(7): (UPC_AS_EAN, None, reason),
                              gid(12): (UPC_AS_EAN, None, reason)}
    assert reason.startswith(REASON_DUPLICATE_KEY)


def test_duplicate_reason_names_at_most_five_variants() -> None:
    frame = levels(*(variant(number, {WAREHOUSE: 1}, barcode=EAN_B) for number in range(1, 8)))
    shown = ", ".join(gid(number) for number in range(1, 6))
    reasons = {row[2] for row in outcome(frame).values()}
    assert reasons == {f"duplicate key {EAN_B}: shared by 7 variants ({shown}, …)"}


def test_duplicate_reason_names_the_variants_by_their_display_name_when_the_read_has_it() -> None:
    frame = levels(variant(1, {WAREHOUSE: 1}, barcode=EAN_B), variant(2, {WAREHOUSE: 1}, barcode=EAN_B))
    named = frame.with_columns(pl.format("Linen Shirt - {}", pl.col("sku")).alias("title"))
    reasons = {row[2] for row in outcome(named).values()}
    assert reasons == {f"duplicate key {EAN_B}: shared by 2 variants (Linen Shirt - SKU-1, Linen Shirt - SKU-2)"}


def test_sku_mode_trims_and_excludes_missing_skus() -> None:
    frame = levels(variant(1, {WAREHOUSE: 2}, sku="  TEE-RED-M ", barcode=None),
                   variant(2, {WAREHOUSE: 2}, sku=""), variant(3, {WAREHOUSE: 2}, sku="   "))
    frame = pl.concat([frame, levels(variant(4, {WAREHOUSE: 2})).with_columns(pl.lit(None, pl.String).alias("sku"))])
    assert outcome(frame, StockSettings(key="sku")) == {
        gid(1): ("TEE-RED-M", 2, None), gid(2): (None, None, "missing SKU"), gid(3): (None, None, "missing SKU"),
        gid(4): (None, None, "missing SKU")}
    assert REASON_MISSING_SKU == "missing SKU"


def test_sku_mode_duplicates_after_trimming_are_excluded() -> None:
    frame = levels(variant(1, {WAREHOUSE: 2}, sku="TEE-M"), variant(2, {WAREHOUSE: 2}, sku=" TEE-M"),
                   variant(3, {WAREHOUSE: 2}, sku="TEE-L"))
    reason = f"duplicate key TEE-M: shared by 2 variants ({gid(1)}, {gid(2)})"
    assert outcome(frame, StockSettings(key="sku")) == {
        gid(1): ("TEE-M", None, reason), gid(2): ("TEE-M", None, reason), gid(3): ("TEE-L", 2, None)}


def test_exclusion_precedence_key_then_untracked_then_duplicate() -> None:
    frame = levels(variant(1, {WAREHOUSE: 2}, barcode="123", tracked=False),
                   variant(2, {WAREHOUSE: 2}, barcode=EAN_C, tracked=False),
                   variant(3, {WAREHOUSE: 2}, barcode=EAN_C))
    reason = f"duplicate key {EAN_C}: shared by 2 variants ({gid(2)}, {gid(3)})"
    assert outcome(frame) == {gid(1): (None, None, "not an EAN13 (3 digits)"),
                              gid(2): (EAN_C, None, REASON_UNTRACKED_SKIPPED),
                              gid(3): (EAN_C, None, reason)}


def test_output_schema_and_numeric_variant_order() -> None:
    frame = levels(variant(10, {WAREHOUSE: 1}, barcode=EAN_A), variant(9, {WAREHOUSE: 1}, barcode=EAN_B),
                   variant(100, {WAREHOUSE: 1}, barcode=None))
    result = compute_available_to_sell(frame, ACTIVE, StockSettings())
    assert result.schema == pl.Schema(AVAILABLE_SCHEMA)
    assert result.rows() == [
        (gid(9), None, None, "SKU-9", EAN_B, EAN_B, 1, None),
        (gid(10), None, None, "SKU-10", EAN_A, EAN_A, 1, None),
        (gid(100), None, None, "SKU-100", None, None, None, "missing barcode"),
    ]


def test_variant_names_are_carried_from_the_levels_when_read() -> None:
    """People read titles, not gids: the stock read's name columns reach every variant, excluded ones too."""
    names = {gid(1): ("gid://shopify/Product/7", "Linen Shirt - Blue / M"),
             gid(2): ("gid://shopify/Product/8", "Wool Coat - Camel / L")}
    frame = levels(variant(1, {WAREHOUSE: 1, SHOP: 2}, barcode=EAN_A), variant(2, {WAREHOUSE: 1}, barcode=None))
    frame = frame.with_columns(
        pl.col("variant_id").replace_strict({key: value[0] for key, value in names.items()}).alias("product_id"),
        pl.col("variant_id").replace_strict({key: value[1] for key, value in names.items()}).alias("title"),
    )
    result = compute_available_to_sell(frame, ACTIVE, StockSettings())
    assert result.schema == pl.Schema(AVAILABLE_SCHEMA)
    assert result.select("variant_id", "product_id", "title", "quantity").rows() == [
        (gid(1), "gid://shopify/Product/7", "Linen Shirt - Blue / M", 3),
        (gid(2), "gid://shopify/Product/8", "Wool Coat - Camel / L", None),
    ]


def test_levels_without_a_required_column_are_rejected() -> None:
    with pytest.raises(ValueError, match="stock levels lack column\\(s\\) tracked, available"):
        compute_available_to_sell(levels(variant(1, {WAREHOUSE: 1})).drop("tracked", "available"), ACTIVE,
                                  StockSettings())


def test_exported_stock_keeps_exported_rows_sorted_by_key() -> None:
    frame = levels(variant(1, {WAREHOUSE: 3}, barcode=EAN_B), variant(2, {WAREHOUSE: 4}, barcode=EAN_A),
                   variant(3, {WAREHOUSE: 5}, barcode=None))
    exported = exported_stock(compute_available_to_sell(frame, ACTIVE, StockSettings()))
    assert exported.columns == ["key", "quantity"]
    assert exported.rows() == [(EAN_A, 4), (EAN_B, 3)]


# --- LNB side, preview, push ---------------------------------------------------------------------

def test_lnb_inventory_frame_first_row_wins_and_keyless_rows_drop() -> None:
    rows = [
        {"ean13": EAN_B, "sku": "B", "in_stock": 4, "is_blocked": False},
        {"ean13": EAN_A, "sku": "A", "in_stock": 1},
        {"ean13": EAN_B, "sku": "B2", "in_stock": 9},
        {"ean13": None, "sku": "C", "in_stock": 2},
        {"ean13": "", "sku": "D", "in_stock": 2},
        {"sku": "A", "in_stock": 7},
    ]
    assert lnb_inventory_frame(rows, "ean13").rows() == [(EAN_A, 1, "A", EAN_A), (EAN_B, 4, "B", EAN_B)]
    assert lnb_inventory_frame(rows, "sku").select("key", "in_stock").rows() == [
        ("A", 1), ("B", 4), ("B2", 9), ("C", 2), ("D", 2)]
    assert lnb_inventory_frame(rows, "sku").row(3) == ("C", 2, "C", None)
    assert lnb_inventory_frame([], "sku").schema == pl.Schema(
        {"key": pl.String, "in_stock": pl.Int64, "lnb_sku": pl.String, "lnb_ean13": pl.String})
    with pytest.raises(ValueError, match="stock key must be one of"):
        lnb_inventory_frame(rows, "upc")  # type: ignore[arg-type]


def preview_inputs() -> tuple[pl.DataFrame, pl.DataFrame]:
    new = pl.DataFrame({"key": ["A", "B", "C", "E"], "quantity": [5, 3, 0, 8]})
    lnb = pl.DataFrame({"key": ["A", "B", "C", "D"], "in_stock": [5, 10, None, 2]})
    return new, lnb


def test_preview_statuses_and_changes() -> None:
    preview = build_preview(*preview_inputs())
    expected = pl.DataFrame({
        "key": ["A", "B", "C", "D", "E"],
        "lnb_quantity": [5, 10, None, 2, None],
        "new_quantity": [5, 3, 0, None, 8],
        "change": [0, -7, None, None, None],
        "status": [STATUS_UNCHANGED, STATUS_CHANGED, STATUS_CHANGED, STATUS_MISSING_FROM_SHOPIFY, STATUS_NEW_TO_LNB],
    }, schema={"key": pl.String, "lnb_quantity": pl.Int64, "new_quantity": pl.Int64, "change": pl.Int64,
               "status": pl.String})
    assert_frame_equal(preview, expected)
    assert (STATUS_UNCHANGED, STATUS_CHANGED, STATUS_NEW_TO_LNB, STATUS_MISSING_FROM_SHOPIFY) == (
        "unchanged", "changed", "new_to_lnb", "missing_from_shopify")


def test_preview_marks_keys_excluded_in_shopify_apart_from_missing_ones() -> None:
    """A duplicate key still exists in Shopify: LNB keeps it, and it must not read as a deleted product."""
    preview = build_preview(*preview_inputs(), excluded_keys=["D", "Z"])
    assert preview.filter(pl.col("key") == "D")["status"].to_list() == [STATUS_EXCLUDED]
    assert preview.filter(pl.col("key") == "Z").is_empty()
    assert push_rows(preview, full_refresh=True).get_column("key").to_list() == ["A", "B", "C", "E"]


def test_push_rows_delta_then_full_refresh() -> None:
    preview = build_preview(*preview_inputs())
    assert push_rows(preview, full_refresh=False).rows() == [("B", 3), ("C", 0)]
    assert push_rows(preview, full_refresh=True).rows() == [("A", 5), ("B", 3), ("C", 0), ("E", 8)]
    assert push_rows(preview, full_refresh=False).columns == ["key", "quantity"]


def test_largest_changes_are_the_changed_keys_by_absolute_change_then_key() -> None:
    """New and missing keys have their own lists; a blank LNB quantity has no size, so it comes last."""
    new = pl.DataFrame({"key": ["A", "B", "C", "D", "E", "F", "H"], "quantity": [1, 9, 3, 0, 4, 7, 2]})
    lnb = pl.DataFrame({"key": ["A", "B", "C", "D", "E", "G", "H"], "in_stock": [5, 5, 3, 4, 9, 1, None]})
    ranked = largest_changes(build_preview(new, lnb))
    assert ranked.select("key", "change").rows() == [("E", -5), ("A", -4), ("B", 4), ("D", -4), ("H", None)]
    assert set(ranked["status"]) == {STATUS_CHANGED}


def test_variant_names_go_beside_each_key_and_lnb_codes_name_the_keys_missing_from_shopify() -> None:
    available = pl.DataFrame({
        "variant_id": [gid(1), gid(2), gid(3), gid(4)],
        "product_id": ["gid://shopify/Product/1"] * 4,
        "title": ["Shirt - S", "Shirt - M", "Shirt - L", "Shirt - XL"],
        "sku": ["SH-S", "SH-M", "SH-L1", "SH-L2"],
        "barcode": ["A", "B", "C", " C"],
        "key": ["A", "B", "C", "C"],
        "quantity": [5, 3, None, None],
        "excluded_reason": [None, None, "duplicate key C", "duplicate key C"],
    }, schema=AVAILABLE_SCHEMA)
    lnb = lnb_inventory_frame([{"ean13": "A", "sku": "SH-S", "in_stock": 5}, {"ean13": "C", "sku": "SH-L", "in_stock": 1},
                               {"ean13": "D", "sku": "OLD-1", "in_stock": 2}], "ean13")
    preview = build_preview(exported_stock(available), lnb, excluded_keys=["C"])

    named = with_variant_names(preview, available, lnb)

    assert named.columns == ["key", "title", "sku", "barcode", "lnb_quantity", "new_quantity", "change", "status",
                             "variant_id", "product_id"]
    assert named.select("key", "title", "sku", "barcode", "status", "variant_id").rows() == [
        ("A", "Shirt - S", "SH-S", "A", STATUS_UNCHANGED, gid(1)),
        ("B", "Shirt - M", "SH-M", "B", STATUS_NEW_TO_LNB, gid(2)),
        ("C", "Shirt - L", "SH-L1", "C", STATUS_EXCLUDED, gid(3)),
        ("D", None, "OLD-1", "D", STATUS_MISSING_FROM_SHOPIFY, None),
    ]
    assert_frame_equal(named.select(preview.columns), preview)


def test_exclusions_by_reason_count_every_shared_key_as_one_reason() -> None:
    available = pl.DataFrame({
        "variant_id": [gid(n) for n in range(1, 7)],
        "key": ["A", "A", "B", "B", None, "C"],
        "excluded_reason": ["duplicate key A: shared by 2 variants", "duplicate key A: shared by 2 variants",
                            "duplicate key B: shared by 2 variants", "duplicate key B: shared by 2 variants",
                            REASON_MISSING_BARCODE, None],
    })
    assert exclusions_by_reason(available).rows() == [(REASON_DUPLICATE_KEY, 4), (REASON_MISSING_BARCODE, 1)]
    assert exclusions_by_reason(available).columns == ["reason", "variants"]


# --- Markdown -------------------------------------------------------------------------------------

def test_markdown_table_escapes_pipes_and_blanks_nulls() -> None:
    frame = pl.DataFrame({"key": ["A|B", "line\nbreak"], "quantity": [3, None]})
    assert markdown_table(frame) == (
        "| key | quantity |\n"
        "| --- | --- |\n"
        "| A\\|B | 3 |\n"
        "| line break |  |"
    )


def test_markdown_table_truncates_with_a_count() -> None:
    frame = pl.DataFrame({"key": ["a", "b", "c", "d"], "n": [1, 2, 3, 4]})
    assert markdown_table(frame, limit=2) == "| key | n |\n| --- | --- |\n| a | 1 |\n| b | 2 |\n… 2 more rows"
    assert markdown_table(frame, limit=3).endswith("| c | 3 |\n… 1 more row")
    assert markdown_table(frame, limit=4).endswith("| d | 4 |")
    assert markdown_table(frame.clear()) == "| key | n |\n| --- | --- |"
    with pytest.raises(ValueError, match="limit must be >= 0"):
        markdown_table(frame, limit=-1)
