"""The export: ``curated_clips``, the curated subset as WebDataset shards for training (the same
as ``acav export``), and ``downstream_report``, what a model trained on it learns against one
trained on a random subset (the same as ``acav bench downstream``); both materialized on request."""

import base64
import os
from pathlib import Path

import dagster as dg
import polars as pl

from acav_assets.core.statuses import ExportStatus
from acav_assets.defs.export.config import CuratedClipsConfig, DownstreamReportConfig
from acav_assets.defs.platform.metadata import reasons_table, table_metadata
from acav_assets.defs.platform.partitions import CURATION
from acav_assets.defs.platform.progress import Progress
from acav_assets.defs.platform.resources import LandingResource, WarehouseResource
from acav_assets.defs.platform.steps import check_config, fail
from acav_assets.defs.platform.versions import CODE_VERSIONS

__all__ = ["curated_clips", "default_export_dir", "downstream_report"]


def default_export_dir(warehouse_root: str) -> str:
    """``$ACAV_EXPORT_DIR``, else ``export`` next to a local warehouse."""
    env = os.environ.get("ACAV_EXPORT_DIR", "").strip()
    if env:
        return env
    if "://" in warehouse_root:
        raise ValueError("set the export folder (config out_dir or ACAV_EXPORT_DIR): the warehouse is not local")
    return str(Path(warehouse_root).parent / "export")


@dg.asset(
    group_name=CURATION,
    kinds={"pyav", "webdataset"},
    deps=["curated_subset"],
    code_version=CODE_VERSIONS["curated_clips"],
    description="The curated subset as training data: WebDataset shards of exact clips (<clip_id>.mp4 "
    "re-encoded to the window, <clip_id>.json with ids, window, rank, gain, clusters, selection) "
    "and a manifest. Incremental (only clips not yet exported, into new shards), resumable. "
    "Materialized on request (not by automation): exports are large.",
)
def curated_clips(
    context: dg.AssetExecutionContext,
    config: CuratedClipsConfig,
    landing: LandingResource,
    warehouse: WarehouseResource,
) -> dg.MaterializeResult:
    from acav_assets.core.stages.curated_clips import export_curated

    check_config(config)
    try:
        cfg = config.export_config()
        out = config.out_dir or default_export_dir(warehouse.root)
        progress = Progress(context.log.info, "exporting", "clip")
        report = export_curated(
            warehouse.get(),
            landing.get(),
            out,
            as_of=config.as_of or None,
            config=cfg,
            progress=progress,
            on_shard=lambda name, n, size: context.log.info(f"wrote {name}: {n} clips, {size / 1e6:.1f} MB"),
            log=context.log.info,
        )
    except ValueError as exc:
        raise fail(exc) from exc
    for cid, why in list(report.failed.items())[:20]:
        context.log.warning(f"clip {cid} not exported: {why}")
    m = report.manifest
    shards = m.filter(pl.col("status") == ExportStatus.OK)["shard"].n_unique()
    return dg.MaterializeResult(
        metadata={
            **table_metadata(
                "export_manifest",
                m.filter(pl.col("in_selection"))
                .sort("rank")
                .select("rank", "clip_id", "shard", "index_in_shard", "start_s", "end_s", "status"),
            ),
            "export_dir": dg.MetadataValue.path(str(Path(out).resolve())),
            "selection_id": report.selection_id,
            "subset_version": report.subset_version,
            "clips_selected": report.selected,
            "clips_written": report.written,
            "clips_already_exported": report.already,
            "clips_failed": len(report.failed),
            "shards": shards,
            "shards_written": len(report.shards_written),
            "mb_written": round(report.bytes_written / 1e6, 2),
            "seconds": round(report.seconds, 2),
            "clips_per_second": round(report.clips_per_second, 2),
            "stale_samples": report.stale,
            "failures": dg.MetadataValue.md(reasons_table(report.failed, "clip") if report.failed else "_none_"),
        }
    )


@dg.asset(
    group_name=CURATION,
    kinds={"pytorch", "webdataset"},
    deps=["curated_subset"],
    code_version=CODE_VERSIONS["downstream_report"],
    description="What the curation buys: the same small AVTS-style audio-visual model trained for the same "
    "steps on the curated subset, a random subset of the pool of the same size, the whole pool and (with a "
    "truth CSV) the truly matching clips, from WebDataset shards; linear probes and audio-to-picture "
    "retrieval on a held-out labelled split. Materialized on request: training takes minutes.",
)
def downstream_report(
    context: dg.AssetExecutionContext,
    config: DownstreamReportConfig,
    landing: LandingResource,
    warehouse: WarehouseResource,
) -> dg.MaterializeResult:
    from acav_assets.core.stages.downstream import downstream_report as compare

    check_config(config)
    try:
        work = Path(default_export_dir(warehouse.root)) / "downstream"
    except ValueError:  # a remote warehouse: the shards go to a temporary folder
        work = None
    try:
        report = compare(
            warehouse.get(),
            landing.get(),
            config.probe_labels,
            **config.report_kwargs(),
            work_dir=work,
            progress=context.log.info,
        )
    except ValueError as exc:
        raise fail(exc) from exc
    context.log.info(report.verdict())
    picture = base64.b64encode(report.png).decode()
    return dg.MaterializeResult(
        metadata={
            "summary": dg.MetadataValue.md(
                f"**{report.verdict()}**\n\n{report.markdown}\n\nMeans over seeds (rows: training sets "
                f"in the table's order; columns: audio probe, visual probe, R@1, class R@1; light = high):\n\n"
                f"![means](data:image/png;base64,{picture})"
            ),
            **{k: round(v, 4) for k, v in report.means.items() if k.split("_", 1)[0] in ("curated", "random")},
            "seeds": len(config.seed_list()),
            "steps": config.steps,
        }
    )
