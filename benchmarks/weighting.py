"""Pair-weighting benchmark: precision of the plain mean against label-free pair weights when some
feature spaces carry no correspondence (planted labels; the table in docs/concepts.md, "Pair
weighting").

    .venv/bin/python benchmarks/weighting.py [--n 20000] [--seeds 3]

"Nuisance" spaces: the first (noisiest) layers of each modality are replaced by 32 random
clusters, as a layer that encodes position or codec would cluster. Each row is the mean
precision over seeds (budget 0.5 = the matched share, so precision = recall; 20 refinement rounds).
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np

from acav_assets.core.generators.planted import planted_assignments, precision
from acav_assets.core.selection import resolve_pairs, select_subset
from acav_assets.core.selection.weighting import adjusted_pair_scores

VARIANTS = ("plain", "score", "equal_k0.0", "equal_k0.2", "equal_k0.35", "square_k0.2")


def weights_for(variant: str, scores: np.ndarray, z: np.ndarray) -> np.ndarray:
    if variant == "plain":
        return np.ones(scores.size)
    above = z >= 4.0
    keep = float(variant.split("_k")[1]) if "_k" in variant else 0.0
    kept = above & (scores >= keep * scores[above].max())
    if variant == "score":
        return np.where(kept, scores, 0.0)
    if variant.startswith("square"):
        return np.where(kept, scores**2, 0.0)
    return kept.astype(float)  # equal weights: what pair_weights(rule="ami") returns


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args(argv)
    print(f"| nuisance spaces per modality | {' | '.join(VARIANTS)} |")
    print("|---|" + "---|" * len(VARIANTS))
    for nuisance in (0, 3, 4):
        got = {v: [] for v in VARIANTS}
        for seed in range(args.seeds):
            pa = planted_assignments(args.n, seed=seed)
            labels = pa.labels.copy()
            rng = np.random.default_rng(100 + seed)
            for c in list(range(nuisance)) + list(range(5, 5 + nuisance)):
                labels[:, c] = rng.integers(0, 32, args.n)
            pairs = resolve_pairs("bipartite", 10, pa.modalities)
            scores, z, _ = adjusted_pair_scores(labels, pairs, seed=seed)
            for v in VARIANTS:
                sel = select_subset(
                    labels, 0.5, modalities=pa.modalities, seed=seed, refine=20, pair_weights=weights_for(v, scores, z)
                )
                got[v].append(precision(sel.indices, pa.matched))
        cells = " | ".join(f"{statistics.mean(got[v]):.3f} ± {statistics.pstdev(got[v]):.3f}" for v in VARIANTS)
        print(f"| {nuisance} of 5 | {cells} |", flush=True)


if __name__ == "__main__":
    main()
