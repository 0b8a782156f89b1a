"""Run config of the export, derived from the core's export and encoding settings (declared there)."""

import dagster as dg
from pydantic import Field

from acav_assets.core.export.cut import CutConfig
from acav_assets.core.export.shards import ExportConfig
from acav_assets.defs.platform.settings import config_class, config_fields, core_kwargs

__all__ = ["CuratedClipsConfig"]

_SHARDS = ("shard_max_clips", "workers")
_CUT = ("codec", "crf", "preset", "fps", "short_side", "sample_rate", "with_arrays")


class _ExportSettings(dg.Config):
    def export_config(self) -> ExportConfig:
        """The core export settings (one place for the asset and ``acav export``)."""
        return ExportConfig(
            shard_max_bytes=self.shard_max_mb * 1_000_000,
            cut=CutConfig(**core_kwargs(self, CutConfig, _CUT)),
            **core_kwargs(self, ExportConfig, _SHARDS),
        )

    def check(self) -> None:
        self.export_config()


CuratedClipsConfig = config_class(
    "CuratedClipsConfig",
    _ExportSettings,
    "Where the export goes, which subset, how shards are cut and clips encoded.",
    {
        "out_dir": (
            str,
            Field(
                default="", description="export folder ('' = $ACAV_EXPORT_DIR, else 'export' next to a local warehouse)"
            ),
        ),
        "as_of": (
            str,
            Field(default="", description="export curated_subset as of this Delta version or ISO time ('' = now)"),
        ),
        "shard_max_mb": (int, Field(default=1000, description="a shard is closed once it reaches this size")),
    },
    config_fields(ExportConfig, _SHARDS),
    config_fields(CutConfig, _CUT),
)
