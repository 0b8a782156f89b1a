"""The downstream check: train a small AVTS-style audio-visual model on exported shards of the
curated subset and of other training sets of the same pool, and compare them on a held-out
labelled split (linear probes, audio-to-picture retrieval). No Dagster import."""

from acav_assets.core.training.compare import (
    TRAINING_SETS,
    compare_training_sets,
    export_clip_rows,
    format_comparison,
    read_truth,
    training_set_rows,
)
from acav_assets.core.training.model import AVTSModel
from acav_assets.core.training.probe import ProbeConfig, evaluate_model, load_probe_set
from acav_assets.core.training.train import TrainConfig, TrainResult, train_av_model

__all__ = [
    "AVTSModel",
    "ProbeConfig",
    "TRAINING_SETS",
    "TrainConfig",
    "TrainResult",
    "compare_training_sets",
    "evaluate_model",
    "export_clip_rows",
    "format_comparison",
    "load_probe_set",
    "read_truth",
    "train_av_model",
    "training_set_rows",
]
