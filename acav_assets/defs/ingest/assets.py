"""The ingest assets of a batch: ``videos`` (every file probed, given a status, copies set aside)
and ``clips`` (the 10 s windows of its ok videos). Each reads, calls one core stage, writes its
table and returns metadata."""

import dataclasses
import os
from collections import Counter

import dagster as dg
import polars as pl

from acav_assets.core.stages.clips import clip_rows
from acav_assets.core.stages.videos import IngestedBatch, ingest_batch, probe_rows
from acav_assets.core.statuses import VideoStatus
from acav_assets.core.warehouse.tables import SCHEMAS
from acav_assets.defs.ingest.config import ClipsConfig, VideosConfig
from acav_assets.defs.platform import versions
from acav_assets.defs.platform.metadata import counts_table, markdown_table, table_metadata
from acav_assets.defs.platform.partitions import INGEST, batches
from acav_assets.defs.platform.progress import Progress
from acav_assets.defs.platform.resources import LandingResource, WarehouseResource
from acav_assets.defs.platform.steps import (
    BATCH_RETRY,
    check_config,
    data_version,
    fail,
    final_when_disk_full,
    stage_batch,
    stage_or_local,
    staging_metadata,
)
from acav_assets.defs.platform.versions import CODE_VERSIONS

__all__ = ["clips", "videos"]


@dg.asset(
    partitions_def=batches,
    group_name=INGEST,
    kinds={"pyav", "deltalake"},
    code_version=CODE_VERSIONS["videos"],
    retry_policy=BATCH_RETRY,
    description="One row per input file of the batch, whatever happened to it: content id, streams, "
    "duration, status (ok, no_audio, corrupt, duplicate, …) and a readable error.",
)
@final_when_disk_full
def videos(
    context: dg.AssetExecutionContext, config: VideosConfig, landing: LandingResource, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    check_config(config)
    batch = context.partition_key
    try:
        landing.check()
        probe = dataclasses.replace(config.probe_config(), allowed_roots=tuple(landing.allowed_link_roots))
        wh = warehouse.get()
        area = landing.get()
        fingerprint = area.fingerprint(batch)  # what the batch held when it was probed
        staged = stage_batch(context, landing, batch)
        rows = probe_rows(
            staged.local_root,
            batch,
            probe,
            timeout_s=config.probe_timeout_s or None,
            progress=Progress(context.log.info, f"probing batch {batch}", "file"),
        )
        nd_config = config.near_duplicate_config()  # validated even when switched off
    except ValueError as exc:
        raise fail(exc) from exc
    ingested = ingest_batch(
        wh,
        staged.local_root,
        batch,
        rows,
        nd_config if config.near_duplicates else None,
        fingerprint_workers=config.fingerprint_workers or min(4, os.cpu_count() or 1),
        allowed_roots=tuple(landing.allowed_link_roots),
        fetch=area.fetch if area.remote else None,  # earlier batches' files, released after staging
        progress=Progress(context.log.info, f"fingerprinting batch {batch}", "video"),
        log=context.log.info,
        warn=context.log.warning,
    )
    for r in ingested.rows:
        if r["status"] != VideoStatus.OK:
            context.log.warning(f"{r['path']}: {r['status']} — {r['error']}")
    version = versions.videos_version(fingerprint, config.model_dump(), landing.allowed_link_roots)
    return dg.MaterializeResult(
        **data_version(version),
        metadata={**_videos_metadata(ingested, wh), "landing_fingerprint": fingerprint, **staging_metadata(staged)},
    )


def _pairs_shown(pairs: pl.DataFrame) -> pl.DataFrame:
    """The near-duplicate pairs' columns shown in the UI (``picture_sampled``: the picture was read
    from the files for the comparison)."""
    shown = ("near_duplicate", "kept", "audio_agreement", "visual_agreement", "shift_s", "picture_sampled")
    return pairs.select([c for c in shown if c in pairs.columns])


def _videos_metadata(ingested: IngestedBatch, wh) -> dict:
    """The ``videos`` materialization's metadata: the table, the status counts, the near-duplicate
    pairs found."""
    rows, pairs = ingested.rows, ingested.pairs
    df = pl.DataFrame(rows) if rows else pl.DataFrame()
    statuses = Counter(r["status"] for r in rows)
    shown = [c for c in ("path", "status", "error", "duration_s", "width", "height") if c in df.columns]
    return {
        **table_metadata("videos", df.select(shown) if rows else df, wh=wh),
        "dagster/row_count": ingested.written,
        "ok": statuses.get(VideoStatus.OK, 0),
        "status_counts": dg.MetadataValue.md(counts_table(statuses, "status", "files")),
        "near_duplicates": len(pairs),
        **({"fingerprint_index_videos": ingested.indexed_videos} if ingested.indexed_videos is not None else {}),
        "near_duplicate_pairs": dg.MetadataValue.md(
            markdown_table(_pairs_shown(pl.DataFrame(pairs)), limit=20) if pairs else "_none_"
        ),
    }


@dg.asset(
    partitions_def=batches,
    group_name=INGEST,
    kinds={"python", "deltalake"},
    deps=[videos],
    code_version=CODE_VERSIONS["clips"],
    retry_policy=BATCH_RETRY,
    description="10 s clip windows of the batch's ok videos (centred; or on distinct shots).",
)
@final_when_disk_full
def clips(
    context: dg.AssetExecutionContext, config: ClipsConfig, landing: LandingResource, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    check_config(config)
    batch = context.partition_key
    wh = warehouse.get()
    try:
        cfg = config.clip_config()
    except ValueError as exc:
        raise fail(exc) from exc
    video_rows = wh.scan("videos").filter(pl.col("batch") == batch).collect().to_dicts()
    # only shot detection reads the media; centred windows need the probed durations alone (a folder
    # gone since probing: centred windows, failures at embedding)
    root = stage_or_local(context, landing, batch).local_root if cfg.max_clips > 1 else landing.get().local_root()
    rows = clip_rows(video_rows, root, cfg, allowed_roots=tuple(landing.allowed_link_roots))
    wh.write_batch("clips", batch, rows)
    df = pl.DataFrame(rows, schema=SCHEMAS["clips"])
    version = versions.clips_version(versions.recorded_version(context.instance, "videos", batch), config.model_dump())
    return dg.MaterializeResult(
        **data_version(version),
        metadata={
            **table_metadata("clips", df, wh=wh),
            "videos_ok": sum(v["status"] == VideoStatus.OK for v in video_rows),
        },
    )
