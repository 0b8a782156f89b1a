"""Questions to a warehouse: ``acav explain`` (why a clip is in or out), ``acav report`` (tables
and a heatmap), ``acav subset`` (the subset now or as of an earlier version), and ``acav
maintain`` (compaction and vacuum)."""

from __future__ import annotations

import argparse
import json

from acav_assets.cli.common import existing_warehouse

__all__ = ["add_parsers"]


def add_parsers(sub) -> None:
    exp = sub.add_parser("explain", help="why a clip was selected, or not")
    exp.add_argument("clip_id")
    exp.add_argument("--warehouse", required=True)
    exp.add_argument("--json", action="store_true", help="print the facts as JSON")
    exp.set_defaults(func=run_explain)

    rep = sub.add_parser("report", help="summary tables and a heatmap of the strongest clustering pair")
    rep.add_argument("--warehouse", required=True)
    rep.add_argument("--out", default="acav_report", help="folder for report.md and heatmap.png")
    rep.set_defaults(func=run_report)

    mnt = sub.add_parser("maintain", help="compact the tables and vacuum files older than the retention")
    mnt.add_argument("--warehouse", required=True)
    mnt.add_argument(
        "--retain-hours",
        type=float,
        default=168.0,
        help="keep files that versions of the last N hours need (time travel reaches that far)",
    )
    mnt.add_argument("--tables", default="", help="comma-separated tables (default: all)")
    mnt.add_argument("--dry-run", action="store_true", help="say what the vacuum would remove; change nothing")
    mnt.set_defaults(func=run_maintain)

    sbs = sub.add_parser("subset", help="print the curated subset, now or as of an earlier version or time")
    sbs.add_argument("--warehouse", required=True)
    sbs.add_argument(
        "--as-of", default=None, help="Delta table version (integer) or ISO time, e.g. 2026-11-22T10:00:00+00:00"
    )
    sbs.add_argument("--csv", default=None, help="write the rows to this CSV file instead")
    sbs.add_argument("--limit", type=int, default=20)
    sbs.set_defaults(func=run_subset)


def run_explain(args: argparse.Namespace) -> int:
    from acav_assets.core.stages.report import explain_clip

    facts = explain_clip(existing_warehouse(args.warehouse), args.clip_id)
    if args.json:
        print(json.dumps(facts, indent=1))
        return 0
    print(
        f"{facts['clip_id']}  ({facts['path']} [{facts['window'][0]:g}, {facts['window'][1]:g}) s, batch {facts['batch']})"
    )
    print(f"selection {facts['selection_id']}: pairing {facts['pairing']}, objective {facts['objective']:.4f} nats")
    ref = facts["refinement"]
    if ref.get("rule") == "agreement":
        print(
            f"refinement: agreement, {ref.get('swaps', 0)} clip(s) exchanged"
            + (f" ({ref['note']})" if ref.get("note") else "")
        )
    sync = facts.get("sync")
    if sync:
        print(
            f"sync: unknown ({sync['reason']})"
            if sync["offset_s"] is None
            else f"sync: sound {sync['offset_s']:+.2f} s against the picture, score {sync['sync_score']:.2f}, "
            f"{'OUT OF SYNC' if sync['out_of_sync'] else 'in sync'} ({sync['n_events']} events)"
        )
    if "clusters" in facts:
        print("clusters: " + ", ".join(f"{fs} {c}" for fs, c in facts["clusters"].items()))
    if facts["selected"]:
        print(
            f"SELECTED at rank {facts['rank']} (step {facts['step']}), gain when chosen {facts['gain_when_chosen']:+.5f}; "
            f"removing it now would change the objective by {-facts['loss_if_removed_now']:+.5f}"
        )
        if facts.get("agreement") is not None:
            how = "exchanged in by the agreement refinement" if facts["chosen_by"] == "agreement" else "chosen by MI"
            print(f"{how}; sound-picture agreement {facts['agreement']:+.2f} (label-free, standardised)")
        print("cells it sits in, strongest first:")
        for c in facts["cells"]:
            print(
                f"  {c['pair'][0]} x {c['pair'][1]} cell {tuple(c['cell'])}: {c['selected_in_cell']} selected of "
                f"{c['pool_in_cell']} in the pool, contributes {c['mi_contribution']:.4f}"
            )
    elif "gain_if_added_now" in facts:
        print(
            f"NOT SELECTED: adding it now would change the objective by {facts['gain_if_added_now']:+.5f}; the weakest "
            f"selected clip ({facts['weakest_selected']}) adds {facts['bar_to_beat']:+.5f} (removing it would change "
            f"the objective by {-facts['bar_to_beat']:+.5f})"
        )
    else:
        print(f"NOT SELECTED: {facts['reason']}")
    return 0


def run_report(args: argparse.Namespace) -> int:
    from acav_assets.core.stages.report import write_report

    paths = write_report(existing_warehouse(args.warehouse), args.out)
    print(f"wrote {paths['report']} and {paths['heatmap']}")
    return 0


def run_maintain(args: argparse.Namespace) -> int:
    from acav_assets.core.warehouse.maintenance import maintain

    report = maintain(
        existing_warehouse(args.warehouse),
        retain_hours=args.retain_hours,
        tables=args.tables.split(",") if args.tables else None,
        dry_run=args.dry_run,
    )
    for r in report.tables:
        print(
            f"{r.table}: {r.files_before} -> {r.files_after} active files, "
            f"{r.files_removed} old file(s) {'would be ' if args.dry_run else ''}removed"
        )
    if report.index_retired is not None:
        print(
            f"video fingerprint index: {report.index_retired} retired video(s) "
            f"{'would be ' if args.dry_run else ''}dropped"
        )
    return 0


def run_subset(args: argparse.Namespace) -> int:
    from acav_assets.core.stages.report import subset_as_of

    wh = existing_warehouse(args.warehouse)
    if args.as_of is None:
        df, label = wh.read("curated_subset").sort("rank"), f"version {wh.version('curated_subset')} (latest)"
    else:
        df, label = subset_as_of(wh, args.as_of)
    df = df.select("rank", "clip_id", "path", "start_s", "end_s", "gain", "batch", "selection_id")
    if args.csv:
        df.write_csv(args.csv)
        print(f"wrote {df.height} rows of curated_subset as of {label} to {args.csv}")
    else:
        print(f"curated_subset as of {label}: {df.height} clips")
        with __import__("polars").Config(tbl_rows=args.limit, tbl_width_chars=160, fmt_str_lengths=60):
            print(df.head(args.limit))
    return 0
