"""Synchronisation: every clip's sound offset against its picture; the selection leaves the clips
flagged out of sync out (``sync_filter``)."""

from acav_assets.defs.sync.assets import clip_sync
from acav_assets.defs.sync.config import ClipSyncConfig

ASSETS = [clip_sync]

__all__ = ["ASSETS", "ClipSyncConfig", "clip_sync"]
