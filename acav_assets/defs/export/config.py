"""Run config of the export, derived from the core's export and encoding settings (declared there)."""

import dagster as dg
from pydantic import Field

from acav_assets.core.export.cut import CutConfig
from acav_assets.core.export.shards import ExportConfig
from acav_assets.core.training.compare import TRAINING_SETS
from acav_assets.core.training.probe import ProbeConfig
from acav_assets.core.training.train import TrainConfig
from acav_assets.defs.platform.settings import config_class, config_fields, core_kwargs

__all__ = ["CuratedClipsConfig", "DownstreamReportConfig"]

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


class _DownstreamSettings(dg.Config):
    def train_config(self) -> TrainConfig:
        return TrainConfig(**core_kwargs(self, TrainConfig, _TRAIN))

    def probe_config(self) -> ProbeConfig:
        return ProbeConfig(**core_kwargs(self, ProbeConfig, _PROBE))

    def seed_list(self) -> list[int]:
        return list(range(self.seeds))

    def report_kwargs(self) -> dict:
        """The keyword arguments of :func:`acav_assets.core.stages.downstream.downstream_report`
        this config sets (the asset and ``acav bench downstream`` pass the same)."""
        return {
            "truth": self.truth or None,
            "probe_root": self.probe_root or None,
            "seeds": self.seed_list(),
            "sets": self.training_sets,
            "train": self.train_config(),
            "probe": self.probe_config(),
        }

    def check(self) -> None:
        if not self.probe_labels:
            raise ValueError("set probe_labels: a CSV name,visual_label,audio_label of held-out labelled clips")
        unknown = set(self.training_sets) - set(TRAINING_SETS)
        if unknown or not self.training_sets:
            raise ValueError(f"training_sets: choose from {', '.join(TRAINING_SETS)}; got {self.training_sets}")
        if self.seeds < 1:
            raise ValueError(f"seeds must be >= 1, got {self.seeds}")
        self.train_config()
        self.probe_config()


_TRAIN = ("steps", "batch_size", "n_frames", "size", "window_s", "visual_backbone", "hard_from", "workers")
_PROBE = ("shots",)

DownstreamReportConfig = config_class(
    "DownstreamReportConfig",
    _DownstreamSettings,
    "The held-out labelled split, the oracle's truth, and how the downstream model trains.",
    {
        "probe_labels": (
            str,
            Field(
                default="",
                description="CSV name,visual_label,audio_label of held-out clips (names relative to probe_root)",
            ),
        ),
        "probe_root": (
            str,
            Field(default="", description="folder the held-out names are relative to ('' = the landing root)"),
        ),
        "truth": (
            str,
            Field(
                default="",
                description="CSV name,matched (or a generator's ground_truth.csv): adds the oracle training set",
            ),
        ),
        "seeds": (int, Field(default=3, description="seeds 0..seeds-1: each trains every training set once")),
        "training_sets": (
            list[str],
            Field(
                default_factory=lambda: list(TRAINING_SETS),
                description="what to train on: curated, random (as many clips of the pool), all (the pool), "
                "matched (as many truly matching clips; needs truth)",
                json_schema_extra={"choices": list(TRAINING_SETS)},
            ),
        ),
    },
    config_fields(TrainConfig, _TRAIN),
    config_fields(ProbeConfig, _PROBE),
)
