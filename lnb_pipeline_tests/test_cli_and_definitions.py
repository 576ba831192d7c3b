"""The commands users type: ``lnb-sandbox`` and Dagster's own loading of the code location."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

REPO_ROOT = Path(__file__).resolve().parent.parent
SANDBOX_COMMAND = [sys.executable, "-m", "lnb_pipeline.sandbox.cli"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_healthy(url: str, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return requests.get(f"{url}/_sandbox/health", timeout=1).json()
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_sandbox_cli_serves_both_apis_and_stops_on_sigterm() -> None:
    shopify_port, lnb_port = _free_port(), _free_port()
    process = subprocess.Popen(
        [*SANDBOX_COMMAND, "--shopify-port", str(shopify_port), "--lnb-port", str(lnb_port), "--scenario", "demo"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        shopify = _wait_healthy(f"http://127.0.0.1:{shopify_port}")
        lnb = _wait_healthy(f"http://127.0.0.1:{lnb_port}")
        answer = requests.post(f"http://127.0.0.1:{shopify_port}/admin/api/2026-04/graphql.json",
                               json={"query": "{ shop { name } }"},
                               headers={"X-Shopify-Access-Token": "sandbox-token"}, timeout=5)
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, _ = process.communicate(timeout=10)
    assert (shopify["api"], lnb["api"]) == ("shopify", "lnb")
    assert shopify["variants"] == 439
    assert answer.json()["data"]["shop"]["name"] == "Maison Demo"
    assert process.returncode == 0
    assert f"http://127.0.0.1:{lnb_port}/apis/wholesale/v2" in stdout


def test_sandbox_cli_refuses_a_bad_scenario_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"locations": [{"id": 1}], "products": [{"id": 1, "variants": '
                      '[{"id": 5, "stock": {"9": {"available": 1}}}]}]}')
    result = subprocess.run([*SANDBOX_COMMAND, "--scenario", str(broken)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "products[0].variants[0].stock" in result.stderr
    assert "unknown location '9'" in result.stderr


def test_sandbox_cli_refuses_a_taken_port() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([*SANDBOX_COMMAND, "--shopify-port", str(port), "--lnb-port", str(_free_port())],
                                capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1 ports {port}/" in result.stderr


def test_dagster_validates_the_workspace() -> None:
    environment = {name: value for name, value in os.environ.items() if name != "DAGSTER_HOME"}
    result = subprocess.run([str(Path(sys.executable).parent / "dagster"), "definitions", "validate",
                             "-w", "workspace.yaml"], cwd=REPO_ROOT, capture_output=True, text=True,
                            timeout=120, env=environment)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Validation successful for code location lnb_pipeline" in result.stderr + result.stdout


def test_the_cli_on_the_workspace_prints_no_warning() -> None:
    """One code location name everywhere (pyproject.toml, workspace.yaml): a mismatch printed a warning
    per component on every CLI call."""
    environment = {name: value for name, value in os.environ.items() if name != "DAGSTER_HOME"}
    result = subprocess.run([str(Path(sys.executable).parent / "dagster"), "job", "list", "-w", "workspace.yaml"],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, env=environment)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "orders_export" in result.stdout
    assert "WARNING" not in result.stdout + result.stderr
