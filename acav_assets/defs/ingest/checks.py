"""Checks of a batch's files: every near-duplicate points at a kept copy; most files are usable."""

import dagster as dg
import polars as pl

from acav_assets.core.statuses import VideoStatus
from acav_assets.defs.ingest.assets import videos
from acav_assets.defs.platform.partitions import batches
from acav_assets.defs.platform.resources import WarehouseResource
from acav_assets.defs.platform.steps import batch_filter

__all__ = ["MIN_OK_SHARE", "batch_files_mostly_ok", "near_duplicates_point_at_kept_copies"]


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
        .filter(batch_filter(context) & (pl.col("status") == VideoStatus.NEAR_DUPLICATE))
        .select("path", "duplicate_of")
        .collect()
    )
    kept = (
        (
            wh.scan("videos")
            .filter((pl.col("status") == VideoStatus.OK) & pl.col("path").is_in(nd["duplicate_of"].implode()))
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
_COPIES = (VideoStatus.DUPLICATE, VideoStatus.NEAR_DUPLICATE)  # repeats of kept videos: not a fault of the batch


@dg.asset_check(
    asset=videos,
    partitions_def=batches,
    description=f"At least {MIN_OK_SHARE:.0%} of the batch's files that are not copies of kept videos "
    f"have status ok (WARN otherwise: the batch is ingested, the bad files are recorded "
    f"with their reasons, but most of what landed could not be used).",
)
def batch_files_mostly_ok(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> dg.AssetCheckResult:
    counts = dict(
        warehouse.get().scan("videos").filter(batch_filter(context)).group_by("status").len().collect().iter_rows()
    )
    judged = sum(n for st, n in counts.items() if st not in _COPIES)
    ok = counts.get(VideoStatus.OK, 0)
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
