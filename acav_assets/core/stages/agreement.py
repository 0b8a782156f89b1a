"""The agreement refinement of a selection, on the warehouse's embeddings.

:mod:`acav_assets.core.selection.refinement` scores how well each clip's sound agrees with its
picture, label-free, and exchanges the new picks that agree least for unpicked clips that agree
more. This module feeds it: it picks the informative feature-space pairs from the selection's pair
weighting, reads those spaces' embeddings for the pool (:mod:`.pool_vectors`), reduced to a few
principal components fitted on a seeded sample, and rebuilds the :class:`Selection` after the
exchanges (the clips that entered come after the kept ones, at one more step, their gain being
what the objective would lose without them).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from acav_assets.core.clustering import auto_k
from acav_assets.core.selection import PairWeighting, Selection, marginal_effects, mutual_information
from acav_assets.core.selection.refinement import (
    RefinementConfig,
    SpaceProjection,
    agreement_scores,
    informative_pairs,
    swap_by_agreement,
)
from acav_assets.core.stages.pool_vectors import read_vectors
from acav_assets.core.warehouse.tables import Warehouse

__all__ = ["REFINEMENTS", "Refinement", "refine_by_agreement"]

#: The refinements a selection may run after the MI search: ``agreement`` (the default, measured
#: in docs/quality.md) or ``none`` (the MI selection as it is, the reference's behaviour).
REFINEMENTS = ("agreement", "none")

PROJECTION_SAMPLE = 20_000  # pool clips the principal components are fitted on, at most
MAX_POOL = 300_000  # larger pools keep the MI selection (benchmark: 100k clips take about 3 min on 2 cores)


@dataclass(frozen=True)
class Refinement:
    """A selection after the agreement refinement, and what to record of it."""

    selection: Selection
    agreement: dict[int, float]  # label-matrix row -> combined agreement score (every pool row scored)
    entered: frozenset[int]  # label-matrix rows that entered by the refinement
    record: dict  # for selection_runs: rule, pairs, swaps, note


def _unchanged(sel: Selection, note: str) -> Refinement:
    return Refinement(sel, {}, frozenset(), {"rule": "agreement", "swaps": 0, "pairs": [], "note": note})


def _pair_mi(labels: np.ndarray, rows: np.ndarray, pairs) -> np.ndarray:
    ks = labels.max(axis=0).astype(np.int64) + 1
    out = []
    for i, j in pairs:
        cells = labels[rows, i].astype(np.int64) * ks[j] + labels[rows, j].astype(np.int64)
        out.append(mutual_information(np.bincount(cells, minlength=int(ks[i] * ks[j])).reshape(ks[i], ks[j])))
    return np.array(out)


def refine_by_agreement(
    wh: Warehouse,
    labels: np.ndarray,
    keys_of: Callable[[np.ndarray], list[tuple[str, str]]],
    pool_rows: np.ndarray,
    sel: Selection,
    weighting: PairWeighting,
    pairs: Sequence[tuple[int, int]],
    feature_spaces: Sequence[str],
    *,
    config: RefinementConfig = RefinementConfig(),
    initial_rows: np.ndarray | None = None,
) -> Refinement:
    """Refine ``sel`` (rows of ``labels``) over the pool ``pool_rows`` (warm-start rows
    ``initial_rows`` included: they stay, and teach the pseudo-classes). ``keys_of(rows)`` gives
    the (clip id, batch) of label-matrix rows; ``feature_spaces`` names each label column."""
    initial = np.zeros(0, np.int64) if initial_rows is None else np.asarray(initial_rows, np.int64)
    pool_rows = np.asarray(pool_rows, np.int64)
    if len(sel) == 0:
        return _unchanged(sel, "nothing was selected")
    if pool_rows.size < config.min_pool:
        return _unchanged(sel, f"pool of {pool_rows.size} clips, below {config.min_pool}: the MI selection kept")
    if pool_rows.size > MAX_POOL:
        return _unchanged(sel, f"pool of {pool_rows.size} clips, above {MAX_POOL}: the MI selection kept")
    chosen = informative_pairs(feature_spaces, pairs, weighting.scores, weighting.z, config.pairs)
    if not chosen:
        return _unchanged(sel, "no audio-visual pair carries information beyond chance: the MI selection kept")
    spaces = list(dict.fromkeys(s for a, v, _ in chosen for s in (a, v)))
    keys = keys_of(pool_rows)
    rng = np.random.default_rng(config.seed)
    sample = np.sort(rng.choice(pool_rows.size, min(pool_rows.size, PROJECTION_SAMPLE), replace=False))
    raw = read_vectors(wh, spaces, [keys[i] for i in sample])
    projection = {s: SpaceProjection(config.dim).fit(raw[s]) for s in spaces}
    del raw
    vectors = read_vectors(wh, spaces, keys, transform=lambda s, v: projection[s].transform(v))

    position = {int(r): p for p, r in enumerate(pool_rows)}
    selected = np.zeros(pool_rows.size, bool)
    picks = np.array([position[int(r)] for r in sel.indices], np.int64)
    selected[picks] = True
    selected[[position[int(r)] for r in initial]] = True
    scores = agreement_scores(vectors, chosen, selected, k=auto_k(pool_rows.size), config=config)
    out, inn = swap_by_agreement(scores.combined, picks, np.flatnonzero(~selected), int(config.swap_share * len(sel)))
    out_rows, in_rows = pool_rows[out], pool_rows[inn]
    agreement = {int(r): float(s) for r, s in zip(pool_rows, scores.combined)}
    record = {
        "rule": "agreement",
        "swaps": int(out.size),
        "pairs": [{"audio": a, "visual": v, "score": round(w, 6)} for a, v, w in chosen],
        "note": "",
    }
    if out.size == 0:
        return Refinement(sel, agreement, frozenset(), record)

    keep = ~np.isin(sel.indices, out_rows)
    indices = np.r_[sel.indices[keep], in_rows].astype(np.int64)
    final = np.r_[initial, indices]
    objective, loss, _ = marginal_effects(labels, final, pairing=list(pairs), pair_weights=weighting.weights)
    step = int(sel.steps.max()) + 1 if len(sel) else 0
    refined = dataclasses.replace(
        sel,
        indices=indices,
        gains=np.r_[sel.gains[keep], loss[initial.size + int(keep.sum()) :]],
        objectives=np.r_[sel.objectives[keep], np.full(in_rows.size, objective)],
        steps=np.r_[sel.steps[keep], np.full(in_rows.size, step)].astype(sel.steps.dtype),
        objective=float(objective),
        pair_mi=_pair_mi(labels, final, pairs),
    )
    return Refinement(refined, agreement, frozenset(int(r) for r in in_rows), record)
