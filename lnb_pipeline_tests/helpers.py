"""Helpers several test modules share: the Shopify schemas, run results, modules built from the environment."""

from __future__ import annotations

import gzip
import importlib
import json
import os
from collections.abc import Callable
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar
from unittest import mock

import dagster as dg
from graphql import GraphQLSchema, build_client_schema, build_schema

REPO_ROOT = Path(__file__).resolve().parent.parent
REAL_SCHEMA_PATH = REPO_ROOT.parent / "shared" / "shopify-schema" / "admin_2026-04.json.gz"
"""Shopify's real Admin 2026-04 schema, beside the project; tests that need it skip without it."""
SANDBOX_SDL_PATH = REPO_ROOT / "lnb_pipeline" / "sandbox" / "shopify" / "schema.graphql"

T = TypeVar("T")


@cache
def real_schema() -> GraphQLSchema:
    """The real Shopify Admin 2026-04 schema, built from its introspection JSON."""
    with gzip.open(REAL_SCHEMA_PATH, "rt", encoding="utf-8") as stream:
        return build_client_schema(json.load(stream)["data"])


@cache
def sandbox_schema() -> GraphQLSchema:
    """The sandbox's SDL subset, built the way the sandbox builds it."""
    return build_schema(SANDBOX_SDL_PATH.read_text(encoding="utf-8"))


def asset_metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict[str, Any]:
    [materialization] = result.asset_materializations_for_node(asset)
    return {name: value.value for name, value in materialization.metadata.items()}


def check_evaluation(result: dg.ExecuteInProcessResult, name: str) -> dg.AssetCheckEvaluation:
    [evaluation] = [e for e in result.get_asset_check_evaluations() if e.check_name == name]
    return evaluation


def check_metadata(result: dg.ExecuteInProcessResult, name: str) -> dict[str, Any]:
    return {key: value.value for key, value in check_evaluation(result, name).metadata.items()}


def reloaded_under(module: ModuleType, environment: dict[str, str | None], pick: Callable[[ModuleType], T]) -> T:
    """What ``pick`` finds in ``module`` re-imported with ``environment`` (None: unset); the module is
    restored afterwards. For definitions that read settings at import, such as schedules."""
    try:
        with mock.patch.dict(os.environ):
            for name, value in environment.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            return pick(importlib.reload(module))
    finally:
        importlib.reload(module)
