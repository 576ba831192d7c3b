"""Alerts for a person: a JSON webhook (LNB_ALERT_WEBHOOK_URL) told of failed runs and blocked orders.

``lnb_run_failure_alert`` posts each run that failed for good (after Dagster's run retries): its
first error, the ERROR checks that failed in it, the orders it blocked and a link to it.
``lnb_blocked_orders_alert`` posts the orders ``lnb_orders_for_export`` blocked, once per order until
its reasons change. Every string sent is redacted; a webhook that fails is retried twice and then
only logged as a warning, so alerts never fail a run or a sensor tick.

Without LNB_ALERT_WEBHOOK_URL both sensors start stopped, their descriptions beginning with "OFF", and
``make run`` says so in its banner: a "Running" alert that reaches nobody would be worse than none.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import dagster as dg
import requests

from lnb_pipeline.clients.redaction import redact
from lnb_pipeline.clients.retry import RetryPolicy
from lnb_pipeline.defs.env import for_definitions
from lnb_pipeline.defs.orders.assets import blocked_orders_in
from lnb_pipeline.settings import (
    SECRET_VARIABLES,
    SETTINGS,
    read_setting,
    setting_field,
)

ALERTS_OFF = "LNB_ALERT_WEBHOOK_URL is not set: alerts are off"
WEBHOOK_TIMEOUT_SECONDS = 10
WEBHOOK_RETRY = RetryPolicy(attempts=3)
"""The first try and two retries, full-jitter backoff (at most 0.5 s, then 1 s)."""
WILL_RETRY_TAG = "dagster/will_retry"
"""Tag Dagster's run retries put on a failed run: "true" when another attempt will follow."""
MAX_ERROR_CHARS = 2000
ORDER_SELECTION = dg.AssetKey("lnb_orders_for_export")
SELECTIONS_PER_TICK = 20
FORGET_AFTER_SECONDS = 30 * 24 * 3600
"""An alerted order not seen blocked for this long is forgotten (it alerts again if it comes back)."""
MAX_REMEMBERED_ORDERS = 5000


class AlertSettings(dg.ConfigurableResource):
    """Where alerts go and how they link back to Dagster."""

    webhook_url: str = setting_field("LNB_ALERT_WEBHOOK_URL")
    dagster_url: str = setting_field("LNB_DAGSTER_URL")

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """A malformed URL fails the sensor tick naming the variable, rather than every alert silently."""
        if self.enabled and not _is_http_url(self.webhook_url):
            raise ValueError("LNB_ALERT_WEBHOOK_URL must be an http(s) URL (value not shown: it may hold a key)")
        if not _is_http_url(self.dagster_url):
            example = SETTINGS["LNB_DAGSTER_URL"].default
            raise ValueError(f"LNB_DAGSTER_URL must be an http(s) URL such as {example}, got {self.dagster_url!r}")

    @property
    def enabled(self) -> bool:
        return bool(self.webhook_url.strip())

    def run_url(self, run_id: str) -> str:
        return f"{self.dagster_url.strip().rstrip('/')}/runs/{run_id}"

    def post(self, payload: dict[str, Any], log: logging.Logger) -> bool:
        """POST ``payload``, every string redacted; True once the webhook accepted it.

        Network errors, 429 and 5xx are retried; nothing raises: a failure is logged as a warning.
        """
        url = self.webhook_url.strip()
        secrets = _secrets(url)
        body = _redacted(payload, secrets)
        problem, tries = "", 0
        while tries < WEBHOOK_RETRY.attempts:
            if tries:
                time.sleep(WEBHOOK_RETRY.delay(tries))
            tries += 1
            try:
                response = requests.post(url, json=body, timeout=WEBHOOK_TIMEOUT_SECONDS)
            except requests.RequestException as error:
                problem = f"{type(error).__name__}: {error}"
                continue
            if response.ok:
                return True
            problem = f"HTTP {response.status_code}"
            if response.status_code < 500 and response.status_code != 429:
                break
        log.warning("Alert webhook on %s failed after %d tries (%s): %s alert not sent",
                    urlsplit(url).netloc, tries, redact(problem, secrets), payload["kind"])
        return False


def _is_http_url(url: str) -> bool:
    parts = urlsplit(url.strip())
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _secrets(webhook_url: str) -> tuple[str, ...]:
    """The secret settings' values, and the webhook's URL and path (chat webhooks keep their key there)."""
    parts = urlsplit(webhook_url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    values = [os.environ.get(variable, "") for variable in SECRET_VARIABLES]
    return tuple(value for value in (*values, webhook_url, path if len(path) > 1 else "") if value)


def _redacted(value: Any, secrets: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, list):
        return [_redacted(item, secrets) for item in value]
    if isinstance(value, dict):
        return {key: _redacted(item, secrets) for key, item in value.items()}
    return value


# --- failed runs --------------------------------------------------------------------------------

def _root_error(error: Any) -> str:
    """The innermost explicit cause of a serialized error: the message that says what to fix."""
    while error.cause is not None:
        error = error.cause
    return error.message.strip()


def _first_error(context: dg.RunFailureSensorContext) -> str:
    """The first failed step's root error, else the run's own failure."""
    for event in context.get_step_failure_events():
        error = getattr(event.event_specific_data, "error", None)
        if error is not None:
            return f"{event.step_key}: {_root_error(error)}"[:MAX_ERROR_CHARS]
    error = getattr(context.failure_event.event_specific_data, "error", None)
    message = _root_error(error) if error is not None else context.failure_event.message or "run failed"
    return message[:MAX_ERROR_CHARS]


def _run_outcomes(instance: dg.DagsterInstance, run_id: str) -> tuple[list[str], list[dict[str, Any]]]:
    """The ERROR checks that failed in the run, and the orders its selection blocked."""
    records = instance.get_records_for_run(run_id, of_type={dg.DagsterEventType.ASSET_CHECK_EVALUATION,
                                                            dg.DagsterEventType.ASSET_MATERIALIZATION}).records
    failed_checks: set[str] = set()
    blocked: list[dict[str, Any]] = []
    for record in records:
        event = record.event_log_entry.dagster_event
        if record.asset_materialization is not None and record.asset_key == ORDER_SELECTION:
            blocked = blocked_orders_in(record.asset_materialization)
        elif event is not None and event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.asset_check_evaluation_data
            if not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR:
                failed_checks.add(evaluation.check_name)
    return sorted(failed_checks), blocked


def alert_run_failure(context: dg.RunFailureSensorContext, alert_settings: AlertSettings) -> dg.SkipReason | None:
    """A run Dagster will retry does not alert: its last attempt does, if it fails too."""
    if not alert_settings.enabled:
        return dg.SkipReason(ALERTS_OFF)
    run = context.instance.get_run_by_id(context.dagster_run.run_id) or context.dagster_run
    if run.tags.get(WILL_RETRY_TAG) == "true":
        return dg.SkipReason(f"Run {run.run_id} will be retried: only a failed last attempt alerts")
    failed_checks, blocked = _run_outcomes(context.instance, run.run_id)
    sent = alert_settings.post({
        "kind": "run_failed", "job": run.job_name, "run_id": run.run_id, "run_url": alert_settings.run_url(run.run_id),
        "error": _first_error(context), "failed_checks": failed_checks, "blocked_orders": blocked,
    }, context.log)
    return None if sent else dg.SkipReason(f"The alert webhook failed: run {run.run_id} not alerted (see the log)")


# --- blocked orders -----------------------------------------------------------------------------

def _reasons_hash(reasons: Sequence[str]) -> str:
    return hashlib.sha256(json.dumps(sorted(reasons)).encode()).hexdigest()[:16]


def _bounded(alerted: dict[str, list[Any]], now: float) -> dict[str, list[Any]]:
    """Orders seen blocked in the last 30 days, at most the 5 000 seen last."""
    recent = [(reference, entry) for reference, entry in alerted.items() if entry[1] >= now - FORGET_AFTER_SECONDS]
    return dict(sorted(recent, key=lambda item: item[1][1], reverse=True)[:MAX_REMEMBERED_ORDERS])


def _new_selections(instance: dg.DagsterInstance, after: int | None) -> Sequence[dg.EventLogRecord]:
    """Order selections materialized since storage id ``after``, oldest first; the latest one on a first tick."""
    if after is None:
        return instance.fetch_materializations(ORDER_SELECTION, limit=1).records
    return instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=ORDER_SELECTION, after_storage_id=after),
                                           limit=SELECTIONS_PER_TICK, ascending=True).records


def alert_blocked_orders(context: dg.SensorEvaluationContext,
                         alert_settings: AlertSettings) -> dg.SensorResult | dg.SkipReason:
    """Cursor: the last selection read and, per alerted order, the hash of its reasons and when it was
    last seen blocked. An alert the webhook refused is not remembered: the next selection retries it."""
    cursor = json.loads(context.cursor) if context.cursor else {"after": None, "alerted": {}}
    records = _new_selections(context.instance, cursor["after"])
    if not records:
        return dg.SkipReason("No order selection since the last tick")
    if not alert_settings.enabled:
        return dg.SensorResult(skip_reason=ALERTS_OFF, cursor=json.dumps({**cursor, "after": records[-1].storage_id}))
    alerted: dict[str, list[Any]] = cursor["alerted"]
    newly_alerted: list[str] = []
    for record in records:
        blocked = blocked_orders_in(record.asset_materialization)
        new = [order for order in blocked
               if alerted.get(order["reference"], [None])[0] != _reasons_hash(order["reasons"])]
        for reference in {order["reference"] for order in blocked} - {order["reference"] for order in new}:
            alerted[reference][1] = int(record.timestamp)
        if new and alert_settings.post({"kind": "orders_blocked", "orders": new,
                                        "run_url": alert_settings.run_url(record.run_id)}, context.log):
            alerted.update({order["reference"]: [_reasons_hash(order["reasons"]), int(record.timestamp)]
                            for order in new})
            newly_alerted += [order["reference"] for order in new]
    summary = (f"Alerted {len(newly_alerted)} blocked orders: {', '.join(newly_alerted)}" if newly_alerted else
               f"No newly blocked order alerted from {len(records)} order selections")
    return dg.SensorResult(skip_reason=summary, cursor=json.dumps(
        {"after": records[-1].storage_id, "alerted": _bounded(alerted, time.time())}))


# --- definitions --------------------------------------------------------------------------------

RUN_FAILURE_DESCRIPTION = ("Posts each run that failed after its retries to LNB_ALERT_WEBHOOK_URL: error, failed "
                           "ERROR checks, blocked orders and a link to the run.")
BLOCKED_ORDERS_DESCRIPTION = ("Posts the orders lnb_orders_for_export blocked to LNB_ALERT_WEBHOOK_URL, once per "
                              "order until its reasons change.")
OFF_DESCRIPTION = ("OFF: LNB_ALERT_WEBHOOK_URL is not set, so this alert is stopped and nobody is told. Set the "
                   "variable and restart Dagster (or reload the code location) to turn it on.\n\n")


def alert_sensors(enabled: bool) -> list[dg.SensorDefinition]:
    """The two alert sensors: running when alerts are on; stopped when off, their description starting with
    OFF, so the sensor list does not show alerts nobody receives as "Running"."""
    status = dg.DefaultSensorStatus.RUNNING if enabled else dg.DefaultSensorStatus.STOPPED
    prefix = "" if enabled else OFF_DESCRIPTION
    return [
        dg.run_failure_sensor(name="lnb_run_failure_alert", default_status=status,
                              description=prefix + RUN_FAILURE_DESCRIPTION)(alert_run_failure),
        dg.sensor(name="lnb_blocked_orders_alert", minimum_interval_seconds=60, default_status=status,
                  description=prefix + BLOCKED_ORDERS_DESCRIPTION)(alert_blocked_orders),
    ]


def alerts_enabled() -> bool:
    """Whether LNB_ALERT_WEBHOOK_URL holds anything, as ``AlertSettings.enabled`` reads it."""
    return bool(read_setting("LNB_ALERT_WEBHOOK_URL", str).value.strip())


@functools.cache
def _log_alerts_off() -> None:
    """Once per process: a code server or a validation loads the definitions more than once."""
    dg.get_dagster_logger().info(ALERTS_OFF)


@dg.definitions
def alerts() -> dg.Definitions:
    """The two alert sensors and their settings; says once when alerts are off."""
    enabled = alerts_enabled()
    if not enabled:
        _log_alerts_off()
    return dg.Definitions(sensors=alert_sensors(enabled), resources={"alert_settings": for_definitions(AlertSettings)})
