"""Selection benchmark: speed against the reference cost model, scale, and pairing precision.

    .venv/bin/python benchmarks/selection.py            # (a) + (b) up to 10M + (c)
    .venv/bin/python benchmarks/selection.py --sizes 100000,1000000   # smaller (b)
    .venv/bin/python benchmarks/selection.py --skip-a --skip-c --sizes 100000000  # 100M only

(a) The reference algorithm's cost model (``reference_style.py``: per-candidate C×C tables,
    full reshuffle per step) against ours, on the same planted assignments, n = 5,000 and
    20,000, 10 clusterings (5 audio + 5 visual), k = 32, B = 20, take 4, budget 20%, with 45
    pairs (combination) and 25 pairs (bipartite). Times are medians over seeds, measured in one
    process after a warm-up call (numba's one-time compile/cache load is printed apart).
    Objective and precision are mean ± std over the seeds.
(b) Ours alone at large n (budget 20%, 45 pairs), each size in a fresh process so that its
    peak resident memory is its own: seconds, clips/s, peak RSS, and the selector's own peak
    allocation (tracemalloc, the labels excluded).
(c) Precision of each pairing mode and of a random subset (the default pairing is chosen here).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from acav_assets.core.generators.planted import planted_assignments, precision  # noqa: E402
from acav_assets.core.selection import (  # noqa: E402
    mean_mutual_information,
    pair_weights,
    resolve_pairs,
    select_subset,
)


def _ms(values):
    return f"{statistics.mean(values):.4f} ± {statistics.pstdev(values):.4f}"


def part_a(sizes, seeds):
    from reference_style import reference_batch_greedy  # imports torch: keep it out of (b)

    print("## (a) reference cost model vs ours (same assignments, one process)\n")
    t0 = time.perf_counter()
    warm = planted_assignments(1000, seed=99)
    select_subset(warm.labels, 0.2, pairing="combination")
    select_subset(warm.labels, 0.2, pairing="bipartite", modalities=warm.modalities)
    print(f"one-time numba compile/cache load: {time.perf_counter() - t0:.2f} s\n")
    print(
        "| n | pairs | reference s | ours s | speed-up | ours weighted s | weighted speed-up | objective ref | "
        "objective ours | precision ref | precision ours | precision ours weighted |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    for n in sizes:
        for mode in ("combination", "bipartite"):
            t_ref, t_our, o_ref, o_our, p_ref, p_our, t_w, p_w = [], [], [], [], [], [], [], []
            for seed in range(seeds):
                pa = planted_assignments(n, seed=seed)
                pairs = resolve_pairs(mode, pa.labels.shape[1], pa.modalities)
                budget = round(0.2 * n)
                t = time.perf_counter()
                ref = reference_batch_greedy(pa.labels, pairs, budget, seed=seed)
                t_ref.append(time.perf_counter() - t)
                t = time.perf_counter()
                ours = select_subset(pa.labels, budget, pairing=pairs, seed=seed)
                t_our.append(time.perf_counter() - t)
                o_ref.append(mean_mutual_information(pa.labels, ref, pairing=pairs))
                o_our.append(ours.objective)
                p_ref.append(precision(ref, pa.matched))
                p_our.append(precision(ours.indices, pa.matched))
                # the platform's default: label-free pair weights from the pool, then the weighted selection
                t = time.perf_counter()
                w = pair_weights(pa.labels, pairs, modalities=pa.modalities, seed=seed)
                weighted = select_subset(pa.labels, budget, pairing=pairs, seed=seed, pair_weights=w.weights)
                t_w.append(time.perf_counter() - t)
                p_w.append(precision(weighted.indices, pa.matched))
            ratio = statistics.median(t_ref) / statistics.median(t_our)
            ratio_w = statistics.median(t_ref) / statistics.median(t_w)
            rows.append((n, len(pairs), ratio, ratio_w))
            print(
                f"| {n:,} | {len(pairs)} | {statistics.median(t_ref):.3f} | {statistics.median(t_our):.4f} | "
                f"{ratio:,.0f}× | {statistics.median(t_w):.4f} | {ratio_w:,.0f}× | {_ms(o_ref)} | {_ms(o_our)} | "
                f"{_ms(p_ref)} | {_ms(p_our)} | {_ms(p_w)} |",
                flush=True,
            )
    print()
    return rows


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not inherited over fork/exec)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def one_size(n: int, mode: str) -> dict:
    """Run in a fresh process: generate, select, report time and memory."""
    t = time.perf_counter()
    pa = planted_assignments(n, seed=0)
    gen_s = time.perf_counter() - t
    warm = planted_assignments(1000, seed=1)
    select_subset(warm.labels, 0.2, pairing=mode, modalities=warm.modalities)
    tracemalloc.start()
    t = time.perf_counter()
    sel = select_subset(pa.labels, 0.2, pairing=mode, modalities=pa.modalities)
    sel_s = time.perf_counter() - t
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "n": n,
        "pairs": len(sel.pairs),
        "selected": len(sel),
        "generate_s": gen_s,
        "select_s": sel_s,
        "clips_per_s": n / sel_s,
        "peak_rss_mb": peak_rss_mb(),
        "selector_peak_mb": peak / 2**20,
        "labels_mb": pa.labels.nbytes / 2**20,
        "objective": sel.objective,
        "precision": precision(sel.indices, pa.matched),
    }


def part_b(sizes, mode):
    print(f"## (b) ours alone, budget 20%, pairing {mode} (fresh process per size)\n")
    print("| n | pairs | select s | pool clips/s | peak RSS MB | selector peak MB | labels MB | precision |")
    print("|---|---|---|---|---|---|---|---|")
    out = []
    for n in sizes:
        proc = subprocess.run(
            [sys.executable, __file__, "--one", str(n), "--pairing", mode],
            capture_output=True,
            text=True,
            check=True,
            env=os.environ,
        )
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        out.append(r)
        print(
            f"| {r['n']:,} | {r['pairs']} | {r['select_s']:.2f} | {r['clips_per_s']:,.0f} | "
            f"{r['peak_rss_mb']:,.0f} | {r['selector_peak_mb']:,.0f} | {r['labels_mb']:,.0f} | {r['precision']:.3f} |",
            flush=True,
        )
    print()
    return out


def part_c(sizes, seeds):
    print("## (c) precision by pairing (planted, 50% matched, budget 20%)\n")
    print("| n | random | combination (45) | bipartite (25) | diagonal (5) |")
    print("|---|---|---|---|---|")
    for n in sizes:
        cols = {"random": [], "combination": [], "bipartite": [], "diagonal": []}
        for seed in range(seeds):
            pa = planted_assignments(n, seed=seed)
            rng = np.random.default_rng(seed)
            cols["random"].append(precision(rng.choice(n, round(0.2 * n), replace=False), pa.matched))
            for mode in ("combination", "bipartite", "diagonal"):
                s = select_subset(pa.labels, 0.2, pairing=mode, modalities=pa.modalities, seed=seed)
                cols[mode].append(precision(s.indices, pa.matched))
        print(f"| {n:,} | " + " | ".join(_ms(v) for v in cols.values()) + " |", flush=True)
    print()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100000,1000000,10000000", help="pool sizes for (b)")
    ap.add_argument("--pairing", default="combination", help="pairing for (b) (default: 45 pairs)")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--skip-a", action="store_true")
    ap.add_argument("--skip-b", action="store_true")
    ap.add_argument("--skip-c", action="store_true")
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        print(json.dumps(one_size(args.one, args.pairing)))
        return
    print(f"# selection benchmark ({os.cpu_count()} cores, numpy {np.__version__})\n")
    if not args.skip_a:
        part_a((5_000, 20_000), args.seeds)
    if not args.skip_b:
        part_b([int(s) for s in args.sizes.split(",") if s], args.pairing)
    if not args.skip_c:
        part_c((20_000, 200_000), args.seeds)


if __name__ == "__main__":
    main()
