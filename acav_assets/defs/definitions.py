"""The one ``Definitions`` object of the code location.

Assets, resources, checks, sensors and schedules are added here as the pipeline grows; see
``../shared/DESIGN.md`` for the flow.
"""

import dagster as dg

defs = dg.Definitions()
