"""Over-clustering: each feature space clustered at several k, then the MI selection and the
agreement refinement on top. Does it find more of the truly matched clips?

    .venv/bin/python benchmarks/pooling.py --cache CACHE --corpus stamps,photos,demo --videos 300
    .venv/bin/python benchmarks/overclustering.py --cache CACHE [--corpus stamps,photos,demo]
                                                  [--videos 300] [--seeds 3] [--ks 1,1.5,2,1x2,1x3,0.5x1x2]

Reads the embeddings that ``benchmarks/pooling.py --cache`` kept (the correspondence-retrieval
protocol, the platform's default profile, YAMNet pooled by ``loudness``). Each ``--ks`` entry is
a set of factors of the platform's automatic k joined by ``x``: ``1`` is the platform (one
clustering per space at the automatic k), ``1x2`` clusters every space at k and at 2k and gives
the selection both label columns (twice the spaces: pair weighting scores every audio x visual
pair of them). Then the platform's MI selection (bipartite pairs, pair weighting, refinement,
restarts) at the matched share and the agreement refinement
(:func:`acav_assets.core.selection.refinement.refine_in_memory`, its pseudo-classes at the
automatic k). Prints precision before and after the refinement (mean ± std over seeds, per seed).
No step reads a label except the final scoring.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", required=True)
    ap.add_argument("--corpus", default="stamps,photos,demo")
    ap.add_argument("--videos", type=int, default=300)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--ks", default="1,1.5,2,1x2,1x1.5x2,0.5x1x2,1x3")
    args = ap.parse_args()

    from pooling import load_cached, with_pooling  # benchmarks/pooling.py, beside this script

    from acav_assets.core.clustering import KMeansConfig, auto_k, auto_nredo, fit_kmeans
    from acav_assets.core.evaluation.correspondence import _select
    from acav_assets.core.features.pooling import DEFAULT_POOLING
    from acav_assets.core.selection import pair_weights, resolve_pairs
    from acav_assets.core.selection.refinement import RefinementConfig, refine_in_memory

    variants = [tuple(float(f) for f in v.split("x")) for v in args.ks.split(",")]
    for corpus in args.corpus.split(","):
        rows: dict[str, list[tuple[float, float]]] = {}
        for seed in range(args.seeds):
            path = Path(args.cache) / f"{corpus}_{args.videos}_{seed}.npz"
            if not path.exists():
                print(f"{path} missing: run benchmarks/pooling.py --cache {args.cache} --corpus {corpus} first")
                continue
            vectors, per_patch, matched, _, _ = load_cached(path)
            vec = with_pooling(vectors, per_patch, DEFAULT_POOLING)
            spaces = sorted(vec, key=lambda s: (not s.startswith("audio"), s))
            n, budget, k = len(matched), int(matched.sum()), auto_k(len(matched))
            fitted: dict[tuple[str, int], np.ndarray] = {}

            def labels_of(space: str, kk: int) -> np.ndarray:
                if (space, kk) not in fitted:
                    cfg = KMeansConfig(k=kk, nredo=auto_nredo(n, vec[space].shape[1]), seed=seed)
                    fitted[(space, kk)] = fit_kmeans(vec[space], space, cfg).assign(vec[space])[0]
                return fitted[(space, kk)]

            for factors in variants:
                ks = [max(2, int(round(k * f))) for f in factors]
                names = [s for s in spaces for _ in ks]  # one label column per (space, k)
                modalities = [s.split("/")[0] for s in names]
                labels = np.stack([labels_of(s, kk) for s in spaces for kk in ks], 1)
                mi = np.zeros(n, bool)
                mi[_select(labels, modalities, budget, "bipartite", seed)] = True
                pairs = resolve_pairs("bipartite", len(names), modalities)
                weighting = pair_weights(labels, pairs, rule="ami", modalities=modalities, seed=seed)
                refined, _ = refine_in_memory(vec, names, pairs, weighting, mi, k=k, config=RefinementConfig(seed=seed))
                key = "x".join(f"{f:g}" for f in factors)
                rows.setdefault(key, []).append((float(matched[mi].mean()), float(matched[refined].mean())))
            print(f"{corpus} seed {seed} done", flush=True)
        if not rows:
            continue
        print(f"\n{corpus}: precision at the matched share, {args.videos} videos, {args.seeds} seeds")
        print("| k factors | MI selection | + agreement refinement | per seed (refined) |\n|---|---|---|---|")
        for key, v in rows.items():
            mi_p, ref_p = [a for a, _ in v], [b for _, b in v]
            print(
                f"| {key}{' (platform)' if key == '1' else ''} | {statistics.mean(mi_p):.3f} ± {statistics.pstdev(mi_p):.3f} "
                f"| {statistics.mean(ref_p):.3f} ± {statistics.pstdev(ref_p):.3f} | {', '.join(f'{x:.3f}' for x in ref_p)} |"
            )
        print(flush=True)


if __name__ == "__main__":
    main()
