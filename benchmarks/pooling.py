"""Pooling YAMNet's patches over time: which pooling lets the selection find matched clips.

    .venv/bin/python benchmarks/pooling.py [--corpus photos,digits,demo] [--videos 200] [--seeds 3]

Per corpus and seed: a pool with half of the videos mismatched (the correspondence-retrieval
protocol of ``acav bench correspondence``), embedded once with the platform's default profile;
YAMNet's per-patch taps are computed once more per clip, and each pooling of
:mod:`acav_assets.core.features.pooling` replaces the five ``audio/yamnet/*`` spaces. Then the
platform's clustering (automatic k) and selection (bipartite pairs, pair weighting) at the
matched share; and, per pooling, the label-free refinement
(:mod:`acav_assets.core.selection.agreement`: a cross-modal projection learnt on the MI selection
scores every clip; the top clips by that score, after one or two rounds). Prints, per corpus and
variant: precision (mean ± std over seeds), the recall of the matched videos of each class (mean
over seeds), and the NMI of each YAMNet space against the sound class. ``--cache DIR`` keeps the
embeddings (per corpus and seed) for the next run. The embedding stage's extra cost of a pooling
is in ``benchmarks/embed.py``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import numpy as np
import torch


def load_cached(path: Path) -> tuple[dict, list, np.ndarray, np.ndarray, np.ndarray]:
    """What ``--cache`` kept for one corpus and seed: the vectors per feature space, YAMNet's
    per-patch taps and loudness per clip, and per clip whether it is matched, its picture class
    and its sound class."""
    z = np.load(path, allow_pickle=True)
    return z["vectors"].item(), list(z["per_patch"]), z["matched"], z["visual"], z["sound"]


def with_pooling(vectors: dict, per_patch: list, how: str) -> dict:
    """``vectors`` with the YAMNet spaces pooled over time by ``how``."""
    from acav_assets.core.features.packaged import YAMNet
    from acav_assets.core.features.pooling import pool_over_time

    vec = dict(vectors)
    for k, (tap, _) in enumerate(YAMNet.TAPS):
        vec[f"{YAMNet.name}/{tap}"] = np.stack([pool_over_time(t[k], loud, how) for t, loud in per_patch]).astype(
            np.float32
        )
    return vec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default="photos,digits,demo")
    ap.add_argument("--videos", type=int, default=200)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--cache", default=None, help="folder keeping the embeddings between runs")
    ap.add_argument("--poolings", default=None, help="comma-separated subset of the poolings (default: all)")
    args = ap.parse_args()

    from acav_assets.core.clustering import KMeansConfig, auto_k, auto_nredo, fit_kmeans
    from acav_assets.core.evaluation.correspondence import _embed_folder, _select, _writer, nmi
    from acav_assets.core.features.packaged import YAMNet
    from acav_assets.core.features.pooling import POOLINGS
    from acav_assets.core.features.profiles import DEFAULT_PROFILE, build_profile
    from acav_assets.core.media.clips import clip_windows
    from acav_assets.core.media.decode import decode_clip
    from acav_assets.core.media.probe import probe_file
    from acav_assets.core.selection.agreement import cross_fitted_scores

    extractors = build_profile(DEFAULT_PROFILE, "cpu")
    yamnet = next(e for e in extractors if isinstance(e, YAMNet))
    taps = [t for t, _ in YAMNet.TAPS]
    for corpus in args.corpus.split(","):
        write = _writer(corpus)
        precision: dict[str, list[float]] = {}
        recall: dict[str, dict[int, list[float]]] = {}
        spaces_nmi: dict[str, dict[str, list[float]]] = {}
        with tempfile.TemporaryDirectory() as tmp:
            for seed in range(args.seeds):
                cached = Path(args.cache) / f"{corpus}_{args.videos}_{seed}.npz" if args.cache else None
                if cached is not None and cached.exists():
                    vectors, per_patch, matched, visual, sound = load_cached(cached)
                else:
                    folder = Path(tmp) / f"pool{seed}"
                    pool = write(folder, args.videos, matched_fraction=0.5, seed=1000 + seed)
                    vectors = _embed_folder(folder, pool, extractors)
                    per_patch = []
                    for v in pool:
                        rec = probe_file(folder / v.file)
                        (w,) = clip_windows(rec.video_id, rec.duration_s)
                        clip = decode_clip(rec.path, w.start_s, w.end_s)
                        per_patch.append(yamnet.patch_taps(torch.from_numpy(clip.audio)))
                    matched = np.array([v.matched for v in pool])
                    visual = np.array([v.visual_class for v in pool])
                    sound = np.array([v.audio_class for v in pool])
                    if cached is not None:
                        cached.parent.mkdir(parents=True, exist_ok=True)
                        arr = np.empty(len(per_patch), object)
                        arr[:] = per_patch
                        np.savez(
                            cached,
                            vectors=np.array(vectors, dtype=object),
                            per_patch=arr,
                            matched=matched,
                            visual=visual,
                            sound=sound,
                        )
                budget = int(matched.sum())
                n = len(matched)
                for how in args.poolings.split(",") if args.poolings else POOLINGS:
                    vec = with_pooling(vectors, per_patch, how)
                    names = sorted(vec, key=lambda s: (not s.startswith("audio"), s))
                    modalities = [s.split("/")[0] for s in names]
                    labels = np.stack(
                        [
                            fit_kmeans(
                                vec[s], s, KMeansConfig(k=auto_k(n), nredo=auto_nredo(n, vec[s].shape[1]), seed=seed)
                            ).assign(vec[s])[0]
                            for s in names
                        ],
                        1,
                    )
                    for s, col in zip(names, labels.T):
                        if s.startswith(yamnet.name):
                            spaces_nmi.setdefault(how, {}).setdefault(s.rsplit("/", 1)[1], []).append(nmi(col, sound))
                    sel = np.zeros(n, bool)
                    sel[_select(labels, modalities, budget, "bipartite", seed)] = True
                    a = np.concatenate([vec[s] for s in names if s.startswith("audio")], axis=1)
                    v = np.concatenate([vec[s] for s in names if s.startswith("visual")], axis=1)
                    variants = {how: sel}
                    # label-free: learnt on the selection, never on the truth
                    score = cross_fitted_scores(a, v, sel, seed=seed)
                    top = np.zeros(n, bool)
                    top[np.argsort(-score, kind="stable")[:budget]] = True
                    variants[f"{how} + refinement (top by agreement)"] = top
                    for share in (0.1, 0.2):  # swap the selection's least agreeing clips for better outside
                        out_sel = np.flatnonzero(sel)[np.argsort(score[sel], kind="stable")][: int(share * budget)]
                        inn = np.flatnonzero(~sel)[np.argsort(-score[~sel], kind="stable")][: out_sel.size]
                        better = score[inn] > score[out_sel]
                        swapped = sel.copy()
                        swapped[out_sel[better]], swapped[inn[better]] = False, True
                        variants[f"{how} + refinement (swap up to {share:.0%})"] = swapped
                    for name, mask in variants.items():
                        precision.setdefault(name, []).append(float(matched[mask].mean()))
                        for c in np.unique(visual[matched]):
                            mine = matched & (visual == c)
                            recall.setdefault(name, {}).setdefault(int(c), []).append(float(mask[mine].mean()))
                print(f"{corpus} seed {seed} done", flush=True)
        classes = sorted(next(iter(recall.values())))
        print(f"\n{corpus}: {args.videos} videos, half mismatched, {args.seeds} seeds, profile {DEFAULT_PROFILE}")
        print(
            "| pooling | precision | "
            + " | ".join(f"recall {c}" for c in classes)
            + " | "
            + " | ".join(f"NMI {t}" for t in taps)
            + " |"
        )
        print("|---" * (2 + len(classes) + len(taps)) + "|")
        for name, p in precision.items():
            how = name.split(" ")[0]
            print(
                f"| {name} | {statistics.mean(p):.3f} ± {statistics.pstdev(p):.3f} | "
                + " | ".join(f"{statistics.mean(recall[name][c]):.2f}" for c in classes)
                + " | "
                + " | ".join(f"{statistics.mean(spaces_nmi[how][t]):.3f}" for t in taps)
                + " |",
                flush=True,
            )


if __name__ == "__main__":
    main()
