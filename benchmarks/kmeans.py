"""k-means benchmark: our fit + assign against a bare faiss call on the same data, same process.

    .venv/bin/python benchmarks/kmeans.py [--rows 1000000] [--dim 512] [--k 32] [--sample 200000]

Both fit on the same seeded sample of rows with the same faiss parameters (k-means++ init,
25 iterations) and then label every row with its nearest centroid. The bare call is
``faiss.Kmeans(...).train(sample)`` and one ``IndexFlatL2.search`` over all rows; ours is
:func:`fit_kmeans` + :meth:`Clustering.assign`, which add validation (NaN/inf, shapes), chunked
assignment with bounded memory, and distances. The ratio bare / ours is printed (goal >= 0.9).
Peak memory of each part is read from VmHWM after resetting it (Linux).
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import faiss
import numpy as np

from acav_assets.core.clustering import _INIT, KMeansConfig, fit_kmeans, sample_indices


def reset_peak() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--k", type=int, default=32)
    ap.add_argument("--sample", type=int, default=200_000)
    ap.add_argument("--repeats", type=int, default=4)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(args.k * 2, args.dim)).astype(np.float32)
    x = np.empty((args.rows, args.dim), np.float32)
    for s in range(0, args.rows, 100_000):  # clustered data, generated in chunks
        n = min(100_000, args.rows - s)
        x[s : s + n] = centres[rng.integers(0, len(centres), n)] + rng.normal(size=(n, args.dim)).astype(np.float32)
    cfg = KMeansConfig(k=args.k, max_sample=args.sample, seed=1)
    rows = sample_indices(args.rows, cfg.max_sample, cfg.seed)
    print(
        f"# k-means: {args.rows:,} x {args.dim} float32 ({x.nbytes / 2**30:.1f} GiB), k = {args.k}, "
        f"fit sample {len(rows):,}, {cfg.niter} iterations, faiss {faiss.__version__}, "
        f"{'GPU' if faiss.get_num_gpus() else 'CPU'}, {faiss.omp_get_max_threads()} threads\n"
    )

    def bare():
        xs = np.ascontiguousarray(x[rows])
        km = faiss.Kmeans(
            args.dim,
            args.k,
            niter=cfg.niter,
            seed=cfg.seed,
            max_points_per_centroid=int(math.ceil(len(rows) / args.k)) + 1,
            min_points_per_centroid=1,
            init_method=_INIT[cfg.init],
            gpu=faiss.get_num_gpus() > 0,
        )
        km.train(xs)
        index = faiss.IndexFlatL2(args.dim)
        index.add(km.centroids)
        _, i = index.search(x, 1)
        return i[:, 0]

    def ours():
        cl = fit_kmeans(x, "bench", cfg)
        labels, _ = cl.assign(x)
        return labels

    results: dict[str, list] = {"bare faiss": [], "ours": []}
    mems: dict[str, float] = {"bare faiss": 0.0, "ours": 0.0}
    labels = {}
    for r in range(args.repeats):
        order = (("bare faiss", bare), ("ours", ours)) if r % 2 == 0 else (("ours", ours), ("bare faiss", bare))
        for name, fn in order:  # alternate who goes first: shared machines drift
            reset_peak()
            before = rss_mb()
            t = time.perf_counter()
            labels[name] = fn()
            results[name].append(time.perf_counter() - t)
            mems[name] = max(mems[name], peak_mb() - before)
    agree = float((labels["ours"] == labels["bare faiss"]).mean())
    med = {k: statistics.median(v) for k, v in results.items()}
    print(f"| method | fit + assign s (median of {args.repeats}) | peak memory above the data, MB |")
    print("|---|---|---|")
    for name in results:
        print(f"| {name} | {med[name]:.2f} | {mems[name]:,.0f} |")
    print(
        f"\nratio bare / ours: {med['bare faiss'] / med['ours']:.2f} (goal >= 0.9); same labels for {agree:.1%} of rows"
    )


if __name__ == "__main__":
    main()
