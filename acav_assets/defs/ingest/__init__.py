"""Ingest: a landing batch's files probed and given a status, copies set aside, cut into clips;
the landing sensor that starts it."""

from acav_assets.defs.ingest.assets import clips, videos
from acav_assets.defs.ingest.checks import batch_files_mostly_ok, near_duplicates_point_at_kept_copies
from acav_assets.defs.ingest.config import ClipsConfig, VideosConfig
from acav_assets.defs.ingest.sensors import ingest_and_select_job, ingest_job, landing_sensor

ASSETS = [videos, clips]
CHECKS = [near_duplicates_point_at_kept_copies, batch_files_mostly_ok]
JOBS = [ingest_job, ingest_and_select_job]
SENSORS = [landing_sensor]

__all__ = [
    "ASSETS",
    "CHECKS",
    "ClipsConfig",
    "JOBS",
    "SENSORS",
    "VideosConfig",
    "clips",
    "ingest_and_select_job",
    "ingest_job",
    "landing_sensor",
    "videos",
]
