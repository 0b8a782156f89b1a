"""Loading the cluster labels for selection from the Delta warehouse, at scale.

    .venv/bin/python benchmarks/labels.py                       # 1M and 10M clips
    .venv/bin/python benchmarks/labels.py --clips 100000000     # one size (needs ~25 GB disk)

Writes a ``cluster_assignments`` table like the platform's (clip ids of the real form, 10
clusterings of k = 32, ``--batch-clips`` clips per batch partition) under ``--dir``, then loads
the clips × clusterings label matrix two ways, each in a fresh process so that its peak
resident memory is its own:

- ours: ``stages.labels.label_matrix`` (what ``curated_subset`` runs): batch by batch, three columns
  projected, one byte per label, clip ids spilled to local scratch (read back on demand);
  also timed: resolving the ids of a 20% subset (``ClipIndex.ids_at``), as curation does;
- baseline: the obvious load (read the three columns of the whole table, pivot once, ids as a
  Python list, int64 labels): what the inspection code did before.

Prints seconds and memory of each (peak RSS above the peak before loading, so the ~0.9 GB of
imports is left out) and the ratios (baseline / ours). The selection itself at
these sizes is ``benchmarks/selection.py`` (b).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

from acav_assets.core.warehouse.tables import Warehouse

K, C = 32, 10


def clustering_ids() -> list[str]:
    return [f"cl{c:02d}-{'audio' if c < C // 2 else 'visual'}-0123456789ab" for c in range(C)]


def build(root: Path, n: int, batch_clips: int, seed: int = 0) -> None:
    """Write n clips × C clusterings of assignments in batches of ``batch_clips`` clips."""
    wh = Warehouse(str(root))
    rng = np.random.default_rng(seed)
    ids = clustering_ids()
    spaces = [f"{'audio' if c < C // 2 else 'visual'}/handcrafted/layer{c % (C // 2)}" for c in range(C)]
    t0, written, b = time.perf_counter(), 0, 0
    while written < n:
        m = min(batch_clips, n - written)
        batch = f"batch_{b:05d}"
        vids = pl.Series(rng.integers(0, 2**63, m, dtype=np.int64)).cast(pl.String).str.zfill(20).str.slice(0, 20)
        clip = vids + "_" + pl.Series(rng.integers(0, 5000, m)).cast(pl.String) + "_10000"
        frames = [
            pl.DataFrame(
                {
                    "batch": batch,
                    "clip_id": clip,
                    "clustering_id": ids[c],
                    "feature_space": spaces[c],
                    "cluster": rng.integers(0, K, m, dtype=np.int32),
                    "distance": rng.random(m, dtype=np.float32),
                }
            )
            for c in range(C)
        ]
        wh.append("cluster_assignments", pl.concat(frames))
        written += m
        b += 1
        if b % 10 == 0 or written == n:
            print(f"  wrote {written:,} clips ({b} batches) in {time.perf_counter() - t0:.0f} s", flush=True)


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def measure(root: Path, how: str, select: bool = False) -> dict:
    from acav_assets.core.stages.labels import label_matrix  # imported by both, before measuring (torch is big)

    wh = Warehouse(str(root))
    ids = clustering_ids()  # known: scanning for them here would put the scan's peak into the measure
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # the peak so far: the imports
    select_s = 0.0
    t0 = time.perf_counter()
    if how == "ours":
        clip_ids, labels, _, _ = label_matrix(wh, ids)
        load_s = time.perf_counter() - t0
        if select:  # the whole curation step: load, select 20% (bipartite, 25 pairs), resolve ids
            from acav_assets.core.selection import select_subset

            t1 = time.perf_counter()
            rows = select_subset(labels, 0.2, modalities=["audio"] * (C // 2) + ["visual"] * (C // 2)).indices
            select_s = time.perf_counter() - t1
        else:
            rows = np.random.default_rng(0).choice(len(clip_ids), len(clip_ids) // 5, replace=False)
        t1 = time.perf_counter()
        chosen = clip_ids.ids_at(rows)
        resolve_s = time.perf_counter() - t1
        assert chosen.len() == rows.size
    else:
        wide = (
            wh.scan("cluster_assignments")
            .filter(pl.col("clustering_id").is_in(ids))
            .select("clip_id", "clustering_id", "cluster")
            .collect()
            .pivot(on="clustering_id", index="clip_id", values="cluster", aggregate_function="first")
            .drop_nulls(ids)
            .sort("clip_id")
        )
        clip_ids, labels = wide["clip_id"].to_list(), wide.select(ids).to_numpy().astype(np.int64)
    if how != "ours":
        load_s = time.perf_counter() - t0
        resolve_s = 0.0
    assert labels.shape == (len(clip_ids), C)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "seconds": load_s,
        "resolve_s": resolve_s,
        "select_s": select_s,
        "peak_mb": peak,
        "load_mb": peak - base,
        "clips": len(clip_ids),
        "labels_mb": labels.nbytes / 1e6,
        "checksum": int(labels.astype(np.int64).sum()),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", default="1000000,10000000", help="comma-separated sizes")
    ap.add_argument("--batch-clips", type=int, default=100_000, help="clips per batch partition")
    ap.add_argument("--dir", default="/tmp/acav_bench_labels", help="scratch folder for the tables (removed after)")
    ap.add_argument("--skip-baseline", action="store_true", help="ours only (the baseline needs ~100 B/clip)")
    ap.add_argument(
        "--select",
        action="store_true",
        help="ours also runs the selection (20%%) on the loaded labels: the whole step's peak",
    )
    ap.add_argument("--keep", action="store_true", help="keep the generated tables (reused when present)")
    ap.add_argument("--measure", nargs=2, metavar=("ROOT", "HOW"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        print(json.dumps(measure(Path(args.measure[0]), args.measure[1], args.select)))
        return 0
    rows = []
    for n in [int(s) for s in args.clips.split(",")]:
        root = Path(args.dir) / f"n{n}"
        if not (args.keep and (root / "cluster_assignments").exists()):
            shutil.rmtree(root, ignore_errors=True)
            print(f"building {n:,} clips x {C} clusterings in batches of {args.batch_clips:,} under {root}", flush=True)
            t = time.perf_counter()
            build(root, n, args.batch_clips)
            size_mb = sum(f.stat().st_size for f in root.rglob("*") if f.is_file()) / 1e6
            print(f"  table: {size_mb:,.0f} MB on disk, written in {time.perf_counter() - t:.0f} s", flush=True)
        res = {}
        for how in ["ours"] + ([] if args.skip_baseline else ["baseline"]):
            cmd = [sys.executable, __file__, "--measure", str(root), how] + (["--select"] if args.select else [])
            out = subprocess.run(cmd, capture_output=True, text=True)
            if out.returncode != 0:
                print(out.stderr[-2000:])
                res[how] = None
                continue
            res[how] = json.loads(out.stdout.strip().splitlines()[-1])
            print(
                f"  {how}: {res[how]['seconds']:.1f} s, peak RSS {res[how]['peak_mb']:,.0f} MB "
                f"({res[how]['load_mb']:,.0f} MB above the imports)"
                + (f"; selection {res[how]['select_s']:.1f} s" if how == "ours" and args.select else "")
                + (f"; ids of a 20% subset resolved in {res[how]['resolve_s']:.1f} s" if how == "ours" else ""),
                flush=True,
            )
        if res.get("ours") and res.get("baseline"):
            assert res["ours"]["checksum"] == res["baseline"]["checksum"], "the two loads disagree"
        rows.append((n, res))
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print(
        "\nload MB = peak RSS minus the peak before loading (the imports: ~"
        f"{rows[0][1]['ours']['peak_mb'] - rows[0][1]['ours']['load_mb']:,.0f} MB)"
        if rows and rows[0][1].get("ours")
        else ""
    )
    print(
        "| clips | ours s | ours load MB | bytes per clip | 20% ids s | baseline s | baseline load MB | time ratio | memory ratio |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for n, res in rows:
        o, b = res.get("ours"), res.get("baseline")
        if not o:
            continue
        line = (
            f"| {n:,} | {o['seconds']:.1f} | {o['load_mb']:,.0f} | {o['load_mb'] * 2**20 / n:,.0f} | "
            f"{o['resolve_s']:.1f} |"
        )
        line += (
            (
                f" {b['seconds']:.1f} | {b['load_mb']:,.0f} | {b['seconds'] / o['seconds']:.2f} | "
                f"{b['load_mb'] / o['load_mb']:.2f} |"
            )
            if b
            else " – | – | – | – |"
        )
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
