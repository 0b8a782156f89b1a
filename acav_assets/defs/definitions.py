"""The one ``Definitions`` object of the code location (``workspace.yaml`` and ``dg dev`` load
it): every domain's definitions merged, with the resources and executor of the environment.

Domains (``defs/<domain>/``): ``ingest`` (files, statuses, clips, the landing sensor),
``features`` (embeddings, centroids, assignments, when to fit), ``sync`` (every clip's sound offset
against its picture), ``curation`` (the selection, its
lineage and checks), ``export`` (training shards), ``maintenance`` (compaction and vacuum); the
``platform`` they share (resources, partitions, catalog, versions, settings, steps).
"""

import dagster as dg

from acav_assets.defs import curation, export, features, ingest, maintenance, sync
from acav_assets.defs.platform.automation import automation_sensor
from acav_assets.defs.platform.catalog import catalogued
from acav_assets.defs.platform.executors import executor_from_env
from acav_assets.defs.platform.resources import default_resources

__all__ = ["ASSETS", "CHECKS", "CURATION_JOBS", "PER_BATCH", "defs"]

#: Every asset, with the catalog's attributes (owners, table, columns, source link).
ASSETS = catalogued([*ingest.ASSETS, *features.ASSETS, *sync.ASSETS, *curation.ASSETS, *export.ASSETS])
CHECKS = [*ingest.CHECKS, *features.CHECKS, *curation.CHECKS]
#: The jobs ``acav curate`` launches, by the assets each materializes (the daemon's ingest and
#: refit runs are the same jobs).
CURATION_JOBS = [ingest.ingest_job, features.refit_job, features.assign_job, curation.select_job]
#: The assets of a batch's ingest, up to its embeddings and sync estimates.
PER_BATCH = [ingest.videos, ingest.clips, features.clip_embeddings, sync.clip_sync]

defs = dg.Definitions(
    assets=ASSETS,
    asset_checks=CHECKS,
    jobs=[*CURATION_JOBS, ingest.ingest_and_select_job, *maintenance.JOBS],
    sensors=[*ingest.SENSORS, *features.SENSORS, automation_sensor],
    schedules=[*features.SCHEDULES, *maintenance.SCHEDULES],
    resources=default_resources(),
    executor=executor_from_env(),
)
