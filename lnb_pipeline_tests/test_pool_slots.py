"""Pool slots of runs killed outside the daemon: ``make free-pool-slots`` frees those of dead runs and
never a live run's, and a step waiting on a pool names the run holding it and that command.

The decisions are checked on a test instance with made-up runs; the whole story as deployed, with
``dg launch`` processes on a DAGSTER_HOME as ``make run`` sets it up: an export killed while its step
holds the pool, the next export waiting and saying why, the command run while both exist.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import dagster as dg
import pytest
import requests
from conftest import kill_group
from dagster._core.events import DagsterEvent, EngineEventData

from lnb_pipeline.defs import pool_waits
from lnb_pipeline.defs.orders.assets import EXPORT_POOL
from lnb_pipeline.deploy.pool_slots import free_pool_slots
from lnb_pipeline.sandbox import Sandbox

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
HOST = socket.gethostname()
STEP = "shopify_orders_from_lnb"
STALL_SECONDS = 20.0
"""How long LNB holds the killed export's status call: it must outlast the first run's checks and kill."""


# --- the decisions -------------------------------------------------------------------------------

def _run(instance: dg.DagsterInstance, status: dg.DagsterRunStatus, pid: int | None = None,
         pid_recorded_at: float | None = None) -> str:
    """A run of ``orders_export`` in ``status``, its run worker ``pid`` recorded as the executor does."""
    run = instance.add_run(dg.DagsterRun(job_name="orders_export", status=status))
    if pid is not None:
        event = DagsterEvent(event_type_value=dg.DagsterEventType.ENGINE_EVENT.value, job_name=run.job_name,
                             message=f"Executing steps in process (pid: {pid})",
                             event_specific_data=EngineEventData(metadata={"pid": dg.MetadataValue.text(str(pid))}))
        instance.report_dagster_event(event, run.run_id, timestamp=pid_recorded_at)
    return run.run_id


def _ended_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    process = subprocess.Popen([sys.executable, "-c", ""])
    process.wait()
    return process.pid


def _holders(instance: dg.DagsterInstance, pool: str) -> tuple[set[str], set[str]]:
    """The runs holding ``pool``'s slots, and those queued for one."""
    info = instance.event_log_storage.get_concurrency_info(pool)
    held = {slot.run_id for slot in info.claimed_slots}
    return held, {step.run_id for step in info.pending_steps} - held


def _line(lines: list[str], run_id: str) -> str:
    """The one line about ``run_id``."""
    [line] = [line for line in lines if line.startswith(f"run {run_id} ")]
    return line


def test_frees_the_slots_of_dead_runs_only() -> None:
    """Finished, deleted and dead runs lose their slots and queued claims, a dead unfinished run is
    marked failed saying why; a live run, a run whose pid was reused and a run without a recorded pid
    are told apart, and the two that may be alive keep everything. A dry run changes nothing."""
    started = dg.DagsterRunStatus.STARTED
    with dg.instance_for_test() as instance:
        storage = instance.event_log_storage
        alive = _run(instance, started, os.getpid())
        dead_pid, dead_queued_pid = _ended_pid(), _ended_pid()
        dead = _run(instance, started, dead_pid)
        reused = _run(instance, started, os.getpid(), pid_recorded_at=time.time() - 10 * 365 * 86400)
        no_pid = _run(instance, started)
        finished = _run(instance, dg.DagsterRunStatus.FAILURE, _ended_pid())
        deleted = "0" * 8 + "-0000-0000-0000-" + "0" * 12
        dead_queued = _run(instance, started, dead_queued_pid)
        storage.set_concurrency_slots("wide", 10)
        storage.set_concurrency_slots(EXPORT_POOL, 1)
        for run_id in (alive, dead, reused, no_pid, finished, deleted):
            assert storage.claim_concurrency_slot("wide", run_id, "push").is_claimed
        assert storage.claim_concurrency_slot(EXPORT_POOL, alive, STEP).is_claimed
        assert not storage.claim_concurrency_slot(EXPORT_POOL, dead_queued, STEP).is_claimed

        planned = free_pool_slots(instance, dry_run=True)
        assert _holders(instance, "wide")[0] == {alive, dead, reused, no_pid, finished, deleted}
        assert _holders(instance, EXPORT_POOL) == ({alive}, {dead_queued})
        assert {run.status for run in instance.get_runs(dg.RunsFilter(run_ids=[dead, dead_queued]))} == {started}
        report = free_pool_slots(instance)

        statuses = {run_id: run.status for run_id in (alive, dead, reused, no_pid, finished, dead_queued)
                    if (run := instance.get_run_by_id(run_id)) is not None}
        failures = {run_id: [record.event_log_entry.dagster_event.message for record in instance.get_records_for_run(
            run_id, of_type=dg.DagsterEventType.RUN_FAILURE).records] for run_id in (dead, finished)}
        assert (_holders(instance, "wide"), _holders(instance, EXPORT_POOL)) == (
            ({alive, no_pid}, set()), ({alive}, set()))
        again = free_pool_slots(instance)[-1]

    failed = dg.DagsterRunStatus.FAILURE
    assert statuses == {alive: started, dead: failed, reused: failed, no_pid: started, finished: failed,
                        dead_queued: failed}
    assert failures == {dead: [f"Marked failed by `make free-pool-slots`: its run worker (pid {dead_pid}) "
                               f"no longer runs on {HOST}; its pool slots were freed."], finished: []}
    assert _line(report, alive) == (f"run {alive} (orders_export, STARTED) holds lnb_orders_export [{STEP}], "
                                    f"wide [push]: its run worker (pid {os.getpid()}) still runs: left alone")
    assert _line(report, no_pid).endswith(
        "no run worker pid recorded, so whether it still runs is unknown: left alone "
        "(if you know it is dead, force-terminate it in the Dagster UI: that frees its slots)")
    assert _line(report, reused).endswith(f"its run worker (pid {os.getpid()}) no longer runs on {HOST}: "
                                          "marked it failed and freed its slots")
    assert _line(report, dead_queued) == (
        f"run {dead_queued} (orders_export, STARTED) queued for lnb_orders_export [{STEP}]: its run worker "
        f"(pid {dead_queued_pid}) no longer runs on {HOST}: marked it failed and freed its slots")
    assert _line(report, finished).endswith("holds wide [push]: finished: freed its slots")
    assert _line(report, deleted) == (f"run {deleted} (unknown run) holds wide [push]: deleted from storage: "
                                      "freed its slots")
    assert _line(planned, dead).endswith("would mark it failed and free its slots")
    assert _line(planned, finished).endswith("would free its slots")
    summary = "7 run(s) in the pools: 5 dead (3 of them unfinished), 1 alive, 1 unknown"
    assert (planned[-1], report[-1]) == (f"{summary}; dry run, nothing changed.", f"{summary}.")
    assert again == "2 run(s) in the pools: 0 dead (0 of them unfinished), 1 alive, 1 unknown."

def test_nothing_to_free() -> None:
    with dg.instance_for_test() as instance:
        assert free_pool_slots(instance) == ["No run holds or is queued for a pool slot."]


def _one_holds_the_other_waits(instance: dg.DagsterInstance) -> tuple[str, str]:
    """Two started runs: the first holds the export pool's one slot, the second's step waits for it."""
    storage = instance.event_log_storage
    storage.set_concurrency_slots(EXPORT_POOL, 1)
    holder, waiting = (_run(instance, dg.DagsterRunStatus.STARTED) for _ in range(2))
    assert storage.claim_concurrency_slot(EXPORT_POOL, holder, STEP).is_claimed
    assert not storage.claim_concurrency_slot(EXPORT_POOL, waiting, STEP).is_claimed
    return holder, waiting


def test_a_waiting_step_is_told_who_holds_its_pool() -> None:
    """The note names the holding run and step, when it took the slot and its status; the holder,
    and a pool nobody waits on, get none."""
    with dg.instance_for_test() as instance:
        holder, waiting = _one_holds_the_other_waits(instance)
        notes = pool_waits.pool_wait_notes(instance, waiting, {EXPORT_POOL, "lnb_stock_push"})
        assert pool_waits.pool_wait_notes(instance, holder, {EXPORT_POOL}) == {}
    [((pool, step), note)] = notes.items()
    assert (pool, step) == (EXPORT_POOL, STEP)
    assert re.fullmatch(rf"pool {EXPORT_POOL} held by run {holder} \(step {STEP}, started \d{{4}}-\d\d-\d\d "
                        r"\d\d:\d\d:\d\d UTC, status STARTED\); if that run is dead, run `make free-pool-slots`", note)



class _StepLog:
    """The run log's stand-in: what ``with_tags(step_key=...).warning`` received, as (step, message)."""

    def __init__(self) -> None:
        self.notes: list[tuple[str, str]] = []
        self._step_key = ""

    def with_tags(self, step_key: str) -> _StepLog:
        self._step_key = step_key
        return self

    def warning(self, message: str) -> None:
        self.notes.append((self._step_key, message))


def test_the_note_comes_at_once_then_every_interval_until_the_step_has_its_slot(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pool_waits, "POLL_SECONDS", 0.05)
    monkeypatch.setattr(pool_waits, "NOTE_EVERY_SECONDS", 0.5)
    with dg.instance_for_test() as instance:
        storage = instance.event_log_storage
        holder, waiting = _one_holds_the_other_waits(instance)
        log = _StepLog()
        watcher = pool_waits._PoolWatcher(cast(Any, SimpleNamespace(instance=instance, run_id=waiting, log=log)),
                                          {EXPORT_POOL})
        watcher.start()
        _wait_until(lambda: len(log.notes) == 2, "second note", timeout=5)
        storage.free_concurrency_slots_for_run(holder)
        assert storage.claim_concurrency_slot(EXPORT_POOL, waiting, STEP).is_claimed
        time.sleep(1.0)
        watcher.stop()
    assert [step for step, _ in log.notes] == [STEP, STEP]
    assert log.notes[0][1].startswith(f"pool {EXPORT_POOL} held by run {holder} ")


# --- as deployed ---------------------------------------------------------------------------------

def _launch_export(processes: list[subprocess.Popen[bytes]], console: Path) -> subprocess.Popen[bytes]:
    """``dg launch --job orders_export`` in a new session, as an operator runs it; its output in ``console``."""
    env = {**os.environ, "VIRTUAL_ENV": str(BIN.parent), "PATH": f"{BIN}:{os.environ['PATH']}"}
    with console.open("wb") as log:
        process = subprocess.Popen([str(BIN / "dg"), "launch", "--job", "orders_export"], cwd=REPO, env=env,
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    processes.append(process)
    return process


def _free_pool_slots(*options: str) -> list[str]:
    """``make free-pool-slots`` with this test's Python (and not reinstalling it); its output lines."""
    done = subprocess.run(["make", "--no-print-directory", "-o", ".venv/.installed", f"BIN={BIN}",
                           "free-pool-slots", *options], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.splitlines()[1:]  # after make's echo of the command


def _wait_until(condition: Callable[[], bool], what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {timeout} s")
        time.sleep(0.1)


def test_a_killed_cli_export_holds_its_pool_until_freed_and_the_waiting_export_says_so(
        sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        processes: list[subprocess.Popen[bytes]]) -> None:
    """The first export's step holds the pool while LNB stalls its call: the command leaves it, alive.
    Killed, it stays STARTED and holds the pool; the next export waits, naming it and the command.
    The command, dry, changes nothing; then it marks the killed run failed and frees its slot, without
    touching the waiting run, which then takes the slot and finishes."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "lnb_pipeline" / "deploy" / "dagster.local.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("SHOPIFY_ORDER_LOOKUP_WAIT_SECONDS", "0")
    monkeypatch.delenv("LNB_TASK_LOG_DIR", raising=False)
    requests.post(f"{sandbox.lnb.url}/_sandbox/faults", timeout=10, json=[
        {"kind": "timeout", "match": "/orders/status", "count": 1, "seconds": STALL_SECONDS}]).raise_for_status()

    with dg.DagsterInstance.get() as instance:
        def holders() -> set[str]:
            return instance.event_log_storage.get_concurrency_info(EXPORT_POOL).active_run_ids

        first = _launch_export(processes, tmp_path / "first.log")
        _wait_until(lambda: requests.get(f"{sandbox.lnb.url}/_sandbox/stats", timeout=10).json()[
            "faults_injected"].get("timeout") == 1, "stalled LNB call")
        stalled_at = time.monotonic()
        [killed] = holders()
        while_alive = _free_pool_slots()
        assert holders() == {killed}
        kill_group(first)

        second = _launch_export(processes, tmp_path / "second.log")
        note = f"pool {EXPORT_POOL} held by run {killed} (step {STEP}, started "
        _wait_until(lambda: note in (tmp_path / "second.log").read_text(), "note naming the killed run")
        dry = _free_pool_slots("DRY_RUN=1")
        assert holders() == {killed}
        assert [run.status for run in instance.get_runs(dg.RunsFilter(run_ids=[killed]))] == [
            dg.DagsterRunStatus.STARTED]
        freed = _free_pool_slots()
        assert second.wait(timeout=120) == 0, (tmp_path / "second.log").read_text()[-3000:]

        statuses = {run.run_id: run.status for run in instance.get_runs(dg.RunsFilter(job_name="orders_export"))}
        after = _free_pool_slots()
    time.sleep(max(0.0, stalled_at + STALL_SECONDS + 1 - time.monotonic()))  # the stalled call ends before next test

    [waiting] = set(statuses) - {killed}
    note_line = next(line for line in (tmp_path / "second.log").read_text().splitlines() if note in line)
    assert " - WARNING - orders_export - " in note_line and note_line.endswith(
        ", status STARTED); if that run is dead, run `make free-pool-slots`")
    worker = f"its run worker (pid {first.pid})"
    summary = "2 run(s) in the pools: 1 dead (1 of them unfinished), 1 alive, 0 unknown"
    assert while_alive == [f"run {killed} (orders_export, STARTED) holds {EXPORT_POOL} [{STEP}]: {worker} still runs: "
                           "left alone", "1 run(s) in the pools: 0 dead (0 of them unfinished), 1 alive, 0 unknown."]
    assert dry == [f"run {killed} (orders_export, STARTED) holds {EXPORT_POOL} [{STEP}]: {worker} no longer runs on "
                   f"{HOST}: would mark it failed and free its slots",
                   f"run {waiting} (orders_export, STARTED) queued for {EXPORT_POOL} [{STEP}]: its run worker "
                   f"(pid {second.pid}) still runs: left alone",
                   f"{summary}; dry run, nothing changed."]
    assert freed == [dry[0].replace("would mark it failed and free", "marked it failed and freed"), dry[1],
                     f"{summary}."]
    assert statuses == {killed: dg.DagsterRunStatus.FAILURE, waiting: dg.DagsterRunStatus.SUCCESS}
    assert after == ["No run holds or is queued for a pool slot."]
