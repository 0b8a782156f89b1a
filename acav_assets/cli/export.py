"""``acav export``: the curated subset as WebDataset shards and a manifest (the ``curated_clips``
asset from the command line); the shard and encoding options are derived from its run config."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from acav_assets.cli.common import existing_warehouse
from acav_assets.cli.options import add_config_options, given

__all__ = ["add_parser", "run"]

EXPORT_OPTIONS = (
    "shard_max_mb",
    "shard_max_clips",
    "workers",
    "codec",
    "crf",
    "preset",
    "fps",
    "short_side",
    "sample_rate",
    "with_arrays",
)


def add_parser(sub) -> None:
    from acav_assets.defs.export import CuratedClipsConfig

    ex = sub.add_parser(
        "export",
        help="write the curated clips as WebDataset shards (exact re-encoded clips + JSON) "
        "and a manifest; incremental and resumable",
    )
    ex.add_argument("--warehouse", required=True)
    ex.add_argument("--landing", required=True, help="the landing area the videos were curated from (folder or URI)")
    ex.add_argument("--out", required=True, help="export folder (shards, manifest.parquet, manifest.csv)")
    ex.add_argument(
        "--allow-link-root",
        action="append",
        default=[],
        metavar="FOLDER",
        help="a folder outside the landing area its links may point into (as given to acav curate)",
    )
    ex.add_argument("--as-of", default=None, help="export curated_subset as of a Delta version or ISO time")
    add_config_options(
        ex,
        CuratedClipsConfig,
        EXPORT_OPTIONS,
        flags={
            "shard_max_mb": ("--shard-mb", "--shard-max-mb"),
            "shard_max_clips": ("--shard-clips", "--shard-max-clips"),
        },
    )
    ex.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from acav_assets.core.media.landing import Landing
    from acav_assets.core.stages.curated_clips import export_curated
    from acav_assets.core.warehouse.local_state import check_writable_folder
    from acav_assets.defs.export import CuratedClipsConfig
    from acav_assets.defs.platform.progress import Progress
    from acav_assets.defs.platform.resources import json_from_env

    os.environ.setdefault("ACAV_PROGRESS", "1")
    wh = existing_warehouse(args.warehouse)
    check_writable_folder(args.out, "--out")
    try:
        cfg = CuratedClipsConfig(**given(args, EXPORT_OPTIONS)).export_config()
    except ValueError as exc:  # the core's message names the setting
        raise ValueError(f"acav export: {exc}") from None
    landing = Landing(
        args.landing,
        json_from_env("ACAV_LANDING_STORAGE_OPTIONS"),
        os.environ.get("ACAV_LANDING_CACHE") or None,
        allowed_link_roots=[str(Path(r).resolve()) for r in args.allow_link_root],
    )
    report = export_curated(
        wh,
        landing,
        args.out,
        as_of=args.as_of,
        config=cfg,
        progress=Progress(lambda m: None, "exporting", "clip"),
        on_shard=lambda name, n, size: print(f"  wrote {name}: {n} clips, {size / 1e6:.1f} MB", flush=True),
        log=lambda m: print(f"  {m}", flush=True),
    )
    print(
        f"exported selection {report.selection_id} (curated_subset version {report.subset_version}): "
        f"{report.written} clip(s) written in {len(report.shards_written)} new shard(s), "
        f"{report.already} already exported, {len(report.failed)} failed "
        f"({report.bytes_written / 1e6:.1f} MB, {report.clips_per_second:.1f} clips/s)"
    )
    for cid, why in sorted(report.failed.items())[:20]:
        print(f"  not exported: {cid}: {why}")
    if report.stale:
        print(
            f"  note: {report.stale} sample(s) in these shards belong to an earlier selection (in_selection = false "
            f"in the manifest); export a new selection into a new folder to leave them out"
        )
    print(f"manifest: {Path(args.out) / 'manifest.parquet'} (and manifest.csv; table export_manifest)")
    return 0 if not report.failed else 1
