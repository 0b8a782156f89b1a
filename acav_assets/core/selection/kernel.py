"""Compiled inner loop of the batch-greedy MI selector (numba).

Kept apart from :mod:`acav_assets.core.selection.greedy` so that the public module stays readable;
nothing here validates its arguments: the caller does.

State (all arrays mutated in place so that the loop can run in resumable chunks):

- ``counts``   flat int64 contingency tables, pair ``p`` at ``pair_off[p]``, shape ``k_i × k_j``
- ``gcell``    ``g(counts)`` per cell, where ``g(t) = f(t + 1) - f(t)`` and ``f(t) = t log t``
- ``marg``     flat int64 cluster sizes per clustering, clustering ``c`` at ``col_off[c]``
- ``gmarg``    ``g(marg)`` per cluster
- ``pair_w``   weight of each pair (all 1 for the reference's plain mean)
- ``scalars``  ``[T, n]`` as float64: ``T = Σ_p w_p Σ f(N_p) − Σ_c w_c Σ f(marg_c)`` and the
  number of clips counted in the tables, where ``w_c`` (``col_w``) is the total weight of the
  pairs that use clustering ``c``.

The weighted mean plug-in MI over the pairs, ``Σ_p w_p MI_p / W`` with ``W = Σ_p w_p``, is then
``T / (W n) + log n``, because for one pair ``MI = (Σ N log N − Σ a log a − Σ b log b) / n +
log n`` and a clustering's marginal appears in every pair that uses it. Adding clip ``x``
changes ``T`` by ``δ(x) = Σ_p w_p g(N_p[x_i, x_j]) − Σ_c w_c g(marg_c[x_c])``: ``P + m``
look-ups, whatever the number of clusters.

Random draws come from a SplitMix64 stream keyed on ``(seed, clips selected so far)``, so a
run resumed from its own prefix (a warm start) draws exactly what the uninterrupted run drew.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_TIE = 1e-10


@nb.njit(cache=True, inline="always")
def _g(t):
    """f(t + 1) - f(t) with f(t) = t log t, accurate for large t."""
    if t == 0:
        return 0.0
    return math.log(t + 1.0) + t * math.log1p(1.0 / t)


@nb.njit(cache=True, inline="always")
def _mix(z):
    """SplitMix64 output function: a bijective 64-bit mixer."""
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


@nb.njit(cache=True)
def _delta(labels, row, pair_i, pair_j, pair_w, pair_off, ks, gcell, col_w, col_off, gmarg):
    """Change of T if clip ``row`` is added."""
    d = 0.0
    for p in range(pair_i.shape[0]):
        i = pair_i[p]
        j = pair_j[p]
        d += pair_w[p] * gcell[pair_off[p] + np.int64(labels[row, i]) * ks[j] + np.int64(labels[row, j])]
    for c in range(col_w.shape[0]):
        w = col_w[c]
        if w != 0.0:
            d -= w * gmarg[col_off[c] + np.int64(labels[row, c])]
    return d


@nb.njit(cache=True)
def _add(labels, row, pair_i, pair_j, pair_w, pair_off, ks, counts, gcell, col_w, col_off, marg, gmarg, scalars):
    """Add clip ``row`` to the tables; returns the change of T."""
    d = 0.0
    for p in range(pair_i.shape[0]):
        i = pair_i[p]
        j = pair_j[p]
        cell = pair_off[p] + np.int64(labels[row, i]) * ks[j] + np.int64(labels[row, j])
        d += pair_w[p] * gcell[cell]
        counts[cell] += 1
        gcell[cell] = _g(float(counts[cell]))
    for c in range(col_w.shape[0]):
        cell = col_off[c] + np.int64(labels[row, c])
        w = col_w[c]
        if w != 0.0:
            d -= w * gmarg[cell]
        marg[cell] += 1
        gmarg[cell] = _g(float(marg[cell]))
    scalars[0] += d
    scalars[1] += 1.0
    return d


@nb.njit(cache=True, inline="always")
def _objective(t, n, total_weight):
    if n <= 0.0:
        return 0.0
    return t / (total_weight * n) + math.log(n)


@nb.njit(cache=True)
def greedy_chunk(
    labels,
    space,
    use_space,
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
    batch_size,
    take,
    seed,
    n_prior,
    done,
    stop,
    step0,
    out_idx,
    out_pos,
    out_gain,
    out_obj,
    out_step,
    scratch_pos,
    scratch_score,
    salt,
):
    """Select clips until ``stop`` clips are in the output (or the pool is empty).

    ``space`` maps pool positions to rows of ``labels`` (identity when ``use_space`` is
    False); ``state[pos]`` is 0 for a free position, 1 once selected, 2 while in the batch
    being scored. ``batch_size <= 0`` scores every free position (exact greedy). Returns
    ``(done, step, n_free)`` after the chunk. ``salt`` varies the draws of refinement rounds.
    """
    n_pairs = pair_w.sum()  # total pair weight (P when all weights are 1)
    space_len = state.shape[0]
    step = step0
    while done < stop and n_free > 0:
        # --- draw the batch -----------------------------------------------------------
        if batch_size <= 0 or n_free <= batch_size:
            nb_ = 0
            for pos in range(space_len):
                if state[pos] == 0:
                    scratch_pos[nb_] = pos
                    nb_ += 1
        else:
            nb_ = batch_size
            # SplitMix64 stream whose start depends only on (seed, clips selected so far)
            s = _mix(np.uint64(seed) * _MIX2 + _mix(np.uint64(n_prior + done)) + np.uint64(salt) * _GOLDEN)
            for t in range(nb_):
                while True:
                    s += _GOLDEN
                    r = _mix(s)
                    pos = np.int64(((r >> np.uint64(32)) * np.uint64(space_len)) >> np.uint64(32))
                    if state[pos] == 0:
                        break
                state[pos] = 2
                scratch_pos[t] = pos
            for t in range(nb_):
                state[scratch_pos[t]] = 0
        # --- score it -------------------------------------------------------------------
        for t in range(nb_):
            row = scratch_pos[t]
            if use_space:
                row = space[row]
            scratch_score[t] = _delta(labels, row, pair_i, pair_j, pair_w, pair_off, ks, gcell, col_w, col_off, gmarg)
        # --- keep the best `take` (ties: first drawn), add them in order ----------------------
        k = min(take, nb_, stop - done)
        for r in range(k):
            best = -1
            for t in range(nb_):
                # scores within _TIE of each other are equal (rounding): the first drawn wins
                if scratch_pos[t] >= 0 and (best < 0 or scratch_score[t] > scratch_score[best] + _TIE):
                    best = t
            pos = scratch_pos[best]
            scratch_pos[best] = -1
            row = pos
            if use_space:
                row = space[pos]
            before = _objective(scalars[0], scalars[1], n_pairs)
            _add(labels, row, pair_i, pair_j, pair_w, pair_off, ks, counts, gcell, col_w, col_off, marg, gmarg, scalars)
            after = _objective(scalars[0], scalars[1], n_pairs)
            state[pos] = 1
            n_free -= 1
            out_idx[done] = row
            out_pos[done] = pos
            out_gain[done] = after - before
            out_obj[done] = after
            out_step[done] = step
            done += 1
        step += 1
    return done, step, n_free


@nb.njit(cache=True)
def add_rows(labels, rows, pair_i, pair_j, pair_w, pair_off, ks, counts, gcell, col_w, col_off, marg, gmarg, scalars):
    """Seed the tables with already-selected clips (warm start)."""
    for r in range(rows.shape[0]):
        _add(labels, rows[r], pair_i, pair_j, pair_w, pair_off, ks, counts, gcell, col_w, col_off, marg, gmarg, scalars)


@nb.njit(cache=True)
def _remove(labels, row, pair_i, pair_j, pair_w, pair_off, ks, counts, gcell, col_w, col_off, marg, gmarg, scalars):
    """Take clip ``row`` out of the tables (inverse of ``_add``)."""
    d = 0.0
    for p in range(pair_i.shape[0]):
        cell = pair_off[p] + np.int64(labels[row, pair_i[p]]) * ks[pair_j[p]] + np.int64(labels[row, pair_j[p]])
        counts[cell] -= 1
        gcell[cell] = _g(float(counts[cell]))
        d -= pair_w[p] * gcell[cell]
    for c in range(col_w.shape[0]):
        cell = col_off[c] + np.int64(labels[row, c])
        marg[cell] -= 1
        gmarg[cell] = _g(float(marg[cell]))
        w = col_w[c]
        if w != 0.0:
            d += w * gmarg[cell]
    scalars[0] += d
    scalars[1] -= 1.0
    return d


@nb.njit(cache=True)
def removal_scores(labels, rows, pair_i, pair_j, pair_w, pair_off, ks, counts, gcell, col_w, col_off, marg, gmarg, out):
    """Change of T if each of ``rows`` (all in the tables) were taken out."""
    for r in range(rows.shape[0]):
        row = rows[r]
        d = 0.0
        for p in range(pair_i.shape[0]):
            cell = pair_off[p] + np.int64(labels[row, pair_i[p]]) * ks[pair_j[p]] + np.int64(labels[row, pair_j[p]])
            d -= pair_w[p] * _g(float(counts[cell] - 1))
        for c in range(col_w.shape[0]):
            w = col_w[c]
            if w != 0.0:
                d += w * _g(float(marg[col_off[c] + np.int64(labels[row, c])] - 1))
        out[r] = d


@nb.njit(cache=True)
def remove_rows(
    labels, rows, pair_i, pair_j, pair_w, pair_off, ks, counts, gcell, col_w, col_off, marg, gmarg, scalars
):
    for r in range(rows.shape[0]):
        _remove(
            labels, rows[r], pair_i, pair_j, pair_w, pair_off, ks, counts, gcell, col_w, col_off, marg, gmarg, scalars
        )


@nb.njit(cache=True)
def replay(
    labels,
    rows,
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
    out_gain,
    out_obj,
):
    """Add ``rows`` in order, recording each one's gain and the objective after it."""
    n_pairs = pair_w.sum()  # total pair weight (P when all weights are 1)
    for r in range(rows.shape[0]):
        before = _objective(scalars[0], scalars[1], n_pairs)
        _add(labels, rows[r], pair_i, pair_j, pair_w, pair_off, ks, counts, gcell, col_w, col_off, marg, gmarg, scalars)
        after = _objective(scalars[0], scalars[1], n_pairs)
        out_gain[r] = after - before
        out_obj[r] = after


@nb.njit(cache=True)
def delta_rows(labels, rows, pair_i, pair_j, pair_w, pair_off, ks, gcell, col_w, col_off, gmarg, out):
    """Change of T if each of ``rows`` (not in the tables) were added alone."""
    for r in range(rows.shape[0]):
        out[r] = _delta(labels, rows[r], pair_i, pair_j, pair_w, pair_off, ks, gcell, col_w, col_off, gmarg)
