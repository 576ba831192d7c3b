"""Read stock for N variants from the sandbox through the paced Shopify client.

Reports points spent, duration, THROTTLED answers and the pacing ratio:
points spent / (initial bucket + restore rate x duration), i.e. how much of what Shopify allowed
in that time the read used. Target: ratio >= 0.9 with zero THROTTLED answers.

    .venv/bin/python benchmarks/bench_shopify_stock_read.py --variants 20000 --plan plus
    .venv/bin/python benchmarks/bench_shopify_stock_read.py --variants 2000 --plan standard
"""

from __future__ import annotations

import argparse
import time

import requests

from lnb_pipeline.clients.shopify import ShopifyClient
from lnb_pipeline.clients.shopify_queries import (
    LOCATIONS_QUERY,
    VARIANT_STOCK_PAGE_QUERY,
)
from lnb_pipeline.sandbox import start_sandbox
from lnb_pipeline.sandbox.shopify.cost import PLANS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", type=int, default=2000)
    parser.add_argument("--plan", choices=sorted(PLANS), default="standard")
    args = parser.parse_args()
    sandbox = start_sandbox(f"scale:{args.variants}", plan=args.plan)
    try:
        client = ShopifyClient(sandbox.shopify_url, "sandbox-token")
        locations = list(client.paginate(LOCATIONS_QUERY, {}, ("locations",)))
        points_before = client.stats.points_spent
        started = time.monotonic()
        variants = sum(1 for _ in client.paginate(
            VARIANT_STOCK_PAGE_QUERY, {"query": None, "levels": len(locations)}, ("productVariants",)))
        duration = time.monotonic() - started
        stats = requests.get(f"{sandbox.shopify.url}/_sandbox/stats", timeout=10).json()
    finally:
        sandbox.stop()
    plan = PLANS[args.plan]
    read_points = client.stats.points_spent - points_before
    allowed = plan.bucket_size + plan.restore_rate * duration
    print(f"plan {args.plan}: {variants} variants read in {duration:.1f} s, {client.stats.requests} requests")
    print(f"points spent {read_points} (sandbox, whole session: {stats['points_spent']}), "
          f"THROTTLED answers {stats.get('throttled', 0)}, client waits {client.stats.waited_seconds:.1f} s")
    print(f"pacing ratio {read_points / allowed:.3f} (points spent / (bucket {plan.bucket_size:.0f} + "
          f"{plan.restore_rate:.0f}/s x {duration:.1f} s))")


if __name__ == "__main__":
    main()
