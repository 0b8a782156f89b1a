"""Stage ``curated_subset``: the MI selection over every batch (full), or a warm start that adds
the new batches' share to the previous subset (incremental), with its ``selection_runs`` row.

The Dagster assets (``acav_assets.defs``) call the stages of :mod:`acav_assets.core.stages` and add
partitions, config, metadata and checks; tests and scripts can call them directly. Each stage reads
what it needs from the Delta tables (lazily: scan, filter, project), computes with the method's
modules, and returns the rows to write; writing is the caller's.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone

import numpy as np
import polars as pl

from acav_assets.core.clustering import Clustering
from acav_assets.core.selection import (
    PAIRINGS,
    WEIGHTING_RULES,
    PairWeighting,
    Selection,
    pair_weights,
    resolve_pairs,
    select_subset,
)
from acav_assets.core.selection.refinement import RefinementConfig
from acav_assets.core.selection.semantic_dedup import semantic_duplicates
from acav_assets.core.settings import setting, settings_of
from acav_assets.core.stages.agreement import REFINEMENTS, Refinement, refine_by_agreement
from acav_assets.core.stages.centroids import load_clusterings
from acav_assets.core.stages.labels import ClipIndex, assignment_matrix
from acav_assets.core.stages.pool_vectors import read_vectors
from acav_assets.core.stages.sync import out_of_sync_clips
from acav_assets.core.warehouse.tables import Warehouse

#: How a selection relates to the previous subset (see ``SelectionParams.mode``).
MODES = ("auto", "incremental", "full")
#: What the selection does with clips flagged out of sync (see ``SelectionParams.sync_filter``).
SYNC_FILTERS = ("exclude", "keep")

__all__ = [
    "MODES",
    "SELECTION_KEYS",
    "Curation",
    "SelectionParams",
    "choose_mode",
    "curate",
    "curate_incremental",
    "held_settings",
    "previous_run",
]


@dataclass(frozen=True)
class SelectionParams:
    """The selection's settings (each described once: the run config and ``acav curate``'s options
    are derived from these fields). Values that cannot work are refused here, for every door."""

    budget: float = setting(0.2, "share of the pool in (0, 1], or a number of clips if > 1")
    pairing: str = setting("bipartite", "which clustering pairs the objective averages over", choices=PAIRINGS)
    batch_size: int = setting(20, "candidates drawn per greedy step; 0 = exact greedy")
    take: int = setting(4, "candidates kept per greedy step")
    seed: int = setting(0, "seed of the candidate draws")
    refine: int = setting(50, "swap-refinement rounds after greedy (0 = the reference's greedy alone)")
    refine_fraction: float = setting(0.01, "share of the subset swapped per swap-refinement round")
    restarts: int = setting(
        0, "selections with seeds seed..seed+n-1, best objective kept; 0 = 4 up to 1M clips, else 1"
    )
    mode: str = setting(
        "auto",
        "'incremental' keeps the previous subset and adds the new batches' share; 'full' re-selects "
        "everything; 'auto' = incremental unless the centroids or the settings changed or there is no previous subset",
        choices=MODES,
    )
    weighting: str = setting(
        "ami",
        "pair weighting: 'ami' keeps the clustering pairs whose pool carries cross-modal information beyond "
        "chance (label-free); 'plain' = the reference's mean over all pairs",
        choices=WEIGHTING_RULES,
    )
    weight_keep: float = setting(0.2, "'ami': share of the best pair's adjusted MI a pair needs to count")
    dedup_cosine: float = setting(
        0.0,
        "semantic dedup before selection: clips whose embeddings reach this cosine with an earlier clip of the "
        "same clusters in every dedup space leave the pool (0 = off; e.g. 0.98)",
    )
    dedup_spaces: tuple[str, ...] = setting(
        (), "feature spaces compared by semantic dedup (none = every clustered one)"
    )
    sync_filter: str = setting(
        "exclude",
        "clips the clip_sync table flags out of sync (their sound shifted against their picture): 'exclude' leaves "
        "them out of the pool, 'keep' selects as if they were in sync (an unknown estimate is never a flag)",
        choices=SYNC_FILTERS,
    )
    refinement: str = setting(
        "agreement",
        "after the MI search: 'agreement' exchanges the picks whose sound agrees least with their picture for "
        "unpicked clips that agree more (label-free; docs/quality.md); 'none' keeps the MI selection as it is",
        choices=REFINEMENTS,
    )

    def __post_init__(self):
        budget = self.budget
        if not (0 < budget <= 1 or (budget > 1 and float(budget).is_integer())):
            raise ValueError(f"budget must be a share in (0, 1] or a whole number of clips, got {budget}")
        for name in ("pairing", "mode", "weighting", "refinement", "sync_filter"):
            allowed = settings_of(SelectionParams, [name])[0].choices
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.batch_size < 0 or self.take < 1 or (self.batch_size and self.take > self.batch_size):
            raise ValueError(
                f"batch_size must be >= take >= 1 (or 0 for exact greedy), got batch_size={self.batch_size}, "
                f"take={self.take}"
            )
        if self.refine < 0:
            raise ValueError(f"refine must be >= 0, got {self.refine}")
        if self.restarts < 0:
            raise ValueError(f"restarts must be >= 0 (0 = automatic), got {self.restarts}")
        if not 0.0 <= self.weight_keep <= 1.0:
            raise ValueError(f"weight_keep must be in [0, 1], got {self.weight_keep}")
        if not 0.0 <= self.dedup_cosine <= 1.0:
            raise ValueError(f"dedup_cosine must be in [0, 1] (0 = off), got {self.dedup_cosine}")

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
    weighting: PairWeighting | None = None  # the pair weights the selection used
    pairs: list[tuple[int, int]] | None = None  # the clustering column pairs, in weighting order
    # semantic dedup: the rows of ``labels`` left out of the pool and the rows they repeat
    duplicates: pl.DataFrame | None = None  # selection_id, clip_id, duplicate_of, cosine
    pool_rows: np.ndarray | None = None  # rows of ``labels`` that formed the pool (None: all)
    refinement: Refinement | None = None  # the agreement refinement, when it ran


def _weighting(labels: np.ndarray, params: SelectionParams, pairs, modalities) -> PairWeighting:
    return pair_weights(
        labels, pairs, rule=params.weighting, keep=params.weight_keep, modalities=modalities, seed=params.seed
    )


def _weighting_from_run(run: dict, pairs, names: list[str]) -> PairWeighting | None:
    """The weights a previous selection used, if it recorded them for these pairs."""
    raw = run.get("pair_weights")
    if not raw:
        return None
    recs = json.loads(raw)
    if [(r["a"], r["b"]) for r in recs] != [(names[i], names[j]) for i, j in pairs]:
        return None
    nan = float("nan")
    return PairWeighting(
        run.get("weighting") or "ami",
        np.array([nan if r["score"] is None else r["score"] for r in recs]),
        np.array([r["weight"] for r in recs], dtype=np.float64),
        z=np.array([nan if r.get("z") is None else r["z"] for r in recs]),
        note=f"weights of selection {run['selection_id']}",
    )


def _best_of_restarts(labels, budget, params: SelectionParams, modalities, pool: int, progress, **kw):
    runs = []
    for r in range(params.n_restarts(pool)):
        runs.append(
            select_subset(
                labels,
                budget,
                pairing=params.pairing,
                modalities=modalities,
                batch_size=params.batch_size or None,  # 0: exact greedy
                take=params.take,
                seed=params.seed + r,
                refine=params.refine,
                refine_fraction=params.refine_fraction,
                progress=progress if r == 0 else None,
                **kw,
            )
        )
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


#: The parameters that decide which clips a selection picks: a warehouse holds them (the current
#: subset's run records them) until a run gives others, and a change re-selects fully.
SELECTION_KEYS = (
    "budget",
    "pairing",
    "batch_size",
    "take",
    "seed",
    "refine",
    "refine_fraction",
    "weighting",
    "weight_keep",
    "dedup_cosine",
    "dedup_spaces",
    "sync_filter",
    "refinement",
)


def held_settings(wh: Warehouse) -> dict:
    """The selection parameters the warehouse's current subset was made with (``{}`` before
    the first selection): what a run that gives none continues with, whoever launches it."""
    prev = previous_run(wh)
    if prev is None:
        return {}
    recorded = _recorded_params(prev)
    return {k: recorded[k] for k in SELECTION_KEYS if k in recorded}


def _recorded_params(run: dict) -> dict:
    """A run's recorded parameters, in today's terms (exact greedy was recorded as batch_size None)."""
    recorded = json.loads(run["params"])
    if "batch_size" in recorded and recorded["batch_size"] is None:
        recorded["batch_size"] = 0
    return recorded


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
            raise ValueError(
                "incremental selection asked for, but the centroids changed since the last selection: "
                "run a full selection"
            )
        return "full", "the centroids were refitted since the previous subset"
    if params.budget > 1:
        return "full", "an absolute budget is re-selected fully"
    before = _recorded_params(prev)
    redone = _reassigned_since(wh, before.get("assignments_version"), set(prev["batches"]))
    if redone:
        if params.mode == "incremental":
            raise ValueError(
                f"incremental selection asked for, but batch(es) {', '.join(redone)} were re-assigned "
                f"since the last selection: run a full selection"
            )
        return "full", f"batch(es) {', '.join(redone)} re-assigned since the previous selection"
    resynced = (
        _rewritten_since(wh, "clip_sync", before.get("sync_version"), set(prev["batches"]))
        if params.sync_filter == "exclude"
        else []
    )
    if resynced:  # other clips may be flagged out of sync now: the old picks cannot stand
        if params.mode == "incremental":
            raise ValueError(
                f"incremental selection asked for, but the sync of batch(es) {', '.join(resynced)} was "
                f"estimated again since the last selection: run a full selection"
            )
        return "full", f"the sync of batch(es) {', '.join(resynced)} was estimated again since the previous selection"
    now = json.loads(json.dumps(asdict(params)))  # as recorded (tuples read back as lists)
    changed = [k for k in SELECTION_KEYS if before.get(k, now[k] if k.startswith("dedup_") else None) != now[k]]
    if changed:
        if params.mode == "incremental":
            raise ValueError(f"incremental selection asked for, but {', '.join(changed)} changed: run a full selection")
        return "full", f"selection parameters changed ({', '.join(changed)})"
    return "incremental", f"warm start from selection {prev['selection_id']}"


def _reassigned_since(wh: Warehouse, version: int | None, batches: set[str]) -> list[str]:
    """The ``batches`` whose ``cluster_assignments`` were rewritten after table version
    ``version`` (what a selection read). Unknown (runs recorded before versions were): []."""
    return _rewritten_since(wh, "cluster_assignments", version, batches)


def _rewritten_since(wh: Warehouse, table: str, version: int | None, batches: set[str]) -> list[str]:
    """The ``batches`` whose rows of ``table`` were rewritten after its version ``version`` (what
    a selection read). Unknown (runs recorded before the version was): []."""
    if version is None:
        return []
    return [b for b in wh.batches_rewritten_after(table, version) if b in batches]


def _semantic_duplicates(
    wh: Warehouse,
    params: SelectionParams,
    labels: np.ndarray,
    clusterings: list[Clustering],
    ids_of: Callable[[np.ndarray], list[tuple[str, str]]],
    removable: np.ndarray,
) -> tuple[np.ndarray, pl.DataFrame]:
    """Semantic dedup of the pool (:mod:`acav_assets.core.selection.semantic_dedup`): the rows
    removed, and a ``semantic_duplicates`` frame without its selection id (clip, the clip it
    repeats, cosine). Embeddings are read only for clips that share every cluster label with
    another clip, batch by batch. ``ids_of(rows)`` gives each row's (clip id, batch)."""
    spaces = list(params.dedup_spaces) or sorted({c.feature_space for c in clusterings})
    unknown = sorted(set(spaces) - {c.feature_space for c in clusterings})
    if unknown:
        raise ValueError(
            f"dedup_spaces {unknown} are not clustered feature spaces: expected some of "
            f"{sorted({c.feature_space for c in clusterings})}"
        )
    none = (
        np.zeros(0, np.int64),
        pl.DataFrame(schema={"clip_id": pl.String, "duplicate_of": pl.String, "cosine": pl.Float32}),
    )
    if labels.shape[0] < 2:
        return none
    _, bucket, sizes = np.unique(labels, axis=0, return_inverse=True, return_counts=True)
    bucket = bucket.reshape(-1)
    shared = np.flatnonzero(sizes[bucket] > 1)  # rows with a bucket mate
    if shared.size == 0:
        return none
    keys = ids_of(shared)
    vectors = read_vectors(wh, spaces, keys)
    for v in vectors.values():
        norms = np.linalg.norm(v, axis=1, keepdims=True)
        np.divide(v, norms, out=v, where=norms > 0)
    dup, kept, cos = semantic_duplicates(
        [vectors[s] for s in spaces], bucket[shared], params.dedup_cosine, removable=removable[shared]
    )
    if dup.size == 0:
        return none
    return shared[dup], pl.DataFrame(
        {"clip_id": [keys[i][0] for i in dup], "duplicate_of": [keys[i][0] for i in kept], "cosine": cos},
        schema=none[1].schema,
    )


def _duplicates_table(selection_id: str, found: pl.DataFrame | None) -> pl.DataFrame | None:
    """``semantic_duplicates`` rows of a selection (None when dedup was off)."""
    return None if found is None else found.select(pl.lit(selection_id).alias("selection_id"), pl.all())


def _refine(
    wh: Warehouse,
    params: SelectionParams,
    labels: np.ndarray,
    keys_of: Callable[[np.ndarray], list[tuple[str, str]]],
    pool_rows: np.ndarray,
    sel: Selection,
    weighting: PairWeighting,
    pairs,
    spaces: list[str],
    initial_rows: np.ndarray | None = None,
) -> Refinement | None:
    """The agreement refinement of ``sel`` when the settings ask for it (None: they do not)."""
    if params.refinement == "none":
        return None
    return refine_by_agreement(
        wh,
        labels,
        keys_of,
        pool_rows,
        sel,
        weighting,
        pairs,
        spaces,
        config=RefinementConfig(seed=params.seed),
        initial_rows=initial_rows,
    )


def _refinement_columns(rows: np.ndarray, refinement: Refinement | None) -> dict:
    """The subset's ``agreement`` and ``chosen_by`` columns for the chosen label-matrix ``rows``."""
    if refinement is None:
        return {"agreement": pl.Series([None] * len(rows), dtype=pl.Float64), "chosen_by": ["mi"] * len(rows)}
    return {
        "agreement": pl.Series([refinement.agreement.get(int(r)) for r in rows], dtype=pl.Float64),
        "chosen_by": ["agreement" if int(r) in refinement.entered else "mi" for r in rows],
    }


def _refinement_record(refinement: Refinement | None) -> dict:
    return {"refinement": json.dumps(refinement.record if refinement is not None else {"rule": "none"})}


def curate_incremental(
    wh: Warehouse, params: SelectionParams, *, progress: Callable[[int, int], None] | None = None
) -> Curation | None:
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
    read_version = wh.version("cluster_assignments")
    wide = (
        wh.scan("cluster_assignments")
        .filter(pl.col("batch").is_in(new_batches) & pl.col("clustering_id").is_in(columns))
        .select("clip_id", "batch", "clustering_id", "cluster")
        .collect()
        .pivot(on="clustering_id", index=["clip_id", "batch"], values="cluster", aggregate_function="first")
    )
    missing = [c for c in columns if c not in wide.columns]
    total = wide.height
    wide = wide.drop_nulls([c for c in columns if c in wide.columns]).sort("clip_id") if not missing else wide.head(0)
    new_ids = wide["clip_id"].to_list()
    # a batch is consumed only when it contributed rows: one whose assignments are incomplete for
    # the current clusterings stays pending and is picked up once it is complete
    contributed = sorted(set(wide["batch"].to_list()))
    if not contributed:
        return None
    old_labels = np.asarray(prev_subset["clusters"].to_list(), dtype=np.int64).reshape(prev_subset.height, len(columns))
    new_labels = wide.select(columns).to_numpy().astype(np.int64) if new_ids else np.zeros((0, len(columns)), np.int64)
    labels = np.concatenate([old_labels, new_labels]).astype(
        np.uint8 if max(c.k for c in clusterings) <= 256 else np.uint16
    )
    modalities = [modal[c] for c in columns]
    n_old = prev_subset.height
    candidates, dup, found = np.arange(n_old, labels.shape[0]), np.zeros(0, np.int64), None
    keys = list(zip(prev_subset["clip_id"].to_list(), prev_subset["batch"].to_list())) + list(
        zip(new_ids, wide["batch"].to_list())
    )
    if params.dedup_cosine > 0:
        # new clips are compared with each other and with the subset kept (which stays whole)
        removable = np.arange(labels.shape[0]) >= n_old
        dup, found = _semantic_duplicates(
            wh, params, labels, clusterings, lambda rows: [keys[r] for r in rows], removable
        )
        candidates = np.setdiff1d(candidates, dup)
    out_sync = np.zeros(0, np.int64)
    sync_version = wh.version("clip_sync")  # read before the flags: a later estimate is newer
    if params.sync_filter == "exclude":  # flagged clips of the new batches leave the candidates
        flagged = out_of_sync_clips(wh, new_batches)
        out_sync = np.array([n_old + i for i, cid in enumerate(new_ids) if cid in flagged], np.int64)
        candidates = np.setdiff1d(candidates, out_sync)
    budget = int(round(params.budget * candidates.size))
    pairs = resolve_pairs(params.pairing, len(columns), modalities)
    # a warm start extends a selection: it keeps the weights that selection used
    weighting = _weighting_from_run(prev, pairs, [c.feature_space for c in clusterings]) or _weighting(
        labels[candidates], params, pairs, modalities
    )
    runs, best = _best_of_restarts(
        labels,
        budget,
        params,
        modalities,
        candidates.size,
        progress,
        initial=np.arange(n_old),
        candidates=candidates,
        pair_weights=weighting.weights,
    )
    spaces = [c.feature_space for c in clusterings]
    # the kept subset stays and teaches the refinement; only this run's picks may be exchanged
    refinement = _refine(
        wh,
        params,
        labels,
        lambda rows: [keys[r] for r in rows],
        np.r_[np.arange(n_old), candidates],
        runs[best],
        weighting,
        pairs,
        spaces,
        initial_rows=np.arange(n_old),
    )
    sel = runs[best] if refinement is None else refinement.selection
    payload = json.dumps(
        {"params": asdict(params), "after": prev["selection_id"], "batches": contributed}, sort_keys=True
    )
    selection_id = hashlib.blake2b(payload.encode(), digest_size=8).hexdigest()
    chosen_ids = [new_ids[i - n_old] for i in sel.indices]
    last_step = int(prev_subset["step"].max()) + 1 if n_old else 0
    added = pl.DataFrame(
        {
            "clip_id": chosen_ids,
            "rank": np.arange(n_old + 1, n_old + len(sel) + 1),
            "gain": sel.gains,
            "step": sel.steps + last_step,
            "clusters": pl.Series(labels[sel.indices].astype(np.int32).tolist(), dtype=pl.List(pl.Int32)),
            **_refinement_columns(sel.indices, refinement),
        }
    )
    clips = (
        wh.scan("clips")
        .filter(pl.col("batch").is_in(new_batches))
        .select("clip_id", "video_id", "path", "batch", "start_s", "end_s")
    )
    added = added.lazy().join(clips, on="clip_id", how="left").collect()
    if "chosen_by" not in prev_subset.columns:  # a subset selected before the refinement existed
        prev_subset = prev_subset.with_columns(
            pl.lit(None, pl.Float64).alias("agreement"), pl.lit("mi", pl.String).alias("chosen_by")
        )
    subset = (
        pl.concat([prev_subset.drop("selection_id"), added.select(prev_subset.drop("selection_id").columns)])
        .with_columns(pl.lit(selection_id).alias("selection_id"))
        .sort("rank")
    )
    run = {
        "selection_id": selection_id,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="microseconds"),
        "params": json.dumps(
            {
                **asdict(params),
                "mode": "incremental",
                "after": prev["selection_id"],
                "assignments_version": read_version,
                "sync_version": sync_version,
            },
            sort_keys=True,
        ),
        "clustering_ids": columns,
        "feature_spaces": [c.feature_space for c in clusterings],
        "batches": sorted(old_batches | set(contributed)),
        "pool_size": int(prev["pool_size"]) + candidates.size,
        "size": subset.height,
        "objective": float(sel.objective),
        "seed": params.seed + best,
        "semantic_duplicates": int(prev.get("semantic_duplicates") or 0) + int(dup.size),
        "out_of_sync_excluded": int(prev.get("out_of_sync_excluded") or 0) + int(out_sync.size),
        **_weighting_columns(weighting, pairs, clusterings),
        **_refinement_record(refinement),
    }
    return Curation(
        sel,
        new_ids,
        columns,
        [c.feature_space for c in clusterings],
        modalities,
        labels,
        subset,
        selection_id,
        total - len(new_ids),
        [r.objective for r in runs],
        params.seed + best,
        run,
        weighting,
        pairs,
        _duplicates_table(selection_id, found),
        None if not (dup.size or out_sync.size) else np.r_[np.arange(n_old), candidates],
        refinement,
    )


def _weighting_columns(weighting: PairWeighting, pairs, clusterings: list[Clustering]) -> dict:
    names = [c.feature_space for c in clusterings]
    return {
        "pair_weights": json.dumps(weighting.to_records(pairs, names)),
        "weighting": weighting.rule + (f" ({weighting.note})" if weighting.note else ""),
    }


def curate(wh: Warehouse, params: SelectionParams, *, progress: Callable[[int, int], None] | None = None) -> Curation:
    """Select the curated subset over every batch, with the current clusterings."""
    clusterings, modal = _ordered_clusterings(wh)
    clip_ids, labels, columns, excluded = assignment_matrix(wh, clusterings)
    if len(clip_ids) == 0:
        raise ValueError("no clip has an assignment for every clustering: nothing to select from")
    modalities = [modal[c] for c in columns]
    budget: int | float = params.budget if params.budget <= 1.0 else int(params.budget)
    pairs = resolve_pairs(params.pairing, len(columns), modalities)
    pool_rows, dup, found = None, np.zeros(0, np.int64), None
    starts = np.cumsum([0] + list(clip_ids.counts))

    def ids_of(rows: np.ndarray) -> list[tuple[str, str]]:
        batch_of = np.searchsorted(starts, rows, side="right") - 1
        return [(i, clip_ids.batches[b]) for i, b in zip(clip_ids.ids_at(rows).to_list(), batch_of)]

    if params.dedup_cosine > 0:
        dup, found = _semantic_duplicates(wh, params, labels, clusterings, ids_of, np.ones(len(clip_ids), bool))
        pool_rows = np.setdiff1d(np.arange(len(clip_ids)), dup) if dup.size else None
    sync_version = wh.version("clip_sync")  # read before the flags: a later estimate is newer
    out_sync = np.zeros(0, np.int64)
    if params.sync_filter == "exclude":  # clips flagged out of sync leave the pool
        flagged = out_of_sync_clips(wh, list(clip_ids.batches))
        if flagged:
            out_sync = clip_ids.rows_of(sorted(flagged))
            pool_rows = np.setdiff1d(np.arange(len(clip_ids)) if pool_rows is None else pool_rows, out_sync)
    pool = labels if pool_rows is None else labels[pool_rows]
    weighting = _weighting(pool, params, pairs, modalities)
    runs, best = _best_of_restarts(
        labels,
        budget,
        params,
        modalities,
        pool.shape[0],
        progress,
        pair_weights=weighting.weights,
        **({} if pool_rows is None else {"candidates": pool_rows}),
    )
    space_of = {c.clustering_id: c.feature_space for c in clusterings}
    refinement = _refine(
        wh,
        params,
        labels,
        ids_of,
        np.arange(len(clip_ids)) if pool_rows is None else pool_rows,
        runs[best],
        weighting,
        pairs,
        [space_of[c] for c in columns],
    )
    sel = runs[best] if refinement is None else refinement.selection
    # the pool by content: which batches, how many clips each, and a digest of their labels
    # (two pools of the same size must not share an id: the run row would be overwritten; the
    # same pool re-selected gets the same id, so re-running everything changes no table)
    payload = json.dumps(
        {
            "params": asdict(params),
            "clusterings": columns,
            "n": len(clip_ids),
            "removed": dup.size,
            "batches": list(clip_ids.batches),
            "counts": [int(c) for c in clip_ids.counts],
            "labels": hashlib.blake2b(np.ascontiguousarray(labels).tobytes(), digest_size=16).hexdigest(),
        },
        sort_keys=True,
    )
    selection_id = hashlib.blake2b(payload.encode(), digest_size=8).hexdigest()
    chosen = pl.DataFrame(
        {
            "clip_id": clip_ids.ids_at(sel.indices),
            "rank": np.arange(1, len(sel) + 1),
            "gain": sel.gains,
            "step": sel.steps,
            "clusters": pl.Series(labels[sel.indices].astype(np.int32).tolist(), dtype=pl.List(pl.Int32)),
            **_refinement_columns(sel.indices, refinement),
        }
    )
    clips = wh.scan("clips").select("clip_id", "video_id", "path", "batch", "start_s", "end_s")
    # streaming: the clips table is read in morsels against the chosen ids, never whole
    subset = (
        chosen.lazy()
        .join(clips, on="clip_id", how="left")
        .with_columns(pl.lit(selection_id).alias("selection_id"))
        .sort("rank")
        .collect(engine="streaming")
    )
    batches = [b for b, n in zip(clip_ids.batches, clip_ids.counts) if n > 0]  # only batches that contributed rows
    run = {
        "selection_id": selection_id,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="microseconds"),
        "params": json.dumps(
            {**asdict(params), "assignments_version": clip_ids.version, "sync_version": sync_version}, sort_keys=True
        ),
        "clustering_ids": columns,
        "feature_spaces": [c.feature_space for c in clusterings],
        "batches": batches,
        "pool_size": pool.shape[0],
        "size": len(sel),
        "objective": float(sel.objective),
        "seed": params.seed + best,
        "semantic_duplicates": int(dup.size),
        "out_of_sync_excluded": int(out_sync.size),
        **_weighting_columns(weighting, pairs, clusterings),
        **_refinement_record(refinement),
    }
    return Curation(
        sel,
        clip_ids,
        columns,
        [c.feature_space for c in clusterings],
        modalities,
        labels,
        subset,
        selection_id,
        excluded,
        [r.objective for r in runs],
        params.seed + best,
        run,
        weighting,
        pairs,
        _duplicates_table(selection_id, found),
        pool_rows,
        refinement,
    )
