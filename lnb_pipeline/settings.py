"""Every setting, declared once: its environment variable, type, default, meaning and accepted values.

Resource fields take their default and description from here (``setting_field``), ``defs/env.py`` binds
them to their variables from here, the schedules read their timing through ``read_setting``, and the
reference ``docs/settings.md`` is generated from here: ``python -m lnb_pipeline.settings > docs/settings.md``
(a test fails when the committed file differs).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from types import EllipsisType
from typing import Any, Generic, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dagster as dg
from pydantic import BaseModel, Field

from lnb_pipeline.clients.lenewblack import DEFAULT_BASE_URL
from lnb_pipeline.clients.lnb_time import DEFAULT_LNB_TIMEZONE
from lnb_pipeline.defs.task_logs import default_task_log_dir
from lnb_pipeline.stock_mirror import default_mirror_dir

T = TypeVar("T", str, int)
_SETTING_KEY = "lnb_setting"
"""Where ``setting_field`` records a field's setting (pydantic's ``json_schema_extra``)."""


class SettingError(ValueError):
    """A malformed setting; the message is one line naming the variable and what it accepts."""


@dataclass(frozen=True)
class Form:
    """What a value must look like: said in error messages and the reference, checked when it is read."""

    description: str
    accepts: Callable[[str], bool]


def whole_number(minimum: int, maximum: int | None = None) -> Form:
    """Digits only, within bounds: ``int()`` would also take ``1_000`` or ``-5``."""
    def accepts(text: str) -> bool:
        digits = text.strip()
        return (re.fullmatch(r"[0-9]+", digits) is not None and int(digits) >= minimum
                and (maximum is None or int(digits) <= maximum))

    bounds = f"from {minimum} to {maximum}" if maximum is not None else f"of at least {minimum}"
    return Form(f"a whole number {bounds}", accepts)


def _is_cron(text: str) -> bool:
    """Whatever Dagster's schedules accept, found by building one: its own check is not public."""
    try:
        dg.ScheduleDefinition(name="cron_check", cron_schedule=text.strip(), job_name="cron_check")
    except dg.DagsterInvalidDefinitionError:
        return False
    return True


def _is_time_zone(text: str) -> bool:
    """A zone Dagster can load, as it loads schedules' zones (``localtime`` would depend on the host)."""
    name = text.strip()
    if not name or name == "localtime":
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


CRON = Form("a cron expression of 5 fields such as `0 * * * *`", _is_cron)
TIME_ZONE = Form("an IANA time zone name such as `Europe/Paris`", _is_time_zone)


@dataclass(frozen=True)
class Section:
    """A table of the reference."""

    title: str
    intro: str
    launchpad_only: bool = False
    """Its settings are resource fields without a variable, set per run in the launchpad."""


CONNECTIONS = Section("Connections", "Where Shopify and LNB are, and how the pipeline signs in to them (see "
                      "[Credentials and access scopes](production.md#credentials-and-access-scopes)).")
STOCK = Section("Stock flow", "See [The stock flow](stock-flow.md).")
ORDERS = Section("Order flow", "See [The order flow](order-flow.md).")
ALERTS = Section("Alerts", "See [Alerts](operations.md#alerts).")
TUNING = Section(
    "Tuning fields", "The resources also have tuning fields without a variable, set per run in the launchpad's "
    "config (`resources: {lenewblack: {config: {batch_size: 100}}}`, restating the other fields as "
    "`{env: LNB_CLIENT_ID}` and so on).", launchpad_only=True)
SECTIONS = (CONNECTIONS, STOCK, ORDERS, ALERTS, TUNING)


@dataclass(frozen=True)
class Setting:
    """One setting: where it is set, what it holds and means, which values it accepts."""

    name: str
    """Its environment variable; for a tuning field, ``resource.field``."""
    type: type[str] | type[int] | type[float]
    default: str | int | float | None | EllipsisType | Callable[[], str]
    """``...``: required; a function: computed when the resource is built."""
    meaning: str
    section: Section
    shown_default: str = ""
    """The reference's default, when the default is computed or ``make run`` sets one."""
    form: Form | None = None
    """Checked when read at load (schedules' timing, whole numbers) and at resource setup."""
    secret: bool = False
    """Never shown: alerts redact its value wherever it appears."""

    @property
    def variable(self) -> str | None:
        return None if self.section.launchpad_only else self.name

    @property
    def description(self) -> str:
        """The meaning with the accepted values, as the reference and Dagster's UI show it."""
        return f"{self.meaning} ({self.form.description})" if self.form else self.meaning

    def parse(self, text: str) -> str | int:
        """``text`` as this setting's value; ``SettingError`` naming the variable when it is malformed."""
        if self.form is not None and not self.form.accepts(text):
            raise SettingError(f"{self.name} must be {self.form.description.replace('`', '')}, got {text!r}")
        return int(text) if self.type is int else text.strip()


SETTINGS: dict[str, Setting] = {setting.name: setting for setting in (
    Setting("SHOPIFY_SHOP_URL", str, ..., "`https://<shop>.myshopify.com`", CONNECTIONS,
            shown_default="(required; `make run`: `http://127.0.0.1:8701`)"),
    Setting("SHOPIFY_ACCESS_TOKEN", str, None,
            "a fixed Admin API access token (`shpat_…`) of a custom app created in the Shopify admin before 2026. "
            "Set either this or `SHOPIFY_CLIENT_ID` and `SHOPIFY_CLIENT_SECRET`", CONNECTIONS,
            shown_default="(secret; `make run`: `sandbox-token`)", secret=True),
    Setting("SHOPIFY_CLIENT_ID", str, None,
            "a Dev Dashboard app's client id: with `SHOPIFY_CLIENT_SECRET`, instead of `SHOPIFY_ACCESS_TOKEN`, the "
            "resource fetches the app's 24-hour access tokens itself (client credentials grant) and renews them",
            CONNECTIONS),
    Setting("SHOPIFY_CLIENT_SECRET", str, None, "that app's client secret", CONNECTIONS,
            shown_default="(secret)", secret=True),
    Setting("SHOPIFY_API_VERSION", str, "2026-04",
            "Admin API version, a quarterly release such as `2026-04`; Shopify supports each for 12 months",
            CONNECTIONS),
    Setting("LNB_BASE_URL", str, DEFAULT_BASE_URL, "LNB Wholesale API v2 base URL, http(s)", CONNECTIONS,
            shown_default=f"`{DEFAULT_BASE_URL}` (`make run`: the sandbox)"),
    Setting("LNB_CLIENT_ID", str, ..., "LNB API client id (client credentials grant)", CONNECTIONS,
            shown_default="(required; `make run`: `sandbox-client`)"),
    Setting("LNB_CLIENT_SECRET", str, ..., "LNB API client secret", CONNECTIONS,
            shown_default="(required, secret; `make run`: `sandbox-secret`)", secret=True),
    Setting("LNB_API_TIMEZONE", str, DEFAULT_LNB_TIMEZONE,
            "the IANA time zone of LNB's zone-less timestamps (`2026-03-02 14:05:00`) and of the datetime filters "
            "sent to LNB; Paris is assumed, LNB being a French company", CONNECTIONS),

    Setting("LNB_STOCK_KEY", str, "ean13", "how LNB knows a product: `ean13` (the Shopify barcode) or `sku`", STOCK),
    Setting("LNB_STOCK_LOCATIONS", str, "",
            "comma-separated Shopify location names or ids whose stock is summed; a name that matches nothing "
            "fails the run", STOCK, shown_default="(all active locations)"),
    Setting("LNB_STOCK_SAFETY_BUFFER", int, 0, "units held back per key; the quantity sent never drops below 0", STOCK, form=whole_number(0)),
    Setting("LNB_STOCK_UNTRACKED", str, "skip",
            "items Shopify does not track: `skip` (not exported), `as_reported` (Shopify's numbers), `fixed`", STOCK),
    Setting("LNB_STOCK_UNTRACKED_QUANTITY", int, 0, "the quantity sent for untracked items with `fixed`", STOCK,
            form=whole_number(0)),
    Setting("LNB_STOCK_MAX_INVALID_PERCENT", int, 20,
            "above this share of variants with a missing, invalid or duplicate key, the push is blocked", STOCK,
            form=whole_number(0, 100)),
    Setting("LNB_STOCK_GUARD_MAX_CHANGED_PERCENT", int, 50,
            "push guard: a push that would change the quantity of more than this share of LNB's keys is blocked "
            "until someone confirms it in run config (`ops: {lnb_stock_preview: {config: {confirm_push_guard: true}}}`); "
            "a routine push changes a few percent, the demo's first push 38", STOCK, form=whole_number(0, 100)),
    Setting("LNB_STOCK_GUARD_MAX_ZEROED_PERCENT", int, 10,
            "push guard: a push that would set to 0 more than this share of LNB's units is blocked the same way, so "
            "a broken Shopify read never wipes LNB's stock; a routine push zeroes well under 1 percent", STOCK,
            form=whole_number(0, 100)),
    Setting("SHOPIFY_STOCK_READ_MODE", str, "auto",
            "`paginated`, `bulk`, or `auto`: a bulk operation from `SHOPIFY_BULK_THRESHOLD` variants", STOCK),
    Setting("SHOPIFY_BULK_THRESHOLD", int, 250,
            "the variant count from which `auto` reads by bulk operation: beyond one page of variants, a bulk "
            "operation costs far fewer points than paging", STOCK, form=whole_number(0)),
    Setting("LNB_STOCK_CRON", str, "0 3 * * *",
            "when `inventory_sync_schedule` runs the full stock sync, in `LNB_TIMEZONE`: the nightly reconciliation; "
            "between full syncs, stock changes reach LNB through `shopify_stock_changes_sensor`", STOCK,
            form=CRON),
    Setting("LNB_TIMEZONE", str, "UTC", "the time zone of both schedules' cron", STOCK, form=TIME_ZONE),
    Setting("LNB_TASK_LOG_DIR", str, default_task_log_dir, "where task log files go (both flows)", STOCK,
            shown_default="`$DAGSTER_HOME/task_logs` (`./task_logs` without `DAGSTER_HOME`)"),
    Setting("LNB_STOCK_CHANGES_SECONDS", int, 60,
            "how often `shopify_stock_changes_sensor` asks Shopify whether any stock level changed since the last "
            "push (a few cost points a location), launching `inventory_changes_sync` when one did; a change reaches "
            "LNB about this long plus a run's duration later", STOCK, form=whole_number(5)),
    Setting("LNB_STOCK_CHANGES_OVERLAP_SECONDS", int, 15,
            "each read of changed stock levels starts this long before the previous one did, so a change that "
            "Shopify's search index or a clock difference showed late is still read; re-read changes cost about 2 "
            "points each and are not pushed again. A change shown later than this is caught by the nightly full "
            "sync, which reports it", STOCK, form=whole_number(0)),
    Setting("LNB_STOCK_STATE_DIR", str, default_mirror_dir,
            "where the incremental stock path keeps its picture of Shopify's stock, what LNB was last sent and "
            "its cursor (written by every full and incremental push)", STOCK,
            shown_default="`$DAGSTER_HOME/stock_mirror` (`./stock_mirror` without `DAGSTER_HOME`)"),

    Setting("LNB_ORDER_EXPORT_STATUS", str, "confirmed", "LNB status of the orders to export", ORDERS),
    Setting("LNB_ORDER_EXPORTED_STATUS", str, "invoicing", "LNB status set once the order is in Shopify", ORDERS),
    Setting("SHOPIFY_CUSTOMER_MATCH", str, "metafield",
            "how a retailer reference finds its Shopify buyer: `metafield` (a customer's unique metafield, via "
            "`customerByIdentifier`) or `company` (Shopify Plus B2B: the company whose `externalId` is the "
            "reference, its first location)", ORDERS),
    Setting("SHOPIFY_CUSTOMER_METAFIELD", str, "lenewblack.retailer_reference",
            "namespace.key of that customer metafield (its definition must have the unique-values capability)",
            ORDERS),
    Setting("SHOPIFY_ORDER_CURRENCIES", str, "",
            "currencies accepted besides the shop's, each with its exchange rate to the shop currency, "
            "comma-separated: `USD:0.92,GBP:1.17`; any other currency blocks the order", ORDERS,
            shown_default="(none)"),
    Setting("SHOPIFY_ORDER_METAFIELD", str, "lenewblack.order_reference",
            "namespace.key of the order metafield definition of type `id` that carries the LNB reference: the "
            "exactly-once look-up (without it, the weaker search mode)", ORDERS),
    Setting("SHOPIFY_ORDER_FINANCIAL_STATUS", str, "PENDING",
            "`financialStatus` of created orders: wholesale orders are invoiced later, so they start unpaid", ORDERS),
    Setting("SHOPIFY_ORDER_INVENTORY_BEHAVIOUR", str, "DECREMENT_IGNORING_POLICY",
            "the order takes its stock in Shopify (so the next stock push to LNB reflects it) without being refused "
            "for lack of stock, since LNB already confirmed it; `BYPASS` leaves stock alone, "
            "`DECREMENT_OBEYING_POLICY` refuses an order Shopify cannot cover", ORDERS),
    Setting("SHOPIFY_ORDER_TAGS", str, "lenewblack,wholesale",
            "tags on created orders, comma-separated (plus `lnb-hash:<fingerprint>`)", ORDERS),
    Setting("SHOPIFY_ORDER_LOOKUP_WAIT_SECONDS", int, 5,
            "weaker (search) mode only: pause before looking up creates whose answer was lost, as Shopify's search "
            "index lags", ORDERS, form=whole_number(0)),
    Setting("LNB_ORDER_CHANGE_LOOKBACK_DAYS", int, 30,
            "how far back exported orders are checked for later edits in LNB", ORDERS, form=whole_number(1)),
    Setting("LNB_ORDERS_CRON", str, "0 * * * *", "when `orders_export_schedule` runs, in `LNB_TIMEZONE`", ORDERS,
            form=CRON),
    Setting("LNB_ORDERS_SENSOR_SECONDS", int, 60,
            "how often `lnb_orders_sensor` polls LNB for orders entering the export status, in seconds; Dagster's "
            "daemon checks sensors every 5 seconds at best", ORDERS, form=whole_number(5)),

    Setting("LNB_ALERT_WEBHOOK_URL", str, "",
            "where alerts are POSTed as JSON (a chat workflow, an incident tool, your own endpoint); treat it as a "
            "secret if it carries a key", ALERTS, shown_default="(none: alerts off)"),
    Setting("LNB_DAGSTER_URL", str, "http://127.0.0.1:3000",
            "the Dagster UI's address as operators reach it, for the run links in alerts", ALERTS),

    Setting("lenewblack.batch_size", int, 500, "stock rows per `/multi/inventory` call", TUNING),
    Setting("lenewblack.timeout_seconds", float, 60.0, "read timeout of one call, in seconds", TUNING),
    Setting("lenewblack.max_retries", int, 3, "retries of a transient failure, after the first try", TUNING),
    Setting("shopify.timeout_seconds", float, 60.0, "read timeout of one request, in seconds", TUNING),
    Setting("shopify.max_attempts", int, 4, "tries per request on transient failures, the first included", TUNING),
)}
SECRET_VARIABLES = tuple(setting.name for setting in SETTINGS.values() if setting.secret)
"""Settings whose values must never leave in an alert, whatever error message carried them."""


def setting_field(name: str) -> Any:
    """A resource field declared by setting ``name``: its default and description, and the link
    ``settings_of`` follows to bind it to its variable."""
    setting = SETTINGS[name]
    description = f"{setting.variable}: {setting.description}" if setting.variable else setting.description
    extra = {_SETTING_KEY: name}
    if callable(setting.default):
        return Field(default_factory=setting.default, description=description, json_schema_extra=extra)
    return Field(default=setting.default, description=description, json_schema_extra=extra)


def settings_of(model: type[BaseModel]) -> dict[str, Setting]:
    """``{field: setting}`` for each field of ``model`` declared with ``setting_field``."""
    return {field: SETTINGS[extra[_SETTING_KEY]] for field, info in model.model_fields.items()
            if isinstance(extra := info.json_schema_extra, dict) and _SETTING_KEY in extra}


def check_values(model: BaseModel) -> None:
    """``SettingError`` for the first field its setting's form refuses: the launchpad can set any value."""
    for field, setting in settings_of(type(model)).items():
        if setting.form is not None:
            setting.parse(str(getattr(model, field)))


@dataclass(frozen=True)
class Reading(Generic[T]):
    """A setting read at load: its value, or its default and the one line saying why."""

    value: T
    problem: str = ""


def read_setting(name: str, kind: type[T]) -> Reading[T]:
    """Setting ``name`` from the environment, its default when unset; never raises, so a malformed value
    cannot stop the code location from loading: what uses it reports ``problem`` instead."""
    setting = SETTINGS[name]
    default = kind(setting.default)  # type: ignore[arg-type]
    text = os.environ.get(name)
    if text is None:
        return Reading(default)
    try:
        return Reading(kind(setting.parse(text)))
    except SettingError as error:
        return Reading(default, str(error))


def raise_problems(*readings: Reading[Any]) -> None:
    """Fail what uses these readings, naming each malformed variable in one line."""
    problems = [reading.problem for reading in readings if reading.problem]
    if problems:
        raise SettingError("; ".join(problems))


# --- the reference ------------------------------------------------------------------------------

INTRO = """\
# Settings

Generated from `lnb_pipeline/settings.py` by `python -m lnb_pipeline.settings > docs/settings.md`:
edit the table there, not this file (a test compares them).

Everything comes from the environment. `make run` points them at the sandbox unless you set them.

Secrets are read through `dg.EnvVar`, so they are resolved at run time and never stored in
Dagster's run config. A missing or malformed setting fails the run at resource setup, before any API
call, with a message naming the variable (for Shopify that includes giving neither, both, or only
half of the two ways in). LNB's access token travels in the URL (`access_token=`); the client masks
it in every log line, exception and metadata value. Neither client logs or raises a client secret or
an access token it fetched.

The schedules' and the sensor's timing (`LNB_STOCK_CRON`, `LNB_ORDERS_CRON`, `LNB_TIMEZONE`,
`LNB_ORDERS_SENSOR_SECONDS`) is read when the code location loads. A malformed value never stops it
from loading: the schedule or sensor using it keeps its default timing, its description says what is
wrong, and each of its ticks fails with one line naming the variable and the values it accepts.
Everything else runs as usual. Fix the variable, then reload the code location.
"""
OUTRO = """\
## `make` variables

`SHOPIFY_PORT` (8701), `LNB_PORT` (8702), `DAGSTER_PORT` (3000), `SCENARIO`
(`demo`; also `scale:N` or a scenario file), `DAGSTER_HOME` (`.dagster_home`), `DAGSTER_PROFILE`
(`local`: SQLite; `production` installs the PostgreSQL profile, see
[Going to production](production.md)), `PYTHON` (the first of
python3.13/3.12/3.11/python3 that is 3.11+), `PYTEST_ARGS` (extra pytest arguments for `make test`),
`STOCK_MOVEMENT` (0: random Shopify stock level changes a minute in the sandbox, to watch stock
changes flow to LNB), `DRY_RUN` (`make free-pool-slots` only lists). `make sandbox` runs only the
sandbox.
"""


def _shown_default(setting: Setting) -> str:
    if setting.shown_default:
        return setting.shown_default
    if setting.default is ...:
        return "(required)"
    if setting.default in (None, ""):
        return "(none)"
    return f"`{setting.default}`"


def reference() -> str:
    """``docs/settings.md``: the intro, then one table per section."""
    parts = [INTRO]
    for section in SECTIONS:
        rows = [f"| `{setting.name}` | {_shown_default(setting)} | {setting.description} |"
                for setting in SETTINGS.values() if setting.section is section]
        first_column = "resource field" if section.launchpad_only else "variable"
        parts.append(f"## {section.title}\n\n{section.intro}\n\n| {first_column} | default | meaning |\n"
                     "| --- | --- | --- |\n" + "\n".join(rows) + "\n")
    return "\n".join([*parts, OUTRO])


if __name__ == "__main__":
    print(reference(), end="")
