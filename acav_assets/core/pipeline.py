"""The curation stages over the warehouse, one function per table, with no Dagster.

The Dagster assets (``acav_assets.defs``) call these and add partitions, config, metadata and
checks; tests and scripts can call them directly. Each stage reads what it needs from the
Delta tables (lazily: scan, filter, project), computes with the core modules, and returns the
rows to write; writing is the caller's (``Warehouse.write_batch`` / ``overwrite``).

Paths in the tables are relative to the landing root (``batch_003/x.mp4``), so a warehouse stays
valid when the landing area is mounted elsewhere. The ``landing_root`` these functions take is a
local folder: a remote landing area is staged first (``acav_assets.core.landing``).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
import weakref
from datetime import datetime, timezone
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import av
import numpy as np
import polars as pl

from acav_assets.core.clips import ClipConfig, clip_windows, detect_shots
from acav_assets.core.clustering import Clustering, KMeansConfig, fit_kmeans
from acav_assets.core.decode import DecodeConfig
from acav_assets.core.features import Extractor, embed_clips
from acav_assets.core.landing import batch_dir, landing_batches
from acav_assets.core.media import OK, ProbeConfig, list_media_files, probe_files
from acav_assets.core.selection import Selection, select_subset
from acav_assets.core.tables import Warehouse

__all__ = [
    "ClipIndex", "SelectionParams", "assignment_matrix", "assignment_rows", "auto_k", "batch_dir", "clip_rows", "curate",
    "embedding_rows", "fit_clusterings", "label_matrix", "landing_batches", "load_clusterings",
    "probe_rows",
]


# --- videos, clips -------------------------------------------------------------------------

def probe_rows(landing_root: str | os.PathLike, batch: str, config: ProbeConfig = ProbeConfig(),
               known: dict[str, str] | None = None, timeout_s: float | None = None) -> list[dict]:
    """One ``videos`` row per input file of the batch (every file, whatever its status);
    ``timeout_s`` bounds the time spent on any one file (status ``timeout``)."""
    folder = batch_dir(landing_root, batch)
    if not folder.is_dir():
        raise ValueError(f"batch folder {folder} does not exist")
    root = Path(landing_root).resolve()
    records = probe_files(list_media_files(folder), config, known=known, root=root, timeout_s=timeout_s)
    rows = []
    for r in records:
        row = r.to_row()
        row["path"] = os.path.relpath(r.path, root)
        row["batch"] = batch
        rows.append(row)
    return rows


def clip_rows(video_rows: list[dict], landing_root: str | os.PathLike, config: ClipConfig = ClipConfig()) -> list[dict]:
    """Clip windows of the batch's ``ok`` videos (shot detection only when ``max_clips > 1``; a
    video that can no longer be read gets centred windows, and fails later, per clip, at embedding)."""
    out = []
    for v in video_rows:
        if v["status"] != OK:
            continue
        shots = None
        if config.max_clips > 1:
            try:
                shots = detect_shots(Path(landing_root) / v["path"], v["duration_s"], config)
            except (OSError, av.error.FFmpegError):  # unreadable since probing: centred windows instead
                shots = None
        for w in clip_windows(v["video_id"], v["duration_s"], config, shots):
            out.append({"batch": v["batch"], "clip_id": w.clip_id, "video_id": v["video_id"], "path": v["path"],
                        "start_s": w.start_s, "end_s": w.end_s})
    return out


# --- embeddings ----------------------------------------------------------------------------

def embedding_rows(clips: list[dict], landing_root: str | os.PathLike, extractors: list[Extractor], *,
                   decode_config: DecodeConfig = DecodeConfig(), batch_size: int = 16, decode_workers: int = 2,
                   progress: Callable[[int, int], None] | None = None) -> tuple[pl.DataFrame, dict[str, str]]:
    """Long-format ``clip_embeddings`` rows (one per clip per feature space) and the clips that
    could not be embedded, with why."""
    root = Path(landing_root)
    items = [(c["clip_id"], str(root / c["path"]), c["start_s"], c["end_s"]) for c in clips]
    res = embed_clips(items, extractors, decode_config=decode_config, batch_size=batch_size,
                      decode_workers=decode_workers, progress=progress)
    batch = {c["clip_id"]: c["batch"] for c in clips}
    frames = []
    for fs, mat in res.vectors.items():
        frames.append(pl.DataFrame({
            "batch": [batch[c] for c in res.clip_ids], "clip_id": res.clip_ids, "feature_space": fs,
            "vector": pl.Series(mat, dtype=pl.Array(pl.Float32, mat.shape[1])).cast(pl.List(pl.Float32)),
        }))
    df = pl.concat(frames) if frames else pl.DataFrame(schema={"batch": pl.String, "clip_id": pl.String,
                                                               "feature_space": pl.String, "vector": pl.List(pl.Float32)})
    return df, res.failed


# --- clustering ----------------------------------------------------------------------------

def auto_k(n: int, cap: int = 32) -> int:
    """Clusters for ``n`` clips when k is not fixed: about sqrt(n / 3), between 2 and ``cap``
    (the reference's 32 from ~3,000 clips up; fewer on small pools, where 32 clusters of a
    few clips each make the MI estimates noise: measured in the README's demo table)."""
    return int(min(cap, max(2, round(math.sqrt(n / 3)))))


def auto_nredo(n: int, dim: int) -> int:
    """k-means restarts (best inertia kept) when not fixed: 10 for small fits (rows x dims <= 5M),
    3 up to 50M, 1 above. On the 200-video demo one run lands in poor local minima (cluster
    purity 0.54-0.85 on some layers); ten runs reach 0.87-1.0 (measured)."""
    size = n * dim
    return 10 if size <= 5_000_000 else 3 if size <= 50_000_000 else 1


def _vectors(wh: Warehouse, feature_space: str, *, max_rows: int | None, seed: int) -> tuple[list[str], np.ndarray]:
    lf = wh.scan("clip_embeddings").filter(pl.col("feature_space") == feature_space)
    n = lf.select(pl.len()).collect().item()
    if max_rows is not None and n > max_rows:
        # a deterministic, streaming sample: keep rows whose id hashes below the wanted share
        bound = int(max_rows / n * 2**32)
        lf = lf.filter((pl.col("clip_id").hash(seed) % (2**32)) < bound)
    df = lf.select("clip_id", "vector").sort("clip_id").collect()
    if df.height == 0:
        return [], np.zeros((0, 0), np.float32)
    dim = df["vector"].list.len().max()
    mat = df["vector"].cast(pl.Array(pl.Float32, dim)).to_numpy()
    return df["clip_id"].to_list(), np.ascontiguousarray(mat, dtype=np.float32)


def fit_clusterings(wh: Warehouse, config: KMeansConfig, *, k: int | None = None, nredo: int | None = None,
                    log: Callable[[str], None] = lambda m: None) -> list[Clustering]:
    """Fit one k-means per feature space in ``clip_embeddings`` on a bounded sample of all
    batches. ``k=None``: :func:`auto_k` of the number of clips; ``nredo=None``:
    :func:`auto_nredo`. The fit version is derived from the sampled clips, so re-fitting the
    same data gives the same clustering ids."""
    spaces = sorted(wh.scan("clip_embeddings").select("feature_space").unique().collect()["feature_space"].to_list())
    if not spaces:
        raise ValueError("clip_embeddings is empty: materialize clip_embeddings for at least one batch first")
    out = []
    for fs in spaces:
        ids, x = _vectors(wh, fs, max_rows=config.max_sample, seed=config.seed)
        kk = k or auto_k(len(ids), config.k)
        redo = nredo or auto_nredo(x.shape[0], x.shape[1])
        cfg = KMeansConfig(**{**asdict(config), "k": kk, "nredo": redo, "max_sample": max(config.max_sample, kk)})
        version = hashlib.blake2b("\n".join(ids).encode(), digest_size=6).hexdigest()
        cl = fit_kmeans(x, fs, cfg, fit_version=version)
        log(f"{fs}: k={kk}, {redo} run(s), on {x.shape[0]} clips x {x.shape[1]} dims")
        out.append(cl)
    return out


def load_clusterings(wh: Warehouse) -> list[Clustering]:
    df = wh.read("cluster_centroids")
    if df.height == 0:
        raise ValueError("cluster_centroids is empty: materialize cluster_centroids first")
    return [Clustering.from_rows(g.to_dicts()) for _, g in df.group_by("clustering_id", maintain_order=True)]


def assignment_rows(wh: Warehouse, batch: str, clusterings: list[Clustering]) -> pl.DataFrame:
    """Nearest centroid of every embedded clip of ``batch``, for every clustering."""
    frames = []
    for cl in clusterings:
        df = (wh.scan("clip_embeddings").filter((pl.col("batch") == batch) & (pl.col("feature_space") == cl.feature_space))
              .select("clip_id", "vector").sort("clip_id").collect())
        if df.height == 0:
            continue
        x = df["vector"].cast(pl.Array(pl.Float32, cl.dim)).to_numpy()
        labels, dist = cl.assign(x)
        frames.append(pl.DataFrame({"batch": batch, "clip_id": df["clip_id"], "clustering_id": cl.clustering_id,
                                    "feature_space": cl.feature_space, "cluster": labels, "distance": dist}))
    if not frames:
        return pl.DataFrame(schema={"batch": pl.String, "clip_id": pl.String, "clustering_id": pl.String,
                                    "feature_space": pl.String, "cluster": pl.Int32, "distance": pl.Float32})
    return pl.concat(frames)


# --- selection -----------------------------------------------------------------------------

@dataclass(frozen=True)
class SelectionParams:
    budget: float = 0.2  # share of the pool (<= 1.0) or, if > 1, a number of clips
    pairing: str = "bipartite"
    batch_size: int | None = 20
    take: int = 4
    seed: int = 0
    refine: int = 50
    refine_fraction: float = 0.01
    restarts: int = 0  # selections with seeds seed, seed+1, …; the highest objective wins. 0 = auto
    mode: str = "auto"  # "incremental": keep the previous subset, add the new batches' share; "full"; "auto"

    def n_restarts(self, pool: int) -> int:
        """Automatic: 4 on pools up to 1M clips (cheap there, and the objective tracks precision:
        measured correlation 0.85-0.94 on the demo), 1 above."""
        return self.restarts if self.restarts > 0 else (4 if pool <= 1_000_000 else 1)


@dataclass
class Curation:
    selection: Selection
    clip_ids: ClipIndex | list[str]  # row order of ``labels``
    columns: list[str]  # clustering ids, in assignment-matrix column order
    feature_spaces: list[str]
    modalities: list[str]
    labels: np.ndarray
    subset: pl.DataFrame
    selection_id: str
    excluded: int  # clips lacking an assignment for some clustering
    restart_objectives: list[float]  # objective of each restart, in seed order
    seed: int  # the seed of the selection kept
    run: dict  # the selection_runs row: id, time, parameters, clusterings, input batches


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
        parts = [want.join(pl.DataFrame({"clip_id": ids}).with_row_index("r", offset=start), on="clip_id", how="inner")
                 .select("o", "r") for _, start, ids in self._batches()]
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


def _best_of_restarts(labels, budget, params: SelectionParams, modalities, pool: int, progress, **kw):
    runs = []
    for r in range(params.n_restarts(pool)):
        runs.append(select_subset(labels, budget, pairing=params.pairing, modalities=modalities,
                                  batch_size=params.batch_size, take=params.take, seed=params.seed + r,
                                  refine=params.refine, refine_fraction=params.refine_fraction,
                                  progress=progress if r == 0 else None, **kw))
    return runs, max(range(len(runs)), key=lambda r: runs[r].objective)


def _ordered_clusterings(wh: Warehouse) -> tuple[list[Clustering], dict[str, str]]:
    clusterings = load_clusterings(wh)
    modal = {c.clustering_id: c.feature_space.split("/", 1)[0] for c in clusterings}
    # audio columns first, then visual, each in feature-space order (diagonal pairs by depth)
    return sorted(clusterings, key=lambda c: (modal[c.clustering_id] != "audio", c.feature_space)), modal


def previous_run(wh: Warehouse) -> dict | None:
    """The ``selection_runs`` row of the current subset, if any."""
    subset = wh.scan("curated_subset").select("selection_id").head(1).collect()
    if subset.height == 0:
        return None
    runs = wh.scan("selection_runs").filter(pl.col("selection_id") == subset["selection_id"][0]).collect()
    return runs.sort("created_at").row(-1, named=True) if runs.height else None


def choose_mode(wh: Warehouse, params: SelectionParams) -> tuple[str, str]:
    """("full" | "incremental", why). Incremental needs a previous subset made with the same
    clusterings (a refit changes every label: then everything is selected again)."""
    if params.mode == "full":
        return "full", "full re-selection asked for"
    prev = previous_run(wh)
    if prev is None:
        return "full", "no previous subset"
    clusterings, _ = _ordered_clusterings(wh)
    if [c.clustering_id for c in clusterings] != list(prev["clustering_ids"]):
        if params.mode == "incremental":
            raise ValueError("incremental selection asked for, but the centroids changed since the last selection: "
                             "run a full selection")
        return "full", "the centroids were refitted since the previous subset"
    if params.budget > 1:
        return "full", "an absolute budget is re-selected fully"
    before = json.loads(prev["params"])
    keys = ("budget", "pairing", "batch_size", "take", "seed", "refine", "refine_fraction")
    changed = [k for k in keys if before.get(k) != asdict(params)[k]]
    if changed:
        if params.mode == "incremental":
            raise ValueError(f"incremental selection asked for, but {', '.join(changed)} changed: run a full selection")
        return "full", f"selection parameters changed ({', '.join(changed)})"
    return "incremental", f"warm start from selection {prev['selection_id']}"


def curate_incremental(wh: Warehouse, params: SelectionParams, *,
                       progress: Callable[[int, int], None] | None = None) -> Curation | None:
    """Keep the previous subset and select the new batches' share of the budget given it.

    Reads the previous subset's stored cluster labels and the new batches' assignments only, so
    its cost depends on the new batches and the subset, not on every clip curated before.
    Returns None when no batch is new.
    """
    prev = previous_run(wh)
    clusterings, modal = _ordered_clusterings(wh)
    columns = [c.clustering_id for c in clusterings]
    old_batches = set(prev["batches"])
    assigned = set(wh.batches("cluster_assignments"))
    new_batches = sorted(assigned - old_batches)
    if not new_batches:
        return None
    prev_subset = wh.read("curated_subset").sort("rank")
    wide = (wh.scan("cluster_assignments").filter(pl.col("batch").is_in(new_batches) & pl.col("clustering_id").is_in(columns))
            .select("clip_id", "clustering_id", "cluster").collect()
            .pivot(on="clustering_id", index="clip_id", values="cluster", aggregate_function="first"))
    missing = [c for c in columns if c not in wide.columns]
    total = wide.height
    wide = wide.drop_nulls([c for c in columns if c in wide.columns]).sort("clip_id") if not missing else wide.head(0)
    new_ids = wide["clip_id"].to_list()
    old_labels = np.asarray(prev_subset["clusters"].to_list(), dtype=np.int64).reshape(prev_subset.height, len(columns))
    new_labels = wide.select(columns).to_numpy().astype(np.int64) if new_ids else np.zeros((0, len(columns)), np.int64)
    labels = np.concatenate([old_labels, new_labels]).astype(np.uint8 if max(c.k for c in clusterings) <= 256 else np.uint16)
    modalities = [modal[c] for c in columns]
    n_old = prev_subset.height
    budget = int(round(params.budget * len(new_ids)))
    runs, best = _best_of_restarts(labels, budget, params, modalities, len(new_ids), progress,
                                   initial=np.arange(n_old), candidates=np.arange(n_old, labels.shape[0]))
    sel = runs[best]
    payload = json.dumps({"params": asdict(params), "after": prev["selection_id"], "batches": new_batches}, sort_keys=True)
    selection_id = hashlib.blake2b(payload.encode(), digest_size=8).hexdigest()
    chosen_ids = [new_ids[i - n_old] for i in sel.indices]
    last_step = int(prev_subset["step"].max()) + 1 if n_old else 0
    added = pl.DataFrame({"clip_id": chosen_ids, "rank": np.arange(n_old + 1, n_old + len(sel) + 1), "gain": sel.gains,
                          "step": sel.steps + last_step,
                          "clusters": pl.Series(labels[sel.indices].astype(np.int32).tolist(), dtype=pl.List(pl.Int32))})
    clips = wh.scan("clips").filter(pl.col("batch").is_in(new_batches)).select("clip_id", "video_id", "path", "batch",
                                                                               "start_s", "end_s")
    added = added.lazy().join(clips, on="clip_id", how="left").collect()
    subset = (pl.concat([prev_subset.drop("selection_id"), added.select(prev_subset.drop("selection_id").columns)])
              .with_columns(pl.lit(selection_id).alias("selection_id")).sort("rank"))
    run = {"selection_id": selection_id, "created_at": datetime.now(timezone.utc).isoformat(timespec="microseconds"),
           "params": json.dumps({**asdict(params), "mode": "incremental", "after": prev["selection_id"]}, sort_keys=True),
           "clustering_ids": columns, "feature_spaces": [c.feature_space for c in clusterings],
           "batches": sorted(old_batches | set(new_batches)), "pool_size": int(prev["pool_size"]) + len(new_ids),
           "size": subset.height, "objective": float(sel.objective), "seed": params.seed + best}
    return Curation(sel, new_ids, columns, [c.feature_space for c in clusterings], modalities, labels, subset,
                    selection_id, total - len(new_ids), [r.objective for r in runs], params.seed + best, run)


def curate(wh: Warehouse, params: SelectionParams, *, progress: Callable[[int, int], None] | None = None) -> Curation:
    """Select the curated subset over every batch, with the current clusterings."""
    clusterings, modal = _ordered_clusterings(wh)
    clip_ids, labels, columns, excluded = assignment_matrix(wh, clusterings)
    if len(clip_ids) == 0:
        raise ValueError("no clip has an assignment for every clustering: nothing to select from")
    modalities = [modal[c] for c in columns]
    budget: int | float = params.budget if params.budget <= 1.0 else int(params.budget)
    runs, best = _best_of_restarts(labels, budget, params, modalities, len(clip_ids), progress)
    sel = runs[best]
    payload = json.dumps({"params": asdict(params), "clusterings": columns, "n": len(clip_ids)}, sort_keys=True)
    selection_id = hashlib.blake2b(payload.encode(), digest_size=8).hexdigest()
    chosen = pl.DataFrame({"clip_id": clip_ids.ids_at(sel.indices), "rank": np.arange(1, len(sel) + 1),
                           "gain": sel.gains, "step": sel.steps,
                           "clusters": pl.Series(labels[sel.indices].astype(np.int32).tolist(), dtype=pl.List(pl.Int32))})
    clips = wh.scan("clips").select("clip_id", "video_id", "path", "batch", "start_s", "end_s")
    # streaming: the clips table is read in morsels against the chosen ids, never whole
    subset = (chosen.lazy().join(clips, on="clip_id", how="left").with_columns(pl.lit(selection_id).alias("selection_id"))
              .sort("rank").collect(engine="streaming"))
    batches = list(clip_ids.batches)
    run = {"selection_id": selection_id, "created_at": datetime.now(timezone.utc).isoformat(timespec="microseconds"),
           "params": json.dumps(asdict(params), sort_keys=True), "clustering_ids": columns,
           "feature_spaces": [c.feature_space for c in clusterings], "batches": batches, "pool_size": len(clip_ids),
           "size": len(sel), "objective": float(sel.objective), "seed": params.seed}
    return Curation(sel, clip_ids, columns, [c.feature_space for c in clusterings], modalities, labels, subset,
                    selection_id, excluded, [r.objective for r in runs], params.seed + best, {**run, "seed": params.seed + best})
