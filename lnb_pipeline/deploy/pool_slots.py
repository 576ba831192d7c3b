"""Free the pool slots of runs that are no longer alive: ``make free-pool-slots`` (``--dry-run`` only lists).

A run whose process dies while no daemon watches it (a ``dg launch`` killed, a reboot) stays STARTED in
storage and keeps the pool slots its steps claimed, so the next run's steps wait on them forever. Under
the daemon, run monitoring frees them; this does it for the instance at $DAGSTER_HOME otherwise. A run is
dead when it has finished, or when the run worker pid it recorded no longer runs on this machine (so run
this where the runs ran): a dead unfinished run is marked failed, and a dead run's slots and queued claims
are freed. A live run, or one that recorded no pid, is left alone.
"""

from __future__ import annotations

import argparse
import os
import socket
import time
from collections import defaultdict
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

import dagster as dg

PID_REUSE_SLACK_SECONDS = 30.0
"""A process started this long after its run recorded the pid is another one reusing the pid. The margin
absorbs clock adjustments: were it too small, a live run could be taken for dead."""
COMMAND = "make free-pool-slots"


class Verdict(Enum):
    FINISHED = "finished"
    DEAD = "dead"
    ALIVE = "alive"
    UNKNOWN = "unknown"


@dataclass
class PoolClaims:
    """What one run holds in the pools, each as "pool [step]"."""

    held: list[str] = field(default_factory=list)
    queued: list[str] = field(default_factory=list)
    """Claims not yet turned into slots: a slot assigned to a step that has not taken it blocks the
    others as a held one does, and a dead run first in a queue would be assigned the next free slot."""

    def __str__(self) -> str:
        parts = [f"{verb} {', '.join(claims)}" for verb, claims in (("holds", self.held), ("queued for", self.queued))
                 if claims]
        return " and ".join(parts)


def pool_claims(instance: dg.DagsterInstance) -> dict[str, PoolClaims]:
    """Every pool's claimed slots and queued claims, by run id."""
    storage = instance.event_log_storage
    claims: defaultdict[str, PoolClaims] = defaultdict(PoolClaims)
    for pool, info in storage.get_concurrency_infos(sorted(storage.get_concurrency_keys())).items():
        held = {(slot.run_id, slot.step_key) for slot in info.claimed_slots}
        for run_id, step_key in sorted(held):
            claims[run_id].held.append(f"{pool} [{step_key}]")
        for step in info.pending_steps:
            if (step.run_id, step.step_key) not in held:
                claims[step.run_id].queued.append(f"{pool} [{step.step_key}]")
    return dict(claims)


def run_worker_pid(instance: dg.DagsterInstance, run_id: str) -> tuple[int, float] | None:
    """The pid of the run's worker process and when it was recorded: the latest run-level engine event
    with a ``pid`` (the executor's "Executing steps in process", the code server's "Started process")."""
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT, ascending=False).records
    for record in records:
        event = record.event_log_entry.dagster_event
        data = event.engine_event_data if event is not None and event.step_key is None else None
        pid = data.metadata.get("pid") if data is not None else None
        if pid is not None:
            return int(str(pid.value)), record.event_log_entry.timestamp
    return None


def process_is_running(pid: int, since: float) -> bool:
    """Whether process ``pid`` runs here and may be the one that recorded itself at ``since``. On Linux a
    zombie, or a process started after ``since`` (a pid reused, after a reboot say), is not; elsewhere
    only the pid is checked."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it runs
    proc = Path("/proc")
    if not (proc / "uptime").exists():
        return True
    try:
        stat = (proc / str(pid) / "stat").read_text()
    except FileNotFoundError:
        return False
    fields = stat.rsplit(")", 1)[1].split()  # after "pid (command)": state is field 3, start time field 22
    age = float((proc / "uptime").read_text().split()[0]) - int(fields[19]) / os.sysconf("SC_CLK_TCK")
    return fields[0] != "Z" and time.time() - age <= since + PID_REUSE_SLACK_SECONDS


def assess(instance: dg.DagsterInstance, run: dg.DagsterRun | None) -> tuple[Verdict, str]:
    """Whether the run is alive, and why."""
    if run is None:
        return Verdict.FINISHED, "deleted from storage"
    if run.is_finished:
        return Verdict.FINISHED, "finished"
    worker = run_worker_pid(instance, run.run_id)
    if worker is None:
        return Verdict.UNKNOWN, "no run worker pid recorded, so whether it still runs is unknown"
    pid, since = worker
    if process_is_running(pid, since):
        return Verdict.ALIVE, f"its run worker (pid {pid}) still runs"
    return Verdict.DEAD, f"its run worker (pid {pid}) no longer runs on {socket.gethostname()}"


ACTIONS = {
    # verdict: (what is done, what a dry run would do)
    Verdict.DEAD: ("marked it failed and freed its slots", "would mark it failed and free its slots"),
    Verdict.FINISHED: ("freed its slots", "would free its slots"),
    Verdict.ALIVE: ("left alone", "left alone"),
    Verdict.UNKNOWN: ("left alone (if you know it is dead, force-terminate it in the Dagster UI: "
                      "that frees its slots)",) * 2,
}


def free_pool_slots(instance: dg.DagsterInstance, dry_run: bool = False) -> list[str]:
    """Free the pool slots of dead runs, marking the unfinished ones failed; one line per run, then a summary."""
    claims = pool_claims(instance)
    if not claims:
        return ["No run holds or is queued for a pool slot."]
    runs = {run.run_id: run for run in instance.get_runs(dg.RunsFilter(run_ids=list(claims)))}
    lines: list[str] = []
    verdicts: defaultdict[Verdict, int] = defaultdict(int)
    for run_id, run_claims in claims.items():
        run = runs.get(run_id)
        verdict, reason = assess(instance, run)
        verdicts[verdict] += 1
        if not dry_run and verdict in (Verdict.DEAD, Verdict.FINISHED):
            if run is not None and verdict is Verdict.DEAD:
                instance.report_run_failed(run, f"Marked failed by `{COMMAND}`: {reason}; its pool slots were freed.")
            instance.event_log_storage.free_concurrency_slots_for_run(run_id)
        described = f"{run.job_name}, {run.status.value}" if run is not None else "unknown run"
        lines.append(f"run {run_id} ({described}) {run_claims}: {reason}: {ACTIONS[verdict][dry_run]}")
    lines.append(f"{len(claims)} run(s) in the pools: {verdicts[Verdict.DEAD] + verdicts[Verdict.FINISHED]} dead "
                 f"({verdicts[Verdict.DEAD]} of them unfinished), {verdicts[Verdict.ALIVE]} alive, "
                 f"{verdicts[Verdict.UNKNOWN]} unknown" + ("; dry run, nothing changed." if dry_run else "."))
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog=COMMAND, description=(
        "Free the pool slots of the runs at $DAGSTER_HOME that are no longer alive: finished runs, and runs "
        "whose run worker no longer runs on this machine (marked failed). Live runs, and runs that recorded "
        "no pid, are left alone."))
    parser.add_argument("--dry-run", action="store_true", help="list the runs and what would be done, change nothing")
    args = parser.parse_args(argv)
    with dg.DagsterInstance.get() as instance:
        for line in free_pool_slots(instance, args.dry_run):
            print(line)


if __name__ == "__main__":
    main()
