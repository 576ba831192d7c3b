"""Problems a successful run left behind, as run tags: the runs list shows them beside its "Success".

A run that left orders blocked, items rejected by LNB or variants with a bad key still succeeds
(those checks fail without blocking anything), so the runs list, the run page and the Overview's
timeline show it green.
``lnb_run_problems`` tags each run that succeeded with a failed check, whatever its severity:

- ``problems``: what is wrong, counted, in the words of the checks' descriptions, such as
  ``10 orders blocked · 2 items rejected by LNB``;
- ``problems.checks``: the checks that failed, by name, as the asset pages list them.

A check's count is the first number of its failure description, which states it first ("10 orders
blocked now…", "LNB rejected 2 of the 40 keys sent…"). A check not counted here shows by name.
"""

from __future__ import annotations

import re

import dagster as dg

PROBLEMS_TAG = "problems"
"""Short and unprefixed: the runs list cuts tags to their first thirty-odd characters, which should be the words."""
FAILED_CHECKS_TAG = "problems.checks"
"""Sorts after ``PROBLEMS_TAG``, so the runs list shows the problems first."""
SEPARATOR = " · "
BLOCKED_CHECK = "no_order_blocked"

COUNTED_AS: dict[str, tuple[str, str] | None] = {
    BLOCKED_CHECK: ("order", "blocked"),
    "order_lines_have_codes": None,
    "order_lines_match_shopify_variants": None,
    "retailer_references_valid": None,
    "no_order_rejected_by_shopify": ("order", "rejected by Shopify"),
    "no_export_failures": ("order", "failed to export"),
    "every_exported_order_unique_in_shopify": ("order", "not exactly once in Shopify"),
    "no_order_changed_after_export": ("order", "changed in LNB after export"),
    "keys_present": ("variant", "with a bad key"),
    "ean13_check_digits_valid": ("variant", "with a bad key"),
    "keys_unique": ("variant", "with a bad key"),
    "every_push_item_accepted": ("item", "rejected by LNB"),
    "full_sync_found_nothing_to_correct": ("key", "corrected by the full sync"),
    "every_listed_order_is_a_test_order": ("order", "not sent as a test order"),
}
"""Per check: the noun its count counts and what is wrong with them; checks with the same phrase add
up (a variant has one exclusion reason). None: a breakdown of ``no_order_blocked`` by reason, named
only in ``problems.checks`` when that check failed too, so a blocked order counts once."""

FIRST_NUMBER = re.compile(r"\d+")


def _latest_evaluations(instance: dg.DagsterInstance, run_id: str) -> list[dg.AssetCheckEvaluation]:
    """Each check's last evaluation in the run (a retried step evaluates its checks again)."""
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION).records
    latest: dict[dg.AssetCheckKey, dg.AssetCheckEvaluation] = {}
    for record in records:
        event = record.event_log_entry.dagster_event
        if event is not None:
            evaluation = event.asset_check_evaluation_data
            latest[evaluation.asset_check_key] = evaluation
    return list(latest.values())


def problems(failed: list[dg.AssetCheckEvaluation]) -> str:
    """``10 orders blocked · 2 items rejected by LNB``: each counted problem, then the checks counted nowhere."""
    names = {evaluation.check_name for evaluation in failed}
    counts: dict[tuple[str, str], int] = {}
    uncounted: list[str] = []
    for evaluation in failed:
        name = evaluation.check_name
        if name in COUNTED_AS and COUNTED_AS[name] is None and BLOCKED_CHECK in names:
            continue
        phrase = COUNTED_AS.get(name)
        number = FIRST_NUMBER.search(evaluation.description or "")
        if phrase is None or number is None:
            uncounted.append(f"{name} failed")
        else:
            counts[phrase] = counts.get(phrase, 0) + int(number.group())
    counted = [f"{count} {noun}{'' if count == 1 else 's'} {what}" for (noun, what), count in counts.items()]
    return SEPARATOR.join([*counted, *uncounted])


@dg.run_status_sensor(
    name="lnb_run_problems",
    run_status=dg.DagsterRunStatus.SUCCESS,
    minimum_interval_seconds=15,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Tags each run that succeeded with a failed check, so the runs list shows what it left wrong: "
                f"{PROBLEMS_TAG} (such as \"10 orders blocked · 2 items rejected by LNB\") and {FAILED_CHECKS_TAG} "
                "(the checks to open on the asset pages).",
)
def lnb_run_problems(context: dg.RunStatusSensorContext) -> dg.SkipReason:
    """The tick says what it tagged; the warning also reaches the terminal of ``make run``."""
    run = context.dagster_run
    failed = sorted((evaluation for evaluation in _latest_evaluations(context.instance, run.run_id)
                     if not evaluation.passed), key=lambda evaluation: evaluation.check_name)
    if not failed:
        return dg.SkipReason(f"Run {run.run_id} ({run.job_name}): every check passed")
    summary = problems(failed)
    context.instance.add_run_tags(run.run_id, {
        PROBLEMS_TAG: summary,
        FAILED_CHECKS_TAG: ", ".join(dict.fromkeys(evaluation.check_name for evaluation in failed)),
    })
    context.log.warning(f"Run {run.run_id} ({run.job_name}) succeeded with problems: {summary}")
    return dg.SkipReason(f"Tagged run {run.run_id} ({run.job_name}): {summary}")
