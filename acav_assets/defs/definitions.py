"""The one ``Definitions`` object of the code location (``workspace.yaml`` loads it)."""

import dagster as dg

from acav_assets.defs.assets import ASSETS
from acav_assets.defs.checks import CHECKS
from acav_assets.defs.resources import default_resources

defs = dg.Definitions(assets=ASSETS, asset_checks=CHECKS, resources=default_resources())
