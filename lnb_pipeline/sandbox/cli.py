"""``lnb-sandbox``: run both sandbox servers until interrupted."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from lnb_pipeline.sandbox import start_sandbox
from lnb_pipeline.sandbox.scenario import ScenarioError, load_scenario
from lnb_pipeline.sandbox.shopify.api import DEFAULT_ORDER_SEARCH_LAG_SECONDS, ShopifyApi
from lnb_pipeline.sandbox.shopify.cost import PLANS


def _seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not seconds >= 0:
        raise argparse.ArgumentTypeError("seconds cannot be negative")
    return seconds


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lnb-sandbox",
        description="Local Shopify Admin GraphQL and Le New Black Wholesale v2 servers for trying and testing lnb_pipeline.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--shopify-port", type=int, default=8701, help="Shopify server port (default 8701)")
    parser.add_argument("--lnb-port", type=int, default=8702, help="Le New Black server port (default 8702)")
    parser.add_argument("--scenario", default="demo", help="demo, scale:N (N variants) or a scenario JSON file")
    parser.add_argument("--plan", choices=sorted(PLANS), default="standard",
                        help="Shopify plan: sets the cost bucket and restore rate (default standard)")
    parser.add_argument("--lnb-rps", type=float, default=None,
                        help="LNB requests per second before it answers 429 (default: unlimited)")
    parser.add_argument("--order-search-lag", type=_seconds, default=DEFAULT_ORDER_SEARCH_LAG_SECONDS,
                        metavar="SECONDS",
                        help="how long a new Shopify order stays out of orders(query:) results, as Shopify's "
                             f"search index lags (default {DEFAULT_ORDER_SEARCH_LAG_SECONDS:g}; 0: none); a changed "
                             "inventory level stays out of inventoryLevels(query:) results as long")
    parser.add_argument("--stock-movement", type=_seconds, default=0, metavar="PER_MINUTE",
                        help="change this many random Shopify stock levels a minute (sales, returns, restocks), "
                             "as a live shop's stock moves (default 0: none)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        scenario = load_scenario(args.scenario)
    except ScenarioError as error:
        print(f"lnb-sandbox: bad scenario: {error}", file=sys.stderr)
        return 2
    try:
        sandbox = start_sandbox(scenario, host=args.host, shopify_port=args.shopify_port,
                                lnb_port=args.lnb_port, plan=args.plan, lnb_rps=args.lnb_rps)
    except OSError as error:
        print(f"lnb-sandbox: cannot listen on {args.host} ports {args.shopify_port}/{args.lnb_port}: {error.strerror}",
              file=sys.stderr)
        return 2
    shopify = sandbox.shopify.api
    assert isinstance(shopify, ShopifyApi)
    shopify.start_with(shopify.rules.changed({"order_search_lag_seconds": args.order_search_lag}))
    if args.stock_movement:
        shopify.start_stock_movement(args.stock_movement)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"Shopify sandbox: {sandbox.shopify_url}  (token sandbox-token, plan {args.plan})", flush=True)
    print(f"LNB sandbox:     {sandbox.lnb_base_url}  (client sandbox-client / sandbox-secret)", flush=True)
    print(f"Scenario {args.scenario}: {len(sandbox.shopify.api.state.variants)} variants. Ctrl-C stops.", flush=True)
    if args.stock_movement:
        print(f"Stock moving: {args.stock_movement:g} level changes a minute.", flush=True)
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    sandbox.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
