"""The clips x clusterings label matrix that the selection reads, with bounded memory."""

from __future__ import annotations

import shutil
import tempfile
import weakref
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from acav_assets.core.clustering import Clustering
from acav_assets.core.warehouse.tables import Warehouse

__all__ = ["ClipIndex", "assignment_matrix", "label_matrix"]


def assignment_matrix(wh: Warehouse, clusterings: list[Clustering]) -> tuple[ClipIndex, np.ndarray, list[str], int]:
    """Clips × clusterings label matrix for the current clusterings (see :func:`label_matrix`)."""
    return label_matrix(wh, [c.clustering_id for c in clusterings])


def _batch_labels(scan: pl.LazyFrame, batch: str, ids: list[str]) -> tuple[pl.DataFrame | None, int]:
    """One batch's clips with a label in every clustering ``ids``, sorted by clip id (``clip_id``
    + one column per clustering), and the number of its clips left out."""
    long = scan.filter(pl.col("batch") == batch).select("clip_id", "clustering_id", "cluster").collect()
    wide = long.pivot(on="clustering_id", index="clip_id", values="cluster", aggregate_function="first")
    if any(i not in wide.columns for i in ids):
        return None, wide.height
    full = wide.drop_nulls(ids).sort("clip_id")
    return full, wide.height - full.height


@dataclass
class ClipIndex:
    """The row order of a label matrix: ``counts[i]`` rows of ``batches[i]``, each batch's clips
    sorted by id. Clip ids are not held in memory (100M of them would take GBs): while the
    matrix is built, each batch's ids are spilled to a local scratch file (Arrow IPC, ~31 bytes
    per clip), read back, batch by batch, only when asked for. Re-reading them from the table
    instead costs a second pass over all assignments: 375 s against a 137 s load at 100M clips,
    measured. The scratch folder goes when the index is garbage-collected (or on ``close``)."""

    clustering_ids: list[str]
    version: int | None  # the cluster_assignments version the matrix was built from
    batches: list[str]
    counts: list[int]
    scratch: Path

    def __post_init__(self) -> None:
        self._cleanup = weakref.finalize(self, shutil.rmtree, str(self.scratch), True)

    def close(self) -> None:
        self._cleanup()

    def __len__(self) -> int:
        return int(sum(self.counts))

    def _batches(self, needed: set[int] | None = None):
        start = 0
        for i, n in enumerate(self.counts):
            if n and (needed is None or i in needed):
                yield i, start, pl.read_ipc(self.scratch / f"{i}.arrow")["clip_id"]
            start += n

    def ids_at(self, rows) -> pl.Series:
        """The clip ids of matrix rows ``rows``, in that order."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        if rows.size and (rows.min() < 0 or rows.max() >= len(self)):
            raise IndexError(f"row out of range for a matrix of {len(self)} clips")
        order = np.argsort(rows, kind="stable")
        ranked = rows[order]
        starts = np.concatenate([[0], np.cumsum(self.counts)])
        # the asked rows of batch i are ranked[cut[i]:cut[i + 1]]: one pass, no per-batch scan of all rows
        cut = np.searchsorted(ranked, starts, side="left")
        needed = {i for i in range(len(self.counts)) if cut[i + 1] > cut[i]}
        parts = []
        for i, start, ids in self._batches(needed):
            lo, hi = cut[i], cut[i + 1]
            # a fresh copy: a gathered string view would pin the whole batch's buffers (~40 MB
            # per 100k clips, measured: 3.7 GB extra at 10M clips)
            picked = pl.Series("clip_id", ids.gather(ranked[lo:hi] - start).to_list(), dtype=pl.String)
            parts.append(pl.DataFrame({"o": order[lo:hi], "clip_id": picked}))
        if not parts:
            return pl.Series("clip_id", [], pl.String)
        return pl.concat(parts).sort("o")["clip_id"]

    def rows_of(self, wanted: pl.Series | list[str]) -> np.ndarray:
        """Matrix rows of the ``wanted`` clip ids that it holds, in ``wanted``'s order."""
        want = pl.DataFrame({"clip_id": pl.Series(wanted, dtype=pl.String)}).with_row_index("o")
        parts = [
            want.join(
                pl.DataFrame({"clip_id": ids}).with_row_index("r", offset=start), on="clip_id", how="inner"
            ).select("o", "r")
            for _, start, ids in self._batches()
        ]
        if not parts:
            return np.zeros(0, np.int64)
        return pl.concat(parts).sort("o")["r"].to_numpy().astype(np.int64)


def label_matrix(wh: Warehouse, ids: list[str]) -> tuple[ClipIndex, np.ndarray, list[str], int]:
    """Clips × clusterings label matrix for the clusterings ``ids``, in narrow ints (one byte
    per label while every label is < 256, else two), built batch by batch from one version of
    ``cluster_assignments``: only one batch's assignments (three columns) are in memory at a
    time, and the clip ids are spilled to local scratch (:class:`ClipIndex`). Clips lacking any
    clustering's label are left out; their number is returned."""
    version = wh.version("cluster_assignments")
    scan = wh.scan("cluster_assignments", version=version).filter(pl.col("clustering_id").is_in(ids))
    # streaming: the distinct ids only, never the whole column
    seen = set(scan.select("clustering_id").unique().collect(engine="streaming")["clustering_id"].to_list())
    missing = [i for i in ids if i not in seen]
    if missing:
        raise ValueError(f"no assignments for clustering(s) {missing}: materialize cluster_assignments")
    names = wh.batches("cluster_assignments", version=version)
    parts: list[np.ndarray] = []
    counts: list[int] = []
    excluded = 0
    scratch = Path(tempfile.mkdtemp(prefix="acav_clip_ids_"))
    try:
        for i, batch in enumerate(names):
            full, left_out = _batch_labels(scan, batch, ids)
            excluded += left_out
            counts.append(0 if full is None else full.height)
            if full is not None:
                full.select("clip_id").write_ipc(scratch / f"{i}.arrow")
                block = full.select(ids).to_numpy()
                parts.append(block.astype(np.uint8 if block.size == 0 or block.max() < 256 else np.uint16))
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    index = ClipIndex(list(ids), version, names, counts, scratch)
    labels = np.ascontiguousarray(np.concatenate(parts)) if parts else np.zeros((0, len(ids)), np.uint8)
    return index, labels, list(ids), excluded
