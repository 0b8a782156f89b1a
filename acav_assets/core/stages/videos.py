"""Stage ``videos``: one row per input file of a batch, whatever happened to it.

Paths in the tables are relative to the landing root (``batch_003/x.mp4``), so a warehouse stays
valid when the landing area is mounted elsewhere. ``landing_root`` is a local folder: a remote
landing area is staged first (:mod:`acav_assets.core.media.landing`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from acav_assets.core.media.landing import batch_dir
from acav_assets.core.media.probe import ProbeConfig, list_media_files, probe_files
from acav_assets.core.statuses import VideoStatus

__all__ = ["probe_rows"]


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
