"""Export: the curated subset as training data (WebDataset shards and a manifest), and the downstream
check of what a model trained on it learns."""

from acav_assets.defs.export.assets import curated_clips, default_export_dir, downstream_report
from acav_assets.defs.export.config import CuratedClipsConfig, DownstreamReportConfig

ASSETS = [curated_clips, downstream_report]

__all__ = [
    "ASSETS",
    "CuratedClipsConfig",
    "DownstreamReportConfig",
    "curated_clips",
    "default_export_dir",
    "downstream_report",
]
