"""Reading what a Dagster run recorded: asset metadata and asset check evaluations."""

from __future__ import annotations

from typing import Any

import dagster as dg


def asset_metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict[str, Any]:
    [materialization] = result.asset_materializations_for_node(asset)
    return {name: value.value for name, value in materialization.metadata.items()}


def check_evaluation(result: dg.ExecuteInProcessResult, name: str) -> dg.AssetCheckEvaluation:
    [evaluation] = [e for e in result.get_asset_check_evaluations() if e.check_name == name]
    return evaluation


def check_metadata(result: dg.ExecuteInProcessResult, name: str) -> dict[str, Any]:
    return {key: value.value for key, value in check_evaluation(result, name).metadata.items()}
