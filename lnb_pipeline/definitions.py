"""The code location Dagster loads: everything under ``lnb_pipeline/defs``."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from lnb_pipeline.defs.pool_waits import in_process_executor_naming_pool_holders


@dg.definitions
def defs() -> dg.Definitions:
    """Runs launched from the UI's Materialize button execute in one process, as the flows' jobs do:
    a process per step would start Python and import the project again for each of them."""
    return dg.Definitions.merge(
        dg.load_from_defs_folder(path_within_project=Path(__file__).parent),
        dg.Definitions(executor=in_process_executor_naming_pool_holders),
    )
