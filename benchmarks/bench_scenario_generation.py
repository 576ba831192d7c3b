"""Time ``scale_scenario`` (the sandbox's ``scale:N``), which must stay well under 5 s at 100 000 variants.

Run: ``.venv/bin/python benchmarks/bench_scenario_generation.py``. Generation is timed apart from
validation because ``load_scenario`` pays both; memory is measured in a separate, untimed run since
tracemalloc slows allocation down.
"""

from __future__ import annotations

import statistics
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

from lnb_pipeline.sandbox.generators import scale_scenario
from lnb_pipeline.sandbox.scenario import validate_scenario

SIZES = (10_000, 100_000)
REPEATS = 3


def seconds(action: Callable[..., object], *args: Any) -> float:
    start = time.perf_counter()
    action(*args)
    return time.perf_counter() - start


def retained_megabytes(variants: int) -> float:
    """Memory the generated scenario keeps alive, as tracemalloc sees it."""
    tracemalloc.start()
    scenario = scale_scenario(variants)
    retained, _peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del scenario
    return retained / 1e6


def main() -> None:
    print(f"{'variants':>9} | {'generate best':>13} | {'generate median':>15} | "
          f"{'validate':>8} | {'memory':>8}")
    print(f"{'-' * 9}-+-{'-' * 13}-+-{'-' * 15}-+-{'-' * 8}-+-{'-' * 8}")
    for variants in SIZES:
        timings = [seconds(scale_scenario, variants) for _ in range(REPEATS)]
        scenario = scale_scenario(variants)
        validation = seconds(validate_scenario, scenario)
        del scenario
        print(f"{variants:>9,} | {min(timings):>12.3f}s | {statistics.median(timings):>14.3f}s | "
              f"{validation:>7.3f}s | {retained_megabytes(variants):>5.0f} MB")


if __name__ == "__main__":
    main()
