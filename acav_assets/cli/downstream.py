"""``acav bench downstream``: train the downstream AVTS-style model on the curated subset and on a
random subset of the same pool (and the whole pool, and the truly matching clips), then compare
them with linear probes on a held-out labelled split (the ``downstream_report`` asset from the
command line; its options are derived from that asset's run config)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from acav_assets.cli.common import existing_warehouse
from acav_assets.cli.options import add_config_options, given

__all__ = ["add_parser", "run"]


def _options() -> tuple[str, ...]:
    """Every setting of the ``downstream_report`` run config, one option each."""
    from acav_assets.defs.export import DownstreamReportConfig

    return tuple(DownstreamReportConfig.model_fields)


def add_parser(bench_sub) -> None:
    from acav_assets.defs.export import DownstreamReportConfig

    ds = bench_sub.add_parser(
        "downstream",
        help="train the same audio-visual model on the curated subset, a random subset of equal size, the pool "
        "and the truly matching clips; compare linear probes and retrieval on a held-out labelled split",
    )
    ds.add_argument("--warehouse", required=True)
    ds.add_argument("--landing", required=True, help="the landing area the videos were curated from (folder or URI)")
    ds.add_argument("--json", default=None, metavar="FILE", help='also write {"rows": [...]} here')
    ds.add_argument(
        "--workdir",
        default=None,
        help="where the training sets' shards go (default: export/downstream next to a local warehouse; "
        "a rerun on the same clips reuses them)",
    )
    add_config_options(ds, DownstreamReportConfig, _options())
    ds.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from acav_assets.core.media.landing import Landing
    from acav_assets.core.stages.downstream import downstream_report
    from acav_assets.core.warehouse.local_state import check_writable_folder
    from acav_assets.defs.export import DownstreamReportConfig, default_export_dir
    from acav_assets.defs.platform.resources import json_from_env

    wh = existing_warehouse(args.warehouse)
    try:
        config = DownstreamReportConfig(**given(args, _options()))
        config.check()
    except ValueError as exc:  # pydantic's and the core's messages name the setting
        raise ValueError(f"acav bench downstream: {exc}") from None
    work = args.workdir or str(Path(default_export_dir(args.warehouse)) / "downstream")
    check_writable_folder(work, "--workdir")
    if args.json:
        check_writable_folder(str(Path(args.json).resolve().parent), "--json")
    landing = Landing(
        args.landing, json_from_env("ACAV_LANDING_STORAGE_OPTIONS"), os.environ.get("ACAV_LANDING_CACHE") or None
    )
    report = downstream_report(
        wh,
        landing,
        config.probe_labels,
        **config.report_kwargs(),
        work_dir=work,
        progress=lambda m: print(f"  {m}", file=sys.stderr, flush=True),
    )
    print(report.markdown)
    print(f"\n{report.verdict()}")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": report.json_rows()}, indent=1))
        print(f"rows: {args.json}")
    return 0
