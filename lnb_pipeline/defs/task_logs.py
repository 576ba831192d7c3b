"""Task log files: one CSV per run and task with every record's outcome, for troubleshooting."""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl


def default_task_log_dir() -> str:
    """``$DAGSTER_HOME/task_logs`` when Dagster has a home, else ``./task_logs``."""
    home = os.environ.get("DAGSTER_HOME")
    return str(Path(home) / "task_logs") if home else "task_logs"


def write_task_log(directory: str, run_id: str, task: str, outcomes: pl.DataFrame) -> Path:
    """Write ``outcomes`` (one row per record) to ``<directory>/<run_id>/<task>.csv`` and return the path."""
    path = Path(directory).expanduser().resolve() / run_id / f"{task}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    outcomes.write_csv(path)
    return path
