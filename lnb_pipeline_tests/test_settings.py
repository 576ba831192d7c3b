"""Settings are declared once (``lnb_pipeline.settings``), and a malformed one fails only what uses it.

The reference ``docs/settings.md`` is what the table generates; every resource field comes from the
table and every variable of the table is used. A malformed schedule or sensor timing leaves the code
location loading (as ``dagster definitions validate`` sees it) with that schedule or sensor on its default
timing and its ticks failing on one line naming the variable; a malformed whole number fails, at
resource setup, the runs using that resource, on one line too.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import dagster as dg
import pytest
from helpers import REPO_ROOT, reloaded_under

from lnb_pipeline.clients.lenewblack import LnbNetworkError
from lnb_pipeline.definitions import defs
from lnb_pipeline.defs.inventory import changes as stock_changes
from lnb_pipeline.defs.inventory import schedules as stock_schedules
from lnb_pipeline.defs.inventory.settings import InventorySettings
from lnb_pipeline.defs.lenewblack.resources import LeNewBlackResource
from lnb_pipeline.defs.orders import schedules as order_schedules
from lnb_pipeline.defs.orders.settings import OrderFlowSettings
from lnb_pipeline.defs.resources import resources
from lnb_pipeline.defs.shopify.resources import ShopifyResource
from lnb_pipeline.settings import SETTINGS, SettingError, reference, settings_of

TIMING_VARIABLES = {"LNB_STOCK_CRON", "LNB_ORDERS_CRON", "LNB_TIMEZONE", "LNB_ORDERS_SENSOR_SECONDS",
                    "LNB_STOCK_CHANGES_SECONDS"}
"""The settings the schedules and sensors read when the code location loads, not resource fields."""
MISCONFIGURED = "MISCONFIGURED"
"""What a schedule's or sensor's description says when its timing setting is malformed."""


# --- declared once ------------------------------------------------------------------------------

def test_docs_settings_md_is_what_the_table_generates() -> None:
    committed = (REPO_ROOT / "docs" / "settings.md").read_text(encoding="utf-8")
    assert committed == reference(), "regenerate it: python -m lnb_pipeline.settings > docs/settings.md"


def _resources() -> dict[str, dg.ConfigurableResource]:
    """Every resource of the code location, by key."""
    return {key: resource for key, resource in defs().resources.items()
            if isinstance(resource, dg.ConfigurableResource)}


def test_every_resource_field_is_declared_in_the_table_with_its_type() -> None:
    for key, resource in _resources().items():
        model = type(resource)
        declared = settings_of(model)
        assert set(declared) == set(model.model_fields), f"{key}: fields without a setting"
        for field, setting in declared.items():
            annotation = model.model_fields[field].annotation
            assert annotation in (setting.type, setting.type | None), f"{key}.{field} is not a {setting.type}"
            if setting.variable is None:
                assert setting.name == f"{key}.{field}", "a tuning field is named resource.field"


def test_every_setting_of_the_table_is_used() -> None:
    """By a resource field, or by the schedule or sensor whose description names it."""
    field_settings = {setting.name for resource in _resources().values()
                      for setting in settings_of(type(resource)).values()}
    assert set(SETTINGS) - field_settings == TIMING_VARIABLES
    descriptions = " ".join(definition.description or "" for definition in [*defs().schedules, *defs().sensors])
    assert all(variable in descriptions for variable in TIMING_VARIABLES)


def test_every_whole_number_variable_says_what_it_accepts() -> None:
    """Its form is checked before ``dg.EnvVar.int`` binds it, so a malformed value gives one line."""
    whole_numbers = [setting for setting in SETTINGS.values() if setting.type is int and setting.variable]
    assert whole_numbers
    assert all(setting.form is not None for setting in whole_numbers)


# --- malformed timing: the code location loads, what uses it fails ------------------------------

BAD_TIMING = [
    ("LNB_TIMEZONE", "Mars/Olympus",
     "LNB_TIMEZONE must be an IANA time zone name such as Europe/Paris, got 'Mars/Olympus'"),
    ("LNB_STOCK_CRON", "not-a-cron",
     "LNB_STOCK_CRON must be a cron expression of 5 fields such as 0 * * * *, got 'not-a-cron'"),
    ("LNB_ORDERS_CRON", "0 0 30 2 *",
     "LNB_ORDERS_CRON must be a cron expression of 5 fields such as 0 * * * *, got '0 0 30 2 *'"),
    ("LNB_ORDERS_SENSOR_SECONDS", "abc",
     "LNB_ORDERS_SENSOR_SECONDS must be a whole number of at least 5, got 'abc'"),
    ("LNB_ORDERS_SENSOR_SECONDS", "-5",
     "LNB_ORDERS_SENSOR_SECONDS must be a whole number of at least 5, got '-5'"),
]
BAD_TIMING_IDS = ["timezone", "stock-cron", "orders-cron", "sensor-seconds-abc", "sensor-seconds-negative"]


@pytest.mark.parametrize(("variable", "value"), [case[:2] for case in BAD_TIMING], ids=BAD_TIMING_IDS)
def test_the_code_location_loads_with_a_malformed_timing(variable: str, value: str) -> None:
    """Dagster's own loading, as the UI's: it used to fail the whole location (9 tracebacks for a zone)."""
    environment = {name: text for name, text in os.environ.items() if name != "DAGSTER_HOME"}
    result = subprocess.run([str(Path(sys.executable).parent / "dagster"), "definitions", "validate",
                             "-w", "workspace.yaml"], cwd=REPO_ROOT, capture_output=True, text=True,
                            timeout=120, env={**environment, variable: value})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Validation successful for code location lnb_pipeline" in result.stderr + result.stdout
    assert "Traceback" not in result.stderr + result.stdout


Timing = dict[str, tuple[dg.ScheduleDefinition | dg.SensorDefinition, object]]


def _tick(definition: dg.ScheduleDefinition | dg.SensorDefinition) -> object:
    """One evaluation's result, or what it raised. The sensor's LNB is a closed port: a sensor not
    refused by its settings fails on its first call."""
    try:
        if isinstance(definition, dg.ScheduleDefinition):
            return definition(dg.build_schedule_context())
        with dg.instance_for_test() as instance:
            return definition(dg.build_sensor_context(instance=instance, resources={
                "lenewblack": LeNewBlackResource(base_url="http://127.0.0.1:9", client_id="id",
                                                 client_secret="secret", max_retries=0),
                "order_flow_settings": OrderFlowSettings()}))
    except Exception as error:
        return error


def _timing_under(environment: dict[str, str | None]) -> Timing:
    """Both schedules and the order sensor as their modules build them under ``environment``, by name,
    each with one tick's outcome: evaluated while the module is loaded, since a tick reads its settings."""
    def ticked(*definitions: dg.ScheduleDefinition | dg.SensorDefinition) -> Timing:
        return {definition.name: (definition, _tick(definition)) for definition in definitions}

    unset: dict[str, str | None] = dict.fromkeys(TIMING_VARIABLES)
    return {**reloaded_under(stock_schedules, {**unset, **environment},
                             lambda module: ticked(module.inventory_sync_schedule)),
            **reloaded_under(order_schedules, {**unset, **environment},
                             lambda module: ticked(module.orders_export_schedule, module.lnb_orders_sensor))}


@pytest.mark.parametrize(("variable", "value", "complaint"), BAD_TIMING, ids=BAD_TIMING_IDS)
def test_a_malformed_timing_fails_only_the_ticks_that_use_it(variable: str, value: str, complaint: str) -> None:
    """On its default timing, the schedule or sensor says what is wrong in its description and fails
    each tick on one line naming the variable; the others keep their timing and tick as usual."""
    timing = _timing_under({variable: value})
    affected = {"LNB_TIMEZONE": {"inventory_sync_schedule", "orders_export_schedule"},
                "LNB_STOCK_CRON": {"inventory_sync_schedule"}, "LNB_ORDERS_CRON": {"orders_export_schedule"},
                "LNB_ORDERS_SENSOR_SECONDS": {"lnb_orders_sensor"}}[variable]
    stock, orders, sensor = (timing[name][0] for name in (
        "inventory_sync_schedule", "orders_export_schedule", "lnb_orders_sensor"))

    assert isinstance(stock, dg.ScheduleDefinition) and isinstance(orders, dg.ScheduleDefinition)
    assert (stock.cron_schedule, stock.execution_timezone) == ("0 3 * * *", "UTC")
    assert (orders.cron_schedule, orders.execution_timezone) == ("0 * * * *", "UTC")
    assert isinstance(sensor, dg.SensorDefinition) and sensor.minimum_interval_seconds == 60
    for name, (definition, outcome) in timing.items():
        if name in affected:
            assert complaint in (definition.description or "")
            assert isinstance(outcome, SettingError) and str(outcome) == complaint
        elif definition is sensor:
            assert MISCONFIGURED not in (definition.description or "")
            assert isinstance(outcome, LnbNetworkError), "it polled LNB"
        else:
            assert MISCONFIGURED not in (definition.description or "")
            assert outcome == dg.RunRequest()


def test_a_tick_fails_naming_every_malformed_timing_it_uses() -> None:
    _, outcome = _timing_under({"LNB_STOCK_CRON": "every hour", "LNB_TIMEZONE": "Paris"})["inventory_sync_schedule"]

    assert str(outcome) == (
        "LNB_STOCK_CRON must be a cron expression of 5 fields such as 0 * * * *, got 'every hour'; "
        "LNB_TIMEZONE must be an IANA time zone name such as Europe/Paris, got 'Paris'")


def test_the_sensor_interval_is_five_seconds_or_more() -> None:
    """The daemon checks sensors every 5 seconds at best: less would not poll more often."""
    sensor, _ = _timing_under({"LNB_ORDERS_SENSOR_SECONDS": " 5 "})["lnb_orders_sensor"]
    assert isinstance(sensor, dg.SensorDefinition) and sensor.minimum_interval_seconds == 5
    sensor, outcome = _timing_under({"LNB_ORDERS_SENSOR_SECONDS": "4"})["lnb_orders_sensor"]
    assert isinstance(sensor, dg.SensorDefinition) and sensor.minimum_interval_seconds == 60
    assert str(outcome) == "LNB_ORDERS_SENSOR_SECONDS must be a whole number of at least 5, got '4'"


# --- malformed whole numbers: the runs using the resource fail at setup -------------------------

def _init_failure(key: str, resource: object) -> str:
    """The one error of a run that needs only resource ``key``, failed at resource setup."""
    @dg.asset(required_resource_keys={key})
    def needs_the_resource() -> None:
        """Never runs: the resource fails first."""

    result = dg.materialize([needs_the_resource], resources={key: resource}, raise_on_error=False)
    [failure] = [event for event in result.all_events if event.event_type_value == "RESOURCE_INIT_FAILURE"]
    return failure.event_specific_data.error.message.strip()


@pytest.mark.parametrize(("variable", "value", "key", "complaint"), [
    ("SHOPIFY_BULK_THRESHOLD", "abc", "inventory_settings",
     "SHOPIFY_BULK_THRESHOLD must be a whole number of at least 0, got 'abc'"),
    ("LNB_STOCK_MAX_INVALID_PERCENT", "101", "inventory_settings",
     "LNB_STOCK_MAX_INVALID_PERCENT must be a whole number from 0 to 100, got '101'"),
    ("SHOPIFY_ORDER_LOOKUP_WAIT_SECONDS", "-5", "order_flow_settings",
     "SHOPIFY_ORDER_LOOKUP_WAIT_SECONDS must be a whole number of at least 0, got '-5'"),
    ("LNB_ORDER_CHANGE_LOOKBACK_DAYS", "1.5", "order_flow_settings",
     "LNB_ORDER_CHANGE_LOOKBACK_DAYS must be a whole number of at least 1, got '1.5'"),
])
def test_a_malformed_whole_number_fails_the_runs_using_its_resource_on_one_line(
        monkeypatch: pytest.MonkeyPatch, variable: str, value: str, key: str, complaint: str) -> None:
    """Not Dagster's config traceback for an ``int`` field: the definitions load, the other resources
    are as usual, and a run using this one fails at its setup with the setting's line."""
    monkeypatch.setenv(variable, value)
    definitions = resources().resources

    assert _init_failure(key, definitions[key]) == f"lnb_pipeline.settings.SettingError: {complaint}"
    assert all(isinstance(resource, dg.ConfigurableResource)
               for other, resource in definitions.items() if other not in (key, "io_manager"))


def test_a_whole_number_set_in_the_launchpad_is_checked_at_setup() -> None:
    """The launchpad can set any number; the table's bounds still hold."""
    with pytest.raises(SettingError, match="^LNB_ORDER_CHANGE_LOOKBACK_DAYS must be a whole number of at least 1, "
                                           "got '0'$"):
        OrderFlowSettings(change_lookback_days=0).setup_for_execution(dg.build_init_resource_context())


def test_a_malformed_stock_changes_interval_fails_the_ticks_of_its_sensor_only() -> None:
    """The stock changes sensor keeps its default interval and says what is wrong before any tick."""
    def ticked(module: ModuleType) -> tuple[dg.SensorDefinition, object]:
        resources = {"shopify": ShopifyResource(shop_url="http://127.0.0.1:9", access_token="token"),
                     "inventory_settings": InventorySettings()}
        with dg.instance_for_test() as instance, dg.build_sensor_context(instance=instance,
                                                                          resources=resources) as context:
            try:
                return module.shopify_stock_changes_sensor, module.shopify_stock_changes_sensor(context)
            except SettingError as error:
                return module.shopify_stock_changes_sensor, error

    sensor, outcome = reloaded_under(stock_changes, {"LNB_STOCK_CHANGES_SECONDS": "4"}, ticked)
    complaint = "LNB_STOCK_CHANGES_SECONDS must be a whole number of at least 5, got '4'"
    assert sensor.minimum_interval_seconds == 60
    assert complaint in (sensor.description or "")
    assert isinstance(outcome, SettingError) and str(outcome) == complaint
