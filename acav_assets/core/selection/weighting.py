"""Label-free pair weighting: which clustering pairs carry cross-modal information at all.

The reference objective is the plain mean of MI over audio x visual clustering pairs. When only
some feature spaces describe content (a layer that encodes position, a codec artefact, a
random-weight network), their pairs carry no correspondence, yet their MI is still maximised:
the selector then chases chance co-occurrences in those tables, and they drown the informative
pairs (measured on the independent corpus in docs/quality.md: 20 noise pairs out of 25 bring
precision close to random).

Before selecting, we measure on the whole pool, for every pair, how much MI there is *beyond
chance*: an adjusted mutual information

    score = (MI - E0[MI]) / (mean(H_a, H_b) - E0[MI])

where ``E0[MI]`` is the MI of the same two label columns after randomly permuting one of them
(the permutation null of the pool: same cluster sizes, no association), averaged over a few
permutations. 0 means "no more shared information than chance", 1 means "one clustering
determines the other". No ground truth is used: only the cluster labels of the pool.

The rule (``rule="ami"``, the platform's default): a pair counts (weight 1) when its MI stands
out from its permutation null (at least ``min_z`` standard deviations of the null MI above the
null's mean) and its score is at least ``keep`` times the best such pair's score; the others get
weight 0 and drop out of the search. The objective stays a plain mean, over the pairs that carry
correspondence. When no pair stands out (no correspondence anywhere in the pool), or the pool
has fewer than ``min_pool`` (100) clips, every pair gets weight 1: the reference's plain mean,
with the reason recorded.

Measured on planted labels (``benchmarks/weighting.py``, table in docs/quality.md): equal weights over the kept pairs
beat weights proportional to the score or its square, and ``keep`` from 0.1 to 0.2 loses nothing
when every space is informative while recovering most of the loss when some are not. ``rule="plain"`` is the
reference (all weights 1).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["RULES", "PairWeighting", "adjusted_pair_scores", "pair_weights", "space_summary"]

#: Weighting rules: "plain" (the reference's mean), "ami" (adjusted MI of the pool, see above).
RULES = ("plain", "ami")
DEFAULT_KEEP = 0.2
DEFAULT_MIN_Z = 4.0
DEFAULT_MIN_POOL = 100  # below this, MI estimates of whole pairs are too noisy to drop any


@dataclass(frozen=True)
class PairWeighting:
    """Per pair (in the selector's pair order): the pool's adjusted MI score and the weight."""

    rule: str
    scores: np.ndarray
    weights: np.ndarray
    z: np.ndarray | None = None  # the pool MI's distance from the permutation null, in null deviations
    keep: float = DEFAULT_KEEP
    note: str = ""  # why the rule fell back to the plain mean, if it did
    sample_size: int = 0

    def to_records(self, pairs: Sequence[tuple[int, int]], names: Sequence[str]) -> list[dict]:
        """JSON-able rows: the two feature spaces (by column name), score and weight."""
        z = self.z if self.z is not None else np.full(len(self.scores), np.nan)
        return [
            {"a": names[i], "b": names[j], "score": _num(s), "z": _num(zz), "weight": _num(w)}
            for (i, j), s, zz, w in zip(pairs, self.scores, z, self.weights)
        ]


def _num(x) -> float | None:
    return None if x is None or not math.isfinite(float(x)) else round(float(x), 6)


def _entropy(counts: np.ndarray, n: int) -> float:
    p = counts[counts > 0] / n
    return float(-(p * np.log(p)).sum())


def _xlogx(x: np.ndarray, axis) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x > 0, x * np.log(np.where(x > 0, x, 1.0)), 0.0).sum(axis=axis)


def _mi_with_nulls(a: np.ndarray, bs: np.ndarray, ka: int, kb: int) -> tuple[float, np.ndarray]:
    """Plug-in MI of column ``a`` against each row of ``bs`` (the column ``b``, then its
    permutations): all tables from one ``bincount``, no Python loop over permutations."""
    n = a.size
    cells = (np.arange(bs.shape[0])[:, None] * (ka * kb) + a[None, :] * kb + bs).ravel()
    tables = np.bincount(cells, minlength=bs.shape[0] * ka * kb).reshape(bs.shape[0], ka, kb).astype(np.float64)
    mi = (_xlogx(tables, (1, 2)) - _xlogx(tables.sum(2), 1) - _xlogx(tables.sum(1), 1)) / n + math.log(n)
    return float(mi[0]), mi[1:]


def adjusted_pair_scores(
    labels: np.ndarray,
    pairs: Sequence[tuple[int, int]],
    *,
    max_clips: int = 200_000,
    permutations: int = 8,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Adjusted MI of each pair over the pool (a seeded sample of at most ``max_clips`` rows),
    against ``permutations`` random permutations of the second column. Returns the scores, the
    z-scores of the pool's MI against the permutation null, and the number of rows used."""
    labels = np.asarray(labels)
    n = labels.shape[0]
    if n == 0:
        return np.zeros(len(pairs)), np.zeros(len(pairs)), 0
    rng = np.random.default_rng(seed)
    rows = labels if n <= max_clips else labels[np.sort(rng.choice(n, max_clips, replace=False))]
    m = rows.shape[0]
    cols = [np.ascontiguousarray(rows[:, c]).astype(np.int64) for c in range(rows.shape[1])]
    ks = [int(c.max()) + 1 for c in cols]
    ent = [_entropy(np.bincount(c, minlength=k), m) for c, k in zip(cols, ks)]
    perms = np.array([rng.permutation(m) for _ in range(permutations)], dtype=np.int64).reshape(permutations, m)
    scores = np.zeros(len(pairs))
    z = np.zeros(len(pairs))
    shuffled: dict[int, np.ndarray] = {}
    for p, (i, j) in enumerate(pairs):
        if j not in shuffled:  # the column, then its permutations: (1 + permutations, m)
            shuffled[j] = np.vstack([cols[j][None, :], cols[j][perms]])
        mi, nulls = _mi_with_nulls(cols[i], shuffled[j], ks[i], ks[j])
        nulls = nulls if nulls.size else np.zeros(1)
        null = float(nulls.mean())
        denom = 0.5 * (ent[i] + ent[j]) - null
        scores[p] = (mi - null) / denom if denom > 1e-12 else 0.0
        # the null's spread, floored at a thousandth of its mean (a few permutations can agree by chance)
        z[p] = (mi - null) / max(float(nulls.std(ddof=1)) if nulls.size > 1 else 0.0, 1e-3 * null, 1e-12)
    return scores, z, m


def pair_weights(
    labels: np.ndarray,
    pairs: Sequence[tuple[int, int]],
    *,
    rule: str = "ami",
    keep: float = DEFAULT_KEEP,
    min_z: float = DEFAULT_MIN_Z,
    max_clips: int = 200_000,
    modalities: Sequence[str] | None = None,
    min_pool: int = DEFAULT_MIN_POOL,
    seed: int = 0,
) -> PairWeighting:
    """Weights of ``pairs`` for :func:`~acav_assets.core.selection.select_subset` by ``rule``
    (see the module docstring). ``keep`` in [0, 1]: the share of the best pair's score that a
    pair needs to count (0 keeps every pair above chance); ``min_z``: how many standard
    deviations of the permutation null a pair's MI must stand above the null's mean.
    ``modalities`` (one per column): the ``keep`` bar is then set per kind of pair (audio x
    visual, audio x audio, visual x visual), so that layers of one network, which always share
    much information, do not raise the bar for the cross-modal pairs (``combination`` pairing).
    A pool of fewer than ``min_pool`` clips is too small to judge a pair: plain mean."""
    if rule not in RULES:
        raise ValueError(f"unknown pair weighting rule {rule!r}: expected one of {RULES}")
    if not 0.0 <= keep <= 1.0:
        raise ValueError(f"keep must be in [0, 1], got {keep}")
    if rule == "plain":
        return PairWeighting("plain", np.full(len(pairs), np.nan), np.ones(len(pairs)), keep=keep)
    n = int(np.asarray(labels).shape[0])
    if n < min_pool:
        return PairWeighting(
            rule,
            np.full(len(pairs), np.nan),
            np.ones(len(pairs)),
            keep=keep,
            sample_size=n,
            note=f"a pool of {n} clips is too small to judge pairs (< {min_pool}): plain mean",
        )
    scores, z, used = adjusted_pair_scores(labels, pairs, max_clips=max_clips, seed=seed)
    above = z >= min_z
    if not above.any():
        return PairWeighting(
            rule,
            scores,
            np.ones(len(pairs)),
            z=z,
            keep=keep,
            note=f"no pair's MI stands {min_z} null deviations above chance: plain mean",
            sample_size=used,
        )
    kinds = (
        np.array(["/".join(sorted((modalities[i], modalities[j]))) for i, j in pairs])
        if modalities is not None
        else np.zeros(len(pairs), dtype=str)
    )
    weights = np.zeros(len(pairs))
    for kind in np.unique(kinds):
        mine = above & (kinds == kind)
        if mine.any():
            weights[mine & (scores >= keep * float(scores[mine].max()))] = 1.0
    return PairWeighting(rule, scores, weights, z=z, keep=keep, sample_size=used)


def space_summary(records: Sequence[dict]) -> list[dict]:
    """Per feature space, from :meth:`PairWeighting.to_records` rows: its best pair score and its
    share of the total pair weight (how much it drives the selection), sorted by share, then score."""
    total = sum(r["weight"] for r in records) or 1.0
    out: dict[str, dict] = {}
    for r in records:
        for name in (r["a"], r["b"]):
            row = out.setdefault(name, {"feature_space": name, "best_score": None, "weight_share": 0.0})
            if r["score"] is not None:
                row["best_score"] = r["score"] if row["best_score"] is None else max(row["best_score"], r["score"])
            row["weight_share"] += r["weight"] / total / 2  # a pair's weight is shared by its two spaces
    rows = [{**r, "weight_share": round(r["weight_share"], 6)} for r in out.values()]
    return sorted(rows, key=lambda r: (-r["weight_share"], -(r["best_score"] or 0.0)))
