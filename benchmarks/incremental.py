"""Incremental curation cost: batch k+1 after a warehouse of 1x and of 10x the size.

    .venv/bin/python benchmarks/incremental.py [--old-clips 2000] [--new-videos 20] [--repeats 3]

Setup: a real batch of generated videos is curated end to end (its centroids are the frozen
centroids). Then two warehouses get `old` and `10 x old` clips of earlier batches (rows of
videos, clips and cluster_assignments written directly, labels drawn from the real clusterings'
k) and a full selection over them, so each has a previous subset, lineage and run record.
Measured: curating a new batch of real videos through the Dagster assets — videos, clips,
clip_embeddings, cluster_assignments for the new partition, then curated_subset (warm start:
`mode` auto picks incremental) — on a fresh copy of each warehouse, median of the repeats.
Goal: time(10x) / time(1x) <= 1.3.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl

from acav_assets.core.generators.demo import write_demo_videos
from acav_assets.core.warehouse.tables import Warehouse
from acav_assets.defs.definitions import ASSETS
from acav_assets.defs.features import clip_embeddings, cluster_assignments
from acav_assets.defs.ingest import clips, videos
from acav_assets.defs.runner import curate_landing, resources_for

QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


def add_old_batches(wh: Warehouse, n_clips: int, per_batch: int, seed: int) -> None:
    cents = (
        wh.read("cluster_centroids").group_by("clustering_id").agg(pl.col("k").first(), pl.col("feature_space").first())
    )
    rng = np.random.default_rng(seed)
    for b in range(n_clips // per_batch):
        batch = f"old_{b:04d}"
        ids = [f"{batch}_v{i:05d}" for i in range(per_batch)]
        wh.write_batch(
            "videos",
            batch,
            [
                {
                    "batch": batch,
                    "video_id": v,
                    "path": f"{batch}/{v}.mp4",
                    "status": "ok",
                    "error": "",
                    "duration_s": 30.0,
                }
                for v in ids
            ],
        )
        wh.write_batch(
            "clips",
            batch,
            [
                {
                    "batch": batch,
                    "clip_id": f"{v}_10000_20000",
                    "video_id": v,
                    "path": f"{batch}/{v}.mp4",
                    "start_s": 10.0,
                    "end_s": 20.0,
                }
                for v in ids
            ],
        )
        frames = [
            pl.DataFrame(
                {
                    "batch": batch,
                    "clip_id": [f"{v}_10000_20000" for v in ids],
                    "clustering_id": cid,
                    "feature_space": fs,
                    "cluster": rng.integers(0, k, per_batch).astype(np.int32),
                    "distance": np.ones(per_batch, np.float32),
                }
            )
            for cid, k, fs in cents.iter_rows()
        ]
        wh.write_batch("cluster_assignments", batch, pl.concat(frames))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--old-clips", type=int, default=2000, help="clips of earlier batches in the 1x warehouse")
    ap.add_argument("--per-batch", type=int, default=200)
    ap.add_argument("--new-videos", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        landing = base / "landing"
        write_demo_videos(landing / "first", 40, seed=1)
        write_demo_videos(base / "new_batch", args.new_videos, seed=2)
        run_config = {**QUIET, "ops": {"cluster_centroids": {"config": {"k": 16}}}}
        curate_landing(
            str(landing),
            str(base / "seed_wh"),
            instance=dg.DagsterInstance.ephemeral(),
            run_config=run_config,
            log_level="ERROR",
        )
        prepared = {}
        for factor in (1, 10):
            root = base / f"wh_{factor}x"
            shutil.copytree(base / "seed_wh", root)
            wh = Warehouse(str(root))
            t = time.perf_counter()
            add_old_batches(wh, args.old_clips * factor, args.per_batch, seed=factor)
            dg.materialize(
                ASSETS,
                selection=["curated_subset", "selection_lineage"],
                instance=dg.DagsterInstance.ephemeral(),
                resources=resources_for(str(landing), str(root)),
                run_config={**QUIET, "ops": {"curated_subset": {"config": {"mode": "full"}}}},
            )
            prepared[factor] = root
            print(
                f"prepared the {factor}x warehouse: {wh.read('clips').height:,} clips, previous subset "
                f"{wh.read('curated_subset').height:,} ({time.perf_counter() - t:.0f} s)",
                flush=True,
            )
        shutil.copytree(base / "new_batch", landing / "new")
        totals: dict[int, list[float]] = {1: [], 10: []}
        select: dict[int, list[float]] = {1: [], 10: []}
        for r in range(args.repeats):
            for factor in (1, 10) if r % 2 == 0 else (10, 1):  # alternate the order: shared machines drift
                root = base / f"run_{factor}x_{r}"
                shutil.copytree(prepared[factor], root)
                inst = dg.DagsterInstance.ephemeral()
                inst.add_dynamic_partitions("batches", ["new"])
                res = resources_for(str(landing), str(root))
                t = time.perf_counter()
                dg.materialize(
                    ASSETS,
                    selection=[videos, clips, clip_embeddings, cluster_assignments],
                    partition_key="new",
                    instance=inst,
                    resources=res,
                    run_config=QUIET,
                )
                t1 = time.perf_counter()
                result = dg.materialize(
                    ASSETS,
                    selection=["curated_subset", "selection_lineage"],
                    instance=inst,
                    resources=res,
                    run_config=QUIET,
                )
                t2 = time.perf_counter()
                mode = result.asset_materializations_for_node("curated_subset")[0].metadata["mode"].value
                assert mode == "incremental", mode
                totals[factor].append(t2 - t)
                select[factor].append(t2 - t1)
                shutil.rmtree(root)
        med = {f: statistics.median(v) for f, v in totals.items()}
        sel = {f: statistics.median(v) for f, v in select.items()}
        print(f"\n# curating a new batch of {args.new_videos} videos (median of {args.repeats})\n")
        print("| warehouse | earlier clips | whole batch s | curated_subset step s |")
        print("|---|---|---|---|")
        for f in (1, 10):
            print(f"| {f}x | {args.old_clips * f + 40:,} | {med[f]:.2f} | {sel[f]:.2f} |")
        print(
            f"\nratio 10x / 1x: whole batch {med[10] / med[1]:.2f} (goal <= 1.3), "
            f"curated_subset step {sel[10] / sel[1]:.2f}"
        )


if __name__ == "__main__":
    main()
