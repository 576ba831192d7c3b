"""Read stock for N variants from the sandbox through the Shopify client, by pages or by bulk operation.

``--mode paginated`` (default) reports points spent, duration, THROTTLED answers and the pacing ratio:
points spent / (initial bucket + restore rate x duration), i.e. how much of what Shopify allowed
in that time the read used. Target: ratio >= 0.9 with zero THROTTLED answers.

``--mode bulk`` times ``read_stock`` end to end (start, polls, download of the signed link, parse,
join into the levels frame) and splits it at the client's "completed" log line: the bulk operation
itself (the sandbox's work, paced by the client's polls) and the client's download + join. The
sandbox runs in its own process there, so the peak RSS is the client's alone.

    .venv/bin/python benchmarks/bench_shopify_stock_read.py --variants 20000 --plan plus
    .venv/bin/python benchmarks/bench_shopify_stock_read.py --variants 2000 --plan standard
    .venv/bin/python benchmarks/bench_shopify_stock_read.py --mode bulk --variants 100000 --repeat 3
"""

from __future__ import annotations

import argparse
import logging
import resource
import socket
import subprocess
import sys
import time

import requests

from lnb_pipeline.clients.shopify import ShopifyClient
from lnb_pipeline.clients.shopify_queries import (
    LOCATIONS_QUERY,
    VARIANT_STOCK_PAGE_QUERY,
)
from lnb_pipeline.sandbox import start_sandbox
from lnb_pipeline.sandbox.shopify.cost import PLANS
from lnb_pipeline.sandbox.wait import wait_for
from lnb_pipeline.stock_source import read_stock


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", type=int, default=2000)
    parser.add_argument("--plan", choices=sorted(PLANS), default="standard")
    parser.add_argument("--mode", choices=("paginated", "bulk"), default="paginated")
    parser.add_argument("--repeat", type=int, default=1, help="bulk reads in a row (bulk mode)")
    args = parser.parse_args()
    if args.mode == "bulk":
        _bulk(args.variants, args.plan, args.repeat)
    else:
        _paginated(args.variants, args.plan)


def _paginated(variant_count: int, plan_name: str) -> None:
    sandbox = start_sandbox(f"scale:{variant_count}", plan=plan_name)
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
    plan = PLANS[plan_name]
    read_points = client.stats.points_spent - points_before
    allowed = plan.bucket_size + plan.restore_rate * duration
    print(f"plan {plan_name}: {variants} variants read in {duration:.1f} s, {client.stats.requests} requests")
    print(f"points spent {read_points} (sandbox, whole session: {stats['points_spent']}), "
          f"THROTTLED answers {stats.get('throttled', 0)}, client waits {client.stats.waited_seconds:.1f} s")
    print(f"pacing ratio {read_points / allowed:.3f} (points spent / (bucket {plan.bucket_size:.0f} + "
          f"{plan.restore_rate:.0f}/s x {duration:.1f} s))")


class _CompletedAt(logging.Handler):
    """Notes when the client logs that the bulk operation completed: the end of Shopify's part."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.at: float | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("Shopify bulk operation") and " completed: " in record.getMessage():
            self.at = time.monotonic()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _bulk(variant_count: int, plan_name: str, repeat: int) -> None:
    shopify_port, lnb_port = _free_port(), _free_port()
    sandbox = subprocess.Popen([sys.executable, "-m", "lnb_pipeline.sandbox.cli", "--scenario",
                                f"scale:{variant_count}", "--plan", plan_name, "--shopify-port", str(shopify_port),
                                "--lnb-port", str(lnb_port)], stdout=subprocess.DEVNULL)
    shopify_url = f"http://127.0.0.1:{shopify_port}"
    completed = _CompletedAt()
    client_log = logging.getLogger("lnb_pipeline.clients.shopify")
    client_log.addHandler(completed)
    client_log.setLevel(logging.INFO)
    try:
        if not wait_for([shopify_url], timeout=120):
            raise SystemExit("sandbox did not start")
        client = ShopifyClient(shopify_url, "sandbox-token")
        for run in range(1, repeat + 1):
            rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            started = time.monotonic()
            read = read_stock(client, mode="bulk", bulk_threshold=1, location_count=3,
                              log=logging.getLogger("bench"))
            ended = time.monotonic()
            rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            operation_end = completed.at or started
            print(f"run {run}: {read.levels.height} level rows of {read.expected_variants} variants in "
                  f"{ended - started:.2f} s: bulk operation {operation_end - started:.2f} s, download + join "
                  f"{ended - operation_end:.2f} s; peak RSS {rss_before:.0f} -> {rss_after:.0f} MB")
    finally:
        client_log.removeHandler(completed)
        sandbox.terminate()
        sandbox.wait(timeout=30)


if __name__ == "__main__":
    main()
