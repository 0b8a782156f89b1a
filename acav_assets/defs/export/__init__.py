"""Export: the curated subset as training data (WebDataset shards and a manifest)."""

from acav_assets.defs.export.assets import curated_clips, default_export_dir
from acav_assets.defs.export.config import CuratedClipsConfig

ASSETS = [curated_clips]

__all__ = ["ASSETS", "CuratedClipsConfig", "curated_clips", "default_export_dir"]
