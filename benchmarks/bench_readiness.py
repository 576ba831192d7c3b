"""`integration_readiness` on a large sandbox shop: the whole report, end to end, against a target.

The sandbox (``scale:N`` with ``--retailers`` LNB retailers, each a Shopify customer carrying its
reference) runs in its own process, started by this script with ``--serve``; the job runs in this
one, as `make run` would run it. The catalogue is read by bulk operation, the retailers are looked
up 50 a query. Target (issue 13): 100 000 variants and 5 000 retailers in under 2 minutes.

    .venv/bin/python benchmarks/bench_readiness.py --variants 100000 --retailers 5000
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time

import dagster as dg
import requests

from lnb_pipeline.sandbox import start_sandbox
from lnb_pipeline.sandbox.generators import scale_scenario
from lnb_pipeline.sandbox.shopify.cost import PLANS
from lnb_pipeline.sandbox.wait import wait_for

TARGET_SECONDS = 120.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _serve(variants: int, retailers: int, plan: str, shopify_port: int, lnb_port: int) -> None:
    """The sandbox process: the scale scenario with ``retailers`` retailers, until SIGTERM."""
    sandbox = start_sandbox(scale_scenario(variants, retailers), shopify_port=shopify_port, lnb_port=lnb_port,
                            plan=plan)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    sandbox.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", type=int, default=100_000)
    parser.add_argument("--retailers", type=int, default=5_000)
    parser.add_argument("--plan", choices=sorted(PLANS), default="standard")
    parser.add_argument("--serve", nargs=2, type=int, metavar=("SHOPIFY_PORT", "LNB_PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        _serve(args.variants, args.retailers, args.plan, *args.serve)
        return
    shopify_port, lnb_port = _free_port(), _free_port()
    sandbox = subprocess.Popen([sys.executable, __file__, "--variants", str(args.variants), "--retailers",
                                str(args.retailers), "--plan", args.plan, "--serve", str(shopify_port), str(lnb_port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    shopify_url, lnb_url = f"http://127.0.0.1:{shopify_port}", f"http://127.0.0.1:{lnb_port}"
    try:
        if not wait_for([shopify_url, lnb_url], timeout=300):
            raise SystemExit("sandbox did not start")
        os.environ.update({
            "SHOPIFY_SHOP_URL": shopify_url, "SHOPIFY_ACCESS_TOKEN": "sandbox-token",
            "LNB_BASE_URL": f"{lnb_url}/apis/wholesale/v2", "LNB_CLIENT_ID": "sandbox-client",
            "LNB_CLIENT_SECRET": "sandbox-secret",
        })
        from lnb_pipeline.definitions import defs

        job = defs().resolve_job_def("integration_readiness")
        started = time.monotonic()
        result = job.execute_in_process(instance=dg.DagsterInstance.ephemeral(), raise_on_error=True)
        duration = time.monotonic() - started
        stats = requests.get(f"{shopify_url}/_sandbox/stats", timeout=30).json()
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=60)
    [materialization] = result.asset_materializations_for_node("go_live_readiness")
    metadata = {name: value.value for name, value in materialization.metadata.items()}
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{args.variants} variants, {args.retailers} retailers, {args.plan} plan: report in {duration:.1f} s "
          f"(target {TARGET_SECONDS:.0f} s: {'met' if duration < TARGET_SECONDS else 'NOT met'}), peak RSS "
          f"{peak_mb:.0f} MB")
    print(f"seconds by part: {metadata['seconds_by_part']}")
    print(f"Shopify: {stats['points_spent']} points spent, {stats.get('throttled', 0)} THROTTLED answers")
    print(f"verdict: {metadata['verdict']}")
    for record in metadata["readiness"].records:
        print(f"  {record.data['status']:6} {record.data['point']}: {record.data['found'][:150]}")


if __name__ == "__main__":
    main()
