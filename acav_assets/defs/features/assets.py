"""The feature assets: ``clip_embeddings`` (every clip's audio and picture, several layers each),
``cluster_centroids`` (k-means per feature space on a sample of every batch, then frozen) and
``cluster_assignments`` (each batch's clips labelled with the frozen centroids)."""

import time
from collections.abc import Iterator

import dagster as dg
import polars as pl

from acav_assets.core.features.base import profile_feature_spaces
from acav_assets.core.stages.assignments import assignment_rows
from acav_assets.core.stages.centroids import fit_clusterings, load_clusterings, too_few_to_cluster
from acav_assets.core.stages.embeddings import embedding_rows
from acav_assets.defs.features.config import ClusteringConfig
from acav_assets.defs.platform import versions
from acav_assets.defs.platform.executors import gpu_op_tags
from acav_assets.defs.platform.metadata import counts_table, markdown_table, reasons_table, table_metadata
from acav_assets.defs.platform.partitions import FEATURES, batches
from acav_assets.defs.platform.progress import Progress
from acav_assets.defs.platform.resources import (
    ComputeResource,
    ExtractorResource,
    LandingResource,
    WarehouseResource,
)
from acav_assets.defs.platform.steps import (
    BATCH_RETRY,
    check_config,
    data_version,
    fail,
    final_when_disk_full,
    profile_identity,
    stage_or_local,
    staging_metadata,
)
from acav_assets.defs.platform.versions import CODE_VERSIONS

__all__ = ["clip_embeddings", "cluster_assignments", "cluster_centroids"]


@dg.asset(
    partitions_def=batches,
    group_name=FEATURES,
    kinds={"torch", "deltalake"},
    deps=["clips"],
    pool="gpu",
    code_version=CODE_VERSIONS["clip_embeddings"],
    retry_policy=BATCH_RETRY,
    op_tags=gpu_op_tags(),
    description="Audio and visual embeddings of every clip, several layers each "
    "(feature_space = <modality>/<model>/<layer>).",
)
@final_when_disk_full
def clip_embeddings(
    context: dg.AssetExecutionContext,
    landing: LandingResource,
    warehouse: WarehouseResource,
    compute: ComputeResource,
    extractors: ExtractorResource,
) -> dg.MaterializeResult:
    batch = context.partition_key
    wh = warehouse.get()
    try:
        exs = extractors.build(compute.device)
    except (ValueError, FileNotFoundError) as exc:
        raise fail(exc) from exc
    clip_list = wh.scan("clips").filter(pl.col("batch") == batch).sort("clip_id").collect().to_dicts()
    progress = Progress(context.log.info, f"embedding batch {batch}", "clip")
    staged = stage_or_local(context, landing, batch)  # folder gone: every clip's failure is recorded below
    t0 = time.perf_counter()
    df, failed = embedding_rows(
        clip_list,
        staged.local_root,
        exs,
        batch_size=compute.batch_size,
        decode_workers=compute.decode_workers,
        progress=progress,
        allowed_roots=tuple(landing.allowed_link_roots),
    )
    seconds = time.perf_counter() - t0
    for cid, why in failed.items():
        context.log.warning(f"clip {cid} not embedded: {why}")
    wh.write_batch("clip_embeddings", batch, df)
    spaces = profile_feature_spaces(exs)
    embedded = len(clip_list) - len(failed)
    version = versions.embeddings_version(
        versions.recorded_version(context.instance, "clips", batch), profile_identity(extractors)
    )
    return dg.MaterializeResult(
        **data_version(version),
        metadata={
            **table_metadata("clip_embeddings", df, wh=wh),
            "clips_embedded": embedded,
            "clips_failed": len(failed),
            "failures": dg.MetadataValue.md(reasons_table(failed, "clip") if failed else "_none_"),
            "feature_spaces": dg.MetadataValue.md(
                counts_table({fs.name: fs.dim for fs in spaces}, "feature space", "dim")
            ),
            "device": str(exs[0].device),
            "seconds": round(seconds, 2),
            "clips_per_second": round(embedded / seconds, 2) if seconds > 0 else 0.0,
            **staging_metadata(staged),
        },
    )


@dg.asset(
    group_name=FEATURES,
    kinds={"faiss", "deltalake"},
    # frozen by design: a new batch's embeddings do not make the centroids stale (no
    # partition of clip_embeddings is an input of the staleness; the edge stays in the
    # lineage). The fit is explicit: once when missing (`fit_when_missing`), then the refit
    # schedule (pool growth) or a change of the feature spaces (acav curate)
    deps=[dg.AssetDep(clip_embeddings, partition_mapping=dg.SpecificPartitionsPartitionMapping([]))],
    code_version=CODE_VERSIONS["cluster_centroids"],
    # too few clips to cluster is a state, not a failure: no materialization, and the
    # assignments and the selection wait for more data
    output_required=False,
    description="k-means centroids per feature space, fitted on a bounded sample of all batches; "
    "frozen for assigning new batches until the next refit. Waits (no materialization) while "
    "the clips embedded so far are too few to cluster.",
)
def cluster_centroids(
    context: dg.AssetExecutionContext,
    config: ClusteringConfig,
    warehouse: WarehouseResource,
    extractors: ExtractorResource,
) -> Iterator[dg.MaterializeResult]:
    check_config(config)
    wh = warehouse.get()
    waiting = too_few_to_cluster(wh, config.k or None, empty_waits=False)  # nothing embedded: an error
    if waiting:
        context.log.warning(waiting)
        return
    try:
        clusterings = fit_clusterings(
            wh, config.kmeans_config(), k=config.k or None, nredo=config.nredo or None, log=context.log.info
        )
    except ValueError as exc:
        raise fail(exc) from exc
    rows = [r for cl in clusterings for r in cl.to_rows()]
    wh.overwrite("cluster_centroids", rows)
    summary = pl.DataFrame(
        [
            {
                "clustering_id": c.clustering_id,
                "feature_space": c.feature_space,
                "k": c.k,
                "sample": c.params["n_sample"],
                "inertia": c.params["objective"],
            }
            for c in clusterings
        ]
    )
    fit = versions.fit_version(profile_identity(extractors), config.model_dump())
    version = versions.centroids_version(fit, [c.clustering_id for c in clusterings])
    yield dg.MaterializeResult(
        **data_version(version),
        metadata={
            "dagster/row_count": len(rows),
            "dagster/column_schema": table_metadata("cluster_centroids", pl.DataFrame())["dagster/column_schema"],
            "clusterings": dg.MetadataValue.md(markdown_table(summary, limit=100)),
            "clustering_ids": dg.MetadataValue.json([c.clustering_id for c in clusterings]),
            "fit_version": fit,
        },
    )


@dg.asset(
    partitions_def=batches,
    group_name=FEATURES,
    kinds={"faiss", "deltalake"},
    code_version=CODE_VERSIONS["cluster_assignments"],
    retry_policy=BATCH_RETRY,
    deps=[clip_embeddings, cluster_centroids],
    # not for embeddings that failed their blocking validity check (NaN/inf, wrong dimension);
    # embeddings materialized without the check (e.g. by hand, checks deselected) still flow
    automation_condition=(
        dg.AutomationCondition.eager()
        & dg.AutomationCondition.all_deps_match(
            dg.AutomationCondition.all_checks_match(~dg.AutomationCondition.check_failed(), blocking_only=True)
        )
    ).with_label("eager, unless the embeddings failed their blocking check"),
    # part of each batch's ingest run; before the first fit there is nothing to assign to
    # (no materialization: automation assigns the batch once the centroids exist)
    output_required=False,
    description="Nearest frozen centroid of every clip of the batch, per clustering. Waits (no "
    "materialization) while there are no centroids yet.",
)
@final_when_disk_full
def cluster_assignments(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> Iterator[dg.MaterializeResult]:
    batch = context.partition_key
    wh = warehouse.get()
    if wh.scan("cluster_centroids").head(1).collect().height == 0:
        context.log.info(f"no centroids yet: batch {batch} is assigned once they are fitted")
        return
    try:
        clusterings = load_clusterings(wh)
    except ValueError as exc:
        raise fail(exc) from exc
    df = assignment_rows(wh, batch, clusterings)
    wh.write_batch("cluster_assignments", batch, df)
    embedded = wh.scan("clip_embeddings").filter(pl.col("batch") == batch).select("clip_id").unique().collect().height
    complete = df.group_by("clip_id").len().filter(pl.col("len") == len(clusterings)).height if df.height else 0
    incomplete = embedded - complete
    if incomplete:
        context.log.warning(
            f"{incomplete} clip(s) of batch {batch} have NaN/inf embeddings in some feature space: left out of the pool"
        )
    version = versions.assignments_version(
        versions.recorded_version(context.instance, "clip_embeddings", batch), {c.clustering_id for c in clusterings}
    )
    yield dg.MaterializeResult(
        **data_version(version),
        metadata={
            **table_metadata("cluster_assignments", df, wh=wh),
            "clusterings": len(clusterings),
            "clips": df["clip_id"].n_unique() if df.height else 0,
            "clips_left_out_nonfinite": incomplete,
        },
    )
