"""Time the stock rules on 1 000 000 level rows; the target (issue 11) is a median under 0.6 s on this 2-core machine.

Run: ``.venv/bin/python benchmarks/bench_stock_computation.py`` (default 333 334 variants × 3
locations). Barcodes are realistic: mostly valid EAN13, some 12-digit UPC-A, padded, invalid,
EAN-8, non-numeric, missing and shared ones. Building the frame is not timed; each run times
``compute_available_to_sell`` + ``exported_stock``, and ``normalise_barcodes`` (trimming, format
and check digits, all polars expressions) is timed apart on the distinct barcodes.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable

import polars as pl
from stdnum import ean

from lnb_pipeline.rules.stock import (
    LEVEL_SCHEMA,
    StockSettings,
    compute_available_to_sell,
    exported_stock,
    normalise_barcodes,
)

REPEATS = 5


def synthetic_barcode(rng: random.Random, variant: int, previous: list[str]) -> str | None:
    """One variant's barcode, drawn from the mix a real catalogue shows; valid ones are distinct per variant."""
    body = f"3760{variant:08d}"
    ean13 = body + ean.calc_check_digit(body)
    draw = rng.random()
    if draw < 0.04:
        upc = f"0{variant:010d}"
        return upc + ean.calc_check_digit(upc)
    if draw < 0.05:
        return f"  {ean13} "
    if draw < 0.06:
        return body + str((int(ean13[-1]) + 1) % 10)
    if draw < 0.065:
        return f"{variant % 10 ** 7:07d}0"
    if draw < 0.07:
        return f"SKU-{variant}"
    if draw < 0.08:
        return rng.choice([None, "", "   "])
    if draw < 0.09 and previous:
        return rng.choice(previous)
    return ean13


def synthetic_levels(variants: int, locations: int, seed: int = 4) -> tuple[pl.DataFrame, list[str]]:
    """``variants`` × ``locations`` level rows in ``LEVEL_SCHEMA``, grouped by variant as a bulk read gives them."""
    rng = random.Random(seed)
    barcodes: list[str | None] = []
    recent: list[str] = []
    for variant in range(1, variants + 1):
        barcode = synthetic_barcode(rng, variant, recent)
        barcodes.append(barcode)
        if barcode:
            recent = (recent + [barcode])[-100:]
    location_ids = [f"gid://shopify/Location/{number}" for number in range(1, locations + 1)]
    variant_frame = pl.DataFrame({
        "variant_id": [f"gid://shopify/ProductVariant/{variant}" for variant in range(1, variants + 1)],
        "sku": [f"SKU-{variant:07d}" for variant in range(1, variants + 1)],
        "barcode": barcodes,
        "product_status": ["ACTIVE"] * variants,
        "tracked": [rng.random() >= 0.03 for _ in range(variants)],
    })
    location_frame = pl.DataFrame({
        "location_id": location_ids,
        "location_name": [f"Warehouse {number}" for number in range(1, locations + 1)],
    })
    levels = variant_frame.join(location_frame, how="cross").with_columns(
        pl.Series("available", [rng.randint(-5, 40) for _ in range(variants * locations)], dtype=pl.Int64),
    ).with_columns(
        (pl.col("available").clip(lower_bound=0) + 2).alias("on_hand"),
        pl.lit(2, dtype=pl.Int64).alias("committed"),
    )
    return levels.select(pl.col(name).cast(dtype) for name, dtype in LEVEL_SCHEMA.items()), location_ids


def seconds(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", type=int, default=333_334)
    parser.add_argument("--locations", type=int, default=3)
    args = parser.parse_args()
    levels, location_ids = synthetic_levels(args.variants, args.locations)
    settings = StockSettings(safety_buffer=1, untracked="as_reported")
    available = compute_available_to_sell(levels, location_ids, settings)
    exported = exported_stock(available)
    barcodes = levels.get_column("barcode").unique()
    print(f"{levels.height:,} level rows, {available.height:,} variants, {barcodes.len():,} distinct barcodes, "
          f"{exported.height:,} keys exported, {available.height - exported.height:,} excluded")
    timings = [seconds(lambda: exported_stock(compute_available_to_sell(levels, location_ids, settings)))
               for _ in range(REPEATS)]
    normalising = [seconds(lambda: normalise_barcodes(barcodes)) for _ in range(REPEATS)]
    print(f"compute_available_to_sell + exported_stock: best {min(timings):.3f} s, "
          f"median {statistics.median(timings):.3f} s (target: median < 0.6 s)")
    print(f"  normalise_barcodes alone (distinct barcodes): best {min(normalising):.3f} s, "
          f"median {statistics.median(normalising):.3f} s")


if __name__ == "__main__":
    main()
