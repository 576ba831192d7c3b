"""End-to-end `inventory_sync` on a large sandbox catalogue: duration, peak memory, delta push size.

The sandbox runs in its own process so the pipeline's peak RSS is measured alone.

    .venv/bin/python benchmarks/bench_inventory_sync.py --variants 100000
"""

from __future__ import annotations

import argparse
import os
import resource
import socket
import subprocess
import sys
import time

import dagster as dg
import requests

from lnb_pipeline.sandbox.wait import wait_for


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _run(job: dg.JobDefinition, instance: dg.DagsterInstance, full_refresh: bool) -> tuple[float, dg.ExecuteInProcessResult]:
    started = time.monotonic()
    result = job.execute_in_process(
        instance=instance, raise_on_error=True,
        run_config={"ops": {"lnb_stock_push": {"config": {"full_refresh": full_refresh}}}},
    )
    return time.monotonic() - started, result


def _batch_calls(lnb_url: str) -> int:
    stats = requests.get(f"{lnb_url}/_sandbox/stats", timeout=30).json()
    return sum(count for name, count in stats["requests"].items() if name.startswith("POST /multi/inventory"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", type=int, default=100_000)
    parser.add_argument("--changed-percent", type=float, default=1.0)
    args = parser.parse_args()
    shopify_port, lnb_port = _free_port(), _free_port()
    sandbox = subprocess.Popen([sys.executable, "-m", "lnb_pipeline.sandbox.cli", "--scenario", f"scale:{args.variants}",
                                "--shopify-port", str(shopify_port), "--lnb-port", str(lnb_port)],
                               stdout=subprocess.DEVNULL)
    shopify_url, lnb_url = f"http://127.0.0.1:{shopify_port}", f"http://127.0.0.1:{lnb_port}"
    try:
        if not wait_for([shopify_url, lnb_url], timeout=120):
            raise SystemExit("sandbox did not start")
        os.environ.update({
            "SHOPIFY_SHOP_URL": shopify_url, "SHOPIFY_ACCESS_TOKEN": "sandbox-token",
            "LNB_BASE_URL": f"{lnb_url}/apis/wholesale/v2", "LNB_CLIENT_ID": "sandbox-client",
            "LNB_CLIENT_SECRET": "sandbox-secret", "SHOPIFY_STOCK_READ_MODE": "bulk",
        })
        from lnb_pipeline.definitions import defs

        job = defs().resolve_job_def("inventory_sync")
        with dg.DagsterInstance.ephemeral() as instance:
            full_seconds, _ = _run(job, instance, full_refresh=True)
            full_batches = _batch_calls(lnb_url)
            peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            changed = int(args.variants * args.changed_percent / 100)
            step = max(1, args.variants // max(changed, 1))
            # Start at 2: the scale scenario puts its deliberate anomalies on ids 101, 301, 501, ...
            changes = [{"variant_id": variant_id, "location_id": 1, "available": 777}
                       for variant_id in range(2, args.variants + 1, step)][:changed]
            requests.post(f"{shopify_url}/_sandbox/inventory", json={"changes": changes}, timeout=60).raise_for_status()
            delta_seconds, delta = _run(job, instance, full_refresh=False)
            delta_batches = _batch_calls(lnb_url) - full_batches
            pushed = delta.asset_materializations_for_node("lnb_stock_push")[0].metadata["keys_pushed"].value
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=30)
    print(f"{args.variants} variants x 3 locations, standard plan, bulk read")
    print(f"full refresh: {full_seconds:.1f} s end to end, {full_batches} batch calls, peak RSS {peak_mb:.0f} MB")
    print(f"after {len(changes)} variants changed: {delta_seconds:.1f} s, {pushed} keys pushed in {delta_batches} batch calls")


if __name__ == "__main__":
    main()
