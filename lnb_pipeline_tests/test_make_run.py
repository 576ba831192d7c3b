"""``make run`` as a person starts it: what its terminal shows, and that the UI keeps every run's full log.

The terminal must say where the UI is, what to click first and whether alerts are on, then only
warnings and errors: no DEBUG or INFO line of each step, no Dagster notice about commands or cursors.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import dagster as dg
import pytest
import requests
from conftest import Processes

from lnb_pipeline.defs.run_problems import PROBLEMS_TAG

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = REPO / ".venv" / "bin"
pytestmark = pytest.mark.skipif(not (VENV_BIN / "dg").exists(),
                                reason="make run uses the repository's .venv: run `make install` first")
MAKE_RUN = ["make", "--no-print-directory", "-o", ".venv/.installed", "run"]
"""``make run`` without its install step: the test runs in that environment already."""
BANNER = [
    "Dagster UI   http://127.0.0.1:{port}   (ready in a few seconds)",
    "First click  Jobs > inventory_preview > Materialize all: what a stock push would change, nothing written",
    "Then         Jobs > inventory_sync > Materialize all: pushes the stock to LNB",
    "Alerts       {alerts}",
    "This terminal shows warnings and errors; each run's full log is on its page in the UI. Ctrl-C stops.",
]
ALERTS_OFF = "OFF: set LNB_ALERT_WEBHOOK_URL to be told of failed runs and blocked orders"
ALERTS_ON = "on: failed runs and blocked orders are posted to LNB_ALERT_WEBHOOK_URL"
LOG_LINE = re.compile(r"^(?:\x1b\[\d+m)?[-0-9]+ [0-9:]+ [-+][0-9]{4}(?:\x1b\[0m)? - (?P<logger>[\w.-]+) - "
                      r"(?:\x1b\[\d+m)?(?P<level>[A-Z]+)(?:\x1b\[0m)? - ")
"""A log line as Dagster's console loggers write it, colored (webserver, daemon) or not (runs, sensors)."""
SANDBOX_LINES = ("Shopify sandbox:", "LNB sandbox:", "Scenario demo:")
SECONDS = 180


def _free_port() -> int:
    with closing(socket.socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _make_run(processes: Processes, home: Path, console: Path, **environment: str) -> tuple[
        subprocess.Popen[bytes], dict[str, str]]:
    """``make run`` on a scratch DAGSTER_HOME and free ports, in its own session as in a terminal."""
    ports = {"DAGSTER_PORT": str(_free_port()), "SHOPIFY_PORT": str(_free_port()), "LNB_PORT": str(_free_port())}
    settings = {"DAGSTER_HOME": str(home), **ports, **environment}
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("SHOPIFY_", "LNB_", "DAGSTER_"))} | settings
    with console.open("wb") as log:
        process = subprocess.Popen(MAKE_RUN, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    processes.append(process)
    return process, settings


def _wait_until(condition: Callable[[], bool], what: str, process: subprocess.Popen[bytes], console: Path) -> None:
    deadline = time.monotonic() + SECONDS
    while not condition():
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"no {what} (make run exit {process.poll()}); terminal:\n"
                        + console.read_text(errors="replace")[-3000:])
        time.sleep(0.5)


def _interrupt(process: subprocess.Popen[bytes]) -> None:
    """Ctrl-C: SIGINT to the terminal's process group; everything in it must stop by itself."""
    os.killpg(process.pid, signal.SIGINT)
    process.wait(timeout=60)
    deadline = time.monotonic() + 60
    while True:
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return
        assert time.monotonic() < deadline, "processes of make run still alive a minute after Ctrl-C"
        time.sleep(0.5)


def _ui_answers(port: str) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/server_info", timeout=5).ok
    except requests.ConnectionError:
        return False


def _banner_lines(port: str, alerts: str) -> list[str]:
    return [line.format(port=port, alerts=alerts) for line in BANNER]


def _shows_banner(console: Path, port: str, alerts: str) -> bool:
    return "\n".join(_banner_lines(port, alerts)) in console.read_text(errors="replace")


def test_the_terminal_shows_the_banner_and_only_warnings_while_the_ui_keeps_every_line(
        processes: Processes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home, console = tmp_path / "dagster_home", tmp_path / "terminal.log"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    make_run, settings = _make_run(processes, home, console)
    _wait_until(lambda: _ui_answers(settings["DAGSTER_PORT"]), "UI", make_run, console)
    sandbox = {"SHOPIFY_SHOP_URL": f"http://127.0.0.1:{settings['SHOPIFY_PORT']}",
               "LNB_BASE_URL": f"http://127.0.0.1:{settings['LNB_PORT']}/apis/wholesale/v2",
               "LNB_CLIENT_ID": "sandbox-client", "LNB_CLIENT_SECRET": "sandbox-secret",
               "SHOPIFY_ACCESS_TOKEN": "sandbox-token"}
    subprocess.run([str(VENV_BIN / "dagster"), "job", "launch", "-w", "workspace.yaml", "-j", "inventory_sync"],
                   cwd=REPO, env={**os.environ, **settings, **sandbox}, check=True, capture_output=True, timeout=120)
    with dg.DagsterInstance.get() as instance:
        [run] = [run for run in instance.get_runs(dg.RunsFilter(job_name="inventory_sync"))
                 if "dagster/sensor_name" not in run.tags and "dagster/schedule_name" not in run.tags]
        _wait_until(lambda: PROBLEMS_TAG in (instance.get_run_by_id(run.run_id) or run).tags,
                    "problems tag on the stock sync", make_run, console)
        levels = {record.level for record in instance.all_logs(run.run_id)}
    _wait_until(lambda: f"Run {run.run_id} (inventory_sync) succeeded with problems" in console.read_text(),
                "warning about the run's problems in the terminal", make_run, console)

    _interrupt(make_run)

    terminal = console.read_text(errors="replace")
    assert _shows_banner(console, settings["DAGSTER_PORT"], ALERTS_OFF)
    levels_shown = {match["level"] for line in terminal.splitlines() if (match := LOG_LINE.match(line))}
    assert levels_shown <= {"WARNING", "ERROR"}, terminal
    banner = _banner_lines(settings["DAGSTER_PORT"], ALERTS_OFF)
    unexplained = [line for line in terminal.splitlines() if line.strip() and not LOG_LINE.match(line)
                   and line not in banner and not line.startswith(SANDBOX_LINES)]
    assert unexplained == []
    assert not re.search(r"supersed|deprecat|dagster dev", terminal, re.IGNORECASE)
    assert {logging.DEBUG, logging.INFO} <= levels, "the UI's log of the run keeps its DEBUG and INFO lines"


def test_the_banner_says_when_alerts_are_on(processes: Processes, tmp_path: Path) -> None:
    console = tmp_path / "terminal.log"
    make_run, settings = _make_run(processes, tmp_path / "dagster_home", console,
                                   LNB_ALERT_WEBHOOK_URL="https://hooks.example.com/T0001/S3CR3T")

    _wait_until(lambda: _shows_banner(console, settings["DAGSTER_PORT"], ALERTS_ON), "banner", make_run, console)
    _interrupt(make_run)

    assert "S3CR3T" not in console.read_text()
