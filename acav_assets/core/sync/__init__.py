"""Audio-visual synchronisation: how far a clip's sound is shifted against its picture.

``from acav_assets.core.sync import OnsetMotionEstimator``; :class:`SyncEstimator` is the
interface; :mod:`acav_assets.core.sync.avts` implements it with a trained AVTS-style model
(measured at chance so far: docs/sync.md).
"""

from acav_assets.core.sync.base import SyncEstimate, SyncEstimator
from acav_assets.core.sync.onset_motion import (
    METHOD,
    OnsetMotionEstimator,
    SyncAnalysis,
    SyncConfig,
    analyse_signals,
    estimate_from_signals,
)
from acav_assets.core.sync.signals import SyncSignals, decode_sync_signals, motion_energy

__all__ = [
    "METHOD",
    "OnsetMotionEstimator",
    "SyncAnalysis",
    "SyncConfig",
    "SyncEstimate",
    "SyncEstimator",
    "SyncSignals",
    "analyse_signals",
    "decode_sync_signals",
    "estimate_from_signals",
    "motion_energy",
]
