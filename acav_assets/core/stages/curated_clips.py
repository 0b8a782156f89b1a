"""Stage ``curated_clips``: the current (or an earlier) curated subset exported as WebDataset
shards of exact clips, with its manifest in the export folder and in the warehouse."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import polars as pl

from acav_assets.core.export.shards import ExportConfig, ExportReport, export_key, export_lock, export_subset
from acav_assets.core.media.landing import Landing
from acav_assets.core.stages.report import subset_as_of
from acav_assets.core.warehouse.tables import Warehouse

__all__ = ["export_curated"]


def export_curated(
    wh: Warehouse,
    landing: Landing,
    out_dir: str | os.PathLike,
    *,
    as_of: str | int | None = None,
    config: ExportConfig = ExportConfig(),
    progress: Callable[[int, int], None] | None = None,
    on_shard: Callable[[str, int, int], None] | None = None,
    log: Callable[[str], None] = lambda m: None,
) -> ExportReport:
    """Export ``curated_subset`` (as of a Delta version or time with ``as_of``) into ``out_dir``
    and record the manifest as the ``export_manifest`` rows of that folder."""
    if as_of is None:
        version = wh.version("curated_subset")
        if version is None:
            raise ValueError("curated_subset does not exist: curate first (acav curate, or materialize it)")
        subset, label = wh.read("curated_subset", version=version), version
    else:
        subset, label = subset_as_of(wh, as_of)
    if subset.height == 0:
        raise ValueError(f"curated_subset as of {label} is empty: nothing to export")
    # the folder's lock is held until the warehouse's copy of the manifest is written too, so a
    # second export into it (waiting meanwhile) records the manifest after this one
    with export_lock(out_dir, log):
        report = export_subset(
            subset,
            landing.media_root_of(log),
            out_dir,
            subset_version=str(label),
            config=config,
            progress=progress,
            on_shard=on_shard,
            lock=False,
            allowed_roots=landing.allowed_link_roots,
        )
        key = export_key(out_dir)
        rows = report.manifest.with_columns(
            pl.lit(key).alias("export_key"), pl.lit(str(Path(out_dir).resolve())).alias("export_dir")
        )
        wh.replace_key("export_manifest", "export_key", key, rows)
    if report.lost:
        log(f"{len(report.lost)} clip(s) listed by the manifest were missing from their shards: exported again")
    return report
