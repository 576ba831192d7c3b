"""Stock freshness: how long a Shopify stock change takes to reach LNB through the incremental path.

Deployed as `make run` deploys it (a DAGSTER_HOME with the local profile, `dagster-daemon` running
the sensors), on a `scale:N` sandbox (3 locations, standard plan) in its own process:

1. one full `inventory_sync` (it makes the mirror the incremental path starts from);
2. the sandbox's stock movement changes `--per-minute` levels a minute for `--minutes` minutes
   (sales, returns, restocks; a fifth of them at every location of the item at once), while
   `shopify_stock_changes_sensor` launches `inventory_changes_sync` at its default interval;
3. after the movement stops, the last changes are given time to arrive; then LNB is compared with
   Shopify's available-to-sell key by key, and a full `inventory_sync` (the reconciliation) reports
   how many keys it still had to correct.

Delay of a change = the first push of its key that started after the change (from the incremental
runs' task logs) minus the moment Shopify stamped the change. Changes that left a level's
`available` as it was (a sale at 0) need no push and are not counted.

    .venv/bin/python benchmarks/bench_stock_freshness.py --variants 100000 --per-minute 100 --minutes 10
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from statistics import quantiles
from typing import Any

import polars as pl
import requests

from lnb_pipeline.clients.lenewblack import LnbClient
from lnb_pipeline.clients.shopify import ShopifyClient
from lnb_pipeline.rules.stock import (
    StockSettings,
    compute_available_to_sell,
    exported_stock,
    select_locations,
)
from lnb_pipeline.sandbox.wait import wait_for
from lnb_pipeline.stock_source import read_locations, read_stock

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
NEVER = "0 0 1 1 *"
STANDARD_RESTORE_PER_SECOND = 100
"""The standard plan's restore rate, in cost points a second (Shopify's published figure)."""
SETTLE_SECONDS = 240
"""After the movement stops: time for the last changes to reach LNB."""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _stats(url: str) -> dict[str, Any]:
    return requests.get(f"{url}/_sandbox/stats", timeout=60).json()


def _dagster(env: dict[str, str], *arguments: str) -> None:
    subprocess.run([str(BIN / "dagster"), *arguments], cwd=REPO, env=env, check=True, capture_output=True,
                   timeout=3600)


def _full_sync(env: dict[str, str], home: Path, confirm_push_guard: bool = False) -> None:
    """``inventory_sync`` as the CLI runs it, on the benchmark's instance."""
    config = home / "full_sync.yaml"
    config.write_text(json.dumps({"ops": {"lnb_stock_preview": {"config": {"confirm_push_guard": confirm_push_guard}}}}))
    _dagster(env, "job", "execute", "-m", "lnb_pipeline.definitions", "-j", "inventory_sync", "-c", str(config))


def _runs(home: Path, job: str) -> list[dict[str, Any]]:
    script = (
        "import dagster as dg, json\n"
        "with dg.DagsterInstance.get() as i:\n"
        f"    print(json.dumps([{{'id': r.run_id, 'status': r.status.value}} for r in i.get_runs(dg.RunsFilter(job_name='{job}'))]))\n")
    output = subprocess.run([sys.executable, "-c", script], env={**os.environ, "DAGSTER_HOME": str(home)},
                            capture_output=True, text=True, check=True, timeout=120).stdout
    return json.loads(output)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", type=int, default=100_000)
    parser.add_argument("--per-minute", type=float, default=100)
    parser.add_argument("--minutes", type=float, default=10)
    args = parser.parse_args()
    shopify_port, lnb_port = _free_port(), _free_port()
    shopify_url, lnb_url = f"http://127.0.0.1:{shopify_port}", f"http://127.0.0.1:{lnb_port}"
    home = Path(tempfile.mkdtemp(prefix="bench-freshness-"))
    (home / "dagster.yaml").write_text((REPO / "lnb_pipeline/deploy/dagster.local.yaml").read_text())
    env = {**os.environ, "DAGSTER_HOME": str(home), "SHOPIFY_SHOP_URL": shopify_url,
           "SHOPIFY_ACCESS_TOKEN": "sandbox-token", "LNB_BASE_URL": f"{lnb_url}/apis/wholesale/v2",
           "LNB_CLIENT_ID": "sandbox-client", "LNB_CLIENT_SECRET": "sandbox-secret",
           "LNB_STOCK_CRON": NEVER, "LNB_ORDERS_CRON": NEVER}
    sandbox = subprocess.Popen([sys.executable, "-m", "lnb_pipeline.sandbox.cli", "--scenario", f"scale:{args.variants}",
                                "--shopify-port", str(shopify_port), "--lnb-port", str(lnb_port)],
                               stdout=subprocess.DEVNULL, start_new_session=True)
    daemon: subprocess.Popen[bytes] | None = None
    try:
        if not wait_for([shopify_url, lnb_url], timeout=300):
            raise SystemExit("sandbox did not start")
        _dagster(env, "sensor", "stop", "lnb_orders_sensor", "-w", "workspace.yaml")
        started = time.monotonic()
        _full_sync(env, home, confirm_push_guard=True)  # the scale scenario's LNB starts far from Shopify
        print(f"first full sync: {time.monotonic() - started:.1f} s")
        daemon = subprocess.Popen([str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"], cwd=REPO, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(20)
        shopify_before, lnb_before = _stats(shopify_url), _stats(lnb_url)
        requests.post(f"{shopify_url}/_sandbox/stock_movement", json={"per_minute": args.per_minute, "seed": 7},
                      timeout=30).raise_for_status()
        time.sleep(args.minutes * 60)
        movement = requests.delete(f"{shopify_url}/_sandbox/stock_movement", timeout=30).json()
        shopify_after, lnb_after = _stats(shopify_url), _stats(lnb_url)
        deadline = time.monotonic() + SETTLE_SECONDS
        while time.monotonic() < deadline:
            time.sleep(10)
            if all(run["status"] in ("SUCCESS", "FAILURE", "CANCELED") for run in _runs(home, "inventory_changes_sync")):
                last_change = max(change["at_epoch"] for change in movement["changes"])
                if time.time() - last_change > 120:
                    break
        os.killpg(daemon.pid, signal.SIGTERM)
        daemon.wait(timeout=60)
        daemon = None
        runs = _runs(home, "inventory_changes_sync")
        pushes = pl.concat([pl.read_csv(path, try_parse_dates=True, schema_overrides={"key": pl.String})
                            for path in (home / "task_logs").glob("*/lnb_stock_changes_push.csv")
                            if path.stat().st_size], how="diagonal_relaxed")
        _report(args, movement["changes"], pushes, runs, shopify_before, shopify_after, lnb_before, lnb_after,
                shopify_url, lnb_url, env, home)
    finally:
        if daemon is not None:
            os.killpg(daemon.pid, signal.SIGTERM)
        os.killpg(sandbox.pid, signal.SIGTERM)
        sandbox.wait(timeout=60)


def _report(args: argparse.Namespace, changes: list[dict[str, Any]], pushes: pl.DataFrame, runs: list[dict[str, Any]],
            shopify_before: dict[str, Any], shopify_after: dict[str, Any], lnb_before: dict[str, Any],
            lnb_after: dict[str, Any], shopify_url: str, lnb_url: str, env: dict[str, str], home: Path) -> None:
    client = ShopifyClient(shopify_url, "sandbox-token")
    levels = read_stock(client, mode="bulk", bulk_threshold=1, location_count=3, log=logging.getLogger()).levels
    locations = select_locations(read_locations(client), StockSettings())
    stock = compute_available_to_sell(levels, locations, StockSettings())
    item_keys = dict(levels.select("inventory_item_id", "variant_id").unique().join(
        stock.filter(pl.col("excluded_reason").is_null()).select("variant_id", "key"), on="variant_id")
        .select("inventory_item_id", "key").iter_rows())
    lnb = LnbClient(env["LNB_BASE_URL"], env["LNB_CLIENT_ID"], env["LNB_CLIENT_SECRET"])
    held = {row["ean13"]: row["in_stock"] for row in lnb.get_inventory() if row.get("ean13")}
    expected = dict(exported_stock(stock).iter_rows())
    pushed_at: dict[str, list[datetime]] = defaultdict(list)
    for key, moment in pushes.select(pl.col("key").cast(pl.String), "pushed_at").iter_rows():
        pushed_at[key].append(moment if isinstance(moment, datetime) else datetime.fromisoformat(str(moment)))
    delays: list[float] = []
    never_pushed = 0
    for change in changes:
        key = item_keys.get(change["inventory_item_id"])
        # Keys LNB does not hold are never sent (LNB rejects them), as in the full sync.
        if key is None or key not in held or change["available"] == change["previous_available"]:
            continue
        moment = datetime.fromtimestamp(change["at_epoch"], UTC)
        later = [push for push in pushed_at.get(key, []) if push.astimezone(UTC) >= moment]
        if later:
            delays.append((min(later).astimezone(UTC) - moment).total_seconds())
        else:
            never_pushed += 1
    mismatched = sorted(key for key, quantity in expected.items() if key in held and held[key] != quantity)
    minutes = args.minutes
    points = shopify_after.get("points_spent", 0) - shopify_before.get("points_spent", 0)
    lnb_calls = lnb_after["total_requests"] - lnb_before["total_requests"]
    budget = STANDARD_RESTORE_PER_SECOND * 60 * minutes
    cuts = quantiles(delays, n=100) if len(delays) > 1 else [float("nan")] * 99
    print(json.dumps({
        "variants": args.variants, "level_changes": len(changes), "changes_measured": len(delays),
        "changes_never_pushed": never_pushed,
        "delay_p50_seconds": round(cuts[49], 1), "delay_p95_seconds": round(cuts[94], 1),
        "delay_max_seconds": round(max(delays), 1) if delays else None,
        "incremental_runs": len(runs), "failed_runs": sum(run["status"] != "SUCCESS" for run in runs),
        "shopify_points": points, "shopify_points_share_of_restore": round(points / budget, 4),
        "lnb_calls_per_minute": round(lnb_calls / minutes, 1),
        "keys_differing_from_shopify": len(mismatched), "first_mismatches": mismatched[:5],
    }, indent=2))
    started = time.monotonic()
    _full_sync(env, home)
    corrected = _reconciliation_corrections(home)
    print(json.dumps({"reconciliation_seconds": round(time.monotonic() - started, 1),
                      "reconciliation_keys_corrected": corrected}, indent=2))


def _reconciliation_corrections(home: Path) -> int:
    script = (
        "import dagster as dg\n"
        "with dg.DagsterInstance.get() as i:\n"
        "    event = i.get_latest_materialization_event(dg.AssetKey('lnb_stock_push'))\n"
        "    print(event.asset_materialization.metadata['keys_pushed'].value)\n")
    output = subprocess.run([sys.executable, "-c", script], env={**os.environ, "DAGSTER_HOME": str(home)},
                            capture_output=True, text=True, check=True, timeout=120).stdout
    return int(output.strip())


if __name__ == "__main__":
    main()
