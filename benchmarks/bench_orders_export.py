"""End-to-end `orders_export` of 1 000 LNB orders x 5 lines: cost-bound ratio, throughput, exactly once under faults.

Each part starts its own sandbox (in a subprocess, on a scenario generated into a temp dir), runs
`inventory_sync` once (the order flow reuses its Shopify variant read), then times `orders_export`
alone, in-process with `execute_in_process`.

- standard: Shopify `standard` plan (bucket 2 000, 100 points/s). Reports the duration, the points the
  export spent (sandbox `points_spent` delta), THROTTLED answers (must be 0) and the ratio
  duration / ((points spent - bucket available at start) / restore rate), target <= 1.2.
- plus: `plus` plan (bucket 20 000, 1 000 points/s), where the bucket is not the limit: orders/s,
  target >= 20.
- faults: 5 % HTTP 503 and 2 % lost acknowledgements on `orderCreate`; then exactly N Shopify orders
  with N distinct source identifiers and every LNB order in `invoicing`, a second run finishing any
  FAILED outcome.
- development: a development store (5 new orders a minute) with `--development-orders` orders
  (default 60): the run must end without a refusal within 1.2x the bound N / 5 minutes.

The scenario declares the order metafield definition of type `id`, so exactly-once goes by custom id;
the sandbox's order search keeps its default index lag. Orders are counted from the unfiltered order
list, which the lag does not hide.

    .venv/bin/python benchmarks/bench_orders_export.py --part all
    .venv/bin/python benchmarks/bench_orders_export.py --part standard --profile /tmp/orders.prof
    .venv/bin/python benchmarks/bench_orders_export.py --part development
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
import requests

from lnb_pipeline.sandbox.wait import wait_for

EXPORTED_STATUS = "invoicing"
DEVELOPMENT_ORDERS_PER_MINUTE = 5
FAULTS = [{"kind": "http_503", "match": "orderCreate", "rate": 0.05},
          {"kind": "lost_ack", "match": "orderCreate", "rate": 0.02}]
MAX_FAULT_RUNS = 3
OUTCOME_COUNTS = ("orders_created", "orders_found_again", "orders_rejected", "orders_failed",
                  "orders_duplicated_in_shopify")
"""The export's outcome counts (docs/reading-the-ui-orders.md), as its metadata names them."""
SOURCE_ORDERS_QUERY = """
query SourceOrders($first: Int!, $after: String) {
  orders(first: $first, after: $after) {
    nodes { id sourceIdentifier }
    pageInfo { hasNextPage endCursor }
  }
}
"""


# --------------------------------------------------------------------------------------------
# Scenario: scale_scenario's catalogue and parties, with N orders all exportable
# --------------------------------------------------------------------------------------------


def build_scenario(orders: int, variants: int, lines: int, development: bool = False) -> dict[str, Any]:
    """``scale_scenario(variants)`` with its LNB orders replaced by ``orders`` confirmed, clean ones.

    Lines use only variants without any anomaly (nor the originals of duplicated codes), so each
    matches exactly one Shopify variant; retailers all share their reference with a Shopify customer.
    """
    from lnb_pipeline.sandbox import generators as gen

    scenario = gen.scale_scenario(variants)
    anomalies = gen.scale_anomalies(variants)
    duplicated_originals = {variant_id - 1 for kind in ("duplicate_barcode", "duplicate_sku")
                            for variant_id in anomalies[kind]}
    unorderable = {variant_id for ids in anomalies.values() for variant_id in ids} | duplicated_originals
    orderable = [(product, variant) for product in scenario["products"] for variant in product["variants"]
                 if variant["id"] not in unorderable]
    customer_refs = {c["metafields"].get(gen.RETAILER_REFERENCE_METAFIELD) for c in scenario["customers"]}
    retailers = [r for r in scenario["lnb"]["retailers"] if r["reference"] in customer_refs]
    rng = random.Random(20260505)
    built = []
    for number in range(1, orders + 1):
        items = []
        for product, variant in rng.sample(orderable, min(lines, len(orderable))):
            colour, size = variant["title"].split(" / ")
            article = gen.Article(gen._scale_style(product["id"] - 1), product["title"], colour, size,
                                  float(variant["price"]), variant["barcode"], variant["sku"])
            items.append(gen._order_item(article, 1 + rng.randrange(12)))
        built.append(gen._order(f"BEN-{number:06d}", "confirmed", retailers[number % len(retailers)], items,
                                created_minutes=number * 11, purchase_order_reference=f"PO-B{number:06d}",
                                comment=f"benchmark order {number}"))
    scenario["lnb"]["orders"] = built
    scenario["orders"] = []
    scenario["shop"] = {**scenario.get("shop", {}), "development": development}
    return scenario


# --------------------------------------------------------------------------------------------
# Sandbox and runs
# --------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Sandbox:
    """Both sandbox servers in a subprocess, on free ports; the pipeline's env points at them."""

    def __init__(self, scenario_path: Path, plan: str) -> None:
        shopify_port, lnb_port = _free_port(), _free_port()
        self.shopify_url, self.lnb_url = f"http://127.0.0.1:{shopify_port}", f"http://127.0.0.1:{lnb_port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "lnb_pipeline.sandbox.cli", "--scenario", str(scenario_path), "--plan", plan,
             "--shopify-port", str(shopify_port), "--lnb-port", str(lnb_port)], stdout=subprocess.DEVNULL)
        if not wait_for([self.shopify_url, self.lnb_url], timeout=120):
            self.stop()
            raise SystemExit("sandbox did not start")
        os.environ.update({"SHOPIFY_SHOP_URL": self.shopify_url, "LNB_BASE_URL": f"{self.lnb_url}/apis/wholesale/v2"})

    def get(self, what: str, lnb: bool = False) -> dict[str, Any]:
        response = requests.get(f"{self.lnb_url if lnb else self.shopify_url}/_sandbox/{what}", timeout=30)
        response.raise_for_status()
        return response.json()

    def post(self, what: str, payload: Any) -> dict[str, Any]:
        response = requests.post(f"{self.shopify_url}/_sandbox/{what}", json=payload, timeout=30)
        response.raise_for_status()
        return response.json()

    def wait_for_full_bucket(self) -> dict[str, Any]:
        """Let the cost bucket refill after the stock sync, so every part starts from the same state."""
        while True:
            health = self.get("health")
            bucket = health["bucket"]
            missing = health["bucket_size"] - _available(bucket)
            if missing <= 0.5:
                return health
            time.sleep(min(5.0, missing / health["restore_rate"] + 0.05))

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def _available(bucket: dict[str, Any]) -> float:
    for key in ("currentlyAvailable", "available", "current"):
        if key in bucket:
            return float(bucket[key])
    raise KeyError(f"no availability in sandbox bucket status {bucket}")


@dataclass
class ExportRun:
    seconds: float
    points_spent: int
    throttled: int
    shopify_requests: dict[str, int]
    outcomes: dict[str, int]
    success: bool
    checks: dict[str, bool] = field(default_factory=dict)
    client_points: int | None = None
    client_throttled: int | None = None


class Bench:
    def __init__(self, workdir: Path) -> None:
        from lnb_pipeline.definitions import defs

        self.workdir = workdir
        definitions = defs()
        self.inventory_job = definitions.resolve_job_def("inventory_sync")
        self.orders_job = definitions.resolve_job_def("orders_export")

    def run_inventory_sync(self, instance: dg.DagsterInstance, storage: Path) -> float:
        started = time.monotonic()
        self.inventory_job.execute_in_process(
            instance=instance, raise_on_error=True, resources={"io_manager": dg.FilesystemIOManager(base_dir=str(storage))},
            run_config={"ops": {"lnb_stock_push": {"config": {"full_refresh": True}}}})
        return time.monotonic() - started

    def run_orders_export(self, sandbox: Sandbox, instance: dg.DagsterInstance, storage: Path,
                          profile_path: str | None = None) -> ExportRun:
        before = sandbox.get("stats")
        profiler = cProfile.Profile() if profile_path else None
        started = time.monotonic()
        if profiler:
            profiler.enable()
        result = self.orders_job.execute_in_process(
            instance=instance, raise_on_error=False,
            resources={"io_manager": dg.FilesystemIOManager(base_dir=str(storage))})
        if profiler:
            profiler.disable()
        seconds = time.monotonic() - started
        if profiler and profile_path:
            profiler.dump_stats(profile_path)
        after = sandbox.get("stats")
        outcomes: dict[str, int] = {}
        client_points = client_throttled = None
        for event in result.all_events:
            if event.event_type_value != "ASSET_MATERIALIZATION":
                continue
            materialization = event.event_specific_data.materialization
            if materialization.asset_key != dg.AssetKey("shopify_orders_from_lnb"):
                continue
            metadata = materialization.metadata
            outcomes = {name: metadata[name].value for name in OUTCOME_COUNTS if name in metadata}
            client_points = metadata["shopify_points_spent"].value
            client_throttled = metadata["throttled_answers"].value
        checks = {evaluation.check_name: evaluation.passed
                  for evaluation in (e.event_specific_data for e in result.all_events
                                     if e.event_type_value == "ASSET_CHECK_EVALUATION")}
        requests_delta = {name: count - before["requests"].get(name, 0) for name, count in after["requests"].items()
                          if count - before["requests"].get(name, 0)}
        return ExportRun(seconds, after.get("points_spent", 0) - before.get("points_spent", 0),
                         after.get("throttled", 0) - before.get("throttled", 0), requests_delta, outcomes,
                         result.success, checks, client_points, client_throttled)


def shopify_orders_by_source(sandbox: Sandbox) -> dict[str, int]:
    """Shopify orders per source identifier, paged over GraphQL (the sandbox health count cross-checks it)."""
    from lnb_pipeline.clients.shopify import ShopifyClient

    client = ShopifyClient(sandbox.shopify_url, os.environ["SHOPIFY_ACCESS_TOKEN"])
    counts: dict[str, int] = {}
    try:
        for order in client.paginate(SOURCE_ORDERS_QUERY, {}, ("orders",)):
            if order["sourceIdentifier"] is not None:
                counts[order["sourceIdentifier"]] = counts.get(order["sourceIdentifier"], 0) + 1
    finally:
        client.close()
    return counts


def lnb_status_counts(sandbox: Sandbox) -> dict[str, int]:
    from lnb_pipeline.clients.lenewblack import LnbClient

    counts: dict[str, int] = {}
    with LnbClient(f"{sandbox.lnb_url}/apis/wholesale/v2", os.environ["LNB_CLIENT_ID"],
                   os.environ["LNB_CLIENT_SECRET"]) as lnb:
        for order in lnb.iter_orders():
            counts[order["status"]] = counts.get(order["status"], 0) + 1
    return counts


# --------------------------------------------------------------------------------------------
# Parts
# --------------------------------------------------------------------------------------------


def _prepare(bench: Bench, sandbox: Sandbox, instance: dg.DagsterInstance, storage: Path) -> tuple[float, dict[str, Any]]:
    sync_seconds = bench.run_inventory_sync(instance, storage)
    health = sandbox.wait_for_full_bucket()
    return sync_seconds, health


def part_standard(bench: Bench, scenario_path: Path, orders: int, profile: str | None) -> dict[str, Any]:
    sandbox = Sandbox(scenario_path, "standard")
    try:
        with dg.DagsterInstance.ephemeral() as instance:
            storage = bench.workdir / "storage-standard"
            sync_seconds, health = _prepare(bench, sandbox, instance, storage)
            initial_bucket = _available(health["bucket"])
            rate = float(health["restore_rate"])
            run = bench.run_orders_export(sandbox, instance, storage, profile)
        by_source = shopify_orders_by_source(sandbox)
        lnb = lnb_status_counts(sandbox)
    finally:
        sandbox.stop()
    bound = max(run.points_spent - initial_bucket, 0) / rate
    return {"part": "standard", "run": run, "sync_seconds": sync_seconds, "initial_bucket": initial_bucket,
            "restore_rate": rate, "bound_seconds": bound, "ratio": run.seconds / bound if bound else float("inf"),
            "shopify_orders": sum(by_source.values()), "distinct_sources": len(by_source),
            "lnb_exported": lnb.get(EXPORTED_STATUS, 0), "orders": orders}


def part_plus(bench: Bench, scenario_path: Path, orders: int, profile: str | None) -> dict[str, Any]:
    sandbox = Sandbox(scenario_path, "plus")
    try:
        with dg.DagsterInstance.ephemeral() as instance:
            storage = bench.workdir / "storage-plus"
            sync_seconds, _ = _prepare(bench, sandbox, instance, storage)
            run = bench.run_orders_export(sandbox, instance, storage, profile)
        by_source = shopify_orders_by_source(sandbox)
        lnb = lnb_status_counts(sandbox)
    finally:
        sandbox.stop()
    return {"part": "plus", "run": run, "sync_seconds": sync_seconds, "orders_per_second": orders / run.seconds,
            "shopify_orders": sum(by_source.values()), "distinct_sources": len(by_source),
            "lnb_exported": lnb.get(EXPORTED_STATUS, 0), "orders": orders}


def part_faults(bench: Bench, scenario_path: Path, orders: int, plan: str) -> dict[str, Any]:
    sandbox = Sandbox(scenario_path, plan)
    runs: list[ExportRun] = []
    try:
        with dg.DagsterInstance.ephemeral() as instance:
            storage = bench.workdir / "storage-faults"
            sync_seconds, _ = _prepare(bench, sandbox, instance, storage)
            sandbox.post("faults", FAULTS)
            for _ in range(MAX_FAULT_RUNS):
                runs.append(bench.run_orders_export(sandbox, instance, storage))
                if not runs[-1].outcomes.get("orders_failed"):
                    break
            injected = sandbox.get("stats").get("faults_injected", {})
            requests.delete(f"{sandbox.shopify_url}/_sandbox/faults", timeout=30).raise_for_status()
        health_orders = sandbox.get("health")["orders"]
        by_source = shopify_orders_by_source(sandbox)
        lnb = lnb_status_counts(sandbox)
    finally:
        sandbox.stop()
    return {"part": f"faults ({plan})", "runs": runs, "sync_seconds": sync_seconds, "injected": injected,
            "health_orders": health_orders, "shopify_orders": sum(by_source.values()),
            "distinct_sources": len(by_source), "duplicated_sources": sum(1 for n in by_source.values() if n > 1),
            "lnb_exported": lnb.get(EXPORTED_STATUS, 0), "lnb_statuses": lnb, "orders": orders}


def part_development(bench: Bench, scenario_path: Path, orders: int) -> dict[str, Any]:
    sandbox = Sandbox(scenario_path, "standard")
    try:
        with dg.DagsterInstance.ephemeral() as instance:
            storage = bench.workdir / "storage-development"
            sync_seconds, _ = _prepare(bench, sandbox, instance, storage)
            run = bench.run_orders_export(sandbox, instance, storage)
        refused = sandbox.get("stats")["statuses"].get("429", 0)
        by_source = shopify_orders_by_source(sandbox)
        lnb = lnb_status_counts(sandbox)
    finally:
        sandbox.stop()
    bound = orders / DEVELOPMENT_ORDERS_PER_MINUTE * 60
    return {"part": "development", "run": run, "sync_seconds": sync_seconds, "bound_seconds": bound,
            "ratio": run.seconds / bound, "refused": refused, "shopify_orders": sum(by_source.values()),
            "distinct_sources": len(by_source), "lnb_exported": lnb.get(EXPORTED_STATUS, 0), "orders": orders}


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def _verdict(ok: bool) -> str:
    return "OK" if ok else "MISSED"


def report(results: list[dict[str, Any]], args: argparse.Namespace) -> None:
    print()
    print(f"orders_export benchmark: {args.orders} LNB orders x {args.lines} lines, catalogue scale:{args.variants}")
    print("exactly once by custom id (order metafield definition of type id); sandbox search index lag on")
    rows: list[tuple[str, str, str]] = []
    for res in results:
        part = res["part"]
        if part == "standard":
            run: ExportRun = res["run"]
            rows += [
                ("standard", "inventory_sync (before, not timed)", f"{res['sync_seconds']:.1f} s"),
                ("standard", "orders_export duration", f"{run.seconds:.1f} s"),
                ("standard", "Shopify points spent (sandbox delta)", f"{run.points_spent}"),
                ("standard", "bucket at start / restore rate", f"{res['initial_bucket']:.0f} / {res['restore_rate']:.0f} per s"),
                ("standard", "cost bound (spent - bucket) / rate", f"{res['bound_seconds']:.1f} s"),
                ("standard", "ratio duration / bound (target <= 1.2)", f"{res['ratio']:.3f}  {_verdict(res['ratio'] <= 1.2)}"),
                ("standard", "THROTTLED answers (target 0)", f"{run.throttled}  {_verdict(run.throttled == 0)}"),
                ("standard", "  of which seen by the export step's client", f"{run.client_throttled}"),
                ("standard", "outcomes", _outcomes(run)),
                ("standard", "Shopify orders / distinct sources / LNB invoicing",
                 f"{res['shopify_orders']} / {res['distinct_sources']} / {res['lnb_exported']}"),
                ("standard", "Shopify requests by root field", _requests(run)),
            ]
        elif part == "plus":
            run = res["run"]
            rows += [
                ("plus", "orders_export duration", f"{run.seconds:.1f} s"),
                ("plus", "orders/s (target >= 20)", f"{res['orders_per_second']:.1f}  {_verdict(res['orders_per_second'] >= 20)}"),
                ("plus", "Shopify points spent / THROTTLED", f"{run.points_spent} / {run.throttled}"),
                ("plus", "outcomes", _outcomes(run)),
                ("plus", "Shopify orders / distinct sources / LNB invoicing",
                 f"{res['shopify_orders']} / {res['distinct_sources']} / {res['lnb_exported']}"),
            ]
        elif part == "development":
            run = res["run"]
            rows += [
                ("development", "orders_export duration", f"{run.seconds:.1f} s"),
                ("development", f"bound {res['orders']} orders / 5 a minute", f"{res['bound_seconds']:.0f} s"),
                ("development", "ratio duration / bound (target <= 1.2)",
                 f"{res['ratio']:.3f}  {_verdict(res['ratio'] <= 1.2)}"),
                ("development", "orderCreate refused with 429 (target 0)",
                 f"{res['refused']}  {_verdict(res['refused'] == 0)}"),
                ("development", "outcomes", _outcomes(run)),
                ("development", "Shopify orders / distinct sources / LNB invoicing",
                 f"{res['shopify_orders']} / {res['distinct_sources']} / {res['lnb_exported']}"),
            ]
        else:
            exact = (res["shopify_orders"] == res["orders"] == res["distinct_sources"] == res["health_orders"]
                     and res["lnb_exported"] == res["orders"])
            rows.append((part, "faults armed", ", ".join(f"{f['kind']} {f['rate']:.0%}" for f in FAULTS)
                         + f" on orderCreate; injected {res['injected']}"))
            for number, run in enumerate(res["runs"], start=1):
                rows.append((part, f"run {number}", f"{run.seconds:.1f} s, {_outcomes(run)}, THROTTLED {run.throttled} "
                                                     f"({run.client_throttled} in the export step), "
                                                     f"checks {_checks(run)}"))
            rows += [
                (part, "runs needed", f"{len(res['runs'])}"),
                (part, "Shopify orders (health / paged) / distinct sources / duplicated sources",
                 f"{res['health_orders']} / {res['shopify_orders']} / {res['distinct_sources']} / {res['duplicated_sources']}"),
                (part, "LNB orders in invoicing", f"{res['lnb_exported']} of {res['orders']} ({res['lnb_statuses']})"),
                (part, f"exactly {res['orders']} orders, all in invoicing", _verdict(exact)),
            ]
    width_part = max(len(r[0]) for r in rows)
    width_name = max(len(r[1]) for r in rows)
    print(f"{'part':<{width_part}}  {'figure':<{width_name}}  value")
    print(f"{'-' * width_part}  {'-' * width_name}  {'-' * 5}")
    for part, name, value in rows:
        print(f"{part:<{width_part}}  {name:<{width_name}}  {value}")


def _outcomes(run: ExportRun) -> str:
    return ", ".join(f"{n} {name}" for name, n in sorted(run.outcomes.items())) or "none"


def _requests(run: ExportRun) -> str:
    return ", ".join(f"{name} {n}" for name, n in sorted(run.shopify_requests.items(), key=lambda kv: -kv[1]))


def _checks(run: ExportRun) -> str:
    failed = [name for name, passed in run.checks.items() if not passed]
    return "all passed" if not failed else "failed: " + ", ".join(failed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("standard", "plus", "faults", "development", "all"), default="all")
    parser.add_argument("--development-orders", type=int, default=60)
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--lines", type=int, default=5)
    parser.add_argument("--variants", type=int, default=10_000, help="catalogue size (scale:N)")
    parser.add_argument("--fault-plan", choices=("standard", "plus"), default="plus",
                        help="Shopify plan of the faults part (default plus: faster, same exactly-once logic)")
    parser.add_argument("--profile", metavar="PATH",
                        help="write a cProfile of the timed orders_export (standard and plus parts) to PATH.<part>")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_orders_") as temp:
        workdir = Path(temp)
        os.environ.update({
            "SHOPIFY_ACCESS_TOKEN": "sandbox-token", "LNB_CLIENT_ID": "sandbox-client",
            "LNB_CLIENT_SECRET": "sandbox-secret", "SHOPIFY_STOCK_READ_MODE": "bulk",
            "LNB_TASK_LOG_DIR": str(workdir / "task_logs"),
            # placeholders until a sandbox starts; resources read them when a run starts
            "SHOPIFY_SHOP_URL": "http://127.0.0.1:1", "LNB_BASE_URL": "http://127.0.0.1:1/apis/wholesale/v2",
        })
        started = time.monotonic()
        scenario_path = workdir / "orders_scenario.json"
        scenario_path.write_text(json.dumps(build_scenario(args.orders, args.variants, args.lines)), encoding="utf-8")
        print(f"scenario written to {scenario_path} in {time.monotonic() - started:.1f} s", flush=True)
        bench = Bench(workdir)
        results = []
        profile = lambda part: f"{args.profile}.{part}" if args.profile else None  # noqa: E731
        if args.part in ("standard", "all"):
            results.append(part_standard(bench, scenario_path, args.orders, profile("standard")))
        if args.part in ("plus", "all"):
            results.append(part_plus(bench, scenario_path, args.orders, profile("plus")))
        if args.part in ("faults", "all"):
            results.append(part_faults(bench, scenario_path, args.orders, args.fault_plan))
        if args.part in ("development", "all"):
            development_path = workdir / "development_scenario.json"
            development_path.write_text(json.dumps(build_scenario(args.development_orders, args.variants, args.lines,
                                                                  development=True)), encoding="utf-8")
            results.append(part_development(bench, development_path, args.development_orders))
        report(results, args)


if __name__ == "__main__":
    main()
