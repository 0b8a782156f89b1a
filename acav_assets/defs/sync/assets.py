"""``clip_sync``: per batch, every clip's sound offset against its picture (weight-free: sound
onsets against picture motion), whether it is out of sync, and a histogram of the offsets."""

import dagster as dg
import polars as pl

from acav_assets.core.stages.sync import offset_histogram, sync_rows
from acav_assets.core.warehouse.tables import SCHEMAS
from acav_assets.defs.platform import versions
from acav_assets.defs.platform.metadata import counts_table, table_metadata
from acav_assets.defs.platform.partitions import FEATURES, batches
from acav_assets.defs.platform.progress import Progress
from acav_assets.defs.platform.resources import LandingResource, WarehouseResource
from acav_assets.defs.platform.steps import (
    BATCH_RETRY,
    check_config,
    data_version,
    final_when_disk_full,
    stage_or_local,
    staging_metadata,
)
from acav_assets.defs.platform.versions import CODE_VERSIONS
from acav_assets.defs.sync.config import ClipSyncConfig

__all__ = ["clip_sync"]


@dg.asset(
    partitions_def=batches,
    group_name=FEATURES,
    kinds={"pyav", "deltalake"},
    # after the embeddings: the last step that reads the batch's media, so it drops a staged copy
    deps=["clips", "clip_embeddings"],
    code_version=CODE_VERSIONS["clip_sync"],
    retry_policy=BATCH_RETRY,
    description="Per clip: the sound's offset against the picture (offset_s > 0: the sound comes late), a "
    "sync_score, and out_of_sync; null (unknown, never out of sync) where the clip shows no usable "
    "events. The selection leaves flagged clips out unless its sync_filter is keep.",
)
@final_when_disk_full
def clip_sync(
    context: dg.AssetExecutionContext, config: ClipSyncConfig, landing: LandingResource, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    check_config(config)
    batch = context.partition_key
    wh = warehouse.get()
    clip_list = wh.scan("clips").filter(pl.col("batch") == batch).sort("clip_id").collect().to_dicts()
    staged = stage_or_local(context, landing, batch)  # folder gone: every clip unknown, with the reason
    rows = sync_rows(
        clip_list,
        staged.local_root,
        flag=config.flag(),
        workers=config.workers,
        progress=Progress(context.log.info, f"estimating sync of batch {batch}", "clip"),
        allowed_roots=tuple(landing.allowed_link_roots),
    )
    wh.write_batch("clip_sync", batch, rows)
    if not landing.keep_staged:
        landing.get().release(batch)  # the last step of a batch's ingest that reads the media
    df = pl.DataFrame(rows, schema=SCHEMAS["clip_sync"])
    known = df.filter(pl.col("offset_s").is_not_null())
    version = versions.sync_version(versions.recorded_version(context.instance, "clips", batch), config.model_dump())
    return dg.MaterializeResult(
        **data_version(version),
        metadata={
            **table_metadata(
                "clip_sync", df.select("clip_id", "offset_s", "sync_score", "out_of_sync", "reason"), wh=wh
            ),
            "dagster/row_count": df.height,
            "clips_known": known.height,
            "clips_out_of_sync": int(df["out_of_sync"].fill_null(False).sum()) if df.height else 0,
            "offset_histogram": dg.MetadataValue.md(counts_table(offset_histogram(rows), "offset", "clips")),
            **staging_metadata(staged),
        },
    )
