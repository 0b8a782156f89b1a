"""Run config of the ingest steps, derived from the core's settings (declared once there)."""

import dagster as dg
from pydantic import Field

from acav_assets.core.media.clips import ClipConfig
from acav_assets.core.media.fingerprint import NearDuplicateConfig
from acav_assets.core.media.probe import ProbeConfig
from acav_assets.defs.platform.settings import config_class, config_fields, core_kwargs

__all__ = ["ClipsConfig", "VideosConfig"]

_PROBE = ("min_duration_s", "max_duration_s", "max_pixels")
_NEAR_DUPLICATES = ("audio_bits", "audio_match", "visual_cos", "visual_match", "window_s", "pictures")


class _VideosSettings(dg.Config):
    def probe_config(self) -> ProbeConfig:
        return ProbeConfig(**core_kwargs(self, ProbeConfig, _PROBE))

    def near_duplicate_config(self) -> NearDuplicateConfig:
        return NearDuplicateConfig(**core_kwargs(self, NearDuplicateConfig, _NEAR_DUPLICATES, prefix="nd_"))

    def check(self) -> None:
        """Raise ValueError (naming the field) for a setting that cannot work."""
        self.probe_config()
        self.near_duplicate_config()
        if self.probe_timeout_s < 0:
            raise ValueError(f"probe_timeout_s must be >= 0 (0 = none), got {self.probe_timeout_s}")
        if self.fingerprint_workers < 0:
            raise ValueError(f"fingerprint_workers must be >= 0 (0 = automatic), got {self.fingerprint_workers}")


VideosConfig = config_class(
    "VideosConfig",
    _VideosSettings,
    "Probing limits and near-duplicate detection of a batch's files.",
    config_fields(ProbeConfig, _PROBE),
    {
        "probe_timeout_s": (float, Field(default=120.0, description="time limit per file (status timeout); 0 = none")),
        "near_duplicates": (
            bool,
            Field(
                default=True,
                description="fingerprint picture and sound and mark re-uploads (re-encoded, rescaled, "
                "trimmed copies) near_duplicate",
            ),
        ),
    },
    config_fields(NearDuplicateConfig, _NEAR_DUPLICATES, prefix="nd_"),
    {
        "fingerprint_workers": (
            int,
            Field(default=0, description="fingerprinting processes (0 = up to 4, one per core)"),
        )
    },
)


class _ClipsSettings(dg.Config):
    def clip_config(self) -> ClipConfig:
        return ClipConfig(**core_kwargs(self, ClipConfig))

    def check(self) -> None:
        self.clip_config()


ClipsConfig = config_class(
    "ClipsConfig", _ClipsSettings, "How each video is cut into clip windows.", config_fields(ClipConfig)
)
