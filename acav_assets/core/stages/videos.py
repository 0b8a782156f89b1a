"""Stage ``videos``: one row per input file of a batch, whatever happened to it.

:func:`probe_rows` probes every file of the batch; :func:`ingest_batch` then sets aside the
exact copies of other batches' videos and the near-duplicates
(:mod:`acav_assets.core.stages.near_duplicates`), and writes the batch's ``video_fingerprints``
and ``videos`` rows, from the lookups to the writes under the warehouse's lookup lock.

Paths in the tables are relative to the landing root (``batch_003/x.mp4``), so a warehouse stays
valid when the landing area is mounted elsewhere. ``landing_root`` is a local folder: a remote
landing area is staged first (:mod:`acav_assets.core.media.landing`).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import polars as pl

from acav_assets.core.media.fingerprint import NearDuplicateConfig
from acav_assets.core.media.landing import batch_dir
from acav_assets.core.media.probe import ProbeConfig, list_media_files, probe_files
from acav_assets.core.stages.near_duplicates import fingerprint_rows, local_files, mark_near_duplicates
from acav_assets.core.statuses import VideoStatus
from acav_assets.core.warehouse.fingerprint_index import FingerprintIndex, lookup_lock
from acav_assets.core.warehouse.tables import Warehouse

__all__ = ["IngestedBatch", "exact_copies_elsewhere", "ingest_batch", "mark_known_duplicates", "probe_rows"]


def mark_known_duplicates(rows: list[dict], known: dict[str, str]) -> list[dict]:
    """Mark every row whose content an earlier batch already holds (``known``: video id -> path
    there) as a duplicate of that copy, as probing with ``known`` would have."""
    for row in rows:
        first = known.get(row["video_id"])
        if first is None or row["video_id"].startswith("p"):  # "p…": a path-derived id, no content
            continue
        if row["status"] == VideoStatus.DUPLICATE and row.get("duplicate_of") == first:
            continue
        prior = row["error"] if row["status"] == VideoStatus.DUPLICATE else None
        prior_error = (
            f" (that copy: {row['status']})" if row["status"] not in (VideoStatus.OK, VideoStatus.DUPLICATE) else ""
        )
        row["status"], row["duplicate_of"] = VideoStatus.DUPLICATE, first
        row["error"] = f"same content as {first}{prior_error}" if prior is None else f"same content as {first}"
    return rows


def probe_rows(
    landing_root: str | os.PathLike,
    batch: str,
    config: ProbeConfig = ProbeConfig(),
    known: dict[str, str] | None = None,
    timeout_s: float | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[dict]:
    """One ``videos`` row per input file of the batch (every file, whatever its status);
    ``timeout_s`` bounds the time spent on any one file (status ``timeout``). Files that
    resolve outside ``landing_root`` and ``config.allowed_roots`` are never opened (status
    ``outside_landing``)."""
    folder = batch_dir(landing_root, batch)
    if not folder.is_dir():
        raise ValueError(f"batch folder {folder} does not exist")
    root = Path(landing_root).resolve()
    # a link may point anywhere: only files that resolve inside the landing area (or a folder
    # the user allowed) are read; the others get status outside_landing
    config = replace(config, allowed_roots=(str(root), *config.allowed_roots))
    records = probe_files(
        list_media_files(folder), config, known=known, root=root, timeout_s=timeout_s, progress=progress
    )
    rows = []
    for r in records:
        row = r.to_row()
        row["path"] = os.path.relpath(r.path, root)
        row["batch"] = batch
        rows.append(row)
    return rows


def exact_copies_elsewhere(wh: Warehouse, batch: str, rows: list[dict]) -> dict[str, str]:
    """Video id -> path of the ``ok`` videos of other batches with the content of ``rows``
    (looked up for these ids only: a dict of every earlier video would not fit at 100M clips)."""
    ids = sorted({r["video_id"] for r in rows})
    return {
        r["video_id"]: r["path"]
        for r in wh.scan("videos")
        .filter((pl.col("batch") != batch) & (pl.col("status") == VideoStatus.OK) & pl.col("video_id").is_in(ids))
        .select("video_id", "path")
        .collect()
        .iter_rows(named=True)
    }


@dataclass
class IngestedBatch:
    """What :func:`ingest_batch` wrote: the batch's ``videos`` rows, the near-duplicate pairs
    found (kept path, duplicate path, evidence), the rows written, and how many kept videos the
    fingerprint index holds afterwards (None: near-duplicates off)."""

    rows: list[dict]
    pairs: list[dict]
    written: int
    indexed_videos: int | None


def ingest_batch(
    wh: Warehouse,
    landing_root: str | os.PathLike,
    batch: str,
    rows: list[dict],
    near_duplicates: NearDuplicateConfig | None,
    *,
    fingerprint_workers: int = 1,
    allowed_roots: tuple[str, ...] = (),
    fetch: Callable[[str, Path], Path | None] | None = None,
    progress: Callable[[int, int], None] | None = None,
    log: Callable[[str], None] = lambda m: None,
    warn: Callable[[str], None] = lambda m: None,
) -> IngestedBatch:
    """Set aside the copies among the batch's probed ``rows`` (:func:`probe_rows`, in the local
    folder ``landing_root``) and write its tables: exact copies of other batches' ``ok`` videos
    become ``duplicate``; with ``near_duplicates`` (None: off) the ``ok`` videos are fingerprinted
    (``fingerprint_workers`` processes, ``progress`` per video; ``warn`` names the videos that
    cannot be) and looked up among this batch's and, in the on-disk index, every other batch's
    kept videos; a comparison that needs the picture of an earlier batch's video no longer on this
    machine (an object-store landing's staged batches are released) copies the file with
    ``fetch`` (landing-relative path, folder -> local copy or None; :meth:`Landing.fetch`) into a
    temporary folder under ``landing_root`` (a file it cannot copy is named in ``warn``). From the
    lookups to the writes the warehouse's lookup lock is held: a batch ingested at the same time
    waits, then finds its copies among this one's videos."""
    rows = mark_known_duplicates(rows, exact_copies_elsewhere(wh, batch, rows))  # not fingerprinted then
    prints, pairs, index = [], [], None
    if near_duplicates is not None:
        prints = fingerprint_rows(
            rows,
            landing_root,
            workers=fingerprint_workers,
            window_s=near_duplicates.window_s,
            pictures_on_demand=near_duplicates.pictures_on_demand,
            log=warn,
            progress=progress,
        )
    with lookup_lock(wh):
        rows = mark_known_duplicates(rows, exact_copies_elsewhere(wh, batch, rows))  # written meanwhile
        ok = {(r["video_id"], r["path"]) for r in rows if r["status"] == VideoStatus.OK}
        prints = [p for p in prints if (p["video_id"], p["path"]) in ok]
        if near_duplicates is not None:
            # the other batches' kept videos are looked up in the on-disk hash index (brought up
            # to date from the tables first); only the candidates' fingerprints are read
            index = FingerprintIndex(wh)
            index.sync(log=log)
            # files of earlier batches fetched for a comparison go beside the staged batch (the
            # landing cache), removed after the lookups
            with tempfile.TemporaryDirectory(prefix=".fetched-", dir=landing_root if fetch else None) as folder:

                def fetched(rel: str) -> Path | None:
                    copy = fetch(rel, Path(folder))
                    if copy is None:
                        warn(
                            f"{rel}: could not be copied from the landing area to compare its picture; not merged with it"
                        )
                    return copy

                locate = local_files(landing_root, allowed_roots, fetched if fetch else None)
                pairs = mark_near_duplicates(rows, prints, index, near_duplicates, locate)
        wh.write_batch("video_fingerprints", batch, prints)  # none when switched off: nothing stale stays indexed
        written = wh.write_batch("videos", batch, rows)
        if index is not None:
            index.sync()  # this batch's kept videos, for the next batch's lookups
    return IngestedBatch(rows, pairs, written, index.live_videos() if index is not None else None)
