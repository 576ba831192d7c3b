"""Dagster's in-process executor, plus a note every minute naming the run that holds the pool a step waits on.

While a step waits for a pool slot, Dagster logs "Step still blocked by limit for pool ..." only every
five minutes and never says who holds the slot. A run killed outside the daemon keeps its slot forever,
so the waiting run must tell the operator which run that is and how to free it. Nothing in Dagster runs
user code while a step waits (its body starts only once the slot is claimed, loggers are instantiated
only when named in run config), but the executor does: it wraps the in-process one and watches the pools
from a thread for as long as the run executes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING

import dagster as dg

if TYPE_CHECKING:
    from dagster._core.execution.context.system import PlanOrchestrationContext
    from dagster._core.execution.plan.plan import ExecutionPlan
    from dagster._core.execution.retries import RetryMode
    from dagster._core.execution.step_dependency_config import StepDependencyConfig

POLL_SECONDS = 5.0
"""How often the watcher reads the pools: a step that starts waiting is explained within this time."""
NOTE_EVERY_SECONDS = 60.0
"""How often a step that still waits says again who holds its pool."""
FREE_COMMAND = "make free-pool-slots"

_logger = logging.getLogger(__name__)


def _utc(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC" if moment is not None else "at an unknown time"


def pool_wait_notes(instance: dg.DagsterInstance, run_id: str, pools: set[str]) -> dict[tuple[str, str], str]:
    """For each step of run ``run_id`` queued on one of ``pools``, keyed by (pool, step), the note naming
    the runs that hold that pool's slots (claimed, or assigned and about to be claimed)."""
    notes: dict[tuple[str, str], str] = {}
    for pool, info in instance.event_log_storage.get_concurrency_infos(sorted(pools)).items():
        waiting = [step.step_key for step in info.pending_steps
                   if step.run_id == run_id and step.assigned_timestamp is None]
        assigned_at = {(step.run_id, step.step_key): step.assigned_timestamp for step in info.pending_steps}
        holders = dict.fromkeys([(slot.run_id, slot.step_key) for slot in info.claimed_slots]
                                + [key for key, assigned in assigned_at.items() if assigned is not None])
        if not waiting or not holders:
            continue
        described = []
        for holder_run_id, step_key in holders:
            holder = instance.get_run_by_id(holder_run_id)
            status = holder.status.value if holder is not None else "deleted"
            described.append(f"run {holder_run_id} (step {step_key}, started "
                             f"{_utc(assigned_at.get((holder_run_id, step_key)))}, status {status})")
        for step_key in waiting:
            notes[(pool, step_key)] = (f"pool {pool} held by {' and '.join(described)}; "
                                       f"if that run is dead, run `{FREE_COMMAND}`")
    return notes


class _PoolWatcher(threading.Thread):
    """Logs ``pool_wait_notes`` for the run: as soon as a step is seen waiting, then every
    ``NOTE_EVERY_SECONDS`` while it still waits, through the run's own log (console, event log, UI)."""

    def __init__(self, plan_context: PlanOrchestrationContext, pools: set[str]) -> None:
        super().__init__(name=f"pool-waits-{plan_context.run_id}", daemon=True)
        self._context = plan_context
        self._pools = pools
        self._stopped = threading.Event()
        self._noted: dict[tuple[str, str], float] = {}

    def stop(self) -> None:
        self._stopped.set()
        self.join(timeout=POLL_SECONDS)

    def run(self) -> None:
        while not self._stopped.wait(POLL_SECONDS):
            try:
                notes = pool_wait_notes(self._context.instance, self._context.run_id, self._pools)
            except Exception:  # a failed read must not end the notes, nor ever the run
                _logger.warning("Could not read the pools %s", sorted(self._pools), exc_info=True)
                continue
            now = time.monotonic()
            for (pool, step_key), note in notes.items():
                if now - self._noted.get((pool, step_key), -NOTE_EVERY_SECONDS) >= NOTE_EVERY_SECONDS:
                    self._context.log.with_tags(step_key=step_key).warning(note)
                    self._noted[(pool, step_key)] = now


class _PoolNotingExecutor(dg.Executor):
    """The in-process executor it wraps, with a ``_PoolWatcher`` while the run has steps in pools."""

    def __init__(self, inner: dg.Executor) -> None:
        self._inner = inner

    @property
    def retries(self) -> RetryMode:
        return self._inner.retries

    @property
    def step_dependency_config(self) -> StepDependencyConfig:
        return self._inner.step_dependency_config

    def execute(self, plan_context: PlanOrchestrationContext,
                execution_plan: ExecutionPlan) -> Iterator[dg.DagsterEvent]:
        pools = {step.pool for step in execution_plan.get_steps_to_execute_in_topo_order() if step.pool}
        if not pools:
            yield from self._inner.execute(plan_context, execution_plan)
            return
        watcher = _PoolWatcher(plan_context, pools)
        watcher.start()
        try:
            yield from self._inner.execute(plan_context, execution_plan)
        finally:
            watcher.stop()


@dg.executor(name="in_process", config_schema=dg.in_process_executor.config_schema.as_field())
def in_process_executor_naming_pool_holders(init_context: dg.InitExecutorContext) -> dg.Executor:
    """``dg.in_process_executor``, same name and configuration, whose runs say every minute which run
    holds the pool a step waits on and how to free it."""
    creation_fn = dg.in_process_executor.executor_creation_fn
    assert creation_fn is not None
    return _PoolNotingExecutor(creation_fn(init_context))
