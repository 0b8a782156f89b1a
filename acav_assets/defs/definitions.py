"""The one ``Definitions`` object of the code location (``workspace.yaml`` loads it)."""

import dagster as dg

from acav_assets.defs.assets import ASSETS
from acav_assets.defs.automation import (
    CURATION_JOBS,
    automation_sensor,
    fit_when_missing,
    landing_sensor,
    maintenance_job,
    maintenance_schedule,
    refit_schedule,
)
from acav_assets.defs.checks import CHECKS
from acav_assets.defs.executors import executor_from_env
from acav_assets.defs.resources import default_resources

defs = dg.Definitions(
    assets=ASSETS,
    asset_checks=CHECKS,
    jobs=[*CURATION_JOBS, maintenance_job],
    sensors=[landing_sensor, automation_sensor, fit_when_missing],
    schedules=[refit_schedule, maintenance_schedule],
    resources=default_resources(),
    executor=executor_from_env(),
)
