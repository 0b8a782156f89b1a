"""Stage ``clip_sync``: every clip's sound offset against its picture, and whether it is out of sync.

One row per clip of the batch (:mod:`acav_assets.core.sync`): ``offset_s`` (> 0: the sound comes
late) and ``sync_score`` (high: in sync), both null when the clip shows no usable events (no
sound, a steady sound, a still picture): *unknown*, never "out of sync". ``out_of_sync`` flags a
known estimate at least ``min_offset_s`` from zero whose score is below ``max_score``; the
selection leaves flagged clips out unless told to keep them (``SelectionParams.sync_filter``). A
clip whose file cannot be read (gone, damaged, now a link out of the landing area) is unknown,
with the reason.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from acav_assets.core.media.decode import DecodeError
from acav_assets.core.media.probe import resolves_inside
from acav_assets.core.settings import setting
from acav_assets.core.sync import OnsetMotionEstimator, SyncEstimate, SyncEstimator
from acav_assets.core.warehouse.tables import Warehouse

__all__ = ["OFFSET_BINS", "SyncFlag", "offset_histogram", "out_of_sync_clips", "sync_rows"]


@dataclass(frozen=True)
class SyncFlag:
    """When a clip counts as out of sync (measured on the sync-events corpus, docs/sync.md: no
    in-sync clip flagged, 30 of 42 shifted clips flagged, no event-less clip flagged; a score
    between 0.4 and 0.5 is a weak peak, which a regular rhythm of unrelated events can give)."""

    min_offset_s: float = setting(0.2, "an estimated offset at least this far from 0 (seconds) can flag a clip")
    max_score: float = setting(0.4, "... when the clip's sync_score is below this (a clear peak away from 0)")

    def __post_init__(self):
        if self.min_offset_s <= 0 or not 0 < self.max_score <= 1:
            raise ValueError("min_offset_s must be > 0 and max_score in (0, 1]")

    def flags(self, e: SyncEstimate) -> bool | None:
        """True or False for a known estimate, None for an unknown one."""
        if not e.known:
            return None
        return abs(e.offset_s) >= self.min_offset_s and e.sync_score < self.max_score


def _estimate(estimator: SyncEstimator, path: str, start_s: float, end_s: float) -> SyncEstimate:
    try:
        return estimator.estimate(path, start_s, end_s)
    except (DecodeError, OSError, ValueError) as exc:
        return SyncEstimate(None, None, 0, estimator.method, f"not decoded: {str(exc).splitlines()[0][:200]}")


def sync_rows(
    clips: list[dict],
    landing_root: str | os.PathLike,
    *,
    estimator: SyncEstimator | None = None,
    flag: SyncFlag = SyncFlag(),
    workers: int = 2,
    progress: Callable[[int, int], None] | None = None,
    allowed_roots: tuple[str, ...] = (),
) -> list[dict]:
    """``clip_sync`` rows for ``clips`` (rows of the ``clips`` table), estimated ``workers`` clips
    at a time (decoding releases the GIL). A file that now resolves outside ``landing_root`` and
    ``allowed_roots`` is not opened: its clip is unknown, with the reason."""
    estimator = estimator or OnsetMotionEstimator()
    root = Path(landing_root)

    def one(c: dict) -> SyncEstimate:
        path = str(root / c["path"])
        if not resolves_inside(path, (str(root), *allowed_roots)):
            return SyncEstimate(None, None, 0, estimator.method, "outside_landing: not read")
        return _estimate(estimator, path, c["start_s"], c["end_s"])

    rows = []
    with ThreadPoolExecutor(max(1, workers)) as pool:
        for i, (c, e) in enumerate(zip(clips, pool.map(one, clips)), 1):
            rows.append(
                {
                    "batch": c["batch"],
                    "clip_id": c["clip_id"],
                    "offset_s": e.offset_s,
                    "sync_score": e.sync_score,
                    "n_events": e.n_events,
                    "method": e.method,
                    "reason": e.reason,
                    "out_of_sync": flag.flags(e),
                }
            )
            if progress is not None:
                progress(i, len(clips))
    return rows


#: Offset bins of the per-batch histogram the UI shows (seconds; the sound late is > 0).
OFFSET_BINS = (-3.0, -1.0, -0.4, -0.1, 0.1, 0.4, 1.0, 3.0)


def offset_histogram(rows: list[dict]) -> dict[str, int]:
    """Clips per offset bin (``"-0.40..-0.10"`` ...), and ``"unknown"``: what the UI plots."""
    known = np.array([r["offset_s"] for r in rows if r["offset_s"] is not None], float)
    counts, edges = np.histogram(np.clip(known, OFFSET_BINS[0], OFFSET_BINS[-1]), bins=OFFSET_BINS)
    out = {f"{lo:+.2f}..{hi:+.2f} s": int(n) for lo, hi, n in zip(edges[:-1], edges[1:], counts)}
    out["unknown"] = sum(r["offset_s"] is None for r in rows)
    return out


def out_of_sync_clips(wh: Warehouse, batches: list[str] | None = None) -> set[str]:
    """The clips the ``clip_sync`` table flags out of sync (of ``batches``, or of every batch);
    none when the table does not exist yet."""
    scan = wh.scan("clip_sync").filter(pl.col("out_of_sync").fill_null(False))
    if batches is not None:
        scan = scan.filter(pl.col("batch").is_in(batches))
    return set(scan.select("clip_id").collect()["clip_id"].to_list())
