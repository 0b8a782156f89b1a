"""Clustering that fits the data: k and the per-space transform, chosen by the selection's precision.

    .venv/bin/python benchmarks/pooling.py --cache CACHE ...        # embeds the corpora once
    .venv/bin/python benchmarks/clustering_fit.py --cache CACHE [--corpus photos,stamps,digits,demo]
                                                  [--videos 200] [--seeds 3] [--pooling loudness]

Reads the embeddings that ``benchmarks/pooling.py --cache`` kept (YAMNet pooled by
``--pooling``), then for each per-space transform (none, L2, PCA-whitening to 32 dimensions, L2
then whitening) and each k (the platform's automatic k, half and twice it) clusters every
space, selects at the matched share (bipartite pairs, pair weighting) and prints precision
(mean ± std over seeds) per corpus, and the mean over corpora.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", required=True)
    ap.add_argument("--corpus", default="photos,stamps,digits,demo")
    ap.add_argument("--videos", type=int, default=200)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--pooling", default="loudness")
    args = ap.parse_args()

    from pooling import load_cached, with_pooling  # benchmarks/pooling.py, beside this script

    from acav_assets.core.clustering import KMeansConfig, auto_k, auto_nredo, fit_kmeans
    from acav_assets.core.evaluation.correspondence import _select

    transforms = {
        "none": {},
        "l2": {"normalize": True},
        "whiten32": {"whiten": True, "pca_dim": 32},
        "l2+whiten32": {"normalize": True, "whiten": True, "pca_dim": 32},
    }
    factors = (0.5, 1.0, 2.0)
    table: dict[tuple[str, float], dict[str, list[float]]] = {}
    corpora = args.corpus.split(",")
    for corpus in corpora:
        for seed in range(args.seeds):
            path = Path(args.cache) / f"{corpus}_{args.videos}_{seed}.npz"
            if not path.exists():
                print(f"{path} missing: run benchmarks/pooling.py --cache {args.cache} --corpus {corpus} first")
                continue
            vectors, per_patch, matched, _, _ = load_cached(path)
            vec = with_pooling(vectors, per_patch, args.pooling)
            names = sorted(vec, key=lambda s: (not s.startswith("audio"), s))
            modalities = [s.split("/")[0] for s in names]
            n, budget = len(matched), int(matched.sum())
            for tname, options in transforms.items():
                for f in factors:
                    kk = max(2, int(round(auto_k(n) * f)))
                    labels = np.stack(
                        [
                            fit_kmeans(
                                vec[s],
                                s,
                                KMeansConfig(
                                    k=kk,
                                    nredo=auto_nredo(n, vec[s].shape[1]),
                                    seed=seed,
                                    **(
                                        {**options, "pca_dim": min(options["pca_dim"], vec[s].shape[1], n - 1)}
                                        if "pca_dim" in options
                                        else options
                                    ),
                                ),
                            ).assign(vec[s])[0]
                            for s in names
                        ],
                        1,
                    )
                    sel = _select(labels, modalities, budget, "bipartite", seed)
                    table.setdefault((tname, f), {}).setdefault(corpus, []).append(float(matched[sel].mean()))
            print(f"{corpus} seed {seed} done", flush=True)
    print(f"\nprecision, {args.videos} videos, half mismatched, YAMNet pooling {args.pooling}, {args.seeds} seeds")
    print("| transform | k | " + " | ".join(corpora) + " | mean over corpora |")
    print("|---" * (3 + len(corpora)) + "|")
    for (tname, f), per in table.items():
        cells = [
            f"{statistics.mean(per[c]):.3f} ± {statistics.pstdev(per[c]):.3f}" if c in per else "—" for c in corpora
        ]
        mean = statistics.mean(statistics.mean(v) for v in per.values())
        print(f"| {tname} | {'auto' if f == 1.0 else f'{f:g} x auto'} | " + " | ".join(cells) + f" | {mean:.3f} |")


if __name__ == "__main__":
    main()
