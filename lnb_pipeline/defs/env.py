"""Resources, schedules and sensors configured from the environment, as ``lnb_pipeline.settings`` declares it."""

from __future__ import annotations

import os
from typing import Any, NoReturn, TypeVar

import dagster as dg

from lnb_pipeline.settings import Reading, SettingError, settings_of

R = TypeVar("R", bound=dg.ConfigurableResource)


def from_environment(resource_type: type[R]) -> R:
    """``resource_type`` with its fields bound to their variables as ``dg.EnvVar``, resolved when a run
    starts (so secrets never enter run config): required ones always, so an unset one fails the run
    naming it; the others only where set, so defaults stay defaults.

    Raises ``SettingError`` when a whole-number variable is not one: Dagster would refuse its ``int``
    field with a config traceback.
    """
    values: dict[str, Any] = {}
    for field, setting in settings_of(resource_type).items():
        variable = setting.variable
        if variable is None or (setting.default is not ... and variable not in os.environ):
            continue
        if setting.type is int:
            setting.parse(os.environ[variable])
            values[field] = dg.EnvVar.int(variable)
        else:
            values[field] = dg.EnvVar(variable)
    return resource_type(**values)


def for_definitions(resource_type: type[R]) -> R | dg.ResourceDefinition:
    """``from_environment(resource_type)``, or a stand-in whose setup fails with its ``SettingError``:
    the code location still loads, and only the runs and ticks that use the resource fail."""
    try:
        return from_environment(resource_type)
    except SettingError as error:
        problem = str(error)

    def refuse(_: dg.InitResourceContext) -> NoReturn:
        raise SettingError(problem)

    return dg.ResourceDefinition(resource_fn=refuse, description=problem)


def described(description: str, *readings: Reading[Any]) -> str:
    """``description``, and what is wrong with ``readings``: the UI shows it before any tick does."""
    problems = [reading.problem for reading in readings if reading.problem]
    if not problems:
        return description
    return (f"{description}\n\nMISCONFIGURED: {'; '.join(problems)}. Until that is fixed, it keeps its default "
            "timing and every tick fails.")

