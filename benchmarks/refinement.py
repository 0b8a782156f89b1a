"""The agreement refinement of the MI selection: does it find more of the truly matched clips?

    .venv/bin/python benchmarks/pooling.py --cache CACHE --corpus stamps,photos,demo,digits --videos 300
    .venv/bin/python benchmarks/refinement.py --cache CACHE [--corpus stamps,photos,demo,digits]
                                              [--videos 300] [--seeds 3] [--profile default,weightfree]

Reads the embeddings that ``benchmarks/pooling.py --cache`` kept (the correspondence-retrieval
protocol: half of the videos carry the sound of another class; the platform's default profile,
YAMNet pooled by ``loudness``), then per corpus, seed and feature set (``default``: every space of
the default profile; ``weightfree``: only the weight-free spaces ``audio/logmel`` and
``visual/pixels``, what the demo and the tests run on): the platform's clustering (automatic k,
L2) and MI selection (bipartite pairs, pair weighting, refinement, restarts) at the matched share,
then :mod:`acav_assets.core.selection.refinement` on top of it with each part alone and both
together (the platform's refinement), and the swap share varied. Prints precision (mean ± std
over seeds, the per-seed values) and the per-class recall of the matched videos (mean over seeds)
of the MI selection and of the refined one. No step reads a label except the final scoring.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", required=True)
    ap.add_argument("--corpus", default="stamps,photos,demo,digits")
    ap.add_argument("--videos", type=int, default=300)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--profile", default="default,weightfree")
    args = ap.parse_args()

    from pooling import load_cached, with_pooling  # benchmarks/pooling.py, beside this script

    from acav_assets.core.clustering import KMeansConfig, auto_k, auto_nredo, fit_kmeans
    from acav_assets.core.evaluation.correspondence import _class_names, _select
    from acav_assets.core.features.pooling import DEFAULT_POOLING
    from acav_assets.core.selection import pair_weights, resolve_pairs
    from acav_assets.core.selection.refinement import (
        RefinementConfig,
        SpaceProjection,
        agreement_scores,
        informative_pairs,
        swap_by_agreement,
    )

    for corpus in args.corpus.split(","):
        for profile in args.profile.split(","):
            rows: dict[str, list[float]] = {}
            recall: dict[str, dict[int, list[float]]] = {}
            for seed in range(args.seeds):
                path = Path(args.cache) / f"{corpus}_{args.videos}_{seed}.npz"
                if not path.exists():
                    print(f"{path} missing: run benchmarks/pooling.py --cache {args.cache} --corpus {corpus} first")
                    continue
                vectors, per_patch, matched, visual_class, _ = load_cached(path)
                vec = with_pooling(vectors, per_patch, DEFAULT_POOLING)
                if profile == "weightfree":
                    vec = {s: v for s, v in vec.items() if s.startswith(("audio/logmel", "visual/pixels"))}
                names = sorted(vec, key=lambda s: (not s.startswith("audio"), s))
                modalities = [s.split("/")[0] for s in names]
                n, budget = len(matched), int(matched.sum())
                k = auto_k(n)
                labels = np.stack(
                    [
                        fit_kmeans(
                            vec[s], s, KMeansConfig(k=k, nredo=auto_nredo(n, vec[s].shape[1]), seed=seed)
                        ).assign(vec[s])[0]
                        for s in names
                    ],
                    1,
                )
                mi = np.zeros(n, bool)
                mi[_select(labels, modalities, budget, "bipartite", seed)] = True
                pairs = resolve_pairs("bipartite", len(names), modalities)
                weighting = pair_weights(labels, pairs, rule="ami", modalities=modalities, seed=seed)
                variants = {"MI selection (platform before)": mi}
                for n_pairs in (3, 6):
                    cfg = RefinementConfig(pairs=n_pairs, seed=seed)
                    chosen = informative_pairs(names, pairs, weighting.scores, weighting.z, cfg.pairs)
                    parts = {"both parts": None, "neighbour agreement only": None, "pseudo-class agreement only": None}
                    if chosen:  # else, as the platform does: no pair above chance, the MI selection stays
                        used = dict.fromkeys(s for a, v, _ in chosen for s in (a, v))
                        projected = {s: SpaceProjection(cfg.dim).fit(vec[s]).transform(vec[s]) for s in used}
                        agree = agreement_scores(projected, chosen, mi, k=k, config=cfg)
                        parts = dict(zip(parts, (agree.combined, agree.neighbour, agree.pseudo_class)))
                    for part, score in parts.items():
                        for share in (0.1, 0.3, 1.0) if part == "both parts" else (0.3,):
                            sel = mi.copy()
                            if score is not None:
                                out, inn = swap_by_agreement(
                                    score, np.flatnonzero(mi), np.flatnonzero(~mi), int(share * budget)
                                )
                                sel[out], sel[inn] = False, True
                            name = f"+ refinement, {part}, {n_pairs} pairs, swap <= {share:g}"
                            default = (RefinementConfig.pairs, "both parts", RefinementConfig.swap_share)
                            variants[name + (" (platform default)" if (n_pairs, part, share) == default else "")] = sel
                for name, sel in variants.items():
                    rows.setdefault(name, []).append(float(matched[sel].mean()))
                    if name.startswith("MI") or name.endswith("(platform default)"):
                        for c in np.unique(visual_class):
                            mine = matched & (visual_class == c)
                            recall.setdefault(name, {}).setdefault(int(c), []).append(float(sel[mine].mean()))
                print(f"{corpus} ({profile}) seed {seed} done", flush=True)
            if not rows:
                continue
            print(
                f"\n{corpus}, features {profile}: precision at the matched share, {args.videos} videos, {args.seeds} seeds"
            )
            print("| selection | precision (mean ± std) | per seed |\n|---|---|---|")
            for name, v in rows.items():
                print(
                    f"| {name} | {statistics.mean(v):.3f} ± {statistics.pstdev(v):.3f} | {', '.join(f'{x:.3f}' for x in v)} |"
                )
            class_names = _class_names(corpus)
            cls = sorted(next(iter(recall.values())))
            heads = [class_names[c] if c < len(class_names) else str(c) for c in cls]
            print("\nper-class recall of the matched videos (mean over seeds)")
            print("| selection | " + " | ".join(heads) + " |\n|---" * 1 + "|---" * len(cls) + "|")
            for name, per in recall.items():
                print(f"| {name} | " + " | ".join(f"{statistics.mean(per[c]):.2f}" for c in cls) + " |")
            print(flush=True)


if __name__ == "__main__":
    main()
