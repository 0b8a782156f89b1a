"""Correspondence retrieval: how well a method finds the clips whose sound belongs to their picture.

The protocol of the paper: take data with known pairs, break the pairing for a share of it,
select as many clips as truly correspond (so precision equals recall), and measure precision.

(a) ``planted``: cluster assignments from :mod:`acav_assets.core.generators.planted` (the selector alone).
(b) ``videos``: generated videos end to end — decode, features of a profile, k-means, pair
    weighting, selection — on our demo corpus or on the independent spoken-digits corpus
    (:mod:`acav_assets.core.generators.spoken_digits`), with per-space NMI against the known
    classes, plus baselines that rank clips by an audio-visual similarity:
    - ``contrastive``: linear projections of the audio and of the visual features into a shared
      space, trained with a symmetric InfoNCE loss on a held-out *clean* split (every pair
      matched), gradients zeroed every step; clips ranked by cosine similarity.
    - ``pca-cosine``: each modality reduced by PCA (fitted on the clean split) to the same number
      of dimensions, clips ranked by the cosine of the two; no alignment is learned.
    The weight-free profile has no single "last layer", so the baselines get every layer of a
    modality, standardised and concatenated (the most information we can give them).
"""

from __future__ import annotations

import statistics
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from acav_assets.core.clustering import KMeansConfig, auto_k, auto_nredo, fit_kmeans
from acav_assets.core.features.embed import embed_clips
from acav_assets.core.features.profiles import build_profile
from acav_assets.core.generators.demo import write_demo_videos
from acav_assets.core.generators.planted import planted_assignments, precision
from acav_assets.core.media.clips import clip_windows
from acav_assets.core.media.probe import probe_file
from acav_assets.core.selection import mutual_information, pair_weights, resolve_pairs, select_subset
from acav_assets.core.selection.agreement import agreement_scores, standardise
from acav_assets.core.selection.refinement import RefinementConfig, refine_in_memory

__all__ = [
    "CORPORA",
    "Row",
    "contrastive_scores",
    "format_table",
    "nmi",
    "pca_cosine_scores",
    "run_planted",
    "run_videos",
]


@dataclass
class Row:
    method: str
    values: list[float]

    @property
    def mean(self) -> float:
        return statistics.mean(self.values)

    @property
    def std(self) -> float:
        return statistics.pstdev(self.values) if len(self.values) > 1 else 0.0


def format_table(title: str, rows: list[Row], *, method: str = "method", metric: str = "precision") -> str:
    lines = [f"### {title}", "", f"| {method} | {metric} (mean ± std) | per seed |", "|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.method} | {r.mean:.3f} ± {r.std:.3f} | {', '.join(f'{v:.3f}' for v in r.values)} |")
    return "\n".join(lines)


def _select(labels, modalities, budget, pairing, seed, *, refine=50, restarts=4, weighting="ami"):
    """The platform's selection: pair weights from the pool (``weighting``), refinement, best of
    ``restarts`` seeds by objective."""
    pairs = resolve_pairs(pairing, labels.shape[1], modalities)
    weights = pair_weights(labels, pairs, rule=weighting, modalities=modalities, seed=seed).weights
    best = None
    for r in range(restarts):
        s = select_subset(labels, budget, pairing=pairs, seed=seed * 100 + r, refine=refine, pair_weights=weights)
        if best is None or s.objective > best.objective:
            best = s
    return best.indices


def run_planted(
    n: int = 20_000, seeds: int = 3, mismatch: float = 0.5, log: Callable[[str], None] = print
) -> list[Row]:
    rows: dict[str, list[float]] = {}
    for seed in range(seeds):
        pa = planted_assignments(n, matched_fraction=1 - mismatch, seed=seed)
        budget = pa.n_matched
        rng = np.random.default_rng(seed)
        rows.setdefault("random", []).append(precision(rng.choice(n, budget, replace=False), pa.matched))
        for pairing in ("combination", "bipartite", "diagonal"):
            for refine, label in ((0, "reference greedy"), (50, "+ refinement")):
                sel = select_subset(
                    pa.labels, budget, pairing=pairing, modalities=pa.modalities, seed=seed, refine=refine
                )
                rows.setdefault(f"MI {pairing}, {label}", []).append(precision(sel.indices, pa.matched))
            pairs = resolve_pairs(pairing, pa.labels.shape[1], pa.modalities)
            w = pair_weights(pa.labels, pairs, modalities=pa.modalities, seed=seed).weights
            sel = select_subset(pa.labels, budget, pairing=pairs, seed=seed, refine=50, pair_weights=w)
            default = " (platform default)" if pairing == "bipartite" else ""
            rows.setdefault(f"MI {pairing}, + refinement + pair weighting{default}", []).append(
                precision(sel.indices, pa.matched)
            )
        log(f"planted seed {seed} done")
    return [Row(k, v) for k, v in rows.items()]


def contrastive_scores(
    a_train,
    v_train,
    a_test,
    v_test,
    *,
    dim: int = 32,
    steps: int = 300,
    lr: float = 1e-2,
    temperature: float = 0.1,
    seed: int = 0,
) -> np.ndarray:
    """Cosine similarity after linear InfoNCE projections trained on matched pairs (a labelled
    clean split: the supervised baseline of the label-free refinement)."""
    return agreement_scores(
        a_train, v_train, a_test, v_test, dim=dim, steps=steps, lr=lr, temperature=temperature, seed=seed
    )


def pca_cosine_scores(a_train, v_train, a_test, v_test, *, dim: int = 16) -> np.ndarray:
    """Cosine of PCA projections of the two modalities (no learned alignment)."""

    def project(train, test):
        tr = standardise(train, train)
        _, _, vt = np.linalg.svd(tr, full_matrices=False)
        return standardise(test, train) @ vt[:dim].T

    pa, pv = project(a_train, a_test), project(v_train, v_test)
    d = min(pa.shape[1], pv.shape[1])
    pa, pv = pa[:, :d], pv[:, :d]
    return (pa * pv).sum(1) / (np.linalg.norm(pa, axis=1) * np.linalg.norm(pv, axis=1) + 1e-9)


def _embed_folder(folder: Path, videos, extractors):
    items = []
    for v in videos:
        rec = probe_file(folder / v.file)
        (w,) = clip_windows(rec.video_id, rec.duration_s)
        items.append((w.clip_id, rec.path, w.start_s, w.end_s))
    res = embed_clips(items, extractors)
    assert not res.failed, res.failed
    return res.vectors


def _modality(vectors: dict, modality: str) -> tuple[list[str], np.ndarray]:
    names = sorted(n for n in vectors if n.startswith(modality))
    return names, np.concatenate([vectors[n] for n in names], axis=1)


#: Corpora for :func:`run_videos`: name -> writer(out_dir, n_videos, matched_fraction=, seed=).
CORPORA = ("demo", "digits", "photos", "stamps")


def _writer(corpus: str):
    if corpus == "demo":
        return write_demo_videos
    if corpus == "digits":
        from acav_assets.core.generators.spoken_digits import write_spoken_digit_videos

        return write_spoken_digit_videos
    if corpus == "photos":
        from acav_assets.core.generators.photos_sounds import write_photo_sound_videos

        return write_photo_sound_videos
    if corpus == "stamps":
        from acav_assets.core.generators.stamps_sounds import write_stamp_sound_videos

        return write_stamp_sound_videos
    raise ValueError(f"unknown corpus {corpus!r}: expected one of {CORPORA}")


def _class_names(corpus: str) -> list[str]:
    """Class names of a corpus for the per-class rows (class numbers where it has none)."""
    if corpus == "stamps":
        from acav_assets.core.generators.stamps_sounds import class_names

        return class_names()
    if corpus == "photos":
        from acav_assets.core.generators.photos_sounds import PHOTOS

        return [p.rsplit(".", 1)[0] for p in PHOTOS]
    return []


def nmi(labels: np.ndarray, classes: np.ndarray) -> float:
    """Normalised mutual information (arithmetic mean of the entropies) of two labelings."""
    ka, kb = int(labels.max()) + 1, int(classes.max()) + 1
    table = np.bincount(labels.astype(np.int64) * kb + classes, minlength=ka * kb).reshape(ka, kb)
    mi = mutual_information(table)

    def h(x):
        p = x[x > 0] / x.sum()
        return float(-(p * np.log(p)).sum())

    denom = 0.5 * (h(table.sum(1)) + h(table.sum(0)))
    return mi / denom if denom > 0 else 0.0


def run_videos(
    n_videos: int = 300,
    seeds: int = 3,
    mismatch: float = 0.5,
    *,
    ks: tuple[int, ...] = (0, 8, 16, 32),
    n_clean: int = 100,
    log: Callable[[str], None] = print,
    workdir: str | None = None,
    corpus: str = "demo",
    profile: str = "weightfree",
    extractor_options: dict | None = None,
) -> tuple[list[Row], list[Row]]:
    """End to end on a generated corpus (``demo``: our own generator; ``digits``: written and
    spoken digits, classes we did not design); ``k=0`` means the platform's automatic k.

    Returns the precision rows and, per feature space, the NMI of its clustering (automatic k)
    against the known class of its modality (picture class for visual spaces, sound class for
    audio spaces): which spaces carry the content at all. When ``0`` is in ``ks`` the precision
    rows end with one ``recall[class]`` row per class: the share of the class's matched videos
    that the default selection (pair weighting, automatic k) selected.
    """
    write = _writer(corpus)
    extractors = build_profile(profile, "cpu", extractor_options)
    rows: dict[str, list[float]] = {}
    nmis: dict[str, list[float]] = {}
    recall: dict[int, list[float]] = {}
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        for seed in range(seeds):
            pool_dir, clean_dir = Path(tmp) / f"pool{seed}", Path(tmp) / f"clean{seed}"
            pool = write(pool_dir, n_videos, matched_fraction=1 - mismatch, seed=1000 + seed)
            clean = write(clean_dir, n_clean, matched_fraction=1.0, seed=2000 + seed)
            vec = _embed_folder(pool_dir, pool, extractors)
            cvec = _embed_folder(clean_dir, clean, extractors)
            matched = np.array([v.matched for v in pool])
            budget = int(matched.sum())
            rng = np.random.default_rng(seed)
            rows.setdefault("random", []).append(float(matched[rng.choice(n_videos, budget, replace=False)].mean()))
            names = sorted(vec, key=lambda n: (not n.startswith("audio"), n))
            modalities = [n.split("/")[0] for n in names]
            classes = {
                "audio": np.array([v.audio_class for v in pool]),
                "visual": np.array([v.visual_class for v in pool]),
            }
            for k in ks:
                kk = k or auto_k(n_videos)
                labels = np.stack(
                    [
                        fit_kmeans(
                            vec[n], n, KMeansConfig(k=kk, nredo=auto_nredo(n_videos, vec[n].shape[1]), seed=seed)
                        ).assign(vec[n])[0]
                        for n in names
                    ],
                    1,
                )
                kname = "auto (" + str(kk) + ")" if k == 0 else str(k)
                if k == 0:
                    for n, col, mod in zip(names, labels.T, modalities):
                        nmis.setdefault(n, []).append(nmi(col, classes[mod]))
                    square = modalities.count("audio") == modalities.count("visual")
                    for pairing in ("combination", "bipartite", "diagonal")[: 3 if square else 2]:
                        sel = _select(labels, modalities, budget, pairing, seed, weighting="plain")
                        rows.setdefault(f"MI {pairing}, plain mean (reference), k={kname}", []).append(
                            float(matched[sel].mean())
                        )
                    sel = _select(
                        labels, modalities, budget, "bipartite", seed, refine=0, restarts=1, weighting="plain"
                    )
                    rows.setdefault(f"MI bipartite, plain mean, k={kname}, reference greedy only", []).append(
                        float(matched[sel].mean())
                    )
                sel = _select(labels, modalities, budget, "bipartite", seed)
                rows.setdefault(f"MI bipartite, pair weighting (MI alone), k={kname}", []).append(
                    float(matched[sel].mean())
                )
                if k == 0:  # the platform's default: the agreement refinement on top; its per-class recall
                    mi = np.zeros(n_videos, bool)
                    mi[sel] = True
                    pairs = resolve_pairs("bipartite", len(names), modalities)
                    weighting = pair_weights(labels, pairs, rule="ami", modalities=modalities, seed=seed)
                    chosen, _ = refine_in_memory(
                        vec, names, pairs, weighting, mi, k=kk, config=RefinementConfig(seed=seed)
                    )
                    rows.setdefault(
                        f"MI bipartite, pair weighting + agreement refinement (platform default), k={kname}", []
                    ).append(float(matched[chosen].mean()))
                    for c in range(int(classes["visual"].max()) + 1):
                        mine = matched & (classes["visual"] == c)
                        if mine.any():
                            recall.setdefault(c, []).append(float(chosen[mine].mean()))
            _, a = _modality(vec, "audio")
            _, v = _modality(vec, "visual")
            _, ca = _modality(cvec, "audio")
            _, cv = _modality(cvec, "visual")
            for label, scores in (
                ("contrastive (linear InfoNCE, clean split)", contrastive_scores(ca, cv, a, v, seed=seed)),
                ("PCA cosine similarity", pca_cosine_scores(ca, cv, a, v)),
            ):
                top = np.argsort(-scores, kind="stable")[:budget]
                rows.setdefault(label, []).append(float(matched[top].mean()))
            log(f"{corpus} seed {seed} done")
    names = _class_names(corpus)
    rows.update(
        (f"recall[{names[c] if c < len(names) else c}], platform default, k=auto", recall[c]) for c in sorted(recall)
    )
    return [Row(k, v) for k, v in rows.items()], [Row(k, v) for k, v in nmis.items()]
