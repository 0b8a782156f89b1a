"""Label-free refinement of the MI selection: clip-level agreement between sound and picture.

The MI selection sees cells of clusterings: a clip is chosen because its (audio cluster, visual
cluster) cell is dense. k-means with a few dozen clusters cuts real classes coarsely (a "bird"
class of many species and calls lands in several clusters, shared with others), so some matched
clips sit in thin cells and some mismatched ones in dense cells. Two clip-level scores look past
the cells, and neither reads a label:

- **neighbour agreement**: for each informative pair of feature spaces (audio space *a*, visual
  space *v*), how much more alike a clip's sound is to the sounds of its *k* nearest pictures
  than to sounds in general (a z-score against the clip's own similarity to the pool), and the
  same with the roles swapped. A matched clip's picture neighbours are mostly of its class and,
  when they are matched too, sound like it; a mismatched clip's sound belongs to another class
  than its picture neighbours'. This is a local estimate of the pointwise mutual information.
- **pseudo-class agreement**: the MI selection, taken as a mostly-clean split, is clustered in
  the joint (sound, picture) space: on corresponding clips the two modalities agree, so joint
  clusters follow the content's classes better than either modality alone. A softmax regression
  per modality learns to predict a clip's joint cluster from its sound alone and from its picture
  alone (cross-fitted: a selected clip is scored by classifiers that did not see it); a clip's
  score is the probability that both predictions name the same cluster, ``sum_c p_a(c) p_v(c)``.

The combined score (the sum of the two, each standardised over the pool) then exchanges the new
picks that agree least for unpicked clips that agree more (:func:`swap_by_agreement`), at most a
share of the picks. The informative pairs are the pool's best by pair weighting's adjusted MI
(:mod:`acav_assets.core.selection.weighting`), so the feature spaces that carry no
correspondence never enter. Measured in ``benchmarks/refinement.py`` (docs/quality.md).

Memory and time stay bounded on large pools: each space is reduced to ``dim`` principal
components (fitted on a sample), neighbours come from faiss (exact up to ``exact_limit`` clips,
HNSW above), the neighbour sums run in chunks of rows, and the classifiers fit on at most
``max_train`` clips.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import faiss
import numpy as np
import torch

from acav_assets.core.clustering import KMeansConfig, auto_nredo, fit_kmeans
from acav_assets.core.selection.weighting import DEFAULT_MIN_Z

__all__ = [
    "AgreementScores",
    "RefinementConfig",
    "SpaceProjection",
    "agreement_scores",
    "informative_pairs",
    "neighbour_agreement",
    "pseudo_class_agreement",
    "refine_in_memory",
    "swap_by_agreement",
]


@dataclass(frozen=True)
class RefinementConfig:
    """Settings of the agreement refinement (defaults measured in ``benchmarks/refinement.py``)."""

    pairs: int = 6  # audio x visual space pairs scored: the pool's best by adjusted MI
    neighbours: int = 20  # k of the picture (and sound) neighbourhoods
    dim: int = 64  # principal components kept per space
    swap_share: float = 0.3  # at most this share of the new picks is exchanged
    folds: int = 5  # cross-fitting folds of the pseudo-class classifiers
    max_train: int = 20_000  # selected clips the classifiers fit on, at most (a seeded sample)
    min_pool: int = 100  # smaller pools keep the MI selection as it is (neighbourhoods too thin)
    exact_limit: int = 200_000  # exact neighbour search up to this many clips, HNSW above
    seed: int = 0

    def __post_init__(self):
        if self.pairs < 1 or self.neighbours < 1 or self.dim < 1 or self.folds < 2:
            raise ValueError("pairs, neighbours and dim must be >= 1 and folds >= 2")
        if not 0.0 <= self.swap_share <= 1.0:
            raise ValueError(f"swap_share must be in [0, 1], got {self.swap_share}")


@dataclass(frozen=True)
class AgreementScores:
    """Per clip of the pool: the combined score and its two parts; the space pairs used."""

    combined: np.ndarray
    neighbour: np.ndarray
    pseudo_class: np.ndarray
    pairs: tuple[tuple[str, str, float], ...]  # (audio space, visual space, adjusted-MI score)


def informative_pairs(
    names: Sequence[str],
    pairs: Sequence[tuple[int, int]],
    scores: np.ndarray,
    z: np.ndarray | None,
    count: int,
    *,
    min_z: float = DEFAULT_MIN_Z,
) -> list[tuple[str, str, float]]:
    """The ``count`` audio x visual pairs with the highest pool score (adjusted MI) among those
    whose MI stands ``min_z`` permutation-null deviations above chance (pair weighting's test),
    as (audio space, visual space, score). ``names`` are the feature spaces of the columns
    ``pairs`` index. Without null deviations (plain weighting) no pair qualifies."""
    if z is None:
        return []
    ranked = []
    for (i, j), s, dev in zip(pairs, np.asarray(scores, np.float64), np.asarray(z, np.float64)):
        a, b = names[i], names[j]
        if not (np.isfinite(s) and np.isfinite(dev)) or dev < min_z or a.split("/", 1)[0] == b.split("/", 1)[0]:
            continue
        if a.startswith("visual"):
            a, b = b, a
        ranked.append((a, b, float(s)))
    ranked.sort(key=lambda t: -t[2])
    return ranked[:count]


class SpaceProjection:
    """A feature space's vectors L2-normalised, centred, reduced to ``dim`` principal components
    and L2-normalised again: cosine similarity as a dot product, in bounded memory."""

    def __init__(self, dim: int):
        self.dim = dim
        self.mean: np.ndarray | None = None
        self.basis: np.ndarray | None = None

    @staticmethod
    def _unit(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float32)
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        return x / np.maximum(norms, 1e-12)

    def fit(self, sample: np.ndarray) -> SpaceProjection:
        x = self._unit(sample)
        self.mean = x.mean(0)
        x = x - self.mean
        if x.shape[1] <= self.dim:
            self.basis = np.eye(x.shape[1], dtype=np.float32)
        else:  # the top eigenvectors of the covariance: one matrix product, no SVD of the sample
            _, vecs = np.linalg.eigh((x.T @ x).astype(np.float64))
            self.basis = np.ascontiguousarray(vecs[:, ::-1][:, : self.dim], dtype=np.float32)
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        if self.mean is None:
            raise RuntimeError("SpaceProjection.transform before fit")
        return self._unit((self._unit(x) - self.mean) @ self.basis)


def _neighbours(x: np.ndarray, k: int, exact_limit: int) -> np.ndarray:
    """Indices ``(n, k)`` of each row's ``k`` most similar other rows (dot product)."""
    n, d = x.shape
    x = np.ascontiguousarray(x, np.float32)
    if n <= exact_limit:
        index = faiss.IndexFlatIP(d)
    else:  # rows are unit vectors: the L2 order is the dot-product order
        index = faiss.IndexHNSWFlat(d, 32)
        index.hnsw.efSearch = max(64, 2 * k)
    index.add(x)
    _, found = index.search(x, min(n, k + 1))
    out = np.empty((n, min(k, n - 1)), np.int64)
    for i, row in enumerate(found):  # drop the row itself wherever the search put it
        others = row[(row != i) & (row >= 0)]
        if others.size < out.shape[1]:  # HNSW may return fewer: repeat the last one found
            others = np.r_[others, np.full(out.shape[1] - others.size, others[-1] if others.size else (i + 1) % n)]
        out[i] = others[: out.shape[1]]
    return out


def _neighbour_z(near: np.ndarray, other: np.ndarray, chunk: int = 20_000) -> np.ndarray:
    """Per row: the mean similarity in ``other`` (unit rows) to the rows ``near`` lists, as a
    z-score against the row's similarity to every row (mean and spread in closed form)."""
    mean = other.mean(0)
    cov = np.cov(other.T.astype(np.float64)) if other.shape[0] > 1 else np.zeros((other.shape[1],) * 2)
    out = np.empty(other.shape[0])
    for s in range(0, other.shape[0], chunk):
        rows = other[s : s + chunk]
        m = np.einsum("nd,nkd->n", rows, other[near[s : s + chunk]]) / near.shape[1]
        mu = rows @ mean
        sd = np.sqrt(np.maximum(np.einsum("nd,de,ne->n", rows, cov, rows), 1e-12))
        out[s : s + chunk] = (m - mu) / sd
    return out


def neighbour_agreement(
    audio: np.ndarray,
    visual: np.ndarray,
    k: int = 20,
    *,
    exact_limit: int = 200_000,
    audio_neighbours: np.ndarray | None = None,
    visual_neighbours: np.ndarray | None = None,
) -> np.ndarray:
    """Per clip, for one pair of spaces (unit rows): how alike its sound is to the sounds of its
    ``k`` nearest pictures, plus how alike its picture is to the pictures of its ``k`` nearest
    sounds, each as a z-score against the clip's similarity to the whole pool. Each space's
    neighbours may be given (found once for every pair the space is in)."""
    if audio.shape[0] < 3:
        return np.zeros(audio.shape[0])
    k = min(k, audio.shape[0] - 1)
    near_v = visual_neighbours if visual_neighbours is not None else _neighbours(visual, k, exact_limit)
    near_a = audio_neighbours if audio_neighbours is not None else _neighbours(audio, k, exact_limit)
    return _neighbour_z(near_v, audio) + _neighbour_z(near_a, visual)


def _softmax_regression(x: np.ndarray, y: np.ndarray, k: int, reg: float = 1e-3, iters: int = 100):
    """Multinomial logistic regression (weight decay ``reg``), fitted from zero with L-BFGS:
    deterministic. Returns a function giving class probabilities for new rows."""
    xt = torch.from_numpy(np.ascontiguousarray(x, np.float32))
    yt = torch.from_numpy(np.asarray(y, np.int64))
    w = torch.zeros(x.shape[1], k, requires_grad=True)
    b = torch.zeros(k, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=iters, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(xt @ w + b, yt) + reg * (w**2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    wn, bn = w.detach().numpy(), b.detach().numpy()

    def predict(z: np.ndarray) -> np.ndarray:
        logits = z @ wn + bn
        logits -= logits.max(1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(1, keepdims=True)

    return predict


def pseudo_class_agreement(
    audio: np.ndarray,
    visual: np.ndarray,
    selected: np.ndarray,
    *,
    k: int,
    folds: int = 5,
    seed: int = 0,
    max_train: int = 20_000,
) -> np.ndarray:
    """Per clip: the probability that its sound and its picture name the same joint cluster of
    the ``selected`` clips (``sum_c p_a(c) p_v(c)``), from cross-fitted softmax regressions (see
    the module docs). ``audio``/``visual``: unit rows (one or several spaces side by side)."""
    chosen = np.flatnonzero(selected)
    n = audio.shape[0]
    if chosen.size < max(2 * folds, k + 1):
        return np.zeros(n)
    joint = np.concatenate([audio[chosen], visual[chosen]], axis=1).astype(np.float32)
    kmeans = fit_kmeans(
        joint, "joint", KMeansConfig(k=k, nredo=auto_nredo(chosen.size, joint.shape[1]), seed=seed, normalize=True)
    )
    cluster = kmeans.assign(joint)[0].astype(np.int64)
    rng = np.random.default_rng(seed)
    part = rng.permutation(chosen.size) % folds
    scores = np.zeros(n)
    rest = np.ones(n, bool)
    rest[chosen] = False
    for f in range(folds):
        train = np.flatnonzero(part != f)
        if train.size > max_train:
            train = np.sort(rng.choice(train, max_train, replace=False))
        p_audio = _softmax_regression(audio[chosen[train]], cluster[train], k)
        p_visual = _softmax_regression(visual[chosen[train]], cluster[train], k)
        held = chosen[part == f]
        scores[held] = (p_audio(audio[held]) * p_visual(visual[held])).sum(1)
        if rest.any():
            scores[rest] += (p_audio(audio[rest]) * p_visual(visual[rest])).sum(1) / folds
    return scores


def _standardised(x: np.ndarray) -> np.ndarray:
    sd = x.std()
    return (x - x.mean()) / sd if sd > 0 else np.zeros_like(x)


def agreement_scores(
    spaces: Mapping[str, np.ndarray],
    pairs: Sequence[tuple[str, str, float]],
    selected: np.ndarray,
    *,
    k: int,
    config: RefinementConfig = RefinementConfig(),
) -> AgreementScores:
    """The agreement of every clip of the pool (rows of each ``spaces`` matrix, already projected
    by :class:`SpaceProjection`), over the informative ``pairs`` (:func:`informative_pairs`);
    the pseudo-classes are ``k`` joint clusters of the ``selected`` clips (bool per row)."""
    if not pairs:
        raise ValueError("no informative pair of feature spaces to score agreement on")
    n = next(iter(spaces.values())).shape[0]
    k_near = min(config.neighbours, max(1, n - 1))
    used = dict.fromkeys(x for a, v, _ in pairs for x in (a, v))
    near = {s: _neighbours(spaces[s], k_near, config.exact_limit) for s in used} if n >= 3 else {}
    neighbour = np.zeros(n)
    for a, v, weight in pairs:
        neighbour += weight * neighbour_agreement(
            spaces[a], spaces[v], k_near, audio_neighbours=near.get(a), visual_neighbours=near.get(v)
        )
    audio = np.concatenate([spaces[a] for a in dict.fromkeys(a for a, _, _ in pairs)], axis=1)
    visual = np.concatenate([spaces[v] for v in dict.fromkeys(v for _, v, _ in pairs)], axis=1)
    pseudo = pseudo_class_agreement(
        audio, visual, selected, k=k, folds=config.folds, seed=config.seed, max_train=config.max_train
    )
    return AgreementScores(
        _standardised(neighbour) + _standardised(pseudo),
        neighbour,
        pseudo,
        tuple((a, v, float(w)) for a, v, w in pairs),
    )


def swap_by_agreement(
    score: np.ndarray, leaving: np.ndarray, entering: np.ndarray, max_swaps: int
) -> tuple[np.ndarray, np.ndarray]:
    """Exchanges that raise agreement: the picks that may leave (rows ``leaving``) with the lowest
    ``score`` for the clips that may enter (rows ``entering``) with the highest, pair by pair while
    the one entering scores higher, at most ``max_swaps``. Returns (rows out, rows in), in the
    order exchanged. Deterministic: ties keep row order."""
    leaving, entering = np.asarray(leaving, np.int64), np.asarray(entering, np.int64)
    outs = leaving[np.argsort(score[leaving], kind="stable")][:max_swaps]
    ins = entering[np.argsort(-score[entering], kind="stable")][: outs.size]
    m = min(outs.size, ins.size)
    better = score[ins[:m]] > score[outs[:m]]
    count = int(np.argmin(better)) if not better.all() else m  # pairs stay better until the first that is not
    return outs[:count], ins[:count]


def refine_in_memory(
    vectors: Mapping[str, np.ndarray],
    names: Sequence[str],
    pairs: Sequence[tuple[int, int]],
    weighting,
    selected: np.ndarray,
    *,
    k: int,
    config: RefinementConfig = RefinementConfig(),
) -> tuple[np.ndarray, AgreementScores | None]:
    """The refinement on a pool held in memory (the benchmarks; the platform reads the warehouse:
    ``core/stages/agreement.py``): ``vectors`` per feature space (rows = clips), ``names`` the
    space of each label column that ``pairs`` index, ``weighting`` their pair weighting, and the
    MI selection ``selected`` (bool). Returns the refined selection (bool) and the scores (None
    when no pair stands out from chance: the selection is kept)."""
    chosen = informative_pairs(names, pairs, weighting.scores, weighting.z, config.pairs)
    if not chosen:
        return selected.copy(), None
    used = dict.fromkeys(s for a, v, _ in chosen for s in (a, v))
    projected = {s: SpaceProjection(config.dim).fit(vectors[s]).transform(vectors[s]) for s in used}
    scores = agreement_scores(projected, chosen, selected, k=k, config=config)
    picks = np.flatnonzero(selected)
    out, inn = swap_by_agreement(scores.combined, picks, np.flatnonzero(~selected), int(config.swap_share * picks.size))
    refined = selected.copy()
    refined[out], refined[inn] = False, True
    return refined, scores
