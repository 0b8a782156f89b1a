"""Checks of the features: embeddings finite and of their declared size (blocking: a batch that
fails is not assigned); every embedded clip assigned once per clustering."""

import dagster as dg
import polars as pl

from acav_assets.defs.features.assets import clip_embeddings, cluster_assignments
from acav_assets.defs.platform.partitions import batches
from acav_assets.defs.platform.resources import ExtractorResource, WarehouseResource
from acav_assets.defs.platform.steps import batch_filter

__all__ = ["assignments_complete", "embeddings_finite_and_declared_dims"]


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
        .filter(batch_filter(context))
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
    flt = batch_filter(context)
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
