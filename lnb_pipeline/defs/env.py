"""Bind resource fields to environment variables where they are set, so defaults stay defaults."""

from __future__ import annotations

import os
from typing import Any

import dagster as dg


def fields_from_env(variables: dict[str, tuple[str, type]]) -> dict[str, Any]:
    """``{field: dg.EnvVar(...)}`` for each ``field: (VARIABLE, type)`` whose variable is set.

    Values resolve when a run starts, so a malformed number fails that run naming the variable
    instead of breaking the whole code location at load.
    """
    values: dict[str, Any] = {}
    for field, (variable, kind) in variables.items():
        if variable in os.environ:
            values[field] = dg.EnvVar.int(variable) if kind is int else dg.EnvVar(variable)
    return values
