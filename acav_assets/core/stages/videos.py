"""Stage ``videos``: one row per input file of a batch, whatever happened to it.

Paths in the tables are relative to the landing root (``batch_003/x.mp4``), so a warehouse stays
valid when the landing area is mounted elsewhere. ``landing_root`` is a local folder: a remote
landing area is staged first (:mod:`acav_assets.core.media.landing`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from acav_assets.core.media.landing import batch_dir
from acav_assets.core.media.probe import ProbeConfig, list_media_files, probe_files

__all__ = ["probe_rows"]


def probe_rows(landing_root: str | os.PathLike, batch: str, config: ProbeConfig = ProbeConfig(),
               known: dict[str, str] | None = None, timeout_s: float | None = None,
               progress: Callable[[int, int], None] | None = None) -> list[dict]:
    """One ``videos`` row per input file of the batch (every file, whatever its status);
    ``timeout_s`` bounds the time spent on any one file (status ``timeout``)."""
    folder = batch_dir(landing_root, batch)
    if not folder.is_dir():
        raise ValueError(f"batch folder {folder} does not exist")
    root = Path(landing_root).resolve()
    records = probe_files(list_media_files(folder), config, known=known, root=root, timeout_s=timeout_s,
                          progress=progress)
    rows = []
    for r in records:
        row = r.to_row()
        row["path"] = os.path.relpath(r.path, root)
        row["batch"] = batch
        rows.append(row)
    return rows
