"""Batch-greedy subset selection maximising audio-visual mutual information (ACAV100M).

Given one cluster label per clip per clustering (one k-means per feature space), choose the
subset ``S`` that maximises the mean, over pairs of clusterings, of the plug-in mutual
information (nats) of the contingency table of labels restricted to ``S``. The search is the
batch greedy of the reference code: every step draws ``batch_size`` candidates at random from
the clips not yet chosen, scores each by the objective it would reach, keeps the best ``take``
and returns the others to the pool.

What differs from the reference code is the cost, not the result:

- a candidate's score costs ``P + m`` table look-ups (``P`` pairs, ``m`` clusterings) instead
  of rebuilding ``P`` tables of ``k × k`` cells, because per cell we keep ``g(N) = f(N+1) -
  f(N)`` with ``f(t) = t log t`` (see :mod:`acav_assets.core.selection.kernel`);
- a step draws its candidates in ``O(batch_size)`` by rejection from the pool instead of
  reshuffling the whole pool;
- the inner loop is compiled with numba.

The result is deterministic for a seed, and the random stream of a step depends only on the
seed and the number of clips selected before it, so a warm start from a run's own prefix
(``initial=``) continues exactly as the run did.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

import acav_assets.core.selection.kernel as _k

__all__ = [
    "DEFAULT_PAIRING",
    "PAIRINGS",
    "Selection",
    "marginal_effects",
    "mean_mutual_information",
    "mutual_information",
    "resolve_pairs",
    "select_subset",
]

#: Pairing modes understood by :func:`resolve_pairs` / :func:`select_subset`.
PAIRINGS = ("combination", "bipartite", "diagonal")

#: Default pairing, chosen by measured precision (``benchmarks/selection.py`` and the
#: pairing table in docs/performance.md): audio × visual pairs only. ``combination`` (the reference
#: default) adds audio–audio and visual–visual pairs, which reward clips that are typical
#: *within* one modality rather than clips whose sound matches their picture, and its
#: precision on planted correspondence is markedly lower. ``diagonal`` uses only ``L`` of the
#: ``L²`` cross-modal pairs and is noisier.
DEFAULT_PAIRING = "bipartite"

_MAX_DENSE_LABEL = 4096  # labels above this are remapped densely before building tables
_CHUNK = 1 << 16  # clips selected per compiled call between progress reports


@dataclass(frozen=True)
class Selection:
    """The result of :func:`select_subset`.

    Attributes:
        indices: row indices of the selected clips, in the order chosen (``initial`` excluded).
        gains: increase of the objective when each clip was added (may be negative).
        objectives: the objective right after each clip was added.
        steps: the greedy step (0-based, this run) at which each clip was chosen.
        objective: final (weighted) mean plug-in MI in nats over the pairs, computed afresh
            from the contingency tables of ``initial`` plus ``indices``.
        initial_objective: the objective of ``initial`` alone (0.0 without a warm start).
        pairs: the clustering column pairs the objective averages over.
        pair_mi: final MI of each pair, in the order of ``pairs``.
        pair_weights: the weight of each pair in the objective (all 1: the plain mean).
        n_initial: number of warm-start clips.
        pool_size: number of candidates the run could choose from.
        refine_rounds / refine_swaps: swap-refinement rounds run and clips swapped in.
    """

    indices: np.ndarray
    gains: np.ndarray
    objectives: np.ndarray
    steps: np.ndarray
    objective: float
    initial_objective: float
    pairs: tuple[tuple[int, int], ...]
    pair_mi: np.ndarray = field(repr=False)
    pair_weights: np.ndarray | None = field(default=None, repr=False)
    n_initial: int = 0
    pool_size: int = 0
    refine_rounds: int = 0
    refine_swaps: int = 0

    def __len__(self) -> int:
        return int(self.indices.shape[0])

    @property
    def step_objectives(self) -> np.ndarray:
        """Objective after each greedy step (the last clip of each step)."""
        if len(self) == 0:
            return np.zeros(0)
        last = np.r_[self.steps[1:] != self.steps[:-1], True]
        return self.objectives[last]


def resolve_pairs(
    pairing: str | Sequence[tuple[int, int]],
    n_columns: int,
    modalities: Sequence[str] | None = None,
) -> list[tuple[int, int]]:
    """Turn a pairing mode into explicit column pairs.

    - ``"combination"``: every unordered pair of clusterings (``m(m-1)/2``), the reference default.
    - ``"bipartite"``: every audio clustering with every visual clustering.
    - ``"diagonal"``: the l-th audio clustering with the l-th visual clustering, in column
      order (same layer depth); needs as many audio as visual clusterings.
    - a sequence of ``(i, j)`` column pairs, used as given.

    ``modalities`` gives one label per column, ``"audio"`` or ``"visual"``; bipartite and
    diagonal need it.
    """
    if isinstance(pairing, str):
        mode = pairing.lower()
        if mode not in PAIRINGS:
            raise ValueError(f"unknown pairing {pairing!r}: expected one of {PAIRINGS} or a list of column pairs")
        if mode == "combination":
            pairs = list(itertools.combinations(range(n_columns), 2))
        else:
            audio, visual = _split_modalities(modalities, n_columns, mode)
            if mode == "bipartite":
                pairs = [(a, v) for a in audio for v in visual]
            else:
                if len(audio) != len(visual):
                    raise ValueError(
                        f"diagonal pairing needs as many audio as visual clusterings, got "
                        f"{len(audio)} audio and {len(visual)} visual"
                    )
                pairs = list(zip(audio, visual))
    else:
        try:
            pairs = [(int(i), int(j)) for i, j in pairing]
        except (TypeError, ValueError):
            raise ValueError(f"pairing must be a mode name or a list of (i, j) column pairs, got {pairing!r}") from None
        seen = set()
        for i, j in pairs:
            if not (0 <= i < n_columns and 0 <= j < n_columns):
                raise ValueError(f"pair ({i}, {j}) names a column outside 0..{n_columns - 1}")
            if i == j:
                raise ValueError(f"pair ({i}, {j}) pairs a clustering with itself")
            key = (min(i, j), max(i, j))
            if key in seen:
                raise ValueError(f"pair ({i}, {j}) is listed twice")
            seen.add(key)
    if not pairs:
        raise ValueError(f"pairing {pairing!r} gives no pair of clusterings for {n_columns} column(s)")
    return pairs


def _split_modalities(modalities, n_columns, mode):
    if modalities is None:
        raise ValueError(f"{mode} pairing needs `modalities` (one of 'audio'/'visual' per clustering column)")
    modalities = [str(m).lower() for m in modalities]
    if len(modalities) != n_columns:
        raise ValueError(f"modalities has {len(modalities)} labels for {n_columns} clustering columns")
    bad = sorted({m for m in modalities if m not in ("audio", "visual")})
    if bad:
        raise ValueError(f"modalities must be 'audio' or 'visual', got {bad}")
    audio = [c for c, m in enumerate(modalities) if m == "audio"]
    visual = [c for c, m in enumerate(modalities) if m == "visual"]
    if not audio or not visual:
        raise ValueError(f"{mode} pairing needs at least one audio and one visual clustering")
    return audio, visual


def mutual_information(table: np.ndarray) -> float:
    """Plug-in mutual information (nats) of a contingency table of counts."""
    table = np.asarray(table, dtype=np.float64)
    n = table.sum()
    if n <= 0:
        return 0.0
    a = table.sum(axis=1)
    b = table.sum(axis=0)
    nz = table[table > 0]
    return float((np.sum(nz * np.log(nz)) - _xlogx_sum(a) - _xlogx_sum(b)) / n + math.log(n))


def _xlogx_sum(x: np.ndarray) -> float:
    x = x[x > 0]
    return float(np.sum(x * np.log(x)))


def mean_mutual_information(
    assignments: np.ndarray,
    subset: np.ndarray | Sequence[int] | None = None,
    *,
    pairing: str | Sequence[tuple[int, int]] = DEFAULT_PAIRING,
    modalities: Sequence[str] | None = None,
    pair_weights: Sequence[float] | np.ndarray | None = None,
) -> float:
    """The selection objective of ``subset`` (all rows if None): the mean plug-in MI over pairs,
    weighted by ``pair_weights`` when given (one non-negative weight per pair)."""
    labels, _ = _as_labels(assignments)
    pairs = resolve_pairs(pairing, labels.shape[1], modalities)
    w = _as_pair_weights(pair_weights, len(pairs))
    rows = labels if subset is None else labels[np.asarray(subset, dtype=np.int64)]
    ks = labels.max(axis=0).astype(np.int64) + 1 if labels.shape[0] else np.ones(labels.shape[1], np.int64)
    mi = np.array([_pair_mi(rows, i, j, ks) if w[p] > 0 else 0.0 for p, (i, j) in enumerate(pairs)])
    return float(np.dot(w, mi) / w.sum())


def _as_pair_weights(weights, n_pairs: int) -> np.ndarray:
    """Validated pair weights: ``None`` gives all ones (the reference's plain mean)."""
    if weights is None:
        return np.ones(n_pairs)
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    if w.size != n_pairs:
        raise ValueError(f"pair_weights has {w.size} weights for {n_pairs} pairs")
    if not np.isfinite(w).all() or (w < 0).any():
        raise ValueError("pair_weights must be finite and non-negative")
    if w.sum() <= 0:
        raise ValueError("pair_weights are all zero: at least one pair must count")
    return w


def _pair_mi(rows, i, j, ks):
    cells = rows[:, i].astype(np.int64) * ks[j] + rows[:, j].astype(np.int64)
    table = np.bincount(cells, minlength=int(ks[i] * ks[j])).reshape(int(ks[i]), int(ks[j]))
    return mutual_information(table)


def _as_labels(assignments) -> tuple[np.ndarray, np.ndarray]:
    """Validate cluster labels; return a compact C-ordered copy and clusters per column."""
    arr = np.asarray(assignments)
    if arr.ndim != 2:
        raise ValueError(f"assignments must be a 2-D array (clips × clusterings), got shape {arr.shape}")
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"assignments must hold integer cluster labels, got dtype {arr.dtype}")
    n, m = arr.shape
    if n == 0:
        raise ValueError("assignments has no clips (0 rows)")
    if m == 0:
        raise ValueError("assignments has no clusterings (0 columns)")
    mins = arr.min(axis=0)
    if (mins < 0).any():
        cols = [int(c) for c in np.flatnonzero(mins < 0)]
        raise ValueError(f"assignments has negative cluster labels in column(s) {cols}")
    maxs = arr.max(axis=0).astype(np.int64)
    big = maxs >= _MAX_DENSE_LABEL
    if big.any():  # sparse label ids (e.g. hashed): remap to 0..k-1 per column
        arr = np.array(arr, dtype=np.int64, copy=True)
        for c in np.flatnonzero(big):
            _, arr[:, c] = np.unique(arr[:, c], return_inverse=True)
        maxs = arr.max(axis=0).astype(np.int64)
    ks = maxs + 1
    dtype = np.uint8 if ks.max() <= 256 else np.uint16
    return np.ascontiguousarray(arr, dtype=dtype), ks


def _as_index_array(values, n: int, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D sequence of clip indices, got shape {arr.shape}")
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must hold integer clip indices, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    if arr.min() < 0 or arr.max() >= n:
        raise ValueError(f"{name} has indices outside 0..{n - 1}")
    if np.unique(arr).size != arr.size:
        raise ValueError(f"{name} has duplicate clip indices")
    return arr


def select_subset(
    assignments: np.ndarray,
    budget: int | float,
    *,
    pairing: str | Sequence[tuple[int, int]] = DEFAULT_PAIRING,
    modalities: Sequence[str] | None = None,
    batch_size: int | None = 20,
    take: int = 4,
    seed: int = 0,
    initial: np.ndarray | Sequence[int] | None = None,
    candidates: np.ndarray | Sequence[int] | None = None,
    refine: int = 0,
    refine_fraction: float = 0.01,
    pair_weights: Sequence[float] | np.ndarray | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Selection:
    """Choose clips that maximise the mean audio-visual mutual information.

    Args:
        assignments: integer array ``(n_clips, n_clusterings)`` of cluster labels; each
            column is one clustering (one feature space) and may have its own number of
            clusters (``max + 1``).
        budget: clips to add: an ``int`` count, or a ``float`` in ``(0, 1]`` meaning that
            share of the pool (rounded).
        pairing: ``"bipartite"`` (default: audio × visual, best measured precision, see
            :data:`DEFAULT_PAIRING`), ``"combination"`` (all pairs, the reference default),
            ``"diagonal"`` (same layer), or an explicit list of ``(i, j)`` column pairs.
        modalities: ``"audio"``/``"visual"`` per column; needed by bipartite and diagonal.
        batch_size: candidates drawn per step (reference: 20); ``None`` scores the whole
            pool every step (exact greedy, ``O(pool)`` per step).
        take: candidates kept per step, the best-scored (reference: 4).
        seed: seed of the candidate draws; the result is a function of the arguments.
        initial: clips already selected (warm start): they seed the tables and are never
            chosen again.
        candidates: restrict the pool to these clips (e.g. the clips of a new batch).
        refine: rounds of swap refinement after the greedy pass (0 = none, the reference
            behaviour). A round takes out the ``refine_fraction`` of this run's clips whose
            removal raises the objective most, adds as many back by the same batch greedy, and
            is kept only if the objective rose (else the swap size halves; at one clip, the
            refinement stops after 8 rounds in a row that found no better swap). Greedy never revisits its early picks, which on nearly empty
            tables are close to random; this repairs them (see docs/concepts.md and docs/performance.md).
            Warm-start clips are never swapped out.
        refine_fraction: share of the selected clips swapped per round (at least one).
        pair_weights: one non-negative weight per pair (in :func:`resolve_pairs` order): the
            objective becomes ``Σ w_p MI_p / Σ w_p``; pairs of weight 0 are left out of the
            search. ``None`` (default) is the reference's plain mean. The platform computes
            them from the pool with :func:`acav_assets.core.selection.weighting.pair_weights`.
        progress: called as ``progress(selected, budget)`` between chunks of work.

    Returns:
        A :class:`Selection`.

    Raises:
        ValueError: for a malformed argument (shape, dtype, negative labels, unknown pairing,
            a budget larger than the pool, ...), with a message that names it.
    """
    labels, ks = _as_labels(assignments)
    n, m = labels.shape
    pairs = resolve_pairs(pairing, m, modalities)
    weights = _as_pair_weights(pair_weights, len(pairs))
    active = [p for p in range(len(pairs)) if weights[p] > 0]  # weight-0 pairs cost nothing

    if batch_size is not None and (
        isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1
    ):
        raise ValueError(f"batch_size must be a positive int or None, got {batch_size!r}")
    if isinstance(take, bool) or not isinstance(take, (int, np.integer)) or take < 1:
        raise ValueError(f"take must be a positive int, got {take!r}")
    if batch_size is not None and take > batch_size:
        raise ValueError(f"take ({take}) cannot exceed batch_size ({batch_size})")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    if isinstance(refine, bool) or not isinstance(refine, (int, np.integer)) or refine < 0:
        raise ValueError(f"refine must be a non-negative int (rounds), got {refine!r}")
    if not 0.0 < refine_fraction <= 0.5:
        raise ValueError(f"refine_fraction must be in (0, 0.5], got {refine_fraction}")

    init = _as_index_array([] if initial is None else initial, n, "initial")
    if candidates is None:
        space = None
        pool_size = n - init.size
    else:
        cand = _as_index_array(candidates, n, "candidates")
        space = np.setdiff1d(cand, init, assume_unique=True) if init.size else np.sort(cand)
        pool_size = int(space.size)
    n_budget = _resolve_budget(budget, pool_size)

    # --- tables, seeded with the warm start -----------------------------------------------
    args = _empty_tables([pairs[p] for p in active], ks, weights[active])
    pair_i, pair_j, pair_w, pair_off, _, counts, gcell, col_w, col_off, marg, gmarg, scalars = args
    if init.size:
        _k.add_rows(labels, init, *args)
    initial_objective = _exact_objective(counts, marg, pair_i, pair_j, pair_w, pair_off, ks, col_off, init.size)

    # --- pool state -----------------------------------------------------------------------
    if space is None:
        state = np.zeros(n, dtype=np.uint8)
        state[init] = 1
        space_arr = np.zeros(1, dtype=np.int64)
    else:
        state = np.zeros(space.size, dtype=np.uint8)
        space_arr = space
    if state.size >= 1 << 32:
        raise ValueError("pools of 2**32 clips or more are not supported")
    bsz = 0 if batch_size is None else int(batch_size)
    scratch = state.size if bsz == 0 else max(bsz, 1)
    # at the end of the pool a step scores every remaining clip (fewer than batch_size)
    scratch_pos = np.zeros(max(scratch, 1), dtype=np.int64)
    scratch_score = np.zeros(max(scratch, 1), dtype=np.float64)

    out_idx = np.zeros(n_budget, dtype=np.int64)
    out_pos = np.zeros(n_budget, dtype=np.int64)
    out_gain = np.zeros(n_budget, dtype=np.float64)
    out_obj = np.zeros(n_budget, dtype=np.float64)
    out_step = np.zeros(n_budget, dtype=np.int64)
    done, step, n_free = 0, 0, pool_size
    while done < n_budget:
        stop = min(n_budget, done + _CHUNK)
        done, step, n_free = _k.greedy_chunk(
            labels,
            space_arr,
            space is not None,
            state,
            n_free,
            pair_i,
            pair_j,
            pair_w,
            pair_off,
            ks,
            counts,
            gcell,
            col_w,
            col_off,
            marg,
            gmarg,
            scalars,
            bsz,
            int(take),
            int(seed),
            int(init.size),
            done,
            stop,
            step,
            out_idx,
            out_pos,
            out_gain,
            out_obj,
            out_step,
            scratch_pos,
            scratch_score,
            0,
        )
        if progress is not None:
            progress(int(done), n_budget)
        if n_free == 0:
            break

    rows, steps, gains, objs = out_idx[:done], out_step[:done], out_gain[:done], out_obj[:done]
    rounds = swaps = 0
    if refine and done:
        pool = PoolState(labels, space_arr, space is not None, state, bsz, int(take), int(seed), int(init.size))
        rows, pos, steps, rounds, swaps = _refine(
            pool,
            args,
            out_pos[:done].copy(),
            rows.copy(),
            steps.copy(),
            step,
            n_free,
            int(refine),
            float(refine_fraction),
            scratch_pos,
            scratch_score,
        )
        # gains and objectives along the final order, from fresh tables
        for arr in (counts, gcell, marg, gmarg, scalars):
            arr[:] = 0
        if init.size:
            _k.add_rows(labels, init, *args)
        gains = np.zeros(rows.size)
        objs = np.zeros(rows.size)
        _k.replay(labels, rows, *args, gains, objs)

    n_total = init.size + rows.size
    objective = _exact_objective(counts, marg, pair_i, pair_j, pair_w, pair_off, ks, col_off, n_total)
    chosen = labels[np.concatenate([init, rows])] if n_total else labels[:0]
    pair_mi = np.array([_pair_mi(chosen, i, j, ks) for i, j in pairs])
    return Selection(
        indices=rows,
        gains=gains,
        objectives=objs,
        steps=steps,
        objective=objective,
        initial_objective=initial_objective,
        pairs=tuple(pairs),
        pair_mi=pair_mi,
        pair_weights=weights,
        n_initial=int(init.size),
        pool_size=pool_size,
        refine_rounds=rounds,
        refine_swaps=swaps,
    )


def _refine(
    pool: PoolState, args: Tables, pos, rows, steps, next_step, n_free, max_rounds, fraction, scratch_pos, scratch_score
):
    """Swap refinement (see ``select_subset``'s ``refine``). Mutates the tables and pool state."""
    labels, space_arr, use_space, state, bsz, take, seed, n_init = pool
    pair_i, pair_j, pair_w, pair_off, ks, counts, gcell, col_w, col_off, marg, gmarg, scalars = args
    total_weight = float(pair_w.sum())

    def objective():
        return _k._objective(scalars[0], scalars[1], total_weight)

    m = max(1, int(math.ceil(fraction * rows.size)))
    best = objective()
    rounds = swaps = fails = 0
    patience = 8
    scores = np.empty(rows.size)
    for r in range(max_rounds):
        m = min(m, rows.size)
        _k.removal_scores(labels, rows, *args.arrays(), scores[: rows.size])
        worst = np.sort(np.argpartition(-scores[: rows.size], m - 1)[:m])
        keep = np.ones(rows.size, bool)
        keep[worst] = False
        out_rows, out_pos_ = rows[worst], pos[worst]
        _k.remove_rows(labels, out_rows, *args)
        state[out_pos_] = 0
        add_idx = np.zeros(m, np.int64)
        add_pos = np.zeros(m, np.int64)
        add_gain, add_obj = np.zeros(m), np.zeros(m)
        add_step = np.zeros(m, np.int64)
        got, new_step, free_after = _k.greedy_chunk(
            labels,
            space_arr,
            use_space,
            state,
            n_free + m,
            pair_i,
            pair_j,
            pair_w,
            pair_off,
            ks,
            counts,
            gcell,
            col_w,
            col_off,
            marg,
            gmarg,
            scalars,
            bsz,
            take,
            seed,
            n_init + int(keep.sum()),
            0,
            m,
            next_step,
            add_idx,
            add_pos,
            add_gain,
            add_obj,
            add_step,
            scratch_pos,
            scratch_score,
            r + 1,
        )
        rounds += 1
        now = objective()
        if got == m and now > best + 1e-12:
            rows = np.concatenate([rows[keep], add_idx])
            pos = np.concatenate([pos[keep], add_pos])
            steps = np.concatenate([steps[keep], add_step])
            best, next_step, swaps, fails = now, new_step, swaps + m, 0
            continue
        # no better: undo the round
        _k.remove_rows(labels, add_idx[:got], *args)
        state[add_pos[:got]] = 0
        _k.add_rows(labels, out_rows, *args)
        state[out_pos_] = 1
        if m > 1:
            m = max(1, m // 2)
            continue
        fails += 1  # single swaps: new draws may still find one, so give up only after `patience` misses
        if fails >= patience:
            break
    return rows, pos, steps, rounds, swaps


class Tables(NamedTuple):
    """The kernel's contingency tables and their running sums, in the order its functions take
    them (``_k.add_rows(labels, rows, *tables)``): per pair of clusterings, its columns, weight
    and offset into the flat cell counts; the counts and their cached gains; per clustering column,
    its weight and offset into the flat marginals; the marginals and their cached gains; and the
    running scalars (weighted sum of N log N terms, subset size)."""

    pair_i: np.ndarray
    pair_j: np.ndarray
    pair_w: np.ndarray
    pair_off: np.ndarray
    ks: np.ndarray
    counts: np.ndarray
    gcell: np.ndarray
    col_w: np.ndarray
    col_off: np.ndarray
    marg: np.ndarray
    gmarg: np.ndarray
    scalars: np.ndarray

    def arrays(self) -> tuple:
        """Every table but the scalars (what ``removal_scores`` takes)."""
        return tuple(self)[:-1]


class PoolState(NamedTuple):
    """The candidates a greedy run draws from and how it draws: the label matrix, the candidate
    rows (``use_space``: only those) and each one's state (free or taken), the batch size, how
    many to take per step, the seed and the warm start's size."""

    labels: np.ndarray
    space_arr: np.ndarray
    use_space: bool
    state: np.ndarray
    batch_size: int
    take: int
    seed: int
    n_initial: int


def _empty_tables(pairs, ks: np.ndarray, weights: np.ndarray | None = None) -> Tables:
    """The kernel's :class:`Tables` for ``pairs`` of clusterings with ``ks`` clusters, all counts zero."""
    m = ks.size
    pair_i = np.array([p[0] for p in pairs], dtype=np.int64)
    pair_j = np.array([p[1] for p in pairs], dtype=np.int64)
    pair_w = np.ones(len(pairs)) if weights is None else np.asarray(weights, dtype=np.float64)
    sizes = ks[pair_i] * ks[pair_j]
    pair_off = np.r_[0, np.cumsum(sizes)[:-1]].astype(np.int64)
    col_off = np.r_[0, np.cumsum(ks)[:-1]].astype(np.int64)
    col_w = np.bincount(pair_i, weights=pair_w, minlength=m) + np.bincount(pair_j, weights=pair_w, minlength=m)
    counts = np.zeros(int(sizes.sum()), dtype=np.int64)
    marg = np.zeros(int(ks.sum()), dtype=np.int64)
    return Tables(
        pair_i,
        pair_j,
        pair_w,
        pair_off,
        ks,
        counts,
        np.zeros(counts.size),
        col_w,
        col_off,
        marg,
        np.zeros(marg.size),
        np.zeros(2),
    )


def _resolve_budget(budget, pool_size: int) -> int:
    if isinstance(budget, bool):
        raise ValueError(f"budget must be an int count or a float share in (0, 1], got {budget!r}")
    if isinstance(budget, (int, np.integer)):
        if budget < 0:
            raise ValueError(f"budget must not be negative, got {budget}")
        if budget > pool_size:
            raise ValueError(f"budget {budget} is larger than the pool of {pool_size} candidate clips")
        return int(budget)
    if isinstance(budget, (float, np.floating)):
        if not (0.0 < budget <= 1.0) or math.isnan(budget):
            raise ValueError(f"a fractional budget must be in (0, 1], got {budget}")
        return int(round(budget * pool_size))
    raise ValueError(f"budget must be an int count or a float share in (0, 1], got {budget!r}")


def _exact_objective(counts, marg, pair_i, pair_j, pair_w, pair_off, ks, col_off, n_total) -> float:
    """Weighted mean MI over pairs from the integer tables (no accumulated rounding)."""
    if n_total <= 0:
        return 0.0
    total = 0.0
    for p in range(pair_i.size):
        i, j = pair_i[p], pair_j[p]
        cells = counts[pair_off[p] : pair_off[p] + ks[i] * ks[j]]
        a = marg[col_off[i] : col_off[i] + ks[i]]
        b = marg[col_off[j] : col_off[j] + ks[j]]
        total += pair_w[p] * (
            (_xlogx_sum(cells.astype(np.float64)) - _xlogx_sum(a.astype(np.float64)) - _xlogx_sum(b.astype(np.float64)))
            / n_total
            + math.log(n_total)
        )
    return total / float(pair_w.sum())


def marginal_effects(
    assignments: np.ndarray,
    subset: np.ndarray | Sequence[int],
    others: np.ndarray | Sequence[int] = (),
    *,
    pairing: str | Sequence[tuple[int, int]] = DEFAULT_PAIRING,
    modalities: Sequence[str] | None = None,
    pair_weights: Sequence[float] | np.ndarray | None = None,
) -> tuple[float, np.ndarray, np.ndarray]:
    """How each clip bears on the objective of ``subset``: ``(objective, loss, gain)``.

    ``loss[i]``: how much the objective drops if ``subset[i]`` is taken out; ``gain[j]``: how
    much it rises if ``others[j]`` (not in the subset) is added alone. Computed exactly with
    the selector's tables, ``O(P + m)`` per clip.
    """
    labels, ks = _as_labels(assignments)
    n, m = labels.shape
    pairs = resolve_pairs(pairing, m, modalities)
    sub = _as_index_array(subset, n, "subset")
    oth = _as_index_array(list(others), n, "others")
    if np.intersect1d(sub, oth).size:
        raise ValueError("others must not contain clips of the subset")
    weights = _as_pair_weights(pair_weights, len(pairs))
    active = [q for q in range(len(pairs)) if weights[q] > 0]
    args = _empty_tables([pairs[q] for q in active], ks, weights[active])
    pair_i, pair_j, pair_w, pair_off, _, _, gcell, col_w, col_off, _, gmarg, scalars = args
    _k.add_rows(labels, sub, *args)
    t, k = scalars[0], float(sub.size)
    p = float(pair_w.sum())
    objective = _k._objective(t, k, p)
    rem = np.zeros(sub.size)
    _k.removal_scores(labels, sub, *args.arrays(), rem)
    loss = objective - np.array([_k._objective(t + d, k - 1, p) for d in rem])
    add = np.zeros(oth.size)
    _k.delta_rows(labels, oth, pair_i, pair_j, pair_w, pair_off, ks, gcell, col_w, col_off, gmarg, add)
    gain = np.array([_k._objective(t + d, k + 1, p) for d in add]) - objective
    return float(objective), loss, gain
