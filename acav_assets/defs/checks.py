"""Asset checks: what makes the tables trustworthy. Each reads the Delta tables (per-batch checks:
their partition's batch) and says what it found."""

import warnings

import dagster as dg
import numpy as np
import polars as pl

from acav_assets.core.selection import mean_mutual_information, resolve_pairs
from acav_assets.core.stages.centroids import load_clusterings
from acav_assets.core.stages.labels import assignment_matrix
from acav_assets.core.warehouse.report import latest_run, run_pair_weights
from acav_assets.defs.assets import batches, clip_embeddings, cluster_assignments, videos
from acav_assets.defs.resources import ExtractorResource, WarehouseResource

# partitioned checks are a preview in Dagster 1.13: chosen knowingly (per-batch verdicts), not
# repeated at every import of the code location
warnings.filterwarnings("ignore", message=".*partitions_def on an AssetCheckSpec.*")


def _batch_filter(context) -> pl.Expr:
    """The checked batch: the per-batch checks are partitioned like their assets (a preview
    feature in Dagster 1.13), so each batch has its own verdict and a failed batch blocks only
    itself; without a partition, every batch."""
    batch = context.partition_key if context.has_partition_key else None
    return pl.col("batch") == batch if batch else pl.lit(True)


@dg.asset_check(
    asset=videos,
    partitions_def=batches,
    description="Every near-duplicate of the batch names a kept copy (a video with status ok, in this or "
    "an earlier batch): a family keeps exactly one video.",
)
def near_duplicates_point_at_kept_copies(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    wh = warehouse.get()
    nd = (
        wh.scan("videos")
        .filter(_batch_filter(context) & (pl.col("status") == "near_duplicate"))
        .select("path", "duplicate_of")
        .collect()
    )
    kept = (
        (
            wh.scan("videos")
            .filter((pl.col("status") == "ok") & pl.col("path").is_in(nd["duplicate_of"].implode()))
            .select("path")
            .collect()["path"]
            .to_list()
        )
        if nd.height
        else []
    )
    orphans = nd.filter(~pl.col("duplicate_of").is_in(kept))
    return dg.AssetCheckResult(
        passed=orphans.height == 0,
        metadata={
            "near_duplicates": nd.height,
            "families": nd["duplicate_of"].n_unique() if nd.height else 0,
            "pointing_at_no_kept_copy": orphans.height,
            "examples": dg.MetadataValue.json(nd.head(5).to_dicts()),
        },
    )


#: A batch whose usable share of files (ok among those that are not copies) is below this gets a
#: WARN: most of what landed could not be used, which is worth a look even if nothing failed.
MIN_OK_SHARE = 0.5
_COPIES = ("duplicate", "near_duplicate")  # repeats of kept videos: not a fault of the batch


@dg.asset_check(
    asset=videos,
    partitions_def=batches,
    description=f"At least {MIN_OK_SHARE:.0%} of the batch's files that are not copies of kept videos "
    f"have status ok (WARN otherwise: the batch is ingested, the bad files are recorded "
    f"with their reasons, but most of what landed could not be used).",
)
def batch_files_mostly_ok(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
    counts = dict(
        warehouse.get().scan("videos").filter(_batch_filter(context)).group_by("status").len().collect().iter_rows()
    )
    judged = sum(n for st, n in counts.items() if st not in _COPIES)
    ok = counts.get("ok", 0)
    share = ok / judged if judged else 1.0
    return dg.AssetCheckResult(
        passed=share >= MIN_OK_SHARE,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "ok_share": round(share, 3),
            "ok": ok,
            "files_not_copies": judged,
            "min_ok_share": MIN_OK_SHARE,
            "status_counts": dg.MetadataValue.json(dict(sorted(counts.items()))),
        },
    )


@dg.asset_check(
    asset=clip_embeddings,
    blocking=True,
    partitions_def=batches,
    description="No NaN/inf values and every vector has its feature space's declared dimension. "
    "Blocking: a batch that fails it is not assigned (its run fails, and the batch shows as "
    "pending in the subset's checks) until it is re-embedded.",
)
def embeddings_finite_and_declared_dims(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource, extractors: ExtractorResource
) -> dg.AssetCheckResult:
    from acav_assets.core.features.profiles import profile_feature_spaces

    declared = {fs.name: fs.dim for fs in profile_feature_spaces(extractors.build("cpu"))}
    df = (
        warehouse.get()
        .scan("clip_embeddings")
        .filter(_batch_filter(context))
        .select(
            "clip_id",
            "feature_space",
            pl.col("vector").list.len().alias("dim"),
            pl.col("vector").list.eval(pl.element().is_finite().not_()).list.any().alias("nonfinite"),
        )
        .collect()
    )
    bad_dim = df.filter(pl.col("dim") != pl.col("feature_space").replace_strict(declared, default=-1))
    nonfinite = df.filter(pl.col("nonfinite"))
    # a batch whose every file was bad has no rows: that is recorded in videos, not an invalid embedding
    passed = bad_dim.height == 0 and nonfinite.height == 0
    return dg.AssetCheckResult(
        passed=passed,
        metadata={
            "rows": df.height,
            "wrong_dimension": bad_dim.height,
            "nan_or_inf": nonfinite.height,
            "examples": dg.MetadataValue.json(
                (bad_dim.head(5).to_dicts() + nonfinite.head(5).to_dicts()) if not passed else []
            ),
        },
    )


@dg.asset_check(
    asset=cluster_assignments,
    partitions_def=batches,
    description="Every embedded clip has exactly one assignment per current clustering.",
)
def assignments_complete(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
    wh = warehouse.get()
    ids = wh.scan("cluster_centroids").select("clustering_id").unique().collect()["clustering_id"].to_list()
    flt = _batch_filter(context)
    embedded = wh.scan("clip_embeddings").filter(flt).select("clip_id").unique().collect()
    got = (
        wh.scan("cluster_assignments")
        .filter(flt & pl.col("clustering_id").is_in(ids))
        .group_by("clip_id")
        .agg(pl.len().alias("n"), pl.col("clustering_id").n_unique().alias("distinct"))
        .collect()
    )
    joined = embedded.join(got, on="clip_id", how="left").with_columns(
        pl.col("n").fill_null(0), pl.col("distinct").fill_null(0)
    )
    bad = joined.filter((pl.col("n") != len(ids)) | (pl.col("distinct") != len(ids)))
    return dg.AssetCheckResult(
        passed=bool(ids) and embedded.height > 0 and bad.height == 0,
        metadata={
            "clusterings": len(ids),
            "clips": embedded.height,
            "clips_incomplete": bad.height,
            "examples": dg.MetadataValue.json(bad.head(5).to_dicts()),
        },
    )


@dg.asset_check(asset="curated_subset", description="The subset has the size the budget asked for and no clip twice.")
def subset_size_and_unique(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
    df = warehouse.get().read("curated_subset")
    event = context.instance.get_latest_materialization_event(dg.AssetKey("curated_subset"))
    meta = event.asset_materialization.metadata if event and event.asset_materialization else {}
    expected = meta["expected_size"].value if "expected_size" in meta else None
    budget = meta["budget"].value if "budget" in meta else None
    pool = meta["pool_size"].value if "pool_size" in meta else None
    if expected is None and budget is not None and pool is not None:  # materializations of older versions
        expected = round(budget * pool) if budget <= 1 else int(budget)
    dupes = df.height - df["clip_id"].n_unique() if df.height else 0
    passed = df.height > 0 and dupes == 0 and (expected is None or df.height == expected)
    return dg.AssetCheckResult(
        passed=passed,
        metadata={"rows": df.height, "expected": expected if expected is not None else -1, "duplicates": dupes},
    )


MIN_POOL_TO_JUDGE = 100  # the pool size below which pair weighting also stops judging pairs
MIN_SUBSET_TO_JUDGE = 10


@dg.asset_check(
    asset="curated_subset",
    description="The subset's objective beats random subsets of the same size "
    "drawn from the same pool (5 draws). On a pool of fewer than 100 "
    "clips (or a subset under 10) it warns that it cannot judge.",
)
def subset_beats_random(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
    wh = warehouse.get()
    subset = wh.read("curated_subset")
    clusterings = load_clusterings(wh)
    modal = {c.clustering_id: c.feature_space.split("/", 1)[0] for c in clusterings}
    clusterings = sorted(clusterings, key=lambda c: (modal[c.clustering_id] != "audio", c.feature_space))
    clip_ids, labels, columns, _ = assignment_matrix(wh, clusterings)
    event = context.instance.get_latest_materialization_event(dg.AssetKey("curated_subset"))
    meta = event.asset_materialization.metadata if event and event.asset_materialization else {}
    pairing = meta["pairing"].value if "pairing" in meta else "bipartite"
    pairs = resolve_pairs(pairing, len(columns), [modal[c] for c in columns])
    rows = clip_ids.rows_of(subset["clip_id"])
    if rows.size == 0:
        return dg.AssetCheckResult(passed=False, metadata={"reason": "empty subset or no assignments"})
    if len(clip_ids) < MIN_POOL_TO_JUDGE or rows.size < MIN_SUBSET_TO_JUDGE:
        # a handful of clips: MI of random subsets is as noisy as ours, no verdict is possible
        return dg.AssetCheckResult(
            passed=False,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "reason": f"not judged: a pool of {len(clip_ids)} clips and a subset of {rows.size} are too small to tell "
                f"a selection from random (needs >= {MIN_POOL_TO_JUDGE} and >= {MIN_SUBSET_TO_JUDGE})",
                "pool_size": len(clip_ids),
                "subset_size": int(rows.size),
            },
        )
    weights = run_pair_weights(latest_run(wh))  # the objective the selection maximised
    if weights is not None and weights.size != len(pairs):
        weights = None
    ours = mean_mutual_information(labels, rows, pairing=pairs, pair_weights=weights)
    rng = np.random.default_rng(0)
    randoms = [
        mean_mutual_information(
            labels, rng.choice(len(clip_ids), rows.size, replace=False), pairing=pairs, pair_weights=weights
        )
        for _ in range(5)
    ]
    return dg.AssetCheckResult(
        passed=bool(ours > max(randoms)),
        metadata={
            "objective": float(ours),
            "random_best": float(max(randoms)),
            "random_mean": float(np.mean(randoms)),
        },
    )


@dg.asset_check(
    asset="curated_subset",
    description="Every batch that has clips is in the selection; a batch "
    "still pending (ingest failed or under way, assignments "
    "incomplete) is named, as a WARN.",
)
def subset_covers_every_batch(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    wh = warehouse.get()
    with_clips = set(wh.batches("clips"))
    try:
        selected = set(latest_run(wh)["batches"])
    except ValueError as exc:
        return dg.AssetCheckResult(passed=False, metadata={"reason": str(exc)})
    pending = sorted(with_clips - selected)
    return dg.AssetCheckResult(
        passed=not pending,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"batches_selected": len(selected), "batches_pending": dg.MetadataValue.json(pending)},
    )


CHECKS = [
    near_duplicates_point_at_kept_copies,
    batch_files_mostly_ok,
    embeddings_finite_and_declared_dims,
    assignments_complete,
    subset_size_and_unique,
    subset_beats_random,
    subset_covers_every_batch,
]
