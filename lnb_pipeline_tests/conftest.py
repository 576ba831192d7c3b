"""Fixtures shared by the Dagster-level tests: one sandbox for the session, reset per test."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from lnb_pipeline.sandbox import Sandbox, start_sandbox


@pytest.fixture(scope="session")
def sandbox_session() -> Iterator[Sandbox]:
    running = start_sandbox("demo")
    yield running
    running.stop()


@pytest.fixture
def sandbox(sandbox_session: Sandbox, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Sandbox:
    """Both servers back to the demo scenario, and the environment pointing at them (the fixed
    Shopify token, so client credentials exported in the shell are set aside). The stock mirror is
    the test's own: one left by another test would make its stock changes look like this test's."""
    reset_sandbox(sandbox_session, "demo")
    for name, value in sandbox_session.environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LNB_STOCK_STATE_DIR", str(tmp_path / "stock_mirror"))
    for name in ("SHOPIFY_CLIENT_ID", "SHOPIFY_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    return sandbox_session


def reset_sandbox(sandbox: Sandbox, scenario: str | dict[str, Any]) -> None:
    """Load ``scenario`` into both servers, clearing faults, stats and changed settings."""
    for url in (sandbox.shopify.url, sandbox.lnb.url):
        requests.post(f"{url}/_sandbox/reset", json={"scenario": scenario}, timeout=60).raise_for_status()


Processes = list[subprocess.Popen[bytes]]


@pytest.fixture
def processes() -> Iterator[Processes]:
    """Every process a test starts, each leading its own process group: all groups die at teardown."""
    started: Processes = []
    yield started
    for process in started:
        kill_group(process)


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process and everything it started (the run, a code server), as a crash would."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()
