"""What ``acav curate`` prints when it is done: the runs, what was up to date, the videos by status,
the clusterings, the subset and its settings (given or held), the checks, and the precision when
the landing area carries ground truth."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl

from acav_assets.cli.common import ground_truth

__all__ = ["print_curation"]


def print_curation(
    report, landing: Path, warehouse: str, wh_opts: dict, *, elapsed: float, given: dict, remote: bool, home
) -> int:
    """Print the curation's summary; the exit code: 1 when an ERROR-severity check failed or a
    batch was not assigned, else 0."""
    from acav_assets.core.stages.curation import SELECTION_KEYS
    from acav_assets.core.stages.report import latest_run
    from acav_assets.core.warehouse.tables import Warehouse

    wh = Warehouse(warehouse, wh_opts or None)
    vids = wh.read("videos").filter(pl.col("batch").is_in(report.batches))
    print(f"\ncurated {len(report.batches)} batch(es) in {elapsed:.1f} s through {len(report.runs)} Dagster runs")
    if report.skipped:
        print(
            f"up to date, not re-run ({len(report.skipped)} steps; --full redoes everything): "
            + "; ".join(report.skipped)
        )
    print("\nvideos by status:")
    for (batch,), g in sorted(vids.group_by(["batch"]), key=lambda kv: kv[0]):
        counts = dict(g.group_by("status").len().sort("status").iter_rows())
        print(f"  {batch}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    if report.waiting:
        print(f"\nclustering and selection wait: {report.waiting}")
        return 0
    clusters = wh.read("cluster_centroids").group_by("feature_space").agg(pl.col("k").first()).sort("feature_space")
    print(
        f"\nclusterings: {clusters.height} feature spaces, k = "
        + ", ".join(sorted({str(k) for k in clusters["k"].to_list()}))
    )
    subset = wh.read("curated_subset").sort("rank")
    # The summary reads the selection run the subset came from: a re-run with nothing new ends
    # in an "unchanged" materialization that carries no pool size or objective of its own.
    meta = report.materializations.get("curated_subset", {}).get("", {})
    run = latest_run(wh)
    mode = meta.get("mode", "full") if meta else "up to date, not re-run"
    used = json.loads(run["params"])
    held = [k for k in SELECTION_KEYS if k not in given]
    print(
        f"\ncurated_subset ({mode}): {subset.height} of {run['pool_size']} clips (budget {used['budget']:g}, pairing "
        f"{used.get('pairing')}), objective {run['objective']:.4f} nats"
        + (
            ""
            if given.keys() >= {"budget", "pairing"}
            else f"\n  settings not given here ({', '.join(held)}): the warehouse's, those its subset was made with"
        )
    )
    if json.loads(run["params"]).get("dedup_cosine"):
        print(
            f"  semantic dedup: {run.get('semantic_duplicates') or 0} clip(s) left out of the pool as copies "
            f"(table semantic_duplicates)"
        )
    by_batch = dict(subset.group_by("batch").len().sort("batch").iter_rows())
    print("  by batch: " + ", ".join(f"{k} {v}" for k, v in by_batch.items()))
    # the exit code follows ERROR-severity checks; a WARN (e.g. a pool too small to judge) is shown
    failed, warned = report.failed_checks(), report.warned_checks()
    print(
        (
            f"  asset checks: {sum(report.checks.values())}/{len(report.checks)} passed"
            if report.checks
            else "  asset checks: none ran (nothing was re-run)"
        )
        + (f"; FAILED: {', '.join(failed)}" if failed else "")
        + (f"; WARNED (not judged or not serious): {', '.join(warned)}" if warned else "")
    )
    for batch, why in sorted(report.blocked.items()):
        print(f"  batch {batch} NOT ASSIGNED (left out of the selection): {why}")
    truth = {} if remote else ground_truth(landing, report.batches)
    if truth:
        chosen = [truth[p] for p in subset["path"].to_list() if p in truth]
        clips = wh.read("clips").filter(pl.col("batch").is_in(report.batches))
        pool = [truth[p] for p in clips["path"].to_list() if p in truth]
        print(
            f"  precision (ground truth): {np.mean(chosen):.3f} of the selected clips have matching sound "
            f"(pool: {np.mean(pool):.3f}, what a random subset gets)"
        )
    print(f"\ntables: {warehouse}/<table> (Delta Lake)")
    if home:
        print(f"runs recorded in DAGSTER_HOME={home}")
    return 0 if not failed and not report.blocked else 1
