"""Run config of ``clip_sync``, derived from the core's out-of-sync flag (declared there)."""

import dagster as dg
from pydantic import Field

from acav_assets.core.stages.sync import SyncFlag
from acav_assets.defs.platform.settings import config_class, config_fields, core_kwargs

__all__ = ["ClipSyncConfig"]


class _SyncSettings(dg.Config):
    def flag(self) -> SyncFlag:
        return SyncFlag(**core_kwargs(self, SyncFlag))

    def check(self) -> None:
        self.flag()
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")


ClipSyncConfig = config_class(
    "ClipSyncConfig",
    _SyncSettings,
    "When a clip counts as out of sync, and how many clips are estimated at once.",
    config_fields(SyncFlag),
    {"workers": (int, Field(default=2, description="clips estimated at a time (decoding threads)"))},
)
